"""A stand-in for Prefect Cloud on loopback: its URL shapes, bearer API keys, and the routes only
Cloud has, for the account, its workspaces and the API root.

Prefect Cloud cannot run here. This fake serves what only Cloud has, in Cloud's JSON shapes, with
state in memory, and forwards every other route of a workspace (prefix stripped) to the real
open-source Prefect server. Its routes come in areas, tried in order (`CloudFake.areas`): here the
workspace's webhooks (create, filter, read, replace, patch, delete, rotate) and the account's
service accounts ("bots", with their API keys: create, filter, read, patch, delete,
rotate_api_key), teams (create, filter, read, replace, delete), account roles and account
memberships (three seeded members, `add_member` for more); in a module each, the account itself
(tests/cloud_fake_account.py), team members and users' API keys (tests/cloud_fake_members.py),
workspaces, workspace roles and access grants (tests/cloud_fake_workspaces.py), object access
lists (tests/cloud_fake_access.py) and SLAs (tests/cloud_fake_slas.py). Like Cloud, it answers 404
for an unknown id, 409 for a duplicate name and 422 for a bad body; every request must carry
`Authorization: Bearer <key>` (401 otherwise), and a read-only key may read but gets 403 on
writes, like a key whose role lacks the permission.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests import cloud_fake_access, cloud_fake_account, cloud_fake_members, cloud_fake_slas, cloud_fake_workspaces
from tests.loopback import LoopbackServer, QuietHandler, forward


@dataclass(frozen=True)
class Scope:
    """What a request addresses: the account, one of its workspaces, or the API root (`/api/users/...`)."""

    level: str  # "account", "workspace" or "api"
    prefix: str  # the path up to the route, e.g. /api/accounts/ID/workspaces/ID
    workspace: str | None = None  # its id, at the workspace level


Area = Callable[["CloudFake", Scope, str, list[str], Any], "tuple[int, Any] | None"]

WEBHOOK_FIELDS = ("name", "description", "template", "enabled", "service_account_id")


class CloudFake:
    def __init__(self, upstream: str, api_key: str, read_only_key: str):
        self.upstream = upstream.rstrip("/")
        self.api_key = api_key
        self.read_only_key = read_only_key
        self.account = str(uuid.uuid4())
        self.workspace = str(uuid.uuid4())
        self.webhooks: dict[str, dict[str, Any]] = {}
        self.roles = {name: str(uuid.uuid4()) for name in ("Owner", "Admin", "Member")}
        self.bots: dict[str, dict[str, Any]] = {}  # as listed: the key's id, name, created, expiration
        self.keys: dict[str, str] = {}  # the key of each service account, by its id (Cloud shows it once)
        self.old_keys: dict[str, dict[str, Any] | None] = {}  # a rotated key still working, by service account id
        self.teams: dict[str, dict[str, Any]] = {}
        # The account's members (people who signed up; no API creates them), by membership id.
        self.members: dict[str, dict[str, Any]] = {}
        for first, last in MEMBERS:
            self.add_member(first, last)
        self.requests: Counter[str] = Counter()  # "METHOD /route" (workspace prefix stripped, ids as {id})
        # Each workspace of the account, by id: the workspace of `api_url` and any created since.
        # Routes only Cloud has are served per workspace; every other route of any of them is
        # forwarded to the one upstream open-source server.
        self.workspaces: dict[str, dict[str, Any]] = {self.workspace: {"id": self.workspace, "name": "Default", "handle": "default"}}
        # The routes of each area, tried in order: (fake, scope, method, path parts, body) ->
        # (status, body), or None when the route is not theirs.
        self.areas: list[Area] = [cloud_fake_members.serve, CloudFake._webhook_route, CloudFake._account_route,
                                  cloud_fake_workspaces.serve, cloud_fake_access.serve, cloud_fake_slas.serve,
                                  cloud_fake_account.serve]
        self._lock = threading.Lock()
        self.server = LoopbackServer(self._handler())

    def writes_since(self, before: dict[str, int]) -> dict[str, int]:
        """The requests that could change something (neither GETs nor filters) sent since `before`,
        a copy of `requests`: how many, by route."""
        return {route: n - before.get(route, 0) for route, n in self.requests.items()
                if n != before.get(route, 0) and not route.startswith("GET ") and not route.endswith("/filter")}

    def member(self, email: str) -> dict[str, Any]:
        """The account member with this email."""
        return named(self.members, email, "email")

    def add_member(self, first: str, last: str, role: str = "Member") -> dict[str, Any]:
        """A person joining the account, as Cloud's account memberships list them."""
        member = {"id": str(uuid.uuid4()), "actor_id": str(uuid.uuid4()), "user_id": str(uuid.uuid4()),
                  "first_name": first, "last_name": last, "handle": f"{first}-{last}".lower(),
                  "email": f"{first}.{last}@example.com".lower(), "account_role_name": role,
                  "account_role_id": self.roles[role], "last_login": None}
        self.members[member["id"]] = member
        return member

    def _scope(self, path: str) -> tuple[Scope | None, str]:
        """Where a request path points (the account, one of its workspaces, or the API root, as
        `/api/users/...` is) and the route under it; (None, path) for an unknown account or workspace."""
        account = f"/api/accounts/{self.account}"
        if path.startswith(account + "/workspaces/"):
            workspace, _, rest = path.removeprefix(account + "/workspaces/").partition("/")
            if rest or path.endswith("/"):
                if workspace not in self.workspaces:
                    return (None, path) if is_uuid(workspace) else (Scope("account", account), path.removeprefix(account))
                return Scope("workspace", f"{account}/workspaces/{workspace}", workspace), "/" + rest
        if path.startswith(account + "/"):
            return Scope("account", account), path.removeprefix(account)
        if path.startswith("/api/accounts/"):
            return None, path
        return Scope("api", "/api"), path.removeprefix("/api")

    @property
    def root(self) -> str:
        return self.server.url

    @property
    def api_url(self) -> str:
        return f"{self.root}/api/accounts/{self.account}/workspaces/{self.workspace}"

    def __enter__(self) -> CloudFake:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    # --- webhooks, as Prefect Cloud serves them ---------------------------------------------------

    def _webhook_route(self, scope: Scope, method: str, parts: list[str], body: Any) -> tuple[int, Any] | None:
        if scope.level != "workspace" or parts[:1] != ["webhooks"]:
            return None
        if method == "POST" and len(parts) == 1:
            return self._create(scope, body)
        if method == "POST" and parts[1:] == ["filter"]:
            return 200, self._filter(scope, body or {})
        hook = self.webhooks.get(parts[1]) if len(parts) > 1 else None
        if hook is None or hook["workspace"] != scope.workspace:
            return 404, {"detail": "Webhook not found."}
        if len(parts) == 3 and parts[2] == "rotate" and method == "POST":
            hook.update(slug=secrets.token_urlsafe(16), updated=timestamp())
            return 200, hook
        if len(parts) != 2:
            return 404, {"detail": "Not Found"}
        if method == "GET":
            return 200, hook
        if method == "DELETE":
            del self.webhooks[hook["id"]]
            return 204, None
        if method in ("PUT", "PATCH"):
            fields = WEBHOOK_FIELDS if method == "PUT" else [f for f in WEBHOOK_FIELDS if f in (body or {})]
            problem = _invalid(body, required=("name", "template") if method == "PUT" else ())
            if problem:
                return 422, {"detail": problem}
            hook.update({f: body.get(f, _DEFAULTS.get(f)) for f in fields}, updated=timestamp())
            return 204, None
        return 405, {"detail": "Method Not Allowed"}

    def _create(self, scope: Scope, body: Any) -> tuple[int, Any]:
        problem = _invalid(body, required=("name", "template"))
        if problem:
            return 422, {"detail": problem}
        now = timestamp()
        hook = {
            "id": str(uuid.uuid4()),
            **{f: body.get(f, _DEFAULTS.get(f)) for f in WEBHOOK_FIELDS},
            "slug": secrets.token_urlsafe(16),
            "account": self.account,
            "workspace": scope.workspace,
            "created": now,
            "updated": now,
        }
        self.webhooks[hook["id"]] = hook
        return 201, hook

    def _filter(self, scope: Scope, body: dict[str, Any]) -> list[dict[str, Any]]:
        names = filter_values(body, "webhooks")
        found = sorted((h for h in self.webhooks.values() if h["workspace"] == scope.workspace), key=lambda h: h["created"])
        if names is not None:
            found = [h for h in found if h["name"] in names]
        return page(found, body)

    # --- the account: service accounts (bots), teams and account roles --------------------------

    def _account_route(self, scope: Scope, method: str, parts: list[str], body: Any) -> tuple[int, Any] | None:
        if scope.level != "account" or not parts:
            return None
        collection = {"bots": self.bots, "teams": self.teams}.get(parts[0])
        if parts == ["account_memberships", "filter"] and method == "POST":
            emails = filter_values(body, "account_memberships", "email")
            return 200, [m for m in self.members.values() if emails is None or m["email"] in emails]
        if parts == ["account_roles", "filter"] and method == "POST":
            names = filter_values(body, "account_roles")
            return 200, [{"id": i, "name": n, "permissions": ACCOUNT_ROLE_PERMISSIONS[n], "account_id": None, "is_system_role": True}
                         for n, i in self.roles.items() if names is None or n in names]
        if collection is None:
            return None
        if method == "POST" and len(parts) == 1:
            return self._create_bot(body) if parts[0] == "bots" else self._create_team(body)
        if method == "POST" and parts[1:] == ["filter"]:
            names = filter_values(body, "teams" if parts[0] == "teams" else "service_accounts")
            found = [o for o in sorted(collection.values(), key=lambda o: o["created"]) if names is None or o["name"] in names]
            return 200, page(found, body)
        found = collection.get(parts[1]) if len(parts) > 1 else None
        if found is None:
            return 404, {"detail": f"{'Bot' if parts[0] == 'bots' else 'Team'} not found."}
        if parts[0] == "bots" and parts[2:] == ["rotate_api_key"] and method == "POST":
            problem = invalid_fields(body, {"api_key_expiration": is_instant_or_none,
                                             "old_key_expires_in_seconds": _is_seconds}, required=())
            if problem:
                return 422, {"detail": problem}
            grace = (body or {}).get("old_key_expires_in_seconds") or 0
            # The key it replaces: gone at once, or working until then.
            self.old_keys[found["id"]] = {**found["api_key"], "expiration": (
                dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=grace)).isoformat()} if grace else None
            self._issue_key(found, (body or {}).get("api_key_expiration"))
            return 201, {**found, "api_key": {**found["api_key"], "key": self.keys[found["id"]]}}
        if len(parts) != 2:
            return 404, {"detail": "Not Found"}
        if method == "GET":
            return 200, found
        if method == "DELETE":
            del collection[found["id"]]
            return 204, None
        if parts[0] == "bots" and method == "PATCH":
            problem = invalid_fields(body, {"name": is_name, "account_role_id": self._is_role}, required=())
            if problem:
                return 422, {"detail": problem}
            if self._taken(self.bots, body.get("name"), found["id"]):
                return 409, {"detail": "A service account with this name already exists."}
            role = {v: k for k, v in self.roles.items()}.get(body.get("account_role_id"), found["account_role_name"])
            found.update(name=body.get("name", found["name"]), account_role_name=role, updated=timestamp())
            return 204, None
        if parts[0] == "teams" and method == "PUT":
            problem = invalid_fields(body, {"name": is_name, "description": is_str_or_none}, required=("name",))
            if problem:
                return 422, {"detail": problem}
            if self._taken(self.teams, body["name"], found["id"]):
                return 409, {"detail": "A team with this name already exists."}
            found.update(name=body["name"], description=body.get("description"), updated=timestamp())
            return 200, found
        return 405, {"detail": "Method Not Allowed"}

    def _create_bot(self, body: Any) -> tuple[int, Any]:
        problem = invalid_fields(body, {"name": is_name, "account_role_id": self._is_role,
                                         "api_key_expiration": is_instant_or_none}, required=("name",))
        if problem:
            return 422, {"detail": problem}
        if self._taken(self.bots, body["name"]):
            return 409, {"detail": "A service account with this name already exists."}
        now = timestamp()
        role = {v: k for k, v in self.roles.items()}.get(body.get("account_role_id"), "Member")
        bot = {"id": str(uuid.uuid4()), "actor_id": str(uuid.uuid4()), "name": body["name"], "account_id": self.account, "account_role_name": role,
               "created": now, "updated": now}
        self._issue_key(bot, body.get("api_key_expiration"))
        self.bots[bot["id"]] = bot
        return 201, {**bot, "api_key": {**bot["api_key"], "key": self.keys[bot["id"]]}}

    def _issue_key(self, bot: dict[str, Any], expiration: str | None) -> None:
        self.keys[bot["id"]] = f"pnb_{secrets.token_urlsafe(27)}"
        bot["api_key"] = {"id": str(uuid.uuid4()), "name": f"{bot['name']}-key", "created": timestamp(), "expiration": expiration}

    def _create_team(self, body: Any) -> tuple[int, Any]:
        problem = invalid_fields(body, {"name": is_name, "description": is_str_or_none}, required=("name",))
        if problem:
            return 422, {"detail": problem}
        if self._taken(self.teams, body["name"]):
            return 409, {"detail": "A team with this name already exists."}
        now = timestamp()
        team = {"id": str(uuid.uuid4()), "name": body["name"], "description": body.get("description"),
                "created": now, "updated": now}
        self.teams[team["id"]] = team
        return 201, team

    def _is_role(self, value: Any) -> bool:
        return value is None or value in self.roles.values()

    @staticmethod
    def _taken(collection: dict[str, dict[str, Any]], name: str | None, own_id: str | None = None) -> bool:
        return name is not None and any(o["name"] == name and o["id"] != own_id for o in collection.values())

    # --- HTTP ------------------------------------------------------------------------------------

    def _handler(self) -> type[QuietHandler]:
        fake = self

        class Handler(QuietHandler):
            def _answer(self, status: int, body: Any = None) -> None:
                self.answer(status, {"Content-Type": "application/json"}, b"" if body is None else json.dumps(body).encode())

            def _serve(self) -> None:
                raw = self.read_body()
                scope, route = fake._scope(self.path.split("?")[0])
                if scope is None:
                    return self._answer(404, {"detail": "Workspace not found."})
                key = self.headers.get("Authorization", "").removeprefix("Bearer ")
                if key not in (fake.api_key, fake.read_only_key):
                    return self._answer(401, {"detail": "Invalid authentication credentials"})
                reads = self.command == "GET" or route.rstrip("/").endswith("/filter")
                if key == fake.read_only_key and not reads:
                    return self._answer(403, {"detail": "Forbidden: the role of this key lacks the permission"})
                with fake._lock:
                    fake.requests[f"{self.command} {_generic(route)}"] += 1
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    return self._answer(400, {"detail": "invalid JSON"})
                parts = [p for p in route.split("/") if p]
                for serve in fake.areas:
                    with fake._lock:
                        answer = serve(fake, scope, self.command, parts, body)
                    if answer is not None:
                        return self._answer(*answer)
                if scope.level != "workspace":
                    return self._answer(404, {"detail": "Not Found"})
                route = self.path.removeprefix(scope.prefix)
                self.answer(*forward(self.command, fake.upstream + route, raw, self.headers, drop=frozenset({"authorization"})))

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        return Handler


