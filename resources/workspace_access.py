"""workspace_access: who holds a workspace role in the workspace of the API URL (Prefect Cloud).

One resource per role grant: a workspace role (built in, declared, or in the account; by name)
and the people (by email), service accounts and teams (by name) who hold it here:

    workspace_access:
      developers:
        workspace_role: Developer
        users: [ada.lovelace@example.com]
        service_accounts: [ci]
        teams: [data-platform]

Cloud keeps one grant per actor and workspace, as Prefect's Terraform provider has
`prefect_workspace_access` (one TF resource per actor): `/user_access/` and `/bot_access/` (POST)
and `/team_access/` (PUT) upsert grants, each list is read with its `filter`, a person's or service
account's grant is deleted by the grant's id, a team's by the team's id. A resource manages only
the actors it names: one whose grant was removed or given another role by hand is drift (apply
grants the role again); one removed from the list loses its grant; deleting the resource removes
the grants it holds, and only those. Actors granted by hand and not named here are left alone.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import Field

from resources.actors import ActorNames, actors_of
from resources.base import Address, ApplyContext, FieldError, Known, LiveObject, ResourceKind, Spec
from resources.workspace_roles import BUILT_IN, all_roles, check_role, role_id

# Per kind of actor: its grants' route, how a grant is upserted, the field naming the actor in a
# grant, and the field of the account's listing of that actor it holds (see resources/actors.py).
ROUTES = {
    "users": ("user_access", "POST", "user_id", "user_id"),
    "service_accounts": ("bot_access", "POST", "bot_id", "id"),
    "teams": ("team_access", "PUT", "team_id", "id"),
}


class WorkspaceAccessSpec(Spec, ActorNames):
    workspace_role: str = Field(min_length=1, description="The workspace role granted: built in (Owner, Worker, "
                                "Developer, Viewer, Runner), declared under workspace_roles, or in the account, by name.")


# Which grant names each actor, per plan: an actor holds one role per workspace.
_granted: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], list[str]]] = weakref.WeakKeyDictionary()


class WorkspaceAccess(ResourceKind):
    kind = "workspace_access"
    spec = WorkspaceAccessSpec
    cloud_only = True

    def declare(self, name: str, spec: WorkspaceAccessSpec, defaults) -> None:
        granted = _granted.setdefault(defaults, {})
        for kind, names in spec.normalized().items():
            for actor in names:
                granted.setdefault((kind, actor), []).append(name)

    def references_if_declared(self, name: str, spec: WorkspaceAccessSpec) -> Iterable[Address]:
        yield from spec.references()
        if spec.workspace_role not in BUILT_IN:
            yield Address("workspace_roles", spec.workspace_role)

    def desired(self, name: str, spec: WorkspaceAccessSpec, defaults) -> dict[str, Any]:
        check_role(defaults, spec.workspace_role, "workspace_role")
        for kind, names in spec.normalized().items():
            for actor in names:
                others = [other for other in _granted.get(defaults, {}).get((kind, actor), []) if other != name]
                if others:
                    raise FieldError(f"{actor!r} is also granted a role by workspace_access.{others[0]}: "
                                     "an actor holds one role per workspace", kind, getattr(spec, kind).index(actor))
        spec.check(defaults)
        return {"workspace_role": spec.workspace_role, **spec.normalized()}

    def list(self, client, names: set[str] | None) -> list[LiveObject]:
        """Every role held in the workspace, as one grant named after the role (for `export` and `data:`)."""
        holders = _holders(client)
        roles = sorted(set(holders.values()) if names is None else names & {role["name"] for role in all_roles(client)})
        workspace = client.connection.workspace_id
        return [LiveObject(f"{workspace}/{role}", role, _attributes(role, holders, None)) for role in roles]

    def read(self, client, names: set[str], known: Mapping[str, Known]) -> list[LiveObject]:
        holders = _holders(client)
        found = []
        for name in names:
            entry = known.get(name) or Known()
            if entry.desired is None and entry.recorded is None:
                found += self.list(client, {name})
                continue
            recorded, desired = entry.recorded or {}, entry.desired or {}
            role = recorded.get("workspace_role") or desired["workspace_role"]
            named = {kind: {*recorded.get(kind, []), *desired.get(kind, [])} for kind in ROUTES}
            attributes = _attributes(role, holders, named)
            if entry.id is not None or any(attributes[kind] for kind in ROUTES):
                found.append(LiveObject(entry.id or f"{client.connection.workspace_id}/{name}", name, attributes))
        return found

    def adopt_reason(self, obj: LiveObject) -> str | None:
        return "granting a role is an upsert: the actors named already hold it"

    def create(self, client, name: str, attributes: dict[str, Any], ctx: ApplyContext) -> str:
        _grant(client, attributes, {kind: attributes[kind] for kind in ROUTES})
        return f"{client.connection.workspace_id}/{name}"

    def update(self, client, obj_id: str, name: str, attributes: dict[str, Any], before: dict[str, Any], ctx: ApplyContext) -> None:
        same_role = attributes["workspace_role"] == before.get("workspace_role")
        _grant(client, attributes, {kind: [a for a in attributes[kind] if not same_role or a not in before.get(kind, [])]
                                    for kind in ROUTES})
        _revoke(client, {kind: [a for a in before.get(kind, []) if a not in attributes[kind]] for kind in ROUTES})

    def delete(self, client, obj_id: str, name: str) -> None:
        raise NotImplementedError("workspace access is deleted with what it holds (delete_known)")

    def delete_known(self, client, obj_id: str, name: str, before: dict[str, Any]) -> None:
        _revoke(client, {kind: before.get(kind, []) for kind in ROUTES})

    def to_spec(self, name: str, attributes: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in attributes.items() if value}


def _holders(client) -> dict[tuple[str, str], str]:
    """The role each actor holds in the workspace: (kind, email or name) -> role name."""
    roles = {role["id"]: role["name"] for role in all_roles(client)}
    actors = actors_of(client)
    held = {}
    for kind, (route, _, field, listed_as) in ROUTES.items():
        for grant in client.filter(f"/{route}/filter"):
            actor = actors.name_of(kind, grant[field], field=listed_as)
            if actor is not None:  # an actor gone from the account: no configuration names it
                held[(kind, actor)] = roles.get(grant["workspace_role_id"], grant["workspace_role_id"])
    return held


def _attributes(role: str, holders: dict[tuple[str, str], str], named: dict[str, set[str]] | None) -> dict[str, Any]:
    """The grant of `role` as held now, among the actors `named` (every holder when None)."""
    return {"workspace_role": role, **{
        kind: sorted(actor for (k, actor), held in holders.items() if k == kind and held == role
                     and (named is None or actor in named[kind]))
        for kind in ROUTES}}


def _grant(client, attributes: dict[str, Any], actors: dict[str, list[str]]) -> None:
    """Give `actors` the role (every id resolved before anything is written)."""
    if not any(actors.values()):
        return
    role = role_id(client, attributes["workspace_role"], "workspace_role")
    known = actors_of(client)
    bodies = {kind: [{"workspace_role_id": role, field: known.id_of(kind, actor, kind, field=listed_as)} for actor in actors[kind]]
              for kind, (_, _, field, listed_as) in ROUTES.items()}
    for kind, body in bodies.items():
        if body:
            route, method, _, _ = ROUTES[kind]
            (client.post if method == "POST" else client.put)(f"/{route}/", body)


def _revoke(client, actors: dict[str, list[str]]) -> None:
    """Remove the grants of `actors` in the workspace (those already gone are the goal reached)."""
    known = actors_of(client)
    for kind, names in actors.items():
        route, _, field, listed_as = ROUTES[kind]
        if not names:
            continue
        ids = set()
        for actor in names:
            try:
                ids.add(known.id_of(kind, actor, kind, field=listed_as))
            except FieldError:
                pass  # gone from the account, and its grants with it
        # A team's grant is addressed by the team; the others by the grant's own id.
        targets = {grant["team_id"] if kind == "teams" else grant["id"]
                   for grant in client.filter(f"/{route}/filter") if grant[field] in ids}
        for target in sorted(targets):
            client.delete(f"/{route}/{target}")
