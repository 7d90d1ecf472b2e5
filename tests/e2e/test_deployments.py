"""Deployments against a real server: create, no-op, update in place, schedules reconciled by slug
(ids kept), drift repaired, pull steps verbatim, triggers as automations, a storage block and a
shared global concurrency limit (which must outlive the deployment), and removal. A prefect.yaml
as a configuration source is tests/e2e/test_prefect_yaml.py. Bad input (slug-less schedules and the
like) is in tests/cases/bad_input/.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import assert_ok

PULL_STEPS = [
    {
        "prefect.deployments.steps.git_clone": {
            "id": "clone",
            "repository": "https://github.com/org/repo.git",
            "access_token": "{{ prefect.blocks.secret.repo-token }}",
        }
    },
    {"prefect.deployments.steps.run_shell_script": {"script": "cd {{ clone.directory }} && echo {{ $HOME }}"}},
    {"my_company.steps.unknown_step": {"anything": ["goes", {"here": 1}]}},
]


def config(prefix: str, *, cron: str = "0 2 * * *", parameters: str = "{full_refresh: false}",
           image: str = "etl:1", with_weekly: bool = True) -> str:
    weekly = "      - {slug: weekly, rrule: 'FREQ=WEEKLY;BYDAY=MO', active: false}\n" if with_weekly else ""
    return f"""\
work_pools:
  {prefix}-pool:
    type: process
    queues:
      high: {{priority: 1}}
deployments:
  {prefix}-etl/nightly:
    entrypoint: flows/etl.py:etl
    description: Nightly warehouse load
    version: "1.2"
    tags: [warehouse, etl]
    work_pool: {prefix}-pool
    work_queue: high
    parameters: {parameters}
    job_variables: {{image: "{image}", env: {{MODE: full}}}}
    concurrency_limit: 2
    concurrency_options: {{collision_strategy: CANCEL_NEW}}
    schedules:
      - {{slug: nightly, cron: "{cron}", timezone: America/Chicago}}
      - {{slug: hourly, interval: 3600, max_scheduled_runs: 5, parameters: {{full_refresh: true}}}}
{weekly}    pull_steps:
      - prefect.deployments.steps.git_clone:
          id: clone
          repository: https://github.com/org/repo.git
          access_token: "{{{{ prefect.blocks.secret.repo-token }}}}"
      - prefect.deployments.steps.run_shell_script:
          script: "cd {{{{ clone.directory }}}} && echo {{{{ $HOME }}}}"
      - my_company.steps.unknown_step: {{anything: [goes, {{here: 1}}]}}
