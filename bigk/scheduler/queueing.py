"""Queue order and hierarchical fair share: which unit goes next, and what a queue may still take.

Queues form a tree (`Queue.parent`; a name not declared is a queue of its own at
the top, weight 1, no guarantee or maximum). Usage is counted at every level: a
parent uses what its subtree uses (bound pods and reservations).

Order: priority first; then, level by level from the top of the tree, queues
still below their guarantee before the others, and among those the smaller
dominant resource share (the largest of the queue's CPU, memory and GPU shares
of the cluster) divided by the weight; then age; then name, so that equal inputs
always give the same order. Usage is updated as the cycle admits work, so queues
interleave.

Limits, checked at every level of a queue's path: its maximum; its guarantee when
it may not borrow (`borrow: false`); and room kept for the unused guarantee of a
queue elsewhere in the tree that does not lend (`lend: false`).

GPU models (`Queue.maximum_models` / `guaranteed_models`, keyed by model names
such as `A100`): usage per model is counted where GPUs are (the product of the
node, `Usage.gpu_by_model`). Before a unit is placed, `open_models` closes, for
that unit, every product on which its whole GPU need would break a per-model
maximum at some level of its path (as Kueue gives a pod set one flavor, a unit
may not count on splitting across models to fit); its GPU items are then kept
off nodes of closed products. When no product the unit may use is open, it waits
with the limit as its explanation. Per-model guarantees put a queue below its
guarantee in the order (first), protect its GPUs of that model from reclaim and
preemption, and let it reclaim when its GPU items name only models it is
guaranteed. Dominant share stays over CPU, memory and all GPUs, so a tree
without per-model quotas decides exactly as before.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np

from bigk.cluster.affinity import NODE_NAME_FIELD, Clause, Requirement, Term, combine
from bigk.cluster.gpu_labels import model_allowed, model_matches
from bigk.cluster.model import PodRequest, Queue
from bigk.cluster.state import ClusterState
from bigk.cluster.usage import ZERO, Tally, Usage
from bigk.scheduler.explain import amount
from bigk.scheduler.units import RESOURCES, Item, Unit

UsageLike = Usage | tuple[int, int, int]  # the positional triple older callers still pass
MAX_DEPTH = 16  # deeper trees (or parent loops the spec layer missed) are cut here


@dataclass(frozen=True)
class Limit:
    """A queue limit that admitting some work would break."""

    queue: str  # the queue whose limit it is (the unit's queue or an ancestor, or a queue that does not lend)
    resource: str  # "cpu" | "memory" | "gpu"
    limit: int  # in the resource's unit (milli-CPU, MiB, milli-GPU)
    kind: str  # "maximum" | "guarantee" (borrow: false) | "lend" (room kept for another queue)
    model: str = ""  # a per-model GPU limit: the model name as the queue declares it (e.g. "A100")
    used: int = 0  # for a per-model limit: what the queue already uses of that model (milli-GPU)


def usage_on(state: ClusterState, req: PodRequest, node: str | int) -> Usage:
    """What `req` uses on `node` (name or index), GPUs counted under the node's GPU product."""
    i = node if isinstance(node, int) else state.index.get(node, -1)
    model = state.nodes[i].gpu_model if 0 <= i < len(state.nodes) else ""
    return Usage.of_request(req, model)


