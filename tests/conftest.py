"""Test harness: one real Prefect server per test session, and the CLI driven against it.

The server is the pinned `prefect` package (the `server` extra), started on a free loopback port
with a temporary PREFECT_HOME by the same code that runs the embedded server, and stopped by its
process id when the session ends. Its database is SQLite, or a throwaway PostgreSQL cluster with
PREFECT_PROVIDER_TEST_DB=postgres (see tests/pg.py).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import secrets
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from provider.cli import app
from provider.server import free_port
from tests import pg
from tests.cloud_fake import CloudFake
from tests.loopback import RequestTrap

TEST_DB = os.environ.get("PREFECT_PROVIDER_TEST_DB", "sqlite")


def pytest_report_header() -> str:
    return f"prefect server database: {TEST_DB} (PREFECT_PROVIDER_TEST_DB)"


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for the session. Its scheduler is off, as in the benchmark: no test runs a flow, and
    it would insert up to 100 runs for each scheduled deployment the tests leave behind, writes that
    compete with the tests' own for SQLite's one write lock."""
    with pg.prefect_server(tmp_path_factory.mktemp("prefect-server"), TEST_DB,
                           PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false") as api_url:
        yield api_url


@contextlib.contextmanager
def moto_server(log_path: Path, **settings: str) -> Iterator[str]:
    """A real moto server process on loopback (with moto `settings` as environment variables),
    stopped by its pid; AWS's managed policies (e.g. AmazonECSTaskExecutionRolePolicy) are loaded."""
    port = free_port()
    env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true", **settings}
    with open(log_path, "wb") as log:
        process = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=log, stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(200):
                try:
                    httpx.get(url + "/moto-api/", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            yield url
        finally:
            process.terminate()
            process.wait(10)


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The session's moto server; boto3 reaches it through AWS_ENDPOINT_URL."""
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as url:
        yield url


@pytest.fixture
def aws_env(moto_url: str) -> dict[str, str]:
    """The standard AWS settings pointing boto3 at the moto server."""
    return {
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


@pytest.fixture(scope="session")
def api_url(prefect_server: str) -> str:
    return prefect_server


class RetryingTransport(httpx.HTTPTransport):
    """Retries 503s, as every client of the SQLite-backed server must: its own services (the
    scheduler, the event persister) write too, and a writer that contends with them gets 503."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for _ in range(50):
            response = super().handle_request(request)
            if response.status_code != 503:
                return response
            response.close()
            time.sleep(0.1)
        return super().handle_request(request)


@pytest.fixture
def api(api_url: str) -> Iterator[httpx.Client]:
    """A plain HTTP client to the server, for out-of-band changes and for checking results."""
    with httpx.Client(base_url=api_url + "/", timeout=30, transport=RetryingTransport()) as client:
        yield client


_names = itertools.count()


@pytest.fixture
def prefix() -> str:
    """A unique lowercase name prefix, so tests sharing one server never see each other's objects."""
    return f"t{uuid.uuid4().hex[:6]}{next(_names)}"


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self) -> Any:
        return json.loads(self.stdout)


class Workspace:
    """A configuration directory plus a way to run the CLI on it against the test server."""

    def __init__(self, directory: Path, api_url: str, home: Path):
        self.directory = directory
        self.api_url = api_url
        self.env = {
            "PREFECT_API_URL": api_url,
            "PREFECT_HOME": str(home),  # no profile of the machine's user leaks in
            "PREFECT_API_KEY": "",
            "NO_COLOR": "1",
            "COLUMNS": "200",
        }

    def write(self, name: str, text: str) -> Path:
        path = self.directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    def remove(self, name: str) -> None:
        (self.directory / name).unlink()

    def run(self, *args: str, env: dict[str, str] | None = None) -> Result:
        """Run `prefect-provider ARGS`; a trailing directory argument is added where it is expected."""
        runner = CliRunner()
        result = runner.invoke(app, list(args), env={**self.env, **(env or {})}, catch_exceptions=False)
        return Result(result.exit_code, result.stdout, result.stderr)

    def plan(self, *extra: str, env: dict[str, str] | None = None) -> Result:
        return self.run("plan", str(self.directory), "--detailed-exitcode", *extra, env=env)

    def apply(self, *extra: str, env: dict[str, str] | None = None) -> Result:
        return self.run("apply", str(self.directory), "--auto-approve", *extra, env=env)

    @property
    def state_path(self) -> Path:
        return self.directory / "prefect-provider.state.json"

    def state(self) -> dict[str, Any]:
        return json.loads(self.state_path.read_text())


@pytest.fixture
def workspace(tmp_path: Path, api_url: str) -> Workspace:
    directory = tmp_path / "infra"
    directory.mkdir()
    home = tmp_path / "prefect-home"
    home.mkdir()
    return Workspace(directory, api_url, home)


def all_objects(api: httpx.Client, path: str) -> list[dict[str, Any]]:
    """Every object a filter endpoint lists, page by page (tests share one server with many objects)."""
    found: list[dict[str, Any]] = []
    while page := api.post(path, json={"limit": 200, "offset": len(found)}).json():
        found += page
    return found


def assert_ok(result: Result, code: int = 0) -> Result:
    assert result.exit_code == code, f"exit {result.exit_code} (wanted {code})\n{result.output}"
    return result


def assert_refused_writing_nothing(workspace: Workspace, cloud: CloudFake, where: str, says: str) -> None:
    """Bad input: `plan` and `apply` both stop (exit 1) naming `where` (file:line: address.field)
    and saying `says`, without a traceback, and nothing is written to the Cloud fake."""
    before = dict(cloud.requests)
    for command in (workspace.plan, workspace.apply):
        result = assert_ok(command(), 1)
        assert where in result.stderr and says in result.stderr and "Traceback" not in result.output, result.stderr
    assert cloud.writes_since(before) == {}


@pytest.fixture
def cloud(api_url: str) -> Iterator[CloudFake]:
    """The loopback Prefect Cloud fake (tests/cloud_fake.py) in front of the session's server."""
    with CloudFake(api_url, api_key=f"pnu_{secrets.token_hex(12)}", read_only_key=f"pnu_{secrets.token_hex(12)}") as fake:
        yield fake


@pytest.fixture
def open_source_trap() -> Iterator[RequestTrap]:
    """An API URL that is not a Cloud workspace URL and records every request sent to it: Cloud-only
    resources must be refused before any of them."""
    trap = RequestTrap()
    with trap.server:
        yield trap


@pytest.fixture
def cloud_workspace(workspace, cloud):
    """The workspace, pointed at the Cloud fake's workspace URL with the right API key."""
    workspace.env.update(PREFECT_API_URL=cloud.api_url, PREFECT_API_KEY=cloud.api_key)
    return workspace
