"""The plan is plain data: changes with action, before, after and reason. Nothing here prints."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import from_json

from provider import __version__
from provider.errors import PlanError
from resources import KINDS, Address  # the package: it registers the nested kinds Address parses

PLAN_FORMAT = 1
# The planned value of an attribute the server fills in when it makes the object.
KNOWN_AFTER_APPLY = "(known after apply)"

# Terraform's action lists, for the JSON views.
TERRAFORM_ACTIONS = {
    "create": ["create"],
    "update": ["update"],
    "replace": ["delete", "create"],
    "delete": ["delete"],
    "forget": ["forget"],
    "no-op": ["no-op"],
}


@dataclass
class Change:
    address: str
    action: str  # create | update | replace | delete | forget | no-op
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str = ""
    id: str | None = None  # the live object's id (update, replace, delete)
    depends_on: list[str] = field(default_factory=list)  # from the configuration: create/update order
    dependencies: list[str] = field(default_factory=list)  # from state: delete order
    changed: list[str] = field(default_factory=list)  # top-level attributes that differ
    importing: bool = False  # a server-owned object taken into state without a write
    sensitive: list[str] = field(default_factory=list)  # attribute paths shown as (sensitive value)
    moved_from: str | None = None  # the address it had before a `moved` entry (renamed on apply)
    create_before_destroy: bool = False  # a replacement that creates the new object first
    prevent_destroy: bool = False  # lifecycle.prevent_destroy, recorded in state with the object
    # A create's attribute made from a server default, as the server gave it (ResourceKind.server_default):
    # {"attribute", "label", "value"}; plans show only what the configuration filled in.
    server_default: dict[str, Any] | None = None

    @property
    def kind(self) -> str:
        return Address.parse(self.address).kind

    @property
    def name(self) -> str:
        return Address.parse(self.address).name

    @property
    def is_change(self) -> bool:
        return self.action != "no-op" or self.importing


@dataclass
class Plan:
    changes: list[Change]
    drift: list[Change] = field(default_factory=list)
    mode: str = "normal"  # normal | destroy | refresh-only
    lineage: str | None = None  # of the state the plan was made against (None: there was none)
    serial: int | None = None
    config_dir: str | None = None
    warnings: list[str] = field(default_factory=list)
    moved: dict[str, str] = field(default_factory=dict)  # state renames: new address -> old address
    # Clear secret values by address and path: in memory only, never written with the plan.
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    @property
    def pending(self) -> list[Change]:
        return [c for c in self.changes if c.is_change]

    def count(self) -> dict[str, int]:
        add = sum(c.action in ("create", "replace") for c in self.changes)
        change = sum(c.action == "update" for c in self.changes)
        destroy = sum(c.action in ("delete", "replace") for c in self.changes)
        imports = sum(c.importing for c in self.changes)
        forget = sum(c.action == "forget" for c in self.changes)
        return {"add": add, "change": change, "destroy": destroy, "import": imports, "forget": forget}

    @property
    def has_changes(self) -> bool:
        if self.mode == "refresh-only":
            return bool(self.drift)
        return bool(self.pending or self.moved)

    # --- saved plans -------------------------------------------------------------------------

    def to_file(self) -> dict[str, Any]:
        return {
            "plan_format": PLAN_FORMAT,
            "prefect_provider_version": __version__,
            "mode": self.mode,
            "lineage": self.lineage,
            "serial": self.serial,
            "config_dir": self.config_dir,
            "warnings": self.warnings,
            "moved": self.moved,
            "changes": [asdict(c) for c in self.changes],
            "drift": [asdict(c) for c in self.drift],
        }

    @classmethod
    def from_file(cls, data: _PlanFile) -> Plan:
        return cls(changes=data.changes, drift=data.drift, mode=data.mode, lineage=data.lineage, serial=data.serial,
                   config_dir=data.config_dir, warnings=data.warnings, moved=data.moved)


class _PlanFile(BaseModel):
    """The shape of a saved plan (Plan.to_file); changes are checked against Change itself."""

    model_config = ConfigDict(extra="forbid", strict=True)

    plan_format: int
    prefect_provider_version: str
    mode: Literal["normal", "destroy", "refresh-only"]
    lineage: str | None
    serial: int | None
    config_dir: str | None = None
    warnings: list[str] = Field(default_factory=list)
    moved: dict[str, str] = Field(default_factory=dict)
    changes: list[Change]
    drift: list[Change] = Field(default_factory=list)


def load_saved_plan(path: Path) -> Plan:
    """The plan saved in `path` by plan --out; PlanError naming the file and the fault."""
    from provider.state import json_type, validation_problems

    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise PlanError(f"cannot read plan file {path}: {exc.strerror or exc}") from None
    try:
        data = from_json(raw)
    except ValueError as exc:
        raise PlanError(f"plan file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PlanError(f"plan file {path} is not a saved plan: expected a JSON object, found {json_type(data)}")
    if "plan_format" not in data:
        raise PlanError(f"plan file {path} is not a prefect-provider plan (it has no plan_format)")
    if data["plan_format"] != PLAN_FORMAT or isinstance(data["plan_format"], bool):
        raise PlanError(f"plan file {path} has plan format {data['plan_format']!r}, but this release reads "
                        f"format {PLAN_FORMAT}: make the plan again with this release")
    try:
        parsed = _PlanFile.model_validate_json(raw)
    except ValidationError as exc:
        raise PlanError(f"plan file {path} is malformed: {validation_problems(exc)}") from None
    problems = [f"{where}: {problem}" for where, change in _located(parsed) if (problem := _change_problem(change))]
    problems += [f"moved[{json.dumps(new)}]: {problem}" for new, old in parsed.moved.items()
                 if (problem := _address_problem(new) or _address_problem(old))]
    if problems:
        raise PlanError(f"plan file {path} is malformed: {'; '.join(problems[:5])}")
    return Plan.from_file(parsed)


def _located(parsed: _PlanFile) -> list[tuple[str, Change]]:
    return [(f"changes[{i}]", c) for i, c in enumerate(parsed.changes)] + [(f"drift[{i}]", c) for i, c in enumerate(parsed.drift)]


def _change_problem(change: Change) -> str | None:
    if change.action not in TERRAFORM_ACTIONS:
        return f"action {change.action!r} is not one of {', '.join(TERRAFORM_ACTIONS)}"
    for name, needed in (("before", ("update", "replace", "delete", "forget")), ("after", ("create", "update", "replace"))):
        if change.action in needed and getattr(change, name) is None:
            return f"a {change.action} needs {name}"
    return _address_problem(change.address) or (change.moved_from and _address_problem(change.moved_from))


def _address_problem(text: str) -> str | None:
    try:
        kind = Address.parse(text).kind
    except ValueError as exc:
        return str(exc)
    return None if kind in KINDS else f"{text!r}: unknown kind {kind!r}"
