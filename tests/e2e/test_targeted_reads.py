"""`plan --target ADDR` reads only what the target can touch: the target and what it depends on,
not every kind in the workspace; drift elsewhere is neither read nor reported."""

from __future__ import annotations

import pytest

from tests.conftest import assert_ok
from tests.fault_proxy import FaultProxy


def write_config(workspace, prefix: str) -> None:
    """A pool with a queue, and 30 variables."""
    variables = "".join(f"  {prefix}_v{i}: {{value: {i}}}\n" for i in range(30))
    workspace.write("main.yaml", f"work_pools:\n  {prefix}-pool:\n    type: process\n"
                                 f"    queues:\n      critical: {{priority: 1}}\nvariables:\n{variables}")


@pytest.mark.parametrize(("target", "most_requests"), [
    ("variables.{p}_v1", 2),  # one listing of variables
    ("work_pools.{p}-pool.work_queues.critical", 2),  # the queue and its pool
])
def test_targeted_plan_reads_only_the_targets_closure(workspace, prefix, target, most_requests):
    write_config(workspace, prefix)
    assert_ok(workspace.apply())
    with FaultProxy(workspace.api_url, []) as proxy:
        assert_ok(workspace.plan(env={"PREFECT_API_URL": proxy.api_url}))
        full = sum(proxy.requests.values())
        proxy.requests.clear()
        result = assert_ok(workspace.plan("--target", target.format(p=prefix), env={"PREFECT_API_URL": proxy.api_url}))
        targeted = sum(proxy.requests.values())
    assert "No changes." in result.stdout
    assert proxy.requests["write"] == 0
    assert targeted <= most_requests and targeted < full, f"{targeted} requests for {target}, {full} for the whole plan"


def test_drift_outside_the_target_is_not_reported(workspace, prefix, api):
    write_config(workspace, prefix)
    assert_ok(workspace.apply())
    api.delete(f"variables/name/{prefix}_v2").raise_for_status()
    targeted = assert_ok(workspace.plan("--target", f"variables.{prefix}_v1"))
    assert "No changes." in targeted.stdout and f"{prefix}_v2" not in targeted.output
    whole = assert_ok(workspace.plan(), code=2)
    assert f"{prefix}_v2" in whole.stdout and "deleted outside prefect-provider" in whole.stdout
