"""Which live object is the managed one: moved entries, forget, adoption, identity by recorded id,
namesakes, drift and refresh-only."""

from __future__ import annotations

import pytest

from provider.errors import PlanError
from provider.state import State, StateWriter
from tests.engine.memory import Memory

EMPTY = {"value": None, "flavor": None, "tags": []}


def _interrupted_create(memory: Memory, address: str) -> None:
    """What an apply that died right after sending a create leaves: its intent in the journal."""
    backend = memory.backend
    kind, _, name = address.partition(".")
    StateWriter(backend, backend.read() or State()).intend(address, kind, name)


# --- moved -----------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, writes", [
    ({"value": 1}, ["rename mem_items.b"]),
    ({"value": 2}, ["rename mem_items.b", "update mem_items.b"]),
])
def test_moved_renames_in_place(memory: Memory, spec, writes) -> None:
    memory.apply({"mem_items.a": {"value": 1}})
    old = memory.records()["mem_items.a"]
    memory.server.log.clear()
    plan, result = memory.apply({"mem_items.b": spec}, moved=[("mem_items.a", "mem_items.b")])
    [change] = plan.changes
    assert (change.action, change.moved_from, change.id) == ("update", "mem_items.a", old)
    assert change.reason.startswith("moved from mem_items.a: renamed on the server")
    assert plan.moved == {"mem_items.b": "mem_items.a"}
    assert result.ok and memory.server.ops() == writes
    assert memory.records() == {"mem_items.b": old}
    assert memory.server.one("mem_items.b").id == old and memory.server.named("mem_items", "a") == []
    assert not memory.plan({"mem_items.b": spec}, moved=[("mem_items.a", "mem_items.b")]).has_changes


def test_moved_is_refused_where_the_server_cannot_rename(memory: Memory) -> None:
    memory.apply({"mem_fixed.a": {}})
    with pytest.raises(PlanError, match="the server cannot rename mem_fixed; remove the moved entry"):
        memory.plan({"mem_fixed.b": {}}, moved=[("mem_fixed.a", "mem_fixed.b")])
    assert memory.records().keys() == {"mem_fixed.a"}  # the state file is untouched by a plan


def test_without_moved_a_rename_is_delete_and_create(memory: Memory) -> None:
    memory.apply({"mem_items.a": {}})
    plan = memory.plan({"mem_items.b": {}})
    assert {c.address: c.action for c in plan.changes} == {"mem_items.a": "delete", "mem_items.b": "create"}


def test_moved_after_a_rename_outside_needs_no_write(memory: Memory) -> None:
    memory.apply({"mem_items.a": {}})
    memory.server.one("mem_items.a").name = "b"
    memory.server.log.clear()
    plan, result = memory.apply({"mem_items.b": {}}, moved=[("mem_items.a", "mem_items.b")])
    assert [c.action for c in plan.changes] == ["no-op"] and memory.server.log == []
    assert "mem_items.b" in memory.records()


@pytest.mark.parametrize("moved", [[("mem_items.x", "mem_items.b")], [("mem_items.a", "mem_items.b")]])
def test_moved_entries_that_do_not_apply_are_ignored(memory: Memory, moved) -> None:
    memory.apply({"mem_items.a": {}, "mem_items.b": {}})
    plan = memory.plan({"mem_items.a": {}, "mem_items.b": {}}, moved=moved)
    assert not plan.has_changes and plan.moved == {}


# --- forget and server-owned objects -----------------------------------------------------------

def test_a_server_owned_object_is_adopted_then_forgotten(memory: Memory) -> None:
    memory.apply({"mem_items.p": {}})
    owned = memory.server.one("mem_children.p/default").id
    plan, result = memory.apply({"mem_items.p": {}, "mem_children.p/default": {"value": 3}})
    change = next(c for c in plan.changes if c.address == "mem_children.p/default")
    assert (change.action, change.importing, change.id) == ("update", True, owned)
    assert change.reason == "made by the server, not by a configuration; taken into state"
    assert memory.records()["mem_children.p/default"] == owned
    assert memory.server.one("mem_children.p/default").attributes["value"] == 3

    plan, result = memory.apply({"mem_items.p": {}})
    change = next(c for c in plan.changes if c.address == "mem_children.p/default")
    assert (change.action, change.reason) == ("forget", "belongs to the server: no longer managed, not deleted")
    assert result.ok and "mem_children.p/default" not in memory.records()
    assert memory.server.one("mem_children.p/default").id == owned


