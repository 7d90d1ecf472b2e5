"""The account's actors as configurations name them: people by email, service accounts and teams by name.

Prefect Cloud's access lists and memberships hold ids (a person's or a service account's actor
id, a team's id); configurations name them, never raw ids. `actors_of(client)` reads each list at
most once per command (account lists are small; one bulk filter each) and maps both ways. Not a
kind: the kinds that hold access lists use it.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from resources.base import Address, FieldError, ServerDefaults

if TYPE_CHECKING:
    from provider.client import PrefectClient

# Each kind of actor: where the account lists them, what names one, and which id access lists hold.
SOURCES = {
    "users": ("/account_memberships/filter", "email", "actor_id"),
    "service_accounts": ("/bots/filter", "name", "actor_id"),
    "teams": ("/teams/filter", "name", "id"),
}


class ActorNames(BaseModel):
    """Who: people by email, service accounts and teams by name (sorted and deduplicated when compared)."""

    model_config = ConfigDict(extra="forbid")

    users: list[str] = Field(default_factory=list, description="Account members, by email.")
    service_accounts: list[str] = Field(default_factory=list, description="Service accounts, by name.")
    teams: list[str] = Field(default_factory=list, description="Teams, by name.")

    def normalized(self) -> dict[str, list[str]]:
        return {kind: sorted(set(getattr(self, kind))) for kind in SOURCES}

    def check(self, defaults: ServerDefaults, *path: str | int) -> None:
        """At plan time, a FieldError at `path`.KIND.INDEX for a person who is not a member of the
        account, or a service account or team neither declared in the configuration nor in the
        account; nothing offline (no client)."""
        if defaults.client is None:
            return
        actors = actors_of(defaults.client)
        for kind in SOURCES:
            for index, name in enumerate(getattr(self, kind)):
                if kind != "users" and str(Address(kind, name)) in defaults.declared:
                    continue  # created first, by this configuration
                try:
                    actors.find(kind, name, *path, kind, index)
                except FieldError as missing:
                    if kind == "users":
                        raise
                    raise FieldError(f"{missing}, and the configuration declares none", *missing.path) from None

    def references(self) -> Iterable[Address]:
        """The service accounts and teams named, which must exist first when the configuration declares them."""
        for kind in ("service_accounts", "teams"):
            for name in getattr(self, kind):
                yield Address(kind, name)


class Actors:
    """One command's view of the account's people, service accounts and teams."""

    def __init__(self, client: PrefectClient):
        self.client = client
        self._found: dict[str, list[dict[str, Any]]] = {}

    def listed(self, kind: str, fresh: bool = False) -> list[dict[str, Any]]:
        """Every actor of `kind` as the account lists it (read once per command, or again when `fresh`)."""
        if fresh or kind not in self._found:
            path, _, _ = SOURCES[kind]
            self._found[kind] = self.client.filter(self.client.account(path))
        return self._found[kind]

    def id_of(self, kind: str, name: str, *path: str | int, field: str | None = None) -> str:
        """The id access lists hold for the actor `name` of `kind` (or its `field`, e.g. a member's
        `user_id`); a FieldError at `path` when the account has none."""
        return self.find(kind, name, *path)[field or SOURCES[kind][2]]

    def find(self, kind: str, name: str, *path: str | int) -> dict[str, Any]:
        """The actor `name` of `kind` as the account lists it (re-read once when unknown: it may
        have been created earlier in this apply); a FieldError at `path` when the account has none."""
        _, named_by, _ = SOURCES[kind]
        for fresh in (False, True):
            found = [actor for actor in self.listed(kind, fresh) if actor[named_by] == name]
            if found:
                return found[0]
        what = "member with the email" if kind == "users" else f"{kind[:-1].replace('_', ' ')} named"
        raise FieldError(f"the account has no {what} {name!r}", *path)

    def ids(self, names: dict[str, list[str]], *path: str | int) -> dict[str, list[str]]:
        """{"actor_ids": [...], "team_ids": [...]} for normalized ActorNames, as Cloud's bodies hold them."""
        return {
            "actor_ids": [self.id_of(kind, name, *path, kind) for kind in ("users", "service_accounts") for name in names[kind]],
            "team_ids": [self.id_of("teams", name, *path, "teams") for name in names["teams"]],
        }

    def name_of(self, kind: str, actor_id: str, field: str | None = None) -> str | None:
        _, named_by, id_field = SOURCES[kind]
        return next((actor[named_by] for actor in self.listed(kind) if actor[field or id_field] == actor_id), None)

    def names(self, actor_ids: Iterable[str] = (), team_ids: Iterable[str] = ()) -> dict[str, list[str]]:
        """Normalized ActorNames for the ids a live object holds; an id no actor has any more is shown
        as `unknown:ID`, so a member removed from the account is drift rather than silence."""
        found: dict[str, set[str]] = {kind: set() for kind in SOURCES}
        for actor_id in actor_ids:
            kind = next((k for k in ("users", "service_accounts") if self.name_of(k, actor_id) is not None), None)
            found[kind or "users"].add(self.name_of(kind, actor_id) if kind else f"unknown:{actor_id}")
        for team_id in team_ids:
            found["teams"].add(self.name_of("teams", team_id) or f"unknown:{team_id}")
        return {kind: sorted(names) for kind, names in found.items()}


_by_client: weakref.WeakKeyDictionary[Any, Actors] = weakref.WeakKeyDictionary()


def actors_of(client: PrefectClient) -> Actors:
    """The Actors of this client's command (one client per command), made on first use."""
    actors = _by_client.get(client)
    if actors is None:
        actors = _by_client[client] = Actors(client)
    return actors
