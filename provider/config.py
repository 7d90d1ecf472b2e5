"""A configuration: a directory of YAML files merged into resources with their dependencies."""

from __future__ import annotations

import functools
import graphlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from provider.errors import ConfigError, ConfigErrors, Location
from provider.expressions import Evaluator, PendingData
from provider.prefect_yaml import PREFECT_YAML, read_prefect_yaml
from provider.yamlsource import SourceMap, _dotted, load_yaml
from resources import CATALOG, KINDS
from resources.base import Address, Spec

SETTINGS_KEYS = ("data", "backend", "prefect_yaml", "step_outputs", "moved", "workspace")


class Moved(BaseModel):
    """A rename: the object recorded at `from` is the one now declared at `to`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: str = Field(alias="from")
    to: str

    @model_validator(mode="after")
    def _same_kind(self) -> Moved:
        old, new = CATALOG.parse(self.from_), CATALOG.parse(self.to)
        if old.kind != new.kind:
            raise ValueError(f"{self.from_} -> {self.to}: only renames within one kind are possible")
        return self


@dataclass
class Resource:
    address: Address
    spec: Spec
    location: Location
    source: SourceMap
    path: tuple[str | int, ...]  # where the spec stands in its file
    depends_on: list[Address] = field(default_factory=list)
    # Read from a prefect.yaml: a work pool or queue it names but the configuration does not
    # declare is taken to exist on the server already (as `prefect deploy` expects).
    refers_to_existing: bool = False

    @property
    def kind(self):
        return KINDS[self.address.kind]

    def locate(self, *field_path: str | int) -> Location:
        return self.source.locate((*self.path, *field_path))


@dataclass
class DataSource:
    """An object this configuration reads but does not manage (`data: {KIND: {NAME: {}}}`): read at
    plan time, never created, changed or deleted; resources may refer to it as to a declared one."""

    address: Address
    location: Location
    referred_by: Address | None = None  # made for a reference, not declared (a Pulumi resource's)

    def __str__(self) -> str:
        return f"data.{self.address}"

    def problem(self, what: str) -> str:
        if self.referred_by:
            return f"{self.referred_by} refers to {self.address}: {what}"
        return f"{self} ({self.location}): {what}"


@dataclass(frozen=True)
class WorkspaceSetting:
    """`workspace: HANDLE`: the configuration's workspace-scoped objects live in the workspace of this
    handle, in the account of the API URL (resolved by the session, provider/connection.py)."""

    handle: str
    location: Location


@dataclass
class Configuration:
    directory: Path
    resources: dict[Address, Resource]
    backend: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)  # shown with the plan
    moved: list[Moved] = field(default_factory=list)
    data: dict[Address, DataSource] = field(default_factory=dict)
    # Resources whose specs read data sources (`${data...}`) not read yet: checked once they are
    # (`with_data`); a configuration holding any cannot be planned.
    deferred: dict[Address, Location] = field(default_factory=dict)
    # Reads the files again, given what the data sources read (set by load_configuration).
    reload: Callable[[Mapping[str, Mapping[str, Any]]], Configuration] | None = field(default=None, repr=False)
    workspace: WorkspaceSetting | None = None

    def with_data(self, values: Mapping[str, Mapping[str, Any]]) -> Configuration:
        """This configuration read again, its `${data.KIND.NAME.ATTRIBUTE}` expressions taking `values`."""
        if self.reload is None:
            raise ConfigError("this configuration reads data sources, but cannot be read again")
        return self.reload(values)

    def order(self) -> list[Address]:
        """Addresses in dependency order (dependencies first)."""
        graph = graphlib.TopologicalSorter({a: r.depends_on for a, r in self.resources.items()})
        return list(graph.static_order())


def config_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise ConfigError("not a directory", Location(str(directory)))
    return sorted(
        p for p in directory.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml") and p.name != PREFECT_YAML
    )


def load_var_files(paths: list[Path], assignments: list[str]) -> dict[str, Any]:
    """Values for `${var.NAME}`: var files first, then `--var NAME=VALUE` (which win)."""
    values: dict[str, Any] = {}
    for path in paths:
        data, _ = load_yaml(path, Evaluator())
        if data is None:
            continue
        if not isinstance(data, dict):
            raise ConfigError("a var file must be a mapping of NAME: VALUE", Location(str(path), 1))
        values.update(data)
    for assignment in assignments:
        name, eq, value = assignment.partition("=")
        if not eq or not name:
            raise ConfigError(f"--var {assignment!r}: expected NAME=VALUE")
        values[name] = value
    return values


def load_configuration(
    directory: Path,
    variables: Mapping[str, Any] | None = None,
    step_outputs: Mapping[str, Mapping[str, Any]] | None = None,
    flow_python: str | None = None,
    data_values: Mapping[str, Mapping[str, Any]] | None = None,
) -> Configuration:
    """Read, evaluate and validate every file; raise ConfigErrors with all problems found.

    `step_outputs`: the outputs of prefect.yaml build and push steps given on the command line
    (by step id; they win over the configuration's `step_outputs:`). None where they do not
    matter (e.g. `state list`): prefect.yaml step-output templates are then not checked.
    `flow_python`: an interpreter with Prefect, for what a flow's source alone cannot tell.
    `data_values`: what the data sources read ("KIND.NAME" -> attributes), for `${data...}`; without
    them, resources using such expressions are left `deferred`.
    """
    directory = Path(directory)
    evaluator = Evaluator(variables, data=data_values)
    deferred: dict[Address, Location] = {}
    errors: list[ConfigError] = []
    resources: dict[Address, Resource] = {}
    backend: dict[str, Any] | None = None
    workspace: WorkspaceSetting | None = None
    moved: list[Moved] = []
    data_sources: dict[Address, DataSource] = {}
    outputs: dict[str, dict[str, Any]] = {}
    prefect_yamls = [directory / PREFECT_YAML] if (directory / PREFECT_YAML).is_file() else []

    for path in config_files(directory):
        display = _display(path)
        try:
            data, source = load_yaml(path, evaluator, display)
        except ConfigError as exc:
            errors.append(exc)
            continue
        if data is None:
            continue
        if not isinstance(data, dict):
            errors.append(ConfigError("expected a mapping of resource kinds at the top level", Location(display, 1)))
            continue
        for key, body in data.items():
            where = source.locate((key,))
            if key == "backend":
                if backend is not None:
                    errors.append(ConfigError("backend is configured twice", where, "backend"))
                backend = body if isinstance(body, dict) else None
                continue
            if key == "workspace":
                if workspace is not None:
                    errors.append(ConfigError(f"workspace is configured twice; first at {workspace.location}", where, "workspace"))
                elif not isinstance(body, str) or not body.strip():
                    errors.append(ConfigError("expected a workspace handle, e.g. `workspace: staging`", where, "workspace"))
                else:
                    workspace = WorkspaceSetting(body, where)
                continue
            if key == "prefect_yaml":
                prefect_yamls += _prefect_yaml_paths(body, path.parent, source, errors)
                continue
            if key == "moved":
                moved += _moved_entries(body, source, errors)
                continue
            if key == "data":
                _data_sources(body, source, data_sources, errors)
                continue
            if key == "step_outputs":
                _step_outputs(body, source, outputs, errors)
                continue
            if key not in KINDS or not KINDS[key].declarable:  # nested kinds are declared inside their parent
                known = ", ".join([*(k for k, kind in KINDS.items() if kind.declarable), *SETTINGS_KEYS])
                errors.append(ConfigError(f"unknown resource kind (expected one of: {known})", where, key))
                continue
            if body is None:
                continue
            if not isinstance(body, dict):
                errors.append(ConfigError("expected a mapping from names to specs", where, key))
                continue
            for name, spec in body.items():
                _add_resource(resources, Address(key, name), spec, source, (key, name), errors,
                              context={"base_dir": directory, "flow_python": flow_python}, deferred=deferred)

    warnings = []
    for prefect_yaml in dict.fromkeys(p.resolve() for p in prefect_yamls):
        try:
            given = None if step_outputs is None else {
                step: {**outputs.get(step, {}), **step_outputs.get(step, {})} for step in {*outputs, *step_outputs}
            }
            found = read_prefect_yaml(prefect_yaml, _display(prefect_yaml), given, flow_python=flow_python)
        except ConfigError as exc:
            errors.append(exc)
            continue
        errors += found.errors
        warnings += found.warnings
        for deployment in found.deployments:
            address, spec, path = deployment.address, deployment.spec, deployment.path
            _add_resource(resources, address, spec, found.source, path, errors, refers_to_existing=True,
                          context=deployment.context)

    for address, declared in data_sources.items():
        if address in resources:
            errors.append(ConfigError(f"declared both as a resource (at {resources[address].location}) and as data",
                                      declared.location, str(declared)))
    if not errors:
        _link(resources, data_sources, errors, deferred)
    if errors:
        raise ConfigErrors(errors)
    reload = functools.partial(load_configuration, directory, variables, step_outputs, flow_python)
    return Configuration(directory, resources, backend, warnings, moved, data_sources, deferred,
                         lambda values: reload(data_values=values), workspace)


def declared_configuration(directory: Path, specs: Mapping[Address, Spec], source: SourceMap) -> Configuration:
    """A configuration of specs given in code rather than read from files (a Pulumi resource's
    inputs), with their children and dependencies as `load_configuration` makes them; objects they
    refer to that are not among them are data sources (read on the server by the plan)."""
    errors: list[ConfigError] = []
    resources: dict[Address, Resource] = {}
    for address, spec in specs.items():
        _add_resource(resources, address, spec, source, (), errors)
    data = {target: DataSource(target, resource.location, referred_by=address)
            for address, resource in resources.items()
            for target in resource.kind.references(address.name, resource.spec) if target not in resources}
    if not errors:
        _link(resources, data, errors)
    if errors:
        raise ConfigErrors(errors)
    return Configuration(directory, resources, data=data)


def _add_resource(
    resources: dict[Address, Resource],
    address: Address,
    raw: Any,
    source: SourceMap,
    path: tuple[str | int, ...],
    errors: list[ConfigError],
    refers_to_existing: bool = False,
    context: dict[str, Any] | None = None,
    deferred: dict[Address, Location] | None = None,
) -> None:
    kind = KINDS[address.kind]
    location = source.locate(path)
    try:
        kind.check_name(address.name)
    except ValueError as exc:
        errors.append(ConfigError(f"invalid name: {exc}", location, str(address)))
        return
    if deferred is not None and _reads_pending_data(raw):
        deferred[address] = location
        return
    if isinstance(raw, Spec):
        spec = raw
    else:
        try:
            data = raw if raw is not None else {}
            spec = kind.spec.model_validate(data, context=context)
        except ValidationError as exc:
            errors += _validation_errors(exc, source, path, data)
            return
    if address in resources:
        first = resources[address].location
        errors.append(ConfigError(f"declared twice; first declared at {first}", location, str(address)))
        return
    resources[address] = Resource(address, spec, location, source, path, refers_to_existing=refers_to_existing)
    for child in kind.children(address.name, spec):
        child_path = (*path, *child.path)
        _add_resource(resources, CATALOG.address(child.kind, child.name), child.spec, source, child_path, errors, refers_to_existing)


def _reads_pending_data(raw: Any) -> bool:
    if isinstance(raw, PendingData):
        return True
    if isinstance(raw, dict):
        return any(_reads_pending_data(value) for value in raw.values())
    return isinstance(raw, list) and any(_reads_pending_data(item) for item in raw)


def _link(resources: dict[Address, Resource], data: dict[Address, DataSource], errors: list[ConfigError],
          deferred: dict[Address, Location] | None = None) -> None:
    """Dependency edges from references and kind ordering; dangling references and cycles."""
    for address, resource in resources.items():
        for target in resource.kind.references(address.name, resource.spec):
            if target not in resources:
                if resource.refers_to_existing or target in data or target in (deferred or {}):
                    continue
                errors.append(
                    ConfigError(
                        f"refers to {target}, which is not declared in this configuration "
                        f"(declare it, or read it as data: `data: {{{target.kind}: {{{target.name}: {{}}}}}}`)",
                        resource.location,
                        str(address),
                    )
                )
            elif target not in resource.depends_on:
                resource.depends_on.append(target)
        for target in resource.kind.references_if_declared(address.name, resource.spec):
            if target in resources and target not in resource.depends_on:
                resource.depends_on.append(target)
    by_kind: dict[str, dict[str, Spec]] = {}
    for address, resource in resources.items():
        by_kind.setdefault(address.kind, {})[address.name] = resource.spec
    for kind_name, specs in by_kind.items():
        for later, earlier in KINDS[kind_name].ordering(specs):
            resources[CATALOG.address(kind_name, later)].depends_on.append(CATALOG.address(kind_name, earlier))
    try:
        graphlib.TopologicalSorter({a: r.depends_on for a, r in resources.items()}).prepare()
    except graphlib.CycleError as exc:
        cycle = exc.args[1]
        first = resources[cycle[0]]
        errors.append(
            ConfigError("dependency cycle: " + " -> ".join(str(a) for a in cycle), first.location, str(cycle[0]))
        )


def _validation_errors(exc: ValidationError, source: SourceMap, path: tuple, data: Any) -> list[ConfigError]:
    errors = []
    for input_path, message in validation_problems(exc, data):
        field_path = (*path, *input_path)
        errors.append(ConfigError(message, source.locate(field_path), _dotted(field_path)))
    return errors


def validation_problems(exc: ValidationError, data: Any) -> list[tuple[tuple, str]]:
    """Each error of validating `data`: the path into `data` and the message to show (also used by
    the Pulumi providers' check)."""
    problems = []
    for error in exc.errors():
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] == "missing":
            message = "required field is missing"
        problems.append((_input_path(error, data), message))
    return problems


def _input_path(error: Any, data: Any) -> tuple:
    """An error's loc as a path into the input, without the union member names pydantic adds.

    A discriminated union puts the member's tag into loc (`actions[0].run-deployment.deployment`),
    other unions a type name (`function-after[...]`, `str`). Parts that do not lead into the input
    are such names, except the last part of a `missing` error: the field that is missing.
    """
    loc = error["loc"]
    path: list = []
    node = data
    for index, part in enumerate(loc):
        if isinstance(node, dict) and part in node or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        ):
            node = node[part]
            path.append(part)
        elif index == len(loc) - 1 and error["type"] == "missing":
            path.append(part)
    return tuple(path)


