"""teams: Prefect Cloud teams, groups of account members that access lists name, and who is on them.

Account-scoped (`/api/accounts/ID/teams/...`, the account of the workspace URL) and Cloud-only,
as Prefect's Terraform provider has them: a name and a description, replaced as a whole by PUT.

`members` is Terraform's `prefect_team_access`, one field per team rather than one resource per
member: people by email and service accounts by name. Cloud adds members with
`PUT /teams/ID/members`, lists them (by actor id) in `GET /teams/ID` and removes one with
`DELETE /teams/ID/members/ACTOR_ID`. Unset, the members are not managed: whoever is on the team
stays, and they are read only for `export` or when state records them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import Field, field_validator

from resources.actors import ActorNames, actors_of
from resources.base import Address, ApplyContext, Known, LiveObject, ResourceKind, Spec, name_filter, read_each, wanted

# The actor kinds a team holds, and the member type Cloud calls each.
MEMBER_TYPES = {"users": "user", "service_accounts": "service_account"}


class TeamSpec(Spec):
    description: str = ""
    members: ActorNames | None = Field(
        default=None,
        description="Who is on the team: `users` (account members, by email) and `service_accounts` (by name). "
                    "Unset: not managed, whoever is on the team stays.",
    )

    @field_validator("members")
    @classmethod
    def _people_and_service_accounts(cls, members: ActorNames | None) -> ActorNames | None:
        if members is not None and members.teams:
            raise ValueError("a team's members are users and service accounts; a team cannot be a member of a team")
        return members


class Teams(ResourceKind):
    kind = "teams"
    spec = TeamSpec
    cloud_only = True
    renamable = True
    server_filled = frozenset({"members"})  # unset: whoever is on the team stays

    def references_if_declared(self, name: str, spec: TeamSpec) -> Iterable[Address]:
        return spec.members.references() if spec.members else ()

    def desired(self, name: str, spec: TeamSpec, defaults) -> dict[str, Any]:
        members = None
        if spec.members is not None:
            members = {kind: names for kind, names in spec.members.normalized().items() if kind in MEMBER_TYPES}
            spec.members.check(defaults, "members")
        return {"description": spec.description, "members": members}

    def list(self, client, names: set[str] | None) -> list[LiveObject]:
        found = client.filter(client.account("/teams/filter"), name_filter("teams", names))
        teams = [LiveObject(team["id"], team["name"], {"description": team.get("description") or ""})
                 for team in found if wanted(team["name"], names)]
        if names is None:  # export: who is on each team too
            _read_members(client, teams)
        return teams

    def read(self, client, names: set[str], known: Mapping[str, Known]) -> list[LiveObject]:
        found = self.list(client, names)
        managed = []
        for team in found:
            seen = known.get(team.name) or Known()
            recorded = (seen.recorded or {}).get("members")
            if seen.desired is not None and seen.desired.get("members") is None:
                if recorded is not None:
                    # No longer managed: not read, so what state last recorded stays and is no drift.
                    team.attributes["members"] = recorded
            elif (seen.desired or {}).get("members") is not None or recorded is not None:
                managed.append(team)
        _read_members(client, managed)
        return found

    def create(self, client, name: str, attributes: dict[str, Any], ctx: ApplyContext) -> str:
        members = _wanted_members(client, attributes["members"]) if attributes.get("members") else None  # before any write
        team_id = client.post(client.account("/teams/"), {"name": name, "description": attributes["description"]})["id"]
        if members:
            _set_members(client, team_id, members)
        return team_id

    def update(self, client, obj_id: str, name: str, attributes: dict[str, Any], before: dict[str, Any], ctx: ApplyContext) -> None:
        members = attributes.get("members")
        wanted_ids = _wanted_members(client, members) if members is not None and members != before.get("members") else None
        if attributes["description"] != before.get("description"):
            client.put(client.account(f"/teams/{obj_id}"), {"name": name, "description": attributes["description"]})
        if wanted_ids is not None:
            _set_members(client, obj_id, wanted_ids)

    def rename(self, client, obj_id: str, new_name: str, attributes: dict[str, Any], ctx: ApplyContext) -> None:
        client.put(client.account(f"/teams/{obj_id}"), {"name": new_name, "description": attributes["description"]})

    def delete(self, client, obj_id: str, name: str) -> None:
        client.delete(client.account(f"/teams/{obj_id}"))

    def to_spec(self, name: str, attributes: dict[str, Any]) -> dict[str, Any]:
        spec: dict[str, Any] = {"description": attributes["description"]}
        if attributes.get("members") is not None:
            spec["members"] = {kind: names for kind, names in attributes["members"].items() if names}
        return spec


def _memberships(client, team_id: str) -> list[dict[str, Any]]:
    """Who is on the team, as Cloud lists them: [{"id": ACTOR_ID, "type": "user" | "service_account"}]."""
    return client.get(client.account(f"/teams/{team_id}")).get("memberships") or []


def _read_members(client, teams: list[LiveObject]) -> None:
    """Fill in who is on each team (one read per team: Cloud has no bulk read of memberships)."""
    for team, members in zip(teams, read_each(lambda team: _members(client, team.id), teams)):
        team.attributes["members"] = members


def _members(client, team_id: str) -> dict[str, list[str]]:
    """Who is on the team, by email and name; an actor the account no longer has is `unknown:ID`."""
    actors = actors_of(client)
    found: dict[str, set[str]] = {kind: set() for kind in MEMBER_TYPES}
    for membership in _memberships(client, team_id):
        kind = "users" if membership["type"] == "user" else "service_accounts"
        found[kind].add(actors.name_of(kind, membership["id"]) or f"unknown:{membership['id']}")
    return {kind: sorted(names) for kind, names in found.items()}


def _wanted_members(client, members: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    """The members as Cloud holds them, by actor id: {"member_id", "member_type"} as PUT adds each
    (a person by user id, a service account by its own id); a FieldError for one the account lacks."""
    actors = actors_of(client)
    wanted_ids = {}
    for kind, member_type in MEMBER_TYPES.items():
        for name in members[kind]:
            actor = actors.find(kind, name, "members", kind)
            wanted_ids[actor["actor_id"]] = {"member_id": actor["user_id"] if kind == "users" else actor["id"],
                                             "member_type": member_type}
    return wanted_ids


def _set_members(client, team_id: str, wanted_ids: dict[str, dict[str, Any]]) -> None:
    """Add who is missing (one PUT) and remove who is extra (one DELETE each)."""
    current = {membership["id"] for membership in _memberships(client, team_id)}
    missing = [member for actor_id, member in wanted_ids.items() if actor_id not in current]
    if missing:
        client.put(client.account(f"/teams/{team_id}/members"), {"members": missing})
    for actor_id in sorted(current - set(wanted_ids)):
        client.delete(client.account(f"/teams/{team_id}/members/{actor_id}"))
