"""Prefect Cloud workspaces, workspace roles and workspace access, and the account's roles as data.

Workspaces and workspace roles live under the account, access grants under the workspace of the
API URL; the loopback Cloud fake (tests/cloud_fake.py, area tests/cloud_fake_workspaces.py) serves
them in Cloud's shapes, as Prefect's Terraform provider sends and reads them.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator

import httpx
import pytest
import yaml

from tests import cloud_fake_workspaces
from tests.cloud_fake import ACCOUNT_ROLE_PERMISSIONS, named
from tests.conftest import assert_ok, assert_refused_writing_nothing

ADA, GRACE, ALAN = "ada.lovelace@example.com", "grace.hopper@example.com", "alan.turing@example.com"


@pytest.fixture
def by_hand(cloud) -> Iterator[httpx.Client]:
    """Changes made outside prefect-provider, as from the Cloud UI, on the account's routes."""
    cloud_fake_workspaces.install(cloud)
    headers = {"Authorization": f"Bearer {cloud.api_key}"}
    with httpx.Client(base_url=f"{cloud.root}/api/accounts/{cloud.account}/", headers=headers, timeout=30) as client:
        yield client


def config(prefix: str, *, scopes: str = "[run_deployments, manage_deployments]", description: str = "Staging",
           users: str = f"[{ADA}]", teams: str = "[{prefix}-data]", data: bool = True) -> str:
    text = f"""\
teams:
  {prefix}-data: {{}}
service_accounts:
  {prefix}-ci: {{}}
workspaces:
  {prefix}-staging:
    handle: {prefix}-staging
    description: {description}
workspace_roles:
  {prefix}-deployer:
    description: Deploys
    scopes: {scopes}
    inherited_role: Viewer
workspace_access:
  deployers:
    workspace_role: {prefix}-deployer
    users: {users}
    service_accounts: [{prefix}-ci]
    teams: {teams.format(prefix=prefix)}
"""
    return text + """\
data:
  workspace_roles: {Developer: {}}
  account_roles: {Admin: {}}
  workspaces: {Default: {}}
""" if data else text


def grants(cloud) -> dict[tuple[str, str], str]:
    """Who holds which role in the connected workspace: (kind, email or name) -> role name."""
    roles = {r["id"]: r["name"] for r in cloud.workspace_roles.values()}
    emails = {m["user_id"]: m["email"] for m in cloud.members.values()}
    held = {}
    for access in cloud.workspace_access.values():
        if access["workspace_id"] != cloud.workspace:
            continue
        if access["user_id"]:
            held[("user", emails[access["user_id"]])] = roles[access["workspace_role_id"]]
        elif access["bot_id"]:
            held[("bot", cloud.bots[access["bot_id"]]["name"])] = roles[access["workspace_role_id"]]
        else:
            held[("team", cloud.teams[access["team_id"]]["name"])] = roles[access["workspace_role_id"]]
    return held


def test_apply_creates_everything_replans_empty_and_a_noop_apply_writes_nothing(cloud_workspace, cloud, prefix):
    cloud_workspace.write("main.yaml", config(prefix))
    planned = assert_ok(cloud_workspace.plan(), 2)
    assert "Plan: 5 to add, 0 to change, 0 to destroy." in planned.stdout
    assert re.search(r'\+ users += \["ada.lovelace@example.com"\]', planned.stdout)

    assert_ok(cloud_workspace.apply())
    staging = named(cloud.workspaces, f"{prefix}-staging")
    assert (staging["handle"], staging["description"]) == (f"{prefix}-staging", "Staging")
    role = named(cloud.workspace_roles, f"{prefix}-deployer")
    assert sorted(role["scopes"]) == ["manage_deployments", "run_deployments"]
    assert role["inherited_role_id"] == named(cloud.workspace_roles, "Viewer")["id"] and role["account_id"] == cloud.account
    deployer = f"{prefix}-deployer"
    assert grants(cloud) == {("user", ADA): deployer, ("bot", f"{prefix}-ci"): deployer, ("team", f"{prefix}-data"): deployer}
    ada = next(a for a in cloud.workspace_access.values() if a["user_id"])
    assert ada["user_id"] == cloud.member(ADA)["user_id"], "a person's grant names their user id, as Cloud's has it"

    state = cloud_workspace.state()["resources"]
    assert state[f"workspaces.{prefix}-staging"]["id"] == staging["id"]
    assert state["workspace_access.deployers"]["attributes"]["users"] == [ADA], "state names people by email, never by id"

    assert "No changes." in assert_ok(cloud_workspace.plan(), 0).stdout
    before = dict(cloud.requests)
    assert_ok(cloud_workspace.apply())
    assert cloud.writes_since(before) == {}, "a no-op apply sends no writes"