"""


def squeezed(text: str) -> str:
    """Plan output with runs of spaces made one (alignment depends on the keys shown)."""
    return re.sub(r" +", " ", text)


def deployment(api, flow: str, name: str) -> dict[str, Any]:
    response = api.get(f"deployments/name/{flow}/{name}")
    response.raise_for_status()
    return response.json()


def schedules_by_slug(found: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["slug"]: s for s in found["schedules"]}


def test_create_then_noop_then_update_in_place(workspace, prefix, api):
    workspace.write("main.yaml", config(prefix))
    planned = assert_ok(workspace.plan(), 2)
    assert "Plan: 3 to add, 0 to change, 0 to destroy." in planned.stdout
    assert_ok(workspace.apply())

    created = deployment(api, f"{prefix}-etl", "nightly")
    assert created["work_pool_name"] == f"{prefix}-pool" and created["work_queue_name"] == "high"
    assert created["parameters"] == {"full_refresh": False}
    assert created["job_variables"] == {"image": "etl:1", "env": {"MODE": "full"}}
    assert sorted(created["tags"]) == ["etl", "warehouse"]
    assert created["pull_steps"] == PULL_STEPS, "pull steps must round-trip verbatim, templates and all"
    assert created["global_concurrency_limit"]["limit"] == 2
    assert created["concurrency_options"]["collision_strategy"] == "CANCEL_NEW"
    schedules = schedules_by_slug(created)
    assert schedules["nightly"]["schedule"]["cron"] == "0 2 * * *"
    assert schedules["hourly"]["max_scheduled_runs"] == 5 and schedules["hourly"]["parameters"] == {"full_refresh": True}
    assert schedules["weekly"]["active"] is False

    noop = assert_ok(workspace.plan(), 0)
    assert "No changes." in noop.stdout

    workspace.write("main.yaml", config(prefix, cron="30 3 * * *", parameters="{full_refresh: true}", image="etl:2"))
    planned = assert_ok(workspace.plan(), 2)
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in planned.stdout
    assert '~ cron = "0 2 * * *" -> "30 3 * * *"' in squeezed(planned.stdout)
    assert_ok(workspace.apply())

    updated = deployment(api, f"{prefix}-etl", "nightly")
    assert updated["id"] == created["id"], "an update must not re-create the deployment"
    assert updated["parameters"] == {"full_refresh": True}
    assert updated["job_variables"]["image"] == "etl:2"
    after = schedules_by_slug(updated)
    assert after["nightly"]["schedule"]["cron"] == "30 3 * * *"
    assert {slug: s["id"] for slug, s in after.items()} == {slug: s["id"] for slug, s in schedules.items()}, (
        "schedules are updated in place: their ids never change"
    )
    assert_ok(workspace.plan(), 0)


def test_out_of_band_changes_are_detected_and_repaired(workspace, prefix, api):
    workspace.write("main.yaml", config(prefix))
    assert_ok(workspace.apply())
    found = deployment(api, f"{prefix}-etl", "nightly")
    ids = {slug: s["id"] for slug, s in schedules_by_slug(found).items()}
    api.patch(f"deployments/{found['id']}", json={"parameters": {"full_refresh": True}}).raise_for_status()
    api.patch(f"deployments/{found['id']}/schedules/{ids['nightly']}", json={"active": False}).raise_for_status()
    api.delete(f"deployments/{found['id']}/schedules/{ids['hourly']}").raise_for_status()
    api.post(f"deployments/{found['id']}/schedules", json=[{"schedule": {"cron": "* * * * *"}}]).raise_for_status()

    drifted = assert_ok(workspace.plan(), 2)
    assert "Objects have changed outside of prefect-provider" in drifted.stdout
    assert "changed outside prefect-provider: parameters, schedules" in drifted.stdout
    assert "~ active = false -> true" in squeezed(drifted.stdout)
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in drifted.stdout

    assert_ok(workspace.apply())
    repaired = deployment(api, f"{prefix}-etl", "nightly")
    assert repaired["parameters"] == {"full_refresh": False}
    schedules = schedules_by_slug(repaired)
    assert set(schedules) == {"nightly", "hourly", "weekly"}, "the hand-made slug-less schedule is deleted"
    assert len(repaired["schedules"]) == 3
    assert schedules["nightly"]["active"] is True and schedules["nightly"]["id"] == ids["nightly"]
    assert schedules["weekly"]["id"] == ids["weekly"], "an untouched schedule keeps its id"
    assert schedules["hourly"]["id"] != ids["hourly"] and schedules["hourly"]["max_scheduled_runs"] == 5
    assert_ok(workspace.plan(), 0)


def test_deleted_by_hand_is_recreated_and_removal_deletes(workspace, prefix, api):
    workspace.write("main.yaml", config(prefix))
    assert_ok(workspace.apply())
    api.delete(f"deployments/{deployment(api, f'{prefix}-etl', 'nightly')['id']}").raise_for_status()
    planned = assert_ok(workspace.plan(), 2)
    assert f"deployments.{prefix}-etl/nightly: deleted outside prefect-provider" in planned.stdout
    assert_ok(workspace.apply())
    assert set(schedules_by_slug(deployment(api, f"{prefix}-etl", "nightly"))) == {"nightly", "hourly", "weekly"}

    workspace.write("main.yaml", config(prefix, with_weekly=False))
    assert_ok(workspace.apply())
    assert set(schedules_by_slug(deployment(api, f"{prefix}-etl", "nightly"))) == {"nightly", "hourly"}

    workspace.write("main.yaml", config(prefix).split("deployments:")[0])
    planned = assert_ok(workspace.plan(), 2)
    assert f"# deployments.{prefix}-etl/nightly will be destroyed" in planned.stdout
    assert "Plan: 0 to add, 0 to change, 1 to destroy." in planned.stdout
    assert_ok(workspace.apply())
    assert api.get(f"deployments/name/{prefix}-etl/nightly").status_code == 404
    assert f"deployments.{prefix}-etl/nightly" not in workspace.state()["resources"]
    assert_ok(workspace.plan(), 0)


def test_a_replaced_pool_is_referred_to_again(workspace, prefix, api):
    def write(pool_type: str) -> None:
        workspace.write("main.yaml", f"""\
