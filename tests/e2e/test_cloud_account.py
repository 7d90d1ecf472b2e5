"""The Prefect Cloud account itself (`accounts`, Terraform's prefect_account): adopted, changed in
place by Terraform's three calls, never created or deleted; and readable as a data source.

The loopback Cloud fake (tests/cloud_fake.py, area tests/cloud_fake_account.py) serves the account
of its API URL, handle `acme`.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator

import httpx
import pytest
import yaml

from tests.cloud_fake_account import account_of
from tests.conftest import assert_ok, assert_refused_writing_nothing

FULL = """\
accounts:
  acme:
    name: Acme Inc
    location: Washington, D.C.
    settings:
      ai_log_summaries: false
      enforce_webhook_authentication: true
    domain_names: [acme.com, Acme.io]
"""


@pytest.fixture
def by_hand(cloud) -> Iterator[httpx.Client]:
    """Changes made outside prefect-provider, as from the Cloud UI, on the account's routes."""
    account_of(cloud)
    headers = {"Authorization": f"Bearer {cloud.api_key}"}
    with httpx.Client(base_url=f"{cloud.root}/api/accounts/{cloud.account}/", headers=headers, timeout=30) as client:
        yield client


def domains(cloud) -> list[str]:
    return sorted(d["name"] for d in cloud.__dict__.get("account_domains", []))


def test_adopted_changed_in_place_by_the_calls_terraform_makes_and_a_noop_apply_writes_nothing(cloud_workspace, cloud):
    cloud_workspace.write("main.yaml", "accounts:\n  acme: {}\n")
    planned = assert_ok(cloud_workspace.plan(), 2)
    assert "# accounts.acme will be imported" in planned.stdout, planned.stdout
    assert "Plan: 0 to add, 0 to change, 0 to destroy, 1 to import." in planned.stdout, "adopted, never created"
    before = dict(cloud.requests)
    assert_ok(cloud_workspace.apply())
    assert cloud.writes_since(before) == {}, "adopting the account writes nothing"
    assert cloud_workspace.state()["resources"]["accounts.acme"]["id"] == cloud.account
    assert "No changes." in assert_ok(cloud_workspace.plan(), 0).stdout, "a bare declaration plans no change"

    cloud_workspace.write("main.yaml", FULL)
    updated = assert_ok(cloud_workspace.plan(), 2)
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in updated.stdout, updated.stdout
    for line in (r'~ name += "Acme Corp" -> "Acme Inc"', r"~ ai_log_summaries += true -> false", r'\+ "acme.io"'):
        assert re.search(line, updated.stdout), updated.stdout
    assert "managed_execution" not in updated.stdout, "an unset setting is Cloud's, never compared"
    before = dict(cloud.requests)
    assert_ok(cloud_workspace.apply())
    assert cloud.writes_since(before) == {"PATCH /": 1, "PATCH /settings": 1, "PATCH /domains": 1}
    assert cloud.account_writes == [("PATCH", "/", {"name": "Acme Inc", "location": "Washington, D.C."}),
                                    ("PATCH", "/settings", {"allow_public_workspaces": False, "ai_log_summaries": False,
                                                            "managed_execution": True, "enforce_webhook_authentication": True}),
                                    ("PATCH", "/domains", {"domain_names": ["acme.com", "acme.io"]}),
                                    ], "only the parts that changed; settings all four, as Terraform sends them"
    account = account_of(cloud)
    assert (account["name"], account["location"], account["handle"]) == ("Acme Inc", "Washington, D.C.", "acme")
    assert account["settings"] == {"allow_public_workspaces": False, "ai_log_summaries": False, "managed_execution": True,
                                   "enforce_webhook_authentication": True}
    assert domains(cloud) == ["acme.com", "acme.io"]
    assert "No changes." in assert_ok(cloud_workspace.plan(), 0).stdout
    before = dict(cloud.requests)
    assert_ok(cloud_workspace.apply())
    assert cloud.writes_since(before) == {}, "a no-op apply sends no writes"

    # Only the part that changed is written (the unset settings as Cloud has them).
    cloud_workspace.write("main.yaml", FULL.replace("enforce_webhook_authentication: true", "enforce_webhook_authentication: false"))
    before = dict(cloud.requests)
    assert_ok(cloud_workspace.apply())
    assert cloud.writes_since(before) == {"PATCH /settings": 1}
    assert cloud.account_writes[-1] == ("PATCH", "/settings", {"allow_public_workspaces": False, "ai_log_summaries": False,
                                                                "managed_execution": True, "enforce_webhook_authentication": False})
    assert account_of(cloud)["settings"]["enforce_webhook_authentication"] is False


