"""State: what prefect-provider manages, versioned, written atomically and only over the state that
was read (compare-and-swap), locked while applied."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import getpass
import hashlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import from_json

from provider.errors import StateConflict, StateError, StateLocked
from resources import CATALOG, KINDS

STATE_VERSION = 1
STATE_FILE = "prefect-provider.state.json"
# How long an S3 lock lives unless its holder renews it (seconds); tests shorten it.
LOCK_LEASE_ENV = "PREFECT_PROVIDER_LOCK_LEASE"
DEFAULT_LOCK_LEASE = 60.0


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
    # Ids of objects this one replaced (create_before_destroy) whose delete is not known to have
    # happened, as Terraform's deposed objects: the next plan deletes them.
    deposed: list[str] = field(default_factory=list)


@dataclass
class State:
    lineage: str = field(default_factory=lambda: str(uuid.uuid4()))
    serial: int = 0
    version: int = STATE_VERSION
    resources: dict[str, Record] = field(default_factory=dict)  # address -> record
    # Creates that were started but not recorded as done (the process may have died in between):
    # an object found under such an address is adopted by the next plan, not created twice.
    pending: dict[str, dict[str, str]] = field(default_factory=dict)
    # The id of the Cloud workspace a configuration with `workspace:` was applied to: a run that
    # resolves to another workspace is refused rather than planning to create everything there.
    workspace: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "serial": self.serial,
            "lineage": self.lineage,
            **({"workspace": self.workspace} if self.workspace else {}),
            "resources": {address: asdict(self.resources[address]) for address in sorted(self.resources)},
            "pending": dict(sorted(self.pending.items())),
        }

    def rename(self, source: str, destination: str) -> None:
        """Move a record to a new address of the same kind (the object itself is untouched)."""
        if source not in self.resources:
            raise StateError(f"{source} is not in state")
        if destination in self.resources:
            raise StateError(f"{destination} is already in state")
        try:  # the catalog knows nested kinds, whose addresses have more dots
            new = CATALOG.parse(destination)
        except ValueError as exc:
            raise StateError(str(exc)) from None
        if new.kind != self.resources[source].kind:
            raise StateError(f"{source} -> {destination}: only renames within one kind are possible")
        record = self.resources.pop(source)
        record.name = new.name
        self.resources[destination] = record


# --- reading state files: every malformed file is a clear error, never a traceback ---------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Pending(_Strict):
    kind: str
    name: str


class _StateFile(_Strict):
    """The shape of a state file. Records are checked against the Record dataclass itself, so a
    field added to it (optional, with a default) may be absent from older files."""

    version: int
    serial: int = Field(ge=0)
    lineage: str = Field(min_length=1)
    workspace: str | None = None
    resources: dict[str, Record] = Field(default_factory=dict)
    pending: dict[str, _Pending] = Field(default_factory=dict)


class _JournalEntry(_Strict):
    lineage: str
    serial: int
    op: Literal["intent", "put", "remove", "move"]
    address: str
    kind: str | None = None
    name: str | None = None
    to: str | None = None
    record: Record | None = None


_JOURNAL_NEEDS = {"intent": ("kind", "name"), "put": ("record",), "move": ("to",), "remove": ()}


def parse_state(raw: str | bytes, where: str) -> State:
    """The state in `raw` (the text of a state file); StateError naming `where` and the fault."""
    try:
        parsed = _StateFile.model_validate_json(raw)
    except ValidationError as exc:
        raise StateError(_not_a_state(raw, where, exc)) from None
    if parsed.version != STATE_VERSION:
        raise StateError(_not_a_state(raw, where, None))
    for address, record in parsed.resources.items():
        _check_address(f"resources[{json.dumps(address)}]", address, record.kind, record.name, where)
    for address, entry in parsed.pending.items():
        _check_address(f"pending[{json.dumps(address)}]", address, entry.kind, entry.name, where)
    return State(lineage=parsed.lineage, serial=parsed.serial, version=parsed.version, resources=parsed.resources,
                 pending={address: entry.model_dump() for address, entry in parsed.pending.items()},
                 workspace=parsed.workspace)


def _not_a_state(raw: str | bytes, where: str, exc: ValidationError | None) -> str:
    """What is wrong with a file that did not validate, the most basic fault first."""
    try:
        data = from_json(raw)
    except ValueError as error:
        return f"state {where} is not valid JSON: {error}"
    if not isinstance(data, dict):
        return f"state {where} is not a state file: expected a JSON object, found {json_type(data)}"
    version = data.get("version")
    if version != STATE_VERSION or isinstance(version, bool):
        return f"state {where}: version {version!r} is not supported (this release reads version {STATE_VERSION})"
    return f"state {where} is malformed: {validation_problems(exc)}"


def read_state_file(path: Path) -> State:
    """A state file given on the command line (e.g. to `state push`)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise StateError(f"cannot read state file {path}: {exc.strerror or exc}") from None
    return parse_state(raw, str(path))


