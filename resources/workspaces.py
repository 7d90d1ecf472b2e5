"""workspaces: the Prefect Cloud account's workspaces.

Account-scoped (`/api/accounts/ID/workspaces/...`, the account of the workspace URL) and Cloud-only,
as Prefect's Terraform provider has `prefect_workspace`: a name, a handle (unique in the account,
part of the workspace's URL in the UI) and a description, all changed in place by PATCH. Deleting a
workspace deletes everything in it, so the workspace the connection's API URL is in is never deleted
or replaced; any other follows the plan (`lifecycle: {prevent_destroy: true}` guards one).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from resources.base import ApplyContext, LiveObject, ResourceKind, Spec, wanted


class WorkspaceSpec(Spec):
    handle: str = Field(min_length=1, description="Unique in the account; lowercase letters, digits and dashes.")
    description: str = ""


class Workspaces(ResourceKind):
    kind = "workspaces"
    spec = WorkspaceSpec
    cloud_only = True
    renamable = True

    def list(self, client, names: set[str] | None) -> list[LiveObject]:
        # Filtered by handle only, as Cloud's API is: an account holds few workspaces, read at once.
        found = client.filter(client.account("/workspaces/filter"))
        return [LiveObject(ws["id"], ws["name"], {"handle": ws["handle"], "description": ws.get("description") or ""})
                for ws in found if wanted(ws["name"], names)]

    def create(self, client, name: str, attributes: dict[str, Any], ctx: ApplyContext) -> str:
        return client.post(client.account("/workspaces/"), {"name": name, **attributes})["id"]

    def update(self, client, obj_id: str, name: str, attributes: dict[str, Any], before: dict[str, Any], ctx: ApplyContext) -> None:
        client.patch(client.account(f"/workspaces/{obj_id}"), {"name": name, **attributes})

    def rename(self, client, obj_id: str, new_name: str, attributes: dict[str, Any], ctx: ApplyContext) -> None:
        client.patch(client.account(f"/workspaces/{obj_id}"), {"name": new_name})

    def delete(self, client, obj_id: str, name: str) -> None:
        client.delete(client.account(f"/workspaces/{obj_id}"))

    def deletion_refused(self, client, obj_id: str, name: str, deleting: set[str]) -> str | None:
        if obj_id == client.connection.workspace_id:
            return (f"workspace {name!r} is the one the API URL points into: deleting it would delete every "
                    "object in it, this configuration's included; delete it from another workspace's configuration")
        return None

