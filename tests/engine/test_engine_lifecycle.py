"""lifecycle: prevent_destroy (declared, and recorded in state), ignore_changes, create_before_destroy."""

from __future__ import annotations

import pytest

from provider.errors import PlanError, ServerError
from provider.render import human, plan_json
from tests.engine.memory import Memory

GUARD = {"lifecycle": {"prevent_destroy": True}}


# --- prevent_destroy -------------------------------------------------------------------------

# (name, declared first, then planned with (declarations, mode, --replace), the guarded address)
DESTRUCTIONS = [
    ("a replace field", {"mem_items.a": {"flavor": "x", **GUARD}}, ({"mem_items.a": {"flavor": "y", **GUARD}}, "normal", []),
     "mem_items.a"),
    ("--replace", {"mem_items.a": GUARD}, ({"mem_items.a": GUARD}, "normal", ["mem_items.a"]), "mem_items.a"),
    ("destroy", {"mem_items.a": GUARD, "mem_fixed.b": {}}, ({"mem_items.a": GUARD, "mem_fixed.b": {}}, "destroy", []),
     "mem_items.a"),
    ("a cascade from its parent", {"mem_items.p": {"flavor": "x"}, "mem_children.p/c": GUARD},
     ({"mem_items.p": {"flavor": "y"}, "mem_children.p/c": GUARD}, "normal", []), "mem_children.p/c"),
    ("its block removed (the guard in state)", {"mem_items.a": GUARD, "mem_fixed.b": {}}, ({"mem_fixed.b": {}}, "normal", []),
     "mem_items.a"),
    ("destroy without a configuration (the guard in state)", {"mem_items.a": GUARD}, (None, "destroy", []), "mem_items.a"),
    ("a repeatable name", {"mem_repeat.r": {"flavor": "x", **GUARD}},
     ({"mem_repeat.r": {"flavor": "y", **GUARD}}, "normal", []), "mem_repeat.r"),
]


@pytest.mark.parametrize("first, then, guarded", [d[1:] for d in DESTRUCTIONS], ids=[d[0] for d in DESTRUCTIONS])
def test_prevent_destroy_refuses_the_plan(memory: Memory, first, then, guarded) -> None:
    assert memory.apply(first)[1].ok
    declarations, mode, replace = then
    with pytest.raises(PlanError, match="lifecycle.prevent_destroy forbids destroying") as refused:
        memory.plan(declarations, mode=mode, replace=replace)
    message = str(refused.value)
    if declarations is not None and guarded in declarations:
        assert f"{guarded} (memory.yaml:" in message  # named with its file and line
    else:
        assert f"{guarded}: " in message and "declare it again with `lifecycle: {prevent_destroy: false}`" in message
    assert memory.server.one(guarded).id == memory.records()[guarded]


def test_prevent_destroy_allows_updates(memory: Memory) -> None:
    memory.apply({"mem_items.a": {"value": 1, **GUARD}})
    plan, result = memory.apply({"mem_items.a": {"value": 2, **GUARD}})
    assert [c.action for c in plan.changes] == ["update"] and result.ok


@pytest.mark.parametrize("guard", [True, False])
def test_setting_or_lifting_the_guard_writes_only_state(memory: Memory, guard: bool) -> None:
    memory.apply({"mem_items.a": {"lifecycle": {"prevent_destroy": not guard}}})
    memory.server.log.clear()
    plan, result = memory.apply({"mem_items.a": {"lifecycle": {"prevent_destroy": guard}}})
    [change] = plan.changes
    assert (change.action, change.importing) == ("no-op", True)
    assert change.reason == f"lifecycle.prevent_destroy {'set' if guard else 'lifted'}: recorded in state"
    assert result.ok and memory.server.log == []
    assert memory.state().resources["mem_items.a"].prevent_destroy is guard
    assert not memory.plan({"mem_items.a": {"lifecycle": {"prevent_destroy": guard}}}).has_changes


