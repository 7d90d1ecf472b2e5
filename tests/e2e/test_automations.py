"""Automations against a real server: every trigger type, actions naming other resources, drift,
validation errors with file and line, cycles, and names the server holds twice.

Trigger round trips are data-driven: one case file per scenario in tests/cases/automations/, with
the configuration to apply and a part of each automation as the API must return it (`__P__`
stands for the test's unique name prefix).
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from provider.client import Connection, PrefectClient
from provider.errors import PlanError
from resources import CATALOG
from resources.automations import Automations, automation_from_api, automation_payload, name_schedules, schedule_id_of
from resources.base import ApplyContext, LiveObject, ServerDefaults
from tests.cloud_fake import CloudFake
from tests.conftest import assert_ok
from tests.fault_proxy import FaultProxy

CASES = sorted((Path(__file__).parent.parent / "cases" / "automations").glob("*.yaml"))


def automations_named(api, *names: str) -> list[dict[str, Any]]:
    return api.post("automations/filter", json={"automations": {"name": {"any_": list(names)}}}).json()


def automation(api, name: str) -> dict[str, Any]:
    found = automations_named(api, name)
    assert len(found) == 1, f"{len(found)} automations named {name!r}"
    return found[0]


def mismatches(actual: Any, expected: Any, path: str = "") -> list[str]:
    """Where `actual` differs from `expected`; mappings in `expected` may leave keys out."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return [m for key, value in expected.items() for m in mismatches(actual.get(key), value, f"{path}.{key}")]
    if isinstance(expected, list) and isinstance(actual, list) and len(actual) == len(expected):
        return [m for i, (a, e) in enumerate(zip(actual, expected)) for m in mismatches(a, e, f"{path}[{i}]")]
    return [] if actual == expected else [f"{path}: {actual!r} != {expected!r}"]


def state_id(workspace, address: str) -> str:
    return workspace.state()["resources"][address]["id"]


# --- every trigger type round-trips ---------------------------------------------------------------


@pytest.mark.parametrize("case_file", CASES, ids=[c.stem for c in CASES])
def test_trigger_round_trips_with_an_empty_second_plan(case_file, workspace, prefix, api):
    case = YAML(typ="safe").load(case_file.read_text())
    workspace.write("main.yaml", case["config"].replace("__P__", prefix))
    assert_ok(workspace.plan(), 2)
    assert_ok(workspace.apply())
    names = [name.replace("__P__", prefix) for name in case["server"]]
    for name, expected in zip(names, case["server"].values()):
        live = automation(api, name)
        assert not mismatches(live, expected), mismatches(live, expected)
    assert "No changes." in assert_ok(workspace.plan(), 0).stdout

    # Destroyed, not left behind: a Proactive trigger fires every few seconds while it exists.
    assert_ok(workspace.run("destroy", str(workspace.directory), "--auto-approve"))
    assert automations_named(api, *names) == []


# --- lifecycle ----------------------------------------------------------------------------------


def lifecycle_config(prefix: str, *, threshold: int = 1, within: int = 0) -> str:
    return f"""\
automations:
  {prefix}-on-failure:
    description: when a flow run fails
    trigger:
      type: event
      expect: [prefect.flow-run.Failed]
      threshold: {threshold}
      within: {within}
    actions: [{{type: cancel-flow-run}}]
  {prefix}-other:
    trigger: {{type: event, expect: [external.ping]}}
    actions: [{{type: do-nothing}}]
"""


