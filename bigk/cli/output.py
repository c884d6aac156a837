"""How `bigk get` and friends print things, the kubectl way: `-o`, `--sort-by`, `--no-headers`, `-l`, kind names.

Every command that lists or shows objects goes through `emit()`: tables (rich, colour only on a terminal),
`-o json|yaml` as a `kind: List` with RFC 3339 times, `-o name` (`KIND/NAME`), `-o jsonpath=TEMPLATE` and
`-o custom-columns=HEADER:.path,...`. Kinds are registered once (`register_kind`) with their singular, plural
and short names, so `get run`, `get runs`, `get r` and `get run/ID` all mean the same thing. Other CLI
modules register their own kinds here and reuse `emit()`; nothing in this module talks to the server.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from bigk.errors import UsageError

API_VERSION = "bigk.io/v1"
OUTPUT_HELP = ("table, wide, json, yaml, name, jsonpath=TEMPLATE or custom-columns=HEADER:.field,... "
               "(as kubectl)")


# ---- -o ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputFormat:
    """A parsed `-o`: `style` is table|wide|json|yaml|name|jsonpath|custom-columns; `arg` the template."""

    style: str
    arg: str = ""

    @property
    def structured(self) -> bool:
        """json or yaml: the whole object, not a picture of it."""
        return self.style in ("json", "yaml")

    @property
    def tabular(self) -> bool:
        return self.style in ("table", "wide")


_PLAIN = ("table", "wide", "json", "yaml", "name")


def parse_output(text: str | None) -> OutputFormat:
    """`-o` text -> OutputFormat; anything else is a usage error that lists the choices."""
    value = (text or "table").strip()
    if value in _PLAIN:
        return OutputFormat(value)
    style, sep, arg = value.partition("=")
    if sep and style in ("jsonpath", "custom-columns"):
        if not arg.strip():
            raise UsageError(f"-o {style}= needs a template, e.g. -o {style}="
                             + ("'{.items[*].id}'" if style == "jsonpath" else "NAME:.id,STATE:.state"))
        return OutputFormat(style, arg)
    raise UsageError(f"-o {value!r}: use one of {', '.join(_PLAIN)}, jsonpath=TEMPLATE or "
                     "custom-columns=HEADER:.field,...")


def output_option(default: str = "table") -> Any:
    """The `-o/--output` option every command shares."""
    return typer.Option(default, "--output", "-o", help=OUTPUT_HELP)


OUTPUT_OPT = output_option()  # `-o/--output`, default `table`


# ---- kinds ------------------------------------------------------------------------------------

RowsFn = Callable[[list[dict[str, Any]], bool, bool], tuple[list[str], list[list[Any]]]]


@dataclass(frozen=True)
class KindInfo:
    """One kind of thing `bigk get` lists: its names, where the API serves it and how a row looks."""

    plural: str  # the canonical name: runs, jobs, nodes, gpus
    singular: str
    kind: str  # the `kind` field in JSON/YAML: Run, Job, Node, GPU
    path: str  # API path of the list, under /api/v1
    rows: RowsFn
    name_of: Callable[[dict[str, Any]], str]
    short: tuple[str, ...] = ()
    labels: Callable[[dict[str, Any]], dict[str, str]] = field(default=lambda item: {})
    namespaced: bool = False
    watchable: bool = False  # the API's watch stream carries it
    detail_path: str | None = None  # API path of one object ({name}), if there is one
    empty: str = ""

    def names(self) -> tuple[str, ...]:
        return (self.plural, self.singular, *self.short)


KINDS: dict[str, KindInfo] = {}


def register_kind(info: KindInfo) -> None:
    """Make a kind known to `bigk get` and to `KIND/NAME` parsing (other CLI modules call this too)."""
    KINDS[info.plural] = info


def find_kind(name: str) -> KindInfo:
    """`run`, `runs`, `r`, `Run` -> the runs kind; an unknown name is a usage error that lists the known ones."""
    wanted = name.strip().lower()
    for info in KINDS.values():
        if wanted in info.names():
            return info
    known = ", ".join(f"{k.plural} ({'/'.join(k.names()[1:])})" for k in KINDS.values())
    raise UsageError(f"unknown kind {name!r}; known: {known}")


def split_kind_name(kind: str, name: str | None) -> tuple[KindInfo, str | None]:
    """`get run ID`, `get run/ID` and `get runs` -> (kind, name or None)."""
    if "/" in kind:
        if name:
            raise UsageError(f"give KIND/NAME or KIND NAME, not both ({kind} {name})")
        kind, _, name = kind.partition("/")
        if not name:
            raise UsageError(f"{kind}/: a name is missing after the slash")
    return find_kind(kind), name


# ---- times ------------------------------------------------------------------------------------

TIME_KEYS = {"at", "next_fire", "fire_time", "not_before", "loaded_at", "observed_at"}


def rfc3339(ts: float) -> str:
    """A Unix time as RFC 3339 in UTC, to the millisecond: 2026-12-02T06:50:00.123Z."""
    moment = dt.datetime.fromtimestamp(ts, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def with_rfc3339(data: Any) -> Any:
    """A copy of `data` with every timestamp field (`*_at`, `next_fire`, ...) as an RFC 3339 string."""
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            is_time = isinstance(key, str) and (key.endswith("_at") or key in TIME_KEYS)
            if is_time and isinstance(value, int | float) and not isinstance(value, bool):
                out[key] = rfc3339(float(value))
            else:
                out[key] = with_rfc3339(value)
        return out
    if isinstance(data, list):
        return [with_rfc3339(v) for v in data]
    return data


def as_list(kind: KindInfo, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The kubectl `List` wrapper: apiVersion, kind: List, items each with apiVersion and kind."""
    return {"apiVersion": API_VERSION, "kind": "List", "metadata": {},
            "items": [as_object(kind, item) for item in items]}


