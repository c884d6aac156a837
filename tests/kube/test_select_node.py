"""VolumeBinding's PreBind in bigk: claims name the node before the pod is bound, and a refused write stops the bind."""

from __future__ import annotations

import random
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from bigk.cluster.labels import SELECTED_NODE_ANNOTATION
from bigk.kube.binder import Binder, BindStatus
from bigk.kube.retry import Backoff


class ClaimsApi:
    """Records claim patches; fails with `status` for the claims in `refuse`."""

    def __init__(self, refuse: dict[str, int] | None = None) -> None:
        self.refuse = dict(refuse or {})
        self.patches: list[tuple[str, str, Any]] = []

    def patch_namespaced_persistent_volume_claim(self, name: str, namespace: str, body: Any, **_: Any) -> None:
        if name in self.refuse:
            raise ApiException(status=self.refuse[name], reason="Forbidden")
        self.patches.append((namespace, name, body))


def _binder(api: ClaimsApi) -> Binder:
    return Binder(client.ApiClient(), backoff=Backoff(sleep=lambda _: None, rng=random.Random(1)), core=api)


def test_every_claim_gets_the_selected_node() -> None:
    api = ClaimsApi()
    assert _binder(api).select_node("ns", ("a-pvc-0", "a-pvc-1"), "node-7") is None
    assert [(ns, name) for ns, name, _ in api.patches] == [("ns", "a-pvc-0"), ("ns", "a-pvc-1")]
    assert all(body == {"metadata": {"annotations": {SELECTED_NODE_ANNOTATION: "node-7"}}}
               for _, _, body in api.patches)


def test_a_refused_claim_write_is_a_failed_bind_that_names_the_claim() -> None:
    api = ClaimsApi(refuse={"a-pvc-1": 403})
    out = _binder(api).select_node("ns", ("a-pvc-0", "a-pvc-1", "a-pvc-2"), "node-7")
    assert out is not None and out.status is BindStatus.FAILED
    assert "a-pvc-1" in out.message and "403" in out.message
    assert [name for _, name, _ in api.patches] == ["a-pvc-0"]  # stops at the first refusal
