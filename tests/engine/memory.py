"""The engine's test double of a Prefect server: resource kinds whose objects live in memory.

As Terraform tests its core against a mock provider, these are real ResourceKind subclasses the
engine plans and applies like any other; they ignore the HTTP client and act on a MemoryServer,
which behaves like the parts of Prefect the engine relies on: ids it makes, names unique per
kind (or not), objects deleted with their parent, objects it creates itself, values it fills in,
and objects that hold other objects' ids. Every write is logged, and a test may make any write
fail (before or after it took effect) or kill the process (see `tests/engine/test_journal.py`).

The kinds are registered in one place, the `memory` fixture; nothing else here touches globals.
"""

from __future__ import annotations

import copy
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field, JsonValue

from provider.client import Connection, PrefectClient
from provider.config import Configuration, Moved, Resource
from provider.engine import ApplyResult, PlanOptions, apply_moves, apply_plan, make_plan
from provider.errors import BadRequest, Conflict, Location, NotFound
from provider.plan import Plan
from provider.state import LocalBackend, State, StateWriter
from provider.yamlsource import SourceMap
from resources import KINDS
from resources.base import Address, ApplyContext, LiveObject, ResourceKind, Spec, wanted

# A client whose server never answers: the memory kinds never use it, and a request the engine
# sent through it would fail at once (port 1 refuses connections; one attempt) and be counted.
UNUSED_API = "http://127.0.0.1:1/api"
NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
DEFAULT_CHILD = "default"  # the child the server makes with every item, as Prefect a pool's default queue


# --- the server ----------------------------------------------------------------------------------


@dataclass
class Stored:
    id: str
    kind: str
    name: str
    attributes: dict[str, Any]


@dataclass
class Write:
    """One write reaching the server: its number (from 1, in arrival order), operation and address."""

    number: int
    op: str  # create | update | rename | delete
    kind: str
    name: str

    @property
    def address(self) -> str:
        return f"{self.kind}.{self.name}"


# Called before ("before") and after ("after") a write takes effect; may raise to fail it.
Hook = Callable[[Write, str], None]


@dataclass
class MemoryServer:
    objects: dict[str, Stored] = field(default_factory=dict)  # id -> object
    log: list[Write] = field(default_factory=list)  # writes that took effect, in order
    hooks: list[Hook] = field(default_factory=list)
    delay: float = 0.0  # seconds each write takes (outside the lock), so parallel steps overlap
    attempts: int = 0  # writes sent, failed ones included: a Write's number
    in_flight: int = 0
    most_in_flight: int = 0  # the most writes under way at once
    _generations: dict[tuple[str, str], int] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # -- what tests look at --

    def named(self, kind: str, name: str) -> list[Stored]:
        return [o for o in self.objects.values() if o.kind == kind and o.name == name]

    def one(self, address: str) -> Stored:
        kind, _, name = address.partition(".")
        found = self.named(kind, name)
        assert len(found) == 1, f"{address}: {len(found)} objects on the server"
        return found[0]

    def addresses(self) -> list[str]:
        """Every object as KIND.NAME, sorted, namesakes repeated."""
        return sorted(f"{o.kind}.{o.name}" for o in self.objects.values())

    def ops(self, *ops: str) -> list[str]:
        """The writes that took effect, as "op address", in order."""
        return [f"{w.op} {w.address}" for w in self.log if not ops or w.op in ops]

    def position(self, write: str) -> int:
        """Where "OP ADDRESS" stands among the writes that took effect."""
        return self.ops().index(write)

    def reset(self) -> None:
        """An empty workspace again, ids starting over."""
        with self._lock:
            self.objects.clear()
            self.log.clear()
            self._generations.clear()

    # -- out-of-band changes, as someone using the UI would make them --

    def put(self, kind: str, name: str, **attributes: Any) -> Stored:
        with self._lock:
            obj = Stored(self._new_id(kind, name), kind, name, attributes)
            self.objects[obj.id] = obj
            return obj

    def edit(self, address: str, **attributes: Any) -> None:
        self.one(address).attributes.update(attributes)

    def remove(self, address: str) -> None:
        """Delete an object (an item's children with it)."""
        with self._lock:
            obj = self.objects.pop(self.one(address).id)
            if obj.kind == MemoryKind.kind:
                for child in self.named_under(obj.name):
                    del self.objects[child.id]

    def named_under(self, item: str) -> list[Stored]:
        """The children of an item."""
        return [o for o in self.objects.values() if o.kind == ChildKind.kind and o.name.startswith(f"{item}/")]

    # -- writes, as the kinds send them --

    def write(self, op: str, kind: str, name: str, effect: Callable[[], Any]) -> Any:
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.delay:
                time.sleep(self.delay)
            with self._lock:
                self.attempts += 1
                write = Write(self.attempts, op, kind, name)
                for hook in self.hooks:
                    hook(write, "before")
                result = effect()
                self.log.append(write)
                for hook in self.hooks:
                    hook(write, "after")
                return result
        finally:
            with self._lock:
                self.in_flight -= 1

    def _new_id(self, kind: str, name: str) -> str:
        """Ids that do not depend on the order of parallel creates: KIND-NAME-GENERATION."""
        generation = self._generations.get((kind, name), 0) + 1
        self._generations[(kind, name)] = generation
        return f"{kind}-{name.replace('/', '~')}-{generation}"

    def _get(self, kind: str, obj_id: str) -> Stored:
        obj = self.objects.get(obj_id)
        if obj is None or obj.kind != kind:
            raise NotFound(f"{kind} {obj_id} not found", method="MEMORY", url=obj_id, status_code=404)
        return obj


