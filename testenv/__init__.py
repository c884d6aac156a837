"""The real Kubernetes control plane for bigk's tests (etcd, kube-apiserver, kube-controller-manager)."""
