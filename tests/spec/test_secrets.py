"""Secret-looking settings: validate warns where they are written; reads show *** instead of the value."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bigk.spec.loader import load_specs
from bigk.spec.secrets import REDACTED, looks_secret, redact_spec

EXTRA = """sparkConf:
  spark.hadoop.fs.s3a.secret.key: AKIAsecretvalue
  spark.sql.shuffle.partitions: 8
  spark.kubernetes.driver.secretKeyRef.DB_PASSWORD: db:password
driver:
  env:
    DB_PASSWORD: hunter2
    HOME: /home/spark
    GOOGLE_APPLICATION_CREDENTIALS: /var/secrets/key.json
executor:
  env:
    - name: API_TOKEN
      value: abc123
arguments: [--password, hunter2, --rows, "10"]
"""


def test_names_that_look_secret() -> None:
    for name in ("fs.s3a.secret.key", "DB_PASSWORD", "spark.authenticate.secret", "fs.s3a.access.key", "API_TOKEN",
                 "spark.ssl.keyStorePassword", "api_key"):
        assert looks_secret(name), name
    for name in ("HOME", "PWD", "spark.sql.shuffle.partitions", "spark.kubernetes.driver.secretKeyRef.X",
                 "spark.kubernetes.authenticate.submission.oauthTokenFile", "spark.io.encryption.keySizeBits"):
        assert not looks_secret(name), name


def test_validate_warns_at_each_literal_secret(write: Callable[..., Path]) -> None:
    path = write("leaky", EXTRA)
    result = load_specs([path])
    assert result.jobs and not result.problems  # a warning, not a refusal
    warned = {(w.line, w.field) for w in result.warnings if "looks like a secret" in w.message}
    assert warned == {(9, "spec.sparkConf.spark.hadoop.fs.s3a.secret.key"), (14, "spec.driver.env.DB_PASSWORD"),
                      (20, "spec.executor.env[0].value")}
    assert all("valueFrom" in w.message for w in result.warnings if "looks like a secret" in w.message)


def test_reads_redact_the_values(write: Callable[..., Path]) -> None:
    spec = load_specs([write("leaky", EXTRA)]).jobs["leaky"].spec
    shown = redact_spec(spec.model_dump(mode="json", exclude_none=True))
    text = repr(shown)
    assert "AKIAsecretvalue" not in text and "hunter2" not in text and "abc123" not in text
    assert shown["spec"]["sparkConf"]["spark.hadoop.fs.s3a.secret.key"] == REDACTED
    assert shown["spec"]["sparkConf"]["spark.sql.shuffle.partitions"] == "8"
    assert shown["spec"]["arguments"] == ["--password", REDACTED, "--rows", "10"]
    assert spec.spec.sparkConf["spark.hadoop.fs.s3a.secret.key"] == "AKIAsecretvalue"  # what runs is untouched