def test_data_sources_read_built_in_roles_account_roles_and_workspaces(cloud_workspace, cloud, api, prefix):
    cloud_workspace.write("main.yaml", f"""\
teams:
  {prefix}-ids:
    description: "${{data.workspace_roles.Developer.id}} ${{data.account_roles.Admin.id}} ${{data.workspaces.Default.handle}}"
variables:
  {prefix}_admin_permissions:
    value: "${{data.account_roles.Admin.permissions}}"
  {prefix}_developer_scopes:
    value: "${{data.workspace_roles.Developer.scopes}}"
data:
  workspace_roles: {{Developer: {{}}}}
  account_roles: {{Admin: {{}}}}
  workspaces: {{Default: {{}}}}
""")
    assert_ok(cloud_workspace.apply())
    cloud_fake_workspaces.install(cloud)
    developer = named(cloud.workspace_roles, "Developer")["id"]
    assert named(cloud.teams, f"{prefix}-ids")["description"] == f"{developer} {cloud.roles['Admin']} default"
    assert api.get(f"variables/name/{prefix}_admin_permissions").json()["value"] == sorted(ACCOUNT_ROLE_PERMISSIONS["Admin"])
    assert api.get(f"variables/name/{prefix}_developer_scopes").json()["value"] == sorted(cloud_fake_workspaces.BUILT_IN_ROLES["Developer"])
    assert_ok(cloud_workspace.plan(), 0)
    for kind in ("account_roles", "workspace_roles", "workspaces", "workspace_access"):
        cloud_workspace.write("main.yaml", f"data:\n  {kind}: {{Nope: {{}}}}\n")
        assert f"data.{kind}.Nope" in (refused := assert_ok(cloud_workspace.plan(), 1).stderr), refused
        assert "no such object on the server" in refused