MEMBERS = (("Ada", "Lovelace"), ("Grace", "Hopper"), ("Alan", "Turing"))
# What each of Cloud's built-in account roles may do (a few of the real ones).
ACCOUNT_ROLE_PERMISSIONS = {"Member": ["read:account", "read:workspaces"],
                            "Admin": ["read:account", "read:workspaces", "update:account", "administrate:workspaces", "create:bots"],
                            "Owner": ["read:account", "read:workspaces", "update:account", "administrate:workspaces", "create:bots", "delete:account"]}

_DEFAULTS = {"description": "", "enabled": True, "service_account_id": None}


def _invalid(body: Any, required: tuple[str, ...]) -> str | None:
    """A 422 detail for a bad webhook body, as FastAPI would give one, or None."""
    if not isinstance(body, dict):
        return "body: a JSON object is required"
    missing = [f for f in required if f not in body]
    if missing:
        return f"body.{missing[0]}: field required"
    if "template" in body and not isinstance(body["template"], str):
        return "body.template: str type expected"
    if "enabled" in body and not isinstance(body["enabled"], bool):
        return "body.enabled: value is not a valid boolean"
    return None


def invalid_fields(body: Any, checks: dict[str, Any], required: tuple[str, ...]) -> str | None:
    """A 422 detail for a bad account-object body, as FastAPI would give one, or None."""
    if not isinstance(body, dict):
        return "body: a JSON object is required"
    missing = [f for f in required if f not in body]
    if missing:
        return f"body.{missing[0]}: field required"
    for field, check in checks.items():
        if field in body and not check(body[field]):
            return f"body.{field}: invalid value"
    unknown = sorted(set(body) - set(checks) - {"limit", "offset"})
    return f"body.{unknown[0]}: extra fields not permitted" if unknown else None


