"""Clusters as declared in the spec repo: the clusters one bigk dispatches runs to (issue 18).

Either one `kind: Clusters` document listing them:

    apiVersion: bigk.io/v1
    kind: Clusters
    spec:
      clusters:
        - name: onprem                       # DNS label, unique
          labels: {region: eu-west, cloud: onprem}
          costTier: 0                        # lower is cheaper; ties among clusters that fit go to the cheaper
          embedded: clusters/onprem.yaml     # an emulated cluster of this shape (relative to this file)
          queues:                            # optional per-cluster queue limits (maximum only)
            ml.training: {max: {gpu: 8}}
        - name: cloud-h100
          kubeconfig: ~/.kube/cloud.yaml     # or a real cluster: kubeconfig and/or context, or server
          context: h100-prod
          cordoned: false                    # true: never dispatch there (runs already there keep running)

or several `kind: Cluster` documents, each `metadata: {name, labels}` and a `spec` with the same
fields as a list entry (less `name` and `labels`). A cluster has exactly one connection: `embedded`
(a cluster file of node pools, as `jobspecs/cluster.yaml`; checked and expanded here), or any of
`kubeconfig`, `context`, `server`. Problems are `SpecProblem`s (FILE:LINE:COL: field: message), as for
jobs and queues. Jobs restrict or prefer clusters with `spec.clusters` (names, best first) and
`spec.clusterSelector` (labels); `bigk.scheduler.dispatch` chooses one per run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from bigk.cluster.config import ClusterFileError, load_cluster
from bigk.cluster.model import Gang, Node
from bigk.scheduler.dispatch import ClusterRule, LabelRequirement, gang_items
from bigk.scheduler.units import Item
from bigk.spec.gang import node_selector_for, tolerations_for
from bigk.spec.model import DNS_LABEL, FieldProblem, JobSpec, LabelKey, LabelValue
from bigk.spec.problems import SpecProblem, field_path, problems_from_validation
from bigk.spec.queue_names import QueueNameError, queue_name
from bigk.spec.queues import BigkDoc, DocMeta, Resources, _fail_files, declarations_stand
from bigk.spec.yamlsafe import Document, YamlProblem, load_bytes

API_VERSION = "bigk.io/v1"
LIST_KIND = "Clusters"
KIND = "Cluster"
MAX_COST_TIER = 100

ClusterName = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]


def _queue_key(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a queue name")
    try:
        return queue_name(value)
    except QueueNameError as exc:
        raise ValueError(str(exc)) from None


class QueueLimit(BaseModel):
    """A queue's ceiling in one cluster (as the queue's own `max`, counted in that cluster only)."""

    model_config = ConfigDict(extra="forbid")
    max: Resources = Field(default_factory=Resources, description="Ceiling of the queue in this cluster.")


class ClusterBody(BaseModel):
    """Where a cluster is and how bigk treats it (everything but its name and labels)."""

    model_config = ConfigDict(extra="forbid")

    embedded: str | None = Field(default=None, description="Cluster file (node pools) of an emulated cluster; "
                                 "relative to this file.")
    kubeconfig: str | None = Field(default=None, description="Kubeconfig of a real cluster.")
    context: str | None = Field(default=None, description="Context in the kubeconfig.")
    server: str | None = Field(default=None, description="API server URL (in-cluster credentials).")
    costTier: int = Field(default=0, ge=0, le=MAX_COST_TIER, description="Lower is cheaper.")
    cordoned: bool = Field(default=False, description="Dispatch nothing new here.")
    queues: dict[Annotated[str, BeforeValidator(_queue_key)], QueueLimit] = Field(
        default_factory=dict, description="Per-cluster queue limits, by queue name.")

    @model_validator(mode="after")
    def _one_connection(self) -> ClusterBody:
        real = [k for k in ("kubeconfig", "context", "server") if getattr(self, k)]
        if self.embedded is not None and real:
            raise FieldProblem("embedded", message=f"give either embedded or {'/'.join(real)}, not both")
        if self.embedded is None and not real:
            raise ValueError("a cluster needs a connection: embedded: FILE (an emulated cluster), or kubeconfig, "
                             "context or server (a real one)")
        if self.server is not None and not re.match(r"^https?://[^\s/]+", self.server):
            raise FieldProblem("server", message=f"{self.server!r} is not an http(s) URL")
        return self


def _unique_names(value: list[ClusterEntry]) -> list[ClusterEntry]:
    seen: dict[str, int] = {}
    for i, entry in enumerate(value):
        if entry.name in seen:
            raise FieldProblem(str(i), "name", message=f"cluster {entry.name!r} is listed twice (also entry "
                                                       f"{seen[entry.name]})")
        seen[entry.name] = i
    return value


class ClusterEntry(ClusterBody):
    """One cluster in a `kind: Clusters` list."""

    name: ClusterName
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)


class ClusterListSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    clusters: Annotated[list[ClusterEntry], AfterValidator(_unique_names)] = Field(min_length=1)


class ClusterListDoc(BigkDoc):
    """A `kind: Clusters` document."""

    kind: Literal["Clusters"]
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: ClusterListSpec


class ClusterMeta(DocMeta):
    name: ClusterName
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)


class ClusterDoc(BigkDoc):
    """A `kind: Cluster` document."""

    kind: Literal["Cluster"]
    metadata: ClusterMeta
    spec: ClusterBody


@dataclass
class LoadedCluster:
    """A valid cluster declaration and where it was made; `nodes` for an embedded one (its shape, expanded)."""

    name: str
    labels: dict[str, str]
    body: ClusterBody
    file: Path
    line: int
    nodes: list[Node] = field(default_factory=list, repr=False)
    loc: tuple[str | int, ...] = ()  # the declaration's path in its document (an entry of a list)
    document: Document | None = field(default=None, repr=False, compare=False)

    @property
    def cost_tier(self) -> int:
        return self.body.costTier

    @property
    def embedded(self) -> Path | None:
        return self.file.parent / self.body.embedded if self.body.embedded is not None else None

    def queue_limits(self) -> dict[str, dict[str, int]]:
        """Per queue, its maximum here in the scheduler's units ({"cpu": milli, "memory": MiB, "gpu": milli})."""
        return {name: limit.max.as_core() for name, limit in self.body.queues.items()}

    def locate(self, loc: tuple[str | int, ...], prefer_key: bool = False) -> tuple[int, int]:
        if self.document is None:
            return self.line, 1
        return self.document.locate((*self.loc, *loc), prefer_key=prefer_key)


