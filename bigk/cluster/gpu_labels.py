"""GPU identity as NVIDIA GPU feature discovery (GFD) writes it on nodes, and the model-name rule.

GFD labels GPU nodes with the product (`nvidia.com/gpu.product`, e.g.
`NVIDIA-A100-SXM4-80GB`, `NVIDIA-H100-80GB-HBM3`, `Tesla-T4`, `NVIDIA-L4`), the
memory of one device in MiB, the device count, the architecture family and
compute capability. Under the MIG `single` strategy it overrides product, count
and memory with the MIG device's (`NVIDIA-A100-SXM4-40GB-MIG-1g.5gb`, 56, 4864);
the device plugin's sharing adds `nvidia.com/gpu.replicas`,
`nvidia.com/gpu.sharing-strategy` and, unless renamed, a `-SHARED` suffix.

People name models shorter (`A100`, `A100-80GB`, `H100`, `T4`, `L4`). The rule
(`model_matches`), documented in docs/gpus.md:
1. Both names are upper-cased and split on `-`, `_` and spaces; a leading
   `NVIDIA` / `TESLA` / `GEFORCE` / `QUADRO` vendor word is dropped from each.
2. A MIG product (`...-MIG-<profile>`) matches only a wanted name that says
   `MIG`, and then only the same profile when the wanted name gives one; a
   whole-GPU name never lands a pod on a MIG slice.
3. Every remaining wanted word must equal a product word, or be a prefix of one
   that continues with digits (`SXM` matches `SXM4`, `HBM` matches `HBM3`).
4. The wanted name's first word must be the product's first word (the model):
   `80GB` alone names no model, and `A10` never matches `A100`.
A `-SHARED` suffix is ignored. An exact, case-insensitive match always counts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

PRODUCT_LABEL = "nvidia.com/gpu.product"
MEMORY_LABEL = "nvidia.com/gpu.memory"  # MiB per device (per MIG device under the single strategy)
COUNT_LABEL = "nvidia.com/gpu.count"
FAMILY_LABEL = "nvidia.com/gpu.family"
COMPUTE_MAJOR_LABEL = "nvidia.com/gpu.compute.major"
COMPUTE_MINOR_LABEL = "nvidia.com/gpu.compute.minor"
MACHINE_LABEL = "nvidia.com/gpu.machine"
PRESENT_LABEL = "nvidia.com/gpu.present"
MIG_STRATEGY_LABEL = "nvidia.com/mig.strategy"  # none | single | mixed
MIG_CAPABLE_LABEL = "nvidia.com/mig.capable"
REPLICAS_LABEL = "nvidia.com/gpu.replicas"  # device plugin sharing: replicas per GPU
SHARING_STRATEGY_LABEL = "nvidia.com/gpu.sharing-strategy"  # none | time-slicing | mps

_VENDOR_WORDS = {"NVIDIA", "TESLA", "GEFORCE", "QUADRO"}
_SPLIT = re.compile(r"[-_\s]+")
_MIG_PROFILE = re.compile(r"^\d+G\.\d+GB(\+ME)?$")


@dataclass(frozen=True)
class GpuIdentity:
    """What GFD says about one node's GPUs (all GPUs of a node are alike for GFD)."""

    product: str
    count: int
    memory_mib: int
    family: str = ""
    compute: tuple[int, int] | None = None
    mig_strategy: str = ""  # "" when GFD says nothing
    mig_profile: str = ""  # e.g. "1g.5gb" when the product names a MIG device
    replicas: int = 1  # device plugin replicas per GPU (time-slicing / MPS)
    sharing_strategy: str = ""  # "" | none | time-slicing | mps

    @property
    def is_mig(self) -> bool:
        return bool(self.mig_profile)


def _int(value: str | None) -> int | None:
    try:
        return int(str(value).strip()) if value is not None else None
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def _words(name: str) -> tuple[tuple[str, ...], str | None, bool]:
    """(model words, MIG profile or None when not MIG, shared) of a product or wanted name."""
    words = [w for w in _SPLIT.split(name.strip().upper()) if w]
    shared = bool(words) and words[-1] == "SHARED"
    if shared:
        words = words[:-1]
    while words and words[0] in _VENDOR_WORDS:
        words = words[1:]
    profile: str | None = None
    if "MIG" in words:
        at = words.index("MIG")
        rest = words[at + 1:]
        profile = rest[0].lower() if rest and _MIG_PROFILE.match(rest[0]) else ""
        words = words[:at]
    return tuple(words), profile, shared


def mig_profile(product: str) -> str:
    """`1g.5gb` for `NVIDIA-A100-SXM4-40GB-MIG-1g.5gb`; '' for a whole GPU."""
    return _words(product)[1] or ""


def _word_matches(wanted: str, have: str) -> bool:
    if wanted == have:
        return True
    return not any(c.isdigit() for c in wanted) and have.startswith(wanted) and have[len(wanted):].isdigit()


@lru_cache(maxsize=65536)
def model_matches(product: str, wanted: str) -> bool:
    """Does the GFD product name `product` satisfy a spec's model name `wanted`? (module docstring rule)"""
    if not product or not wanted:
        return False
    if product.strip().upper() == wanted.strip().upper():
        return True
    have, have_mig, _ = _words(product)
    want, want_mig, _ = _words(wanted)
    if not have or not want:
        return False
    if (have_mig is None) != (want_mig is None):
        return False
    if want_mig and have_mig != want_mig:
        return False
    if want[0] != have[0]:
        return False
    return all(any(_word_matches(w, h) for h in have) for w in want[1:])


