"""Load job specs from files and folders, one file at a time, never failing as a whole.

The file is the unit of trust: a file with any problem contributes no jobs and is
listed in `failed_files`, so a running service can keep the jobs it had from that
file while the other files still load. Within a good file, documents may be bigk
`SparkJob`s or Spark Operator manifests (converted on load, unsupported fields
become warnings); ConfigMaps they use are passed through and other Kubernetes
objects are skipped with a warning (`bigk.spec.sidedocs`). Cluster files (a
top-level `pools:` list) found among the specs are recognised and listed in
`cluster_files` rather than reported.
"""

from __future__ import annotations

import copy
import logging
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bigk.cluster.model import Node
from bigk.spec.clusters import ClusterSet, LoadedCluster, is_clusters_doc, parse_clusters, settle_clusters
from bigk.spec.fit import fit_problems
from bigk.spec.gpu_models import model_warnings
from bigk.spec.model import API_VERSION, KIND, JobSpec
from bigk.spec.operator import NOTE, OPERATOR_KINDS, import_operator, is_operator_doc, operator_loc
from bigk.spec.policy import SpecPolicy, check_job
from bigk.spec.problems import SpecProblem, field_path, problems_from_validation, suggest
from bigk.spec.queues import (
    LoadedQueue,
    QueueTree,
    is_queue_doc,
    parse_queue,
    queue_model_warnings,
    settle_queues,
)
from bigk.spec.secrets import literal_secrets
from bigk.spec.sidedocs import SideDocuments, is_side_document
from bigk.spec.yamlsafe import MAX_BYTES, Document, YamlProblem, load_bytes

log = logging.getLogger(__name__)

SPEC_SUFFIXES = (".yaml", ".yml")
MAX_FILES = 10_000


@dataclass
class LoadedJob:
    """A valid job and where it was defined."""

    spec: JobSpec
    file: Path
    line: int
    source_kind: str = KIND  # or the Spark Operator kind it was converted from
    document: Document | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.spec.metadata.name

    def locate(self, loc: tuple[str | int, ...], prefer_key: bool = False) -> tuple[int, int]:
        """Line and column of a field of this job in its file (of the operator field, if converted)."""
        if self.document is None:
            return self.line, 1
        if self.source_kind != KIND:
            loc = operator_loc(self.source_kind, loc)
        return self.document.locate(loc, prefer_key=prefer_key)


@dataclass
class SpecLoadResult:
    """Everything found under the given paths."""

    jobs: dict[str, LoadedJob] = field(default_factory=dict)
    problems: list[SpecProblem] = field(default_factory=list)
    warnings: list[SpecProblem] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    failed_files: set[Path] = field(default_factory=set)
    cluster_files: list[Path] = field(default_factory=list)
    queues: QueueTree = field(default_factory=QueueTree)  # kind: Queue documents (bigk.spec.queues)
    queues_failed: bool = False  # a file declaring queues is broken: the tree is unknown
    clusters: ClusterSet = field(default_factory=ClusterSet)  # kind: Clusters / Cluster (bigk.spec.clusters)
    clusters_failed: bool = False  # a file declaring clusters is broken: the set is unknown

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class _FileResult:
    jobs: list[LoadedJob] = field(default_factory=list)
    problems: list[SpecProblem] = field(default_factory=list)
    warnings: list[SpecProblem] = field(default_factory=list)
    is_cluster: bool = False
    queues: list[LoadedQueue] = field(default_factory=list)
    declares_queues: bool = False
    clusters: list[LoadedCluster] = field(default_factory=list)
    declares_clusters: bool = False


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def spec_files(paths: Sequence[str | Path]) -> tuple[list[Path], list[SpecProblem]]:
    """Files to load: explicit files as given, folders searched recursively for *.yaml / *.yml."""
    files: list[Path] = []
    problems: list[SpecProblem] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = []
            for root, dirs, names in os.walk(path):  # does not follow symlinked folders: no loops
                dirs[:] = sorted(d for d in dirs if not _is_hidden(d))
                found += [Path(root) / n for n in names if n.endswith(SPEC_SUFFIXES) and not _is_hidden(n)]
            files += sorted(found)
        elif path.exists():
            files.append(path)
        else:
            problems.append(SpecProblem(path, 0, 0, "(file)", "no such file or folder"))
    unique = list(dict.fromkeys(files))
    if len(unique) > MAX_FILES:
        problems.append(SpecProblem(Path(paths[0]), 0, 0, "(file)", f"more than {MAX_FILES} spec files"))
        unique = unique[:MAX_FILES]
    return unique, problems