def _check_address(field: str, address: str, kind: str, name: str, where: str) -> None:
    """The address (the key at `field`) names a known kind and agrees with its record's kind and name."""
    try:
        parsed = CATALOG.parse(address)
    except ValueError as exc:
        raise StateError(f"state {where} is malformed: {field}: {exc}") from None
    if parsed.kind not in KINDS:
        raise StateError(f"state {where} is malformed: {field}: unknown kind {parsed.kind!r}")
    if (parsed.kind, parsed.name) != (kind, name):
        raise StateError(f"state {where} is malformed: {field}: the record says kind {kind!r}, name {name!r}")


def validation_problems(exc: ValidationError, limit: int = 5) -> str:
    """Pydantic's errors as `field.path: what is wrong`, without the values (they may be large)."""
    wording = {"unexpected_keyword_argument": "unknown field", "extra_forbidden": "unknown field",
               "missing": "missing", "missing_argument": "missing"}
    lines = []
    for error in exc.errors(include_input=False)[:limit]:
        path = ""
        for part in error["loc"]:
            if isinstance(part, int):
                path += f"[{part}]"
            elif part.isidentifier():
                path += f".{part}" if path else part
            else:
                path += f"[{json.dumps(part)}]"
        lines.append(f"{path or 'the file'}: {wording.get(error['type'], error['msg'])}")
    more = exc.error_count() - limit
    return "; ".join(lines) + (f" (and {more} more)" if more > 0 else "")


def json_type(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}.get(type(value), "null")


# --- locks ------------------------------------------------------------------------------------


@dataclass
class LockInfo:
    id: str
    operation: str
    who: str
    host: str
    pid: int
    created: str
    # A lease (S3): the holder renews it while it runs; once it is `lease` seconds old by the
    # server's clock it is expired and may be broken. 0: no expiry (the local flock).
    lease: float = 0.0
    expires: str = ""  # by the holder's clock, for people to read

    def describe(self) -> str:
        until = f", lease until {self.expires}" if self.expires else ""
        return f"{self.who} on {self.host} (pid {self.pid}, {self.operation} since {self.created}{until}, lock id {self.id})"

    @classmethod
    def new(cls, operation: str, lease: float = 0.0) -> LockInfo:
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
            created=_now().isoformat(timespec="seconds"),
            lease=lease,
        )

    def renewed(self) -> bytes:
        """The lock object's body, with the expiry moved one lease ahead of now."""
        if self.lease:
            self.expires = (_now() + dt.timedelta(seconds=self.lease)).isoformat(timespec="seconds")
        return json.dumps(asdict(self)).encode()


