"""Step order: creates after what they depend on, deletes of dependents first, replacements
delete-then-create (create-then-delete with create_before_destroy); and the same result at any
parallelism."""

from __future__ import annotations

import pytest

from provider.engine import build_steps
from tests.engine.memory import Memory

ITEM = {"value": 1}

# (name, declarations applied first, declarations applied second, [(earlier write, later write)])
ORDERS = [
    ("link after its target", None, {"mem_items.a": ITEM, "mem_links.l": {"target": "mem_items.a"}},
     [("create mem_items.a", "create mem_links.l")]),
    ("child after its parent", None, {"mem_items.p": ITEM, "mem_children.p/x": ITEM},
     [("create mem_items.p", "create mem_children.p/x")]),
    ("a chain of needs", None,
     {"mem_fixed.a": {"needs": ["mem_fixed.b"]}, "mem_fixed.b": {"needs": ["mem_fixed.c"]}, "mem_fixed.c": {}},
     [("create mem_fixed.c", "create mem_fixed.b"), ("create mem_fixed.b", "create mem_fixed.a")]),
    ("needs across kinds", None,
     {"mem_repeat.r": {"needs": ["mem_hooks.h"]}, "mem_hooks.h": {"needs": ["mem_items.i"]}, "mem_items.i": {}},
     [("create mem_items.i", "create mem_hooks.h"), ("create mem_hooks.h", "create mem_repeat.r")]),
    ("a diamond", None,
     {"mem_fixed.top": {"needs": ["mem_fixed.l", "mem_fixed.r"]}, "mem_fixed.l": {"needs": ["mem_fixed.base"]},
      "mem_fixed.r": {"needs": ["mem_fixed.base"]}, "mem_fixed.base": {}},
     [("create mem_fixed.base", "create mem_fixed.l"), ("create mem_fixed.base", "create mem_fixed.r"),
      ("create mem_fixed.l", "create mem_fixed.top"), ("create mem_fixed.r", "create mem_fixed.top")]),
    ("update waits for a new dependency", {"mem_fixed.a": {}},
     {"mem_fixed.a": {"value": 2, "needs": ["mem_fixed.b"]}, "mem_fixed.b": {}},
     [("create mem_fixed.b", "update mem_fixed.a")]),
    ("link deleted before its target", {"mem_items.a": ITEM, "mem_links.l": {"target": "mem_items.a"}}, {},
     [("delete mem_links.l", "delete mem_items.a")]),
    ("child deleted before its parent", {"mem_items.p": ITEM, "mem_children.p/x": ITEM}, {},
     [("delete mem_children.p/x", "delete mem_items.p")]),
    ("a chain deleted from the top", {"mem_fixed.a": {"needs": ["mem_fixed.b"]}, "mem_fixed.b": {"needs": ["mem_fixed.c"]},
                                      "mem_fixed.c": {}}, {},
     [("delete mem_fixed.a", "delete mem_fixed.b"), ("delete mem_fixed.b", "delete mem_fixed.c")]),
    ("a dependent moved off before its old target goes",
     {"mem_items.a": ITEM, "mem_items.b": ITEM, "mem_links.l": {"target": "mem_items.a"}},
     {"mem_items.b": ITEM, "mem_links.l": {"target": "mem_items.b"}},
     [("update mem_links.l", "delete mem_items.a")]),
    ("a replacement deletes, then creates", {"mem_items.a": {"flavor": "x"}}, {"mem_items.a": {"flavor": "y"}},
     [("delete mem_items.a", "create mem_items.a")]),
    ("create_before_destroy creates, then deletes", {"mem_repeat.a": {"flavor": "x"}},
     {"mem_repeat.a": {"flavor": "y", "lifecycle": {"create_before_destroy": True}}},
     [("create mem_repeat.a", "delete mem_repeat.a")]),
    ("a replaced target: the link is updated after the new target exists",
     {"mem_items.a": {"flavor": "x"}, "mem_links.l": {"target": "mem_items.a"}},
     {"mem_items.a": {"flavor": "y"}, "mem_links.l": {"target": "mem_items.a"}},
     [("delete mem_items.a", "create mem_items.a"), ("create mem_items.a", "update mem_links.l")]),
    ("a replaced parent: its child is deleted first and created after it",
     {"mem_items.p": {"flavor": "x"}, "mem_children.p/c": ITEM},
     {"mem_items.p": {"flavor": "y"}, "mem_children.p/c": ITEM},
     [("create mem_items.p", "create mem_children.p/c")]),
    ("a dependency removed together with its dependent",
     {"mem_fixed.keep": {}, "mem_fixed.a": {"needs": ["mem_fixed.b"]}, "mem_fixed.b": {}},
     {"mem_fixed.keep": {}}, [("delete mem_fixed.a", "delete mem_fixed.b")]),
]


@pytest.mark.parametrize("parallelism", [1, 10])
@pytest.mark.parametrize("first, second, pairs", [case[1:] for case in ORDERS], ids=[case[0] for case in ORDERS])
def test_writes_follow_dependencies(memory: Memory, first, second, pairs, parallelism: int) -> None:
    if first is not None:
        assert memory.apply(first)[1].ok
    memory.server.log.clear()
    memory.server.delay = 0.001 if parallelism > 1 else 0.0
    plan, result = memory.apply(second, parallelism=parallelism)
    assert result.ok, result.failed
    for earlier, later in pairs:
        assert memory.server.position(earlier) < memory.server.position(later), memory.server.ops()
    assert not memory.plan(second).has_changes