# --- the kinds -----------------------------------------------------------------------------------


class ItemSpec(Spec):
    value: JsonValue = None
    flavor: str | None = None  # replace_fields: the server cannot change it in place
    tags: list[str] = Field(default_factory=list)
    needs: list[str] = Field(default_factory=list)  # addresses this one depends on (order only)


class LinkSpec(ItemSpec):
    target: str  # the address of the object whose id this one holds


class HookSpec(ItemSpec):
    priority: int | None = None  # server-filled when unset


def _address(text: str) -> Address:
    kind, _, name = text.partition(".")
    return Address(kind, name)


class MemoryKind(ResourceKind):
    """mem_items: unique names, renamable, `flavor` forces replacement, adopted when tagged adopt-me."""

    kind = "mem_items"
    spec = ItemSpec
    renamable = True
    replace_fields = frozenset({"flavor"})

    def __init__(self, server: MemoryServer):
        self.server = server

    def check_name(self, name: str) -> None:
        if not NAME.fullmatch(name):
            raise ValueError("expected lowercase letters, digits, - and _")

    def references(self, name: str, spec: ItemSpec) -> list[Address]:
        return [_address(a) for a in spec.needs]

    def desired(self, name: str, spec: ItemSpec, defaults: Any) -> dict[str, Any]:
        return spec.model_dump(mode="json", exclude={"lifecycle", "needs"})

    def adopt_reason(self, obj: LiveObject) -> str | None:
        return "tagged adopt-me: taken into state" if "adopt-me" in (obj.attributes.get("tags") or []) else None

    def list(self, client: PrefectClient, names: set[str] | None) -> list[LiveObject]:
        with self.server._lock:
            return [LiveObject(o.id, o.name, copy.deepcopy(o.attributes)) for o in self.server.objects.values()
                    if o.kind == self.kind and wanted(o.name, names)]

    def stored(self, name: str, attributes: dict[str, Any], ctx: ApplyContext) -> dict[str, Any]:
        """What the server keeps of the attributes sent."""
        return copy.deepcopy(attributes)

    def create(self, client: PrefectClient, name: str, attributes: dict[str, Any], ctx: ApplyContext) -> str:
        kept = self.stored(name, attributes, ctx)

        def effect() -> str:
            if self.unique_names and self.server.named(self.kind, name):
                raise Conflict(f"{self.kind} {name!r} already exists", method="MEMORY", url=name, status_code=409)
            obj = self.server.put(self.kind, name, **kept)
            self.made(obj)
            return obj.id

        return self.server.write("create", self.kind, name, effect)

    def made(self, obj: Stored) -> None:
        """What the server does when it makes an object: an item comes with its default child."""
        self.server.put(ChildKind.kind, f"{obj.name}/{DEFAULT_CHILD}", value=None, flavor=None, tags=[])

    def update(self, client: PrefectClient, obj_id: str, name: str, attributes: dict[str, Any], before: dict[str, Any],
               ctx: ApplyContext) -> None:
        kept = self.stored(name, attributes, ctx)

        def effect() -> None:
            obj = self.server._get(self.kind, obj_id)
            if obj.attributes.get("flavor") != kept.get("flavor"):
                raise BadRequest(f"{self.kind} {name}: flavor cannot be changed", method="MEMORY", url=obj_id)
            obj.attributes = kept

        self.server.write("update", self.kind, name, effect)

    def rename(self, client: PrefectClient, obj_id: str, new_name: str, attributes: dict[str, Any], ctx: ApplyContext) -> None:
        def effect() -> None:
            if self.server.named(self.kind, new_name):
                raise Conflict(f"{self.kind} {new_name!r} already exists", method="MEMORY", url=new_name, status_code=409)
            obj = self.server._get(self.kind, obj_id)
            for child in self.server.named_under(obj.name):  # children are named under their item
                child.name = f"{new_name}/{child.name.split('/', 1)[1]}"
            obj.name = new_name

        self.server.write("rename", self.kind, new_name, effect)

    def delete(self, client: PrefectClient, obj_id: str, name: str) -> None:
        def effect() -> None:
            self.unmade(self.server.objects.pop(self.server._get(self.kind, obj_id).id))

        self.server.write("delete", self.kind, name, effect)

    def unmade(self, obj: Stored) -> None:
        """What the server does when it deletes an object: an item's children go with it."""
        for child in self.server.named_under(obj.name):
            del self.server.objects[child.id]


