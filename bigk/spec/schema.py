"""JSON Schema of the spec repo's documents, for editors (yaml-language-server) and CI linters.

One schema covers every kind a spec file may hold: a document with `kind: Queue`
is checked as a queue (`bigk.spec.queues`), `kind: Clusters` / `Cluster` as clusters
(`bigk.spec.clusters`), any other as a SparkJob.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from bigk.spec.clusters import ClusterDoc, ClusterListDoc
from bigk.spec.model import JobSpec
from bigk.spec.queues import QueueDoc

SCHEMA_ID = "https://bigk.io/schemas/sparkjob-v1.json"


def json_schema() -> dict[str, Any]:
    """The schemas pydantic derives from the models, joined on `kind`, with the draft and id editors look for."""
    models: list[tuple[type[BaseModel], Literal["validation"]]] = [
        (JobSpec, "validation"), (QueueDoc, "validation"), (ClusterListDoc, "validation"), (ClusterDoc, "validation")]
    refs, defs = models_json_schema(models)
    job, queue, clusters, cluster = (refs[m] for m in models)

    def kind(name: str) -> dict[str, Any]:
        return {"properties": {"kind": {"const": name}}, "required": ["kind"]}

    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "bigk spec documents (bigk.io/v1): SparkJob, Queue, Clusters or Cluster",
        **defs,
        "if": kind("Queue"),
        "then": queue,
        "else": {"if": kind("Clusters"), "then": clusters, "else": {"if": kind("Cluster"), "then": cluster,
                                                                    "else": job}},
    }
