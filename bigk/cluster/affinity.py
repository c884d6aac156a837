"""Node constraints of a pod beyond its nodeSelector: required node affinity, volume topology, refusals.

Kubernetes expresses "which nodes may run this pod" as NodeSelectors: a list of
terms that are ORed, each term a list of requirements that are ANDed. A pod's
required node affinity is one such selector; so is the node affinity of each
PersistentVolume it mounts, a StorageClass's allowedTopologies and a claim's
selected node. `PodConstraints` ANDs any number of them (each a `Clause` that
names the reason a node failing it is counted under), and may carry a
`refusal`: a one-line reason, naming the kube-scheduler plugin, why no node can
take the pod (a feature bigk does not implement, or a volume not ready yet).

Everything here depends on a node's name and labels only, so the scheduler
evaluates it once per node and caches the mask per distinct constraints value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

NODE_NAME_FIELD = "metadata.name"

# The reasons a node failing a clause is counted under (in `Filters.reasons`), as kube-scheduler words them.
REASON_NODE_AFFINITY = "node affinity mismatch"
REASON_VOLUME_AFFINITY = "volume node affinity conflict"
REASON_VOLUME_ZONE = "volume zone conflict"
REASON_STORAGE_TOPOLOGY = "storage class topology mismatch"
REASON_SELECTED_NODE = "volume provisioned for another node"


@dataclass(frozen=True)
class Requirement:
    """One node selector requirement: In, NotIn, Exists, DoesNotExist, Gt, Lt.

    `on_name` is a matchFields requirement on `metadata.name` (In/NotIn only);
    otherwise it reads the label `key`.
    """

    key: str
    operator: str
    values: tuple[str, ...] = ()
    on_name: bool = False

    def matches(self, name: str, labels: Mapping[str, str]) -> bool:
        if self.on_name:
            if self.operator == "In":
                return name in self.values
            if self.operator == "NotIn":
                return name not in self.values
            return False
        op = self.operator
        if op == "In":
            return self.key in labels and labels[self.key] in self.values
        if op == "NotIn":
            return self.key not in labels or labels[self.key] not in self.values
        if op == "Exists":
            return self.key in labels
        if op == "DoesNotExist":
            return self.key not in labels
        if op in ("Gt", "Lt"):
            if self.key not in labels or len(self.values) != 1:
                return False
            try:
                have, want = int(labels[self.key]), int(self.values[0])
            except ValueError:
                return False
            return have > want if op == "Gt" else have < want
        return False  # an unknown operator matches nothing, as in Kubernetes


@dataclass(frozen=True)
class Term:
    """Requirements that must all hold. An empty term matches no node (Kubernetes' rule)."""

    requirements: tuple[Requirement, ...]

    def matches(self, name: str, labels: Mapping[str, str]) -> bool:
        return bool(self.requirements) and all(r.matches(name, labels) for r in self.requirements)


@dataclass(frozen=True)
class Clause:
    """Terms of which at least one must hold (one NodeSelector); `reason` names a node that fails it."""

    terms: tuple[Term, ...]
    reason: str = REASON_NODE_AFFINITY

    def matches(self, name: str, labels: Mapping[str, str]) -> bool:
        return any(t.matches(name, labels) for t in self.terms)


@dataclass(frozen=True)
class PodConstraints:
    """Every node-only constraint of a pod besides nodeSelector and taints, precomputed once.

    `clauses` are ANDed. A non-empty `refusal` means no node can take the pod now;
    the text names the kube-scheduler plugin and is shown to users as is.
    """

    clauses: tuple[Clause, ...] = ()
    refusal: str = ""
    _hash: int = field(default=0, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.clauses, self.refusal)))

    def __hash__(self) -> int:  # masks are cached per constraints value: hash once, not per look-up
        return self._hash

    def admits(self, name: str, labels: Mapping[str, str]) -> bool:
        return not self.refusal and all(c.matches(name, labels) for c in self.clauses)

    def with_more(self, clauses: tuple[Clause, ...] = (), refusal: str = "") -> PodConstraints:
        """These constraints plus more clauses; the first refusal wins."""
        return PodConstraints(self.clauses + clauses, self.refusal or refusal)


def combine(base: PodConstraints | None, clauses: tuple[Clause, ...] = (), refusal: str = "") -> PodConstraints | None:
    """`base` plus clauses and a refusal; None when there is nothing to constrain (the common case)."""
    if not clauses and not refusal:
        return base
    return (base or PodConstraints()).with_more(clauses, refusal)


def pin_to_node(node: str, reason: str = REASON_SELECTED_NODE) -> Clause:
    """A clause that only `node` satisfies."""
    return Clause((Term((Requirement(NODE_NAME_FIELD, "In", (node,), on_name=True),)),), reason)
