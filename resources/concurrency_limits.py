"""concurrency_limits: global concurrency limits (API v2), by name.

Only what a user sets is managed: `limit`, `active` and `slot_decay_per_second`; the slot
counters are the server's running state. Limits named `tag:...` (task tag limits) and
`deployment:...` (deployment concurrency) are made and kept by the server for those objects:
they cannot be declared and are never listed.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, NonNegativeFloat, NonNegativeInt

from resources.base import ApplyContext, LiveObject, ResourceKind, Spec, wanted
from resources.names import check_object_name

SERVER_PREFIXES = ("tag:", "deployment:")


class ConcurrencyLimitSpec(Spec):
    limit: NonNegativeInt = Field(description="How many slots may be taken at once.")
    active: bool = Field(default=True, description="An inactive limit does not limit.")
    slot_decay_per_second: NonNegativeFloat = Field(
        default=0.0, description="Slots freed per second, which makes the limit a rate limit; 0: none."
    )


class ConcurrencyLimits(ResourceKind):
    kind = "concurrency_limits"
    spec = ConcurrencyLimitSpec
    renamable = True

    def check_name(self, name: str) -> None:
        check_object_name(name, "concurrency limit name")
        if name.startswith(SERVER_PREFIXES):
            raise ValueError(
                "names starting with 'tag:' or 'deployment:' belong to the limits the server keeps "
                "for task tags and deployments; declare a tag's limit as task_run_concurrency_limits.TAG, a "
                "deployment's as its concurrency_limit"
            )

    def desired(self, name: str, spec: ConcurrencyLimitSpec, defaults) -> dict[str, Any]:
        return {"limit": spec.limit, "active": spec.active, "slot_decay_per_second": spec.slot_decay_per_second}

    def list(self, client, names: set[str] | None) -> list[LiveObject]:
        # The filter endpoint takes no criteria: it pages through every limit.
        return [
            LiveObject(
                id=limit["id"],
                name=limit["name"],
                attributes={
                    "limit": limit["limit"],
                    "active": limit["active"],
                    "slot_decay_per_second": limit.get("slot_decay_per_second") or 0.0,
                },
            )
            for limit in client.filter("/v2/concurrency_limits/filter")
            if wanted(limit["name"], names) and not limit["name"].startswith(SERVER_PREFIXES)
        ]

    def create(self, client, name: str, attributes: dict[str, Any], ctx: ApplyContext) -> str:
        return client.post("/v2/concurrency_limits/", {"name": name, **attributes})["id"]

    def update(self, client, obj_id: str, name: str, attributes: dict[str, Any], before: dict[str, Any], ctx: ApplyContext) -> None:
        # By id: a name could read as an id to the server.
        client.patch(f"/v2/concurrency_limits/{obj_id}", attributes)

    def rename(self, client, obj_id: str, new_name: str, attributes: dict[str, Any], ctx: ApplyContext) -> None:
        client.patch(f"/v2/concurrency_limits/{obj_id}", {"name": new_name})

    def delete(self, client, obj_id: str, name: str) -> None:
        client.delete(f"/v2/concurrency_limits/{obj_id}")
