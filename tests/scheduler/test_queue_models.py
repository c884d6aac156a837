"""Queue guarantees and maxima per GPU model (`gpuByModel`), and the `Usage` type the queue book counts in."""

from dataclasses import replace

from bigk.cluster.model import PodRequest, Queue
from bigk.cluster.usage import ZERO, Usage
from bigk.scheduler import CycleResult

from .helpers import World, cpu_node, executor_pods, gang, gpu_node, pod

A100 = "NVIDIA-A100-SXM4-80GB"
T4 = "Tesla-T4"
A100_EXEC = PodRequest(1000, 1024, 1, 1000, 0, frozenset({"A100"}))


def _on(w: World, product: str, queue: str | None = None) -> int:
    """GPUs bound on nodes of `product` (in `queue`)."""
    models = {n.name: n.gpu_model for n in w.nodes}
    return sum(len(p.gpus) for p in w.bound() if models[p.node] == product and (queue is None or p.queue == queue))


def test_usage_adds_subtracts_and_sums_products_by_model_name() -> None:
    a = Usage.of_request(PodRequest(1000, 512, 2, 1000), A100)
    b = Usage.of_request(PodRequest(500, 256, 1, 1000), "NVIDIA-A100-PCIE-40GB")
    c = Usage.of_request(PodRequest(500, 256, 1, 1000), T4)
    total = a + b + c
    assert total.triple() == (2000, 1024, 4000)
    assert total.on_model("A100") == 3000 and total.on_model("A100-80GB") == 2000 and total.on_model("T4") == 1000
    assert total.on_model("A10") == 0  # A10 never matches A100
    assert (total - b - a - c).is_zero() and (total - total) == ZERO
    assert Usage.of((1, 2, 3)) == Usage(1, 2, 3) and (-a).on_product(A100) == -2000 and (a * 2).gpu == 4000


def test_a_model_maximum_steers_gpus_that_take_any_model_to_other_models() -> None:
    w = World([gpu_node("a100-0", gpus=4, model=A100), gpu_node("t4-0", gpus=4, model=T4)])
    w.queues = {"ml": Queue("ml", maximum_models={"A100": 2000})}
    w.add(*(pod(f"p{i}", gpus=1, queue="ml", created_at=i) for i in range(6)))
    r = w.cycle(10)
    assert len(r.binds) == 6  # the queue is not held back: its GPUs go where the model has room
    assert _on(w, A100) == 2 and _on(w, T4) == 4
    assert r.queues["ml"].usage.on_model("A100") == 2000 and r.queues["ml"].usage.on_product(T4) == 4000


def test_a_gang_that_needs_the_model_waits_at_the_maximum_and_starts_when_room_frees() -> None:
    w = World([gpu_node("a100-0", gpus=8, model=A100), gpu_node("t4-0", gpus=4, model=T4)])
    w.queues = {"ml": Queue("ml", maximum_models={"A100": 4000})}
    w.add(*(pod(f"old{i}", gpus=1, queue="ml", models=frozenset({"A100"}), on="a100-0", slots=(i,))
            for i in range(3)))
    info, driver = gang("train", 2, queue="ml", executor=A100_EXEC, created_at=1)
    w.add_gang(info, driver)
    r = w.cycle(10)
    exp = r.waiting["train"]
    assert exp.state == "queue-maximum" and not r.binds
    assert "A100 GPU maximum (4 GPUs)" in exp.message and "3 GPUs of A100 in use" in exp.message
    for i in range(2):  # two of the old runs end: 1 A100 in use, the gang's 2 fit under 4
        del w.pods[f"default/old{i}"]
    r = w.cycle(20)
    assert "default/train-driver" in {b.pod_key for b in r.binds}
    w.add(*executor_pods(info, 2, created_at=21))
    w.cycle(22)
    assert _on(w, A100, "ml") == 3


def test_a_gang_bigger_than_the_model_maximum_never_fits_and_holds_no_room() -> None:
    w = World([gpu_node("a100-0", gpus=8, model=A100)])
    w.queues = {"ml": Queue("ml", maximum_models={"A100": 2000})}
    info, driver = gang("big", 3, queue="ml", executor=A100_EXEC)
    w.add_gang(info, driver)
    w.add(pod("small", gpus=2, queue="other", created_at=5))
    r = w.cycle(10)
    assert r.waiting["big"].state == "never-fits" and "can never start on that model" in r.waiting["big"].message
    assert "default/small" in {b.pod_key for b in r.binds}  # nothing is held for a gang that can never start


def test_a_parents_model_maximum_caps_its_children_together() -> None:
    w = World([gpu_node("a100-0", gpus=8, model=A100)])
    w.queues = {"ml": Queue("ml", maximum_models={"A100": 3000}),
                "ml.a": Queue("ml.a", parent="ml"), "ml.b": Queue("ml.b", parent="ml")}
    w.add(*(pod(f"a{i}", gpus=1, queue="ml.a", created_at=i) for i in range(2)),
          *(pod(f"b{i}", gpus=1, queue="ml.b", created_at=10 + i) for i in range(2)))
    r = w.cycle(20)
    assert len(r.binds) == 3
    waiting = [e for e in r.waiting.values() if e.queue == "ml.b"]
    assert len(waiting) == 1 and "parent ml would exceed its A100 GPU maximum" in waiting[0].message


