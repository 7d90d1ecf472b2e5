"""variables: a named JSON value with tags."""

from __future__ import annotations

from typing import Any

from pydantic import Field, JsonValue

from resources.base import ApplyContext, LiveObject, ResourceKind, Spec, list_named
from resources.names import VARIABLE_NAME


class VariableSpec(Spec):
    value: JsonValue = Field(description="Any JSON value (string, number, boolean, list, mapping, null).")
    tags: list[str] = Field(default_factory=list)


class Variables(ResourceKind):
    kind = "variables"
    spec = VariableSpec
    renamable = True

    def check_name(self, name: str) -> None:
        if not VARIABLE_NAME.match(name):
            raise ValueError("variable names may only contain lowercase letters, numbers, dashes and underscores")

    def desired(self, name: str, spec: VariableSpec, defaults) -> dict[str, Any]:
        return {"value": spec.value, "tags": sorted(set(spec.tags))}

    def list(self, client, names: set[str] | None) -> list[LiveObject]:
        return [
            LiveObject(
                id=variable["id"],
                name=variable["name"],
                attributes={"value": variable.get("value"), "tags": sorted(set(variable.get("tags") or []))},
            )
            for variable in list_named(client, "/variables/filter", "variables", names)
        ]

    def create(self, client, name: str, attributes: dict[str, Any], ctx: ApplyContext) -> str:
        return client.post("/variables/", {"name": name, **attributes})["id"]

    def update(self, client, obj_id: str, name: str, attributes: dict[str, Any], before: dict[str, Any], ctx: ApplyContext) -> None:
        client.patch(f"/variables/{obj_id}", attributes)  # by id: only the managed variable

    def rename(self, client, obj_id: str, new_name: str, attributes: dict[str, Any], ctx: ApplyContext) -> None:
        client.patch(f"/variables/{obj_id}", {"name": new_name})

    def delete(self, client, obj_id: str, name: str) -> None:
        client.delete(f"/variables/{obj_id}")