@dataclass
class ClusterSet:
    """The declared clusters by name (empty: none declared, bigk runs on its one cluster)."""

    clusters: dict[str, LoadedCluster] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.clusters)

    def names(self) -> list[str]:
        return sorted(self.clusters)


def is_clusters_doc(data: Any) -> bool:
    """A `kind: Clusters` or `kind: Cluster` document of bigk's API group."""
    return isinstance(data, dict) and data.get("apiVersion") == API_VERSION and data.get("kind") in (LIST_KIND, KIND)


def parse_clusters(path: Path, doc: Document) -> tuple[list[LoadedCluster], list[SpecProblem]]:
    """One `kind: Clusters` / `kind: Cluster` document -> its clusters, or the problems (FILE:LINE:COL)."""
    entries: list[tuple[str, dict[str, str], ClusterBody, tuple[str | int, ...]]] = []
    try:
        if doc.data.get("kind") == LIST_KIND:
            listed = ClusterListDoc.model_validate(doc.data)
            for i, entry in enumerate(listed.spec.clusters):
                entries.append((entry.name, dict(entry.labels), entry, ("spec", "clusters", i)))
        else:
            single = ClusterDoc.model_validate(doc.data)
            entries.append((single.metadata.name, dict(single.metadata.labels), single.spec, ("spec",)))
    except ValidationError as exc:
        root: type[BaseModel] = ClusterListDoc if doc.data.get("kind") == LIST_KIND else ClusterDoc
        return [], problems_from_validation(exc, path, doc, root=root)
    out: list[LoadedCluster] = []
    problems: list[SpecProblem] = []
    for name, labels, body, loc in entries:
        cluster = LoadedCluster(name, labels, body, path, doc.line, loc=loc, document=doc)
        problem = _load_shape(cluster)
        if problem is not None:
            problems.append(problem)
        else:
            out.append(cluster)
    return ([], problems) if problems else (out, [])


def _load_shape(cluster: LoadedCluster) -> SpecProblem | None:
    """Read an embedded cluster's shape file; the problem (at `embedded`) when it cannot be used."""
    shape = cluster.embedded
    if shape is None:
        return None
    line, col = cluster.locate(("embedded",))
    where = field_path((*cluster.loc, "embedded"))
    if not shape.is_file():
        return SpecProblem(cluster.file, line, col, where, f"no cluster file {cluster.body.embedded!r} "
                           f"(looked for {shape})")
    try:
        cluster.nodes = load_cluster(shape)
    except ClusterFileError as exc:
        return SpecProblem(cluster.file, line, col, where, f"cluster file {cluster.body.embedded!r}: {exc}")
    return None


