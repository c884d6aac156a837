"""The bigk policy's per-node terms must give exactly the score the fragmentation models give.

`NodeTerms` keeps the pod-independent half of the score per node and refreshes it
row by row; `whole_gain` recomputes the other half with shared intermediates. If
either drifted from `FragModel.frag_after` / `FillModel.frag_after`, bigk would
place pods differently from the policy its docs and figures describe.
"""

from __future__ import annotations

import random

import numpy as np

from bigk.cluster.model import PodRequest
from bigk.scheduler.policies.frag import FillModel, FragModel, cpu_per_gpu, cpu_starved_gpu, typical_pods
from bigk.scheduler.policies.nodeview import NodeView
from bigk.scheduler.policies.terms import NodeTerms
from tests.policies.test_nodeview import _cluster

WEIGHTS = (4.0, 1.0, 3.0)
# milli-GPU: a matrix-vector product over 1 row and over 30 may round the last bit differently
TOL = 1e-9


def test_terms_and_whole_gain_equal_the_models_after_allocations_and_releases() -> None:
    rng = random.Random(11)
    state = _cluster(rng)
    workload = ([PodRequest(4000, 8000, 1, 1000)] * 5 + [PodRequest(2000, 4000, 1, 500)] * 3
                + [PodRequest(6000, 8000)] * 2 + [PodRequest(16000, 8000, 4, 1000, gpu_models=frozenset({"T4"}))])
    model, fill = FragModel(typical_pods(workload)), FillModel(typical_pods(workload))
    ratio = cpu_per_gpu(workload)
    view, terms = NodeView(), NodeTerms(model, fill, state.models, ratio, WEIGHTS)
    shapes = [PodRequest(1000, 1000), PodRequest(4000, 8000, 1, 1000), PodRequest(8000, 4000, 2, 1000),
              PodRequest(1000, 2000, 1, 250)]
    live: list[str] = []
    for step in range(300):
        req = rng.choice(shapes)
        if rng.random() < 0.7:
            nodes = np.flatnonzero(state.feasible(req))
            if len(nodes):
                node = int(nodes[rng.randrange(len(nodes))])
                gpus = state.default_gpus(node, req)
                if gpus is not None:
                    state.allocate(f"p{step}", req, state.placement_for(node, req, gpus))
                    live.append(f"p{step}")
        elif live:
            state.release(live.pop(rng.randrange(len(live))))
        view.sync(state, None)
        terms.update(view)
        rows = np.arange(view.n)
        c, g, mdl = view.cpu_free, view.left, view.gpu_model
        b1, _ = model.frag_after(req, c, g, mdl, state.models)
        b2, _ = fill.frag_after(req, c, g, mdl, state.models)
        before = 4.0 * b1 + b2 + 3.0 * cpu_starved_gpu(c, g.sum(axis=1), ratio)
        assert np.allclose(terms.before, before, rtol=0, atol=TOL), step
        whole = next(s for s in shapes if not s.is_fractional and s is not req) if req.is_fractional else req
        _, a1 = model.frag_after(whole, c, g, mdl, state.models)
        _, a2 = fill.frag_after(whole, c, g, mdl, state.models)
        a3 = cpu_starved_gpu(c - whole.cpu_milli, g.sum(axis=1) - whole.total_gpu_milli, ratio)
        after = 4.0 * a1 + a2 + 3.0 * a3
        assert np.allclose(terms.whole_gain(whole, c, rows), before - after, rtol=0, atol=TOL), step
