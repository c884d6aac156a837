"""Loading trace CSVs: good files load, bad rows are rejected with file, line and column."""

from __future__ import annotations

from pathlib import Path

import pytest

from bigk.sim.trace import TraceError, load_nodes, load_pods
from tests.sim.conftest import write_nodes, write_pods


def test_loads_nodes_and_pods_in_the_alibaba_format(small_trace: tuple[Path, Path]) -> None:
    nodes_csv, pods_csv = small_trace
    nodes = load_nodes(nodes_csv)
    assert len(nodes) == 26 and sum(len(n.gpus) for n in nodes) == 12 * 8 + 12 * 2
    assert len(load_nodes(nodes_csv, gpu_only=True)) == 24
    assert nodes[0].gpus[0].model == "G2" and nodes[12].gpus[0].memory_mib == 15_360
    pods = load_pods(pods_csv)
    assert len(pods) == 300 and pods[1].created == 100.0 and pods[1].deleted is not None


def test_time_and_spec_columns_are_optional(tmp_path: Path) -> None:
    pods = load_pods(write_pods(tmp_path / "p.csv", n=5, times=False))
    assert all(p.created is None and p.deleted is None for p in pods)
    path = tmp_path / "minimal.csv"
    path.write_text("name,cpu_milli,memory_mib,num_gpu,gpu_milli\na,1000,10,1,500\n")
    (pod,) = load_pods(path)
    assert pod.request.is_fractional and pod.request.gpu_models == frozenset()


def test_gpu_spec_becomes_a_model_constraint(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec\na,1000,10,1,1000,V100M16|V100M32\n")
    assert load_pods(path)[0].request.gpu_models == frozenset({"V100M16", "V100M32"})


@pytest.mark.parametrize(("body", "message"), [
    ("a,1000,10,1,abc\n", "p.csv:2: column gpu_milli: 'abc' is not an integer"),
    ("a,1000,10,1,500\nb,-5,10,0,0\n", "p.csv:3: column cpu_milli: '-5' is not an integer >= 0"),
    ("a,1000,10,0,300\n", "p.csv:2: column gpu_milli: a pod without GPUs"),
    ("a,1000,10,2,500\n", "p.csv:2: column gpu_milli: only single-GPU pods may share a GPU"),
    ("a,1000,10,1,1200\n", "p.csv:2: column gpu_milli: '1200' is not an integer >= 0 and <= 1000"),
])
def test_bad_pod_rows_name_file_line_and_column(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "p.csv"
    path.write_text("name,cpu_milli,memory_mib,num_gpu,gpu_milli\n" + body)
    with pytest.raises(TraceError) as err:
        load_pods(path)
    assert message in str(err.value)


def test_bad_node_files(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    path.write_text("sn,cpu_milli,memory_mib,gpu,model\nx,1000,10,2,\n")
    with pytest.raises(TraceError, match=r"n.csv:2: column model: a node with GPUs needs a GPU model"):
        load_nodes(path)
    path.write_text("sn,cpu_milli,gpu\nx,1000,2\n")
    with pytest.raises(TraceError, match=r"n.csv:1: missing column\(s\) memory_mib"):
        load_nodes(path)
    path.write_text("sn,cpu_milli,memory_mib,gpu,model\nx,1000,10,0,\nx,1000,10,0,\n")
    with pytest.raises(TraceError, match=r"n.csv:3: column sn: duplicate node name"):
        load_nodes(path)
    with pytest.raises(TraceError, match="no such file"):
        load_nodes(tmp_path / "missing.csv")
    assert write_nodes(tmp_path / "ok.csv").exists()
