"""The embedded server's process: signals go only to the process the tool started, and commands
started at once share one server.

Every command runs as its own process in a fresh directory, as a user runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(HOME=str(cwd / "home"), NO_COLOR="1", PYTHONPATH=str(Path(__file__).parents[2]))
    return subprocess.run([sys.executable, "-m", "provider", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=240)


@pytest.fixture
def bystander():
    """An unrelated process leading its own process group, as a reused pid would be."""
    process = subprocess.Popen(["sleep", "300"], start_new_session=True)
    yield process
    process.kill()
    process.wait()


def stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat from field 3 (state) on; None when there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def alive(pid: int) -> bool:
    fields = stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def group_members(pgid: int) -> list[int]:
    """Processes of the group that still run (zombies, which wait only to be reaped, excluded)."""
    pids = [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]
    return [pid for pid in pids if (fields := stat_fields(pid)) and fields[0] != "Z" and int(fields[2]) == pgid]


def stale_record(pid: int, variant: str) -> dict:
    start_time = int(stat_fields(pid)[19])
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    record = {"pid": pid, "port": 9, "home": "/nonexistent"}
    if variant == "identity of another process":
        record.update(start_time=start_time - 1, cmdline=["prefect", "server", "start"])
    elif variant == "same command line, other start time":
        record.update(start_time=start_time + 1, cmdline=cmdline)
    # "no identity recorded": written before identities were, so it cannot be verified
    return record


@pytest.mark.parametrize("variant", ["identity of another process", "same command line, other start time",
                                     "no identity recorded"])
def test_stale_server_json_never_signals_the_process_that_now_has_its_pid(tmp_path, bystander, variant):
    data = tmp_path / ".prefect-provider"
    data.mkdir()
    (data / "server.json").write_text(json.dumps(stale_record(bystander.pid, variant)))

    status = run(tmp_path, "server", "status")
    assert status.returncode == 1, status.stdout + status.stderr
    assert "Not running" in status.stdout and f"pid {bystander.pid}" in status.stdout

    stopped = run(tmp_path, "server", "stop")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert bystander.poll() is None, "the unrelated process was signalled"
    assert "Not running" in stopped.stdout and f"pid {bystander.pid}" in stopped.stdout
    assert "Removed the stale server.json" in stopped.stdout
    assert not (data / "server.json").exists()
    assert run(tmp_path, "server", "status").stdout.strip() == "Not running."


def test_commands_started_at_once_share_one_server_and_stop_stops_it(tmp_path):
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda _: run(tmp_path, "server", "start"), range(2))
    try:
        for result in (first, second):
            assert result.returncode == 0, result.stdout + result.stderr
        outputs = sorted([first.stdout, second.stdout])
        assert outputs[0].startswith("Already running:") and outputs[1].startswith("Started"), outputs
        info = json.loads((tmp_path / ".prefect-provider" / "server.json").read_text())
        assert all(f"pid {info['pid']}," in out for out in outputs), outputs
        assert Path(f"/proc/{info['pid']}/cmdline").read_bytes().decode().split("\0")[:-1] == info["cmdline"]
        assert run(tmp_path, "server", "status").returncode == 0
        log = (tmp_path / ".prefect-provider" / "server.log").read_text()
        assert "already exists" not in log
    finally:
        stopped = run(tmp_path, "server", "stop")
    assert stopped.stdout.strip() == "Stopped.", stopped.stdout + stopped.stderr
    assert not alive(info["pid"]), "the server is gone"
    assert group_members(info["pid"]) == [], "and its whole process group with it"
    assert run(tmp_path, "server", "status").returncode == 1