def lock_lease() -> float:
    text = os.environ.get(LOCK_LEASE_ENV, "").strip()
    if not text:
        return DEFAULT_LOCK_LEASE
    try:
        lease = float(text.removesuffix("s"))
    except ValueError:
        lease = 0.0
    if not lease > 0:
        raise StateError(f"{LOCK_LEASE_ENV}={text!r}: expected a number of seconds, e.g. 60")
    return lease


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Backend:
    """Where state lives. Subclasses read and write it and take the lock; waiting is shared.

    Writes are compare-and-swap: `write` and `record` succeed only while the stored state is the
    one this backend last read or wrote. Otherwise they raise StateConflict, after saving the
    state they were given to a backup file beside the configuration, which the error names.
    """

    lease = 0.0  # seconds an unrenewed lock lives; 0: the lock never expires by itself
    backup_dir = Path(".")

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

    def force_unlock(self, lock_id: str) -> LockInfo:
        """Remove the lock `lock_id` whoever holds it; refuse any other. Returns the removed lock."""
        raise NotImplementedError

    def _acquire(self, info: LockInfo) -> tuple[bool, LockInfo | None]:
        """Try once: (True, None) when taken, else (False, the current holder if known)."""
        raise NotImplementedError

    def _release(self, info: LockInfo) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def lock(self, operation: str, timeout: float = 0.0) -> Iterator[LockInfo]:
        info = LockInfo.new(operation, self.lease)
        deadline = time.monotonic() + timeout
        while True:
            taken, holder = self._acquire(info)
            if taken:
                break
            if time.monotonic() >= deadline:
                who = holder.describe() if holder else "another process"
                hint = ""
                if holder and self.lease:
                    expiry = "it expires by itself, or " if holder.lease else ""
                    hint = f"; if no command holds it any more, {expiry}remove it with `prefect-provider force-unlock {holder.id} DIR`"
                raise StateLocked(
                    f"state {self.describe()} is locked by {who}; try again when it is done, "
                    f"or wait for it with --lock-timeout 60s{hint}"
                )
            time.sleep(0.2)
        try:
            yield info
        finally:
            self._release(info)

    def _conflict(self, state: State, now: str) -> StateConflict:
        """Save `state` (which could not be written) to a backup file; the error to raise."""
        if getattr(self, "_backup", None) is None:
            stamp = _now().strftime("%Y%m%dT%H%M%SZ")
            self._backup = self.backup_dir / f"prefect-provider.errored-{stamp}-{os.getpid()}.state.json"
        fd = os.open(self._backup, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as backup:
            backup.write(json.dumps(state.to_json(), indent=2) + "\n")
        return StateConflict(
            f"state {self.describe()} was changed by another command since this one read it ({now}); "
            f"not overwriting it. This command's state (serial {state.serial}) is saved in {self._backup}: "
            f"compare the two, and if it should win: prefect-provider state push {self._backup} DIR --force"
        )


def _describe_stored(state: State | None) -> str:
    return f"it is now at serial {state.serial}, lineage {state.lineage}" if state else "it is now gone"


class LocalBackend(Backend):
    """`prefect-provider.state.json` beside the configuration, locked with flock on a `.lock` file.

    The kernel drops an flock when its process dies, so a crashed apply never leaves a stale lock.
    During an apply each completed operation is appended to a `.journal` file (rewriting a large
    state after every operation would make an apply quadratic); reading replays the journal, and
    the next full write folds it into the state file. Before each write or append the state file
    must still be the one read (its hash; its inode, size and mtime for a cheap check per append),
    so a writer that ignored the lock is never silently overwritten.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.journal_path = self.path.with_name(self.path.name + ".journal")
        self.backup_dir = self.path.parent
        self._lock_fd: int | None = None
        self._digest: str | None = None  # sha256 of the state file as read or written; None: absent
        self._stat: tuple[int, int, int] | None = None

    def describe(self) -> str:
        return str(self.path)

    def read(self) -> State | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            self._digest, self._stat = None, None
            return self._replay(None)
        except OSError as exc:
            raise StateError(f"cannot read state {self.path}: {exc.strerror}") from None
        state = parse_state(raw, str(self.path))
        self._digest, self._stat = hashlib.sha256(raw).hexdigest(), self._current_stat()
        return self._replay(state)

    def write(self, state: State) -> None:
        """Write to a temporary file and rename it over the state, so a crash never leaves half a file."""
        if self._current_digest() != self._digest:
            raise self._conflict_here(state)
        raw = (json.dumps(state.to_json(), indent=2) + "\n").encode()
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(raw)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        self._digest, self._stat = hashlib.sha256(raw).hexdigest(), self._current_stat()
        with contextlib.suppress(FileNotFoundError):
            self.journal_path.unlink()

    def record(self, state: State, entry: dict[str, Any]) -> None:
        if self._current_stat() != self._stat and self._current_digest() != self._digest:
            raise self._conflict_here(state)
        line = json.dumps({"lineage": state.lineage, "serial": state.serial, **entry}) + "\n"
        with open(self.journal_path, "a") as journal:
            journal.write(line)

    def force_unlock(self, lock_id: str) -> LockInfo:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_info(os.read(fd, 4096))
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            raise StateError(f"state {self.describe()} is not locked")
        finally:
            os.close(fd)
        if holder is None or holder.id != lock_id:
            raise StateError(_wrong_lock_id(self, lock_id, holder))
        raise StateError(
            f"state {self.describe()} is locked by a running process, {holder.describe()}: a local lock is "
            "released by the kernel when its process ends and cannot be forced; stop that process instead"
        )

    def _conflict_here(self, state: State) -> StateConflict:
        try:
            stored = parse_state(self.path.read_bytes(), str(self.path))
        except (OSError, StateError):
            stored = None
        error = self._conflict(state, _describe_stored(stored) if stored or not self.path.exists() else "it is now unreadable")
        # The journal holds this command's operations, now in the backup: replayed over the other
        # writer's state it would bring back what that writer changed.
        with contextlib.suppress(FileNotFoundError):
            self.journal_path.unlink()
        return error

    def _current_digest(self) -> str | None:
        try:
            return hashlib.sha256(self.path.read_bytes()).hexdigest()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"cannot read state {self.path}: {exc.strerror}") from None

    def _current_stat(self) -> tuple[int, int, int] | None:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return None
        return stat.st_ino, stat.st_size, stat.st_mtime_ns

    def _replay(self, state: State | None) -> State | None:
        """The state with the operations of an interrupted apply's journal applied."""
        try:
            lines = self.journal_path.read_bytes().splitlines()
        except FileNotFoundError:
            return state
        except OSError as exc:
            raise StateError(f"cannot read state journal {self.journal_path}: {exc.strerror}") from None
        for number, line in enumerate(lines, 1):
            try:
                from_json(line)
            except ValueError:
                break  # a line cut short by a crash: everything before it counts
            try:
                entry = _JournalEntry.model_validate_json(line)
            except ValidationError as exc:
                raise StateError(f"state journal {self.journal_path}:{number} is malformed: {validation_problems(exc)}") from None
            if state is None:
                state = State(lineage=entry.lineage)
            if entry.lineage != state.lineage or entry.serial <= state.serial:
                continue  # left over from another state, or already in the file
            where = f"journal {self.journal_path}:{number}"
            missing = [name for name in _JOURNAL_NEEDS[entry.op] if getattr(entry, name) is None]
            if missing:
                raise StateError(f"state {where} is malformed: a {entry.op} entry needs {', '.join(missing)}")
            if entry.record is not None:
                _check_address("address", entry.address, entry.record.kind, entry.record.name, where)
            elif entry.kind is not None:
                _check_address("address", entry.address, entry.kind, entry.name or "", where)
            try:
                apply_entry(state, {key: value for key, value in entry.model_dump().items() if value is not None})
            except StateError as exc:  # a move to an address of another kind
                raise StateError(f"state {where} is malformed: {exc}") from None
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


class MemoryBackend(Backend):
    """State held in memory, e.g. a Pulumi resource's own small state, carried in its outputs.

    Reads and writes copy, so what a caller holds is never changed behind its back; nothing else
    can write it, so the lock is always free.
    """

    def __init__(self, state: State | None = None):
        self._stored = _copy(state) if state else None

    def describe(self) -> str:
        return "in-memory state"

    def read(self) -> State | None:
        return _copy(self._stored) if self._stored else None

    def write(self, state: State) -> None:
        self._stored = _copy(state)

    def force_unlock(self, lock_id: str) -> LockInfo:
        raise StateError(f"state {self.describe()} is not locked")

    def _acquire(self, info: LockInfo) -> tuple[bool, LockInfo | None]:
        return True, None

    def _release(self, info: LockInfo) -> None:
        pass


def _copy(state: State) -> State:
    return parse_state(json.dumps(state.to_json()), "in memory")


class S3Backend(Backend):
    """State as one S3 object; the lock is a second object (`KEY.lock`), a lease.

    The lock is created only if absent (If-None-Match: *) and names its holder (a uuid, the lock id)
    and its lease. A thread renews it (If-Match: its own ETag) every third of the lease while the
    command runs. Another command breaks it only once it is older than its lease by the server's
    clock (so the holders' clocks and process ids never matter), or with `force-unlock LOCK_ID`.
    State writes carry If-Match with the ETag read (If-None-Match: * for the first), so even a
    command whose lock was broken can never overwrite a state it did not read.
    """

    def __init__(self, bucket: str, key: str, region: str | None = None, profile: str | None = None,
                 endpoint_url: str | None = None, backup_dir: Path | None = None):
        self.bucket, self.key = bucket, key
        self.lock_key = key + ".lock"
        self.region, self.profile, self.endpoint_url = region, profile, endpoint_url
        self.backup_dir = Path(backup_dir or ".")
        self.lease = lock_lease()
        self._client = None
        self._etag: str | None = None  # of the state object as read or written; None: absent
        self._renewer: _LeaseRenewer | None = None

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
        """The S3 call; a failed precondition or a missing key is raised as ClientError for the caller."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, method)(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            if _precondition_failed(exc):
                raise
            error = exc.response.get("Error", {})
            raise StateError(f"{what} {self.describe()}: {error.get('Code', '')}: {error.get('Message', exc)}") from None
        except BotoCoreError as exc:
            raise StateError(f"{what} {self.describe()}: {exc}") from None

    def read(self) -> State | None:
        from botocore.exceptions import ClientError

        try:
            response = self._call("cannot read state", "get_object", Key=self.key)
        except ClientError:
            self._etag = None
            return None
        state = parse_state(response["Body"].read(), self.describe())
        self._etag = response["ETag"]
        return state

    def write(self, state: State) -> None:
        from botocore.exceptions import ClientError

        body = (json.dumps(state.to_json(), indent=2) + "\n").encode()
        condition = {"IfMatch": self._etag} if self._etag else {"IfNoneMatch": "*"}
        try:
            response = self._call("cannot write state", "put_object", Key=self.key, Body=body,
                                  ContentType="application/json", **condition)
        except ClientError:
            try:
                stored = parse_state(self._call("cannot read state", "get_object", Key=self.key)["Body"].read(), self.describe())
                now = _describe_stored(stored)
            except ClientError:
                now = _describe_stored(None)
            except StateError:
                now = "it is now unreadable"
            raise self._conflict(state, now) from None
        self._etag = response["ETag"]

    def force_unlock(self, lock_id: str) -> LockInfo:
        from botocore.exceptions import ClientError

        try:
            response = self._call("cannot read the lock of", "get_object", Key=self.lock_key)
        except ClientError:
            raise StateError(f"state {self.describe()} is not locked") from None
        holder = _lock_info(response["Body"].read())
        if holder is None or holder.id != lock_id:
            raise StateError(_wrong_lock_id(self, lock_id, holder))
        try:
            self._call("cannot unlock", "delete_object", Key=self.lock_key, IfMatch=response["ETag"])
        except ClientError:
            raise StateError(f"the lock on {self.describe()} changed while it was being removed; look again") from None
        return holder

    def _acquire(self, info: LockInfo) -> tuple[bool, LockInfo | None]:
        from botocore.exceptions import ClientError

        try:
            created = self._call("cannot lock state", "put_object", Key=self.lock_key, Body=info.renewed(), IfNoneMatch="*")
        except ClientError:
            pass
        else:
            self._renewer = _LeaseRenewer(self, info, created["ETag"])
            self._renewer.start()
            return True, None
        try:
            response = self._call("cannot read the lock of", "get_object", Key=self.lock_key)
        except ClientError:
            return False, None  # released in between: the next try may take it
        holder = _lock_info(response["Body"].read())
        if holder is not None and holder.lease and _age(response) > holder.lease + 1:  # + Last-Modified's 1 s steps
            try:  # expired: break exactly this lock (not one renewed or taken since), then try again
                self._call("cannot break the expired lock of", "delete_object", Key=self.lock_key, IfMatch=response["ETag"])
            except ClientError:
                pass
            return self._acquire(info)
        return False, holder

    def _release(self, info: LockInfo) -> None:
        from botocore.exceptions import ClientError

        renewer, self._renewer = self._renewer, None
        if renewer is None:
            return
        etag = renewer.stop()
        with contextlib.suppress(ClientError):  # no longer ours (expired and taken, or forced): leave it
            self._call("cannot unlock state", "delete_object", Key=self.lock_key, IfMatch=etag)


class _LeaseRenewer(threading.Thread):
    """Renews an S3 lock every third of its lease until stopped, or until the lock is no longer ours."""

    def __init__(self, backend: S3Backend, info: LockInfo, etag: str):
        super().__init__(name=f"lock-lease-{info.id}", daemon=True)
        self.backend, self.info, self.etag = backend, info, etag
        self._stopped = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        from botocore.exceptions import ClientError

        while not self._stopped.wait(self.info.lease / 3):
            with self._lock:
                if self._stopped.is_set():
                    return
                try:
                    renewed = self.backend._call("cannot renew the lock of", "put_object", Key=self.backend.lock_key,
                                                 Body=self.info.renewed(), IfMatch=self.etag)
                except ClientError:
                    return  # broken (forced, or expired and taken): state writes are still checked
                except Exception:  # a network blip: the next renewal may get through before expiry
                    continue
                self.etag = renewed["ETag"]

    def stop(self) -> str:
        """Stop renewing (waiting out a renewal in flight); the lock's current ETag."""
        with self._lock:
            self._stopped.set()
        return self.etag


def _precondition_failed(exc: Exception) -> bool:
    """A conditional request refused, or its object missing: the caller decides what that means."""
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return code in ("NoSuchKey", "404", "PreconditionFailed", "412", "ConditionalRequestConflict", "409")


def _age(response: dict[str, Any]) -> float:
    """Seconds since the object in a GetObject response was written, by the server's clock."""
    from email.utils import parsedate_to_datetime

    header = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    try:
        now = parsedate_to_datetime(header) if header else _now()
    except (TypeError, ValueError):
        now = _now()
    return (now - response["LastModified"]).total_seconds()


def _wrong_lock_id(backend: Backend, lock_id: str, holder: LockInfo | None) -> str:
    held = holder.describe() if holder else "an unreadable lock"
    return f"lock id {lock_id} does not match the lock on {backend.describe()}, held by {held}; nothing was unlocked"


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
        return S3Backend(**options, backup_dir=directory)
    raise StateError(
        f"backend {name}: unsupported settings {options!r}; expected local: {{path: FILE}} or "
        f"s3: {{bucket: B, key: K, region: R, profile: P, endpoint_url: URL}} (bucket and key required)"
    )


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

    def undepose(self, address: str, object_id: str) -> None:
        """The deposed object `object_id` is gone: the address's record stops listing it."""
        with self._lock:
            record = self.state.resources.get(address)
            if record is not None and object_id in record.deposed:
                kept = [d for d in record.deposed if d != object_id]
                self._append({"op": "put", "address": address, "record": asdict(replace(record, deposed=kept))})

    def close(self) -> None:
        with self._lock:
            self.backend.write(self.state)

    def _record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._append(entry)

    def _append(self, entry: dict[str, Any]) -> None:
        self.state.serial += 1
        entry["serial"] = self.state.serial
        apply_entry(self.state, entry)
        self.backend.record(self.state, entry)
