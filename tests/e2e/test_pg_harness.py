"""The PostgreSQL test harness (tests/pg.py): a cluster that answers on loopback while it runs and
leaves no process and no directory behind; the server fixture refuses a database it does not know;
the Redis beside a server with several API workers answers while it runs and stops with it, and
such a server (two workers on PostgreSQL) serves writes and stops."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import socket
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests import pg


def test_cluster_serves_on_loopback_then_leaves_nothing_behind() -> None:
    with pg.postgres_cluster() as url:
        assert url.startswith("postgresql+asyncpg://postgres@127.0.0.1:")

        async def probe() -> tuple[str, str, str]:
            connection = await asyncpg.connect(url.replace("+asyncpg", ""))
            try:
                return tuple([await connection.fetchval(query) for query in
                              ("select current_database()", "show fsync", "show data_directory")])
            finally:
                await connection.close()

        # A loop of its own, never set as the thread's: asyncio.run() would leave MainThread without one,
        # and later tests (Pulumi's runtime) ask for the current loop.
        loop = asyncio.new_event_loop()
        try:
            database, fsync, data_directory = loop.run_until_complete(probe())
        finally:
            loop.close()
        assert (database, fsync) == ("prefect", "off")
        data = Path(data_directory)
        postmaster = int((data / "postmaster.pid").read_text().splitlines()[0])
    assert not data.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(postmaster, 0)


def test_unknown_database_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown test database 'mysql'"), pg.prefect_server(tmp_path, "mysql"):
        pass


def test_several_workers_are_refused_on_sqlite(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="several API workers need PostgreSQL"), pg.prefect_server(tmp_path, "sqlite", 2):
        pass


@pytest.mark.skipif(not Path(pg.REDIS_SERVER).exists(), reason="redis-server is not installed (apt-get install redis-server)")
def test_redis_serves_on_loopback_then_stops() -> None:
    with pg.redis_server() as port:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
            connection.sendall(b"PING\r\n")
            assert connection.recv(64) == b"+PONG\r\n"
        assert pg.redis_settings(port)["PREFECT_REDIS_MESSAGING_PORT"] == str(port)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)


@pytest.mark.skipif(not Path(pg.REDIS_SERVER).exists() or importlib.util.find_spec("prefect_redis") is None,
                    reason="several API workers need redis-server (apt) and prefect-redis (pip)")
def test_server_with_two_workers_serves_writes_and_stops(tmp_path: Path) -> None:
    with pg.prefect_server(tmp_path, "postgres", 2, PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false") as api:
        created = httpx.post(f"{api}/variables/", json={"name": "two-workers", "value": 1}, timeout=30)
        assert created.status_code == 201, created.text
        assert httpx.get(f"{api}/variables/name/two-workers", timeout=30).json()["value"] == 1
        assert "Starting server with 2 worker processes" in (tmp_path / "server-workers.log").read_text()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{api}/health", timeout=5)
