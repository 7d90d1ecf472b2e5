"""Prefect Cloud: workspace URLs with an API key, webhooks, and Cloud-only features refused elsewhere.

Cloud's own routes (webhooks) come from a loopback fake in Cloud's shapes (tests/cloud_fake.py);
everything else the workspace URL serves is forwarded to the real open-source server.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import httpx
import pytest

from tests.cloud_fake import named
from tests.conftest import all_objects, assert_ok

JINJA = '{"event": "model.refreshed", "resource": {"prefect.resource.id": "models.{{ body.model }}"}}'


@pytest.fixture
def by_hand(cloud) -> Iterator[httpx.Client]:
    """Changes made outside prefect-provider, as from the Cloud UI."""
    headers = {"Authorization": f"Bearer {cloud.api_key}"}
    with httpx.Client(base_url=cloud.api_url + "/", headers=headers, timeout=30) as client:
        yield client


def webhooks_config(prefix: str, *, with_mapping: bool = True, enabled: bool = True) -> str:
    mapping = f"""\
  {prefix}-orders:
    description: Orders from the shop
    template:
      event: shop.order.placed
      resource: {{prefect.resource.id: "shop.order.{{{{ body.id }}}}"}}
""" if with_mapping else ""
    return f"""\
webhooks:
  {prefix}-models:
    template: '{JINJA}'
    enabled: {str(enabled).lower()}
{mapping}"""


def test_webhooks_are_created_with_endpoints_and_plan_clean(cloud_workspace, cloud, prefix):
    cloud_workspace.write("main.yaml", webhooks_config(prefix))
    planned = assert_ok(cloud_workspace.plan(), 2)
    assert "+ endpoint    = (known after apply)" in planned.stdout
    assert "Plan: 2 to add, 0 to change, 0 to destroy." in planned.stdout
    as_json = assert_ok(cloud_workspace.run("plan", str(cloud_workspace.directory), "--json")).json()
    change = as_json["resource_changes"][0]["change"]
    assert change["after_unknown"] == {"endpoint": True} and "endpoint" not in change["after"]

    applied = assert_ok(cloud_workspace.apply())
    models, orders = named(cloud.webhooks, f"{prefix}-models"), named(cloud.webhooks, f"{prefix}-orders")
    assert models["template"] == JINJA, "the Jinja template is sent verbatim"
    assert models["enabled"] is True and models["description"] == ""
    assert json.loads(orders["template"]) == {"event": "shop.order.placed",
                                              "resource": {"prefect.resource.id": "shop.order.{{ body.id }}"}}
    endpoint = f"{cloud.root}/hooks/{models['slug']}"
    assert "Outputs:" in applied.stdout
    assert f'webhooks.{prefix}-models.endpoint = "{endpoint}"' in applied.stdout

    shown = json.loads(assert_ok(cloud_workspace.run("state", "show", f"webhooks.{prefix}-models", str(cloud_workspace.directory))).stdout)
    assert shown["id"] == models["id"] and shown["attributes"]["endpoint"] == endpoint

    assert "No changes." in assert_ok(cloud_workspace.plan(), 0).stdout
    writes = sum(n for route, n in cloud.requests.items() if not route.startswith(("GET", "POST /webhooks/filter")))
    assert_ok(cloud_workspace.apply())
    assert sum(n for route, n in cloud.requests.items() if not route.startswith(("GET", "POST /webhooks/filter"))) == writes


def test_webhook_disabled_or_edited_by_hand_is_drift_and_apply_repairs_it(cloud_workspace, cloud, by_hand, prefix):
    cloud_workspace.write("main.yaml", webhooks_config(prefix, with_mapping=False))
    assert_ok(cloud_workspace.apply())
    hook_id = named(cloud.webhooks, f"{prefix}-models")["id"]

    by_hand.patch(f"webhooks/{hook_id}", json={"enabled": False}).raise_for_status()
    drifted = assert_ok(cloud_workspace.plan(), 2)
    assert "Objects have changed outside of prefect-provider" in drifted.stdout
    assert "~ enabled = false -> true" in drifted.stdout
    assert_ok(cloud_workspace.run("drift", str(cloud_workspace.directory)), 2)
    assert_ok(cloud_workspace.apply())
    assert named(cloud.webhooks, f"{prefix}-models")["enabled"] is True
    assert cloud.requests["PATCH /webhooks/{id}"] == 2, "enabling alone is a PATCH"

    edited = {k: named(cloud.webhooks, f"{prefix}-models")[k] for k in ("name", "description", "enabled", "service_account_id")}
    by_hand.put(f"webhooks/{hook_id}", json={**edited, "template": '{"event": "edited.by.hand"}'}).raise_for_status()
    drifted = assert_ok(cloud_workspace.plan(), 2)
    assert "changed outside prefect-provider: template" in drifted.stdout
    assert_ok(cloud_workspace.apply())
    assert named(cloud.webhooks, f"{prefix}-models")["template"] == JINJA
    assert named(cloud.webhooks, f"{prefix}-models")["id"] == hook_id
    assert_ok(cloud_workspace.plan(), 0)

    cloud_workspace.write("main.yaml", webhooks_config(prefix, with_mapping=False, enabled=False))
    assert_ok(cloud_workspace.apply())
    assert named(cloud.webhooks, f"{prefix}-models")["enabled"] is False
    assert_ok(cloud_workspace.plan(), 0)


def test_rotate_gives_a_new_endpoint_and_plans_clean(cloud_workspace, cloud, prefix):
    cloud_workspace.write("main.yaml", webhooks_config(prefix, with_mapping=False))
    assert_ok(cloud_workspace.apply())
    old_slug = named(cloud.webhooks, f"{prefix}-models")["slug"]

    refused = assert_ok(cloud_workspace.run("webhooks", "rotate", f"{prefix}-models", str(cloud_workspace.directory)), 1)
    assert "--auto-approve" in refused.stderr
    assert named(cloud.webhooks, f"{prefix}-models")["slug"] == old_slug

    rotated = assert_ok(cloud_workspace.run("webhooks", "rotate", f"{prefix}-models", str(cloud_workspace.directory), "--auto-approve"))
    new_slug = named(cloud.webhooks, f"{prefix}-models")["slug"]
    assert new_slug != old_slug
    assert f"{cloud.root}/hooks/{new_slug}" in rotated.stdout
    assert cloud_workspace.state()["resources"][f"webhooks.{prefix}-models"]["attributes"]["endpoint"].endswith(new_slug)
    assert_ok(cloud_workspace.plan(), 0)

    missing = assert_ok(cloud_workspace.run("webhooks", "rotate", "nope", str(cloud_workspace.directory), "--auto-approve"), 1)
    assert "webhooks.nope is not in state" in missing.stderr


def test_webhook_removed_from_configuration_is_deleted(cloud_workspace, cloud, prefix):
    cloud_workspace.write("main.yaml", webhooks_config(prefix))
    assert_ok(cloud_workspace.apply())
    cloud_workspace.write("main.yaml", webhooks_config(prefix, with_mapping=False))
    planned = assert_ok(cloud_workspace.plan(), 2)
    assert f"# webhooks.{prefix}-orders will be destroyed" in planned.stdout
    assert_ok(cloud_workspace.apply())
    assert [h["name"] for h in cloud.webhooks.values()] == [f"{prefix}-models"]
    assert f"webhooks.{prefix}-orders" not in cloud_workspace.state()["resources"]

    assert_ok(cloud_workspace.run("destroy", str(cloud_workspace.directory), "--auto-approve"))
    assert cloud.webhooks == {}


def test_an_existing_webhook_must_be_imported_and_then_plans_clean(cloud_workspace, cloud, by_hand, prefix):
    made = by_hand.post("webhooks/", json={"name": f"{prefix}-models", "template": JINJA}).json()
    cloud_workspace.write("main.yaml", webhooks_config(prefix, with_mapping=False))
    # Webhook names may repeat: an unmanaged namesake is left alone (noted), never refused or adopted.
    noted = assert_ok(cloud_workspace.plan(), 2)
    assert f"webhooks.{prefix}-models: other objects named '{prefix}-models' on the server (ids {made['id']})" in noted.stdout
    assert_ok(cloud_workspace.run("import", f"webhooks.{prefix}-models", made["id"], str(cloud_workspace.directory)))
    recorded = cloud_workspace.state()["resources"][f"webhooks.{prefix}-models"]
    assert recorded["attributes"]["endpoint"] == f"{cloud.root}/hooks/{made['slug']}"
    assert_ok(cloud_workspace.plan(), 0)


def test_exported_webhooks_plan_clean(cloud_workspace, cloud, prefix):
    cloud_workspace.write("main.yaml", webhooks_config(prefix))
    assert_ok(cloud_workspace.apply())
    out = cloud_workspace.directory.parent / "exported"
    assert_ok(cloud_workspace.run("export", "--kinds", "webhooks", "--out", str(out)))
    assert "endpoint" not in (out / "webhooks.yaml").read_text(), "server-filled attributes are not configuration"
    assert_ok(cloud_workspace.run("plan", str(out), "--detailed-exitcode"), 0)


def test_a_refused_api_key_is_a_clear_error_without_the_key(cloud_workspace, cloud, prefix):
    cloud_workspace.write("main.yaml", webhooks_config(prefix))
    wrong = f"pnu_{secrets.token_hex(12)}"
    for command in (cloud_workspace.plan, cloud_workspace.apply):
        result = assert_ok(command(env={"PREFECT_API_KEY": wrong}), 1)
        assert "401 Unauthorized" in result.stderr and "the API key was refused" in result.stderr
        assert cloud.api_url in result.stderr and "PREFECT_API_KEY" in result.stderr
        assert wrong not in result.output and "Traceback" not in result.output
    assert cloud.webhooks == {} and not cloud_workspace.state_path.exists()


def test_a_key_without_permission_is_a_clear_error(cloud_workspace, cloud, prefix):
    cloud_workspace.write("main.yaml", webhooks_config(prefix, with_mapping=False))
    result = assert_ok(cloud_workspace.apply(env={"PREFECT_API_KEY": cloud.read_only_key}), 1)
    assert "403 Forbidden" in result.stderr and "lack permission" in result.stderr
    assert f"POST {cloud.api_url}/webhooks/" in result.stderr
    assert cloud.read_only_key not in result.output and "Traceback" not in result.output
    assert cloud.webhooks == {}


def test_the_api_key_can_come_from_the_active_profile(cloud_workspace, cloud, prefix):
    home = cloud_workspace.env["PREFECT_HOME"]
    with open(f"{home}/profiles.toml", "w") as profiles:
        profiles.write(f'active = "cloud"\n[profiles.cloud]\nPREFECT_API_URL = "{cloud.api_url}"\n'
                       f'PREFECT_API_KEY = "{cloud.api_key}"\n')
    cloud_workspace.write("main.yaml", webhooks_config(prefix, with_mapping=False))
    assert_ok(cloud_workspace.apply(env={"PREFECT_API_URL": "", "PREFECT_API_KEY": ""}))
    assert named(cloud.webhooks, f"{prefix}-models")["template"] == JINJA


def test_other_kinds_work_through_the_workspace_url(cloud_workspace, cloud, api, prefix):
    cloud_workspace.write(
        "main.yaml",
        f"""\
