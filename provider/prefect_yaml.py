"""An existing `prefect.yaml` read as a source of `deployments.FLOW/NAME` resources, the way
`prefect deploy --all` of Prefect 3.8.8 reads it (prefect/cli/deploy/_core.py and _config.py).

Each entry of its `deployments:` list becomes a deployment spec: `work_pool.name`,
`work_pool.work_queue_name` and `work_pool.job_variables` become `work_pool`, `work_queue` and
`job_variables`; the deployment's `pull` (else the file's top-level `pull`, else the pull step
prefect deploy generates) becomes `pull_steps`; a legacy `schedule:` becomes a one-item
`schedules:`; `concurrency_limit` may be a number or `{limit, collision_strategy,
grace_period_seconds}`. YAML anchors and merge keys (the usual `definitions:` section) are
resolved by the YAML loader. Keys prefect deploy ignores are left out with a note naming their
line; an entry without a name is skipped, as prefect deploy skips it. A deployment's `sla:` list
becomes its `resource_slas.FLOW/NAME` (Prefect Cloud only, as prefect deploy has it).

Templates are resolved where prefect deploy resolves them, in its order: `{{ $ENV }}` and the
outputs of build and push steps here, `{{ prefect.variables.* }}` and `{{ prefect.blocks.* }}` at
plan time (resources/deployments.py). Pull steps keep their templates for run time (but take step
outputs and set environment variables, as prefect deploy does), and so do `{{ ctx.* }}` and a
trigger's `parameters` (`{{ event.* }}`).

Build and push steps are never run: their outputs come from `--step-output STEP_ID.KEY=VALUE` or a
`step_outputs:` mapping of the configuration. One that is used but not supplied is an error naming
the template and its line (prefect deploy would have written its value there).

The flow's name, version, description and parameter schema come from the flow's code, read (never
run) from the entrypoint's file by provider/flow_source.py, as prefect deploy takes them from the
imported flow; `parameter_openapi_schema` in the file is ignored, as prefect deploy ignores it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provider.errors import ConfigError
from provider.expressions import Evaluator
from provider.flow_source import FlowInfo, FlowSourceError, read_flow
from provider.templating import Missing, Templater, has_server_templates
from provider.yamlsource import SourceMap, _dotted, load_yaml
from resources.base import Address
from resources.deployments import NO_DESCRIPTION, PREFECT_YAML_SOURCE

PREFECT_YAML = "prefect.yaml"
# A deployment's fields that prefect deploy reads (DeploymentConfig in prefect/cli/deploy/_models.py).
DEPLOYMENT_FIELDS = {
    "name", "version", "version_type", "tags", "description", "schedule", "schedules", "paused",
    "concurrency_limit", "flow_name", "entrypoint", "parameters", "enforce_parameter_schema", "build", "push",
    "pull", "work_pool", "triggers", "sla",
}
WORK_POOL_FIELDS = {"name", "work_queue_name", "job_variables"}
# The fields of an `sla:` item that prefect deploy reads (prefect/_experimental/sla/objects.py); it ignores others.
SLA_FIELDS = {"name", "severity", "enabled", "duration", "stale_after", "within"}
# prefect.yaml fields that become the spec field of the same name.
SAME_NAME = ("entrypoint", "description", "version", "tags", "parameters", "enforce_parameter_schema", "paused", "triggers")
# The fields of a deployment's `work_pool:` and the spec fields they become.
POOL_FIELDS = {"name": "work_pool", "work_queue_name": "work_queue", "job_variables": "job_variables"}
# Why an ignored key is ignored, where there is more to say than "prefect deploy ignores it".
IGNORED_BECAUSE = {
    "parameter_openapi_schema": "prefect deploy derives the parameter schema from the flow",
    "is_schedule_active": "give each schedule `active: false` instead",
    "infra_overrides": "job_variables is the field prefect deploy reads",
}
# Fields prefect deploy reads that this tool does not manage, and why.
NOT_MANAGED = {
    "version_type": "prefect-provider does not infer versions from git; the version is sent as it is",
}
SET_WORKING_DIRECTORY = "prefect.deployments.steps.set_working_directory"
BUILD_DOCKER_IMAGE = "prefect_docker.deployments.steps.build_docker_image"
FLAG = "--step-output"


@dataclass
class PrefectYamlDeployment:
    address: Address
    spec: dict[str, Any]
    path: tuple[str | int, ...]  # where the spec stands in `PrefectYaml.source`
    context: dict[str, Any] = field(default_factory=lambda: {"source": PREFECT_YAML_SOURCE})  # for validation


@dataclass
class PrefectYaml:
    deployments: list[PrefectYamlDeployment]  # with each one's SLAs (`resource_slas`) after it
    source: SourceMap  # lines of the spec fields, pointing into the prefect.yaml
    warnings: list[str] = field(default_factory=list)
    errors: list[ConfigError] = field(default_factory=list)


def step_output_values(supplied: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The values prefect deploy templates with: each step's outputs under its id, and (as its
    run_steps merges them) each output also under its own name."""
    values: dict[str, Any] = {}
    for step_id, outputs in supplied.items():
        values[step_id] = dict(outputs)
    for outputs in supplied.values():
        values.update(outputs)
    return values


