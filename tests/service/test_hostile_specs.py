"""The hostile spec corpus dropped into a running `bigk serve` changes nothing.

An attacker with write access to the spec repo adds every file of tests/spec/data/hostile/ (privileged
pods, host namespaces, hostPath /, kube-system, nodeName, resource overrides) plus a file that sorts
first and reuses a served job's name. The service reports each file with positioned problems, keeps
serving the job as its own file defined it, and no pod of the attacker's ever reaches the cluster.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from kubernetes import client

from bigk.service.submitters import DirectSubmitter, SubmitError
from bigk.spec.loader import load_specs
from bigk.spec.policy import SpecPolicy
from tests.realk8s import ClusterUnderTest
from tests.service.conftest import ON_BOTH_CLUSTERS, Running, job_yaml, wait_for

HOSTILE = Path(__file__).parents[1] / "spec" / "data" / "hostile"


@ON_BOTH_CLUSTERS
def test_hostile_specs_dropped_into_a_running_serve_change_nothing(
        tmp_path: Path, serve: Callable[..., Running], cluster: ClusterUnderTest) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    victim = specs / "victim.yaml"
    victim.write_text(job_yaml("victim", cron="0 3 * * *", instances=1, duration=100_000,
                               extra="priority: 10\n"))
    svc = serve(specs)
    with svc.client() as c:
        before = c.get("/api/v1/jobs/victim").json()["spec"]
        for path in HOSTILE.glob("*.yaml"):
            shutil.copy(path, specs / path.name)
        collide = (HOSTILE / "takeover" / "aa-collide.yaml").read_text().replace("gpu-scoring", "victim")
        (specs / "aa-collide.yaml").write_text(collide)
        hostile_files = {p.name for p in HOSTILE.glob("*.yaml")} - {"resource-override.yaml"}
        wanted = hostile_files | {"aa-collide.yaml", "victim.yaml"}

        def reported() -> dict[str, object] | None:
            view = c.get("/api/v1/problems").json()
            files = {Path(p.split(":", 1)[0]).name for p in view["problems"]}
            return view if wanted <= files else None

        view = wait_for(reported, 10, "every hostile file to be reported")
        assert view["kept_jobs"] == ["victim"]  # served from its own file's last good definition
        assert any(p.startswith(f"{specs / 'aa-collide.yaml'}:5:9: metadata.name: ") and "victim.yaml" in p
                   for p in view["problems"])
        assert any(p.startswith(f"{victim}:4:9: metadata.name: ") and "aa-collide.yaml" in p
                   for p in view["problems"])
        names = sorted(j["name"] for j in c.get("/api/v1/jobs").json())
        assert names == ["sneaky-resources", "victim"]  # overrides are warnings: bigk's values win (below)
        assert c.get("/api/v1/jobs/victim").json()["spec"] == before
        run = c.post("/api/v1/jobs/victim/run").json()
        sneaky = c.post("/api/v1/jobs/sneaky-resources/run").json()
        wait_for(lambda: c.get(f"/api/v1/runs/{run['id']}").json()["driver_pod"], 10, "the victim's driver")
        wait_for(lambda: c.get(f"/api/v1/runs/{sneaky['id']}").json()["driver_pod"], 10, "sneaky's driver")
    core = client.CoreV1Api(cluster.api())
    pods = core.list_pod_for_all_namespaces(label_selector="bigk.io/job").items
    by_job = {p.metadata.labels["bigk.io/job"]: p for p in pods if p.metadata.labels.get("spark-role") == "driver"}
    assert set(by_job) <= {"victim", "sneaky-resources"}
    assert by_job["victim"].spec.containers[0].image == "bigk/spark-apps:0.1"  # not attacker/miner
    assert all(p.metadata.namespace == "default" for p in pods)
    for pod in pods:
        assert not pod.spec.host_network and not pod.spec.host_pid
        assert all(not (v.host_path) for v in pod.spec.volumes or [])
        assert pod.spec.security_context.run_as_non_root is True
        assert pod.spec.security_context.seccomp_profile.type == "RuntimeDefault"
    requests = by_job["sneaky-resources"].spec.containers[0].resources.requests
    assert requests["cpu"] == "2" and requests["memory"] != "1Mi"  # bigk's figures, not the template's


def test_submission_checks_the_policy_again(tmp_path: Path) -> None:
    """A job kept from before a policy change (or any other path to submit) meets the policy at submission."""
    job = load_specs([HOSTILE / "kube-system.yaml"], policy=SpecPolicy({"kube-system": "restricted"})).jobs
    spec = job["hostile-kube-system"].spec
    submitter = DirectSubmitter(client.ApiClient(), "k8s://https://127.0.0.1:1", str(tmp_path))
    submitter.policy = SpecPolicy()  # the install no longer allows kube-system
    with pytest.raises(SubmitError, match="refused by the spec policy: metadata.namespace: namespace 'kube-system'"):
        submitter.submit(spec, "r1")


def test_job_reads_redact_secret_looking_settings(tmp_path: Path, serve: Callable[..., Running]) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "leaky.yaml").write_text(job_yaml("leaky", extra="sparkConf:\n  spark.hadoop.fs.s3a.secret.key: s3cr3t\n"
                                                             "driver:\n  env:\n    DB_PASSWORD: hunter2\n"))
    svc = serve(specs)
    with svc.client() as c:
        shown = c.get("/api/v1/jobs/leaky").json()
    assert "s3cr3t" not in repr(shown) and "hunter2" not in repr(shown)
    assert shown["spec"]["spec"]["sparkConf"]["spark.hadoop.fs.s3a.secret.key"] == "***"
