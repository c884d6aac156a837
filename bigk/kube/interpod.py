"""InterPodAffinity, the half bigk implements: running pods' required anti-affinity keeps bigk's pods away.

A pod placed by another scheduler (or before bigk) may say "no pod matching S in my
topology domain". kube-scheduler refuses, for a new pod matching S, every node whose
`topologyKey` label has the value of that pod's node (nodes without the label are
fine). bigk does the same: for each pending pod it turns the terms of running pods
that select it into `NotIn` node requirements, counted as "existing pods' anti-affinity".

A pod's *own* required (anti-)affinity is not implemented: such pods are refused by
name (`bigk.kube.podspec.unsupported`), so no pod bigk binds ever carries one.

`namespaceSelector` needs namespace labels bigk does not watch: a term with a
non-empty one is read as selecting every namespace (it keeps pods away from more
nodes than kube-scheduler would, never fewer).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Protocol, TypeVar

from kubernetes import client

from bigk.cluster.affinity import Clause, Requirement, Term, combine
from bigk.cluster.model import Node, Pod

REASON_EXISTING_ANTI_AFFINITY = "existing pods' anti-affinity"


@dataclass(frozen=True)
class Selector:
    """A label selector (matchLabels and matchExpressions); `matches` follows metav1.LabelSelector."""

    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches("", labels) for r in self.requirements)


@dataclass(frozen=True)
class AntiAffinityTerm:
    """One required anti-affinity term of a running pod, with where that pod runs."""

    selector: Selector
    namespaces: frozenset[str] | None  # None: every namespace
    topology_key: str


def selector_from_v1(sel: client.V1LabelSelector | None) -> Selector | None:
    """None (matches nothing) for a null selector, as Kubernetes reads affinity terms."""
    if sel is None:
        return None
    reqs = [Requirement(k, "In", (v,)) for k, v in sorted((sel.match_labels or {}).items())]
    reqs += [Requirement(e.key, e.operator, tuple(e.values or ())) for e in sel.match_expressions or []]
    return Selector(tuple(reqs))


def anti_affinity_terms(pod: client.V1Pod) -> tuple[AntiAffinityTerm, ...]:
    """The required anti-affinity terms of a pod ('' namespace lists mean its own namespace)."""
    affinity = pod.spec.affinity if pod.spec is not None else None
    anti = affinity.pod_anti_affinity if affinity is not None else None
    terms = anti.required_during_scheduling_ignored_during_execution if anti is not None else None
    out = []
    own = (pod.metadata.namespace if pod.metadata else None) or "default"
    for term in terms or []:
        selector = selector_from_v1(term.label_selector)
        if selector is None or not term.topology_key:
            continue
        if term.namespace_selector is not None:
            namespaces: frozenset[str] | None = None  # {} = all; non-empty: read as all (see module docstring)
        else:
            namespaces = frozenset(term.namespaces or [own])
        out.append(AntiAffinityTerm(selector, namespaces, term.topology_key))
    return tuple(out)


def avoid_existing(pending: Iterable[tuple[Pod, Mapping[str, str]]],
                   running: Iterable[tuple[Pod, tuple[AntiAffinityTerm, ...]]],
                   nodes: Iterable[Node]) -> dict[str, Clause]:
    """Pod key -> the clause keeping it out of running pods' anti-affinity domains (only pods concerned)."""
    node_labels = {n.name: n.labels for n in nodes}
    domains: list[tuple[AntiAffinityTerm, str]] = []  # (term, value of its topology key where the pod runs)
    for pod, terms in running:
        labels = node_labels.get(pod.node)
        for term in terms:
            if labels is not None and term.topology_key in labels:
                domains.append((term, labels[term.topology_key]))
    out: dict[str, Clause] = {}
    if not domains:
        return out
    for pod, pod_labels in pending:
        banned: dict[str, set[str]] = {}
        for term, value in domains:
            if (term.namespaces is None or pod.namespace in term.namespaces) and term.selector.matches(pod_labels):
                banned.setdefault(term.topology_key, set()).add(value)
        if banned:
            reqs = tuple(Requirement(k, "NotIn", tuple(sorted(v))) for k, v in sorted(banned.items()))
            out[pod.key] = Clause((Term(reqs),), REASON_EXISTING_ANTI_AFFINITY)
    return out


def apply_clause(pod: Pod, clause: Clause) -> Pod:
    return replace(pod, constraints=combine(pod.constraints, (clause,)))


class Entry(Protocol):
    """What `resolve_entries` reads of one cached pod (`bigk.kube.cache.PodEntry`, which imports this module)."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def pod(self) -> Pod: ...
    @property
    def candidate(self) -> bool: ...
    @property
    def labels(self) -> dict[str, str]: ...
    @property
    def anti_affinity(self) -> tuple[AntiAffinityTerm, ...]: ...


E = TypeVar("E", bound=Entry)


def resolve_entries(entries: list[E], nodes: Iterable[Node]) -> list[E]:
    """Entries with running pods' anti-affinity folded into the pending pods it concerns (cheap when none)."""
    running = [(e.pod, e.anti_affinity) for e in entries if e.anti_affinity and e.pod.node]
    if not running:
        return entries
    clauses = avoid_existing(((e.pod, e.labels) for e in entries if e.candidate), running, nodes)
    if not clauses:
        return entries
    return [replace(e, pod=apply_clause(e.pod, clauses[e.pod.key])) if e.pod.key in clauses else e
            for e in entries]
