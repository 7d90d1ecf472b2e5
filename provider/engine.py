"""Refresh, diff, plan and apply. Kind-agnostic; never prints (progress goes to a callback)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from deepdiff import DeepDiff

from provider.client import PrefectClient
from provider.config import Configuration
from provider.errors import ApiError, ConfigError, ConfigErrors, Conflict, NotFound, PlanError
from provider.plan import Change, Plan
from provider.secrets import conceal, reveal
from provider.state import Record, State, StateWriter
from provider.yamlsource import _dotted
from resources import KINDS
from resources.base import Address, ApplyContext, FieldError, LiveObject, ServerDefaults

# --- diff -------------------------------------------------------------------------------------


def changed_fields(before: dict[str, Any], after: dict[str, Any], ignore: Iterable[str] = ()) -> list[str]:
    """Top-level attributes whose values differ (1 and 1.0 are the same number)."""
    ignored = set(ignore)
    before = {k: v for k, v in before.items() if k not in ignored}
    after = {k: v for k, v in after.items() if k not in ignored}
    if _canonical(before) == _canonical(after):
        return []  # the common case, decided without DeepDiff (which is slow at a thousand objects)
    diff = DeepDiff(before, after, ignore_numeric_type_changes=True, verbose_level=0)
    return sorted(str(key) for key in diff.affected_root_keys)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


# --- refresh ----------------------------------------------------------------------------------


def refresh(client: PrefectClient, names_by_kind: dict[str, set[str]], parallelism: int = 8) -> dict[str, dict[str, LiveObject]]:
    """Live objects by kind and name: one bulk filter listing per kind, kinds read in parallel."""
    wanted = {kind: names for kind, names in names_by_kind.items() if names}
    if not wanted:
        return {}
    with ThreadPoolExecutor(max_workers=min(parallelism, len(wanted))) as pool:
        futures = {kind: pool.submit(KINDS[kind].list, client, names) for kind, names in wanted.items()}
        return {kind: {obj.name: obj for obj in future.result()} for kind, future in futures.items()}


# --- plan -------------------------------------------------------------------------------------


@dataclass
class PlanOptions:
    mode: str = "normal"  # normal | destroy | refresh-only
    targets: list[str] = field(default_factory=list)
    replace: list[str] = field(default_factory=list)


@dataclass
class Desired:
    """What the configuration asks for, with secrets concealed; the clear values kept apart."""

    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)  # address -> attributes
    sensitive: dict[str, list[str]] = field(default_factory=dict)  # address -> sensitive paths
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)  # address -> path -> clear value


def desired_attributes(resources: dict[Address, Any], defaults: ServerDefaults, salt: str) -> Desired:
    desired = Desired()
    errors: list[ConfigError] = []
    for address, resource in resources.items():
        key = str(address)
        kind = resource.kind
        try:
            attributes = kind.desired(address.name, resource.spec, defaults)
        except ValueError as exc:
            # What only the server knows (e.g. a block type's schema) is checked here, not offline.
            path = exc.path if isinstance(exc, FieldError) else ()
            errors.append(ConfigError(str(exc), resource.locate(*path), _dotted((address.kind, address.name, *path))))
            continue
        paths = kind.sensitive_paths(address.name, attributes, defaults)
        desired.attributes[key], desired.secrets[key] = conceal(attributes, paths, salt)
        desired.sensitive[key] = paths
    if errors:
        raise ConfigErrors(errors)
    return desired


def make_plan(
    config: Configuration | None,
    state: State,
    client: PrefectClient,
    options: PlanOptions | None = None,
    *,
    new_state: bool = False,
) -> Plan:
    """Compare configuration, state and the live workspace. `new_state`: no state existed before."""
    options = options or PlanOptions()
    working = state
    resources = config.resources if config and options.mode != "destroy" else {}

    names_by_kind: dict[str, set[str]] = {}
    for address in resources:
        names_by_kind.setdefault(address.kind, set()).add(address.name)
    for record in working.resources.values():
        names_by_kind.setdefault(record.kind, set()).add(record.name)
    live = refresh(client, names_by_kind)

    defaults = ServerDefaults(client)
    salt = working.lineage
    addresses = _addresses(working)
    for kind_name, objects in live.items():
        for obj in objects.values():
            KINDS[kind_name].name_references(obj, addresses)
            paths = KINDS[kind_name].sensitive_paths(obj.name, obj.attributes, defaults)
            obj.attributes, _ = conceal(obj.attributes, paths, salt)
            obj.sensitive = paths
    wanted = desired_attributes(resources, defaults, salt)
    drift = _drift(working, live, defaults)
    changes: dict[str, Change] = {}
    unmanaged: list[str] = []

    for address, resource in resources.items():
        key = str(address)
        kind = resource.kind
        desired = wanted.attributes[key]
        record = working.resources.get(key)
        obj = live.get(address.kind, {}).get(address.name)
        ignore = resource.spec.lifecycle.ignore_changes
        depends_on = [str(a) for a in resource.depends_on]
        sensitive = wanted.sensitive[key]
        if obj is None:
            reason = "deleted outside prefect-provider" if record else ""
            changes[key] = Change(key, "create", None, desired, reason, depends_on=depends_on, sensitive=sensitive)
            continue
        interrupted = record is None and key in working.pending
        if record is None and not interrupted and not kind.server_owned(address.name):
            unmanaged.append(f"{key} (id {obj.id})")
            continue
        diff = changed_fields(obj.attributes, desired, ignore)
        if ignore:
            # Ignored fields keep their live value, so applying never touches them.
            desired = {**desired, **{f: obj.attributes[f] for f in ignore if f in obj.attributes}}
        common = dict(id=obj.id, depends_on=depends_on, changed=diff, sensitive=sorted({*sensitive, *obj.sensitive}),
                      dependencies=record.dependencies if record else [])
        if key in options.replace:
            changes[key] = Change(key, "replace", obj.attributes, desired, "replacement requested", **common)
        elif forced := [f for f in diff if f in kind.replace_fields]:
            changes[key] = Change(key, "replace", obj.attributes, desired, f"{', '.join(forced)} forces replacement", **common)
        elif diff:
            reason = "changed outside prefect-provider" if key in {d.address for d in drift} else "configuration changed"
            changes[key] = Change(key, "update", obj.attributes, desired, f"{reason}: {', '.join(diff)}", **common)
        else:
            changes[key] = Change(key, "no-op", obj.attributes, desired, **common)
        if record is None:
            changes[key].importing = True
            changes[key].reason = (
                "created by an interrupted apply; taken into state" if interrupted
                else "created by the server with its parent; taken into state"
            )

    if unmanaged:
        lines = "\n".join(f"  {u}" for u in unmanaged)
        raise PlanError(
            "these objects already exist on the server but are not managed by prefect-provider:\n"
            f"{lines}\nAdopt each with `prefect-provider import ADDRESS ID_OR_NAME`, or remove it from the configuration."
        )

    for key, record in working.resources.items():
        if Address.parse(key) in resources:
            continue
        obj = live.get(record.kind, {}).get(record.name)
        if KINDS[record.kind].server_owned(record.name):
            changes[key] = Change(key, "forget", record.attributes, None, "belongs to the server: no longer managed, not deleted", id=record.id)
        elif obj is None:
            changes[key] = Change(key, "forget", record.attributes, None, "already deleted outside prefect-provider", id=record.id,
                                  sensitive=KINDS[record.kind].sensitive_paths(record.name, record.attributes, defaults))
        else:
            reason = "destroy requested" if options.mode == "destroy" else "no longer in the configuration"
            changes[key] = Change(key, "delete", obj.attributes, None, reason, id=obj.id,
                                  dependencies=record.dependencies, sensitive=obj.sensitive)

    _cascade_replacements(changes)
    _check_prevent_destroy(config, changes)
    plan_changes = _targeted(list(changes.values()), options.targets, changes)
    if options.mode == "refresh-only":
        plan_changes = []
    return Plan(
        changes=sorted(plan_changes, key=lambda c: c.address),
        drift=drift,
        mode=options.mode,
        lineage=state.lineage,
        serial=None if new_state else state.serial,
        config_dir=str(config.directory.absolute()) if config else None,
        warnings=list(config.warnings) if config else [],
        secrets=wanted.secrets,
    )


def _addresses(state: State) -> dict[str, Address]:
    """The address of every managed object by its id: how live objects name what they refer to."""
    return {record.id: Address(record.kind, record.name) for record in state.resources.values()}


def _drift(state: State, live: dict[str, dict[str, LiveObject]], defaults: ServerDefaults) -> list[Change]:
    """Managed objects that changed on the server since the last apply (state vs live)."""
    drift = []
    for key, record in sorted(state.resources.items()):
        obj = live.get(record.kind, {}).get(record.name)
        # The recorded attributes may hold secrets the live object no longer has (e.g. a removed key).
        recorded = KINDS[record.kind].sensitive_paths(record.name, record.attributes, defaults)
        if obj is None:
            drift.append(Change(key, "delete", record.attributes, None, "deleted outside prefect-provider", id=record.id,
                                sensitive=recorded))
            continue
        diff = changed_fields(record.attributes, obj.attributes)
        if diff:
            drift.append(Change(key, "update", record.attributes, obj.attributes,
                                f"changed outside prefect-provider: {', '.join(diff)}", id=obj.id, changed=diff,
                                sensitive=sorted({*recorded, *obj.sensitive})))
    return drift


def _cascade_replacements(changes: dict[str, Change]) -> None:
    """Objects the server deletes along with their parent are replaced when the parent is, and
    objects holding the id of one that gets a new id (replaced or re-created) are updated."""
    replaced = {k for k, c in changes.items() if c.action == "replace"}
    cascading = True
    while cascading:  # a cascaded replacement may cascade further
        cascading = False
        for key, change in changes.items():
            parents = [d for d in change.depends_on if d in replaced]
            if parents and change.action in ("no-op", "update") and KINDS[change.kind].deleted_with_parent:
                change.action = "replace"
                change.reason = f"{parents[0]} is replaced, which deletes it on the server"
                replaced.add(key)
                cascading = True
    for change in changes.values():
        if change.action == "no-op" and KINDS[change.kind].refers_by_id:
            # A no-op object refers to what is in state: a create among them is a re-creation.
            renewed = [changes[d] for d in change.depends_on if d in changes and changes[d].action in ("replace", "create")]
            if renewed:
                how = "replaced" if renewed[0].action == "replace" else "re-created"
                change.action = "update"
                change.reason = f"{renewed[0].address} is {how}: refer to the new object"


def _check_prevent_destroy(config: Configuration | None, changes: dict[str, Change]) -> None:
    if config is None:
        return
    blocked = []
    for key, change in changes.items():
        resource = config.resources.get(Address.parse(key))
        if resource and resource.spec.lifecycle.prevent_destroy and change.action in ("delete", "replace"):
            blocked.append(f"{key} ({resource.location}): {change.reason}")
    if blocked:
        raise PlanError("lifecycle.prevent_destroy forbids destroying:\n  " + "\n  ".join(blocked))


def _targeted(changes: list[Change], targets: list[str], by_address: dict[str, Change]) -> list[Change]:
    """With --target: the targets, what they depend on, and (for deletes) what depends on them."""
    if not targets:
        return changes
    keep: set[str] = set()
    pending = list(targets)
    while pending:
        key = pending.pop()
        if key in keep or key not in by_address:
            continue
        keep.add(key)
        pending += by_address[key].depends_on
    for change in changes:
        if change.action in ("delete", "replace") and set(change.dependencies) & keep:
            keep.add(change.address)
    return [c for c in changes if c.address in keep]


# --- apply ------------------------------------------------------------------------------------


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

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped


Event = Callable[[str, Step, Exception | None], None]  # ("start" | "done" | "failed" | "skipped", step, error)


def build_steps(changes: list[Change]) -> list[Step]:
    steps: list[Step] = []
    writes: dict[str, int] = {}  # address -> its create/update step
    deletes: dict[str, int] = {}
    for change in changes:
        if not change.is_change:
            continue
        if change.action in ("delete", "replace"):
            deletes[change.address] = len(steps)
            steps.append(Step(change, "delete"))
        if change.action in ("create", "replace"):
            writes[change.address] = len(steps)
            steps.append(Step(change, "create"))
        elif change.action == "update":
            writes[change.address] = len(steps)
            steps.append(Step(change, "update"))
        elif change.action == "forget":
            steps.append(Step(change, "forget"))
        elif change.action == "no-op":
            steps.append(Step(change, "import"))
    for index, step in enumerate(steps):
        change = step.change
        if step.operation in ("create", "update"):
            step.after |= {writes[d] for d in change.depends_on if d in writes}
            if change.address in deletes:  # a replacement deletes first
                step.after.add(deletes[change.address])
        elif step.operation == "delete":
            # Dependents go (or stop referring to it) before the object they depend on. When it
            # is replaced, dependents that are updated refer to the new object: they wait for it.
            for other in changes:
                if change.address in other.dependencies:
                    if other.address in deletes and deletes[other.address] != index:
                        step.after.add(deletes[other.address])
                    if other.address in writes and other.action == "update" and change.action == "delete":
                        step.after.add(writes[other.address])
    return steps


def apply_plan(
    plan: Plan,
    client: PrefectClient,
    writer: StateWriter,
    *,
    parallelism: int = 10,
    on_event: Event | None = None,
) -> ApplyResult:
    """Run the plan's steps in dependency order, `parallelism` at a time, saving state after each."""
    on_event = on_event or (lambda *_: None)
    steps = build_steps(plan.changes)
    ids = {address: record.id for address, record in writer.state.resources.items()}
    ctx = ApplyContext(ids)
    result = ApplyResult()
    try:
        if plan.mode == "refresh-only":
            _accept_drift(plan, writer)
        else:
            _run_steps(steps, parallelism, client, writer, ctx, plan.secrets, result, on_event)
    finally:
        writer.close()
    return result


