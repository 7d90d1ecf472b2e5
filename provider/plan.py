"""The plan is plain data: changes with action, before, after and reason. Nothing here prints."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from provider import __version__
from resources import Address  # the package: it registers the nested kinds Address parses

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
    def from_file(cls, data: dict[str, Any]) -> Plan:
        if data.get("plan_format") != PLAN_FORMAT:
            raise ValueError("not a prefect-provider plan file (or one from an incompatible release)")
        return cls(
            changes=[Change(**c) for c in data["changes"]],
            drift=[Change(**c) for c in data.get("drift", [])],
            mode=data["mode"],
            lineage=data["lineage"],
            serial=data["serial"],
            config_dir=data.get("config_dir"),
            warnings=data.get("warnings", []),
            moved=data.get("moved", {}),
        )