def is_name(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def is_str_or_none(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _is_seconds(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def is_instant_or_none(value: Any) -> bool:
    if value is None:
        return True
    try:
        return dt.datetime.fromisoformat(value).tzinfo is not None
    except (TypeError, ValueError):
        return False


def named(objects: dict[str, dict[str, Any]], name: str, field: str = "name") -> dict[str, Any]:
    """The one object among `objects` (by id) whose `field` is `name`."""
    [found] = [o for o in objects.values() if o[field] == name]
    return found


def filter_values(body: Any, collection: str, field: str = "name") -> list[Any] | None:
    """What a `POST …/filter` body restricts `field` of `collection` to (`{collection: {field:
    {any_: [...]}}}`), or None when it does not restrict it."""
    return (((body or {}).get(collection) or {}).get(field) or {}).get("any_")


def page(found: list[dict[str, Any]], body: Any) -> list[dict[str, Any]]:
    """The page of `found` a filter body's `offset` and `limit` ask for (200 by default, as Cloud's)."""
    offset, limit = int((body or {}).get("offset") or 0), int((body or {}).get("limit") or 200)
    return found[offset : offset + limit]


def is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _generic(route: str) -> str:
    """A route with its ids replaced by {id}, for counting requests by endpoint."""
    return re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "{id}", route.split("?")[0])


def timestamp() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()
