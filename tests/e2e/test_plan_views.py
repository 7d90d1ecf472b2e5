"""Plans that show the change, on the real Prefect server (and moto for provision_infra): a pool
made from the server's default template shows only what is filled in, an update of one template
variable shows that variable, and the JSON plan names the changed nested paths."""

from __future__ import annotations

import json

from tests.conftest import assert_ok
from tests.e2e.test_provision_aws import pool_config as ecs_pool_config

# Two terminal screens.
MAX_PLAN_LINES = 100


def pool_block(text: str, pool: str) -> str:
    """The pool's own block of a human plan: from its headline to the blank line after it."""
    start = text.index(f"# work_pools.{pool} will be created")
    return text[start:text.index("\n\n", start)]


def pool_changes(result, address: str) -> dict:
    return next(c for c in result.json()["resource_changes"] if c["address"] == address)["change"]


def test_an_ecs_pool_with_provision_infra_plans_on_two_screens(workspace, prefix, aws_env):
    pool = f"{prefix}-ecs"
    workspace.write("pools.yaml", ecs_pool_config(pool, default_vpc=True))
    planned = assert_ok(workspace.plan(env=aws_env), 2)
    lines = planned.stdout.splitlines()
    assert len(lines) <= MAX_PLAN_LINES, planned.stdout
    assert "+ base_job_template = (server default `ecs` template) {" in planned.stdout
    # The values provision_infra fills in, by their path in the template, and nothing else of it.
    for variable, part in (("cluster", "ecs_cluster"), ("execution_role_arn", "execution_role"), ("vpc_id", "default_vpc")):
        assert f'+ variables.properties.{variable}.default' in planned.stdout
        assert f'{{"$infra": "work_pools.{pool}.infra.{part}"}}' in planned.stdout
    assert "Task Watch Poll Interval" not in planned.stdout and "task_definition" not in planned.stdout

    # The same view from a saved plan, and the JSON plan's paths of what was filled in.
    plan_file = workspace.directory.parent / "ecs.plan"
    assert_ok(workspace.plan("--out", str(plan_file), env=aws_env), 2)
    assert pool_block(assert_ok(workspace.run("show", str(plan_file))).stdout, pool) == pool_block(planned.stdout, pool)
    paths = pool_changes(assert_ok(workspace.run("show", str(plan_file), "--json")), f"work_pools.{pool}")["changed_paths"]
    assert ["variables", "properties", "cluster", "default"] in paths["base_job_template"]


def test_an_update_of_one_template_variable_shows_that_variable(workspace, prefix, api):
    pool = f"{prefix}-proc"
    workspace.write("main.yaml", f"work_pools:\n  {pool}:\n    type: process\n")
    assert_ok(workspace.apply())
    template = api.get(f"work_pools/{pool}").json()["base_job_template"]
    properties = template["variables"]["properties"]
    assert "working_dir" in properties and "default" not in properties["working_dir"]

    properties["working_dir"]["default"] = "/srv/flows"
    workspace.write("template.json", json.dumps(template, indent=2))
    workspace.write("main.yaml", f'work_pools:\n  {pool}:\n    type: process\n    base_job_template: ${{file("template.json")}}\n')
    planned = assert_ok(workspace.plan(), 2)
    text = planned.stdout
    assert "~ working_dir = {" in text and '+ default = "/srv/flows"' in text
    unchanged_variables = len(properties) - 1
    assert f"# ({unchanged_variables} unchanged attributes hidden)" in text
    assert "unchanged attributes hidden" in text.split('+ default = "/srv/flows"')[1].splitlines()[1]
    for other in ("env", "command", "stream_output"):
        assert properties[other]["title"] not in text
    assert len(text.splitlines()) < 30, text

    as_json = assert_ok(workspace.run("plan", str(workspace.directory), "--json")).json()
    change = next(c for c in as_json["resource_changes"] if c["address"] == f"work_pools.{pool}")["change"]
    assert change["actions"] == ["update"]
    assert change["changed_paths"] == {"base_job_template": [["variables", "properties", "working_dir", "default"]]}

    assert_ok(workspace.apply())
    assert api.get(f"work_pools/{pool}").json()["base_job_template"]["variables"]["properties"]["working_dir"]["default"] == "/srv/flows"
    assert_ok(workspace.plan(), 0)
