#!/bin/sh
# Build one Go program from an upstream module into the cache, through a wrapper module whose
# go.mod may raise dependencies past what upstream pinned (the way distributions ship security
# fixes without forking upstream).
#
# Usage: build-go-module.sh NAME VERSION CACHE_ROOT MODULE PACKAGE [DEP@VERSION ...]
#   e.g. build-go-module.sh kube-router v2.1.0 ~/.cache/invoicing-platform \
#          github.com/cloudnativelabs/kube-router/v2 \
#          github.com/cloudnativelabs/kube-router/v2/cmd/kube-router golang.org/x/net@v0.38.0
# Output: CACHE_ROOT/NAME-VERSION/bin/NAME, and beside it go.mod and go.sum as built.
# Exits 0 at once when the binary is already there.
set -eu
name=$1 version=$2 cache_root=$3 module=$4 package=$5
shift 5
top="$cache_root/$name-$version"
out="$top/bin"
if [ -x "$out/$name" ]; then
  echo "$name $version: cached in $out"
  exit 0
fi
src="$top/src"
rm -rf "$src" "$out.partial"
mkdir -p "$src" "$out.partial"
cd "$src"
# The public checksum database is unreachable offline; the module proxy still serves the
# exact module zips, and go.sum records what was built.
export CGO_ENABLED=0 GOTOOLCHAIN=local GOSUMDB=off GOFLAGS="-mod=mod -buildvcs=false"
start=$(date +%s)
echo "$name $version: building $package from $module@$version${*:+, raising $*}"
printf 'module invoicing-platform/%s-build\n\ngo 1.23.0\n' "$name" > go.mod
go get "$module@$version" "$@" >/dev/null 2>&1 || go get "$module@$version" "$@"
nice -n 10 go build -trimpath -ldflags "-s -w" -o "$out.partial/$name" "$package"
cp go.mod go.sum "$out.partial/"
rm -rf "$out"
mv "$out.partial" "$out"
echo "$name $version: built in $(( $(date +%s) - start )) s into $out"
