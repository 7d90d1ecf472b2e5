"""SLAs (`resource_slas`, and a prefect.yaml's `sla:`) against the Cloud fake (tests/cloud_fake_slas.py):
applied in one apply-resource-slas call per deployment, re-planned empty, a no-op apply writes nothing,
hand-made changes are drift and repaired, updated and deleted (an empty list, as Terraform deletes
them), refused against an open-source server before any request, imported and exported; bad input
names its file, line and field. What a prefect.yaml's `sla:` sends is compared field by field with
what `prefect deploy`'s own code builds for it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
import yaml

from tests.conftest import assert_ok

FLOW = '''\
from prefect import flow


@flow(name="{prefix}-etl")
def etl():
    """Load the warehouse."""
'''

SLAS = """\
resource_slas:
  {prefix}-etl/nightly:
    slas:
      - {{name: too-long, duration: 600, severity: high}}
      - {{name: stale, stale_after: PT1H}}
      - {{name: late, within: 90, severity: critical, enabled: false}}
      - name: fresh
        within: 300
        expected_event: warehouse.loaded
        resource_match: {{prefect.resource.id: warehouse.main}}
"""


def project(workspace, prefix: str, slas: str | None = None) -> None:
    """A pool, a flow and its deployment, and `slas` (SLAS by default) in slas.yaml."""
    workspace.write("flows/etl.py", FLOW.format(prefix=prefix))
    workspace.write("main.yaml", f"""\
work_pools:
  {prefix}-pool: {{type: process}}
deployments:
  {prefix}-etl/nightly: {{entrypoint: flows/etl.py:etl, work_pool: {prefix}-pool}}
""")
    workspace.write("slas.yaml", SLAS.format(prefix=prefix) if slas is None else slas)


@pytest.fixture
def by_hand(cloud) -> Iterator[httpx.Client]:
    """Changes made outside prefect-provider, as from the Cloud UI or another tool."""
    with httpx.Client(base_url=cloud.api_url + "/", headers={"Authorization": f"Bearer {cloud.api_key}"}, timeout=30) as client:
        yield client


def deployment_id(api, name: str) -> str:
    response = api.get(f"deployments/name/{name}")
    response.raise_for_status()
    return response.json()["id"]


def slas_of(cloud, deployment: str) -> dict[str, dict]:
    """The deployment's SLAs the fake holds, by name."""
    found = cloud.__dict__.get("slas", {}).get((cloud.workspace, f"prefect.deployment.{deployment}"), [])
    return {sla["name"]: sla for sla in found}


def sla_writes(cloud) -> int:
    return sum(n for route, n in cloud.requests.items() if route.startswith("POST /slas/"))


