"""Problems found in spec files, each with a file, line, column and field path.

Pydantic errors are translated here: unknown fields get a "did you mean ...?"
hint computed from the model itself, and positions come from the YAML marks the
loader recorded, so the user sees the line they have to edit.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from bigk.spec.model import DNS_LABEL, DNS_SUBDOMAIN, FIELD_MARK, JobSpec
from bigk.spec.yamlsafe import Document

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class SpecProblem:
    """One thing wrong with a spec; `str()` gives `FILE:LINE:COL: field.path: message`."""

    file: Path
    line: int
    col: int
    field: str
    message: str
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        message = " ".join(self.message.split())  # always one line
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{self.file}:{self.line}:{self.col}: {self.field}: {prefix}{message}"


def field_path(loc: Sequence[str | int]) -> str:
    """('spec', 'tolerations', 0, 'key') -> 'spec.tolerations[0].key'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(document)"


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def model_at(loc: Loc, root: type[BaseModel] = JobSpec) -> type[BaseModel] | None:
    """The model class that validates the mapping at `loc` (None inside free-form maps)."""
    current: Any = root
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        if not (isinstance(current, type) and issubclass(current, BaseModel)) or not isinstance(part, str):
            return None
        info = current.model_fields.get(part)
        if info is None:
            return None
        annotation = info.annotation
        origin = typing.get_origin(annotation)
        if origin is list and parts and isinstance(parts[0], int):
            parts.pop(0)
            annotation = typing.get_args(annotation)[0]
        model = _model_in(annotation)
        if model is None:
            return None
        current = model
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def suggest(name: str, known: Sequence[str]) -> str | None:
    """The known name closest to `name`, if one is close enough to be a typo."""
    lowered = {k.lower(): k for k in known}
    if name.lower() in lowered:
        return lowered[name.lower()]
    match = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[match[0]] if match else None


def unknown_field_message(loc: Loc, root: type[BaseModel] = JobSpec) -> str:
    name = str(loc[-1])
    model = model_at(loc[:-1], root)
    known = list(model.model_fields) if model is not None else []
    hint = suggest(name, known)
    if hint:
        return f"unknown field {name!r}; did you mean {hint!r}?"
    if known:
        return f"unknown field {name!r} (known fields: {', '.join(known)})"
    return f"unknown field {name!r}"


def _split_field_problem(loc: Loc, msg: str) -> tuple[Loc, str]:
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if FIELD_MARK in msg:
        head, _, message = msg.partition(FIELD_MARK * 2)
        parts = [int(p) if p.isdigit() else p for p in head.split(FIELD_MARK)]
        return (*loc, *parts), message
    return loc, msg


def problems_from_validation(
    exc: ValidationError,
    file: Path,
    doc: Document,
    translate: Any = None,
    root: type[BaseModel] = JobSpec,
) -> list[SpecProblem]:
    """One SpecProblem per pydantic error, positioned with the document's marks.

    `translate(loc) -> loc` maps a model path to the path in the original document
    (used for Spark Operator manifests converted on load).
    """
    problems = []
    for err in exc.errors(include_url=False):
        loc: Loc = tuple(err["loc"])
        kind = err["type"]
        msg = str(err["msg"])
        prefer_key = False
        if loc and loc[-1] == "[key]":
            loc, prefer_key = loc[:-1], True
        loc, msg = _split_field_problem(loc, msg)
        if kind == "extra_forbidden":
            msg, prefer_key = unknown_field_message(loc, root), True
        elif kind == "missing":
            msg = f"required field {loc[-1]!r} is missing"
        elif kind == "string_pattern_mismatch" and err.get("ctx", {}).get("pattern") in (DNS_LABEL, DNS_SUBDOMAIN):
            msg = (
                f"{err.get('input')!r} is not a valid name: use lower-case letters, digits and '-', "
                "starting and ending with a letter or digit"
            )
        elif kind != "value_error" and not isinstance(err.get("input"), dict | list):
            msg = f"{msg} (got {err.get('input')!r})"
        doc_loc = translate(loc) if translate else loc
        if kind == "missing":
            line, col = doc.locate(doc_loc[:-1], prefer_key=True)
        else:
            line, col = doc.locate(doc_loc, prefer_key=prefer_key)
        problems.append(SpecProblem(file, line, col, field_path(doc_loc), msg))
    return problems