def read_spec_bytes(path: Path) -> bytes:
    """The file's bytes; refuses non-regular files (a FIFO would block) and oversized ones without reading them."""
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise YamlProblem("not a regular file")
    if info.st_size > MAX_BYTES:
        raise YamlProblem(f"file is {info.st_size} bytes; spec files are limited to {MAX_BYTES} bytes")
    with path.open("rb") as handle:
        return handle.read(MAX_BYTES + 1)


def _is_cluster_doc(data: Any) -> bool:
    return isinstance(data, dict) and "pools" in data and "kind" not in data and "apiVersion" not in data


def _document(path: Path, doc: Document, out: _FileResult, side: SideDocuments) -> None:
    data = doc.data
    if is_side_document(data):
        return  # reported once for the whole file (SideDocuments.warnings)
    if not isinstance(data, dict):
        out.problems.append(
            SpecProblem(
                path, doc.line, doc.col, "(document)", "expected a mapping with apiVersion, kind, metadata, spec"
            )
        )
        return
    if is_operator_doc(data) and data.get("kind") in OPERATOR_KINDS:
        _operator_document(path, doc, out, side)
        return
    if is_queue_doc(data):
        out.declares_queues = True
        queue, found = parse_queue(path, doc)
        out.problems += found
        out.queues += [queue] if queue is not None else []
        return
    if is_clusters_doc(data):
        out.declares_clusters = True
        clusters, found = parse_clusters(path, doc)
        out.problems += found
        out.clusters += clusters
        return
    api, kind = data.get("apiVersion"), data.get("kind")
    missing = [key for key in ("apiVersion", "kind") if key not in data]
    if missing:
        for key in missing:
            typo = next((k for k in data if suggest(str(k), [key]) == key), None)
            line, col = doc.locate((typo,), prefer_key=True) if typo is not None else (doc.line, doc.col)
            hint = f"; did you mean {key!r} instead of {typo!r}?" if typo is not None else ""
            out.problems.append(SpecProblem(path, line, col, key, f"required field {key!r} is missing{hint}"))
        return
    if api != API_VERSION or kind != KIND:
        where = "apiVersion" if api != API_VERSION else "kind"
        line, col = doc.locate((where,))
        out.problems.append(
            SpecProblem(
                path,
                line,
                col,
                where,
                f"unsupported document {api}/{kind}: expected {API_VERSION} {KIND} or Queue, or "
                "sparkoperator.k8s.io/v1beta2 SparkApplication / ScheduledSparkApplication",
            )
        )
        return
    if side.docs:  # ConfigMaps of the same file that the job uses come along (bigk.spec.sidedocs)
        data = {**data, "spec": copy.deepcopy(data.get("spec"))}
        side.attach(doc.data, data)
    try:
        spec = JobSpec.model_validate(data)
    except ValidationError as exc:
        out.problems += problems_from_validation(exc, path, doc)
        return
    out.jobs.append(LoadedJob(spec, path, doc.line, document=doc))


def field_loc(dotted: str) -> tuple[str | int, ...]:
    parts: list[str | int] = []
    for piece in dotted.split("."):
        name, _, rest = piece.partition("[")
        parts.append(name)
        if rest.rstrip("]").isdigit():
            parts.append(int(rest.rstrip("]")))
    return tuple(parts)


def import_warnings(path: Path, doc: Document, unsupported: list[str]) -> list[SpecProblem]:
    """The conversion's entries as positioned warnings: fields left out, and fields bigk reads its own way."""
    out = []
    for entry in unsupported:
        where, _, reason = entry.partition(": ")
        line, col = doc.locate(field_loc(where), prefer_key=True)
        message = reason if reason.startswith(NOTE) else f"not imported: {reason}"
        out.append(SpecProblem(path, line, col, where, message, "warning"))
    return out


