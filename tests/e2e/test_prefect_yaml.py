"""A prefect.yaml as a configuration source, against a real server: anchors and merge keys, pools
declared or existing, slugless schedules matched by position (ids kept), variable and block
templates resolved at plan time (a secret never printed nor stored), build-step outputs from
`--step-output` and `step_outputs:`, and a missing one refused with its line. The comparison with
`prefect deploy` itself is tests/e2e/test_prefect_yaml_corpus.py; the reader's rules one by one are
tests/unit/test_prefect_yaml_reader.py.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from typing import Any

from tests.conftest import all_objects, assert_ok

FLOWS = '''\
from prefect import flow


@flow(name="{prefix}-etl-flow")
def etl(full_refresh: bool = False, limit: int = 10):
    """Load the warehouse."""


@flow
def load_data_{prefix}():
    pass
'''

POOLS = """\
work_pools:
  {prefix}-pool:
    type: process
    queues:
      high: {{priority: 1}}
"""


def deployment(api, flow: str, name: str) -> dict[str, Any]:
    response = api.get(f"deployments/name/{flow}/{name}")
    response.raise_for_status()
    return response.json()


def project(workspace, prefix: str, prefect_yaml: str) -> None:
    workspace.write("pools.yaml", POOLS.format(prefix=prefix))
    workspace.write("flows/etl.py", FLOWS.format(prefix=prefix))
    workspace.write("prefect.yaml", prefect_yaml.replace("PREFIX", prefix))


# --- the file as prefect deploy reads it ----------------------------------------------------------

ANCHORED = """\
name: warehouse
prefect-version: 3.8.8

build:
  - prefect_docker.deployments.steps.build_docker_image:
      id: build-image
      image_name: registry.example.com/etl
      tag: latest

pull:
  - prefect.deployments.steps.git_clone:
      id: clone
      repository: https://github.com/org/repo.git
      access_token: "{{ prefect.blocks.secret.repo-token }}"
  - prefect.deployments.steps.pip_install_requirements:
      directory: "{{ clone.directory }}"

definitions:
  work_pools:
    main: &main_pool
      name: PREFIX-pool
      work_queue_name: high
      job_variables:
        image: "{{ build-image.image }}"
  schedules:
    nightly: &nightly
      cron: "0 2 * * *"
      timezone: America/Chicago

deployments:
  - name: nightly
    entrypoint: flows/etl.py:etl
    version: "{{ $GIT_SHA }}"
    parameters: {full_refresh: false}
    tags: [zeta, etl]
    schedule: *nightly
    work_pool: *main_pool
    concurrency_limit: {limit: 2, collision_strategy: CANCEL_NEW}
    is_schedule_active: true
  - name: load
    entrypoint: flows/etl.py:load_data_PREFIX
    build: []
    pull:
      - prefect.deployments.steps.set_working_directory:
          directory: /opt/prefect/flows
    schedules:
      - {slug: hourly, interval: 3600}
    work_pool:
      <<: *main_pool
      job_variables: {env: {MODE: load}}
  - name: elsewhere
    entrypoint: flows/etl.py:load_data_PREFIX
    work_pool: {name: PREFIX-existing, work_queue_name: adhoc}
