"""Prefect Cloud account administration: service accounts (with their API keys) and teams.

They live under the account (`/api/accounts/ID/...`), served by the loopback Cloud fake
(tests/cloud_fake.py) in Cloud's shapes; Prefect Cloud cannot run here.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator

import httpx
import pytest

from tests.cloud_fake import named
from tests.conftest import assert_ok

NEXT_YEAR = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=365)).replace(microsecond=0)


@pytest.fixture
def by_hand(cloud) -> Iterator[httpx.Client]:
    """Changes made outside prefect-provider, as from the Cloud UI, on the account's routes."""
    headers = {"Authorization": f"Bearer {cloud.api_key}"}
    with httpx.Client(base_url=f"{cloud.root}/api/accounts/{cloud.account}/", headers=headers, timeout=30) as client:
        yield client


def admin_config(prefix: str, *, role: str = "Member", description: str = "Runs the nightly ETL") -> str:
    return f"""\
service_accounts:
  {prefix}-ci:
    account_role_name: {role}
    api_key_expiration: "{NEXT_YEAR.isoformat()}"
  {prefix}-etl: {{}}
teams:
  {prefix}-data:
    description: {description}
"""


def test_apply_prints_each_key_once_stores_only_fingerprints_and_replans_empty(cloud_workspace, cloud, prefix):
    cloud_workspace.write("main.yaml", admin_config(prefix))
    planned = assert_ok(cloud_workspace.plan(), 2)
    assert "Plan: 3 to add, 0 to change, 0 to destroy." in planned.stdout
    assert "api_key_fingerprint = (known after apply)" in planned.stdout

    applied = assert_ok(cloud_workspace.apply())
    ci, etl = named(cloud.bots, f"{prefix}-ci"), named(cloud.bots, f"{prefix}-etl")
    assert ci["account_role_name"] == "Member" and etl["account_role_name"] == "Member"
    assert dt.datetime.fromisoformat(ci["api_key"]["expiration"]) == NEXT_YEAR and etl["api_key"]["expiration"] is None
    assert named(cloud.teams, f"{prefix}-data")["description"] == "Runs the nightly ETL"
    for bot in (ci, etl):
        key = cloud.keys[bot["id"]]
        assert applied.stdout.count(key) == 1, "each key is printed once, under Outputs"
        assert f'service_accounts.{bot["name"]}.api_key = "{key}"' in applied.stdout
        assert key not in applied.stderr

    state_text = cloud_workspace.state_path.read_text()
    recorded = json.loads(state_text)["resources"][f"service_accounts.{prefix}-ci"]["attributes"]
    assert recorded["api_key_id"] == ci["api_key"]["id"]
    assert recorded["api_key_fingerprint"].startswith("fingerprint:")
    assert not any(key in state_text for key in cloud.keys.values()), "no key is stored in clear"

    replanned = assert_ok(cloud_workspace.plan(), 0)
    assert "No changes." in replanned.stdout
    as_json = assert_ok(cloud_workspace.run("plan", str(cloud_workspace.directory), "--json")).stdout
    before = dict(cloud.requests)
    again = assert_ok(cloud_workspace.apply())
    sent = {route: n - before.get(route, 0) for route, n in cloud.requests.items() if n != before.get(route, 0)}
    assert sent == {"POST /bots/filter": 1, "POST /teams/filter": 1}, "a no-op apply reads each kind once, writes nothing"
    assert not any(key in text for key in cloud.keys.values() for text in (replanned.output, as_json, again.output))
    assert "api_key =" not in again.stdout, "a key is shown only by the apply that issued it"