def test_create_noop_update_in_place_drift_and_delete(workspace, prefix, api):
    name = f"{prefix}-on-failure"
    workspace.write("main.yaml", lifecycle_config(prefix))
    assert_ok(workspace.apply())
    created = automation(api, name)
    assert created["trigger"]["expect"] == ["prefect.flow-run.Failed"]
    assert state_id(workspace, f"automations.{name}") == created["id"]
    assert_ok(workspace.plan(), 0)

    workspace.write("main.yaml", lifecycle_config(prefix, threshold=3, within=120))
    planned = assert_ok(workspace.plan(), 2)
    assert f"# automations.{name} will be updated in-place" in planned.stdout
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in planned.stdout
    assert_ok(workspace.apply())
    updated = automation(api, name)
    assert updated["id"] == created["id"], "an update must not re-create the automation"
    assert (updated["trigger"]["threshold"], updated["trigger"]["within"]) == (3, 120.0)
    assert_ok(workspace.plan(), 0)

    api.patch(f"automations/{created['id']}", json={"enabled": False}).raise_for_status()
    drifted = assert_ok(workspace.plan(), 2)
    assert "Objects have changed outside of prefect-provider" in drifted.stdout
    assert "~ enabled" in drifted.stdout and "false -> true" in drifted.stdout
    assert_ok(workspace.apply())
    assert automation(api, name)["enabled"] is True
    assert_ok(workspace.plan(), 0)

    workspace.write("main.yaml", lifecycle_config(prefix).split(f"  {prefix}-other:")[0])
    planned = assert_ok(workspace.plan(), 2)
    assert f"# automations.{prefix}-other will be destroyed" in planned.stdout
    assert_ok(workspace.apply())
    assert automations_named(api, f"{prefix}-other") == []
    assert automation(api, name)["id"] == created["id"]
    assert_ok(workspace.plan(), 0)


# --- actions naming other resources ---------------------------------------------------------------


def references_config(prefix: str) -> str:
    return f"""\
work_pools:
  {prefix}-pool:
    type: process
    queues:
      high: {{priority: 1}}
blocks:
  slack-webhook/{prefix}-alerts:
    data: {{url: "https://hooks.slack.example/T000/B000"}}
  webhook/{prefix}-hook:
    data: {{url: "https://hooks.example/prefect", method: POST}}
deployments:
  {prefix}-flow/nightly:
    entrypoint: flows/etl.py:etl
automations:
  {prefix}-guard:
    trigger: {{type: event, expect: [prefect.flow-run.Crashed], threshold: 5, within: 300}}
    actions:
      - {{type: pause-work-pool, work_pool: {prefix}-pool}}
      - {{type: pause-work-queue, work_queue: {prefix}-pool/high}}
      - {{type: pause-automation, automation: {prefix}-retry}}
      - {{type: pause-deployment, deployment: {prefix}-flow/nightly}}
      - {{type: send-notification, block: slack-webhook/{prefix}-alerts, subject: Paused, body: "{{{{ event.event }}}}"}}
      - {{type: call-webhook, block: webhook/{prefix}-hook, payload: '{{"paused": true}}'}}
    actions_on_resolve:
      - {{type: resume-work-pool, work_pool: {prefix}-pool}}
      - {{type: resume-work-queue, work_queue: {prefix}-pool/high}}
      - {{type: resume-automation, automation: {prefix}-retry}}
      - {{type: resume-deployment, deployment: {prefix}-flow/nightly}}
  {prefix}-retry:
    trigger: {{type: event, expect: [external.data.arrived]}}
    actions:
      - {{type: run-deployment, deployment: {prefix}-flow/nightly, parameters: {{full_refresh: true}}}}
"""


