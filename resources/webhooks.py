"""webhooks: Prefect Cloud webhooks, which turn HTTP requests into Prefect events.

A Prefect Cloud feature: the kind is `cloud_only`, so a configuration declaring one against an
open-source server is refused at plan time. The template is a Jinja template the server renders
for each request; it is sent and compared verbatim (a mapping is serialized to JSON once, the same
way every time). The public endpoint (`https://api.prefect.cloud/hooks/SLUG`) is server-filled:
shown after apply and in state, never compared. Rotating it (`prefect-provider webhooks rotate`)
gives the webhook a new slug and so a new endpoint.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import Field, JsonValue

from resources.base import ApplyContext, LiveObject, ResourceKind, Spec, name_filter, wanted

FIELDS = ("description", "template", "enabled", "service_account_id")


class WebhookSpec(Spec):
    description: str = ""
    template: str | dict[str, JsonValue] = Field(
        description="The event to emit per request: a Jinja template string (kept verbatim, `{{ body.x }}` "
        "included), or a mapping, which is sent as JSON."
    )
    enabled: bool = True
    service_account_id: UUID | None = Field(
        default=None, description="A service account whose API key requests must carry (Pro and Enterprise)."
    )


class Webhooks(ResourceKind):
    kind = "webhooks"
    spec = WebhookSpec
    cloud_only = True
    computed = frozenset({"endpoint"})
    renamable = True
    unique_names = False  # the managed one is the one state records; namesakes are left alone
    replace_fields = frozenset({"service_account_id"})  # as Prefect's Terraform provider has it

    def desired(self, name: str, spec: WebhookSpec, defaults) -> dict[str, Any]:
        template = spec.template if isinstance(spec.template, str) else json.dumps(spec.template, ensure_ascii=False)
        return {
            "description": spec.description,
            "template": template,
            "enabled": spec.enabled,
            "service_account_id": str(spec.service_account_id) if spec.service_account_id else None,
        }

    def list(self, client, names: set[str] | None) -> list[LiveObject]:
        found = [hook for hook in client.filter("/webhooks/filter", name_filter("webhooks", names)) if wanted(hook["name"], names)]
        return [LiveObject(hook["id"], hook["name"], self._attributes(client, hook)) for hook in found]

    @staticmethod
    def _attributes(client, hook: dict[str, Any]) -> dict[str, Any]:
        return {
            "description": hook.get("description") or "",
            "template": hook["template"],
            "enabled": hook.get("enabled", True),
            "service_account_id": hook.get("service_account_id"),
            "endpoint": endpoint(client.connection.api_url, hook["slug"]),
        }

    def create(self, client, name: str, attributes: dict[str, Any], ctx: ApplyContext) -> str:
        return client.post("/webhooks/", _body(name, attributes))["id"]

    def update(self, client, obj_id: str, name: str, attributes: dict[str, Any], before: dict[str, Any], ctx: ApplyContext) -> None:
        if [f for f in FIELDS if attributes[f] != before.get(f)] == ["enabled"]:
            client.patch(f"/webhooks/{obj_id}", {"enabled": attributes["enabled"]})  # enabling or disabling only
        else:
            client.put(f"/webhooks/{obj_id}", _body(name, attributes))

    def rename(self, client, obj_id: str, new_name: str, attributes: dict[str, Any], ctx: ApplyContext) -> None:
        client.put(f"/webhooks/{obj_id}", _body(new_name, attributes))

    def delete(self, client, obj_id: str, name: str) -> None:
        client.delete(f"/webhooks/{obj_id}")

    def rotate(self, client, obj_id: str, attributes: dict[str, Any]) -> dict[str, Any]:
        """Give the webhook a new slug (the old endpoint stops working); the attributes that change with it."""
        hook = client.post(f"/webhooks/{obj_id}/rotate")
        return {"endpoint": endpoint(client.connection.api_url, hook["slug"])}


def endpoint(api_url: str, slug: str) -> str:
    """The public URL of a webhook: `/hooks/SLUG` on the API's host (https://api.prefect.cloud/hooks/SLUG)."""
    parts = urlsplit(api_url)
    return f"{parts.scheme}://{parts.netloc}/hooks/{slug}"


def _body(name: str, attributes: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, **{f: attributes[f] for f in FIELDS}}
