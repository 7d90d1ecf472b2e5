"""Prefect Cloud team members, users' API keys and account members (as data sources).

Team members live under the account (`/api/accounts/ID/teams/ID/members`), users' API keys at the
API root (`/api/users/ID/api_keys`), both served by the loopback Cloud fake (tests/cloud_fake.py,
tests/cloud_fake_members.py) in Cloud's shapes; Prefect Cloud cannot run here. The fake's account
has three members: ada.lovelace@, grace.hopper@ and alan.turing@example.com.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import httpx
import pytest

from tests import cloud_fake_members
from tests.cloud_fake import named
from tests.conftest import assert_ok

ADA, GRACE, ALAN = "ada.lovelace@example.com", "grace.hopper@example.com", "alan.turing@example.com"
NEXT_YEAR = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=365)).replace(microsecond=0)
IN_TWO_YEARS = NEXT_YEAR + dt.timedelta(days=365)


@pytest.fixture
def by_hand(cloud) -> Iterator[httpx.Client]:
    """Changes made outside prefect-provider, as from the Cloud UI: paths under the API root (`/api/`)."""
    headers = {"Authorization": f"Bearer {cloud.api_key}"}
    with httpx.Client(base_url=f"{cloud.root}/api/", headers=headers, timeout=30) as client:
        yield client


def on_team(cloud, team_name: str) -> set[str]:
    """Who is on the team in the fake: emails and service account names."""
    team = named(cloud.teams, team_name)
    names = {m["actor_id"]: m["email"] for m in cloud.members.values()} | {b["actor_id"]: b["name"] for b in cloud.bots.values()}
    return {names[m["id"]] for m in cloud_fake_members.team_members(cloud).get(team["id"], [])}


def writes_during(cloud, action) -> dict[str, int]:
    """The requests that change something, sent while `action` runs."""
    before = dict(cloud.requests)
    action()
    return cloud.writes_since(before)


def team_config(prefix: str, users: list[str], service_accounts: list[str] | None = None) -> str:
    bots = "".join(f", {name}" for name in service_accounts or [])
    return f"""\
service_accounts:
  {prefix}-ci: {{}}
teams:
  {prefix}-data:
    description: Runs the nightly ETL
    members:
      users: [{", ".join(users)}]
      service_accounts: [{(bots or ", ").removeprefix(", ")}]
