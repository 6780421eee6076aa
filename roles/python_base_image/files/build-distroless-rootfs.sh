#!/bin/sh
# Builds a "distroless" root filesystem: Debian packages unpacked into an EMPTY directory (no
# dpkg, apt, shell or perl unless listed; no maintainer scripts run), and packs it as a tarball
# that `docker import` takes. No registry and no base image are involved.
#
#   build-distroless-rootfs.sh OUTPUT.tar SUITE "PACKAGE..." ["EXCLUDE..."] ["USER..."] ["DIR..."]
#
# PACKAGE: a package name, or NAME:./PATH to unpack only PATH of it (e.g. the C.UTF-8 locale of
# libc-bin, not its tools). Dependencies are not followed: the list is the image.
# EXCLUDE: ./-relative globs deleted after unpacking (before the bytecode is compiled).
# USER: NAME:UID:HOME, a passwd and group entry (root and nobody are always there).
# DIR: PATH:UID:MODE, a directory created and owned by UID (e.g. a volume's mount point).
# ROOTFS_MIRROR and ROOTFS_SECURITY_MIRROR name the mirrors (the role passes the ones this
# host's apt uses). The tarball appears atomically.
set -eu

output=$1 suite=$2 packages=$3 excludes=${4:-} users=${5:-} dirs=${6:-}

mirror=${ROOTFS_MIRROR:-}
security=${ROOTFS_SECURITY_MIRROR:-}
: "${mirror:?set ROOTFS_MIRROR to a Debian mirror}"

work=$(mktemp -d "${output}.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/rootfs debs=$work/debs
mkdir -p "$root" "$debs" "$work/apt/lists/partial" "$work/apt/cache/partial"

# The host's apt, with a private sources list, state and cache: it only downloads, so neither
# a chroot nor the host's package database is touched. The suite's updates and security fixes
# are taken, as in build-rootfs.sh.
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
{
    echo "deb [signed-by=$keyring] $mirror $suite main"
    echo "deb [signed-by=$keyring] $mirror $suite-updates main"
    if [ -n "$security" ]; then echo "deb [signed-by=$keyring] $security $suite-security main"; fi
} > "$work/sources.list"
apt() {
    apt-get -q -o Dir::Etc::SourceList="$work/sources.list" -o Dir::Etc::SourceParts=/dev/null \
        -o Dir::State::Lists="$work/apt/lists" -o Dir::Cache="$work/apt/cache" \
        -o Dir::State::Status=/dev/null -o APT::Sandbox::User=root "$@"
}
apt update
names=$(for p in $packages; do echo "${p%%:./*}"; done | sort -u)
# shellcheck disable=SC2086 # a list of package names
(cd "$debs" && apt download $names)

# A merged-/usr layout, as every bookworm system has: /bin, /lib... are links into /usr, and
# tar keeps them (--keep-directory-symlink) while the packages' unmerged paths are unpacked.
for d in bin sbin lib lib64; do
    mkdir -p "$root/usr/$d" && ln -s "usr/$d" "$root/$d"
done
for p in $packages; do
    name=${p%%:./*} only=
    case $p in *:./*) only=./${p#*:./} ;; esac
    # shellcheck disable=SC2086 # ONLY is one path or none
    dpkg-deb --fsys-tarfile "$debs/${name}"_*.deb |
        tar -x --keep-directory-symlink --no-same-owner -C "$root" $only
done

# What a read-only runtime never reads (docs, manuals, translations, lintian and bug-report
# files), then the recipe's own exclusions: globbed inside the root, not here.
set -f
set -- ./usr/share/doc ./usr/share/man ./usr/share/info ./usr/share/locale \
    ./usr/share/lintian ./usr/share/bug ./usr/share/doc-base ./etc/init.d ./etc/cron.*
for pattern in "$@" $excludes; do
    (cd "$root" && set +f && eval "rm -rf -- $pattern")
done
set +f

# Dependencies are not followed, so check the list: every executable and library must find
# each library it links inside the root (asked of the root's own dynamic loader).
for loader in "$root"/usr/lib/*/ld-linux*.so.*; do break; done
loader=${loader#"$root"}
find "$root" -type f \( -perm -u+x -o -name '*.so*' \) | while read -r file; do
    [ "$(od -An -c -N4 "$file" | tr -d ' ')" = '177ELF' ] || continue
    if ! linked=$(chroot "$root" "$loader" --list "${file#"$root"}" 2>&1) \
        || echo "$linked" | grep -q 'not found'; then
        printf '%s: a library it links is not in the package list\n%s\n' "${file#"$root"}" "$linked" >&2
        exit 1
    fi
done

# Debian's ca-certificates package leaves the bundle to update-ca-certificates (a maintainer
# script that never runs here): concatenate the certificates the same way. OpenSSL's default
# paths (OPENSSLDIR) point at it as the openssl package's links do, so ssl's default context
# finds it.
if [ -d "$root/usr/share/ca-certificates" ]; then
    mkdir -p "$root/etc/ssl/certs" "$root/usr/lib/ssl"
    find "$root/usr/share/ca-certificates" -name '*.crt' | LC_ALL=C sort |
        xargs cat > "$root/etc/ssl/certs/ca-certificates.crt"
    ln -s /etc/ssl/certs/ca-certificates.crt "$root/usr/lib/ssl/cert.pem"
    ln -s /etc/ssl/certs "$root/usr/lib/ssl/certs"
fi

# Python: the `python3` command (python3-minimal's link, without its maintainer tools), and
# the standard library's bytecode compiled now, by the image's own interpreter, as hash-based
# .pyc that stay valid on a read-only root with any mtime (one process: no /dev/shm here).
for python in "$root"/usr/bin/python3.[0-9]*; do
    [ -x "$python" ] || continue
    version=${python##*/python}
    [ -e "$root/usr/bin/python3" ] || ln -s "python$version" "$root/usr/bin/python3"
    chroot "$root" "/usr/bin/python$version" -m compileall -q \
        --invalidation-mode unchecked-hash "/usr/lib/python$version"
done

# Users, groups and owned directories: no useradd here, so the files are written directly.
printf 'root:x:0:0:root:/root:/sbin/nologin\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"
for u in $users; do
    IFS=: read -r name uid home <<EOF
$u
EOF
    echo "$name:x:$uid:$uid:$name:$home:/sbin/nologin" >> "$root/etc/passwd"
    echo "$name:x:$uid:" >> "$root/etc/group"
done
echo 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' >> "$root/etc/passwd"
echo 'nogroup:x:65534:' >> "$root/etc/group"
for d in $dirs; do
    IFS=: read -r path uid mode <<EOF
$d
EOF
    mkdir -p "$root$path" && chown "$uid:$uid" "$root$path" && chmod "$mode" "$root$path"
done
mkdir -p "$root/tmp" "$root/root" && chmod 1777 "$root/tmp" && chmod 700 "$root/root"
# glibc's lookups as Debian's base-files configures them: without this file, /etc/hosts would
# be read only when DNS is unreachable.
printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n' \
    > "$root/etc/nsswitch.conf"
# A container gets its resolver and hosts file from the engine; these are mount points.
: > "$root/etc/resolv.conf"
: > "$root/etc/hostname"
: > "$root/etc/hosts"

tar --numeric-owner --xattrs -C "$root" -cf "$work/rootfs.tar" .
mv -f "$work/rootfs.tar" "$output"
