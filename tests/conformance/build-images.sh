#!/bin/bash
# Build the images the selected upstream e2e tests need, locally, and push them to the local
# registry under the names tests/conformance/repo-list.yaml gives the e2e framework.
#
# Usage: build-images.sh E2E_BIN_DIR REGISTRY
#   agnhost 2.53 (test/utils/image/manifest.go of v1.32.5): the agnhost binary built from
#     k8s.io/kubernetes/test/images/agnhost at /agnhost, FROM scratch; plus Debian's
#     busybox-static (sh, wget...) and Debian's dig, getent, curl and netcat-openbsd's nc with
#     the shared libraries they load, because upstream's image carries a shell, nc, curl, dig
#     and getent (the Services and DNS tests exec them).
#   jessie-dnsutils 1.7: the same tools (the DNS tests' second querier).
#   busybox 1.36.1-1: Debian's busybox-static.
#   pause 3.10: the pause binary the cluster's sandbox image is made of (upstream's pause.c).
# Each image is content-addressed: a second tag TAG-<hash of its build context> marks what was
# pushed; when it is there the image is skipped. A new build also drops the old copy from the
# node's containerd (the e2e pods pull IfNotPresent, so the node would keep the old one).
set -euo pipefail
bin=$1
registry=$2
pause_bin=${PAUSE_BIN:-$HOME/.cache/invoicing-platform/pause-v1.32.5/bin/pause}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

have() { # repo tag: already pushed?
  curl -fsS "http://$registry/v2/$1/tags/list" 2>/dev/null | grep -q "\"$2\""
}
for tool in dig getent curl nc.openbsd busybox; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install bind9-dnsutils curl netcat-openbsd busybox-static)" >&2; exit 1; }
done

# A root with busybox's applets in /bin and dig/getent with every library ldd names.
add_tools() {
  local root=$1
  mkdir -p "$root/bin" "$root/usr/bin" "$root/etc" "$root/tmp" "$root/results"
  cp /bin/busybox "$root/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
  for exe in "$(command -v dig)" "$(command -v getent)" "$(command -v curl)" /usr/bin/nc.openbsd; do
    cp "$exe" "$root/usr/bin/"
    for lib in $(ldd "$exe" | grep -o '/[^ ]*'); do
      mkdir -p "$root$(dirname "$lib")"
      cp -L "$lib" "$root$lib"
    done
  done
  # The tests run `nc -v -t -w 2 HOST PORT`: busybox's nc has no -v or -t, OpenBSD's (Alpine's
  # netcat-openbsd in upstream's image) has. /usr/bin comes before /bin on PATH; the shell is
  # Debian's dash, because Debian's static busybox sh runs its own applets before PATH.
  ln -sf nc.openbsd "$root/usr/bin/nc"
  cp /bin/dash "$root/bin/dash"
  ln -sf dash "$root/bin/sh"
  # getent hosts: glibc's files and dns NSS modules.
  for lib in /lib/x86_64-linux-gnu/libnss_files.so.2 /lib/x86_64-linux-gnu/libnss_dns.so.2; do
    [ -e "$lib" ] && cp -L "$lib" "$root$lib"
  done
  printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
}

path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
containerd_socket=${CONTAINERD_SOCKET:-/run/invoicing-platform/containerd/containerd.sock}
build() { # name tag context-dir
  local name=$1 tag=$2 ctx=$3 hash
  hash=$(cd "$ctx" && { find . -type l -printf '%p -> %l\n'; find . -type f -exec sha256sum {} +; } \
    | sort | sha256sum | cut -c1-12)
  if have "$name" "$tag-$hash"; then
    echo "image $registry/$name:$tag: in the registry ($tag-$hash)"
    return
  fi
  docker build -q -t "$registry/$name:$tag" -t "$registry/$name:$tag-$hash" "$ctx" >/dev/null
  docker push -q "$registry/$name:$tag" >/dev/null
  docker push -q "$registry/$name:$tag-$hash" >/dev/null
  if [ -S "$containerd_socket" ]; then
    ctr -a "$containerd_socket" -n k8s.io images rm "$registry/$name:$tag" >/dev/null 2>&1 || true
  fi
  echo "image $registry/$name:$tag: built and pushed ($tag-$hash)"
}

# agnhost
mkdir -p "$work/agnhost/root"
add_tools "$work/agnhost/root"
cp "$bin/agnhost" "$work/agnhost/root/agnhost"
printf 'FROM scratch\nCOPY root/ /\nENV PATH=%s\nENTRYPOINT ["/agnhost"]\nCMD ["pause"]\n' "$path" > "$work/agnhost/Dockerfile"
build e2e-test-images/agnhost 2.53 "$work/agnhost"

# jessie-dnsutils
mkdir -p "$work/jessie/root"
add_tools "$work/jessie/root"
printf 'FROM scratch\nCOPY root/ /\nENV PATH=%s\nCMD ["/bin/sh"]\n' "$path" > "$work/jessie/Dockerfile"
build e2e-test-images/jessie-dnsutils 1.7 "$work/jessie"

# busybox
mkdir -p "$work/busybox/root/bin" "$work/busybox/root/tmp" "$work/busybox/root/etc"
cp /bin/busybox "$work/busybox/root/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$work/busybox/root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$work/busybox/root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$work/busybox/root/etc/group"
printf 'FROM scratch\nCOPY root/ /\nCMD ["/bin/sh"]\n' > "$work/busybox/Dockerfile"
build e2e-test-images/busybox 1.36.1-1 "$work/busybox"

# pause
mkdir -p "$work/pause"
cp "$pause_bin" "$work/pause/pause"
printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' > "$work/pause/Dockerfile"
build k8s/pause 3.10 "$work/pause"
