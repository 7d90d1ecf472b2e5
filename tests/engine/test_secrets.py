"""Sensitive attributes: the server gets the clear value; plans, their views, saved plans and state
hold only fingerprints; a changed secret (in the configuration or on the server) is still seen."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provider.render import human, plan_json, plan_markdown
from tests.engine.memory import Memory

TOKEN = "hunter2-s3cr3t"
OTHER = "correct-horse-battery"


def _everything_shown(memory: Memory, plan) -> str:
    """Every text a plan and its apply leave behind: views, the saved plan, the state file and its journal."""
    backend = memory.backend
    files = [p.read_text() for p in (backend.path, backend.journal_path) if p.exists()]
    return "\n".join([human(plan).plain, json.dumps(plan_json(plan)), plan_markdown(plan), json.dumps(plan.to_file()),
                      *files])


@pytest.mark.parametrize("first, then, action", [
    (None, TOKEN, "create"),
    (OTHER, TOKEN, "update"),
    (TOKEN, None, "update"),
    (TOKEN, TOKEN, "no-op"),
])
def test_a_secret_reaches_the_server_and_nothing_else(memory: Memory, first, then, action) -> None:
    if first is not None:
        memory.apply({"mem_secrets.s": {"token": first}})
    plan, result = memory.apply({"mem_secrets.s": {"token": then}})
    [change] = plan.changes
    assert change.action == action and result.ok
    assert memory.server.one("mem_secrets.s").attributes["token"] == then
    shown = _everything_shown(memory, plan)
    assert TOKEN not in shown and OTHER not in shown
    if then is not None:
        assert memory.state().resources["mem_secrets.s"].attributes["token"].startswith("fingerprint:")
        assert "(sensitive value)" in human(plan).plain or action == "no-op"


def test_a_secret_changed_on_the_server_is_drift(memory: Memory) -> None:
    memory.apply({"mem_secrets.s": {"token": TOKEN}})
    memory.server.edit("mem_secrets.s", token=OTHER)
    plan, result = memory.apply({"mem_secrets.s": {"token": TOKEN}})
    assert [(d.action, d.changed) for d in plan.drift] == [("update", ("token",))]
    assert [(c.action, c.changed) for c in plan.changes] == [("update", ("token",))]
    assert memory.server.one("mem_secrets.s").attributes["token"] == TOKEN
    assert OTHER not in _everything_shown(memory, plan) and TOKEN not in _everything_shown(memory, plan)


def test_a_saved_plan_holds_no_secret(memory: Memory, tmp_path: Path) -> None:
    plan = memory.plan({"mem_secrets.s": {"token": TOKEN}})
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan.to_file()))
    assert TOKEN not in path.read_text()
    assert plan.secrets == {"mem_secrets.s": {"token": TOKEN}}  # in memory only, for the apply