def test_drift_by_hand_is_shown_and_repaired_and_changes_happen_in_place(cloud_workspace, cloud, by_hand, prefix):
    cloud_workspace.write("main.yaml", config(prefix))
    assert_ok(cloud_workspace.apply())
    staging, role = named(cloud.workspaces, f"{prefix}-staging"), named(cloud.workspace_roles, f"{prefix}-deployer")
    ids = (staging["id"], role["id"])
    workspace_routes = f"{cloud.api_url}/"
    viewer = named(cloud.workspace_roles, "Viewer")["id"]
    bot = named(cloud.bots, f"{prefix}-ci")
    # Alan holds the same role, granted by hand: never this configuration's to change.
    by_hand.post(f"{workspace_routes}user_access/", json=[{"workspace_role_id": role["id"], "user_id": cloud.member(ALAN)["user_id"]}]).raise_for_status()
    assert_ok(cloud_workspace.plan(), 0)

    ada_access = next(a for a in cloud.workspace_access.values() if a["user_id"] == cloud.member(ADA)["user_id"])
    by_hand.delete(f"{workspace_routes}user_access/{ada_access['id']}").raise_for_status()
    by_hand.post(f"{workspace_routes}bot_access/", json=[{"workspace_role_id": viewer, "bot_id": bot["id"]}]).raise_for_status()
    by_hand.patch(f"workspaces/{staging['id']}", json={"description": "edited"}).raise_for_status()
    by_hand.patch(f"workspace_roles/{role['id']}", json={"name": role["name"], "description": "Deploys", "scopes": ["run_deployments"],
                                                           "inherited_role_id": None}).raise_for_status()
    drifted = assert_ok(cloud_workspace.run("drift", str(cloud_workspace.directory)), 2)
    assert "Objects have changed outside of prefect-provider" in drifted.stdout
    for expected in ('- "ada.lovelace@example.com"', f'- "{prefix}-ci"', '- "manage_deployments"',
                     '~ description = "Staging" -> "edited"', '- inherited_role = "Viewer" -> null'):
        assert expected in drifted.stdout, drifted.stdout
    assert "alan" not in drifted.stdout
    assert_ok(cloud_workspace.apply())
    deployer = f"{prefix}-deployer"
    assert grants(cloud) == {("user", ADA): deployer, ("user", ALAN): deployer, ("bot", f"{prefix}-ci"): deployer,
                             ("team", f"{prefix}-data"): deployer}
    assert named(cloud.workspaces, f"{prefix}-staging")["description"] == "Staging"
    assert sorted(named(cloud.workspace_roles, deployer)["scopes"]) == ["manage_deployments", "run_deployments"]
    assert_ok(cloud_workspace.plan(), 0)

    # Changes happen in place: a person added, a team removed, a scope added, a description changed.
    cloud_workspace.write("main.yaml", config(prefix, scopes="[run_deployments, manage_deployments, see_flows]", description="Pre-prod",
                                              users=f"[{ADA}, {GRACE}]", teams="[]"))
    updated = assert_ok(cloud_workspace.plan(), 2)
    assert "Plan: 0 to add, 3 to change, 0 to destroy." in updated.stdout
    before = dict(cloud.requests)
    assert_ok(cloud_workspace.apply())
    assert cloud.writes_since(before) == {"PATCH /workspaces/{id}": 1, "PATCH /workspace_roles/{id}": 1, "POST /user_access/": 1,
                                     "DELETE /team_access/{id}": 1}
    assert (named(cloud.workspaces, f"{prefix}-staging")["id"], named(cloud.workspace_roles, deployer)["id"]) == ids
    assert grants(cloud) == {("user", ADA): deployer, ("user", GRACE): deployer, ("user", ALAN): deployer,
                             ("bot", f"{prefix}-ci"): deployer}
    assert_ok(cloud_workspace.plan(), 0)

    # Another role for the same people is an upsert of each grant.
    text = config(prefix, users=f"[{ADA}, {GRACE}]", teams="[]").replace(f"workspace_role: {prefix}-deployer", "workspace_role: Developer")
    cloud_workspace.write("main.yaml", text)
    assert re.search(rf'~ workspace_role += "{prefix}-deployer" -> "Developer"', assert_ok(cloud_workspace.plan(), 2).stdout)
    assert_ok(cloud_workspace.apply())
    assert grants(cloud) == {("user", ADA): "Developer", ("user", GRACE): "Developer", ("user", ALAN): deployer,
                             ("bot", f"{prefix}-ci"): "Developer"}
    assert_ok(cloud_workspace.plan(), 0)

    # Deleting the grant removes what it holds, and only that; the other workspace goes with its plan.
    kept = text.split("workspaces:")[0] + "workspace_roles:" + text.split("workspace_roles:")[1].split("workspace_access:")[0]
    cloud_workspace.write("main.yaml", kept)
    saved = cloud_workspace.directory.parent / "delete.tfplan"  # a saved plan carries what the grant holds
    planned = assert_ok(cloud_workspace.run("plan", str(cloud_workspace.directory), "--out", str(saved)))
    assert "Plan: 0 to add, 0 to change, 2 to destroy." in planned.stdout
    assert_ok(cloud_workspace.run("apply", str(saved), "--auto-approve"))
    assert grants(cloud) == {("user", ALAN): deployer}
    assert staging["id"] not in cloud.workspaces and cloud.workspace in cloud.workspaces
    assert_ok(cloud_workspace.plan(), 0)


def test_the_connected_workspace_is_never_deleted_and_built_in_roles_are_not_declared(cloud_workspace, cloud, by_hand):
    cloud_workspace.write("main.yaml", "workspaces:\n  Default:\n    handle: default\n")
    assert "already exist" in assert_ok(cloud_workspace.plan(), 1).stderr
    assert_ok(cloud_workspace.run("import", "workspaces.Default", cloud.workspace, str(cloud_workspace.directory)))
    assert_ok(cloud_workspace.plan(), 0)
    cloud_workspace.write("main.yaml", "teams: {}\n")
    refused = assert_ok(cloud_workspace.plan(), 1)
    assert "workspace 'Default' is the one the API URL points into" in refused.stderr and "Traceback" not in refused.output
    assert_ok(cloud_workspace.run("destroy", str(cloud_workspace.directory), "--auto-approve"), 1)
    assert cloud.workspace in cloud.workspaces

    developer = named(cloud.workspace_roles, "Developer")
    assert by_hand.patch(f"workspace_roles/{developer['id']}", json={"name": "Developer"}).status_code == 403
    assert by_hand.delete(f"workspace_roles/{developer['id']}").status_code == 403


