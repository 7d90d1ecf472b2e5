"""Global concurrency limits against a real server: lifecycle, drift, and the server's own limits."""

from __future__ import annotations

import re

import pytest

from provider.client import Connection, PrefectClient
from resources.concurrency_limits import ConcurrencyLimits
from tests.conftest import assert_ok


def limits_config(prefix: str, *, warehouse: int = 10, with_rate: bool = True) -> str:
    rate = f"  {prefix}-api-rate: {{limit: 5, slot_decay_per_second: 0.5, active: false}}\n" if with_rate else ""
    return f"concurrency_limits:\n  {prefix}-warehouse: {{limit: {warehouse}}}\n{rate}"


def limit(api, name: str) -> dict:
    response = api.get(f"v2/concurrency_limits/{name}")
    response.raise_for_status()
    return response.json()


def test_create_noop_update_in_place_drift_and_delete(workspace, prefix, api):
    workspace.write("limits.yaml", limits_config(prefix))
    assert "Plan: 2 to add, 0 to change, 0 to destroy." in assert_ok(workspace.plan(), 2).stdout
    assert_ok(workspace.apply())
    warehouse = limit(api, f"{prefix}-warehouse")
    assert (warehouse["limit"], warehouse["active"], warehouse["slot_decay_per_second"]) == (10, True, 0.0)
    rate = limit(api, f"{prefix}-api-rate")
    assert (rate["limit"], rate["active"], rate["slot_decay_per_second"]) == (5, False, 0.5)
    assert "No changes." in assert_ok(workspace.plan(), 0).stdout

    workspace.write("limits.yaml", limits_config(prefix, warehouse=20))
    planned = assert_ok(workspace.plan(), 2)
    assert re.search(r"~ limit\s+= 10 -> 20", planned.stdout)
    assert_ok(workspace.apply())
    updated = limit(api, f"{prefix}-warehouse")
    assert (updated["id"], updated["limit"]) == (warehouse["id"], 20), "an update must not re-create the limit"
    assert_ok(workspace.plan(), 0)

    api.patch(f"v2/concurrency_limits/{warehouse['id']}", json={"limit": 3, "active": False}).raise_for_status()
    drifted = assert_ok(workspace.plan(), 2)
    assert "Objects have changed outside of prefect-provider" in drifted.stdout
    assert re.search(r"~ limit\s+= 3 -> 20", drifted.stdout) and re.search(r"~ active\s+= false -> true", drifted.stdout)
    assert_ok(workspace.apply())
    repaired = limit(api, f"{prefix}-warehouse")
    assert (repaired["limit"], repaired["active"]) == (20, True)
    assert_ok(workspace.plan(), 0)

    workspace.write("limits.yaml", limits_config(prefix, warehouse=20, with_rate=False))
    planned = assert_ok(workspace.plan(), 2)
    assert f"# concurrency_limits.{prefix}-api-rate will be destroyed" in planned.stdout
    assert_ok(workspace.apply())
    assert api.get(f"v2/concurrency_limits/{prefix}-api-rate").status_code == 404
    assert limit(api, f"{prefix}-warehouse")["id"] == warehouse["id"]
    assert_ok(workspace.plan(), 0)


def test_slots_in_use_are_not_a_change(workspace, prefix, api):
    workspace.write("limits.yaml", limits_config(prefix, with_rate=False))
    assert_ok(workspace.apply())
    taken = api.post("v2/concurrency_limits/increment", json={"names": [f"{prefix}-warehouse"], "slots": 2, "mode": "concurrency"})
    taken.raise_for_status()
    assert limit(api, f"{prefix}-warehouse")["active_slots"] == 2
    assert_ok(workspace.plan(), 0)


@pytest.mark.parametrize("name", ["tag:etl", "deployment:0b9e6b3a-7d8c-4f7e-9c1d-2a3b4c5d6e7f"])
def test_names_the_server_keeps_cannot_be_declared(name, workspace, prefix):
    workspace.write("limits.yaml", f'concurrency_limits:\n  {prefix}-ok: {{limit: 1}}\n  "{name}": {{limit: 2}}\n')
    for command in (["validate"], ["plan"]):
        result = assert_ok(workspace.run(*command, str(workspace.directory)), 1)
        assert f"limits.yaml:3: concurrency_limits.{name}: invalid name: names starting with 'tag:' or 'deployment:'" in result.stderr


def test_the_servers_tag_limits_are_never_listed(api_url, api, prefix):
    api.post("concurrency_limits/", json={"tag": prefix, "concurrency_limit": 3}).raise_for_status()
    assert limit(api, f"tag:{prefix}")["limit"] == 3, "the server keeps a v2 limit for a tag limit"
    with PrefectClient(Connection(api_url)) as client:
        assert ConcurrencyLimits().list(client, {f"tag:{prefix}"}) == []
