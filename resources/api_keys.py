"""What the kinds that hold a Prefect Cloud API key share (service accounts, user API keys): the
keys issued during a command, one spelling of an instant, and a key's status as drift shows it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from resources.base import ResourceKind

ACTIVE = "active"


class IssuesKeys(ResourceKind):
    """A kind whose objects hold a key that Cloud shows only when it issues it. The one name in
    `issued` is the output that carries the key, once, right after the apply that issued it."""

    def __init__(self) -> None:
        # Keys the server issued during this command, by object id, as Cloud returned them: kept in
        # memory only, for the state's fingerprint and for the outputs.
        self._issued: dict[str, dict[str, Any]] = {}

    def outputs(self, name: str, obj_id: str, attributes: dict[str, Any]) -> dict[str, Any]:
        """The key, once: only right after the apply that issued it (it is never stored)."""
        key = self._issued.pop(obj_id, None)
        [output] = self.issued
        return {output: key["key"]} if key else {}


def key_status(key: dict[str, Any]) -> str:
    """"active", "expired", or "missing" (no key at all), for a key as Cloud lists it."""
    if not key.get("id"):
        return "missing"
    expiration = key.get("expiration")
    if expiration and parsed(expiration) <= dt.datetime.now(dt.timezone.utc):
        return "expired"
    return ACTIVE


def instant(value: dt.datetime | str | None) -> str | None:
    """One spelling of an instant, UTC to the second, so configured and live values compare equal."""
    if value is None:
        return None
    when = parsed(value) if isinstance(value, str) else value
    return when.astimezone(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parsed(text: str) -> dt.datetime:
    """A server timestamp; one without a time zone is UTC, as the server means it."""
    when = dt.datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)
