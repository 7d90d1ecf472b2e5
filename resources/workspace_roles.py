"""workspace_roles: the Prefect Cloud account's custom workspace roles, and its built-in ones as data.

Account-scoped (`/api/accounts/ID/workspace_roles/...`) and Cloud-only, as Prefect's Terraform
provider has `prefect_workspace_role`: a description, a list of scopes (compared as a set) and an
optional role whose scopes it inherits, named here and sent as its id. Everything changes in place
(PATCH with the whole role). Cloud's built-in roles (Owner, Worker, Developer, Viewer, Runner) exist
in every account and cannot be written: they are read with `data: {workspace_roles: {Developer: {}}}`
and named by `workspace_access` and `inherited_role`, never declared.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any

from pydantic import Field

from resources.base import Address, ApplyContext, FieldError, LiveObject, ResourceKind, Spec, wanted

BUILT_IN = ("Owner", "Worker", "Developer", "Viewer", "Runner")


class WorkspaceRoleSpec(Spec):
    description: str = ""
    scopes: list[str] = Field(default_factory=list, description="Workspace scopes (`GET /api/workspace_scopes` lists them).")
    inherited_role: str | None = Field(default=None, description="A workspace role whose scopes this one inherits, by name.")


# The workspace roles each plan's configuration declares (they exist once applied), by plan.
_declared: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


# The account's workspace role names, read once per plan when a name is checked.
_existing: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


def declared_roles(defaults) -> set[str]:
    return _declared.setdefault(defaults, set())


class WorkspaceRoles(ResourceKind):
    kind = "workspace_roles"
    spec = WorkspaceRoleSpec
    cloud_only = True
    renamable = True

    def declare(self, name: str, spec: WorkspaceRoleSpec, defaults) -> None:
        declared_roles(defaults).add(name)

    def references_if_declared(self, name: str, spec: WorkspaceRoleSpec) -> Iterable[Address]:
        return [self.address(spec.inherited_role)] if spec.inherited_role else []

    def desired(self, name: str, spec: WorkspaceRoleSpec, defaults) -> dict[str, Any]:
        if name in BUILT_IN:
            raise FieldError(f"{name} is one of Prefect Cloud's built-in workspace roles, which cannot be declared or "
                             f"changed: read it with `data: {{workspace_roles: {{{name}: {{}}}}}}` or give your role another name")
        if spec.inherited_role:
            check_role(defaults, spec.inherited_role, "inherited_role")
        return {"description": spec.description, "scopes": sorted(set(spec.scopes)), "inherited_role": spec.inherited_role}

    def list(self, client, names: set[str] | None) -> list[LiveObject]:
        roles = all_roles(client)  # every one: an inherited role is named whichever it is
        names_by_id = {role["id"]: role["name"] for role in roles}
        return [LiveObject(role["id"], role["name"], {
                    "description": role.get("description") or "",
                    "scopes": sorted(set(role.get("scopes") or [])),
                    "inherited_role": names_by_id.get(role.get("inherited_role_id"), role.get("inherited_role_id")),
                }) for role in roles if wanted(role["name"], names)]

    def server_owned(self, name: str) -> bool:
        return name in BUILT_IN

    def create(self, client, name: str, attributes: dict[str, Any], ctx: ApplyContext) -> str:
        return client.post(client.account("/workspace_roles/"), _body(client, name, attributes))["id"]

    def update(self, client, obj_id: str, name: str, attributes: dict[str, Any], before: dict[str, Any], ctx: ApplyContext) -> None:
        client.patch(client.account(f"/workspace_roles/{obj_id}"), _body(client, name, attributes))

    def rename(self, client, obj_id: str, new_name: str, attributes: dict[str, Any], ctx: ApplyContext) -> None:
        client.patch(client.account(f"/workspace_roles/{obj_id}"), _body(client, new_name, attributes))

    def delete(self, client, obj_id: str, name: str) -> None:
        client.delete(client.account(f"/workspace_roles/{obj_id}"))

    def to_spec(self, name: str, attributes: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in attributes.items() if value not in (None, "", [])}


def all_roles(client) -> list[dict[str, Any]]:
    return client.filter(client.account("/workspace_roles/filter"))


def role_id(client, name: str, *path: str) -> str:
    """The id of the workspace role `name` (read now: it may have been created earlier in this apply)."""
    found = [role["id"] for role in all_roles(client) if role["name"] == name]
    if not found:
        raise FieldError(f"the account has no workspace role named {name!r}", *path)
    return found[0]


def check_role(defaults, name: str, *path: str) -> None:
    """A FieldError at `path` unless the role `name` is built in, declared, or exists in the account."""
    if name in BUILT_IN or name in declared_roles(defaults) or defaults.client is None:
        return
    if defaults not in _existing:
        _existing[defaults] = {role["name"] for role in all_roles(defaults.client)}
    if name not in _existing[defaults]:
        known = sorted({*BUILT_IN, *declared_roles(defaults)})
        raise FieldError(f"no workspace role named {name!r}: it is neither built in, declared, nor in the account "
                         f"(built in or declared: {', '.join(known)})", *path)


def _body(client, name: str, attributes: dict[str, Any]) -> dict[str, Any]:
    inherited = attributes["inherited_role"]
    return {"name": name, "description": attributes["description"], "scopes": attributes["scopes"],
            "inherited_role_id": role_id(client, inherited, "inherited_role") if inherited else None}
