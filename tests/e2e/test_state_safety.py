"""State safety: S3 locks are leases (renewed, expiring, force-unlockable, never judged by pid),
every state write is compare-and-swap (a broken lock cannot cause a lost update), and malformed
state, journal, plan and pushed files give a clear error naming the file, never a traceback.
On a real Prefect server and a real moto server."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from tests.conftest import all_objects, assert_ok

REPO = Path(__file__).resolve().parents[2]
# Holds the lock of the backend built from argv until stdin closes; prints the lock id.
HOLDER = """
import sys
from pathlib import Path
from provider.state import LocalBackend, S3Backend
backend = S3Backend(sys.argv[2], sys.argv[3]) if sys.argv[1] == "s3" else LocalBackend(Path(sys.argv[2]))
with backend.lock("apply") as info:
    print(info.id, flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def bucket(aws_env, prefix) -> str:
    name = f"safety-{prefix}"
    s3(aws_env).create_bucket(Bucket=name)
    return name


def s3(aws_env):
    return boto3.client("s3", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def variables(prefix: str, count: int, start: int = 0) -> str:
    return "variables:\n" + "".join(f"  {prefix}_v{i}: {{value: {i}}}\n" for i in range(start, start + count))


def live_variables(api, prefix: str) -> set[str]:
    return {v["name"] for v in all_objects(api, "variables/filter") if v["name"].startswith(prefix)}


def s3_json(aws_env, bucket: str, key: str) -> dict | None:
    try:
        return json.loads(s3(aws_env).get_object(Bucket=bucket, Key=key)["Body"].read())
    except s3(aws_env).exceptions.NoSuchKey:
        return None


def wait_for(condition, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def hold_lock(env: dict[str, str], *backend: str, command: list[str] | None = None) -> tuple[subprocess.Popen, str]:
    """A process holding the lock (until its stdin closes) and the lock id it printed."""
    argv = [*(command or []), sys.executable, "-c", HOLDER, *backend]
    holder = subprocess.Popen(argv, env={**os.environ, **env}, cwd=REPO, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    return holder, holder.stdout.readline().strip()


def start_apply(workspace, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "provider", "apply", str(workspace.directory), "--auto-approve", "--parallelism", "1"],
        env={**os.environ, **workspace.env, **env}, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def answer_prompt(argv: list[str], env: dict[str, str], answer: str) -> tuple[int, str]:
    """Run a command in a terminal, answer its confirmation prompt; its exit code and output."""
    terminal, command_side = pty.openpty()
    process = subprocess.Popen(argv, env={**os.environ, **env}, cwd=REPO,
                               stdin=command_side, stdout=command_side, stderr=command_side)
    os.close(command_side)
    output = b""
    while b"Enter a value" not in output:
        output += os.read(terminal, 4096)
    os.write(terminal, answer.encode() + b"\n")
    with contextlib.suppress(OSError):  # EIO once the command has exited
        while chunk := os.read(terminal, 4096):
            output += chunk
    os.close(terminal)
    return process.wait(30), output.decode()


def backup_named_in(stderr: str) -> Path:
    match = re.search(r"saved in (\S+?): compare", stderr.replace("\n", ""))
    assert match, stderr
    return Path(match.group(1))


# --- S3: compare-and-swap, leases, force-unlock, PID namespaces --------------------------------


def test_lost_update_is_impossible_even_when_the_lock_is_broken(workspace, prefix, bucket, aws_env, api):
    """The issue's scenario: an apply's lock is broken, `state rm` runs, the apply goes on. The
    apply's next state write fails (naming its backup) instead of bringing the removed record back."""
    key = "lost-update.json"
    workspace.write("backend.yaml", f"backend:\n  s3: {{bucket: {bucket}, key: {key}}}\n")
    workspace.write("vars.yaml", variables(prefix, 60))
    apply = start_apply(workspace, aws_env)
    wait_for(lambda: len((s3_json(aws_env, bucket, key) or {}).get("resources", {})) >= 3)
    os.kill(apply.pid, signal.SIGSTOP)
    try:
        time.sleep(1)  # a state write in flight lands before the others read
        lock = s3_json(aws_env, bucket, key + ".lock")
        assert_ok(workspace.run("force-unlock", lock["id"], str(workspace.directory), "--force", env=aws_env))
        removed = sorted(s3_json(aws_env, bucket, key)["resources"])[0]
        assert_ok(workspace.run("state", "rm", removed, str(workspace.directory), env=aws_env))
        holder, holder_id = hold_lock(aws_env, "s3", bucket, key)  # the next command's lock
    finally:
        os.kill(apply.pid, signal.SIGCONT)
    out, err = apply.communicate(timeout=180)
    assert s3_json(aws_env, bucket, key + ".lock")["id"] == holder_id, "the apply left the lock it no longer held alone"
    holder.stdin.close()
    assert holder.wait(30) == 0

    assert apply.returncode == 1, out + err
    assert "Traceback" not in err
    assert f"state s3://{bucket}/{key} was changed by another command since this one read it" in err
    stored = s3_json(aws_env, bucket, key)
    assert removed not in stored["resources"], "the removed record was not brought back"
    backup = backup_named_in(err)
    assert backup.parent == workspace.directory and oct(backup.stat().st_mode & 0o777) == "0o600"
    kept = json.loads(backup.read_text())
    assert removed in kept["resources"] and set(stored["resources"]) - {removed} <= set(kept["resources"])
    # Every object the apply made is in its backup; nothing was created once its writes failed.
    assert live_variables(api, prefix) == {address.split(".", 1)[1] for address in kept["resources"]}
    assert len(kept["resources"]) < 60
    assert s3_json(aws_env, bucket, key + ".lock") is None


def test_a_held_lease_is_renewed_and_an_abandoned_one_expires(workspace, prefix, bucket, aws_env):
    key = "lease.json"
    lease = {**aws_env, "PREFECT_PROVIDER_LOCK_LEASE": "2"}
    workspace.write("backend.yaml", f"backend:\n  s3: {{bucket: {bucket}, key: {key}}}\n")
    workspace.write("vars.yaml", variables(prefix, 1))
    holder, lock_id = hold_lock(lease, "s3", bucket, key)
    try:
        first = s3(aws_env).head_object(Bucket=bucket, Key=key + ".lock")["ETag"]
        time.sleep(5)  # more than twice the lease: only renewal keeps it
        refused = assert_ok(workspace.apply(env=lease), 1)
        assert "is locked by" in refused.stderr and f"lock id {lock_id}" in refused.stderr
        assert s3(aws_env).head_object(Bucket=bucket, Key=key + ".lock")["ETag"] != first, "renewed"
        assert s3_json(aws_env, bucket, key + ".lock")["lease"] == 2
    finally:
        holder.kill()  # gone without releasing: the lock stays until its lease runs out
        holder.wait(10)
    assert s3_json(aws_env, bucket, key + ".lock")["id"] == lock_id
    assert_ok(workspace.apply(env=lease), 1)
    waited = assert_ok(workspace.apply("--lock-timeout", "30s", env=lease))
    assert "Apply complete! Resources: 1 added" in waited.stdout
    assert s3_json(aws_env, bucket, key + ".lock") is None


def test_force_unlock_removes_only_the_named_lock(workspace, prefix, bucket, aws_env):
    key = "force.json"
    directory = str(workspace.directory)
    workspace.write("backend.yaml", f"backend:\n  s3: {{bucket: {bucket}, key: {key}}}\n")
    workspace.write("vars.yaml", variables(prefix, 1))
    holder, lock_id = hold_lock(aws_env, "s3", bucket, key)
    holder.kill()
    holder.wait(10)

    refused = assert_ok(workspace.apply(env=aws_env), 1)
    assert f"prefect-provider force-unlock {lock_id} DIR" in refused.stderr
    wrong = assert_ok(workspace.run("force-unlock", "not-" + lock_id, directory, "--force", env=aws_env), 1)
    assert f"lock id not-{lock_id} does not match the lock on s3://{bucket}/{key}" in wrong.stderr
    unconfirmed = assert_ok(workspace.run("force-unlock", lock_id, directory, env=aws_env), 1)
    assert "pass --force" in unconfirmed.stderr
    assert s3_json(aws_env, bucket, key + ".lock")["id"] == lock_id, "still locked"

    interactive = [sys.executable, "-m", "provider", "force-unlock", lock_id, directory]
    code, output = answer_prompt(interactive, {**workspace.env, **aws_env}, "no")
    assert code == 1 and "Do you really want to force-unlock" in output and "force-unlock cancelled" in output
    assert s3_json(aws_env, bucket, key + ".lock")["id"] == lock_id, "still locked"
    code, output = answer_prompt(interactive, {**workspace.env, **aws_env}, "yes")
    assert code == 0 and f"Unlocked s3://{bucket}/{key}" in output and lock_id in output, output
    assert s3_json(aws_env, bucket, key + ".lock") is None
    again = assert_ok(workspace.run("force-unlock", lock_id, directory, "--force", env=aws_env), 1)
    assert f"state s3://{bucket}/{key} is not locked" in again.stderr
    assert "Apply complete! Resources: 1 added" in assert_ok(workspace.apply(env=aws_env)).stdout


def test_a_lock_held_in_another_pid_namespace_is_not_stolen(workspace, prefix, bucket, aws_env):
    """Two CI containers on one host name: the holder's pid does not exist here, and that must not
    matter. The holder runs in a new PID namespace under a pid that no process here has."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "--pid", "--fork", "true"]).returncode:
        pytest.skip("unshare --pid is not permitted here")
    key = "namespaces.json"
    lease = {**aws_env, "PREFECT_PROVIDER_LOCK_LEASE": "2"}
    directory = str(workspace.directory)
    workspace.write("backend.yaml", f"backend:\n  s3: {{bucket: {bucket}, key: {key}}}\n")
    workspace.write("vars.yaml", variables(prefix, 1))
    assert_ok(workspace.apply(env=lease))
    before = s3_json(aws_env, bucket, key)
    pid = next(p for p in range(30000, 32000) if not Path(f"/proc/{p}").exists())
    # In the new namespace the next pid is `pid`: sh forks python under it.
    namespace = ["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c",
                 f'echo {pid - 1} > /proc/sys/kernel/ns_last_pid && "$0" "$@"']
    holder, lock_id = hold_lock(lease, "s3", bucket, key, command=namespace)
    try:
        lock = s3_json(aws_env, bucket, key + ".lock")
        assert (lock["id"], lock["host"], lock["pid"]) == (lock_id, socket.gethostname(), pid)
        assert not Path(f"/proc/{pid}").exists(), "the holder's pid exists nowhere in this namespace"
        time.sleep(3)  # past one lease: renewals keep it
        removed = assert_ok(workspace.run("state", "rm", f"variables.{prefix}_v0", directory, env=lease), 1)
        assert "is locked by" in removed.stderr and f"pid {pid}" in removed.stderr
        workspace.write("vars.yaml", variables(prefix, 2))
        assert "is locked by" in assert_ok(workspace.apply(env=lease), 1).stderr
        assert s3_json(aws_env, bucket, key) == before
    finally:
        holder.stdin.close()
        assert holder.wait(30) == 0
    assert s3_json(aws_env, bucket, key + ".lock") is None, "released on exit"
    assert_ok(workspace.run("state", "rm", f"variables.{prefix}_v0", directory, env=lease))


# --- local backend: the same guarantees ---------------------------------------------------------


def test_local_state_changed_behind_the_lock_is_never_overwritten(workspace, prefix, api):
    workspace.write("vars.yaml", variables(prefix, 3))
    assert_ok(workspace.apply())
    workspace.write("vars.yaml", variables(prefix, 60))
    journal = workspace.state_path.with_name(workspace.state_path.name + ".journal")
    apply = start_apply(workspace, {})
    wait_for(lambda: journal.exists() and len(journal.read_text().splitlines()) >= 4)
    os.kill(apply.pid, signal.SIGSTOP)
    try:  # a writer that ignores the lock (a restore from a backup, an editor) changes the file
        edited = workspace.state()
        edited["resources"].pop(f"variables.{prefix}_v0")
        edited["serial"] += 1
        workspace.state_path.write_text(json.dumps(edited, indent=2))
    finally:
        os.kill(apply.pid, signal.SIGCONT)
    out, err = apply.communicate(timeout=180)

    assert apply.returncode == 1, out + err
    assert f"state {workspace.state_path} was changed by another command since this one read it" in err
    assert workspace.state() == edited, "not overwritten"
    assert not journal.exists(), "its operations are not replayed over the other writer's state"
    listed = assert_ok(workspace.run("state", "list", str(workspace.directory))).stdout.split()
    assert f"variables.{prefix}_v0" not in listed
    kept = json.loads(backup_named_in(err).read_text())
    assert f"variables.{prefix}_v0" in kept["resources"]
    assert live_variables(api, prefix) == {address.split(".", 1)[1] for address in kept["resources"]}


def test_local_lock_cannot_be_forced_and_refuses_a_wrong_id(workspace):
    holder, lock_id = hold_lock({}, "local", str(workspace.state_path))
    try:
        wrong = assert_ok(workspace.run("force-unlock", "x" + lock_id, str(workspace.directory), "--force"), 1)
        assert f"lock id x{lock_id} does not match" in wrong.stderr
        right = assert_ok(workspace.run("force-unlock", lock_id, str(workspace.directory), "--force"), 1)
        assert "cannot be forced; stop that process instead" in right.stderr
    finally:
        holder.stdin.close()
        holder.wait(10)
    free = assert_ok(workspace.run("force-unlock", lock_id, str(workspace.directory), "--force"), 1)
    assert "is not locked" in free.stderr


# --- malformed files: a clear error naming the file, exit 1, nothing applied ----------------------

RECORD = {"kind": "variables", "name": "a", "id": "1", "attributes": {"value": 1}}
BAD_STATES = {
    "null": (b"null", "is not a state file: expected a JSON object, found null"),
    "array": (b"[]", "is not a state file: expected a JSON object, found an array"),
    "binary": (b"\xff\xfe\x00\x81\x00", "is not valid JSON"),
    "truncated": (b'{"version": 1, "serial": 3, "lin', "is not valid JSON: EOF while parsing"),
    "empty": (b"", "is not valid JSON"),
    "other version": (json.dumps({"version": 7}).encode(), "version 7 is not supported"),
    "missing keys": (json.dumps({"version": 1, "serial": 1, "lineage": "l",
                                 "resources": {"variables.a": {"kind": "variables", "name": "a"}}}).encode(),
                     'resources["variables.a"].id: missing; resources["variables.a"].attributes: missing'),
    "wrong types": (json.dumps({"version": 1, "serial": "1", "lineage": "l",
                                "resources": {"variables.a": {**RECORD, "id": 7, "dependencies": "x"}}}).encode(),
                    'serial: Input should be a valid integer; resources["variables.a"].id: Input should be a valid string'),
    "records not a mapping": (json.dumps({"version": 1, "serial": 1, "lineage": "l", "resources": []}).encode(),
                              "resources: Input should be an object"),
    "record not a mapping": (json.dumps({"version": 1, "serial": 1, "lineage": "l", "resources": {"variables.a": 3}}).encode(),
                             'resources["variables.a"]'),
    "unknown kind": (json.dumps({"version": 1, "serial": 1, "lineage": "l",
                                 "resources": {"bogus.a": {**RECORD, "kind": "bogus"}}}).encode(),
                     "resources[\"bogus.a\"]: unknown kind 'bogus'"),
    "address and record disagree": (json.dumps({"version": 1, "serial": 1, "lineage": "l",
                                                "resources": {"variables.b": RECORD}}).encode(),
                                    "the record says kind 'variables', name 'a'"),
    "bad pending": (json.dumps({"version": 1, "serial": 1, "lineage": "l", "pending": {"variables.a": {"kind": 1}}}).encode(),
                    'pending["variables.a"].kind: Input should be a valid string'),
}


@pytest.mark.parametrize("case", BAD_STATES, ids=list(BAD_STATES))
def test_malformed_state_file_is_a_clear_error(workspace, prefix, api, case):
    content, problem = BAD_STATES[case]
    workspace.write("vars.yaml", variables(prefix, 1))
    workspace.state_path.write_bytes(content)
    directory = str(workspace.directory)
    for args in (("plan", directory), ("apply", directory, "--auto-approve"), ("state", "list", directory),
                 ("show", "--dir", directory), ("state", "rm", "variables.a", directory)):
        result = assert_ok(workspace.run(*args), 1)
        assert f"Error: state {workspace.state_path}" in result.stderr and problem in result.stderr, (args, result.stderr)
    assert workspace.state_path.read_bytes() == content
    assert not live_variables(api, prefix), "nothing applied"


def test_records_without_optional_fields_are_read(workspace):
    workspace.state_path.write_text(json.dumps({"version": 1, "serial": 1, "lineage": "l", "resources": {"variables.a": RECORD}}))
    shown = json.loads(assert_ok(workspace.run("state", "show", "variables.a", str(workspace.directory))).stdout)
    assert {key: shown[key] for key in [*RECORD, "dependencies"]} == {**RECORD, "dependencies": []}


def test_malformed_journal_line_is_a_clear_error(workspace):
    workspace.state_path.write_text(json.dumps({"version": 1, "serial": 1, "lineage": "l", "resources": {}}))
    journal = workspace.state_path.with_name(workspace.state_path.name + ".journal")
    journal.write_text(json.dumps({"lineage": "l", "serial": 2, "op": "put", "address": "variables.a", "record": RECORD}) + "\n"
                       + json.dumps({"lineage": "l", "serial": 3, "op": "put", "address": "variables.b"}) + "\n")
    failed = assert_ok(workspace.run("state", "list", str(workspace.directory)), 1)
    assert f"Error: state journal {journal}:2 is malformed: a put entry needs record" in failed.stderr
    journal.write_text(journal.read_text().splitlines()[0] + "\n" + '{"lineage": "l", "ser')  # cut short by a crash
    assert assert_ok(workspace.run("state", "list", str(workspace.directory))).stdout.split() == ["variables.a"]


def test_state_push_of_a_bad_file_is_a_clear_error(workspace, tmp_path):
    directory = str(workspace.directory)
    (tmp_path / "array.json").write_text("[]")
    (tmp_path / "binary.json").write_bytes(b"\x00\xff")
    cases = {
        str(tmp_path / "missing.json"): "cannot read state file {}: No such file or directory",
        str(tmp_path): "cannot read state file {}: Is a directory",
        str(tmp_path / "array.json"): "state {} is not a state file: expected a JSON object, found an array",
        str(tmp_path / "binary.json"): "state {} is not valid JSON",
    }
    for path, message in cases.items():
        result = assert_ok(workspace.run("state", "push", path, directory), 1)
        assert message.format(path) in result.stderr, result.stderr
    assert not workspace.state_path.exists(), "nothing pushed"


def saved_plan(workspace, prefix) -> dict:
    workspace.write("vars.yaml", variables(prefix, 1))
    out = workspace.directory / "good.plan"
    assert_ok(workspace.plan("--out", str(out)), 2)
    return json.loads(out.read_text())


def test_saved_plan_files_that_are_not_plans_are_clear_errors(workspace, prefix, api):
    good = saved_plan(workspace, prefix)
    change = good["changes"][0]
    cases = {
        "[]": "is not a saved plan: expected a JSON object, found an array",
        "garbage {": "is not valid JSON",
        "": "is not valid JSON",
        json.dumps({**good, "plan_format": 1}): "has plan format 1, but this release reads format 2",
        json.dumps({"changes": []}): "is not a prefect-provider plan (it has no plan_format)",
        json.dumps({**good, "changes": "x"}): "changes: Input should be a valid array",
        json.dumps({**good, "mode": "sideways"}): "mode: Input should be 'normal', 'destroy' or 'refresh-only'",
        json.dumps({**good, "changes": [{**change, "action": "explode"}]}): "changes[0].action: Input should be 'create', 'update'",
        json.dumps({**good, "changes": [{**change, "address": "nodot"}]}): "changes[0]: address 'nodot' is not variables",
        json.dumps({**good, "changes": [{**change, "kind": "nokind"}]}): "changes[0]: unknown kind 'nokind'",
        json.dumps({**good, "changes": [{**change, "after": None}]}): "changes[0]: a create needs after",
        json.dumps({**good, "changes": [{k: v for k, v in change.items() if k != "action"}]}): "changes[0].action: missing",
        json.dumps({**good, "serial": "1"}): "serial: Input should be a valid integer",
    }
    for index, (content, problem) in enumerate(cases.items()):
        path = workspace.directory / f"bad{index}.plan"
        path.write_text(content)
        for args in (("show", str(path)), ("show", str(path), "--json"), ("apply", str(path))):
            result = assert_ok(workspace.run(*args), 1)
            assert f"plan file {path}" in result.stderr and problem in result.stderr, (args, result.stderr)
    assert not live_variables(api, prefix), "nothing applied"
    assert f"{prefix}_v0" in assert_ok(workspace.run("show", str(workspace.directory / "good.plan"))).stdout
