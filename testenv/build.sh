#!/usr/bin/env bash
# Build the real control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler)
# from the Go modules pinned in go.mod, into a cache outside the checkout keyed by the pinned
# versions, so a fresh clone on the same machine reuses it. Prints the bin directory.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
k8s="$(awk '$1=="k8s.io/kubernetes"{print $2}' "$here/go.mod")"
etcd="$(awk '$1=="go.etcd.io/etcd/server/v3"{print $2}' "$here/go.mod")"
key="k8s-${k8s}_etcd-${etcd}_$(sha256sum "$here/go.mod" "$here/go.sum" | sha256sum | cut -c1-12)"
bin="${BIGK_TESTENV_CACHE:-$HOME/.cache/bigk-testenv}/$key/bin"
mkdir -p "$bin"
build() {  # build PKG NAME: only when missing
  local pkg="$1" name="$2"
  [[ -x "$bin/$name" ]] && return 0
  if [[ -n "${BIGK_TESTENV_NO_BUILD:-}" ]]; then echo "testenv: $name not built in $bin" >&2; exit 1; fi
  echo "testenv: building $name ($pkg) ..." >&2
  (cd "$here" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$bin/$name.tmp" "$pkg")
  mv "$bin/$name.tmp" "$bin/$name"
}
build go.etcd.io/etcd/server/v3 etcd
build k8s.io/kubernetes/cmd/kube-apiserver kube-apiserver
build k8s.io/kubernetes/cmd/kube-controller-manager kube-controller-manager
build k8s.io/kubernetes/cmd/kube-scheduler kube-scheduler
echo "$bin"
