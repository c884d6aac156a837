"""CLI for job specs: validate, schema, render, run-local, import.

Imports of the spec machinery happen inside the commands so `bigk --help` stays fast.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from bigk.errors import BigkError, UsageError

if TYPE_CHECKING:
    from bigk.cluster.model import Node
    from bigk.spec.loader import LoadedJob, SpecLoadResult

DEFAULT_SPECS = "jobspecs"
DEFAULT_MASTER = "k8s://https://kubernetes.default.svc"


def _cluster_nodes(path: Path) -> list[Node]:
    from bigk.cluster.config import ClusterFileError, load_cluster
    from bigk.spec.errors import SpecError

    try:
        return load_cluster(path)
    except ClusterFileError as exc:
        raise SpecError(str(exc)) from None


def _load(paths: list[str], cluster: Path | None, auto_cluster: bool,
          policy_file: Path | None = None, live: str | None = None) -> tuple[SpecLoadResult, Path | None]:
    """Load specs; with no --cluster, use a cluster file found among the specs (e.g. jobspecs/cluster.yaml).

    The spec policy is the install's (`--policy`, else $BIGK_SPEC_POLICY, else the built-in default)."""
    from bigk.spec.loader import load_specs
    from bigk.spec.policy import load_policy

    policy = load_policy(policy_file)
    nodes = _cluster_nodes(cluster) if cluster is not None else None
    if live:  # `--kubeconfig`: the live cluster's nodes, GPU models as GPU feature discovery labels them
        from bigk.kube.live_nodes import live_nodes

        nodes, auto_cluster, cluster = live_nodes(live), False, Path(live)
    result = load_specs(paths, cluster=nodes, policy=policy)
    if live:  # drivers need their ServiceAccount in the job's namespace
        from bigk.kube.live_accounts import account_warnings

        result.warnings += account_warnings(result.jobs.values(), kubeconfig=live)
    if cluster is None and auto_cluster and result.cluster_files:
        cluster = result.cluster_files[0]
        result = load_specs(paths, cluster=_cluster_nodes(cluster), policy=policy)
    return result, cluster


def _find_job(specs: Path, name: str) -> LoadedJob:
    from bigk.spec.errors import UnknownJobError
    from bigk.spec.problems import suggest

    result, _ = _load([str(specs)], None, auto_cluster=False)
    job = result.jobs.get(name)
    if job is not None:
        return job
    broken = [p for p in result.problems if name in p.message or name in p.file.name]
    for problem in broken or result.problems:
        typer.echo(str(problem), err=True)
    hint = suggest(name, list(result.jobs))
    message = f"no valid job named {name!r} under {specs}"
    if hint:
        message += f"; did you mean {hint!r}?"
    elif result.jobs:
        message += f" (jobs: {', '.join(sorted(result.jobs))})"
    raise UnknownJobError(message)


def _dump(data: Any, output: str) -> str:
    if output == "json":
        return json.dumps(data, indent=2)
    import yaml

    class _NoAliases(yaml.SafeDumper):
        """Every object written out in full: `&id001` / `*id001` would make `bigk render | diff` brittle."""

        def ignore_aliases(self, data: Any) -> bool:
            return True

    def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:  # a script reads as a script
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)

    _NoAliases.add_representer(str, _text)
    return yaml.dump(data, Dumper=_NoAliases, sort_keys=False, width=1000)


