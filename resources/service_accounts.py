"""service_accounts: Prefect Cloud service accounts ("bots") and their API keys.

Account-scoped (`/api/accounts/ID/bots/...`, the account of the workspace URL) and Cloud-only, as
Prefect's Terraform provider has them: a name, the account role (by name; sent as its id) and the
API key's expiration. The key itself is issued by the server when the account is created or its
key rotated, and only then: it is printed once under `Outputs:` after that apply, and state keeps
only its id and a fingerprint. A key that expired or was deleted by hand is drift
(`api_key_status` is "expired" or "missing", wanted "active"); apply repairs it by rotating the
key, as does a changed expiration.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import AwareDatetime, Field

from provider.secrets import fingerprint
from resources.api_keys import ACTIVE, IssuesKeys, instant, key_status
from resources.base import ApplyContext, FieldError, Known, LiveObject, Spec, name_filter, wanted

class ServiceAccountSpec(Spec):
    account_role_name: str = Field(default="Member", description="The account role: Member, Admin, Owner or a custom role.")
    api_key_expiration: AwareDatetime | None = Field(
        default=None, description="When the API key expires (RFC 3339 with a time zone); never when unset."
    )


class ServiceAccounts(IssuesKeys):
    kind = "service_accounts"
    spec = ServiceAccountSpec
    cloud_only = True
    computed = frozenset({"api_key_id", "api_key_fingerprint"})
    issued = frozenset({"api_key"})
    renamable = True  # keeping its id and its key

    def desired(self, name: str, spec: ServiceAccountSpec, defaults) -> dict[str, Any]:
        return {
            "account_role_name": spec.account_role_name,
            "api_key_expiration": instant(spec.api_key_expiration),
            "api_key_status": ACTIVE,
        }

    def list(self, client, names: set[str] | None) -> list[LiveObject]:
        found = client.filter(client.account("/bots/filter"), name_filter("service_accounts", names))
        return [LiveObject(bot["id"], bot["name"], self._attributes(bot)) for bot in found if wanted(bot["name"], names)]

    def read(self, client, names: set[str], known: Mapping[str, Known]) -> list[LiveObject]:
        found = self.list(client, names)
        for obj in found:
            recorded = (known.get(obj.name) or Known()).recorded or {}
            if obj.attributes["api_key_fingerprint"] is None and recorded.get("api_key_id") == obj.attributes["api_key_id"]:
                obj.attributes["api_key_fingerprint"] = recorded.get("api_key_fingerprint")  # the same key as recorded
        return found

    def _attributes(self, bot: dict[str, Any]) -> dict[str, Any]:
        key = bot.get("api_key") or {}
        issued = self._issued.get(bot["id"])
        return {
            "account_role_name": bot.get("account_role_name"),
            "api_key_expiration": instant(key.get("expiration")),
            "api_key_status": key_status(key),
            "api_key_id": key.get("id"),
            "api_key_fingerprint": fingerprint(issued["id"], issued["key"]) if issued and issued["id"] == key.get("id") else None,
        }

    def create(self, client, name: str, attributes: dict[str, Any], ctx: ApplyContext) -> str:
        body = {"name": name, "account_role_id": _role_id(client, attributes["account_role_name"])}
        if attributes["api_key_expiration"]:
            body["api_key_expiration"] = attributes["api_key_expiration"]
        bot = client.post(client.account("/bots/"), body)
        self._issued[bot["id"]] = bot["api_key"]
        return bot["id"]

    def update(self, client, obj_id: str, name: str, attributes: dict[str, Any], before: dict[str, Any], ctx: ApplyContext) -> None:
        if attributes["account_role_name"] != before.get("account_role_name"):
            body = {"name": name, "account_role_id": _role_id(client, attributes["account_role_name"])}
            client.patch(client.account(f"/bots/{obj_id}"), body)
        if any(attributes[f] != before.get(f) for f in ("api_key_expiration", "api_key_status")):
            self.rotate(client, obj_id, attributes)

    def rename(self, client, obj_id: str, new_name: str, attributes: dict[str, Any], ctx: ApplyContext) -> None:
        client.patch(client.account(f"/bots/{obj_id}"), {"name": new_name})

    def delete(self, client, obj_id: str, name: str) -> None:
        client.delete(client.account(f"/bots/{obj_id}"))

    def rotate(self, client, obj_id: str, attributes: dict[str, Any], old_key_expires_in_seconds: int = 0) -> dict[str, Any]:
        """Issue the account a new API key (the old one stops working at once, or after
        `old_key_expires_in_seconds`, Terraform's attribute of that name; the expiration stays as
        `attributes` say); the attributes that change with it."""
        body: dict[str, Any] = {"api_key_expiration": attributes.get("api_key_expiration")}
        if old_key_expires_in_seconds:
            body["old_key_expires_in_seconds"] = old_key_expires_in_seconds
        bot = client.post(client.account(f"/bots/{obj_id}/rotate_api_key"), body)
        self._issued[obj_id] = bot["api_key"]
        return {**{key: value for key, value in self._attributes(bot).items() if key in self.computed}, "api_key_status": ACTIVE}

    def to_spec(self, name: str, attributes: dict[str, Any]) -> dict[str, Any]:
        spec = {"account_role_name": attributes["account_role_name"]}
        if attributes.get("api_key_expiration"):
            spec["api_key_expiration"] = attributes["api_key_expiration"]
        return spec


def _role_id(client, role_name: str) -> str:
    roles = client.post(client.account("/account_roles/filter"), {"account_roles": {"name": {"any_": [role_name]}}})
    found = [role["id"] for role in roles if role["name"] == role_name]
    if not found:
        raise FieldError(f"no account role named {role_name!r} in this account", "account_role_name")
    return found[0]
