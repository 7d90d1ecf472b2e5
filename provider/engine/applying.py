"""Applying a plan: its changes as steps in dependency order, run in parallel, each recorded in
state the moment it is done (a journaled StateWriter), so a failure half way loses nothing."""

from __future__ import annotations

import dataclasses
import functools
import heapq
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from provider.client import PrefectClient
from provider.errors import ApiError, ApiUnreachable, Conflict, NotFound
from provider.plan import KNOWN_AFTER_APPLY, Action, Change, Plan
from provider.secrets import reveal
from provider.state import Record, StateWriter
from resources import CATALOG
from resources.base import ApplyContext, Catalog, ResourceKind, progress_to


@dataclass
class Step:
    """One operation of an apply: a change's create, update, delete or state-only part."""

    change: Change
    operation: str  # create | update | delete | forget | import
    after: set[int] = field(default_factory=set)  # indexes of steps that must finish first


@dataclass
class ApplyResult:
    done: list[Step] = field(default_factory=list)
    failed: list[tuple[Step, Exception]] = field(default_factory=list)
    skipped: list[Step] = field(default_factory=list)
    unreachable: ApiUnreachable | None = None  # the API stopped answering: nothing more was started
    not_attempted: list[Step] = field(default_factory=list)  # left waiting when it did

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped and not self.not_attempted


# ("start" | "done" | "failed" | "skipped", step, error), or ("progress", step, a line about the step under way)
Event = Callable[[str, Step, Exception | str | None], None]


def build_steps(changes: list[Change]) -> list[Step]:
    steps: list[Step] = []
    writes: dict[str, int] = {}  # address -> its create/update/import step
    deletes: dict[str, int] = {}
    deposed: list[Step] = []
    for change in changes:
        if not change.is_change:
            continue
        if change.of_deposed:
            deposed.append(Step(change, "delete" if change.action == Action.DELETE else "forget"))
            continue
        if change.action.deletes:
            deletes[change.address] = len(steps)
            steps.append(Step(change, "delete"))
        if change.action.creates:
            writes[change.address] = len(steps)
            steps.append(Step(change, "create"))
            if change.action == Action.CREATE_THEN_DELETE:
                steps[deletes[change.address]].after.add(writes[change.address])
        elif change.action == Action.UPDATE:
            writes[change.address] = len(steps)
            steps.append(Step(change, "update"))
        elif change.action == Action.FORGET:
            steps.append(Step(change, "forget"))
        elif change.action == Action.NO_OP:
            writes[change.address] = len(steps)  # dependents written in this apply need its id
            steps.append(Step(change, "import"))
    for index, step in enumerate(steps):
        change = step.change
        if step.operation in ("create", "update"):
            step.after |= {writes[d] for d in change.depends_on if d in writes}
            if change.action == Action.REPLACE:  # a replacement deletes first
                step.after.add(deletes[change.address])
        elif step.operation == "delete":
            # Dependents go (or stop referring to it) before the object they depend on. When it
            # is replaced, dependents that are updated refer to the new object: they wait for it.
            for other in changes:
                if change.address in other.dependencies:
                    if other.address in deletes and deletes[other.address] != index:
                        step.after.add(deletes[other.address])
                    if other.address in writes and other.action == Action.UPDATE and change.action == Action.DELETE:
                        step.after.add(writes[other.address])
    for step in deposed:  # once the address's record (which lists them) is written
        step.after |= {writes[step.change.address]} if step.change.address in writes else set()
        steps.append(step)
    return steps


def apply_plan(
    plan: Plan,
    client: PrefectClient,
    writer: StateWriter,
    *,
    parallelism: int = 10,
    on_event: Event | None = None,
    catalog: Catalog = CATALOG,
) -> ApplyResult:
    """Run the plan's steps in dependency order, `parallelism` at a time, saving state after each."""
    on_event = on_event or (lambda *_: None)
    runner = _Runner(client, writer, catalog, plan.secrets, ApplyContext(
        {**plan.data_ids, **{address: record.id for address, record in writer.state.resources.items()}}))
    result = ApplyResult()
    try:
        if plan.mode == "refresh-only":
            _accept_drift(plan, writer)
        else:
            runner.run(build_steps(plan.changes), parallelism, result, on_event)
    finally:
        writer.close()
    return result


def create_object(client: PrefectClient, kind: ResourceKind, name: str, attributes: dict[str, Any], ctx: ApplyContext) -> str:
    """Create one object and return its id."""
    try:
        return kind.create(client, name, attributes, ctx)
    except Conflict:
        # A create whose first attempt landed before its answer was lost: adopt, don't duplicate.
        existing = {o.name: o for o in kind.list(client, {name})}.get(name)
        if existing is None:
            raise
        kind.update(client, existing.id, name, attributes, existing.attributes, ctx)
        return existing.id


