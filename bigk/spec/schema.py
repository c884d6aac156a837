"""JSON Schema of the job spec format, for editors (yaml-language-server) and CI linters."""

from __future__ import annotations

from typing import Any

from bigk.spec.model import JobSpec

SCHEMA_ID = "https://bigk.io/schemas/sparkjob-v1.json"


def json_schema() -> dict[str, Any]:
    """The schema pydantic derives from the model, with the draft and id editors look for."""
    schema = JobSpec.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "bigk SparkJob (bigk.io/v1)",
        **{k: v for k, v in schema.items() if k != "title"},
    }
