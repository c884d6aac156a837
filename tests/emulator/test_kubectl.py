"""kubectl against the emulated cluster: discovery, tables, JSON output, cordon, delete."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from bigk.emulator import EmulatedCluster
from bigk.emulator.api import PODS
from bigk.emulator.resources import by_key
from tests.emulator.conftest import pod_body, stored

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")


def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True,
                          timeout=60, check=False)


def test_kubectl_reads_nodes_and_pods(bare: EmulatedCluster, tmp_path: Path) -> None:
    config = bare.write_kubeconfig(tmp_path / "kubeconfig")
    bare.api.create(PODS, "default", pod_body("web", node="cpu-0"))
    out = kubectl(config, "get", "nodes", "-o", "json")
    assert out.returncode == 0, out.stderr
    nodes = json.loads(out.stdout)["items"]
    assert sorted(n["metadata"]["name"] for n in nodes) == ["cpu-0", "cpu-1", "gpu-0"]
    table = kubectl(config, "get", "nodes,pods")
    assert table.returncode == 0, table.stderr
    assert "node/gpu-0" in table.stdout and "Ready" in table.stdout
    assert "pod/web" in table.stdout


def test_kubectl_cordons_and_deletes(bare: EmulatedCluster, tmp_path: Path) -> None:
    config = bare.write_kubeconfig(tmp_path / "kubeconfig")
    assert kubectl(config, "cordon", "cpu-1").returncode == 0
    assert stored(bare, "nodes", "cpu-1")["spec"]["unschedulable"] is True
    assert "SchedulingDisabled" in kubectl(config, "get", "node", "cpu-1").stdout
    bare.api.create(PODS, "default", pod_body("tmp"))
    out = kubectl(config, "delete", "pod", "tmp")
    assert out.returncode == 0, out.stderr
    assert bare.pod("tmp") is None


def test_kubectl_watch_prints_pod_columns(sim_kubeconfig: tuple[EmulatedCluster, Path]) -> None:
    cluster, config = sim_kubeconfig
    cluster.api.create(PODS, "default", pod_body("w", annotations={"bigk.io/expected-duration-seconds": "1000"}))
    proc = subprocess.Popen(["kubectl", "--kubeconfig", str(config), "get", "pods", "-w", "--request-timeout=4s"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().split()[:3] == ["NAME", "READY", "STATUS"]
    assert proc.stdout.readline().split()[:3] == ["w", "0/1", "Pending"]
    cluster.api.bind("default", "w", {"target": {"name": "cpu-0"}})
    rest, _ = proc.communicate(timeout=30)
    assert any(line.split()[:3] == ["w", "1/1", "Running"] for line in rest.splitlines())


@pytest.fixture
def sim_kubeconfig(sim: EmulatedCluster, tmp_path: Path) -> tuple[EmulatedCluster, Path]:
    return sim, sim.write_kubeconfig(tmp_path / "kubeconfig")


def test_kubectl_apply_creates_then_updates(bare: EmulatedCluster, tmp_path: Path) -> None:
    config = bare.write_kubeconfig(tmp_path / "kubeconfig")
    manifest = tmp_path / "pod.yaml"
    manifest.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: applied, labels: {v: '1'}}\n"
                        "spec: {schedulerName: bigk, containers: [{name: c, image: busybox}]}\n")
    first = kubectl(config, "apply", "-f", str(manifest))
    assert first.returncode == 0, first.stderr
    manifest.write_text(manifest.read_text().replace("v: '1'", "v: '2'"))
    for extra in ([], ["--server-side"]):
        out = kubectl(config, "apply", *extra, "-f", str(manifest))
        assert out.returncode == 0, out.stderr
    assert stored(bare, "pods", "applied", "default")["metadata"]["labels"] == {"v": "2"}


def test_kubectl_get_events_shows_why(bare: EmulatedCluster, tmp_path: Path) -> None:
    config = bare.write_kubeconfig(tmp_path / "kubeconfig")
    bare.api.create(by_key("events"), "default", {
        "metadata": {"name": "p.1"}, "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
        "reason": "FailedScheduling", "message": "gang needs 5 GPUs, 3 free", "type": "Warning"})
    out = kubectl(config, "get", "events")
    assert out.returncode == 0, out.stderr
    header, row = out.stdout.splitlines()[:2]
    assert header.split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert row.split()[1:] == ["Warning", "FailedScheduling", "pod/p", "gang", "needs", "5", "GPUs,", "3", "free"]
