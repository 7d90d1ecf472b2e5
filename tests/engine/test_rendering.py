"""Plan views for every action (human, JSON, markdown) and the saved-plan round trip."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from provider.errors import PlanError
from provider.plan import load_saved_plan
from provider.render import human, plan_json, plan_markdown
from tests.engine.memory import Memory

CBD = {"lifecycle": {"create_before_destroy": True}}

# (name, declarations first, an outside change, then (declarations, options), address,
#  action, human headline, terraform actions)
VIEWS = [
    ("create", None, None, ({"mem_items.a": {"value": 1}}, {}), "mem_items.a", "create", "will be created", ["create"]),
    ("update", {"mem_items.a": {"value": 1}}, None, ({"mem_items.a": {"value": 2}}, {}), "mem_items.a", "update",
     "will be updated in-place", ["update"]),
    ("replace", {"mem_items.a": {"flavor": "x"}}, None, ({"mem_items.a": {"flavor": "y"}}, {}), "mem_items.a", "replace",
     "must be replaced", ["delete", "create"]),
    ("replace requested", {"mem_items.a": {}}, None, ({"mem_items.a": {}}, {"replace": ["mem_items.a"]}), "mem_items.a",
     "replace", "must be replaced", ["delete", "create"]),
    ("create_before_destroy", {"mem_repeat.r": {"flavor": "x"}}, None, ({"mem_repeat.r": {"flavor": "y", **CBD}}, {}),
     "mem_repeat.r", "create-then-delete", "must be replaced", ["create", "delete"]),
    ("delete", {"mem_items.a": {"value": 1}}, None, ({}, {}), "mem_items.a", "delete", "will be destroyed", ["delete"]),
    ("destroy", {"mem_items.a": {"value": 1}}, None, (None, {"mode": "destroy"}), "mem_items.a", "delete",
     "will be destroyed", ["delete"]),
    ("forget", {"mem_items.a": {}, "mem_fixed.b": {}}, ("remove", "mem_fixed.b"), ({"mem_items.a": {}}, {}), "mem_fixed.b",
     "forget", "will be removed from state (not deleted)", ["forget"]),
    ("import", None, ("put", "mem_items.a"), ({"mem_items.a": {"tags": ["adopt-me"]}}, {}), "mem_items.a", "no-op",
     "will be imported", ["no-op"]),
    ("import and update", None, ("put", "mem_items.a"), ({"mem_items.a": {"tags": ["adopt-me"], "value": 3}}, {}),
     "mem_items.a", "update", "will be imported and updated in-place", ["update"]),
    ("moved", {"mem_items.a": {}}, None, ({"mem_items.b": {}}, {"moved": [("mem_items.a", "mem_items.b")]}), "mem_items.b",
     "update", "has moved from mem_items.a", ["update"]),
    ("moved and updated", {"mem_items.a": {}}, None, ({"mem_items.b": {"value": 1}}, {"moved": [("mem_items.a", "mem_items.b")]}),
     "mem_items.b", "update", "has moved from mem_items.a and will be updated in-place", ["update"]),
    ("computed", None, None, ({"mem_hooks.h": {}}, {}), "mem_hooks.h", "create", "will be created", ["create"]),
]


def _prepare(memory: Memory, first, outside) -> None:
    if first is not None:
        assert memory.apply(first)[1].ok
    if outside == ("remove", "mem_fixed.b"):
        memory.server.remove("mem_fixed.b")
    elif outside == ("put", "mem_items.a"):
        memory.server.put("mem_items", "a", value=None, flavor=None, tags=["adopt-me"])


@pytest.mark.parametrize("first, outside, then, address, action, headline, actions", [v[1:] for v in VIEWS],
                         ids=[v[0] for v in VIEWS])
def test_views_of_each_action(memory: Memory, first, outside, then, address, action, headline, actions) -> None:
    _prepare(memory, first, outside)
    declarations, options = then
    plan = memory.plan(declarations, **options)
    change = next(c for c in plan.changes if c.address == address)
    assert change.action == action

    text = human(plan).plain
    assert f"  # {address} {headline}\n" in text
    symbol = "+/-" if actions == ["create", "delete"] else {"create": "+", "update": "~", "replace": "-/+", "delete": "-",
                                                             "forget": ".", "no-op": " "}[action]
    assert f"{symbol:>3} {address} {{" in text
    if change.reason:
        assert f"  # ({change.reason})" in text
    assert text.rstrip().endswith(".")  # the summary line

    report = plan_json(plan)
    json.dumps(report)  # plain JSON
    [item] = [i for i in report["resource_changes"] if i["address"] == address]
    assert item["change"]["actions"] == actions
    assert item["type"] == address.split(".")[0] and item["name"] == address.split(".", 1)[1]
    assert ("importing" in item["change"]) == change.importing
    assert report["has_changes"] is True
    assert report["summary"] == plan.count()

    markdown = plan_markdown(plan)
    assert f"`{address}`" in markdown
    assert ("> [!WARNING]" in markdown) == any(c.action.deletes for c in plan.changes)


def test_values_known_after_apply(memory: Memory) -> None:
    plan = memory.plan({"mem_hooks.h": {}})
    [item] = plan_json(plan)["resource_changes"]
    assert item["change"]["after_unknown"] == {"endpoint": True, "priority": True}
    assert "endpoint" not in item["change"]["after"]
    assert "(known after apply)" in human(plan).plain


def test_no_changes_view(memory: Memory) -> None:
    memory.apply({"mem_items.a": {}})
    plan = memory.plan({"mem_items.a": {}})
    assert "No changes. The live workspace matches the configuration." in human(plan).plain
    assert plan_json(plan)["has_changes"] is False
    assert plan_markdown(plan).startswith("### prefect-provider plan: no changes")


@pytest.mark.parametrize("outside, line", [({"value": 7}, "~ mem_items.a {"), (None, "- mem_items.a: deleted outside")])
def test_drift_views(memory: Memory, outside, line) -> None:
    memory.apply({"mem_items.a": {"value": 1}})
    if outside:
        memory.server.edit("mem_items.a", **outside)
    else:
        memory.server.remove("mem_items.a")
    plan = memory.plan({"mem_items.a": {"value": 1}}, mode="refresh-only")
    text = human(plan).plain
    assert "Objects have changed outside of prefect-provider:" in text and line in text
    assert "Applying this refresh-only plan updates the state to match" in text
    assert [d["address"] for d in plan_json(plan)["resource_drift"]] == ["mem_items.a"]


def test_summary_counts(memory: Memory) -> None:
    memory.apply({"mem_items.a": {"flavor": "x"}, "mem_items.b": {}, "mem_fixed.c": {}, "mem_fixed.d": {}})
    memory.server.remove("mem_fixed.d")
    memory.server.put("mem_items", "e", value=None, flavor=None, tags=["adopt-me"])
    plan = memory.plan({"mem_items.a": {"flavor": "y"}, "mem_items.b": {"value": 1}, "mem_items.e": {"tags": ["adopt-me"]},
                        "mem_fixed.f": {}})
    assert plan.count() == {"add": 2, "change": 1, "destroy": 2, "import": 1, "forget": 1}
    assert "Plan: 2 to add, 1 to change, 2 to destroy, 1 to import, 1 to forget." in human(plan).plain


# --- saved plans -------------------------------------------------------------------------------

@pytest.mark.parametrize("first, outside, then, address, action, headline, actions", [v[1:] for v in VIEWS],
                         ids=[v[0] for v in VIEWS])
def test_a_saved_plan_round_trips_and_applies_the_same(memory: Memory, tmp_path: Path, first, outside, then, address,
                                                       action, headline, actions) -> None:
    _prepare(memory, first, outside)
    declarations, options = then
    plan = memory.plan(declarations, **options)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan.to_file(), indent=2))
    saved = load_saved_plan(path)
    assert [asdict(c) for c in saved.changes] == [asdict(c) for c in plan.changes]
    assert [asdict(c) for c in saved.drift] == [asdict(c) for c in plan.drift]
    assert (saved.mode, saved.lineage, saved.serial, saved.moved, saved.warnings) == \
        (plan.mode, plan.lineage, plan.serial, plan.moved, plan.warnings)
    assert human(saved).plain == human(plan).plain and plan_json(saved) == plan_json(plan)
    result = memory.apply_plan(saved)
    assert result.ok, result.failed
    if declarations is not None:
        options.pop("replace", None)  # asked once
        assert not memory.plan(declarations, **options).has_changes


@pytest.mark.parametrize("damage, message", [
    (lambda d: d.update(plan_format=1), "has plan format 1"),
    (lambda d: d["changes"][0].update(action="explode"), r"changes\[0\].action: Input should be 'create'"),
    (lambda d: d["changes"][0].update(address="nowhere"), "address 'nowhere' is not mem_items 'a'"),
    (lambda d: d["changes"][0].update(moved_from="nowhere"), "is not an address"),
    (lambda d: d["changes"][0].update(kind="mem_nothing", address="mem_nothing.a"), "unknown kind 'mem_nothing'"),
    (lambda d: d["changes"][0].update(after=None), "a create needs after"),
    (lambda d: d.pop("plan_format"), "is not a prefect-provider plan"),
    (lambda d: d.update(mode="sideways"), "is malformed"),
])
def test_a_damaged_saved_plan_is_refused(memory: Memory, tmp_path: Path, damage, message) -> None:
    data = memory.plan({"mem_items.a": {"value": 1}}).to_file()
    damage(data)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(data))
    with pytest.raises(PlanError, match=message):
        load_saved_plan(path)
