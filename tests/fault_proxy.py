"""An HTTP proxy in front of the real Prefect server that injects faults into writes.

Faults are taken from a script (a list of "503", "429", "drop" or "ok" per write request, in
order) so a test knows exactly what happened; "drop-after" forwards the request and then closes
the connection without answering, like a write that landed but whose answer was lost;
"hang-after" forwards it and never answers, so a test can kill the client right after the write.
It records how many writes were in flight as each one arrived; `write_delay` makes each forwarded
write take at least that long, so concurrent writes surely overlap.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

from tests.loopback import LoopbackServer, QuietHandler, forward


class FaultProxy:
    def __init__(self, upstream: str, script: list[str], write_delay: float = 0.0):
        self.upstream = upstream.rstrip("/")
        self.script = list(script)
        self.write_delay = write_delay
        self.seen = Counter()
        self.requests = Counter()  # "read" / "write", as forwarded or faulted
        self.concurrency: list[int] = []  # writes in flight (this one included) as each write arrived
        self._in_flight = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(QuietHandler):
            def _forward(self):
                body = self.read_body()
                is_write = self.command != "GET" and not self.path.rstrip("/").endswith(("/filter", "/count"))
                fault = proxy._next_fault() if is_write else "ok"
                proxy.seen[fault] += 1
                proxy.requests["write" if is_write else "read"] += 1
                if is_write:
                    proxy._arrived()
                if fault == "drop":
                    self._close(is_write)
                    return
                if fault in ("503", "429"):
                    self._answer(is_write, int(fault), {"Retry-After": "0"}, b"")
                    return
                answer = forward(self.command, proxy.upstream + self.path.removeprefix("/api"), body, self.headers)
                if is_write:
                    time.sleep(proxy.write_delay)
                if fault == "hang-after":
                    time.sleep(60)  # the write landed; its answer never comes (the client gets killed)
                if fault in ("drop-after", "hang-after"):
                    self._close(is_write)
                    return
                self._answer(is_write, *answer)

            def _answer(self, is_write, status, headers, content):
                if is_write:
                    proxy._answered()  # before the client can have its answer and send the next write
                self.answer(status, headers, content)

            def _close(self, is_write):
                if is_write:
                    proxy._answered()
                self.close_connection = True
                self.connection.close()

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _forward

        self.server = LoopbackServer(Handler)

    def _arrived(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.concurrency.append(self._in_flight)

    def _answered(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _next_fault(self) -> str:
        with self._lock:
            return self.script.pop(0) if self.script else "ok"

    @property
    def api_url(self) -> str:
        return f"{self.server.url}/api"

    def __enter__(self) -> FaultProxy:
        self.server.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()