work_pools:
  {prefix}-pool: {{type: {pool_type}}}
deployments:
  {prefix}-etl/nightly: {{entrypoint: flows/etl.py:etl, work_pool: {prefix}-pool}}
""")

    write("process")
    assert_ok(workspace.apply())
    write("kubernetes")
    planned = assert_ok(workspace.plan(), 2)
    assert f"(work_pools.{prefix}-pool is replaced: refer to the new object)" in planned.stdout
    assert_ok(workspace.apply())
    queue = api.get(f"work_pools/{prefix}-pool/queues/default").json()
    assert deployment(api, f"{prefix}-etl", "nightly")["work_queue_id"] == queue["id"]
    assert_ok(workspace.plan(), 0)


def test_triggers_become_automations_that_run_the_deployment(workspace, prefix, api):
    def write(expect: str) -> None:
        workspace.write("main.yaml", f"""\
deployments:
  {prefix}-etl/{prefix}-on-event:
    entrypoint: flows/etl.py:etl
    triggers:
      - match: {{prefect.resource.id: "external.model.*"}}
        expect: [{expect}]
        parameters: {{model: "{{{{ event.resource.id }}}}"}}
      - name: {prefix}-after-upstream
        type: compound
        require: all
        triggers:
          - {{type: event, expect: [upstream.done]}}
""")

    write("external.model.refreshed")
    planned = assert_ok(workspace.plan(), 2)
    assert f"+ automations.{prefix}-on-event__automation_1 {{" in planned.stdout
    assert "Plan: 3 to add, 0 to change, 0 to destroy." in planned.stdout
    assert_ok(workspace.apply())

    deployment_id = deployment(api, f"{prefix}-etl", f"{prefix}-on-event")["id"]
    automations = api.post("automations/filter", json={
        "automations": {"name": {"any_": [f"{prefix}-on-event__automation_1", f"{prefix}-after-upstream"]}}
    }).json()
    by_name = {a["name"]: a for a in automations}
    first = by_name[f"{prefix}-on-event__automation_1"]
    assert first["trigger"]["expect"] == ["external.model.refreshed"]
    [action] = first["actions"]
    assert action["type"] == "run-deployment" and action["deployment_id"] == deployment_id
    assert action["parameters"] == {"model": "{{ event.resource.id }}"}
    assert by_name[f"{prefix}-after-upstream"]["trigger"]["type"] == "compound"
    assert_ok(workspace.plan(), 0)

    write("external.model.published")
    planned = assert_ok(workspace.plan(), 2)
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in planned.stdout
    assert_ok(workspace.apply())
    assert api.get(f"automations/{first['id']}").json()["trigger"]["expect"] == ["external.model.published"]
    assert_ok(workspace.plan(), 0)


# --- storage block and shared global concurrency limit ------------------------------------------


def shared_config(prefix: str, *, deployment_fields: str | None = None) -> str:
    fields = deployment_fields if deployment_fields is not None else (
        f"storage_block: github-repository/{prefix}-repo, global_concurrency_limit: {prefix}-shared"
    )
    text = f"""\
