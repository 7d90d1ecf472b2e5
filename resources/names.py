"""Name rules the Prefect server enforces, checked offline so bad names fail in `validate`."""

from __future__ import annotations

import re

BANNED_CHARACTERS = "/%&><"
VARIABLE_NAME = re.compile(r"^[a-z0-9_-]{1,255}$")


def check_object_name(name: str, what: str = "name") -> None:
    if not name.strip():
        raise ValueError(f"{what} must not be empty")
    banned = sorted({c for c in name if c in BANNED_CHARACTERS})
    if banned:
        raise ValueError(f"{what} {name!r} must not contain {' '.join(banned)}")


def split_pair(name: str, identity: str) -> tuple[str, str]:
    """Split a two-part identity such as POOL/QUEUE or FLOW/DEPLOYMENT."""
    first, slash, second = name.partition("/")
    if not slash or not first or not second or "/" in second:
        raise ValueError(f"{name!r} is not of the form {identity}")
    return first, second
