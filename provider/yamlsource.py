"""YAML files read into plain Python values, keeping the line of every key and item.

The work a file can cause is bounded: nesting deeper than MAX_DEPTH and aliases that expand to
more than MAX_ALIAS_EXPANSION values are errors (an alias bomb of a few lines otherwise expands to
billions of values, and deep nesting exhausts the stack).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provider.errors import ConfigError, Location
from provider.expressions import Evaluator, ExpressionError

Path_ = tuple[str | int, ...]


@dataclass
class SourceMap:
    """Lines by value path within one file, so an error deep in a spec can name its line."""

    file: str
    lines: dict[Path_, int] = field(default_factory=dict)

    def locate(self, path: Path_) -> Location:
        """The line of `path`, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return Location(self.file, line)
        return Location(self.file)


MERGE_TAG = "tag:yaml.org,2002:merge"
MAX_DEPTH = 100
MAX_ALIAS_EXPANSION = 100_000


def nesting_too_deep(yaml: Any, text: str) -> int | None:
    """The line where the document nests deeper than MAX_DEPTH, if it does.

    Read from the parser's events, one at a time: composing such a document recursively would
    exhaust the stack (the C composer crashes the process)."""
    from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent

    depth = 0
    for event in yaml.parse(text):
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                return event.start_mark.line + 1
        elif isinstance(event, CollectionEndEvent):
            depth -= 1
    return None


def load_yaml(path: Path, evaluator: Evaluator, display: str | None = None) -> tuple[Any, SourceMap]:
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    display = display or str(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read file: {exc.strerror or exc}", Location(display)) from None
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise ConfigError(f"not UTF-8 text ({exc.reason})", Location(display, line)) from None
    source = SourceMap(display)
    try:
        yaml, node = _compose(text, display)
        value = _Copier(yaml.constructor, source, evaluator, path.parent).copy(node, (), 1) if node is not None else None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"invalid YAML: {problem}", Location(display, line)) from None
    except YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", Location(display)) from None
    return value, source


