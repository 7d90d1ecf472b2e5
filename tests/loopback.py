"""What the tests' loopback HTTP servers share (the fault proxies, the Cloud fake, the GCP and Azure
fakes): a threaded server on a free 127.0.0.1 port, a quiet handler that answers with bytes, and
forwarding a request to the real server behind.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

# Headers that describe one hop's connection or encoding, not the message: never passed on.
HOP_BY_HOP = frozenset({"host", "content-length", "transfer-encoding", "connection", "content-encoding"})


class LoopbackServer:
    """A threaded HTTP server (HTTPS with `certificate`: (certificate PEM, key PEM)) for `handler`,
    serving from `with` (or start()) until its end (or stop())."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], certificate: tuple[Path, Path] | None = None):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.scheme = "http"
        if certificate:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(certificate[0]), str(certificate[1]))
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> LoopbackServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class QuietHandler(BaseHTTPRequestHandler):
    """A keep-alive handler that logs nothing and answers with whole bodies."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def answer(self, status: int, headers: Mapping[str, str], content: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)


def forward(method: str, url: str, content: bytes | None, headers: Mapping[str, str],
            drop: frozenset[str] = frozenset(), timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    """Send a request on to the real server (without hop-by-hop headers and those in `drop`, lower
    case): its status, the headers to pass back, its body."""
    sent = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP | drop}
    upstream = httpx.request(method, url, content=content or None, headers=sent, timeout=timeout)
    kept = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
    return upstream.status_code, kept, upstream.content


class RequestTrap:
    """A server that answers every request with a 500 and records it: where a test proves that a
    command sent nothing (`seen` stays empty)."""

    def __init__(self) -> None:
        seen = self.seen = []

        class Handler(QuietHandler):
            def _record(self) -> None:
                seen.append(f"{self.command} {self.path}")
                self.answer(500, {}, b"")

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _record

        self.server = LoopbackServer(Handler)

    @property
    def api_url(self) -> str:
        return f"{self.server.url}/api"