@pytest.mark.parametrize(
    ("text", "where", "says"),
    [
        ("workspace_access:\n  x:\n    workspace_role: Nope\n", "main.yaml:3: workspace_access.x.workspace_role", "no workspace role named 'Nope'"),
        (f"workspace_access:\n  x:\n    workspace_role: Viewer\n    users:\n      - {ADA}\n      - nobody@example.com\n",
         "main.yaml:6: workspace_access.x.users[1]", "no member with the email 'nobody@example.com'"),
        (f"workspace_access:\n  x:\n    workspace_role: Viewer\n    users: [{ADA}]\n  y:\n    workspace_role: Runner\n    users: [{ADA}]\n",
         "workspace_access.y.users[0]", "an actor holds one role per workspace"),
        ("workspace_access:\n  x:\n    workspace_role: Viewer\n    teams: [ghosts]\n", "main.yaml:4: workspace_access.x.teams[0]",
         "no team named 'ghosts', and the configuration declares none"),
        ("workspace_roles:\n  Developer:\n    scopes: [see_flows]\n", "main.yaml:2: workspace_roles.Developer", "built-in workspace roles"),
        ("workspace_roles:\n  r:\n    inherited_role: Nope\n", "main.yaml:3: workspace_roles.r.inherited_role", "no workspace role named 'Nope'"),
        ("workspaces:\n  w:\n    description: no handle\n", "main.yaml:2: workspaces.w.handle", "required field is missing"),
        ("workspace_access:\n  x:\n    workspace_role: Viewer\n    people: []\n", "main.yaml:4: workspace_access.x.people", ""),
    ],
)
def test_bad_input_names_file_line_and_field_and_nothing_is_applied(cloud_workspace, cloud, text, where, says):
    cloud_workspace.write("main.yaml", text)
    assert_refused_writing_nothing(cloud_workspace, cloud, where, says)


def test_import_and_export_round_trip(cloud_workspace, cloud, by_hand, prefix, tmp_path):
    staging = by_hand.post("workspaces/", json={"name": f"{prefix}-staging", "handle": f"{prefix}-staging", "description": "Staging"}).json()
    assert by_hand.post("workspaces/", json={"name": "other", "handle": f"{prefix}-staging"}).status_code == 409
    viewer = named(cloud.workspace_roles, "Viewer")["id"]
    role = by_hand.post("workspace_roles/", json={"name": f"{prefix}-deployer", "scopes": ["run_deployments"],
                                                  "inherited_role_id": viewer}).json()
    team = by_hand.post("teams/", json={"name": f"{prefix}-data"}).json()
    grant = f"{cloud.api_url}/"
    by_hand.post(f"{grant}user_access/", json=[{"workspace_role_id": role["id"], "user_id": cloud.member(ADA)["user_id"]}]).raise_for_status()
    by_hand.put(f"{grant}team_access/", json=[{"workspace_role_id": role["id"], "team_id": team["id"]}]).raise_for_status()

    out = tmp_path / "exported"
    assert_ok(cloud_workspace.run("export", "--kinds", "workspaces,workspace_roles,workspace_access", "--out", str(out)))
    exported = {}
    for path in sorted(out.glob("*.yaml")):
        for kind, objects in (yaml.safe_load(path.read_text()) or {}).items():
            exported.setdefault(kind, {}).update(objects)
    assert exported["workspaces"][f"{prefix}-staging"] == {"handle": f"{prefix}-staging", "description": "Staging"}
    assert exported["workspace_roles"] == {f"{prefix}-deployer": {"scopes": ["run_deployments"], "inherited_role": "Viewer"}}
    assert exported["workspace_access"] == {f"{prefix}-deployer": {"workspace_role": f"{prefix}-deployer", "users": [ADA],
                                                                   "teams": [f"{prefix}-data"]}}

    for path in out.glob("*.yaml"):
        shutil.copy(path, cloud_workspace.directory / path.name)
    assert "already exist" in assert_ok(cloud_workspace.plan(), 1).stderr
    ids = {f"workspaces.{name}": ws["id"] for ws in cloud.workspaces.values() for name in exported["workspaces"] if ws["name"] == name}
    ids |= {f"workspace_roles.{prefix}-deployer": role["id"], f"workspace_access.{prefix}-deployer": f"{prefix}-deployer"}
    if "teams" in exported:
        ids |= {f"teams.{prefix}-data": team["id"]}
    for address, obj_id in ids.items():
        assert_ok(cloud_workspace.run("import", address, obj_id, str(cloud_workspace.directory)))
    assert cloud_workspace.state()["resources"][f"workspaces.{prefix}-staging"]["id"] == staging["id"]
    assert "No changes." in assert_ok(cloud_workspace.plan(), 0).stdout


