"""Sensitive values: kept out of plans, state and output as salted fingerprints, and masked in
whatever the command prints.

A kind names the attribute paths that are sensitive (dotted, e.g. `data.aws_secret_access_key`).
Desired and live attributes both carry fingerprints at those paths, so comparing them detects a
changed secret without ever holding it; the clear values travel only in memory to the API call.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import re
import threading
import urllib.parse
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
            REDACTOR.add(node[leaf])
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


# --- redaction of output ----------------------------------------------------------------------

MASK = "***"
# Values shorter than this are not masked: masking every "on" or "42" would garble all output.
MIN_SECRET_LENGTH = 4
URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/\s:@]*):(?P<password>[^/\s@]+)@")


class Redactor:
    """Every sensitive value this command holds in memory, masked in any text shown to the user.

    Values are added where they enter: secrets where `conceal` takes them out of attributes, the
    API key, auth string and URL passwords where the HTTP client is made. Each is masked in its
    plain form and in the forms it takes on the wire (JSON-escaped, URL-quoted, base64 in basic auth).
    """

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._ordered: list[str] = []
        self._lock = threading.Lock()

    def add(self, value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                self.add(item)
            return
        if isinstance(value, (list, tuple)):
            for item in value:
                self.add(item)
            return
        if value is None or isinstance(value, bool):
            return
        text = str(value)
        if len(text) < MIN_SECRET_LENGTH:
            return
        forms = {text, json.dumps(text)[1:-1], urllib.parse.quote(text, safe=""), urllib.parse.quote_plus(text)}
        with self._lock:
            new = forms - self._values
            if new:
                self._values |= new
                self._ordered = sorted(self._values, key=len, reverse=True)  # longest first: no partial masks

    def add_credentials(self, api_key: str | None, auth_string: str | None, url: str | None) -> None:
        """The API key, the basic-auth string and a URL's password, with the headers made of them."""
        if api_key:
            self.add(api_key)
        pairs = []
        if auth_string:
            pairs.append(auth_string)
        if url and (match := URL_USERINFO.search(url)):
            user, password = (urllib.parse.unquote(match[g]) for g in ("user", "password"))
            pairs.append(f"{user}:{password}")
        for pair in pairs:
            self.add(pair)
            self.add(pair.partition(":")[2])
            self.add(base64.b64encode(pair.encode()).decode())

    def redact(self, text: str) -> str:
        text = URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
        for value in self._ordered:
            if value in text:
                text = text.replace(value, MASK)
        return text

    def reset(self) -> None:
        with self._lock:
            self._values, self._ordered = set(), []


REDACTOR = Redactor()


def redact(text: str) -> str:
    return REDACTOR.redact(text)


class RedactingStream:
    """A text stream that passes everything written to it through the redactor first."""

    def __init__(self, stream: Any):
        self._stream = stream

    def write(self, text: Any) -> int:
        if isinstance(text, str):
            text = redact(text)
        return self._stream.write(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