def _compose(text: str, display: str) -> tuple[Any, Any]:
    """The document's nodes (they know their lines), and the loader that composed them.

    The C parser (ruamel.yaml.clib) is several times faster than the pure-Python one, which at 1,000
    objects took most of a no-op plan's own time; the pure-Python one also reads YAML 1.2 that
    libyaml rejects (`{url: https://x}` in flow style), so it reads what the C parser does not.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        yaml = YAML(typ="safe")
        _check_depth(yaml, text, display)
        return yaml, yaml.compose(text)
    except YAMLError:
        yaml = YAML(typ="safe", pure=True)
        _check_depth(yaml, text, display)
        return yaml, yaml.compose(text)


def _check_depth(yaml: Any, text: str, display: str) -> None:
    line = nesting_too_deep(yaml, text)
    if line is not None:
        raise ConfigError(f"invalid YAML: nested more than {MAX_DEPTH} levels deep", Location(display, line))


class _Copier:
    """Copies composed YAML nodes into dicts, lists and scalars, recording the line of every key and
    item and evaluating `${...}` in strings. Keys merged in with `<<: *anchor` keep the lines where
    the anchor writes them; the mapping's own keys win over merged ones."""

    def __init__(self, constructor: Any, source: SourceMap, evaluator: Evaluator, base_dir: Path):
        self.constructor = constructor
        self.source = source
        self.evaluator = evaluator
        self.base_dir = base_dir
        self.open: set[int] = set()  # nodes being copied: an alias among them would never end
        self.copied = 0  # values copied so far
        self.sizes: dict[int, int] = {}  # values each node's copy took, by node: an alias copies them again
        self.expanded = 0  # values copied again through aliases
        self.in_alias = False
        self.merged_pairs: dict[int, list[tuple[Any, Any, bool]]] = {}

    def copy(self, node: Any, path: Path_, line: int) -> Any:
        if len(path) > MAX_DEPTH:
            raise ConfigError(f"invalid YAML: nested more than {MAX_DEPTH} levels deep", Location(self.source.file, line))
        size = self.sizes.get(id(node))
        if size is None or self.in_alias:
            before = self.copied
            value = self._copy(node, path, line)
            self.copied += 1
            self.sizes.setdefault(id(node), self.copied - before)
            return value
        # Reached again, through an alias: its size is known, so a bomb is refused before it goes off.
        self.expanded += size
        if self.expanded > MAX_ALIAS_EXPANSION:
            # Composed nodes keep the anchor's line, not the alias's: the message names the anchor.
            raise self.error(node, f"aliases of the value anchored here expand to more than {MAX_ALIAS_EXPANSION:,} values")
        self.in_alias = True
        try:
            return self._copy(node, path, line)
        finally:
            self.in_alias = False

    def _copy(self, node: Any, path: Path_, line: int) -> Any:
        from ruamel.yaml.nodes import MappingNode, SequenceNode

        self.source.lines.setdefault(path, line)
        if isinstance(node, (MappingNode, SequenceNode)):
            if id(node) in self.open:
                raise self.error(node, "an alias refers to the node that contains it")
            self.open.add(id(node))
            try:
                if isinstance(node, MappingNode):
                    return self.mapping(node, path)
                return [self.copy(item, (*path, index), _line(item)) for index, item in enumerate(node.value)]
            finally:
                self.open.discard(id(node))
        value = self.scalar(node)
        if isinstance(value, str):
            try:
                return self.evaluator.evaluate(value, self.base_dir)
            except ExpressionError as exc:
                raise ConfigError(str(exc), Location(self.source.file, line), _dotted(path)) from None
        if isinstance(value, (dt.datetime, dt.date)):
            return value.isoformat()
        return value

    def mapping(self, node: Any, path: Path_) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node, merged in self.pairs(node):
            key = str(self.scalar(key_node))
            if key in result:
                if merged:
                    continue
                raise self.error(key_node, f'duplicate key "{key}" (first at line {self.source.lines[(*path, key)]})')
            self.source.lines[(*path, key)] = _line(key_node)
            result[key] = self.copy(value_node, (*path, key), _line(key_node))
        return result

    def pairs(self, node: Any) -> list[tuple[Any, Any, bool]]:
        """(key, value, merged) node triples: the mapping's own, then those of `<<` in order (each
        merged key once: the first wins, as in the mapping). Worked out once per node, so mappings
        merging mappings that merge others cost their keys, not their number of paths."""
        from ruamel.yaml.nodes import MappingNode, SequenceNode

        if id(node) in self.merged_pairs:
            return self.merged_pairs[id(node)]
        own, merged = [], []
        for key_node, value_node in node.value:
            if key_node.tag != MERGE_TAG:
                own.append((key_node, value_node, False))
                continue
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, MappingNode):
                    raise self.error(source, "<< merges a mapping or a list of mappings")
                if id(source) in self.open:
                    raise self.error(source, "a << merge refers to the mapping that contains it")
                self.open.add(id(source))
                try:
                    merged += [(key, value, True) for key, value, _ in self.pairs(source)]
                finally:
                    self.open.discard(id(source))
        seen = {str(self.scalar(key)) for key, _, _ in own}
        unique = []
        for key, value, _ in merged:
            text = str(self.scalar(key))
            if text not in seen:
                seen.add(text)
                unique.append((key, value, True))
        self.merged_pairs[id(node)] = own + unique
        return own + unique

    def scalar(self, node: Any) -> Any:
        try:
            return self.constructor.construct_object(node, deep=True)
        except (ValueError, TypeError) as exc:  # e.g. a timestamp such as 2020-13-45
            raise self.error(node, f"cannot read {node.value!r}: {exc}") from None

    def error(self, node: Any, message: str) -> ConfigError:
        return ConfigError(f"invalid YAML: {message}", Location(self.source.file, _line(node)))


def _line(node: Any) -> int:
    return node.start_mark.line + 1


def _dotted(path: Path_) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