"""


def test_prefect_yaml_applies_as_prefect_deploy_would_and_replans_empty(workspace, prefix, api):
    api.post("work_pools/", json={"name": f"{prefix}-existing", "type": "process"}).raise_for_status()
    project(workspace, prefix, ANCHORED)
    flags = ("--step-output", "build-image.image=registry.example.com/etl:latest")
    env = {"GIT_SHA": "abc123"}

    planned = assert_ok(workspace.plan(*flags, env=env), 2)
    assert "prefect.yaml:39: deployments[0].is_schedule_active: is_schedule_active is not a prefect.yaml field" in planned.stdout
    assert "build and push steps are not run by prefect-provider (build-image)" in planned.stdout
    assert "Plan: 5 to add, 0 to change, 0 to destroy." in planned.stdout
    assert_ok(workspace.apply(*flags, env=env))

    nightly = deployment(api, f"{prefix}-etl-flow", "nightly")
    assert nightly["description"] == "Load the warehouse.", "the flow's docstring, as prefect deploy sets it"
    assert nightly["version"] == "abc123"
    assert nightly["tags"] == ["zeta", "etl"], "declared order, as prefect deploy sends them"
    assert nightly["work_pool_name"] == f"{prefix}-pool" and nightly["work_queue_name"] == "high"
    assert nightly["job_variables"] == {"image": "registry.example.com/etl:latest"}
    assert nightly["pull_steps"][0]["prefect.deployments.steps.git_clone"]["access_token"] == (
        "{{ prefect.blocks.secret.repo-token }}"
    ), "pull steps keep their templates for run time"
    assert [(s["slug"], s["schedule"]["cron"], s["schedule"]["timezone"]) for s in nightly["schedules"]] == [
        (None, "0 2 * * *", "America/Chicago")
    ]
    assert nightly["global_concurrency_limit"]["limit"] == 2
    assert nightly["parameter_openapi_schema"]["properties"]["limit"] == {
        "default": 10, "position": 1, "title": "limit", "type": "integer"}, "the schema of the flow's signature"

    load = deployment(api, f"load-data-{prefix}", "load")
    assert load["pull_steps"] == [{"prefect.deployments.steps.set_working_directory": {"directory": "/opt/prefect/flows"}}]
    assert load["job_variables"] == {"env": {"MODE": "load"}}, "a merge key's override wins"
    flow_file = (workspace.directory / "flows" / "etl.py").read_bytes()
    assert load["version"] == hashlib.md5(flow_file).hexdigest(), "the flow file's hash, as Prefect versions a flow"
    assert load["description"] == "None", "what prefect deploy's client sends for a missing description"

    elsewhere = deployment(api, f"load-data-{prefix}", "elsewhere")
    assert elsewhere["work_pool_name"] == f"{prefix}-existing" and elsewhere["work_queue_name"] == "adhoc"

    assert_ok(workspace.plan(*flags, env=env), 0)
    assert_ok(workspace.run("drift", str(workspace.directory), *flags, env=env), 0)
    changed = assert_ok(workspace.plan("--step-output", "build-image.image=registry.example.com/etl:v2", env=env), 2)
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in changed.stdout


def test_a_missing_step_output_is_refused_with_its_line_and_nothing_is_applied(workspace, prefix, api):
    project(workspace, prefix, ANCHORED)
    for command in (["plan", "--detailed-exitcode"], ["apply", "--auto-approve"]):
        result = assert_ok(workspace.run(*command, str(workspace.directory), env={"GIT_SHA": "abc"}), 1)
        assert (
            "prefect.yaml:24: deployments[0].work_pool.job_variables.image: {{ build-image.image }} has no value: "
            "it is the output of a build or push step, which prefect-provider does not run; supply it with "
            "--step-output build-image.image=VALUE"
        ) in result.stderr, result.output
        assert "Traceback" not in result.output
    assert not workspace.state_path.exists()
    assert api.get(f"deployments/name/{prefix}-etl-flow/nightly").status_code == 404


def test_step_outputs_from_the_configuration(workspace, prefix, api):
    api.post("work_pools/", json={"name": f"{prefix}-existing", "type": "process"}).raise_for_status()
    project(workspace, prefix, ANCHORED)
    workspace.write("outputs.yaml", "step_outputs:\n  build-image: {image: \"registry.example.com/etl:${env.TAG}\"}\n")
    env = {"GIT_SHA": "abc", "TAG": "t7"}
    assert_ok(workspace.apply(env=env))
    assert deployment(api, f"{prefix}-etl-flow", "nightly")["job_variables"] == {"image": "registry.example.com/etl:t7"}
    assert_ok(workspace.plan(env=env), 0)


# --- schedules without slugs ------------------------------------------------------------------

SLUGLESS = """\
deployments:
  - name: timed
    entrypoint: flows/etl.py:etl
    work_pool: {name: PREFIX-pool}
    schedules:
      - cron: "CRON"
      - interval: 3600
      - {slug: named, cron: "0 5 * * *"}
"""


def test_slugless_schedules_are_matched_by_position_and_updated_in_place(workspace, prefix, api):
    project(workspace, prefix, SLUGLESS.replace("CRON", "0 1 * * *"))
    before_apply = datetime.now(timezone.utc)
    assert_ok(workspace.apply())
    first = deployment(api, f"{prefix}-etl-flow", "timed")
    ids = sorted(s["id"] for s in first["schedules"])
    interval = next(s for s in first["schedules"] if "interval" in s["schedule"])
    anchor = datetime.fromisoformat(interval["schedule"]["anchor_date"])
    assert before_apply - timedelta(seconds=1) <= anchor <= datetime.now(timezone.utc), (
        "an interval without anchor_date is anchored when applied, as prefect deploy anchors it when it deploys")
    assert_ok(workspace.plan(), 0)

    workspace.write("prefect.yaml", SLUGLESS.replace("PREFIX", prefix).replace("CRON", "0 3 * * *"))
    planned = assert_ok(workspace.plan(), 2)
    assert 'schedules["#1"]' in planned.stdout or "#1" in planned.stdout, planned.stdout
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in planned.stdout
    assert_ok(workspace.apply())
    second = deployment(api, f"{prefix}-etl-flow", "timed")
    assert sorted(s["id"] for s in second["schedules"]) == ids, "updated in place: the ids are kept"
    assert sorted(s["schedule"].get("cron", "") for s in second["schedules"]) == ["", "0 3 * * *", "0 5 * * *"]
    assert next(s for s in second["schedules"] if "interval" in s["schedule"])["schedule"]["anchor_date"] == (
        interval["schedule"]["anchor_date"]), "the anchor chosen at the first apply stays"
    assert_ok(workspace.plan(), 0)


# --- variables and blocks ----------------------------------------------------------------------

TEMPLATED = """\
deployments:
  - name: templated
    entrypoint: flows/etl.py:etl
    version: "{{ prefect.variables.PREFIX_release }}"
    tags: ["{{ prefect.variables.PREFIX_team }}", "{{ $STAGE }}"]
    work_pool:
      name: PREFIX-pool
      job_variables:
        env:
          API_TOKEN: "{{ prefect.blocks.secret.PREFIX-token }}"
          STAGE: "{{ $STAGE }}"
    pull:
      - prefect.deployments.steps.git_clone:
          repository: https://github.com/org/repo.git
          access_token: "{{ prefect.blocks.secret.PREFIX-token }}"