def test_drift_by_hand_is_shown_and_repaired_and_updates_happen_in_place(cloud_workspace, cloud, by_hand, prefix):
    cloud_workspace.write("main.yaml", admin_config(prefix))
    assert_ok(cloud_workspace.apply())
    ci, team = named(cloud.bots, f"{prefix}-ci"), named(cloud.teams, f"{prefix}-data")
    ids = (ci["id"], team["id"])

    by_hand.patch(f"bots/{ci['id']}", json={"account_role_id": cloud.roles["Admin"]}).raise_for_status()
    by_hand.put(f"teams/{team['id']}", json={"name": team["name"], "description": "edited"}).raise_for_status()
    drifted = assert_ok(cloud_workspace.plan(), 2)
    assert "Objects have changed outside of prefect-provider" in drifted.stdout
    assert re.search(r'~ account_role_name +\= "Admin" -> "Member"', drifted.stdout)
    assert '~ description = "edited" -> "Runs the nightly ETL"' in drifted.stdout
    assert_ok(cloud_workspace.run("drift", str(cloud_workspace.directory)), 2)
    assert_ok(cloud_workspace.apply())
    assert named(cloud.bots, f"{prefix}-ci")["account_role_name"] == "Member"
    assert named(cloud.teams, f"{prefix}-data")["description"] == "Runs the nightly ETL"
    assert_ok(cloud_workspace.plan(), 0)

    # An expired key is drift; apply repairs it with a new key, printed once.
    ci = named(cloud.bots, f"{prefix}-ci")
    ci["api_key"]["expiration"] = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)).isoformat()
    expired = assert_ok(cloud_workspace.plan(), 2)
    assert re.search(r'~ api_key_status +\= "expired" -> "active"', expired.stdout)
    old_key = cloud.keys[ci["id"]]
    repaired = assert_ok(cloud_workspace.apply())
    assert cloud.keys[ci["id"]] != old_key and cloud.keys[ci["id"]] in repaired.stdout
    assert dt.datetime.fromisoformat(ci["api_key"]["expiration"]) == NEXT_YEAR
    recorded = cloud_workspace.state()["resources"][f"service_accounts.{prefix}-ci"]["attributes"]
    assert recorded["api_key_id"] == ci["api_key"]["id"], "state records the new key"
    assert_ok(cloud_workspace.plan(), 0)

    # A deleted key is drift too.
    etl = named(cloud.bots, f"{prefix}-etl")
    etl["api_key"] = None
    assert re.search(r'~ api_key_status +\= "missing" -> "active"', assert_ok(cloud_workspace.plan(), 2).stdout)
    assert_ok(cloud_workspace.apply())
    assert etl["api_key"]["id"] and cloud.keys[etl["id"]]
    assert_ok(cloud_workspace.plan(), 0)

    cloud_workspace.write("main.yaml", admin_config(prefix, role="Admin", description="Owns the warehouse"))
    updated = assert_ok(cloud_workspace.plan(), 2)
    assert "Plan: 0 to add, 2 to change, 0 to destroy." in updated.stdout
    assert_ok(cloud_workspace.apply())
    assert (named(cloud.bots, f"{prefix}-ci")["id"], named(cloud.teams, f"{prefix}-data")["id"]) == ids
    assert named(cloud.bots, f"{prefix}-ci")["account_role_name"] == "Admin"
    assert named(cloud.teams, f"{prefix}-data")["description"] == "Owns the warehouse"
    assert_ok(cloud_workspace.plan(), 0)

    cloud_workspace.write("main.yaml", f"teams:\n  {prefix}-data: {{description: Owns the warehouse}}\n")
    assert "Plan: 0 to add, 0 to change, 2 to destroy." in assert_ok(cloud_workspace.plan(), 2).stdout
    assert_ok(cloud_workspace.apply())
    assert cloud.bots == {} and len(cloud.teams) == 1
    assert_ok(cloud_workspace.run("destroy", str(cloud_workspace.directory), "--auto-approve"))
    assert cloud.teams == {}


