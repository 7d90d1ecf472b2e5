"""resource_slas: the Service Level Agreements of one deployment (Prefect Cloud only).

Named as the deployment they apply to (`resource_slas: {etl/nightly: {slas: [...]}}`), which is a
dependency: created first when the configuration declares it. The whole list is one object, written
as Prefect's client (`apply_slas_for_deployment`) and Terraform's `prefect_resource_sla` write it:
one `POST /slas/apply-resource-slas/prefect.deployment.ID` with every SLA, which Cloud matches by
name (creates, updates, and deletes those left out); deleting sends an empty list.

Each SLA is one of Prefect's types, told apart by the field that defines it (or an explicit
`type`): `duration` (time to completion), `stale_after` (frequency), `within` (lateness), and
`within` with `expected_event` and `resource_match` (freshness, which Terraform's provider has and
Prefect 3.8.8's client does not). `severity` and `enabled` are sent only when set, as Prefect's
client sends them (`exclude_unset`): left unset, they are Cloud's to choose and are not compared.

Cloud keeps SLAs as automations on the deployment's resource: they are read back from
`GET /automations/related-to/prefect.deployment.ID`, where they carry a `type` and a `severity`;
one changed or deleted by hand is drift.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, JsonValue, Tag, field_validator

from provider.errors import NotFound
from resources.base import Address, ApplyContext, LiveObject, ResourceKind, Spec, read_each
from resources.deployments import IDENTITY, Deployments
from resources.names import check_object_name, split_pair

# The field that defines each SLA type, in the order they are told apart (freshness also has `within`).
DEFINING = {"freshness": "expected_event", "time_to_completion": "duration", "frequency": "stale_after", "lateness": "within"}
LEFT_TO_CLOUD = ("severity", "enabled")  # compared only when configured


class Sla(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="Unique among the deployment's SLAs; Cloud matches SLAs by it.")
    severity: Literal["minor", "low", "moderate", "high", "critical"] | None = Field(
        default=None, description="Unset: Cloud's default, not compared.")
    enabled: bool | None = Field(default=None, description="Unset: Cloud's default (enabled), not compared.")


class TimeToCompletionSla(Sla):
    type: Literal["time_to_completion"] = "time_to_completion"
    duration: int = Field(description="Seconds a flow run may take before the SLA is violated.")


class FrequencySla(Sla):
    type: Literal["frequency"] = "frequency"
    stale_after: timedelta = Field(description="Time allowed between completed flow runs (seconds, or ISO 8601 like PT1H).")


class LatenessSla(Sla):
    type: Literal["lateness"] = "lateness"
    within: timedelta = Field(description="Time a scheduled flow run may take to start (seconds, or ISO 8601).")


class FreshnessSla(Sla):
    type: Literal["freshness"] = "freshness"
    within: timedelta = Field(description="Time within which the expected event must be seen.")
    expected_event: str
    resource_match: dict[str, JsonValue] = Field(description="Labels of the resource the event must be about.")


def sla_type(value: Any) -> str | None:
    """The SLA type of a configured SLA: its `type`, else the one its defining field says."""
    if isinstance(value, Sla):
        return value.type  # type: ignore[attr-defined]
    if not isinstance(value, dict):
        return None
    if "type" in value:
        return str(value["type"])
    if "resource_match" in value:
        return "freshness"
    found = [kind for kind, key in DEFINING.items() if key in value]
    if found[:1] == ["freshness"]:
        return "freshness"
    return found[0] if len(found) == 1 else None


SlaTypes = Annotated[
    Union[
        Annotated[TimeToCompletionSla, Tag("time_to_completion")],
        Annotated[FrequencySla, Tag("frequency")],
        Annotated[LatenessSla, Tag("lateness")],
        Annotated[FreshnessSla, Tag("freshness")],
    ],
    Discriminator(
        sla_type,
        custom_error_type="sla_type",
        custom_error_message="an SLA needs exactly one of duration (time to completion), stale_after (frequency), "
        "within (lateness), within with expected_event and resource_match (freshness), or a type: "
        "time_to_completion, frequency, lateness or freshness",
    ),
]


class ResourceSlasSpec(Spec):
    slas: list[SlaTypes] = Field(
        default_factory=list,
        description="Every SLA of the deployment: those Cloud has and this list lacks are deleted.",
    )

    @field_validator("slas")
    @classmethod
    def _unique_names(cls, slas: list[Sla]) -> list[Sla]:
        names = [sla.name for sla in slas]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"SLA names must be unique per deployment (Cloud matches them by name): {', '.join(repeated)}")
        return slas


def normalized(sla: Sla) -> dict[str, Any]:
    """An SLA as compared and recorded: the fields set, durations in seconds (as Prefect sends them)."""
    fields = sla.model_dump(mode="python", exclude_none=True)
    return {key: value.total_seconds() if isinstance(value, timedelta) else value for key, value in fields.items()}


def by_name(slas: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """SLAs as attributes: by name (Cloud's key for them, so plans show each SLA's own changes)."""
    return {sla["name"]: {k: v for k, v in sla.items() if k != "name"} for sla in sorted(slas, key=lambda sla: sla["name"])}


def as_list(slas: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """SLAs as configured and sent: a list, each with its name, no `type` (its fields tell it)."""
    return [{"name": name, **{k: v for k, v in sla.items() if k != "type"}} for name, sla in slas.items()]


def payload(deployment_id: str, slas: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The body of apply-resource-slas, as Prefect's client builds it (`owner_resource` included)."""
    return [{**sla, "owner_resource": resource_id(deployment_id)} for sla in as_list(slas)]