def test_a_server_owned_object_that_matches_is_imported_without_a_write(memory: Memory) -> None:
    memory.apply({"mem_items.p": {}})
    memory.server.log.clear()
    plan, result = memory.apply({"mem_items.p": {}, "mem_children.p/default": {}})
    change = next(c for c in plan.changes if c.address == "mem_children.p/default")
    assert (change.action, change.importing) == ("no-op", True)
    assert result.ok and memory.server.log == [] and "mem_children.p/default" in memory.records()


def test_a_server_owned_object_created_with_its_parent_in_one_apply(memory: Memory) -> None:
    declarations = {"mem_items.p": {}, "mem_children.p/default": {"value": 4}}
    plan, result = memory.apply(declarations)
    assert {c.address: c.action for c in plan.changes} == {"mem_items.p": "create", "mem_children.p/default": "create"}
    assert result.ok and memory.server.one("mem_children.p/default").attributes["value"] == 4
    assert memory.server.addresses() == ["mem_children.p/default", "mem_items.p"]
    assert not memory.plan(declarations).has_changes


def test_destroy_forgets_server_owned_objects(memory: Memory) -> None:
    memory.apply({"mem_items.p": {}, "mem_children.p/default": {"value": 4}})
    plan, result = memory.apply(None, mode="destroy")
    assert {c.address: c.action for c in plan.changes} == {"mem_items.p": "delete", "mem_children.p/default": "forget"}
    assert result.ok and memory.records() == {} and memory.server.addresses() == []


def test_an_object_deleted_outside_and_undeclared_is_forgotten(memory: Memory) -> None:
    memory.apply({"mem_fixed.a": {}, "mem_fixed.b": {}})
    memory.server.remove("mem_fixed.a")
    memory.server.log.clear()
    plan, result = memory.apply({"mem_fixed.b": {}})
    assert [(c.address, c.action, c.reason) for c in plan.pending] == [
        ("mem_fixed.a", "forget", "already deleted outside prefect-provider")]
    assert result.ok and memory.records().keys() == {"mem_fixed.b"} and memory.server.log == []


# --- adoption ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["mem_items", "mem_fixed", "mem_repeat"])
def test_an_unmanaged_object_is_refused(memory: Memory, kind: str) -> None:
    outside = memory.server.put(kind, "a", **EMPTY)
    if kind == "mem_repeat":  # a repeatable name proves nothing: a new object is created beside it
        plan = memory.plan({f"{kind}.a": {}})
        assert [c.action for c in plan.changes] == ["create"]
        assert f"other objects named 'a' on the server (ids {outside.id})" in plan.warnings[0]
        return
    with pytest.raises(PlanError, match="already exist on the server but are not managed") as refused:
        memory.plan({f"{kind}.a": {}})
    assert f"{kind}.a (id {outside.id})" in str(refused.value)


@pytest.mark.parametrize("spec, action", [({"tags": ["adopt-me"]}, "no-op"), ({"tags": ["adopt-me"], "value": 2}, "update")])
def test_an_object_the_kind_adopts_is_taken_into_state(memory: Memory, spec, action) -> None:
    outside = memory.server.put("mem_items", "a", **{**EMPTY, "tags": ["adopt-me"]})
    plan, result = memory.apply({"mem_items.a": spec})
    [change] = plan.changes
    assert (change.action, change.importing, change.reason) == (action, True, "tagged adopt-me: taken into state")
    assert result.ok and memory.records() == {"mem_items.a": outside.id}
    assert memory.server.ops() == ([] if action == "no-op" else ["update mem_items.a"])


@pytest.mark.parametrize("kind", ["mem_items", "mem_fixed", "mem_hooks"])
def test_an_interrupted_create_is_adopted(memory: Memory, kind: str) -> None:
    _interrupted_create(memory, f"{kind}.a")
    landed = memory.server.put(kind, "a", **EMPTY, **({"priority": 10, "endpoint": "e"} if kind == "mem_hooks" else {}))
    plan, result = memory.apply({f"{kind}.a": {}})
    [change] = plan.changes
    assert change.importing and change.reason == "created by an interrupted apply; taken into state"
    assert result.ok and memory.records() == {f"{kind}.a": landed.id}
    assert memory.state().pending == {}
    assert memory.server.addresses() == [f"{kind}.a"]


