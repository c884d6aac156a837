"""Malformed API requests generated from the OpenAPI document (schemathesis) never get a 5xx."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode

from tests.service.conftest import Running, job_yaml

MAX_EXAMPLES = 6  # per operation: bounded so the default suite stays fast


def test_no_request_from_the_openapi_document_gets_a_server_error(
        tmp_path: Path, serve: Callable[..., Running]) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "a.yaml").write_text(job_yaml("a", cron="0 3 * * *", duration=2000))
    svc = serve(specs)
    schema = schemathesis.openapi.from_url(f"{svc.url}/openapi.json")
    failures: list[str] = []
    statuses: list[int] = []
    operations = 0
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        operations += 1
        if "drain" in operation.path or "cordon" in operation.path:
            continue  # covered by the CLI tests; fuzzing them would cordon the whole cluster
        if operation.path.endswith("/watch"):
            continue  # an event stream never ends; tests/service/test_watch.py covers it

        strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(GenerationMode.NEGATIVE)

        @given(case=strategy)
        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            for headers in ({"Authorization": f"Bearer {svc.token}"}, {}):
                response = case.call(base_url=svc.url, headers=headers)
                statuses.append(response.status_code)
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: "
                                    f"{response.text[:200]}")

        check()
    assert operations >= 20
    assert len(statuses) >= 2 * (operations - 5)  # every operation was exercised, with and without a token
    assert {401, 404, 422} <= set(statuses)  # refusals happened: the fuzzer reached the guarded paths
    assert failures == []