def resource_id(deployment_id: str) -> str:
    return f"prefect.deployment.{deployment_id}"


class ResourceSlas(ResourceKind):
    kind = "resource_slas"
    spec = ResourceSlasSpec
    identity = IDENTITY
    identity_inputs = ("flow_name", "deployment_name")
    cloud_only = True
    # A deployment's SLAs go with it: a replaced deployment gets them anew.
    deleted_with_parent = True

    def check_name(self, name: str) -> None:
        flow, deployment = split_pair(name, IDENTITY)
        check_object_name(flow, "flow name")
        check_object_name(deployment, "deployment name")

    def references_if_declared(self, name: str, spec: ResourceSlasSpec) -> list[Address]:
        return [Address("deployments", name)]  # undeclared, it must exist on the server

    def desired(self, name: str, spec: ResourceSlasSpec, defaults) -> dict[str, Any]:
        return {"slas": by_name(normalized(sla) for sla in spec.slas)}

    def same_object(self, obj: LiveObject, attributes: dict[str, Any]) -> bool:
        return True  # the SLAs of the deployment of this name, whichever its id (a replaced one's too)

    def list(self, client, names: set[str] | None) -> list[LiveObject]:
        """The deployments' SLAs; a deployment without any has none to list (for `export`)."""
        return [obj for obj in self.read(client, names, {}) if obj.attributes["slas"]]

    def read(self, client, names: set[str] | None, known) -> list[LiveObject]:
        found = []
        deployments = Deployments().list(client, names)
        # One read per deployment: Cloud reads the SLAs of one resource at a time.
        reads = read_each(lambda deployment: client.get(f"/automations/related-to/{resource_id(deployment.id)}"), deployments)
        for deployment, related in zip(deployments, reads):
            slas = by_name(live_sla(a) for a in related if a.get("type") in DEFINING)
            what = known.get(deployment.name)
            if not slas and not (what and what.id):
                continue  # no SLAs and none recorded: nothing exists yet
            configured = (what.desired or what.recorded) if what else None
            found.append(LiveObject(deployment.id, deployment.name, {"slas": as_configured(slas, configured)}))
        return found

    def create(self, client, name: str, attributes: dict[str, Any], ctx: ApplyContext) -> str:
        deployment_id = self._deployment_id(client, name, ctx)
        client.post(f"/slas/apply-resource-slas/{resource_id(deployment_id)}", payload(deployment_id, attributes["slas"]))
        return deployment_id

    def update(self, client, obj_id: str, name: str, attributes: dict[str, Any], before: dict[str, Any], ctx: ApplyContext) -> None:
        client.post(f"/slas/apply-resource-slas/{resource_id(obj_id)}", payload(obj_id, attributes["slas"]))

    def delete(self, client, obj_id: str, name: str) -> None:
        try:
            client.post(f"/slas/apply-resource-slas/{resource_id(obj_id)}", [])  # as Terraform deletes them
        except NotFound:
            pass  # the deployment is gone, and its SLAs with it

    def to_spec(self, name: str, attributes: dict[str, Any]) -> dict[str, Any]:
        """SLAs as written by hand: the type is told by the defining field."""
        return {"slas": as_list(attributes["slas"])}

    @staticmethod
    def _deployment_id(client, name: str, ctx: ApplyContext) -> str:
        declared = ctx.ids.get(f"deployments.{name}")
        if declared:
            return declared
        flow, deployment = name.split("/", 1)
        try:
            return client.get(f"/deployments/name/{flow}/{deployment}")["id"]
        except NotFound:
            raise NotFound(f"resource_slas.{name}: there is no deployment {name} to apply SLAs to "
                           "(declare it, or deploy it first)") from None


def live_sla(automation: dict[str, Any]) -> dict[str, Any]:
    """An SLA as Cloud serves it (an automation with a type and a severity), normalized as configured."""
    kind = automation["type"]
    model = {"time_to_completion": TimeToCompletionSla, "frequency": FrequencySla,
             "lateness": LatenessSla, "freshness": FreshnessSla}[kind]
    fields = ["name", "type", *LEFT_TO_CLOUD, *(f for f in model.model_fields if f not in Sla.model_fields and f != "type")]
    return {f: automation.get(f) for f in fields}


def as_configured(slas: dict[str, dict[str, Any]], configured: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Live SLAs without the fields Cloud chose for the configured SLA of the same name (left unset there)."""
    if configured is None:
        return slas
    wanted = configured.get("slas") or {}
    return {name: {k: v for k, v in sla.items() if k not in LEFT_TO_CLOUD or k in wanted.get(name, sla)}
            for name, sla in slas.items()}
