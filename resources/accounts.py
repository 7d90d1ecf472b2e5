"""accounts: the Prefect Cloud account the API URL belongs to, its profile, settings and SSO domains.

Terraform's `prefect_account` (resource and data source). Cloud-only and account-scoped: the
account is `/api/accounts/ID/`, the account of the workspace URL. Named by its handle, the
account's unique slug (`acme`; the name, "Acme Corp", is a display name that may change and holds
spaces), so a configuration can only declare the account it is connected to: any other handle is
an error at its line. No API creates or deletes an account, so it is the server's (`server_owned`):
adopted, never created; no longer declared, it is forgotten, never deleted (Terraform's Delete
would DELETE the account).

Writes are Terraform's three calls, each only when its part changed: `PATCH /` (the fields that
changed among name, location, link, auth_expiration_seconds), `PATCH /settings` (all four, as
Terraform sends them) and `PATCH /domains`.
Every field is optional: unset, it is whatever Cloud has and never compared, so a bare
`accounts: {acme: {}}` adopts the account and plans no change. Settings are attributes one by one
(`ai_log_summaries`, ...), so each is compared only when set. The read-only facts Cloud keeps
(`plan_type`, `features`, retention days, ...) are computed attributes: in state and readable as
`${data.accounts.acme.plan_type}`, never compared.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from provider.errors import ProviderError
from resources.base import ApplyContext, FieldError, LiveObject, ResourceKind, Spec, wanted

PROFILE = ("name", "location", "link", "auth_expiration_seconds")
SETTINGS = ("allow_public_workspaces", "ai_log_summaries", "managed_execution", "enforce_webhook_authentication")
READ_ONLY = ("image_location", "sso_state", "features", "plan_type", "run_retention_days", "audit_log_retention_days",
             "automations_limit")


class AccountSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allow_public_workspaces: StrictBool | None = Field(default=None, description="Whether the account allows public workspaces.")
    ai_log_summaries: StrictBool | None = Field(default=None, description="Whether AI summarizes logs.")
    managed_execution: StrictBool | None = Field(default=None, description="Whether managed work pools may be used.")
    enforce_webhook_authentication: StrictBool | None = Field(default=None, description="Whether webhooks must authenticate.")


class AccountSpec(Spec):
    name: str | None = Field(default=None, min_length=1, description="The account's display name.")
    location: str | None = Field(default=None, description="A physical location, e.g. Washington, D.C.")
    link: str | None = Field(default=None, description="An external URL, e.g. https://prefect.io/")
    auth_expiration_seconds: int | None = Field(default=None, gt=0, description="How long a sign-in lasts.")
    settings: AccountSettings | None = None
    domain_names: list[str] | None = Field(default=None, description="The domains whose people sign in with the account's SSO.")

    @field_validator("domain_names")
    @classmethod
    def _distinct(cls, names: list[str] | None) -> list[str] | None:
        if names is not None and len({n.lower() for n in names}) != len(names):
            raise ValueError("a domain name is listed twice")
        return names


class Accounts(ResourceKind):
    kind = "accounts"
    spec = AccountSpec
    identity = "HANDLE"
    identity_inputs = ("handle",)
    cloud_only = True
    server_filled = frozenset({*PROFILE, *SETTINGS, "domain_names"})  # unset: whatever Cloud has
    computed = frozenset(READ_ONLY)

    def server_owned(self, name: str) -> bool:
        return True

    def exportable(self, name: str) -> bool:
        return True  # the account is worth declaring, unlike the server's defaults

    def desired(self, name: str, spec: AccountSpec, defaults) -> dict[str, Any]:
        if defaults.client is not None:
            connected = defaults.client.get(defaults.client.account(""))["handle"]
            if name != connected:
                raise FieldError(f"the API URL's account is {connected!r}: a configuration manages only the account it "
                                 "is connected to (no API creates an account)")
        settings = spec.settings or AccountSettings()
        return {**{f: getattr(spec, f) for f in PROFILE}, **{f: getattr(settings, f) for f in SETTINGS},
                "domain_names": sorted(n.lower() for n in spec.domain_names) if spec.domain_names is not None else None}

    def list(self, client, names: set[str] | None) -> list[LiveObject]:
        account = client.get(client.account(""))
        if not wanted(account["handle"], names):
            return []
        settings = account.get("settings") or {}
        domains = client.get(client.account("/domains"))
        return [LiveObject(account["id"], account["handle"], {
            **{f: account.get(f) for f in PROFILE}, **{f: settings.get(f) for f in SETTINGS},
            "domain_names": sorted(d["name"].lower() for d in domains), **{f: account.get(f) for f in READ_ONLY}})]

    def create(self, client, name: str, attributes: dict[str, Any], ctx: ApplyContext) -> str:
        raise ProviderError(f"accounts.{name}: no API creates a Prefect Cloud account; connect to a workspace of it")

    def update(self, client, obj_id: str, name: str, attributes: dict[str, Any], before: dict[str, Any], ctx: ApplyContext) -> None:
        def changed(fields):
            return {f: attributes[f] for f in fields if attributes.get(f) is not None and attributes[f] != before.get(f)}

        if profile := changed(PROFILE):
            client.patch(client.account(""), profile)
        if changed(SETTINGS):
            # All four, as Terraform sends them: the unset ones as Cloud has them now.
            settings = {f: attributes[f] if attributes.get(f) is not None else before.get(f) for f in SETTINGS}
            client.patch(client.account("/settings"), {f: value for f, value in settings.items() if value is not None})
        if changed(["domain_names"]):
            client.patch(client.account("/domains"), {"domain_names": attributes["domain_names"]})

    def to_spec(self, name: str, attributes: dict[str, Any]) -> dict[str, Any]:
        spec: dict[str, Any] = {f: attributes[f] for f in PROFILE if attributes.get(f) is not None}
        spec["settings"] = {f: attributes[f] for f in SETTINGS if attributes.get(f) is not None}
        spec["domain_names"] = attributes.get("domain_names") or []
        return spec

    def outputs(self, name: str, obj_id: str, attributes: dict[str, Any]) -> dict[str, Any]:
        return {}  # the read-only facts are in state and `data:`; nothing is shown once