def test_rotate_prints_the_new_key_once_and_records_its_fingerprint(cloud_workspace, cloud, prefix):
    cloud_workspace.write("main.yaml", admin_config(prefix))
    assert_ok(cloud_workspace.apply())
    ci = named(cloud.bots, f"{prefix}-ci")
    old_key, old_fingerprint = cloud.keys[ci["id"]], cloud_workspace.state()["resources"][f"service_accounts.{prefix}-ci"]["attributes"]["api_key_fingerprint"]

    refused = assert_ok(cloud_workspace.run("service-accounts", "rotate", f"{prefix}-ci", str(cloud_workspace.directory)), 1)
    assert "--auto-approve" in refused.stderr and cloud.keys[ci["id"]] == old_key

    rotated = assert_ok(cloud_workspace.run("service-accounts", "rotate", f"{prefix}-ci", str(cloud_workspace.directory), "--auto-approve"))
    new_key = cloud.keys[ci["id"]]
    assert new_key != old_key and rotated.stdout.count(new_key) == 1
    assert dt.datetime.fromisoformat(ci["api_key"]["expiration"]) == NEXT_YEAR, "the configured expiration is kept"
    recorded = cloud_workspace.state()["resources"][f"service_accounts.{prefix}-ci"]["attributes"]
    assert recorded["api_key_id"] == ci["api_key"]["id"] and recorded["api_key_fingerprint"] not in (None, old_fingerprint)
    assert new_key not in cloud_workspace.state_path.read_text()
    assert_ok(cloud_workspace.plan(), 0)
    assert cloud.old_keys[ci["id"]] is None, "the old key stopped working at once"

    # Terraform's old_key_expires_in_seconds: the old key keeps working a while.
    graceful = assert_ok(cloud_workspace.run("service-accounts", "rotate", f"{prefix}-ci", str(cloud_workspace.directory),
                                             "--auto-approve", "--keep-old-key-for", "2h"))
    assert "the old key works for 2h more" in graceful.stdout and graceful.stdout.count(cloud.keys[ci["id"]]) == 1
    kept_until = dt.datetime.fromisoformat(cloud.old_keys[ci["id"]]["expiration"]) - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(hours=1, minutes=59) < kept_until <= dt.timedelta(hours=2)
    assert_ok(cloud_workspace.plan(), 0)

    missing = assert_ok(cloud_workspace.run("service-accounts", "rotate", "nope", str(cloud_workspace.directory), "--auto-approve"), 1)
    assert "service_accounts.nope is not in state" in missing.stderr


def test_import_and_export_cover_service_accounts_and_teams(cloud_workspace, cloud, by_hand, prefix):
    bot = by_hand.post("bots/", json={"name": f"{prefix}-ci", "account_role_id": cloud.roles["Admin"],
                                      "api_key_expiration": NEXT_YEAR.isoformat()}).json()
    team = by_hand.post("teams/", json={"name": f"{prefix}-data", "description": "Runs the nightly ETL"}).json()
    assert by_hand.post("teams/", json={"name": f"{prefix}-data"}).status_code == 409

    out = cloud_workspace.directory.parent / "exported"
    assert_ok(cloud_workspace.run("export", "--kinds", "service_accounts,teams", "--out", str(out)))
    exported = "".join(p.read_text() for p in sorted(out.glob("*.yaml")))
    assert "account_role_name: Admin" in exported and "Runs the nightly ETL" in exported
    assert "api_key_id" not in exported and "api_key_status" not in exported and bot["api_key"]["key"] not in exported

    cloud_workspace.write("main.yaml", admin_config(prefix, role="Admin").replace(f"  {prefix}-etl: {{}}\n", ""))
    assert "already exist" in assert_ok(cloud_workspace.plan(), 1).stderr
    for address, obj_id in ((f"service_accounts.{prefix}-ci", bot["id"]), (f"teams.{prefix}-data", team["id"])):
        assert_ok(cloud_workspace.run("import", address, obj_id, str(cloud_workspace.directory)))
    recorded = cloud_workspace.state()["resources"][f"service_accounts.{prefix}-ci"]
    assert recorded["id"] == bot["id"] and recorded["attributes"]["api_key_id"] == bot["api_key"]["id"]
    assert bot["api_key"]["key"] not in cloud_workspace.state_path.read_text()
    assert_ok(cloud_workspace.plan(), 0)


def test_a_key_without_permission_gets_403_and_nothing_is_written(cloud_workspace, cloud, prefix):
    cloud_workspace.write("main.yaml", admin_config(prefix))
    result = assert_ok(cloud_workspace.apply(env={"PREFECT_API_KEY": cloud.read_only_key}), 1)
    assert "403 Forbidden" in result.stderr and f"/api/accounts/{cloud.account}/" in result.stderr
    assert cloud.read_only_key not in result.output and "Traceback" not in result.output
    assert cloud.bots == {} and cloud.teams == {}
    refused = assert_ok(cloud_workspace.plan(env={"PREFECT_API_KEY": ""}), 1)
    assert "401 Unauthorized" in refused.stderr