def model_allowed(product: str, wanted: Iterable[str]) -> bool:
    """True when `wanted` is empty (any model) or any of its names matches `product`."""
    names = tuple(wanted)
    return not names or any(model_matches(product, w) for w in names)


def matching_products(wanted: str, products: Iterable[str]) -> list[str]:
    """The products among `products` that `wanted` matches, sorted."""
    return sorted({p for p in products if model_matches(p, wanted)})


def identity_from_labels(labels: Mapping[str, str]) -> GpuIdentity | None:
    """Read GFD's labels; None when the node carries no product label."""
    product = labels.get(PRODUCT_LABEL, "").strip()
    if not product:
        return None
    major, minor = _int(labels.get(COMPUTE_MAJOR_LABEL)), _int(labels.get(COMPUTE_MINOR_LABEL))
    return GpuIdentity(
        product=product,
        count=max(_int(labels.get(COUNT_LABEL)) or 0, 0),
        memory_mib=max(_int(labels.get(MEMORY_LABEL)) or 0, 0),
        family=labels.get(FAMILY_LABEL, ""),
        compute=(major, minor) if major is not None and minor is not None else None,
        mig_strategy=labels.get(MIG_STRATEGY_LABEL, ""),
        mig_profile=mig_profile(product),
        replicas=max(_int(labels.get(REPLICAS_LABEL)) or 1, 1),
        sharing_strategy=labels.get(SHARING_STRATEGY_LABEL, ""),
    )


@dataclass(frozen=True)
class KnownProduct:
    """GFD's labels for one product, as it writes them on real machines (for cluster files and the emulator)."""

    product: str
    memory_mib: int
    family: str
    compute: tuple[int, int]
    mig_capable: bool = False


# Values as GFD reports them through NVML (memory is NVML's total in MiB, slightly below the marketing size).
KNOWN_PRODUCTS: dict[str, KnownProduct] = {p.product: p for p in (
    KnownProduct("NVIDIA-A100-SXM4-80GB", 81920, "ampere", (8, 0), True),
    KnownProduct("NVIDIA-A100-SXM4-40GB", 40960, "ampere", (8, 0), True),
    KnownProduct("NVIDIA-A100-PCIE-40GB", 40960, "ampere", (8, 0), True),
    KnownProduct("NVIDIA-A100-80GB-PCIe", 81920, "ampere", (8, 0), True),
    KnownProduct("NVIDIA-H100-80GB-HBM3", 81559, "hopper", (9, 0), True),
    KnownProduct("NVIDIA-H100-PCIe", 81559, "hopper", (9, 0), True),
    KnownProduct("NVIDIA-H200", 143771, "hopper", (9, 0), True),
    KnownProduct("Tesla-T4", 15360, "turing", (7, 5)),
    KnownProduct("NVIDIA-L4", 23034, "ada-lovelace", (8, 9)),
    KnownProduct("NVIDIA-A10G", 23028, "ampere", (8, 6)),
    KnownProduct("Tesla-V100-SXM2-16GB", 16384, "volta", (7, 0)),
)}


def gfd_labels(product: str, count: int, memory_mib: int, *, sharing_strategy: str = "none",
               replicas: int = 1, mig_strategy: str = "none") -> dict[str, str]:
    """The labels GFD writes on a node with `count` GPUs of `product` (family and compute when known)."""
    labels = {
        PRESENT_LABEL: "true",
        PRODUCT_LABEL: product,
        COUNT_LABEL: str(count),
        MEMORY_LABEL: str(memory_mib),
        MIG_STRATEGY_LABEL: mig_strategy,
        REPLICAS_LABEL: str(replicas),
        SHARING_STRATEGY_LABEL: sharing_strategy,
    }
    known = KNOWN_PRODUCTS.get(product)
    if known is not None:
        labels[FAMILY_LABEL] = known.family
        labels[COMPUTE_MAJOR_LABEL] = str(known.compute[0])
        labels[COMPUTE_MINOR_LABEL] = str(known.compute[1])
    labels[MIG_CAPABLE_LABEL] = "true" if known is not None and known.mig_capable else "false"
    return labels


# ---- who assigns a node's GPUs (docs/gpus.md, "One owner per GPU") ------------------------------
SHARING_LABEL = "bigk.io/gpu-sharing"  # on nodes of a pool whose GPUs bigk assigns: bigk | mps
OWNER_DEVICE_PLUGIN = "device-plugin"  # whole GPUs through `nvidia.com/gpu`; the device plugin picks devices
OWNER_BIGK = "bigk"  # bigk assigns every device (bigk.io/assigned-gpus); no pod asks for nvidia.com/gpu there
OWNER_MIXED = ""  # both on one node: the device plugin may hand out a GPU bigk shared (simulations, old tests)
SHARING_BIGK = ("bigk", "mps")
# The GPU Operator's switch: no device plugin on this node (so nothing else hands out its GPUs).
DEPLOY_DEVICE_PLUGIN_LABEL = "nvidia.com/gpu.deploy.device-plugin"
SHARING_MIXED = "mixed"


def gpu_owner(labels: Mapping[str, str]) -> str:
    """Who assigns this node's GPUs, from bigk's sharing label; without one, the device plugin does."""
    sharing = labels.get(SHARING_LABEL, "").strip().lower()
    if sharing in SHARING_BIGK:
        return OWNER_BIGK
    return OWNER_MIXED if sharing == SHARING_MIXED else OWNER_DEVICE_PLUGIN
