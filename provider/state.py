"""State: what prefect-provider manages, versioned, written atomically, locked while applied."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
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
from resources.base import Address

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
    # lifecycle.prevent_destroy as last applied: it still guards the object once its block is removed.
    prevent_destroy: bool = False


@dataclass
class State:
    lineage: str = field(default_factory=lambda: str(uuid.uuid4()))
    serial: int = 0
    version: int = STATE_VERSION
    resources: dict[str, Record] = field(default_factory=dict)  # address -> record
    # Creates that were started but not recorded as done (the process may have died in between):
    # an object found under such an address is adopted by the next plan, not created twice.
    pending: dict[str, dict[str, str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "serial": self.serial,
            "lineage": self.lineage,
            "resources": {address: asdict(self.resources[address]) for address in sorted(self.resources)},
            "pending": dict(sorted(self.pending.items())),
        }

    def rename(self, source: str, destination: str) -> None:
        """Move a record to a new address of the same kind (the object itself is untouched)."""
        if source not in self.resources:
            raise StateError(f"{source} is not in state")
        if destination in self.resources:
            raise StateError(f"{destination} is already in state")
        try:  # Address.parse knows nested kinds, whose addresses have more dots
            new = Address.parse(destination)
        except ValueError as exc:
            raise StateError(str(exc)) from None
        if new.kind != self.resources[source].kind:
            raise StateError(f"{source} -> {destination}: only renames within one kind are possible")
        record = self.resources.pop(source)
        record.name = new.name
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
            pending=dict(data.get("pending", {})),
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


class Backend:
    """Where state lives. Subclasses read and write it and take the lock; waiting is shared."""

    def describe(self) -> str:
        raise NotImplementedError

    def read(self) -> State | None:
        raise NotImplementedError

    def write(self, state: State) -> None:
        raise NotImplementedError

    def record(self, state: State, entry: dict[str, Any]) -> None:
        """Persist one completed operation (`entry`, already applied to `state`).

        By default the whole state is written again; a backend that can append does less.
        """
        self.write(state)

    def _acquire(self, info: LockInfo) -> tuple[bool, LockInfo | None]:
        """Try once: (True, None) when taken, else (False, the current holder if known)."""
        raise NotImplementedError

    def _release(self, info: LockInfo) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def lock(self, operation: str, timeout: float = 0.0) -> Iterator[LockInfo]:
        info = LockInfo.new(operation)
        deadline = time.monotonic() + timeout
        while True:
            taken, holder = self._acquire(info)
            if taken:
                break
            if time.monotonic() >= deadline:
                who = holder.describe() if holder else "another process"
                raise StateLocked(
                    f"state {self.describe()} is locked by {who}; try again when it is done, "
                    "or wait for it with --lock-timeout 60s"
                )
            time.sleep(0.2)
        try:
            yield info
        finally:
            self._release(info)

    @staticmethod
    def parse(state_json: str | bytes, where: str) -> State:
        try:
            return State.from_json(json.loads(state_json))
        except (ValueError, KeyError, TypeError) as exc:
            raise StateError(f"state {where} is corrupt: {exc}") from None


class LocalBackend(Backend):
    """`prefect-provider.state.json` beside the configuration, locked with flock on a `.lock` file.

    The kernel drops an flock when its process dies, so a crashed apply never leaves a stale lock.
    During an apply each completed operation is appended to a `.journal` file (rewriting a large
    state after every operation would make an apply quadratic); reading replays the journal, and
    the next full write folds it into the state file.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.journal_path = self.path.with_name(self.path.name + ".journal")
        self._lock_fd: int | None = None

    def describe(self) -> str:
        return str(self.path)

    def read(self) -> State | None:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return self._replay(None)
        except OSError as exc:
            raise StateError(f"cannot read state {self.path}: {exc.strerror}") from None
        return self._replay(self.parse(text, str(self.path)))

    def write(self, state: State) -> None:
        """Write to a temporary file and rename it over the state, so a crash never leaves half a file."""
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(state.to_json(), indent=2) + "\n")
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        with contextlib.suppress(FileNotFoundError):
            self.journal_path.unlink()

    def record(self, state: State, entry: dict[str, Any]) -> None:
        line = json.dumps({"lineage": state.lineage, "serial": state.serial, **entry}) + "\n"
        with open(self.journal_path, "a") as journal:
            journal.write(line)

    def _replay(self, state: State | None) -> State | None:
        """The state with the operations of an interrupted apply's journal applied."""
        try:
            lines = self.journal_path.read_text().splitlines()
        except FileNotFoundError:
            return state
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                break  # a line cut short by a crash: everything before it counts
            if state is None:
                state = State(lineage=entry["lineage"])
            if entry["lineage"] != state.lineage or entry["serial"] <= state.serial:
                continue  # left over from another state, or already in the file
            apply_entry(state, entry)
        return state

    def _acquire(self, info: LockInfo) -> tuple[bool, LockInfo | None]:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_info(os.read(fd, 4096))
            os.close(fd)
            return False, holder
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(asdict(info)).encode())
        self._lock_fd = fd
        return True, None

    def _release(self, info: LockInfo) -> None:
        if self._lock_fd is not None:
            os.ftruncate(self._lock_fd, 0)
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None