class QueueBook:
    """Per-queue usage (at every level of the tree) against weights, guarantees and maxima."""

    def __init__(self, queues: dict[str, Queue], totals: UsageLike) -> None:
        self.queues = queues
        self.totals = Usage.of(totals)
        self._totals3 = self.totals.triple()
        self.usage: dict[str, Tally] = {}  # per queue, its whole subtree
        self.leaving: dict[str, Tally] = {}  # held by pods being evicted: still running, soon gone
        self._paths: dict[str, tuple[str, ...]] = {}
        self._guarded: dict[str, bool] = {}
        self._keepers: list[str] | None = None
        self._per_model = any(q.maximum_models or q.guaranteed_models for q in queues.values())

    def queue(self, name: str) -> Queue:
        q = self.queues.get(name)
        if q is None:
            q = self.queues[name] = Queue(name)
        return q

    def path(self, name: str) -> tuple[str, ...]:
        """The queue's ancestors from the top of the tree down to the queue itself."""
        cached = self._paths.get(name)
        if cached is not None:
            return cached
        chain = [name]
        q = self.queue(name)
        while q.parent and q.parent not in chain and len(chain) < MAX_DEPTH:
            chain.append(q.parent)
            q = self.queue(q.parent)
        out = tuple(reversed(chain))
        self._paths[name] = out
        return out

    def guarded(self, name: str) -> bool:
        """Whether the queue or an ancestor has a guarantee: else evicting from it never cuts into one, and what
        its victims use need not be counted (`protected` is False for it whatever they use)."""
        cached = self._guarded.get(name)
        if cached is None:
            cached = self._guarded[name] = any(self.queue(level).guaranteed or self.queue(level).guaranteed_models
                                               for level in self.path(name))
        return cached

    def add(self, name: str, amount: UsageLike, sign: int = 1) -> None:
        u = Usage.of(amount)
        for level in self.path(name):
            t = self.usage.get(level)
            if t is None:
                t = self.usage[level] = Tally()
            t.add(u, sign)

    def used(self, name: str) -> Usage:
        t = self.usage.get(name)
        return t.frozen() if t is not None else ZERO

    def _triple(self, name: str) -> tuple[int, int, int]:
        t = self.usage.get(name)
        return (t.cpu, t.memory, t.gpu) if t is not None else (0, 0, 0)

    def _on_model(self, name: str, alias: str, table: dict[str, Tally] | None = None) -> int:
        t = (self.usage if table is None else table).get(name)
        if t is None or not t.by_model:
            return 0
        return sum(v for m, v in t.by_model.items() if model_matches(m, alias))

    def dominant_share(self, name: str) -> float:
        u = self._triple(name)
        return max((u[i] / t if t else 0.0) for i, t in enumerate(self._totals3))

    def below_guarantee(self, name: str) -> bool:
        q = self.queue(name)
        u = self._triple(name)
        g = q.guaranteed
        if g and (u[0] < g.get("cpu", 0) or u[1] < g.get("memory", 0) or u[2] < g.get("gpu", 0)):
            return True
        return bool(q.guaranteed_models) and any(self._on_model(name, alias) < v
                                                 for alias, v in q.guaranteed_models.items())

    def over_maximum(self, name: str, need: UsageLike) -> Limit | None:
        """The first limit that taking `need` in queue `name` would break, or None.

        Per-model maxima are checked on the models `need` names (`gpu_by_model`); a
        need not placed yet has none, and `open_models` restricts where it may go.
        """
        n = Usage.of(need)
        want = n.triple()
        for level in self.path(name):
            q = self.queue(level)
            u = self._triple(level)
            for i, r in enumerate(RESOURCES):
                if want[i] <= 0:
                    continue
                cap = q.maximum.get(r)
                if cap is not None and u[i] + want[i] > cap:
                    return Limit(level, r, cap, "maximum")
                g = q.guaranteed.get(r)
                if not q.borrow and g is not None and u[i] + want[i] > g:
                    return Limit(level, r, g, "guarantee")
            for alias, cap in sorted(q.maximum_models.items()):
                more = n.on_model(alias)
                have = self._on_model(level, alias)
                if more > 0 and have + more > cap:
                    return Limit(level, "gpu", cap, "maximum", alias, have)
        return self._kept_room(name, want)

    def model_limits(self, name: str, gpu_need: int) -> dict[str, Limit]:
        """Per-model maxima on queue `name`'s path that `gpu_need` more milli-GPU of that model would break.

        By model name (as declared); the first (topmost) level breaking it wins.
        """
        out: dict[str, Limit] = {}
        if gpu_need <= 0 or not self._per_model:
            return out
        for level in self.path(name):
            for alias, cap in sorted(self.queue(level).maximum_models.items()):
                have = self._on_model(level, alias)
                if have + gpu_need > cap and alias not in out:
                    out[alias] = Limit(level, "gpu", cap, "maximum", alias, have)
        return out

    def closed_products(self, name: str, gpu_need: int, products: Iterable[str]) -> dict[str, Limit]:
        """Products of `products` on which `gpu_need` more milli-GPU for queue `name` would break a model maximum."""
        limits = self.model_limits(name, gpu_need)
        out: dict[str, Limit] = {}
        if not limits:
            return out
        for product in products:
            hit = next((lim for alias, lim in limits.items() if model_matches(product, alias)), None)
            if hit is not None:
                out[product] = hit
        return out

    def _kept_room(self, name: str, need: tuple[int, int, int]) -> Limit | None:
        """Room other queues keep for their unused guarantee (`lend: false`) that `need` would take."""
        if self._keepers is None:
            self._keepers = sorted(n for n, q in self.queues.items() if not q.lend and q.guaranteed)
        if not self._keepers:
            return None
        mine = set(self.path(name))
        keepers = [k for k in self._keepers if k not in mine]
        # a keeper inside another keeper's subtree is covered by the outer one's guarantee
        outer = [k for k in keepers if not any(a in keepers for a in self.path(k)[:-1])]
        if not outer:
            return None
        in_use = [0, 0, 0]
        for top in {self.path(n)[0] for n in self.usage}:
            for i, v in enumerate(self._triple(top)):
                in_use[i] += v
        for i, r in enumerate(RESOURCES):
            if need[i] <= 0:
                continue
            kept = {k: max(0, self.queue(k).guaranteed.get(r, 0) - self._triple(k)[i]) for k in outer}
            if in_use[i] + need[i] > self._totals3[i] - sum(kept.values()):
                holder = max(kept, key=lambda k: (kept[k], k))
                if kept[holder] > 0:
                    return Limit(holder, r, self.queue(holder).guaranteed[r], "lend")
        return None

    def leave(self, name: str, amount: UsageLike) -> None:
        """Record usage that evictions already issued will free."""
        u = Usage.of(amount)
        for level in self.path(name):
            t = self.leaving.get(level)
            if t is None:
                t = self.leaving[level] = Tally()
            t.add(u)

    def protected(self, name: str, victim: UsageLike, taken: Mapping[str, UsageLike] | None = None,
                  preemptor: str = "") -> bool:
        """Would evicting `victim` from queue `name` cut into a guarantee (per model included)?

        Checked for the victim's queue and each ancestor that is not also an
        ancestor of the preemptor's queue (moving room inside a subtree does not
        change what the subtree uses), after `taken` (victims already chosen, by
        queue) and the evictions already under way.
        """
        shared = set(self.path(preemptor)[:-1]) if preemptor else set()
        taken = taken or {}
        v = Usage.of(victim)
        vt = v.triple()
        for level in self.path(name):
            if level in shared:
                continue
            q = self.queue(level)
            if not q.guaranteed and not q.guaranteed_models:
                continue
            u = self.used(level)
            gone = self.leaving[level].frozen() if level in self.leaving else ZERO
            already = ZERO
            for other, took in taken.items():
                if level in self.path(other):
                    already = already + Usage.of(took)
            left = u - gone - already - v
            for i, r in enumerate(RESOURCES):
                g = q.guaranteed.get(r, 0)
                if g and vt[i] > 0 and left.get(r) < g:
                    return True
            for alias, g in q.guaranteed_models.items():
                if g and v.on_model(alias) > 0 and left.on_model(alias) < g:
                    return True
        return False

    def may_reclaim(self, name: str, need: UsageLike, models: frozenset[str] | None = None) -> bool:
        """Is queue `name` under its guarantee, and would `need` keep it within it?

        Such a queue takes back capacity other queues borrowed (Volcano's reclaim),
        whatever their priority, but never from inside their own guarantee. With
        `models` (the model names every GPU item of the unit is restricted to), a
        GPU need counts against the queue's guarantee for those models when the
        queue has no guarantee on GPUs as a whole.
        """
        q = self.queue(name)
        u = self._triple(name)
        want = Usage.of(need).triple()
        guarded = [i for i, r in enumerate(RESOURCES) if want[i] > 0 and q.guaranteed.get(r, 0) > 0]
        if not all(u[i] + want[i] <= q.guaranteed[RESOURCES[i]] for i in guarded):
            return False
        if want[2] > 0 and 2 not in guarded and models and q.guaranteed_models:
            covering = [a for a in q.guaranteed_models if all(_alias_covers(a, m) for m in models)]
            if not covering:
                return bool(guarded)
            return all(self._on_model(name, a) + want[2] <= q.guaranteed_models[a] for a in covering)
        return bool(guarded)

    def shares_path(self, victim: str, preemptor: str) -> bool:
        """Is the victim's queue the preemptor's queue or one of its ancestors?"""
        return victim in self.path(preemptor)

    def key(self, unit: Unit) -> tuple[object, ...]:
        levels = []
        for level in self.path(unit.queue):
            q = self.queue(level)
            weight = q.weight if q.weight > 0 else 1e-9
            levels.append((not self.below_guarantee(level), self.dominant_share(level) / weight))
        return (-unit.priority, tuple(levels), unit.created_at, unit.name)