def test_actions_naming_resources_get_their_ids(workspace, prefix, api):
    workspace.write("main.yaml", references_config(prefix))
    assert_ok(workspace.run("validate", str(workspace.directory)))
    assert_ok(workspace.apply())

    ids = {address: record["id"] for address, record in workspace.state()["resources"].items()}
    pool_id = api.get(f"work_pools/{prefix}-pool").json()["id"]
    queue_id = api.get(f"work_pools/{prefix}-pool/queues/high").json()["id"]
    retry = automation(api, f"{prefix}-retry")
    assert ids[f"work_pools.{prefix}-pool"] == pool_id and ids[f"automations.{prefix}-retry"] == retry["id"]
    deployment_id = ids[f"deployments.{prefix}-flow/nightly"]
    assert api.get(f"deployments/{deployment_id}").json()["name"] == "nightly"

    guard = automation(api, f"{prefix}-guard")
    targets = [
        {k: v for k, v in action.items() if k.endswith("_id")} for action in guard["actions"] + guard["actions_on_resolve"]
    ]
    assert targets == [
        {"work_pool_id": pool_id},
        {"work_queue_id": queue_id},
        {"automation_id": retry["id"]},
        {"deployment_id": deployment_id},
        {"block_document_id": ids[f"blocks.slack-webhook/{prefix}-alerts"]},
        {"block_document_id": ids[f"blocks.webhook/{prefix}-hook"]},
        {"work_pool_id": pool_id},
        {"work_queue_id": queue_id},
        {"automation_id": retry["id"]},
        {"deployment_id": deployment_id},
    ]
    assert retry["actions"][0]["deployment_id"] == deployment_id
    assert_ok(workspace.plan(), 0)

    # Pointed elsewhere by hand: the live id names nothing managed, so it differs, and is repaired.
    other_pool = api.post("work_pools/", json={"name": f"{prefix}-elsewhere", "type": "process"}).json()
    actions = [dict(a, work_pool_id=other_pool["id"]) if "work_pool_id" in a else a for a in guard["actions"]]
    body = {k: guard[k] for k in ("name", "description", "enabled", "tags", "trigger", "actions_on_trigger", "actions_on_resolve")}
    api.put(f"automations/{guard['id']}", json={**body, "actions": actions}).raise_for_status()
    drifted = assert_ok(workspace.plan(), 2)
    assert other_pool["id"] in drifted.stdout
    assert_ok(workspace.apply())
    assert automation(api, f"{prefix}-guard")["actions"][0]["work_pool_id"] == pool_id
    assert_ok(workspace.plan(), 0)


def test_a_replaced_or_recreated_pool_gets_the_automation_pointed_at_it(workspace, prefix, api):
    workspace.write(
        "main.yaml",
        f"""\
work_pools:
  {prefix}-pool:
    type: process
    queues:
      high: {{priority: 1}}
automations:
  {prefix}-pause:
    trigger: {{type: event, expect: [external.outage]}}
    actions:
      - {{type: pause-work-pool, work_pool: {prefix}-pool}}
      - {{type: pause-work-queue, work_queue: {prefix}-pool/high}}
""",
    )
    assert_ok(workspace.apply())
    before = automation(api, f"{prefix}-pause")

    planned = assert_ok(workspace.plan("--replace", f"work_pools.{prefix}-pool"), 2)
    assert f"work_pools.{prefix}-pool is replaced: refer to the new object" in planned.stdout
    assert "Plan: 2 to add, 1 to change, 2 to destroy." in planned.stdout
    assert_ok(workspace.apply("--replace", f"work_pools.{prefix}-pool"))

    def assert_points_at_the_live_pool(old_pool_id: str) -> None:
        pool_id = api.get(f"work_pools/{prefix}-pool").json()["id"]
        queue_id = api.get(f"work_pools/{prefix}-pool/queues/high").json()["id"]
        after = automation(api, f"{prefix}-pause")
        assert after["id"] == before["id"]
        assert pool_id != old_pool_id
        assert [after["actions"][0]["work_pool_id"], after["actions"][1]["work_queue_id"]] == [pool_id, queue_id]
        assert_ok(workspace.plan(), 0)

    assert_points_at_the_live_pool(before["actions"][0]["work_pool_id"])

    # Deleted by hand and re-created by the next apply: a new id again.
    replaced_id = api.get(f"work_pools/{prefix}-pool").json()["id"]
    api.delete(f"work_pools/{prefix}-pool").raise_for_status()
    planned = assert_ok(workspace.plan(), 2)
    assert f"work_pools.{prefix}-pool is re-created: refer to the new object" in planned.stdout
    assert_ok(workspace.apply())
    assert_points_at_the_live_pool(replaced_id)


# --- validation ---------------------------------------------------------------------------------


