#!/usr/bin/env bash
# Builds the test ground's binaries (Kubernetes, etcd, helm, SeaweedFS) from Go modules into a
# cache.
#
# Usage: tests/cluster/build.sh [DEST_BIN_DIR]
#
# Each binary set is cached under ~/.cache/cijob-testground/<name>-<version>-<go.sum hash>/,
# so a warm machine never rebuilds; DEST_BIN_DIR (default .cluster/bin) gets symlinks.
# Set KUBELET=1 to also build kubelet and kube-scheduler (for a real node).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
dest=${1:-$top/.cluster/bin}
cache_root=${CIJOB_TESTGROUND_CACHE:-$HOME/.cache/cijob-testground}
export GOFLAGS=${GOFLAGS:--buildvcs=false}
export GOMODCACHE=${GOMODCACHE:-$HOME/.cache/go-mod}
export GOCACHE=${GOCACHE:-$HOME/.cache/go-build}

# The one Kubernetes release the test ground runs; tests/cluster/k8s/go.mod pins the same.
K8S_VERSION=v1.34.4
ETCD_VERSION=v3.6.4
HELM_VERSION=v3.19.0
# SeaweedFS's S3 gateway is the test ground's object store (the log archive's S3 tests); the
# module proxy serves this pseudo-version of github.com/seaweedfs/seaweedfs (no tags there).
SEAWEEDFS_VERSION=v0.0.0-20261109003541-7506e5f91cd6

command -v go >/dev/null || { echo "build.sh: no 'go' on PATH; install Go >= 1.24" >&2; exit 1; }
mkdir -p "$dest" "$cache_root"

key() { # name version module-dir -> cache dir
  local sum
  sum=$( (cat "$3/go.mod" "$3/go.sum"; go env GOVERSION) | sha256sum | cut -c1-12)
  echo "$cache_root/$1-$2-$sum"
}

# Runs a long command with a heartbeat line every 30 s, so a cold build shows progress.
with_progress() {
  local label=$1; shift
  local start=$SECONDS
  "$@" &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -0 "$pid" 2>/dev/null && echo "  ... still building $label ($((SECONDS - start)) s)"
  done
  wait "$pid"
}

build() { # name version module-dir ldflags packages...
  local name=$1 version=$2 dir=$3 ldflags=$4; shift 4
  local out
  out=$(key "$name" "$version" "$dir")
  local want=()
  for pkg in "$@"; do
    [ -x "$out/bin/$(basename "$pkg")" ] || want+=("$pkg")
  done
  if [ ${#want[@]} -gt 0 ]; then
    echo "building $name $version: ${want[*]##*/} (cold on 2 cores: ~6 min for Kubernetes, ~7 min in all)"
    local start=$SECONDS
    mkdir -p "$out/bin.tmp"
    (cd "$dir" && with_progress "$name" go build -trimpath -ldflags "$ldflags" -o "$out/bin.tmp/" "${want[@]}")
    mkdir -p "$out/bin"
    mv "$out"/bin.tmp/* "$out/bin/" && rmdir "$out/bin.tmp"
    echo "built $name in $((SECONDS - start)) s -> $out/bin"
  fi
  for pkg in "$@"; do
    ln -sfn "$out/bin/$(basename "$pkg")" "$dest/$(basename "$pkg")"
  done
}

minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
k8s_ld="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
done
k8s_pkgs=(k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubectl)
if [ "${KUBELET:-0}" = 1 ]; then
  k8s_pkgs+=(k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-scheduler)
fi
build kubernetes "$K8S_VERSION" "$here/k8s" "$k8s_ld" "${k8s_pkgs[@]}"

build etcd "$ETCD_VERSION" "$here/etcd" "-s -w" cijob.dev/testground/etcd

helm_ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  helm_ld+=" -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$minor"
done
build helm "$HELM_VERSION" "$here/helm" "$helm_ld" helm.sh/helm/v3/cmd/helm

build seaweedfs "$SEAWEEDFS_VERSION" "$here/seaweedfs" "-s -w" github.com/seaweedfs/seaweedfs/weed

echo "test ground binaries ready in $dest: $(ls "$dest" | tr '\n' ' ')"