def _run_steps(steps: list[Step], parallelism: int, client: PrefectClient, writer: StateWriter, ctx: ApplyContext,
               secrets_by_address: dict[str, dict[str, Any]], result: ApplyResult, on_event: Event) -> None:
    waiting = set(range(len(steps)))
    running: dict[Future, int] = {}
    finished: set[int] = set()
    broken: set[int] = set()
    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        while waiting or running:
            for index in sorted(waiting):
                step = steps[index]
                if step.after & broken:
                    waiting.discard(index)
                    broken.add(index)
                    result.skipped.append(step)
                    on_event("skipped", step, None)
                elif step.after <= finished and len(running) < parallelism:
                    waiting.discard(index)
                    on_event("start", step, None)
                    secrets = secrets_by_address.get(step.change.address, {})
                    running[pool.submit(_run_step, step, client, writer, ctx, secrets)] = index
            if not running:
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                index = running.pop(future)
                step = steps[index]
                error = future.exception()
                if error is None:
                    finished.add(index)
                    result.done.append(step)
                    on_event("done", step, None)
                else:
                    broken.add(index)
                    result.failed.append((step, error))
                    on_event("failed", step, error)


def _run_step(step: Step, client: PrefectClient, writer: StateWriter, ctx: ApplyContext, secrets: dict[str, Any]) -> None:
    change = step.change
    send = reveal(change.after, secrets) if change.after is not None else None
    kind = KINDS[change.kind]
    if step.operation == "delete":
        if not kind.server_owned(change.name):
            try:
                kind.delete(client, change.id, change.name)
            except NotFound:
                pass  # already gone (e.g. deleted with its parent): the goal is reached
        writer.remove(change.address)
        return
    if step.operation == "forget":
        writer.remove(change.address)
        return
    if step.operation == "import":
        obj_id = change.id
    elif step.operation == "update":
        kind.update(client, change.id, change.name, send, change.before or {}, ctx)
        obj_id = change.id
    else:
        writer.intend(change.address, change.kind, change.name)
        try:
            obj_id = kind.create(client, change.name, send, ctx)
        except Conflict:
            # A create whose first attempt landed before its answer was lost: adopt, don't duplicate.
            existing = {o.name: o for o in kind.list(client, {change.name})}.get(change.name)
            if existing is None:
                raise
            kind.update(client, existing.id, change.name, send, existing.attributes, ctx)
            obj_id = existing.id
    ctx.ids[change.address] = obj_id
    writer.put(change.address, Record(change.kind, change.name, obj_id, change.after, change.depends_on))


