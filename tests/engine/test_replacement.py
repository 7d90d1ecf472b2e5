"""Replacements: replace_fields, --replace, cascades to objects deleted with their parent and to
objects that hold a replaced object's id; and --target."""

from __future__ import annotations

import pytest

from provider.errors import PlanError
from tests.engine.memory import Memory

BASE = {
    "mem_items.p": {"flavor": "x", "value": 1},
    "mem_items.q": {"flavor": "x"},
    "mem_children.p/c": {"value": 1},
    "mem_children.q/d": {"value": 2},
    "mem_children.p/e": {"needs": ["mem_children.q/d"]},
    "mem_links.l": {"target": "mem_items.p"},
    "mem_links.m": {"target": "mem_items.q"},
    "mem_hooks.h": {"needs": ["mem_items.p"]},
}


def _with(**changes: dict) -> dict:
    """BASE with specs changed: _with(**{"mem_items.p": {...}}) merges into that spec."""
    declarations = {k: dict(v) for k, v in BASE.items()}
    for key, spec in changes.items():
        declarations[key] = {**declarations.get(key, {}), **spec}
    return declarations


def _actions(plan) -> dict[str, str]:
    return {c.address: c.action for c in plan.changes if c.action != "no-op"}


# (name, declarations, --replace, the changes expected: address -> action)
CASCADES = [
    ("a value change is an update", _with(**{"mem_items.p": {"value": 2}}), [], {"mem_items.p": "update"}),
    ("a replace field forces replacement, children and links follow", _with(**{"mem_items.p": {"flavor": "y"}}), [],
     {"mem_items.p": "replace", "mem_children.p/c": "replace", "mem_children.p/e": "replace", "mem_links.l": "update"}),
    ("the other parent: its child, its child's dependent and its link", _with(**{"mem_items.q": {"flavor": "y"}}), [],
     {"mem_items.q": "replace", "mem_children.q/d": "replace", "mem_children.p/e": "replace", "mem_links.m": "update"}),
    ("both parents", _with(**{"mem_items.p": {"flavor": "y"}, "mem_items.q": {"flavor": "z"}}), [],
     {"mem_items.p": "replace", "mem_items.q": "replace", "mem_children.p/c": "replace", "mem_children.q/d": "replace",
      "mem_children.p/e": "replace", "mem_links.l": "update", "mem_links.m": "update"}),
    ("--replace a parent", BASE, ["mem_items.p"],
     {"mem_items.p": "replace", "mem_children.p/c": "replace", "mem_children.p/e": "replace", "mem_links.l": "update"}),
    ("--replace a child: its dependent child is replaced", BASE, ["mem_children.q/d"],
     {"mem_children.q/d": "replace", "mem_children.p/e": "replace"}),
    ("--replace a leaf", BASE, ["mem_links.l"], {"mem_links.l": "replace"}),
    ("--replace a hook: nothing refers to it", BASE, ["mem_hooks.h"], {"mem_hooks.h": "replace"}),
    ("a child's own replace field", _with(**{"mem_children.p/c": {"flavor": "y"}}), [], {"mem_children.p/c": "replace"}),
    ("a link's replace field", _with(**{"mem_links.l": {"flavor": "y"}}), [], {"mem_links.l": "replace"}),
    ("a link retargeted", _with(**{"mem_links.l": {"target": "mem_items.q"}}), [], {"mem_links.l": "update"}),
    ("an updated link to a replaced target stays an update",
     _with(**{"mem_items.p": {"flavor": "y"}, "mem_links.l": {"value": 5}}), [],
     {"mem_items.p": "replace", "mem_children.p/c": "replace", "mem_children.p/e": "replace", "mem_links.l": "update"}),
    ("a replaced child with a value change", _with(**{"mem_items.p": {"flavor": "y"}, "mem_children.p/c": {"value": 9}}), [],
     {"mem_items.p": "replace", "mem_children.p/c": "replace", "mem_children.p/e": "replace", "mem_links.l": "update"}),
]


@pytest.mark.parametrize("declarations, replace, expected", [c[1:] for c in CASCADES], ids=[c[0] for c in CASCADES])
def test_cascades(memory: Memory, declarations, replace, expected) -> None:
    assert memory.apply(BASE)[1].ok
    before = memory.records()
    plan, result = memory.apply(declarations, replace=replace)
    assert _actions(plan) == expected
    assert result.ok, result.failed
    after = memory.records()
    for address, action in expected.items():
        # A replaced object has a new id; an updated one keeps its id.
        assert (after[address] != before[address]) == (action == "replace"), address
    for key, record_id in after.items():
        assert memory.server.objects[record_id].name == key.split(".", 1)[1]
    # Every link holds the id of the object its target is now.
    for link in ("mem_links.l", "mem_links.m"):
        target = declarations[link]["target"]
        assert memory.server.one(link).attributes["target"] == after[target]
    assert not memory.plan(declarations).has_changes


