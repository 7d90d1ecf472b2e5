"""Any state file (with any journal), any saved plan and any file given to `state push` gives a
result or a clear error naming the file: never another exception, never a traceback.

Inputs: random JSON documents built from the files' own field names; damaged copies of good
files (values replaced, keys dropped or renamed, bytes cut off or flipped); random bytes. What is
accepted must also work: a state read back is written and read again unchanged, and a plan that
loads renders in every view.
"""

from __future__ import annotations

import copy
import json
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hypothesis import event, given
from hypothesis import strategies as st
from typer.testing import CliRunner

from provider.cli import app
from provider.errors import PlanError, StateError
from provider.plan import Change, Plan, load_saved_plan
from provider.render import human, plan_json, plan_markdown
from provider.state import LocalBackend, Record, State, parse_state
from resources import KINDS

GOOD_STATE = State(
    lineage="0b7c", serial=7,
    resources={
        "variables.a": Record("variables", "a", "id-a", {"value": [1, {"x": None}]}),
        "work_pools.p": Record("work_pools", "p", "id-p", {"type": "process"}, ["variables.a"]),
        "work_pools.p.infra.ecs_cluster": Record("infra", "p/ecs_cluster", "arn:x", {}, ["work_pools.p"]),
    },
    pending={"blocks.secret/token": {"kind": "blocks", "name": "secret/token"}},
).to_json()
GOOD_JOURNAL = [
    {"lineage": "0b7c", "serial": 8, "op": "intent", "address": "variables.b", "kind": "variables", "name": "b"},
    {"lineage": "0b7c", "serial": 9, "op": "put", "address": "variables.b",
     "record": asdict(Record("variables", "b", "id-b", {"value": 2}))},
    {"lineage": "0b7c", "serial": 10, "op": "move", "address": "variables.a", "to": "variables.c"},
    {"lineage": "0b7c", "serial": 11, "op": "remove", "address": "work_pools.p"},
]
GOOD_PLAN = Plan(
    changes=[
        Change("variables.a", "variables", "a", "create", None, {"value": 1}, depends_on=["work_pools.p"]),
        Change("variables.b", "variables", "b", "update", {"value": 1}, {"value": 2}, id="id-b", changed=["value"]),
        Change("blocks.secret/token", "blocks", "secret/token", "create-then-delete", {"value": "fp1"}, {"value": "fp2"}, sensitive=["value"]),
        Change("work_pools.p", "work_pools", "p", "delete", {"type": "process"}, None, dependencies=["variables.a"]),
        Change("work_pools.p.infra.ecs_cluster", "infra", "p/ecs_cluster", "forget", {}, None),
        Change("variables.c", "variables", "c", "no-op", {"value": 3}, {"value": 3}, moved_from="variables.old"),
    ],
    drift=[Change("variables.d", "variables", "d", "update", {"value": 1}, {"value": 5}, changed=["value"])],
    lineage="0b7c", serial=7, config_dir="/nowhere", warnings=["w"], moved={"variables.c": "variables.old"},
).to_file()

FIELD_NAMES = sorted(
    set(GOOD_STATE) | set(GOOD_PLAN) | {k for c in GOOD_PLAN["changes"] for k in c}
    | {k for entry in GOOD_JOURNAL for k in entry} | {k for r in GOOD_STATE["resources"].values() for k in r}
    | {"prevent_destroy", "kind", "name"}
)
ADDRESSES = [*GOOD_STATE["resources"], "variables", ".a", "bogus.a", "variables.", "work_pools.p.infra.", *KINDS]

keys = st.sampled_from(FIELD_NAMES + ADDRESSES) | st.text(max_size=6)
scalars = (st.none() | st.booleans() | st.integers(-3, 2**70) | st.floats(allow_nan=False, allow_infinity=False)
           | st.sampled_from(ADDRESSES + ["create", "update", "delete", "normal", "destroy", "0b7c"]) | st.text(max_size=6))
json_values = st.recursive(scalars, lambda children: st.lists(children, max_size=4)
                           | st.dictionaries(keys, children, max_size=5), max_leaves=25)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, item in items:
        found += _paths(item, (*prefix, key))
    return found


def _alike(value: Any) -> st.SearchStrategy[Any]:
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.integers(-3, 2**70)
    if isinstance(value, str):
        return st.sampled_from(ADDRESSES + ["create", "update", "forget", "normal", "refresh-only", "0b7c"]) | st.text(max_size=6)
    if isinstance(value, list):
        return st.lists(json_values, max_size=3) | st.lists(st.sampled_from(ADDRESSES), max_size=3)
    if isinstance(value, dict):
        return st.dictionaries(keys, json_values, max_size=4)
    return json_values


