"""The Cloud fake's SLA routes: `POST /slas/apply-resource-slas/{resource_id}` and the read of a
deployment's SLAs through `GET /automations/related-to/{resource_id}`.

Cloud keeps an SLA as an automation on the deployment's resource, with a `type` and a `severity`
besides the automation's fields; apply matches the given list by name (creates, updates, deletes
the rest) and answers `{created, updated, deleted}` with the SLAs themselves (as Terraform's client
decodes it). The deployment must exist (404 otherwise, checked on the upstream open-source server);
a bad SLA is a 422, as Cloud's validation gives it. `related-to` answers the upstream server's
automations of the resource followed by its SLAs.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests import cloud_fake

SEVERITIES = ("minor", "low", "moderate", "high", "critical")
# Each type's own fields and a check of each value; the type is the first one whose fields are given.
TYPES = {
    "freshness": {"within": lambda v: _number(v), "expected_event": lambda v: isinstance(v, str),
                  "resource_match": lambda v: isinstance(v, dict)},
    "time_to_completion": {"duration": lambda v: isinstance(v, int) and not isinstance(v, bool)},
    "frequency": {"stale_after": lambda v: _number(v)},
    "lateness": {"within": lambda v: _number(v)},
}
COMMON = {"name": lambda v: isinstance(v, str) and bool(v.strip()), "severity": lambda v: v in SEVERITIES,
          "enabled": lambda v: isinstance(v, bool), "owner_resource": lambda v: isinstance(v, str)}
DEPLOYMENT = "prefect.deployment."


def serve(fake, scope, method: str, parts: list[str], body: Any) -> tuple[int, Any] | None:
    if scope.level != "workspace":
        return None
    slas: dict[tuple[str, str], list[dict[str, Any]]] = fake.__dict__.setdefault("slas", {})
    if parts[:2] == ["slas", "apply-resource-slas"] and len(parts) == 3 and method == "POST":
        return _apply(fake, slas, scope.workspace, parts[2], body)
    if parts[:2] == ["automations", "related-to"] and len(parts) == 3 and method == "GET":
        upstream = httpx.get(f"{fake.upstream}/automations/related-to/{parts[2]}", timeout=30)
        if upstream.status_code != 200:
            return upstream.status_code, upstream.json()
        return 200, [*upstream.json(), *slas.get((scope.workspace, parts[2]), [])]
    return None


def _apply(fake, slas, workspace: str, resource: str, body: Any) -> tuple[int, Any]:
    if not resource.startswith(DEPLOYMENT) or not _deployment_exists(fake, resource.removeprefix(DEPLOYMENT)):
        return 404, {"detail": "Resource not found."}
    problem = _invalid(body, resource)
    if problem:
        return 422, {"detail": problem}
    fake.__dict__.setdefault("sla_bodies", {})[resource] = body  # the last list applied, as sent
    now = cloud_fake.timestamp()
    existing = {sla["name"]: sla for sla in slas.get((workspace, resource), [])}
    created, updated, kept = [], [], []
    for given in body:
        kind = _type_of(given)
        before = existing.pop(given["name"], None)
        sla = {
            "id": before["id"] if before else str(uuid.uuid4()),
            "created": before["created"] if before else now, "updated": now,
            "name": given["name"], "description": "", "type": kind,
            "severity": given.get("severity", "moderate"), "enabled": given.get("enabled", True),
            **{field: given[field] for field in TYPES[kind]},
            "owner_resource": resource,
            # An automation: its trigger watches the deployment's flow runs; Cloud's actions are its own.
            "trigger": {"type": "sla", "match_related": {"prefect.resource.id": resource}}, "actions": [],
        }
        (updated if before else created).append(sla)
        kept.append(sla)
    slas[(workspace, resource)] = kept
    return 200, {"created": created, "updated": updated, "deleted": list(existing.values())}


def _deployment_exists(fake, deployment_id: str) -> bool:
    try:
        uuid.UUID(deployment_id)
    except ValueError:
        return False
    return httpx.get(f"{fake.upstream}/deployments/{deployment_id}", timeout=30).status_code == 200


def _invalid(body: Any, resource: str) -> str | None:
    """A 422 detail for a bad apply body, as Cloud's validation gives it, or None."""
    if not isinstance(body, list):
        return "body: a JSON array of SLAs is required"
    names = set()
    for index, sla in enumerate(body):
        where = f"body.{index}"
        if not isinstance(sla, dict):
            return f"{where}: a JSON object is required"
        if "name" not in sla:
            return f"{where}.name: field required"
        kind = _type_of(sla)
        if kind is None:
            return f"{where}: does not match any SLA type (time_to_completion, frequency, lateness, freshness)"
        fields = {**COMMON, **TYPES[kind]}
        missing = [f for f in TYPES[kind] if f not in sla]
        if missing:
            return f"{where}.{missing[0]}: field required"
        for field, value in sla.items():
            if field not in fields:
                return f"{where}.{field}: extra fields not permitted"
            if not fields[field](value):
                return f"{where}.{field}: invalid value"
        if sla.get("owner_resource", resource) != resource:
            return f"{where}.owner_resource: must be the resource the SLAs are applied to"
        if sla["name"] in names:
            return f"{where}.name: SLA names must be unique per resource"
        names.add(sla["name"])
    return None


def _type_of(sla: dict[str, Any]) -> str | None:
    given = [kind for kind, fields in TYPES.items() if any(f in sla for f in fields if f != "within")]
    if not given and "within" in sla:
        given = ["lateness"]
    return given[0] if len(given) == 1 else None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