def parse_step_outputs(assignments: list[str]) -> dict[str, dict[str, str]]:
    """`--step-output STEP_ID.KEY=VALUE` flags by step id."""
    outputs: dict[str, dict[str, str]] = {}
    for assignment in assignments:
        name, eq, value = assignment.partition("=")
        step_id, dot, key = name.partition(".")
        if not eq or not dot or not step_id or not key:
            raise ConfigError(f"{FLAG} {assignment!r}: expected STEP_ID.KEY=VALUE, e.g. build-image.image=registry/app:1.2")
        outputs.setdefault(step_id, {})[key] = value
    return outputs


def read_prefect_yaml(
    path: Path,
    display: str,
    step_outputs: Mapping[str, Mapping[str, Any]] | None = None,
    environ: Mapping[str, str] | None = None,
    flow_python: str | None = None,
) -> PrefectYaml:
    """The deployments of one prefect.yaml, with every problem found (raises only for bad YAML).

    `step_outputs` by step id; None when they are not known (e.g. `state list`): step-output
    templates are then kept as written instead of being reported. `flow_python`: an interpreter
    with Prefect, for what the flow's source alone cannot tell (provider/flow_source.py).
    """
    data, lines = load_yaml(path, Verbatim(), display)
    reader = _Reader(path.parent, lines, data if isinstance(data, dict) else {}, step_outputs,
                     os.environ if environ is None else environ, flow_python)
    entries = reader.document.get("deployments") or []
    if data is not None and not isinstance(data, dict):
        reader.errors.append(ConfigError("expected a mapping (a prefect.yaml file)", lines.locate(())))
    elif not isinstance(entries, list):
        reader.errors.append(ConfigError("expected a list of deployments", lines.locate(("deployments",)), "deployments"))
        entries = []
    # prefect deploy --all deploys a file's only entry as `prefect deploy` does one: unnamed, it is refused, not skipped.
    reader.single = len(entries) == 1
    deployments = [found for index, entry in enumerate(entries) for found in reader.deployment_and_slas(index, entry)]
    return PrefectYaml(deployments, reader.source, reader.warnings(display), reader.errors)


class Verbatim(Evaluator):
    """Leaves every string as written: prefect.yaml has no `${...}` expressions of this tool."""

    def evaluate(self, text: str, base_dir: Path) -> Any:
        return text