def test_the_cloud_fake_answers_bad_account_requests_as_cloud_does(cloud, by_hand):
    bot = by_hand.post("bots/", json={"name": "robot"}).json()
    cases = [
        (httpx.post, f"{cloud.root}/api/accounts/{cloud.account}/teams/filter", {}, 401),
        (by_hand.post, "bots/", {"json": {"name": "robot"}}, 409),
        (by_hand.post, "bots/", {"json": {"name": "x", "api_key_expiration": "tomorrow"}}, 422),
        (by_hand.post, "teams/", {"json": {"description": "no name"}}, 422),
        (by_hand.get, f"bots/{bot['id']}x", {}, 404),
        (by_hand.patch, f"bots/{bot['id']}", {"json": {"account_role_id": "nope"}}, 422),
    ]
    for send, url, kwargs, status in cases:
        assert send(url, **kwargs).status_code == status, url
    read_only = {"Authorization": f"Bearer {cloud.read_only_key}"}
    assert httpx.post(f"{by_hand.base_url}teams/", json={"name": "t"}, headers=read_only).status_code == 403
    assert httpx.post(f"{by_hand.base_url}teams/filter", json={}, headers=read_only).status_code == 200


def test_against_an_open_source_server_the_plan_is_refused_before_any_request(workspace, prefix, open_source_trap):
    url = open_source_trap.api_url
    workspace.write("main.yaml", admin_config(prefix))
    for command in (workspace.plan, workspace.apply):
        result = assert_ok(command(env={"PREFECT_API_URL": url}), 1)
        assert (f"main.yaml:2: service_accounts.{prefix}-ci: service_accounts are a Prefect Cloud feature, "
                f"and {url} is not a Prefect Cloud workspace") in result.stderr
        assert f"main.yaml:7: teams.{prefix}-data: teams are a Prefect Cloud feature" in result.stderr
        assert "Traceback" not in result.output
    assert open_source_trap.seen == [], "no request was sent"
    assert not workspace.state_path.exists()


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("service_accounts:\n  ci:\n    api_key_expiration: next week\n", "main.yaml:3: service_accounts.ci.api_key_expiration"),
        ("service_accounts:\n  ci:\n    api_key_expiration: '2030-01-01T00:00:00'\n", "main.yaml:3: service_accounts.ci.api_key_expiration"),
        ("service_accounts:\n  ci:\n    role: Admin\n", "main.yaml:3: service_accounts.ci.role"),
        ("teams:\n  data:\n    description: [a, b]\n", "main.yaml:3: teams.data.description"),
    ],
)
def test_bad_input_names_file_line_and_field(cloud_workspace, cloud, text, where):
    cloud_workspace.write("main.yaml", text)
    result = assert_ok(cloud_workspace.plan(), 1)
    assert where in result.stderr and "Traceback" not in result.output
    assert cloud.bots == {} and cloud.teams == {}


def test_an_unknown_account_role_fails_that_resource_and_creates_nothing(cloud_workspace, cloud, prefix):
    cloud_workspace.write("main.yaml", f"service_accounts:\n  {prefix}-ci: {{account_role_name: Nope}}\n")
    result = assert_ok(cloud_workspace.apply(), 1)
    assert f"service_accounts.{prefix}-ci" in result.stderr and "no account role named 'Nope'" in result.stderr
    assert "Traceback" not in result.output and cloud.bots == {}


def test_service_accounts_and_teams_made_elsewhere_are_data_sources(cloud_workspace, cloud, by_hand, api, prefix):
    by_hand.post("bots/", json={"name": f"{prefix}-ops", "account_role_id": cloud.roles["Admin"]}).raise_for_status()
    by_hand.post("teams/", json={"name": f"{prefix}-sre", "description": "On call"}).raise_for_status()
    cloud_workspace.write("main.yaml", f"""\
data:
  service_accounts:
    {prefix}-ops: {{}}
  teams:
    {prefix}-sre: {{}}
variables:
  {prefix}_owner:
    value: "${{data.teams.{prefix}-sre.description}} as ${{data.service_accounts.{prefix}-ops.account_role_name}}"
""")
    assert_ok(cloud_workspace.apply())
    assert api.get(f"variables/name/{prefix}_owner").json()["value"] == "On call as Admin"
    assert set(cloud_workspace.state()["resources"]) == {f"variables.{prefix}_owner"}, "data sources are not managed"
    assert_ok(cloud_workspace.plan(), 0)


