"""The offline engine suite: no Prefect server, the in-memory kinds of memory.py."""

from tests.engine.memory import memory, unused_client  # noqa: F401  (the fixtures)
