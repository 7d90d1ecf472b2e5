"""`${...}` expressions: `${env.NAME}`, `${var.NAME}`, `${jsondecode(env.NAME)}`, `${file("relative/path")}`
and `${data.KIND.NAME.ATTRIBUTE}`.

Prefect's own `{{ ... }}` templates are plain text here and pass through untouched.
`$${` writes a literal `${`.

`${file()}` reads only inside the directory of the file that calls it (the configuration
directory), symlinks resolved: a pull request must not be able to put `/etc/passwd` or a CI
credential file into a plan.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

EXPRESSION = re.compile(r"\$\$\{|\$\{\s*([^}]*?)\s*\}")
ENV_OR_VAR = re.compile(r"(env|var)\.([A-Za-z_][A-Za-z0-9_\-]*)")
JSONDECODE_CALL = re.compile(r"jsondecode\(\s*(.*?)\s*\)")
FILE_CALL = re.compile(r"""file\(\s*(?:"([^"]*)"|'([^']*)')\s*\)""")
DATA_REF = re.compile(r"data\.([a-z_]+)\.([^.\s]+)((?:\.[^.\s]+)*)")


class PendingData(str):
    """The text of a value that reads a data source not read yet (`validate`, and a plan's first
    reading of the files): the resource holding it is checked once the data sources are read."""


class ExpressionError(ValueError):
    pass


class Evaluator:
    def __init__(self, variables: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None,
                 data: Mapping[str, Mapping[str, Any]] | None = None):
        self.variables = dict(variables or {})
        self.environ = os.environ if environ is None else environ
        # What the data sources read: "KIND.NAME" -> attributes (with id and name); None: not read yet.
        self.data = data

    def evaluate(self, text: str, base_dir: Path) -> Any:
        """Evaluate every expression in `text`.

        A string that is exactly one expression takes the expression's value (which may be a
        mapping, e.g. a parsed JSON file); otherwise values are interpolated as text.
        """
        whole = EXPRESSION.fullmatch(text)
        if whole and whole.group(1) is not None:
            return self._value(whole.group(1), base_dir)

        pending = False

        def interpolate(match: re.Match[str]) -> str:
            nonlocal pending
            if match.group(1) is None:
                return "${"
            value = self._value(match.group(1), base_dir)
            pending = pending or isinstance(value, PendingData)
            return value if isinstance(value, str) else json.dumps(value)

        result = EXPRESSION.sub(interpolate, text)
        return PendingData(result) if pending else result

    def _value(self, expression: str, base_dir: Path) -> Any:
        if m := ENV_OR_VAR.fullmatch(expression):
            source, name = m.groups()
            if source == "env":
                if name not in self.environ:
                    raise ExpressionError(f"environment variable {name} is not set (in ${{{expression}}})")
                return self.environ[name]
            if name not in self.variables:
                raise ExpressionError(
                    f"variable {name!r} has no value: pass --var {name}=VALUE or --var-file FILE "
                    f"(in ${{{expression}}})"
                )
            return self.variables[name]
        if m := JSONDECODE_CALL.fullmatch(expression):
            return self._json_value(m.group(1), expression, base_dir)
        if m := FILE_CALL.fullmatch(expression):
            return read_file_value(confined(base_dir, m.group(1) if m.group(1) is not None else m.group(2)))
        if m := DATA_REF.fullmatch(expression):
            return self._data_value(*m.groups(), expression)
        raise ExpressionError(
            f"unknown expression ${{{expression}}}: expected ${{env.NAME}}, ${{var.NAME}}, "
            f"${{jsondecode(env.NAME)}}, ${{file(\"path\")}} or ${{data.KIND.NAME.ATTRIBUTE}}"
        )

    def _data_value(self, kind: str, name: str, path: str, expression: str) -> Any:
        """An attribute of a data source's object, e.g. data.blocks.s3-bucket/results.id."""
        if not path:
            raise ExpressionError(f"name an attribute of data.{kind}.{name}, e.g. ${{data.{kind}.{name}.id}} (in ${{{expression}}})")
        if self.data is None:
            return PendingData(f"${{{expression}}}")
        parts = path.lstrip(".").split(".")
        for taken in range(len(parts) - 1, 0, -1):  # a name with dots (an email): the longest declared one
            if f"{kind}.{'.'.join([name, *parts[:taken]])}" in self.data:
                name, path = ".".join([name, *parts[:taken]]), "." + ".".join(parts[taken:])
                break
        value = self.data.get(f"{kind}.{name}")
        if value is None:
            raise ExpressionError(f"data.{kind}.{name} is not declared: add `data: {{{kind}: {{{name}: {{}}}}}}` "
                                  f"(in ${{{expression}}})")
        for part in path.lstrip(".").split("."):
            if not isinstance(value, dict) or part not in value:
                known = f" (it has: {', '.join(sorted(value))})" if isinstance(value, dict) else ""
                raise ExpressionError(f"data.{kind}.{name} has no attribute {path.lstrip('.')}{known} (in ${{{expression}}})")
            value = value[part]
        return value

    def _json_value(self, argument: str, expression: str, base_dir: Path) -> Any:
        """A variable's text parsed as JSON: a mapping, list, number or boolean kept as such."""
        if not ENV_OR_VAR.fullmatch(argument):
            raise ExpressionError(f"jsondecode() takes env.NAME or var.NAME (in ${{{expression}}})")
        text = self._value(argument, base_dir)
        if not isinstance(text, str):
            raise ExpressionError(f"{argument} is not text, so it cannot be decoded as JSON (in ${{{expression}}})")
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            # The message and position only: the text may be a secret.
            raise ExpressionError(f"{argument} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno} (in ${{{expression}}})") from None


class Verbatim(Evaluator):
    """Leaves strings as written: files read by ${file()} hold no expressions of their own."""

    def evaluate(self, text: str, base_dir: Path) -> Any:
        return text


def confined(base_dir: Path, relative: str) -> Path:
    """`relative` inside `base_dir`, after resolving symlinks; an error if it points outside."""
    root = base_dir.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise ExpressionError(
            f"file({relative!r}) is outside the configuration directory {root}: "
            "${file()} reads only files inside it (symlinks resolved)"
        )
    return path


def read_file_value(path: Path) -> Any:
    """A JSON or YAML file parsed, any other file as text."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ExpressionError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ExpressionError(f"cannot read {path}: not UTF-8 text ({exc.reason})") from None
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            value = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            # Read as configuration files are, with the same bounds on nesting and aliases.
            from provider.errors import ConfigError
            from provider.yamlsource import load_yaml

            try:
                value, _ = load_yaml(path, Verbatim())
            except ConfigError as exc:
                raise ExpressionError(f"cannot parse {exc}") from None
        else:
            return text
    except ExpressionError:
        raise
    except RecursionError:
        raise ExpressionError(f"cannot parse {path}: nested too deep") from None
    except Exception as exc:  # any parse error of the referenced file
        raise ExpressionError(f"cannot parse {path}: {exc}") from None
    if _depth(value) > MAX_VALUE_DEPTH:
        raise ExpressionError(f"cannot parse {path}: nested more than {MAX_VALUE_DEPTH} levels deep")
    return value


MAX_VALUE_DEPTH = 100


def _depth(value: Any) -> int:
    """How deep lists and mappings nest in `value`, counted without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, depth)
            if depth <= MAX_VALUE_DEPTH:
                stack += [(child, depth + 1) for child in (node.values() if isinstance(node, dict) else node)]
    return deepest
