"""State: what prefect-provider manages, versioned, written atomically, locked while applied."""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from provider.errors import StateError, StateLocked

STATE_VERSION = 1
STATE_FILE = "prefect-provider.state.json"


@dataclass
class Record:
    """One managed object: where it lives on the server and the attributes last applied."""

    kind: str
    name: str
    id: str
    attributes: dict[str, Any]
    dependencies: list[str] = field(default_factory=list)


@dataclass
class State:
    lineage: str = field(default_factory=lambda: str(uuid.uuid4()))
    serial: int = 0
    version: int = STATE_VERSION
    resources: dict[str, Record] = field(default_factory=dict)  # address -> record

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "serial": self.serial,
            "lineage": self.lineage,
            "resources": {address: asdict(self.resources[address]) for address in sorted(self.resources)},
        }

    def rename(self, source: str, destination: str) -> None:
        """Move a record to a new address of the same kind (the object itself is untouched)."""
        if source not in self.resources:
            raise StateError(f"{source} is not in state")
        if destination in self.resources:
            raise StateError(f"{destination} is already in state")
        kind, _, name = destination.partition(".")
        if kind != self.resources[source].kind or not name:
            raise StateError(f"{source} -> {destination}: only renames within one kind are possible")
        record = self.resources.pop(source)
        record.name = name
        self.resources[destination] = record

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> State:
        version = data.get("version")
        if version != STATE_VERSION:
            raise StateError(f"state version {version!r} is not supported (this release reads version {STATE_VERSION})")
        return cls(
            lineage=data["lineage"],
            serial=int(data["serial"]),
            version=version,
            resources={address: Record(**record) for address, record in data.get("resources", {}).items()},
        )


@dataclass
class LockInfo:
    id: str
    operation: str
    who: str
    host: str
    pid: int
    created: str

    def describe(self) -> str:
        return f"{self.who} on {self.host} (pid {self.pid}, {self.operation} since {self.created}, lock id {self.id})"

    @classmethod
    def new(cls, operation: str) -> LockInfo:
        try:
            user = getpass.getuser()
        except Exception:  # no user name in some containers
            user = "unknown"
        host = socket.gethostname()
        return cls(
            id=str(uuid.uuid4()),
            operation=operation,
            who=f"{user}@{host}",
            host=host,
            pid=os.getpid(),
            created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        )


class LocalBackend:
    """`prefect-provider.state.json` beside the configuration, with a `.lock` file beside it."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")

    def describe(self) -> str:
        return str(self.path)

    def read(self) -> State | None:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"cannot read state {self.path}: {exc.strerror}") from None
        try:
            return State.from_json(json.loads(text))
        except (ValueError, KeyError, TypeError) as exc:
            raise StateError(f"state {self.path} is corrupt: {exc}") from None

    def write(self, state: State) -> None:
        """Write to a temporary file and rename it over the state, so a crash never leaves half a file."""
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(state.to_json(), indent=2, sort_keys=False) + "\n")
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)

    @contextlib.contextmanager
    def lock(self, operation: str, timeout: float = 0.0) -> Iterator[LockInfo]:
        info = LockInfo.new(operation)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                break
            except FileExistsError:
                holder = self._holder()
                if holder is not None and _is_dead_local(holder):
                    # Its process is gone from this machine: the lock is stale, take it over.
                    with contextlib.suppress(FileNotFoundError):
                        self.lock_path.unlink()
                    continue
                if time.monotonic() >= deadline:
                    who = holder.describe() if holder else "an unknown process"
                    raise StateLocked(
                        f"state {self.path} is locked by {who}; try again when it is done, "
                        "or wait for it with --lock-timeout 60s"
                    ) from None
                time.sleep(0.2)
        with os.fdopen(fd, "w") as handle:
            json.dump(asdict(info), handle)
        try:
            yield info
        finally:
            with contextlib.suppress(FileNotFoundError):
                self.lock_path.unlink()

    def _holder(self) -> LockInfo | None:
        try:
            return LockInfo(**json.loads(self.lock_path.read_text()))
        except (OSError, ValueError, TypeError):
            return None


def _is_dead_local(holder: LockInfo) -> bool:
    if holder.host != socket.gethostname():
        return False
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class StateWriter:
    """Persists state after every completed operation of an apply (thread-safe)."""

    def __init__(self, backend: LocalBackend, state: State):
        self.backend = backend
        self.state = state
        self._lock = threading.Lock()

    def put(self, address: str, record: Record) -> None:
        with self._lock:
            self.state.resources[address] = record
            self._persist()

    def remove(self, address: str) -> None:
        with self._lock:
            if self.state.resources.pop(address, None) is not None:
                self._persist()

    def _persist(self) -> None:
        self.state.serial += 1
        self.backend.write(self.state)
