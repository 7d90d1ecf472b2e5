"""CLI workflows on the real server: saved plans, JSON plans, locking, targets, replacement, state."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import all_objects, assert_ok
from tests.e2e.test_lifecycle import pool_config


def test_saved_plan_applies_exactly_and_a_stale_one_is_refused(workspace, prefix, api):
    workspace.write("main.yaml", pool_config(prefix))
    plan_file = workspace.directory.parent / "first.plan"
    assert_ok(workspace.plan("--out", str(plan_file)), 2)
    # The configuration changes after the plan was saved: the plan still applies what it showed.
    workspace.write("main.yaml", pool_config(prefix, pool_limit=42))
    applied = assert_ok(workspace.run("apply", str(plan_file)))
    assert "Apply complete! Resources: 6 added" in applied.stdout
    assert api.get(f"work_pools/{prefix}-pool").json()["concurrency_limit"] == 5

    again = assert_ok(workspace.run("apply", str(plan_file)), 1)
    assert "stale" in again.stderr

    second = workspace.directory.parent / "second.plan"
    assert_ok(workspace.plan("--out", str(second)), 2)
    assert_ok(workspace.apply())  # moves the state on
    assert "stale" in assert_ok(workspace.run("apply", str(second)), 1).stderr


def test_show_renders_a_saved_plan(workspace, prefix):
    workspace.write("main.yaml", pool_config(prefix))
    plan_file = workspace.directory.parent / "p.plan"
    assert_ok(workspace.plan("--out", str(plan_file)), 2)
    shown = assert_ok(workspace.run("show", str(plan_file)))
    assert "Plan: 6 to add, 0 to change, 0 to destroy." in shown.stdout
    as_json = assert_ok(workspace.run("show", str(plan_file), "--json")).json()
    assert len(as_json["resource_changes"]) == 6


def test_plan_json_follows_terraform_show_json(workspace, prefix, api):
    workspace.write("main.yaml", pool_config(prefix))
    assert_ok(workspace.apply())
    api.patch(f"variables/name/{prefix}_branch", json={"value": "hotfix"}).raise_for_status()
    workspace.write("main.yaml", pool_config(prefix, with_low=False))
    data = assert_ok(workspace.run("plan", str(workspace.directory), "--json")).json()
    assert data["format_version"]
    changes = {c["address"]: c for c in data["resource_changes"]}
    low = changes[f"work_queues.{prefix}-pool/low"]["change"]
    assert low["actions"] == ["delete"] and low["after"] is None and low["before"]["priority"] == 10
    branch = changes[f"variables.{prefix}_branch"]["change"]
    assert branch["actions"] == ["update"]
    assert (branch["before"]["value"], branch["after"]["value"]) == ("hotfix", "main")
    assert branch["before_sensitive"] == {} and branch["after_sensitive"] == {}
    assert changes[f"work_pools.{prefix}-pool"]["change"]["actions"] == ["no-op"]
    drift = {d["address"]: d for d in data["resource_drift"]}
    assert drift[f"variables.{prefix}_branch"]["change"]["after"]["value"] == "hotfix"


def test_type_change_replaces_the_pool_and_its_queues(workspace, prefix, api):
    workspace.write("main.yaml", pool_config(prefix))
    assert_ok(workspace.apply())
    old_id = api.get(f"work_pools/{prefix}-pool").json()["id"]
    workspace.write("main.yaml", pool_config(prefix).replace("type: process", "type: docker"))
    planned = assert_ok(workspace.plan(), 2)
    assert f"# work_pools.{prefix}-pool must be replaced" in planned.stdout
    assert "type forces replacement" in planned.stdout
    assert f"work_pools.{prefix}-pool is replaced, which deletes it on the server" in planned.stdout
    assert "Plan: 4 to add, 0 to change, 4 to destroy." in planned.stdout
    assert_ok(workspace.apply())
    pool = api.get(f"work_pools/{prefix}-pool").json()
    assert pool["id"] != old_id and pool["type"] == "docker"
    assert api.get(f"work_pools/{prefix}-pool/queues/high").json()["priority"] == 5
    assert_ok(workspace.plan(), 0)


def test_replace_and_target_options(workspace, prefix, api):
    workspace.write("main.yaml", pool_config(prefix))
    targeted = assert_ok(workspace.apply("--target", f"work_queues.{prefix}-pool/critical"))
    assert "Resources: 2 added" in targeted.stdout, "a target brings what it depends on"
    assert api.get(f"variables/name/{prefix}_branch").status_code == 404
    assert_ok(workspace.apply())
    old_id = api.get(f"variables/name/{prefix}_branch").json()["id"]
    assert_ok(workspace.apply("--replace", f"variables.{prefix}_branch"))
    assert api.get(f"variables/name/{prefix}_branch").json()["id"] != old_id
    assert_ok(workspace.plan(), 0)


def test_default_queue_is_adopted_when_declared_and_never_deleted(workspace, prefix, api):
    config = pool_config(prefix).replace("      critical:", "      default: {priority: 20, description: fallback}\n      critical:")
    workspace.write("main.yaml", pool_config(prefix))
    assert_ok(workspace.apply())
    workspace.write("main.yaml", config)
    applied = assert_ok(workspace.apply())
    assert f"work_queues.{prefix}-pool/default will be imported and updated in-place" in applied.stdout
    assert "Plan: 0 to add, 1 to change, 0 to destroy, 1 to import." in applied.stdout
    default = api.get(f"work_pools/{prefix}-pool/queues/default").json()
    assert (default["priority"], default["description"]) == (20, "fallback")
    assert_ok(workspace.plan(), 0)
    workspace.write("main.yaml", pool_config(prefix))
    forgotten = assert_ok(workspace.apply())
    assert "removed from state (not deleted)" in forgotten.stdout
    assert api.get(f"work_pools/{prefix}-pool/queues/default").status_code == 200
    assert f"work_queues.{prefix}-pool/default" not in workspace.state()["resources"]


def test_state_lock_names_its_holder(workspace, prefix):
    workspace.write("main.yaml", pool_config(prefix))
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys, time; from pathlib import Path; from provider.state import LocalBackend\n"
            f"with LocalBackend(Path({str(workspace.state_path)!r})).lock('apply'):\n"
            "    print('locked', flush=True); time.sleep(30)\n"
        )],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = assert_ok(workspace.apply(), 1)
        assert "is locked by" in result.stderr and f"pid {holder.pid}" in result.stderr
        assert "--lock-timeout" in result.stderr
    finally:
        holder.kill()
        holder.wait()
    # The holder died without unlocking: the stale lock on this machine is taken over.
    assert_ok(workspace.apply())


def test_apply_refuses_without_approval_when_not_interactive(workspace, prefix, api):
    workspace.write("main.yaml", pool_config(prefix))
    result = assert_ok(workspace.run("apply", str(workspace.directory)), 1)
    assert "--auto-approve" in result.stderr
    assert api.get(f"work_pools/{prefix}-pool").status_code == 404


def test_state_commands(workspace, prefix, api):
    workspace.write("main.yaml", pool_config(prefix))
    assert_ok(workspace.apply())
    listed = assert_ok(workspace.run("state", "list", str(workspace.directory))).stdout.split()
    assert f"work_queues.{prefix}-pool/low" in listed and len(listed) == 6
    shown = json.loads(assert_ok(workspace.run("state", "show", f"variables.{prefix}_branch", str(workspace.directory))).stdout)
    assert shown["attributes"]["value"] == "main" and shown["id"]
    assert_ok(workspace.run("state", "rm", f"variables.{prefix}_settings", str(workspace.directory)))
    assert api.get(f"variables/name/{prefix}_settings").status_code == 200, "state rm does not delete"
    # Now unmanaged but still declared: plan says so and names import.
    assert "prefect-provider import" in assert_ok(workspace.plan(), 1).stderr
    missing = assert_ok(workspace.run("state", "show", "variables.nope", str(workspace.directory)), 1)
    assert "not in state" in missing.stderr


def test_destroy_removes_everything_managed(workspace, prefix, api):
    workspace.write("main.yaml", pool_config(prefix))
    assert_ok(workspace.apply())
    planned = assert_ok(workspace.plan("--destroy"), 2)
    assert "Plan: 0 to add, 0 to change, 6 to destroy." in planned.stdout
    assert_ok(workspace.run("destroy", str(workspace.directory), "--auto-approve"))
    assert api.get(f"work_pools/{prefix}-pool").status_code == 404
    assert api.get(f"variables/name/{prefix}_branch").status_code == 404
    assert workspace.state()["resources"] == {}


def test_schema_is_json_schema_of_every_kind(workspace):
    schema = assert_ok(workspace.run("schema")).json()
    assert {"work_pools", "work_queues", "variables"} <= set(schema["properties"])
    pool = schema["$defs"]["WorkPoolSpec"]
    assert pool["additionalProperties"] is False and "type" in pool["required"]


def test_cli_starts_without_importing_prefect():
    code = (
        "import sys\nfrom provider.cli import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in sys.modules if m == 'prefect' or m.startswith(('prefect.', 'boto3', 'google.cloud', 'azure'))]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"})
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr


def test_moved_renames_on_the_server_without_destroying(workspace, prefix, api):
    workspace.write("main.yaml", f"variables:\n  {prefix}_old: {{value: 1}}\nconcurrency_limits:\n  {prefix}-slots: {{limit: 2}}\n")
    assert_ok(workspace.apply())
    variable_id = api.get(f"variables/name/{prefix}_old").json()["id"]
    workspace.write(
        "main.yaml",
        f"variables:\n  {prefix}_new: {{value: 2}}\nconcurrency_limits:\n  {prefix}-renamed: {{limit: 2}}\n"
        f"moved:\n  - {{from: variables.{prefix}_old, to: variables.{prefix}_new}}\n"
        f"  - {{from: concurrency_limits.{prefix}-slots, to: concurrency_limits.{prefix}-renamed}}\n",
    )
    planned = assert_ok(workspace.plan(), 2)
    assert f"variables.{prefix}_old has moved to variables.{prefix}_new" in planned.stdout
    assert "Plan: 0 to add, 2 to change, 0 to destroy." in planned.stdout
    assert_ok(workspace.apply())
    renamed = api.get(f"variables/name/{prefix}_new").json()
    assert renamed["id"] == variable_id and renamed["value"] == 2
    assert api.get(f"variables/name/{prefix}_old").status_code == 404
    assert set(workspace.state()["resources"]) == {f"variables.{prefix}_new", f"concurrency_limits.{prefix}-renamed"}
    assert_ok(workspace.plan(), 0)


def test_moved_is_refused_for_kinds_the_server_cannot_rename(workspace, prefix, api):
    workspace.write("main.yaml", f"work_pools:\n  {prefix}-a: {{type: process}}\n")
    assert_ok(workspace.apply())
    workspace.write("main.yaml", f"work_pools:\n  {prefix}-b: {{type: process}}\n"
                                 f"moved:\n  - {{from: work_pools.{prefix}-a, to: work_pools.{prefix}-b}}\n")
    refused = assert_ok(workspace.plan(), 1)
    assert "cannot rename work_pools" in refused.stderr
    assert api.get(f"work_pools/{prefix}-a").status_code == 200


def test_create_before_destroy_needs_a_kind_that_allows_duplicate_names(workspace, prefix):
    workspace.write("main.yaml", f"work_pools:\n  {prefix}-p:\n    type: process\n    lifecycle: {{create_before_destroy: true}}\n")
    assert_ok(workspace.apply())
    workspace.write("main.yaml", f"work_pools:\n  {prefix}-p:\n    type: docker\n    lifecycle: {{create_before_destroy: true}}\n")
    refused = assert_ok(workspace.plan(), 1)
    assert "create_before_destroy cannot work here" in refused.stderr and f"work_pools.{prefix}-p" in refused.stderr


def test_create_before_destroy_replaces_an_automation_new_one_first(workspace, prefix, api):
    config = (
        f"automations:\n  {prefix}-watch:\n    lifecycle: {{create_before_destroy: true}}\n"
        "    trigger: {type: event, expect: [external.thing.happened]}\n"
        "    actions: [{type: do-nothing}]\n"
    )
    workspace.write("main.yaml", config)
    assert_ok(workspace.apply())
    old_id = workspace.state()["resources"][f"automations.{prefix}-watch"]["id"]
    planned = assert_ok(workspace.run("plan", str(workspace.directory), "--json", "--replace", f"automations.{prefix}-watch")).json()
    change = next(c for c in planned["resource_changes"] if c["address"] == f"automations.{prefix}-watch")
    assert change["change"]["actions"] == ["create", "delete"]
    assert_ok(workspace.apply("--replace", f"automations.{prefix}-watch"))
    live = [a for a in all_objects(api, "automations/filter") if a["name"] == f"{prefix}-watch"]
    assert len(live) == 1 and live[0]["id"] != old_id
    assert workspace.state()["resources"][f"automations.{prefix}-watch"]["id"] == live[0]["id"]
    assert_ok(workspace.plan(), 0)


def test_prevent_destroy_blocks_deletes_and_replacements(workspace, prefix, api):
    guarded = f"work_pools:\n  {prefix}-keep:\n    type: process\n    lifecycle: {{prevent_destroy: true}}\n"
    workspace.write("main.yaml", guarded)
    assert_ok(workspace.apply())
    workspace.write("main.yaml", guarded.replace("type: process", "type: docker"))
    replaced = assert_ok(workspace.plan(), 1)
    assert "prevent_destroy forbids destroying" in replaced.stderr and f"work_pools.{prefix}-keep" in replaced.stderr
    assert "main.yaml:2" in replaced.stderr
    destroyed = assert_ok(workspace.run("destroy", str(workspace.directory), "--auto-approve"), 1)
    assert "prevent_destroy" in destroyed.stderr
    assert api.get(f"work_pools/{prefix}-keep").json()["type"] == "process"


def test_ignore_changes_leaves_drift_in_those_fields(workspace, prefix, api):
    workspace.write("main.yaml", f"variables:\n  {prefix}_tuned:\n    value: 1\n    tags: [a]\n    lifecycle: {{ignore_changes: [value]}}\n")
    assert_ok(workspace.apply())
    api.patch(f"variables/name/{prefix}_tuned", json={"value": 42}).raise_for_status()
    assert_ok(workspace.plan(), 0)
    api.patch(f"variables/name/{prefix}_tuned", json={"tags": ["b"]}).raise_for_status()
    assert_ok(workspace.apply())
    live = api.get(f"variables/name/{prefix}_tuned").json()
    assert live["tags"] == ["a"] and live["value"] == 42
