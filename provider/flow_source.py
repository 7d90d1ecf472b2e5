"""A flow's name, version, description and parameter schema, read from its source without running it.

`prefect deploy` (Prefect 3.8.8, prefect/cli/deploy/_core.py) imports the entrypoint's module and asks the
loaded flow: `flow.name` (the decorator's `name=`, else the function name with `_` turned into `-`),
`flow.version` (`version=`, else the MD5 of the file's bytes), `flow.description` (`description=`, else the
cleaned docstring) and `parameter_schema(flow)` (prefect/utilities/callables: one pydantic field per
parameter, docstring descriptions parsed by griffe). This module gets the same answers from the file's
syntax tree, evaluating only annotations, defaults and decorator arguments built from literals, the
standard library's typing/datetime/pathlib/uuid/decimal/... and pydantic: user code is never run and
prefect is never imported.

What cannot be known that way (a model imported from the user's package, a default computed by user code,
a flow name built at import time) is either handed to `flow_python`, an interpreter that has Prefect and the
user's dependencies, which runs Prefect's own derivation in a subprocess (cached by the file's content), or,
without one, given the schema Prefect itself gives when it cannot resolve an annotation (any value) and a
default of None, each with a note.
"""

from __future__ import annotations

import ast
import builtins
import copy
import enum
import hashlib
import importlib
import inspect
import json
import logging
import operator
import os
import shutil
import subprocess
import sys
import tempfile
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pydantic
from pydantic import PydanticUndefinedAnnotation, TypeAdapter
from pydantic.errors import PydanticInvalidForJsonSchema, PydanticUserError
from pydantic.fields import FieldInfo
from pydantic.json_schema import GenerateJsonSchema

from provider.errors import ConfigError, Location

CACHE_DIR = Path(".prefect-provider") / "cache"
INTERPRETER_TIMEOUT_SECONDS = 300

# Modules whose objects may appear in annotations, defaults and decorator arguments. Importing them runs no
# user code, and their callables build values without side effects (see `_callable`).
SAFE_MODULES = (
    "typing", "typing_extensions", "collections", "collections.abc", "datetime", "pathlib", "uuid",
    "decimal", "enum", "ipaddress", "re", "zoneinfo", "annotated_types", "dataclasses", "pydantic",
    "pydantic.types", "pydantic.networks", "pydantic.fields", "pydantic.functional_validators",
)
SAFE_BUILTINS = {
    name: getattr(builtins, name)
    for name in ("int", "float", "complex", "str", "bool", "bytes", "bytearray", "list", "dict", "tuple",
                 "set", "frozenset", "type", "object")
}
# Prefect refuses these parameter names (prefect.flows.Flow.__init__).
RESERVED_PARAMETERS = ("return_state", "wait_for")
# Prefect refuses flow names containing these (prefect.types.names.BANNED_CHARACTERS).
BANNED_NAME_CHARACTERS = ("/", "%", "&", ">", "<")

_BINARY = {
    ast.BitOr: operator.or_, ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_, ast.Invert: operator.invert}


@dataclass(frozen=True)
class FlowInfo:
    """What `prefect deploy` takes from a flow: its name, version, description and parameter schema.

    `parameter_schema` is the `parameter_openapi_schema` prefect deploy sends. `notes` say where the
    result may differ from prefect deploy's (something the source alone could not tell).
    """

    name: str
    version: str | None
    description: str | None
    parameter_schema: dict[str, Any]
    notes: list[str] = field(default_factory=list)


class FlowSourceError(ConfigError):
    """The entrypoint's file or flow is missing, unparsable, or not a flow: names the file, line and field."""

    def __init__(self, message: str, file: str | Path, line: int | None = None, field: str | None = None):
        super().__init__(message, Location(str(file), line), field)


class _Unresolved(Exception):
    """An expression whose value only running the user's code could tell; the message says why."""


class _Unbound(_Unresolved):
    """A name that is certainly unbound when the module runs (never assigned, or only under TYPE_CHECKING)."""


class _NeedsInterpreter(Exception):
    """Something static reading cannot give at all (e.g. a computed flow name)."""

    def __init__(self, message: str, line: int | None):
        super().__init__(message)
        self.line = line


class _PrefectMarker:
    """Stands for `prefect` / `prefect.flow` in the file's namespace: recognised, never imported."""

    def __init__(self, name: str):
        self.name = name


PREFECT = _PrefectMarker("prefect")
FLOW = _PrefectMarker("prefect.flow")
PREFECT_FLOW_MODULES = ("prefect", "prefect.flows")


def read_flow(
    entrypoint: str, base_dir: Path, *, flow_python: str | None = None, cache_dir: Path | None = None
) -> FlowInfo:
    """The flow at `entrypoint` (`path/to/file.py:function` or `package.module.function`, relative to
    `base_dir`, like prefect deploy run from there) as prefect deploy sees it.

    With `flow_python`, whatever the source alone cannot tell is asked of Prefect in that interpreter
    (the result is cached under `cache_dir`, default `base_dir/.prefect-provider/cache`).
    Raises FlowSourceError for a missing or unparsable file or function, or a function that is not a flow.
    """
    path, parts = _locate(entrypoint, base_dir)
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise FlowSourceError(f"cannot read the flow file: {exc.strerror or exc}", path) from None
    try:
        info = _read_statically(content, path, tuple(parts))
    except _NeedsInterpreter as exc:
        if flow_python:
            return _read_with_interpreter(entrypoint, base_dir, path, content, flow_python, cache_dir)
        raise FlowSourceError(
            f"{exc}; pass --flow-python PATH (an interpreter with prefect and the flow's dependencies) "
            "to let Prefect read it",
            path, exc.line, "entrypoint",
        ) from None
    if info.notes and flow_python:
        return _read_with_interpreter(entrypoint, base_dir, path, content, flow_python, cache_dir)
    return info


_STATIC_READS: dict[tuple[bytes, Path, tuple[str, ...]], FlowInfo | Exception] = {}


