"""Prefect Cloud administration as one configuration: who may do what, next to what it protects.

Service accounts, teams with members, a custom workspace role, that role granted to a team and a
service account, access lists on a block, a deployment and a work pool, and a deployment's SLAs,
applied together against the loopback Cloud fake (Cloud's routes in its shapes; the workspace's
objects on the real open-source server behind it): re-planned empty, drift made by hand shown and
repaired, exported, and imported into an empty state.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.cloud_fake import named
from tests.conftest import assert_ok

ADA, GRACE = "ada.lovelace@example.com", "grace.hopper@example.com"
ADMINISTRATION = ("service_accounts", "teams", "workspace_roles", "workspace_access", "object_access", "resource_slas")


def configuration(p: str) -> str:
    return f"""\
service_accounts:
  {p}-ci: {{account_role_name: Member}}
teams:
  {p}-data:
    description: Owns the warehouse
    members: {{users: [{ADA}, {GRACE}], service_accounts: [{p}-ci]}}
workspace_roles:
  {p}-deployer:
    description: Runs and edits deployments
    scopes: [run_deployments, manage_deployments]
    inherited_role: Viewer
workspace_access:
  {p}-deployers:
    workspace_role: {p}-deployer
    teams: [{p}-data]
    service_accounts: [{p}-ci]
work_pools:
  {p}-pool: {{type: process}}
blocks:
  secret/{p}-token: {{data: {{value: s3cr3t}}}}
deployments:
  {p}-etl/nightly: {{entrypoint: flows/etl.py:etl, work_pool: {p}-pool}}
object_access:
  deployments.{p}-etl/nightly:
    manage: {{teams: [{p}-data]}}
    run: {{service_accounts: [{p}-ci]}}
    view: {{everyone: true}}
  blocks.secret/{p}-token:
    manage: {{users: [{GRACE}]}}
    view: {{teams: [{p}-data]}}
  work_pools.{p}-pool:
    manage: {{users: [{ADA}]}}
    run: {{teams: [{p}-data]}}
    view: {{everyone: true}}
resource_slas:
  {p}-etl/nightly:
    slas:
      - {{name: too-long, duration: 600, severity: high}}
"""


@pytest.fixture
def by_hand(cloud) -> Iterator[httpx.Client]:
    """Changes made outside prefect-provider (the Cloud UI, another tool), on Cloud's API root."""
    with httpx.Client(base_url=f"{cloud.root}/api/", headers={"Authorization": f"Bearer {cloud.api_key}"}, timeout=30) as client:
        yield client