def test_the_cloud_fake_answers_bad_workspace_requests_as_cloud_does(cloud, by_hand):
    staging = by_hand.post("workspaces/", json={"name": "staging", "handle": "staging"}).json()
    developer = named(cloud.workspace_roles, "Developer")["id"]
    access = f"{cloud.api_url}/"
    cases = [
        (by_hand.post, "workspaces/", {"json": {"name": "again", "handle": "staging"}}, 409),
        (by_hand.post, "workspaces/", {"json": {"name": "no handle"}}, 422),
        (by_hand.patch, f"workspaces/{staging['id']}", {"json": {"handle": "default"}}, 409),
        (by_hand.get, f"workspaces/{cloud.account}", {}, 404),
        (by_hand.post, "workspace_roles/", {"json": {"name": "Developer"}}, 409),
        (by_hand.post, "workspace_roles/", {"json": {"name": "r", "scopes": "all"}}, 422),
        (by_hand.get, f"workspace_roles/{staging['id']}", {}, 404),
        (by_hand.post, f"{access}user_access/", {"json": [{"workspace_role_id": developer, "user_id": staging["id"]}]}, 422),
        (by_hand.post, f"{access}user_access/", {"json": {"workspace_role_id": developer}}, 422),
        (by_hand.delete, f"{access}bot_access/{staging['id']}", {}, 404),
    ]
    for send, url, kwargs, status in cases:
        assert send(url, **kwargs).status_code == status, url
    read_only = {"Authorization": f"Bearer {cloud.read_only_key}"}
    assert httpx.post(f"{by_hand.base_url}workspaces/", json={"name": "w", "handle": "w"}, headers=read_only).status_code == 403
    # A workspace created through the API is served at its own URL.
    assert httpx.post(f"{cloud.root}/api/accounts/{cloud.account}/workspaces/{staging['id']}/user_access/filter", json={},
                      headers={"Authorization": f"Bearer {cloud.api_key}"}).json() == []


def test_against_an_open_source_server_the_plan_is_refused_before_any_request(workspace, prefix, open_source_trap):
    url = open_source_trap.api_url
    workspace.write("main.yaml", "workspaces:" + config(prefix).split("workspaces:", 1)[1])
    for command in (workspace.plan, workspace.apply):
        result = assert_ok(command(env={"PREFECT_API_URL": url}), 1)
        for line, kind, name in ((2, "workspaces", f"{prefix}-staging"), (6, "workspace_roles", f"{prefix}-deployer"),
                                 (11, "workspace_access", "deployers")):
            assert f"main.yaml:{line}: {kind}.{name}: {kind} are a Prefect Cloud feature" in result.stderr, result.stderr
        assert "account_roles are a Prefect Cloud feature" in result.stderr
        assert "Traceback" not in result.output
    assert open_source_trap.seen == [], "no request was sent"
    assert not workspace.state_path.exists()


def test_moved_entries_rename_workspaces_and_roles_in_place(cloud_workspace, cloud, prefix):
    cloud_workspace.write("main.yaml", config(prefix, data=False))
    assert_ok(cloud_workspace.apply())
    staging, role = named(cloud.workspaces, f"{prefix}-staging"), named(cloud.workspace_roles, f"{prefix}-deployer")
    renamed = config(prefix, data=False).replace(f"{prefix}-staging:", f"{prefix}-preprod:").replace(f"{prefix}-deployer", f"{prefix}-shipper")
    cloud_workspace.write("main.yaml", renamed + f"""\
moved:
  - {{from: workspaces.{prefix}-staging, to: workspaces.{prefix}-preprod}}
  - {{from: workspace_roles.{prefix}-deployer, to: workspace_roles.{prefix}-shipper}}
""")
    assert "Plan: 0 to add, 3 to change, 0 to destroy." in assert_ok(cloud_workspace.plan(), 2).stdout
    before = dict(cloud.requests)
    assert_ok(cloud_workspace.apply())
    assert cloud.writes_since(before) == {"PATCH /workspaces/{id}": 1, "PATCH /workspace_roles/{id}": 1,
                                     "POST /user_access/": 1, "POST /bot_access/": 1, "PUT /team_access/": 1}
    assert named(cloud.workspaces, f"{prefix}-preprod")["id"] == staging["id"]
    assert named(cloud.workspace_roles, f"{prefix}-shipper")["id"] == role["id"]
    assert set(grants(cloud).values()) == {f"{prefix}-shipper"}
    assert_ok(cloud_workspace.plan(), 0)