def _read_statically(content: bytes, path: Path, parts: tuple[str, ...]) -> FlowInfo:
    """Memoised per process: a plan reads the same flow for every deployment of it."""
    key = (hashlib.sha256(content).digest(), path, parts)
    if key not in _STATIC_READS:
        try:
            _STATIC_READS[key] = _Module(content, path).flow(list(parts))
        except (FlowSourceError, _NeedsInterpreter) as exc:
            _STATIC_READS[key] = exc
        except (RecursionError, MemoryError) as exc:  # an expression too deep or too large to evaluate here
            _STATIC_READS[key] = _NeedsInterpreter(f"reading it exceeds this tool's limits ({type(exc).__name__})",
                                                   None)
    result = _STATIC_READS[key]
    if isinstance(result, Exception):
        raise result
    return copy.deepcopy(result)  # callers may adjust the schema they get


def _locate(entrypoint: str, base_dir: Path) -> tuple[Path, list[str]]:
    """The file and the dotted name inside it, resolved the way prefect.flows.load_flow_from_entrypoint does."""
    if ":" in entrypoint:
        file, _, name = entrypoint.rpartition(":")
        path = Path(file) if Path(file).is_absolute() else base_dir / file
    else:
        module, _, name = entrypoint.rpartition(".")
        if not module:
            raise FlowSourceError(
                f"entrypoint {entrypoint!r} must be path/to/file.py:function or package.module.function",
                base_dir, None, "entrypoint",
            )
        stem = base_dir.joinpath(*module.split("."))
        path = stem.with_suffix(".py")
        if not path.is_file() and (stem / "__init__.py").is_file():
            path = stem / "__init__.py"
    if not name:
        raise FlowSourceError(f"entrypoint {entrypoint!r} names no function", path, None, "entrypoint")
    if not path.is_file():
        raise FlowSourceError(f"flow file not found (entrypoint {entrypoint!r})", path, None, "entrypoint")
    return path, name.split(".")