TYPOS = [
    pytest.param(
        """\
    trigger: {type: event, expect: [a.b]}
    actions: [{type: pause-work-pol, work_pool: __P__-pool}]
""",
        "main.yaml:6: automations.__P__-auto.actions[0]: Input tag 'pause-work-pol' found using 'type' does not match",
        id="action-type",
    ),
    pytest.param(
        """\
    trigger: {type: event, expect: [a.b]}
    actions:
      - type: pause-work-pool
        wrk_pool: __P__-pool
""",
        "main.yaml:8: automations.__P__-auto.actions[0].wrk_pool: unknown field",
        id="action-field",
    ),
    pytest.param(
        """\
    trigger:
      type: event
      expct: [a.b]
    actions: [{type: do-nothing}]
""",
        "main.yaml:7: automations.__P__-auto.trigger.expct: unknown field",
        id="trigger-field",
    ),
    pytest.param(
        """\
    trigger:
      type: compound
      require: any
      triggers:
        - {type: event, expect: [a.b]}
        - {type: event, posture: Reactiv}
    actions: [{type: do-nothing}]
""",
        "main.yaml:10: automations.__P__-auto.trigger.triggers[1].posture: Input should be 'Reactive' or 'Proactive'",
        id="nested-trigger-field",
    ),
    pytest.param(
        """\
    trigger: {type: event, expect: [a.b]}
    actions:
      - type: send-email-notification
        body: failed
""",
        "main.yaml:7: automations.__P__-auto.actions[0].emails: required field is missing",
        id="email-without-addresses",
    ),
    pytest.param(
        """\
    trigger: {type: event, expect: [a.b]}
    actions:
      - type: send-email-notification
        emails: []
        body: failed
""",
        "main.yaml:8: automations.__P__-auto.actions[0].emails: List should have at least 1 item",
        id="email-empty-addresses",
    ),
    pytest.param(
        """\
    trigger: {type: event, expect: [a.b]}
    actions:
      - type: pause-schedule-for-flow-run
        deployment: etl/nightly
""",
        "main.yaml:7: automations.__P__-auto.actions[0].schedule: required field is missing",
        id="schedule-without-slug",
    ),
    pytest.param(
        """\
    trigger: {type: event, expect: [a.b]}
    actions:
      - type: resume-schedule-for-flow-run
        deployment: nightly
        schedule: daily
""",
        "main.yaml:8: automations.__P__-auto.actions[0].deployment: 'nightly' is not of the form FLOW/NAME",
        id="schedule-deployment-not-flow-slash-name",
    ),
]


@pytest.mark.parametrize(("body", "error"), TYPOS)
def test_a_typo_is_a_validation_error_with_file_and_line(body, error, workspace, prefix, api):
    workspace.write(
        "main.yaml",
        f"work_pools:\n  {prefix}-pool: {{type: process}}\nautomations:\n  {prefix}-auto:\n" + body.replace("__P__", prefix),
    )
    expected = error.replace("__P__", prefix)
    for command in (["validate"], ["plan"], ["apply", "--auto-approve"]):
        result = assert_ok(workspace.run(*command, str(workspace.directory)), 1)
        assert expected in result.stderr, f"{command[0]}: expected {expected!r} in:\n{result.stderr}"
        assert "Traceback" not in result.output
    assert automations_named(api, f"{prefix}-auto") == []
    assert api.get(f"work_pools/{prefix}-pool").status_code == 404
    assert not workspace.state_path.exists()


def test_automations_pausing_each_other_are_a_cycle(workspace, prefix):
    workspace.write(
        "main.yaml",
        f"""\
automations:
  {prefix}-a:
    trigger: {{type: event, expect: [a.happened]}}
    actions: [{{type: pause-automation, automation: {prefix}-b}}]
  {prefix}-b:
    trigger: {{type: event, expect: [b.happened]}}
    actions: [{{type: pause-automation, automation: {prefix}-a}}]
""",
    )
    result = assert_ok(workspace.run("validate", str(workspace.directory)), 1)
    assert "dependency cycle" in result.stderr
    assert f"automations.{prefix}-a" in result.stderr and f"automations.{prefix}-b" in result.stderr