def test_drift_by_hand_is_shown_and_repaired_and_unset_fields_are_clouds(cloud_workspace, cloud, by_hand):
    cloud_workspace.write("main.yaml", FULL)
    assert_ok(cloud_workspace.apply())
    by_hand.patch("", json={"name": "Renamed by hand", "link": "https://acme.example"}).raise_for_status()
    by_hand.patch("settings", json={"ai_log_summaries": True, "allow_public_workspaces": True}).raise_for_status()
    by_hand.patch("domains", json={"domain_names": ["acme.com"]}).raise_for_status()
    drifted = assert_ok(cloud_workspace.run("drift", str(cloud_workspace.directory)), 2)
    for line in (r'~ name += "Acme Inc" -> "Renamed by hand"', r"~ ai_log_summaries += false -> true", r'- "acme.io"'):
        assert re.search(line, drifted.stdout), drifted.stdout
    planned = assert_ok(cloud_workspace.plan(), 2)
    # What changed by hand is shown; only what the configuration sets is changed back.
    assert "(changed outside prefect-provider: ai_log_summaries, domain_names, name)" in planned.stdout, planned.stdout
    action = planned.stdout.split("will perform the following actions:")[1]
    assert "link" not in action and "allow_public_workspaces" not in action, "unset fields are Cloud's"
    before = dict(cloud.requests)
    assert_ok(cloud_workspace.apply())
    assert cloud.writes_since(before) == {"PATCH /": 1, "PATCH /settings": 1, "PATCH /domains": 1}
    account = account_of(cloud)
    assert (account["name"], account["link"]) == ("Acme Inc", "https://acme.example")
    assert (account["settings"]["ai_log_summaries"], account["settings"]["allow_public_workspaces"]) == (False, True)
    assert domains(cloud) == ["acme.com", "acme.io"]
    assert_ok(cloud_workspace.plan(), 0)


def test_no_longer_declared_or_destroyed_the_account_is_forgotten_never_deleted(cloud_workspace, cloud):
    cloud_workspace.write("main.yaml", FULL)
    assert_ok(cloud_workspace.apply())
    cloud_workspace.write("main.yaml", "teams: {}\n")
    planned = assert_ok(cloud_workspace.plan(), 2)
    assert "belongs to the server: no longer managed, not deleted" in planned.stdout, planned.stdout
    assert "0 to destroy" in planned.stdout
    before = dict(cloud.requests)
    assert_ok(cloud_workspace.apply())
    assert cloud.writes_since(before) == {}
    assert "accounts.acme" not in cloud_workspace.state()["resources"]

    cloud_workspace.write("main.yaml", FULL)
    assert_ok(cloud_workspace.apply())
    before = dict(cloud.requests)
    assert_ok(cloud_workspace.run("destroy", str(cloud_workspace.directory), "--auto-approve"))
    assert cloud.writes_since(before) == {}, "destroy forgets the account: no DELETE"
    assert account_of(cloud)["name"] == "Acme Inc"


def test_data_source_reads_the_read_only_facts(cloud_workspace, cloud, api, prefix):
    cloud_workspace.write("main.yaml", f"""\
variables:
  {prefix}_plan:
    value: "${{data.accounts.acme.plan_type}} ${{data.accounts.acme.run_retention_days}} ${{data.accounts.acme.ai_log_summaries}}"
  {prefix}_features:
    value: "${{data.accounts.acme.features}}"
data:
  accounts: {{acme: {{}}}}
""")
    assert_ok(cloud_workspace.apply())
    assert api.get(f"variables/name/{prefix}_plan").json()["value"] == "ENTERPRISE 30 true"
    assert api.get(f"variables/name/{prefix}_features").json()["value"] == ["AUDIT_LOGS", "SSO"]
    assert_ok(cloud_workspace.plan(), 0)
    cloud_workspace.write("main.yaml", "data:\n  accounts: {other: {}}\n")
    assert "no such object on the server" in assert_ok(cloud_workspace.plan(), 1).stderr


def test_export_and_import_round_trip(cloud_workspace, cloud, by_hand, tmp_path):
    by_hand.patch("", json={"location": "Lisbon"}).raise_for_status()
    by_hand.patch("domains", json={"domain_names": ["acme.com"]}).raise_for_status()
    out = tmp_path / "exported"
    assert_ok(cloud_workspace.run("export", "--kinds", "accounts", "--out", str(out)))
    exported = yaml.safe_load((out / "accounts.yaml").read_text())
    assert exported == {"accounts": {"acme": {
        "name": "Acme Corp", "location": "Lisbon", "domain_names": ["acme.com"],
        "settings": {"allow_public_workspaces": False, "ai_log_summaries": True, "managed_execution": True,
                     "enforce_webhook_authentication": False}}}}
    shutil.copy(out / "accounts.yaml", cloud_workspace.directory / "accounts.yaml")
    assert_ok(cloud_workspace.run("import", "accounts.acme", cloud.account, str(cloud_workspace.directory)))
    assert cloud_workspace.state()["resources"]["accounts.acme"]["id"] == cloud.account
    assert "No changes." in assert_ok(cloud_workspace.plan(), 0).stdout


