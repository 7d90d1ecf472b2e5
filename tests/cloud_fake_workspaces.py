"""The Cloud fake's workspaces area: the account's workspaces and workspace roles, and each
workspace's access grants, in the shapes Prefect's Terraform provider sends and reads.

Under the account: `/workspaces/` (create, filter by handle, read, patch, delete; 409 for a handle
already taken) and `/workspace_roles/` (create, filter by name, read, patch, delete; Cloud's
built-in roles are seeded, with no account, and writing one is refused with 403). Under a
workspace: `/user_access/`, `/bot_access/` (POST upserts a list of grants) and `/team_access/`
(PUT upserts), each with `filter`, reads and deletes: a user or bot grant is deleted by its own
id, a team's by the team's id, as Cloud has it. An actor holds one role per workspace: an upsert
changes the role of its existing grant.
"""

from __future__ import annotations

import uuid
from typing import Any

import tests.cloud_fake as cloud

# Cloud's built-in workspace roles, in every account; each extends the scopes of the one before.
BUILT_IN_ROLES = {
    "Viewer": ["see_flows", "see_deployments", "see_work_pools", "see_blocks", "see_variables"],
    "Runner": ["run_deployments"],
    "Developer": ["manage_flows", "manage_deployments", "manage_blocks", "manage_variables", "manage_work_pools"],
    "Owner": ["manage_workspace", "manage_workspace_access"],
    "Worker": ["see_work_pools", "manage_work_queues", "write_workers"],
}
INHERITS = {"Runner": "Viewer", "Developer": "Runner", "Owner": "Developer"}

# Which field names the accessor of each kind of grant, and how an upsert is sent.
ACCESS = {"user_access": ("user_id", "POST"), "bot_access": ("bot_id", "POST"), "team_access": ("team_id", "PUT")}


def install(fake: cloud.CloudFake) -> None:
    """Seed the built-in workspace roles and the (empty) access lists, once per fake."""
    if "workspace_roles" in fake.__dict__:
        return
    fake.workspace_roles = {}
    now = cloud.timestamp()
    for name in BUILT_IN_ROLES:
        role = {"id": str(uuid.uuid4()), "name": name, "description": f"Cloud's built-in {name} role",
                "scopes": [], "account_id": None, "inherited_role_id": None, "created": now, "updated": now}
        fake.workspace_roles[role["id"]] = role
    by_name = {r["name"]: r for r in fake.workspace_roles.values()}
    for name, scopes in BUILT_IN_ROLES.items():
        by_name[name]["scopes"] = scopes
        by_name[name]["inherited_role_id"] = by_name[INHERITS[name]]["id"] if name in INHERITS else None
    fake.workspace_access = {}  # access id -> grant (with its "kind": user_access, bot_access or team_access)


def serve(fake: cloud.CloudFake, scope: cloud.Scope, method: str, parts: list[str], body: Any) -> tuple[int, Any] | None:
    install(fake)
    if scope.level == "account" and parts[:1] == ["workspaces"]:
        return _workspaces(fake, method, parts, body)
    if scope.level == "account" and parts[:1] == ["workspace_roles"]:
        return _roles(fake, method, parts, body)
    if scope.level == "workspace" and parts[:1] and parts[0] in ACCESS:
        return _access(fake, scope.workspace, method, parts, body)
    return None


# --- workspaces ----------------------------------------------------------------------------------

def _workspaces(fake, method: str, parts: list[str], body: Any) -> tuple[int, Any]:
    checks = {"name": cloud.is_name, "handle": cloud.is_name, "description": cloud.is_str_or_none}
    if method == "POST" and len(parts) == 1:
        problem = cloud.invalid_fields(body, checks, required=("name", "handle"))
        if problem:
            return 422, {"detail": problem}
        if _handle_taken(fake, body["handle"]):
            return 409, {"detail": "A workspace with this handle already exists."}
        now = cloud.timestamp()
        workspace = {"id": str(uuid.uuid4()), "account_id": fake.account, "name": body["name"], "handle": body["handle"],
                     "description": body.get("description"), "default_workspace_role_id": _role_named(fake, "Developer")["id"],
                     "is_public": False, "created": now, "updated": now}
        fake.workspaces[workspace["id"]] = workspace  # its URL is served from now on
        return 201, workspace
    if method == "POST" and parts[1:] == ["filter"]:
        handles = cloud.filter_values(body, "workspaces", "handle")
        found = [_shown(fake, w) for w in fake.workspaces.values() if handles is None or w["handle"] in handles]
        return 200, cloud.page(found, body)
    workspace = fake.workspaces.get(parts[1]) if len(parts) == 2 else None
    if workspace is None:
        return 404, {"detail": "Workspace not found."}
    if method == "GET":
        return 200, _shown(fake, workspace)
    if method == "PATCH":
        problem = cloud.invalid_fields(body, {**checks, "default_workspace_role_id": _is_uuid_or_none}, required=())
        if problem:
            return 422, {"detail": problem}
        if body.get("handle") is not None and _handle_taken(fake, body["handle"], workspace["id"]):
            return 409, {"detail": "A workspace with this handle already exists."}
        # As the Terraform provider's update sends it: a null field is left as it is.
        workspace.update({k: v for k, v in body.items() if v is not None}, updated=cloud.timestamp())
        return 204, None
    if method == "DELETE":
        del fake.workspaces[workspace["id"]]
        for access_id in [i for i, a in fake.workspace_access.items() if a["workspace_id"] == workspace["id"]]:
            del fake.workspace_access[access_id]
        return 204, None
    return 405, {"detail": "Method Not Allowed"}


