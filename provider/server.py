"""The embedded local Prefect server: started as a separate process, reused while it runs.

`prefect` is never imported here: the server runs from the `prefect` console script installed
by the `server` extra, so the CLI stays fast.

A pid alone does not name a process for long: once the server is gone the pid can be reused by
anything. `server.json` therefore records the process's identity (its start time in clock ticks
since boot and its command line, both from /proc), and nothing is signalled unless both still
match. Starting is serialized with a lock file, so commands started at once share one server.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from provider.errors import ProviderError

DATA_DIR = ".prefect-provider"
START_TIMEOUT = 90.0
STOP_TIMEOUT = 15.0


@dataclass(frozen=True)
class ProcessIdentity:
    """What tells one process from a later one with the same pid."""

    start_time: int  # clock ticks after boot: field 22 of /proc/PID/stat
    cmdline: list[str] = field(default_factory=list)


def process_identity(pid: int) -> ProcessIdentity | None:
    """The identity of the live process `pid`, or None when there is none (or it cannot be read)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: count fields after it.
    fields = stat[stat.rfind(")") + 2 :].split()
    if len(fields) < 20 or fields[0] == "Z":  # a zombie has exited
        return None
    return ProcessIdentity(int(fields[19]), [part.decode(errors="replace") for part in cmdline.split(b"\0")[:-1]])


@dataclass
class ServerInfo:
    pid: int
    port: int
    home: str
    start_time: int | None = None
    cmdline: list[str] | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def is_ours(self) -> bool:
        """Whether `pid` is still the process this tool started (and leads the group it created)."""
        if self.start_time is None or self.cmdline is None:
            return False  # written without an identity: cannot be verified, so never signalled
        if process_identity(self.pid) != ProcessIdentity(self.start_time, self.cmdline):
            return False
        try:
            return os.getpgid(self.pid) == self.pid
        except ProcessLookupError:
            return False


@dataclass
class StopResult:
    stopped: bool
    message: str

    def __bool__(self) -> bool:  # `if server.stop():` keeps meaning "a server was stopped"
        return self.stopped