class FixedKind(MemoryKind):
    """mem_fixed: unique names the server cannot change (a `moved` entry is refused)."""

    kind = "mem_fixed"
    renamable = False

    def made(self, obj: Stored) -> None:
        pass

    def unmade(self, obj: Stored) -> None:
        pass


class RepeatKind(FixedKind):
    """mem_repeat: the server allows one name twice, so create_before_destroy can work."""

    kind = "mem_repeat"
    unique_names = False


class ChildKind(FixedKind):
    """mem_children (ITEM/CHILD): deleted with their item; ITEM/default is made and owned by the server."""

    kind = "mem_children"
    identity = "ITEM/CHILD"
    deleted_with_parent = True

    def check_name(self, name: str) -> None:
        parent, slash, child = name.partition("/")
        if not slash or not NAME.fullmatch(parent) or not NAME.fullmatch(child):
            raise ValueError(f"expected {self.identity}")

    def references(self, name: str, spec: ItemSpec) -> list[Address]:
        return [Address(MemoryKind.kind, name.split("/")[0]), *super().references(name, spec)]

    def server_owned(self, name: str) -> bool:
        return name.split("/")[1] == DEFAULT_CHILD

    def create(self, client: PrefectClient, name: str, attributes: dict[str, Any], ctx: ApplyContext) -> str:
        if not self.server.named(MemoryKind.kind, name.split("/")[0]):
            raise NotFound(f"item {name.split('/')[0]} not found", method="MEMORY", url=name, status_code=404)
        if self.server_owned(name):  # the server made it with its item: make it match
            existing = self.server.named(self.kind, name)[0]
            self.update(client, existing.id, name, attributes, existing.attributes, ctx)
            return existing.id
        return super().create(client, name, attributes, ctx)


class LinkKind(FixedKind):
    """mem_links: hold the id of their target (refers_by_id), shown as its address when it is managed."""

    kind = "mem_links"
    spec = LinkSpec
    refers_by_id = True

    def references(self, name: str, spec: LinkSpec) -> list[Address]:
        return [_address(spec.target), *super().references(name, spec)]

    def stored(self, name: str, attributes: dict[str, Any], ctx: ApplyContext) -> dict[str, Any]:
        target_id = ctx.id_of(attributes["target"])
        if target_id not in self.server.objects:
            raise BadRequest(f"{name}: target {target_id} does not exist", method="MEMORY", url=name)
        return {**copy.deepcopy(attributes), "target": target_id}

    def name_references(self, obj: LiveObject, addresses: Any) -> None:
        if obj.attributes.get("target") in addresses:
            obj.attributes["target"] = str(addresses[obj.attributes["target"]])


class HookKind(FixedKind):
    """mem_hooks: an `endpoint` the server computes, a `priority` it chooses when left unset."""

    kind = "mem_hooks"
    spec = HookSpec
    computed = frozenset({"endpoint"})
    server_filled = frozenset({"priority"})
    DEFAULT_PRIORITY = 10

    def create(self, client: PrefectClient, name: str, attributes: dict[str, Any], ctx: ApplyContext) -> str:
        priority = attributes.get("priority") or self.DEFAULT_PRIORITY
        obj_id = super().create(client, name, {**attributes, "priority": priority}, ctx)
        self.server.objects[obj_id].attributes["endpoint"] = f"https://hooks.invalid/{obj_id}"
        return obj_id

    def update(self, client: PrefectClient, obj_id: str, name: str, attributes: dict[str, Any], before: dict[str, Any],
               ctx: ApplyContext) -> None:
        kept = {**attributes, "endpoint": before.get("endpoint")}
        if kept.get("priority") is None:
            kept["priority"] = before.get("priority")
        super().update(client, obj_id, name, kept, before, ctx)


class SecretSpec(ItemSpec):
    token: str | None = None  # sensitive


class SecretKind(FixedKind):
    """mem_secrets: a sensitive `token`, kept out of plans and state as a fingerprint."""

    kind = "mem_secrets"
    spec = SecretSpec

    def sensitive_paths(self, name: str, attributes: dict[str, Any], defaults: Any) -> list[str]:
        return ["token"] if attributes.get("token") is not None else []