"""


def secret_block(api, name: str, value: str) -> str:
    block_type = api.get("block_types/slug/secret").json()
    schema = api.post("block_schemas/filter", json={"block_schemas": {"block_type_id": {"any_": [block_type["id"]]}}}).json()[0]
    created = api.post("block_documents/", json={
        "name": name, "block_type_id": block_type["id"], "block_schema_id": schema["id"], "data": {"value": value}})
    created.raise_for_status()
    return created.json()["id"]


def test_variables_and_a_secret_block_are_resolved_at_plan_time_and_the_secret_never_shown(workspace, prefix, api):
    secret, rotated = f"{prefix}-TOPSECRET-1", f"{prefix}-TOPSECRET-2"
    block_id = secret_block(api, f"{prefix}-token", secret)
    for name, value in ((f"{prefix}_release", "2.4.1"), (f"{prefix}_team", "data")):
        api.post("variables/", json={"name": name, "value": value}).raise_for_status()
    project(workspace, prefix, TEMPLATED)
    env = {"STAGE": "prod"}

    outputs = [assert_ok(workspace.plan(env=env), 2), assert_ok(workspace.plan("--json", env=env), 2),
               assert_ok(workspace.apply(env=env))]
    found = deployment(api, f"{prefix}-etl-flow", "templated")
    assert found["version"] == "2.4.1" and found["tags"] == ["data", "prod"]
    assert found["job_variables"] == {"env": {"API_TOKEN": secret, "STAGE": "prod"}}
    assert found["pull_steps"][0]["prefect.deployments.steps.git_clone"]["access_token"] == (
        f"{{{{ prefect.blocks.secret.{prefix}-token }}}}"), "pull steps resolve it at run time"
    outputs.append(assert_ok(workspace.plan(env=env), 0))

    api.patch(f"block_documents/{block_id}", json={"data": {"value": rotated}, "merge_existing_data": False}).raise_for_status()
    changed = assert_ok(workspace.plan(env=env), 2)
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in changed.stdout
    assert "(sensitive value)" in changed.stdout
    saved = workspace.directory.parent / "plan.json"
    outputs += [changed, assert_ok(workspace.run("plan", str(workspace.directory), "--out", str(saved), env=env)),
                assert_ok(workspace.run("apply", str(saved), env=env)), assert_ok(workspace.plan(env=env), 0)]
    assert deployment(api, f"{prefix}-etl-flow", "templated")["job_variables"]["env"]["API_TOKEN"] == rotated, (
        "a saved plan holds a fingerprint: apply reads the secret again")

    state = workspace.state_path.read_text()
    record = json.loads(state)["resources"][f"deployments.{prefix}-etl-flow/templated"]
    assert record["attributes"]["job_variables"]["env"]["API_TOKEN"].startswith("fingerprint:")
    assert record["attributes"]["job_variables"]["env"]["STAGE"] == "prod"
    outputs.append(assert_ok(workspace.run("destroy", str(workspace.directory), "--auto-approve", env=env)))
    for text in [*(o.output for o in outputs), state, saved.read_text()]:
        assert secret not in text and rotated not in text


def test_a_missing_block_is_a_plan_error_naming_its_line(workspace, prefix, api):
    api.post("variables/", json={"name": f"{prefix}_release", "value": "1"}).raise_for_status()
    project(workspace, prefix, TEMPLATED)
    result = assert_ok(workspace.plan(env={"STAGE": "prod"}), 1)
    assert (f"prefect.yaml:10: deployments.{prefix}-etl-flow/templated.job_variables.env.API_TOKEN: "
            f"{{{{ prefect.blocks.secret.{prefix}-token }}}}: there is no block '{prefix}-token' of type 'secret'") in result.stderr
    assert not [d for d in all_objects(api, "deployments/filter") if d["name"] == "templated" and prefix in json.dumps(d)]


def test_prefect_yaml_listed_in_the_configuration(workspace, prefix, api):
    workspace.write("project/prefect.yaml", f"""\
deployments:
  - name: listed
    flow_name: {prefix}-flow
    entrypoint: flows/missing.py:main
    work_pool: {{name: {prefix}-pool}}
""")
    workspace.write("main.yaml", f"""\
prefect_yaml: [project/prefect.yaml]
work_pools:
  {prefix}-pool: {{type: process}}
""")
    planned = assert_ok(workspace.plan(), 2)
    assert f"+ deployments.{prefix}-flow/listed {{" in planned.stdout
    assert "flow file not found" in planned.stdout, "the missing flow file is a note: flow_name names the flow"
    assert_ok(workspace.apply())
    found = deployment(api, f"{prefix}-flow", "listed")
    assert found["work_pool_name"] == f"{prefix}-pool" and found["work_queue_name"] == "default"
    assert_ok(workspace.plan(), 0)
