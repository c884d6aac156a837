"""The spec policy: a spec repo cannot take over the cluster, and every refusal points at its line.

Each file of the hostile corpus (tests/spec/data/hostile/) marks the lines that must be refused
with `# refused: FIELD` and the ones bigk overrides with `# warning: FIELD`; the tests compare
what `bigk validate` reports with those marks, line and field, nothing more and nothing less.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bigk.cli.main import app
from bigk.spark.submit import build_submission
from bigk.spec.loader import load_specs
from bigk.spec.policy import PolicyError, SpecPolicy, check_template, load_policy

HOSTILE = Path(__file__).parent / "data" / "hostile"
JOBSPECS = Path(__file__).parents[2] / "jobspecs"
_MARK = re.compile(r"#\s*(refused|warning):\s*(\S+)\s*$")
CORPUS = sorted(p for p in HOSTILE.glob("*.yaml"))


def marks(path: Path) -> set[tuple[int, str, str]]:
    """(line, field, 'error'|'warning') for every marked line of a corpus file."""
    out = set()
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        match = _MARK.search(text)
        if match:
            out.add((number, match.group(2), "error" if match.group(1) == "refused" else "warning"))
    return out


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_hostile_spec_is_refused_at_the_marked_lines(path: Path) -> None:
    result = load_specs([path])
    found = {(p.line, p.field, p.severity) for p in [*result.problems, *result.warnings]}
    assert found == marks(path)
    errors = any(m[2] == "error" for m in marks(path))
    assert (path in result.failed_files) == errors
    assert (not result.jobs) == errors


def test_the_corpus_covers_every_attack_the_issue_names() -> None:
    fields = " ".join(f for p in CORPUS for _, f, _ in marks(p))
    for needle in ("privileged", "capabilities.add", "hostNetwork", "hostPID", "hostIPC", "hostPath",
                   "hostPort", "runAsUser", "seccompProfile", "apparmor", "metadata.namespace", "nodeName",
                   "resources", "schedulerName"):
        assert needle in fields, needle


def test_validate_prints_file_line_col_and_exits_1() -> None:
    res = CliRunner().invoke(app, ["validate", "-q", str(HOSTILE / "everything.yaml")])
    assert res.exit_code == 1
    lines = res.output.splitlines()
    assert f"{HOSTILE / 'everything.yaml'}:6:3: metadata.namespace: namespace 'kube-system' (a system namespace) " \
           "is not allowed" in lines[0]
    assert all(re.match(rf"{re.escape(str(HOSTILE))}/everything.yaml:\d+:\d+: \S+: ", line) for line in lines)


def test_a_new_file_that_sorts_first_cannot_take_a_job_over(tmp_path: Path) -> None:
    for name in ("gpu-scoring.yaml", "nightly-etl.yaml"):
        shutil.copy(JOBSPECS / name, tmp_path / name)
    shutil.copy(HOSTILE / "takeover" / "aa-collide.yaml", tmp_path / "aa-collide.yaml")
    result = load_specs([tmp_path])
    assert "gpu-scoring" not in result.jobs and "nightly-etl" in result.jobs
    by_file = {p.file.name: str(p) for p in result.problems}
    assert set(by_file) == {"aa-collide.yaml", "gpu-scoring.yaml"}
    assert f"also defined in {tmp_path / 'gpu-scoring.yaml'}:5" in by_file["aa-collide.yaml"]
    assert f"also defined in {tmp_path / 'aa-collide.yaml'}:5" in by_file["gpu-scoring.yaml"]
    assert by_file["gpu-scoring.yaml"].startswith(f"{tmp_path / 'gpu-scoring.yaml'}:5:9: metadata.name: ")


def test_a_name_served_from_a_broken_file_belongs_to_that_file(tmp_path: Path) -> None:
    owner = tmp_path / "zz-owner.yaml"
    shutil.copy(JOBSPECS / "gpu-scoring.yaml", owner)
    served = load_specs([tmp_path]).jobs["gpu-scoring"]
    owner.write_text(owner.read_text() + "  executorz: 1\n")  # the owner breaks...
    shutil.copy(HOSTILE / "takeover" / "aa-collide.yaml", tmp_path / "aa-collide.yaml")  # ...and a file moves in
    result = load_specs([tmp_path], owners={"gpu-scoring": served.file})
    assert "gpu-scoring" not in result.jobs
    assert any(p.file.name == "aa-collide.yaml" and f"belongs to {owner}" in p.message for p in result.problems)
    owner.unlink()  # once the owner file is gone, the name is free to move
    assert load_specs([tmp_path], owners={"gpu-scoring": served.file}).jobs["gpu-scoring"].file.name == \
        "aa-collide.yaml"


def test_policy_file_allows_namespaces_and_levels(tmp_path: Path, write: Callable[..., Path]) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text("namespaces:\n  default: restricted\n  ml: baseline\nqueues:\n  platform: privileged\n")
    policy = load_policy(policy_file)
    assert policy.level_for("ml", "default") == "baseline"
    assert policy.level_for("default", "platform") == "privileged"
    assert policy.level_for("default", "default") == "restricted"
    # baseline: SYS_ADMIN still refused, CHOWN allowed, runAsUser 0 allowed; restricted refuses CHOWN and root
    tpl = {"spec": {"securityContext": {"runAsUser": 0},
                    "containers": [{"name": "c", "securityContext": {"capabilities": {"add": ["CHOWN"]}}}]}}
    assert check_template(tpl, "baseline") == []
    assert len(check_template(tpl, "restricted")) == 2
    assert check_template({"spec": {"hostNetwork": True}}, "privileged") == []
    assert check_template({"spec": {"nodeName": "n"}}, "privileged")  # nodeName is bigk's at every level
    ns = write("in-ml", "queue: default\n").read_text().replace("name: in-ml", "name: in-ml\n  namespace: ml")
    (tmp_path / "in-ml.yaml").write_text(ns)
    assert load_specs([tmp_path / "in-ml.yaml"]).problems  # built-in default: only `default`
    assert load_specs([tmp_path / "in-ml.yaml"], policy=policy).jobs
    res = CliRunner().invoke(app, ["validate", "-q", "--policy", str(policy_file), str(tmp_path / "in-ml.yaml")])
    assert res.exit_code == 0, res.output


def test_kube_system_is_allowed_only_when_named(tmp_path: Path) -> None:
    assert load_specs([HOSTILE / "kube-system.yaml"], policy=SpecPolicy({"kube-system": "privileged"})).jobs


@pytest.mark.parametrize("text", ["namespaces: {default: root}\n", "nope: 1\n", "- a\n", "namespaces: [\n"])
def test_bad_policy_files_say_what_is_wrong(tmp_path: Path, text: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=re.escape(str(path))):
        load_policy(path)


def test_rendered_pods_are_bigks_and_meet_restricted(tmp_path: Path) -> None:
    loaded = load_specs([HOSTILE / "resource-override.yaml"]).jobs["sneaky-resources"]
    sub = build_submission(loaded.spec, "r1", "k8s://https://h:6443", tmp_path)
    driver = sub.driver_template
    assert driver["spec"]["schedulerName"] == "bigk"
    main = next(c for c in driver["spec"]["containers"] if c["name"] == "spark-kubernetes-driver")
    assert "resources" not in main
    assert driver["spec"]["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert main["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    assert check_template(driver, "restricted") == []
    written = yaml.safe_load(sub.driver_template_path.read_text())
    assert "resources" not in written["spec"]["containers"][0]
    # the executor template names Spark's container too, so Spark merges its own into the hardened one
    assert sub.conf["spark.kubernetes.executor.podTemplateContainerName"] == "spark-kubernetes-executor"
    privileged = build_submission(loaded.spec, "r2", "k8s://https://h:6443", tmp_path, level="privileged")
    assert "securityContext" not in privileged.driver_template["spec"]