def _prefect_yaml_paths(body: Any, base_dir: Path, source: SourceMap, errors: list[ConfigError]) -> list[Path]:
    """`prefect_yaml: [PATH, ...]`: prefect.yaml files to read deployments from, relative to this file."""
    if not isinstance(body, list) or not all(isinstance(p, str) for p in body):
        errors.append(ConfigError("expected a list of prefect.yaml paths", source.locate(("prefect_yaml",)), "prefect_yaml"))
        return []
    found = []
    for index, text in enumerate(body):
        path = base_dir / text
        if path.is_file():
            found.append(path)
        else:
            where = ("prefect_yaml", index)
            errors.append(ConfigError(f"no such file: {path}", source.locate(where), _dotted(where)))
    return found


def _step_outputs(body: Any, source: SourceMap, outputs: dict[str, dict[str, Any]], errors: list[ConfigError]) -> None:
    """`step_outputs: {STEP_ID: {KEY: VALUE}}`: the outputs of prefect.yaml build and push steps."""
    if not isinstance(body, dict) or not all(isinstance(v, dict) for v in body.values()):
        where = source.locate(("step_outputs",))
        errors.append(ConfigError("expected a mapping of STEP_ID: {KEY: VALUE}", where, "step_outputs"))
        return
    for step_id, values in body.items():
        outputs.setdefault(str(step_id), {}).update(values)


