"""YAML files read into plain Python values, keeping the line of every key and item."""

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


def load_yaml(path: Path, evaluator: Evaluator, display: str | None = None) -> tuple[Any, SourceMap]:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    display = display or str(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read file: {exc.strerror or exc}", Location(display)) from None
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        document = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"invalid YAML: {problem}", Location(display, line)) from None
    except YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", Location(display)) from None
    source = SourceMap(display)
    value = _plain(document, (), source, evaluator, path.parent, 1)
    return value, source


def _plain(node: Any, path: Path_, source: SourceMap, evaluator: Evaluator, base_dir: Path, line: int) -> Any:
    """Copy a ruamel node into dicts/lists/scalars, recording lines and evaluating `${...}`."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    source.lines.setdefault(path, line)
    if isinstance(node, CommentedMap):
        result = {}
        for key in node:
            key_line = _key_line(node, key, line)
            child = (*path, str(key))
            source.lines[child] = key_line
            result[str(key)] = _plain(node[key], child, source, evaluator, base_dir, key_line)
        return result
    if isinstance(node, CommentedSeq):
        items = []
        for index, item in enumerate(node):
            item_line = node.lc.item(index)[0] + 1
            items.append(_plain(item, (*path, index), source, evaluator, base_dir, item_line))
        return items
    if isinstance(node, str):
        try:
            return evaluator.evaluate(str(node), base_dir)
        except ExpressionError as exc:
            raise ConfigError(str(exc), Location(source.file, line), _dotted(path)) from None
    if isinstance(node, (dt.datetime, dt.date)):
        return node.isoformat()
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node


def _key_line(node: Any, key: Any, default: int) -> int:
    """The line of `key`; a key merged in with `<<: *anchor` has the line where the anchor writes it."""
    if key in node.lc.data:
        return node.lc.key(key)[0] + 1
    for merged in getattr(node, "merge", None) or []:
        merged = merged[1] if isinstance(merged, tuple) else merged  # ruamel <0.19: (position, mapping)
        if key in merged:
            return _key_line(merged, key, default)
    return default


def _dotted(path: Path_) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
