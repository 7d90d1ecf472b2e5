"""What the kinds that hold a Prefect Cloud API key share (service accounts, user API keys): one
spelling of an instant, and a key's status as drift shows it."""

from __future__ import annotations

import datetime as dt
from typing import Any

ACTIVE = "active"


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
