#!/bin/sh
# Build upstream's e2e.test and ginkgo from the k8s.io/kubernetes Go module the cluster runs.
#
# Usage: build-e2e.sh VERSION CACHE_ROOT [GO_SUM]
#   VERSION     e.g. v1.32.5 (staging modules are pinned to v0.32.5)
#   CACHE_ROOT  e.g. ~/.cache/invoicing-platform; output in CACHE_ROOT/e2e-VERSION/bin:
#               e2e.test, ginkgo, agnhost and podsecurity.test (k8s.io/pod-security-admission/test)
#   GO_SUM      pinned go.sum (the cluster's, plus the test-only modules e2e needs)
# Same wrapper-module approach as roles/local_cluster_build/files/build-kubernetes.sh.
# Exits 0 without building when every binary is already in the cache.
set -eu
version=$1
cache_root=$2
go_sum=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
top="$cache_root/e2e-$version"
out="$top/bin"
src="$top/src"
if [ -x "$out/e2e.test" ] && [ -x "$out/ginkgo" ] && [ -x "$out/agnhost" ] \
    && [ -x "$out/podsecurity.test" ]; then
  echo "e2e $version: cached in $out"
  exit 0
fi
staging_version="v0.${version#v1.}"
minor=$(echo "$version" | cut -d. -f2)
mkdir -p "$src"
cd "$src"
{
  echo "module invoicing-platform/e2e-build"
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
# ginkgo at the version k8s.io/kubernetes pins, from the same build list.
printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/onsi/ginkgo/v2/ginkgo"\n' > tools.go
rm -rf podsecurity
cp -r "$here/podsecurity" podsecurity
if [ -n "$go_sum" ] && [ -f "$go_sum" ]; then
  cp "$go_sum" go.sum
fi
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-mod=mod -buildvcs=false" GOSUMDB=off
pkg=k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
start=$(date +%s)
rm -rf "$top/bin.partial"
mkdir -p "$top/bin.partial"
echo "e2e $version: building ginkgo, agnhost, e2e.test and podsecurity.test (a while on a cold cache)"
nice -n 10 go build -trimpath -ldflags "-s -w" -o "$top/bin.partial/ginkgo" github.com/onsi/ginkgo/v2/ginkgo
nice -n 10 go build -trimpath -ldflags "-s -w" -o "$top/bin.partial/agnhost" k8s.io/kubernetes/test/images/agnhost
nice -n 10 go test -c -vet=off -trimpath -ldflags "$ldflags" -o "$top/bin.partial/e2e.test" k8s.io/kubernetes/test/e2e
nice -n 10 go test -c -vet=off -trimpath -ldflags "-s -w" -o "$top/bin.partial/podsecurity.test" ./podsecurity
cp go.mod go.sum "$top/bin.partial/"
rm -rf "$out"
mv "$top/bin.partial" "$out"
end=$(date +%s)
echo "e2e $version: built in $((end - start)) s into $out"
echo "$((end - start))" > "$top/build-seconds"
