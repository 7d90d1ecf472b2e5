"""user_api_keys: API keys of Prefect Cloud users (account members), Terraform's `prefect_user_api_key`.

At the API root, not under the account (`/api/users/USER_ID/api_keys/...`) and Cloud-only. A key
has a name (the resource's name), the person it belongs to (by email) and an expiration. The key
itself is issued by the server when it is created, and only then: it is printed once under
`Outputs:` after that apply, and state keeps only a fingerprint. Keys cannot be changed or rotated,
so, as in Terraform, a new user or expiration replaces the key, and so does a key that expired;
one deleted by hand is re-created.

Its id is `USER_ID/KEY_ID`: deleting a key takes both. Cloud reads one key by id (as Terraform
does, for plans); `export` and `import` by name list a user's keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import AwareDatetime, Field

from provider.errors import NotFound
from provider.secrets import fingerprint
from resources.actors import actors_of
from resources.api_keys import ACTIVE, IssuesKeys, instant, key_status
from resources.base import ApplyContext, FieldError, Known, LiveObject, Spec, wanted


class UserApiKeySpec(Spec):
    user: str = Field(description="The account member the key belongs to, by email.")
    expiration: AwareDatetime | None = Field(
        default=None, description="When the key expires (RFC 3339 with a time zone); never when unset. A change replaces the key."
    )


class UserApiKeys(IssuesKeys):
    kind = "user_api_keys"
    spec = UserApiKeySpec
    cloud_only = True
    exported_by_default = False  # people's own keys: listing another member's may be refused
    computed = frozenset({"key_fingerprint"})
    issued = frozenset({"key"})
    # Cloud cannot change a key: another user or expiration, or an expired key, takes a new one.
    replace_fields = frozenset({"user", "expiration", "key_status"})

    def desired(self, name: str, spec: UserApiKeySpec, defaults) -> dict[str, Any]:
        if defaults.client is not None:  # the person must be in the account (no API adds people)
            actors_of(defaults.client).find("users", spec.user, "user")
        return {"user": spec.user, "expiration": instant(spec.expiration), "key_status": ACTIVE}

    def read(self, client, names: set[str], known: Mapping[str, Known]) -> list[LiveObject]:
        found = []
        for name in sorted(names):
            seen = known.get(name) or Known()
            if seen.id:  # the recorded key, by id
                user_id, _, key_id = seen.id.partition("/")
                try:
                    keys = [client.get(client.api_root(f"/users/{user_id}/api_keys/{key_id}"))]
                except NotFound:
                    continue  # deleted by hand (or with its user): re-created
            else:  # not in state (a new key, or an import by name): the configured user's keys with this name
                user_id = _user_id(client, (seen.desired or {}).get("user"))
                keys = [key for key in _keys(client, user_id) if key["name"] == name] if user_id else []
            recorded = seen.recorded or {}
            for key in keys:
                obj = self._live(client, user_id, key)
                if obj.attributes["key_fingerprint"] is None and seen.id == obj.id:
                    obj.attributes["key_fingerprint"] = recorded.get("key_fingerprint")  # the same key as recorded
                found.append(obj)
        return found

    def list(self, client, names: set[str] | None) -> list[LiveObject]:
        # The people whose keys to list: those of keys issued in this command when they are asked
        # for by name (reading what was just created), every member otherwise (export).
        issued = {obj_id.partition("/")[0] for obj_id, key in self._issued.items() if wanted(key["name"], names)}
        user_ids = issued if names is not None and issued else [m["user_id"] for m in actors_of(client).listed("users")]
        return [self._live(client, user_id, key) for user_id in user_ids for key in _keys(client, user_id)
                if wanted(key["name"], names)]

    def _live(self, client, user_id: str, key: dict[str, Any]) -> LiveObject:
        obj_id = f"{user_id}/{key['id']}"
        issued = self._issued.get(obj_id)
        email = next((m["email"] for m in actors_of(client).listed("users") if m["user_id"] == user_id), f"unknown:{user_id}")
        return LiveObject(obj_id, key["name"], {
            "user": email,
            "expiration": instant(key.get("expiration")),
            "key_status": key_status(key),
            "key_fingerprint": fingerprint(key["id"], issued["key"]) if issued else None,
        })

    def create(self, client, name: str, attributes: dict[str, Any], ctx: ApplyContext) -> str:
        user_id = actors_of(client).find("users", attributes["user"], "user")["user_id"]
        body = {"name": name}
        if attributes["expiration"]:
            body["expiration"] = attributes["expiration"]
        key = client.post(client.api_root(f"/users/{user_id}/api_keys"), body)
        obj_id = f"{user_id}/{key['id']}"
        self._issued[obj_id] = key
        return obj_id

    def delete(self, client, obj_id: str, name: str) -> None:
        user_id, _, key_id = obj_id.partition("/")
        client.delete(client.api_root(f"/users/{user_id}/api_keys/{key_id}"))

    def to_spec(self, name: str, attributes: dict[str, Any]) -> dict[str, Any]:
        spec = {"user": attributes["user"]}
        if attributes.get("expiration"):
            spec["expiration"] = attributes["expiration"]
        return spec


def _user_id(client, email: str | None) -> str | None:
    try:
        return actors_of(client).find("users", email, "user")["user_id"] if email else None
    except FieldError:
        return None


def _keys(client, user_id: str) -> Iterable[dict[str, Any]]:
    """A user's API keys, as Cloud lists them (without the keys themselves)."""
    return client.get(client.api_root(f"/users/{user_id}/api_keys"))
