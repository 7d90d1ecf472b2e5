"""object_access: who may manage, run and view one deployment, block or work pool (Prefect Cloud).

One resource per object, and its name is the object's address as the configuration spells it:
`deployments.FLOW/NAME`, `blocks.TYPE_SLUG/NAME` or `work_pools.NAME`. Cloud keeps one access list
per object, so the name must say which object; naming it by its address keeps two resources from
fighting over one list, and lets `export` and `import` name each list without inventing names.

Wire shapes are Prefect Cloud's as Terraform's `prefect_{deployment,block,work_pool}_access` send
them: `PUT .../access` with `{"access_control": {"manage_actor_ids", "manage_team_ids", ...}}`
(actor ids of people and service accounts, `*` for every member of the workspace; team ids), read
back by `GET .../access` as `{"manage_actors": [{id, name, email, type}], ...}`. Blocks have manage
and view only; deployments and work pools also run. The configuration names people by email and
service accounts and teams by name (resources/actors.py), never by id.

The object is a reference: declared in the configuration (and so written first) or read as data.
Teams and service accounts named are written first when the configuration declares them, and
must be in the account otherwise; people must be members: the plan checks both.
Deleting the resource restores Cloud's default, as Terraform's delete does: every member of the
workspace may manage, run and view, and no team is named.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from pydantic import Field

from resources.actors import ActorNames, actors_of
from resources.base import Address, ApplyContext, FieldError, LiveObject, ResourceKind, ServerDefaults, Spec, read_each
from resources.blocks import Blocks
from resources.deployments import Deployments
from resources.work_pools import WorkPools

EVERYONE = "*"  # Cloud's actor id for every member of the workspace


@dataclass(frozen=True)
class Target:
    """A kind of object Cloud keeps access lists for."""

    kind: ResourceKind
    path: Callable[[str, str], str]  # (object id, object name) -> the route of its access list
    levels: tuple[str, ...]


TARGETS = {
    "deployments": Target(Deployments(), lambda obj_id, name: f"/deployments/{obj_id}/access", ("manage", "run", "view")),
    "blocks": Target(Blocks(), lambda obj_id, name: f"/block_documents/{obj_id}/access", ("manage", "view")),
    "work_pools": Target(WorkPools(), lambda obj_id, name: f"/work_pools/{quote(name, safe='')}/access", ("manage", "run", "view")),
}
IDENTITY = "deployments.FLOW/NAME, blocks.TYPE_SLUG/NAME or work_pools.NAME"


class AccessLevel(ActorNames):
    everyone: bool = Field(False, description="Every member of the workspace, as Cloud grants by default.")

    def normalized(self) -> dict[str, Any]:
        return {**super().normalized(), "everyone": self.everyone}


class ObjectAccessSpec(Spec):
    manage: AccessLevel = Field(default_factory=AccessLevel, description="Who may change and delete the object.")
    run: AccessLevel | None = Field(None, description="Who may run the deployment, or the pool's deployments (not blocks).")
    view: AccessLevel = Field(default_factory=AccessLevel, description="Who may see the object.")


def split(name: str) -> tuple[str, Target, str]:
    """The object's kind, what Cloud keeps for that kind, and the object's own name."""
    kind_name, _, object_name = name.partition(".")
    return kind_name, TARGETS[kind_name], object_name


class ObjectAccess(ResourceKind):
    kind = "object_access"
    spec = ObjectAccessSpec
    identity = IDENTITY
    cloud_only = True
    # Cloud keeps the list with the object's id: a replaced object (new id) gets it written again.
    refers_by_id = True

    def check_name(self, name: str) -> None:
        kind_name, dot, object_name = name.partition(".")
        if not dot or kind_name not in TARGETS:
            raise ValueError(f"expected the address of the object the list is for: {IDENTITY}")
        TARGETS[kind_name].kind.check_name(object_name)

    def references(self, name: str, spec: ObjectAccessSpec) -> list[Address]:
        kind_name, _, object_name = split(name)
        return [Address(kind_name, object_name)]

    def references_if_declared(self, name: str, spec: ObjectAccessSpec) -> Iterable[Address]:
        for level in (spec.manage, spec.run, spec.view):
            if level is not None:
                yield from level.references()

    # --- planning ----------------------------------------------------------------------------

    def desired(self, name: str, spec: ObjectAccessSpec, defaults: ServerDefaults) -> dict[str, Any]:
        kind_name, target, _ = split(name)
        if spec.run is not None and "run" not in target.levels:
            raise FieldError(f"{kind_name} have no run access in Prefect Cloud, only manage and view", "run")
        levels = {level: (getattr(spec, level) or AccessLevel()) for level in target.levels}
        for level, names in levels.items():
            names.check(defaults, level)
        return {level: names.normalized() for level, names in levels.items()}

    def list(self, client, names: set[str] | None) -> list[LiveObject]:
        """The access lists of the objects named (of every object when None, leaving out those at
        Cloud's default: `export` writes only lists someone set)."""
        objects = []
        for kind_name, target in TARGETS.items():
            wanted = None if names is None else {n.partition(".")[2] for n in names if n.partition(".")[0] == kind_name}
            if wanted != set():
                objects += [(kind_name, target, obj) for obj in target.kind.list(client, wanted) if wanted is None or obj.name in wanted]

        def read(found: tuple[str, Target, LiveObject]) -> LiveObject:
            kind_name, target, obj = found
            access = client.get(target.path(obj.id, obj.name))
            return LiveObject(obj.id, f"{kind_name}.{obj.name}", _live(access, target.levels))

        lists = read_each(read, objects)  # Cloud reads one list per request
        if names is None:
            lists = [obj for obj in lists if obj.attributes != _default(split(obj.name)[1].levels)]
        return lists

    def adopt_reason(self, obj: LiveObject) -> str | None:
        # Every object has a list; one at Cloud's default was set by nobody, so writing it takes nothing from anyone.
        if obj.attributes == _default(split(obj.name)[1].levels):
            return "the object's access is Cloud's default (every member of the workspace), set by nobody"
        return None

    def same_object(self, obj: LiveObject, attributes: dict[str, Any]) -> bool:
        return True  # an object has one access list: it is this one, whatever the object's id now

    def to_spec(self, name: str, attributes: dict[str, Any]) -> dict[str, Any]:
        spec = {}
        for level, names in attributes.items():
            named = {key: value for key, value in names.items() if value}
            if named:
                spec[level] = named
        return spec

    # --- applying ----------------------------------------------------------------------------

    def create(self, client, name: str, attributes: dict[str, Any], ctx: ApplyContext) -> str:
        return self._write(client, name, attributes, ctx)

    def update(self, client, obj_id: str, name: str, attributes: dict[str, Any], before: dict[str, Any], ctx: ApplyContext) -> None:
        self._write(client, name, attributes, ctx)

    def delete(self, client, obj_id: str, name: str) -> None:
        kind_name, target, object_name = split(name)
        current = _object_id(client, name)  # the id in state may be an object since replaced
        if current is not None:
            client.put(target.path(current, object_name), _body(target.levels, lambda level: ([EVERYONE], [])))

    def _write(self, client, name: str, attributes: dict[str, Any], ctx: ApplyContext) -> str:
        kind_name, target, object_name = split(name)
        # The object's id of now: written earlier in this apply, or read as data, or looked up.
        obj_id = ctx.ids.get(f"{kind_name}.{object_name}") or _object_id(client, name)
        if obj_id is None:
            raise FieldError(f"{kind_name}.{object_name} does not exist on the server")
        actors = actors_of(client)

        def ids(level: str) -> tuple[list[str], list[str]]:
            found = actors.ids(attributes[level], level)
            return found["actor_ids"] + ([EVERYONE] if attributes[level]["everyone"] else []), found["team_ids"]

        client.put(target.path(obj_id, object_name), _body(target.levels, ids))
        return obj_id


def _object_id(client, name: str) -> str | None:
    kind_name, target, object_name = split(name)
    return next((obj.id for obj in target.kind.list(client, {object_name}) if obj.name == object_name), None)


def _body(levels: Iterable[str], ids: Callable[[str], tuple[list[str], list[str]]]) -> dict[str, Any]:
    control = {}
    for level in levels:
        control[f"{level}_actor_ids"], control[f"{level}_team_ids"] = ids(level)
    return {"access_control": control}


def _live(access: dict[str, Any], levels: Iterable[str]) -> dict[str, Any]:
    """Cloud's read shape as the configuration names actors: emails, names and `everyone`."""
    live = {}
    for level in levels:
        found: dict[str, set[str]] = {"users": set(), "service_accounts": set(), "teams": set()}
        everyone = False
        for actor in access.get(f"{level}_actors") or []:
            kind = {"team": "teams", "service_account": "service_accounts"}.get(actor.get("type"), "users")
            if EVERYONE in (actor.get("type"), actor.get("id")):
                everyone = True
            else:
                label = actor.get("email") if kind == "users" else actor.get("name")
                found[kind].add(label or f"unknown:{actor.get('id')}")
        live[level] = {**{kind: sorted(names) for kind, names in found.items()}, "everyone": everyone}
    return live


def _default(levels: Iterable[str]) -> dict[str, Any]:
    return {level: AccessLevel(everyone=True).normalized() for level in levels}
