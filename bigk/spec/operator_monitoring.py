"""The Spark Operator's `monitoring` block, wired the way the operator wires it, for imported manifests.

With `monitoring.prometheus.jmxExporterJar` the operator makes a ConfigMap `<app>-prom-conf`
(`metrics.properties` and `prometheus.yaml`), mounts it at /etc/metrics/conf, points
`spark.metrics.conf` at it, and for the driver (`exposeDriverMetrics`) and executors
(`exposeExecutorMetrics`) adds the JMX exporter as a Java agent on `port` (8090), a container
port named `portName` (jmx-exporter) and the `prometheus.io/scrape|port|path` annotations.
bigk does the same with its own fields: `spec.configMaps`, a configMaps mount, `javaOptions`,
`ports` and `annotations`, so the imported job exports the same metrics.

The defaults follow the operator's: metrics.properties registers the JMX sink and the JVM
source; prometheus.yaml (bigk's own, short) exports every MBean with lower-case names.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

MOUNT = "/etc/metrics/conf"
DEFAULT_PORT = 8090
DEFAULT_PORT_NAME = "jmx-exporter"
DEFAULT_METRICS_PROPERTIES = (
    "*.sink.jmx.class=org.apache.spark.metrics.sink.JmxSink\n"
    "driver.source.jvm.class=org.apache.spark.metrics.source.JvmSource\n"
    "executor.source.jvm.class=org.apache.spark.metrics.source.JvmSource\n"
)
DEFAULT_PROMETHEUS_YAML = "lowercaseOutputName: true\nlowercaseOutputLabelNames: true\nrules:\n  - pattern: \".*\"\n"
_KNOWN = {"exposeDriverMetrics", "exposeExecutorMetrics", "metricsProperties", "metricsPropertiesFile", "prometheus"}
_KNOWN_PROMETHEUS = {"jmxExporterJar", "port", "portName", "configFile", "configuration"}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass
class Wiring:
    """What `monitoring` adds to the converted job."""

    config_map: dict[str, Any] | None
    spark_conf: dict[str, str]
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)  # role -> javaagent, port, name
    dropped: list[tuple[str, str]] = field(default_factory=list)  # (sub-path, reason)

    def apply(self, pod: Any, role: str) -> Any:
        """The operator pod spec of `role` with the exporter's mount, Java agent, port and annotations."""
        if not isinstance(pod, dict):
            return pod
        out = copy.copy(pod)
        if self.config_map is not None:
            mount = {"name": self.config_map["metadata"]["name"], "path": MOUNT}
            out["configMaps"] = [*as_list(out.get("configMaps")), mount]
        agent = self.roles.get(role)
        if agent is None:
            return out
        java = str(out.get("javaOptions") or "").strip()
        out["javaOptions"] = f"{java} {agent['javaagent']}".strip()
        port = {"name": agent["port_name"], "containerPort": agent["port"], "protocol": "TCP"}
        out["ports"] = [*as_list(out.get("ports")), port]
        out["annotations"] = {**as_dict(out.get("annotations")), "prometheus.io/scrape": "true",
                              "prometheus.io/port": str(agent["port"]), "prometheus.io/path": "/metrics"}
        return out


def wiring(value: Any, app: str) -> Wiring | None:
    """The operator's wiring for `monitoring`; None when there is nothing to wire (no prometheus block)."""
    if not isinstance(value, dict):
        return None
    dropped = [(key, "unknown field; left out") for key in value if key not in _KNOWN]
    prometheus = value.get("prometheus")
    metrics_file = value.get("metricsPropertiesFile")
    conf = {"spark.metrics.conf": str(metrics_file or f"{MOUNT}/metrics.properties")}
    if not isinstance(prometheus, dict) or not prometheus.get("jmxExporterJar"):
        if value.get("exposeDriverMetrics") or value.get("exposeExecutorMetrics"):
            dropped.append(("prometheus", "metrics are exposed through the JMX exporter, which needs "
                                          "prometheus.jmxExporterJar; left out"))
        return Wiring(None, {}, dropped=dropped) if dropped else None
    dropped += [(f"prometheus.{key}", "unknown field; left out") for key in prometheus if key not in _KNOWN_PROMETHEUS]
    data: dict[str, str] = {}
    if not metrics_file:
        data["metrics.properties"] = str(value.get("metricsProperties") or DEFAULT_METRICS_PROPERTIES)
    config_file = prometheus.get("configFile")
    if not config_file:
        data["prometheus.yaml"] = str(prometheus.get("configuration") or DEFAULT_PROMETHEUS_YAML)
    try:
        port = int(prometheus.get("port") or DEFAULT_PORT)
    except (TypeError, ValueError):
        dropped.append(("prometheus.port", f"not a port number ({prometheus.get('port')!r}); {DEFAULT_PORT} used"))
        port = DEFAULT_PORT
    exporter_conf = config_file or f"{MOUNT}/prometheus.yaml"
    agent = {"javaagent": f"-javaagent:{prometheus['jmxExporterJar']}={port}:{exporter_conf}",
             "port": port, "port_name": str(prometheus.get("portName") or DEFAULT_PORT_NAME)}
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{app}-prom-conf"[:253]},
                  "data": data} if data else None
    roles = {role: agent for role, flag in (("driver", "exposeDriverMetrics"), ("executor", "exposeExecutorMetrics"))
             if value.get(flag)}
    return Wiring(config_map, conf, roles, dropped)