"""


def test_team_members_apply_replan_empty_and_a_no_op_apply_writes_nothing(cloud_workspace, cloud, prefix):
    cloud_workspace.write("main.yaml", team_config(prefix, [GRACE, ADA], [f"{prefix}-ci"]))
    planned = assert_ok(cloud_workspace.plan(), 2)
    assert "Plan: 2 to add, 0 to change, 0 to destroy." in planned.stdout
    assert_ok(cloud_workspace.apply())
    assert on_team(cloud, f"{prefix}-data") == {ADA, GRACE, f"{prefix}-ci"}, "the service account was created first"
    assert cloud.requests["PUT /teams/{id}/members"] == 1, "every member is added in one request"
    recorded = cloud_workspace.state()["resources"][f"teams.{prefix}-data"]["attributes"]
    assert recorded["members"] == {"users": [ADA, GRACE], "service_accounts": [f"{prefix}-ci"]}

    assert "No changes." in assert_ok(cloud_workspace.plan(), 0).stdout
    assert writes_during(cloud, lambda: assert_ok(cloud_workspace.apply())) == {}, "a no-op apply writes nothing"


def test_members_changed_by_hand_are_drift_repaired_by_apply_and_updates_add_and_remove(cloud_workspace, cloud, by_hand, prefix):
    cloud_workspace.write("main.yaml", team_config(prefix, [ADA, GRACE], [f"{prefix}-ci"]))
    assert_ok(cloud_workspace.apply())
    team = named(cloud.teams, f"{prefix}-data")
    account = f"accounts/{cloud.account}/teams/{team['id']}"

    by_hand.put(f"{account}/members", json={"members": [{"member_id": cloud.member(ALAN)["user_id"], "member_type": "user"}]}).raise_for_status()
    by_hand.delete(f"{account}/members/{cloud.member(GRACE)['actor_id']}").raise_for_status()
    drifted = assert_ok(cloud_workspace.plan(), 2)
    assert "Objects have changed outside of prefect-provider" in drifted.stdout
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in drifted.stdout and ALAN in drifted.stdout
    assert "members" in assert_ok(cloud_workspace.run("drift", str(cloud_workspace.directory)), 2).stdout
    sent = writes_during(cloud, lambda: assert_ok(cloud_workspace.apply()))
    assert sent == {"PUT /teams/{id}/members": 1, "DELETE /teams/{id}/members/{id}": 1}, "only the members are written"
    assert on_team(cloud, f"{prefix}-data") == {ADA, GRACE, f"{prefix}-ci"}
    assert_ok(cloud_workspace.plan(), 0)

    # Update: one person in, the service account and one person out; the team keeps its id.
    cloud_workspace.write("main.yaml", team_config(prefix, [ALAN, ADA]))
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in assert_ok(cloud_workspace.plan(), 2).stdout
    assert_ok(cloud_workspace.apply())
    assert on_team(cloud, f"{prefix}-data") == {ADA, ALAN} and named(cloud.teams, f"{prefix}-data")["id"] == team["id"]
    assert_ok(cloud_workspace.plan(), 0)

    # Unset: not managed; whoever is on the team stays, changes by hand included.
    cloud_workspace.write("main.yaml", f"teams:\n  {prefix}-data: {{description: Runs the nightly ETL}}\n")
    by_hand.delete(f"{account}/members/{cloud.member(ALAN)['actor_id']}").raise_for_status()
    assert writes_during(cloud, lambda: assert_ok(cloud_workspace.apply())) == {"DELETE /bots/{id}": 1}
    assert on_team(cloud, f"{prefix}-data") == {ADA}
    unmanaged = assert_ok(cloud_workspace.plan(), 0).stdout
    assert "No changes." in unmanaged and "changed outside" not in unmanaged

    assert_ok(cloud_workspace.run("destroy", str(cloud_workspace.directory), "--auto-approve"))
    assert cloud.teams == {}


def test_a_user_api_key_is_printed_once_stored_as_a_fingerprint_and_replaced_not_updated(cloud_workspace, cloud, by_hand, prefix):
    ada = cloud.member(ADA)
    keys, issued = cloud_fake_members.user_api_keys(cloud), cloud_fake_members.issued_user_keys(cloud)
    config = f'user_api_keys:\n  {prefix}-laptop:\n    user: {ADA}\n    expiration: "{NEXT_YEAR.isoformat()}"\n'
    cloud_workspace.write("main.yaml", config)
    planned = assert_ok(cloud_workspace.plan(), 2)
    assert "key_fingerprint = (known after apply)" in planned.stdout

    applied = assert_ok(cloud_workspace.apply())
    [key] = keys.values()
    assert (key["user_id"], key["name"]) == (ada["user_id"], f"{prefix}-laptop")
    assert dt.datetime.fromisoformat(key["expiration"]) == NEXT_YEAR
    secret = issued[key["id"]]
    assert applied.stdout.count(secret) == 1 and f'user_api_keys.{prefix}-laptop.key = "{secret}"' in applied.stdout
    recorded = cloud_workspace.state()["resources"][f"user_api_keys.{prefix}-laptop"]
    assert recorded["id"] == f"{ada['user_id']}/{key['id']}"
    assert recorded["attributes"]["key_fingerprint"].startswith("fingerprint:")
    replanned = assert_ok(cloud_workspace.plan(), 0)
    as_json = assert_ok(cloud_workspace.run("plan", str(cloud_workspace.directory), "--json")).stdout
    again = {}
    assert writes_during(cloud, lambda: again.setdefault("result", assert_ok(cloud_workspace.apply()))) == {}
    for text in (cloud_workspace.state_path.read_text(), replanned.output, as_json, again["result"].output, applied.stderr):
        assert secret not in text, "the key is printed once, never stored or logged"

    # Deleted by hand: drift, re-created with a new key (printed once).
    by_hand.delete(f"users/{ada['user_id']}/api_keys/{key['id']}").raise_for_status()
    gone = assert_ok(cloud_workspace.plan(), 2)
    assert "deleted outside prefect-provider" in gone.stdout and "Plan: 1 to add, 0 to change, 0 to destroy." in gone.stdout
    assert_ok(cloud_workspace.run("drift", str(cloud_workspace.directory)), 2)
    recreated = assert_ok(cloud_workspace.apply())
    [key] = keys.values()
    assert issued[key["id"]] in recreated.stdout
    assert_ok(cloud_workspace.plan(), 0)

    # Expired: replaced, as Cloud cannot extend a key.
    key["expiration"] = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)).isoformat()
    expired = assert_ok(cloud_workspace.plan(), 2)
    assert re.search(r'key_status += "expired" -> "active"', expired.stdout) and "1 to add, 0 to change, 1 to destroy" in expired.stdout
    assert_ok(cloud_workspace.apply())
    [key] = keys.values()
    assert dt.datetime.fromisoformat(key["expiration"]) == NEXT_YEAR

    # A new expiration or another person replaces the key.
    for changed in (config.replace(NEXT_YEAR.isoformat(), IN_TWO_YEARS.isoformat()), config.replace(ADA, GRACE)):
        cloud_workspace.write("main.yaml", changed)
        assert "Plan: 1 to add, 0 to change, 1 to destroy." in assert_ok(cloud_workspace.plan(), 2).stdout
        before = set(keys)
        assert writes_during(cloud, lambda: assert_ok(cloud_workspace.apply())) == {
            "POST /users/{id}/api_keys": 1, "DELETE /users/{id}/api_keys/{id}": 1}
        assert set(keys).isdisjoint(before)
        assert_ok(cloud_workspace.plan(), 0)
    [key] = keys.values()
    assert key["user_id"] == cloud.member(GRACE)["user_id"]

    cloud_workspace.write("main.yaml", "variables: {}\n")
    assert_ok(cloud_workspace.apply())
    assert keys == {}


def test_import_and_export_round_trip_user_api_keys_and_teams_with_members(cloud_workspace, cloud, by_hand, prefix):
    grace = cloud.member(GRACE)
    key = by_hand.post(f"users/{grace['user_id']}/api_keys", json={"name": f"{prefix}-ci", "expiration": NEXT_YEAR.isoformat()}).json()
    other = by_hand.post(f"users/{grace['user_id']}/api_keys", json={"name": f"{prefix}-cli"}).json()
    accounts = f"accounts/{cloud.account}"
    bot = by_hand.post(f"{accounts}/bots/", json={"name": f"{prefix}-bot"}).json()
    team = by_hand.post(f"{accounts}/teams/", json={"name": f"{prefix}-data", "description": "ETL"}).json()
    by_hand.put(f"{accounts}/teams/{team['id']}/members", json={"members": [
        {"member_id": grace["user_id"], "member_type": "user"}, {"member_id": bot["id"], "member_type": "service_account"}]}).raise_for_status()

    out = cloud_workspace.directory.parent / "exported"
    assert_ok(cloud_workspace.run("export", "--kinds", "user_api_keys,teams", "--out", str(out)))
    exported = "".join(p.read_text() for p in sorted(out.glob("*.yaml")))
    assert f"{prefix}-ci:" in exported and f"user: {GRACE}" in exported and "expiration:" in exported
    assert f"- {prefix}-bot" in exported and f"- {GRACE}" in exported
    assert key["key"] not in exported and other["key"] not in exported and "fingerprint" not in exported
    everything = cloud_workspace.directory.parent / "everything"
    assert_ok(cloud_workspace.run("export", "--kinds", "teams,service_accounts,workspaces", "--out", str(everything)))
    by_default = cloud_workspace.directory.parent / "by-default"
    assert_ok(cloud_workspace.run("export", "--out", str(by_default)))
    assert not (by_default / "user_api_keys.yaml").exists(), "people's own keys are exported only when asked for"
    assert (by_default / "teams.yaml").read_text() == (everything / "teams.yaml").read_text()

    cloud_workspace.write("main.yaml", f"""\