def test_a_lifted_guard_then_allows_the_delete(memory: Memory) -> None:
    memory.apply({"mem_items.a": GUARD})
    with pytest.raises(PlanError):
        memory.plan({})
    memory.apply({"mem_items.a": {"lifecycle": {"prevent_destroy": False}}})
    plan, result = memory.apply({})
    assert [c.action for c in plan.changes] == ["delete"] and result.ok
    assert memory.server.addresses() == []


# --- ignore_changes --------------------------------------------------------------------------

IGNORE_VALUE = {"lifecycle": {"ignore_changes": ["value"]}}


@pytest.mark.parametrize("configured, live, expected", [
    (2, 1, "no-op"),  # the configuration changed: ignored
    (1, 7, "no-op"),  # the server changed: ignored
    (5, 7, "no-op"),
])
def test_ignore_changes_ignores_the_field(memory: Memory, configured, live, expected) -> None:
    memory.apply({"mem_items.a": {"value": 1, **IGNORE_VALUE}})
    memory.server.edit("mem_items.a", value=live)
    plan, result = memory.apply({"mem_items.a": {"value": configured, **IGNORE_VALUE}})
    assert [c.action for c in plan.changes] == [expected]
    assert memory.server.one("mem_items.a").attributes["value"] == live


def test_ignored_fields_keep_their_live_value_in_an_update(memory: Memory) -> None:
    memory.apply({"mem_items.a": {"value": 1, "tags": ["a"], **IGNORE_VALUE}})
    memory.server.edit("mem_items.a", value=7)
    plan, result = memory.apply({"mem_items.a": {"value": 1, "tags": ["b"], **IGNORE_VALUE}})
    assert [(c.action, c.changed) for c in plan.changes] == [("update", ("tags",))]
    assert memory.server.one("mem_items.a").attributes == {"value": 7, "flavor": None, "tags": ["b"]}
    assert memory.state().resources["mem_items.a"].attributes["value"] == 7


def test_ignored_fields_carry_over_to_a_replacement(memory: Memory) -> None:
    memory.apply({"mem_items.a": {"value": 1, "flavor": "x", **IGNORE_VALUE}})
    memory.server.edit("mem_items.a", value=7)
    plan, result = memory.apply({"mem_items.a": {"value": 1, "flavor": "y", **IGNORE_VALUE}})
    assert [c.action for c in plan.changes] == ["replace"] and result.ok
    assert memory.server.one("mem_items.a").attributes["value"] == 7


def test_ignoring_a_replace_field_avoids_the_replacement(memory: Memory) -> None:
    memory.apply({"mem_items.a": {"flavor": "x"}})
    plan = memory.plan({"mem_items.a": {"flavor": "y", "lifecycle": {"ignore_changes": ["flavor"]}}})
    assert [c.action for c in plan.changes] == ["no-op"]


def test_ignore_changes_still_shows_drift(memory: Memory) -> None:
    memory.apply({"mem_items.a": {"value": 1, **IGNORE_VALUE}})
    memory.server.edit("mem_items.a", value=7)
    plan = memory.plan({"mem_items.a": {"value": 1, **IGNORE_VALUE}})
    assert [(d.address, d.changed) for d in plan.drift] == [("mem_items.a", ("value",))]
    assert not plan.pending


# --- create_before_destroy -------------------------------------------------------------------

CBD = {"lifecycle": {"create_before_destroy": True}}


def refuse_delete(write, phase) -> None:
    """A server hook: every delete fails before it takes effect."""
    if write.op == "delete" and phase == "before":
        raise ServerError("the server is busy")


@pytest.mark.parametrize("kind", ["mem_items", "mem_fixed", "mem_children", "mem_hooks"])
def test_create_before_destroy_is_refused_for_unique_names(memory: Memory, kind: str) -> None:
    name = "p/c" if kind == "mem_children" else "a"
    parent = {"mem_items.p": {}} if kind == "mem_children" else {}
    memory.apply({**parent, f"{kind}.{name}": {"flavor": "x"}})
    with pytest.raises(PlanError, match="create_before_destroy cannot work here") as refused:
        memory.plan({**parent, f"{kind}.{name}": {"flavor": "y", **CBD}})
    assert f"{kind}.{name} (memory.yaml:" in str(refused.value)


