"""`export --pulumi` writes a Pulumi program that takes the live workspace into a stack as it is.

The program runs under Pulumi's mocks with the mock engine of tests/pulumi_harness.py, which calls
the dynamic providers against the real server: every resource adopts its object (same id, nothing
created) and then diffs clean against its own outputs.
"""

from __future__ import annotations

import ast
import json
import runpy
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pulumi
import pytest
from pulumi.runtime import MockResourceArgs, Mocks

from provider.errors import ProviderError
from provider.pulumi import PROVIDERS, KindResource, Variable
from provider.server import EmbeddedServer
from tests.conftest import RetryingTransport, Workspace, all_objects, assert_ok
from tests.pulumi_harness import mocked_pulumi

# Where each kind's objects are listed, for the ids on the server before and after.
LISTINGS = ["work_pools/filter", "work_queues/filter", "variables/filter", "block_documents/filter",
            "flows/filter", "deployments/filter", "automations/filter", "v2/concurrency_limits/filter"]


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """export reads a whole workspace: this module gets a server of its own."""
    server = EmbeddedServer(tmp_path_factory.mktemp("pulumi-export-server"))
    yield server.start().api_url
    server.stop()


@pytest.fixture
def api(own_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=own_server + "/", timeout=30, transport=RetryingTransport()) as client:
        yield client


@pytest.fixture
def source(own_server: str, tmp_path: Path) -> Workspace:
    (tmp_path / "home").mkdir()
    workspace = Workspace(tmp_path / "source", own_server, tmp_path / "home")
    workspace.directory.mkdir()
    return workspace


def server_ids(api: httpx.Client) -> set[str]:
    return {obj["id"] for path in LISTINGS for obj in all_objects(api, path)}


def test_the_program_adopts_every_object_and_changes_nothing(source: Workspace, api: httpx.Client, own_server: str,
                                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    source.write("main.yaml", """\
        work_pools:
          etl:
            type: process
            concurrency_limit: 4
            queues:
              high: {priority: 1, concurrency_limit: 1}
              low: {priority: 5}
          etl_pool: {type: process}     # the same identifier as etl-pool: numbered
          etl-pool: {type: process, description: "The $${HOME} of \\"jobs\\""}  # kept as it is
        variables:
          settings: {value: {batch: 500, dry_run: false}, tags: [etl]}
        blocks:
          secret/repo-token: {data: {value: "${env.REPO_TOKEN}"}}
        deployments:
          etl/nightly:
            entrypoint: flows/etl.py:etl
            work_pool: etl
            work_queue: high
            parameters: {full_refresh: false}
            schedules:
              - {slug: nightly, cron: "0 2 * * *", timezone: UTC}
            triggers:     # an automation the deployment owns: exported as an automation of its own
              - {name: after-upstream, expect: [prefect.flow-run.Completed]}
        automations:
          rerun-nightly:
            trigger: {type: event, expect: [prefect.flow-run.Failed]}
            actions: [{type: run-deployment, deployment: etl/nightly}]
        """)
    token = f"tok-{secrets.token_hex(8)}"
    assert_ok(source.apply(env={"REPO_TOKEN": token}))
    before = server_ids(api)

    out = tmp_path / "program"
    result = assert_ok(source.run("export", "--pulumi", "--out", str(out)))
    assert "SECRET_REPO_TOKEN_VALUE  (blocks.secret/repo-token data.value)" in result.stdout
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "Pulumi.yaml", "__main__.py", "requirements.txt", "templates/etl-pool.json", "templates/etl.json",
        "templates/etl_pool.json"]
    for path in out.rglob("*"):
        if path.is_file():
            assert token not in path.read_text(), path
    program = (out / "__main__.py").read_text()
    ast.parse(program)
    assert 'data={"value": os.environ["SECRET_REPO_TOKEN_VALUE"]}' in program, "the YAML export's variable name"
    assert 'base_job_template=from_json("templates/etl.json")' in program
    assert "work_pool=work_pool_etl.name" in program, "a reference is the other resource's output"
    assert "opts=pulumi.ResourceOptions(depends_on=[deployment_etl_nightly])" in program
    assert {"work_pool_etl_pool =", "work_pool_etl_pool_2 ="} <= set(line[:line.find("=") + 1] for line in program.splitlines())
    assert 'description="The ${HOME} of \\"jobs\\""' in program, "no YAML escaping: Pulumi inputs are taken as they are"

    monkeypatch.setenv("SECRET_REPO_TOKEN_VALUE", token)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with mocked_pulumi("prefect-workspace", "dev", {"prefect:apiUrl": own_server}) as (mocks, _):
        names = runpy.run_path(str(out / "__main__.py"))
        resources = [value for value in names.values() if isinstance(value, KindResource)]
        wait_for(resources)
        for (typ, provider, obj_id, outputs), (_, inputs) in zip(mocks.created, mocks.named):
            assert provider.diff(obj_id, outputs, inputs).changes is False, typ
            assert token not in repr(outputs)

    assert len(mocks.created) == len(resources) == 11
    assert sorted(typ.rsplit(":", 1)[1] for typ, *_ in mocks.created) == sorted(
        ["WorkPool"] * 3 + ["WorkQueue"] * 2 + ["Variable", "Block", "Flow", "Deployment"] + ["Automation"] * 2)
    adopted = {f"{provider.kind_name}.{name}": obj_id for (_, provider, obj_id, _), (name, _) in zip(mocks.created, mocks.named)}
    assert set(adopted.values()) <= before, "every resource adopted an existing object"
    assert server_ids(api) == before, "nothing was created or deleted"
    yaml_export = tmp_path / "yaml"
    assert_ok(source.run("export", "--out", str(yaml_export)))
    state = json.loads((yaml_export / "prefect-provider.state.json").read_text())
    assert adopted == {address: record["id"] for address, record in state["resources"].items()}, "the two exports agree"
    deployment = api.post("deployments/filter", json={}).json()[0]
    assert (deployment["work_pool_name"], deployment["work_queue_name"]) == ("etl", "high")


