"""Task-run (tag) concurrency limits against a real server, through Prefect's v1 API: lifecycle,
slots held kept across an update, drift, and the separation from global limits."""

from __future__ import annotations

import re
import uuid

import pytest

from provider.client import Connection, PrefectClient
from resources.concurrency_limits import ConcurrencyLimits
from resources.task_run_concurrency_limits import TaskRunConcurrencyLimits
from tests.conftest import assert_ok


def tag_limit(api, tag: str) -> dict:
    response = api.get(f"concurrency_limits/tag/{tag}")
    response.raise_for_status()
    return response.json()


def test_create_noop_update_keeps_slots_drift_and_delete(workspace, prefix, api):
    workspace.write("limits.yaml", f"task_run_concurrency_limits:\n  {prefix}-db: {{concurrency_limit: 2}}\n"
                                   f"  {prefix}-api: {{concurrency_limit: 0}}\n")
    assert "Plan: 2 to add, 0 to change, 0 to destroy." in assert_ok(workspace.plan(), 2).stdout
    assert_ok(workspace.apply())
    created = tag_limit(api, f"{prefix}-db")
    assert created["concurrency_limit"] == 2 and tag_limit(api, f"{prefix}-api")["concurrency_limit"] == 0
    assert_ok(workspace.plan(), 0)

    task_run = str(uuid.uuid4())
    api.post("concurrency_limits/increment", json={"names": [f"{prefix}-db"], "task_run_id": task_run}).raise_for_status()
    assert tag_limit(api, f"{prefix}-db")["active_slots"] == [task_run]
    assert_ok(workspace.plan(), 0)  # slots held are the server's running state

    workspace.write("limits.yaml", f"task_run_concurrency_limits:\n  {prefix}-db: {{concurrency_limit: 5}}\n"
                                   f"  {prefix}-api: {{concurrency_limit: 0}}\n")
    planned = assert_ok(workspace.plan(), 2)
    assert re.search(r"~ concurrency_limit\s+= 2 -> 5", planned.stdout)
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in planned.stdout
    assert_ok(workspace.apply())
    updated = tag_limit(api, f"{prefix}-db")
    assert (updated["id"], updated["concurrency_limit"]) == (created["id"], 5), "updated in place, not re-created"
    assert updated["active_slots"] == [task_run], "slots held are never reset"

    api.post("concurrency_limits/", json={"tag": f"{prefix}-db", "concurrency_limit": 1}).raise_for_status()
    drift = assert_ok(workspace.run("drift", str(workspace.directory)), 2)
    assert re.search(r"~ concurrency_limit\s+= 5 -> 1", drift.stdout)
    assert_ok(workspace.apply())
    assert tag_limit(api, f"{prefix}-db")["concurrency_limit"] == 5
    assert_ok(workspace.plan(), 0)

    api.delete(f"concurrency_limits/{tag_limit(api, f'{prefix}-api')['id']}").raise_for_status()
    planned = assert_ok(workspace.plan(), 2)
    assert f"task_run_concurrency_limits.{prefix}-api: deleted outside prefect-provider" in planned.stdout
    assert_ok(workspace.apply())
    assert tag_limit(api, f"{prefix}-api")["concurrency_limit"] == 0

    workspace.write("limits.yaml", "{}\n")
    assert "Plan: 0 to add, 0 to change, 2 to destroy." in assert_ok(workspace.plan(), 2).stdout
    assert_ok(workspace.apply())
    assert api.get(f"concurrency_limits/tag/{prefix}-db").status_code == 404
    assert api.get(f"concurrency_limits/tag/{prefix}-api").status_code == 404
    assert workspace.state()["resources"] == {}


def test_tag_limits_and_global_limits_never_mix(api_url, api, prefix):
    api.post("concurrency_limits/", json={"tag": prefix, "concurrency_limit": 3}).raise_for_status()
    api.post("v2/concurrency_limits/", json={"name": f"{prefix}-global", "limit": 4}).raise_for_status()
    with PrefectClient(Connection(api_url)) as client:
        tags = TaskRunConcurrencyLimits().list(client, {prefix, f"{prefix}-global"})
        globals_ = ConcurrencyLimits().list(client, {f"tag:{prefix}", f"{prefix}-global"})
    assert [(o.name, o.attributes) for o in tags] == [(prefix, {"concurrency_limit": 3})]
    assert [o.name for o in globals_] == [f"{prefix}-global"]


def test_an_existing_tag_limit_is_imported_not_taken(workspace, prefix, api):
    made = api.post("concurrency_limits/", json={"tag": prefix, "concurrency_limit": 3}).json()
    workspace.write("limits.yaml", f"task_run_concurrency_limits:\n  {prefix}: {{concurrency_limit: 4}}\n")
    assert made["id"] in assert_ok(workspace.plan(), 1).output
    assert tag_limit(api, prefix)["concurrency_limit"] == 3
    assert_ok(workspace.run("import", f"task_run_concurrency_limits.{prefix}", made["id"], str(workspace.directory)))
    assert_ok(workspace.apply())
    assert (tag_limit(api, prefix)["id"], tag_limit(api, prefix)["concurrency_limit"]) == (made["id"], 4)


@pytest.mark.parametrize(("spec", "message"), [
    ("{concurrency_limit: -1}", "task_run_concurrency_limits.__P__.concurrency_limit: Input should be greater than or equal to 0"),
    ("{}", "task_run_concurrency_limits.__P__.concurrency_limit: required field is missing"),
    ("{concurrency_limit: many}", "task_run_concurrency_limits.__P__.concurrency_limit: Input should be a valid integer"),
    ("{concurrency_limit: 1, active: false}", "task_run_concurrency_limits.__P__.active: unknown field"),
])
def test_bad_input_names_file_line_and_field(spec, message, workspace, prefix, api):
    workspace.write("limits.yaml", f"# tag limits\ntask_run_concurrency_limits:\n  {prefix}: {spec}\n")
    for command in (["validate"], ["plan"], ["apply", "--auto-approve"]):
        result = assert_ok(workspace.run(*command, str(workspace.directory)), 1)
        assert f"limits.yaml:3: {message.replace('__P__', prefix)}" in result.stderr
        assert "Traceback" not in result.output
    assert api.get(f"concurrency_limits/tag/{prefix}").status_code == 404


def test_a_tag_with_a_slash_is_refused(workspace, prefix):
    workspace.write("limits.yaml", f'task_run_concurrency_limits:\n  "{prefix}/x": {{concurrency_limit: 1}}\n')
    result = assert_ok(workspace.run("validate", str(workspace.directory)), 1)
    assert f"limits.yaml:2: task_run_concurrency_limits.{prefix}/x: invalid name: tag '{prefix}/x' must not contain /" in result.stderr
