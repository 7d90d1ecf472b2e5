"""Data sources: objects a configuration reads and refers to but never manages, on a real server."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import assert_ok


def made_elsewhere(api, prefix: str) -> dict[str, str]:
    """What a platform team made by hand: a work pool, and a deployment of a flow."""
    pool = api.post("work_pools/", json={"name": f"{prefix}-platform", "type": "process"})
    pool.raise_for_status()
    flow = api.post("flows/", json={"name": f"{prefix}-flow"})
    flow.raise_for_status()
    deployment = api.post("deployments/", json={"name": "shared", "flow_id": flow.json()["id"]})
    deployment.raise_for_status()
    return {"pool": pool.json()["id"], "deployment": deployment.json()["id"]}


def config(prefix: str, *, parameters: str = "{}") -> str:
    return f"""
data:
  work_pools:
    {prefix}-platform: {{}}
  deployments:
    {prefix}-flow/shared: {{}}
deployments:
  {prefix}-flow/mine:
    entrypoint: flows.py:main
    work_pool: {prefix}-platform
automations:
  {prefix}-rerun:
    trigger: {{type: event, expect: [prefect.flow-run.Failed], posture: Reactive, threshold: 1}}
    actions:
      - {{type: run-deployment, deployment: {prefix}-flow/shared, parameters: {parameters}}}
"""


def test_resources_refer_to_data_sources_which_are_never_touched(workspace, prefix, api):
    ids = made_elsewhere(api, prefix)
    pool_before = api.get(f"work_pools/{prefix}-platform").json()
    workspace.write("main.yaml", config(prefix))
    planned = assert_ok(workspace.plan(), 2)
    assert "Plan: 2 to add, 0 to change, 0 to destroy." in planned.stdout
    assert "platform" not in planned.stdout.split("Plan:")[0].split("will be created")[0], "a data source is no change"
    assert_ok(workspace.apply())

    mine = api.get(f"deployments/name/{prefix}-flow/mine").json()
    assert mine["work_pool_name"] == f"{prefix}-platform"
    automation = next(a for a in api.post("automations/filter", json={}).json() if a["name"] == f"{prefix}-rerun")
    assert automation["actions"][0]["deployment_id"] == ids["deployment"], "the action holds the data source's id"
    assert_ok(workspace.plan(), 0)  # the live id reads back as the data source's name: no diff
    state = json.loads((workspace.directory / "prefect-provider.state.json").read_text())
    assert not [a for a in state["resources"] if "platform" in a or "shared" in a], "data sources are not in state"

    workspace.write("main.yaml", config(prefix, parameters="{full: true}"))
    assert_ok(workspace.apply())
    assert_ok(workspace.plan(), 0)

    destroyed = assert_ok(workspace.run("destroy", str(workspace.directory), "--auto-approve"))
    assert api.get(f"deployments/name/{prefix}-flow/mine").status_code == 404, destroyed.output
    assert api.get(f"work_pools/{prefix}-platform").json()["updated"] == pool_before["updated"]
    assert api.get(f"deployments/{ids['deployment']}").status_code == 200


def test_a_missing_data_source_stops_the_plan_naming_it_and_its_line(workspace, prefix, api):
    workspace.write("main.yaml", config(prefix))  # nothing was made by hand
    for result in (workspace.run("plan", str(workspace.directory)), workspace.apply()):
        assert result.exit_code == 1, result.output
        assert re.search(rf"data.work_pools.{prefix}-platform \(\S*main.yaml:4\): no such object on the server", result.stderr)
        assert re.search(rf"data.deployments.{prefix}-flow/shared \(\S*main.yaml:6\): no such object on the server", result.stderr)
        assert "Traceback" not in result.stderr
    assert api.get(f"deployments/name/{prefix}-flow/mine").status_code == 404, "nothing applied"


@pytest.mark.parametrize(("text", "message"), [
    ("data:\n  nonsense:\n    x: {}\n", "main.yaml:2: data.nonsense: unknown kind (expected one of: work_pools,"),
    ("data:\n  work_pools:\n    p: {type: process}\n", "main.yaml:3: data.work_pools.p: a data source takes no options"),
    ("data:\n  work_pools: [p]\n", "main.yaml:2: data.work_pools: expected a mapping from names to {}"),
    ("data:\n  variables:\n    Not-Valid: {}\n", "main.yaml:3: data.variables.Not-Valid: invalid name"),
    ("data: {work_pools: {p: {}}}\nwork_pools:\n  p: {type: process}\n",
     "main.yaml:1: data.work_pools.p: declared both as a resource (at "),
    ("deployments:\n  f/d: {entrypoint: x.py:f, work_pool: elsewhere}\n",
     "refers to work_pools.elsewhere, which is not declared in this configuration (declare it, or read it as data"),
])
def test_bad_data_declarations_name_file_line_and_field(workspace, text, message):
    workspace.write("main.yaml", text)
    result = assert_ok(workspace.run("validate", str(workspace.directory)), 1)
    assert message in result.stderr, result.stderr


def test_data_expressions_read_attributes_into_other_fields(workspace, prefix, api):
    made_elsewhere(api, prefix)
    api.post("variables/", json={"name": f"{prefix}_bucket", "value": "s3://platform-results"}).raise_for_status()
    platform_template = api.get(f"work_pools/{prefix}-platform").json()["base_job_template"]
    workspace.write("main.yaml", f"""