def check_clusters(found: list[LoadedCluster]) -> tuple[ClusterSet, list[SpecProblem]]:
    """Across documents: a name is declared once. All or nothing, like the queue tree."""
    out = ClusterSet()
    problems: list[SpecProblem] = []
    for cluster in found:
        first = out.clusters.get(cluster.name)
        if first is not None:
            loc = ("name",) if cluster.loc[-1] != "spec" else ("metadata", "name")
            line, col = cluster.document.locate(loc if loc[0] == "metadata" else (*cluster.loc, *loc)) \
                if cluster.document is not None else (cluster.line, 1)
            where = field_path(loc if loc[0] == "metadata" else (*cluster.loc, *loc))
            problems.append(SpecProblem(cluster.file, line, col, where, f"duplicate cluster {cluster.name!r}: "
                                        f"already declared at {first.file}:{first.locate(())[0]}"))
            continue
        out.clusters[cluster.name] = cluster
    return (ClusterSet(), problems) if problems else (out, [])


def load_clusters(path: str | Path) -> ClusterSet:
    """A clusters file on its own (`bigk serve --clusters FILE`, `bigk simulate`): the set, or ClusterFileError
    naming the first problem as FILE:LINE:COL: field: message."""
    path = Path(path)
    try:
        docs = load_bytes(path.read_bytes())
    except YamlProblem as exc:
        raise ClusterFileError(f"{path}:{exc.line}:{exc.col}: {exc.message}") from None
    except OSError as exc:
        raise ClusterFileError(f"{path}: cannot read clusters file: {exc.strerror or exc}") from None
    found: list[LoadedCluster] = []
    for doc in docs:
        if not is_clusters_doc(doc.data):
            raise ClusterFileError(f"{path}:{doc.line}:{doc.col}: kind: expected apiVersion {API_VERSION} and "
                                   f"kind {LIST_KIND} or {KIND}")
        clusters, problems = parse_clusters(path, doc)
        if problems:
            raise ClusterFileError(str(problems[0]))
        found += clusters
    result, problems = check_clusters(found)
    if problems:
        raise ClusterFileError(str(problems[0]))
    if not result:
        raise ClusterFileError(f"{path}: declares no cluster")
    return result


def settle_clusters(result: Any, found: list[LoadedCluster], incomplete: bool) -> None:
    """Build the set from the good files' declarations and check the loaded jobs' `spec.clusters` against it.

    `result` is the loader's SpecLoadResult (changed in place). `incomplete`: a file declaring clusters failed,
    so the set is unknown (`result.clusters_failed`) and jobs are not checked against it. With no cluster
    declared, a job's `clusters` names are not checked (one implicit cluster).
    """
    clusters, problems = check_clusters(found)
    stands = declarations_stand(result, problems, incomplete)
    result.clusters, result.clusters_failed = (clusters, False) if stands else (ClusterSet(), True)
    if not stands or not clusters:
        return
    bad: set[Path] = set()
    for job in list(result.jobs.values()):
        for i, name in enumerate(job.spec.spec.clusters):
            if name not in clusters.clusters:
                line, col = job.locate(("spec", "clusters", i))
                known = ", ".join(clusters.names())
                result.problems.append(SpecProblem(job.file, line, col, f"spec.clusters[{i}]",
                                                   f"unknown cluster {name!r}; declared: {known}"))
                bad.add(job.file)
    _fail_files(result, bad)


def cluster_rule(job: JobSpec) -> ClusterRule:
    """What the dispatcher reads of a job: `spec.clusters` (allowed, best first) and `spec.clusterSelector`."""
    selector = job.spec.clusterSelector
    if selector is None:
        return ClusterRule(tuple(job.spec.clusters))
    return ClusterRule(tuple(job.spec.clusters), tuple(sorted(selector.matchLabels.items())),
                       tuple(LabelRequirement(e.key, e.operator, tuple(e.values)) for e in selector.matchExpressions))


def dispatch_items(job: JobSpec, gang: Gang) -> list[Item]:
    """The run's pods as the dispatcher places them: the driver with its own selector and tolerations (the gang
    carries the executors'), then the gang minimum of executors."""
    return gang_items(gang, node_selector_for(job, "driver"), [t.to_cluster() for t in tolerations_for(job, "driver")])