@pytest.mark.parametrize("reason, declarations, replace, address", [
    ("flavor forces replacement", _with(**{"mem_items.p": {"flavor": "y"}}), [], "mem_items.p"),
    ("replacement requested", BASE, ["mem_items.p"], "mem_items.p"),
    ("mem_items.p is replaced, which deletes it on the server", _with(**{"mem_items.p": {"flavor": "y"}}), [],
     "mem_children.p/c"),
    ("mem_items.p is replaced: refer to the new object", _with(**{"mem_items.p": {"flavor": "y"}}), [], "mem_links.l"),
])
def test_replacement_reasons(memory: Memory, reason, declarations, replace, address) -> None:
    memory.apply(BASE)
    plan = memory.plan(declarations, replace=replace)
    assert next(c for c in plan.changes if c.address == address).reason == reason


def test_a_target_recreated_after_deletion_outside_updates_its_links(memory: Memory) -> None:
    memory.apply(BASE)
    memory.server.remove("mem_items.q")  # its child q/d goes with it, as the server would
    plan, result = memory.apply(BASE)
    changes = {c.address: (c.action, c.reason) for c in plan.changes if c.action != "no-op"}
    assert changes["mem_items.q"] == ("create", "deleted outside prefect-provider")
    assert changes["mem_links.m"] == ("update", "mem_items.q is re-created: refer to the new object")
    assert changes["mem_children.q/d"][0] == "create"
    assert result.ok
    assert memory.server.one("mem_links.m").attributes["target"] == memory.server.one("mem_items.q").id
    assert not memory.plan(BASE).has_changes


def test_a_replacement_gets_new_computed_values(memory: Memory) -> None:
    memory.apply({"mem_hooks.h": {"flavor": "x"}})
    old = memory.server.one("mem_hooks.h").attributes["endpoint"]
    plan, result = memory.apply({"mem_hooks.h": {"flavor": "y"}})
    assert plan.changes[0].after["endpoint"] == "(known after apply)"
    new = memory.server.one("mem_hooks.h").attributes["endpoint"]
    assert new != old and memory.state().resources["mem_hooks.h"].attributes["endpoint"] == new


# --- --target --------------------------------------------------------------------------------

WIDE = {
    "mem_fixed.a": {"needs": ["mem_fixed.b"]},
    "mem_fixed.b": {"needs": ["mem_fixed.c"]},
    "mem_fixed.c": {},
    "mem_fixed.other": {},
    "mem_items.p": {},
    "mem_links.l": {"target": "mem_items.p"},
    "mem_children.p/c": {},
}

# (targets, what a first targeted apply creates)
TARGETED_CREATES = [
    (["mem_fixed.a"], {"mem_fixed.a", "mem_fixed.b", "mem_fixed.c"}),
    (["mem_fixed.b"], {"mem_fixed.b", "mem_fixed.c"}),
    (["mem_fixed.c"], {"mem_fixed.c"}),
    (["mem_fixed.other"], {"mem_fixed.other"}),
    (["mem_links.l"], {"mem_links.l", "mem_items.p"}),
    (["mem_children.p/c"], {"mem_children.p/c", "mem_items.p"}),
    (["mem_items.p"], {"mem_items.p"}),
    (["mem_fixed.c", "mem_items.p"], {"mem_fixed.c", "mem_items.p"}),
    (["mem_fixed.nothing"], set()),
]


@pytest.mark.parametrize("targets, created", TARGETED_CREATES, ids=[",".join(t) for t, _ in TARGETED_CREATES])
def test_target_creates_the_targets_and_their_dependencies(memory: Memory, targets, created) -> None:
    plan, result = memory.apply(WIDE, targets=targets)
    assert {c.address for c in plan.changes} == created
    assert result.ok
    assert set(memory.records()) == created
    plan, result = memory.apply(WIDE)  # the rest, later
    assert {c.address for c in plan.pending} == set(WIDE) - created
    assert not memory.plan(WIDE).has_changes


# (targets, what a targeted destroy of everything deletes)
TARGETED_DELETES = [
    (["mem_fixed.c"], {"mem_fixed.a", "mem_fixed.b", "mem_fixed.c"}),
    (["mem_fixed.b"], {"mem_fixed.a", "mem_fixed.b"}),
    (["mem_fixed.a"], {"mem_fixed.a"}),
    (["mem_items.p"], {"mem_items.p", "mem_links.l", "mem_children.p/c"}),
    (["mem_links.l"], {"mem_links.l"}),
]