def _alias_covers(alias: str, wanted: str) -> bool:
    """Does every product the job's model name `wanted` may use fall under the quota's model name `alias`?

    Judged on the names themselves: `wanted` is covered when it is `alias` or more
    specific (`A100-80GB` under `A100`): the alias, read as a product name, matches it.
    """
    return wanted.strip().upper() == alias.strip().upper() or model_matches(wanted, alias)


MODEL_REASON = "GPU model at the queue's maximum"


@dataclass(frozen=True)
class ModelHold:
    """Why a unit cannot start on any GPU model its queue still has room for."""

    state: str  # "queue-maximum" (room frees as the queue's pods end) | "never-fits" (the unit alone is too big)
    limit: Limit
    text: str


def unit_models(unit: Unit) -> frozenset[str] | None:
    """The model names every GPU item of `unit` is restricted to (None: some GPU item takes any model)."""
    names: set[str] = set()
    for it in unit.items:
        if it.request.is_gpu:
            if not it.request.gpu_models:
                return None
            names |= it.request.gpu_models
    return frozenset(names) if names else None


def _gpu_products(state: ClusterState, req: PodRequest) -> list[str]:
    """The products `req` could ever run on: its model names allow them and their nodes' GPU owner admits it."""
    owner = state.owner_ok(req)
    ids = state.gpu_model if owner is None else state.gpu_model[owner]
    present = {int(i) for i in np.unique(ids) if i >= 0}
    return [m for i, m in enumerate(state.models) if i in present and model_allowed(m, req.gpu_models)]