def _operator_document(path: Path, doc: Document, out: _FileResult, side: SideDocuments) -> None:
    kind = str(doc.data.get("kind"))
    try:
        converted, unsupported = import_operator(doc.data, path)
    except ValueError as exc:
        line, col = doc.locate(("apiVersion",))
        out.problems.append(SpecProblem(path, line, col, "apiVersion", str(exc).split(": ", 1)[-1]))
        return
    side.attach(doc.data, converted)
    out.warnings += import_warnings(path, doc, unsupported)
    try:
        spec = JobSpec.model_validate(converted)
    except ValidationError as exc:
        out.problems += problems_from_validation(exc, path, doc, translate=lambda loc: operator_loc(kind, loc))
        return
    out.jobs.append(LoadedJob(spec, path, doc.line, source_kind=kind, document=doc))


def load_file(path: Path) -> _FileResult:
    """Load one file; every failure becomes a problem, never an exception."""
    out = _FileResult()
    try:
        docs = load_bytes(read_spec_bytes(path))
        if docs and all(_is_cluster_doc(d.data) for d in docs):
            out.is_cluster = True
            return out
        side = SideDocuments.of(path, docs)
        if side.docs and len(side.docs) == len(docs):
            first = side.docs[0]
            line, col = first.locate(("kind",))
            out.problems.append(SpecProblem(path, line, col, "kind", side.alone_message()))
        for doc in docs:
            _document(path, doc, out, side)
        out.warnings += side.warnings()
        if not docs:
            out.warnings.append(SpecProblem(path, 1, 1, "(file)", "file holds no documents", "warning"))
    except YamlProblem as exc:
        out.problems.append(SpecProblem(path, exc.line, exc.col, "(file)", exc.message))
    except OSError as exc:
        out.problems.append(SpecProblem(path, 0, 0, "(file)", f"cannot read file: {exc.strerror or exc}"))
    except Exception as exc:  # a loader bug must not take the other files (or the service) down
        log.exception("event=spec_load_crash file=%s", path)
        out.problems.append(SpecProblem(path, 0, 0, "(file)", f"cannot load file: {type(exc).__name__}: {exc}"))
    if out.problems:
        out.jobs = []
        out.problems.sort(key=lambda p: (p.line, p.col))
    return out


def load_specs(
    paths: Sequence[str | Path],
    cluster: Sequence[Node] | None = None,
    policy: SpecPolicy | None = None,
    owners: Mapping[str, Path] | None = None,
    queues_from: Sequence[str | Path] | None = None,
) -> SpecLoadResult:
    """Load every spec under `paths`; with `cluster`, also reject jobs that can never be placed on it.

    `policy` is the install's spec policy (default: the built-in one, namespace `default` at the restricted
    level). `owners` maps job names to the file whose definition is being served (the catalog passes it):
    while that file still exists and is broken, no other file may define the name.
    `queues_from`: files that alone declare the queues (`serve --queues`, written by Helm); queue documents
    elsewhere are ignored with a warning.
    """
    if isinstance(paths, str | Path):  # a lone path, not a list of paths
        paths = [paths]
    policy = policy if policy is not None else SpecPolicy()
    result = SpecLoadResult()
    files, result.problems = spec_files([*paths, *(queues_from or [])])
    result.files = files
    good: list[tuple[Path, _FileResult]] = []
    queues_broken = clusters_broken = False
    for path in files:
        loaded = load_file(path)
        if loaded.is_cluster:
            result.cluster_files.append(path)
            continue
        result.warnings += loaded.warnings
        problems = list(loaded.problems)
        if not problems:
            problems += _duplicates(loaded.jobs, {})
        if not problems:
            found, warnings = _policy(loaded.jobs, policy)
            problems += found
            result.warnings += warnings
        if not problems and cluster is not None:
            problems += _fit(loaded.jobs, cluster)
            result.warnings += model_warnings(loaded.jobs, cluster)
        if problems:
            result.problems += problems
            result.failed_files.add(path)
            queues_broken |= loaded.declares_queues
            clusters_broken |= loaded.declares_clusters
            continue
        good.append((path, loaded))
    collisions = _collisions(good, result.failed_files, owners or {})
    for path, loaded in good:
        if path in collisions:
            result.problems += collisions[path]
            result.failed_files.add(path)
            queues_broken |= loaded.declares_queues
            clusters_broken |= loaded.declares_clusters
            continue
        for job in loaded.jobs:
            result.jobs[job.name] = job
    settle_queues(result, [(p, f.queues) for p, f in good if f.queues and p not in collisions], queues_broken,
                  [Path(q) for q in queues_from] if queues_from else None)
    settle_clusters(result, [c for p, f in good if p not in collisions for c in f.clusters], clusters_broken)
    if cluster is not None:
        result.warnings += queue_model_warnings(result.queues, cluster)
    log.info(
        "event=specs_loaded files=%d jobs=%d problems=%d failed_files=%d",
        len(files),
        len(result.jobs),
        len(result.problems),
        len(result.failed_files),
    )
    return result