@pytest.mark.parametrize("landed, adopted", [({"value": 1}, True), ({"value": 2}, False)])
def test_an_interrupted_create_of_a_repeatable_name_adopts_only_its_exact_match(memory: Memory, landed, adopted) -> None:
    _interrupted_create(memory, "mem_repeat.r")
    obj = memory.server.put("mem_repeat", "r", **{**EMPTY, **landed})
    plan, result = memory.apply({"mem_repeat.r": {"value": 1}})
    [change] = plan.changes
    assert change.action == ("no-op" if adopted else "create")
    assert (memory.records()["mem_repeat.r"] == obj.id) is adopted
    assert len(memory.server.named("mem_repeat", "r")) == (1 if adopted else 2)


# --- identity by recorded id -------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["mem_items", "mem_fixed"])
def test_a_namesake_with_another_id_is_refused(memory: Memory, kind: str) -> None:
    memory.apply({f"{kind}.a": {"value": 1}})
    recorded = memory.records()[f"{kind}.a"]
    memory.server.remove(f"{kind}.a")
    other = memory.server.put(kind, "a", **{**EMPTY, "value": 1})
    with pytest.raises(PlanError, match="another object now has the name") as refused:
        memory.plan({f"{kind}.a": {"value": 1}})
    assert f"id in state {recorded}, id on the server {other.id}" in str(refused.value)
    destroy = memory.plan(None, mode="destroy")  # nor deleted: only forgotten
    assert [(c.action, c.address) for c in destroy.changes] == [("forget", f"{kind}.a")]
    assert f"(id {other.id}) is another one: left alone" in destroy.changes[0].reason
    plan = memory.plan({}, mode="refresh-only")  # refresh-only reports it
    assert [(d.action, d.address) for d in plan.drift] == [("delete", f"{kind}.a")]
    assert f"another object (id {other.id}) now has the name 'a'" in plan.drift[0].reason


def test_an_undeclared_record_whose_name_was_taken_is_forgotten_and_the_namesake_left(memory: Memory) -> None:
    memory.apply({"mem_items.a": {}})
    memory.server.remove("mem_items.a")
    other = memory.server.put("mem_items", "a", **EMPTY)
    plan, result = memory.apply({})
    [change] = plan.changes
    assert change.action == "forget" and f"(id {other.id}) is another one: left alone" in change.reason
    assert result.ok and memory.records() == {} and memory.server.one("mem_items.a").id == other.id


def test_repeatable_names_leave_namesakes_alone(memory: Memory) -> None:
    memory.apply({"mem_repeat.r": {"value": 1}})
    mine = memory.records()["mem_repeat.r"]
    other = memory.server.put("mem_repeat", "r", **{**EMPTY, "value": 9})
    plan, result = memory.apply({"mem_repeat.r": {"value": 2}})
    assert [(c.action, c.id) for c in plan.changes] == [("update", mine)]
    assert any(other.id in w and "left alone" in w for w in plan.warnings)
    assert memory.server.objects[other.id].attributes["value"] == 9
    plan, result = memory.apply(None, mode="destroy")
    assert [(c.action, c.id) for c in plan.changes] == [("delete", mine)]
    assert [o.id for o in memory.server.named("mem_repeat", "r")] == [other.id]


def test_a_repeatable_name_deleted_outside_beside_a_namesake_is_created_again(memory: Memory) -> None:
    memory.apply({"mem_repeat.r": {"value": 1}})
    other = memory.server.put("mem_repeat", "r", **{**EMPTY, "value": 1})
    memory.server.objects.pop(memory.records()["mem_repeat.r"])
    plan, result = memory.apply({"mem_repeat.r": {"value": 1}})
    assert [c.action for c in plan.changes] == ["create"]  # the namesake is not taken, even though it matches
    assert result.ok and memory.records()["mem_repeat.r"] not in (other.id,)
    assert len(memory.server.named("mem_repeat", "r")) == 2


# --- drift and refresh-only --------------------------------------------------------------------

# (what happens outside, the drift expected, the change expected)
DRIFTS = [
    ("edit", {"value": 7}, ("update", ("value",)), ("update", "changed outside prefect-provider: value")),
    ("edit", {"tags": ["x"], "value": 7}, ("update", ("tags", "value")), ("update", "changed outside prefect-provider: tags, value")),
    ("edit", {"flavor": "z"}, ("update", ("flavor",)), ("replace", "flavor forces replacement")),
    ("remove", {}, ("delete", ()), ("create", "deleted outside prefect-provider")),
]


