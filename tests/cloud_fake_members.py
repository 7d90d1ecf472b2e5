"""The Cloud fake's team members and users' API keys (tests/cloud_fake.py registers `serve`).

In Cloud's shapes, as Prefect's Terraform provider uses them: under the account,
`PUT /teams/ID/members` ({"members": [{"member_id", "member_type"}]}: a person by user id, a
service account by its id), `GET /teams/ID` with its `memberships` ([{"id": ACTOR_ID, "type"}]) and
`DELETE /teams/ID/members/ACTOR_ID`; at the API root, `/users/USER_ID/api_keys` (create, list) and
`/users/USER_ID/api_keys/ID` (read, delete). 404 for an unknown team, member, user or key; 422 for a
bad body.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from tests import cloud_fake

MEMBER_TYPES = ("user", "service_account")


def team_members(fake) -> dict[str, list[dict[str, str]]]:
    """Each team's memberships, by team id: [{"id": ACTOR_ID, "type": ...}]."""
    return fake.__dict__.setdefault("team_members", {})


def user_api_keys(fake) -> dict[str, dict[str, Any]]:
    """Users' API keys as Cloud lists them, by id; the keys themselves in `issued_user_keys`."""
    return fake.__dict__.setdefault("user_api_keys", {})


def issued_user_keys(fake) -> dict[str, str]:
    return fake.__dict__.setdefault("issued_user_keys", {})


def serve(fake, scope, method: str, parts: list[str], body: Any) -> tuple[int, Any] | None:
    if scope.level == "account" and parts[:1] == ["teams"] and len(parts) >= 2 and parts[1] != "filter":
        if (method == "GET" and len(parts) == 2) or parts[2:3] == ["members"]:
            return _team(fake, method, parts, body)
    if scope.level == "api" and parts[:1] == ["users"] and parts[2:3] == ["api_keys"]:
        return _api_keys(fake, method, parts, body)
    return None


def _actors(fake) -> dict[str, tuple[str, str]]:
    """Every actor a team may hold, by the id PUT names it with: (actor id, member type)."""
    people = {m["user_id"]: (m["actor_id"], "user") for m in fake.members.values()}
    bots = {b["id"]: (b["actor_id"], "service_account") for b in fake.bots.values()}
    return {**people, **bots}


def _team(fake, method: str, parts: list[str], body: Any) -> tuple[int, Any]:
    team = fake.teams.get(parts[1])
    if team is None:
        return 404, {"detail": "Team not found."}
    actors = _actors(fake)
    existing = {actor_id for actor_id, _ in actors.values()}
    # A service account deleted from the account leaves its teams with it.
    memberships = team_members(fake).setdefault(team["id"], [])
    memberships[:] = [m for m in memberships if m["id"] in existing]
    if method == "GET" and len(parts) == 2:
        return 200, {**team, "memberships": memberships}
    if method == "PUT" and len(parts) == 3:
        problem = cloud_fake.invalid_fields(body, {"members": _is_member_list}, required=("members",))
        if problem:
            return 422, {"detail": problem}
        for member in body["members"]:
            actor = actors.get(member["member_id"])
            if actor is None or actor[1] != member["member_type"]:
                return 404, {"detail": f"{member['member_type']} {member['member_id']} not found."}
        for member in body["members"]:
            actor_id, member_type = actors[member["member_id"]]
            if all(m["id"] != actor_id for m in memberships):
                memberships.append({"id": actor_id, "type": member_type})
        return 200, {**team, "memberships": memberships}
    if method == "DELETE" and len(parts) == 4:
        found = [m for m in memberships if m["id"] == parts[3]]
        if not found:
            return 404, {"detail": "Team member not found."}
        memberships.remove(found[0])
        return 204, None
    return 405, {"detail": "Method Not Allowed"}


def _is_member_list(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(m, dict) and set(m) == {"member_id", "member_type"} and m["member_type"] in MEMBER_TYPES
        and isinstance(m["member_id"], str) for m in value)


def _api_keys(fake, method: str, parts: list[str], body: Any) -> tuple[int, Any]:
    user_id = parts[1]
    if all(m["user_id"] != user_id for m in fake.members.values()):
        return 404, {"detail": "User not found."}
    keys = user_api_keys(fake)
    if len(parts) == 3 and method == "POST":
        problem = cloud_fake.invalid_fields(body, {"name": cloud_fake.is_name, "expiration": cloud_fake.is_instant_or_none},
                                             required=("name",))
        if problem:
            return 422, {"detail": problem}
        key = {"id": str(uuid.uuid4()), "user_id": user_id, "name": body["name"],
               "created": cloud_fake.timestamp(), "expiration": body.get("expiration")}
        keys[key["id"]] = key
        issued_user_keys(fake)[key["id"]] = f"pnu_{secrets.token_urlsafe(27)}"
        return 201, {**key, "key": issued_user_keys(fake)[key["id"]]}
    if len(parts) == 3 and method == "GET":
        return 200, [key for key in keys.values() if key["user_id"] == user_id]
    key = keys.get(parts[3]) if len(parts) == 4 else None
    if key is None or key["user_id"] != user_id:
        return 404, {"detail": "API key not found."}
    if method == "GET":
        return 200, key
    if method == "DELETE":
        del keys[key["id"]]
        return 204, None
    return 405, {"detail": "Method Not Allowed"}