def as_object(kind: KindInfo, item: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": kind.kind, **with_rfc3339(item)}


def dump(data: Any, style: str) -> None:
    """JSON (indented, sorted keys) or YAML (in the object's own key order)."""
    if style == "json":
        typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        typer.echo(yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip())


# ---- jsonpath (kubectl's template flavour) ----------------------------------------------------

_TOKEN = re.compile(r"\{((?:[^{}\"]|\"(?:[^\"\\]|\\.)*\")*)\}")


def _jp_eval(expr: str, data: Any) -> list[Any]:
    """Evaluate one kubectl-style path (`.items[*].id`, `$.items[0]`, `@`) against `data`."""
    from jsonpath_ng.exceptions import JsonPathParserError
    from jsonpath_ng.ext import parse

    expr = expr.strip()
    if expr in ("", "@", "$", "."):
        return [data]
    path = "$" + expr if expr.startswith((".", "[")) else expr if expr.startswith("$") else "$." + expr
    try:
        return [m.value for m in parse(path).find(data)]
    except (JsonPathParserError, Exception) as exc:  # jsonpath_ng raises plain Exceptions from its lexer
        raise UsageError(f"jsonpath {{{expr}}}: {exc}".splitlines()[0]) from None


def _jp_text(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return "" if value is None else str(value)


def jsonpath(template: str, data: Any) -> str:
    """Render a kubectl jsonpath template: literal text, `{.path}`, `{"\\n"}`, `{range .items[*]}...{end}`."""
    if "{" not in template:
        template = "{" + template + "}"
    parts: list[tuple[str, str]] = []  # ("text", s) | ("expr", s)
    pos = 0
    for match in _TOKEN.finditer(template):
        if match.start() > pos:
            parts.append(("text", template[pos:match.start()]))
        parts.append(("expr", match.group(1)))
        pos = match.end()
    if pos < len(template):
        parts.append(("text", template[pos:]))
    out, rest = _render(parts, data)
    if rest:
        raise UsageError("jsonpath: {end} without {range}")
    return out


def _render(parts: list[tuple[str, str]], data: Any) -> tuple[str, list[tuple[str, str]]]:
    """Render until an unmatched `{end}`; returns the text and what follows the `{end}`."""
    out: list[str] = []
    while parts:
        kind, value = parts[0]
        parts = parts[1:]
        if kind == "text":
            out.append(value)
            continue
        expr = value.strip()
        if expr == "end":
            return "".join(out), [("end", "")] + parts
        if expr.startswith('"') and expr.endswith('"') and len(expr) >= 2:
            out.append(json.loads(expr))
            continue
        if expr.startswith("range "):
            body, after = _render(parts, data)  # to find where the body ends
            if not after:
                raise UsageError(f"jsonpath: {{{expr}}} without {{end}}")
            body_parts = parts[: len(parts) - len(after)]
            for item in _jp_eval(expr[len("range "):], data):
                text, _ = _render(body_parts, item)
                out.append(text)
            parts = after[1:]
            continue
        out.append(" ".join(_jp_text(v) for v in _jp_eval(expr, data)))
    return "".join(out), []


# ---- custom columns, sorting, selectors -------------------------------------------------------


def custom_columns(spec: str) -> list[tuple[str, str]]:
    """`NAME:.id,STATE:.state` -> [(NAME, .id), (STATE, .state)]."""
    cols = []
    for part in spec.split(","):
        header, sep, path = part.partition(":")
        if not sep or not header.strip() or not path.strip():
            raise UsageError(f"custom-columns {part!r}: expected HEADER:.field (e.g. NAME:.id,STATE:.state)")
        cols.append((header.strip(), path.strip().strip("{}")))
    return cols


def sort_items(items: list[dict[str, Any]], by: str | None) -> list[dict[str, Any]]:
    """kubectl `--sort-by=.field` (or `{.field}`, or a bare field name): ascending, missing values last."""
    if not by:
        return items
    expr = by.strip().strip("{}")
    if not expr.startswith((".", "$")):
        expr = "." + expr

    def key(item: dict[str, Any]) -> tuple[int, Any]:
        found = _jp_eval(expr, item)
        value = found[0] if found else None
        if value is None:
            return (2, "")
        if isinstance(value, int | float) and not isinstance(value, bool):
            return (0, value)
        return (1, str(value))

    if items and not any(_jp_eval(expr, item) for item in items):
        raise UsageError(f"--sort-by {by!r}: no item has that field")
    return sorted(items, key=key)


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "exists", "!exists", "in", "notin"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        have = labels.get(self.key)
        if self.op == "exists":
            return have is not None
        if self.op == "!exists":
            return have is None
        if self.op in ("=", "in"):
            return have is not None and have in self.values
        return have is None or have not in self.values


_SET = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def parse_selector(text: str | None) -> list[Requirement]:
    """kubectl's label selector: `a=b,c!=d,e,!f,g in (x,y),h notin (z)`."""
    if not text:
        return []
    reqs: list[Requirement] = []
    for raw in re.split(r",(?![^()]*\))", text):
        part = raw.strip()
        if not part:
            continue
        match = _SET.match(part)
        if match:
            values = tuple(v.strip() for v in match.group(3).split(",") if v.strip())
            reqs.append(Requirement(match.group(1), match.group(2), values))
        elif "!=" in part:
            key, _, value = part.partition("!=")
            reqs.append(Requirement(key.strip(), "!=", (value.strip(),)))
        elif "=" in part:
            key, _, value = part.partition("==" if "==" in part else "=")
            reqs.append(Requirement(key.strip(), "=", (value.strip(),)))
        elif part.startswith("!"):
            reqs.append(Requirement(part[1:].strip(), "!exists"))
        else:
            reqs.append(Requirement(part, "exists"))
        if not re.match(r"^[\w./-]+$", reqs[-1].key):
            raise UsageError(f"-l {text!r}: {part!r} is not a selector (key=value, key!=value, key, !key, "
                             "key in (a,b))")
    return reqs


def select(items: Iterable[dict[str, Any]], kind: KindInfo, reqs: list[Requirement]) -> list[dict[str, Any]]:
    return [item for item in items if all(r.matches(kind.labels(item)) for r in reqs)]


# ---- printing ---------------------------------------------------------------------------------


def console() -> Console:
    tty = sys.stdout.isatty()
    return Console(file=sys.stdout, width=None if tty else 200, no_color=not tty, highlight=False,
                   soft_wrap=not tty)


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], empty: str, headers: bool = True) -> None:
    """A kubectl-like table (no borders); `empty` is printed instead when there are no rows."""
    out = console()
    if not rows:
        if empty:
            typer.echo(empty, err=not headers)
        return
    grid = Table(box=None, show_edge=False, pad_edge=False, show_header=headers,
                 header_style="bold" if out.is_terminal else "")
    for col in columns:
        grid.add_column(col, overflow="fold")
    for row in rows:
        grid.add_row(*["-" if v is None or v == "" else str(v) for v in row])
    out.print(grid)