def test_slas_apply_replan_empty_drift_update_and_delete(cloud_workspace, cloud, api, by_hand, prefix):
    project(cloud_workspace, prefix)
    planned = assert_ok(cloud_workspace.plan(), 2)
    assert f"# resource_slas.{prefix}-etl/nightly will be created" in planned.stdout
    assert_ok(cloud_workspace.apply())
    deployment = deployment_id(api, f"{prefix}-etl/nightly")
    assert cloud.requests["POST /slas/apply-resource-slas/prefect.deployment.{id}"] == 1, "one call with the whole list"
    live = slas_of(cloud, deployment)
    assert {name: sla["type"] for name, sla in live.items()} == {
        "too-long": "time_to_completion", "stale": "frequency", "late": "lateness", "fresh": "freshness"}
    assert live["too-long"]["duration"] == 600 and live["too-long"]["severity"] == "high"
    assert live["stale"]["stale_after"] == 3600.0, "ISO 8601 durations are sent in seconds, as Prefect sends them"
    assert live["late"]["enabled"] is False and live["late"]["within"] == 90.0
    assert live["fresh"]["resource_match"] == {"prefect.resource.id": "warehouse.main"}
    assert {sla["owner_resource"] for sla in live.values()} == {f"prefect.deployment.{deployment}"}
    recorded = cloud_workspace.state()["resources"][f"resource_slas.{prefix}-etl/nightly"]
    assert recorded["id"] == deployment

    # Unset severity and enabled are Cloud's to choose: re-planned empty, and a no-op apply writes nothing.
    assert "No changes." in assert_ok(cloud_workspace.plan(), 0).stdout
    writes = sla_writes(cloud)
    assert_ok(cloud_workspace.apply())
    assert sla_writes(cloud) == writes

    # By hand: one SLA's duration changed, another deleted (the whole list is applied, as the UI or TF would).
    resource = f"prefect.deployment.{deployment}"
    by_hand.post(f"slas/apply-resource-slas/{resource}", json=[
        {"name": "too-long", "duration": 1200, "severity": "high"}, {"name": "stale", "stale_after": 3600},
        {"name": "late", "within": 90, "severity": "critical", "enabled": False},
    ]).raise_for_status()
    drift = assert_ok(cloud_workspace.run("drift", str(cloud_workspace.directory)), 2)
    assert f"~ resource_slas.{prefix}-etl/nightly" in drift.stdout
    assert "~ duration = 600 -> 1200" in drift.stdout and "- fresh    = {" in drift.stdout, "each SLA's own change, by name"
    assert_ok(cloud_workspace.apply())
    assert set(slas_of(cloud, deployment)) == {"too-long", "stale", "late", "fresh"}
    assert slas_of(cloud, deployment)["too-long"]["duration"] == 600
    assert_ok(cloud_workspace.plan(), 0)

    # Configuration changed: a severity, and one SLA removed from the list (Cloud deletes it).
    project(cloud_workspace, prefix, SLAS.format(prefix=prefix).replace("severity: high", "severity: low").split("      - name: fresh")[0])
    planned = assert_ok(cloud_workspace.plan(), 2)
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in planned.stdout
    assert_ok(cloud_workspace.apply())
    live = slas_of(cloud, deployment)
    assert set(live) == {"too-long", "stale", "late"} and live["too-long"]["severity"] == "low"
    assert_ok(cloud_workspace.plan(), 0)

    # Removed from the configuration: an empty list is applied; the deployment stays.
    cloud_workspace.remove("slas.yaml")
    planned = assert_ok(cloud_workspace.plan(), 2)
    assert "Plan: 0 to add, 0 to change, 1 to destroy." in planned.stdout
    assert_ok(cloud_workspace.apply())
    assert slas_of(cloud, deployment) == {}
    assert deployment_id(api, f"{prefix}-etl/nightly") == deployment
    assert f"resource_slas.{prefix}-etl/nightly" not in cloud_workspace.state()["resources"]
    assert_ok(cloud_workspace.plan(), 0)


def test_slas_on_a_deployment_that_does_not_exist_are_a_clear_error(cloud_workspace, cloud, prefix):
    cloud_workspace.write("slas.yaml", SLAS.format(prefix=prefix))
    result = assert_ok(cloud_workspace.apply(), 1)
    assert f"there is no deployment {prefix}-etl/nightly to apply SLAs to" in result.stderr
    assert "Traceback" not in result.output and sla_writes(cloud) == 0


def test_the_fake_answers_404_and_422_as_cloud_does(cloud, api, by_hand, cloud_workspace, prefix):
    missing = f"prefect.deployment.{uuid.uuid4()}"
    assert by_hand.post(f"slas/apply-resource-slas/{missing}", json=[]).status_code == 404
    project(cloud_workspace, prefix, "")
    assert_ok(cloud_workspace.apply())
    resource = f"prefect.deployment.{deployment_id(api, f'{prefix}-etl/nightly')}"
    for bad in ([{"name": "x"}], [{"name": "x", "duration": "ten"}], [{"name": "x", "duration": 1, "colour": 1}],
                [{"name": "x", "duration": 1}, {"name": "x", "within": 1}], {"name": "x", "duration": 1}):
        assert by_hand.post(f"slas/apply-resource-slas/{resource}", json=bad).status_code == 422, bad


@pytest.mark.parametrize("sla, line, field, message", [
    ("{name: too-long, type: time_to_complete, duration: 600}", 4, "slas[0]", "an SLA needs exactly one of duration"),
    ("{name: too-long, duration: ten minutes}", 4, "slas[0].duration", "Input should be a valid integer"),
    ("{name: too-long, stale_after: soon}", 4, "slas[0].stale_after", "valid timedelta"),
    ("{name: too-long, duration: 600, within: 60}", 4, "slas[0]", "an SLA needs exactly one of duration"),
    ("{name: too-long, duration: 600, colour: red}", 4, "slas[0].colour", "unknown field"),
    ("{name: too-long, duration: 600, severity: urgent}", 4, "slas[0].severity", "'minor', 'low'"),
])
def test_bad_slas_name_file_line_and_field_and_nothing_is_applied(cloud_workspace, cloud, prefix, sla, line, field, message):
    project(cloud_workspace, prefix, f"resource_slas:\n  {prefix}-etl/nightly:\n    slas:\n      - {sla}\n")
    result = assert_ok(cloud_workspace.apply(), 1)
    assert f"slas.yaml:{line}: resource_slas.{prefix}-etl/nightly.{field}: " in result.stderr, result.stderr
    assert message in result.stderr and "Traceback" not in result.output
    assert sla_writes(cloud) == 0 and not cloud_workspace.state_path.exists()


