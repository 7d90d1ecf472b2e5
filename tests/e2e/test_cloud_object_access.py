"""Prefect Cloud object access lists (`object_access`) on a block, a deployment and a work pool.

The lists are served by the loopback Cloud fake (tests/cloud_fake_access.py) in Cloud's shapes;
the objects themselves live on the real open-source server behind it.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import yaml

from tests.conftest import assert_ok

ADA, GRACE, ALAN = "ada.lovelace@example.com", "grace.hopper@example.com", "alan.turing@example.com"
EVERYONE = {"users": [], "service_accounts": [], "teams": [], "everyone": True}


@pytest.fixture
def by_hand(cloud) -> Iterator[httpx.Client]:
    """Changes made outside prefect-provider, as from the Cloud UI, on the workspace's routes."""
    headers = {"Authorization": f"Bearer {cloud.api_key}"}
    with httpx.Client(base_url=cloud.api_url + "/", headers=headers, timeout=30) as client:
        yield client


def objects_config(prefix: str, *, pool_type: str = "process") -> str:
    return f"""\
service_accounts:
  {prefix}-ci: {{}}
teams:
  {prefix}-data: {{}}
work_pools:
  {prefix}-pool: {{type: {pool_type}}}
blocks:
  secret/{prefix}-token: {{data: {{value: s3cr3t}}}}
deployments:
  {prefix}-etl/nightly: {{entrypoint: flows/etl.py:etl, work_pool: {prefix}-pool}}
"""


def access_config(prefix: str, *, viewer: str = ADA, pool_type: str = "process", block: bool = True) -> str:
    block_access = f"""\
  blocks.secret/{prefix}-token:
    manage: {{users: [{GRACE}]}}
    view: {{teams: [{prefix}-data], service_accounts: [{prefix}-ci]}}
""" if block else ""
    return objects_config(prefix, pool_type=pool_type) + f"""\
object_access:
  deployments.{prefix}-etl/nightly:
    manage: {{teams: [{prefix}-data]}}
    run: {{service_accounts: [{prefix}-ci]}}
    view: {{users: [{viewer}]}}
{block_access}\
  work_pools.{prefix}-pool:
    manage: {{users: [{ADA}]}}
    run: {{everyone: true}}
    view: {{everyone: true}}
"""


def access(by_hand: httpx.Client, route: str) -> dict[str, list[tuple[str, str]]]:
    """An access list as Cloud reads it back: each level's (type, email or name)."""
    answer = by_hand.get(f"{route}/access")
    answer.raise_for_status()
    return {level.removesuffix("_actors"): sorted((a["type"], a["email"] or a["name"]) for a in actors)
            for level, actors in answer.json().items()}


def routes(api: httpx.Client, prefix: str) -> dict[str, str]:
    """The access routes of the test's deployment, block and work pool, by the ids they have now."""
    deployment = api.get(f"deployments/name/{prefix}-etl/nightly").json()["id"]
    block = api.get(f"block_types/slug/secret/block_documents/name/{prefix}-token").json()["id"]
    return {"deployment": f"deployments/{deployment}", "block": f"block_documents/{block}", "pool": f"work_pools/{prefix}-pool"}


def test_access_lists_apply_replan_empty_and_a_no_op_apply_writes_nothing(cloud_workspace, cloud, by_hand, api, prefix):
    cloud_workspace.write("main.yaml", access_config(prefix))
    planned = assert_ok(cloud_workspace.plan(), 2)
    assert "Plan: 8 to add, 0 to change, 0 to destroy." in planned.stdout
    assert_ok(cloud_workspace.apply())
    at = routes(api, prefix)
    assert access(by_hand, at["deployment"]) == {
        "manage": [("team", f"{prefix}-data")], "run": [("service_account", f"{prefix}-ci")], "view": [("user", ADA)]}
    assert access(by_hand, at["block"]) == {
        "manage": [("user", GRACE)], "view": [("service_account", f"{prefix}-ci"), ("team", f"{prefix}-data")]}
    assert access(by_hand, at["pool"]) == {"manage": [("user", ADA)], "run": [("*", "*")], "view": [("*", "*")]}
    recorded = cloud_workspace.state()["resources"][f"object_access.deployments.{prefix}-etl/nightly"]
    assert recorded["id"] == at["deployment"].split("/")[1], "recorded by the id of the object the list is for"
    assert recorded["dependencies"] == [f"deployments.{prefix}-etl/nightly", f"teams.{prefix}-data", f"service_accounts.{prefix}-ci"]

    assert "No changes." in assert_ok(cloud_workspace.plan(), 0).stdout
    before = dict(cloud.requests)
    assert_ok(cloud_workspace.apply())
    assert cloud.writes_since(before) == {}, "a no-op apply writes nothing"
    assert cloud.requests["GET /deployments/{id}/access"] > before["GET /deployments/{id}/access"]