@st.composite
def damaged(draw, document: Any) -> bytes:
    """`document` with a few values replaced, keys dropped or renamed, then maybe cut or flipped."""
    document = copy.deepcopy(document)
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(_paths(document)))
        if not path:
            continue
        *parents, last = path
        container = document
        for part in parents:
            container = container[part]
        how = draw(st.sampled_from(["alike", "alike", "replace", "drop", "rename"]))
        if how == "alike":  # a value of the same JSON type: the shape stays, the content varies
            container[last] = draw(_alike(container[last]))
        elif how == "replace":
            container[last] = draw(json_values)
        elif how == "drop":
            del container[last]
        elif isinstance(container, dict):
            container[draw(keys)] = container.pop(last)
    raw = json.dumps(document).encode()
    cut = draw(st.sampled_from(["whole", "whole", "whole", "truncated", "flipped"]))
    if cut == "truncated":
        raw = raw[: draw(st.integers(0, max(0, len(raw) - 1)))]
    elif cut == "flipped" and raw:
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + bytes([raw[at] ^ draw(st.integers(1, 255))]) + raw[at + 1:]
    return raw


def any_file(document: Any) -> st.SearchStrategy[bytes]:
    return st.one_of(damaged(document), damaged(document), json_values.map(lambda v: json.dumps(v).encode()), st.binary(max_size=64))


journals = st.one_of(
    st.none(),
    st.lists(st.one_of(damaged(entry) for entry in GOOD_JOURNAL), max_size=5).map(lambda lines: b"\n".join(lines) + b"\n"),
    st.binary(max_size=64),
)


@given(any_file(GOOD_STATE))
def test_any_state_file_parses_or_is_a_clear_error(raw: bytes) -> None:
    try:
        state = parse_state(raw, "STATE-FILE")
    except StateError as exc:
        assert "STATE-FILE" in str(exc)
        event("refused")
        return
    event("accepted")
    assert all(record.kind in KINDS for record in state.resources.values())
    assert parse_state(json.dumps(state.to_json()), "again").to_json() == state.to_json()


@given(any_file(GOOD_STATE) | st.none(), journals)
def test_local_backend_reads_any_state_and_journal_or_names_the_bad_file(raw: bytes | None, journal: bytes | None) -> None:
    with tempfile.TemporaryDirectory() as directory:
        backend = LocalBackend(Path(directory) / "s.json")
        if raw is not None:
            backend.path.write_bytes(raw)
        if journal is not None:
            backend.journal_path.write_bytes(journal)
        try:
            state = backend.read()
        except StateError as exc:
            assert str(backend.path) in str(exc)  # the journal's name starts with the state's
            event("refused")
            return
        event("accepted" if state else "no state")
        if state is None:
            return
        backend.write(state)  # compare-and-swap over the file just read: it succeeds
        assert not backend.journal_path.exists()
        assert LocalBackend(backend.path).read().to_json() == state.to_json()


@given(any_file(GOOD_PLAN))
def test_any_saved_plan_loads_and_renders_or_is_a_clear_error(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "p.plan"
        path.write_bytes(raw)
        try:
            plan = load_saved_plan(path)
        except PlanError as exc:
            assert str(path) in str(exc)
            event("refused")
            return
        event("accepted")
        human(plan)
        json.dumps(plan_json(plan))
        plan_markdown(plan)


@given(any_file(GOOD_STATE) | st.sampled_from(["missing", "directory"]))
def test_state_push_of_any_file_pushes_it_or_names_it(content: bytes | str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        pushed = Path(directory) / "pushed.json"
        if content == "directory":
            pushed.mkdir()
        elif content != "missing":
            pushed.write_bytes(content)
        target = Path(directory) / "infra"
        target.mkdir()
        result = CliRunner().invoke(app, ["state", "push", str(pushed), str(target)], env={"NO_COLOR": "1", "COLUMNS": "500"},
                                    catch_exceptions=False)
        event(f"exit {result.exit_code}")
        if result.exit_code == 0:
            assert parse_state(pushed.read_bytes(), "pushed").to_json() == json.loads((target / "prefect-provider.state.json").read_text())
        else:
            assert result.exit_code == 1 and f"{pushed}" in result.stderr.replace("\n", "")
