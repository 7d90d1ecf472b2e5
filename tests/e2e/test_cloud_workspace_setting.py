"""`workspace: HANDLE`: one API URL and key serve every workspace of a Cloud account.

An account configuration creates the workspaces; each workspace configuration names its workspace
by handle and keeps its own state, as Terraform root modules do. The loopback Cloud fake serves
every workspace created through it at its own URL and keeps webhooks and access grants per workspace.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests import cloud_fake_workspaces
from tests.conftest import Workspace, assert_ok

ADA = "ada.lovelace@example.com"
TEMPLATE = """'{"event": "alert.raised"}'"""


@pytest.fixture
def directory(cloud_workspace, tmp_path: Path):
    """Another configuration directory (its own state) with the same API URL and key."""

    def make(name: str) -> Workspace:
        path = tmp_path / name
        path.mkdir()
        other = Workspace(path, cloud_workspace.api_url, tmp_path / "prefect-home")
        other.env = dict(cloud_workspace.env)
        return other

    return make


def account_config(prefix: str) -> str:
    return f"""\
workspaces:
  {prefix}-staging: {{handle: {prefix}-staging}}
  {prefix}-prod: {{handle: {prefix}-prod}}
"""


def workspace_config(handle: str) -> str:
    return f"""\
workspace: {handle}
webhooks:
  alerts: {{template: {TEMPLATE}}}
workspace_access:
  developers: {{workspace_role: Developer, users: [{ADA}]}}