def test_drift_by_hand_is_shown_and_repaired_then_updates_and_deletes_restore_the_default(
        cloud_workspace, cloud, by_hand, api, prefix):
    cloud_workspace.write("main.yaml", access_config(prefix))
    assert_ok(cloud_workspace.apply())
    at = routes(api, prefix)
    grace = next(m["actor_id"] for m in cloud.members.values() if m["email"] == GRACE)
    by_hand.put(f"{at['deployment']}/access", json={"access_control": {
        "manage_actor_ids": [grace], "manage_team_ids": [], "run_actor_ids": ["*"], "run_team_ids": [],
        "view_actor_ids": [], "view_team_ids": []}}).raise_for_status()

    drifted = assert_ok(cloud_workspace.run("drift", str(cloud_workspace.directory)), 2)
    assert f"object_access.deployments.{prefix}-etl/nightly" in drifted.stdout
    planned = assert_ok(cloud_workspace.plan(), 2)
    assert "Objects have changed outside of prefect-provider" in planned.stdout
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in planned.stdout
    assert GRACE in planned.stdout
    assert_ok(cloud_workspace.apply())
    assert access(by_hand, at["deployment"])["manage"] == [("team", f"{prefix}-data")]
    assert_ok(cloud_workspace.plan(), 0)

    cloud_workspace.write("main.yaml", access_config(prefix, viewer=ALAN))
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in assert_ok(cloud_workspace.plan(), 2).stdout
    assert_ok(cloud_workspace.apply())
    assert access(by_hand, at["deployment"])["view"] == [("user", ALAN)]
    assert_ok(cloud_workspace.plan(), 0)

    # Deleting a list gives the object Cloud's default back, as Terraform's delete does.
    cloud_workspace.write("main.yaml", access_config(prefix, viewer=ALAN, block=False))
    assert "Plan: 0 to add, 0 to change, 1 to destroy." in assert_ok(cloud_workspace.plan(), 2).stdout
    assert_ok(cloud_workspace.apply())
    assert access(by_hand, at["block"]) == {"manage": [("*", "*")], "view": [("*", "*")]}
    assert access(by_hand, at["deployment"])["view"] == [("user", ALAN)], "the other lists are left alone"
    assert_ok(cloud_workspace.plan(), 0)

    assert_ok(cloud_workspace.run("destroy", str(cloud_workspace.directory), "--auto-approve"))
    assert api.get(f"work_pools/{prefix}-pool").status_code == 404
    assert cloud.teams == {} and cloud.bots == {}


def test_a_replaced_object_gets_its_list_written_again(cloud_workspace, by_hand, api, prefix):
    cloud_workspace.write("main.yaml", access_config(prefix))
    assert_ok(cloud_workspace.apply())
    old = routes(api, prefix)

    cloud_workspace.write("main.yaml", access_config(prefix, pool_type="kubernetes"))
    planned = assert_ok(cloud_workspace.plan(), 2)
    assert f"(work_pools.{prefix}-pool is replaced: refer to the new object)" in planned.stdout
    assert f"object_access.work_pools.{prefix}-pool" in planned.stdout
    assert_ok(cloud_workspace.apply())
    pool = api.get(f"work_pools/{prefix}-pool").json()
    assert pool["type"] == "kubernetes"
    assert access(by_hand, old["pool"])["manage"] == [("user", ADA)], "the new pool has the list"

    replaced = assert_ok(cloud_workspace.apply("--replace", f"deployments.{prefix}-etl/nightly"))
    assert "object_access" in replaced.stdout
    new = routes(api, prefix)
    assert new["deployment"] != old["deployment"]
    assert access(by_hand, new["deployment"])["run"] == [("service_account", f"{prefix}-ci")]
    assert_ok(cloud_workspace.plan(), 0)


