"""Hostile and broken surroundings: nothing secret is printed, no work is unbounded, and
`${file()}` reads nothing outside the configuration directory.

Against the session's real Prefect server, through loopback proxies that misbehave on purpose:
one answers writes with a 500 whose plain-text body echoes the request (headers and body), one
stops answering altogether in the middle of an apply.
"""

from __future__ import annotations

import base64
import inspect
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from provider import cli
from provider.client import DEFAULT_UNREACHABLE_AFTER
from tests.conftest import all_objects, assert_ok
from tests.loopback import LoopbackServer, QuietHandler, forward

ROOT = Path(__file__).parents[2]


class EchoingProxy:
    """Forwards reads to the real server; answers every write with a 500 whose body is not JSON and
    echoes the request: its body first, then every header, then a long tail of padding."""

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.echoed = 0
        proxy = self

        class Handler(QuietHandler):
            def _handle(self):
                body = self.read_body()
                is_read = self.command == "GET" or self.path.rstrip("/").endswith(("/filter", "/count"))
                if is_read:
                    self.answer(*forward(self.command, proxy.upstream + self.path.removeprefix("/api"), body, self.headers))
                    return
                proxy.echoed += 1
                echo = b"upstream failed for request " + body + b" with headers " + "; ".join(
                    f"{k}: {v}" for k, v in self.headers.items()).encode() + b" " + b"x" * 20_000
                self.answer(500, {"Content-Type": "text/plain"}, echo)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

        self.server = LoopbackServer(Handler)

    @property
    def port(self) -> int:
        return self.server.server.server_address[1]

    def __enter__(self) -> EchoingProxy:
        self.server.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()


CREDENTIALS = {
    "PREFECT_API_KEY": lambda port, secret: {"PREFECT_API_KEY": f"pnu_{secret}"},
    "PREFECT_API_AUTH_STRING": lambda port, secret: {"PREFECT_API_AUTH_STRING": f"admin:{secret}"},
    "password in PREFECT_API_URL": lambda port, secret: {"PREFECT_API_URL": f"http://admin:{secret}@127.0.0.1:{port}/api"},
}


@pytest.mark.parametrize("credential", CREDENTIALS)
def test_a_server_echoing_the_request_shows_no_secret(workspace, prefix, credential):
    secret = f"pw{uuid.uuid4().hex}"
    block_secret = f"block-{uuid.uuid4().hex}"
    workspace.write("main.yaml", f"""\
        blocks:
          secret/{prefix}-token:
            data: {{value: "${{env.BLOCK_SECRET}}"}}
        variables:
          {prefix}_plain: {{value: visible}}
        """)
    with EchoingProxy(workspace.api_url) as proxy:
        env = {"PREFECT_API_URL": f"http://127.0.0.1:{proxy.port}/api", "BLOCK_SECRET": block_secret,
               **CREDENTIALS[credential](proxy.port, secret)}
        result = assert_ok(workspace.apply("--parallelism", "1", env=env), 1)
        assert proxy.echoed >= 1
    output = result.output
    forbidden = [secret, block_secret, base64.b64encode(f"admin:{secret}".encode()).decode()]
    for value in forbidden:
        assert value not in output, f"{value} printed:\n{output}"
    assert "500 Internal Server Error" in output and "upstream failed for request" in output, output
    assert "***" in output, "the echo was shown, masked"
    assert len(output) < 5_000, "the server's body is cut short"
    assert "Traceback" not in output


def silent_after(upstream: str, writes: int):
    """A proxy that forwards everything until it has forwarded `writes` writes, then accepts
    connections and never answers again (a server that hangs, or a firewall dropping packets)."""

    class Proxy:
        forwarded = 0
        silent_since: float | None = None

    state = Proxy()
    lock = threading.Lock()
    held: list = []

    class Handler(QuietHandler):
        def _handle(self):
            body = self.read_body()
            is_write = self.command != "GET" and not self.path.rstrip("/").endswith(("/filter", "/count"))
            with lock:
                silent = state.forwarded >= writes
                if silent and state.silent_since is None:
                    state.silent_since = time.monotonic()
                elif is_write:
                    state.forwarded += 1
            if silent:
                held.append(self.connection)
                time.sleep(600)  # never answers
                return
            self.answer(*forward(self.command, state.upstream + self.path.removeprefix("/api"), body, self.headers))

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

    state.upstream = upstream.rstrip("/")
    server = LoopbackServer(Handler)
    server.server.daemon_threads = True
    server.start()
    state.api_url = f"{server.url}/api"
    state.close = lambda: (server.stop(), [c.close() for c in held])
    return state


def run_cli(workspace, *args: str, env: dict[str, str], timeout: float = 200) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **workspace.env, **env, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "provider", *args], env=full_env, capture_output=True, text=True,
                          timeout=timeout)


