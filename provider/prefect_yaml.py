"""An existing `prefect.yaml` read as a source of `deployments.FLOW/NAME` resources.

Each entry of its `deployments:` list becomes a deployment spec: `work_pool.name`,
`work_pool.work_queue_name` and `work_pool.job_variables` become `work_pool`, `work_queue` and
`job_variables`; the deployment's `pull` (else the file's top-level `pull`) becomes `pull_steps`;
a legacy `schedule:` becomes a one-item `schedules:`; `concurrency_limit` may be a number or
`{limit, collision_strategy, grace_period_seconds}`. YAML anchors and merge keys (the usual
`definitions:` section) are resolved by the YAML loader. Everything else is kept verbatim:
Prefect's `{{ ... }}` templates are resolved by Prefect at run time, and this tool's own `${...}`
expressions are not evaluated here (the file belongs to Prefect).

`build` and `push` steps are not run: they produce images and uploads outside the Prefect API.
The configuration carries a warning naming them, which the plan shows.

A work pool (or queue) that the configuration does not declare is taken to exist on the server
already, as `prefect deploy` expects: no dependency, no "not declared" error. A declared one is a
reference like any other (see `Resource.refers_to_existing` in provider/config.py).

The flow name is `flow_name` when given, else the one Prefect would use: the name in the flow's
`@flow(name=...)` decorator, read (never run) from the entrypoint's file, else the function's
name with `_` turned into `-`. When the deployment has no description, the flow's description
or docstring is used, as `prefect deploy` does.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provider.errors import ConfigError
from provider.expressions import Evaluator
from provider.yamlsource import SourceMap, _dotted, load_yaml
from resources.base import Address

PREFECT_YAML = "prefect.yaml"
# prefect.yaml fields that become the spec field of the same name.
SAME_NAME = ("entrypoint", "description", "version", "tags", "parameters", "enforce_parameter_schema", "paused", "triggers")
# The fields of a deployment's `work_pool:` and the spec fields they become.
POOL_FIELDS = {"name": "work_pool", "work_queue_name": "work_queue", "job_variables": "job_variables"}
# Known prefect.yaml fields that this tool does not manage, and why.
NOT_MANAGED = {
    "sla": "SLAs are not managed by prefect-provider",
    "version_type": "version_type is set by `prefect deploy` only",
}
STEP_OUTPUT = re.compile(r"\{\{\s*([A-Za-z0-9_-]+)\.")


class Verbatim(Evaluator):
    """Leaves every string as written: prefect.yaml has no `${...}` expressions of this tool."""

    def evaluate(self, text: str, base_dir: Path) -> Any:
        return text


@dataclass
class PrefectYamlDeployment:
    address: Address
    spec: dict[str, Any]
    path: tuple[str | int, ...]  # where the spec stands in `PrefectYaml.source`


@dataclass
class PrefectYaml:
    deployments: list[PrefectYamlDeployment]
    source: SourceMap  # lines of the spec fields, pointing into the prefect.yaml
    warnings: list[str] = field(default_factory=list)
    errors: list[ConfigError] = field(default_factory=list)


def read_prefect_yaml(path: Path, display: str) -> PrefectYaml:
    """The deployments of one prefect.yaml, with every problem found (raises only for bad YAML)."""
    data, lines = load_yaml(path, Verbatim(), display)
    reader = _Reader(path.parent, lines, data if isinstance(data, dict) else {})
    entries = reader.document.get("deployments") or []
    if data is not None and not isinstance(data, dict):
        reader.errors.append(ConfigError("expected a mapping (a prefect.yaml file)", lines.locate(())))
    elif not isinstance(entries, list):
        reader.errors.append(ConfigError("expected a list of deployments", lines.locate(("deployments",)), "deployments"))
        entries = []
    deployments = [d for index, entry in enumerate(entries) if (d := reader.deployment(index, entry))]
    return PrefectYaml(deployments, reader.source, reader.warnings(display, deployments), reader.errors)


class _Reader:
    """Turns the entries of one prefect.yaml into specs, with their lines and what was left out."""

    def __init__(self, base_dir: Path, lines: SourceMap, document: dict[str, Any]):
        self.base_dir = base_dir
        self.lines = lines
        self.document = document
        self.source = SourceMap(lines.file)  # spec paths (deployments, FLOW/NAME, field...) -> lines
        self.errors: list[ConfigError] = []
        self.ignored: list[str] = []  # what was left out of a spec, and why
        self.skipped_steps: dict[Address, list[Any]] = {}  # build/push steps per deployment

    def deployment(self, index: int, raw: Any) -> PrefectYamlDeployment | None:
        where = ("deployments", index)
        if not isinstance(raw, dict):
            self.errors.append(ConfigError("expected a mapping describing a deployment", self.lines.locate(where)))
            return None
        raw = dict(raw)
        name = raw.pop("name", None)
        if not isinstance(name, str) or not name:
            self.errors.append(ConfigError("a deployment needs a name", self.lines.locate(where), _dotted(where)))
            return None
        flow_name, flow_description = self.flow(where, raw)
        if flow_name is None:
            return None
        entry = _Entry(self, Address("deployments", f"{flow_name}/{name}"), where)
        self.map(entry.target, where)  # fields of the same name keep their lines

        for key in SAME_NAME:
            if key in raw:
                entry.take(key, raw.pop(key), key)
        if not entry.spec.get("description") and flow_description:
            entry.take("description", flow_description, "entrypoint")
        self.work_pool(entry, raw.pop("work_pool", None))
        self.pull(entry, raw)
        self.schedules(entry, raw)
        self.concurrency(entry, raw.pop("concurrency_limit", None))

        steps = [*self.section(raw, "build"), *self.section(raw, "push")]
        if steps:
            self.skipped_steps[entry.address] = steps
        raw.pop("flow_name", None)  # it is in the address
        for key, reason in NOT_MANAGED.items():
            if raw.pop(key, None) is not None:
                self.ignored.append(f"{entry.address}: {key} is ignored ({reason})")
        for key, value in raw.items():  # unknown fields reach the spec, which reports them
            entry.take(key, value, key)
        return PrefectYamlDeployment(entry.address, entry.spec, entry.target)

    def flow(self, where: tuple[str | int, ...], raw: dict[str, Any]) -> tuple[str | None, str | None]:
        """The flow's name (None after an error) and its description from the code, if any."""
        if raw.get("flow_name"):
            return str(raw["flow_name"]), None
        entrypoint = raw.get("entrypoint")
        if not isinstance(entrypoint, str) or not entrypoint:
            message = "a deployment needs an entrypoint (or a flow_name)"
            self.errors.append(ConfigError(message, self.lines.locate(where), _dotted(where)))
            return None, None
        try:
            return flow_from_entrypoint(entrypoint, self.base_dir)
        except ValueError as exc:
            origin = (*where, "entrypoint")
            self.errors.append(ConfigError(str(exc), self.lines.locate(origin), _dotted(origin)))
            return None, None

    def work_pool(self, entry: _Entry, pool: Any) -> None:
        """{name, work_queue_name, job_variables} become work_pool, work_queue and job_variables."""
        if pool is None:
            return
        if not isinstance(pool, dict):
            self.errors.append(entry.error("expected {name, work_queue_name, job_variables}", "work_pool"))
            return
        for key, value in pool.items():
            if key not in POOL_FIELDS:
                self.errors.append(entry.error("unknown field", "work_pool", key))
            elif value is not None:
                entry.take(POOL_FIELDS[key], value, "work_pool", key)

    def pull(self, entry: _Entry, raw: dict[str, Any]) -> None:
        """The deployment's own pull steps, else the file's; `pull: null` inherits, `pull: []` means none."""
        own = raw.pop("pull", None)
        if own is not None:
            steps, origin = own, (*entry.where, "pull")
        else:
            steps, origin = self.document.get("pull"), ("pull",)
        if steps:
            entry.spec["pull_steps"] = [steps] if isinstance(steps, dict) else steps  # one step may be a mapping
            self.map((*entry.target, "pull_steps"), origin)

    def schedules(self, entry: _Entry, raw: dict[str, Any]) -> None:
        """`schedules`, or the legacy `schedule` as a one-item list."""
        legacy = raw.pop("schedule", None)
        schedules = raw.pop("schedules", None)
        if legacy and schedules is not None:
            self.errors.append(entry.error("both schedule and schedules are given: use only schedules", "schedule"))
            return
        if legacy:
            schedules = [legacy]
            self.map((*entry.target, "schedules", 0), (*entry.where, "schedule"))
        if not schedules:
            return
        for item in schedules if isinstance(schedules, list) else []:
            if isinstance(item, dict) and item.pop("replaces", None) is not None:
                self.ignored.append(f"{entry.address}: schedule `replaces` is ignored (schedules are matched by slug)")
        entry.spec["schedules"] = schedules

    def concurrency(self, entry: _Entry, limit: Any) -> None:
        """A number, or {limit, collision_strategy, grace_period_seconds}."""
        if not isinstance(limit, dict):
            if limit is not None:
                entry.take("concurrency_limit", limit, "concurrency_limit")
            return
        options = {key: value for key, value in limit.items() if value is not None}
        if "limit" in options:
            entry.take("concurrency_limit", options.pop("limit"), "concurrency_limit", "limit")
        if options:
            entry.take("concurrency_options", options, "concurrency_limit")

    def section(self, raw: dict[str, Any], key: str) -> list[Any]:
        """A deployment's build or push steps: its own when it has the key (even empty), else the file's."""
        return _steps(raw.pop(key) if key in raw else self.document.get(key))

    def map(self, target: tuple[str | int, ...], origin: tuple[str | int, ...]) -> None:
        """Give the spec path `target` (and everything under it) the lines of `origin` in the file."""
        for path, line in self.lines.lines.items():
            if path[: len(origin)] == origin:
                self.source.lines[(*target, *path[len(origin):])] = line

    def warnings(self, display: str, deployments: list[PrefectYamlDeployment]) -> list[str]:
        notes = list(self.ignored)
        if self.skipped_steps:
            notes.append(
                f"{display}: build and push steps are not run by prefect-provider "
                f"(for {', '.join(str(a) for a in self.skipped_steps)}); run them before apply, e.g. in CI"
            )
        for deployment in deployments:
            outputs = {_step_id(step) for step in self.skipped_steps.get(deployment.address, [])} - {None}
            used = sorted(set(STEP_OUTPUT.findall(json.dumps(deployment.spec))) & outputs)
            if used:
                notes.append(
                    f"{deployment.address}: uses outputs of the build/push steps {', '.join(used)}, "
                    "whose {{ }} templates stay unresolved"
                )
        return notes


