#!/usr/bin/env bash
# Build the real control plane from the Go modules pinned in go.mod (no binary is downloaded):
# etcd, kube-apiserver and kube-controller-manager by default, or the ones named
# (etcd kube-apiserver kube-controller-manager kube-scheduler). Binaries go to a cache outside the
# checkout keyed by the pinned versions, so a fresh clone on the same machine reuses them; each is
# built only when missing. Prints the bin directory on the last line.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
k8s="$(awk '$1=="k8s.io/kubernetes"{print $2}' "$here/go.mod")"
etcd="$(awk '$1=="go.etcd.io/etcd/server/v3"{print $2}' "$here/go.mod")"
key="k8s-${k8s}_etcd-${etcd}_stamped_$(cat "$here/go.mod" "$here/go.sum" | sha256sum | cut -c1-12)"
bin="${BIGK_TESTENV_CACHE:-$HOME/.cache/bigk-testenv}/$key/bin"
mkdir -p "$bin"
declare -A pkg=(
  [etcd]=go.etcd.io/etcd/server/v3
  [kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver
  [kube-controller-manager]=k8s.io/kubernetes/cmd/kube-controller-manager
  [kube-scheduler]=k8s.io/kubernetes/cmd/kube-scheduler
)
stamp() {  # the version the binaries report, as Kubernetes' own release build writes it
  [[ "$1" == etcd ]] && return 0
  local v="${k8s}" major minor
  major="${v#v}"; major="${major%%.*}"; minor="${v#v*.}"; minor="${minor%%.*}"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    printf -- "-X %s.gitVersion=%s -X %s.gitMajor=%s -X %s.gitMinor=%s -X %s.gitTreeState=clean " \
      "$p" "$v" "$p" "$major" "$p" "$minor" "$p"
  done
}
wanted=("$@")
((${#wanted[@]})) || wanted=(etcd kube-apiserver kube-controller-manager)
for name in "${wanted[@]}"; do
  [[ -n "${pkg[$name]:-}" ]] || { echo "testenv: unknown binary $name" >&2; exit 2; }
  [[ -x "$bin/$name" ]] && continue
  if [[ -n "${BIGK_TESTENV_NO_BUILD:-}" ]]; then echo "testenv: $name not built in $bin" >&2; exit 1; fi
  echo "testenv: building $name (${pkg[$name]}) ..." >&2
  (cd "$here" && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w $(stamp "$name")" -o "$bin/$name.tmp.$$" "${pkg[$name]}")
  mv "$bin/$name.tmp.$$" "$bin/$name"
done
echo "$bin"
