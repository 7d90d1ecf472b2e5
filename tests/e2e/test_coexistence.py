"""prefect-provider and `prefect deploy --all` on the same deployment, in either order: trigger
automations are owned by the deployment as prefect deploy makes them, never duplicated, and the
tool's plan shows no automation change after prefect deploy ran."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Workspace, assert_ok

TRIGGER_COUNT = 2


def project(directory: Path, prefix: str) -> Path:
    """A flow file and the prefect.yaml that deploys it with two triggers (one named, one not)."""
    directory.mkdir()
    (directory / "flows.py").write_text(textwrap.dedent(f"""\
        from prefect import flow


        @flow(name="{prefix}-etl")
        def etl():
            pass
        """))
    (directory / "prefect.yaml").write_text(textwrap.dedent(f"""\
        name: coexistence
        prefect-version: 3.8.8
        pull:
        - prefect.deployments.steps.set_working_directory:
            directory: /opt/flows
        deployments:
        - name: {prefix}-nightly
          version: "1.0"
          entrypoint: flows.py:etl
          work_pool: {{name: {prefix}-pool}}
          triggers:
          - expect: [external.model.refreshed]
            match: {{prefect.resource.id: upstream.*}}
          - name: {prefix}-on-failure
            enabled: false
            expect: [prefect.flow-run.Failed]
            parameters: {{retry: true}}
        """))
    return directory


def config(prefix: str, with_deployment: bool = True) -> str:
    pool = f"work_pools:\n  {prefix}-pool: {{type: process}}\n"
    if not with_deployment:
        return pool
    return pool + textwrap.dedent(f"""\
        deployments:
          {prefix}-etl/{prefix}-nightly:
            entrypoint: flows.py:etl
            version: "1.0"
            # What prefect deploy derives from the flow's signature.
            parameter_openapi_schema: {{title: Parameters, type: object, properties: {{}}}}
            work_pool: {prefix}-pool
            pull_steps:
            - prefect.deployments.steps.set_working_directory: {{directory: /opt/flows}}
            triggers:
            - expect: [external.model.refreshed]
              match: {{prefect.resource.id: upstream.*}}
            - name: {prefix}-on-failure
              enabled: false
              expect: [prefect.flow-run.Failed]
              parameters: {{retry: true}}
        """)


def prefect_deploy(directory: Path, api_url: str, home: Path) -> None:
    home.mkdir(exist_ok=True)
    env = {**os.environ, "PREFECT_API_URL": api_url, "HOME": str(home), "PREFECT_HOME": str(home / ".prefect"),
           "PREFECT_API_KEY": "", "PREFECT_CLI_PROMPT": "false"}
    done = subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"], cwd=directory, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def trigger_names(prefix: str) -> list[str]:
    return [f"{prefix}-nightly__automation_1", f"{prefix}-on-failure"]


def owned_automations(api: httpx.Client, prefix: str) -> dict[str, list[dict[str, Any]]]:
    """The automations named as the triggers, by name, whichever deployment they run."""
    found = api.post("automations/filter", json={"automations": {"name": {"any_": trigger_names(prefix)}}}).json()
    by_name: dict[str, list[dict[str, Any]]] = {name: [] for name in trigger_names(prefix)}
    for automation in found:
        by_name[automation["name"]].append(automation)
    return by_name


def deployment_id(api: httpx.Client, prefix: str) -> str:
    return api.get(f"deployments/name/{prefix}-etl/{prefix}-nightly").json()["id"]


def assert_one_trigger_each(api: httpx.Client, prefix: str) -> None:
    deployment = deployment_id(api, prefix)
    for name, found in owned_automations(api, prefix).items():
        assert len(found) == 1, f"{name}: {len(found)} automations"
        [run] = found[0]["actions"]
        assert run["type"] == "run-deployment" and run["deployment_id"] == deployment
    # Owned: what prefect deploy deletes before it makes a deployment's triggers again.
    related = api.get(f"automations/related-to/prefect.deployment.{deployment}").json()
    assert sorted(a["name"] for a in related) == sorted(trigger_names(prefix))


def automation_changes(workspace: Workspace, *, plan_empty: bool = True) -> list[tuple[str, list[str]]]:
    """What the plan would change in automations (and, with `plan_empty`, that it changes nothing)."""
    if plan_empty:
        assert_ok(workspace.plan(), 0)
    plan = assert_ok(workspace.run("plan", str(workspace.directory), "--json")).json()
    return [(c["address"], c["change"]["actions"]) for c in plan["resource_changes"]
            if c["address"].startswith("automations.") and c["change"]["actions"] != ["no-op"]]


def test_apply_then_prefect_deploy_then_apply(workspace, prefix, api, api_url, tmp_path):
    directory = project(tmp_path / "project", prefix)
    workspace.write("main.yaml", config(prefix))
    assert_ok(workspace.apply())
    assert_one_trigger_each(api, prefix)
    first = {name: found[0]["id"] for name, found in owned_automations(api, prefix).items()}

    prefect_deploy(directory, api_url, tmp_path / "home")
    assert_one_trigger_each(api, prefix)  # it replaced ours, as it replaces its own
    assert {name: found[0]["id"] for name, found in owned_automations(api, prefix).items()} != first
    assert automation_changes(workspace) == []

    assert_ok(workspace.apply())
    assert_one_trigger_each(api, prefix)
    prefect_deploy(directory, api_url, tmp_path / "home")
    assert_one_trigger_each(api, prefix)
    assert automation_changes(workspace) == []


def test_prefect_deploy_then_import_and_apply(workspace, prefix, api, api_url, tmp_path):
    directory = project(tmp_path / "project", prefix)
    workspace.write("main.yaml", config(prefix, with_deployment=False))
    assert_ok(workspace.apply())
    prefect_deploy(directory, api_url, tmp_path / "home")
    assert_one_trigger_each(api, prefix)

    workspace.write("main.yaml", config(prefix))
    assert_ok(workspace.run("import", f"deployments.{prefix}-etl/{prefix}-nightly", deployment_id(api, prefix), str(workspace.directory)))
    planned = assert_ok(workspace.plan(), 2)
    for name in trigger_names(prefix):
        assert f"automations.{name} will be imported" in planned.stdout
        assert f"a trigger of deployments.{prefix}-etl/{prefix}-nightly, owned by it as `prefect deploy` makes it" in planned.stdout
    assert automation_changes(workspace, plan_empty=False) == []
    assert_ok(workspace.apply())
    assert_one_trigger_each(api, prefix)

    prefect_deploy(directory, api_url, tmp_path / "home")
    assert_one_trigger_each(api, prefix)
    assert automation_changes(workspace) == []