"""


def workspace_id(cloud, handle: str) -> str:
    [found] = [w["id"] for w in cloud.workspaces.values() if w["handle"] == handle]
    return found


def sent(cloud, before: dict) -> dict[str, int]:
    return {route: n - before.get(route, 0) for route, n in cloud.requests.items() if n != before.get(route, 0)}


@pytest.fixture
def two_workspaces(cloud_workspace, cloud, directory, prefix):
    """The account configuration applied, and a configuration for each of its two workspaces."""
    cloud_workspace.write("main.yaml", account_config(prefix))
    assert_ok(cloud_workspace.apply())
    staging, prod = directory("staging"), directory("production")
    staging.write("main.yaml", workspace_config(f"{prefix}-staging"))
    prod.write("main.yaml", workspace_config(f"{prefix}-prod"))
    return staging, prod


def test_each_configuration_works_in_the_workspace_it_names(two_workspaces, cloud, prefix):
    staging, prod = two_workspaces
    ids = {"staging": workspace_id(cloud, f"{prefix}-staging"), "prod": workspace_id(cloud, f"{prefix}-prod")}

    for name, config in (("staging", staging), ("prod", prod)):
        planned = assert_ok(config.plan(), 2)
        assert f"Note: workspace '{prefix}-{name}' ({cloud.root}/api/accounts/{cloud.account}/workspaces/{ids[name]})" in planned.stdout
        assert "Plan: 2 to add" in planned.stdout
        assert_ok(config.apply())
        assert config.state()["workspace"] == ids[name], "the state records the workspace it was applied to"

    hooks = sorted((h["name"], h["workspace"]) for h in cloud.webhooks.values())
    assert hooks == sorted([("alerts", ids["staging"]), ("alerts", ids["prod"])]), "one webhook of the name in each workspace"
    [ada] = [m["user_id"] for m in cloud.members.values() if m["email"] == ADA]
    granted = sorted(a["workspace_id"] for a in cloud.workspace_access.values() if a["user_id"] == ada)
    assert granted == sorted(ids.values()), "the access grants too landed in each configuration's workspace"
    assert staging.state()["resources"]["webhooks.alerts"]["id"] != prod.state()["resources"]["webhooks.alerts"]["id"]

    for config in (staging, prod):
        assert "No changes." in assert_ok(config.plan(), 0).stdout
        assert "No changes." in assert_ok(config.run("drift", str(config.directory)), 0).stdout

    # Commands on one managed object go to its workspace too.
    slugs = {h["workspace"]: h["slug"] for h in cloud.webhooks.values()}
    assert_ok(staging.run("webhooks", "rotate", "alerts", str(staging.directory), "--auto-approve"))
    rotated = {h["workspace"]: h["slug"] for h in cloud.webhooks.values()}
    assert rotated[ids["staging"]] != slugs[ids["staging"]] and rotated[ids["prod"]] == slugs[ids["prod"]]


def test_a_state_applied_to_one_workspace_is_refused_in_another(two_workspaces, cloud, prefix):
    staging, _ = two_workspaces
    assert_ok(staging.apply())
    staging_id, prod_id = workspace_id(cloud, f"{prefix}-staging"), workspace_id(cloud, f"{prefix}-prod")
    hooks = dict(cloud.webhooks)

    staging.write("main.yaml", workspace_config(f"{prefix}-prod"))
    for command in (staging.plan, staging.apply):
        result = assert_ok(command(), 1)
        assert f"manages the objects of Cloud workspace {staging_id}, and `workspace: {prefix}-prod` (" in result.stderr
        assert f"resolves to workspace {prod_id}" in result.stderr
        assert "Traceback" not in result.output

    # The same configuration without `workspace:`, pointed at another workspace by its URL alone.
    staging.write("main.yaml", workspace_config(f"{prefix}-staging").split("\n", 1)[1])
    result = assert_ok(staging.plan(), 1)
    assert f"the API URL points into workspace {cloud.workspace}" in result.stderr
    assert cloud.webhooks == hooks, "nothing was created or deleted"
    assert staging.state()["workspace"] == staging_id


def test_import_adopts_into_the_named_workspace(two_workspaces, cloud, prefix):
    staging, _ = two_workspaces
    staging_id = workspace_id(cloud, f"{prefix}-staging")
    headers = {"Authorization": f"Bearer {cloud.api_key}"}
    url = f"{cloud.root}/api/accounts/{cloud.account}/workspaces/{staging_id}/webhooks/"
    made = httpx.post(url, json={"name": "alerts", "template": '{"event": "alert.raised"}'}, headers=headers).json()

    result = assert_ok(staging.run("import", "webhooks.alerts", made["id"], str(staging.directory)))
    assert f"id {made['id']}" in result.stdout
    assert staging.state()["workspace"] == staging_id
    assert "Plan: 1 to add, 0 to change" in assert_ok(staging.plan(), 2).stdout, "only the access grant is left to add"


def test_an_unknown_handle_names_the_account_s_workspaces_after_one_request(cloud_workspace, cloud, prefix):
    cloud_workspace.write("main.yaml", f"variables:\n  {prefix}-v: {{value: 1}}\nworkspace: {prefix}-nowhere\n")
    before = dict(cloud.requests)
    result = assert_ok(cloud_workspace.plan(), 1)
    assert (f"main.yaml:3: workspace: the account of {cloud.api_url} has no workspace with handle "
            f"'{prefix}-nowhere' (its workspaces: default)") in result.stderr
    assert sent(cloud, before) == {"POST /workspaces/filter": 1}
    assert not cloud_workspace.state_path.exists()


def test_a_workspace_declared_in_the_same_configuration_must_exist_first(cloud_workspace, cloud, prefix):
    cloud_workspace.write("main.yaml", f"workspace: {prefix}-new\nworkspaces:\n  {prefix}-new: {{handle: {prefix}-new}}\n")
    cloud_fake_workspaces.install(cloud)
    for command in (cloud_workspace.plan, cloud_workspace.apply):
        result = assert_ok(command(), 1)
        assert f"main.yaml:1: workspace: workspace '{prefix}-new' is declared in this configuration (" in result.stderr
        assert "main.yaml:3) but does not exist yet" in result.stderr
        assert "apply that first" in result.stderr
    assert [w["handle"] for w in cloud.workspaces.values()] == ["default"], "nothing was created"


def test_against_an_open_source_server_it_is_refused_before_any_request(workspace, open_source_trap):
    url = open_source_trap.api_url
    workspace.write("main.yaml", "variables:\n  v: {value: 1}\nworkspace: staging\n")
    for command in (workspace.plan, workspace.apply):
        result = assert_ok(command(env={"PREFECT_API_URL": url}), 1)
        assert (f"main.yaml:3: workspace: workspace settings are a Prefect Cloud feature, and {url} is not a "
                "Prefect Cloud workspace") in result.stderr
    assert open_source_trap.seen == [], "no request was sent"
    assert not workspace.state_path.exists()


@pytest.mark.parametrize(
    ("files", "error"),
    [
        ({"a.yaml": "workspace: staging\n", "b.yaml": "variables: {}\nworkspace: prod\n"},
         "b.yaml:2: workspace: workspace is configured twice; first at "),
        ({"a.yaml": "workspace: [staging]\n"}, "a.yaml:1: workspace: expected a workspace handle"),
        ({"a.yaml": "workspace: ''\n"}, "a.yaml:1: workspace: expected a workspace handle"),
    ],
)
def test_a_bad_setting_names_file_and_line(workspace, files, error):
    for name, text in files.items():
        workspace.write(name, text)
    result = assert_ok(workspace.run("validate", str(workspace.directory)), 1)
    assert error in result.stderr
    assert "Traceback" not in result.output



def test_export_writes_a_configuration_of_the_named_workspace(two_workspaces, cloud, tmp_path, prefix):
    staging, _ = two_workspaces
    assert_ok(staging.apply())
    staging_id = workspace_id(cloud, f"{prefix}-staging")
    [hook] = [h["id"] for h in cloud.webhooks.values() if h["workspace"] == staging_id]

    def export(handle: str) -> Workspace:
        out = Workspace(tmp_path / f"export-{handle}", staging.api_url, tmp_path / "prefect-home")
        out.env = dict(staging.env)
        assert_ok(out.run("export", "--kinds", "webhooks", "--workspace", handle, "--out", str(out.directory)))
        return out

    assert not (export(f"{prefix}-prod").directory / "webhooks.yaml").exists(), "production has no webhook"
    exported = export(f"{prefix}-staging")
    assert (exported.directory / "workspace.yaml").read_text() == f'workspace: "{prefix}-staging"\n'
    assert "alerts:" in (exported.directory / "webhooks.yaml").read_text()
    state = exported.state()
    assert (state["workspace"], state["resources"]["webhooks.alerts"]["id"]) == (staging_id, hook)
    assert "No changes." in assert_ok(exported.plan(), 0).stdout