@pytest.mark.parametrize("mode", ["destroy", "normal"])
@pytest.mark.parametrize("targets, deleted", TARGETED_DELETES, ids=[",".join(t) for t, _ in TARGETED_DELETES])
def test_target_deletes_the_targets_and_their_dependents(memory: Memory, targets, deleted, mode: str) -> None:
    memory.apply(WIDE)
    plan, result = memory.apply(WIDE if mode == "destroy" else {}, targets=targets, mode=mode)
    assert {c.address: c.action for c in plan.changes} == dict.fromkeys(deleted, "delete")
    assert result.ok
    assert set(memory.records()) == set(WIDE) - deleted


def test_target_leaves_other_changes_for_later(memory: Memory) -> None:
    memory.apply(WIDE)
    changed = {**WIDE, "mem_fixed.c": {"value": 1}, "mem_fixed.other": {"value": 2}}
    plan, result = memory.apply(changed, targets=["mem_fixed.other"])
    assert [(c.address, c.action) for c in plan.changes] == [("mem_fixed.other", "update")]
    assert memory.server.one("mem_fixed.c").attributes["value"] is None
    assert [c.address for c in memory.plan(changed).pending] == ["mem_fixed.c"]


@pytest.mark.parametrize("target, reads", [("mem_fixed.a", {"mem_fixed.a", "mem_fixed.b", "mem_fixed.c"}),
                                           ("mem_links.l", {"mem_links.l", "mem_items.p"})])
def test_target_reads_its_managed_dependencies(memory: Memory, target: str, reads: set) -> None:
    memory.apply(WIDE)
    changed = {**WIDE, target: {**WIDE[target], "value": 1}}
    plan, result = memory.apply(changed, targets=[target])
    assert {c.address: c.action for c in plan.changes} == {a: "update" if a == target else "no-op" for a in reads}
    assert result.ok and memory.server.ops()[-1:] == [f"update {target}"]


def test_target_reads_only_what_it_can_touch(memory: Memory) -> None:
    """An unmanaged namesake outside the targeted scope does not stop a targeted plan."""
    memory.server.put("mem_fixed", "other", value=None, flavor=None, tags=[])
    with pytest.raises(PlanError, match="not managed"):
        memory.plan(WIDE)
    plan = memory.plan(WIDE, targets=["mem_fixed.a"])
    assert {c.address for c in plan.changes} == {"mem_fixed.a", "mem_fixed.b", "mem_fixed.c"}


def test_target_with_a_replacement_keeps_the_cascade(memory: Memory) -> None:
    memory.apply({"mem_items.p": {"flavor": "x"}, "mem_children.p/c": {}, "mem_links.l": {"target": "mem_items.p"}})
    plan = memory.plan({"mem_items.p": {"flavor": "y"}, "mem_children.p/c": {}, "mem_links.l": {"target": "mem_items.p"}},
                       targets=["mem_items.p"])
    assert {c.address: c.action for c in plan.changes} == {"mem_items.p": "replace", "mem_children.p/c": "replace"}


def test_a_replaced_parent_readopts_its_server_owned_child(memory: Memory) -> None:
    declarations = {"mem_items.p": {"flavor": "x"}, "mem_children.p/default": {"value": 4}}
    memory.apply(declarations)
    old = memory.records()["mem_children.p/default"]
    changed = {**declarations, "mem_items.p": {"flavor": "y"}}
    plan, result = memory.apply(changed)
    assert {c.address: c.action for c in plan.changes} == {"mem_items.p": "replace", "mem_children.p/default": "replace"}
    assert result.ok and "delete mem_children.p/default" not in memory.server.ops()  # the server's: never deleted
    new = memory.server.one("mem_children.p/default")
    assert new.id != old and new.attributes["value"] == 4 and memory.records()["mem_children.p/default"] == new.id
    assert not memory.plan(changed).has_changes


def test_a_link_pointed_elsewhere_outside_is_pointed_back(memory: Memory) -> None:
    declarations = {"mem_items.a": {}, "mem_items.b": {}, "mem_links.l": {"target": "mem_items.a"}}
    memory.apply(declarations)
    memory.server.edit("mem_links.l", target=memory.records()["mem_items.b"])
    plan, result = memory.apply(declarations)
    assert [(d.address, d.after["target"]) for d in plan.drift] == [("mem_links.l", "mem_items.b")]
    assert [(c.address, c.action) for c in plan.pending] == [("mem_links.l", "update")]
    assert memory.server.one("mem_links.l").attributes["target"] == memory.records()["mem_items.a"]


def test_a_link_to_an_unknown_id_is_shown_by_id_and_repaired(memory: Memory) -> None:
    declarations = {"mem_items.a": {}, "mem_links.l": {"target": "mem_items.a"}}
    memory.apply(declarations)
    memory.server.edit("mem_links.l", target="someone-elses-id")
    plan, result = memory.apply(declarations)
    [change] = plan.pending
    assert (change.before["target"], change.after["target"]) == ("someone-elses-id", "mem_items.a")
    assert memory.server.one("mem_links.l").attributes["target"] == memory.records()["mem_items.a"]
