"""work_pools: a pool with its type, limits, base job template, (inline) queues and, for push
pools, the cloud infrastructure it runs on (`provision_infra`, see resources/infra.py)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import Field, NonNegativeInt, model_validator
from pydantic_core import PydanticCustomError

from provisioners import ProvisionInfra
from resources.base import Address, ApplyContext, Child, FieldError, LiveObject, ResourceKind, ServerDefaults, Spec, name_filter
from resources.infra import MARKER, infra_children, name_template_outputs, parse_part_address, resolved_template, template_parts, with_infra_defaults
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
    provision_infra: ProvisionInfra | None = Field(
        default=None,
        description="The pool's cloud side, made and destroyed with it (addresses work_pools.NAME.infra.PART); "
        "its outputs fill the base job template's defaults.",
    )

    @model_validator(mode="after")
    def _infra_fits_type(self) -> WorkPoolSpec:
        infra = self.provision_infra
        if infra is not None and self.type not in infra.pool_types:
            raise PydanticCustomError(
                "provision_infra_type",
                f"provision_infra with provider {infra.provider} is for work pools of type "
                f"{' or '.join(infra.pool_types)}, not {self.type}",
            )
        return self


class WorkPools(ResourceKind):
    kind = "work_pools"
    spec = WorkPoolSpec
    replace_fields = frozenset({"type"})
    refers_by_id = True  # its template holds outputs of its infra parts (ids, ARNs)

    def check_name(self, name: str) -> None:
        check_object_name(name, "work pool name")
        if name.lower().startswith("prefect"):
            raise ValueError("work pool names starting with 'prefect' are reserved by Prefect")
        if MARKER in name:
            raise ValueError(f"work pool names may not contain {MARKER!r}: it marks the addresses of provisioned infrastructure")

    def children(self, name: str, spec: WorkPoolSpec) -> list[Child]:
        queues = [
            Child("work_queues", f"{name}/{queue}", queue_spec, ("queues", queue))
            for queue, queue_spec in spec.queues.items()
        ]
        infra = infra_children(name, spec.provision_infra, spec.lifecycle) if spec.provision_infra else []
        return queues + infra

    def references(self, name: str, spec: WorkPoolSpec) -> list[Address]:
        if spec.provision_infra is None:
            return []
        return [parse_part_address(address) for address in template_parts(name, spec.provision_infra)]

    def desired(self, name: str, spec: WorkPoolSpec, defaults: ServerDefaults) -> dict[str, Any]:
        template = spec.base_job_template
        if template is None:
            template = defaults.base_job_template(spec.type)
        if spec.provision_infra is not None:
            try:
                spec.provision_infra.check()
            except FieldError as exc:
                raise FieldError(str(exc), "provision_infra", *exc.path) from None
            template = with_infra_defaults(template, name, spec.provision_infra)
        return {
            "type": spec.type,
            "description": spec.description,
            "paused": spec.paused,
            "concurrency_limit": spec.concurrency_limit,
            "base_job_template": template,
        }

    def server_default(self, name: str, spec: WorkPoolSpec, defaults: ServerDefaults) -> dict[str, Any] | None:
        # An omitted template is the server's default for the type, which provision_infra fills.
        if spec.base_job_template is not None or not (template := defaults.base_job_template(spec.type)):
            return None
        worker_type = spec.type.split(":", 1)[0]
        return {"attribute": "base_job_template", "label": f"server default `{worker_type}` template", "value": template}

    def list(self, client, names: set[str] | None) -> list[LiveObject]:
        body = name_filter("work_pools", names)
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

    def name_references(self, obj: LiveObject, addresses: Mapping[str, Address]) -> None:
        name_template_outputs(obj.attributes["base_job_template"], obj.name, addresses)

    @staticmethod
    def payload(attributes: dict[str, Any], ctx: ApplyContext) -> dict[str, Any]:
        return {
            "description": attributes["description"],
            "is_paused": attributes["paused"],
            "concurrency_limit": attributes["concurrency_limit"],
            "base_job_template": resolved_template(attributes["base_job_template"], ctx),
        }

    def externalize(self, name: str, spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        template = spec.get("base_job_template")
        if not template:
            return spec, {}
        path = f"templates/{name}.json"
        return {**spec, "base_job_template": f'${{file("{path}")}}'}, {path: json.dumps(template, indent=2) + "\n"}

    def create(self, client, name: str, attributes: dict[str, Any], ctx: ApplyContext) -> str:
        body = {"name": name, "type": attributes["type"], **self.payload(attributes, ctx)}
        return client.post("/work_pools/", body)["id"]

    def update(self, client, obj_id: str, name: str, attributes: dict[str, Any], before: dict[str, Any], ctx: ApplyContext) -> None:
        client.patch(f"/work_pools/{name}", self.payload(attributes, ctx))

    def delete(self, client, obj_id: str, name: str) -> None:
        client.delete(f"/work_pools/{name}")
