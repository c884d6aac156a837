"""JSON Schema of the spec repo's documents, for editors (yaml-language-server) and CI linters.

One schema covers every kind a spec file may hold: a document with `kind: Queue`
is checked as a queue (`bigk.spec.queues`), any other as a SparkJob.
"""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from bigk.spec.model import JobSpec
from bigk.spec.queues import QueueDoc

SCHEMA_ID = "https://bigk.io/schemas/sparkjob-v1.json"


def json_schema() -> dict[str, Any]:
    """The schemas pydantic derives from the models, joined on `kind`, with the draft and id editors look for."""
    refs, defs = models_json_schema([(JobSpec, "validation"), (QueueDoc, "validation")])
    job, queue = refs[(JobSpec, "validation")], refs[(QueueDoc, "validation")]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "bigk spec documents (bigk.io/v1): SparkJob or Queue",
        **defs,
        "if": {"properties": {"kind": {"const": "Queue"}}, "required": ["kind"]},
        "then": queue,
        "else": job,
    }
