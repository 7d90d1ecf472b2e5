"""automations: a trigger, and the actions to run when it fires (or resolves).

Triggers and actions are pydantic discriminated unions on `type`, one model per type the
open-source server knows, plus the Prefect Cloud features the Terraform provider also accepts
(`metric` triggers; `declare-incident`, `send-email-notification` and the schedule actions),
marked with `cloud_feature`, so a misspelled type or field is a validation error.
Actions name what they act on as the configuration does (`deployment: FLOW/NAME`,
`work_pool: POOL`, `work_queue: POOL/QUEUE`, `automation: NAME`, `block: TYPE_SLUG/NAME`, and a
deployment's `schedule: SLUG`): that makes them dependencies, and the ids are resolved at apply
time (a schedule's through its deployment's schedules).
Live automations hold ids; `name_references` turns them back into names through state, so both
sides of a diff read the same. An id that names nothing in state stays an id, and differs.

The API allows several automations with one name: the managed one is the one whose id state
records, and others with its name are left alone (the plan notes them).

Deployment triggers become automations too (`DeploymentTriggerSpec`), made as `prefect deploy`
makes them: owned by their deployment (`owner_resource`), so deleting the deployment or running
`prefect deploy` replaces them. Such an automation is identified by its owner and name, not by
its id, which `prefect deploy` changes each time; its `owner` attribute is the deployment's name.
Other kinds reuse: `Trigger` and `Action` (the models), `automation_attributes` (canonical
attributes from models), `automation_from_api` and `name_automation_references` (the live
side), and `automation_payload` (the API body).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PositiveInt,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from provider.errors import NotFound, PlanError
from resources.base import Address, ApplyContext, Known, LiveObject, ResourceKind, ServerDefaults, Spec, name_filter
from resources.names import split_pair

# --- building blocks --------------------------------------------------------------------------


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _seconds(minimum: float = 0) -> Any:
    """A duration: seconds, or an ISO 8601 duration such as PT5M. Kept as seconds, like the API."""
    return Annotated[
        timedelta,
        Field(ge=timedelta(seconds=minimum)),
        PlainSerializer(lambda value: value.total_seconds(), return_type=float),
        WithJsonSchema({"anyOf": [{"type": "number", "minimum": minimum}, {"type": "string", "format": "duration"}]}),
    ]


Seconds = _seconds()
ResourceSpecification = dict[str, Union[str, list[str]]]  # label -> value(s), `*` wildcards allowed


def _name_of_form(identity: str) -> Any:
    def check(name: str) -> str:
        try:
            split_pair(name, identity)
        except ValueError as exc:
            raise PydanticCustomError("name_form", str(exc)) from None
        return name

    return AfterValidator(check)


DeploymentName = Annotated[str, _name_of_form("FLOW/NAME")]
WorkQueueName = Annotated[str, _name_of_form("POOL/QUEUE")]
BlockName = Annotated[str, _name_of_form("TYPE_SLUG/NAME")]


# --- triggers ---------------------------------------------------------------------------------


class EventTrigger(Model):
    """Fires on the presence (Reactive) or absence (Proactive) of events."""

    type: Literal["event"] = "event"
    match: ResourceSpecification = Field(default_factory=dict, description="Labels of the resources to match.")
    match_related: ResourceSpecification | list[ResourceSpecification] = Field(
        default_factory=dict, description="Labels of related resources to match."
    )
    after: list[str] = Field(default_factory=list, description="Events that must be seen first.")
    expect: list[str] = Field(default_factory=list, description="Events expected; trailing `*` wildcards allowed.")
    for_each: list[str] = Field(default_factory=list, description="Evaluate separately per value of these labels.")
    posture: Literal["Reactive", "Proactive"] = "Reactive"
    threshold: int = 1
    within: Seconds = Field(default=timedelta(0), validate_default=True)

    @field_validator("within")
    @classmethod
    def _proactive_within(cls, within: timedelta, info: ValidationInfo) -> timedelta:
        # As the server does: a Proactive trigger looks at least 10 seconds back.
        if info.data.get("posture") == "Proactive":
            if within == timedelta(0):
                return timedelta(seconds=10)
            if within < timedelta(seconds=10):
                raise PydanticCustomError("proactive_within", "must be at least 10 seconds for a Proactive trigger")
        return within


class MetricQuery(Model):
    name: Literal["lateness", "duration", "successes"]
    threshold: float
    operator: Literal["<", "<=", ">", ">="]
    range: _seconds(300) = Field(default=timedelta(seconds=300), description="Lookback, at least 300 seconds.")
    firing_for: _seconds(300) = Field(
        default=timedelta(seconds=300), description="How long the query must breach before firing, at least 300 seconds."
    )


class MetricTrigger(Model):
    """Fires on a metric query (Prefect Cloud only)."""

    cloud_feature: ClassVar[str] = "metric triggers"
    type: Literal["metric"] = "metric"
    match: ResourceSpecification = Field(default_factory=dict)
    match_related: ResourceSpecification | list[ResourceSpecification] = Field(default_factory=dict)
    posture: Literal["Metric"] = "Metric"
    metric: MetricQuery


class CompoundTrigger(Model):
    """Fires when `require` of its triggers (a number, `any` or `all`) fired within `within`."""

    type: Literal["compound"] = "compound"
    triggers: list[Trigger] = Field(min_length=1)
    require: PositiveInt | Literal["any", "all"]
    within: Seconds | None = None

    @field_validator("require")
    @classmethod
    def _at_most_all(cls, require: int | str, info: ValidationInfo) -> int | str:
        count = len(info.data.get("triggers") or [])
        if isinstance(require, int) and count and require > count:
            raise PydanticCustomError("require_too_many", f"requires {require} of only {count} triggers")
        return require


class SequenceTrigger(Model):
    """Fires when its triggers fired in order within `within`."""

    type: Literal["sequence"] = "sequence"
    triggers: list[Trigger] = Field(min_length=1)
    within: Seconds | None = None


Trigger = Annotated[Union[EventTrigger, MetricTrigger, CompoundTrigger, SequenceTrigger], Field(discriminator="type")]
CompoundTrigger.model_rebuild()
SequenceTrigger.model_rebuild()
TRIGGER_TYPES: dict[str, type[Model]] = {
    model.model_fields["type"].default: model for model in (EventTrigger, MetricTrigger, CompoundTrigger, SequenceTrigger)
}
EVENT_SETS = ("after", "expect", "for_each")  # sets on the server: order carries no meaning


# --- actions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    field: str  # the action field naming the object, as the configuration does
    kind: str  # the object's resource kind
    id_field: str  # the API field holding its id


REFERENCES = (
    Reference("deployment", "deployments", "deployment_id"),
    Reference("work_pool", "work_pools", "work_pool_id"),
    Reference("work_queue", "work_queues", "work_queue_id"),
    Reference("automation", "automations", "automation_id"),
    Reference("block", "blocks", "block_document_id"),
)
REFERENCE_BY_FIELD = {ref.field: ref for ref in REFERENCES}
# A deployment's schedule is named by its slug, which is unique only within the deployment.
SCHEDULE_FIELD, SCHEDULE_ID_FIELD = "schedule", "schedule_id"


class DoNothing(Model):
    type: Literal["do-nothing"] = "do-nothing"


class TargetedAction(Model):
    """An action on a named object, or (`source: inferred`) on the one of the triggering event."""

    target: ClassVar[str]  # the field naming the object
    source: Literal["selected", "inferred"] = "selected"

    @model_validator(mode="after")
    def _target_given_when_selected(self) -> TargetedAction:
        named = getattr(self, self.target) is not None
        if self.source == "selected" and not named:
            what = self.target.replace("_", " ")
            raise PydanticCustomError(
                "target_missing", f"{self.target} is required (or source: inferred, for the {what} of the triggering event)"
            )
        if self.source == "inferred" and named:
            raise PydanticCustomError("target_not_allowed", f"{self.target} is not allowed with source: inferred")
        return self


class RunDeployment(TargetedAction):
    target = "deployment"
    type: Literal["run-deployment"] = "run-deployment"
    deployment: DeploymentName | None = Field(default=None, description="FLOW/NAME of a declared deployment.")
    parameters: dict[str, Any] | None = Field(default=None, description="None: the deployment's defaults.")
    job_variables: dict[str, Any] | None = None
    schedule_after: Seconds = timedelta(0)


class PauseDeployment(TargetedAction):
    target = "deployment"
    type: Literal["pause-deployment"] = "pause-deployment"
    deployment: DeploymentName | None = None


class ResumeDeployment(TargetedAction):
    target = "deployment"
    type: Literal["resume-deployment"] = "resume-deployment"
    deployment: DeploymentName | None = None


class PauseWorkPool(TargetedAction):
    target = "work_pool"
    type: Literal["pause-work-pool"] = "pause-work-pool"
    work_pool: str | None = None


class ResumeWorkPool(TargetedAction):
    target = "work_pool"
    type: Literal["resume-work-pool"] = "resume-work-pool"
    work_pool: str | None = None


class PauseWorkQueue(TargetedAction):
    target = "work_queue"
    type: Literal["pause-work-queue"] = "pause-work-queue"
    work_queue: WorkQueueName | None = None


class ResumeWorkQueue(TargetedAction):
    target = "work_queue"
    type: Literal["resume-work-queue"] = "resume-work-queue"
    work_queue: WorkQueueName | None = None


class PauseAutomation(TargetedAction):
    target = "automation"
    type: Literal["pause-automation"] = "pause-automation"
    automation: str | None = None


class ResumeAutomation(TargetedAction):
    target = "automation"
    type: Literal["resume-automation"] = "resume-automation"
    automation: str | None = None


class SendNotification(Model):
    type: Literal["send-notification"] = "send-notification"
    block: BlockName = Field(description="TYPE_SLUG/NAME of a declared notification block.")
    subject: str = "Prefect automated notification"
    body: str


class CallWebhook(Model):
    type: Literal["call-webhook"] = "call-webhook"
    block: BlockName = Field(description="TYPE_SLUG/NAME of a declared webhook block.")
    payload: str = Field(default="", description="A (Jinja-templated) body to send.")


class CancelFlowRun(Model):
    type: Literal["cancel-flow-run"] = "cancel-flow-run"


class SuspendFlowRun(Model):
    type: Literal["suspend-flow-run"] = "suspend-flow-run"


class ResumeFlowRun(Model):
    type: Literal["resume-flow-run"] = "resume-flow-run"


class DeleteFlowRun(Model):
    type: Literal["delete-flow-run"] = "delete-flow-run"


class DeclareIncident(Model):
    """Declares an incident for the triggering event (Prefect Cloud only)."""

    cloud_feature: ClassVar[str] = "declare-incident actions"
    type: Literal["declare-incident"] = "declare-incident"


class SendEmailNotification(Model):
    """Emails the addresses (Prefect Cloud only). Cloud makes the block that sends it, so its
    `block_document_id` is the server's and is never compared."""

    cloud_feature: ClassVar[str] = "send-email-notification actions"
    type: Literal["send-email-notification"] = "send-email-notification"
    emails: list[str] = Field(min_length=1, description="Addresses to send it to.")
    subject: str = "Prefect automated notification"
    body: str


