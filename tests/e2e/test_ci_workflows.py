"""What an infra repo's CI runs: drift reports, markdown plans, import."""

from __future__ import annotations

from tests.conftest import assert_ok
from tests.e2e.test_lifecycle import pool_config


def test_drift_exit_codes_and_reports(workspace, prefix, api):
    workspace.write("main.yaml", pool_config(prefix))
    assert_ok(workspace.apply())
    report = workspace.directory.parent / "drift.md"
    clean = assert_ok(workspace.run("drift", str(workspace.directory), "--markdown", str(report)), 0)
    assert "No changes" in clean.stdout
    assert report.read_text().startswith("### prefect-provider drift: none")

    api.patch(f"work_pools/{prefix}-pool", json={"is_paused": True}).raise_for_status()
    api.delete(f"variables/name/{prefix}_settings").raise_for_status()
    drifted = assert_ok(workspace.run("drift", str(workspace.directory), "--json"), 2).json()
    by_address = {d["address"]: d for d in drifted["resource_drift"]}
    assert set(by_address) == {f"work_pools.{prefix}-pool", f"variables.{prefix}_settings"}
    assert by_address[f"work_pools.{prefix}-pool"]["change"]["after"]["paused"] is True
    assert by_address[f"variables.{prefix}_settings"]["change"]["actions"] == ["delete"]

    assert_ok(workspace.run("drift", str(workspace.directory), "--markdown", str(report)), 2)
    text = report.read_text()
    first, _, rest = text.partition("\n")
    assert first == "### prefect-provider drift: 2 object(s) changed outside prefect-provider"
    assert "<details>" in rest and "paused" in rest
    # drift only reports: nothing was repaired, the state is untouched.
    assert api.get(f"work_pools/{prefix}-pool").json()["is_paused"] is True


def test_markdown_plan_for_a_pull_request(workspace, prefix):
    workspace.write("main.yaml", pool_config(prefix))
    assert_ok(workspace.apply())
    workspace.write("main.yaml", pool_config(prefix, with_low=False, pool_limit=7))
    comment = workspace.directory.parent / "plan.md"
    assert_ok(workspace.plan("--markdown", str(comment)), 2)
    text = comment.read_text()
    assert text.splitlines()[0] == "### prefect-provider Plan: 0 to add, 1 to change, 1 to destroy."
    assert "> [!WARNING]" in text and f"`work_queues.{prefix}-pool/low`" in text
    assert "<details><summary>Show the full plan</summary>" in text
    assert "~ concurrency_limit = 5 -> 7" in text


def test_import_adopts_an_existing_object_and_plans_clean(workspace, prefix, api):
    created = api.post("variables/", json={"name": f"{prefix}_adopt", "value": {"a": 1}, "tags": ["x"]}).json()
    api.post("work_pools/", json={"name": f"{prefix}-adopted", "type": "process"}).raise_for_status()
    workspace.write(
        "main.yaml",
        f"variables:\n  {prefix}_adopt: {{value: {{a: 1}}, tags: [x]}}\n"
        f"work_pools:\n  {prefix}-adopted:\n    type: process\n    base_job_template: {{}}\n",
    )
    assert "prefect-provider import" in assert_ok(workspace.plan(), 1).stderr
    assert_ok(workspace.run("import", f"variables.{prefix}_adopt", created["id"], str(workspace.directory)))
    assert_ok(workspace.run("import", f"work_pools.{prefix}-adopted", f"{prefix}-adopted", str(workspace.directory)))
    assert_ok(workspace.plan(), 0)
    assert workspace.state()["resources"][f"variables.{prefix}_adopt"]["id"] == created["id"]

    again = assert_ok(workspace.run("import", f"variables.{prefix}_adopt", created["id"], str(workspace.directory)), 1)
    assert "already managed" in again.stderr
    workspace.write("more.yaml", f"variables:\n  {prefix}_nothing: {{value: 1}}\n")  # declared, but not on the server
    wrong = assert_ok(workspace.run("import", f"variables.{prefix}_nothing", "x", str(workspace.directory)), 1)
    assert "no such object" in wrong.stderr