def _data_sources(body: Any, source: SourceMap, data: dict[Address, DataSource], errors: list[ConfigError]) -> None:
    """`data: {KIND: {NAME: {}}}`: objects read, never managed."""
    readable = [k for k, kind in KINDS.items() if not kind.nested_under]
    if not isinstance(body, dict):
        errors.append(ConfigError("expected a mapping of KIND: {NAME: {}}", source.locate(("data",)), "data"))
        return
    for kind_name, names in body.items():
        where = ("data", kind_name)
        if kind_name not in readable:
            errors.append(ConfigError(f"unknown kind (expected one of: {', '.join(readable)})", source.locate(where),
                                      _dotted(where)))
            continue
        if not isinstance(names, dict):
            errors.append(ConfigError("expected a mapping from names to {}", source.locate(where), _dotted(where)))
            continue
        for name, options in names.items():
            at = (*where, name)
            address = CATALOG.address(kind_name, str(name))
            try:
                KINDS[kind_name].check_name(address.name)
            except ValueError as exc:
                errors.append(ConfigError(f"invalid name: {exc}", source.locate(at), _dotted(at)))
                continue
            if options:
                errors.append(ConfigError("a data source takes no options: write {}", source.locate(at), _dotted(at)))
                continue
            if address in data:
                errors.append(ConfigError(f"declared twice; first declared at {data[address].location}", source.locate(at),
                                          _dotted(at)))
                continue
            data[address] = DataSource(address, source.locate(at))


def _moved_entries(body: Any, source: SourceMap, errors: list[ConfigError]) -> list[Moved]:
    if not isinstance(body, list):
        errors.append(ConfigError("expected a list of {from: ADDRESS, to: ADDRESS}", source.locate(("moved",)), "moved"))
        return []
    entries = []
    for index, item in enumerate(body):
        try:
            entries.append(Moved.model_validate(item))
        except ValidationError as exc:
            errors += _validation_errors(exc, source, ("moved", index), item)
    return entries


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