def open_models(book: QueueBook, unit: Unit, state: ClusterState) -> tuple[Unit, ModelHold | None]:
    """`unit` with its GPU items kept off products whose per-model maximum its GPU need would break.

    Returns the unit unchanged when its queue path has no per-model maximum (or it
    needs no GPU), and a `ModelHold` when no product its GPU items may use is open.
    """
    gpu_need = sum(it.request.total_gpu_milli for it in unit.items)
    closed = book.closed_products(unit.queue, gpu_need, state.models)
    if not closed:
        return unit, None
    items: list[Item] = []
    for it in unit.items:
        if not it.request.is_gpu:
            items.append(it)
            continue
        usable = _gpu_products(state, it.request)
        shut = [p for p in usable if p in closed]
        if not shut:
            items.append(it)
            continue
        if len(shut) == len(usable):
            limit = closed[shut[0]]
            return unit, _hold(unit.queue, limit, gpu_need)
        items.append(keep_off(it, state, set(shut)))
    return replace(unit, items=items), None


def open_item(book: QueueBook, queue: str, item: Item, state: ClusterState) -> Item | None:
    """One item (an extra executor) kept off products whose per-model maximum it would break; None: none open."""
    if not item.request.is_gpu:
        return item
    closed = book.closed_products(queue, item.request.total_gpu_milli, state.models)
    if not closed:
        return item
    usable = _gpu_products(state, item.request)
    shut = {p for p in usable if p in closed}
    if not shut:
        return item
    if len(shut) == len(usable):
        return None
    return keep_off(item, state, shut)


def keep_off(item: Item, state: ClusterState, products: set[str]) -> Item:
    """`item` with one more node constraint: not on nodes whose GPUs are of `products`."""
    ids = [i for i, m in enumerate(state.models) if m in products]
    names = tuple(state.nodes[i].name for i in np.flatnonzero(np.isin(state.gpu_model, ids)))
    clause = Clause((Term((Requirement(NODE_NAME_FIELD, "NotIn", names, on_name=True),)),), MODEL_REASON)
    return replace(item, constraints=combine(item.constraints, (clause,)))


