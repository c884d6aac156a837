"""Which cluster a run goes to: one gang, one snapshot per cluster, one choice and a reason for every cluster.

Pure and deterministic (no clock, no I/O): the same views give the same choice. The run is
all-or-nothing: its driver and its gang minimum of executors must fit in ONE cluster; a gang is
never split. Per cluster, in this order (the first that applies is that cluster's reason):

 1. cordoned, or unreachable: nothing new goes there;
 2. not allowed by the run's spec: not in `spec.clusters` (when given), or labels that do not match
    `spec.clusterSelector`;
 3. never: some pod of the gang fits no node even when the cluster is empty, the gang needs more
    CPU, memory or GPUs than the cluster has in all, or more than its queue's maximum in that cluster;
 4. fits now: the gang is placed, all-or-nothing, on the cluster's accounted state with the cluster's
    placement policy — the scheduler's own trial (`Placer.trial` over `Filters`), the same fit rule
    the cluster's scheduler will apply — and rolled back (kept, with `keep=True`: the simulator);
 5. else it waits there: why it does not fit now (the trial's failing pod and the nodes' reasons, or
    the per-cluster queue maximum), and an estimate of how long.

Choice: among clusters where it fits now, by the spec's preference (order of `spec.clusters`;
unlisted last), then cost tier (cheaper first), then fill (`spread`, the default: the cluster with
the largest share of the gang's main resource free after it, GPUs for a GPU gang, else CPU; `pack`: the
smallest), then name. On the Alibaba trace spread over clusters of different GPU models, spread left
0.6-0.75 points of GPUs unallocated beyond one cluster of the same nodes, pack 1.5-2.3 (README,
`bigk simulate --split`); on clusters of the same shape both cost under 0.3.
When it fits nowhere now, the cluster where it is expected to start
soonest, then preference, cost tier and name. The estimate is the caller's forecast when it gives
one for every such cluster (`ClusterView.expected_wait_s`, e.g. from `bigk.scheduler.forecast`);
else the backlog: for each resource, what the cluster's queued work plus this gang lacks beyond the
room free now, as a share of the cluster's capacity; the largest share is the estimate (0.5 = half
the cluster must drain first). Queued work ahead does not stop a gang that fits now: it starts by
backfill, as the cluster's scheduler would let it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from bigk.cluster.model import MILLI_GPU, Gang, PodRequest, Toleration
from bigk.cluster.state import ClusterState, Placement
from bigk.cluster.usage import ZERO, Tally, Usage
from bigk.scheduler.explain import amount
from bigk.scheduler.filters import Filters, describe_request
from bigk.scheduler.placement import Placer
from bigk.scheduler.policies.base import Policy, make_policy
from bigk.scheduler.units import RESOURCES, Item

Fill = Literal["pack", "spread"]
DEFAULT_POLICY = "binpack"


@dataclass(frozen=True)
class LabelRequirement:
    """One requirement on a cluster's labels (a Kubernetes label selector expression)."""

    key: str
    operator: str  # In | NotIn | Exists | DoesNotExist
    values: tuple[str, ...] = ()

    def holds(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "Exists":
            return self.key in labels
        if self.operator == "DoesNotExist":
            return self.key not in labels
        inside = labels.get(self.key) in self.values
        return inside if self.operator == "In" else not inside

    def __str__(self) -> str:
        if self.operator in ("Exists", "DoesNotExist"):
            return f"{'' if self.operator == 'Exists' else '!'}{self.key}"
        return f"{self.key} {'in' if self.operator == 'In' else 'notin'} ({','.join(self.values)})"


@dataclass(frozen=True)
class ClusterRule:
    """What a run's spec says about clusters: `names` allowed, best first (empty: any), and a label selector."""

    names: tuple[str, ...] = ()
    match_labels: tuple[tuple[str, str], ...] = ()
    expressions: tuple[LabelRequirement, ...] = ()

    def refusal(self, name: str, labels: Mapping[str, str]) -> str:
        """Why the spec keeps the run off this cluster ('' when it may go there)."""
        if self.names and name not in self.names:
            return f"not in the job's clusters ({', '.join(self.names)})"
        for key, value in self.match_labels:
            if labels.get(key) != value:
                have = labels.get(key)
                return f"clusterSelector wants {key}={value}, the cluster has " + (
                    f"{key}={have}" if have is not None else f"no label {key}")
        for req in self.expressions:
            if not req.holds(labels):
                return f"clusterSelector requirement {req} does not hold"
        return ""

    def rank(self, name: str) -> int:
        """Preference: the position in `names` (unlisted clusters after every listed one)."""
        return self.names.index(name) if name in self.names else len(self.names)


@dataclass
class ClusterView:
    """One cluster as the dispatcher sees it.

    `state`: its accounted usage (bound pods and reservations), e.g. a copy of its scheduler's state after
    the last cycle; the dispatcher places the gang on it for its trial and takes it off again (unless the
    caller asks to keep it). `queued`: the demand of units waiting there (for the estimate). `queue_used` and
    `queue_limits`: per queue, what it uses in this cluster and its maximum here (the clusters file's
    per-cluster limits), as `Usage` / {"cpu", "memory", "gpu"} in its units. `policy`: the cluster's placement
    policy (default binpack). `expected_wait_s`: the caller's forecast of when this gang would start here.
    """

    name: str
    state: ClusterState
    labels: dict[str, str] = field(default_factory=dict)
    cost_tier: int = 0
    cordoned: bool = False
    reachable: bool = True
    queued: Usage = ZERO
    queue_used: dict[str, Usage] = field(default_factory=dict)
    queue_limits: dict[str, dict[str, int]] = field(default_factory=dict)
    policy: Policy | None = None
    expected_wait_s: float | None = None


@dataclass(frozen=True)
class Verdict:
    """What the dispatcher found for one cluster."""

    cluster: str
    outcome: str  # "chosen" | "fits" | "waits" | "never" | "excluded"
    reason: str  # one line for people
    wait: float = 0.0  # the estimate, for outcome "waits" (seconds when `seconds`, else backlog share)
    seconds: bool = False


@dataclass
class Dispatch:
    """The choice (None: no cluster could ever hold the run) and a verdict for every cluster, in input order."""

    cluster: str | None
    verdicts: list[Verdict]
    how: str  # "fits-now" | "soonest" | "none"
    placed: list[tuple[str, Placement]] = field(default_factory=list)  # with keep=True: the gang on the chosen state

    @property
    def reasons(self) -> dict[str, str]:
        return {v.cluster: v.reason for v in self.verdicts}

    def message(self) -> str:
        """One line: where and why, then why not each other cluster."""
        head = next((v for v in self.verdicts if v.outcome == "chosen"), None)
        others = "; ".join(f"{v.cluster}: {v.reason}" for v in self.verdicts if v.outcome != "chosen")
        if head is None:
            return f"no cluster can hold it: {others}"
        return f"{head.cluster}: {head.reason}" + (f"; not {others}" if others else "")


def gang_items(gang: Gang, driver_selector: dict[str, str] | None = None,
               driver_tolerations: Sequence[Toleration] | None = None) -> list[Item]:
    """The gang's admission as the scheduler places it: the driver, then its minimum of executors.

    The gang's selector and tolerations are its executors'; the driver's may be given apart (they default
    to the gang's)."""
    pools = tuple(gang.preferred_pools)
    tolerations = tuple(gang.tolerations)
    driver = Item(gang.driver, dict(gang.node_selector if driver_selector is None else driver_selector),
                  tolerations if driver_tolerations is None else tuple(driver_tolerations), pools)
    executor = Item(gang.executor, dict(gang.node_selector), tolerations, pools)
    return [driver, *[executor] * gang.min_executors]


def need_of(items: Sequence[Item]) -> Usage:
    """What the items ask for together."""
    tally = Tally()
    for it in items:
        tally.add_request(it.request)
    return tally.frozen()


def dispatch(gang: Gang, views: Sequence[ClusterView], rule: ClusterRule | None = None, *,
             items: Sequence[Item] | None = None, now: float = 0.0, fill: Fill = "spread",
             keep: bool = False, stale_after_s: float | None = None) -> Dispatch:
    """Choose one cluster for `gang` (module docstring). `items` default to `gang_items(gang)`; `keep` leaves
    the gang placed on the chosen cluster's state (its placements in `Dispatch.placed`, keyed
    `<gang>/<n>`), as the simulator wants; otherwise every state is left as it came."""
    rule = rule or ClusterRule()
    names = [view.name for view in views]
    if len(set(names)) != len(names):
        raise ValueError(f"cluster names must be unique: {', '.join(names)}")
    units = list(items) if items is not None else gang_items(gang)
    need = need_of(units)
    keys = [f"{gang.name}/{n}" for n in range(len(units))]
    found: list[tuple[ClusterView, Verdict, list[tuple[str, Item, Placement]], float]] = []
    for view in views:
        verdict, placed, room = _judge(view, gang, units, keys, need, rule, now, stale_after_s)
        found.append((view, verdict, placed, room))
    fits = [(v, verdict, placed, room) for v, verdict, placed, room in found if verdict.outcome == "fits"]
    waiting = [view for view, verdict, _, _ in found if verdict.outcome == "waits"]
    seconds = bool(waiting) and all(view.expected_wait_s is not None for view in waiting)
    for n, (view, verdict, placed, room) in enumerate(found):
        if verdict.outcome == "waits":  # the forecast where every waiting cluster has one, else the backlog
            wait = float(view.expected_wait_s) if seconds and view.expected_wait_s is not None else verdict.wait
            told = f"~{wait:.0f} s" if seconds else f"backlog {wait:.2f} of its capacity"
            found[n] = (view, Verdict(view.name, "waits", f"{verdict.reason}; expected wait {told}", wait, seconds),
                        placed, room)
    waits = [(v, verdict) for v, verdict, _, _ in found if verdict.outcome == "waits"]
    chosen: str | None = None
    how = "none"
    if fits:
        sign = 1 if fill == "pack" else -1
        best = min(fits, key=lambda f: (rule.rank(f[0].name), f[0].cost_tier, sign * f[3], f[0].name))
        chosen, how = best[0].name, "fits-now"
    elif waits:
        best_wait = min(waits, key=lambda w: (w[1].wait, rule.rank(w[0].name), w[0].cost_tier, w[0].name))
        chosen, how = best_wait[0].name, "soonest"
    winner = next((view for view, _, _, _ in found if view.name == chosen), None)
    room_of = {view.name: room for view, _, _, room in found}
    kept: list[tuple[str, Placement]] = []
    verdicts: list[Verdict] = []
    for view, verdict, placed, _ in found:
        if placed and keep and view.name == chosen:
            kept = [(key, placement) for key, _, placement in placed]
        elif placed:
            for key, _, _ in reversed(placed):
                view.state.release(key)
        verdicts.append(_final(verdict, chosen, how, view, rule, winner, fill, room_of))
    return Dispatch(chosen, verdicts, how, kept)


def _final(verdict: Verdict, chosen: str | None, how: str, view: ClusterView, rule: ClusterRule,
           winner: ClusterView | None, fill: str, room_of: dict[str, float]) -> Verdict:
    """The verdict as told: the chosen one says why it won, the others why they lost."""
    if verdict.cluster == chosen:
        why = verdict.reason if how == "fits-now" else f"expected to start here soonest ({verdict.reason})"
        return Verdict(verdict.cluster, "chosen", why, verdict.wait, verdict.seconds)
    if verdict.outcome == "fits" and winner is not None:
        if rule.rank(winner.name) < rule.rank(view.name):
            detail = "the job prefers it"
        elif winner.cost_tier < view.cost_tier:
            detail = f"cheaper: cost tier {winner.cost_tier} < {view.cost_tier}"
        elif winner.cost_tier == view.cost_tier and rule.rank(winner.name) == rule.rank(view.name):
            detail = f"same preference and cost tier; {fill}: {room_of[winner.name]:.0%} of it left free vs " \
                     f"{room_of[view.name]:.0%} here"
        else:
            detail = "ranked first"
        return Verdict(verdict.cluster, "fits", f"fits now too, but {winner.name} goes first ({detail})")
    if verdict.outcome == "waits" and how == "fits-now":
        return Verdict(verdict.cluster, "waits", f"{verdict.reason}; {chosen} fits now", verdict.wait,
                       verdict.seconds)
    return verdict


def _judge(view: ClusterView, gang: Gang, units: list[Item], keys: list[str], need: Usage, rule: ClusterRule,
           now: float, stale_after_s: float | None) -> tuple[Verdict, list[tuple[str, Item, Placement]], float]:
    """One cluster's verdict (before ranking), the trial's placements when it fits (still allocated), and the
    share of the gang's main resource left free there after it."""
    name = view.name
    if view.cordoned:
        return Verdict(name, "excluded", "cordoned: nothing new is dispatched there"), [], 0.0
    if not view.reachable:
        return Verdict(name, "excluded", "unreachable"), [], 0.0
    refusal = rule.refusal(name, view.labels)
    if refusal:
        return Verdict(name, "excluded", refusal), [], 0.0
    state = view.state
    filters = Filters(state, now, stale_after_s)
    placer = Placer(state, filters, view.policy or make_policy(DEFAULT_POLICY), now)
    never = placer.never_fits(units)
    if never is not None:
        _, reasons = filters.reasons(never.request, never.selector, never.tolerations, never.constraints)
        role = "driver" if never is units[0] else "executor"
        top = ", ".join(f"{n} {r}" for r, n in list(reasons.items())[:3]) or "none"
        return Verdict(name, "never", f"no node could ever hold its {role} ({_pod(never.request)}; nodes: {top})"), \
            [], 0.0
    capacity = _capacity(state)
    for resource in RESOURCES:
        wanted, total = need.get(resource), capacity.get(resource)
        if wanted > total:
            return Verdict(name, "never", f"it needs {amount(resource, wanted)} in all, the cluster has "
                           f"{amount(resource, total)}"), [], 0.0
    limits = view.queue_limits.get(gang.queue, {})
    used = view.queue_used.get(gang.queue, ZERO)
    over = ""
    for resource in RESOURCES:
        cap, wanted = limits.get(resource), need.get(resource)
        if cap is None or wanted == 0:
            continue
        if wanted > cap:
            return Verdict(name, "never", f"it needs {amount(resource, wanted)}, more than queue {gang.queue}'s "
                           f"{resource} maximum here ({amount(resource, cap)})"), [], 0.0
        if used.get(resource) + wanted > cap and not over:
            over = (f"queue {gang.queue} would exceed its {resource} maximum here ({amount(resource, cap)}; it uses "
                    f"{amount(resource, used.get(resource))})")
    if not over:
        placed, failure = placer.trial(units, keys, all_or_nothing=True)
        if failure is None:
            room = _free_share(state, need, capacity)
            where = len({p.node for _, _, p in placed})
            pods = f"{len(units)} pod" + ("s" if len(units) > 1 else "")
            return Verdict(name, "fits", f"fits now ({pods} on {where} node{'s' if where > 1 else ''})"), placed, room
        role = "driver" if failure.index == 0 else f"executor {failure.index} of {len(units) - 1}"
        top = ", ".join(f"{n} {r}" for r, n in list(failure.reasons.items())[:3])
        over = (f"its {role} does not fit now (it needs {describe_request(failure.item.request)}; nodes: "
                f"{top or 'no room'})")
    return Verdict(name, "waits", over, _backlog(view, need, capacity)), [], 0.0


def _pod(req: PodRequest) -> str:
    text = f"{req.cpu_milli / 1000:g} CPU, {req.memory_mib} MiB"
    if req.is_fractional:
        text += f", {req.gpu_milli / MILLI_GPU:g} GPU"
    elif req.is_gpu:
        text += f", {req.gpu_count} GPU" + ("s" if req.gpu_count > 1 else "")
    if req.gpu_models:
        text += f" of {'|'.join(sorted(req.gpu_models))}"
    return text


def _capacity(state: ClusterState) -> Usage:
    """What the cluster's schedulable nodes hold in all."""
    ok = state.schedulable
    return Usage(int(state.cpu_cap[ok].sum()), int(state.mem_cap[ok].sum()), int(state.gpu_count[ok].sum()) * MILLI_GPU)


def _free(state: ClusterState) -> Usage:
    ok = state.schedulable
    return Usage(int(state.cpu_free[ok].sum()), int(state.mem_free[ok].sum()), int(state.gpu_milli_free[ok].sum()))


def _main(need: Usage, capacity: Usage) -> str:
    """The gang's main resource: GPUs when it asks for any, else CPU."""
    return "gpu" if need.gpu > 0 and capacity.gpu > 0 else "cpu"


def _free_share(state: ClusterState, need: Usage, capacity: Usage) -> float:
    main = _main(need, capacity)
    return _free(state).get(main) / capacity.get(main) if capacity.get(main) else 0.0


def _backlog(view: ClusterView, need: Usage, capacity: Usage) -> float:
    """What the queued work plus this gang lacks beyond the free room, as a share of capacity (the largest)."""
    lacking = view.queued + need - _free(view.state)
    return max((max(0, lacking.get(r)) / capacity.get(r) for r in RESOURCES if capacity.get(r)), default=0.0)
