"""The core loop against a real server: plan, apply, no-op, drift, repair, removal, destroy."""

from __future__ import annotations

from tests.conftest import assert_ok


def pool_config(prefix: str, *, pool_limit: int = 5, with_low: bool = True, variable_value: str = "main") -> str:
    low = "      low: {priority: 10}\n" if with_low else ""
    return f"""\
work_pools:
  {prefix}-pool:
    type: process
    description: managed by tests
    concurrency_limit: {pool_limit}
    queues:
      critical: {{priority: 1, concurrency_limit: 1}}
      high: {{priority: 5, concurrency_limit: 3}}
{low}variables:
  {prefix}_branch: {{value: {variable_value}, tags: [git]}}
  {prefix}_settings: {{value: {{batch: 500, dry_run: false}}}}
"""


def test_first_plan_apply_then_noop(workspace, prefix, api):
    workspace.write("main.yaml", pool_config(prefix))
    first = assert_ok(workspace.plan(), 2)
    assert "Plan: 6 to add, 0 to change, 0 to destroy." in first.stdout
    assert not workspace.state_path.exists(), "plan must not write state"

    assert_ok(workspace.apply())
    pool = api.get(f"work_pools/{prefix}-pool").json()
    assert pool["concurrency_limit"] == 5 and pool["type"] == "process"
    assert pool["base_job_template"]["job_configuration"]["command"] == "{{ command }}"
    queues = api.post(f"work_pools/{prefix}-pool/queues/filter", json={}).json()
    priorities = {q["name"]: q["priority"] for q in queues}
    assert {k: priorities[k] for k in ("critical", "high", "low")} == {"critical": 1, "high": 5, "low": 10}
    assert api.get(f"variables/name/{prefix}_settings").json()["value"] == {"batch": 500, "dry_run": False}

    state = workspace.state()
    assert state["version"] == 1 and state["serial"] >= 6 and state["lineage"]
    assert f"work_queues.{prefix}-pool/high" in state["resources"]

    noop = assert_ok(workspace.plan(), 0)
    assert "No changes." in noop.stdout


def test_out_of_band_change_is_detected_and_repaired(workspace, prefix, api):
    workspace.write("main.yaml", pool_config(prefix))
    assert_ok(workspace.apply())
    api.patch(f"work_pools/{prefix}-pool", json={"concurrency_limit": 99}).raise_for_status()
    api.patch(f"variables/name/{prefix}_branch", json={"value": "hotfix"}).raise_for_status()
    api.patch(f"work_pools/{prefix}-pool/queues/high", json={"is_paused": True}).raise_for_status()

    drifted = assert_ok(workspace.plan(), 2)
    assert "Objects have changed outside of prefect-provider" in drifted.stdout
    assert "~ concurrency_limit = 99 -> 5" in drifted.stdout
    assert '~ value = "hotfix" -> "main"' in drifted.stdout
    assert "Plan: 0 to add, 3 to change, 0 to destroy." in drifted.stdout

    assert_ok(workspace.apply())
    assert api.get(f"work_pools/{prefix}-pool").json()["concurrency_limit"] == 5
    assert api.get(f"variables/name/{prefix}_branch").json()["value"] == "main"
    assert api.get(f"work_pools/{prefix}-pool/queues/high").json()["is_paused"] is False
    assert_ok(workspace.plan(), 0)


def test_object_deleted_by_hand_is_recreated(workspace, prefix, api):
    workspace.write("main.yaml", pool_config(prefix))
    assert_ok(workspace.apply())
    api.delete(f"variables/name/{prefix}_branch").raise_for_status()
    planned = assert_ok(workspace.plan(), 2)
    assert f"variables.{prefix}_branch: deleted outside prefect-provider" in planned.stdout
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in planned.stdout
    assert_ok(workspace.apply())
    assert api.get(f"variables/name/{prefix}_branch").json()["value"] == "main"
    assert_ok(workspace.plan(), 0)


def test_update_in_place_and_removal_deletes(workspace, prefix, api):
    workspace.write("main.yaml", pool_config(prefix))
    assert_ok(workspace.apply())
    pool_id = api.get(f"work_pools/{prefix}-pool").json()["id"]

    workspace.write("main.yaml", pool_config(prefix, pool_limit=8, with_low=False, variable_value="develop"))
    planned = assert_ok(workspace.plan(), 2)
    assert "Plan: 0 to add, 2 to change, 1 to destroy." in planned.stdout
    assert f"# work_queues.{prefix}-pool/low will be destroyed" in planned.stdout
    assert_ok(workspace.apply())

    pool = api.get(f"work_pools/{prefix}-pool").json()
    assert pool["id"] == pool_id, "an update must not re-create the pool"
    assert pool["concurrency_limit"] == 8
    assert api.get(f"work_pools/{prefix}-pool/queues/low").status_code == 404
    assert f"work_queues.{prefix}-pool/low" not in workspace.state()["resources"]
    assert_ok(workspace.plan(), 0)


def test_unmanaged_objects_are_never_touched(workspace, prefix, api):
    api.post("variables/", json={"name": f"{prefix}_unmanaged", "value": "keep me"}).raise_for_status()
    api.post("work_pools/", json={"name": f"{prefix}-other", "type": "process"}).raise_for_status()
    workspace.write("main.yaml", pool_config(prefix))
    assert_ok(workspace.apply())
    assert_ok(workspace.run("destroy", str(workspace.directory), "--auto-approve"))
    assert api.get(f"variables/name/{prefix}_unmanaged").json()["value"] == "keep me"
    assert api.get(f"work_pools/{prefix}-other").status_code == 200
    assert api.get(f"work_pools/{prefix}-pool").status_code == 404
    assert api.get(f"variables/name/{prefix}_branch").status_code == 404
    assert workspace.state()["resources"] == {}


def test_existing_unmanaged_object_with_same_name_is_a_plan_error(workspace, prefix, api):
    api.post("variables/", json={"name": f"{prefix}_branch", "value": "theirs"}).raise_for_status()
    workspace.write("main.yaml", pool_config(prefix))
    result = assert_ok(workspace.apply(), 1)
    assert f"variables.{prefix}_branch" in result.stderr
    assert "prefect-provider import" in result.stderr
    assert api.get(f"variables/name/{prefix}_branch").json()["value"] == "theirs"
    assert api.get(f"work_pools/{prefix}-pool").status_code == 404, "nothing may be applied"
    assert not workspace.state_path.exists()