user_api_keys:
  {prefix}-ci: {{user: {GRACE}, expiration: "{NEXT_YEAR.isoformat()}"}}
  {prefix}-cli: {{user: {GRACE}}}
teams:
  {prefix}-data:
    description: ETL
    members: {{users: [{GRACE}], service_accounts: [{prefix}-bot]}}
""")
    # A key by its id (USER_ID/KEY_ID, as state records it) or by its name; a team by its id.
    for address, obj_id in ((f"user_api_keys.{prefix}-ci", f"{grace['user_id']}/{key['id']}"),
                            (f"user_api_keys.{prefix}-cli", f"{prefix}-cli"), (f"teams.{prefix}-data", team["id"])):
        assert_ok(cloud_workspace.run("import", address, obj_id, str(cloud_workspace.directory)))
    state = cloud_workspace.state()["resources"]
    assert state[f"user_api_keys.{prefix}-cli"]["id"] == f"{grace['user_id']}/{other['id']}"
    assert state[f"teams.{prefix}-data"]["attributes"]["members"] == {"users": [GRACE], "service_accounts": [f"{prefix}-bot"]}
    assert key["key"] not in cloud_workspace.state_path.read_text()
    assert "No changes." in assert_ok(cloud_workspace.plan(), 0).stdout
    wrong = assert_ok(cloud_workspace.run("import", f"user_api_keys.{prefix}-ci", "nope", str(cloud_workspace.directory)), 1)
    assert "already managed" in wrong.stderr and "Traceback" not in wrong.output


def test_account_members_are_data_sources_read_by_email(cloud_workspace, cloud, api, prefix):
    cloud_workspace.write("main.yaml", f"""\
