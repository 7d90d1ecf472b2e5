"""Identity is the id in state: an object that took a managed name is someone else's. Also: import
needs a declared address, lifecycle.prevent_destroy outlives its block, and fields the server fills
in when left unset never diff."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import assert_ok


@dataclass
class Family:
    """One kind, as a test drives it by hand: its configuration, and the API calls that delete the
    managed object and make another one with its name."""

    kind: str
    config: Callable[[str], str]
    name: Callable[[str], str]
    delete: Callable[[httpx.Client, str], None]
    create_theirs: Callable[[httpx.Client, str], str]  # returns its id
    read: Callable[[httpx.Client, str], dict[str, Any]]
    # The configuration without the object; None: drop it with `destroy` (nothing else is declared).
    without: Callable[[str], str] | None = None


def _ok(response: httpx.Response) -> Any:
    response.raise_for_status()
    return response.json() if response.content else None


UNIQUE_FAMILIES = [
    Family(
        "variables",
        lambda p: f"variables:\n  {p}_v: {{value: ours}}\n",
        lambda p: f"{p}_v",
        lambda api, n: _ok(api.delete(f"variables/name/{n}")),
        lambda api, n: _ok(api.post("variables/", json={"name": n, "value": "theirs"}))["id"],
        lambda api, n: _ok(api.get(f"variables/name/{n}")),
    ),
    Family(
        "work_pools",
        lambda p: f"work_pools:\n  {p}-pool: {{type: process, description: ours}}\n",
        lambda p: f"{p}-pool",
        lambda api, n: _ok(api.delete(f"work_pools/{n}")),
        lambda api, n: _ok(api.post("work_pools/", json={"name": n, "type": "process", "description": "theirs"}))["id"],
        lambda api, n: _ok(api.get(f"work_pools/{n}")),
    ),
    Family(
        "work_queues",
        lambda p: f"work_pools:\n  {p}-qpool:\n    type: process\n    queues:\n      q: {{description: ours}}\n",
        lambda p: f"{p}-qpool/q",
        lambda api, n: _ok(api.delete(f"work_pools/{n.split('/')[0]}/queues/q")),
        lambda api, n: _ok(api.post(f"work_pools/{n.split('/')[0]}/queues", json={"name": "q", "description": "theirs"}))["id"],
        lambda api, n: _ok(api.get(f"work_pools/{n.split('/')[0]}/queues/q")),
        # Destroying the pool would delete every queue in it: the queue's block is removed instead.
        lambda p: f"work_pools:\n  {p}-qpool: {{type: process}}\n",
    ),
    Family(
        "concurrency_limits",
        lambda p: f"concurrency_limits:\n  {p}-limit: {{limit: 3}}\n",
        lambda p: f"{p}-limit",
        lambda api, n: _ok(api.delete(f"v2/concurrency_limits/{n}")),
        lambda api, n: _ok(api.post("v2/concurrency_limits/", json={"name": n, "limit": 9}))["id"],
        lambda api, n: _ok(api.get(f"v2/concurrency_limits/{n}")),
    ),
]


@pytest.mark.parametrize("family", UNIQUE_FAMILIES, ids=lambda f: f.kind)
def test_an_object_that_took_a_managed_name_is_never_adopted_overwritten_or_deleted(workspace, prefix, api, family):
    workspace.write("main.yaml", family.config(prefix))
    assert_ok(workspace.apply())
    name = family.name(prefix)
    address = f"{family.kind}.{name}"
    ours = workspace.state()["resources"][address]["id"]
    family.delete(api, name)
    theirs = family.create_theirs(api, name)
    before = family.read(api, name)

    for command in (workspace.plan, workspace.apply):
        refused = assert_ok(command(), 1)
        assert f"{address}: name {name!r}, id in state {ours}, id on the server {theirs}" in refused.stderr
        assert "will not adopt, overwrite or delete it" in refused.stderr
        assert "state rm" in refused.stderr and "import" in refused.stderr
    drift = assert_ok(workspace.run("drift", str(workspace.directory)), 2)
    assert f"another object (id {theirs}) now has the name" in drift.stdout
    assert family.read(api, name) == before

    # Deletes act on recorded ids only: the record is forgotten, the other object stays.
    if family.without is None:
        removed = assert_ok(workspace.run("destroy", str(workspace.directory), "--auto-approve"))
    else:
        workspace.write("main.yaml", family.without(prefix))
        removed = assert_ok(workspace.apply())
    assert f"(id {theirs}) is another one: left alone" in removed.stdout
    assert family.read(api, name) == before
    assert address not in workspace.state()["resources"]


def test_deliberate_takeover_state_rm_then_import(workspace, prefix, api):
    family = UNIQUE_FAMILIES[0]
    workspace.write("main.yaml", family.config(prefix))
    assert_ok(workspace.apply())
    name = family.name(prefix)
    family.delete(api, name)
    theirs = family.create_theirs(api, name)
    assert_ok(workspace.run("state", "rm", f"variables.{name}", str(workspace.directory)))
    assert_ok(workspace.run("import", f"variables.{name}", theirs, str(workspace.directory)))
    planned = assert_ok(workspace.plan(), 2)
    assert '~ value = "theirs" -> "ours"' in planned.stdout
    assert_ok(workspace.apply())
    assert family.read(api, name)["value"] == "ours" and family.read(api, name)["id"] == theirs


def automations_named(api: httpx.Client, name: str) -> list[dict[str, Any]]:
    return _ok(api.post("automations/filter", json={"automations": {"name": {"any_": [name]}}}))


def test_an_automation_that_took_a_managed_name_is_left_alone(workspace, prefix, api):
    name = f"{prefix}-auto"
    workspace.write("main.yaml", f"""\
