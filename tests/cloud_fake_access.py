"""The Cloud fake's object access lists: `GET`/`PUT` `/deployments/{id}/access`,
`/block_documents/{id}/access` and `/work_pools/{name}/access` in each workspace.

As Prefect Cloud (and Terraform's client) has them: PUT takes `{"access_control":
{"manage_actor_ids", "manage_team_ids", "view_...", "run_..."}}` (no run for blocks) and answers
204; GET answers `{"manage_actors": [{id, name, email, type}], ...}` with teams among the actors
(`type: team`) and `*` for every member of the workspace, which is what an object has until its
list is set. The object must exist on the upstream open-source server (404 otherwise, as it
answers); an actor or team id the account does not have, a missing or unknown field is a 422.
Lists are kept by the object's id, so a re-created object starts from the default again.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests import cloud_fake  # its body checks; imported by it, so used only once it is loaded

EVERYONE = "*"
# The route's first part -> the upstream route that reads the object, and the levels it has.
OBJECTS = {
    "deployments": ("/deployments/{}", ("manage", "run", "view")),
    "block_documents": ("/block_documents/{}", ("manage", "view")),
    "work_pools": ("/work_pools/{}", ("manage", "run", "view")),
}


def serve(fake, scope, method: str, parts: list[str], body: Any) -> tuple[int, Any] | None:
    if scope.level != "workspace" or len(parts) != 3 or parts[2] != "access" or parts[0] not in OBJECTS:
        return None
    route, levels = OBJECTS[parts[0]]
    found = httpx.get(fake.upstream + route.format(parts[1]), timeout=30)
    if found.status_code != 200:
        return found.status_code, found.json()
    lists = fake.__dict__.setdefault("access_lists", {})
    key = (scope.workspace, parts[0], found.json()["id"])
    if method == "GET":
        control = lists.get(key) or {f"{level}_{of}": [EVERYONE] if of == "actor_ids" else [] for level in levels for of in ("actor_ids", "team_ids")}
        return 200, {f"{level}_actors": _actors(fake, control, level) for level in levels}
    if method != "PUT":
        return 405, {"detail": "Method Not Allowed"}
    problem = cloud_fake.invalid_fields(body, {"access_control": lambda value: isinstance(value, dict)}, required=("access_control",))
    if problem:
        return 422, {"detail": problem}
    control = body["access_control"]
    actor_ids = {m["actor_id"] for m in fake.members.values()} | {b["actor_id"] for b in fake.bots.values()} | {EVERYONE}
    known = {"actor_ids": actor_ids, "team_ids": set(fake.teams)}
    checks = {f"{level}_{of}": (lambda ids, of=of: _ids_among(ids, known[of])) for level in levels for of in known}
    problem = cloud_fake.invalid_fields(control, checks, required=())
    if problem:
        return 422, {"detail": problem.replace("body.", "body.access_control.")}
    lists[key] = {field: list(control.get(field) or []) for field in checks}
    return 204, None


def _ids_among(ids: Any, known: set[str]) -> bool:
    return isinstance(ids, list) and all(isinstance(i, str) and i in known for i in ids)


def _actors(fake, control: dict[str, list[str]], level: str) -> list[dict[str, Any]]:
    """The actors of one level in Cloud's read shape; ids gone from the account are left out."""
    people = {m["actor_id"]: m for m in fake.members.values()}
    bots = {b["actor_id"]: b for b in fake.bots.values()}
    actors = []
    for actor_id in control[f"{level}_actor_ids"]:
        if actor_id == EVERYONE:
            actors.append({"id": EVERYONE, "name": EVERYONE, "email": None, "type": EVERYONE})
        elif actor_id in people:
            person = people[actor_id]
            actors.append({"id": actor_id, "name": f"{person['first_name']} {person['last_name']}", "email": person["email"], "type": "user"})
        elif actor_id in bots:
            actors.append({"id": actor_id, "name": bots[actor_id]["name"], "email": None, "type": "service_account"})
    for team_id in control[f"{level}_team_ids"]:
        if team_id in fake.teams:
            actors.append({"id": team_id, "name": fake.teams[team_id]["name"], "email": None, "type": "team"})
    return actors