data:
  account_members:
    {ADA}: {{}}
variables:
  {prefix}_owner:
    value: "${{data.account_members.{ADA}.first_name}} (${{data.account_members.{ADA}.handle}}, ${{data.account_members.{ADA}.account_role_name}})"
  {prefix}_owner_id:
    value: "${{data.account_members.{ADA}.user_id}} ${{data.account_members.{ADA}.actor_id}}"
""")
    assert_ok(cloud_workspace.apply())
    ada = cloud.member(ADA)
    assert api.get(f"variables/name/{prefix}_owner").json()["value"] == "Ada (ada-lovelace, Member)"
    assert api.get(f"variables/name/{prefix}_owner_id").json()["value"] == f"{ada['user_id']} {ada['actor_id']}"
    assert set(cloud_workspace.state()["resources"]) == {f"variables.{prefix}_owner", f"variables.{prefix}_owner_id"}
    assert_ok(cloud_workspace.plan(), 0)

    cloud_workspace.write("main.yaml", "data:\n  account_members:\n    nobody@example.com: {}\n")
    missing = assert_ok(cloud_workspace.plan(), 1)
    assert "data.account_members.nobody@example.com" in missing.stderr and "Traceback" not in missing.output


@pytest.mark.parametrize(
    ("text", "where", "why"),
    [
        ("teams:\n  data:\n    members:\n      users: [ada.lovelace@example.com, nobody@example.com]\n",
         "main.yaml:4: teams.data.members.users[1]", "no member with the email 'nobody@example.com'"),
        ("teams:\n  data:\n    members: {teams: [ops]}\n", "main.yaml:3: teams.data.members",
         "a team cannot be a member of a team"),
        ("teams:\n  data:\n    members: {people: [x]}\n", "main.yaml:3: teams.data.members.people", ""),
        ("user_api_keys:\n  laptop:\n    user: nobody@example.com\n", "main.yaml:3: user_api_keys.laptop.user",
         "no member with the email 'nobody@example.com'"),
        ("user_api_keys:\n  laptop:\n    user: ada.lovelace@example.com\n    expiration: '2030-01-01T00:00:00'\n",
         "main.yaml:4: user_api_keys.laptop.expiration", ""),
        ("user_api_keys:\n  laptop: {}\n", "main.yaml:2: user_api_keys.laptop", "user"),
    ],
)
def test_bad_input_names_file_line_and_field_and_applies_nothing(cloud_workspace, cloud, text, where, why):
    cloud_workspace.write("main.yaml", "variables:\n  untouched: {value: 1}\n" + text)
    result = assert_ok(cloud_workspace.apply(), 1)
    shifted = re.sub(r"main\.yaml:(\d+)", lambda m: f"main.yaml:{int(m[1]) + 2}", where)
    assert shifted in result.stderr and why in result.stderr and "Traceback" not in result.output
    assert cloud.teams == {} and cloud_fake_members.user_api_keys(cloud) == {}
    assert not cloud_workspace.state_path.exists() or "untouched" not in cloud_workspace.state_path.read_text()


def test_against_an_open_source_server_members_keys_and_account_members_are_refused_before_any_request(
        workspace, prefix, open_source_trap):
    url = open_source_trap.api_url
    workspace.write("main.yaml", f"""\
data:
  account_members:
    {ADA}: {{}}
user_api_keys:
  {prefix}-laptop: {{user: {ADA}}}
variables:
  {prefix}_owner: {{value: "${{data.account_members.{ADA}.handle}}"}}