class S3Backend(Backend):
    """State as one S3 object; the lock is a second object created only if absent (If-None-Match)."""

    def __init__(self, bucket: str, key: str, region: str | None = None, profile: str | None = None,
                 endpoint_url: str | None = None):
        self.bucket, self.key = bucket, key
        self.lock_key = key + ".lock"
        self.region, self.profile, self.endpoint_url = region, profile, endpoint_url
        self._client = None

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def client(self):
        if self._client is None:
            try:
                import boto3
            except ImportError:
                raise StateError("the S3 backend needs boto3: pip install 'prefect-provider[aws]'") from None
            # boto3 honours AWS_ENDPOINT_URL, AWS_PROFILE, AWS_REGION and the rest of the standard settings.
            session = boto3.session.Session(profile_name=self.profile, region_name=self.region)
            self._client = session.client("s3", endpoint_url=self.endpoint_url)
        return self._client

    def _call(self, what: str, method: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, method)(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "PreconditionFailed", "412"):
                raise
            raise StateError(f"{what} {self.describe()}: {code}: {exc.response.get('Error', {}).get('Message', exc)}") from None
        except BotoCoreError as exc:
            raise StateError(f"{what} {self.describe()}: {exc}") from None

    def read(self) -> State | None:
        from botocore.exceptions import ClientError

        try:
            body = self._call("cannot read state", "get_object", Key=self.key)["Body"].read()
        except ClientError:
            return None
        return self.parse(body, self.describe())

    def write(self, state: State) -> None:
        body = (json.dumps(state.to_json(), indent=2) + "\n").encode()
        self._call("cannot write state", "put_object", Key=self.key, Body=body, ContentType="application/json")

    def _acquire(self, info: LockInfo) -> tuple[bool, LockInfo | None]:
        from botocore.exceptions import ClientError

        try:
            self._call("cannot lock state", "put_object", Key=self.lock_key, Body=json.dumps(asdict(info)).encode(),
                       IfNoneMatch="*")
            return True, None
        except ClientError:
            pass
        try:
            holder = _lock_info(self._call("cannot read the lock of", "get_object", Key=self.lock_key)["Body"].read())
        except ClientError:
            return False, None  # released in between: the next try may take it
        if holder is not None and _is_dead_local(holder):
            # Its process is gone from this machine: the lock is stale, clear it and try again.
            self._call("cannot clear the stale lock of", "delete_object", Key=self.lock_key)
            return self._acquire(info)
        return False, holder

    def _release(self, info: LockInfo) -> None:
        self._call("cannot unlock state", "delete_object", Key=self.lock_key)


def backend_from_settings(settings: dict[str, Any] | None, directory: Path) -> Backend:
    """The backend a configuration's `backend:` block names (a local file beside it by default)."""
    if not settings:
        return LocalBackend(directory / STATE_FILE)
    if not isinstance(settings, dict) or len(settings) != 1:
        raise StateError("backend: expected exactly one of local: {path: FILE} or s3: {bucket: ..., key: ...}")
    (name, options), = settings.items()
    options = options or {}
    if name == "local" and isinstance(options, dict) and set(options) <= {"path"}:
        return LocalBackend(directory / options.get("path", STATE_FILE))
    allowed = {"bucket", "key", "region", "profile", "endpoint_url"}
    if name == "s3" and isinstance(options, dict) and {"bucket", "key"} <= set(options) <= allowed:
        return S3Backend(**options)
    raise StateError(
        f"backend {name}: unsupported settings {options!r}; expected local: {{path: FILE}} or "
        f"s3: {{bucket: B, key: K, region: R, profile: P, endpoint_url: URL}} (bucket and key required)"
    )


def _is_dead_local(holder: LockInfo) -> bool:
    """True when the holder ran on this machine and its process is gone."""
    if holder.host != socket.gethostname():
        return False
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _lock_info(raw: bytes) -> LockInfo | None:
    try:
        return LockInfo(**json.loads(raw))
    except (ValueError, TypeError):
        return None


def apply_entry(state: State, entry: dict[str, Any]) -> None:
    """Apply one journal entry: {"op": "intent" | "put" | "remove" | "move", "address", ...}."""
    address = entry["address"]
    if entry["op"] == "move":
        if address in state.resources and entry["to"] not in state.resources:
            state.rename(address, entry["to"])
        state.serial = max(state.serial, entry.get("serial", state.serial))
        return
    if entry["op"] == "intent":
        state.pending[address] = {"kind": entry["kind"], "name": entry["name"]}
        return
    state.pending.pop(address, None)
    if entry["op"] == "put":
        state.resources[address] = Record(**entry["record"])
    else:
        state.resources.pop(address, None)
    state.serial = max(state.serial, entry.get("serial", state.serial))


class StateWriter:
    """Persists every completed operation of an apply at once (thread-safe); `close` compacts."""

    def __init__(self, backend: Backend, state: State):
        self.backend = backend
        self.state = state
        self._lock = threading.Lock()

    def intend(self, address: str, kind: str, name: str) -> None:
        """Record that a create is about to be sent, before it is."""
        self._record({"op": "intent", "address": address, "kind": kind, "name": name})

    def put(self, address: str, record: Record) -> None:
        self._record({"op": "put", "address": address, "record": asdict(record)})

    def move(self, address: str, to: str) -> None:
        self._record({"op": "move", "address": address, "to": to})

    def remove(self, address: str) -> None:
        if address in self.state.resources or address in self.state.pending:
            self._record({"op": "remove", "address": address})

    def close(self) -> None:
        with self._lock:
            self.backend.write(self.state)

    def _record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.state.serial += 1
            entry["serial"] = self.state.serial
            apply_entry(self.state, entry)
            self.backend.record(self.state, entry)