data:
  variables: {{{prefix}_bucket: {{}}}}
  work_pools: {{{prefix}-platform: {{}}}}
variables:
  {prefix}_results: {{value: "${{data.variables.{prefix}_bucket.value}}/etl", tags: [copied]}}
  {prefix}_pool_id: {{value: "${{data.work_pools.{prefix}-platform.id}}"}}
work_pools:
  {prefix}-copy:
    type: process
    base_job_template: ${{data.work_pools.{prefix}-platform.base_job_template}}
""")
    validated = assert_ok(workspace.run("validate", str(workspace.directory)))
    assert "(0 resources; 3 more read data sources and are checked by plan)" in validated.stdout
    assert "Plan: 3 to add" in assert_ok(workspace.plan(), 2).stdout
    assert_ok(workspace.apply())
    assert api.get(f"variables/name/{prefix}_results").json()["value"] == "s3://platform-results/etl"
    pool_id = api.get(f"work_pools/{prefix}-platform").json()["id"]
    assert api.get(f"variables/name/{prefix}_pool_id").json()["value"] == pool_id
    assert api.get(f"work_pools/{prefix}-copy").json()["base_job_template"] == platform_template
    assert_ok(workspace.plan(), 0)

    # The platform team changes the variable: the copy follows on the next apply.
    variable = api.get(f"variables/name/{prefix}_bucket").json()
    api.patch(f"variables/{variable['id']}", json={"value": "s3://moved"}).raise_for_status()
    planned = assert_ok(workspace.plan(), 2)
    assert re.search(r'~ value\s+= "s3://platform-results/etl" -> "s3://moved/etl"', planned.stdout), planned.stdout
    assert_ok(workspace.apply())
    assert api.get(f"variables/name/{prefix}_results").json()["value"] == "s3://moved/etl"


@pytest.mark.parametrize(("expression", "message"), [
    ("${data.variables.undeclared.value}", "main.yaml:4: variables.{prefix}_x.value: data.variables.undeclared is not declared"),
    ("${data.variables.{prefix}_bucket.nope}", "main.yaml:4: variables.{prefix}_x.value: data.variables.{prefix}_bucket has no attribute nope"),
    ("${data.variables.{prefix}_bucket}", "main.yaml:4: variables.{prefix}_x.value: name an attribute of data.variables.{prefix}_bucket"),
])
def test_bad_data_expressions_name_file_line_and_field_at_plan(workspace, prefix, api, expression, message):
    api.post("variables/", json={"name": f"{prefix}_bucket", "value": "b"}).raise_for_status()
    workspace.write("main.yaml", f"""
data: {{variables: {{{prefix}_bucket: {{}}}}}}
variables:
  {prefix}_x: {{value: "{expression.replace('{prefix}', prefix)}"}}
""")
    result = workspace.run("plan", str(workspace.directory))
    assert result.exit_code == 1 and message.replace("{prefix}", prefix) in result.stderr, result.output
    assert "Traceback" not in result.output


def test_a_cloud_only_data_source_is_refused_on_an_open_source_server_before_any_read(workspace, prefix):
    workspace.write("main.yaml", f"data:\n  webhooks:\n    {prefix}-hook: {{}}\n")
    result = workspace.run("plan", str(workspace.directory))
    assert result.exit_code == 1, result.output
    assert f"main.yaml:3: data.webhooks.{prefix}-hook: webhooks are a Prefect Cloud feature" in result.stderr


def test_worker_metadata_gives_a_worker_types_default_template(workspace, prefix, api):
    workspace.write("main.yaml", f"""
data: {{worker_metadata: {{process: {{}}}}}}
work_pools:
  {prefix}-custom:
    type: process
    base_job_template: ${{data.worker_metadata.process.base_job_template}}
variables:
  {prefix}_docs: {{value: "${{data.worker_metadata.process.documentation_url}}"}}
""")
    assert_ok(workspace.apply())
    pool = api.get(f"work_pools/{prefix}-custom").json()
    default = api.get("collections/views/aggregate-worker-metadata").json()["prefect"]["process"]
    assert pool["base_job_template"] == default["default_base_job_configuration"]
    assert api.get(f"variables/name/{prefix}_docs").json()["value"] == default["documentation_url"]
    assert_ok(workspace.plan(), 0)

    workspace.write("main.yaml", "worker_metadata:\n  process: {}\n")
    refused = assert_ok(workspace.run("validate", str(workspace.directory)), 1)
    assert "main.yaml:1: worker_metadata: unknown resource kind" in refused.stderr