class ScheduleAction(Model):
    """An action on one schedule of a declared deployment (Prefect Cloud only)."""

    deployment: DeploymentName = Field(description="FLOW/NAME of a declared deployment.")
    schedule: str = Field(min_length=1, description="The slug of one of that deployment's schedules.")


class PauseSchedule(ScheduleAction):
    cloud_feature: ClassVar[str] = "pause-schedule-for-flow-run actions"
    type: Literal["pause-schedule-for-flow-run"] = "pause-schedule-for-flow-run"


class ResumeSchedule(ScheduleAction):
    cloud_feature: ClassVar[str] = "resume-schedule-for-flow-run actions"
    type: Literal["resume-schedule-for-flow-run"] = "resume-schedule-for-flow-run"


class ChangeFlowRunState(Model):
    type: Literal["change-flow-run-state"] = "change-flow-run-state"
    name: str | None = None
    state: Literal["SCHEDULED", "PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "CRASHED", "PAUSED", "CANCELLING"]
    message: str | None = None
    force: bool = False


ACTION_MODELS = (
    DoNothing, RunDeployment, PauseDeployment, ResumeDeployment, CancelFlowRun, DeleteFlowRun,
    ChangeFlowRunState, PauseWorkQueue, ResumeWorkQueue, SendNotification, CallWebhook,
    PauseAutomation, ResumeAutomation, SuspendFlowRun, ResumeFlowRun, PauseWorkPool, ResumeWorkPool,
    DeclareIncident, SendEmailNotification, PauseSchedule, ResumeSchedule,
)  # fmt: skip
Action = Annotated[Union[ACTION_MODELS], Field(discriminator="type")]  # type: ignore[valid-type]
ACTION_TYPES: dict[str, type[Model]] = {model.model_fields["type"].default: model for model in ACTION_MODELS}
ACTION_LISTS = ("actions", "actions_on_trigger", "actions_on_resolve")


# --- canonical attributes (both sides of a diff) -----------------------------------------------


def _canonical_trigger(trigger: dict[str, Any]) -> dict[str, Any]:
    """The fields a trigger's model declares (no server-assigned ids), event sets sorted."""
    model = TRIGGER_TYPES.get(trigger.get("type"))
    if model is None:
        return {k: v for k, v in trigger.items() if k != "id"}
    canonical = {name: trigger.get(name) for name in model.model_fields}
    for name in EVENT_SETS:
        if name in canonical:
            canonical[name] = sorted(set(canonical[name] or []))
    if "triggers" in canonical:
        canonical["triggers"] = [_canonical_trigger(t) for t in canonical["triggers"] or []]
    return canonical


def _canonical_action(action: dict[str, Any]) -> dict[str, Any]:
    """The fields an action's model declares, `type` first; an API action's ids under the
    field that names the object in the configuration."""
    model = ACTION_TYPES.get(action.get("type"))
    if model is None:
        return dict(action)
    ids = {ref.field: action[ref.id_field] for ref in REFERENCES if ref.id_field in action}
    if SCHEDULE_ID_FIELD in action:
        ids[SCHEDULE_FIELD] = action[SCHEDULE_ID_FIELD]
    fields = ["type", *(name for name in model.model_fields if name != "type")]
    return {name: ids[name] if name in ids else action.get(name) for name in fields}


def automation_attributes(
    trigger: BaseModel,
    actions: Iterable[BaseModel],
    *,
    description: str = "",
    enabled: bool = True,
    tags: Iterable[str] = (),
    actions_on_trigger: Iterable[BaseModel] = (),
    actions_on_resolve: Iterable[BaseModel] = (),
) -> dict[str, Any]:
    """An automation's canonical attributes from config models: what a plan compares and shows."""

    def dump(actions: Iterable[BaseModel]) -> list[dict[str, Any]]:
        return [_canonical_action(action.model_dump(mode="json")) for action in actions]

    return {
        "description": description,
        "enabled": enabled,
        "tags": sorted(set(tags)),
        "trigger": _canonical_trigger(trigger.model_dump(mode="json")),
        "actions": dump(actions),
        "actions_on_trigger": dump(actions_on_trigger),
        "actions_on_resolve": dump(actions_on_resolve),
    }


def automation_from_api(automation: dict[str, Any]) -> dict[str, Any]:
    """An automation read from the API, as canonical attributes; actions still hold ids."""
    return {
        "description": automation.get("description") or "",
        "enabled": automation.get("enabled", True),
        "tags": sorted(set(automation.get("tags") or [])),
        "trigger": _canonical_trigger(automation["trigger"]),
        **{name: [_canonical_action(a) for a in automation.get(name) or []] for name in ACTION_LISTS},
    }


def name_automation_references(attributes: dict[str, Any], addresses: Mapping[str, Address]) -> None:
    """Replace the ids in live attributes' actions with the names of managed objects."""
    for name in ACTION_LISTS:
        for action in attributes.get(name) or []:
            for ref in REFERENCES:
                address = addresses.get(action.get(ref.field))
                if address is not None and address.kind == ref.kind:
                    action[ref.field] = address.name


def name_schedules(client, attributes: dict[str, Any], slugs: dict[str, dict[str, str]] | None = None) -> None:
    """Replace the schedule ids in live attributes' actions (read before `name_references`, so
    `deployment` still holds an id) with the slugs of their deployments' schedules; an id that
    names no schedule of the deployment stays an id, and differs. `slugs` (deployment id ->
    schedule id -> slug) keeps the schedules read, one request per deployment, across calls."""
    slugs = {} if slugs is None else slugs
    for name in ACTION_LISTS:
        for action in attributes.get(name) or []:
            deployment_id = action.get("deployment")
            if not action.get(SCHEDULE_FIELD) or not deployment_id:
                continue
            if deployment_id not in slugs:
                slugs[deployment_id] = {s["id"]: s.get("slug") for s in _schedules(client, deployment_id)}
            action[SCHEDULE_FIELD] = slugs[deployment_id].get(action[SCHEDULE_FIELD]) or action[SCHEDULE_FIELD]


def schedule_id_of(client) -> Callable[[str, str], str | None]:
    """(deployment id, schedule slug) -> the schedule's id (None: no such schedule), read from
    the server when asked."""

    def find(deployment_id: str, slug: str) -> str | None:
        return next((s["id"] for s in _schedules(client, deployment_id) if s.get("slug") == slug), None)

    return find


def _schedules(client, deployment_id: str) -> list[dict[str, Any]]:
    try:
        return client.get(f"/deployments/{deployment_id}/schedules")
    except NotFound:
        return []


def automation_references(attributes: dict[str, Any]) -> list[Address]:
    """The objects an automation's actions name, in order, without repeats."""
    found: dict[Address, None] = {}
    for name in ACTION_LISTS:
        for action in attributes.get(name) or []:
            for ref in REFERENCES:
                if action.get(ref.field):
                    found[Address(ref.kind, action[ref.field])] = None
    return list(found)


def automation_payload(
    name: str,
    attributes: dict[str, Any],
    id_of: Callable[[Address], str],
    *,
    schedule_id: Callable[[str, str], str | None],
    owner_resource: str | None = None,
) -> dict[str, Any]:
    """The body of POST /automations/ (with `owner_resource`) or PUT /automations/{id}.

    `id_of` gives the server id of a named object (usually `ApplyContext.id_of`), `schedule_id`
    that of a deployment's schedule by (deployment id, slug) (see `schedule_id_of`).
    """

    def with_ids(action: dict[str, Any]) -> dict[str, Any]:
        body = {}
        for key, value in action.items():
            ref = REFERENCE_BY_FIELD.get(key)
            if key == SCHEDULE_FIELD:
                found = schedule_id(id_of(Address("deployments", action["deployment"])), value)
                if found is None:
                    raise PlanError(f"deployments.{action['deployment']} has no schedule with slug {value!r}")
                body[SCHEDULE_ID_FIELD] = found
            elif ref is None:
                body[key] = value
            else:
                body[ref.id_field] = id_of(Address(ref.kind, value)) if value else None
        return body

    body = {
        "name": name,
        "description": attributes["description"],
        "enabled": attributes["enabled"],
        "tags": attributes["tags"],
        "trigger": attributes["trigger"],
        **{key: [with_ids(action) for action in attributes[key]] for key in ACTION_LISTS},
    }
    if owner_resource:
        body["owner_resource"] = owner_resource
    return body


# --- the kind ---------------------------------------------------------------------------------


class AutomationSpec(Spec):
    description: str = ""
    enabled: bool = True
    tags: list[str] = Field(default_factory=list)
    trigger: Trigger = Field(description="When the automation fires: an event, metric, compound or sequence trigger.")
    actions: list[Action] = Field(description="What it does when it fires.")
    actions_on_trigger: list[Action] = Field(default_factory=list, description="Run when it enters the triggered state.")
    actions_on_resolve: list[Action] = Field(default_factory=list, description="Run when it resolves.")


class DeploymentTriggerSpec(AutomationSpec):
    """A deployment's trigger as the automation it becomes: owned by the deployment (never written
    in a configuration; made by `deployments`)."""

    owner: DeploymentName = Field(description="FLOW/NAME of the deployment that owns it.")


class Automations(ResourceKind):
    kind = "automations"
    spec = AutomationSpec
    refers_by_id = True
    renamable = True
    unique_names = False
    # Ownership is given when the automation is made; one made without it is made again.
    replace_fields = frozenset({"owner"})

    def references(self, name: str, spec: AutomationSpec) -> list[Address]:
        return automation_references(self._attributes(spec))

    def desired(self, name: str, spec: AutomationSpec, defaults: ServerDefaults) -> dict[str, Any]:
        return self._attributes(spec)

    @staticmethod
    def _attributes(spec: AutomationSpec) -> dict[str, Any]:
        attributes = automation_attributes(
            spec.trigger,
            spec.actions,
            description=spec.description,
            enabled=spec.enabled,
            tags=spec.tags,
            actions_on_trigger=spec.actions_on_trigger,
            actions_on_resolve=spec.actions_on_resolve,
        )
        if isinstance(spec, DeploymentTriggerSpec):
            attributes["owner"] = spec.owner
        return attributes

    def list(self, client, names: set[str] | None) -> list[LiveObject]:
        found = [LiveObject(a["id"], a["name"], automation_from_api(a)) for a in self._named(client, names)]
        slugs: dict[str, dict[str, str]] = {}
        for obj in found:
            name_schedules(client, obj.attributes, slugs)
        return found

    def read(self, client, names: set[str], known: Mapping[str, Known]) -> list[LiveObject]:
        """By name; those known as a deployment's triggers are also given their `owner` when they
        run that deployment. The server relates an automation to a deployment that owns it or that
        its run-deployment action selects (`/automations/related-to/`); a trigger does both, so its
        action says what a request per deployment would."""
        found = self.list(client, names)
        owners = {name: owner for name in names if (owner := _owner(known.get(name)))}
        if not owners:
            return found
        from resources import KINDS  # deployments import this module

        deployment_ids = {d.name: d.id for d in KINDS["deployments"].list(client, set(owners.values()))}
        for obj in found:
            owner = owners.get(obj.name)
            runs = {a.get("deployment") for a in obj.attributes["actions"] if a["type"] == "run-deployment"}
            if owner is not None and deployment_ids.get(owner) in runs:
                obj.attributes["owner"] = owner
        return found

    def same_object(self, obj: LiveObject, attributes: dict[str, Any]) -> bool:
        # `prefect deploy` deletes the automations a deployment owns and makes them again.
        return attributes.get("owner") is not None and obj.attributes.get("owner") == attributes["owner"]

    def adopt_reason(self, obj: LiveObject) -> str | None:
        owner = obj.attributes.get("owner")
        return f"a trigger of deployments.{owner}, owned by it as `prefect deploy` makes it; taken into state" if owner else None

    @staticmethod
    def _named(client, names: Iterable[str] | None) -> list[dict[str, Any]]:
        # By creation time: a stable order to page through, where names may repeat.
        body = {**name_filter("automations", names), "sort": "CREATED_DESC"}
        return client.filter("/automations/filter", body)

    def name_references(self, obj: LiveObject, addresses: Mapping[str, Address]) -> None:
        name_automation_references(obj.attributes, addresses)

    def create(self, client, name: str, attributes: dict[str, Any], ctx: ApplyContext) -> str:
        before = {a["id"] for a in self._named(client, [name])}
        owner = attributes.get("owner")
        owner_resource = f"prefect.deployment.{ctx.id_of(Address('deployments', owner))}" if owner else None
        body = automation_payload(
            name, attributes, ctx.id_of, owner_resource=owner_resource, schedule_id=schedule_id_of(client)
        )
        created = client.post("/automations/", body)
        # Names may repeat, so a create retried after its answer was lost leaves a twin behind
        # instead of failing: the same automation, made during this call. Delete it.
        for other in self._named(client, [name]):
            if other["id"] not in before | {created["id"]} and automation_from_api(other) == automation_from_api(created):
                client.delete(f"/automations/{other['id']}")
        return created["id"]

    def update(self, client, obj_id: str, name: str, attributes: dict[str, Any], before: dict[str, Any], ctx: ApplyContext) -> None:
        # The server keeps the owner across a full update.
        body = automation_payload(name, attributes, ctx.id_of, schedule_id=schedule_id_of(client))
        client.put(f"/automations/{obj_id}", body)

    def rename(self, client, obj_id: str, new_name: str, attributes: dict[str, Any], ctx: ApplyContext) -> None:
        # The name is part of the full document PUT sends.
        self.update(client, obj_id, new_name, attributes, {}, ctx)

    def delete(self, client, obj_id: str, name: str) -> None:
        client.delete(f"/automations/{obj_id}")


def _owner(known: Known | None) -> str | None:
    """The deployment a trigger automation belongs to, as configured (else as recorded). A record
    from before triggers were owned has no owner: its automation is not looked up as owned, and
    so is made again, owned."""
    if known is None:
        return None
    if known.recorded is not None and "owner" not in known.recorded:
        return None
    return (known.desired or known.recorded or {}).get("owner")


__all__ = [
    "Action",
    "Automations",
    "DeploymentTriggerSpec",
    "Trigger",
    "automation_attributes",
    "automation_from_api",
    "automation_payload",
    "automation_references",
    "name_automation_references",
    "name_schedules",
    "schedule_id_of",
]