def register(app: typer.Typer) -> None:
    """Add validate, schema, render, run-local and import to the root app."""

    @app.command("validate")
    def validate(
        paths: list[str] = typer.Argument(None, help="Spec files or folders (default: jobspecs/)."),
        cluster: Path | None = typer.Option(
            None, "--cluster", help="Cluster file; jobs no node could hold are errors. Default: one found in PATHs."
        ),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="Print problems only, no summary."),
        policy: Path | None = typer.Option(
            None, "--policy", help="The install's spec policy (allowed namespaces, Pod Security levels); default "
            "$BIGK_SPEC_POLICY, else namespace 'default' at the restricted level."
        ),
        kubeconfig: str | None = typer.Option(
            None, "--kubeconfig", help="Check against the nodes of this live cluster instead of a cluster file."
        ),
    ) -> None:
        """Check job specs: one line per problem (FILE:LINE:COL: field: message); exit 1 if any."""
        if not paths and not Path(DEFAULT_SPECS).exists():
            raise BigkError(f"no {DEFAULT_SPECS}/ folder in {Path.cwd()}: run bigk validate from the repository "
                            "root, or name spec files or folders: bigk validate PATH...")
        result, used = _load(paths or [DEFAULT_SPECS], cluster, auto_cluster=True, policy_file=policy,
                             live=kubeconfig)
        for problem in [*result.problems, *result.warnings]:
            typer.echo(str(problem))
        if not quiet:
            against = f", checked against {used}" if used else ""
            typer.echo(
                f"{len(result.jobs)} valid jobs in {len(result.files) - len(result.cluster_files)} files, "
                f"{len(result.problems)} problems, {len(result.warnings)} warnings{against}",
                err=True,
            )
        raise typer.Exit(1 if result.problems else 0)

    @app.command("schema")
    def schema() -> None:
        """Print the JSON Schema of bigk job specs (for yaml-language-server and CI)."""
        from bigk.spec.schema import json_schema

        typer.echo(json.dumps(json_schema(), indent=2))

    @app.command("render")
    def render(
        job: str = typer.Argument(..., help="Job name."),
        specs: Path = typer.Option(Path(DEFAULT_SPECS), "--specs", help="Spec folder or file."),
        output: str = typer.Option("yaml", "--output", "-o", help="yaml or json."),
        master: str = typer.Option(DEFAULT_MASTER, "--master", help="Kubernetes API as k8s://URL."),
        run_id: str = typer.Option("manual", "--run-id", help="Run id used in pod names and labels."),
        workdir: Path | None = typer.Option(None, "--workdir", help="Where pod template files go (default: temp)."),
    ) -> None:
        """Show exactly what bigk submits for JOB: spark-submit argv, environment and pod templates."""
        from bigk.spark.submit import build_submission

        if output not in ("yaml", "json"):
            raise UsageError(f"--output must be yaml or json, not {output!r}")
        from bigk.spec.policy import load_policy

        loaded = _find_job(specs, job)
        # the Pod Security level the install's policy ($BIGK_SPEC_POLICY) grants, as bigk serve renders it
        level = load_policy(None).level_for(loaded.spec.metadata.namespace, loaded.spec.spec.queue)
        with tempfile.TemporaryDirectory(prefix="bigk-render-") as scratch:  # template files, unless --workdir
            submission = build_submission(loaded.spec, run_id, master, workdir or Path(scratch), level=level)
        typer.echo(_dump(submission.to_dict(portable=True), output))

    @app.command("run-local")
    def run_local_cmd(
        job: str = typer.Argument(..., help="Job name."),
        specs: Path = typer.Option(Path(DEFAULT_SPECS), "--specs", help="Spec folder or file."),
        cores: int = typer.Option(2, "--cores", help="local[N] cores."),
        apps: Path | None = typer.Option(None, "--apps", help="Folder for local:///opt/bigk/apps/ (SPECS/apps)."),
        timeout: float | None = typer.Option(None, "--timeout", help="Seconds (activeDeadlineSeconds or 1800)."),
    ) -> None:
        """Run JOB's application with pyspark's spark-submit --master local[N]; exit 0 on success."""
        from bigk.spark.local import local_argv, run_local

        loaded = _find_job(specs, job)
        apps_dir = apps or (specs if specs.is_dir() else specs.parent) / "apps"
        local_argv(loaded.spec, cores, apps_dir, loaded.file.parent)  # fail fast on a missing app file
        result = run_local(loaded.spec, cores, apps_dir, loaded.file.parent, timeout_s=timeout, echo=True)
        if result.succeeded:
            typer.echo(f"run-local {job}: succeeded in {result.seconds:.1f}s", err=True)
            return
        why = "timed out" if result.returncode == 124 else f"failed with exit code {result.returncode}"
        typer.echo(f"run-local {job}: {why} after {result.seconds:.1f}s", err=True)
        raise typer.Exit(1)

    @app.command("import")
    def import_cmd(
        files: list[Path] = typer.Argument(..., help="Spark Operator manifests (SparkApplication, Scheduled...)."),
        output_dir: Path | None = typer.Option(None, "--output-dir", "-o", help="Write <name>.yaml files here."),
    ) -> None:
        """Convert Spark Operator v1beta2 manifests to bigk specs; unsupported fields are listed by name."""
        failed = _import_files(files, output_dir)
        raise typer.Exit(1 if failed else 0)


def _import_files(files: list[Path], output_dir: Path | None) -> bool:
    """Convert each manifest; print results (or write files). True if anything failed."""
    import yaml
    from pydantic import ValidationError

    from bigk.spec.loader import import_warnings, read_spec_bytes
    from bigk.spec.model import JobSpec
    from bigk.spec.operator import import_operator, operator_loc
    from bigk.spec.problems import SpecProblem, problems_from_validation
    from bigk.spec.sidedocs import SideDocuments, is_side_document
    from bigk.spec.yamlsafe import YamlProblem, load_bytes

    failed = False
    outputs: list[str] = []
    for path in files:
        try:
            docs = load_bytes(read_spec_bytes(path))
        except (YamlProblem, OSError) as exc:
            line, col = (exc.line, exc.col) if isinstance(exc, YamlProblem) else (0, 0)
            message = exc.message if isinstance(exc, YamlProblem) else f"cannot read file: {exc}"
            typer.echo(str(SpecProblem(path, line, col, "(file)", message)), err=True)
            failed = True
            continue
        side = SideDocuments.of(path, docs)
        for doc in docs:
            if is_side_document(doc.data):
                continue
            try:
                converted, unsupported = import_operator(doc.data, path)
            except ValueError as exc:
                typer.echo(str(SpecProblem(path, doc.line, doc.col, "kind", str(exc).split(": ", 1)[-1])), err=True)
                failed = True
                continue
            kind = str(doc.data.get("kind"))
            side.attach(doc.data, converted)
            for warning in import_warnings(path, doc, unsupported):
                typer.echo(str(warning), err=True)
            try:
                JobSpec.model_validate(converted)
            except ValidationError as exc:
                for problem in problems_from_validation(exc, path, doc, lambda loc, k=kind: operator_loc(k, loc)):
                    typer.echo(str(problem), err=True)
                failed = True
            text = yaml.safe_dump(converted, sort_keys=False, width=1000)
            if output_dir is not None:
                output_dir.mkdir(parents=True, exist_ok=True)
                raw_name = str(converted.get("metadata", {}).get("name") or path.stem)
                name = re.sub(r"[^A-Za-z0-9_.-]+", "-", raw_name).lstrip(".-") or "imported"
                target = output_dir / f"{name}.yaml"
                target.write_text(text, encoding="utf-8")
                typer.echo(f"{path}: wrote {target}", err=True)
            else:
                outputs.append(text)
        for warning in side.warnings():
            typer.echo(str(warning), err=True)
    if outputs:
        sys.stdout.write("---\n".join(outputs))
    return failed