def test_a_reference_to_an_undeclared_object_is_an_error(workspace, prefix):
    workspace.write(
        "main.yaml",
        f"""\
automations:
  {prefix}-a:
    trigger: {{type: event, expect: [a.happened]}}
    actions: [{{type: run-deployment, deployment: {prefix}-flow/missing}}]
""",
    )
    result = assert_ok(workspace.run("validate", str(workspace.directory)), 1)
    assert f"main.yaml:2: automations.{prefix}-a: refers to deployments.{prefix}-flow/missing, which is not declared" in result.stderr


def test_a_metric_trigger_is_refused_by_the_open_source_server_at_plan_time(workspace, prefix, api):
    workspace.write(
        "main.yaml",
        f"""\
automations:
  {prefix}-slow:
    trigger:
      type: compound
      require: any
      triggers:
        - {{type: event, expect: [a.happened]}}
        - type: metric
          match: {{prefect.resource.id: "prefect.flow.*"}}
          metric: {{name: duration, operator: ">", threshold: 600, range: 900}}
    actions: [{{type: do-nothing}}]
""",
    )
    assert_ok(workspace.run("validate", str(workspace.directory)))
    result = assert_ok(workspace.plan(), 1)
    assert f"main.yaml:8: automations.{prefix}-slow.trigger.triggers[1]: metric triggers are a Prefect Cloud feature" in result.stderr
    assert_ok(workspace.apply(), 1)
    assert automations_named(api, f"{prefix}-slow") == []


# --- names the server holds twice ---------------------------------------------------------------


def single_config(prefix: str) -> str:
    return f"""\
automations:
  {prefix}-auto:
    trigger: {{type: event, expect: [a.happened]}}
    actions: [{{type: do-nothing}}]
"""


def unmanaged_body(name: str) -> dict[str, Any]:
    return {"name": name, "trigger": {"type": "event", "posture": "Reactive", "expect": ["x"]}, "actions": [{"type": "do-nothing"}]}


def test_an_unmanaged_automation_with_the_declared_name_is_left_alone(workspace, prefix, api):
    theirs = api.post("automations/", json=unmanaged_body(f"{prefix}-auto")).json()
    workspace.write("main.yaml", single_config(prefix))
    planned = assert_ok(workspace.plan(), 2)
    assert f"other objects named '{prefix}-auto' on the server (ids {theirs['id']}) are not managed" in planned.stdout
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in planned.stdout
    assert_ok(workspace.apply())
    ours = workspace.state()["resources"][f"automations.{prefix}-auto"]["id"]
    assert {a["id"] for a in automations_named(api, f"{prefix}-auto")} == {ours, theirs["id"]}
    assert_ok(workspace.plan(), 0)


def test_a_second_automation_with_a_managed_name_is_left_alone(workspace, prefix, api):
    workspace.write("main.yaml", single_config(prefix))
    assert_ok(workspace.apply())
    ours = automation(api, f"{prefix}-auto")
    twin = api.post("automations/", json=unmanaged_body(f"{prefix}-auto")).json()

    planned = assert_ok(workspace.plan(), 0)
    assert f"(ids {twin['id']}) are not managed by prefect-provider: left alone" in planned.stdout
    workspace.write("main.yaml", single_config(prefix).replace("a.happened", "b.happened"))
    assert_ok(workspace.apply())
    assert api.get(f"automations/{ours['id']}").json()["trigger"]["expect"] == ["b.happened"]
    assert api.get(f"automations/{twin['id']}").json()["trigger"]["expect"] == ["x"]

    assert_ok(workspace.run("destroy", str(workspace.directory), "--auto-approve"))
    assert [a["id"] for a in automations_named(api, f"{prefix}-auto")] == [twin["id"]]


def test_a_create_whose_answer_was_lost_leaves_no_twin(workspace, prefix, api):
    workspace.write("main.yaml", single_config(prefix))
    with FaultProxy(workspace.api_url, ["drop-after"]) as proxy:
        assert_ok(workspace.apply("--api-url", proxy.api_url))
        assert proxy.seen["drop-after"] == 1
    created = automation(api, f"{prefix}-auto")
    assert state_id(workspace, f"automations.{prefix}-auto") == created["id"]
    assert_ok(workspace.plan(), 0)


