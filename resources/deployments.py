"""deployments (FLOW_NAME/DEPLOYMENT_NAME): a flow's deployment with its schedules and pull steps.

The flow is created on demand (`POST /flows/` returns the flow when it exists) and never deleted.
Schedules are identified by their slug and updated in place, one route call each, so their ids
(and the runs they scheduled) survive every apply. Only a deployment read from a prefect.yaml may
have schedules without a slug (as prefect deploy allows): those are matched by their position
among the deployment's slugless schedules (`#1`, `#2`, ... in order of creation on the server).

A deployment read from a prefect.yaml has its `{{ prefect.variables.* }}` and
`{{ prefect.blocks.* }}` templates resolved at plan time, as prefect deploy resolves them (not in
pull steps, which Prefect resolves at run time); a value taken from a secret is sensitive.

A deployment may name a declared flow (`flows.FLOW_NAME`), which it then depends on; a storage
block (`storage_block: TYPE_SLUG/NAME`, sent as `storage_document_id`) and a shared global
concurrency limit (`global_concurrency_limit: NAME`, sent as `global_concurrency_limit_id`), both
declared resources, looked up by id when applied and read back by name. The server deletes a
deployment with its storage block, so a replaced block replaces it; it deletes the global limit
a deployment refers to along with the deployment, and when it is sent
`concurrency_limit` (even null) it rewrites or deletes that limit: a shared limit is therefore
detached before the deployment is deleted, and `concurrency_limit` is never sent while one is
attached.

Each trigger becomes a child resource `automations.NAME` (the trigger's `name`, else
`DEPLOYMENT__automation_N` as `prefect deploy` names it) whose one action runs this deployment,
owned by the deployment as `prefect deploy` makes it (see resources/automations.py), so either
tool finds the other's.

Attributes are normalized so that what the server fills in compares equal to an unset field:
an unset timezone is UTC, an interval without `anchor_date` is anchored at 2020-01-01 00:00 in
its timezone (the anchor Prefect gives an rrule without DTSTART; one read from a prefect.yaml is
anchored when applied, as prefect deploy does, and keeps whatever anchor it then has), and anchor
dates compare as instants, written in UTC.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PositiveInt,
    PrivateAttr,
    Tag,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from provider.errors import ProviderError
from provider.flow_source import FlowSourceError, read_flow
from provider.secrets import PREFIX as FINGERPRINT
from provider.templating import ServerLookups, TemplateError, resolve_server_templates
from resources.automations import DeploymentTriggerSpec, Trigger
from resources.base import (
    Address,
    ApplyContext,
    Child,
    FieldError,
    LiveObject,
    ResourceKind,
    Spec,
    name_filter,
    wanted,
)
from resources.blocks import IDENTITY as BLOCK_IDENTITY
from resources.blocks import Blocks
from resources.names import check_object_name, split_pair
from resources.work_queues import DEFAULT_QUEUE

IDENTITY = "FLOW_NAME/DEPLOYMENT_NAME"
# The global limit the server keeps for a deployment's own `concurrency_limit` is named after it.
OWN_LIMIT_PREFIX = "deployment:"
SCHEDULE_TYPES = ("cron", "interval", "rrule")
DEFAULT_ANCHOR = dt.datetime(2020, 1, 1)  # Prefect's own anchor for an rrule without DTSTART
# A prefect.yaml interval without anchor_date: anchored at the time of the apply, as prefect deploy
# anchors it at the time of the deploy; whichever anchor the server then has is the one wanted.
ANCHORED_WHEN_APPLIED = "(anchored when applied)"
# What prefect deploy creates a deployment without description with; updating it, it sends null.
NO_DESCRIPTION = "None"
HIGH_FREQUENCY_RRULE = re.compile(r"FREQ=(SECONDLY|MINUTELY)", re.IGNORECASE)
# The validation context of a deployment read from a prefect.yaml (provider/prefect_yaml.py).
PREFECT_YAML_SOURCE = "prefect.yaml"
# Attributes whose variable and block templates prefect deploy resolves (pull steps it keeps).
SERVER_TEMPLATED = ("description", "version", "tags", "parameters", "job_variables", "schedules")
# Fields sent to the API under the same name as the attribute.
PLAIN_FIELDS = (
    "entrypoint", "path", "description", "version", "tags", "parameters", "enforce_parameter_schema",
    "parameter_openapi_schema", "job_variables", "pull_steps", "paused", "concurrency_limit",
    "concurrency_options",
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- schedules --------------------------------------------------------------------------------


@cache
def known_timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


class ScheduleSpec(Strict):
    slug: str | None = Field(default=None, description="Identifies the schedule, so it is updated in place.")
    timezone: str | None = Field(default=None, description="IANA timezone; UTC when unset.")
    active: bool = True
    parameters: dict[str, Any] = Field(default_factory=dict, description="Parameter overrides for this schedule's runs.")
    max_scheduled_runs: PositiveInt | None = None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        # Without tz data on this machine, leave the check to the server.
        if value is not None and known_timezones() and value not in known_timezones():
            raise ValueError(f"unknown timezone {value!r} (use an IANA name such as America/Chicago)")
        return value

    @model_validator(mode="after")
    def _has_slug(self, info: ValidationInfo) -> ScheduleSpec:
        if not self.slug and not from_prefect_yaml(info):
            raise PydanticCustomError(
                "schedule_slug", "this schedule has no slug: add `slug: NAME` so the schedule can be updated in place"
            )
        return self

    def zone(self) -> str:
        return self.timezone or "UTC"


class CronScheduleSpec(ScheduleSpec):
    cron: str
    day_or: bool = Field(default=True, description="Days of month and of week combine with OR (cron's rule).")


class IntervalScheduleSpec(ScheduleSpec):
    interval: dt.timedelta = Field(description="Seconds, or an ISO 8601 duration such as PT10M.")
    anchor_date: dt.datetime | None = Field(
        default=None, description="Runs fall on anchor_date + k * interval; 2020-01-01 00:00 in the timezone when unset."
    )

    @field_validator("interval")
    @classmethod
    def _positive(cls, value: dt.timedelta) -> dt.timedelta:
        if value.total_seconds() <= 0:
            raise ValueError("interval must be positive")
        return value


class RRuleScheduleSpec(ScheduleSpec):
    rrule: str

    @field_validator("rrule")
    @classmethod
    def _anchored(cls, value: str) -> str:
        # The server anchors these at the current time, which no configuration could match.
        if "DTSTART" not in value.upper() and HIGH_FREQUENCY_RRULE.search(value) and "COUNT=" not in value.upper():
            raise ValueError("a minutely or secondly rrule without COUNT needs an explicit DTSTART line")
        return value


def schedule_type(value: Any) -> str | None:
    """The discriminator: which of cron, interval or rrule the schedule has (exactly one)."""
    if isinstance(value, ScheduleSpec):
        return _tag(next(t for t in SCHEDULE_TYPES if hasattr(value, t)))
    if not isinstance(value, dict):
        return None
    present = [t for t in SCHEDULE_TYPES if t in value]
    return _tag(present[0]) if len(present) == 1 else None


def _tag(schedule_type: str) -> str:
    # Brackets keep the tag from matching a field of the input, so error locations skip it (provider/config.py).
    return f"schedule[{schedule_type}]"


Schedule = Annotated[
    Annotated[CronScheduleSpec, Tag(_tag("cron"))]
    | Annotated[IntervalScheduleSpec, Tag(_tag("interval"))]
    | Annotated[RRuleScheduleSpec, Tag(_tag("rrule"))],
    Discriminator(
        schedule_type,
        custom_error_type="schedule_type",
        custom_error_message="a schedule needs exactly one of cron, interval or rrule",
    ),
]


# --- triggers ---------------------------------------------------------------------------------


class DeploymentTrigger(Strict):
    """A trigger that runs this deployment: Prefect's deployment trigger, written flat as in
    prefect.yaml (the trigger's own fields beside the automation's and the run's)."""

    name: str | None = Field(default=None, description="The automation's name; DEPLOYMENT__automation_N when unset.")
    description: str = ""
    enabled: bool = True
    parameters: dict[str, Any] | None = Field(default=None, description="For the run; the deployment's when unset.")
    job_variables: dict[str, Any] | None = None
    schedule_after: dt.timedelta = Field(default=dt.timedelta(0), ge=dt.timedelta(0))
    trigger: Trigger

    @model_validator(mode="before")
    @classmethod
    def _nest_trigger(cls, value: Any) -> Any:
        if not isinstance(value, dict) or "trigger" in value:
            return value
        own = {key: item for key, item in value.items() if key in cls.model_fields}
        trigger = {key: item for key, item in value.items() if key not in cls.model_fields}
        trigger.setdefault("type", _trigger_type(trigger))
        return {**own, "trigger": trigger}


def _trigger_type(trigger: dict[str, Any]) -> str:
    """The type Prefect infers for a deployment trigger written without one."""
    if trigger.get("posture") == "Metric":
        return "metric"
    if "triggers" in trigger:
        return "compound" if "require" in trigger else "sequence"
    return "event"


# Written flat, so its JSON Schema is an open object: the nested model would reject valid input.
FlatDeploymentTrigger = Annotated[
    DeploymentTrigger,
    WithJsonSchema({
        "type": "object",
        "description": "A trigger's fields (type: event, metric, compound or sequence; event when unset) beside "
        "name, description, enabled, parameters, job_variables and schedule_after.",
    }),
]


# --- the deployment ---------------------------------------------------------------------------


class ConcurrencyOptions(Strict):
    collision_strategy: Literal["ENQUEUE", "CANCEL_NEW"] = Field(description="What a run does when the limit is reached.")
    grace_period_seconds: int | None = Field(default=None, ge=60, le=86400)


class DeploymentSpec(Spec):
    entrypoint: str | None = Field(default=None, description="path/to/file.py:flow_function")
    path: str | None = None
    description: str | None = None
    version: str | None = None
    tags: list[str] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)
    enforce_parameter_schema: bool = True
    parameter_openapi_schema: dict[str, Any] | None = Field(
        default=None,
        description="JSON schema of the parameters; when unset, derived from the flow's signature as prefect deploy "
        "derives it (the entrypoint's file relative to the configuration directory), else an empty object schema.",
    )
    job_variables: dict[str, Any] = Field(default_factory=dict)
    work_pool: str | None = Field(default=None, description="A work pool of this configuration, by name.")
    work_queue: str | None = Field(default=None, description="A queue of that pool; its default queue when unset.")
    pull_steps: list[dict[str, Any]] = Field(
        default_factory=list, description="Prefect pull steps, kept verbatim ({{ }} templates included)."
    )
    paused: bool = False
    concurrency_limit: PositiveInt | None = Field(default=None, description="The deployment's own concurrency limit.")
    global_concurrency_limit: str | None = Field(
        default=None,
        description="A global concurrency limit of this configuration (concurrency_limits), by name, shared with "
        "other deployments; instead of concurrency_limit.",
    )
    concurrency_options: ConcurrencyOptions | None = None
    storage_block: str | None = Field(
        default=None, description=f"A block of this configuration ({BLOCK_IDENTITY}) holding the flow's code."
    )
    schedules: list[Schedule] = Field(default_factory=list)
    triggers: list[FlatDeploymentTrigger] = Field(
        default_factory=list, description="Each becomes an automation that runs this deployment (automations.NAME)."
    )

    # Read from a prefect.yaml: its variable and block templates are resolved at plan time.
    _prefect_yaml: bool = PrivateAttr(default=False)

    @field_validator("schedules")
    @classmethod
    def _unique_slugs(cls, schedules: list[ScheduleSpec]) -> list[ScheduleSpec]:
        seen: set[str] = set()
        for schedule in schedules:
            if schedule.slug is None:
                continue
            if schedule.slug in seen:
                raise PydanticCustomError(
                    "duplicate_slug", "slug '{slug}' is used by more than one schedule", {"slug": schedule.slug}
                )
            seen.add(schedule.slug)
        return schedules

    @model_validator(mode="after")
    def _source(self, info: ValidationInfo) -> DeploymentSpec:
        self._prefect_yaml = from_prefect_yaml(info)
        return self

    @model_validator(mode="after")
    def _schema_from_flow(self, info: ValidationInfo) -> DeploymentSpec:
        """Unset, the parameter schema is the flow's, when its file is found beside the configuration."""
        base_dir = (info.context or {}).get("base_dir")
        if self.parameter_openapi_schema is not None or not self.entrypoint or base_dir is None:
            return self
        file = self.entrypoint.rpartition(":")[0]
        if not file or not (Path(base_dir) / file).is_file():
            return self
        try:
            flow = read_flow(self.entrypoint, Path(base_dir), flow_python=info.context.get("flow_python"))
        except FlowSourceError as exc:
            raise ValueError(f"entrypoint: {exc}") from None
        self.parameter_openapi_schema = flow.parameter_schema
        return self

    @field_validator("storage_block")
    @classmethod
    def _block_identity(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                Blocks().check_name(value)
            except ValueError as exc:
                raise PydanticCustomError("storage_block", str(exc)) from None
        return value

    @field_validator("global_concurrency_limit")
    @classmethod
    def _one_concurrency_limit(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("concurrency_limit") is not None:
            raise PydanticCustomError(
                "one_concurrency_limit",
                "a deployment has one limit: its own concurrency_limit or a shared global_concurrency_limit, not both",
            )
        return value

    @model_validator(mode="after")
    def _queue_needs_pool(self) -> DeploymentSpec:
        if self.work_queue and not self.work_pool:
            raise ValueError("work_queue needs work_pool: a queue is named within its pool")
        return self


class Deployments(ResourceKind):
    kind = "deployments"
    spec = DeploymentSpec
    identity = IDENTITY
    identity_inputs = ("flow_name", "name")
    refers_by_id = True  # the server keeps the id of the work queue, which a replaced pool or queue changes

    def check_name(self, name: str) -> None:
        flow, deployment = split_pair(name, IDENTITY)
        check_object_name(flow, "flow name")
        check_object_name(deployment, "deployment name")

    def children(self, name: str, spec: DeploymentSpec) -> list[Child]:
        """Each trigger as an automation whose action runs this deployment, named as Prefect names it."""
        deployment = name.split("/", 1)[1]
        return [
            Child(
                "automations",
                trigger.name or f"{deployment}__automation_{index + 1}",
                trigger_automation(name, trigger),
                ("triggers", index),
            )
            for index, trigger in enumerate(spec.triggers)
        ]

    def cloud_features(self, name: str, spec: DeploymentSpec) -> list:
        return []  # its triggers are checked as the automations they become, not twice

    def references(self, name: str, spec: DeploymentSpec) -> list[Address]:
        refs = []
        if spec.work_pool:
            refs.append(Address("work_pools", spec.work_pool))
            if spec.work_queue and spec.work_queue != DEFAULT_QUEUE:
                refs.append(Address("work_queues", f"{spec.work_pool}/{spec.work_queue}"))
        if spec.storage_block:
            refs.append(Address("blocks", spec.storage_block))
        if spec.global_concurrency_limit:
            refs.append(Address("concurrency_limits", spec.global_concurrency_limit))
        return refs

    def deleted_with(self, parent: Address) -> bool:
        # The server deletes a deployment with its storage block (foreign key ON DELETE CASCADE). It
        # would with its flow too, but a flow is never deleted while it has deployments (flows.py).
        return parent.kind == "blocks"

    def references_if_declared(self, name: str, spec: DeploymentSpec) -> list[Address]:
        return [Address("flows", name.split("/", 1)[0])]  # an undeclared flow is made on demand

    def desired(self, name: str, spec: DeploymentSpec, defaults) -> dict[str, Any]:
        attributes = {
            "entrypoint": spec.entrypoint,
            "path": spec.path,
            "description": spec.description or None,
            "version": spec.version,
            "tags": list(spec.tags),
            "parameters": spec.parameters,
            "enforce_parameter_schema": spec.enforce_parameter_schema,
            "parameter_openapi_schema": parameter_schema(spec.parameter_openapi_schema),
            "job_variables": spec.job_variables,
            "work_pool": spec.work_pool,
            "work_queue": (spec.work_queue or DEFAULT_QUEUE) if spec.work_pool else None,
            "pull_steps": spec.pull_steps,
            "paused": spec.paused,
            "concurrency_limit": spec.concurrency_limit,
            "concurrency_options": spec.concurrency_options.model_dump() if spec.concurrency_options else None,
            "schedules": {
                key: desired_schedule(s, anchor_when_applied=spec._prefect_yaml)
                for key, s in zip(schedule_keys(spec.schedules), spec.schedules)
            },
        }
        # Present only when set, so state written before these fields existed shows no change.
        attributes.update(optional_references(spec.storage_block, spec.global_concurrency_limit))
        if spec._prefect_yaml:
            attributes = resolve_templates(attributes, defaults, f"{self.kind}.{name}")
        return attributes

    def sensitive_paths(self, name: str, attributes: dict[str, Any], defaults) -> list[str]:
        return defaults.secret_paths.get(f"{self.kind}.{name}", [])

    def to_spec(self, name: str, attributes: dict[str, Any]) -> dict[str, Any]:
        spec = super().to_spec(name, attributes)
        # A schedule without a slug on the server is written `slug: "#N"`: matched by position, sent without a slug.
        spec["schedules"] = [{"slug": key, **schedule} for key, schedule in attributes["schedules"].items()]
        return spec

    def read(self, client, names: set[str], known) -> list[LiveObject]:
        found = self.list(client, names)
        for obj in found:
            what = known.get(obj.name)
            wanted = (what.desired or what.recorded) if what else None
            if what and what.desired is None and what.recorded:
                # No longer configured, so which values came from a secret is known only from state.
                keep_fingerprints(obj.attributes, what.recorded)
            if wanted:
                if wanted["description"] == NO_DESCRIPTION and obj.attributes["description"] is None:
                    obj.attributes["description"] = NO_DESCRIPTION
                obj.attributes["schedules"] = {
                    key: as_wanted(schedule, wanted["schedules"].get(key)) for key, schedule in obj.attributes["schedules"].items()
                }
        return found

    def list(self, client, names: set[str] | None) -> list[LiveObject]:
        flows_wanted = deployments_wanted = None
        if names is not None:
            pairs = [name.split("/", 1) for name in names]
            flows_wanted, deployments_wanted = {f for f, _ in pairs}, {d for _, d in pairs}
        body = {**name_filter("flows", flows_wanted), **name_filter("deployments", deployments_wanted)}
        deployments = client.filter("/deployments/filter", body)
        flow_ids = sorted({d["flow_id"] for d in deployments})
        flows = client.filter("/flows/filter", {"flows": {"id": {"any_": flow_ids}}}) if flow_ids else []
        flow_names = {flow["id"]: flow["name"] for flow in flows}
        block_names = _block_names(client, {d["storage_document_id"] for d in deployments if d.get("storage_document_id")})
        found = []
        for deployment in deployments:
            name = f"{flow_names.get(deployment['flow_id'])}/{deployment['name']}"
            if wanted(name, names):
                attributes = live_attributes(deployment)
                limit = deployment.get("global_concurrency_limit") or {}
                shared = limit.get("name") if limit and not limit["name"].startswith(OWN_LIMIT_PREFIX) else None
                attributes.update(optional_references(block_names.get(deployment.get("storage_document_id")), shared))
                found.append(LiveObject(deployment["id"], name, attributes))
        return found

    def create(self, client, name: str, attributes: dict[str, Any], ctx: ApplyContext) -> str:
        flow, deployment = name.split("/", 1)
        flow_id = client.post("/flows/", {"name": flow})["id"]
        body = {"name": deployment, "flow_id": flow_id, **api_fields(attributes), **_ids_of_references(attributes, ctx)}
        if body.get("global_concurrency_limit_id"):
            del body["concurrency_limit"]  # even null, it would make the server delete the shared limit
        obj_id = client.post("/deployments/", body)["id"]
        # Through their own route: schedules given inline to POST /deployments/ lose max_scheduled_runs.
        for method, path, body in schedule_requests(obj_id, attributes["schedules"], []):
            client.request(method, path, json=body)
        return obj_id

    def update(self, client, obj_id: str, name: str, attributes: dict[str, Any], before: dict[str, Any], ctx: ApplyContext) -> None:
        # Schedules first: what cannot be done in place fails before anything is written.
        existing = client.get(f"/deployments/{obj_id}/schedules")  # fresh: their ids are needed
        requests = schedule_requests(obj_id, attributes["schedules"], existing)
        wanted = api_fields(attributes)
        previous = api_fields(before) if before else {}
        body = {key: value for key, value in wanted.items() if key not in previous or value != previous[key]}
        # Pool and queue are always named again (together: a queue name alone names a queue outside
        # any pool), so the server looks up the queue's id afresh after either was replaced.
        body.update(work_pool_name=wanted["work_pool_name"], work_queue_name=wanted["work_queue_name"])
        # Blocks and limits by their id of now, as they may have been replaced.
        references = _ids_of_references(attributes, ctx)
        body["storage_document_id"] = references["storage_document_id"]
        shared, shared_before = attributes.get("global_concurrency_limit"), before.get("global_concurrency_limit")
        if shared_before and shared_before != shared:
            # Detached first: what follows would make the server delete or rewrite it.
            client.patch(f"/deployments/{obj_id}", {"global_concurrency_limit_id": None})
        if shared:
            body.pop("concurrency_limit", None)  # never sent while a shared limit is attached
            if before.get("concurrency_limit") is not None:
                # The deployment's own limit is deleted before the shared one takes its place.
                client.patch(f"/deployments/{obj_id}", {"concurrency_limit": None})
            body["global_concurrency_limit_id"] = references["global_concurrency_limit_id"]
        client.patch(f"/deployments/{obj_id}", body)
        for method, path, schedule_body in requests:
            client.request(method, path, json=schedule_body)

    def delete(self, client, obj_id: str, name: str) -> None:
        limit = client.get(f"/deployments/{obj_id}").get("global_concurrency_limit") or {}
        if limit and not limit["name"].startswith(OWN_LIMIT_PREFIX):
            # The server deletes the limit a deployment refers to with it: a shared one is detached first.
            client.patch(f"/deployments/{obj_id}", {"global_concurrency_limit_id": None})
        client.delete(f"/deployments/{obj_id}")


def optional_references(storage_block: str | None, global_concurrency_limit: str | None) -> dict[str, str]:
    """The storage block and shared limit attributes, each only when set."""
    named = {"storage_block": storage_block, "global_concurrency_limit": global_concurrency_limit}
    return {key: value for key, value in named.items() if value is not None}


def _ids_of_references(attributes: dict[str, Any], ctx: ApplyContext) -> dict[str, str | None]:
    block, limit = attributes.get("storage_block"), attributes.get("global_concurrency_limit")
    return {
        "storage_document_id": ctx.id_of(Address("blocks", block)) if block else None,
        "global_concurrency_limit_id": ctx.id_of(Address("concurrency_limits", limit)) if limit else None,
    }


def _block_names(client, ids: set[str]) -> dict[str, str]:
    """TYPE_SLUG/NAME of each block document among `ids`, in one listing; an anonymous one (made by
    Prefect's Python client) has no name and is shown by its id."""
    if not ids:
        return {}
    body = {"block_documents": {"id": {"any_": sorted(ids)}, "is_anonymous": None}}
    names = {
        document["id"]: f"{document['block_type']['slug']}/{document['name']}"
        if not document.get("is_anonymous") else f"(anonymous block {document['id']})"
        for document in client.filter("/block_documents/filter", body)
    }
    return {block_id: names.get(block_id, f"(missing block {block_id})") for block_id in ids}


def from_prefect_yaml(info: ValidationInfo) -> bool:
    return bool(info.context) and info.context.get("source") == PREFECT_YAML_SOURCE


def resolve_templates(attributes: dict[str, Any], defaults, address: str) -> dict[str, Any]:
    """Variable and block templates resolved where prefect deploy resolves them; the paths of
    values taken from a secret are recorded for `sensitive_paths`."""
    server = ServerLookups(defaults.variable, defaults.block_document)
    resolved = dict(attributes)
    secret: set[str] = set()
    for field in SERVER_TEMPLATED:
        try:
            resolved[field], paths = resolve_server_templates(attributes[field], server, (field,))
        except TemplateError as exc:
            raise FieldError(str(exc), *_spec_path(attributes, exc.path)) from None
        # Concealment reaches into mappings only: a secret inside a list conceals the whole list.
        secret |= {".".join(str(p) for p in _mapping_prefix(path)) for path in paths}
    if secret:
        defaults.secret_paths[address] = sorted(secret)
    return resolved


def _mapping_prefix(path: tuple[str | int, ...]) -> tuple[str | int, ...]:
    for index, part in enumerate(path):
        if isinstance(part, int):
            return path[:index]
    return path


def _spec_path(attributes: dict[str, Any], path: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """An attribute path as a spec path (schedules are a mapping by key here, a list in the spec)."""
    if path[:1] == ("schedules",) and len(path) > 1:
        return ("schedules", list(attributes["schedules"]).index(path[1]), *path[2:])
    return path


def trigger_automation(name: str, trigger: DeploymentTrigger) -> DeploymentTriggerSpec:
    """The automation a deployment trigger becomes: what `as_automation` makes in Prefect, owned by
    the deployment (its `owner_resource`)."""
    run = {
        "type": "run-deployment",
        "deployment": name,
        "parameters": trigger.parameters,
        "job_variables": trigger.job_variables,
        "schedule_after": trigger.schedule_after,
    }
    return DeploymentTriggerSpec.model_validate({
        "description": trigger.description, "enabled": trigger.enabled, "trigger": trigger.trigger, "actions": [run],
        "owner": name,
    })


# --- normalization ----------------------------------------------------------------------------


def desired_schedule(schedule: ScheduleSpec, anchor_when_applied: bool = False) -> dict[str, Any]:
    if isinstance(schedule, CronScheduleSpec):
        timing: dict[str, Any] = {"cron": schedule.cron, "day_or": schedule.day_or}
    elif isinstance(schedule, IntervalScheduleSpec) and schedule.anchor_date is None and anchor_when_applied:
        timing = {"interval": _number(schedule.interval.total_seconds()), "anchor_date": ANCHORED_WHEN_APPLIED}
    elif isinstance(schedule, IntervalScheduleSpec):
        anchor = schedule.anchor_date or DEFAULT_ANCHOR
        if anchor.tzinfo is None:  # a wall-clock time in the schedule's timezone
            anchor = anchor.replace(tzinfo=_zone(schedule.zone()))
        timing = {"interval": _number(schedule.interval.total_seconds()), "anchor_date": _instant(anchor)}
    else:
        rrule = schedule.rrule
        if "DTSTART" not in rrule.upper():  # what the server would add
            rrule = f"DTSTART:{DEFAULT_ANCHOR:%Y%m%dT%H%M%S}\n{rrule}"
        timing = {"rrule": rrule}
    return {
        **timing,
        "timezone": schedule.zone(),
        "active": schedule.active,
        "parameters": schedule.parameters,
        "max_scheduled_runs": schedule.max_scheduled_runs,
    }


def live_schedule(schedule: dict[str, Any]) -> dict[str, Any]:
    timing = schedule["schedule"]
    if "cron" in timing:
        normalized: dict[str, Any] = {"cron": timing["cron"], "day_or": timing.get("day_or", True)}
    elif "interval" in timing:
        anchor = dt.datetime.fromisoformat(timing["anchor_date"])
        normalized = {"interval": _number(timing["interval"]), "anchor_date": _instant(anchor)}
    else:
        normalized = {"rrule": timing["rrule"]}
    return {
        **normalized,
        "timezone": timing.get("timezone") or "UTC",
        "active": schedule["active"],
        "parameters": schedule.get("parameters") or {},
        "max_scheduled_runs": schedule.get("max_scheduled_runs"),
    }


def keep_fingerprints(live: dict[str, Any], recorded: dict[str, Any]) -> None:
    """Where state holds a secret's fingerprint, the live value is shown as that fingerprint."""
    for key, value in recorded.items():
        if isinstance(value, dict) and isinstance(live.get(key), dict):
            keep_fingerprints(live[key], value)
        elif isinstance(value, str) and value.startswith(FINGERPRINT) and key in live:
            live[key] = value


def as_wanted(live: dict[str, Any], wanted: dict[str, Any] | None) -> dict[str, Any]:
    """A live schedule whose anchor was chosen when it was applied compares equal on its anchor."""
    if wanted and wanted.get("anchor_date") == ANCHORED_WHEN_APPLIED and "anchor_date" in live:
        return {**live, "anchor_date": ANCHORED_WHEN_APPLIED}
    return live


def parameter_schema(schema: dict[str, Any] | None) -> dict[str, Any]:
    """The server stores a missing or empty parameter schema as an empty object schema."""
    return schema or {"type": "object", "properties": {}}


def schedule_keys(schedules: list[ScheduleSpec]) -> list[str]:
    """Each schedule's slug; a slugless one (from a prefect.yaml) is `#N`, N its position among them."""
    slugless = iter(range(1, len(schedules) + 1))
    return [schedule.slug or f"#{next(slugless)}" for schedule in schedules]


def is_position(key: str) -> bool:
    return key.startswith("#")


def live_schedules(schedules: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Live schedules by slug, the slugless ones by position in order of creation (the server
    lists them by last update, which an update in place would reorder)."""
    slugless = sorted((s for s in schedules if not s.get("slug")), key=lambda s: (s["created"], s["id"]))
    keyed = {s["slug"]: s for s in schedules if s.get("slug")}
    keyed.update({f"#{index}": s for index, s in enumerate(slugless, start=1)})
    return keyed


def live_attributes(deployment: dict[str, Any]) -> dict[str, Any]:
    limit = deployment.get("global_concurrency_limit") or {}
    options = deployment.get("concurrency_options")
    return {
        "entrypoint": deployment.get("entrypoint"),
        "path": deployment.get("path"),
        "description": deployment.get("description") or None,
        "version": deployment.get("version"),
        "tags": list(deployment.get("tags") or []),
        "parameters": deployment.get("parameters") or {},
        "enforce_parameter_schema": deployment.get("enforce_parameter_schema", True),
        "parameter_openapi_schema": parameter_schema(deployment.get("parameter_openapi_schema")),
        "job_variables": deployment.get("job_variables") or {},
        "work_pool": deployment.get("work_pool_name"),
        "work_queue": deployment.get("work_queue_name") if deployment.get("work_pool_name") else None,
        "pull_steps": deployment.get("pull_steps") or [],
        "paused": deployment.get("paused", False),
        # The server keeps a deployment's own limit as a global limit named after it.
        "concurrency_limit": limit.get("limit") if str(limit.get("name", "")).startswith(OWN_LIMIT_PREFIX) else None,
        "concurrency_options": {
            "collision_strategy": options["collision_strategy"],
            "grace_period_seconds": options.get("grace_period_seconds"),
        } if options else None,
        "schedules": {key: live_schedule(s) for key, s in live_schedules(deployment.get("schedules") or []).items()},
    }


def api_fields(attributes: dict[str, Any]) -> dict[str, Any]:
    """The deployment fields of a create or update body (schedules go through their own routes)."""
    return {
        **{key: attributes[key] for key in PLAIN_FIELDS},
        "work_pool_name": attributes["work_pool"],
        "work_queue_name": attributes["work_queue"],
    }


def schedule_requests(
    obj_id: str, wanted: dict[str, dict[str, Any]], existing: list[dict[str, Any]]
) -> list[tuple[str, str, Any]]:
    """(method, path, body) that patch changed schedules, create missing ones and delete undeclared
    ones: schedules are matched by slug (slugless ones by position) and never re-created."""
    path = f"/deployments/{obj_id}/schedules"
    live = live_schedules(existing)
    requests: list[tuple[str, str, Any]] = []
    for slug, schedule in wanted.items():
        current = live.get(slug)
        if current is None or as_wanted(live_schedule(current), schedule) == schedule:
            continue
        if schedule["max_scheduled_runs"] is None and current.get("max_scheduled_runs") is not None:
            raise ProviderError(
                f"schedule {slug!r}: the Prefect API cannot unset max_scheduled_runs in place; "
                "set the value you want, or give the schedule a new slug to re-create it"
            )
        requests.append(("PATCH", f"{path}/{current['id']}", schedule_body(schedule)))
    missing = [(key, schedule_body(schedule)) for key, schedule in wanted.items() if key not in live]
    if any(not is_position(key) for key, _ in missing):
        requests.append(("POST", path, [{**body, "slug": key} for key, body in missing if not is_position(key)]))
    # One request each, so their creation times keep their order (their positions).
    requests += [("POST", path, [body]) for key, body in missing if is_position(key)]
    requests += [("DELETE", f"{path}/{schedule['id']}", None) for key, schedule in live.items() if key not in wanted]
    return requests


def schedule_body(schedule: dict[str, Any]) -> dict[str, Any]:
    timing = {key: schedule[key] for key in ("cron", "day_or", "interval", "anchor_date", "rrule") if key in schedule}
    if timing.get("anchor_date") == ANCHORED_WHEN_APPLIED:
        timing["anchor_date"] = _instant(dt.datetime.now(dt.timezone.utc))
    body = {
        "schedule": {**timing, "timezone": schedule["timezone"]},
        "active": schedule["active"],
        "parameters": schedule["parameters"],
    }
    if schedule["max_scheduled_runs"] is not None:
        body["max_scheduled_runs"] = schedule["max_scheduled_runs"]
    return body


def _zone(name: str) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except zoneinfo.ZoneInfoNotFoundError:  # no tz data on this machine: the anchor falls back to UTC
        return dt.timezone.utc


def _instant(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _number(seconds: float) -> int | float:
    return int(seconds) if float(seconds).is_integer() else float(seconds)