def test_extra_executors_respect_the_model_maximum() -> None:
    w = World([gpu_node("a100-0", gpus=8, model=A100)])
    w.queues = {"ml": Queue("ml", maximum_models={"A100": 3000})}
    info, driver = gang("dyn", 2, queue="ml", executor=A100_EXEC)
    w.add_gang(info, driver)
    w.cycle(0)
    w.add(*executor_pods(info, 5, created_at=1))
    w.cycle(2)
    assert _on(w, A100, "ml") == 3  # the minimum of 2, then one extra up to the maximum


def test_a_model_guarantee_protects_its_gpus_from_preemption() -> None:
    def world(guarantee: dict[str, int]) -> CycleResult:
        w = World([gpu_node("a100-0", gpus=2, model=A100)])
        w.queues = {"prod": Queue("prod", guaranteed_models=guarantee), "urgent": Queue("urgent")}
        w.add(*(pod(f"p{i}", gpus=1, queue="prod", on="a100-0", slots=(i,)) for i in range(2)))
        w.add(pod("hi", gpus=1, queue="urgent", priority=100, created_at=5))
        return w.cycle(10)

    assert world({}).evictions  # without the guarantee, a victim is taken
    protected = world({"A100": 2000})
    assert not protected.evictions and protected.waiting["default/hi"].state != "preempting"


def test_a_queue_under_its_model_guarantee_reclaims_borrowed_gpus_of_that_model() -> None:
    w = World([gpu_node("a100-0", gpus=4, model=A100)])
    w.queues = {"train": Queue("train", guaranteed_models={"A100": 2000}), "batch": Queue("batch")}
    w.add(*(pod(f"b{i}", gpus=1, queue="batch", on="a100-0", slots=(i,)) for i in range(4)))
    info, driver = gang("t", 2, queue="train", executor=A100_EXEC, created_at=1)
    w.add_gang(info, driver)
    r = w.cycle(10)
    assert len(r.evictions) == 2 and all("reclaimed by t" in e.reason for e in r.evictions)


def test_model_maxima_that_never_bind_change_no_decision() -> None:
    def run(queues: dict[str, Queue]) -> list[tuple[str, str, tuple[int, ...]]]:
        w = World([gpu_node(f"a{i}", gpus=4, model=A100) for i in range(2)] + [gpu_node("t0", gpus=4, model=T4)])
        w.queues = queues
        binds = []
        for step in range(4):
            w.add(*(pod(f"s{step}-{i}", gpus=1 + i % 2, queue=("x", "y")[i % 2], priority=i % 3,
                        created_at=step * 10 + i) for i in range(5)))
            info, driver = gang(f"g{step}", 2, queue="y", created_at=step * 10)
            w.add_gang(info, driver)
            r = w.cycle(step * 10 + 5)
            binds += [(b.pod_key, b.node, b.gpus) for b in r.binds]
            for key in [k for k in w.pods if k.endswith("-0") and w.pods[k].node]:
                del w.pods[key]
        return binds

    plain = run({"x": Queue("x", guaranteed={"gpu": 2000}), "y": Queue("y")})
    quota = run({"x": Queue("x", guaranteed={"gpu": 2000}, maximum_models={"A100": 10**9}),
                 "y": Queue("y", maximum_models={"T4": 10**9})})
    assert plain and plain == quota


def test_models_whose_nodes_never_take_the_pod_do_not_count_as_open() -> None:
    t4 = gpu_node("t4-0", gpus=4, model=T4)
    t4.gpu_owner = "bigk"  # bigk shares these GPUs: whole-GPU pods never go there
    w = World([gpu_node("a100-0", gpus=4, model=A100), t4])
    w.queues = {"ml": Queue("ml", maximum_models={"A100": 1000})}
    w.add(pod("one", gpus=1, queue="ml", created_at=0), pod("two", gpus=1, queue="ml", created_at=1))
    r = w.cycle(5)
    assert [b.pod_key for b in r.binds] == ["default/one"]
    assert r.waiting["default/two"].state == "queue-maximum" and "A100 GPU maximum (1 GPU)" in \
        r.waiting["default/two"].message


def test_an_executor_whose_reserved_slot_went_bad_is_not_moved_onto_a_model_at_its_maximum() -> None:
    """The gang's executor slot was reserved on the T4 (the A100s are at the queue's A100 maximum); the T4 node
    is cordoned before the executor arrives. Its fallback placement must not take an open A100."""
    nodes = [gpu_node("a100-0", gpus=4, model=A100), gpu_node("t4-0", gpus=4, model=T4),
             cpu_node("cpu-0")]
    w = World(nodes)
    w.queues = {"ml": Queue("ml", maximum_models={"A100": 2000})}
    w.add(*(pod(f"old{i}", gpus=1, queue="ml", on="a100-0", slots=(i,)) for i in range(2)))  # at the A100 maximum
    info, driver = gang("train", 1, queue="ml", executor=PodRequest(1000, 1024, 1, 1000), created_at=1)
    w.add_gang(info, driver)
    w.cycle(10)
    assert w.pods["default/train-driver"].node  # admitted, its executor's slot reserved on the T4
    w.nodes[1] = replace(w.nodes[1], unschedulable=True)
    w.add(*executor_pods(info, 1, created_at=11))
    w.cycle(12)
    assert _on(w, A100, "ml") == 2, "the executor went onto an A100 past the queue's A100 maximum"