def test_slas_against_an_open_source_server_are_refused_before_any_request(workspace, cloud, prefix):
    """The fake's API root is not a workspace URL: the tool takes it for an open-source server and
    must refuse without sending anything there (the fake counts every request)."""
    project(workspace, prefix)
    workspace.write("project/flows/etl.py", FLOW.format(prefix=prefix))
    workspace.write("project/prefect.yaml", PREFECT_YAML.format(prefix=prefix))
    workspace.write("sources.yaml", "prefect_yaml: [project/prefect.yaml]\n")
    oss = {"PREFECT_API_URL": f"{cloud.root}/api", "PREFECT_API_KEY": cloud.api_key}
    for command in (workspace.plan, workspace.apply):
        result = assert_ok(command(env=oss), 1)
        assert (f"slas.yaml:2: resource_slas.{prefix}-etl/nightly: resource_slas are a Prefect Cloud feature, "
                f"and {cloud.root}/api is not a Prefect Cloud workspace") in result.stderr
        # prefect deploy fails there too ("SLA configuration is currently only supported on Prefect Cloud").
        assert f"prefect.yaml:6: resource_slas.{prefix}-etl/hourly: resource_slas are a Prefect Cloud feature" in result.stderr
        assert "Traceback" not in result.output
    assert sum(cloud.requests.values()) == 0
    assert not workspace.state_path.exists()


def test_export_and_import_round_trip(cloud_workspace, cloud, api, by_hand, prefix):
    project(cloud_workspace, prefix, "")
    assert_ok(cloud_workspace.apply())
    deployment = deployment_id(api, f"{prefix}-etl/nightly")
    made = [{"name": "too-long", "duration": 600}, {"name": "late", "within": 60.0, "severity": "low"}]
    by_hand.post(f"slas/apply-resource-slas/prefect.deployment.{deployment}", json=made).raise_for_status()

    out = cloud_workspace.directory.parent / "exported"
    assert_ok(cloud_workspace.run("export", "--kinds", "resource_slas", "--out", str(out)))
    exported = yaml.safe_load((out / "resource_slas.yaml").read_text())["resource_slas"]
    mine = exported[f"{prefix}-etl/nightly"]
    assert mine == {"slas": [{"name": "late", "severity": "low", "enabled": True, "within": 60.0},
                             {"name": "too-long", "severity": "moderate", "enabled": True, "duration": 600}]}

    # The exported spec, declared: unmanaged until imported, then planned clean.
    cloud_workspace.write("slas.yaml", yaml.safe_dump({"resource_slas": {f"{prefix}-etl/nightly": mine}}))
    refused = assert_ok(cloud_workspace.plan(), 1)
    assert f"resource_slas.{prefix}-etl/nightly (id {deployment})" in refused.output
    assert_ok(cloud_workspace.run("import", f"resource_slas.{prefix}-etl/nightly", deployment, str(cloud_workspace.directory)))
    assert_ok(cloud_workspace.plan(), 0)
    writes = sla_writes(cloud)
    assert_ok(cloud_workspace.apply())
    assert sla_writes(cloud) == writes


PREFECT_YAML = """\
deployments:
  - name: hourly
    entrypoint: flows/etl.py:etl
    work_pool: {{name: {prefix}-pool}}
    description: Hourly load
    sla:
      - name: too-long
        duration: 600
        severity: high
      - name: stale
        stale_after: PT2H
        enabled: false
      - name: late
        within: 120.5
        colour: red
"""