class _Module:
    """One flow file: its syntax tree and what its top-level names are bound to, up to a given statement."""

    def __init__(self, content: bytes, path: Path):
        self.content = content
        self.path = path
        try:
            self.tree = ast.parse(content, filename=str(path))
        except SyntaxError as exc:
            raise FlowSourceError(f"the flow file does not parse: {exc.msg}", path, exc.lineno) from None
        except ValueError as exc:  # null bytes
            raise FlowSourceError(f"the flow file does not parse: {exc}", path) from None
        self.future_annotations = any(
            isinstance(node, ast.ImportFrom) and node.module == "__future__"
            and any(alias.name == "annotations" for alias in node.names)
            for node in self.tree.body
        )
        self.bindings: dict[str, Any] = {}
        self.star_sources: list[str] = []
        self._resolving: set[str] = set()
        self._values: dict[str, Any] = {}
        self.local_classes: set[type] = set()  # enums and models of the file, rebuilt
        self.constructible: set[type] = set()  # those a default may instantiate

    # --- the flow --------------------------------------------------------------------------------------------

    def flow(self, parts: list[str], before: int | None = None) -> FlowInfo:
        """The flow named by `parts` as importing the module (up to statement `before`) leaves it."""
        if len(parts) > 1:
            raise _NeedsInterpreter(f"{'.'.join(parts)} is a method: its flow is only known by importing", None)
        index, node = self._definition(parts[0], len(self.tree.body) if before is None else before)
        self._bind(self.tree.body[:index])
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            notes: list[str] = []
            decorator = self._flow_decorator(node, notes)
            return self._describe(index, node, self._decorator_keywords(decorator), decorator.lineno, notes)
        return self._assigned_flow(index, node)

    def _assigned_flow(self, index: int, node: ast.stmt) -> FlowInfo:
        """`name = flow(fn, ...)`, `Flow(fn, ...)`, `flow(...)(fn)` or `other_flow.with_options(...)`."""
        call = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "with_options" \
                and isinstance(call.func.value, ast.Name) and not call.args:
            # Flow.with_options: each of name, version, description given replaces the original's
            original = _Module(self.content, self.path).flow([call.func.value.id], before=index)
            overrides = self._decorator_keywords(call)
            return FlowInfo(overrides.get("name") or original.name, overrides.get("version") or original.version,
                            overrides.get("description") or original.description, original.parameter_schema,
                            original.notes)
        unknown = _NeedsInterpreter(f"the flow is bound by {ast.unparse(node).splitlines()[0]!r}, which only "
                                    "importing tells", node.lineno)
        if not isinstance(call, ast.Call):
            raise unknown
        factory_form = isinstance(call.func, ast.Call)
        # flow(...)(fn): the inner call has the keywords; flow(fn, ...) and Flow(fn, ...) have them beside fn
        factory = call.func if factory_form else ast.Call(call.func, [], call.keywords)
        if not (isinstance(factory, ast.Call) and self._is_flow(factory.func, or_class=not factory_form)
                and len(call.args) == 1 and isinstance(call.args[0], ast.Name)):
            raise unknown
        function_args = call.args
        keywords = self._decorator_keywords(factory)
        function_index, function = self._definition(function_args[0].id, index)
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)) or function.decorator_list:
            raise _NeedsInterpreter(f"{function_args[0].id} is not a plain function", node.lineno)
        module = _Module(self.content, self.path)  # names as they are when the def runs
        module._bind(self.tree.body[:function_index])
        return module._describe(function_index, function, keywords, node.lineno)

    def _is_flow(self, node: ast.expr, or_class: bool) -> bool:
        """prefect.flow, or (`or_class`) the Flow class: `Flow(fn, name=...)` takes flow's keywords."""
        try:
            value = self.evaluate(node)
        except _Unresolved:
            return False
        classes = ("prefect.Flow", "prefect.flows.Flow") if or_class else ()
        return value is FLOW or isinstance(value, _PrefectMarker) and value.name in classes

    def _describe(self, index: int, node: ast.FunctionDef | ast.AsyncFunctionDef, keywords: dict[str, Any],
                  line: int, notes: list[str] | None = None) -> FlowInfo:
        """The flow prefect.flows.Flow makes of this function with these keyword arguments (`line`: theirs)."""
        for reserved in sorted(set(RESERVED_PARAMETERS) & {arg.arg for arg in _all_args(node.args)}):
            raise FlowSourceError(
                f"{reserved!r} is a reserved argument name and cannot be used (Prefect refuses it)",
                self.path, node.lineno, node.name,
            )
        flow_name = keywords.get("name") or node.name.replace("_", "-")
        if any(character in flow_name for character in BANNED_NAME_CHARACTERS):
            raise FlowSourceError(
                f"flow name {flow_name!r} contains an invalid character; must not contain any of: "
                f"{', '.join(BANNED_NAME_CHARACTERS)}",
                self.path, line, "name",
            )
        docstring = ast.get_docstring(node, clean=True)
        version = keywords.get("version") or hashlib.md5(self.content, usedforsecurity=False).hexdigest()
        description = keywords.get("description") or docstring
        notes = list(notes or [])
        signature = self._signature(node, self.tree.body[index + 1:], notes)
        if keywords.get("validate_parameters", True):
            _check_validation_model(node.name, signature, self.path, node.lineno)
        try:
            schema = generate_parameter_schema(signature, parameter_docstrings(docstring))
        except Exception as exc:  # what pydantic refuses outright fails prefect's import of the flow too
            raise FlowSourceError(f"Prefect cannot build the parameter schema: {str(exc).splitlines()[0]}",
                                  self.path, node.lineno, node.name) from None
        return FlowInfo(flow_name, version, description, schema, notes)

    def _definition(self, name: str, before: int) -> tuple[int, ast.stmt]:
        """The last top-level statement before index `before` that binds `name`."""
        found: tuple[int, ast.stmt] | None = None
        for index, statement in enumerate(self.tree.body[:before]):
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if statement.name == name:
                    found = (index, statement)
            elif name in _bound_names(statement):
                found = (index, statement)
        if found is None:
            raise FlowSourceError(f"no function {name!r} at the top level of the flow file", self.path, None,
                                  "entrypoint")
        return found

    def _flow_decorator(self, node: ast.FunctionDef | ast.AsyncFunctionDef, notes: list[str]) -> ast.expr:
        """The @flow decorator. One of someone else's above it may replace the flow (only importing tells);
        one below it may change the signature Prefect sees (noted)."""
        unknown: list[ast.expr] = []
        for position, decorator in enumerate(node.decorator_list):
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            try:
                value = self.evaluate(target)
            except _Unresolved:
                value = None
            if value is FLOW and not unknown:
                for inner in node.decorator_list[position + 1:]:
                    notes.append(
                        f"{self.path}:{inner.lineno}: {node.name}: the parameters are read from the def; if "
                        f"@{ast.unparse(inner)} changes the function's signature, pass --flow-python to get the "
                        "schema Prefect sees"
                    )
                return decorator
            if not isinstance(value, _PrefectMarker):  # prefect's other decorators (task, ...) make no flow
                unknown.append(decorator)
        if unknown:
            raise _NeedsInterpreter(
                f"{node.name} is decorated with {ast.unparse(unknown[0])}, which may or may not make a flow",
                unknown[0].lineno,
            )
        raise FlowSourceError(
            f"function {node.name!r} is not a flow: decorate it with @flow", self.path, node.lineno, "entrypoint"
        )

    def _decorator_keywords(self, decorator: ast.expr) -> dict[str, Any]:
        if not isinstance(decorator, ast.Call):
            return {}
        if decorator.args:
            raise FlowSourceError("@flow(...) takes keyword arguments only", self.path, decorator.lineno, "entrypoint")
        values: dict[str, Any] = {}
        for keyword in decorator.keywords:
            if keyword.arg is None:
                raise _NeedsInterpreter("@flow(**...) is only known by importing", decorator.lineno)
            if keyword.arg not in ("name", "version", "description", "validate_parameters"):
                continue
            try:
                values[keyword.arg] = self.evaluate(keyword.value)
            except _Unresolved as exc:
                raise _NeedsInterpreter(f"@flow({keyword.arg}=...) is computed: {exc}", keyword.value.lineno)
            if keyword.arg != "validate_parameters" and not isinstance(values[keyword.arg], (str, type(None))):
                raise FlowSourceError(
                    f"@flow({keyword.arg}=...) must be a string, not {type(values[keyword.arg]).__name__}",
                    self.path, keyword.value.lineno, keyword.arg,
                )
        return values

    # --- parameters --------------------------------------------------------------------------------------------

    def _signature(self, node: ast.FunctionDef | ast.AsyncFunctionDef, rest: list[ast.stmt],
                   notes: list[str]) -> inspect.Signature:
        """Defaults are evaluated when `def` runs; string annotations (`from __future__ import annotations`)
        later, by inspect.signature(eval_str=True), against the whole module (`rest` is what follows the def)."""
        args = node.args
        defaults: dict[str, ast.expr] = {}
        positional = args.posonlyargs + args.args
        for arg, default in zip(positional[len(positional) - len(args.defaults):], args.defaults):
            defaults[arg.arg] = default
        for arg, default in zip(args.kwonlyargs, args.kw_defaults):
            if default is not None:
                defaults[arg.arg] = default
        kinds = [(arg, inspect.Parameter.POSITIONAL_ONLY) for arg in args.posonlyargs]
        kinds += [(arg, inspect.Parameter.POSITIONAL_OR_KEYWORD) for arg in args.args]
        if args.vararg:
            kinds.append((args.vararg, inspect.Parameter.VAR_POSITIONAL))
        kinds += [(arg, inspect.Parameter.KEYWORD_ONLY) for arg in args.kwonlyargs]
        if args.kwarg:
            kinds.append((args.kwarg, inspect.Parameter.VAR_KEYWORD))
        values: dict[str, Any] = {}
        for arg, _ in kinds:
            if arg.arg in defaults:
                try:
                    values[arg.arg] = self.value(defaults[arg.arg])
                except _Unresolved as exc:
                    notes.append(
                        f"{self.path}:{arg.lineno}: parameter {arg.arg!r}: default "
                        f"{ast.unparse(defaults[arg.arg])} is not known without running the flow's code ({exc}); "
                        "the schema says null, as Prefect does when it cannot import the flow; "
                        "pass --flow-python to get the real default"
                    )
                    values[arg.arg] = None
        if self.future_annotations:
            self._bind(rest)
        annotations = self._annotations([arg for arg, _ in kinds], notes)
        return inspect.Signature([
            inspect.Parameter(arg.arg, kind, default=values.get(arg.arg, inspect.Parameter.empty),
                              annotation=annotations[arg.arg])
            for arg, kind in kinds
        ])

    def _annotations(self, args: list[ast.arg], notes: list[str]) -> dict[str, Any]:
        resolved: dict[str, Any] = {}
        failed: list[tuple[ast.arg, _Unresolved]] = []
        for arg in args:
            if arg.annotation is None:
                resolved[arg.arg] = inspect.Parameter.empty
                continue
            try:
                resolved[arg.arg] = self.evaluate_annotation(arg.annotation)
            except _Unresolved as exc:
                resolved[arg.arg] = inspect.Parameter.empty
                failed.append((arg, exc))
        strings = [arg for arg in args if arg.annotation is not None and (
            self.future_annotations or isinstance(arg.annotation, ast.Constant))]
        if any(isinstance(exc, _Unbound) and arg in strings for arg, exc in failed):
            # Exactly what Prefect does: inspect.signature(eval_str=True) fails as a whole, so every annotation
            # written as a string stays one, which pydantic resolves in prefect's own module (builtins and
            # `typing` only).
            resolved.update({arg.arg: _prefect_module_annotation(arg.annotation, self.path) for arg in strings})
            failed = [(arg, exc) for arg, exc in failed if arg not in strings]
        for arg, reason in failed:
            notes.append(
                f"{self.path}:{arg.lineno}: parameter {arg.arg!r}: annotation {ast.unparse(arg.annotation)} is not "
                f"known without running the flow's code ({reason}); the schema accepts any value, as Prefect's "
                "does when it cannot resolve an annotation; pass --flow-python to get its real schema"
            )
        return resolved

    def evaluate_annotation(self, node: ast.expr) -> Any:
        value = self.value(node)
        if isinstance(value, str):  # a forward reference: inspect.signature(eval_str=True) evaluates it
            try:
                return self.value(ast.parse(value, mode="eval").body)
            except SyntaxError:
                raise _Unresolved(f"{value!r} is not an expression") from None
        return value

    # --- names -------------------------------------------------------------------------------------------------

    def _bind(self, statements: list[ast.stmt]) -> None:
        for statement in statements:
            self._bind_statement(statement)

    def _bind_statement(self, statement: ast.stmt) -> None:
        for name in _bound_names(statement):
            self._values.pop(name, None)
        if isinstance(statement, ast.Import):
            for alias in statement.names:
                if alias.asname:
                    self.bindings[alias.asname] = ("module", alias.name)
                else:
                    top = alias.name.split(".")[0]
                    self.bindings[top] = ("module", top)
        elif isinstance(statement, ast.ImportFrom):
            module = "." * statement.level + (statement.module or "")
            for alias in statement.names:
                if alias.name == "*":
                    self.star_sources.append(module)
                    if _is_safe_module(module):
                        for public in getattr(importlib.import_module(module), "__all__", ()):
                            self.bindings[public] = ("from", module, public)
                else:
                    self.bindings[alias.asname or alias.name] = ("from", module, alias.name)
        elif isinstance(statement, (ast.Assign, ast.AnnAssign)):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            if statement.value is None:
                return
            for target in targets:
                if isinstance(target, ast.Name):
                    self.bindings[target.id] = ("expr", statement.value)
                else:
                    for name in _target_names(target):
                        self.bindings[name] = ("unresolved", "assigned by unpacking")
        elif isinstance(statement, ast.ClassDef):
            self.bindings[statement.name] = ("class", statement)
        elif isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self.bindings[statement.name] = ("unresolved", f"{statement.name} is a function")
        elif isinstance(statement, ast.Try):
            self._bind(statement.body)  # the path taken when the flow's dependencies are installed
            self._bind(statement.orelse)
            self._bind(statement.finalbody)
        elif isinstance(statement, ast.If) and _is_main_guard(statement.test):
            return  # prefect imports the module under another name: this block never runs
        else:
            if isinstance(statement, ast.If) and _is_type_checking(statement.test):
                binding = ("unbound", "imported only when type checking")
            else:
                binding = ("unresolved", f"bound by a top-level {type(statement).__name__.lower()} statement")
            for name in _bound_names(statement):
                if not (binding[0] == "unbound" and name in self.bindings):  # an earlier runtime binding stays
                    self.bindings[name] = binding

    def lookup(self, name: str) -> Any:
        if name in self._values:
            return self._values[name]
        binding = self.bindings.get(name)
        if binding is None:
            if name in SAFE_BUILTINS:
                return SAFE_BUILTINS[name]
            unsafe = [source for source in self.star_sources if not _is_safe_module(source)]
            if unsafe:
                raise _Unresolved(f"{name} may come from `from {unsafe[0]} import *`")
            raise _Unbound(f"{name} is not defined at module level")
        if name in self._resolving:
            raise _Unresolved(f"{name} refers to itself")
        self._resolving.add(name)
        try:
            value = self._resolve(binding)
        finally:
            self._resolving.discard(name)
        self._values[name] = value
        return value

    def _resolve(self, binding: tuple[Any, ...]) -> Any:
        kind = binding[0]
        if kind == "module":
            module = binding[1]
            if module == "prefect" or module.startswith("prefect."):
                return PREFECT if module == "prefect" else _PrefectMarker(module)
            if not _is_safe_module(module):
                raise _Unresolved(f"module {module} is not read")
            return importlib.import_module(module)
        if kind == "from":
            module, attribute = binding[1], binding[2]
            if module in PREFECT_FLOW_MODULES and attribute == "flow":
                return FLOW
            if module == "prefect" or module.startswith("prefect."):
                return _PrefectMarker(f"{module}.{attribute}")
            if not _is_safe_module(module):
                raise _Unresolved(f"{attribute} is imported from {module}")
            imported = importlib.import_module(module)
            if hasattr(imported, attribute):
                return getattr(imported, attribute)
            if _is_safe_module(f"{module}.{attribute}"):
                return importlib.import_module(f"{module}.{attribute}")
            raise _Unresolved(f"{module} has no {attribute}")
        if kind == "expr":
            return self.evaluate(binding[1])
        if kind == "class":
            return self._class(binding[1])
        if kind == "value":
            return binding[1]
        if kind == "unbound":
            raise _Unbound(binding[1])
        raise _Unresolved(binding[1])

    # --- enums and pydantic models defined in the file ------------------------------------------------------

    def _class(self, node: ast.ClassDef) -> type:
        """An enum or pydantic model defined in the flow file, rebuilt from its evaluated members alone.

        Only the parts that make its JSON schema are kept: the docstring, enum members, model fields and
        model_config. Methods do not change a validation-mode schema, except the ones refused here.
        """
        if node.keywords or len(node.decorator_list) > 1:
            raise _Unresolved(f"class {node.name} has class keywords or several decorators")
        try:
            bases = [self.value(base) for base in node.bases]
            decorators = [self.value(decorator) for decorator in node.decorator_list]
        except _Unresolved as exc:
            raise _Unresolved(f"class {node.name}: {exc}") from None
        is_enum = any(isinstance(base, type) and issubclass(base, enum.Enum) for base in bases)
        is_model = len(bases) == 1 and isinstance(bases[0], type) and issubclass(bases[0], pydantic.BaseModel) and (
            bases[0] is pydantic.BaseModel or bases[0] in self.local_classes)
        is_named_tuple = bases == [typing.NamedTuple]
        # @dataclass, @dataclass(...) (a function it returns), pydantic's likewise
        is_dataclass = len(decorators) == 1 and getattr(decorators[0], "__module__", None) in (
            "dataclasses", "pydantic.dataclasses") and all(base in self.local_classes for base in bases)
        known = all(isinstance(base, type) and (base in self.local_classes or _is_safe_object(base)) for base in bases)
        if decorators and not is_dataclass or not (is_enum or is_model or is_named_tuple or is_dataclass) \
                or not (known or is_named_tuple):
            raise _Unresolved(f"class {node.name} is defined in the flow file and is not a plain enum, model, "
                              "dataclass or named tuple")
        has_fields = is_model or is_named_tuple or is_dataclass
        body: list[ast.stmt] = []
        namespace: dict[str, Any] = {"__name__": self.path.stem,
                                     "__builtins__": {"__build_class__": builtins.__build_class__}}
        has_methods = False

        def bind(value: Any) -> ast.Name:
            name = f"_flow_source_value{len(namespace)}"  # not __x: the class body would mangle it
            namespace[name] = value
            return ast.Name(name, ast.Load())

        for index, statement in enumerate(node.body):
            if index == 0 and isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant) \
                    and isinstance(statement.value.value, str):
                body.append(ast.Expr(ast.Constant(statement.value.value)))
            elif isinstance(statement, ast.Pass) or (isinstance(statement, ast.Expr)
                                                     and isinstance(statement.value, ast.Constant)):
                continue
            elif isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self._check_method(node.name, statement)
                has_methods = True
            elif isinstance(statement, ast.Assign) and len(statement.targets) == 1 \
                    and isinstance(statement.targets[0], ast.Name) and (is_enum or statement.targets[0].id ==
                                                                        "model_config"):
                value = self._class_member(node.name, statement.value)
                if isinstance(value, dict) and value.get("use_attribute_docstrings"):
                    raise _Unresolved(f"class {node.name} takes field descriptions from its source")
                body.append(ast.Assign([ast.Name(statement.targets[0].id, ast.Store())], bind(value)))
            elif isinstance(statement, ast.AnnAssign) and has_fields and isinstance(statement.target, ast.Name):
                annotation = self._class_member(node.name, statement.annotation, annotation=True)
                value = None if statement.value is None else bind(self._class_member(node.name, statement.value))
                body.append(ast.AnnAssign(ast.Name(statement.target.id, ast.Store()), bind(annotation), value, 1))
            else:
                raise _Unresolved(f"class {node.name} has a {ast.unparse(statement).splitlines()[0]!r} statement")
        bases_names = [bind(base) for base in bases]
        definition = ast.ClassDef(node.name, bases_names, [], body or [ast.Pass()],
                                  [bind(decorator) for decorator in decorators])
        if sys.version_info >= (3, 12):
            definition.type_params = []
        # dont_inherit: this module's `from __future__ import annotations` would make the annotations strings
        code = compile(ast.fix_missing_locations(ast.Module([definition], [])), str(self.path), "exec",
                       dont_inherit=True)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exec(code, namespace)  # the statement holds names bound to evaluated values only: no user code
        except Exception as exc:
            raise _Unresolved(f"class {node.name} cannot be rebuilt: {exc}") from None
        rebuilt = namespace[node.name]
        self.local_classes.add(rebuilt)
        if not has_methods:
            self.constructible.add(rebuilt)  # validators could change what a default instance holds
        return rebuilt

    def _class_member(self, class_name: str, node: ast.expr, annotation: bool = False) -> Any:
        try:
            return self.evaluate_annotation(node) if annotation else self.value(node)
        except _Unresolved as exc:
            raise _Unresolved(f"class {class_name}: {ast.unparse(node)}: {exc}") from None

    def _check_method(self, class_name: str, method: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        """Methods, properties, validators that run before, after or around pydantic's own leave the schema
        as it is; a plain validator or a schema hook replaces it."""
        if method.name.startswith("__get_pydantic") or method.name in ("__new__", "__init__", "model_json_schema"):
            raise _Unresolved(f"class {class_name} defines {method.name}")
        for decorator in method.decorator_list:
            for keyword in decorator.keywords if isinstance(decorator, ast.Call) else []:
                if keyword.arg == "mode" and not (isinstance(keyword.value, ast.Constant)
                                                  and keyword.value.value in ("before", "after", "wrap")):
                    raise _Unresolved(f"class {class_name}: {method.name} is a {ast.unparse(keyword.value)} validator")

    # --- expressions -----------------------------------------------------------------------------------------

    def value(self, node: ast.expr) -> Any:
        """An annotation's or default's value: something from prefect itself (a block class, ...) is unknown."""
        value = self.evaluate(node)
        if isinstance(value, _PrefectMarker):
            raise _Unresolved(f"{value.name} comes from prefect, which is not imported")
        return value

    def evaluate(self, node: ast.expr) -> Any:
        """The value of an expression built from literals and safe objects; _Unresolved for anything else."""
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return self.lookup(node.id)
        if isinstance(node, ast.Attribute):
            return self._attribute(self.evaluate(node.value), node.attr)
        if isinstance(node, ast.Subscript):
            return self._apply(operator.getitem, self._safe(self.evaluate(node.value)), self.evaluate(node.slice))
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            if any(isinstance(element, ast.Starred) for element in node.elts):
                raise _Unresolved("unpacking is not evaluated")
            items = [self.evaluate(element) for element in node.elts]
            return tuple(items) if isinstance(node, ast.Tuple) else list(items) if isinstance(node, ast.List) \
                else set(items)
        if isinstance(node, ast.Dict):
            if any(key is None for key in node.keys):
                raise _Unresolved("unpacking is not evaluated")
            return {self.evaluate(key): self.evaluate(value) for key, value in zip(node.keys, node.values)}
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return self._apply(_BINARY[type(node.op)], self.evaluate(node.left), self.evaluate(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return self._apply(_UNARY[type(node.op)], self.evaluate(node.operand))
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.JoinedStr):
            return "".join(self._formatted(value) for value in node.values)
        raise _Unresolved(f"{type(node).__name__} expressions are not evaluated")

    def _formatted(self, node: ast.expr) -> str:
        if isinstance(node, ast.Constant):
            return str(node.value)
        assert isinstance(node, ast.FormattedValue)
        value = self.evaluate(node.value)
        if not isinstance(value, (str, int, float, bool, type(None))):
            raise _Unresolved("only plain values are formatted")
        value = {115: str, 114: repr, 97: ascii}.get(node.conversion, lambda v: v)(value)
        spec = "".join(self._formatted(part) for part in node.format_spec.values) if node.format_spec else ""
        return self._apply(format, value, spec)

    def _attribute(self, base: Any, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise _Unresolved(f"attribute {attribute} is not read")
        if isinstance(base, _PrefectMarker):
            if base.name in PREFECT_FLOW_MODULES and attribute == "flow":
                return FLOW
            return _PrefectMarker(f"{base.name}.{attribute}")
        if isinstance(base, ModuleType):
            if not _is_safe_module(base.__name__):
                raise _Unresolved(f"module {base.__name__} is not read")
            if hasattr(base, attribute):
                return getattr(base, attribute)
            submodule = f"{base.__name__}.{attribute}"
            if _is_safe_module(submodule):
                return importlib.import_module(submodule)
            raise _Unresolved(f"{base.__name__} has no {attribute}")
        if isinstance(base, type) and (_is_safe_object(base) or base in self.local_classes):
            try:
                return getattr(base, attribute)
            except AttributeError:
                raise _Unresolved(f"{base.__name__} has no {attribute}") from None
        raise _Unresolved(f"attribute {attribute} of a {type(base).__name__} is not read")

    def _call(self, node: ast.Call) -> Any:
        function = self.evaluate(node.func)
        if not any(function is local for local in self.constructible) and not _callable(function):
            raise _Unresolved(f"calling {ast.unparse(node.func)} is not evaluated")
        if any(isinstance(arg, ast.Starred) for arg in node.args) or any(k.arg is None for k in node.keywords):
            raise _Unresolved("unpacking is not evaluated")
        args = [self.evaluate(arg) for arg in node.args]
        kwargs = {keyword.arg: self.evaluate(keyword.value) for keyword in node.keywords}
        return self._apply(function, *args, **kwargs)

    def _safe(self, value: Any) -> Any:
        if not (_is_safe_object(value) or any(value is local for local in self.local_classes)):
            raise _Unresolved(f"{value!r} is not read")
        return value

    @staticmethod
    def _apply(function: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except Exception as exc:  # the user's expression fails: importing the module would fail too
            raise _Unresolved(f"evaluating it fails: {exc}") from None


def _is_safe_module(name: str) -> bool:
    return name in SAFE_MODULES or name.startswith("pydantic.") and not name.startswith("pydantic.v1")


def _is_safe_object(value: Any) -> bool:
    """A type, typing construct or value from the safe modules or the safe builtins."""
    if value is None or isinstance(value, (str, bytes, int, float, complex, bool, tuple, list, dict, set)):
        return True
    if any(value is builtin for builtin in SAFE_BUILTINS.values()):
        return True
    module = getattr(value, "__module__", None) or ""
    if module == "builtins":
        return isinstance(value, type) and value in SAFE_BUILTINS.values()
    return _is_safe_module(module) or _is_safe_module(module.rsplit(".", 1)[0]) or module.startswith("pydantic")


def _callable(function: Any) -> bool:
    """Constructors and functions of the safe modules, and classmethods such as datetime.now or Path.cwd; never
    a plain method taken from a class (Path.unlink(...) would act on the machine)."""
    if isinstance(function, _PrefectMarker) or not callable(function):
        return False
    if isinstance(function, type):
        return _is_safe_object(function)
    if inspect.ismethod(function):
        return isinstance(function.__self__, type) and _is_safe_object(function.__self__)
    if inspect.isbuiltin(function) and isinstance(getattr(function, "__self__", None), type):
        return _is_safe_object(function.__self__)  # a classmethod implemented in C: datetime.now
    if inspect.isfunction(function) or inspect.isbuiltin(function):
        module = getattr(function, "__module__", "") or ""
        return _is_safe_module(module) and "." not in function.__qualname__
    return _is_safe_object(function) and not inspect.ismethoddescriptor(function)


def _prefect_module_annotation(node: ast.expr, path: Path) -> Any:
    """What pydantic makes of an annotation left as a string: it evaluates it among the globals of the module
    that creates Prefect's schema model (prefect._internal.pydantic.v2_schema)."""
    source = node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else ast.unparse(node)
    module = _Module(b"", path)
    module.bindings.update({name: ("value", value) for name, value in {
        "typing": typing, "t": typing, "pydantic": pydantic, "V2BaseModel": pydantic.BaseModel,
        "ConfigDict": pydantic.ConfigDict, "FieldInfo": FieldInfo, "TypeAdapter": TypeAdapter,
        "PydanticUndefinedAnnotation": PydanticUndefinedAnnotation, "PydanticUserError": PydanticUserError,
        "create_model": pydantic.create_model, "GenerateEmptySchemaForUserClasses": GenerateEmptySchemaForUserClasses,
    }.items()})
    try:
        return module.value(ast.parse(source, mode="eval").body)
    except (_Unresolved, SyntaxError):
        return inspect.Parameter.empty


def _all_args(args: ast.arguments) -> list[ast.arg]:
    return [*args.posonlyargs, *args.args, *([args.vararg] if args.vararg else []), *args.kwonlyargs,
            *([args.kwarg] if args.kwarg else [])]


def _target_names(target: ast.expr) -> list[str]:
    return [node.id for node in ast.walk(target) if isinstance(node, ast.Name)]


def _bound_names(statement: ast.stmt) -> set[str]:
    """Every top-level name a statement may bind."""
    names: set[str] = set()
    for node in ast.walk(statement):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names if alias.name != "*")
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {statement.name}
    return names


def _is_main_guard(test: ast.expr) -> bool:
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and len(test.comparators) == 1 and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value == "__main__")


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _check_validation_model(function: str, signature: inspect.Signature, path: Path, line: int) -> None:
    """Prefect builds a pydantic model of the parameters when the flow is defined (validate_parameters=True,
    prefect._internal.pydantic.validated_func.ValidatedFunction) and refuses the flow if that fails, e.g. for a
    parameter named model_config, model_dump or _private."""
    names = set(signature.parameters)
    if not any(name.startswith(("_", "model_", "v__")) or hasattr(pydantic.BaseModel, name) for name in names):
        return  # the schema model has built these same types already: only names can fail here
    reserved = {"v__args", "v__kwargs", "v__positional_only", "v__duplicate_kwargs"} & names
    fields: dict[str, Any] = {}
    for name, parameter in signature.parameters.items():
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        annotation = Any if parameter.annotation is inspect.Parameter.empty else parameter.annotation
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        fields[name] = (annotation, pydantic.Field(default))
    for name in ("v__args", "v__positional_only", "v__duplicate_kwargs"):
        fields[name] = (list[Any] | None, pydantic.Field(default=None))
    fields["v__kwargs"] = (dict[str, Any] | None, pydantic.Field(default=None))
    problem = f"parameters conflict with internal field names: {sorted(reserved)}" if reserved else None
    if not problem:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                base = pydantic.create_model(
                    "DecoratorBaseModel", __config__=pydantic.ConfigDict(extra="forbid", arbitrary_types_allowed=True))
                pydantic.create_model(f"{function.title()}Model", __base__=base, **fields)
        except Exception as exc:  # whatever pydantic refuses, Prefect refuses the flow for
            problem = str(exc).splitlines()[0]
    if problem:
        raise FlowSourceError(
            f"Prefect refuses this flow: its function is not compatible with validate_parameters ({problem}); "
            "rename the parameter or pass validate_parameters=False to @flow",
            path, line, function,
        )


# --- the schema, as prefect.utilities.callables.generate_parameter_schema builds it (pydantic v2 path) -------


def parameter_docstrings(docstring: str | None) -> dict[str, str]:
    """Parameter descriptions from a Google-style docstring, parsed by griffe as Prefect does."""
    if not docstring:
        return {}
    from griffe import Docstring, DocstringSectionKind, Parser, parse

    griffe_logger = logging.getLogger("griffe")
    disabled = griffe_logger.disabled
    griffe_logger.disabled = True  # griffe warns about untyped parameters; Prefect silences it too
    try:
        descriptions: dict[str, str] = {}
        for section in parse(Docstring(docstring), Parser.google):
            if section.kind == DocstringSectionKind.parameters:
                descriptions = {parameter.name: parameter.description for parameter in section.value}
        return descriptions
    finally:
        griffe_logger.disabled = disabled


def generate_parameter_schema(signature: inspect.Signature, docstrings: dict[str, str]) -> dict[str, Any]:
    """The `parameter_openapi_schema` prefect deploy sends for this signature."""
    with warnings.catch_warnings():  # pydantic warns about names like model_dump__; Prefect's output, not ours
        warnings.simplefilter("ignore")
        return _generate_parameter_schema(signature, docstrings)


def _generate_parameter_schema(signature: inspect.Signature, docstrings: dict[str, str]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    aliases: dict[str, str] = {}
    for position, parameter in enumerate(signature.parameters.values()):
        name = parameter.name
        if hasattr(pydantic.BaseModel, name):  # pydantic refuses fields that shadow BaseModel attributes
            name += "__"
            aliases[name] = parameter.name
        if name in ("cls", "self"):
            continue
        annotation = Any if parameter.annotation is inspect.Parameter.empty else parameter.annotation
        existing = parameter.default if isinstance(parameter.default, FieldInfo) else None
        default = existing.default if existing else parameter.default
        description = existing.description if existing and existing.description else docstrings.get(parameter.name)
        extra: dict[str, Any] = dict(existing.json_schema_extra) if existing and isinstance(
            existing.json_schema_extra, dict) else {}
        extra.setdefault("position", position)
        field_info = pydantic.Field(
            default=... if default is inspect.Parameter.empty else default,
            title=parameter.name,
            description=description,
            alias=aliases.get(name),
            json_schema_extra=extra,
        )
        fields[name] = (annotation, field_info)
    try:  # the common case in one model; what fails is redone field by field below, exactly as Prefect does
        schema = _model_schema("Parameters", fields)
    except Exception:
        for name, (annotation, field_info) in fields.items():
            try:  # a type pydantic cannot describe becomes "any value", as in Prefect
                _model_schema("CheckParameter", {name: (annotation, field_info)})
            except (ValueError, TypeError, PydanticInvalidForJsonSchema):
                fields[name] = (Any, field_info)
        schema = _model_schema("Parameters", fields)
    # prefect's ParameterSchema(**schema).model_dump(exclude_unset=True): its five fields, as present.
    return {key: schema[key] for key in ("title", "type", "properties", "required", "definitions") if key in schema}


def _model_schema(name: str, fields: dict[str, Any]) -> dict[str, Any]:
    """prefect._internal.pydantic.v2_schema.create_v2_schema."""
    model = pydantic.create_model(name, __config__=pydantic.ConfigDict(arbitrary_types_allowed=True), **fields)
    try:
        adapter = TypeAdapter(model)
    except PydanticUndefinedAnnotation as exc:
        raise TypeError(exc.message) from None
    try:
        schema = adapter.json_schema(by_alias=True, ref_template="#/definitions/{model}",
                                     schema_generator=GenerateEmptySchemaForUserClasses)
    except PydanticUserError as exc:
        if exc.code == "class-not-fully-defined":
            raise TypeError(str(exc)) from None
        raise
    if "$defs" in schema:
        schema["definitions"] = schema["$defs"]
    return schema


class GenerateEmptySchemaForUserClasses(GenerateJsonSchema):
    """prefect._internal.pydantic.schemas.GenerateEmptySchemaForUserClasses: an arbitrary class is `{}`."""

    def is_instance_schema(self, schema: Any) -> Any:
        return {}


# --- Prefect itself, in the flow's own interpreter --------------------------------------------------------

# Run by `flow_python` in the project directory: exactly what prefect deploy asks of the flow.
INTERPRETER_SCRIPT = """
import json, sys
from prefect.flows import load_flow_from_entrypoint
from prefect.utilities.callables import parameter_schema
flow = load_flow_from_entrypoint(sys.argv[1])
with open(sys.argv[2], "w") as out:
    json.dump({"name": flow.name, "version": flow.version, "description": flow.description,
               "parameter_schema": parameter_schema(flow).model_dump(exclude_unset=True)}, out)
"""


def _read_with_interpreter(entrypoint: str, base_dir: Path, path: Path, content: bytes, flow_python: str,
                           cache_dir: Path | None) -> FlowInfo:
    # As the user's shell finds it (a relative path is relative to where the tool runs, not to base_dir).
    interpreter = os.path.abspath(shutil.which(flow_python) or flow_python)
    cache_dir = cache_dir or base_dir / CACHE_DIR
    key = hashlib.sha256(entrypoint.encode() + b"\0" + interpreter.encode() + b"\0" + content)
    for source in _project_sources(path, base_dir):  # a changed models.py the flow imports is read again
        key.update(b"\0" + str(source).encode() + b"\0" + source.read_bytes())
    cached = cache_dir / f"flow-{key.hexdigest()[:32]}.json"
    try:
        return _flow_info(json.loads(cached.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "flow.json"
        try:
            done = subprocess.run(
                [interpreter, "-c", INTERPRETER_SCRIPT, entrypoint, str(out)],
                cwd=base_dir, capture_output=True, text=True, timeout=INTERPRETER_TIMEOUT_SECONDS,
                env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise FlowSourceError(f"--flow-python {flow_python}: {exc}", path, None, "entrypoint") from None
        if done.returncode != 0 or not out.exists():
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise FlowSourceError(f"Prefect in --flow-python {flow_python} could not load {entrypoint}: {last}",
                                  path, None, "entrypoint")
        data = json.loads(out.read_text())
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=cache_dir, suffix=".tmp", delete=False) as partial:
            json.dump(data, partial)
        Path(partial.name).replace(cached)
    except OSError:
        pass  # an unwritable cache only costs the next run the subprocess
    return _flow_info(data)


def _project_sources(path: Path, base_dir: Path, limit: int = 500) -> list[Path]:
    """The project's own modules the flow file imports, transitively: those found under the directories
    Prefect puts on sys.path when it loads the flow (the file's own and the working directory)."""
    roots = [path.parent.resolve(), base_dir.resolve()]
    found: dict[Path, None] = {}
    queue = [path.resolve()]
    while queue and len(found) < limit:
        current = queue.pop()
        try:
            tree = ast.parse(current.read_bytes())
        except (OSError, SyntaxError, ValueError):
            continue
        candidates: list[Path] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [(roots, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                package = current.parent
                for _ in range(node.level - 1):
                    package = package.parent
                bases = [package] if node.level else roots
                prefix = f"{node.module}." if node.module else ""
                modules = [(bases, node.module)] if node.module else []
                modules += [(bases, prefix + alias.name) for alias in node.names if alias.name != "*"]
            else:
                continue
            for bases, module in modules:
                parts = module.split(".")
                for root in bases:
                    for depth in range(1, len(parts) + 1):
                        stem = root.joinpath(*parts[:depth])
                        candidates += [stem.with_suffix(".py"), stem / "__init__.py"]
        for candidate in candidates:
            if candidate not in found and candidate != path.resolve() and candidate.is_file():
                found[candidate] = None
                queue.append(candidate)
    return sorted(found)


def _flow_info(data: dict[str, Any]) -> FlowInfo:
    return FlowInfo(data["name"], data["version"], data["description"], data["parameter_schema"], [])

