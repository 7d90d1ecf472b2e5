"""Test support: a Prefect server on SQLite or on a throwaway PostgreSQL cluster.

With `workers` > 1 the server runs that many API processes (`prefect server start --workers N`), as
production servers on PostgreSQL do; Prefect allows that only with Redis for messaging and leases,
so a throwaway `redis-server` (Debian's) runs beside it on a loopback port and the server uses the
`prefect-redis` package.

The cluster uses Debian's PostgreSQL binaries (`/usr/lib/postgresql/*/bin`), runs as the `postgres`
system user on a free loopback port with fsync off, lives in a temporary directory that user owns,
and is stopped by its postmaster's process id (fast shutdown) and removed afterwards. No system
service is involved. The Prefect server is the same `EmbeddedServer` the CLI starts, pointed at the
database through PREFECT_API_DATABASE_CONNECTION_URL (asyncpg comes with prefect).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

from provider.server import EmbeddedServer, _signal_group, free_port, healthy, prefect_executable

DATABASES = ("sqlite", "postgres")
POSTGRES_USER = "postgres"
START_TIMEOUT = 60.0
REDIS_SERVER = "/usr/bin/redis-server"


def postgres_bin() -> Path:
    """The newest installed Debian PostgreSQL's binaries."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda path: int(path.parts[-3]))
    if not found:
        raise RuntimeError("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres)")
    return found[-1].parent


def _as_postgres(*args: str) -> list[str]:
    return ["runuser", "-u", POSTGRES_USER, "--", *args]


@contextlib.contextmanager
def postgres_cluster() -> Iterator[str]:
    """A fresh cluster with an empty `prefect` database; yields its SQLAlchemy asyncpg URL."""
    binaries = postgres_bin()
    # Not under pytest's tmp dirs: those are private to root and the postgres user must own this one.
    root = Path(tempfile.mkdtemp(prefix="prefect-provider-pg-"))
    shutil.chown(root, POSTGRES_USER, POSTGRES_USER)
    data = root / "db"
    port = free_port()
    log_path = root / "postgres.log"
    try:
        subprocess.run(_as_postgres(str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", POSTGRES_USER),
                       check=True, capture_output=True)
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                _as_postgres(str(binaries / "postgres"), "-D", str(data), "-p", str(port), "-k", str(root),
                             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                             "-c", "synchronous_commit=off", "-c", "full_page_writes=off"),
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            _wait_ready(binaries, port, process, log_path)
            subprocess.run([str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", POSTGRES_USER, "prefect"],
                           check=True, capture_output=True)
            yield f"postgresql+asyncpg://{POSTGRES_USER}@127.0.0.1:{port}/prefect"
        finally:
            _stop_postmaster(data, process)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _wait_ready(binaries: Path, port: int, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"postgres exited with code {process.returncode}:\n{log_path.read_text()[-2000:]}")
        ready = subprocess.run([str(binaries / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-U", POSTGRES_USER],
                               capture_output=True)
        if ready.returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"postgres did not start within {START_TIMEOUT:.0f}s:\n{log_path.read_text()[-2000:]}")


def _stop_postmaster(data: Path, process: subprocess.Popen) -> None:
    """Fast shutdown (SIGINT) of the postmaster named in its pid file; runuser then exits with it."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        os.kill(int((data / "postmaster.pid").read_text().splitlines()[0]), signal.SIGINT)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()  # runuser; the postmaster, orphaned, still got SIGINT above
        process.wait(10)


@contextlib.contextmanager
def redis_server() -> Iterator[int]:
    """A throwaway Redis on a free loopback port, nothing persisted; yields its port, stops it by pid."""
    if not Path(REDIS_SERVER).exists():
        raise RuntimeError(f"{REDIS_SERVER} not found: apt-get install redis-server")
    port = free_port()
    process = subprocess.Popen([REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                                "--appendonly", "no"], stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _accepts(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {port}")
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(30)


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def redis_settings(port: int) -> dict[str, str]:
    """Server settings for several API workers: messaging, ordering and leases in Redis."""
    return {
        "PREFECT_MESSAGING_BROKER": "prefect_redis.messaging",
        "PREFECT_MESSAGING_CACHE": "prefect_redis.messaging",
        "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "prefect_redis.ordering",
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect_redis.lease_storage",
        "PREFECT_REDIS_MESSAGING_HOST": "127.0.0.1",
        "PREFECT_REDIS_MESSAGING_PORT": str(port),
        "PREFECT_REDIS_MESSAGING_DB": "0",
    }


@contextlib.contextmanager
def prefect_server(data_dir: Path, database: str = "sqlite", workers: int = 1, **settings: str) -> Iterator[str]:
    """A Prefect server with its data under `data_dir`, on `database` (sqlite or postgres), with
    `workers` API processes (postgres only) and extra server `settings` as environment variables;
    yields its API URL, stops it by pid."""
    if database not in DATABASES:
        raise ValueError(f"unknown test database {database!r}: use one of {', '.join(DATABASES)}")
    if workers > 1 and database != "postgres":
        raise ValueError("several API workers need PostgreSQL (Prefect refuses them on SQLite)")
    if workers > 1 and importlib.util.find_spec("prefect_redis") is None:
        raise RuntimeError("several API workers need the prefect-redis package: pip install prefect-redis==0.3.0")
    with contextlib.ExitStack() as stack:
        if database == "postgres":
            settings = {"PREFECT_API_DATABASE_CONNECTION_URL": stack.enter_context(postgres_cluster()), **settings}
        if workers > 1:
            settings = {**redis_settings(stack.enter_context(redis_server())), **settings}
        server = EmbeddedServer(data_dir)
        with mock.patch.dict(os.environ, settings):  # the server process inherits them; this process is unchanged
            info = server.start()
        stack.callback(server.stop)
        if workers > 1:
            # The first, single-worker start created the schema and the system block types (several
            # workers starting on an empty database race to create them and the server exits).
            server.stop()
            yield stack.enter_context(_multi_worker_server(data_dir, workers, info.port, settings))
        else:
            yield info.api_url


@contextlib.contextmanager
def _multi_worker_server(data_dir: Path, workers: int, port: int, settings: dict[str, str]) -> Iterator[str]:
    env = {**os.environ, **settings, "PREFECT_HOME": str(data_dir / "home"), "PREFECT_SERVER_API_HOST": "127.0.0.1",
           "PREFECT_SERVER_API_PORT": str(port), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_UI_ENABLED": "false", "PREFECT_API_URL": ""}
    api_url = f"http://127.0.0.1:{port}/api"
    with open(data_dir / "server-workers.log", "ab") as log:
        process = subprocess.Popen([prefect_executable(), "server", "start", "--workers", str(workers)], env=env,
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True, cwd=data_dir)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not healthy(api_url):
            if process.poll() is not None or time.monotonic() > deadline:
                log = data_dir / "server-workers.log"
                raise RuntimeError(f"prefect server --workers {workers} did not start; see {log}")
            time.sleep(0.3)
        yield api_url
    finally:
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait(10)
