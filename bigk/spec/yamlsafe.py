"""Hardened YAML reading that remembers where every key and value came from.

Spec files come from git and from people; any bytes at all must give an error
with a position, never a traceback, a hang or a memory blow-up. So, before and
while building Python objects we enforce limits: file size, UTF-8, nesting depth,
number of documents, events and aliases, the size a document may expand to
through aliases (the "billion laughs" bomb), cycles through recursive anchors,
duplicate keys (plain PyYAML silently keeps the last one) and non-standard tags.

Mapping keys are always taken as the text written (so `on:` stays "on", not
True, and `1:` is "1"); values follow YAML's safe types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Path_ = tuple[str | int, ...]

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_DOCUMENTS = 200
MAX_EVENTS = 100_000  # a spec file with 100 jobs has ~10,000
MAX_ALIASES = 200
MAX_NODES = 100_000  # after alias expansion, per file

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STANDARD_TAGS = {
    f"tag:yaml.org,2002:{name}"
    for name in ("str", "int", "float", "bool", "null", "timestamp", "binary", "map", "seq", "set", "omap", "pairs")
}
_MERGE_TAG = "tag:yaml.org,2002:merge"
_PLAIN_TYPES = (str, int, float, bool, type(None))


class YamlProblem(Exception):
    """Unreadable YAML; line and col are 1-based (0 when unknown)."""

    def __init__(self, message: str, line: int = 0, col: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col


@dataclass
class Document:
    """One YAML document as plain Python data, with the position of every key and value."""

    data: Any
    line: int
    col: int
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: Path_, prefer_key: bool = False) -> tuple[int, int]:
        """Position of `path`, or of its nearest ancestor that exists in the document."""
        for end in range(len(path), 0, -1):
            sub = tuple(path[:end])
            first, second = (self.keys, self.values) if prefer_key else (self.values, self.keys)
            if sub in first:
                return first[sub]
            if sub in second:
                return second[sub]
        return self.line, self.col


def _mark(node: Node | yaml.Event) -> tuple[int, int]:
    mark = node.start_mark
    return (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)


def _position_of(text: str, index: int) -> tuple[int, int]:
    index = max(0, min(index, len(text)))
    line = text.count("\n", 0, index) + 1
    col = index - (text.rfind("\n", 0, index) + 1) + 1
    return line, col


def _yaml_problem(exc: yaml.YAMLError, text: str) -> YamlProblem:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
        if mark is not None:
            return YamlProblem(f"invalid YAML: {what}", mark.line + 1, mark.column + 1)
        return YamlProblem(f"invalid YAML: {what}")
    position = getattr(exc, "position", None)
    if isinstance(position, int):
        reason = getattr(exc, "reason", str(exc))
        line, col = _position_of(text, position)
        return YamlProblem(f"invalid YAML: {reason}", line, col)
    return YamlProblem(f"invalid YAML: {exc}")


def decode(data: bytes) -> str:
    """Bytes to text: UTF-8 only (a BOM is fine), within the size limit."""
    if len(data) > MAX_BYTES:
        raise YamlProblem(f"file is {len(data)} bytes; spec files are limited to {MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, col = _position_of(data[: exc.start].decode("utf-8", "replace"), exc.start)
        raise YamlProblem(
            f"file is not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})", line, col
        ) from None
    if "\x00" in text:
        line, col = _position_of(text, text.index("\x00"))
        raise YamlProblem("file contains NUL bytes; is it binary?", line, col)
    return text


# Events counted over the whole file: (kind, limit, what exceeding it says).
_COUNTED: tuple[tuple[type[yaml.Event], int, str], ...] = (
    (yaml.AliasEvent, MAX_ALIASES, f"more than {MAX_ALIASES} aliases (*name) in one file"),
    (yaml.DocumentStartEvent, MAX_DOCUMENTS, f"more than {MAX_DOCUMENTS} documents in one file"),
)


def _check_events(text: str) -> None:
    """Walk the event stream (no recursion, no objects) and enforce the structural limits."""
    depth = events = 0
    counts: dict[type[yaml.Event], int] = {kind: 0 for kind, _, _ in _COUNTED}
    try:
        for event in yaml.parse(text, Loader=_Loader):
            events += 1
            if events > MAX_EVENTS:
                raise YamlProblem(f"file has more than {MAX_EVENTS} YAML nodes", *_mark(event))
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise YamlProblem(f"nesting deeper than {MAX_DEPTH} levels", *_mark(event))
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            else:
                for kind, limit, message in _COUNTED:
                    if isinstance(event, kind):
                        counts[kind] += 1
                        if counts[kind] > limit:
                            raise YamlProblem(message, *_mark(event))
    except yaml.YAMLError as exc:
        raise _yaml_problem(exc, text) from None


class _Builder:
    """Turns a composed node graph into Python data, expanding aliases under a budget."""

    def __init__(self, doc: Document, budget: list[int]) -> None:
        self.doc = doc
        self.budget = budget  # shared across the file's documents: [nodes left]
        self.constructor = SafeConstructor()
        self.active: set[int] = set()

    def build(self, node: Node, path: Path_, depth: int) -> Any:
        self.budget[0] -= 1
        if self.budget[0] < 0:
            raise YamlProblem(
                f"file expands to more than {MAX_NODES} values (a YAML bomb through aliases?)", *_mark(node)
            )
        if depth > 2 * MAX_DEPTH:
            raise YamlProblem(f"aliases nest deeper than {2 * MAX_DEPTH} levels", *_mark(node))
        if node.tag not in _STANDARD_TAGS:
            raise YamlProblem(f"unsupported YAML tag {node.tag!r}", *_mark(node))
        self.doc.values.setdefault(path, _mark(node))
        if isinstance(node, ScalarNode):
            return self._scalar(node)
        if id(node) in self.active:
            raise YamlProblem("an alias refers to a node that contains it (recursive anchor)", *_mark(node))
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
            if isinstance(node, MappingNode):
                return self._mapping(node, path, depth)
        finally:
            self.active.discard(id(node))
        raise YamlProblem(f"unsupported YAML node {type(node).__name__}", *_mark(node))

    def _scalar(self, node: ScalarNode) -> Any:
        try:
            value = self.constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:
            reason = getattr(exc, "problem", None) or str(exc)
            reason = reason.splitlines()[0].split(";")[0][:120] if reason else type(exc).__name__
            raise YamlProblem(f"cannot read value {node.value[:40]!r}: {reason}", *_mark(node)) from None
        # timestamps, !!binary, ... are kept as the text written; bigk only deals in plain values
        return value if isinstance(value, _PLAIN_TYPES) else node.value

    def _mapping(self, node: MappingNode, path: Path_, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            if not isinstance(key_node, ScalarNode):
                raise YamlProblem("mapping keys must be plain text, not lists or mappings", *_mark(key_node))
            key = str(key_node.value)
            if key in out:
                first = self.doc.keys[(*path, key)]
                raise YamlProblem(f"duplicate key {key!r} (first at line {first[0]})", *_mark(key_node))
            self.doc.keys[(*path, key)] = _mark(key_node)
            out[key] = self.build(value_node, (*path, key), depth + 1)
        for merge in merges:
            sources = merge.value if isinstance(merge, SequenceNode) else [merge]
            for source in sources:
                if not isinstance(source, MappingNode):
                    raise YamlProblem("a merge key (<<) needs a mapping or a list of mappings", *_mark(source))
                merged = self.build(source, (*path, "<<"), depth + 1)
                for key, value in merged.items():
                    if key not in out:
                        out[key] = value
                        self.doc.keys.setdefault((*path, key), _mark(source))
        return out


def parse_documents(text: str) -> list[Document]:
    """All non-empty documents of a YAML stream, or a YamlProblem."""
    _check_events(text)
    budget = [MAX_NODES]
    docs: list[Document] = []
    try:
        for root in yaml.compose_all(text, Loader=_Loader):
            if root is None:
                continue
            line, col = _mark(root)
            doc = Document(data=None, line=line, col=col)
            doc.data = _Builder(doc, budget).build(root, (), 0)
            if doc.data is None:
                continue
            docs.append(doc)
    except yaml.YAMLError as exc:
        raise _yaml_problem(exc, text) from None
    return docs


def load_bytes(data: bytes) -> list[Document]:
    """Decode and parse; every failure is a YamlProblem."""
    return parse_documents(decode(data))
