"""Starting and stopping the simulators a host runs, in one order for both hosts.

`EmulatedCluster` (in process) and `SimulatedNodes` (against a real API server)
run the same set; each host keeps the `Simulators` it started and answers
`kubelet`, `driver`, `gpus` and `device_plugin` from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from bigk.emulator.device_plugin import DevicePluginSim
from bigk.emulator.driver import SparkDriverSim
from bigk.emulator.gpus import GpuSim
from bigk.emulator.host import Containers, SimHost
from bigk.emulator.kubelet import KubeletSim
from bigk.emulator.store import Obj


@dataclass
class Simulators:
    """The simulators of one host; None where that simulation is turned off."""

    kubelet: KubeletSim | None = None
    device_plugin: DevicePluginSim | None = None  # nvidia.com/gpu devices, handed out as the kubelet would
    driver: SparkDriverSim | None = None
    gpus: GpuSim | None = None

    def start(self, host: SimHost, *, kubelet: bool, spark_driver: bool, gpu_readings: bool) -> None:
        """Create and start them on the host's event loop; each is visible on the host before the next starts."""
        if kubelet:
            self.kubelet = KubeletSim(host)
            self.kubelet.start()
            self.device_plugin = DevicePluginSim(host)
            self.device_plugin.start()
        if spark_driver:
            self.driver = SparkDriverSim(host)
            self.driver.start()
        if gpu_readings:
            self.gpus = GpuSim(host)
            self.gpus.start()

    def stop(self) -> None:
        """Stop them, readings first and the kubelet last (call on the host's loop)."""
        for sim in (self.gpus, self.driver, self.device_plugin, self.kubelet):
            if sim is not None:
                sim.stop()


class RunsSimulators:
    """A host's view of the simulators it started (`self.sims`), by name."""

    sims: Simulators

    @property
    def kubelet(self) -> KubeletSim | None:
        return self.sims.kubelet

    @property
    def device_plugin(self) -> DevicePluginSim | None:
        return self.sims.device_plugin

    @property
    def driver(self) -> SparkDriverSim | None:
        return self.sims.driver

    @property
    def gpus(self) -> GpuSim | None:
        return self.sims.gpus

    @property
    def containers(self) -> Containers:
        """The host's containers' clocks (created on first use; kept when the simulators stop and start again)."""
        kept: Containers | None = self.__dict__.get("_containers")
        if kept is None:
            kept = self.__dict__["_containers"] = Containers()
        return kept

    def pod_address(self, pod: Obj) -> str | None:
        """The pod IP the simulated kubelet gives `pod`; None: a made-up one from 10.244.0.0/16."""
        return None
