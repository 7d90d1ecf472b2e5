"""The Pulumi dynamic providers (provider/pulumi.py) against the real Prefect server.

Each kind's provider is called the way Pulumi's provider process calls it: deserialized with dill
first, then check, create, read, diff, update and delete, with the results checked on the server.
The example program runs under Pulumi's mocks, with the mock engine of tests/pulumi_harness.py, so
its resources really land on the server. Only the Pulumi CLI cannot run here.
"""

from __future__ import annotations

import base64
import json
import runpy
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dill
import httpx
import pulumi
import pytest
from pulumi.dynamic import Config, ConfigureRequest
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import rpc

from provider.errors import ProviderError
from provider.pulumi import PROVIDERS, RESOURCES, KindProvider
from resources import KINDS
from tests.cloud_fake import CloudFake
from tests.pulumi_harness import Engine, Monitor, mocked_pulumi

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pulumi"
UNKNOWN = rpc.UNKNOWN  # what a preview passes for an input that is not known yet

# The smallest valid inputs of each kind, for the checks every provider must pass.
MINIMAL = {
    "work_pools": {"name": "pool", "type": "process"},
    "work_queues": {"work_pool": "pool", "name": "queue"},
    "variables": {"name": "branch", "value": "main"},
    "block_types": {"slug": "acme-db", "name": "Acme DB", "schema": {"fields": {"properties": {}}}},
    "blocks": {"block_type_slug": "secret", "name": "token", "data": {"value": "x"}},
    "deployments": {"flow_name": "etl", "name": "nightly"},
    "automations": {"name": "noop", "trigger": {"type": "event", "expect": ["x"]}, "actions": [{"type": "do-nothing"}]},
    "webhooks": {"name": "hook", "template": "{}"},
    "concurrency_limits": {"name": "warehouse", "limit": 1},
    "flows": {"name": "etl", "tags": ["warehouse"]},
    "task_run_concurrency_limits": {"tag": "database", "concurrency_limit": 1},
    "service_accounts": {"name": "ci"},
    "teams": {"name": "data"},
    "workspaces": {"name": "staging", "handle": "staging"},
    "workspace_roles": {"name": "deployer", "scopes": ["run_deployments"]},
    "workspace_access": {"name": "developers", "workspace_role": "Developer", "users": ["ada.lovelace@example.com"]},
    "object_access": {"name": "work_pools.pool", "view": {"everyone": True}},
    "resource_slas": {"flow_name": "etl", "deployment_name": "nightly", "slas": [{"name": "slow", "duration": 600}]},
    "user_api_keys": {"name": "laptop", "user": "ada.lovelace@example.com"},
    "accounts": {"handle": "acme", "settings": {"ai_log_summaries": True}},
}