def test_an_imported_automation_names_what_it_refers_to(workspace, prefix, api):
    pool = f"work_pools:\n  {prefix}-pool: {{type: process}}\n"
    workspace.write("main.yaml", pool)
    assert_ok(workspace.apply())
    pool_id = api.get(f"work_pools/{prefix}-pool").json()["id"]
    body = unmanaged_body(f"{prefix}-auto") | {"actions": [{"type": "pause-work-pool", "work_pool_id": pool_id}]}
    theirs = api.post("automations/", json=body).json()

    workspace.write(
        "main.yaml",
        pool
        + f"""\
automations:
  {prefix}-auto:
    trigger: {{type: event, expect: [x]}}
    actions: [{{type: pause-work-pool, work_pool: {prefix}-pool}}]
""",
    )
    assert_ok(workspace.run("import", f"automations.{prefix}-auto", theirs["id"], str(workspace.directory)))
    assert workspace.state()["resources"][f"automations.{prefix}-auto"]["attributes"]["actions"][0]["work_pool"] == f"{prefix}-pool"
    assert "No changes." in assert_ok(workspace.plan(), 0).stdout


# --- Prefect Cloud-only actions (the Terraform provider accepts them too) ----------------------------

CLOUD_ONLY_ACTIONS = [
    pytest.param(
        "{type: send-email-notification, emails: [oncall@example.com], subject: Failed, body: '{{ event.event }}'}",
        "send-email-notification actions",
        id="send-email-notification",
    ),
    pytest.param(
        "{type: pause-schedule-for-flow-run, deployment: __P__-flow/nightly, schedule: daily}",
        "pause-schedule-for-flow-run actions",
        id="pause-schedule-for-flow-run",
    ),
    pytest.param(
        "{type: resume-schedule-for-flow-run, deployment: __P__-flow/nightly, schedule: daily}",
        "resume-schedule-for-flow-run actions",
        id="resume-schedule-for-flow-run",
    ),
]


def scheduled_deployment(prefix: str) -> str:
    return f"""\
work_pools:
  {prefix}-pool: {{type: process}}
deployments:
  {prefix}-flow/nightly:
    entrypoint: flows/etl.py:etl
    work_pool: {prefix}-pool
    schedules:
      - {{slug: daily, cron: "0 3 * * *"}}
      - {{slug: hourly, interval: 3600}}
"""


@pytest.mark.parametrize(("action", "feature"), CLOUD_ONLY_ACTIONS)
def test_a_cloud_only_action_is_refused_by_the_open_source_server_at_plan_time(action, feature, workspace, prefix, api):
    workspace.write(
        "main.yaml",
        scheduled_deployment(prefix)
        + f"""\
automations:
  {prefix}-auto:
    trigger: {{type: event, expect: [prefect.flow-run.Failed]}}
    actions: [{{type: do-nothing}}]
    actions_on_resolve:
      - {{type: do-nothing}}
      - {action.replace("__P__", prefix)}
""",
    )
    assert_ok(workspace.run("validate", str(workspace.directory)))
    expected = f"main.yaml:16: automations.{prefix}-auto.actions_on_resolve[1]: {feature} are a Prefect Cloud feature"
    for result in (workspace.plan(), workspace.apply()):
        assert expected in assert_ok(result, 1).stderr
        assert "Traceback" not in result.output
    assert not workspace.state_path.exists()
    assert automations_named(api, f"{prefix}-auto") == []
    assert api.get(f"work_pools/{prefix}-pool").status_code == 404