@dataclass
class _Runner:
    client: PrefectClient
    writer: StateWriter
    catalog: Catalog
    secrets: dict[str, dict[str, Any]]  # address -> path -> clear value
    ctx: ApplyContext

    def run(self, steps: list[Step], parallelism: int, result: ApplyResult, on_event: Event) -> None:
        # A step is ready, in index order, once the last step it waits for is done: rescanning every
        # waiting step after each completion made a 10,000-object apply quadratic.
        unfinished = [len(step.after) for step in steps]
        dependents: dict[int, list[int]] = {}
        for index, step in enumerate(steps):
            for before in step.after:
                dependents.setdefault(before, []).append(index)
        ready = [index for index, count in enumerate(unfinished) if count == 0]
        heapq.heapify(ready)
        running: dict[Future, int] = {}
        started: set[int] = set()
        skipped: set[int] = set()
        with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
            while ready or running:
                while ready and len(running) < parallelism and result.unreachable is None:
                    # (once the API is gone nothing more is started: what is left is listed below)
                    index = heapq.heappop(ready)
                    step = steps[index]
                    on_event("start", step, None)
                    started.add(index)
                    running[pool.submit(self.step, step, functools.partial(on_event, "progress", step))] = index
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    index = running.pop(future)
                    step = steps[index]
                    error = future.exception()
                    if error is None:
                        result.done.append(step)
                        on_event("done", step, None)
                        for dependent in dependents.get(index, []):
                            unfinished[dependent] -= 1
                            if unfinished[dependent] == 0:
                                heapq.heappush(ready, dependent)
                        continue
                    result.failed.append((step, error))
                    if isinstance(error, ApiUnreachable) and result.unreachable is None:
                        result.unreachable = error
                    on_event("failed", step, error)
                    # Everything that waits on it, directly or not, is not attempted.
                    broken, pending = set(), list(dependents.get(index, []))
                    while pending:
                        dependent = pending.pop()
                        if dependent not in skipped and dependent not in broken:
                            broken.add(dependent)
                            pending += dependents.get(dependent, [])
                    for dependent in sorted(broken):
                        skipped.add(dependent)
                        result.skipped.append(steps[dependent])
                        on_event("skipped", steps[dependent], None)
        if result.unreachable is not None:
            result.not_attempted += [step for index, step in enumerate(steps) if index not in started and index not in skipped]

    def step(self, step: Step, report: Callable[[str], None]) -> None:
        with progress_to(report):
            self._apply(step)

    def _apply(self, step: Step) -> None:
        change, writer, client, ctx = step.change, self.writer, self.client, self.ctx
        kind = self.catalog[change.kind]
        send = reveal(change.after, self.secrets.get(change.address, {})) if change.after is not None else None
        if step.operation == "delete":
            if not kind.server_owned(change.name):
                try:
                    kind.delete_known(client, change.id, change.name, change.before or {})
                except NotFound:
                    pass  # already gone (e.g. deleted with its parent): the goal is reached
            if change.of_deposed or change.action == Action.CREATE_THEN_DELETE:
                writer.undepose(change.address, change.id)  # state records the replacement already
            else:
                writer.remove(change.address)
            return
        if step.operation == "forget":
            if change.of_deposed:
                writer.undepose(change.address, change.id)
            else:
                writer.remove(change.address)
            return
        if step.operation == "import":
            obj_id = change.id
        elif step.operation == "update":
            if change.moved_from:
                kind.rename(client, change.id, change.name, send, ctx)
            if not change.moved_from or set(change.changed) - {"name"}:
                kind.update(client, change.id, change.name, send, change.before or {}, ctx)
            obj_id = change.id
        else:
            writer.intend(change.address, change.kind, change.name)
            # Server-filled attributes left unset are not sent: the server chooses them.
            send = {**send, **{f: None for f in kind.server_filled if send.get(f) == KNOWN_AFTER_APPLY}}
            obj_id = create_object(client, kind, change.name, send, ctx)
        ctx.ids[change.address] = obj_id
        after = change.after
        filled = [f for f in (*kind.computed, *kind.server_filled) if after.get(f) == KNOWN_AFTER_APPLY]
        if step.operation == "update":
            # An update can change what the server computes (e.g. a service account's rotated key): read it again.
            filled += [f for f in kind.computed if f not in filled]
        if filled:
            # The server filled these in when it made the object (e.g. a webhook's endpoint): read them for state.
            written = next((o for o in kind.list(client, {change.name}) if o.id == obj_id), None)
            if written is not None:
                after = {**after, **{f: written.attributes.get(f) for f in filled}}
        # A create_before_destroy replacement deposes the object it replaces until that is deleted.
        deposed = [*change.deposed, change.id] if change.action == Action.CREATE_THEN_DELETE else list(change.deposed)
        writer.put(change.address, Record(change.kind, change.name, obj_id, after, list(change.depends_on),
                                          change.prevent_destroy, deposed))


def _accept_drift(plan: Plan, writer: StateWriter) -> None:
    """A refresh-only apply: state takes the live values; the server is not touched."""
    for change in plan.drift:
        record = writer.state.resources.get(change.address)
        if record is None:
            continue
        if change.after is None:
            writer.remove(change.address)
        else:
            writer.put(change.address, dataclasses.replace(record, id=change.id or record.id, attributes=change.after))


def describe_error(error: Exception) -> str:
    return str(error) if isinstance(error, ApiError) else f"{type(error).__name__}: {error}"
