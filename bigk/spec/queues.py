"""Queues as declared in the spec repo: `apiVersion: bigk.io/v1`, `kind: Queue` documents.

    apiVersion: bigk.io/v1
    kind: Queue
    metadata:
      name: ml.training          # a dotted path: the child `training` of queue `ml`
    spec:
      weight: 2                  # fair share among siblings (dominant share / weight)
      guarantee: {cpu: 16, memory: 64Gi, gpu: 4, gpuByModel: {A100: 2}}
      max: {gpu: 8, gpuByModel: {A100: 4, H100: 2}}
      priority: {default: 10, min: 0, max: 100}
      borrow: true               # may use idle capacity beyond its guarantee
      lend: true                 # lets others use its unused guarantee

`gpuByModel` bounds GPUs of a given model (names as in a job's `gpu.model`,
matched against the nodes' `nvidia.com/gpu.product`, e.g. `A100` matches
`NVIDIA-A100-SXM4-80GB`); GPUs counted under a model still count in `gpu`.

Queues form a tree by their dotted names (`spec.parent` may name the parent
instead, with a one-segment name). `queue_name()` is the one place that turns a
name as people write it (YuniKorn's `root.ml.training`, Volcano's plain names)
into bigk's; every importer calls it. The tree is checked as a whole:
parents exist, children's guarantees fit in their parent's, a guarantee fits
under the maximum; jobs must name a known leaf queue.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from bigk.cluster.model import MILLI_GPU, Queue
from bigk.cluster.quantity import QuantityError, cpu_to_milli
from bigk.spec.problems import SpecProblem
from bigk.spec.queue_names import QueueNameError, queue_name
from bigk.spec.units import memory_mib
from bigk.spec.yamlsafe import Document

API_VERSION = "bigk.io/v1"
KIND = "Queue"
DEFAULT_QUEUE = "default"


def parent_of(name: str) -> str:
    """'ml.training' -> 'ml'; a top-level queue has no parent ('')."""
    return name.rpartition(".")[0]


def _quantity(value: Any, parse: Callable[[Any], int], example: str) -> int:
    """A non-negative amount read by `parse`; ValueError (for pydantic) with the example on anything else."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"expected {example}, got {value!r}")
    try:
        amount = parse(value)
    except QuantityError as exc:
        raise ValueError(str(exc)) from None
    if amount < 0:
        raise ValueError("must not be negative")
    return amount


def _cpu(value: Any) -> int:
    return _quantity(value, cpu_to_milli, "CPU cores such as 16 or '500m'")


def _memory(value: Any) -> int:
    return _quantity(value, memory_mib, "a memory size such as '64Gi' or '64g'")


_MODEL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,62}$")


def _model_key(key: Any) -> str:
    if not isinstance(key, str) or not _MODEL_KEY.match(key.strip()):
        raise ValueError(f"{key!r} is not a GPU model name: use one model as jobs name it (A100, H100-80GB, T4, "
                         "or the product NVIDIA-A100-SXM4-80GB): letters, digits, spaces, '-', '_', '.'")
    return key.strip()


def _distinct_models(value: dict[str, int] | None) -> dict[str, int] | None:
    """One entry per model, whatever its case (A100 and a100 are one model)."""
    seen: dict[str, str] = {}
    for name in value or {}:
        if name.upper() in seen:
            raise ValueError(f"GPU model {name!r} is given twice (also as {seen[name.upper()]!r})")
        seen[name.upper()] = name
    return value