class _Reader:
    """Turns the entries of one prefect.yaml into specs, with their lines and what was left out."""

    def __init__(self, base_dir: Path, lines: SourceMap, document: dict[str, Any],
                 step_outputs: Mapping[str, Mapping[str, Any]] | None, environ: Mapping[str, str],
                 flow_python: str | None):
        self.base_dir = base_dir
        self.flow_python = flow_python
        self.lines = lines
        self.document = document
        self.strict = step_outputs is not None
        self.step_values = step_output_values(step_outputs or {})
        self.environ = environ
        self.source = SourceMap(lines.file)  # spec paths (deployments, FLOW/NAME, field...) -> lines
        # The file's lines by the first two parts of their path, so mapping a field reads only its entry's.
        self.lines_under: dict[tuple[str | int, ...], list[tuple[tuple[str | int, ...], int]]] = {}
        for path, line in lines.lines.items():
            self.lines_under.setdefault(path[:2], []).append((path, line))
        self.flows: dict[str, FlowInfo | FlowSourceError] = {}  # by entrypoint: entries often share a flow
        self.errors: list[ConfigError] = []
        self.notes: list[str] = []
        self.skipped_steps: dict[Address, list[str]] = {}  # ids (or functions) of build/push steps
        self.single = False  # the file's only deployment
        self.templated_slas: dict[Address, Any] = {}  # each deployment's `sla:`, templated, until it is read

    # --- one deployment ---------------------------------------------------------------------

    def deployment_and_slas(self, index: int, raw: Any) -> list[PrefectYamlDeployment]:
        deployment = self.deployment(index, raw)
        if deployment is None:
            return []
        slas = self.slas(deployment, ("deployments", index, "sla"))
        return [deployment, *([slas] if slas else [])]

    def deployment(self, index: int, raw: Any) -> PrefectYamlDeployment | None:
        where: tuple[str | int, ...] = ("deployments", index)
        if not isinstance(raw, dict):
            self.errors.append(ConfigError("expected a mapping describing a deployment", self.lines.locate(where)))
            return None
        raw = self.known_fields(where, raw)
        schedules_origin = self.legacy_schedule(where, raw)
        if schedules_origin is None:
            return None
        pull, pull_origin = self.pull_steps(where, raw)
        config = self.templated(where, raw, schedules_origin)
        name = config.get("name")
        if (name is None or name == "") and self.single:
            if self.flow(where, config) is not None:
                message = "a deployment needs a name (prefect deploy refuses the only deployment of a file without one)"
                self.errors.append(ConfigError(message, self.lines.locate(where), _dotted(where)))
            return None
        if name is None or name == "":
            self.note(where, "has no name: prefect deploy skips it, and so does prefect-provider")
            return None
        if not isinstance(name, str):
            self.errors.append(ConfigError("expected a string", self.lines.locate((*where, "name")), _dotted((*where, "name"))))
            return None
        flow = self.flow(where, config)
        if flow is None:
            return None
        flow_name = flow.name

        entry = _Entry(self, Address("deployments", f"{flow_name}/{name}"), where)
        self.map(entry.target, where)  # fields of the same name keep their lines
        for key in SAME_NAME:
            if config.get(key) is not None:
                entry.take(key, config[key], key)
        # As prefect deploy sets them (and RunnerDeployment._set_defaults_from_flow).
        if not entry.spec.get("description"):
            # Prefect's client sends a missing description as the text "None" when it creates a
            # deployment (DeploymentCreate's convert_to_strings), and null when it updates one.
            entry.take("description", flow.description or NO_DESCRIPTION, "entrypoint")
        if not entry.spec.get("version") and flow.version:
            entry.take("version", flow.version, "entrypoint")
        if flow.parameter_schema:
            entry.take("parameter_openapi_schema", flow.parameter_schema, "entrypoint")
        if not self.work_pool(entry, config.get("work_pool")):
            return None
        pull = self.templated_pull(pull, pull_origin, entry, config)
        if pull:
            entry.spec["pull_steps"] = pull
            self.map((*entry.target, "pull_steps"), pull_origin)
        self.schedules(entry, config.get("schedules"), schedules_origin)
        self.concurrency(entry, config.get("concurrency_limit"))
        if has_server_templates(config.get("triggers")):
            self.errors.append(entry.error(
                "prefect-provider cannot resolve {{ prefect.variables.* }} or {{ prefect.blocks.* }} in triggers "
                "(their automations are planned offline): write the value", "triggers"))
        steps = [*self.section(raw, "build"), *self.section(raw, "push")]
        if steps:
            self.skipped_steps[entry.address] = [_step_name(step) for step in steps]
        if config.get("flow_name") and config["flow_name"] != flow_name:
            self.note((*where, "flow_name"), f"flow_name is ignored: prefect deploy names the flow {flow_name!r}, "
                      "as its code does")
        self.templated_slas[entry.address] = config.get("sla")
        for key, reason in NOT_MANAGED.items():
            if config.get(key) is not None:
                self.note((*where, key), f"{key} is ignored ({reason})")
        return PrefectYamlDeployment(entry.address, entry.spec, entry.target)

    def slas(self, deployment: PrefectYamlDeployment, where: tuple[str | int, ...]) -> PrefectYamlDeployment | None:
        """`sla:` as prefect deploy applies it after the deployment: the whole list (`[]` deletes
        every SLA; no `sla:` leaves them alone), each item's fields as Prefect's SLA models read them."""
        slas = self.templated_slas.pop(deployment.address, None)
        if slas is None:
            return None
        address = Address("resource_slas", deployment.address.name)
        target = (address.kind, address.name)
        self.map(target, where)
        self.map((*target, "slas"), where)
        if not isinstance(slas, list):
            self.errors.append(ConfigError("expected a list of SLAs", self.lines.locate(where), _dotted(where)))
            return None
        kept = []
        for index, item in enumerate([] if slas == [[]] else slas):  # prefect deploy takes [[]] for []
            if isinstance(item, dict):
                for key in sorted(item.keys() - SLA_FIELDS):
                    self.note((*where, index, key), f"{key} is not a field of Prefect's SLAs: prefect deploy ignores it, "
                              "and so does prefect-provider")
                item = {key: value for key, value in item.items() if key in SLA_FIELDS}
            kept.append(item)
        return PrefectYamlDeployment(address, {"slas": kept}, target)

    def known_fields(self, where: tuple[str | int, ...], raw: dict[str, Any]) -> dict[str, Any]:
        """The fields prefect deploy reads; a note for each other one (it ignores them)."""
        known = {key: value for key, value in raw.items() if key in DEPLOYMENT_FIELDS}
        for key in raw.keys() - known.keys():
            self.ignored((*where, key))
        pool = known.get("work_pool")
        if isinstance(pool, dict):
            known["work_pool"] = {key: value for key, value in pool.items() if key in WORK_POOL_FIELDS}
            for key in pool.keys() - WORK_POOL_FIELDS:
                self.ignored((*where, "work_pool", key))
        return known

    def ignored(self, path: tuple[str | int, ...]) -> None:
        key = str(path[-1])
        reason = f" ({IGNORED_BECAUSE[key]})" if key in IGNORED_BECAUSE else ""
        self.note(path, f"{key} is not a prefect.yaml field: prefect deploy ignores it, and so does prefect-provider{reason}")

    def legacy_schedule(self, where: tuple[str | int, ...], raw: dict[str, Any]) -> tuple[str | int, ...] | None:
        """The legacy `schedule:` becomes a one-item `schedules:`; where the schedules stand in the
        file (None after an error)."""
        legacy = raw.pop("schedule", None)
        if legacy and "schedules" in raw:
            message = "both schedule and schedules are given (prefect deploy refuses this): use only schedules"
            self.errors.append(ConfigError(message, self.lines.locate((*where, "schedule")), _dotted((*where, "schedule"))))
            return None
        if legacy and isinstance(legacy, dict):
            raw["schedules"] = legacy
            return (*where, "schedule")
        return (*where, "schedules")

    def pull_steps(self, where: tuple[str | int, ...], raw: dict[str, Any]) -> tuple[list[Any] | None, tuple[str | int, ...]]:
        """The pull steps as prefect deploy takes them, before any templating: the deployment's own,
        else the file's; `pull: []` means none; None when prefect deploy generates its default."""
        own_present = "pull" in raw
        own, top = raw.pop("pull", None), self.document.get("pull")
        if (own if own_present else top) == []:
            return [], (*where, "pull")
        if _steps(own):
            return _steps(own), (*where, "pull")
        if _steps(top):
            return _steps(top), ("pull",)
        return None, (*where, "pull")

    def templated(self, where: tuple[str | int, ...], raw: dict[str, Any], schedules_origin: tuple[str | int, ...]) -> dict[str, Any]:
        """The deployment's fields templated as prefect deploy templates them: `{{ $ENV }}` (and, as
        in prefect, a lone `{{ NAME }}` that names an environment variable) everywhere, then step
        outputs everywhere but in a trigger's parameters and in `{{ ctx.* }}`."""
        env = Templater(self.environ, self.environ, remove_notset=False)
        config = env.apply(raw, where)
        for dropped in env.missing:
            if isinstance(dropped.path[-1], int):
                self.note(dropped.path, f"{dropped.full_match} is dropped from this list: prefect deploy drops a list "
                          "item that is only a template before it applies step outputs")
        schedules = config.pop("schedules", None)
        triggers = config.pop("triggers", None)
        steps = {key: config.pop(key) for key in ("build", "push") if key in config}  # never run
        config = {**self.apply_step_outputs(config, where, skip_prefixes=("ctx.",)), **steps}
        if schedules is not None:
            config["schedules"] = self.apply_step_outputs(schedules, schedules_origin)
        if isinstance(triggers, list):
            config["triggers"] = [self.templated_trigger(t, (*where, "triggers", i)) for i, t in enumerate(triggers)]
        elif triggers is not None:
            config["triggers"] = triggers
        return config

    def templated_trigger(self, trigger: Any, path: tuple[str | int, ...]) -> Any:
        if not isinstance(trigger, dict):
            return trigger
        trigger = dict(trigger)
        parameters = trigger.pop("parameters", None)  # for the run: `{{ event.* }}` is resolved then
        trigger = self.apply_step_outputs(trigger, path)
        if parameters is not None:
            trigger["parameters"] = parameters
        return trigger

    def apply_step_outputs(self, value: Any, path: tuple[str | int, ...], skip_prefixes: tuple[str, ...] = ()) -> Any:
        templater = Templater(self.step_values, self.environ, remove_notset=self.strict, skip_prefixes=skip_prefixes)
        value = templater.apply(value, path)
        if self.strict:
            for missing in templater.missing:
                self.errors.append(self.missing_output(missing))
            for unset in templater.unset_env:
                self.note(unset.path, f"{unset.full_match}: environment variable {unset.name[1:]} is not set, "
                          "so it is written as an empty string (as prefect deploy does)")
        return value

    def missing_output(self, missing: Missing) -> ConfigError:
        step, dot, _ = missing.name.partition(".")
        flag = f"{FLAG} {missing.name}=VALUE" if dot else f"{FLAG} STEP_ID.{missing.name}=VALUE"
        if dot and step not in self.step_ids():
            message = (
                f"{missing.full_match} has no value: no build or push step of this file has the id {step!r}, so "
                f"prefect deploy would drop it; supply it with {flag}, or write {{{{ ctx.{missing.name} }}}} for a "
                "value of the flow run"
            )
        else:
            message = (
                f"{missing.full_match} has no value: it is the output of a build or push step, which prefect-provider "
                f"does not run; supply it with {flag} (or in step_outputs: beside prefect_yaml)"
            )
        return ConfigError(message, self.lines.locate(missing.path), _dotted(missing.path))

    def step_ids(self) -> set[str]:
        """The ids of the file's build and push steps, its deployments' own included."""
        entries = self.document.get("deployments")
        sections = [self.document] + [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else [self.document]
        return {_step_name(step) for section in sections for key in ("build", "push") for step in _steps(section.get(key)) or []}

    def templated_pull(self, pull: list[Any] | None, origin: tuple[str | int, ...], entry: _Entry,
                       config: dict[str, Any]) -> list[Any]:
        """Pull steps take step outputs and set environment variables; the rest waits for run time."""
        if pull is None:
            return self.default_pull(entry, config)
        return Templater(self.step_values, self.environ, remove_notset=False).apply(pull, origin)

    def default_pull(self, entry: _Entry, config: dict[str, Any]) -> list[Any]:
        """The pull step prefect deploy generates when none is given (run from the prefect.yaml's
        directory, as `prefect deploy` is): where a Docker image keeps the code, else here."""
        build = _steps(config.get("build")) or _steps(self.document.get("build")) or []  # as _generate_default_pull_action
        docker = next((s[BUILD_DOCKER_IMAGE] for s in build if isinstance(s, dict) and s.get(BUILD_DOCKER_IMAGE)), None)
        here = self.base_dir.absolute().resolve()
        if docker is not None:
            if docker.get("dockerfile") != "auto":
                return []
            directory = f"/opt/prefect/{here.name}"
        elif ((config.get("work_pool") or {}).get("job_variables") or {}).get("image"):
            directory = "/opt/prefect"
        else:
            directory = str(here)
        self.note(entry.where, f"has no pull steps: prefect deploy would generate {SET_WORKING_DIRECTORY} "
                  f"to {directory}, and so does prefect-provider")
        return [{SET_WORKING_DIRECTORY: {"directory": directory}}]

    def flow(self, where: tuple[str | int, ...], config: dict[str, Any]) -> FlowInfo | None:
        """The flow as prefect deploy loads it (None after an error)."""
        entrypoint = config.get("entrypoint")
        if not isinstance(entrypoint, str) or not entrypoint:
            message = "a deployment needs an entrypoint (prefect deploy refuses one without)"
            self.errors.append(ConfigError(message, self.lines.locate(where), _dotted(where)))
            return None
        origin = (*where, "entrypoint")
        if entrypoint not in self.flows:
            try:
                self.flows[entrypoint] = read_flow(entrypoint, self.base_dir, flow_python=self.flow_python)
            except FlowSourceError as exc:
                self.flows[entrypoint] = exc
        flow = self.flows[entrypoint]
        if isinstance(flow, FlowSourceError):
            flow_name = config.get("flow_name")
            file_missing = not (self.base_dir / entrypoint.rpartition(":")[0]).is_file()
            if isinstance(flow_name, str) and flow_name and file_missing:
                self.note(origin, f"{flow}: the flow is named {flow_name!r} as flow_name says, with Prefect's "
                          "defaults for the rest (prefect deploy would fail here)")
                return FlowInfo(flow_name, version=None, description=None, parameter_schema={})
            self.errors.append(ConfigError(f"{flow} (prefect deploy loads the flow from it)", self.lines.locate(origin),
                                           _dotted(origin)))
            return None
        for note in flow.notes:
            self.note(origin, note)
        return flow

    def work_pool(self, entry: _Entry, pool: Any) -> bool:
        """{name, work_queue_name, job_variables} become work_pool, work_queue and job_variables."""
        if not isinstance(pool, dict) or not pool.get("name"):
            message = "a deployment needs a work pool: work_pool: {name: POOL} (prefect deploy refuses one without)"
            self.errors.append(entry.error(message, "work_pool") if pool is not None else
                               ConfigError(message, self.lines.locate(entry.where), _dotted(entry.where)))
            return False
        for key, value in pool.items():
            if value is not None:
                entry.take(POOL_FIELDS[key], value, "work_pool", key)
        return True

    def schedules(self, entry: _Entry, schedules: Any, origin: tuple[str | int, ...]) -> None:
        """`schedules` (or the legacy `schedule`, already made a list of one)."""
        if isinstance(schedules, dict):
            schedules = [schedules]
        if not schedules:
            return
        for index, item in enumerate(schedules if isinstance(schedules, list) else []):
            if isinstance(item, dict) and item.pop("replaces", None) is not None:
                self.note((*entry.where, "schedules", index, "replaces"),
                          "replaces is ignored: prefect-provider matches schedules by slug (or position) and updates them in place")
        entry.spec["schedules"] = schedules
        legacy = origin[-1] == "schedule"
        self.map((*entry.target, "schedules", *((0,) if legacy else ())), origin)

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
        return _steps(raw[key] if key in raw else self.document.get(key)) or []

    # --- lines and notes -------------------------------------------------------------------

    def map(self, target: tuple[str | int, ...], origin: tuple[str | int, ...]) -> None:
        """Give the spec path `target` (and everything under it) the lines of `origin` in the file."""
        heads = [origin[:2]] if len(origin) >= 2 else [head for head in self.lines_under if head[:1] == origin]
        for head in heads:
            for path, line in self.lines_under.get(head, ()):
                if path[: len(origin)] == origin:
                    self.source.lines[(*target, *path[len(origin):])] = line

    def note(self, path: tuple[str | int, ...], message: str) -> None:
        self.notes.append(f"{self.lines.locate(path)}: {_dotted(path)}: {message}")

    def warnings(self, display: str) -> list[str]:
        notes = list(dict.fromkeys(self.notes))
        if self.skipped_steps:
            names = sorted({name for steps in self.skipped_steps.values() for name in steps})
            notes.append(
                f"{display}: build and push steps are not run by prefect-provider ({', '.join(names)}): "
                f"their outputs come from {FLAG} STEP_ID.KEY=VALUE or step_outputs:"
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


def _steps(section: Any) -> list[Any] | None:
    """A build, push or pull section as a list of steps (one step may be written as a mapping)."""
    if isinstance(section, dict):
        return [section] if section else []
    return section if isinstance(section, list) else None


def _step_name(step: Any) -> str:
    """A step is `{function: {id: ..., ...}}`: its id, else its function."""
    if isinstance(step, dict) and len(step) == 1:
        function, body = next(iter(step.items()))
        if isinstance(body, dict) and isinstance(body.get("id"), str):
            return body["id"]
        return str(function)
    return "?"