def _hold(queue: str, limit: Limit, gpu_need: int) -> ModelHold:
    who = f"queue {queue}" if limit.queue == queue else f"queue {queue}'s parent {limit.queue}"
    cap = amount("gpu", limit.limit)
    if gpu_need > limit.limit:
        return ModelHold("never-fits", limit,
                         f"it needs {amount('gpu', gpu_need)}, more than {who}'s {limit.model} GPU maximum ({cap}): "
                         "it can never start on that model")
    return ModelHold("queue-maximum", limit,
                     f"{who} would exceed its {limit.model} GPU maximum ({cap}): {amount('gpu', limit.used)} of "
                     f"{limit.model} in use, {amount('gpu', gpu_need)} more needed; it starts when room frees")


def lane_key(u: Unit) -> tuple[object, ...]:
    """A unit's place in its queue's lane: priority, then age, then name."""
    return (-u.priority, u.created_at, u.name)


class UnitQueue:
    """Hands out units in queue order, re-reading fair share after every pick."""

    def __init__(self, units: Iterable[Unit], book: QueueBook) -> None:
        self.book = book
        by_queue: dict[str, list[Unit]] = {}
        for u in units:
            by_queue.setdefault(u.queue, []).append(u)
        self._lanes: dict[str, deque[Unit]] = {q: deque(sorted(us, key=lane_key))
                                                for q, us in sorted(by_queue.items())}

    def __bool__(self) -> bool:
        return any(self._lanes.values())

    def pop(self) -> Unit:
        best: tuple[object, ...] | None = None
        lane: deque[Unit] | None = None
        if len(self._lanes) == 1:  # one queue: nothing to weigh (its fair share orders nothing)
            return next(iter(self._lanes.values())).popleft()
        for d in self._lanes.values():
            if d:
                k = self.book.key(d[0])
                if best is None or k < best:
                    best, lane = k, d
        assert lane is not None
        return lane.popleft()


class UnitOrder:
    """Every waiting unit in its queue's lane, sorted by `lane_key`, kept across cycles: units are added and
    removed one by one as they change, so a cycle need not sort the whole backlog again."""

    def __init__(self) -> None:
        self._lanes: dict[str, list[tuple[tuple[object, ...], Unit]]] = {}
        self._at: dict[str, tuple[str, tuple[object, ...]]] = {}  # unit name -> (queue, lane key)

    def __len__(self) -> int:
        return len(self._at)

    def add(self, unit: Unit) -> None:
        """Add `unit`, or put it in place of the unit of that name."""
        self.remove(unit.name)
        key = lane_key(unit)
        lane = self._lanes.get(unit.queue)
        if lane is None:
            lane = self._lanes[unit.queue] = []
            self._lanes = dict(sorted(self._lanes.items()))
        lane.insert(bisect.bisect_left(lane, (key,)), (key, unit))
        self._at[unit.name] = (unit.queue, key)

    def remove(self, name: str) -> None:
        at = self._at.pop(name, None)
        if at is None:
            return
        queue, key = at
        lane = self._lanes[queue]
        del lane[bisect.bisect_left(lane, (key,))]
        if not lane:
            del self._lanes[queue]

    def walk(self, book: QueueBook) -> OrderWalk:
        """Hand the units out in `UnitQueue`'s order, without copying them."""
        return OrderWalk([lane for lane in self._lanes.values() if lane], book)


class OrderWalk:
    """`UnitQueue.pop` over a `UnitOrder`'s lanes, by position (the lanes are not changed)."""

    def __init__(self, lanes: list[list[tuple[tuple[object, ...], Unit]]], book: QueueBook) -> None:
        self.book = book
        self._lanes = lanes
        self._next = [0] * len(lanes)

    def __bool__(self) -> bool:
        return any(i < len(lane) for i, lane in zip(self._next, self._lanes, strict=True))

    def pop(self) -> Unit:
        if len(self._lanes) == 1:  # one queue: nothing to weigh
            i = self._next[0]
            self._next[0] = i + 1
            return self._lanes[0][i][1]
        best: tuple[object, ...] | None = None
        pick = -1
        for n, lane in enumerate(self._lanes):
            i = self._next[n]
            if i < len(lane):
                k = self.book.key(lane[i][1])
                if best is None or k < best:
                    best, pick = k, n
        assert pick >= 0
        i = self._next[pick]
        self._next[pick] = i + 1
        return self._lanes[pick][i][1]