def test_replaced_parent_takes_its_children_along(memory: Memory) -> None:
    memory.apply({"mem_items.p": {"flavor": "x"}, "mem_children.p/c": ITEM})
    plan = memory.plan({"mem_items.p": {"flavor": "y"}, "mem_children.p/c": ITEM})
    assert {c.address: c.action for c in plan.changes} == {"mem_items.p": "replace", "mem_children.p/c": "replace"}


def test_steps_of_a_replacement_and_its_order(memory: Memory) -> None:
    memory.apply({"mem_items.a": {"flavor": "x"}})
    plan = memory.plan({"mem_items.a": {"flavor": "y"}})
    steps = build_steps(plan.changes)
    assert [s.operation for s in steps] == ["delete", "create"]
    assert steps[1].after == {0}


def test_steps_of_create_before_destroy(memory: Memory) -> None:
    memory.apply({"mem_repeat.a": {"flavor": "x"}})
    plan = memory.plan({"mem_repeat.a": {"flavor": "y", "lifecycle": {"create_before_destroy": True}}})
    steps = build_steps(plan.changes)
    assert [s.operation for s in steps] == ["delete", "create"]
    assert steps[0].after == {1} and steps[1].after == set()


def _world(n: int) -> dict[str, dict]:
    """A wide graph: items, each with a child, a link and a hook needing it, and a chain of fixed objects."""
    declarations: dict[str, dict] = {}
    for i in range(n):
        declarations[f"mem_items.i{i}"] = {"value": i, "flavor": "x"}
        declarations[f"mem_children.i{i}/c"] = {"value": i}
        declarations[f"mem_links.l{i}"] = {"target": f"mem_items.i{i}", "value": i}
        declarations[f"mem_hooks.h{i}"] = {"needs": [f"mem_items.i{i}"]}
        declarations[f"mem_fixed.f{i}"] = {"needs": [f"mem_fixed.f{i - 1}"]} if i else {}
        declarations[f"mem_repeat.r{i}"] = {"value": i}
    return declarations


def _evolved(n: int) -> dict[str, dict]:
    """_world, then: half the items replaced, a third of the links retargeted, every fourth object of
    each kind removed, some values changed."""
    declarations = _world(n)
    for i in range(n):
        if i % 2:
            declarations[f"mem_items.i{i}"]["flavor"] = "y"
        if i % 3 == 0:
            declarations[f"mem_links.l{i}"]["target"] = f"mem_items.i{(i + 1) % n}"
        if i % 4 == 3:
            for key in (f"mem_hooks.h{i}", f"mem_repeat.r{i}", f"mem_children.i{i}/c"):
                del declarations[key]
        declarations[f"mem_repeat.r{i}"] = {"value": i * 10} if f"mem_repeat.r{i}" in declarations else None
    return {k: v for k, v in declarations.items() if v is not None}


def _outcome(memory: Memory) -> tuple:
    """The server and the state, with ids spelled as the addresses of what they name."""
    names = {o.id: f"{o.kind}.{o.name}" for o in memory.server.objects.values()}
    server = sorted((f"{o.kind}.{o.name}", sorted((k, names.get(v, v) if isinstance(v, str) else v)
                                                  for k, v in o.attributes.items()))
                    for o in memory.server.objects.values())
    state = memory.state()
    records = {key: (names.get(r.id), r.attributes, sorted(r.dependencies)) for key, r in state.resources.items()}
    return server, records, state.pending


@pytest.mark.parametrize("size", [1, 4, 12])
def test_parallelism_does_not_change_the_result(tmp_path, memory: Memory, size: int) -> None:
    outcomes = []
    for parallelism in (1, 10):
        memory.server.reset()
        memory.state_path = tmp_path / f"p{parallelism}.state.json"
        memory.server.delay = 0.0005 * (parallelism > 1)
        for declarations in (_world(size), _evolved(size), {}):
            plan, result = memory.apply(declarations, parallelism=parallelism)
            assert result.ok, result.failed
            assert not memory.plan(declarations).has_changes
            outcomes.append(_outcome(memory))
    half = len(outcomes) // 2
    for one, ten in zip(outcomes[:half], outcomes[half:]):
        assert one[0] == ten[0]
        assert one[1] == ten[1]
        assert one[2] == ten[2]
    assert outcomes[-1][0] == [] and outcomes[-1][1] == {}


@pytest.mark.parametrize("parallelism", [1, 2, 8])
def test_parallelism_bounds_the_writes_under_way(memory: Memory, parallelism: int) -> None:
    memory.server.delay = 0.02  # long enough for parallel writes to overlap on a busy machine
    assert memory.apply({f"mem_fixed.f{i}": {} for i in range(8)}, parallelism=parallelism)[1].ok
    assert memory.server.most_in_flight <= parallelism
    assert (memory.server.most_in_flight > 1) == (parallelism > 1)
