"""Prefect's `{{ ... }}` templates, resolved as `prefect deploy` (3.8.8) resolves them.

The rules follow prefect/utilities/templating.py: a placeholder is `{{ NAME }}`; `$NAME` is an
environment variable, `prefect.variables.NAME` a variable, `prefect.blocks.TYPE.NAME[.KEYPATH]` a
block document, anything else a "standard" placeholder looked up (dotted, `[i]` for list items)
in a mapping of values such as the outputs of build and push steps. A string that is exactly one
placeholder takes the value (of any type); otherwise values are interpolated as text.

Environment variables and step outputs are resolved offline (provider/prefect_yaml.py); variables
and blocks need the server and are resolved at plan time (`resolve_server_templates`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

PLACEHOLDER = re.compile(r"({{\s*([\w\.\-\[\]$]+)\s*}})")
BLOCK_PREFIX = "prefect.blocks."
VARIABLE_PREFIX = "prefect.variables."
ENV_PREFIX = "$"


class _NotSet:
    def __repr__(self) -> str:
        return "NOT_SET"


NOT_SET: Any = _NotSet()
Path_ = tuple[str | int, ...]


def kind_of(name: str) -> str:
    if name.startswith(BLOCK_PREFIX):
        return "block"
    if name.startswith(VARIABLE_PREFIX):
        return "variable"
    if name.startswith(ENV_PREFIX):
        return "env"
    return "standard"


def placeholders(text: str) -> list[tuple[str, str]]:
    """(full match, name) of each distinct placeholder in `text`."""
    return list(dict.fromkeys(PLACEHOLDER.findall(text)))


def get_path(values: Any, keys: str, default: Any = NOT_SET) -> Any:
    """`a.b[0].c` looked up in nested mappings and lists (prefect's get_from_dict)."""
    node = values
    for key in keys.replace("[", ".").replace("]", "").split("."):
        try:
            if isinstance(node, (list, tuple)):
                node = node[int(key)]
            elif isinstance(node, Mapping):
                node = node[key]
            else:
                return default
        except (KeyError, IndexError, ValueError):
            return default
    return node


@dataclass
class Missing:
    """A placeholder that found no value, where it stands (path into the templated value)."""

    path: Path_
    full_match: str
    name: str


@dataclass
class Templater:
    """`apply_values` of prefect: standard placeholders from `values`, `$ENV` from `environ`.

    `remove_notset`: a standard placeholder without a value drops its key or item (alone) or is
    cut out of the text; else it is kept. Each one is recorded in `missing`; an unset `$ENV`
    placeholder in `unset_env`.
    """

    values: Any
    environ: Mapping[str, str]
    remove_notset: bool = True
    skip_prefixes: tuple[str, ...] = ()
    missing: list[Missing] = field(default_factory=list)
    unset_env: list[Missing] = field(default_factory=list)

    def apply(self, template: Any, path: Path_ = ()) -> Any:
        if isinstance(template, str):
            return self._string(template, path)
        if isinstance(template, dict):
            result = {}
            for key, value in template.items():
                updated = self.apply(value, (*path, key))
                if updated is not NOT_SET:
                    result[key] = updated
                elif not self.remove_notset:
                    result[key] = value
            return result
        if isinstance(template, list):
            # As in prefect, a list item without a value is dropped even when remove_notset is off.
            items = (self.apply(value, (*path, index)) for index, value in enumerate(template))
            return [item for item in items if item is not NOT_SET]
        return template

    def _string(self, text: str, path: Path_) -> Any:
        found = [(full, name) for full, name in placeholders(text) if not name.startswith(self.skip_prefixes)]
        if not found:
            return text
        if len(found) == 1 and found[0][0] == text and kind_of(found[0][1]) == "standard":
            value = get_path(self.values, found[0][1])
            if value is NOT_SET:
                self.missing.append(Missing(path, *found[0]))
            return value
        for full, name in found:
            kind = kind_of(name)
            if kind == "standard":
                value = get_path(self.values, name)
                missed = self.missing
            elif kind == "env":
                value = self.environ.get(name[len(ENV_PREFIX):], NOT_SET)
                missed = self.unset_env
            else:
                continue
            if value is NOT_SET:
                missed.append(Missing(path, full, name))
                if self.remove_notset:
                    text = text.replace(full, "")
            else:
                text = text.replace(full, str(value))
        return text


# --- variables and blocks, at plan time --------------------------------------------------------


class TemplateError(ValueError):
    """A template that cannot be resolved; `path` leads to it within the templated value."""

    def __init__(self, message: str, path: Path_):
        super().__init__(message)
        self.path = path


@dataclass
class ServerLookups:
    """What the server knows: a variable's value (NOT_SET when there is none) and a block
    document's data with the dotted paths of its secret fields (None when there is none)."""

    variable: Callable[[str], Any]
    block: Callable[[str, str], tuple[dict[str, Any], list[str]] | None]


def resolve_server_templates(value: Any, server: ServerLookups, path: Path_ = ()) -> tuple[Any, list[Path_]]:
    """`value` with its block placeholders, then its variable placeholders resolved (prefect's
    order); and the paths of the strings that took a value from a secret field of a block."""
    secret: list[Path_] = []

    def walk(node: Any, where: Path_) -> Any:
        if isinstance(node, dict):
            return {key: walk(item, (*where, key)) for key, item in node.items()}
        if isinstance(node, list):
            return [walk(item, (*where, index)) for index, item in enumerate(node)]
        if not isinstance(node, str) or "{{" not in node:
            return node
        node, from_secret = _blocks(node, server, where)
        if from_secret:
            secret.append(where)
        return _variables(node, server) if isinstance(node, str) else node

    return walk(value, path), secret


def _blocks(text: str, server: ServerLookups, where: Path_) -> tuple[Any, bool]:
    found = [(full, name) for full, name in placeholders(text) if kind_of(name) == "block"]
    from_secret = False
    if len(found) == 1 and found[0][0] == text:
        value, from_secret = _block_value(found[0][1], text, server, where)
        return value, from_secret
    for full, name in found:
        value, secret = _block_value(name, text, server, where)
        if isinstance(value, (dict, list)):
            raise TemplateError(
                f"{full} is a {type(value).__name__}, which cannot be put inside other text "
                "(refer to one of its fields, e.g. .value)", where)
        from_secret |= secret
        text = text.replace(full, str(value))
    return text, from_secret


def _block_value(name: str, text: str, server: ServerLookups, where: Path_) -> tuple[Any, bool]:
    parts = name[len(BLOCK_PREFIX):].split(".", 2)
    if len(parts) < 2:
        raise TemplateError(f"{{{{ {name} }}}}: expected prefect.blocks.BLOCK_TYPE.BLOCK_NAME", where)
    type_slug, block_name, *keypath = parts
    found = server.block(type_slug, block_name)
    if found is None:
        raise TemplateError(f"{{{{ {name} }}}}: there is no block {block_name!r} of type {type_slug!r} on the server", where)
    data, secret_fields = found
    value: Any = data
    if len(data) == 1 and "value" in data and not (
        keypath and (keypath[0] == "value" or keypath[0].startswith(("value.", "value[")))
    ):
        rest = keypath[0] if keypath else ""
        keypath = ["value" + ("" if not rest or rest.startswith("[") else ".") + rest]
    if keypath:
        value = get_path(data, keypath[0])
        if value is NOT_SET:
            raise TemplateError(f"{{{{ {name} }}}}: the block has no field {keypath[0]!r}", where)
    used = keypath[0].replace("[", ".").replace("]", "") if keypath else ""
    secret = any(_overlaps(used, field) for field in secret_fields)
    return value, secret


def _overlaps(used: str, secret_field: str) -> bool:
    """Whether the part of a block's data a template takes contains or lies inside a secret field."""
    if not used or secret_field == "*":
        return True
    a, b = used.split("."), [p for p in secret_field.split(".") if p != "*"]
    return a[: len(b)] == b or b[: len(a)] == a


def _variables(text: str, server: ServerLookups) -> Any:
    found = [(full, name) for full, name in placeholders(text) if kind_of(name) == "variable"]
    if len(found) == 1 and found[0][0] == text:
        value = server.variable(found[0][1][len(VARIABLE_PREFIX):])
        return "" if value is NOT_SET else value
    for full, name in found:
        value = server.variable(name[len(VARIABLE_PREFIX):])
        text = text.replace(full, "" if value is NOT_SET else str(value))
    return text


def has_server_templates(value: Any) -> bool:
    if isinstance(value, dict):
        return any(has_server_templates(v) for v in value.values())
    if isinstance(value, list):
        return any(has_server_templates(v) for v in value)
    return isinstance(value, str) and any(kind_of(n) in ("block", "variable") for _, n in placeholders(value))
