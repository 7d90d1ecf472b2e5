"""The Cloud fake's account area: the account itself, its settings and its SSO domain names.

`GET/PATCH /api/accounts/ID/`, `PATCH .../settings`, `GET/PATCH .../domains`, in the shapes of
Prefect's Terraform provider (internal/api/accounts.go): an account has no create and this fake no
delete (a DELETE is answered 405, and counted in `fake.requests` like every request). State is
`account_of(fake)` (the account as Cloud answers it) and `fake.account_domains` (what `/domains` lists);
`fake.account_writes` lists each write as (method, route, body).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import tests.cloud_fake as cloud

HANDLE = "acme"
SETTINGS = ("allow_public_workspaces", "ai_log_summaries", "managed_execution", "enforce_webhook_authentication")
DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def account_of(fake) -> dict[str, Any]:
    """The account as `GET /api/accounts/ID/` answers, seeded on first use."""
    now = cloud.timestamp()
    return fake.__dict__.setdefault("account_record", {
        "id": fake.account, "created": now, "updated": now, "name": "Acme Corp", "handle": HANDLE,
        "location": None, "link": None, "image_location": None, "auth_expiration_seconds": None,
        "settings": {"allow_public_workspaces": False, "ai_log_summaries": True, "managed_execution": True,
                     "enforce_webhook_authentication": False},
        "sso_state": "DISABLED", "features": ["AUDIT_LOGS", "SSO"], "plan_type": "ENTERPRISE",
        "run_retention_days": 30, "audit_log_retention_days": 90, "automations_limit": 50,
    })


def serve(fake, scope, method: str, parts: list[str], body: Any) -> tuple[int, Any] | None:
    if scope.level != "account" or parts not in ([], ["settings"], ["domains"]):
        return None
    account = account_of(fake)
    domains: list[dict[str, Any]] = fake.__dict__.setdefault("account_domains", [])
    if method != "GET":  # what each write sent, so tests can tell that only what changed was
        fake.__dict__.setdefault("account_writes", []).append((method, "/" + "/".join(parts), body))
    if parts == [] and method == "GET":
        return 200, account
    if parts == [] and method == "PATCH":
        problem = cloud.invalid_fields(body, {"name": cloud.is_name, "handle": _is_handle, "location": cloud.is_str_or_none,
                                         "link": cloud.is_str_or_none, "auth_expiration_seconds": _is_seconds}, required=())
        if problem:
            return 422, {"detail": problem}
        account.update(body, updated=cloud.timestamp())
        return 204, None
    if parts == ["settings"] and method == "PATCH":
        problem = cloud.invalid_fields(body, dict.fromkeys(SETTINGS, lambda v: isinstance(v, bool)), required=())
        if problem:
            return 422, {"detail": problem}
        account["settings"].update(body)
        account["updated"] = cloud.timestamp()
        return 204, None
    if parts == ["domains"] and method == "GET":
        return 200, domains
    if parts == ["domains"] and method == "PATCH":
        problem = cloud.invalid_fields(body, {"domain_names": _are_domains}, required=("domain_names",))
        if problem:
            return 422, {"detail": problem}
        now = cloud.timestamp()
        domains[:] = [{"id": str(uuid.uuid4()), "name": name, "account_id": fake.account, "created": now, "updated": now}
                      for name in body["domain_names"]]
        return 204, None
    return 405, {"detail": "Method Not Allowed"}


def _is_handle(value: Any) -> bool:
    return isinstance(value, str) and re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", value) is not None


def _is_seconds(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0)


def _are_domains(value: Any) -> bool:
    return (isinstance(value, list) and all(isinstance(v, str) and DOMAIN.match(v) for v in value)
            and len(set(value)) == len(value))