@pytest.mark.parametrize("what, attributes, drift, change", DRIFTS)
def test_drift_is_detected_and_repaired(memory: Memory, what, attributes, drift, change) -> None:
    declarations = {"mem_items.a": {"value": 1, "flavor": "x"}}
    memory.apply(declarations)
    if what == "edit":
        memory.server.edit("mem_items.a", **attributes)
    else:
        memory.server.remove("mem_items.a")
    plan, result = memory.apply(declarations)
    assert [(d.action, d.changed) for d in plan.drift] == [drift]
    assert [(c.action, c.reason) for c in plan.changes] == [change]
    assert result.ok and not memory.plan(declarations).has_changes
    assert memory.server.one("mem_items.a").attributes == {"value": 1, "flavor": "x", "tags": []}


@pytest.mark.parametrize("what", ["edit", "remove", "nothing"])
def test_refresh_only_takes_the_live_values_into_state(memory: Memory, what: str) -> None:
    declarations = {"mem_items.a": {"value": 1}, "mem_fixed.b": {}}
    memory.apply(declarations)
    if what == "edit":
        memory.server.edit("mem_items.a", value=7)
    elif what == "remove":
        memory.server.remove("mem_items.a")
    memory.server.log.clear()
    plan, result = memory.apply(declarations, mode="refresh-only")
    assert plan.changes == [] and plan.has_changes == (what != "nothing")
    assert result.ok and memory.server.log == []
    state = memory.state()
    if what == "edit":
        assert state.resources["mem_items.a"].attributes["value"] == 7
        assert [c.action for c in memory.plan(declarations).changes if c.action != "no-op"] == ["update"]
    elif what == "remove":
        assert "mem_items.a" not in state.resources
        assert [c.action for c in memory.plan(declarations).changes if c.action != "no-op"] == ["create"]
    assert not memory.plan(declarations, mode="refresh-only").has_changes


def test_server_filled_values_left_unset_are_not_drift(memory: Memory) -> None:
    memory.apply({"mem_hooks.h": {}})
    record = memory.state().resources["mem_hooks.h"]
    assert record.attributes["priority"] == 10 and record.attributes["endpoint"].startswith("https://hooks.invalid/")
    memory.server.edit("mem_hooks.h", priority=3)
    plan = memory.plan({"mem_hooks.h": {}})
    assert not plan.pending
    plan = memory.plan({"mem_hooks.h": {"priority": 5}})
    assert [(c.action, c.changed) for c in plan.changes] == [("update", ("priority",))]


def test_computed_values_are_never_compared(memory: Memory) -> None:
    memory.apply({"mem_hooks.h": {"value": 1}})
    memory.server.edit("mem_hooks.h", endpoint="https://elsewhere.invalid")
    plan, result = memory.apply({"mem_hooks.h": {"value": 2}})
    assert [(c.action, c.changed) for c in plan.changes] == [("update", ("value",))]
    assert memory.server.one("mem_hooks.h").attributes["endpoint"] == "https://elsewhere.invalid"


def test_a_server_owned_object_the_server_made_anew_is_still_the_managed_one(memory: Memory) -> None:
    declarations = {"mem_items.p": {}, "mem_children.p/default": {"value": 1}}
    memory.apply(declarations)
    memory.server.remove("mem_children.p/default")
    anew = memory.server.put("mem_children", "p/default", **EMPTY)  # as a server re-creates what it owns
    plan, result = memory.apply(declarations)
    change = next(c for c in plan.changes if c.address == "mem_children.p/default")
    assert (change.action, change.id) == ("update", anew.id)
    assert result.ok and memory.records()["mem_children.p/default"] == anew.id


@pytest.mark.parametrize("target", ["mem_items.b", "mem_fixed.other"])
def test_moved_with_a_target(memory: Memory, target: str) -> None:
    """A move is recorded in state by any apply; the rename happens when its object is targeted, or later."""
    memory.apply({"mem_items.a": {}, "mem_fixed.other": {}})
    renamed = memory.records()["mem_items.a"]
    declarations = {"mem_items.b": {}, "mem_fixed.other": {"value": 1}}
    plan, result = memory.apply(declarations, moved=[("mem_items.a", "mem_items.b")], targets=[target])
    assert result.ok and memory.records()["mem_items.b"] == renamed
    assert (memory.server.objects[renamed].name == "b") == (target == "mem_items.b")
    plan, result = memory.apply(declarations, moved=[("mem_items.a", "mem_items.b")])
    assert result.ok and memory.server.objects[renamed].name == "b"
    assert memory.server.named("mem_items", "a") == [] and len(memory.server.named("mem_items", "b")) == 1
    assert not memory.plan(declarations, moved=[("mem_items.a", "mem_items.b")]).has_changes