def test_a_schedule_action_names_its_schedule_by_slug_and_the_server_id_both_ways(workspace, prefix, api_url):
    """What a Prefect Cloud workspace is sent and read back: the schedule's id on the server, found
    through its deployment; read back, the slug again. An unknown slug is an error naming it."""
    workspace.write("main.yaml", scheduled_deployment(prefix))
    assert_ok(workspace.apply())
    ids = {address: record["id"] for address, record in workspace.state()["resources"].items()}
    deployment_id = ids[f"deployments.{prefix}-flow/nightly"]
    with PrefectClient(Connection(api_url)) as client:
        schedule_ids = {s["slug"]: s["id"] for s in client.get(f"/deployments/{deployment_id}/schedules")}
        spec = Automations.spec.model_validate({
            "trigger": {"type": "event", "expect": ["prefect.flow-run.Failed"]},
            "actions": [{"type": "pause-schedule-for-flow-run", "deployment": f"{prefix}-flow/nightly", "schedule": "hourly"}],
            "actions_on_resolve": [
                {"type": "resume-schedule-for-flow-run", "deployment": f"{prefix}-flow/nightly", "schedule": "hourly"}
            ],
        })
        desired = Automations().desired(f"{prefix}-auto", spec, ServerDefaults(client))
        ctx = ApplyContext(ids)
        body = automation_payload(f"{prefix}-auto", desired, ctx.id_of, schedule_id=schedule_id_of(client))
        sent = body["actions"] + body["actions_on_resolve"]
        assert [(a["type"], a["deployment_id"], a["schedule_id"]) for a in sent] == [
            ("pause-schedule-for-flow-run", deployment_id, schedule_ids["hourly"]),
            ("resume-schedule-for-flow-run", deployment_id, schedule_ids["hourly"]),
        ]

        # Read back as the server would answer: ids turn into the configuration's names again.
        live = automation_from_api({"name": f"{prefix}-auto", **body})
        name_schedules(client, live)
        addresses = {deployment_id: CATALOG.parse(f"deployments.{prefix}-flow/nightly")}
        Automations().name_references(LiveObject("id", f"{prefix}-auto", live), addresses)
        assert live == desired

        # A schedule id no schedule of the deployment has stays an id, and so differs.
        stranger = {"name": f"{prefix}-auto", **body, "actions": [dict(body["actions"][0], schedule_id=str(uuid.uuid4()))]}
        unnamed = automation_from_api(stranger)
        name_schedules(client, unnamed)
        assert unnamed["actions"][0]["schedule"] == stranger["actions"][0]["schedule_id"]

        missing = [dict(desired["actions"][0], schedule="weekly")]
        with pytest.raises(PlanError, match=f"deployments.{prefix}-flow/nightly has no schedule with slug 'weekly'"):
            automation_payload(f"{prefix}-auto", {**desired, "actions": missing}, ctx.id_of, schedule_id=schedule_id_of(client))


class CloudWithAutomations(CloudFake):
    """The Cloud fake, serving `/automations` itself, in memory and in the API's shape, with the
    Cloud-only action types (the open-source server it forwards everything else to refuses them):
    a send-email-notification action without a block gets one made by the server, as in Cloud."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.automations: dict[str, dict[str, Any]] = {}

    def _automation_route(self, method: str, route: str, body: Any) -> tuple[int, Any]:
        parts = route.strip("/").split("/")  # ["automations", ...]
        if method == "POST" and parts[1:] in ([], [""]):
            automation = {"id": str(uuid.uuid4()), "created": len(self.automations), **self._written(body)}
            self.automations[automation["id"]] = automation
            return 201, automation
        if method == "POST" and parts[1:] == ["filter"]:
            names = ((body.get("automations") or {}).get("name") or {}).get("any_")
            found = sorted(self.automations.values(), key=lambda a: -a["created"])
            found = [a for a in found if names is None or a["name"] in names]
            offset, limit = int(body.get("offset") or 0), int(body.get("limit") or 200)
            return 200, found[offset : offset + limit]
        automation = self.automations.get(parts[1]) if len(parts) == 2 else None
        if automation is None:
            return 404, {"detail": "Automation not found."}
        if method == "GET":
            return 200, automation
        if method == "PUT":
            automation.update(self._written(body))
            return 204, None
        if method == "DELETE":
            del self.automations[automation["id"]]
            return 204, None
        return 405, {"detail": "Method Not Allowed"}

    @staticmethod
    def _written(body: dict[str, Any]) -> dict[str, Any]:
        written = json.loads(json.dumps(body))
        for key in ("actions", "actions_on_trigger", "actions_on_resolve"):
            for action in written.get(key) or []:
                if action["type"] == "send-email-notification" and not action.get("block_document_id"):
                    action["block_document_id"] = str(uuid.uuid4())
        return written

    def _handler(self) -> type:
        base, fake = super()._handler(), self

        class Handler(base):  # type: ignore[misc, valid-type]
            def _serve(self) -> None:
                route = self.path.removeprefix(f"/api/accounts/{fake.account}/workspaces/{fake.workspace}")
                if not route.startswith("/automations") or self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    return super()._serve()
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else {}
                with fake._lock:
                    status, answer = fake._automation_route(self.command, route.split("?")[0], body)
                self._answer(status, answer)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        return Handler


@pytest.fixture
def cloud(workspace, api_url: str) -> Iterator[CloudWithAutomations]:
    """A Cloud workspace (the fake) that `workspace` is pointed at."""
    with CloudWithAutomations(api_url, api_key=f"pnu_{secrets.token_hex(12)}", read_only_key=f"pnu_{secrets.token_hex(12)}") as fake:
        workspace.env.update(PREFECT_API_URL=fake.api_url, PREFECT_API_KEY=fake.api_key)
        yield fake


def test_cloud_only_actions_are_applied_on_cloud_with_ids_and_plan_clean(cloud, workspace, prefix, api):
    workspace.write(
        "main.yaml",
        scheduled_deployment(prefix)
        + f"""\