def test_a_server_that_stops_answering_mid_apply_gives_up_once_within_the_budget(workspace, prefix, api):
    count, forwarded, budget = 27, 8, 10
    workspace.write("vars.yaml", "variables:\n" + "".join(f"  {prefix}_v{i}: {{value: {i}}}\n" for i in range(count)))
    proxy = silent_after(workspace.api_url, forwarded)
    try:
        result = run_cli(workspace, "apply", str(workspace.directory), "--auto-approve",
                         env={"PREFECT_API_URL": proxy.api_url, "PREFECT_PROVIDER_TIMEOUT": f"{budget}s"})
        gave_up_after = time.monotonic() - proxy.silent_since
    finally:
        proxy.close()
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert gave_up_after < budget + 8, f"took {gave_up_after:.1f}s after the server went silent"
    assert output.count(f"has not answered for {budget}s") == 1, output
    assert output.count("Error:") == 1, output
    assert "Apply stopped: state records what was done. Resources: 8 added" in output, output
    assert "Traceback" not in output

    live = {v["name"] for v in all_objects(api, "variables/filter") if v["name"].startswith(prefix)}
    recorded = {address.split(".", 1)[1] for address in workspace.state()["resources"]}
    assert len(live) == forwarded and recorded == live, "state keeps exactly what was done"

    assert_ok(workspace.apply())  # the next apply finishes the job
    assert len({v["name"] for v in all_objects(api, "variables/filter") if v["name"].startswith(prefix)}) == count


def test_an_api_that_never_answers_fails_the_plan_once_after_the_timeout(workspace, prefix):
    workspace.write("vars.yaml", f"variables:\n  {prefix}_a: {{value: 1}}\n  {prefix}_b: {{value: 2}}\n")
    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/api"
        started = time.monotonic()
        result = run_cli(workspace, "--timeout", "3s", "plan", str(workspace.directory), env={"PREFECT_API_URL": url})
        elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert output.count("has not answered for 3s") == 1 and output.count("Error:") == 1, output
    assert elapsed < 3 + 15, f"{elapsed:.1f}s"  # the budget, plus starting Python on a busy machine


def test_the_default_budget_outlasts_a_sqlite_servers_lock_wait():
    """The CLI's default and the client's are one budget, longer than the 60 s a SQLite-backed
    server may stand still waiting for its write lock (docs/security.md)."""
    option_default = inspect.signature(cli.global_options).parameters["timeout"].default
    assert cli.parse_duration(option_default) == cli._unreachable_after == DEFAULT_UNREACHABLE_AFTER
    assert DEFAULT_UNREACHABLE_AFTER > 60


def alias_bomb(levels: int = 10, fanout: int = 10) -> str:
    lines = ["variables:", "  bomb:", "    value:", "      l0: &l0 [boom]"]
    for level in range(1, levels):
        lines.append(f"      l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * fanout) + "]")
    return "\n".join(lines) + "\n"


def merge_bomb(levels: int = 10, fanout: int = 10) -> str:
    lines = ["variables:", "  bomb:", "    value:", "      m0: &m0 {a: 1, b: 2}"]
    for level in range(1, levels):
        merges = ", ".join([f"*m{level - 1}"] * fanout)
        lines.append(f"      m{level}: &m{level} {{<<: [{merges}], k{level}: [*m{level - 1}, *m{level - 1}]}}")
    return "\n".join(lines) + "\n"


BOUNDED = {
    "alias bomb": (alias_bomb(), "main.yaml:8: invalid YAML: aliases of the value anchored here expand to more than 100,000 values"),
    "merge-key bomb": (merge_bomb(), "expand to more than 100,000 values"),
    "500-deep flow nesting": ("variables:\n  deep:\n    value: " + "[" * 500 + "]" * 500 + "\n",
                              "main.yaml:3: invalid YAML: nested more than 100 levels deep"),
    "500-deep block nesting": ("variables:\n  deep:\n    value:\n" + "".join("  " * (i + 3) + "k:\n" for i in range(500))
                               + "  " * 503 + "v\n", "invalid YAML: nested more than 100 levels deep"),
    "100,000-deep nesting": ("a: " + "[" * 100_000 + "]" * 100_000 + "\n",
                             "main.yaml:1: invalid YAML: nested more than 100 levels deep"),
}


@pytest.mark.parametrize("case", BOUNDED)
def test_yaml_that_would_never_finish_is_refused_fast(workspace, case):
    text, expected = BOUNDED[case]
    workspace.write("main.yaml", text)
    started = time.monotonic()
    result = run_cli(workspace, "validate", str(workspace.directory), env={}, timeout=60)
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert expected in output, output
    assert "Traceback" not in output and "RecursionError" not in output
    assert elapsed < 20, f"{elapsed:.1f}s"  # starting Python on a busy machine included


def test_file_follows_symlinks_inside_the_configuration_directory_only(workspace, tmp_path):
    (workspace.directory / "shared").mkdir()
    (workspace.directory / "shared" / "value.json").write_text('{"n": 1}')
    (workspace.directory / "inside.json").symlink_to(workspace.directory / "shared" / "value.json")
    workspace.write("inside.yaml", """\
        variables:
          inside: {value: '${file("inside.json")}'}
        """)
    assert_ok(workspace.run("validate", str(workspace.directory)))

    (tmp_path / "ci-credentials.json").write_text('{"token": "do-not-read"}')
    (workspace.directory / "templates").mkdir()
    (workspace.directory / "templates" / "job.json").symlink_to(tmp_path / "ci-credentials.json")
    workspace.write("leak.yaml", """\
        variables:
          leak: {value: '${file("templates/job.json")}'}
        """)
    for command in ("validate", "plan"):
        result = assert_ok(workspace.run(command, str(workspace.directory)), 1)
        assert "leak.yaml:2: variables.leak.value: file('templates/job.json') is outside the configuration directory" \
            in result.stderr, result.stderr
        assert "do-not-read" not in result.output
