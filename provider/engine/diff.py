"""Comparing attributes as JSON values, the engine's one notion of "changed"."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any


def changed_fields(before: dict[str, Any], after: dict[str, Any], ignore: Iterable[str] = ()) -> list[str]:
    """Top-level attributes whose values differ as JSON values: 1 and 1.0 are the same number (the
    server may answer either), but true is not 1 and a missing attribute is not a null one."""
    ignored = set(ignore)
    before = {k: v for k, v in before.items() if k not in ignored}
    after = {k: v for k, v in after.items() if k not in ignored}
    if _canonical(before) == _canonical(after):
        return []  # the common case, decided in one pass of C code
    missing = object()
    return sorted(k for k in before.keys() | after.keys() if not same_value(before.get(k, missing), after.get(k, missing)))


def same_value(a: Any, b: Any) -> bool:
    """Equal as JSON values (Python's == takes True for 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(map(same_value, a, b))
    return type(a) is type(b) and a == b


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