def test_import_and_export_round_trip_with_objects_read_as_data(cloud_workspace, cloud, by_hand, api, prefix):
    # Objects and a team made elsewhere; the lists are set by hand, as in the Cloud UI.
    cloud_workspace.write("main.yaml", objects_config(prefix))
    assert_ok(cloud_workspace.apply())
    cloud_workspace.state_path.unlink()  # forgotten: they are someone else's now
    at = routes(api, prefix)
    team = next(t for t in cloud.teams.values() if t["name"] == f"{prefix}-data")
    ada = next(m["actor_id"] for m in cloud.members.values() if m["email"] == ADA)
    by_hand.put(f"{at['deployment']}/access", json={"access_control": {
        "manage_actor_ids": [ada], "manage_team_ids": [team["id"]], "run_actor_ids": ["*"], "run_team_ids": [],
        "view_actor_ids": ["*"], "view_team_ids": []}}).raise_for_status()

    out = cloud_workspace.directory.parent / "exported"
    assert_ok(cloud_workspace.run("export", "--kinds", "object_access", "--out", str(out)))
    exported = yaml.safe_load((out / "object_access.yaml").read_text())["object_access"]
    assert exported[f"deployments.{prefix}-etl/nightly"] == {
        "manage": {"users": [ADA], "teams": [f"{prefix}-data"]}, "run": {"everyone": True}, "view": {"everyone": True}}
    assert f"blocks.secret/{prefix}-token" not in exported, "a list at Cloud's default is not exported"

    data = f"""\
data:
  deployments: {{{prefix}-etl/nightly: {{}}}}
  teams: {{{prefix}-data: {{}}}}
  blocks: {{secret/{prefix}-token: {{}}}}
"""
    listed = yaml.safe_dump({"object_access": {f"deployments.{prefix}-etl/nightly": exported[f"deployments.{prefix}-etl/nightly"]}})
    cloud_workspace.write("main.yaml", data + listed)
    refused = assert_ok(cloud_workspace.plan(), 1)
    assert "already exist" in refused.stderr and f"object_access.deployments.{prefix}-etl/nightly" in refused.stderr
    assert_ok(cloud_workspace.run("import", f"object_access.deployments.{prefix}-etl/nightly", at["deployment"].split("/")[1],
                                  str(cloud_workspace.directory)))
    assert_ok(cloud_workspace.plan(), 0)

    # A list at Cloud's default was set by nobody: declaring one adopts it without an import.
    cloud_workspace.write("main.yaml", data + listed + f"""\
  blocks.secret/{prefix}-token:
    view: {{users: [{GRACE}]}}
""")
    adopting = assert_ok(cloud_workspace.plan(), 2).stdout
    assert "Plan: 0 to add, 1 to change, 0 to destroy, 1 to import." in adopting and "set by nobody" in adopting
    assert_ok(cloud_workspace.apply())
    assert access(by_hand, at["block"]) == {"manage": [], "view": [("user", GRACE)]}
    assert_ok(cloud_workspace.plan(), 0)


def test_against_an_open_source_server_the_plan_is_refused_before_any_request(workspace, prefix, open_source_trap):
    url = open_source_trap.api_url
    workspace.write("main.yaml", f"""\
data:
  work_pools: {{{prefix}-pool: {{}}}}
object_access:
  work_pools.{prefix}-pool:
    view: {{users: [{ADA}]}}
""")
    for command in (workspace.plan, workspace.apply):
        result = assert_ok(command(env={"PREFECT_API_URL": url}), 1)
        assert (f"main.yaml:4: object_access.work_pools.{prefix}-pool: object_access are a Prefect Cloud feature, "
                f"and {url} is not a Prefect Cloud workspace") in result.stderr
        assert "Traceback" not in result.output
    assert open_source_trap.seen == [], "no request was sent"
    assert not workspace.state_path.exists()