def wait_for(resources: list[KindResource]) -> None:
    """Until the mock engine has created every resource (registration runs in the background)."""

    @pulumi.runtime.test
    def created():
        return pulumi.Output.all(*(resource.id for resource in resources))

    created()


@pytest.mark.parametrize("args, message", [
    (["--kinds", "variables,nope"], "unknown kinds nope"),
    (["--kinds", "work_pools,Variables"], "unknown kinds Variables"),
])
def test_bad_input_is_refused_before_anything_is_written(source: Workspace, tmp_path: Path, args: list[str], message: str):
    out = tmp_path / "program"
    failed = assert_ok(source.run("export", "--pulumi", *args, "--out", str(out)), 1)
    assert message in failed.stderr and "Traceback" not in failed.output
    assert not out.exists()


def test_an_existing_program_is_never_overwritten(source: Workspace, tmp_path: Path):
    out = tmp_path / "program"
    assert_ok(source.run("export", "--pulumi", "--kinds", "variables", "--out", str(out)))
    again = assert_ok(source.run("export", "--pulumi", "--kinds", "variables", "--out", str(out)), 1)
    assert f"{out / '__main__.py'} already exists: export into a new directory" in again.stderr


def test_adopting_an_automation_needs_its_name_to_be_unique(api: httpx.Client, own_server: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PREFECT_API_URL", own_server)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    body: dict[str, Any] = {"name": "twice", "trigger": {"type": "event", "expect": ["x"], "posture": "Reactive"},
                            "actions": [{"type": "do-nothing"}]}
    first = api.post("automations/", json=body).json()["id"]
    inputs = {"name": "twice", "trigger": {"type": "event", "expect": ["x"]}, "actions": [{"type": "do-nothing"}], "adopt": True}
    provider = PROVIDERS["automations"]()
    outputs = provider.create(inputs).outs
    assert outputs["state"]["resources"]["automations.twice"]["id"] == first, "the one automation of the name, adopted"

    second = api.post("automations/", json=body).json()["id"]
    with pytest.raises(ProviderError, match=rf"automations.twice: several objects on the server have this name \(ids .*{second}"):
        PROVIDERS["automations"]().create(inputs)
    assert len(api.post("automations/filter", json={"automations": {"name": {"any_": ["twice"]}}}).json()) == 2


class Recorded(Mocks):
    """Pulumi's mocks taking every resource as declared, without a server: the program alone."""

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return f"{args.name}-id", args.inputs

    def call(self, args):
        raise NotImplementedError


def test_a_program_of_a_large_workspace_declares_every_resource():
    """Pulumi re-wraps pickle on each dynamic resource it serializes; a program of a thousand
    resources must still declare them all (it failed with a RecursionError past ~300)."""
    pulumi.runtime.set_mocks(Recorded(), project="prefect-workspace", stack="dev", preview=False)
    variables = [Variable(f"v{i}", name=f"v_{i}", value=i, adopt=True) for i in range(1000)]
    wait_for(variables)
    assert len({id(v) for v in variables}) == 1000