automations:
  {name}:
    trigger: {{type: event, expect: [ours.happened]}}
    actions: [{{type: do-nothing}}]
""")
    assert_ok(workspace.apply())
    ours = workspace.state()["resources"][f"automations.{name}"]["id"]
    _ok(api.delete(f"automations/{ours}"))
    body = {"name": name, "trigger": {"type": "event", "posture": "Reactive", "expect": ["theirs.happened"]},
            "actions": [{"type": "do-nothing"}]}
    theirs = _ok(api.post("automations/", json=body))
    planned = assert_ok(workspace.plan(), 2)
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in planned.stdout
    assert f"other objects named {name!r} on the server (ids {theirs['id']}) are not managed" in planned.stdout

    assert_ok(workspace.apply())
    remade = workspace.state()["resources"][f"automations.{name}"]["id"]
    assert {a["id"] for a in automations_named(api, name)} == {theirs["id"], remade}
    assert _ok(api.get(f"automations/{theirs['id']}"))["trigger"]["expect"] == ["theirs.happened"]
    assert_ok(workspace.plan(), 0)

    assert_ok(workspace.run("destroy", str(workspace.directory), "--auto-approve"))
    assert [a["id"] for a in automations_named(api, name)] == [theirs["id"]]


# --- import needs a declared address -------------------------------------------------------------


def test_import_of_an_undeclared_address_is_refused(workspace, prefix, api):
    workspace.write("main.yaml", f"variables:\n  {prefix}_declared: {{value: 1}}\n")
    theirs = _ok(api.post("variables/", json={"name": f"{prefix}_loose", "value": "x"}))
    result = assert_ok(workspace.run("import", f"variables.{prefix}_loose", theirs["id"], str(workspace.directory)), 1)
    assert f"variables.{prefix}_loose is not declared in {workspace.directory}" in result.stderr
    assert f"add `variables: {{{prefix}_loose: ...}}`" in result.stderr and "prefect-provider export" in result.stderr
    assert "Traceback" not in result.output
    assert not workspace.state_path.exists()
    assert _ok(api.get(f"variables/name/{prefix}_loose"))["value"] == "x"


# --- prevent_destroy outlives its block ----------------------------------------------------------


def guarded(prefix: str, guard: str | None) -> str:
    lifecycle = f"\n    lifecycle: {{prevent_destroy: {guard}}}" if guard else ""
    return f"""\
variables:
  {prefix}_keep:
    value: precious{lifecycle}
  {prefix}_other: {{value: 1}}
