"""The README's first command: apply examples/quickstart on the embedded server the tool starts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "provider", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=240)


def test_quickstart_on_the_embedded_server(tmp_path):
    shutil.copytree(ROOT / "examples" / "quickstart", tmp_path / "examples" / "quickstart")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(HOME=str(tmp_path / "home"), NO_COLOR="1")
    try:
        first = run(["apply", "examples/quickstart", "--auto-approve"], tmp_path, env)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "starting the embedded local Prefect server" in first.stderr or "Using the embedded" in first.stderr
        assert "Apply complete! Resources: 7 added, 0 changed, 0 destroyed." in first.stdout

        info = json.loads((tmp_path / ".prefect-provider" / "server.json").read_text())
        api = f"http://127.0.0.1:{info['port']}/api"
        queues = httpx.post(f"{api}/work_pools/quickstart-pool/queues/filter", json={}).json()
        assert {q["name"]: q["priority"] for q in queues if q["name"] != "default"} == {"critical": 1, "high": 5, "low": 10}

        # The second run reuses the running server and has nothing to do.
        second = run(["plan", "examples/quickstart", "--detailed-exitcode"], tmp_path, env)
        assert second.returncode == 0, second.stdout + second.stderr
        assert f"127.0.0.1:{info['port']}" in second.stderr
        assert run(["server", "status"], tmp_path, env).returncode == 0
    finally:
        stopped = run(["server", "stop"], tmp_path, env)
    assert "Stopped." in stopped.stdout
    assert run(["server", "status"], tmp_path, env).returncode == 1
