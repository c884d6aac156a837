"""The other documents of a multi-document manifest file: ConfigMaps passed through, everything else skipped.

Teams keep a SparkApplication together with what it needs in one file: a ConfigMap
holding its script or a pod template, a Secret, sometimes a Service. bigk creates a
ConfigMap for each run when an application of the same file refers to it (volumes,
env, envFrom, configMaps) and it lives in the application's namespace; it becomes
part of the job (`spec.configMaps`). Everything else (Secrets included: keep them out
of git) is skipped with a warning that names the document's line, never silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bigk.spec.model import API_VERSION
from bigk.spec.operator import OPERATOR_KINDS, config_map_refs
from bigk.spec.problems import SpecProblem
from bigk.spec.yamlsafe import Document

_CONFIGMAP_KEYS = ("apiVersion", "kind", "metadata", "data", "binaryData", "immutable")
_META_KEYS = ("name", "namespace", "labels", "annotations")


def is_side_document(data: Any) -> bool:
    """A Kubernetes object that is neither a bigk job nor a Spark Operator application."""
    if not isinstance(data, dict):
        return False
    api, kind = data.get("apiVersion"), data.get("kind")
    if not isinstance(api, str) or not isinstance(kind, str) or api.startswith("bigk.io/"):
        return False
    return not (api.startswith("sparkoperator.k8s.io/") and kind in OPERATOR_KINDS)


def _is_config_map(data: dict[str, Any]) -> bool:
    return data.get("apiVersion") == "v1" and data.get("kind") == "ConfigMap"


def _meta(data: dict[str, Any]) -> dict[str, Any]:
    meta = data.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _name_ns(data: dict[str, Any]) -> tuple[str, str | None]:
    meta = _meta(data)
    namespace = meta.get("namespace")
    return str(meta.get("name", "")), str(namespace) if namespace is not None else None


@dataclass
class SideDocuments:
    """The file's side documents and which of them an application used."""

    path: Path
    docs: list[Document]
    used: set[int] = field(default_factory=set)  # indexes into docs

    @classmethod
    def of(cls, path: Path, docs: list[Document]) -> SideDocuments:
        return cls(path, [d for d in docs if is_side_document(d.data)])

    def attach(self, manifest: dict[str, Any], converted: dict[str, Any]) -> None:
        """Put the ConfigMaps `manifest` refers to into the converted job's `spec.configMaps`."""
        wanted = config_map_refs(manifest)
        namespace = str(_meta(manifest).get("namespace") or "default")
        spec = converted.get("spec")
        if not wanted or not isinstance(spec, dict):
            return
        for i, doc in enumerate(self.docs):
            if not _is_config_map(doc.data):
                continue
            name, ns = _name_ns(doc.data)
            if name in wanted and ns in (None, namespace):
                cm = {k: v for k, v in doc.data.items() if k in _CONFIGMAP_KEYS}
                cm["metadata"] = {k: v for k, v in doc.data["metadata"].items() if k in _META_KEYS}
                spec.setdefault("configMaps", []).append(cm)
                self.used.add(i)

    def alone_message(self) -> str:
        """Why a file of side documents only is not a spec file."""
        kinds = ", ".join(sorted({f"{d.data.get('apiVersion')}/{d.data.get('kind')}" for d in self.docs}))
        return (f"unsupported document {kinds}: expected {API_VERSION} SparkJob, or sparkoperator.k8s.io/v1beta2 "
                "SparkApplication / ScheduledSparkApplication (other objects are only taken beside one)")

    def warnings(self) -> list[SpecProblem]:
        """One positioned warning per side document no application took."""
        out = []
        for i, doc in enumerate(self.docs):
            if i in self.used:
                continue
            kind = str(doc.data.get("kind"))
            name, _ = _name_ns(doc.data)
            what = f"{kind} {name!r}" if name else kind
            if _is_config_map(doc.data):
                why = "no application in this file refers to it (in its namespace); create it with kubectl"
            elif kind == "Secret" and doc.data.get("apiVersion") == "v1":
                why = "bigk does not create Secrets from spec files (keep them out of git); create it with kubectl"
            else:
                why = (f"bigk runs {API_VERSION} SparkJob and Spark Operator SparkApplication / "
                       "ScheduledSparkApplication documents; apply this one with kubectl")
            line, col = doc.locate(("kind",))
            out.append(SpecProblem(self.path, line, col, "kind", f"skipped {what}: {why}", "warning"))
        return out