blocks:
  github-repository/{prefix}-repo: {{data: {{repository_url: "https://github.com/org/etl", reference: main}}}}
  github-repository/{prefix}-other: {{data: {{repository_url: "https://github.com/org/other"}}}}
concurrency_limits:
  {prefix}-shared: {{limit: 3}}
  {prefix}-other: {{limit: 10}}
"""
    if fields:
        text += f"deployments:\n  {prefix}-etl/nightly: {{entrypoint: flows/etl.py:etl, {fields}}}\n"
    return text


def block_id(api, slug: str, name: str) -> str:
    response = api.get(f"block_types/slug/{slug}/block_documents/name/{name}")
    response.raise_for_status()
    return response.json()["id"]


def test_storage_block_and_shared_limit_by_id_read_back_by_name(workspace, prefix, api):
    workspace.write("main.yaml", shared_config(prefix))
    assert "Plan: 5 to add, 0 to change, 0 to destroy." in assert_ok(workspace.plan(), 2).stdout
    assert_ok(workspace.apply())
    shared = api.get(f"v2/concurrency_limits/{prefix}-shared").json()
    created = deployment(api, f"{prefix}-etl", "nightly")
    assert created["storage_document_id"] == block_id(api, "github-repository", f"{prefix}-repo")
    assert created["global_concurrency_limit"]["id"] == shared["id"]
    dependencies = workspace.state()["resources"][f"deployments.{prefix}-etl/nightly"]["dependencies"]
    assert {f"blocks.github-repository/{prefix}-repo", f"concurrency_limits.{prefix}-shared"} <= set(dependencies)
    assert_ok(workspace.plan(), 0)

    other = block_id(api, "github-repository", f"{prefix}-other")
    api.patch(f"deployments/{created['id']}", json={"storage_document_id": other, "global_concurrency_limit_id": None}).raise_for_status()
    drift = squeezed(assert_ok(workspace.run("drift", str(workspace.directory)), 2).stdout)
    assert f'~ storage_block = "github-repository/{prefix}-repo" -> "github-repository/{prefix}-other"' in drift
    assert f'- global_concurrency_limit = "{prefix}-shared" -> null' in drift
    assert_ok(workspace.apply())
    repaired = deployment(api, f"{prefix}-etl", "nightly")
    assert repaired["storage_document_id"] == created["storage_document_id"]
    assert repaired["global_concurrency_limit"]["id"] == shared["id"]
    assert_ok(workspace.plan(), 0)


@pytest.mark.parametrize("way", ["own limit, then shared again", "another shared limit", "no limit", "deployment removed"])
def test_a_shared_limit_outlives_the_deployment_leaving_it(way, workspace, prefix, api):
    """The server deletes or rewrites the global limit a deployment refers to when the deployment
    is deleted or sent `concurrency_limit`; the shared limit must survive all of these."""
    workspace.write("main.yaml", shared_config(prefix))
    assert_ok(workspace.apply())
    shared = api.get(f"v2/concurrency_limits/{prefix}-shared").json()
    deployment_id = deployment(api, f"{prefix}-etl", "nightly")["id"]

    if way == "own limit, then shared again":
        workspace.write("main.yaml", shared_config(prefix, deployment_fields="concurrency_limit: 2"))
        assert_ok(workspace.apply())
        own = deployment(api, f"{prefix}-etl", "nightly")["global_concurrency_limit"]
        assert (own["name"], own["limit"]) == (f"deployment:{deployment_id}", 2)
        assert_ok(workspace.plan(), 0)
        workspace.write("main.yaml", shared_config(prefix))
        assert_ok(workspace.apply())
        assert deployment(api, f"{prefix}-etl", "nightly")["global_concurrency_limit"]["id"] == shared["id"]
        assert api.get(f"v2/concurrency_limits/deployment:{deployment_id}").status_code == 404, "its own limit is gone"
    elif way == "another shared limit":  # as the TF provider's acceptance test switches test1 -> test2
        workspace.write("main.yaml", shared_config(prefix, deployment_fields=f"global_concurrency_limit: {prefix}-other"))
        planned = squeezed(assert_ok(workspace.plan(), 2).stdout)
        assert f'~ global_concurrency_limit = "{prefix}-shared" -> "{prefix}-other"' in planned
        assert_ok(workspace.apply())
        now = deployment(api, f"{prefix}-etl", "nightly")
        assert (now["id"], now["global_concurrency_limit"]["name"]) == (deployment_id, f"{prefix}-other")
    elif way == "no limit":
        workspace.write("main.yaml", shared_config(prefix, deployment_fields="tags: [etl]"))
        assert_ok(workspace.apply())
        assert deployment(api, f"{prefix}-etl", "nightly")["global_concurrency_limit"] is None
    else:
        workspace.write("main.yaml", shared_config(prefix, deployment_fields=""))
        assert_ok(workspace.apply())
        assert api.get(f"deployments/name/{prefix}-etl/nightly").status_code == 404
    after = api.get(f"v2/concurrency_limits/{prefix}-shared").json()
    assert (after["id"], after["limit"]) == (shared["id"], 3)
    assert_ok(workspace.plan(), 0)

    workspace.write("main.yaml", "{}\n")
    assert_ok(workspace.apply())
    assert workspace.state()["resources"] == {}
    assert api.get(f"v2/concurrency_limits/{prefix}-shared").status_code == 404


@pytest.mark.parametrize(("fields", "message"), [
    ("storage_block: not-a-pair", "deployments.__P__-etl/nightly.storage_block: 'not-a-pair' is not of the form TYPE_SLUG/NAME"),
    ("storage_block: github-repository/__P__-missing",
     "deployments.__P__-etl/nightly: refers to blocks.github-repository/__P__-missing, which is not declared"),
    ("global_concurrency_limit: __P__-missing",
     "deployments.__P__-etl/nightly: refers to concurrency_limits.__P__-missing, which is not declared"),
    ("concurrency_limit: 2, global_concurrency_limit: __P__-shared",
     "deployments.__P__-etl/nightly.global_concurrency_limit: a deployment has one limit"),
])
def test_bad_references_name_file_line_and_field(fields, message, workspace, prefix, api):
    workspace.write("main.yaml", shared_config(prefix, deployment_fields=fields.replace("__P__", prefix)))
    for command in (["validate"], ["plan"], ["apply", "--auto-approve"]):
        result = assert_ok(workspace.run(*command, str(workspace.directory)), 1)
        assert f"main.yaml:8: {message.replace('__P__', prefix)}" in result.stderr
        assert "Traceback" not in result.output
    assert api.get(f"v2/concurrency_limits/{prefix}-shared").status_code == 404


def test_a_replaced_storage_block_replaces_the_deployment_the_server_deletes_with_it(workspace, prefix, api):
    workspace.write("main.yaml", shared_config(prefix, deployment_fields=f"storage_block: github-repository/{prefix}-repo"))
    assert_ok(workspace.apply())
    before = deployment(api, f"{prefix}-etl", "nightly")["id"]
    replace = ("--replace", f"blocks.github-repository/{prefix}-repo")
    planned = assert_ok(workspace.plan(*replace), 2)
    assert f"(blocks.github-repository/{prefix}-repo is replaced, which deletes it on the server)" in planned.stdout
    assert "Plan: 2 to add, 0 to change, 2 to destroy." in planned.stdout
    assert_ok(workspace.apply(*replace))
    after = deployment(api, f"{prefix}-etl", "nightly")
    assert after["id"] != before and after["storage_document_id"] == block_id(api, "github-repository", f"{prefix}-repo")
    assert_ok(workspace.plan(), 0)
