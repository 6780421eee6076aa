#!/bin/sh
# Build the Kubernetes binaries from the upstream k8s.io/kubernetes Go module.
#
# Usage: build-kubernetes.sh VERSION CACHE_ROOT [GO_SUM]
#   VERSION     e.g. v1.32.13 (staging modules are pinned to v0.32.13)
#   CACHE_ROOT  e.g. ~/.cache/invoicing-platform; output goes to
#               CACHE_ROOT/kubernetes-VERSION/bin
#   GO_SUM      optional pinned go.sum to verify every module against
#               (lets the build run where the checksum database is unreachable)
#
# One `go build` builds every binary so they share one compile.
# Exits 0 without building when every binary is already in the cache.
set -eu

version=$1
cache_root=$2
go_sum=${3:-}
binaries="kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl"

top="$cache_root/kubernetes-$version"
out="$top/bin"
src="$top/src"

missing=""
for b in $binaries; do
  [ -x "$out/$b" ] || missing="$missing $b"
done
if [ -z "$missing" ]; then
  echo "kubernetes $version: cached in $out"
  exit 0
fi

staging_version="v0.${version#v1.}"
minor=$(echo "$version" | cut -d. -f2)
mkdir -p "$src"
cd "$src"

{
  echo "module invoicing-platform/kubernetes-build"
  echo
  echo "go 1.23.0"
  echo
  echo "godebug default=go1.23"
  echo
  echo "require k8s.io/kubernetes $version"
  echo
  echo "replace ("
  for m in api apiextensions-apiserver apimachinery apiserver cli-runtime client-go \
      cloud-provider cluster-bootstrap code-generator component-base component-helpers \
      controller-manager cri-api cri-client csi-translation-lib dynamic-resource-allocation \
      endpointslice externaljwt kms kube-aggregator kube-controller-manager kube-proxy \
      kube-scheduler kubectl kubelet metrics mount-utils pod-security-admission \
      sample-apiserver sample-cli-plugin sample-controller; do
    echo "	k8s.io/$m => k8s.io/$m $staging_version"
  done
  echo ")"
} > go.mod
# The wrapper imports nothing itself; `go build` of the cmd packages does the rest.
if [ -n "$go_sum" ] && [ -f "$go_sum" ]; then
  cp "$go_sum" go.sum
fi

export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-mod=mod -buildvcs=false"
# With a pinned go.sum every module is verified against it; the public
# checksum database is not reachable from offline machines.
export GOSUMDB=off

pkg=k8s.io/component-base/version
cpkg=k8s.io/client-go/pkg/version
date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ldflags="-s -w"
for p in $pkg $cpkg; do
  ldflags="$ldflags -X $p.gitVersion=$version -X $p.gitMajor=1 -X $p.gitMinor=$minor"
  ldflags="$ldflags -X $p.gitTreeState=clean -X $p.buildDate=$date"
done

pkgs=""
for b in $binaries; do
  pkgs="$pkgs k8s.io/kubernetes/cmd/$b"
done

start=$(date +%s)
echo "kubernetes $version: building$missing (this takes a while on a cold cache)"
rm -rf "$top/bin.partial"
mkdir -p "$top/bin.partial"
# shellcheck disable=SC2086
nice -n 10 go build -trimpath -ldflags "$ldflags" -o "$top/bin.partial/" $pkgs
rm -rf "$out"
mv "$top/bin.partial" "$out"
end=$(date +%s)
echo "kubernetes $version: built in $((end - start)) s into $out"
# Kept beside the binaries, so the benchmarks can report the cold build later.
echo "$((end - start))" > "$top/build-seconds"
