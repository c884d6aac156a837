"""The simulated Spark driver: a running driver pod asks for executors in batches and ends when its work is done.

Like Spark's ExecutorPodsAllocator, every `spark.kubernetes.allocation.batch.delay`
(default 1 s) the driver creates up to `spark.kubernetes.allocation.batch.size`
(default 5) executor pods until `spark.executor.instances` (default 2) exist,
replacing executors that fail or are deleted (evicted). Its work starts once
`spark.scheduler.minRegisteredResourcesRatio` (0.8) of the executors run, or
`spark.scheduler.maxRegisteredResourcesWaitingTime` (30 s) has passed, and its
expected duration counts down only while at least one executor runs: a driver
whose executors are never scheduled waits forever, as a real one would. More
than `spark.executor.maxNumFailures` (max(2 × instances, 3)) failed executors
fail the driver. At the end it deletes its executors (or, with
`spark.kubernetes.executor.deleteOnTermination=false`, lets them succeed) and
succeeds, or fails when annotated `bigk.io/sim-fail: "true"`. Every delay is
multiplied by the cluster's time_scale. Dynamic allocation is not simulated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from typing import Any

from bigk.cluster.labels import SPARK_ROLE
from bigk.emulator import spark_volumes, sparkconf
from bigk.emulator.api import PODS, TERMINAL_PHASES
from bigk.emulator.errors import ApiError
from bigk.emulator.host import PodSimulator, SimHost, cancel_all
from bigk.emulator.kubelet import expected_duration, finish_pod, sim_fails
from bigk.emulator.resources import by_key
from bigk.emulator.store import Obj, WatchEvent
from bigk.spark.driver_pod import POD_TEMPLATE_KEY, SPARK_PROPERTIES_KEY

PVCS = by_key("persistentvolumeclaims")
log = logging.getLogger("bigk.emulator")
SIM_DRIVER_ANNOTATION = "bigk.io/sim-driver"  # "false": no simulated application for this driver pod


class DriverConf:
    """The settings one simulated driver runs with."""

    def __init__(self, conf: dict[str, str], template: Obj | None, fallback: bool) -> None:
        self.conf = conf
        self.template = template
        self.fallback = fallback
        self.instances = max(0, int(conf.get("spark.executor.instances", "2")))
        self.batch_size = max(1, int(conf.get("spark.kubernetes.allocation.batch.size", "5")))
        self.batch_delay = sparkconf.parse_time_seconds(conf.get("spark.kubernetes.allocation.batch.delay", "1s"))
        self.ratio = float(conf.get("spark.scheduler.minRegisteredResourcesRatio", "0.8"))
        self.max_wait = sparkconf.parse_time_seconds(
            conf.get("spark.scheduler.maxRegisteredResourcesWaitingTime", "30s")
        )
        self.max_failures = int(conf.get("spark.executor.maxNumFailures", str(max(2 * self.instances, 3))))
        self.delete_on_termination = (
            conf.get("spark.kubernetes.executor.deleteOnTermination", "true").lower() != "false"
        )


class SparkDriverSim(PodSimulator):
    """Runs one simulated Spark application per running driver pod (label spark-role=driver)."""

    def __init__(self, host: SimHost, tick: float = 0.05) -> None:
        super().__init__(host)
        self.scale = host.time_scale
        self.tick = tick
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def _halt(self) -> None:
        cancel_all(self._tasks)

    def _wants(self, key: str, event: WatchEvent) -> bool:
        return (key == PODS.key and event.type != "DELETED"
                and (event.obj["metadata"].get("labels") or {}).get(SPARK_ROLE) == "driver")

    def _handle(self, key: str, event: WatchEvent) -> None:
        self._consider(event.obj)

    def _consider(self, pod: Obj) -> None:
        meta = pod["metadata"]
        if (meta.get("labels") or {}).get(SPARK_ROLE) != "driver" or meta.get("deletionTimestamp"):
            return
        if (meta.get("annotations") or {}).get(SIM_DRIVER_ANNOTATION, "").lower() == "false":
            return  # a test that plays the driver itself
        if (pod.get("status") or {}).get("phase") != "Running" or meta["uid"] in self._tasks:
            return
        task = self.loop.create_task(self._run(meta.get("namespace", ""), meta["name"], meta["uid"]))
        self._tasks[meta["uid"]] = task
        uid: str = meta["uid"]

        def forget(_task: asyncio.Task[None]) -> None:
            self._tasks.pop(uid, None)

        task.add_done_callback(forget)

    # ---- configuration --------------------------------------------------------------
    def read_conf(self, driver: Obj) -> DriverConf:
        """Spark properties and executor template from the driver's configmaps, else from annotations."""
        ns = driver["metadata"].get("namespace", "")
        conf: dict[str, str] | None = None
        template: Obj | None = None
        for volume in (driver.get("spec") or {}).get("volumes") or []:
            cm_ref = volume.get("configMap") if isinstance(volume, dict) else None
            if not cm_ref:
                continue
            cm = self.api.store.get("configmaps", ns, cm_ref.get("name", ""))
            data = (cm or {}).get("data") or {}
            if SPARK_PROPERTIES_KEY in data:
                conf = sparkconf.parse_properties(data[SPARK_PROPERTIES_KEY])
            if POD_TEMPLATE_KEY in data:
                template = sparkconf.load_template(data[POD_TEMPLATE_KEY])
        fallback = conf is None
        if conf is None:
            conf = sparkconf.conf_from_annotations(driver)
        if template is None:
            annotations = driver["metadata"].get("annotations") or {}
            template = sparkconf.load_template(annotations.get(sparkconf.SIM_TEMPLATE_ANNOTATION))
        if template is None:
            template = sparkconf.read_template_file(conf.get("spark.kubernetes.executor.podTemplateFile"))
        return DriverConf(conf, template, fallback)

    # ---- the application -----------------------------------------------------------------
    def _executors(self, driver_uid: str) -> list[Obj]:
        pods = (
            self.api.store.get(key, ns, name)
            for key, ns, name in self.api.store.dependents(driver_uid)
            if key == PODS.key
        )
        return [p for p in pods if p is not None and (p["metadata"].get("labels") or {}).get(SPARK_ROLE) == "executor"]

    def _driver(self, ns: str, name: str, uid: str) -> Obj | None:
        pod = self.api.store.get(PODS.key, ns, name)
        if pod is None or pod["metadata"]["uid"] != uid or pod["metadata"].get("deletionTimestamp"):
            return None
        if pod["status"].get("phase") != "Running":
            return None
        return pod

    async def _run(self, ns: str, name: str, uid: str) -> None:
        try:
            await self._application(ns, name, uid)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("event=driver_sim_error driver=%s/%s", ns, name)

    async def _application(self, ns: str, name: str, uid: str) -> None:
        driver = self._driver(ns, name, uid)
        if driver is None:
            return
        settings = self.read_conf(driver)
        problem = sparkconf.validate_memory(settings.conf)
        if problem:
            self._end(ns, name, uid, settings, succeeded=False, message=f"invalid executor memory: {problem}")
            return
        duration = expected_duration(driver, self.host.default_duration) * self.scale
        log.info(
            "event=driver_started driver=%s/%s executors=%d batch=%d", ns, name, settings.instances, settings.batch_size
        )
        next_id = 1
        counted_failures: set[str] = set()
        started = time.monotonic()
        next_allocation = started
        working = settings.instances == 0
        work_left = duration
        last = started
        kept = self.host.containers.work_left
        resumed = kept.get(uid)
        if resumed is not None:  # the simulator restarted: the application worked on while it was stopped
            work_left, last, working = resumed
            started = min(started, last)
        while True:
            now = time.monotonic()
            driver = self._driver(ns, name, uid)
            if driver is None:
                kept.pop(uid, None)
                return  # deleted or ended elsewhere: the garbage collector takes the executors
            executors = self._executors(uid)
            for pod in executors:
                pod_uid = pod["metadata"]["uid"]
                if pod["status"].get("phase") == "Failed" and pod_uid not in counted_failures:
                    counted_failures.add(pod_uid)
                    self._delete(pod)
            if len(counted_failures) > settings.max_failures:
                self._end(
                    ns,
                    name,
                    uid,
                    settings,
                    succeeded=False,
                    message=f"Max number of executor failures ({settings.max_failures}) reached",
                )
                return
            live = [
                p
                for p in executors
                if p["status"].get("phase") not in TERMINAL_PHASES and not p["metadata"].get("deletionTimestamp")
            ]
            if now >= next_allocation and len(live) < settings.instances:
                for _ in range(min(settings.batch_size, settings.instances - len(live))):
                    next_id = self._create_executor(driver, settings, next_id)
                next_allocation = now + settings.batch_delay * self.scale
            running = sum(1 for p in live if p["status"].get("phase") == "Running")
            if not working:
                enough = running >= math.ceil(settings.ratio * settings.instances)
                waited = now - started >= settings.max_wait * self.scale
                working = running > 0 and (enough or waited)
            if working and (running > 0 or settings.instances == 0):
                work_left -= now - last
            last = now
            if working and work_left <= 0:
                kept.pop(uid, None)
                self._end(ns, name, uid, settings, succeeded=not sim_fails(driver))
                return
            kept[uid] = (work_left, now, working)
            await asyncio.sleep(self.tick)

    def _create_executor(self, driver: Obj, settings: DriverConf, next_id: int) -> int:
        ns = driver["metadata"].get("namespace", "")
        while True:
            body = sparkconf.executor_pod(driver, settings.conf, next_id, settings.template, fallback=settings.fallback)
            next_id += 1
            try:
                created = self.api.create(PODS, ns, body)
                log.debug("event=executor_created pod=%s/%s", ns, body["metadata"]["name"])
                self._create_claims(driver, settings, created, next_id - 1)
                return next_id
            except ApiError as exc:
                if exc.code != 409:
                    log.warning(
                        "event=executor_rejected driver=%s/%s reason=%s", ns, driver["metadata"]["name"], exc.message
                    )
                    return next_id

    def _create_claims(self, driver: Obj, settings: DriverConf, executor: Obj, exec_id: int) -> None:
        """On-demand claims, created after their executor pod, as Spark's driver does (`spark_volumes`)."""
        ns = executor["metadata"].get("namespace", "")
        prefix = executor["metadata"]["name"].rsplit("-exec-", 1)[0]
        claims = spark_volumes.executor_claims(settings.conf, prefix, exec_id)
        for body in spark_volumes.claim_bodies(settings.conf, driver, executor, claims):
            try:
                self.api.create(PVCS, ns, body)
            except ApiError as exc:
                if exc.code != 409:  # 409: a claim kept from an executor that is gone (Spark reuses it)
                    log.warning("event=claim_rejected claim=%s/%s reason=%s", ns, body["metadata"]["name"],
                                exc.message)

    def _delete(self, pod: Obj) -> None:
        with contextlib.suppress(ApiError):
            self.api.delete(PODS, pod["metadata"].get("namespace", ""), pod["metadata"]["name"], {})

    def _end(self, ns: str, name: str, uid: str, settings: DriverConf, *, succeeded: bool, message: str = "") -> None:
        self.host.containers.work_left.pop(uid, None)
        for pod in self._executors(uid):
            if pod["status"].get("phase") in TERMINAL_PHASES and not settings.delete_on_termination:
                continue
            if settings.delete_on_termination:
                self._delete(pod)
            else:
                self._finish(ns, pod["metadata"]["name"], pod["metadata"]["uid"], True, "")
        self._finish(ns, name, uid, succeeded, message)
        log.info("event=driver_finished driver=%s/%s succeeded=%s", ns, name, succeeded)

    def _finish(self, ns: str, name: str, uid: str, succeeded: bool, message: str) -> None:
        kubelet: Any = self.host.kubelet
        if kubelet is not None:
            kubelet.finish(ns, name, uid, succeeded=succeeded, message=message)
        else:
            finish_pod(self.api, ns, name, uid, succeeded=succeeded, message=message)