"""


def test_prevent_destroy_is_remembered_after_the_block_is_removed(workspace, prefix, api):
    address = f"variables.{prefix}_keep"
    workspace.write("main.yaml", guarded(prefix, "true"))
    assert_ok(workspace.apply())
    assert workspace.state()["resources"][address]["prevent_destroy"] is True

    workspace.write("main.yaml", f"variables:\n  {prefix}_other: {{value: 1}}\n")
    for command in (workspace.plan, workspace.apply, lambda: workspace.run("destroy", str(workspace.directory), "--auto-approve")):
        refused = assert_ok(command(), 1)
        assert f"{address}: " in refused.stderr
        assert "prevent_destroy: false" in refused.stderr and "apply first" in refused.stderr
    assert _ok(api.get(f"variables/name/{prefix}_keep"))["value"] == "precious"

    # Lifting the guard is an apply of its own (a state-only change), then removal works.
    workspace.write("main.yaml", guarded(prefix, "false"))
    lifted = assert_ok(workspace.plan(), 2)
    assert "lifecycle.prevent_destroy lifted: recorded in state" in lifted.stdout
    assert_ok(workspace.apply())
    assert workspace.state()["resources"][address]["prevent_destroy"] is False
    workspace.write("main.yaml", f"variables:\n  {prefix}_other: {{value: 1}}\n")
    assert_ok(workspace.apply())
    assert api.get(f"variables/name/{prefix}_keep").status_code == 404


def test_a_guard_set_on_a_managed_object_is_recorded_and_old_state_files_load(workspace, prefix, api):
    workspace.write("main.yaml", guarded(prefix, None))
    assert_ok(workspace.apply())
    # A state file written before the field existed.
    state = workspace.state()
    for record in state["resources"].values():
        record.pop("prevent_destroy")
    workspace.state_path.write_text(json.dumps(state))
    assert_ok(workspace.plan(), 0)

    workspace.write("main.yaml", guarded(prefix, "true"))
    planned = assert_ok(workspace.plan(), 2)
    assert "lifecycle.prevent_destroy set: recorded in state" in planned.stdout
    assert_ok(workspace.apply())
    assert workspace.state()["resources"][f"variables.{prefix}_keep"]["prevent_destroy"] is True
    assert_ok(workspace.plan(), 0)


# --- server-filled fields ------------------------------------------------------------------------


def test_the_terraform_providers_work_queue_example_converges(workspace, prefix, api):
    # PrefectHQ/terraform-provider-prefect examples/resources/prefect_work_queue/resource.tf, in our
    # YAML: a kubernetes pool, and a queue without a priority (the server assigns one).
    workspace.write("main.yaml", f"""\
work_pools:
  {prefix}-my-work-pool:
    type: kubernetes
    paused: false
    queues:
      my-work-queue:
        description: My work queue
        concurrency_limit: 2
""")
    planned = assert_ok(workspace.plan(), 2)
    assert "priority" in planned.stdout and "(known after apply)" in planned.stdout
    assert_ok(workspace.apply())
    queue = _ok(api.get(f"work_pools/{prefix}-my-work-pool/queues/my-work-queue"))
    assert queue["priority"] == 2  # after the pool's default queue
    assert workspace.state()["resources"][f"work_queues.{prefix}-my-work-pool/my-work-queue"]["attributes"]["priority"] == 2
    assert_ok(workspace.plan(), 0)
    assert_ok(workspace.run("drift", str(workspace.directory)), 0)

    # A declared priority is still enforced.
    _ok(api.patch(f"work_pools/{prefix}-my-work-pool/queues/my-work-queue", json={"priority": 7}))
    assert_ok(workspace.plan(), 0)  # unset: whatever the server has
    workspace.write("main.yaml", f"""\
work_pools:
  {prefix}-my-work-pool:
    type: kubernetes
    queues:
      my-work-queue: {{description: My work queue, concurrency_limit: 2, priority: 3}}
""")
    assert "~ priority = 7 -> 3" in assert_ok(workspace.plan(), 2).stdout
    assert_ok(workspace.apply())
    assert _ok(api.get(f"work_pools/{prefix}-my-work-pool/queues/my-work-queue"))["priority"] == 3
    assert_ok(workspace.plan(), 0)
