"""GPU identity from GPU feature discovery's labels and the model-name rule of docs/gpus.md."""

from __future__ import annotations

import pytest

from bigk.cluster.config import load_cluster, parse_cluster
from bigk.cluster.gpu_labels import (
    KNOWN_PRODUCTS,
    OWNER_BIGK,
    OWNER_DEVICE_PLUGIN,
    PRODUCT_LABEL,
    gfd_labels,
    gpu_owner,
    identity_from_labels,
    matching_products,
    model_allowed,
    model_matches,
)

PRODUCTS = [
    "NVIDIA-A100-SXM4-80GB", "NVIDIA-A100-PCIE-40GB", "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", "NVIDIA-H100-80GB-HBM3",
    "NVIDIA-H100-PCIe", "Tesla-T4", "NVIDIA-L4", "NVIDIA-A10G", "NVIDIA-L40S", "Tesla-T4-SHARED",
]


@pytest.mark.parametrize(("wanted", "expected"), [
    ("A100", ["NVIDIA-A100-PCIE-40GB", "NVIDIA-A100-SXM4-80GB"]),
    ("A100-80GB", ["NVIDIA-A100-SXM4-80GB"]),
    ("a100-40gb", ["NVIDIA-A100-PCIE-40GB"]),
    ("A100-SXM", ["NVIDIA-A100-SXM4-80GB"]),
    ("H100", ["NVIDIA-H100-80GB-HBM3", "NVIDIA-H100-PCIe"]),
    ("H100-HBM3", ["NVIDIA-H100-80GB-HBM3"]),
    ("T4", ["Tesla-T4", "Tesla-T4-SHARED"]),
    ("L4", ["NVIDIA-L4"]),
    ("A10", []),  # never A100, nor A10G
    ("80GB", []),  # a memory size names no model
    ("A100-MIG", ["NVIDIA-A100-SXM4-40GB-MIG-1g.5gb"]),
    ("A100-MIG-1g.5gb", ["NVIDIA-A100-SXM4-40GB-MIG-1g.5gb"]),
    ("A100-MIG-3g.20gb", []),
    ("NVIDIA-A10G", ["NVIDIA-A10G"]),  # the exact product name always works
])
def test_model_names_people_use_match_gfd_products(wanted: str, expected: list[str]) -> None:
    assert matching_products(wanted, PRODUCTS) == sorted(expected)


def test_whole_gpu_names_never_match_a_mig_slice_and_any_model_matches_when_none_is_asked() -> None:
    assert not model_matches("NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", "A100")
    assert model_allowed("NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", ())
    assert model_allowed("Tesla-T4", ("A100", "T4"))
    assert not model_allowed("Tesla-T4", ("A100", "H100"))


def test_identity_reads_labels_as_gfd_writes_them() -> None:
    labels = {**gfd_labels("NVIDIA-A100-SXM4-80GB", 8, 81920), "nvidia.com/gpu.replicas": "4",
              "nvidia.com/gpu.sharing-strategy": "time-slicing"}
    ident = identity_from_labels(labels)
    assert ident is not None
    assert (ident.product, ident.count, ident.memory_mib, ident.family, ident.compute) == (
        "NVIDIA-A100-SXM4-80GB", 8, 81920, "ampere", (8, 0))
    assert (ident.replicas, ident.sharing_strategy, ident.is_mig) == (4, "time-slicing", False)
    mig = identity_from_labels({PRODUCT_LABEL: "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", "nvidia.com/gpu.count": "56",
                                "nvidia.com/gpu.memory": "4864", "nvidia.com/mig.strategy": "single"})
    assert mig is not None and (mig.mig_profile, mig.count, mig.mig_strategy) == ("1g.5gb", 56, "single")
    assert identity_from_labels({"nvidia.com/gpu.count": "junk"}) is None
    junk = identity_from_labels({PRODUCT_LABEL: "X", "nvidia.com/gpu.count": "many", "nvidia.com/gpu.replicas": "-3"})
    assert junk is not None and (junk.count, junk.replicas, junk.compute) == (0, 1, None)


def test_default_cluster_file_nodes_carry_gfd_labels_and_owners() -> None:
    nodes = {n.name: n for n in load_cluster("jobspecs/cluster.yaml")}
    a100, t4 = nodes["gpu-a100-0"], nodes["gpu-t4-0"]
    assert a100.labels[PRODUCT_LABEL] == "NVIDIA-A100-SXM4-80GB"
    assert a100.labels["nvidia.com/gpu.memory"] == "81920" and a100.gpus[0].memory_mib == 81920
    assert a100.labels["nvidia.com/gpu.family"] == "ampere" and a100.labels["nvidia.com/gpu.compute.major"] == "8"
    assert t4.labels[PRODUCT_LABEL] == "Tesla-T4" and t4.labels["nvidia.com/gpu.count"] == "4"
    assert (a100.gpu_owner, t4.gpu_owner) == (OWNER_DEVICE_PLUGIN, OWNER_BIGK)
    assert t4.labels["bigk.io/gpu-sharing"] == "bigk" and t4.labels["nvidia.com/gpu.deploy.device-plugin"] == "false"
    assert gpu_owner(a100.labels) == OWNER_DEVICE_PLUGIN and gpu_owner(t4.labels) == OWNER_BIGK


def test_cluster_file_memory_defaults_to_the_known_product_and_rejects_unknown_sharing() -> None:
    doc = {"pools": [{"name": "l4", "count": 1, "cpu": 8, "memory": "32Gi", "gpu": {"model": "NVIDIA-L4", "count": 1}}]}
    (node,) = parse_cluster(doc)
    assert node.gpus[0].memory_mib == KNOWN_PRODUCTS["NVIDIA-L4"].memory_mib
    doc["pools"][0]["gpu"]["sharing"] = "sometimes"
    with pytest.raises(ValueError, match="sharing"):
        parse_cluster(doc)


def test_translated_nodes_count_devices_not_time_slicing_replicas_and_read_sharing_pools() -> None:
    from kubernetes import client

    from bigk.kube.translate import node_from_v1

    def v1(labels: dict[str, str], gpus: str | None) -> client.V1Node:
        alloc = {"cpu": "8", "memory": "32Gi", **({"nvidia.com/gpu": gpus} if gpus else {})}
        return client.V1Node(metadata=client.V1ObjectMeta(name="n", labels=labels),
                             status=client.V1NodeStatus(allocatable=alloc))

    sliced = node_from_v1(v1({**gfd_labels("Tesla-T4", 4, 15360, sharing_strategy="time-slicing", replicas=4)}, "16"))
    assert len(sliced.gpus) == 4 and sliced.gpu_owner == OWNER_DEVICE_PLUGIN
    pool = node_from_v1(v1({**gfd_labels("Tesla-T4", 4, 15360), "bigk.io/gpu-sharing": "bigk"}, None))
    assert len(pool.gpus) == 4 and pool.gpu_owner == OWNER_BIGK and pool.gpus[0].model == "Tesla-T4"
    assert pool.gpus[0].memory_mib == 15360
