"""Declared flows against a real server: tags in place, labels by re-creation, deployments depending
on their flow, drift, and a delete that never takes away a deployment nobody asked to remove."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import assert_ok


def flows_config(prefix: str, *, tags: str = "[tf-test, etl]", labels: str = "{team: data, tier: 1}",
                 with_deployment: bool = True, with_flow: bool = True) -> str:
    text = ""
    if with_flow:
        text += f"flows:\n  {prefix}-flow: {{tags: {tags}, labels: {labels}}}\n"
    if with_deployment:
        text += f"deployments:\n  {prefix}-flow/nightly: {{entrypoint: flows/etl.py:etl}}\n"
    return text or "{}\n"


def flow(api, name: str) -> dict:
    response = api.get(f"flows/name/{name}")
    response.raise_for_status()
    return response.json()


def test_create_noop_tags_in_place_drift_and_delete(workspace, prefix, api):
    workspace.write("main.yaml", flows_config(prefix))
    planned = assert_ok(workspace.plan(), 2)
    assert "Plan: 2 to add, 0 to change, 0 to destroy." in planned.stdout
    assert_ok(workspace.apply())
    created = flow(api, f"{prefix}-flow")
    assert (sorted(created["tags"]), created["labels"]) == (["etl", "tf-test"], {"team": "data", "tier": 1})
    assert api.get(f"deployments/name/{prefix}-flow/nightly").json()["flow_id"] == created["id"]
    record = workspace.state()["resources"][f"deployments.{prefix}-flow/nightly"]
    assert f"flows.{prefix}-flow" in record["dependencies"], "a deployment depends on its declared flow"
    assert "No changes." in assert_ok(workspace.plan(), 0).stdout

    workspace.write("main.yaml", flows_config(prefix, tags="[tf-test]"))
    planned = assert_ok(workspace.plan(), 2)
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in planned.stdout
    assert_ok(workspace.apply())
    updated = flow(api, f"{prefix}-flow")
    assert (updated["id"], updated["tags"]) == (created["id"], ["tf-test"]), "tags are updated in place"
    assert_ok(workspace.plan(), 0)

    api.patch(f"flows/{created['id']}", json={"tags": ["by-hand"]}).raise_for_status()
    drift = assert_ok(workspace.run("drift", str(workspace.directory)), 2)
    assert re.search(r'~ tags\s+= \[\n\s+~ "tf-test" -> "by-hand"\n', drift.stdout), drift.stdout
    assert_ok(workspace.apply())
    assert flow(api, f"{prefix}-flow")["tags"] == ["tf-test"]
    assert_ok(workspace.plan(), 0)

    workspace.write("main.yaml", "{}\n")
    planned = assert_ok(workspace.plan(), 2)
    assert "Plan: 0 to add, 0 to change, 2 to destroy." in planned.stdout
    assert_ok(workspace.apply())
    assert api.get(f"flows/name/{prefix}-flow").status_code == 404
    assert api.get(f"deployments/name/{prefix}-flow/nightly").status_code == 404
    assert workspace.state()["resources"] == {}


def test_a_flow_with_deployments_left_is_never_deleted(workspace, prefix, api):
    """Prefect deletes a flow's deployments with it: a deployment this configuration does not
    manage, or still declares, stops the delete instead."""
    workspace.write("main.yaml", flows_config(prefix))
    assert_ok(workspace.apply())
    flow_id = flow(api, f"{prefix}-flow")["id"]
    api.post("deployments/", json={"name": "by-hand", "flow_id": flow_id}).raise_for_status()

    workspace.write("main.yaml", "{}\n")
    refused = assert_ok(workspace.apply(), 1)
    assert f"not deleted: the server would delete its deployments with it ({prefix}-flow/by-hand)" in refused.output
    assert flow(api, f"{prefix}-flow")["id"] == flow_id
    assert api.get(f"deployments/name/{prefix}-flow/by-hand").status_code == 200
    assert api.get(f"deployments/name/{prefix}-flow/nightly").status_code == 404, "the managed deployment went first"
    assert list(workspace.state()["resources"]) == [f"flows.{prefix}-flow"]

    # Kept declaration-free but still used by a declared deployment: its delete is refused too.
    workspace.write("main.yaml", flows_config(prefix, with_flow=False))
    assert_ok(workspace.apply(), 1)
    assert flow(api, f"{prefix}-flow")["id"] == flow_id
    assert api.get(f"deployments/name/{prefix}-flow/nightly").status_code == 200

    assert_ok(workspace.run("state", "rm", f"flows.{prefix}-flow", str(workspace.directory)))
    assert_ok(workspace.plan(), 0)


def test_changed_labels_recreate_a_flow_without_deployments(workspace, prefix, api):
    workspace.write("main.yaml", flows_config(prefix, with_deployment=False))
    assert_ok(workspace.apply())
    before = flow(api, f"{prefix}-flow")

    workspace.write("main.yaml", flows_config(prefix, labels="{team: ml}", with_deployment=False))
    planned = assert_ok(workspace.plan(), 2)
    assert "Plan: 1 to add, 0 to change, 1 to destroy." in planned.stdout
    assert_ok(workspace.apply())
    after = flow(api, f"{prefix}-flow")
    assert after["id"] != before["id"] and after["labels"] == {"team": "ml"}
    assert_ok(workspace.plan(), 0)

    workspace.write("main.yaml", flows_config(prefix, labels="{team: ml}"))
    assert_ok(workspace.apply())
    workspace.write("main.yaml", flows_config(prefix, labels="{team: ops}"))
    refused = assert_ok(workspace.apply(), 1)
    assert "not deleted: the server would delete its deployments with it" in refused.output
    assert flow(api, f"{prefix}-flow")["id"] == after["id"]
    assert api.get(f"deployments/name/{prefix}-flow/nightly").status_code == 200


def test_an_existing_flow_is_imported_not_taken(workspace, prefix, api):
    made = api.post("flows/", json={"name": f"{prefix}-flow", "tags": ["theirs"]}).json()
    workspace.write("main.yaml", flows_config(prefix, with_deployment=False))
    refused = assert_ok(workspace.plan(), 1)
    assert f"flows.{prefix}-flow" in refused.output and made["id"] in refused.output
    assert flow(api, f"{prefix}-flow")["tags"] == ["theirs"]

    assert_ok(workspace.run("import", f"flows.{prefix}-flow", f"{prefix}-flow", str(workspace.directory)))
    planned = assert_ok(workspace.plan(), 2)
    assert "(labels forces replacement)" in planned.stdout, "labels are only set on a new flow"
    # What keeps an adopted flow (and its runs) is to leave its labels alone.
    workspace.write("main.yaml", f"flows:\n  {prefix}-flow: {{tags: [ours], labels: {{team: data}}, "
                                 "lifecycle: {ignore_changes: [labels]}}\n")
    planned = assert_ok(workspace.plan(), 2)
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in planned.stdout
    assert_ok(workspace.apply())
    assert (flow(api, f"{prefix}-flow")["id"], flow(api, f"{prefix}-flow")["tags"]) == (made["id"], ["ours"])
    assert_ok(workspace.plan(), 0)


@pytest.mark.parametrize(("yaml", "line", "message"), [
    ("flows:\n  __P__:\n    labels: {team: {nested: 1}}\n", 3,
     "flows.__P__.labels: label team: a value is a string, number or boolean"),
    ("flows:\n  __P__: {tags: [a], colour: red}\n", 2, "flows.__P__.colour: unknown field"),
    ("flows:\n  __P__: {tags: etl}\n", 2, "flows.__P__.tags: Input should be a valid list"),
    ('flows:\n  "__P__/x": {}\n', 2, "flows.__P__/x: invalid name"),
])
def test_bad_input_names_file_line_and_field(yaml, line, message, workspace, prefix, api):
    workspace.write("flows.yaml", yaml.replace("__P__", prefix))
    for command in (["validate"], ["plan"], ["apply", "--auto-approve"]):
        result = assert_ok(workspace.run(*command, str(workspace.directory)), 1)
        assert f"flows.yaml:{line}: {message.replace('__P__', prefix)}" in result.stderr
        assert "Traceback" not in result.output
    assert api.get(f"flows/name/{prefix}").status_code == 404


def test_export_declares_flows_and_deployments_depending_on_them(workspace, prefix, tmp_path):
    workspace.write("main.yaml", flows_config(prefix))
    assert_ok(workspace.apply())
    out = tmp_path / "exported"
    assert_ok(workspace.run("export", "--kinds", "flows,deployments", "--out", str(out)))
    assert f"{prefix}-flow:" in (out / "flows.yaml").read_text()
    state = json.loads((out / "prefect-provider.state.json").read_text())
    record = state["resources"][f"deployments.{prefix}-flow/nightly"]
    assert f"flows.{prefix}-flow" in record["dependencies"], "so destroy deletes the deployment before its flow"


def test_an_undeclared_flow_is_made_by_its_deployment_and_never_deleted(workspace, prefix, api):
    workspace.write("main.yaml", flows_config(prefix, with_flow=False))
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in assert_ok(workspace.plan(), 2).stdout
    assert_ok(workspace.apply())
    made = flow(api, f"{prefix}-flow")
    assert list(workspace.state()["resources"]) == [f"deployments.{prefix}-flow/nightly"]
    workspace.write("main.yaml", "{}\n")
    assert_ok(workspace.apply())
    assert api.get(f"deployments/name/{prefix}-flow/nightly").status_code == 404
    assert flow(api, f"{prefix}-flow")["id"] == made["id"]


def test_a_flow_deleted_by_hand_comes_back_with_the_deployments_the_server_deleted(workspace, prefix, api):
    workspace.write("main.yaml", flows_config(prefix))
    assert_ok(workspace.apply())
    api.delete(f"flows/{flow(api, f'{prefix}-flow')['id']}").raise_for_status()
    planned = assert_ok(workspace.plan(), 2)
    assert f"flows.{prefix}-flow: deleted outside prefect-provider" in planned.stdout
    assert f"deployments.{prefix}-flow/nightly: deleted outside prefect-provider" in planned.stdout
    assert "Plan: 2 to add, 0 to change, 0 to destroy." in planned.stdout
    assert_ok(workspace.apply())
    assert api.get(f"deployments/name/{prefix}-flow/nightly").json()["flow_id"] == flow(api, f"{prefix}-flow")["id"]
    assert_ok(workspace.plan(), 0)
