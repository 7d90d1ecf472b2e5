"""export writes the live workspace as configuration plus state; a plan right after is empty."""

from __future__ import annotations

import json

import pytest

from provider.server import EmbeddedServer
from tests.conftest import Workspace, assert_ok


@pytest.fixture(scope="module")
def own_server(tmp_path_factory):
    """export reads a whole workspace: this test gets a server of its own."""
    server = EmbeddedServer(tmp_path_factory.mktemp("export-server"))
    info = server.start()
    yield info.api_url
    server.stop()


def test_export_then_plan_is_empty(own_server, tmp_path, api):
    source = Workspace(tmp_path / "source", own_server, tmp_path / "home")
    source.directory.mkdir()
    (tmp_path / "home").mkdir()
    source.write("main.yaml", """\
        work_pools:
          etl:
            type: process
            concurrency_limit: 4
            queues:
              high: {priority: 2, concurrency_limit: 1}
              default: {priority: 9}
        variables:
          branch: {value: main, tags: [git]}
          settings: {value: {batch: 500}}
        blocks:
          secret/repo-token: {data: {value: "${env.REPO_TOKEN}"}}
        concurrency_limits:
          warehouse: {limit: 10}
        deployments:
          etl/nightly:
            entrypoint: flows/etl.py:etl
            work_pool: etl
            work_queue: high
            parameters: {full_refresh: false}
            schedules:
              - {slug: nightly, cron: "0 2 * * *", timezone: UTC}
        automations:
          rerun:
            trigger: {type: event, expect: [prefect.flow-run.Failed]}
            actions: [{type: run-deployment, deployment: etl/nightly}]
        """)
    secret = {"REPO_TOKEN": "tok-exported-secret-123"}
    assert_ok(source.apply(env=secret))

    out = tmp_path / "exported"
    result = assert_ok(source.run("export", "--out", str(out)))
    assert "SECRET_REPO_TOKEN_VALUE" in result.stdout and "tok-exported-secret-123" not in result.output
    assert (out / "templates" / "etl.json").exists()
    assert json.loads((out / "templates" / "etl.json").read_text())["job_configuration"]["command"] == "{{ command }}"
    for path in out.rglob("*"):
        if path.is_file():
            assert "tok-exported-secret-123" not in path.read_text(), path
    assert "${env.SECRET_REPO_TOKEN_VALUE}" in (out / "blocks.yaml").read_text()

    exported = Workspace(out, own_server, tmp_path / "home")
    assert_ok(exported.plan(env={"SECRET_REPO_TOKEN_VALUE": secret["REPO_TOKEN"]}), 0)
    # The export manages what it declares: a change to it plans as an update, not a create.
    text = (out / "variables.yaml").read_text().replace("main", "develop")
    (out / "variables.yaml").write_text(text)
    changed = assert_ok(exported.plan(env={"SECRET_REPO_TOKEN_VALUE": secret["REPO_TOKEN"]}), 2)
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in changed.stdout


def test_export_of_chosen_kinds_refuses_an_existing_state(own_server, tmp_path):
    workspace = Workspace(tmp_path / "w", own_server, tmp_path / "home")
    (tmp_path / "home").mkdir()
    out = tmp_path / "vars-only"
    result = assert_ok(workspace.run("export", "--kinds", "variables", "--out", str(out)))
    assert [p.name for p in out.glob("*.yaml")] in ([], ["variables.yaml"])
    assert "variables" in result.stdout
    again = assert_ok(workspace.run("export", "--kinds", "variables", "--out", str(out)), 1)
    assert "already exists" in again.stderr
    assert "unknown kinds" in assert_ok(workspace.run("export", "--kinds", "nope", "--out", str(tmp_path / "x")), 1).stderr