automations:
  {prefix}-auto:
    trigger: {{type: event, expect: [prefect.flow-run.Failed]}}
    actions:
      - {{type: send-email-notification, emails: [oncall@example.com, team@example.com], body: "{{{{ event.event }}}}"}}
      - {{type: pause-schedule-for-flow-run, deployment: {prefix}-flow/nightly, schedule: hourly}}
    actions_on_resolve:
      - {{type: resume-schedule-for-flow-run, deployment: {prefix}-flow/nightly, schedule: hourly}}
""",
    )
    assert_ok(workspace.apply())
    deployment = api.get(f"deployments/name/{prefix}-flow/nightly").json()
    schedule_ids = {s["slug"]: s["id"] for s in deployment["schedules"]}
    [stored] = cloud.automations.values()
    email, pause = stored["actions"]
    assert email["emails"] == ["oncall@example.com", "team@example.com"] and email["block_document_id"]
    assert (pause["deployment_id"], pause["schedule_id"]) == (deployment["id"], schedule_ids["hourly"])
    assert stored["actions_on_resolve"][0]["schedule_id"] == schedule_ids["hourly"]
    assert "No changes." in assert_ok(workspace.plan(), 0).stdout

    # Pointed at the other schedule by hand: drift, shown by slug, and repaired.
    pause["schedule_id"] = schedule_ids["daily"]
    drifted = assert_ok(workspace.plan(), 2).stdout
    assert "daily" in drifted and schedule_ids["daily"] not in drifted
    assert_ok(workspace.apply())
    assert cloud.automations[stored["id"]]["actions"][1]["schedule_id"] == schedule_ids["hourly"]
    assert "No changes." in assert_ok(workspace.plan(), 0).stdout

    assert_ok(workspace.run("destroy", str(workspace.directory), "--auto-approve"))
    assert cloud.automations == {}


def test_a_schedule_slug_its_deployment_lacks_is_an_error_naming_both(cloud, workspace, prefix):
    workspace.write(
        "main.yaml",
        scheduled_deployment(prefix)
        + f"""\
automations:
  {prefix}-auto:
    trigger: {{type: event, expect: [prefect.flow-run.Failed]}}
    actions: [{{type: pause-schedule-for-flow-run, deployment: {prefix}-flow/nightly, schedule: weekly}}]
""",
    )
    result = assert_ok(workspace.apply(), 1)
    assert f"deployments.{prefix}-flow/nightly has no schedule with slug 'weekly'" in result.output
    assert "Traceback" not in result.output
    assert cloud.automations == {}
    assert f"automations.{prefix}-auto" not in workspace.state()["resources"]