def _accept_drift(plan: Plan, writer: StateWriter) -> None:
    """A refresh-only apply: state takes the live values; the server is not touched."""
    for change in plan.drift:
        record = writer.state.resources.get(change.address)
        if record is None:
            continue
        if change.after is None:
            writer.remove(change.address)
        else:
            writer.put(change.address, Record(record.kind, record.name, change.id or record.id, change.after, record.dependencies))


def describe_error(error: Exception) -> str:
    return str(error) if isinstance(error, ApiError) else f"{type(error).__name__}: {error}"


# --- import -----------------------------------------------------------------------------------


def import_object(config: Configuration | None, state: State, client: PrefectClient, address: Address, id_or_name: str) -> Record:
    """The state record adopting an existing object, read from the server as it is now."""
    kind = KINDS.get(address.kind)
    if kind is None:
        raise PlanError(f"{address}: unknown kind {address.kind!r} (expected one of: {', '.join(KINDS)})")
    try:
        kind.check_name(address.name)
    except ValueError as exc:
        raise PlanError(f"{address}: invalid name: {exc}") from None
    if str(address) in state.resources:
        raise PlanError(f"{address} is already managed (id {state.resources[str(address)].id})")
    found = [obj for obj in kind.list(client, {address.name}) if obj.name == address.name]
    if not found:
        raise PlanError(f"{address}: no such object on the server")
    obj = next((o for o in found if id_or_name in (o.id, o.name)), None)
    if obj is None:
        raise PlanError(f"{address}: the object named {address.name!r} has id {found[0].id}, not {id_or_name!r}")
    kind.name_references(obj, _addresses(state))
    defaults = ServerDefaults(client)
    attributes, _ = conceal(obj.attributes, kind.sensitive_paths(obj.name, obj.attributes, defaults), state.lineage)
    resource = config.resources.get(address) if config else None
    dependencies = [str(a) for a in resource.depends_on] if resource else []
    return Record(address.kind, address.name, obj.id, attributes, dependencies)