def test_moved_entries_rename_in_place_keeping_ids_and_the_key(cloud_workspace, cloud, prefix):
    cloud_workspace.write("main.yaml", admin_config(prefix))
    assert_ok(cloud_workspace.apply())
    ci, team = named(cloud.bots, f"{prefix}-ci"), named(cloud.teams, f"{prefix}-data")
    key = cloud.keys[ci["id"]]
    renamed = admin_config(prefix).replace(f"{prefix}-ci:", f"{prefix}-deployer:").replace(f"{prefix}-data:", f"{prefix}-platform:")
    cloud_workspace.write("main.yaml", renamed + f"""\
moved:
  - {{from: service_accounts.{prefix}-ci, to: service_accounts.{prefix}-deployer}}
  - {{from: teams.{prefix}-data, to: teams.{prefix}-platform}}
""")
    assert "Plan: 0 to add, 2 to change, 0 to destroy." in assert_ok(cloud_workspace.plan(), 2).stdout
    assert "api_key =" not in assert_ok(cloud_workspace.apply()).stdout, "a rename issues no key"
    assert named(cloud.bots, f"{prefix}-deployer")["id"] == ci["id"] and cloud.keys[ci["id"]] == key
    assert named(cloud.teams, f"{prefix}-platform")["id"] == team["id"]
    assert_ok(cloud_workspace.plan(), 0)


def test_objects_deleted_by_hand_are_created_again(cloud_workspace, cloud, by_hand, prefix):
    cloud_workspace.write("main.yaml", admin_config(prefix))
    assert_ok(cloud_workspace.apply())
    by_hand.delete(f"bots/{named(cloud.bots, f'{prefix}-etl')['id']}").raise_for_status()
    by_hand.delete(f"teams/{named(cloud.teams, f'{prefix}-data')['id']}").raise_for_status()
    planned = assert_ok(cloud_workspace.plan(), 2)
    assert "Plan: 2 to add, 0 to change, 0 to destroy." in planned.stdout and "deleted outside prefect-provider" in planned.stdout
    applied = assert_ok(cloud_workspace.apply())
    assert cloud.keys[named(cloud.bots, f"{prefix}-etl")["id"]] in applied.stdout
    assert named(cloud.teams, f"{prefix}-data")["description"] == "Runs the nightly ETL"
    assert_ok(cloud_workspace.plan(), 0)


def test_a_pulumi_service_account_gives_its_key_as_a_secret_output_kept_until_a_new_one(cloud, monkeypatch, prefix):
    from provider.pulumi import OUTPUTS, ServiceAccount, secret_outputs
    from resources import KINDS
    from tests.e2e.test_pulumi import create, loaded

    monkeypatch.setenv("PREFECT_API_URL", cloud.api_url)
    monkeypatch.setenv("PREFECT_API_KEY", cloud.api_key)
    provider = loaded("service_accounts")
    inputs = {"name": f"{prefix}-ci", "api_key_expiration": NEXT_YEAR.isoformat()}
    bot_id, outs = create(provider, inputs)
    first_key = cloud.keys[bot_id]
    assert outs["api_key"] == first_key, "Terraform's api_key attribute"
    assert first_key not in json.dumps({name: outs[name] for name in OUTPUTS}), "state keeps a fingerprint only"
    assert "api_key" in secret_outputs(KINDS["service_accounts"]), "encrypted in the stack's state"
    with pytest.raises(TypeError, match="api_key are outputs, not inputs"):
        ServiceAccount("ci", api_key="pnb_mine")

    # A refresh and an update that issues no key keep the one issued.
    outs = provider.read(bot_id, outs).outs
    outs = provider.update(bot_id, outs, {**inputs, "account_role_name": "Admin"}).outs
    assert cloud.bots[bot_id]["account_role_name"] == "Admin" and outs["api_key"] == first_key

    # An expired key is repaired with a new one, which the outputs then hold.
    cloud.bots[bot_id]["api_key"]["expiration"] = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)).isoformat()
    outs = provider.read(bot_id, outs).outs
    assert provider.diff(bot_id, outs, {**inputs, "account_role_name": "Admin"}).changes
    outs = provider.update(bot_id, outs, {**inputs, "account_role_name": "Admin"}).outs
    assert outs["api_key"] == cloud.keys[bot_id] != first_key
    provider.delete(bot_id, outs)
    assert bot_id not in cloud.bots