def emit(kind: KindInfo, items: list[dict[str, Any]], fmt: OutputFormat, *, headers: bool = True,
         single: bool = False) -> None:
    """Print `items` of `kind` as `fmt` asks; `single`: one named object (JSON/YAML is the object, not a List)."""
    if fmt.structured:
        dump(as_object(kind, items[0]) if single and items else as_list(kind, items), fmt.style)
    elif fmt.style == "name":
        for item in items:
            typer.echo(f"{kind.singular}/{kind.name_of(item)}")
    elif fmt.style == "jsonpath":
        data = as_object(kind, items[0]) if single and items else as_list(kind, items)
        typer.echo(jsonpath(fmt.arg, data))
    elif fmt.style == "custom-columns":
        cols = custom_columns(fmt.arg)
        rows = []
        for item in items:
            obj = as_object(kind, item)
            rows.append([" ".join(_jp_text(v) for v in _jp_eval(path, obj)) or "<none>" for _, path in cols])
        table([h for h, _ in cols], rows, kind.empty or f"No {kind.plural}.", headers)
    else:
        columns, cells = kind.rows(items, fmt.style == "wide", console().is_terminal)
        table(columns, cells, kind.empty or f"No {kind.plural}.", headers)


def emit_event(kind: KindInfo, type_: str, item: dict[str, Any], fmt: OutputFormat) -> None:
    """One watch event: a table row (no header), `KIND/NAME`, or `{"type": ..., "object": ...}` in JSON/YAML."""
    if fmt.structured:
        event = {"type": type_, "object": as_object(kind, item)}
        if fmt.style == "json":
            typer.echo(json.dumps(event, sort_keys=True, default=str))
        else:
            typer.echo("---\n" + yaml.safe_dump(event, sort_keys=False, default_flow_style=False).rstrip())
    elif fmt.style == "jsonpath":
        typer.echo(jsonpath(fmt.arg, as_object(kind, item)))
    else:
        emit(kind, [item], fmt, headers=False)
