"""Applies that fail part-way: what is skipped, what is still done, what state records, and that
the next apply converges. And an apply with nothing to do writes nothing."""

from __future__ import annotations

import pytest

from provider.engine import build_steps
from provider.errors import ApiUnreachable, BadRequest, Conflict, ServerError
from tests.engine.memory import Memory, Write, configure

GRAPH = {
    "mem_items.p": {"value": 1, "flavor": "x"},
    "mem_children.p/c": {"value": 1},
    "mem_links.l": {"target": "mem_items.p"},
    "mem_fixed.a": {"needs": ["mem_fixed.b"]},
    "mem_fixed.b": {"needs": ["mem_fixed.c"]},
    "mem_fixed.c": {},
    "mem_repeat.r": {},
    "mem_hooks.h": {},
}
CHANGED = {
    **GRAPH,
    "mem_items.p": {"value": 2, "flavor": "y"},  # replaced: its child and link follow
    "mem_fixed.c": {"value": 3},
    "mem_hooks.h": {"value": 4},
}
del CHANGED["mem_repeat.r"]


def fail(op: str, address: str, error: Exception, phase: str = "before"):
    """A hook failing the write `op` to `address`, before it takes effect or after (its answer lost)."""
    def hook(write: Write, when: str) -> None:
        if (write.op, write.address, when) == (op, address, phase):
            raise error
    return hook


def _dependents(plan_from: dict, address: str) -> set[str]:
    """Addresses that (transitively) need `address`, by the configuration."""
    config = configure(plan_from)
    found, grown = {address}, True
    while grown:
        grown = False
        for key, resource in config.resources.items():
            if str(key) not in found and {str(d) for d in resource.depends_on} & found:
                found.add(str(key))
                grown = True
    return found - {address}


# (first declarations, second declarations, the failing write)
FAILURES = [
    (None, GRAPH, ("create", "mem_fixed.c")),
    (None, GRAPH, ("create", "mem_fixed.b")),
    (None, GRAPH, ("create", "mem_items.p")),
    (None, GRAPH, ("create", "mem_links.l")),
    (None, GRAPH, ("create", "mem_repeat.r")),
    (GRAPH, CHANGED, ("delete", "mem_items.p")),
    (GRAPH, CHANGED, ("create", "mem_items.p")),
    (GRAPH, CHANGED, ("update", "mem_fixed.c")),
    (GRAPH, CHANGED, ("update", "mem_links.l")),
    (GRAPH, CHANGED, ("delete", "mem_repeat.r")),
    (GRAPH, {}, ("delete", "mem_fixed.a")),
    (GRAPH, {}, ("delete", "mem_links.l")),
]


@pytest.mark.parametrize("phase", ["before", "after"])
@pytest.mark.parametrize("first, second, failing", FAILURES, ids=[f"{op} {a}" + ("" if f is None else " (second apply)")
                                                                   for f, _, (op, a) in FAILURES])
def test_a_failed_step_skips_its_dependents_only_and_the_next_apply_converges(memory: Memory, first, second, failing,
                                                                              phase: str) -> None:
    if first is not None:
        assert memory.apply(first)[1].ok
    memory.server.hooks.append(fail(*failing, ServerError("the server is busy"), phase))
    plan, result = memory.apply(second)
    assert [(s.operation, s.change.address) for s, _ in result.failed] == [failing]
    assert not result.ok and result.unreachable is None
    failed_step = result.failed[0][0]
    done = {(s.operation, s.change.address) for s in result.done}
    skipped = {(s.operation, s.change.address) for s in result.skipped}
    # Everything not skipped was done; what was skipped waits (directly or not) for the failed step.
    steps = build_steps(plan.changes)
    assert done | skipped | {failing} == {(s.operation, s.change.address) for s in steps}
    assert not done & skipped
    if failing[0] == "create" and second:
        assert {a for _, a in skipped} <= _dependents(second, failing[1]) | {failing[1]}
    # State records exactly what was done: every record names a live object with its attributes.
    state = memory.state()
    for key, record in state.resources.items():
        obj = memory.server.objects.get(record.id)
        if obj is not None and (failed_step.change.address != key or phase == "before"):
            assert obj.name == record.name
    for operation, address in done:
        if operation in ("create", "update"):
            assert memory.server.objects[state.resources[address].id].attributes["value"] == \
                memory.server.one(address).attributes["value"]
        elif operation == "delete" and address not in (second or {}):
            assert address not in state.resources
    # The next apply finishes the job, without duplicates, and then there is nothing left to do.
    memory.server.hooks.clear()
    plan, result = memory.apply(second)
    assert result.ok, result.failed
    assert memory.server.addresses() == sorted(
        [*(a for a in second), *(f"mem_children.{a.split('.')[1]}/default" for a in second if a.startswith("mem_items."))])
    assert not memory.plan(second).has_changes
    assert memory.state().pending == {}


