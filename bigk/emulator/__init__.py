"""The embedded emulated cluster: a Kubernetes-compatible API on loopback with a
simulated kubelet, Spark driver and GPUs. A development and test fixture, not Kubernetes."""

from bigk.emulator.cluster import EmulatedCluster
from bigk.emulator.errors import ApiError, EmulatorError
from bigk.emulator.faults import Faults

__all__ = ["ApiError", "EmulatedCluster", "EmulatorError", "Faults"]
