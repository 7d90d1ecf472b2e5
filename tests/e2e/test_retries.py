"""The HTTP layer against injected faults in front of the real server."""

from __future__ import annotations

from tests.conftest import all_objects, assert_ok
from tests.e2e.test_lifecycle import pool_config
from tests.fault_proxy import FaultProxy


def test_apply_rides_out_503_429_and_dropped_connections(workspace, prefix, api):
    workspace.write("main.yaml", pool_config(prefix))
    script = ["503", "429", "drop", "503", "ok", "429", "drop"]
    with FaultProxy(workspace.api_url, script) as proxy:
        result = assert_ok(workspace.apply("--api-url", proxy.api_url, "--parallelism", "1"))
        assert "Apply complete! Resources: 6 added" in result.stdout
        assert proxy.seen["503"] == 2 and proxy.seen["429"] == 2 and proxy.seen["drop"] == 2
    assert api.get(f"work_pools/{prefix}-pool").status_code == 200
    assert_ok(workspace.plan(), 0)


def test_a_create_whose_answer_was_lost_is_adopted_not_duplicated(workspace, prefix, api):
    workspace.write("main.yaml", f"variables:\n  {prefix}_one: {{value: 1}}\n")
    with FaultProxy(workspace.api_url, ["drop-after"]) as proxy:
        assert_ok(workspace.apply("--api-url", proxy.api_url))
        assert proxy.seen["drop-after"] == 1
    matching = [v for v in all_objects(api, "variables/filter") if v["name"] == f"{prefix}_one"]
    assert len(matching) == 1
    assert workspace.state()["resources"][f"variables.{prefix}_one"]["id"] == matching[0]["id"]
    assert_ok(workspace.plan(), 0)


def test_a_noop_apply_sends_no_writes_and_reads_in_bulk(workspace, prefix):
    workspace.write("main.yaml", pool_config(prefix))
    assert_ok(workspace.apply())
    with FaultProxy(workspace.api_url, []) as proxy:
        result = assert_ok(workspace.apply("--api-url", proxy.api_url))
        assert "No changes." in result.stdout
        assert proxy.requests["write"] == 0
        # One bulk listing per kind (3 kinds) plus the pool type's default template lookup:
        # independent of how many objects there are.
        assert proxy.requests["read"] <= 4


def test_an_overloaded_server_gets_fewer_writes_at_once(workspace, prefix, api):
    """Each 503 halves the requests in flight (32, 16, ..., 1): after five, one write at a time."""
    workspace.write("vars.yaml", "variables:\n" + "".join(f"  {prefix}_v{i}: {{value: {i}}}\n" for i in range(40)))
    with FaultProxy(workspace.api_url, ["ok"] * 10 + ["503"] * 5, write_delay=0.02) as proxy:
        assert_ok(workspace.apply("--api-url", proxy.api_url, "--parallelism", "10"))
        assert proxy.seen["503"] == 5
        assert max(proxy.concurrency[:10]) > 1, "writes went in parallel before the server was overloaded"
        assert proxy.concurrency[-20:] == [1] * 20
    assert len([v for v in all_objects(api, "variables/filter") if v["name"].startswith(f"{prefix}_v")]) == 40
    assert_ok(workspace.plan(), 0)