def test_an_unreachable_api_stops_starting_steps(memory: Memory) -> None:
    declarations = {f"mem_fixed.f{i}": {} for i in range(6)}
    memory.server.hooks.append(fail("create", "mem_fixed.f2", ApiUnreachable("no answer after 10 attempts")))
    plan, result = memory.apply(declarations, parallelism=1)
    assert isinstance(result.unreachable, ApiUnreachable)
    assert [s.change.address for s in result.done] == ["mem_fixed.f0", "mem_fixed.f1"]
    assert [s.change.address for s in result.not_attempted] == ["mem_fixed.f3", "mem_fixed.f4", "mem_fixed.f5"]
    assert memory.server.addresses() == ["mem_fixed.f0", "mem_fixed.f1"]
    assert set(memory.records()) == {"mem_fixed.f0", "mem_fixed.f1"}
    memory.server.hooks.clear()
    plan, result = memory.apply(declarations)
    assert [c.address for c in plan.pending] == ["mem_fixed.f2", "mem_fixed.f3", "mem_fixed.f4", "mem_fixed.f5"]
    assert result.ok and not memory.plan(declarations).has_changes


@pytest.mark.parametrize("parallelism", [2, 10])
def test_an_unreachable_api_in_a_parallel_apply(memory: Memory, parallelism: int) -> None:
    declarations = {f"mem_fixed.f{i}": {"needs": [f"mem_fixed.f{i - 1}"]} if i else {} for i in range(3)}
    declarations.update({f"mem_repeat.r{i}": {} for i in range(3)})
    memory.server.hooks.append(fail("create", "mem_fixed.f0", ApiUnreachable("gone")))
    plan, result = memory.apply(declarations, parallelism=parallelism)
    assert result.unreachable is not None
    accounted = [*result.done, *(s for s, _ in result.failed), *result.skipped, *result.not_attempted]
    assert sorted(s.change.address for s in accounted) == sorted(declarations)
    assert {s.change.address for s in result.skipped} == {"mem_fixed.f1", "mem_fixed.f2"}
    assert set(memory.records()) == {s.change.address for s in result.done}


def test_a_create_that_meets_its_namesake_adopts_it(memory: Memory) -> None:
    """A create whose first attempt landed (its answer lost) is answered 409 on retry: adopt, don't duplicate."""
    plan = memory.plan({"mem_items.a": {"value": 1}})
    landed = memory.server.put("mem_items", "a", value=0, flavor=None, tags=[])
    result = memory.apply_plan(plan)
    assert result.ok
    assert memory.records() == {"mem_items.a": landed.id}
    assert memory.server.one("mem_items.a").attributes["value"] == 1


def test_a_refused_write_is_reported_with_its_error(memory: Memory) -> None:
    memory.server.hooks.append(fail("create", "mem_fixed.a", BadRequest("value: not allowed", method="POST", url="/x")))
    plan, result = memory.apply({"mem_fixed.a": {"value": 1}, "mem_fixed.b": {}})
    [(step, error)] = result.failed
    assert step.change.address == "mem_fixed.a" and "value: not allowed" in str(error)
    assert [s.change.address for s in result.done] == ["mem_fixed.b"]


def test_a_conflict_that_is_no_namesake_fails_the_step(memory: Memory) -> None:
    memory.server.hooks.append(fail("create", "mem_fixed.a", Conflict("locked", method="POST", url="/x")))
    plan, result = memory.apply({"mem_fixed.a": {}})
    assert [s.change.address for s, _ in result.failed] == ["mem_fixed.a"]
    assert memory.records() == {}


# --- nothing to do -----------------------------------------------------------------------------

@pytest.mark.parametrize("declarations", [GRAPH, CHANGED, {}, {"mem_repeat.r": {}, "mem_hooks.h": {"priority": 3}}],
                         ids=["graph", "changed", "empty", "server-filled"])
def test_a_no_op_plan_writes_nothing(memory: Memory, declarations) -> None:
    memory.apply(declarations)
    serial = memory.state().serial if memory.state() else None
    memory.server.log.clear()
    attempts = memory.server.attempts
    plan, result = memory.apply(declarations)
    assert not plan.has_changes and plan.pending == []
    assert result.ok and result.done == [] and memory.server.attempts == attempts
    assert (memory.state().serial if memory.state() else None) == serial