def test_create_before_destroy_without_a_replacement_is_fine(memory: Memory) -> None:
    memory.apply({"mem_items.a": {"value": 1}})
    plan, result = memory.apply({"mem_items.a": {"value": 2, **CBD}})
    assert [c.action for c in plan.changes] == ["update"] and result.ok


@pytest.mark.parametrize("replace", [[], ["mem_repeat.r"]])
def test_create_before_destroy_replaces_a_repeatable_name(memory: Memory, replace) -> None:
    memory.apply({"mem_repeat.r": {"flavor": "x"}})
    old = memory.records()["mem_repeat.r"]
    spec = {"flavor": "x" if replace else "y", **CBD}
    plan, result = memory.apply({"mem_repeat.r": spec}, replace=replace)
    [change] = plan.changes
    assert (change.action, change.create_before_destroy) == ("create-then-delete", True)
    assert result.ok
    new = memory.server.one("mem_repeat.r")
    assert new.id != old and memory.records() == {"mem_repeat.r": new.id}
    assert memory.server.ops() == ["create mem_repeat.r", "create mem_repeat.r", "delete mem_repeat.r"]
    assert not memory.plan({"mem_repeat.r": spec}).has_changes


def test_create_before_destroy_whose_delete_fails_keeps_the_new_object(memory: Memory) -> None:
    memory.apply({"mem_repeat.r": {"flavor": "x"}})
    old = memory.records()["mem_repeat.r"]
    memory.server.hooks.append(refuse_delete)
    plan, result = memory.apply({"mem_repeat.r": {"flavor": "y", **CBD}})
    assert [step.operation for step, _ in result.failed] == ["delete"]
    new = memory.records()["mem_repeat.r"]
    assert new != old and old in memory.server.objects  # the new object is the managed one


def test_create_before_destroy_deletes_the_old_object_on_the_next_apply(memory: Memory) -> None:
    """As Terraform: the replaced object stays in state as deposed, and the next apply deletes it."""
    memory.apply({"mem_repeat.r": {"flavor": "x"}})
    memory.server.hooks.append(refuse_delete)
    declarations = {"mem_repeat.r": {"flavor": "y", **CBD}}
    memory.apply(declarations)
    memory.server.hooks.clear()
    memory.apply(declarations)
    assert memory.server.addresses() == ["mem_repeat.r"]


def test_a_deposed_object_is_shown_as_terraform_shows_it_and_forgotten_once_gone(memory: Memory) -> None:
    memory.apply({"mem_repeat.r": {"flavor": "x"}})
    old = memory.records()["mem_repeat.r"]
    memory.server.hooks.append(refuse_delete)
    declarations = {"mem_repeat.r": {"flavor": "y", **CBD}}
    memory.apply(declarations)
    memory.server.hooks.clear()
    assert memory.state().resources["mem_repeat.r"].deposed == [old]

    plan = memory.plan(declarations)
    [deposed] = [c for c in plan.changes if c.of_deposed]
    assert (deposed.action, deposed.id, deposed.action_reason) == ("delete", old, "delete_because_deposed")
    assert f"# mem_repeat.r (deposed object {old}) will be destroyed" in human(plan).plain
    assert [i.get("deposed") for i in plan_json(plan)["resource_changes"]] == [None, old]

    del memory.server.objects[old]  # deleted by hand meanwhile: forgotten, not deleted again
    plan, result = memory.apply(declarations)
    assert [(c.action, c.of_deposed) for c in plan.pending] == [("forget", True)] and result.ok
    assert memory.state().resources["mem_repeat.r"].deposed == []
    assert not memory.plan(declarations).has_changes