def test_prefect_yaml_sla_sends_what_prefect_deploy_sends(cloud_workspace, cloud, api, prefix):
    from prefect.cli.deploy._sla import _initialize_deployment_slas

    project(cloud_workspace, prefix, "")
    cloud_workspace.write("prefect.yaml", PREFECT_YAML.format(prefix=prefix))
    planned = assert_ok(cloud_workspace.plan(), 2)
    assert ("prefect.yaml:15: deployments[0].sla[2].colour: colour is not a field of Prefect's SLAs: "
            "prefect deploy ignores it, and so does prefect-provider") in planned.stdout
    assert f"# resource_slas.{prefix}-etl/hourly will be created" in planned.stdout
    assert_ok(cloud_workspace.apply())
    deployment = deployment_id(api, f"{prefix}-etl/hourly")
    sent = cloud.__dict__["sla_bodies"][f"prefect.deployment.{deployment}"]

    specs = yaml.safe_load(PREFECT_YAML.format(prefix=prefix))["deployments"][0]["sla"]
    reference = [sla.model_dump(mode="json", exclude_unset=True)
                 for sla in _initialize_deployment_slas(uuid.UUID(deployment), specs)]  # as apply_slas_for_deployment
    assert sorted(sent, key=lambda s: s["name"]) == sorted(reference, key=lambda s: s["name"])
    assert_ok(cloud_workspace.plan(), 0)

    # `sla: []` deletes every SLA (prefect deploy applies the empty list); no `sla:` leaves them alone.
    cloud_workspace.write("prefect.yaml", PREFECT_YAML.format(prefix=prefix).split("    sla:")[0] + "    sla: []\n")
    assert_ok(cloud_workspace.apply())
    assert slas_of(cloud, deployment) == {} and cloud.__dict__["sla_bodies"][f"prefect.deployment.{deployment}"] == []
    assert_ok(cloud_workspace.plan(), 0)


def test_a_deployment_deleted_by_hand_takes_its_slas_and_apply_makes_both_again(cloud_workspace, cloud, api, prefix):
    project(cloud_workspace, prefix)
    assert_ok(cloud_workspace.apply())
    first = deployment_id(api, f"{prefix}-etl/nightly")
    api.delete(f"deployments/{first}").raise_for_status()
    planned = assert_ok(cloud_workspace.plan(), 2)
    assert f"# resource_slas.{prefix}-etl/nightly will be created" in planned.stdout
    assert "Plan: 2 to add, 0 to change, 0 to destroy." in planned.stdout
    assert_ok(cloud_workspace.apply())
    second = deployment_id(api, f"{prefix}-etl/nightly")
    assert second != first and set(slas_of(cloud, second)) == {"too-long", "stale", "late", "fresh"}
    assert cloud_workspace.state()["resources"][f"resource_slas.{prefix}-etl/nightly"]["id"] == second
    assert_ok(cloud_workspace.plan(), 0)


def test_destroy_removes_the_slas_with_their_deployment(cloud_workspace, cloud, api, prefix):
    project(cloud_workspace, prefix)
    assert_ok(cloud_workspace.apply())
    deployment = deployment_id(api, f"{prefix}-etl/nightly")
    assert_ok(cloud_workspace.run("destroy", str(cloud_workspace.directory), "--auto-approve"))
    assert api.get(f"deployments/{deployment}").status_code == 404
    assert cloud_workspace.state()["resources"] == {}


@pytest.mark.parametrize("sla, line, field, message", [
    ("\n      - {name: too-long, duration: ten}", 7, "resource_slas.{prefix}-etl/hourly.slas[0].duration", "Input should be a valid integer"),
    ("\n      - {name: too-long, severity: high}", 7, "resource_slas.{prefix}-etl/hourly.slas[0]", "an SLA needs exactly one of"),
    (" too-long", 6, "deployments[0].sla", "expected a list of SLAs"),
])
def test_a_bad_prefect_yaml_sla_names_its_line_and_nothing_is_applied(cloud_workspace, cloud, prefix, sla, line, field, message):
    project(cloud_workspace, prefix, "")
    cloud_workspace.write("prefect.yaml", PREFECT_YAML.format(prefix=prefix).split("    sla:")[0] + f"    sla:{sla}\n")
    result = assert_ok(cloud_workspace.apply(), 1)
    assert f"prefect.yaml:{line}: {field.format(prefix=prefix)}: {message}" in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert sla_writes(cloud) == 0 and not cloud_workspace.state_path.exists()


def test_a_replaced_deployment_gets_its_slas_again(cloud_workspace, cloud, api, prefix):
    project(cloud_workspace, prefix)
    assert_ok(cloud_workspace.apply())
    first = deployment_id(api, f"{prefix}-etl/nightly")
    planned = assert_ok(cloud_workspace.plan("--replace", f"deployments.{prefix}-etl/nightly"), 2)
    assert f"deployments.{prefix}-etl/nightly is replaced, which deletes it on the server" in planned.stdout
    assert_ok(cloud_workspace.apply("--replace", f"deployments.{prefix}-etl/nightly"))
    second = deployment_id(api, f"{prefix}-etl/nightly")
    assert second != first and set(slas_of(cloud, second)) == {"too-long", "stale", "late", "fresh"}
    assert cloud_workspace.state()["resources"][f"resource_slas.{prefix}-etl/nightly"]["id"] == second
    assert_ok(cloud_workspace.plan(), 0)
