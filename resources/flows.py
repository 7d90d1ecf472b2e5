"""flows (FLOW_NAME): a flow's tags and labels, for flows a configuration declares.

A flow that is not declared is still made on demand by its deployments and never deleted (see
resources/deployments.py); a declared one is created first, and its deployments depend on it.

Deleting a flow on the server deletes every deployment and flow run of it (foreign keys with ON
DELETE CASCADE). Terraform's `prefect_flow` deletes it regardless; here a flow is deleted only
when no deployment of it is left on the server: the deployments this configuration manages are
deleted before it (they depend on it), and any other deployment stops the delete with an error
naming it, so removing a flow never takes away a deployment nobody asked to remove. Its flow runs
go with it, as they do in Prefect (`lifecycle.prevent_destroy` guards a flow whose history matters).

Tags are updated in place (Terraform re-creates the flow for them). Labels are only taken when a
flow is created (the API's update takes tags alone), so changing them re-creates the flow, which
the rule above refuses while it has deployments.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, JsonValue, field_validator
from pydantic_core import PydanticCustomError

from provider.errors import ProviderError
from resources.base import ApplyContext, LiveObject, ResourceKind, Spec, list_named
from resources.names import check_object_name


class FlowSpec(Spec):
    tags: list[str] = Field(default_factory=list, description="The flow's tags; updated in place.")
    labels: dict[str, JsonValue] = Field(
        default_factory=dict,
        description="Key-value labels (strings, numbers, booleans); set when the flow is created, so a change re-creates it.",
    )

    @field_validator("labels")
    @classmethod
    def _scalar_values(cls, labels: dict[str, Any]) -> dict[str, Any]:
        for key, value in labels.items():
            if value is None or isinstance(value, (dict, list)):
                raise PydanticCustomError("label_value", "label {key}: a value is a string, number or boolean", {"key": key})
        return labels


class Flows(ResourceKind):
    kind = "flows"
    spec = FlowSpec
    identity = "FLOW_NAME"
    replace_fields = frozenset({"labels"})

    def check_name(self, name: str) -> None:
        check_object_name(name, "flow name")

    def desired(self, name: str, spec: FlowSpec, defaults) -> dict[str, Any]:
        return {"tags": sorted(set(spec.tags)), "labels": spec.labels}

    def list(self, client, names: set[str] | None) -> list[LiveObject]:
        return [
            LiveObject(
                id=flow["id"],
                name=flow["name"],
                attributes={"tags": sorted(set(flow.get("tags") or [])), "labels": flow.get("labels") or {}},
            )
            for flow in list_named(client, "/flows/filter", "flows", names)
        ]

    def create(self, client, name: str, attributes: dict[str, Any], ctx: ApplyContext) -> str:
        # POST /flows/ returns an existing flow of that name unchanged; the plan only creates a
        # flow it found missing, and the tags are written again in case one appeared meanwhile.
        obj_id = client.post("/flows/", {"name": name, **attributes})["id"]
        client.patch(f"/flows/{obj_id}", {"tags": attributes["tags"]})
        return obj_id

    def update(self, client, obj_id: str, name: str, attributes: dict[str, Any], before: dict[str, Any], ctx: ApplyContext) -> None:
        client.patch(f"/flows/{obj_id}", {"tags": attributes["tags"]})

    def delete(self, client, obj_id: str, name: str) -> None:
        body = {"flows": {"id": {"any_": [obj_id]}}, "limit": 10}
        left = sorted(f"{name}/{deployment['name']}" for deployment in client.post("/deployments/filter", body))
        if left:
            raise ProviderError(
                f"not deleted: the server would delete its deployments with it "
                f"({', '.join(left)}{', ...' if len(left) == 10 else ''}); delete or move those first, "
                f"or stop managing the flow with `prefect-provider state rm flows.{name}`"
            )
        client.delete(f"/flows/{obj_id}")
