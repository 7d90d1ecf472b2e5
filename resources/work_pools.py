"""work_pools: a pool with its type, limits, base job template and (inline) queues."""

from __future__ import annotations

from typing import Any

from pydantic import Field, NonNegativeInt

from resources.base import ApplyContext, Child, LiveObject, ResourceKind, ServerDefaults, Spec
from resources.names import check_object_name
from resources.work_queues import QueueSpec


class WorkPoolSpec(Spec):
    type: str = Field(description="Work pool type, e.g. process, docker, kubernetes, ecs:push.")
    description: str | None = None
    paused: bool = False
    concurrency_limit: NonNegativeInt | None = None
    base_job_template: dict[str, Any] | None = Field(
        default=None,
        description="Inline mapping or ${file(\"template.json\")}; the server's default for the type when omitted.",
    )
    queues: dict[str, QueueSpec] = Field(
        default_factory=dict, description="Queues of this pool, by name (addresses work_queues.POOL/QUEUE)."
    )


class WorkPools(ResourceKind):
    kind = "work_pools"
    spec = WorkPoolSpec
    replace_fields = frozenset({"type"})

    def check_name(self, name: str) -> None:
        check_object_name(name, "work pool name")
        if name.lower().startswith("prefect"):
            raise ValueError("work pool names starting with 'prefect' are reserved by Prefect")

    def children(self, name: str, spec: WorkPoolSpec) -> list[Child]:
        return [
            Child("work_queues", f"{name}/{queue}", queue_spec, ("queues", queue))
            for queue, queue_spec in spec.queues.items()
        ]

    def desired(self, name: str, spec: WorkPoolSpec, defaults: ServerDefaults) -> dict[str, Any]:
        template = spec.base_job_template
        if template is None:
            template = defaults.base_job_template(spec.type)
        return {
            "type": spec.type,
            "description": spec.description,
            "paused": spec.paused,
            "concurrency_limit": spec.concurrency_limit,
            "base_job_template": template,
        }

    def list(self, client, names: set[str]) -> list[LiveObject]:
        body = {"work_pools": {"name": {"any_": sorted(names)}}}
        return [self.from_api(pool) for pool in client.filter("/work_pools/filter", body)]

    @staticmethod
    def from_api(pool: dict[str, Any]) -> LiveObject:
        return LiveObject(
            id=pool["id"],
            name=pool["name"],
            attributes={
                "type": pool["type"],
                "description": pool.get("description") or None,
                "paused": pool.get("is_paused", False),
                "concurrency_limit": pool.get("concurrency_limit"),
                "base_job_template": pool.get("base_job_template") or {},
            },
        )

    @staticmethod
    def payload(attributes: dict[str, Any]) -> dict[str, Any]:
        return {
            "description": attributes["description"],
            "is_paused": attributes["paused"],
            "concurrency_limit": attributes["concurrency_limit"],
            "base_job_template": attributes["base_job_template"],
        }

    def create(self, client, name: str, attributes: dict[str, Any], ctx: ApplyContext) -> str:
        body = {"name": name, "type": attributes["type"], **self.payload(attributes)}
        return client.post("/work_pools/", body)["id"]

    def update(self, client, obj_id: str, name: str, attributes: dict[str, Any], before: dict[str, Any], ctx: ApplyContext) -> None:
        client.patch(f"/work_pools/{name}", self.payload(attributes))

    def delete(self, client, obj_id: str, name: str) -> None:
        client.delete(f"/work_pools/{name}")
