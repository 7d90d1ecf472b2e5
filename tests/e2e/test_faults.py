"""Faults lose nothing: a killed apply converges on the next run, without duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from provider.state import LocalBackend
from tests.conftest import all_objects, assert_ok
from tests.fault_proxy import FaultProxy


def variables(prefix: str, count: int) -> str:
    return "variables:\n" + "".join(f"  {prefix}_v{i}: {{value: {i}}}\n" for i in range(count))


def live_variables(api, prefix: str) -> list[str]:
    return [v["name"] for v in all_objects(api, "variables/filter") if v["name"].startswith(prefix)]


def start_apply(workspace, api_url: str, *extra: str) -> subprocess.Popen:
    env = {**os.environ, **workspace.env, "PREFECT_API_URL": api_url}
    return subprocess.Popen([sys.executable, "-m", "provider", "apply", str(workspace.directory), "--auto-approve", *extra],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_object_created_just_before_a_kill_is_adopted_not_created_twice(workspace, prefix, api):
    workspace.write("vars.yaml", variables(prefix, 3))
    with FaultProxy(workspace.api_url, ["ok", "hang-after"]) as proxy:
        process = start_apply(workspace, proxy.api_url, "--parallelism", "1")
        # The second create reached the server; its answer never comes. Kill the apply there.
        wait_for(lambda: len(live_variables(api, prefix)) == 2)
        process.send_signal(signal.SIGKILL)
        process.wait()
    state = LocalBackend(workspace.state_path).read()
    assert len(state.resources) == 1 and len(state.pending) == 1, "one create done, one started"

    result = assert_ok(workspace.apply())
    assert "created by an interrupted apply; taken into state" in result.stdout
    assert "Plan: 1 to add, 0 to change, 0 to destroy, 1 to import." in result.stdout
    assert sorted(live_variables(api, prefix)) == sorted(f"{prefix}_v{i}" for i in range(3))
    assert len(workspace.state()["resources"]) == 3 and workspace.state()["pending"] == {}
    assert_ok(workspace.plan(), 0)


def test_sigkill_in_the_middle_of_a_large_apply_converges(workspace, prefix, api):
    count = 300
    workspace.write("vars.yaml", variables(prefix, count))
    journal = workspace.state_path.with_name(workspace.state_path.name + ".journal")
    process = start_apply(workspace, workspace.api_url)
    wait_for(lambda: journal.exists() and journal.read_text().count("\n") >= 100)
    process.send_signal(signal.SIGKILL)
    process.wait()

    recorded = LocalBackend(workspace.state_path).read()
    live = live_variables(api, prefix)
    assert 0 < len(recorded.resources) < count, "killed half way"
    assert set(recorded.resources) <= {f"variables.{n}" for n in live}, "state lists only what exists"

    # The requests the kill cut off can freeze a SQLite-backed server for up to its 60 s lock wait
    # (docs/security.md: a server that stands still); the default budget waits it out.
    assert_ok(workspace.apply())
    live = live_variables(api, prefix)
    assert len(live) == len(set(live)) == count
    assert len(workspace.state()["resources"]) == count
    assert_ok(workspace.plan(), 0)