def _duplicates(jobs: list[LoadedJob], accepted: dict[str, LoadedJob]) -> list[SpecProblem]:
    problems = []
    seen = dict(accepted)
    for job in jobs:
        first = seen.get(job.name)
        if first is not None:
            line, col = job.locate(("metadata", "name"))
            problems.append(
                SpecProblem(
                    job.file,
                    line,
                    col,
                    "metadata.name",
                    f"duplicate job name {job.name!r}: already defined at {first.file}:{first.line}",
                )
            )
        else:
            seen[job.name] = job
    return problems


def _collisions(
    good: list[tuple[Path, _FileResult]], failed: set[Path], owners: Mapping[str, Path]
) -> dict[Path, list[SpecProblem]]:
    """A job name has one owner: a name in two files is refused in both (each error names the other file),
    and a name whose served definition comes from another file that is broken right now is refused too,
    so a new file can never take a job over, whatever it is called and however it sorts."""
    by_name: dict[str, list[LoadedJob]] = {}
    for _, loaded in good:
        for job in loaded.jobs:
            by_name.setdefault(job.name, []).append(job)
    out: dict[Path, list[SpecProblem]] = {}
    for name, jobs in by_name.items():
        for job in jobs:
            others = [o for o in jobs if o.file != job.file]
            owner = owners.get(name)
            line, col = job.locate(("metadata", "name"))
            if others:
                where = ", ".join(f"{o.file}:{o.locate(('metadata', 'name'))[0]}" for o in others)
                message = (f"job name {name!r} is also defined in {where}: a name has one owner, so neither "
                           "definition is used until one is renamed or removed")
            elif (owner is not None and not _same_path(owner, job.file) and owner.exists()
                  and any(_same_path(owner, f) for f in failed)):
                message = (f"job name {name!r} belongs to {owner} (its last good definition is being served); fix "
                           "that file, or remove the job from it, before defining the name elsewhere")
            else:
                continue
            out.setdefault(job.file, []).append(SpecProblem(job.file, line, col, "metadata.name", message))
    return out


def _same_path(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return a == b


def _policy(jobs: list[LoadedJob], policy: SpecPolicy) -> tuple[list[SpecProblem], list[SpecProblem]]:
    """The install's spec policy: errors refuse the file, warnings say what bigk will override."""
    problems: list[SpecProblem] = []
    warnings: list[SpecProblem] = []
    for job in jobs:
        for finding in check_job(job.spec, policy):
            line, col = job.locate(finding.loc, prefer_key=True)
            problem = SpecProblem(job.file, line, col, field_path(finding.loc), finding.message, finding.severity)
            (warnings if finding.severity == "warning" else problems).append(problem)
        for locs, message in literal_secrets(job.spec):
            loc = next((c for c in locs if job.document is not None and job.source_kind == KIND
                        and (c in job.document.keys or c in job.document.values)), locs[0])
            line, col = job.locate(loc, prefer_key=True)
            warnings.append(SpecProblem(job.file, line, col, field_path(loc), message, "warning"))
    return sorted(problems, key=lambda p: (p.line, p.col)), sorted(warnings, key=lambda p: (p.line, p.col))


def _fit(jobs: list[LoadedJob], cluster: Sequence[Node]) -> list[SpecProblem]:
    problems = []
    for job in jobs:
        for where, message in fit_problems(job.spec, cluster):
            line, col = job.locate(tuple(where.split(".")), prefer_key=True)
            problems.append(SpecProblem(job.file, line, col, where, message))
    return problems


__all__ = ["LoadedJob", "SpecLoadResult", "SpecProblem", "field_path", "load_file", "load_specs", "spec_files"]