@pytest.mark.parametrize(
    ("lists", "where", "why"),
    [
        ("  deployments.{p}-etl/nightly:\n    view: {{users: [nobody@example.com]}}\n",
         "main.yaml:13: object_access.deployments.{p}-etl/nightly.view.users[0]", "no member with the email 'nobody@example.com'"),
        ("  deployments.{p}-etl/nightly:\n    manage: {{teams: [{p}-nope]}}\n",
         "main.yaml:13: object_access.deployments.{p}-etl/nightly.manage.teams[0]",
         "the account has no team named '{p}-nope', and the configuration declares none"),
        ("  blocks.secret/{p}-token:\n    run: {{everyone: true}}\n",
         "main.yaml:13: object_access.blocks.secret/{p}-token.run", "blocks have no run access"),
        ("  {p}-etl/nightly:\n    view: {{everyone: true}}\n",
         "main.yaml:12: object_access.{p}-etl/nightly", "expected the address of the object the list is for"),
        ("  deployments.{p}-etl/nightly:\n    view: {{groups: [x]}}\n",
         "main.yaml:13: object_access.deployments.{p}-etl/nightly.view.groups", "unknown field"),
        ("  work_pools.{p}-other:\n    view: {{everyone: true}}\n",
         "main.yaml:12: object_access.work_pools.{p}-other", "refers to work_pools.{p}-other, which is not declared"),
    ],
)
def test_bad_input_names_file_line_and_field_and_applies_nothing(cloud_workspace, cloud, api, prefix, lists, where, why):
    cloud_workspace.write("main.yaml", objects_config(prefix) + "object_access:\n" + lists.format(p=prefix))
    result = assert_ok(cloud_workspace.apply(), 1)
    assert where.format(p=prefix) in result.stderr and why.format(p=prefix) in result.stderr
    assert "Traceback" not in result.output
    assert api.get(f"work_pools/{prefix}-pool").status_code == 404 and cloud.teams == {}, "nothing applied"
    assert not any(route.startswith("PUT") for route in cloud.requests)


def test_the_cloud_fake_answers_bad_access_requests_as_cloud_does(cloud_workspace, cloud, by_hand, api, prefix):
    cloud_workspace.write("main.yaml", objects_config(prefix))
    assert_ok(cloud_workspace.apply())
    at = routes(api, prefix)
    full = {f"{level}_{of}": [] for level in ("manage", "run", "view") for of in ("actor_ids", "team_ids")}
    cases = [
        (f"deployments/{'0' * 8}-0000-0000-0000-{'0' * 12}/access", {"access_control": full}, 404),
        (f"work_pools/{prefix}-nope/access", {"access_control": full}, 404),
        (f"{at['deployment']}/access", {"access_control": {**full, "view_actor_ids": ["not-an-actor"]}}, 422),
        (f"{at['deployment']}/access", {"access_control": {**full, "manage_team_ids": ["not-a-team"]}}, 422),
        (f"{at['block']}/access", {"access_control": full}, 422),  # blocks have no run lists
        (f"{at['pool']}/access", {"manage_actor_ids": []}, 422),
        (f"{at['pool']}/access", {"access_control": full}, 204),
    ]
    for route, body, status in cases:
        assert by_hand.put(route, json=body).status_code == status, (route, body)
    assert by_hand.get(f"deployments/{'0' * 8}-0000-0000-0000-{'0' * 12}/access").status_code == 404
    assert access(by_hand, at["pool"]) == {"manage": [], "run": [], "view": []}
    assert access(by_hand, at["deployment"]) == {"manage": [("*", "*")], "run": [("*", "*")], "view": [("*", "*")]}
    read_only = {"Authorization": f"Bearer {cloud.read_only_key}"}
    assert httpx.put(f"{cloud.api_url}/{at['pool']}/access", json={"access_control": full}, headers=read_only).status_code == 403


def test_a_team_deleted_by_hand_is_created_again_and_named_again_in_the_lists(cloud_workspace, cloud, by_hand, api, prefix):
    cloud_workspace.write("main.yaml", access_config(prefix))
    assert_ok(cloud_workspace.apply())
    team = next(t for t in cloud.teams.values() if t["name"] == f"{prefix}-data")
    with httpx.Client(base_url=f"{cloud.root}/api/accounts/{cloud.account}/", headers=by_hand.headers, timeout=30) as account:
        account.delete(f"teams/{team['id']}").raise_for_status()

    planned = assert_ok(cloud_workspace.plan(), 2)
    assert "Plan: 1 to add, 2 to change, 0 to destroy." in planned.stdout, "the team, and the two lists naming it"
    assert_ok(cloud_workspace.apply())
    at = routes(api, prefix)
    assert access(by_hand, at["deployment"])["manage"] == [("team", f"{prefix}-data")]
    assert ("team", f"{prefix}-data") in access(by_hand, at["block"])["view"]
    assert_ok(cloud_workspace.plan(), 0)
