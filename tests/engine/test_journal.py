"""An apply interrupted at every write: the process dies (or the write fails) before or after the
N-th write takes effect; the state is read back from the real state file and its journal, and the
next apply neither loses nor duplicates anything.

A crash is real: the apply runs in a forked child that ends with os._exit at the N-th write, so
nothing after it runs (no step, no journal line, no final state write); the memory server, which
outlives its client, is handed back to the test through a file.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from provider.errors import ServerError
from tests.engine.memory import Memory, Write

FIRST = {
    "mem_items.p": {"value": 1, "flavor": "x"},
    "mem_children.p/c": {"value": 1},
    "mem_links.l": {"target": "mem_items.p"},
    "mem_fixed.a": {"needs": ["mem_fixed.b"]},
    "mem_fixed.b": {},
    "mem_repeat.r": {"value": 1},
    "mem_hooks.h": {},
    "mem_items.m": {"value": 1},
}
SECOND = {
    "mem_items.p": {"value": 2, "flavor": "y"},  # replaced, with its child; its link updated
    "mem_children.p/c": {"value": 1},
    "mem_links.l": {"target": "mem_items.p"},
    "mem_fixed.b": {"value": 2},  # updated; mem_fixed.a deleted first
    "mem_repeat.r": {"value": 1, "flavor": "z", "lifecycle": {"create_before_destroy": True}},
    "mem_hooks.h": {"value": 3},
    "mem_items.n": {"value": 2},  # moved from mem_items.m: renamed and updated
}
MOVED = [("mem_items.m", "mem_items.n")]

# (name, declarations applied before, declarations applied by the interrupted apply, moved, its writes)
SCENARIOS = {
    "create": (None, FIRST, [], 8),
    "change": (FIRST, SECOND, MOVED, 12),
    "destroy": (FIRST, {}, [], 8),
}
CASES = [pytest.param(scenario, n, phase, id=f"{scenario}-{n}-{phase}")
         for scenario, (*_, writes) in SCENARIOS.items() for n in range(1, writes + 1) for phase in ("before", "after")]


def _expected(declarations: dict) -> list[str]:
    """The objects the server must hold once `declarations` are applied: each exactly once."""
    owned = [f"mem_children.{a.split('.')[1]}/default" for a in declarations if a.startswith("mem_items.")]
    return sorted([*declarations, *owned])


def _check_converged(memory: Memory, declarations: dict, moved: list) -> None:
    plan, result = memory.apply(declarations, moved=moved)
    assert result.ok, result.failed
    assert memory.server.addresses() == _expected(declarations)
    records = memory.records()
    assert sorted(records) == sorted(declarations)
    for address, record_id in records.items():
        assert memory.server.one(address).id == record_id
    if "mem_links.l" in declarations:
        assert memory.server.one("mem_links.l").attributes["target"] == records["mem_items.p"]
    assert memory.state().pending == {}
    again = memory.plan(declarations, moved=moved)
    assert not again.has_changes, [(c.address, c.action, c.reason) for c in again.pending]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_write_counts_the_matrix_assumes(memory: Memory, scenario: str) -> None:
    before, declarations, moved, writes = SCENARIOS[scenario]
    if before is not None:
        memory.apply(before)
    memory.server.log.clear()
    assert memory.apply(declarations, moved=moved, parallelism=1)[1].ok
    assert len(memory.server.log) == writes, memory.server.ops()
    if scenario == "change":
        # Writes 11 and 12: the create and the delete of a create_before_destroy replacement, between
        # which the replaced object is deposed (Record.deposed).
        assert memory.server.ops()[10:12] == ["create mem_repeat.r", "delete mem_repeat.r"]
        assert memory.server.ops()[4] == "rename mem_items.n"  # test_a_journaled_move_survives_the_crash


def _crash(memory: Memory, tmp_path: Path, declarations: dict, moved: list, number: int, phase: str,
           parallelism: int = 1) -> None:
    """Apply in a forked child that dies at write `number` (`phase`: before or after it takes effect)."""
    snapshot = tmp_path / "server.pickle"
    server = memory.server

    def die(write: Write, when: str) -> None:
        if (write.number, when) == (number, phase):
            snapshot.write_bytes(pickle.dumps((server.objects, server._generations, server.attempts)))
            os._exit(0)

    start = server.attempts
    pid = os.fork()
    if pid == 0:  # the child: apply, and never return into pytest
        code = 3
        try:
            server.attempts = 0
            server.hooks.append(die)
            memory.apply(declarations, moved=moved, parallelism=parallelism)
            code = 4  # it did not die: the write count is off
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child did not die where it was told to"
    server.objects, server._generations, attempts = pickle.loads(snapshot.read_bytes())
    server.attempts = start + attempts


@pytest.mark.parametrize("scenario, number, phase", CASES)
def test_a_crash_at_any_write_loses_and_duplicates_nothing(memory: Memory, tmp_path: Path, scenario: str, number: int,
                                                          phase: str) -> None:
    before, declarations, moved, _ = SCENARIOS[scenario]
    if before is not None:
        memory.apply(before)
    _crash(memory, tmp_path, declarations, moved, number, phase)
    # Read back from the state file and its journal, state knows every object the apply made: by its
    # record (as current or deposed object), or by the intent journaled before its create was sent.
    state = memory.state()
    recorded = {i for record in state.resources.values() for i in (record.id, *record.deposed)}
    for obj in memory.server.objects.values():
        if not obj.name.endswith("/default"):
            assert obj.id in recorded or f"{obj.kind}.{obj.name}" in state.pending, obj
    _check_converged(memory, declarations, moved)


PARALLEL_CASES = [(scenario, n, phase) for scenario in ("create", "destroy") for n in range(1, SCENARIOS[scenario][3] + 1)
                  for phase in ("before", "after")]


@pytest.mark.parametrize("scenario, number, phase", PARALLEL_CASES, ids=[f"{s}-{n}-{p}" for s, n, p in PARALLEL_CASES])
def test_a_crash_during_a_parallel_apply_loses_and_duplicates_nothing(memory: Memory, tmp_path: Path, scenario: str,
                                                                      number: int, phase: str) -> None:
    """Other steps are under way when the process dies: some writes landed and were not yet journaled."""
    before, declarations, moved, _ = SCENARIOS[scenario]
    if before is not None:
        memory.apply(before)
    memory.server.delay = 0.001
    _crash(memory, tmp_path, declarations, moved, number, phase, parallelism=4)
    memory.server.delay = 0.0
    _check_converged(memory, declarations, moved)


@pytest.mark.parametrize("scenario, number, phase", CASES)
def test_a_failed_write_at_any_point_loses_and_duplicates_nothing(memory: Memory, scenario: str, number: int,
                                                                 phase: str) -> None:
    before, declarations, moved, _ = SCENARIOS[scenario]
    if before is not None:
        memory.apply(before)
    start = memory.server.attempts

    def refuse(write: Write, when: str) -> None:
        if (write.number - start, when) == (number, phase):
            raise ServerError("the server is busy")

    memory.server.hooks.append(refuse)
    plan, result = memory.apply(declarations, moved=moved, parallelism=1)
    assert len(result.failed) == 1
    memory.server.hooks.clear()
    _check_converged(memory, declarations, moved)


def test_a_journaled_move_survives_the_crash(memory: Memory, tmp_path: Path) -> None:
    """Read back after a crash that followed the rename, state has the object at its new address, so a
    configuration without the moved entry any more neither deletes nor re-creates it."""
    before, declarations, moved, _ = SCENARIOS["change"]
    memory.apply(before)
    renamed = memory.records()["mem_items.m"]
    _crash(memory, tmp_path, declarations, moved, 5, "after")
    records = memory.records()
    assert records.get("mem_items.n") == renamed and "mem_items.m" not in records
    _check_converged(memory, declarations, [])