def test_the_administration_of_a_workspace_applies_replans_empty_shows_drift_exports_and_imports(
        cloud_workspace, cloud, by_hand, api, prefix):
    p = prefix
    cloud_workspace.write("main.yaml", configuration(p))
    planned = assert_ok(cloud_workspace.plan(), 2)
    assert "Plan: 11 to add, 0 to change, 0 to destroy." in planned.stdout
    applied = assert_ok(cloud_workspace.apply())
    assert "Apply complete! Resources: 11 added, 0 changed, 0 destroyed." in applied.stdout

    # What landed, as Cloud holds it: ids, never the names the configuration uses.
    bot, team, role = named(cloud.bots, f"{p}-ci"), named(cloud.teams, f"{p}-data"), named(cloud.workspace_roles, f"{p}-deployer")
    account, workspace = f"accounts/{cloud.account}", f"accounts/{cloud.account}/workspaces/{cloud.workspace}"
    members = {m["id"] for m in by_hand.get(f"{account}/teams/{team['id']}").json()["memberships"]}
    people = {m["email"]: m for m in cloud.members.values()}
    assert members == {people[ADA]["actor_id"], people[GRACE]["actor_id"], bot["actor_id"]}
    assert set(role["scopes"]) == {"run_deployments", "manage_deployments"}
    team_grant = by_hand.post(f"{workspace}/team_access/filter", json={}).json()
    assert [(g["team_id"], g["workspace_role_id"]) for g in team_grant] == [(team["id"], role["id"])]
    bot_grants = [g for g in cloud.workspace_access.values() if g.get("bot_id") == bot["id"]]
    assert [g["workspace_role_id"] for g in bot_grants] == [role["id"]]
    deployment = api.get(f"deployments/name/{p}-etl/nightly").json()["id"]
    access = by_hand.get(f"{workspace}/deployments/{deployment}/access").json()
    assert [a["id"] for a in access["manage_actors"] if a["type"] == "team"] == [team["id"]]
    assert [a["id"] for a in access["run_actors"]] == [bot["actor_id"]]
    slas = [a for a in by_hand.get(f"{workspace}/automations/related-to/prefect.deployment.{deployment}").json() if a.get("type")]
    assert [(s["name"], s["severity"]) for s in slas] == [("too-long", "high")]

    # Re-planned empty; a no-op apply writes nothing.
    assert "No changes." in assert_ok(cloud_workspace.plan(), 0).stdout
    before = dict(cloud.requests)
    assert_ok(cloud_workspace.apply())
    assert cloud.writes_since(before) == {}, "a no-op apply sends no write"

    # Drift made by hand, one change per kind; `drift` shows each, `apply` repairs them all.
    by_hand.delete(f"{account}/teams/{team['id']}/members/{people[GRACE]['actor_id']}").raise_for_status()
    by_hand.patch(f"{account}/workspace_roles/{role['id']}", json={"name": role["name"], "scopes": ["run_deployments"],
                                                                    "description": role["description"]}).raise_for_status()
    by_hand.delete(f"{workspace}/team_access/{team['id']}").raise_for_status()
    by_hand.put(f"{workspace}/work_pools/{p}-pool/access", json={"access_control": {
        "manage_actor_ids": ["*"], "manage_team_ids": [], "run_actor_ids": ["*"], "run_team_ids": [],
        "view_actor_ids": ["*"], "view_team_ids": []}}).raise_for_status()
    by_hand.post(f"{workspace}/slas/apply-resource-slas/prefect.deployment.{deployment}",
                 json=[{"name": "too-long", "duration": 1200, "severity": "high",
                        "owner_resource": f"prefect.deployment.{deployment}"}]).raise_for_status()
    drift = assert_ok(cloud_workspace.run("drift", str(cloud_workspace.directory)), 2)
    for address in (f"teams.{p}-data", f"workspace_roles.{p}-deployer", f"workspace_access.{p}-deployers",
                    f"object_access.work_pools.{p}-pool", f"resource_slas.{p}-etl/nightly"):
        assert address in drift.stdout, address
    for unchanged in (f"object_access.deployments.{p}-etl/nightly", f"service_accounts.{p}-ci"):
        assert f"# {unchanged} " not in drift.stdout, unchanged
    assert "5 to change" in assert_ok(cloud_workspace.plan(), 2).stdout
    assert_ok(cloud_workspace.apply())
    assert "No changes." in assert_ok(cloud_workspace.plan(), 0).stdout
    assert {m["id"] for m in by_hand.get(f"{account}/teams/{team['id']}").json()["memberships"]} == members

    # Exported: configuration and state of the live workspace, which plans empty as it is (the
    # block, deployment and pool the lists and SLAs are for are read as data).
    out = cloud_workspace.directory.parent / "exported"
    assert_ok(cloud_workspace.run("export", "--kinds", ",".join(ADMINISTRATION), "--out", str(out)))
    read_as_data = (out / "data.yaml").read_text()
    for address in (f"secret/{p}-token:", f"{p}-etl/nightly:", f"{p}-pool:"):
        assert address in read_as_data, address
    exported = "".join(path.read_text() for path in sorted(out.glob("*.yaml")))
    for address in (f"{p}-ci:", f"{p}-data:", f"{p}-deployer:", f"deployments.{p}-etl/nightly:", f"{p}-etl/nightly:",
                    f"blocks.secret/{p}-token:", f"work_pools.{p}-pool:", "too-long", GRACE):
        assert address in exported, address
    for secret in (*cloud.keys.values(), "s3cr3t"):
        assert secret not in exported
    assert "No changes." in assert_ok(cloud_workspace.run("plan", str(out), "--detailed-exitcode"), 0).stdout

    # Imported: an empty state takes each object by the id the state had, and plans empty.
    recorded = json.loads(cloud_workspace.state_path.read_text())["resources"]
    cloud_workspace.state_path.unlink()
    assert "already exist" in assert_ok(cloud_workspace.plan(), 1).stderr, "nothing is adopted without an import"
    for address, record in recorded.items():
        assert_ok(cloud_workspace.run("import", address, record["id"], str(cloud_workspace.directory)))
    replanned = assert_ok(cloud_workspace.plan(), 0)
    assert "No changes." in replanned.stdout
    assert not any(key in replanned.output for key in cloud.keys.values())


def test_against_an_open_source_server_the_whole_configuration_is_refused_before_any_request(
        workspace, prefix, open_source_trap):
    workspace.write("main.yaml", configuration(prefix))
    for command in (workspace.plan, workspace.apply):
        result = assert_ok(command(env={"PREFECT_API_URL": open_source_trap.api_url}), 1)
        for kind in ADMINISTRATION:
            assert f"{kind} are a Prefect Cloud feature" in result.stderr, kind
        assert "Traceback" not in result.output
    assert open_source_trap.seen == [], "no request was sent"
    assert not workspace.state_path.exists()
