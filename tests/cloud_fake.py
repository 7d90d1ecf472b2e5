"""A stand-in for Prefect Cloud on loopback: its workspace URL shape, bearer API keys and webhooks.

Prefect Cloud cannot run here. This fake serves what only Cloud has, in Cloud's JSON shapes:
`/api/accounts/{account}/workspaces/{workspace}/webhooks/...` (create, filter, read, replace,
patch, delete, rotate), with state in memory; every other route of the workspace is forwarded,
with the workspace prefix stripped, to the real open-source Prefect server. Every request must
carry `Authorization: Bearer <key>` (401 otherwise), as Cloud requires; a read-only key may read
but gets 403 on writes, like a key whose role lacks the permission.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import threading
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

WEBHOOK_FIELDS = ("name", "description", "template", "enabled", "service_account_id")


class CloudFake:
    def __init__(self, upstream: str, api_key: str, read_only_key: str):
        self.upstream = upstream.rstrip("/")
        self.api_key = api_key
        self.read_only_key = read_only_key
        self.account = str(uuid.uuid4())
        self.workspace = str(uuid.uuid4())
        self.webhooks: dict[str, dict[str, Any]] = {}
        self.requests: Counter[str] = Counter()  # "METHOD /route" (workspace prefix stripped, ids as {id})
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return f"{self.root}/api/accounts/{self.account}/workspaces/{self.workspace}"

    def __enter__(self) -> CloudFake:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- webhooks, as Prefect Cloud serves them ---------------------------------------------------

    def _webhook_route(self, method: str, route: str, body: Any) -> tuple[int, Any]:
        parts = route.strip("/").split("/")  # ["webhooks", ...]
        if method == "POST" and len(parts) == 1:
            return self._create(body)
        if method == "POST" and parts[1:] == ["filter"]:
            return 200, self._filter(body or {})
        hook = self.webhooks.get(parts[1]) if len(parts) > 1 else None
        if hook is None:
            return 404, {"detail": "Webhook not found."}
        if len(parts) == 3 and parts[2] == "rotate" and method == "POST":
            hook.update(slug=secrets.token_urlsafe(16), updated=_now())
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
            hook.update({f: body.get(f, _DEFAULTS.get(f)) for f in fields}, updated=_now())
            return 204, None
        return 405, {"detail": "Method Not Allowed"}

    def _create(self, body: Any) -> tuple[int, Any]:
        problem = _invalid(body, required=("name", "template"))
        if problem:
            return 422, {"detail": problem}
        now = _now()
        hook = {
            "id": str(uuid.uuid4()),
            **{f: body.get(f, _DEFAULTS.get(f)) for f in WEBHOOK_FIELDS},
            "slug": secrets.token_urlsafe(16),
            "account": self.account,
            "workspace": self.workspace,
            "created": now,
            "updated": now,
        }
        self.webhooks[hook["id"]] = hook
        return 201, hook

    def _filter(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        names = (((body.get("webhooks") or {}).get("name") or {}).get("any_"))
        found = sorted(self.webhooks.values(), key=lambda h: h["created"])
        if names is not None:
            found = [h for h in found if h["name"] in names]
        offset, limit = int(body.get("offset") or 0), int(body.get("limit") or 200)
        return found[offset : offset + limit]

    # --- HTTP ------------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _answer(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
                content = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                for key, value in (headers or {"Content-Type": "application/json"}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                prefix = f"/api/accounts/{fake.account}/workspaces/{fake.workspace}"
                if not self.path.startswith(prefix + "/"):
                    return self._answer(404, {"detail": "Workspace not found."})
                route = self.path.removeprefix(prefix)
                key = self.headers.get("Authorization", "").removeprefix("Bearer ")
                if key not in (fake.api_key, fake.read_only_key):
                    return self._answer(401, {"detail": "Invalid authentication credentials"})
                reads = self.command == "GET" or route.rstrip("/").endswith("/filter")
                if key == fake.read_only_key and not reads:
                    return self._answer(403, {"detail": "Forbidden: the role of this key lacks the permission"})
                with fake._lock:
                    fake.requests[f"{self.command} {_generic(route)}"] += 1
                if route.startswith("/webhooks/") or route == "/webhooks":
                    try:
                        body = json.loads(raw) if raw else None
                    except ValueError:
                        return self._answer(400, {"detail": "invalid JSON"})
                    with fake._lock:
                        status, answer = fake._webhook_route(self.command, route.split("?")[0], body)
                    return self._answer(status, answer)
                self._forward(route, raw)

            def _forward(self, route: str, raw: bytes) -> None:
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length", "connection", "authorization")}
                upstream = httpx.request(self.command, fake.upstream + route, content=raw or None, headers=headers, timeout=30)
                passed = {k: v for k, v in upstream.headers.items()
                          if k.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding")}
                self._answer(upstream.status_code, upstream.content, passed)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        return Handler


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


def _generic(route: str) -> str:
    """A route with its ids replaced by {id}, for counting requests by endpoint."""
    return re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "{id}", route.split("?")[0])


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()