""")
    for command in (workspace.plan, workspace.apply):
        result = assert_ok(command(env={"PREFECT_API_URL": url}), 1)
        assert f"main.yaml:3: data.account_members.{ADA}: account_members are a Prefect Cloud feature" in result.stderr
        assert f"main.yaml:5: user_api_keys.{prefix}-laptop: user_api_keys are a Prefect Cloud feature" in result.stderr
        assert "Traceback" not in result.output
    imported = assert_ok(workspace.run("import", f"user_api_keys.{prefix}-laptop", "x", str(workspace.directory),
                                       env={"PREFECT_API_URL": url}), 1)
    assert "Prefect Cloud feature" in imported.stderr
    assert open_source_trap.seen == [], "no request was sent"
    assert not workspace.state_path.exists()


def test_the_cloud_fake_answers_bad_member_and_key_requests_as_cloud_does(cloud, by_hand):
    ada = cloud.member(ADA)
    team = by_hand.post(f"accounts/{cloud.account}/teams/", json={"name": "t"}).json()
    members = f"accounts/{cloud.account}/teams/{team['id']}/members"
    unknown = "00000000-0000-0000-0000-000000000000"
    cases = [
        (by_hand.put, members, {"json": {"members": [{"member_id": unknown, "member_type": "user"}]}}, 404),
        (by_hand.put, members, {"json": {"members": [{"member_id": ada["user_id"], "member_type": "service_account"}]}}, 404),
        (by_hand.put, members, {"json": {"members": [{"member_id": ada["user_id"], "member_type": "robot"}]}}, 422),
        (by_hand.put, members, {"json": {"member_id": ada["user_id"]}}, 422),
        (by_hand.delete, f"{members}/{ada['actor_id']}", {}, 404),
        (by_hand.get, f"accounts/{cloud.account}/teams/{unknown}", {}, 404),
        (by_hand.post, f"users/{unknown}/api_keys", {"json": {"name": "k"}}, 404),
        (by_hand.post, f"users/{ada['user_id']}/api_keys", {"json": {"name": "k", "expiration": "tomorrow"}}, 422),
        (by_hand.post, f"users/{ada['user_id']}/api_keys", {"json": {"expiration": None}}, 422),
        (by_hand.get, f"users/{ada['user_id']}/api_keys/{unknown}", {}, 404),
        (by_hand.put, members, {"json": {"members": [{"member_id": ada["user_id"], "member_type": "user"}]}}, 200),
    ]
    for send, url, kwargs, status in cases:
        assert send(url, **kwargs).status_code == status, (url, kwargs)
    assert by_hand.get(f"accounts/{cloud.account}/teams/{team['id']}").json()["memberships"] == [{"id": ada["actor_id"], "type": "user"}]
    read_only = {"Authorization": f"Bearer {cloud.read_only_key}"}
    assert httpx.post(f"{by_hand.base_url}users/{ada['user_id']}/api_keys", json={"name": "k"}, headers=read_only).status_code == 403


def test_an_unknown_service_account_is_an_error_of_the_plan(cloud_workspace, cloud, prefix):
    cloud_workspace.write("main.yaml", f"teams:\n  {prefix}-data:\n    members: {{users: [{ADA}], service_accounts: [ghost]}}\n")
    result = assert_ok(cloud_workspace.apply(), 1)
    assert (f"main.yaml:3: teams.{prefix}-data.members.service_accounts[0]: the account has no service account "
            "named 'ghost', and the configuration declares none") in result.stderr
    assert "Traceback" not in result.output and cloud.teams == {}


def test_a_pulumi_user_api_key_gives_the_key_as_a_secret_output_and_is_replaced_not_updated(cloud, monkeypatch, prefix):
    from tests.e2e.test_pulumi import create, loaded

    monkeypatch.setenv("PREFECT_API_URL", cloud.api_url)
    monkeypatch.setenv("PREFECT_API_KEY", cloud.api_key)
    provider = loaded("user_api_keys")
    issued = cloud_fake_members.issued_user_keys(cloud)
    inputs = {"name": f"{prefix}-laptop", "user": ADA, "expiration": NEXT_YEAR.isoformat()}
    key_id, outs = create(provider, inputs)
    assert outs["key"] == issued[key_id.split("/")[1]]
    assert provider.read(key_id, outs).outs["key"] == outs["key"]
    # Cloud cannot change a key: Pulumi replaces it (a create, which issues the new resource's key).
    assert provider.diff(key_id, outs, {**inputs, "expiration": None}).replaces == ["expiration"]