@pytest.fixture(autouse=True)
def connection(api_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The API as a Pulumi user without stack config has it: PREFECT_API_URL, no profile, no key."""
    monkeypatch.setenv("PREFECT_API_URL", api_url)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    monkeypatch.delenv("PREFECT_API_KEY", raising=False)
    monkeypatch.delenv("PREFECT_PROFILE", raising=False)


def loaded(kind: str) -> KindProvider:
    """The kind's provider after the trip every provider makes: dill.dumps in the program, dill.loads
    in Pulumi's provider process."""
    return dill.loads(dill.dumps(PROVIDERS[kind]()))


def create(provider: KindProvider, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    assert provider.check({}, inputs).failures == []
    created = provider.create(inputs)
    return created.id, created.outs


def failures(kind: str, inputs: dict[str, Any]) -> dict[str, str]:
    return {f.property: f.reason for f in loaded(kind).check({}, inputs).failures}


# --- every kind ---------------------------------------------------------------------------------


def test_every_kind_has_a_resource_and_a_provider_that_survive_pulumis_serialization():
    import provider.pulumi as module

    assert set(PROVIDERS) == set(RESOURCES) == {k for k, kind in KINDS.items() if kind.declarable} == set(MINIMAL)
    names = {"WorkPool", "WorkQueue", "Deployment", "Block", "Variable", "Automation", "Webhook", "ConcurrencyLimit"}
    for name in names:
        resource, provider = getattr(module, name), getattr(module, f"{name}Provider")
        assert RESOURCES[resource.kind_name] is resource and resource.provider_class is provider
        assert resource._resource_type_name == f"dynamic/prefect:{name}"
    for kind, provider_class in PROVIDERS.items():
        # Exactly what pulumi.dynamic.Resource stores in the state, and what its provider process loads.
        blob = serialize_provider(provider_class())
        restored = dill.loads(base64.b64decode(blob))
        assert type(restored) is provider_class, "pickled by reference: no copy of the code in the state"
        assert len(blob) < 200
        assert restored.check({}, MINIMAL[kind]).failures == []
        assert loaded(kind).check({}, {}).failures, f"{kind}: an empty input must fail"


# --- check --------------------------------------------------------------------------------------


def test_check_reports_every_problem_by_property():
    assert failures("work_pools", {"name": "p", "concurency_limit": 3, "queues": {"high": {"priority": "first"}}}) == {
        "type": "required field is missing",
        "concurency_limit": "unknown field",
        "queues.high.priority": "Input should be a valid integer, unable to parse string as an integer",
    }
    assert "reserved by Prefect" in failures("work_pools", {"name": "prefect-pool", "type": "process"})["name"]
    assert "resource options" in failures("work_pools", {"name": "p", "type": "process", "lifecycle": {}})["lifecycle"]
    assert failures("work_pools", {"name": "p", "type": "ecs:push", "provision_infra": {"provider": "aws", "region": "us-east-1"}}) == {}
    assert list(failures("work_pools", {"name": "p", "type": "ecs:push", "provision_infra": {"region": "us-east-1"}})) == [
        "provision_infra"]
    assert failures("variables", {"name": "v", "value": 1, "adopt": "yes"}) == {"adopt": "must be true or false"}
    assert failures("work_queues", {"name": "high", "priority": 0}) == {
        "work_pool": "required field is missing",
        "priority": "Input should be greater than 0",
    }
    assert "lowercase" in failures("variables", {"name": "Bad Name", "value": 1})["name"]
    assert failures("deployments", {"flow_name": "etl", "name": "a/b"}) == {"name": "must not contain /"}
    assert "flow name" in failures("deployments", {"flow_name": "etl%", "name": "n"})["flow_name/name"]
    schedule = failures("deployments", {"flow_name": "etl", "name": "n", "schedules": [{"cron": "0 2 * * *"}]})
    assert "has no slug" in schedule["schedules[0]"]
    assert "$ref" in failures("blocks", {"block_type_slug": "secret", "name": "t", "data": {"value": {"$ref": 1}}})["data"]
    action = failures("automations", {"name": "a", "trigger": {"type": "event"}, "actions": [{"type": "pause-work-pool"}]})
    assert "work_pool is required" in action["actions[0]"]
    assert failures("concurrency_limits", {"name": "w", "limit": -1}) == {"limit": "Input should be greater than or equal to 0"}
    assert failures("variables", {"name": 7, "value": 1}) == {"name": "must be a string"}


def test_inputs_not_known_yet_are_not_judged_in_a_preview():
    assert failures("work_queues", {"work_pool": UNKNOWN, "name": "high", "priority": 1}) == {}
    assert failures("work_pools", {"name": "p", "type": "process", "base_job_template": UNKNOWN}) == {}
    assert failures("automations", {"name": "a", "trigger": {"type": "event"},
                                    "actions": [{"type": "run-deployment", "deployment": UNKNOWN}]}) == {}
    assert failures("work_pools", {"name": "p", "type": UNKNOWN, "paused": "sometimes"}) == {
        "paused": "Input should be a valid boolean, unable to interpret input"
    }
    diff = loaded("work_queues").diff("some-id", {"work_pool": "old", "name": "high"}, {"work_pool": UNKNOWN, "name": "high"})
    assert diff.changes and diff.replaces == ["work_pool"]
    assert not diff.delete_before_replace, "the replacement has another name: it is created first"


# --- each kind against the server -----------------------------------------------------------------


def test_work_pool_with_inline_queues(api: httpx.Client, prefix: str):
    provider = loaded("work_pools")
    name = f"{prefix}-pool"
    # Declared out of order: the server shifts taken priorities, so only ascending writes keep them.
    queues = {"low": {"priority": 10}, "high": {"priority": 2}, "critical": {"priority": 1, "concurrency_limit": 1}}
    inputs = {"name": name, "type": "process", "description": "ETL", "concurrency_limit": 5, "queues": queues}
    pool_id, outs = create(provider, inputs)

    pool = api.get(f"work_pools/{name}").json()
    assert pool_id == pool["id"] and pool["description"] == "ETL" and pool["concurrency_limit"] == 5
    assert outs["attributes"]["base_job_template"] == pool["base_job_template"] != {}, "the server's default, as output"
    live_queues = {q["name"]: q for q in api.post(f"work_pools/{name}/queues/filter", json={}).json()}
    assert {q: live_queues[q]["priority"] for q in queues} == {"low": 10, "critical": 1, "high": 2}
    assert outs["children"][f"work_queues.{name}/high"] == {
        "id": live_queues["high"]["id"],
        "attributes": {"priority": 2, "concurrency_limit": None, "description": None, "paused": False},
    }
    assert outs["name"] == name and outs["queues"] == queues

    read = provider.read(pool_id, outs)
    assert read.id == pool_id and read.outs == outs
    assert provider.diff(pool_id, outs, inputs).changes is False

    changed = {**inputs, "description": "ETL v2", "queues": {"critical": queues["critical"], "high": {"priority": 2, "paused": True},
                                                            "backfill": {"priority": 20}}}
    diff = provider.diff(pool_id, outs, changed)
    assert diff.changes is True and diff.replaces == []
    outs = provider.update(pool_id, outs, changed).outs
    live_queues = {q["name"]: q for q in api.post(f"work_pools/{name}/queues/filter", json={}).json()}
    assert api.get(f"work_pools/{name}").json()["description"] == "ETL v2"
    assert set(live_queues) == {"default", "critical", "high", "backfill"}, "low is gone, backfill came"
    assert live_queues["high"]["is_paused"] is True and live_queues["backfill"]["priority"] == 20
    assert set(outs["children"]) == {f"work_queues.{name}/{q}" for q in ("critical", "high", "backfill")}
    assert provider.diff(pool_id, outs, changed).changes is False

    api.patch(f"work_pools/{name}", json={"concurrency_limit": 50}).raise_for_status()  # drift
    refreshed = provider.read(pool_id, outs).outs
    assert refreshed["attributes"]["concurrency_limit"] == 50
    assert provider.diff(pool_id, refreshed, changed).changes is True

    replaced = provider.diff(pool_id, outs, {**changed, "type": "docker"})
    assert replaced.replaces == ["type"] and replaced.delete_before_replace is True
    assert provider.diff(pool_id, outs, {**changed, "name": f"{prefix}-other"}).replaces == ["name"]

    provider.delete(pool_id, outs)
    assert api.get(f"work_pools/{name}").status_code == 404
    assert provider.read(pool_id, outs).id == "", "gone: Pulumi drops it from the stack"


def test_standalone_work_queue_and_the_default_queue(api: httpx.Client, prefix: str):
    pool = f"{prefix}-pool"
    pool_id, pool_outs = create(loaded("work_pools"), {"name": pool, "type": "process"})
    provider = loaded("work_queues")
    inputs = {"work_pool": pool, "name": "backfill", "priority": 3, "paused": True, "description": "Backfills"}
    queue_id, outs = create(provider, inputs)
    queue = api.get(f"work_pools/{pool}/queues/backfill").json()
    assert queue["id"] == queue_id and queue["priority"] == 3 and queue["is_paused"] is True
    assert outs["attributes"] == {"priority": 3, "concurrency_limit": None, "description": "Backfills", "paused": True}

    changed = {**inputs, "priority": 7, "paused": False}
    outs = provider.update(queue_id, outs, changed).outs
    queue = api.get(f"work_pools/{pool}/queues/backfill").json()
    assert (queue["priority"], queue["is_paused"]) == (7, False)
    assert provider.diff(queue_id, outs, changed).changes is False

    default_id, default_outs = create(provider, {"work_pool": pool, "name": "default", "concurrency_limit": 2})
    assert default_id == api.get(f"work_pools/{pool}/queues/default").json()["id"], "the server's own queue, adopted"
    provider.delete(default_id, default_outs)
    assert api.get(f"work_pools/{pool}/queues/default").status_code == 200, "belongs to the server: never deleted"

    renamed = {**changed, "name": "backfills"}
    assert provider.diff(queue_id, outs, renamed).replaces == [], "renamed in place, within its pool"
    assert provider.diff(queue_id, outs, {**changed, "work_pool": f"{prefix}-other"}).replaces == ["work_pool"]
    outs = provider.update(queue_id, outs, renamed).outs
    assert api.get(f"work_pools/{pool}/queues/backfills").json()["id"] == queue_id
    assert provider.diff(queue_id, outs, renamed).changes is False

    provider.delete(queue_id, outs)
    assert api.get(f"work_pools/{pool}/queues/backfills").status_code == 404

    with pytest.raises(ProviderError, match=rf"refers to work_pools.{prefix}-nope: no such object on the server"):
        provider.create({"work_pool": f"{prefix}-nope", "name": "high"})
    loaded("work_pools").delete(pool_id, pool_outs)


def test_variable_drift_update_and_an_existing_name(api: httpx.Client, prefix: str):
    provider = loaded("variables")
    name = f"{prefix}_branch"
    inputs = {"name": name, "value": {"branch": "main", "depth": 1}, "tags": ["git", "ci"]}
    var_id, outs = create(provider, inputs)
    assert api.get(f"variables/name/{name}").json()["value"] == {"branch": "main", "depth": 1}
    assert outs["attributes"] == {"value": {"branch": "main", "depth": 1}, "tags": ["ci", "git"]}
    assert provider.diff(var_id, outs, {**inputs, "tags": ["ci", "git"]}).changes is False, "tags are a set"

    api.patch(f"variables/name/{name}", json={"value": "edited by hand"}).raise_for_status()
    refreshed = provider.read(var_id, outs).outs
    assert refreshed["attributes"]["value"] == "edited by hand"
    assert provider.diff(var_id, refreshed, inputs).changes is True
    outs = provider.update(var_id, refreshed, inputs).outs
    assert api.get(f"variables/name/{name}").json()["value"] == {"branch": "main", "depth": 1}

    provider.delete(var_id, outs)
    assert api.get(f"variables/name/{name}").status_code == 404


def test_an_object_deleted_outside_pulumi_leaves_the_stack_on_refresh(api: httpx.Client, prefix: str):
    provider = loaded("variables")
    inputs = {"name": f"{prefix}_gone", "value": 1}
    var_id, outs = create(provider, inputs)
    api.delete(f"variables/name/{prefix}_gone").raise_for_status()
    assert provider.diff(var_id, outs, inputs).changes is True
    with pytest.raises(ProviderError, match=r"was deleted outside Pulumi: run `pulumi refresh`"):
        provider.update(var_id, outs, {**inputs, "value": 2})
    assert api.get(f"variables/name/{prefix}_gone").status_code == 404, "not made again behind Pulumi's back"
    assert provider.read(var_id, outs).id == "", "gone: Pulumi drops it from the stack"


def test_an_existing_object_is_refused_unless_adopted(api: httpx.Client, prefix: str):
    """Pulumi's import cannot adopt into a dynamic provider (pulumi/pulumi#16175): `adopt=True` does."""
    name = f"{prefix}_existing"
    var_id = api.post("variables/", json={"name": name, "value": "made by hand", "tags": ["hand"]}).json()["id"]
    provider = loaded("variables")
    inputs = {"name": name, "value": "managed", "tags": ["pulumi"]}
    with pytest.raises(ProviderError, match=rf"variables.{name} \(id {var_id}\) already exists on the server: set adopt=True"):
        provider.create(inputs)
    assert api.get(f"variables/name/{name}").json()["value"] == "made by hand", "nothing was written"

    adopted_id, outs = create(provider, {**inputs, "adopt": True})
    assert adopted_id == var_id, "the same object, not a new one"
    live = api.get(f"variables/name/{name}").json()
    assert (live["value"], live["tags"]) == ("managed", ["pulumi"]), "made to match the inputs"
    assert outs["state"]["resources"][f"variables.{name}"]["id"] == var_id
    assert provider.diff(var_id, outs, {**inputs, "adopt": True}).changes is False
    provider.delete(var_id, outs)
    assert api.get(f"variables/name/{name}").status_code == 404


def test_a_pool_adopted_with_its_queues(api: httpx.Client, prefix: str):
    pool = f"{prefix}-adopted"
    api.post("work_pools/", json={"name": pool, "type": "process", "description": "by hand"}).raise_for_status()
    queue_id = api.post(f"work_pools/{pool}/queues", json={"name": "high", "priority": 3}).json()["id"]
    provider = loaded("work_pools")
    inputs = {"name": pool, "type": "process", "description": "managed", "queues": {"high": {"priority": 1}}, "adopt": True}
    pool_id, outs = create(provider, inputs)
    assert api.get(f"work_pools/{pool}").json()["description"] == "managed"
    assert outs["children"][f"work_queues.{pool}/high"]["id"] == queue_id
    assert api.get(f"work_pools/{pool}/queues/high").json()["priority"] == 1
    provider.delete(pool_id, outs)
    assert api.get(f"work_pools/{pool}").status_code == 404


def test_block_secrets_never_reach_outputs(api: httpx.Client, prefix: str):
    provider = loaded("blocks")
    secret, rotated = f"first-{secrets.token_hex(8)}", f"second-{secrets.token_hex(8)}"
    inputs = {"block_type_slug": "secret", "name": f"{prefix}-token", "data": {"value": secret}}
    block_id, outs = create(provider, inputs)
    document = api.get(f"block_documents/{block_id}", params={"include_secrets": True}).json()
    assert document["data"]["value"] == secret
    assert secret not in repr(outs)
    assert outs["data"]["value"].startswith("fingerprint:") and outs["attributes"]["data"]["value"].startswith("fingerprint:")

    assert provider.diff(block_id, outs, inputs).changes is False
    assert provider.diff(block_id, outs, {**inputs, "data": {"value": rotated}}).changes is True, "a changed secret is a change"
    outs = provider.update(block_id, outs, {**inputs, "data": {"value": rotated}}).outs
    assert api.get(f"block_documents/{block_id}", params={"include_secrets": True}).json()["data"]["value"] == rotated
    read = provider.read(block_id, outs)
    assert rotated not in repr(outs) and rotated not in repr(read.outs) and read.outs == outs

    with pytest.raises(ProviderError, match="data.bogus: unknown field of block type secret"):
        provider.create({**inputs, "name": f"{prefix}-other", "data": {"value": "x", "bogus": 1}})
    provider.delete(block_id, outs)
    assert api.get(f"block_documents/{block_id}").status_code == 404


def test_deployment_with_a_schedule_and_a_trigger_refers_to_its_pool(api: httpx.Client, prefix: str):
    pool = f"{prefix}-pool"
    pool_id, pool_outs = create(loaded("work_pools"), {"name": pool, "type": "process", "queues": {"high": {"priority": 1}}})
    provider = loaded("deployments")
    flow = f"{prefix}-etl"
    trigger = {"name": f"{prefix}-after-upstream", "expect": ["prefect.flow-run.Completed"],
               "match": {"prefect.resource.name": "upstream"}}
    inputs = {
        "flow_name": flow, "name": "nightly", "entrypoint": "flows/etl.py:etl", "work_pool": pool, "work_queue": "high",
        "parameters": {"full_refresh": False},
        "schedules": [{"slug": "nightly", "cron": "0 2 * * *", "timezone": "America/Chicago"}],
        "triggers": [trigger],
    }
    deployment_id, outs = create(provider, inputs)
    deployment = api.get(f"deployments/{deployment_id}").json()
    assert (deployment["work_pool_name"], deployment["work_queue_name"]) == (pool, "high")
    assert deployment["schedules"][0]["schedule"]["cron"] == "0 2 * * *"
    assert outs["attributes"]["work_pool"] == pool and outs["attributes"]["schedules"]["nightly"]["cron"] == "0 2 * * *"
    [automation] = api.post("automations/filter", json={"automations": {"name": {"any_": [trigger["name"]]}}}).json()
    assert automation["actions"][0]["deployment_id"] == deployment_id, "the trigger runs this deployment"
    assert outs["children"][f"automations.{trigger['name']}"]["id"] == automation["id"]
    assert provider.diff(deployment_id, outs, inputs).changes is False

    changed = {**inputs, "parameters": {"full_refresh": True},
               "schedules": [{"slug": "nightly", "cron": "0 3 * * *", "timezone": "America/Chicago"}]}
    assert provider.diff(deployment_id, outs, changed).changes is True
    outs = provider.update(deployment_id, outs, changed).outs
    deployment = api.get(f"deployments/{deployment_id}").json()
    assert deployment["parameters"] == {"full_refresh": True} and deployment["schedules"][0]["schedule"]["cron"] == "0 3 * * *"
    assert provider.read(deployment_id, outs).outs == outs

    provider.delete(deployment_id, outs)
    assert api.get(f"deployments/{deployment_id}").status_code == 404
    assert api.get(f"automations/{automation['id']}").status_code == 404, "its trigger goes with it"

    with pytest.raises(ProviderError, match=rf"refers to work_pools.{prefix}-nope"):
        provider.create({**inputs, "name": "orphan", "work_pool": f"{prefix}-nope", "triggers": []})
    flows = api.post("deployments/filter", json={"deployments": {"name": {"any_": ["orphan"]}}}).json()
    assert flows == [], "nothing is written when a reference is missing"
    loaded("work_pools").delete(pool_id, pool_outs)


def test_automation_names_the_deployment_it_runs(api: httpx.Client, prefix: str):
    flow = f"{prefix}-etl"
    deployment_id, deployment_outs = create(loaded("deployments"), {"flow_name": flow, "name": "nightly"})
    provider = loaded("automations")
    inputs = {
        "name": f"{prefix}-rerun",
        "trigger": {"type": "event", "expect": ["prefect.flow-run.Failed"], "threshold": 1},
        "actions": [{"type": "run-deployment", "deployment": f"{flow}/nightly", "parameters": {"retry": True}}],
    }
    automation_id, outs = create(provider, inputs)
    automation = api.get(f"automations/{automation_id}").json()
    assert automation["actions"][0]["deployment_id"] == deployment_id
    assert outs["attributes"]["actions"][0]["deployment"] == f"{flow}/nightly", "ids are shown as names"
    assert provider.diff(automation_id, outs, inputs).changes is False

    changed = {**inputs, "enabled": False, "description": "paused for the migration"}
    outs = provider.update(automation_id, outs, changed).outs
    automation = api.get(f"automations/{automation_id}").json()
    assert automation["enabled"] is False and automation["description"] == "paused for the migration"
    assert provider.diff(automation_id, outs, changed).changes is False

    renamed = {**changed, "name": f"{prefix}-rerun-failed"}
    assert provider.diff(automation_id, outs, renamed).replaces == [], "the server renames automations in place"
    outs = provider.update(automation_id, outs, renamed).outs
    assert api.get(f"automations/{automation_id}").json()["name"] == f"{prefix}-rerun-failed"

    provider.delete(automation_id, outs)
    assert api.get(f"automations/{automation_id}").status_code == 404
    loaded("deployments").delete(deployment_id, deployment_outs)


def test_concurrency_limit(api: httpx.Client, prefix: str):
    provider = loaded("concurrency_limits")
    inputs = {"name": f"{prefix}-warehouse", "limit": 5}
    limit_id, outs = create(provider, inputs)
    assert api.get(f"v2/concurrency_limits/{limit_id}").json()["limit"] == 5
    assert outs["attributes"] == {"limit": 5, "active": True, "slot_decay_per_second": 0.0}
    changed = {**inputs, "limit": 7, "active": False}
    outs = provider.update(limit_id, outs, changed).outs
    live = api.get(f"v2/concurrency_limits/{limit_id}").json()
    assert (live["limit"], live["active"]) == (7, False)
    assert provider.diff(limit_id, outs, changed).changes is False
    provider.delete(limit_id, outs)
    assert api.get(f"v2/concurrency_limits/{limit_id}").status_code == 404


# --- connection ---------------------------------------------------------------------------------


def test_webhook_through_the_stack_config_on_prefect_cloud(api_url: str, prefix: str):
    provider = loaded("webhooks")
    inputs = {"name": f"{prefix}-orders", "template": {"event": "shop.order.placed"}}
    with pytest.raises(ProviderError, match="webhooks are a Prefect Cloud feature"):
        provider.create(inputs)  # PREFECT_API_URL is the open-source server

    with CloudFake(api_url, api_key=f"pnu_{secrets.token_hex(12)}", read_only_key="pnu_unused") as cloud:
        # What Pulumi's provider process does after loading the provider: hand it the stack's config.
        config = {"prefect:apiUrl": cloud.api_url, "prefect:apiKey": cloud.api_key}
        provider.configure(ConfigureRequest(Config(config, "prefect-workspace")))
        hook_id, outs = create(provider, inputs)
        [hook] = cloud.webhooks.values()
        assert hook["id"] == hook_id and hook["template"] == '{"event": "shop.order.placed"}'
        assert outs["attributes"]["endpoint"] == f"{cloud.root}/hooks/{hook['slug']}", "server-filled, as output"
        assert provider.diff(hook_id, outs, inputs).changes is False
        # Webhook names are not unique: the replacement is made before the old one goes.
        replaced = provider.diff(hook_id, outs, {**inputs, "service_account_id": "7d8d4a9b-7c0e-4d4b-9a43-0d4f1c1c7d10"})
        assert replaced.replaces == ["service_account_id"] and replaced.delete_before_replace is False
        outs = provider.update(hook_id, outs, {**inputs, "enabled": False}).outs
        assert cloud.webhooks[hook_id]["enabled"] is False and outs["attributes"]["enabled"] is False
        provider.delete(hook_id, outs)
        assert cloud.webhooks == {}


def test_no_api_configured_names_the_pulumi_setting(monkeypatch: pytest.MonkeyPatch, prefix: str):
    monkeypatch.delenv("PREFECT_API_URL")
    with pytest.raises(ProviderError, match="pulumi config set prefect:apiUrl"):
        loaded("variables").create({"name": f"{prefix}_x", "value": 1})


# --- a program --------------------------------------------------------------------------------------


@pytest.fixture
def engine(api_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Engine, Monitor, str]]:
    """Pulumi's runtime on mocks for stack PREFIX, the API given as stack config (no environment)."""
    monkeypatch.delenv("PREFECT_API_URL")
    token = f"ghp_{secrets.token_hex(10)}"
    config = {"prefect:apiUrl": api_url, "prefect-workspace:repoToken": token}
    with mocked_pulumi("prefect-workspace", prefix, config, ["prefect-workspace:repoToken"]) as (mocks, monitor):
        try:
            yield mocks, monitor, token
        finally:
            for _, provider, obj_id, outputs in reversed(mocks.created):
                provider.delete(obj_id, outputs)


def test_the_example_program_creates_its_resources_through_the_providers(engine, api: httpx.Client, prefix: str):
    mocks, monitor, token = engine
    program = runpy.run_path(str(EXAMPLE / "__main__.py"))
    pool, backfill, block, branch, nightly = (program[n] for n in ("pool", "backfill", "repo_token", "branch", "nightly"))

    @pulumi.runtime.test
    def outputs():
        values = [pool.id, pool.name, pool.children, nightly.id, nightly.attributes, block.data, block.attributes,
                  branch.attributes, backfill.attributes]
        return pulumi.Output.all(*values).apply(lambda resolved: resolved_values.extend(resolved))

    resolved_values: list[Any] = []
    outputs()
    pool_id, pool_name, children, nightly_id, nightly_attributes, block_data, block_attributes, variable, queue = resolved_values

    assert sorted(typ for typ, *_ in mocks.created) == sorted(
        f"pulumi-python:dynamic/prefect:{kind}" for kind in ("WorkPool", "WorkQueue", "Block", "Variable", "Deployment")
    )
    # The pool and its queues, on the server.
    assert pool_name == f"etl-{prefix}" and api.get(f"work_pools/{pool_name}").json()["id"] == pool_id
    live_queues = {q["name"]: q for q in api.post(f"work_pools/{pool_name}/queues/filter", json={}).json()}
    assert {q: live_queues[q]["priority"] for q in ("critical", "high", "low", "backfill")} == {
        "critical": 1, "high": 5, "low": 10, "backfill": 20}
    assert children[f"work_queues.{pool_name}/critical"]["id"] == live_queues["critical"]["id"]
    assert queue["paused"] is True and mocks.inputs["backfill-queue"]["work_pool"] == pool_name

    # The deployment got the pool's name from the pool's output, and runs on its queue.
    deployment = api.get(f"deployments/{nightly_id}").json()
    assert (deployment["work_pool_name"], deployment["work_queue_name"]) == (pool_name, "high")
    assert nightly_attributes["schedules"]["nightly"]["timezone"] == "America/Chicago"
    git_clone = deployment["pull_steps"][0]["prefect.deployments.steps.git_clone"]
    assert git_clone["access_token"] == "{{ prefect.blocks.secret.repo-token-" + prefix + " }}"
    assert api.get(f"variables/name/deployment_branch_{prefix}").json()["value"] == "main" and variable["tags"] == ["git"]

    # The block: its data a secret input and output; the token on the server only.
    assert monitor.secret_outputs["repo-token"] == ["data", "attributes", "children", "state"]
    assert monitor.secret_outputs["etl-pool"] == ["state"], "a pool holds no secrets; its state is secret all the same"
    assert pulumi.runtime.sync_await._sync_await(block.data.is_secret()) is True
    assert token not in repr(block_data) and token not in repr(block_attributes)
    assert block_data["value"].startswith("fingerprint:")
    [document] = api.post("block_documents/filter", json={
        "block_documents": {"name": {"any_": [f"repo-token-{prefix}"]}}, "include_secrets": True}).json()
    assert document["data"]["value"] == token


def test_a_queue_priority_left_to_the_server_never_diffs(api: httpx.Client, prefix: str):
    # The Terraform provider's work-queue example: no priority, so the server picks one.
    provider = loaded("work_pools")
    inputs = {"name": f"{prefix}-pool", "type": "kubernetes", "queues": {"my-work-queue": {"description": "My work queue",
                                                                                           "concurrency_limit": 2}}}
    pool_id, outs = create(provider, inputs)
    assert api.get(f"work_pools/{prefix}-pool/queues/my-work-queue").json()["priority"] == 2
    assert provider.diff(pool_id, outs, inputs).changes is False
    pinned = {**inputs, "queues": {"my-work-queue": {**inputs["queues"]["my-work-queue"], "priority": 5}}}
    assert provider.diff(pool_id, outs, pinned).changes is True
    outs = provider.update(pool_id, outs, pinned).outs
    assert api.get(f"work_pools/{prefix}-pool/queues/my-work-queue").json()["priority"] == 5
    assert provider.diff(pool_id, outs, pinned).changes is False


def test_a_resource_made_by_an_earlier_release_without_a_state_output(api: httpx.Client, prefix: str):
    """Outputs had only `attributes` and `children` before: the state is made from them."""
    provider = loaded("work_pools")
    name = f"{prefix}-legacy"
    inputs = {"name": name, "type": "process", "queues": {"high": {"priority": 1}}}
    pool_id, outs = create(provider, inputs)
    legacy = {key: value for key, value in outs.items() if key != "state"}
    assert provider.diff(pool_id, legacy, inputs).changes is False
    outs = provider.update(pool_id, legacy, {**inputs, "description": "now with a state"}).outs
    assert api.get(f"work_pools/{name}").json()["description"] == "now with a state"
    assert set(outs["state"]["resources"]) == {f"work_pools.{name}", f"work_queues.{name}/high"}
    provider.delete(pool_id, {key: value for key, value in outs.items() if key != "state"})
    assert api.get(f"work_pools/{name}").status_code == 404


# --- replacement order ------------------------------------------------------------------------------


def test_replacements_follow_create_before_destroy_unless_the_name_is_taken(api: httpx.Client, prefix: str):
    provider = loaded("work_pools")
    name = f"{prefix}-pool"
    inputs = {"name": name, "type": "process", "queues": {"high": {"priority": 1}}}
    pool_id, outs = create(provider, inputs)

    same_name = provider.diff(pool_id, outs, {**inputs, "type": "docker"})
    assert same_name.replaces == ["type"] and same_name.delete_before_replace is True, "pool names are unique"

    renamed = {**inputs, "name": f"{prefix}-pool2"}
    new_name = provider.diff(pool_id, outs, renamed)
    assert new_name.replaces == ["name"] and new_name.delete_before_replace is False
    # What Pulumi then does: create the replacement, then delete the old object.
    new_id, new_outs = create(provider, renamed)
    assert api.get(f"work_pools/{prefix}-pool2/queues/high").status_code == 200
    assert api.get(f"work_pools/{name}").json()["id"] == pool_id, "the old pool still there while the new one comes"
    provider.delete(pool_id, outs)
    assert api.get(f"work_pools/{name}").status_code == 404 and api.get(f"work_pools/{prefix}-pool2").json()["id"] == new_id
    provider.delete(new_id, new_outs)


def test_a_renamed_variable_is_moved_not_replaced(api: httpx.Client, prefix: str):
    provider = loaded("variables")
    inputs = {"name": f"{prefix}_old", "value": 1}
    var_id, outs = create(provider, inputs)
    renamed = {**inputs, "name": f"{prefix}_new"}
    diff = provider.diff(var_id, outs, renamed)
    assert diff.changes is True and diff.replaces == []
    outs = provider.update(var_id, outs, renamed).outs
    assert api.get(f"variables/name/{prefix}_new").json()["id"] == var_id, "renamed in place: the same id"
    assert list(outs["state"]["resources"]) == [f"variables.{prefix}_new"]
    assert provider.diff(var_id, outs, renamed).changes is False
    provider.delete(var_id, outs)


# --- provision_infra (a nested kind) on the real moto server -------------------------------------


def test_a_pool_with_provision_infra_creates_and_destroys_its_cloud_side(api: httpx.Client, prefix: str, aws_env,
                                                                         monkeypatch: pytest.MonkeyPatch):
    import boto3

    for key, value in aws_env.items():
        monkeypatch.setenv(key, value)
    ecs = boto3.client("ecs", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    iam = boto3.client("iam", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    pool = f"{prefix}-ecs"
    provider = loaded("work_pools")
    inputs = {"name": pool, "type": "ecs:push", "queues": {"high": {"priority": 1}},
              "provision_infra": {"provider": "aws", "region": "us-east-1", "use_default_vpc": False}}
    pool_id, outs = create(provider, inputs)

    [cluster] = ecs.describe_clusters(clusters=[f"prefect-{pool}"])["clusters"]
    assert cluster["status"] == "ACTIVE"
    template = api.get(f"work_pools/{pool}").json()["base_job_template"]["variables"]["properties"]
    assert template["cluster"]["default"] == cluster["clusterArn"], "the pool's template takes the cluster"
    parts = {address.rsplit(".", 1)[1] for address in outs["children"] if ".infra." in address}
    assert {"ecs_cluster", "vpc", "execution_role", "iam_user", "aws_credentials"} <= parts
    block = api.get(f"block_types/slug/aws-credentials/block_documents/name/{pool}-aws-credentials",
                    params={"include_secrets": True}).json()
    secret_key = block["data"]["aws_secret_access_key"]
    assert secret_key and secret_key not in json.dumps(outs), "the worker's key is on the server only"
    assert provider.diff(pool_id, outs, inputs).changes is False

    provider.delete(pool_id, outs)
    assert api.get(f"work_pools/{pool}").status_code == 404
    assert [c for c in ecs.describe_clusters(clusters=[f"prefect-{pool}"])["clusters"] if c["status"] == "ACTIVE"] == []
    assert f"prefect-{pool}-ecs-execution" not in [r["RoleName"] for r in iam.list_roles()["Roles"]]
    assert f"prefect-{pool}-ecs-worker" not in [u["UserName"] for u in iam.list_users()["Users"]]
