"""`gpuByModel` in a queue's guarantee and max: parsing, FILE:LINE:COL problems, the tree's checks, the schema."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from bigk.spec.loader import load_specs
from bigk.spec.queues import queue_json_schema

from .test_queues import _queue, _write


def test_gpu_models_reach_the_core_in_milli_gpu(tmp_path: Path) -> None:
    tree = "---\n".join([_queue("ml", "guarantee: {gpu: 8, gpuByModel: {A100: 4}}\n"
                                      "max: {gpu: 12, gpuByModel: {A100: 6, H100-80GB: 0.5}}\n"),
                         _queue("ml.training", "guarantee: {gpu: 4, gpuByModel: {A100: 3}}\n")])
    r = load_specs([_write(tmp_path, queues=tree)])
    assert [str(p) for p in r.problems] == []
    core = r.queues.to_core()
    assert core["ml"].guaranteed_models == {"A100": 4000}
    assert core["ml"].maximum_models == {"A100": 6000, "H100-80GB": 500}
    assert core["ml"].guaranteed == {"gpu": 8000} and core["ml.training"].guaranteed_models == {"A100": 3000}


@pytest.mark.parametrize(("body", "where", "message"), [
    ("max:\n  gpuByModel:\n    A100: -1\n", ":8:13: spec.max.gpuByModel.A100", "must not be negative"),
    ("max:\n  gpuByModel:\n    \"A100|H100\": 2\n", ":8:7: spec.max.gpuByModel.A100|H100", "is not a GPU model name"),
    ("max:\n  gpuByModel:\n    A100: 1.0005\n", ":8:13: spec.max.gpuByModel.A100", "thousandths"),
    ("max:\n  gpuByModel: {A100: 2, a100: 3}\n", ":7:17: spec.max.gpuByModel", "given twice"),
    ("max:\n  gpuByModel: 4\n", ":7:17: spec.max.gpuByModel", "dictionary"),
    ("guarantee: {gpuByModel: {A100: 4}}\nmax: {gpuByModel: {A100: 2}}\n", ":6:3: spec",
     "guarantee.gpuByModel.A100 is above max.gpuByModel.A100"),
    ("guarantee: {gpu: 2, gpuByModel: {A100: 4}}\n", ":6:3: spec",
     "guarantee.gpuByModel.A100 is above guarantee.gpu"),
])
def test_bad_gpu_models_name_file_line_column_and_field(tmp_path: Path, body: str, where: str, message: str) -> None:
    specs = _write(tmp_path, queues=_queue("ml", body))
    r = load_specs([specs])
    assert len(r.problems) == 1, [str(p) for p in r.problems]
    text = str(r.problems[0])
    assert text.startswith(f"{specs / 'queues.yaml'}{where}:") and message in text, text
    assert not r.queues


def test_childrens_model_guarantees_must_fit_in_the_parents(tmp_path: Path) -> None:
    tree = "---\n".join([_queue("ml", "guarantee: {gpu: 8, gpuByModel: {A100: 4}}\n"),
                         _queue("ml.a", "guarantee: {gpu: 4, gpuByModel: {A100: 3}}\n"),
                         _queue("ml.b", "guarantee: {gpu: 4, gpuByModel: {A100: 2, T4: 1}}\n")])
    r = load_specs([_write(tmp_path, queues=tree)])
    [p] = r.problems
    assert p.field == "spec.guarantee.gpuByModel.A100" and "add up to more than ml itself is guaranteed" in p.message
    assert "(5 GPUs > 4 GPUs)" in p.message and p.line == 13  # at ml.a's A100 guarantee (the larger one)
    ok = tree.replace("A100: 3", "A100: 2")  # T4 fits in ml's 8 GPUs as ml names no T4 guarantee
    assert load_specs([_write(tmp_path, queues=ok)]).problems == []


def test_the_schema_knows_gpu_models() -> None:
    schema = queue_json_schema()
    doc = yaml.safe_load(_queue("ml", "max: {gpuByModel: {A100: 4}}\n"))
    jsonschema.validate(doc, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(yaml.safe_load(_queue("ml", "max: {gpuByModel: {A100: -4}}\n")), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(yaml.safe_load(_queue("ml", "max: {gpusByModel: {A100: 4}}\n")), schema)


def test_a_model_name_no_gpu_of_the_cluster_matches_is_a_warning(tmp_path: Path) -> None:
    from bigk.cluster.model import Gpu, Node

    nodes = [Node("a", 64000, 512000, gpus=[Gpu(0, "NVIDIA-A100-SXM4-80GB", 81920)])]
    specs = _write(tmp_path, queues=_queue("ml", "max: {gpuByModel: {A100: 4, H1OO: 2}}\n"))
    r = load_specs([specs], cluster=nodes)
    assert r.problems == [] and r.queues.to_core()["ml"].maximum_models == {"A100": 4000, "H1OO": 2000}
    [w] = r.warnings
    assert w.field == "spec.max.gpuByModel.H1OO" and w.line == 6
    assert "model 'H1OO' matches no GPU of the cluster (products there: NVIDIA-A100-SXM4-80GB" in w.message
