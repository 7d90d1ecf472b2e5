"""teams: Prefect Cloud teams, groups of account members that access lists name.

Account-scoped (`/api/accounts/ID/teams/...`, the account of the workspace URL) and Cloud-only,
as Prefect's Terraform provider has them: a name and a description, replaced as a whole by PUT.
"""

from __future__ import annotations

from typing import Any

from resources.base import ApplyContext, LiveObject, ResourceKind, Spec, name_filter, wanted


class TeamSpec(Spec):
    description: str = ""


class Teams(ResourceKind):
    kind = "teams"
    spec = TeamSpec
    cloud_only = True
    renamable = True

    def list(self, client, names: set[str] | None) -> list[LiveObject]:
        found = client.filter(client.account("/teams/filter"), name_filter("teams", names))
        return [LiveObject(team["id"], team["name"], {"description": team.get("description") or ""})
                for team in found if wanted(team["name"], names)]

    def create(self, client, name: str, attributes: dict[str, Any], ctx: ApplyContext) -> str:
        return client.post(client.account("/teams/"), {"name": name, **attributes})["id"]

    def update(self, client, obj_id: str, name: str, attributes: dict[str, Any], before: dict[str, Any], ctx: ApplyContext) -> None:
        client.put(client.account(f"/teams/{obj_id}"), {"name": name, **attributes})

    def rename(self, client, obj_id: str, new_name: str, attributes: dict[str, Any], ctx: ApplyContext) -> None:
        client.put(client.account(f"/teams/{obj_id}"), {"name": new_name, **attributes})

    def delete(self, client, obj_id: str, name: str) -> None:
        client.delete(client.account(f"/teams/{obj_id}"))
