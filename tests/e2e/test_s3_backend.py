"""The shared S3 state backend against a real moto server: locking between two concurrent applies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import boto3
import pytest

from tests.conftest import assert_ok


@pytest.fixture
def bucket(aws_env, prefix) -> str:
    name = f"state-{prefix}"
    boto3.client("s3", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing").create_bucket(Bucket=name)
    return name


def s3(aws_env):
    return boto3.client("s3", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def many_variables(prefix: str, count: int) -> str:
    return "variables:\n" + "".join(f"  {prefix}_v{i}: {{value: {i}}}\n" for i in range(count))


def test_two_concurrent_applies_one_proceeds_the_other_is_refused(workspace, prefix, bucket, aws_env, api):
    key = "prefect/prod.json"
    workspace.write("backend.yaml", f"backend:\n  s3: {{bucket: {bucket}, key: {key}}}\n")
    workspace.write("vars.yaml", many_variables(prefix, 300))
    env = {**os.environ, **workspace.env, **aws_env}
    first = subprocess.Popen([sys.executable, "-m", "provider", "apply", str(workspace.directory), "--auto-approve"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = s3(aws_env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if client.list_objects_v2(Bucket=bucket, Prefix=key + ".lock").get("KeyCount"):
            break
        time.sleep(0.01)
    else:
        pytest.fail("the first apply never took the lock")

    second = workspace.apply(env=aws_env)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, out + err
    assert second.exit_code == 1
    assert f"s3://{bucket}/{key} is locked by" in second.stderr
    assert f"pid {first.pid}" in second.stderr and "apply since" in second.stderr

    state = json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert len(state["resources"]) == 300
    assert not client.list_objects_v2(Bucket=bucket, Prefix=key + ".lock").get("KeyCount"), "the lock is released"
    assert not workspace.state_path.exists(), "nothing is written locally with the S3 backend"
    assert_ok(workspace.plan(env=aws_env), 0)


def test_lock_timeout_waits_for_the_holder(workspace, prefix, bucket, aws_env):
    key = "wait.json"
    workspace.write("backend.yaml", f"backend:\n  s3: {{bucket: {bucket}, key: {key}}}\n")
    workspace.write("vars.yaml", many_variables(prefix, 3))
    env = {**os.environ, **aws_env}
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time; from provider.state import S3Backend\n"
        f"with S3Backend({bucket!r}, {key!r}).lock('apply'):\n"
        "    print('locked', flush=True); time.sleep(2)\n")], env=env, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    waited = assert_ok(workspace.apply("--lock-timeout", "60s", env=aws_env))
    assert "Apply complete! Resources: 3 added" in waited.stdout
    holder.wait(10)


def test_state_pull_and_push_move_state_between_backends(workspace, prefix, bucket, aws_env, tmp_path):
    workspace.write("vars.yaml", many_variables(prefix, 2))
    assert_ok(workspace.apply())
    local_state = workspace.state()
    workspace.write("backend.yaml", f"backend:\n  s3: {{bucket: {bucket}, key: moved.json}}\n")
    assert_ok(workspace.run("state", "push", str(workspace.state_path), str(workspace.directory), env=aws_env))
    pulled = json.loads(assert_ok(workspace.run("state", "pull", str(workspace.directory), env=aws_env)).stdout)
    assert pulled["lineage"] == local_state["lineage"] and pulled["resources"] == local_state["resources"]
    assert_ok(workspace.plan(env=aws_env), 0)

    other = tmp_path / "other.json"
    other.write_text(json.dumps({**local_state, "lineage": "another"}))
    refused = assert_ok(workspace.run("state", "push", str(other), str(workspace.directory), env=aws_env), 1)
    assert "another lineage" in refused.stderr