KIND_CLASSES: tuple[type[MemoryKind], ...] = (MemoryKind, FixedKind, RepeatKind, ChildKind, LinkKind, HookKind, SecretKind)


# --- configurations ------------------------------------------------------------------------------


def configure(declarations: dict[str, dict[str, Any]], moved: Iterable[tuple[str, str]] = ()) -> Configuration:
    """A configuration as loading YAML would make it: {"KIND.NAME": spec}, dependencies from references."""
    resources: dict[Address, Resource] = {}
    for line, (text, raw) in enumerate(declarations.items(), 1):
        address = _address(text)
        kind = KINDS[address.kind]
        kind.check_name(address.name)
        spec = kind.spec.model_validate(raw)
        resources[address] = Resource(address, spec, Location("memory.yaml", line), SourceMap("memory.yaml"),
                                      (address.kind, address.name))
    for address, resource in resources.items():
        for target in resource.kind.references(address.name, resource.spec):
            assert target in resources, f"{address} refers to {target}, which is not declared"
            resource.depends_on.append(target)
    entries = [Moved.model_validate({"from": old, "to": new}) for old, new in moved]
    return Configuration(Path("/memory"), resources, moved=entries)


# --- the workflow, as the CLI runs it --------------------------------------------------------------


@dataclass
class Memory:
    """One workspace in memory and one state file: plan and apply as `prefect-provider` does (read
    state, apply `moved`, plan, journal the moves, apply). The session layer of issue 16 replaces this."""

    server: MemoryServer
    client: PrefectClient
    state_path: Path

    @property
    def backend(self) -> LocalBackend:
        return LocalBackend(self.state_path)

    def state(self) -> State | None:
        return self.backend.read()

    def records(self) -> dict[str, str]:
        """Address -> id of every object the state file (with its journal) records."""
        state = self.state()
        return {key: record.id for key, record in sorted(state.resources.items())} if state else {}

    def plan(self, declarations: dict[str, dict[str, Any]] | None, *, mode: str = "normal", targets: Iterable[str] = (),
             replace: Iterable[str] = (), moved: Iterable[tuple[str, str]] = ()) -> Plan:
        config = None if declarations is None else configure(declarations, moved)
        plan, _ = self._plan(config, mode, list(targets), list(replace))
        return plan

    def _plan(self, config: Configuration | None, mode: str, targets: list[str], replace: list[str]) -> tuple[Plan, State]:
        stored = self.state()
        state = stored or State()
        moves = apply_moves(config, state)
        plan = make_plan(config, state, self.client, PlanOptions(mode, targets, replace, moves), new_state=stored is None)
        plan.moved = {new: f"{new.split('.', 1)[0]}.{old}" for new, old in moves.items()}
        return plan, state

    def apply(self, declarations: dict[str, dict[str, Any]] | None, *, parallelism: int = 10, mode: str = "normal",
              targets: Iterable[str] = (), replace: Iterable[str] = (), moved: Iterable[tuple[str, str]] = ()
              ) -> tuple[Plan, ApplyResult]:
        config = None if declarations is None else configure(declarations, moved)
        plan, state = self._plan(config, mode, list(targets), list(replace))
        return plan, self.apply_plan(plan, state, parallelism)

    def apply_plan(self, plan: Plan, state: State | None = None, parallelism: int = 10) -> ApplyResult:
        """Apply `plan` over `state` (the one it was made against), or over the stored state (a saved plan)."""
        backend = self.backend
        stored = backend.read()
        if state is None:
            state = stored or State(lineage=plan.lineage)
        writer = StateWriter(backend, state)
        for new, old in plan.moved.items():
            writer.move(old, new)
        return apply_plan(plan, self.client, writer, parallelism=parallelism)


@pytest.fixture(scope="session")
def unused_client() -> Iterator[PrefectClient]:
    """One for the session: making an httpx client (its TLS context) costs more than most tests."""
    with PrefectClient(Connection(UNUSED_API), max_attempts=1, timeout=1) as client:
        yield client


@pytest.fixture
def memory(tmp_path: Path, unused_client: PrefectClient) -> Iterator[Memory]:
    """A memory workspace with its kinds registered for the engine, and a state file in tmp_path."""
    server = MemoryServer()
    kinds = {cls.kind: cls(server) for cls in KIND_CLASSES}
    clashes = set(kinds) & set(KINDS)
    assert not clashes, f"memory kinds clash with real ones: {clashes}"
    KINDS.update(kinds)  # the catalog the engine, state files and saved plans check kinds against
    counter = unused_client.counter
    sent = (counter.reads, counter.writes)
    try:
        yield Memory(server, unused_client, tmp_path / "prefect-provider.state.json")
        assert (counter.reads, counter.writes) == sent, "the engine sent a request over HTTP"
    finally:
        for name in kinds:
            KINDS.pop(name, None)
