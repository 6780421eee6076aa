#!/bin/sh
# Builds a Debian root filesystem holding PACKAGES, from Debian's packages alone, and packs it
# as a tarball that `docker import` takes. No registry and no base image are involved.
#
#   build-rootfs.sh OUTPUT.tar SUITE "PACKAGE..." ["EXCLUDE..."]
#
# EXCLUDE: extra paths (./-relative globs) left out of the tarball. ROOTFS_MIRROR and
# ROOTFS_SECURITY_MIRROR name the mirrors (the role passes the ones this host's apt uses).
# The tarball appears atomically: an interrupted run leaves none.
set -eu

output=$1 suite=$2 packages=$3 excludes=${4:-}

mirror=${ROOTFS_MIRROR:-}
security=${ROOTFS_SECURITY_MIRROR:-}

work=$(mktemp -d "${output}.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/rootfs

# minbase: dpkg, apt and the Essential set, nothing else. With no mirror found, debootstrap
# uses its built-in default.
debootstrap --variant=minbase "$suite" "$root" ${mirror:+"$mirror"}

# debootstrap takes the release as it was; the point-release and security fixes since then
# come from SUITE-updates and SUITE-security (when a security mirror is known). Packages are
# installed after the upgrade, with no daemon allowed to start inside the chroot.
mirror=$(sed -n 's/^deb \([^ ]*\) .*/\1/p' "$root/etc/apt/sources.list" | head -n 1)
{
    echo "deb $mirror $suite main"
    echo "deb $mirror $suite-updates main"
    if [ -n "$security" ]; then echo "deb $security $suite-security main"; fi
} > "$root/etc/apt/sources.list"
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
chroot "$root" apt-get -q update
# shellcheck disable=SC2086 # PACKAGES is a list of words.
chroot "$root" env DEBIAN_FRONTEND=noninteractive sh -c \
    "apt-get -q -y upgrade && apt-get -q -y install --no-install-recommends $packages"
rm -f "$root/usr/sbin/policy-rc.d"
# debootstrap copied this host's resolver; a container gets its own from the engine.
: > "$root/etc/resolv.conf"

# What a read-only runtime never reads: package caches and lists, docs, manuals and
# translations. Left out of the tarball rather than deleted, so the recipe stays one command.
set -f
set -- \
    --exclude='./var/cache/apt/*.bin' \
    --exclude='./var/cache/apt/archives/*.deb' \
    --exclude='./var/lib/apt/lists/*' \
    --exclude='./usr/share/doc/*' \
    --exclude='./usr/share/man/*' \
    --exclude='./usr/share/info/*' \
    --exclude='./usr/share/locale/*' \
    --exclude='./var/log/*' \
    --exclude='./var/cache/debconf/*-old' \
    --exclude='./var/lib/dpkg/*-old'
for pattern in $excludes; do
    set -- "$@" --exclude="$pattern"
done
set +f
tar --numeric-owner --xattrs -C "$root" "$@" -cf "$work/rootfs.tar" .
mv -f "$work/rootfs.tar" "$output"
