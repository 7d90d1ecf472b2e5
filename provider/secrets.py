"""Sensitive values: kept out of plans, state and output as salted fingerprints.

A kind names the attribute paths that are sensitive (dotted, e.g. `data.aws_secret_access_key`).
Desired and live attributes both carry fingerprints at those paths, so comparing them detects a
changed secret without ever holding it; the clear values travel only in memory to the API call.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from typing import Any

PREFIX = "fingerprint:"


def fingerprint(salt: str, value: Any) -> str:
    # A mapping by its content, not its key order: PostgreSQL's jsonb returns a secret's keys reordered.
    text = json.dumps(value, sort_keys=True, default=repr) if isinstance(value, (dict, list)) else repr(value)
    digest = hmac.new(salt.encode(), text.encode(), hashlib.sha256).hexdigest()
    return PREFIX + digest[:32]


def _walk(attributes: dict[str, Any], path: str) -> tuple[dict[str, Any] | None, str]:
    """The mapping holding the last part of `path`, and that part (None when absent)."""
    *parents, leaf = path.split(".")
    node: Any = attributes
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    return (node if isinstance(node, dict) else None), leaf


def conceal(attributes: dict[str, Any], paths: list[str], salt: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A copy with fingerprints at `paths`, and the clear values by path."""
    if not paths:
        return attributes, {}
    concealed = copy.deepcopy(attributes)
    clear = {}
    for path in paths:
        node, leaf = _walk(concealed, path)
        if node is not None and leaf in node and not _is_fingerprint(node[leaf]):
            clear[path] = node[leaf]
            node[leaf] = fingerprint(salt, node[leaf])
    return concealed, clear


def reveal(attributes: dict[str, Any], clear: dict[str, Any]) -> dict[str, Any]:
    """A copy with the clear values put back: what the API call sends."""
    if not clear:
        return attributes
    revealed = copy.deepcopy(attributes)
    for path, value in clear.items():
        node, leaf = _walk(revealed, path)
        if node is not None:
            node[leaf] = value
    return revealed


def _is_fingerprint(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)
