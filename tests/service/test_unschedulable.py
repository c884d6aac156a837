"""A waiting run whose job can no longer fit the cluster (its nodes are gone) fails as Unschedulable."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bigk.service import lifecycle
from tests.service.conftest import Running, job_yaml, wait_for


def _waiting_on_cordoned_nodes(tmp_path: Path, serve: Callable[..., Running]) -> tuple[Running, str, list[str]]:
    """A CPU-only run waiting because every node is cordoned (it may run later): the service, the run, the nodes."""
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "cpu.yaml").write_text(job_yaml("cpu", instances=1))
    r = serve(specs)
    svc = r.service
    assert svc.cluster is not None
    nodes = svc.cluster.node_names()
    for node in nodes:
        svc.cordon(node)
    run = svc.run_now("cpu")
    wait_for(lambda: svc.db().get_run(run.id).state == "Submitted", 10, "the run waiting")
    return r, run.id, nodes


def _remove_cpu_nodes(r: Running, nodes: list[str]) -> None:
    """Every node a CPU-only pod could use goes away."""
    assert r.service.cluster is not None
    for node in [n for n in nodes if n.startswith("cpu-")]:
        r.service.cluster.core.delete_node(node)


def test_a_waiting_run_fails_when_its_nodes_are_gone(tmp_path: Path, serve: Callable[..., Running],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lifecycle, "NEVER_FITS_GRACE_S", 0.5)
    r, run_id, nodes = _waiting_on_cordoned_nodes(tmp_path, serve)
    store = r.service.db()
    _remove_cpu_nodes(r, nodes)
    failed = wait_for(lambda: (lambda x: x if x.state == "Failed" else None)(store.get_run(run_id)), 20,
                      "the run to fail as Unschedulable")
    assert failed.reason.startswith("Unschedulable: it can never run on the cluster's")
    assert "no node of the cluster can hold it" in failed.reason


def test_explain_says_a_waiting_run_can_never_run_before_it_fails(tmp_path: Path, serve: Callable[..., Running],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """`bigk explain` reads the fit guard's judgement (the one `bigk run` and cron fires are refused by)."""
    monkeypatch.setattr(lifecycle, "NEVER_FITS_GRACE_S", 600.0)
    r, run_id, nodes = _waiting_on_cordoned_nodes(tmp_path, serve)
    with r.client() as c:
        assert c.get(f"/api/v1/runs/{run_id}/explain").json()["never_fits"] == ""  # cordoned: it may run later
        _remove_cpu_nodes(r, nodes)
        never = wait_for(lambda: c.get(f"/api/v1/runs/{run_id}/explain").json()["never_fits"], 15,
                         "explain to say the run can never run")
    assert never.startswith("it can never run on the cluster's") and f"bigk cancel {run_id}" in never
