"""The embedded local Prefect server: started as a separate process, reused while it runs.

`prefect` is never imported here: the server runs from the `prefect` console script installed
by the `server` extra, so the CLI stays fast.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from provider.errors import ProviderError

DATA_DIR = ".prefect-provider"
START_TIMEOUT = 90.0


@dataclass
class ServerInfo:
    pid: int
    port: int
    home: str

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"


class EmbeddedServer:
    """A Prefect server whose data (SQLite database, logs) lives under `data_dir`."""

    def __init__(self, data_dir: Path | str = DATA_DIR):
        self.data_dir = Path(data_dir).absolute()
        self.info_path = self.data_dir / "server.json"
        self.log_path = self.data_dir / "server.log"

    def info(self) -> ServerInfo | None:
        try:
            return ServerInfo(**json.loads(self.info_path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def running(self) -> ServerInfo | None:
        """The server's info when its process is alive and it answers its health check."""
        info = self.info()
        if info is None or not _alive(info.pid) or not healthy(info.api_url):
            return None
        return info

    def ensure(self) -> tuple[ServerInfo, bool]:
        """A running server, started if need be; the flag says whether it was started now."""
        info = self.running()
        if info is not None:
            return info, False
        return self.start(), True

    def start(self, port: int | None = None) -> ServerInfo:
        info = self.running()
        if info is not None:
            return info
        executable = prefect_executable()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / ".gitignore").write_text("*\n")
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
        env.pop("PREFECT_API_KEY", None)
        env.pop("PREFECT_PROFILE", None)
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
        info = ServerInfo(pid=process.pid, port=port, home=str(home))
        self.info_path.write_text(json.dumps(asdict(info)))
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ProviderError(
                    f"the embedded Prefect server exited with code {process.returncode}; see {self.log_path}"
                )
            if healthy(info.api_url):
                return info
            time.sleep(0.3)
        self.stop()
        raise ProviderError(f"the embedded Prefect server did not start within {START_TIMEOUT:.0f}s; see {self.log_path}")

    def stop(self) -> bool:
        info = self.info()
        with contextlib.suppress(FileNotFoundError):
            self.info_path.unlink()
        if info is None or not _alive(info.pid):
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(info.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while _alive(info.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(info.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(info.pid, signal.SIGKILL)
        return True


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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as dead.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True