class EmbeddedServer:
    """A Prefect server whose data (SQLite database, logs) lives under `data_dir`."""

    def __init__(self, data_dir: Path | str = DATA_DIR):
        self.data_dir = Path(data_dir).absolute()
        self.info_path = self.data_dir / "server.json"
        self.log_path = self.data_dir / "server.log"
        self.lock_path = self.data_dir / "server.lock"

    def info(self) -> ServerInfo | None:
        try:
            return ServerInfo(**json.loads(self.info_path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def running(self) -> ServerInfo | None:
        """The server's info when its process is the one started and it answers its health check."""
        info = self.info()
        if info is None or not info.is_ours() or not healthy(info.api_url):
            return None
        return info

    def stale_reason(self) -> str | None:
        """Why server.json does not describe a server of ours, when it exists but does not."""
        info = self.info()
        if info is None:
            return None if not self.info_path.exists() else f"{self.info_path} is unreadable"
        if info.is_ours():
            return None
        if info.start_time is None:
            return f"{self.info_path} records no process identity, so pid {info.pid} cannot be verified"
        if process_identity(info.pid) is None:
            return f"the server (pid {info.pid}) has exited"
        return f"pid {info.pid} now belongs to another process, which was left alone"

    def ensure(self) -> tuple[ServerInfo, bool]:
        """A running server, started if need be; the flag says whether it was started now."""
        info = self.running()
        if info is not None:
            return info, False
        with self._locked():
            info = self.running()  # another command may have started it while this one waited
            if info is not None:
                return info, False
            return self._start(None), True

    def start(self, port: int | None = None) -> ServerInfo:
        with self._locked():
            return self.running() or self._start(port)

    def _start(self, port: int | None) -> ServerInfo:
        executable = prefect_executable()
        home = self.data_dir / "home"
        home.mkdir(exist_ok=True)
        port = port or free_port()
        env = {
            **os.environ,
            "PREFECT_HOME": str(home),
            "PREFECT_SERVER_API_HOST": "127.0.0.1",
            "PREFECT_SERVER_API_PORT": str(port),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
            "PREFECT_API_URL": "",
        }
        for secret in ("PREFECT_API_KEY", "PREFECT_API_AUTH_STRING", "PREFECT_PROFILE"):
            env.pop(secret, None)
        with open(self.log_path, "ab") as log:
            process = subprocess.Popen(
                [executable, "server", "start"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stopped as a whole, outlives the CLI
                cwd=self.data_dir,
            )
        try:
            info = self._wait_until_healthy(process, port, home)
        except BaseException:
            # Our own child, not yet reaped, so its pid (and group) cannot have been reused.
            if process.poll() is None:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait()
            with contextlib.suppress(FileNotFoundError):
                self.info_path.unlink()
            raise
        return info

    def _wait_until_healthy(self, process: subprocess.Popen, port: int, home: Path) -> ServerInfo:
        info = ServerInfo(pid=process.pid, port=port, home=str(home))
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ProviderError(
                    f"the embedded Prefect server exited with code {process.returncode}; see {self.log_path}"
                )
            if healthy(info.api_url):
                # Read only now: just after the exec, /proc can still show an empty command line.
                identity = process_identity(process.pid)
                if identity is not None and identity.cmdline:
                    info.start_time, info.cmdline = identity.start_time, identity.cmdline
                    self._write_info(info)
                    return info
            time.sleep(0.3)
        raise ProviderError(f"the embedded Prefect server did not start within {START_TIMEOUT:.0f}s; see {self.log_path}")

    def _write_info(self, info: ServerInfo) -> None:
        temporary = self.info_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(info)))
        temporary.replace(self.info_path)

    def stop(self) -> StopResult:
        """Stop the server this tool started; a stale server.json is removed, its pid never signalled."""
        if not self.info_path.exists():
            return StopResult(False, "Not running.")
        with self._locked():
            info = self.info()
            if info is None:
                stale = self.stale_reason()
                with contextlib.suppress(FileNotFoundError):
                    self.info_path.unlink()
                return StopResult(False, f"Not running ({stale}; removed it)." if stale else "Not running.")
            if not info.is_ours():
                reason = self.stale_reason()
                self.info_path.unlink()
                return StopResult(False, f"Not running: {reason}. Removed the stale {self.info_path.name}.")
            # The group is ours (verified above) for as long as it has members, watched from here on:
            # an id cannot be given to a new process while a group of that id exists.
            _signal_group(info.pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT
            while _live_members(info.pid) and time.monotonic() < deadline:
                _reap(info.pid)
                time.sleep(0.1)
            if _live_members(info.pid):
                _signal_group(info.pid, signal.SIGKILL)
            self.info_path.unlink()
            return StopResult(True, "Stopped.")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Holds `server.lock` (an flock, released by the kernel if this process dies)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / ".gitignore").write_text("*\n")
        with open(self.lock_path, "a") as handle:
            deadline = time.monotonic() + START_TIMEOUT + STOP_TIMEOUT
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise ProviderError(f"another command has held {self.lock_path} for too long") from None
                    time.sleep(0.2)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _signal_group(pgid: int, signum: int) -> None:
    """Signal the process group this tool created for the server (its id is the server's pid)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def _live_members(pgid: int) -> list[int]:
    """The processes of group `pgid` that have not exited (zombies awaiting their parent excluded)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, _parent, group = stat[stat.rfind(")") + 2 :].split()[:3]
        if state != "Z" and int(group) == pgid:
            members.append(int(entry.name))
    return members


def _reap(pid: int) -> None:
    """Collect our own exited child (when the server was started by this very process)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def prefect_executable() -> str:
    beside = Path(sys.executable).parent / "prefect"
    if beside.exists():
        return str(beside)
    found = shutil.which("prefect")
    if found:
        return found
    raise ProviderError(
        "no Prefect API is configured and the embedded server is not installed: "
        "install it with `pip install 'prefect-provider[server]'`, or set PREFECT_API_URL / --api-url"
    )


def healthy(api_url: str) -> bool:
    try:
        return httpx.get(f"{api_url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