def _gpu(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number of GPUs such as 4 or 0.5, got {value!r}")
    if value < 0:
        raise ValueError("must not be negative")
    milli = round(float(value) * MILLI_GPU)
    if abs(milli - float(value) * MILLI_GPU) > 1e-6:
        raise ValueError("GPUs are counted in thousandths at most (e.g. 0.25)")
    return int(milli)


class Resources(BaseModel):
    """CPU (cores or '500m'), memory ('64Gi' or '64g') and GPUs (whole or fractional)."""

    model_config = ConfigDict(extra="forbid")

    cpu: Annotated[int | None, BeforeValidator(lambda v: None if v is None else _cpu(v)),
                   WithJsonSchema({"type": ["number", "string"], "description": "CPU cores, e.g. 16 or '500m'."})
                   ] = None
    memory: Annotated[int | None, BeforeValidator(lambda v: None if v is None else _memory(v)),
                      WithJsonSchema({"type": ["integer", "string"], "description": "Memory, e.g. '64Gi' or '64g'."})
                      ] = None
    gpu: Annotated[int | None, BeforeValidator(lambda v: None if v is None else _gpu(v)),
                   WithJsonSchema({"type": "number", "minimum": 0, "description": "GPUs, e.g. 4 or 0.5."})] = None
    gpuByModel: Annotated[
        dict[Annotated[str, BeforeValidator(_model_key)], Annotated[int, BeforeValidator(_gpu)]] | None,
        AfterValidator(_distinct_models), WithJsonSchema({
        "type": "object", "additionalProperties": {"type": "number", "minimum": 0},
        "propertyNames": {"pattern": _MODEL_KEY.pattern},
        "description": "GPUs per GPU model, e.g. {A100: 4, H100: 2}; model names as in a job's gpu.model."})] = None

    def as_core(self) -> dict[str, int]:
        """The scheduler's units: {"cpu": milli, "memory": MiB, "gpu": milli-GPU}, set fields only."""
        return {k: v for k, v in (("cpu", self.cpu), ("memory", self.memory), ("gpu", self.gpu)) if v is not None}

    def models_core(self) -> dict[str, int]:
        """milli-GPU per GPU model name (empty when none is set)."""
        return dict(self.gpuByModel or {})


class PriorityRange(BaseModel):
    """Priorities jobs of this queue may have, and the one they get when they set none."""

    model_config = ConfigDict(extra="forbid")

    default: int | None = Field(default=None, ge=-1_000_000, le=1_000_000)
    min: int = Field(default=-1_000_000, ge=-1_000_000, le=1_000_000)
    max: int = Field(default=1_000_000, ge=-1_000_000, le=1_000_000)

    @model_validator(mode="after")
    def _ordered(self) -> PriorityRange:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        if self.default is not None and not self.min <= self.default <= self.max:
            raise ValueError(f"default ({self.default}) is outside min..max ({self.min}..{self.max})")
        return self


class QueueSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parent: str | None = Field(default=None, description="Parent queue; or write the name as parent.child.")
    weight: float = Field(default=1.0, gt=0, le=1_000_000, description="Share among siblings.")
    guarantee: Resources = Field(default_factory=Resources, description="Capacity this queue can always get back.")
    max: Resources = Field(default_factory=Resources, description="Ceiling (reservations count).")
    priority: PriorityRange = Field(default_factory=PriorityRange)
    borrow: bool = Field(default=True, description="May use idle capacity beyond its guarantee.")
    lend: bool = Field(default=True, description="Lets other queues use its unused guarantee.")

    @model_validator(mode="after")
    def _guarantee_under_max(self) -> QueueSpec:
        g, m = self.guarantee.as_core(), self.max.as_core()
        for r, value in g.items():
            if r in m and value > m[r]:
                raise ValueError(f"guarantee.{r} is above max.{r}")
        gm, mm = self.guarantee.models_core(), self.max.models_core()
        for model, value in gm.items():
            if model in mm and value > mm[model]:
                raise ValueError(f"guarantee.gpuByModel.{model} is above max.gpuByModel.{model}")
            for where, total in (("guarantee", g.get("gpu")), ("max", m.get("gpu"))):
                if total is not None and value > total:
                    raise ValueError(f"guarantee.gpuByModel.{model} is above {where}.gpu "
                                     "(GPUs of a model count in gpu too)")
        return self


class DocMeta(BaseModel):
    """The metadata of a bigk document other than a SparkJob (a subclass narrows `name` and `labels`)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class BigkDoc(BaseModel):
    """What a bigk document other than a SparkJob starts with: no unknown fields, `apiVersion: bigk.io/v1`."""

    model_config = ConfigDict(extra="forbid")

    apiVersion: Literal["bigk.io/v1"]


class QueueMeta(DocMeta):
    name: str = Field(description="Dotted path, e.g. ml.training (root.ml.training is accepted).")


class QueueDoc(BigkDoc):
    """A `kind: Queue` document."""

    kind: Literal["Queue"]
    metadata: QueueMeta
    spec: QueueSpec = Field(default_factory=QueueSpec)


@dataclass
class LoadedQueue:
    """A valid queue document and where it was declared."""

    name: str  # the full dotted name
    doc: QueueDoc
    file: Path
    line: int
    document: Document | None = field(default=None, repr=False, compare=False)

    @property
    def parent(self) -> str:
        return parent_of(self.name)

    def locate(self, loc: tuple[str | int, ...], prefer_key: bool = False) -> tuple[int, int]:
        return self.document.locate(loc, prefer_key) if self.document is not None else (self.line, 1)

    def to_core(self) -> Queue:
        s = self.doc.spec
        return Queue(self.name, weight=s.weight, guaranteed=s.guarantee.as_core(), maximum=s.max.as_core(),
                     parent=self.parent, borrow=s.borrow, lend=s.lend,
                     guaranteed_models=s.guarantee.models_core(), maximum_models=s.max.models_core())


@dataclass
class QueueTree:
    """The declared queues by full name (empty: no queues declared, every job name goes)."""

    queues: dict[str, LoadedQueue] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.queues)

    def children(self, name: str) -> list[str]:
        return sorted(n for n, q in self.queues.items() if q.parent == name)

    def leaves(self) -> list[str]:
        return sorted(n for n in self.queues if not self.children(n))

    def to_core(self) -> dict[str, Queue]:
        return {name: q.to_core() for name, q in self.queues.items()}

    def priority_of(self, queue: str) -> PriorityRange | None:
        q = self.queues.get(queue)
        return q.doc.spec.priority if q is not None else None


def is_queue_doc(data: Any) -> bool:
    return isinstance(data, dict) and data.get("kind") == KIND and data.get("apiVersion") == API_VERSION


def parse_queue(path: Path, doc: Document) -> tuple[LoadedQueue | None, list[Any]]:
    """One `kind: Queue` document -> the queue, or the problems (FILE:LINE:COL) that stop it."""
    from bigk.spec.problems import problems_from_validation

    try:
        parsed = QueueDoc.model_validate(doc.data)
    except ValidationError as exc:
        return None, problems_from_validation(exc, path, doc, root=QueueDoc)
    try:
        name = queue_name(parsed.metadata.name)
        if parsed.spec.parent is not None:
            if "." in name:
                raise QueueNameError(f"{parsed.metadata.name!r} is a dotted path, so it names its parent already; "
                                     "drop spec.parent or use a one-part name")
            name = f"{queue_name(parsed.spec.parent)}.{name}"
            queue_name(name)  # depth
    except QueueNameError as exc:
        where = ("spec", "parent") if parsed.spec.parent is not None and "parent" in str(exc) else ("metadata", "name")
        line, col = doc.locate(where)
        return None, [SpecProblem(path, line, col, ".".join(where), str(exc))]
    return LoadedQueue(name, parsed, path, doc.line, doc), []


def check_tree(queues: Sequence[LoadedQueue]) -> tuple[QueueTree, list[Any]]:
    """Cross-document checks; the tree is all or nothing (any problem: an empty tree and the problems)."""
    problems: list[SpecProblem] = []
    tree = QueueTree()

    def problem(q: LoadedQueue, loc: tuple[str, ...], message: str) -> None:
        line, col = q.locate(loc)
        problems.append(SpecProblem(q.file, line, col, ".".join(loc), message))

    for q in queues:
        first = tree.queues.get(q.name)
        if first is not None:
            problem(q, ("metadata", "name"), f"duplicate queue {q.name!r}: already declared at {first.file}:"
                                             f"{first.line}")
            continue
        tree.queues[q.name] = q
    for q in tree.queues.values():
        if q.parent and q.parent not in tree.queues:
            loc = ("spec", "parent") if q.doc.spec.parent is not None else ("metadata", "name")
            problem(q, loc, f"parent queue {q.parent!r} is not declared (declared: {_names(tree.queues)})")
    for name, q in tree.queues.items():
        kids = [tree.queues[c] for c in tree.children(name)]
        if not kids:
            continue
        mine = q.doc.spec.guarantee.as_core()
        for r in ("cpu", "memory", "gpu"):
            total = sum(k.doc.spec.guarantee.as_core().get(r, 0) for k in kids)
            if total and total > mine.get(r, 0):
                worst = max(kids, key=lambda k: k.doc.spec.guarantee.as_core().get(r, 0))
                problem(worst, ("spec", "guarantee", r),
                        f"the guarantees of {name}'s children ({', '.join(k.name for k in kids)}) add up to more "
                        f"{r} than {name} itself is guaranteed ({_show(r, total)} > {_show(r, mine.get(r, 0))})")
        mine_models = q.doc.spec.guarantee.models_core()
        for model in sorted({m for k in kids for m in k.doc.spec.guarantee.models_core()}):
            total = sum(k.doc.spec.guarantee.models_core().get(model, 0) for k in kids)
            room = mine_models.get(model, mine.get("gpu", 0))
            if total and total > room:
                worst = max(kids, key=lambda k: k.doc.spec.guarantee.models_core().get(model, 0))
                what = f"{model} GPUs" if model in mine_models else "GPUs"
                problem(worst, ("spec", "guarantee", "gpuByModel", model),
                        f"the {model} guarantees of {name}'s children ({', '.join(k.name for k in kids)}) add up to "
                        f"more than {name} itself is guaranteed of {what} ({_show('gpu', total)} > "
                        f"{_show('gpu', room)})")
    if problems:
        return QueueTree(), sorted(problems, key=lambda p: (str(p.file), p.line, p.col))
    return tree, []


def job_queue_problem(queue: str, tree: QueueTree) -> str | None:
    """Why a job may not use `queue` under `tree`, or None (anything goes when no queue is declared)."""
    if not tree:
        return None
    if queue not in tree.queues:
        return f"unknown queue {queue!r}; known queues: {', '.join(tree.leaves())}"
    kids = tree.children(queue)
    if kids:
        return f"queue {queue!r} has child queues; put the job in one of them: {', '.join(kids)}"
    return None


def job_priority_problem(queue: str, priority: int, tree: QueueTree) -> str | None:
    rng = tree.priority_of(queue)
    if rng is None or rng.min <= priority <= rng.max:
        return None
    return f"priority {priority} is outside queue {queue}'s range {rng.min}..{rng.max}"


def queue_model_warnings(tree: QueueTree, nodes: Sequence[Any]) -> list[Any]:
    """One warning per `gpuByModel` name that matches no GPU product of the cluster (a typo, or hardware gone).

    `nodes` are `bigk.cluster.model.Node`s; the quota still applies if such GPUs join later.
    """
    from bigk.cluster.gpu_labels import matching_products

    products = sorted({gpu.model for node in nodes for gpu in node.gpus})
    have = ", ".join(products) or "none"
    out = []
    for q in tree.queues.values():
        for part in ("guarantee", "max"):
            for model in getattr(q.doc.spec, part).models_core():
                if matching_products(model, products):
                    continue
                where = ("spec", part, "gpuByModel", model)
                line, col = q.locate(where, prefer_key=True)
                out.append(SpecProblem(q.file, line, col, ".".join(where),
                                       f"model {model!r} matches no GPU of the cluster (products there: {have}; "
                                       "matching rule: docs/gpus.md)", "warning"))
    return out


def queue_json_schema() -> dict[str, Any]:
    """JSON Schema of a `kind: Queue` document (for editors and CI linters)."""
    schema = QueueDoc.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "https://bigk.io/schemas/queue-v1.json",
            "title": "bigk Queue (bigk.io/v1)", **{k: v for k, v in schema.items() if k != "title"}}


def _names(queues: Iterable[str]) -> str:
    return ", ".join(sorted(queues)) or "none"


def _show(resource: str, value: int) -> str:
    if resource == "memory":
        return f"{value} MiB"
    return f"{value / 1000:g} {'GPUs' if resource == 'gpu' else 'CPUs'}"


def settle_queues(result: Any, found: Sequence[tuple[Path, Sequence[LoadedQueue]]], incomplete: bool,
                  queues_from: Sequence[Path] | None = None) -> None:
    """Build the tree from the good files' queues and check every loaded job against it (in place).

    `result` is the loader's SpecLoadResult. `incomplete`: a file declaring queues
    failed, so the tree is not known (`result.queues_failed`; the service keeps its
    last good tree and jobs are not checked). With `queues_from` (the `--queues`
    file Helm writes), queues declared anywhere else are ignored with a warning:
    one source of truth per install, and the Helm values win.
    """
    chosen: list[LoadedQueue] = []
    allowed = {p.resolve() for p in queues_from} if queues_from else None
    for path, queues in found:
        if allowed is not None and path.resolve() not in allowed:
            for q in queues:
                line, col = q.locate(("kind",))
                result.warnings.append(SpecProblem(path, line, col, "kind", f"queue {q.name} ignored: this install "
                                                   "takes its queues from --queues (Helm values win)", "warning"))
            continue
        chosen.extend(queues)
    tree, problems = check_tree(chosen)
    stands = declarations_stand(result, problems, incomplete)
    result.queues, result.queues_failed = (tree, False) if stands else (QueueTree(), True)
    if not stands or not tree:
        return
    bad: dict[Path, list[SpecProblem]] = {}
    for job in list(result.jobs.values()):
        spec = job.spec.spec
        message = job_queue_problem(spec.queue, tree)
        where = "spec.queue"
        if message is None:
            rng = tree.priority_of(spec.queue)
            if rng is not None and rng.default is not None and "priority" not in spec.model_fields_set:
                job.spec = job.spec.model_copy(update={"spec": spec.model_copy(update={"priority": rng.default})})
                continue
            message, where = job_priority_problem(spec.queue, spec.priority, tree), "spec.priority"
        if message is not None:
            line, col = job.locate(tuple(where.split(".")))
            bad.setdefault(job.file, []).append(SpecProblem(job.file, line, col, where, message))
    for problems_of_file in bad.values():
        result.problems += problems_of_file
    _fail_files(result, set(bad))


def declarations_stand(result: Any, problems: Sequence[SpecProblem], incomplete: bool) -> bool:
    """Whether the queues (or clusters) the loader found stand: no file declaring them failed (`incomplete`)
    and checked together they have no `problems`. If not, the problems join `result`'s and their files fail."""
    if not incomplete and not problems:
        return True
    result.problems += problems
    _fail_files(result, {p.file for p in problems})
    return False


def _fail_files(result: Any, files: set[Path]) -> None:
    """A file with any problem contributes no jobs (the loader's rule), queues' problems included."""
    if not files:
        return
    result.failed_files |= files
    for name in [n for n, job in result.jobs.items() if job.file in files]:
        del result.jobs[name]