def _shown(fake, workspace: dict[str, Any]) -> dict[str, Any]:
    """A workspace as Cloud lists it (the default one was seeded with fewer fields)."""
    return {"account_id": fake.account, "description": None, "default_workspace_role_id": None, "is_public": False,
            "created": None, "updated": None, **workspace}


def _handle_taken(fake, handle: str, own_id: str | None = None) -> bool:
    return any(w["handle"] == handle and w["id"] != own_id for w in fake.workspaces.values())


# --- workspace roles -----------------------------------------------------------------------------


def _roles(fake, method: str, parts: list[str], body: Any) -> tuple[int, Any]:
    checks = {"name": cloud.is_name, "description": cloud.is_str_or_none, "scopes": _is_str_list,
              "inherited_role_id": lambda v: v is None or v in fake.workspace_roles}
    if method == "POST" and len(parts) == 1:
        problem = cloud.invalid_fields(body, checks, required=("name",))
        if problem:
            return 422, {"detail": problem}
        if _role_named(fake, body["name"]):
            return 409, {"detail": "A workspace role with this name already exists."}
        now = cloud.timestamp()
        role = {"id": str(uuid.uuid4()), "name": body["name"], "description": body.get("description"),
                "scopes": body.get("scopes") or [], "account_id": fake.account,
                "inherited_role_id": body.get("inherited_role_id"), "created": now, "updated": now}
        fake.workspace_roles[role["id"]] = role
        return 201, role
    if method == "POST" and parts[1:] == ["filter"]:
        names = cloud.filter_values(body, "workspace_roles")
        return 200, cloud.page([r for r in fake.workspace_roles.values() if names is None or r["name"] in names], body)
    role = fake.workspace_roles.get(parts[1]) if len(parts) == 2 else None
    if role is None:
        return 404, {"detail": "Workspace role not found."}
    if method == "GET":
        return 200, role
    if method in ("PATCH", "DELETE") and role["account_id"] is None:
        return 403, {"detail": "Built-in workspace roles cannot be modified."}
    if method == "PATCH":
        problem = cloud.invalid_fields(body, checks, required=("name",))
        if problem:
            return 422, {"detail": problem}
        other = _role_named(fake, body["name"])
        if other and other["id"] != role["id"]:
            return 409, {"detail": "A workspace role with this name already exists."}
        role.update(name=body["name"], description=body.get("description"), scopes=body.get("scopes") or [],
                    inherited_role_id=body.get("inherited_role_id"), updated=cloud.timestamp())
        return 204, None
    if method == "DELETE":
        del fake.workspace_roles[role["id"]]
        return 204, None
    return 405, {"detail": "Method Not Allowed"}


def _role_named(fake, name: str) -> dict[str, Any] | None:
    return next((r for r in fake.workspace_roles.values() if r["name"] == name), None)


# --- access grants of a workspace ----------------------------------------------------------------


def _access(fake, workspace: str, method: str, parts: list[str], body: Any) -> tuple[int, Any]:
    kind = parts[0]
    field, upsert = ACCESS[kind]
    grants = [a for a in fake.workspace_access.values() if a["workspace_id"] == workspace and a["kind"] == kind]
    if len(parts) == 1 and method == upsert:
        return _upsert(fake, workspace, kind, field, body)
    if parts[1:] == ["filter"] and method == "POST":
        return 200, cloud.page([_public(a) for a in grants], body)
    if len(parts) != 2:
        return 404, {"detail": "Not Found"}
    # A team's grant is addressed by the team's id; the others by the grant's own id.
    found = next((a for a in grants if (a["team_id"] if kind == "team_access" else a["id"]) == parts[1]), None)
    if found is None:
        return 404, {"detail": "Workspace access not found."}
    if method == "GET":
        return 200, _public(found)
    if method == "DELETE":
        del fake.workspace_access[found["id"]]
        return 204, None
    return 405, {"detail": "Method Not Allowed"}


def _upsert(fake, workspace: str, kind: str, field: str, body: Any) -> tuple[int, Any]:
    if not isinstance(body, list) or not body:
        return 422, {"detail": "body: a non-empty list of grants is required"}
    accessors = {"user_id": {m["user_id"]: m["actor_id"] for m in fake.members.values()},
                 "bot_id": {b["id"]: b["actor_id"] for b in fake.bots.values()},
                 "team_id": {t: None for t in fake.teams}}[field]
    for grant in body:
        problem = cloud.invalid_fields(grant, {"workspace_role_id": lambda v: v in fake.workspace_roles,
                                                field: lambda v: v in accessors}, required=("workspace_role_id", field))
        if problem:
            return 422, {"detail": problem}
    upserted = []
    for grant in body:
        existing = next((a for a in fake.workspace_access.values()
                         if a["workspace_id"] == workspace and a["kind"] == kind and a[field] == grant[field]), None)
        if existing is None:
            existing = {"id": str(uuid.uuid4()), "kind": kind, "workspace_id": workspace, "created": cloud.timestamp(),
                        "actor_id": accessors[grant[field]], "user_id": None, "bot_id": None, "team_id": None}
            fake.workspace_access[existing["id"]] = existing
        existing.update({field: grant[field], "workspace_role_id": grant["workspace_role_id"], "updated": cloud.timestamp()})
        upserted.append(_public(existing))
    return 200, upserted


def _public(grant: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in grant.items() if k != "kind"}



def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _is_uuid_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, str) and cloud.is_uuid(value))
