"""The PostgreSQL test harness (tests/pg.py): a cluster that answers on loopback while it runs and
leaves no process and no directory behind; the server fixture refuses a database it does not know."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import asyncpg
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
