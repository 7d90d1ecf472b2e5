"""The plan is plain data: changes with action, before, after and reason. Nothing here prints."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import from_json

from provider import __version__
from provider.errors import PlanError
from resources import CATALOG

PLAN_FORMAT = 2
# The planned value of an attribute the server fills in when it makes the object.
KNOWN_AFTER_APPLY = "(known after apply)"


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"  # delete the object, then create its replacement
    CREATE_THEN_DELETE = "create-then-delete"  # a replacement made first (lifecycle.create_before_destroy)
    DELETE = "delete"
    FORGET = "forget"  # drop from state, leave the object
    NO_OP = "no-op"

    @property
    def replaces(self) -> bool:
        return self in (Action.REPLACE, Action.CREATE_THEN_DELETE)

    @property
    def deletes(self) -> bool:
        return self in (Action.DELETE, Action.REPLACE, Action.CREATE_THEN_DELETE)

    @property
    def creates(self) -> bool:
        return self in (Action.CREATE, Action.REPLACE, Action.CREATE_THEN_DELETE)


# Terraform's action lists, for the JSON views.
TERRAFORM_ACTIONS = {
    Action.CREATE: ["create"],
    Action.UPDATE: ["update"],
    Action.REPLACE: ["delete", "create"],
    Action.CREATE_THEN_DELETE: ["create", "delete"],
    Action.DELETE: ["delete"],
    Action.FORGET: ["forget"],
    Action.NO_OP: ["no-op"],
}


class Reason(StrEnum):
    """Why a change is planned: Terraform's `action_reason` codes where it has one, ours beside them."""

    NONE = ""
    NEW = "create_because_new"
    DELETED_OUTSIDE = "create_because_deleted_outside"
    CONFIGURATION_CHANGED = "update_because_configuration_changed"
    CHANGED_OUTSIDE = "update_because_changed_outside"
    MOVED = "update_because_moved"
    REFERENCE_RENEWED = "update_because_reference_renewed"
    REPLACE_BY_REQUEST = "replace_by_request"
    REPLACE_CANNOT_UPDATE = "replace_because_cannot_update"
    REPLACE_WITH_PARENT = "replace_because_parent_replaced"
    NO_RESOURCE_CONFIG = "delete_because_no_resource_config"
    DESTROY_REQUESTED = "delete_because_destroy_requested"
    SERVER_OWNED = "server_owned"  # taken into state, or dropped from it, never created or deleted
    ALREADY_DELETED = "forget_because_already_deleted"
    ADOPTED = "import_because_adopted"
    INTERRUPTED_CREATE = "import_because_interrupted_create"
    GUARD_RECORDED = "import_because_prevent_destroy_changed"
    DEPOSED = "delete_because_deposed"


@dataclass(frozen=True)
class Change:
    address: str
    kind: str
    name: str
    action: Action
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    action_reason: Reason = Reason.NONE
    reason: str = ""  # the reason in words, with its particulars
    id: str | None = None  # the live object's id (update, replace, delete)
    depends_on: tuple[str, ...] = ()  # from the configuration: create/update order
    dependencies: tuple[str, ...] = ()  # from state: delete order
    changed: tuple[str, ...] = ()  # top-level attributes that differ
    importing: bool = False  # a server-owned or adopted object taken into state without a write
    sensitive: tuple[str, ...] = ()  # attribute paths shown as (sensitive value)
    moved_from: str | None = None  # the address it had before a `moved` entry (renamed on apply)
    prevent_destroy: bool = False  # lifecycle.prevent_destroy, recorded in state with the object
    # The deposed objects (ids) the address's record holds once this change is applied; on a change
    # with `of_deposed`, the change is to one of those (its `id`), not to the current object.
    deposed: tuple[str, ...] = ()
    of_deposed: bool = False
    # A create's attribute made from a server default, as the server gave it (ResourceKind.server_default):
    # {"attribute", "label", "value"}; plans show only what the configuration filled in.
    server_default: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        # Saved plans and callers give lists and strings: hold tuples and enums, so a Change is immutable throughout.
        for name in ("depends_on", "dependencies", "changed", "sensitive", "deposed"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "action", Action(self.action))
        object.__setattr__(self, "action_reason", Reason(self.action_reason))

    @property
    def create_before_destroy(self) -> bool:
        return self.action == Action.CREATE_THEN_DELETE

    @property
    def is_change(self) -> bool:
        return self.action != Action.NO_OP or self.importing


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
    data_ids: dict[str, str] = field(default_factory=dict)  # the objects data sources read: address -> id
    # Clear secret values by address and path: in memory only, never written with the plan.
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    @property
    def pending(self) -> list[Change]:
        return [c for c in self.changes if c.is_change]

    def count(self) -> dict[str, int]:
        add = sum(c.action.creates for c in self.changes)
        change = sum(c.action == Action.UPDATE for c in self.changes)
        destroy = sum(c.action.deletes for c in self.changes)
        imports = sum(c.importing for c in self.changes)
        forget = sum(c.action == Action.FORGET for c in self.changes)
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
            "data_ids": self.data_ids,
            "changes": [asdict(c) for c in self.changes],
            "drift": [asdict(c) for c in self.drift],
        }

    @classmethod
    def from_file(cls, data: _PlanFile) -> Plan:
        return cls(changes=data.changes, drift=data.drift, mode=data.mode, lineage=data.lineage, serial=data.serial,
                   config_dir=data.config_dir, warnings=data.warnings, moved=data.moved, data_ids=data.data_ids)


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
    data_ids: dict[str, str] = Field(default_factory=dict)
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
    for name, needed in (("before", ("update", "replace", "create-then-delete", "delete", "forget")),
                         ("after", ("create", "update", "replace", "create-then-delete"))):
        if change.action in needed and getattr(change, name) is None:
            return f"a {change.action} needs {name}"
    if change.kind not in CATALOG.kinds:
        return f"unknown kind {change.kind!r}"
    if str(CATALOG.address(change.kind, change.name)) != change.address:
        return f"address {change.address!r} is not {change.kind} {change.name!r}"
    return change.moved_from and _address_problem(change.moved_from)


def _address_problem(text: str) -> str | None:
    try:
        CATALOG.parse(text)
    except ValueError as exc:
        return str(exc)
    return None