work_pools:
  {prefix}-pool:
    type: process
    concurrency_limit: 3
    queues:
      high: {{priority: 1}}
variables:
  {prefix}_branch: {{value: main, tags: [git]}}
""",
    )
    assert_ok(cloud_workspace.apply())
    assert api.get(f"work_pools/{prefix}-pool").json()["concurrency_limit"] == 3
    assert api.get(f"work_pools/{prefix}-pool/queues/high").json()["priority"] == 1
    assert api.get(f"variables/name/{prefix}_branch").json()["value"] == "main"
    assert cloud.requests["POST /work_pools/"] == 1 and cloud.requests["POST /variables/"] == 1
    assert_ok(cloud_workspace.plan(), 0)

    api.patch(f"variables/name/{prefix}_branch", json={"value": "hotfix"}).raise_for_status()
    assert '~ value = "hotfix" -> "main"' in assert_ok(cloud_workspace.plan(), 2).stdout
    assert_ok(cloud_workspace.apply())
    assert api.get(f"variables/name/{prefix}_branch").json()["value"] == "main"


def test_a_webhook_against_an_open_source_server_is_refused_before_any_write(workspace, api, prefix):
    workspace.write("vars.yaml", f"variables:\n  {prefix}_first: {{value: 1}}\n")
    workspace.write("main.yaml", webhooks_config(prefix, with_mapping=False))
    for command in (workspace.plan, workspace.apply):
        result = assert_ok(command(), 1)
        assert (f"main.yaml:2: webhooks.{prefix}-models: webhooks are a Prefect Cloud feature, "
                f"and {workspace.api_url} is not a Prefect Cloud workspace") in result.stderr
        assert "Traceback" not in result.output
    assert not workspace.state_path.exists()
    assert [v for v in all_objects(api, "variables/filter") if v["name"].startswith(prefix)] == []


def test_cloud_only_automation_features_are_refused_by_the_open_source_server(workspace, api, prefix):
    workspace.write(
        "main.yaml",
        f"""\
automations:
  {prefix}-incident:
    trigger: {{type: event, expect: [prefect.flow-run.Failed]}}
    actions:
      - {{type: do-nothing}}
      - {{type: declare-incident}}
""",
    )
    assert_ok(workspace.run("validate", str(workspace.directory)))
    result = assert_ok(workspace.apply(), 1)
    assert f"main.yaml:6: automations.{prefix}-incident.actions[1]: declare-incident actions are a Prefect Cloud feature" in result.stderr
    assert not workspace.state_path.exists()
    assert [a for a in all_objects(api, "automations/filter") if a["name"].startswith(prefix)] == []


def test_webhooks_in_state_are_refused_against_an_open_source_server(cloud_workspace, cloud, prefix):
    cloud_workspace.write("main.yaml", webhooks_config(prefix, with_mapping=False))
    assert_ok(cloud_workspace.apply())
    oss = {"PREFECT_API_URL": cloud_workspace.api_url, "PREFECT_API_KEY": ""}
    result = assert_ok(cloud_workspace.run("destroy", str(cloud_workspace.directory), "--auto-approve", env=oss), 1)
    assert f"the state manages webhooks.{prefix}-models: webhooks are a Prefect Cloud feature" in result.stderr
    assert len(cloud.webhooks) == 1