@dataclass
class _Entry:
    """One deployment being read: `where` it stands in the file, and its spec at `target`."""

    reader: _Reader
    address: Address
    where: tuple[str | int, ...]
    spec: dict[str, Any] = field(default_factory=dict)

    @property
    def target(self) -> tuple[str, str]:
        return ("deployments", self.address.name)

    def take(self, spec_key: str, value: Any, *origin: str | int) -> None:
        """Set a spec field from the file's `origin` (under the deployment), keeping its lines."""
        self.spec[spec_key] = value
        self.reader.map((*self.target, spec_key), (*self.where, *origin))

    def error(self, message: str, *origin: str | int) -> ConfigError:
        return ConfigError(message, self.reader.lines.locate((*self.where, *origin)), _dotted((*self.target, *origin)))


def flow_from_entrypoint(entrypoint: str, base_dir: Path) -> tuple[str, str | None]:
    """The flow name Prefect derives for `path/to/file.py:function`, and the flow's description.

    The file is parsed, never run. A missing or unparsable file leaves the default: the
    function's name with `_` turned into `-` (as prefect.flows.Flow does).
    """
    file, _, function = entrypoint.rpartition(":")
    function = function.rsplit(".", 1)[-1]
    default = function.replace("_", "-")
    try:
        tree = ast.parse((base_dir / file).read_text()) if file else None
    except (OSError, SyntaxError, ValueError):
        tree = None
    for node in ast.walk(tree) if tree else ():
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or node.name != function:
            continue
        for decorator in node.decorator_list:
            call = decorator if isinstance(decorator, ast.Call) else None
            target = call.func if call else decorator
            if not (isinstance(target, ast.Name) and target.id == "flow") and not (
                isinstance(target, ast.Attribute) and target.attr == "flow"
            ):
                continue
            keywords = {k.arg: k.value for k in call.keywords} if call else {}
            name = _literal(keywords.get("name"), "name", entrypoint)
            description = _literal(keywords.get("description"), "description", entrypoint)
            return name or default, description or ast.get_docstring(node)
    return default, None


def _literal(node: ast.expr | None, what: str, entrypoint: str) -> str | None:
    if node is None or (isinstance(node, ast.Constant) and node.value is None):
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    raise ValueError(
        f"the {what} in @flow(...) of {entrypoint} is not a plain string: add flow_name: NAME to this deployment"
    )


def _steps(section: Any) -> list[Any]:
    if isinstance(section, dict):
        return [section] if section else []
    return section if isinstance(section, list) else []


def _step_id(step: Any) -> str | None:
    """A step is `{function: {id: ..., ...}}`; its id names its outputs in templates."""
    if isinstance(step, dict) and len(step) == 1:
        body = next(iter(step.values()))
        if isinstance(body, dict) and isinstance(body.get("id"), str):
            return body["id"]
    return None