@pytest.mark.parametrize(
    ("text", "where", "says"),
    [
        ("accounts:\n  other: {}\n", "main.yaml:2: accounts.other", "the API URL's account is 'acme'"),
        ("accounts:\n  acme:\n    settings:\n      ai_log_summaries: yes please\n", "main.yaml:4: accounts.acme.settings.ai_log_summaries", ""),
        ("accounts:\n  acme:\n    settings:\n      sso: true\n", "main.yaml:4: accounts.acme.settings.sso", ""),
        ("accounts:\n  acme:\n    auth_expiration_seconds: -1\n", "main.yaml:3: accounts.acme.auth_expiration_seconds", ""),
        ("accounts:\n  acme:\n    plan_type: FREE\n", "main.yaml:3: accounts.acme.plan_type", ""),
        ("accounts:\n  acme:\n    domain_names: [acme.com, ACME.com]\n", "main.yaml:3: accounts.acme.domain_names", "listed twice"),
    ],
)
def test_bad_input_names_file_line_and_field_and_nothing_is_applied(cloud_workspace, cloud, text, where, says):
    cloud_workspace.write("main.yaml", text)
    assert_refused_writing_nothing(cloud_workspace, cloud, where, says)
    assert not cloud_workspace.state_path.exists() or "accounts.acme" not in cloud_workspace.state()["resources"]


def test_against_an_open_source_server_the_plan_is_refused_before_any_request(workspace, open_source_trap):
    url = open_source_trap.api_url
    for text, line, address in ((FULL, 2, "accounts.acme"), ("data:\n  accounts: {acme: {}}\n", 2, "data.accounts.acme")):
        workspace.write("main.yaml", text)
        for command in (workspace.plan, workspace.apply):
            result = assert_ok(command(env={"PREFECT_API_URL": url}), 1)
            assert f"main.yaml:{line}: {address}: accounts are a Prefect Cloud feature, and {url} is not" in result.stderr, result.stderr
            assert "Traceback" not in result.output
    assert open_source_trap.seen == [], "no request was sent"


def test_the_cloud_fake_answers_bad_account_requests_as_cloud_does(cloud, by_hand):
    cases = [
        (by_hand.patch, "", {"json": {"name": ""}}, 422),
        (by_hand.patch, "", {"json": {"handle": "Not A Handle"}}, 422),
        (by_hand.patch, "", {"json": {"plan_type": "FREE"}}, 422),
        (by_hand.patch, "", {"json": {"auth_expiration_seconds": 0}}, 422),
        (by_hand.patch, "settings", {"json": {"ai_log_summaries": "yes"}}, 422),
        (by_hand.patch, "settings", {"json": {"sso": True}}, 422),
        (by_hand.patch, "domains", {"json": {}}, 422),
        (by_hand.patch, "domains", {"json": {"domain_names": ["not a domain"]}}, 422),
        (by_hand.delete, "", {}, 405),
        (by_hand.get, "", {}, 200),
    ]
    for send, url, kwargs, status in cases:
        assert send(url, **kwargs).status_code == status, (url, kwargs)
    assert account_of(cloud)["name"] == "Acme Corp"
    read_only = {"Authorization": f"Bearer {cloud.read_only_key}"}
    assert httpx.patch(f"{by_hand.base_url}settings", json={"ai_log_summaries": False}, headers=read_only).status_code == 403
    assert httpx.get(f"{by_hand.base_url}domains", headers=read_only).status_code == 200


def test_a_handle_changed_in_the_ui_is_a_renamed_entry_forgotten_and_imported(cloud_workspace, cloud, by_hand):
    cloud_workspace.write("main.yaml", FULL)
    assert_ok(cloud_workspace.apply())
    by_hand.patch("", json={"handle": "acme-corp"}).raise_for_status()
    refused = assert_ok(cloud_workspace.plan(), 1)
    assert "main.yaml:2: accounts.acme: the API URL's account is 'acme-corp'" in refused.stderr, refused.stderr
    cloud_workspace.write("main.yaml", FULL.replace("  acme:", "  acme-corp:"))
    planned = assert_ok(cloud_workspace.plan(), 2)
    assert "Plan: 0 to add, 0 to change, 0 to destroy, 1 to import, 1 to forget." in planned.stdout, planned.stdout
    before = dict(cloud.requests)
    assert_ok(cloud_workspace.apply())
    assert cloud.writes_since(before) == {}
    assert cloud_workspace.state()["resources"]["accounts.acme-corp"]["id"] == cloud.account
    assert "No changes." in assert_ok(cloud_workspace.plan(), 0).stdout


def test_a_pulumi_resource_adopts_the_account_and_its_delete_deletes_nothing(cloud, monkeypatch):
    from tests.e2e.test_pulumi import create, loaded

    monkeypatch.setenv("PREFECT_API_URL", cloud.api_url)
    monkeypatch.setenv("PREFECT_API_KEY", cloud.api_key)
    account_of(cloud)
    provider = loaded("accounts")
    obj_id, outs = create(provider, {"handle": "acme", "name": "Pulumi Corp", "settings": {"ai_log_summaries": False}})
    assert obj_id == cloud.account
    assert (account_of(cloud)["name"], account_of(cloud)["settings"]["ai_log_summaries"]) == ("Pulumi Corp", False)
    assert outs["attributes"]["plan_type"] == "ENTERPRISE"
    provider.delete(obj_id, outs)
    assert cloud.writes_since({}) == {"PATCH /": 1, "PATCH /settings": 1}, "adopted and updated; the delete deletes nothing"
    assert account_of(cloud)["name"] == "Pulumi Corp"
