"""Warnings for GPU model names that match no GPU of the cluster (`bigk validate`).

A spec names models the way people say them (`A100`, `A100-80GB`, `T4`); nodes
carry GPU feature discovery's product names (`NVIDIA-A100-SXM4-80GB`). Each name
of a `model: A|B` list that matches no node's product is worth a warning that
lists the products the cluster has: the usual cause is a typo or a rule the user
did not expect (a whole-GPU name never matches a MIG slice). When no name
matches at all, the fit check also reports the job as unplaceable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bigk.cluster.gpu_labels import matching_products
from bigk.cluster.model import Node
from bigk.spec.problems import SpecProblem


def unmatched_models(model: str, products: Sequence[str]) -> list[str]:
    """The names of `A|B` that match none of `products`."""
    return [name for name in model.split("|") if name and not matching_products(name, products)]


def model_warnings(jobs: Sequence[Any], nodes: Sequence[Node]) -> list[SpecProblem]:
    """One warning per model name, per role, that no node of `nodes` has (jobs are loader.LoadedJob)."""
    products = sorted({gpu.model for node in nodes for gpu in node.gpus})
    have = ", ".join(products) if products else "none"
    out = []
    for job in jobs:
        for role in ("driver", "executor"):
            gpu = getattr(job.spec.spec, role).gpu
            if gpu is None or not gpu.model:
                continue
            for name in unmatched_models(gpu.model, products):
                where = ("spec", role, "gpu", "model")
                line, col = job.locate(where)
                out.append(SpecProblem(job.file, line, col, ".".join(where),
                                       f"model {name!r} matches no GPU of the cluster (products there: {have}; "
                                       "matching rule: docs/gpus.md)", "warning"))
    return out
