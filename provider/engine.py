"""Refresh, diff, plan and apply. Kind-agnostic; never prints (progress goes to a callback)."""

from __future__ import annotations

import functools
import heapq
import json
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from provider.client import Connection, PrefectClient
from provider.config import Configuration
from provider.errors import ApiError, ApiUnreachable, ConfigError, ConfigErrors, Conflict, NotFound, PlanError
from provider.plan import KNOWN_AFTER_APPLY, Change, Plan
from provider.secrets import conceal, reveal
from provider.state import Record, State, StateWriter
from provider.yamlsource import _dotted
from resources import KINDS
from resources.base import Address, ApplyContext, FieldError, Known, LiveObject, ResourceKind, ServerDefaults, progress_to

# --- diff -------------------------------------------------------------------------------------


def changed_fields(before: dict[str, Any], after: dict[str, Any], ignore: Iterable[str] = ()) -> list[str]:
    """Top-level attributes whose values differ as JSON values: 1 and 1.0 are the same number (the
    server may answer either), but true is not 1 and a missing attribute is not a null one."""
    ignored = set(ignore)
    before = {k: v for k, v in before.items() if k not in ignored}
    after = {k: v for k, v in after.items() if k not in ignored}
    if _canonical(before) == _canonical(after):
        return []  # the common case, decided in one pass of C code
    missing = object()
    return sorted(k for k in before.keys() | after.keys() if not same_value(before.get(k, missing), after.get(k, missing)))


def same_value(a: Any, b: Any) -> bool:
    """Equal as JSON values (Python's == takes True for 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(map(same_value, a, b))
    return type(a) is type(b) and a == b


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


# --- refresh ----------------------------------------------------------------------------------


def refresh(client: PrefectClient, names_by_kind: dict[str, set[str]], parallelism: int = 8,
            known: dict[str, dict[str, Known]] | None = None) -> dict[str, dict[str, list[LiveObject]]]:
    """Live objects by kind and name (several where the kind allows a name twice): one bulk filter
    listing per kind, kinds read in parallel.

    `known`: by kind and name, what configuration and state say of the objects (see ResourceKind.read).
    """
    wanted = {kind: names for kind, names in names_by_kind.items() if names}
    if not wanted:
        return {}
    known = known or {}
    with ThreadPoolExecutor(max_workers=min(parallelism, len(wanted))) as pool:
        futures = {kind: pool.submit(KINDS[kind].read, client, names, known.get(kind, {})) for kind, names in wanted.items()}
        found: dict[str, dict[str, list[LiveObject]]] = {}
        for kind, future in futures.items():
            by_name = found.setdefault(kind, {})
            for obj in future.result():
                by_name.setdefault(obj.name, []).append(obj)
        return found


# --- plan -------------------------------------------------------------------------------------


@dataclass
class PlanOptions:
    mode: str = "normal"  # normal | destroy | refresh-only
    targets: list[str] = field(default_factory=list)
    replace: list[str] = field(default_factory=list)
    # `moved` entries already applied to state: new address -> the name the object had before.
    moved: dict[str, str] = field(default_factory=dict)
    # Objects referred to but neither configured nor in state (address -> id), e.g. a Pulumi
    # resource's pool made by another resource: live ids are shown as their names.
    external: dict[str, str] = field(default_factory=dict)


def apply_moves(config: Configuration | None, state: State) -> dict[str, str]:
    """Rename state records as the configuration's `moved` entries say, before planning.

    Returns new address -> previous name, for the plan to find the object under its old name.
    """
    moved = {}
    for move in config.moved if config else []:
        if move.from_ in state.resources and move.to not in state.resources:
            moved[move.to] = state.resources[move.from_].name
            state.rename(move.from_, move.to)
    return moved


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


def cloud_refusal(feature: str, connection: Connection) -> str:
    return (
        f"{feature} are a Prefect Cloud feature, and {connection.api_url} is not a Prefect Cloud workspace "
        "(a workspace URL looks like https://api.prefect.cloud/api/accounts/ID/workspaces/ID)"
    )


def check_cloud_features(resources: dict[Address, Any], state: State, connection: Connection) -> None:
    """Refuse Cloud-only kinds and features against an open-source server, before anything is read
    or written: each declared one named with its file and line, each managed one by address."""
    if connection.is_cloud:
        return
    errors: list[ConfigError] = []
    for address, resource in resources.items():
        kind = resource.kind
        if kind.cloud_only:
            errors.append(ConfigError(cloud_refusal(address.kind, connection), resource.location, str(address)))
        for feature, path in kind.cloud_features(address.name, resource.spec):
            errors.append(ConfigError(cloud_refusal(feature, connection), resource.locate(*path),
                                      _dotted((address.kind, address.name, *path))))
    if errors:
        raise ConfigErrors(errors)
    managed = sorted(key for key, record in state.resources.items() if KINDS[record.kind].cloud_only)
    if managed:
        kinds = ", ".join(sorted({key.split(".")[0] for key in managed}))
        raise PlanError(f"the state manages {', '.join(managed)}: " + cloud_refusal(kinds, connection))


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
    check_cloud_features(resources, working, client.connection)

    # A targeted plan reads only what it can touch.
    scope = _scope(options.targets, resources, working) if options.targets else None
    names_by_kind: dict[str, set[str]] = {}
    for address in resources:
        if scope is None or str(address) in scope:
            names_by_kind.setdefault(address.kind, set()).add(address.name)
    for key, record in working.resources.items():
        if scope is None or key in scope:
            names_by_kind.setdefault(record.kind, set()).add(record.name)
    for key, previous in options.moved.items():
        if scope is None or key in scope:
            names_by_kind.setdefault(Address.parse(key).kind, set()).add(previous)
    defaults = ServerDefaults(client)
    salt = working.lineage
    wanted = desired_attributes(resources, defaults, salt)
    live = refresh(client, names_by_kind, known=_known(resources, wanted, working))

    conflicts: dict[str, LiveObject] = {}  # address -> another object now holding its (unique) name
    namesakes: dict[str, list[LiveObject]] = {}  # address -> unmanaged objects sharing its name

    def identify(key: str, kind_name: str, name: str) -> LiveObject | None:
        """The managed object among the live ones with this name: the recorded id is its identity.

        Without a record, a kind with unique names offers its one object (adopted, or refused as
        unmanaged, below); a kind with repeatable names only one that is provably this one.
        """
        kind = KINDS[kind_name]
        candidates = live.get(kind_name, {}).get(name, [])
        record = working.resources.get(key)
        desired = wanted.attributes.get(key)
        if record is not None:
            mine = next((o for o in candidates if o.id == record.id), None) or next(
                (o for o in candidates if kind.same_object(o, record.attributes)), None)
            if mine is None and candidates and kind.server_owned(name):
                mine = candidates[0]  # the server made it anew with its parent: it is still the server's
        elif kind.unique_names:
            return candidates[0] if candidates else None
        else:
            mine = next((o for o in candidates if desired is not None and kind.same_object(o, desired)), None)
            if mine is None and key in working.pending and desired is not None:
                # An interrupted create may have landed: the namesake that is exactly what was asked.
                mine = next((o for o in candidates if not changed_fields(o.attributes, desired, kind.computed)), None)
        others = [o for o in candidates if o is not mine]
        if others and kind.unique_names:
            conflicts[key] = others[0]
        elif others:
            namesakes[key] = others
        return mine

    def find(key: str, kind: str, name: str) -> tuple[LiveObject | None, bool]:
        """The live object at an address, and whether it still has the name it had before a move."""
        obj = identify(key, kind, name)
        record = working.resources.get(key)
        if obj is None and key in options.moved and record is not None:
            before = next((o for o in live.get(kind, {}).get(options.moved[key], []) if o.id == record.id), None)
            if before is not None:
                return before, True
        return obj, False

    addresses = {**{obj_id: Address.parse(key) for key, obj_id in options.external.items()}, **_addresses(working)}
    for kind_name, objects in live.items():
        for obj in (obj for named in objects.values() for obj in named):
            KINDS[kind_name].name_references(obj, addresses)
            paths = KINDS[kind_name].sensitive_paths(obj.name, obj.attributes, defaults)
            obj.attributes, _ = conceal(obj.attributes, paths, salt)
            obj.sensitive = paths
    drift = [c for c in _drift(working, find, defaults, conflicts) if scope is None or c.address in scope]
    changes: dict[str, Change] = {}
    unmanaged: list[str] = []
    taken: list[str] = []
    notes: list[str] = []

    for address, resource in resources.items():
        key = str(address)
        kind = resource.kind
        desired = wanted.attributes[key]
        record = working.resources.get(key)
        obj, renaming = find(key, address.kind, address.name)
        if renaming and not kind.renamable:
            raise PlanError(
                f"{key}: moved from {address.kind}.{options.moved[key]}, but the server cannot rename "
                f"{address.kind}; remove the moved entry to replace the object instead"
            )
        if key in conflicts:
            taken.append(f"{key}: name {address.name!r}, id in state {record.id}, id on the server {conflicts[key].id}")
            continue
        if key in namesakes:
            notes.append(_namesakes_note(key, address.name, namesakes[key]))
        # Computed attributes belong to the server: like ignored ones, never compared, the live value
        # kept; a new object has them once it is written. So do server-filled ones left unset.
        server = kind.left_to_server(desired)
        ignore = [*resource.spec.lifecycle.ignore_changes, *server]
        unknown = dict.fromkeys(server, KNOWN_AFTER_APPLY)
        depends_on = [str(a) for a in resource.depends_on]
        sensitive = wanted.sensitive[key]
        guard = resource.spec.lifecycle.prevent_destroy
        if obj is None:
            reason = "deleted outside prefect-provider" if record else ""
            changes[key] = Change(key, "create", None, {**desired, **unknown}, reason, depends_on=depends_on, sensitive=sensitive,
                                  prevent_destroy=guard)
            continue
        interrupted = record is None and key in working.pending
        adopted = record is None and not interrupted and kind.adopt_reason(obj)
        if record is None and not interrupted and not adopted and not kind.server_owned(address.name):
            unmanaged.append(f"{key} (id {obj.id})")
            continue
        diff = changed_fields(obj.attributes, desired, ignore)
        if renaming:
            diff = ["name", *diff]
        if ignore:
            # Ignored fields keep their live value, so applying never touches them.
            desired = {**desired, **{f: obj.attributes[f] for f in ignore if f in obj.attributes}}
        common = dict(id=obj.id, depends_on=depends_on, changed=diff, sensitive=sorted({*sensitive, *obj.sensitive}),
                      dependencies=record.dependencies if record else [], prevent_destroy=guard)
        if renaming:
            common["moved_from"] = f"{address.kind}.{options.moved[key]}"
        if key in options.replace:
            changes[key] = Change(key, "replace", obj.attributes, {**desired, **unknown}, "replacement requested", **common)
        elif forced := [f for f in diff if f in kind.replace_fields]:
            changes[key] = Change(key, "replace", obj.attributes, {**desired, **unknown}, f"{', '.join(forced)} forces replacement",
                                  **common)
        elif diff:
            reason = "changed outside prefect-provider" if key in {d.address for d in drift} else "configuration changed"
            if renaming:
                reason = f"moved from {common['moved_from']}: renamed on the server"
            changes[key] = Change(key, "update", obj.attributes, desired, f"{reason}: {', '.join(diff)}", **common)
        else:
            changes[key] = Change(key, "no-op", obj.attributes, desired, **common)
            if record is not None and record.prevent_destroy != guard:
                # Only state changes: the guard is recorded (or lifted) without writing the object.
                changes[key].importing = True
                changes[key].reason = f"lifecycle.prevent_destroy {'set' if guard else 'lifted'}: recorded in state"
        if record is None:
            changes[key].importing = True
            changes[key].reason = (
                "created by an interrupted apply; taken into state" if interrupted
                else adopted or "created by the server with its parent; taken into state"
            )

    if unmanaged:
        lines = "\n".join(f"  {u}" for u in unmanaged)
        raise PlanError(
            "these objects already exist on the server but are not managed by prefect-provider:\n"
            f"{lines}\nAdopt each with `prefect-provider import ADDRESS ID_OR_NAME`, or remove it from the configuration."
        )
    if taken and options.mode != "refresh-only":
        lines = "\n".join(f"  {t}" for t in taken)
        raise PlanError(
            "these managed objects are gone, and another object now has the name; it is not the one in state, "
            f"so prefect-provider will not adopt, overwrite or delete it:\n{lines}\n"
            "To manage the new object: `prefect-provider state rm ADDRESS`, then `prefect-provider import ADDRESS ID`. "
            "To stop managing the address: remove it from the configuration (its record is then forgotten)."
        )

    for key, record in working.resources.items():
        if Address.parse(key) in resources:
            continue
        obj, _ = find(key, record.kind, record.name)
        if KINDS[record.kind].server_owned(record.name):
            changes[key] = Change(key, "forget", record.attributes, None, "belongs to the server: no longer managed, not deleted", id=record.id)
        elif obj is None:
            reason = "already deleted outside prefect-provider"
            if key in conflicts:
                reason += f"; the object now named {record.name!r} (id {conflicts[key].id}) is another one: left alone"
            changes[key] = Change(key, "forget", record.attributes, None, reason, id=record.id,
                                  sensitive=KINDS[record.kind].sensitive_paths(record.name, record.attributes, defaults))
        else:
            if key in namesakes:
                notes.append(_namesakes_note(key, record.name, namesakes[key]))
            reason = "destroy requested" if options.mode == "destroy" else "no longer in the configuration"
            changes[key] = Change(key, "delete", obj.attributes, None, reason, id=obj.id,
                                  dependencies=record.dependencies, sensitive=obj.sensitive)

    _cascade_replacements(changes)
    _check_prevent_destroy(config, working, changes)
    _mark_create_before_destroy(config, changes)
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
        warnings=[*(config.warnings if config else []), *notes],
        secrets=wanted.secrets,
    )


def _known(resources: dict[Address, Any], wanted: Desired, state: State) -> dict[str, dict[str, Known]]:
    """By kind and name: the attributes configured and the state record of each object to read."""
    known: dict[str, dict[str, Known]] = {}
    for address in resources:
        known.setdefault(address.kind, {})[address.name] = Known(desired=wanted.attributes[str(address)])
    for record in state.resources.values():
        entry = known.setdefault(record.kind, {}).setdefault(record.name, Known())
        entry.id, entry.recorded = record.id, record.attributes
    return known


def _addresses(state: State) -> dict[str, Address]:
    """The address of every managed object by its id: how live objects name what they refer to."""
    return {record.id: Address(record.kind, record.name) for record in state.resources.values()}


def _drift(state: State, find: Callable[[str, str, str], tuple[LiveObject | None, bool]],
           defaults: ServerDefaults, conflicts: dict[str, LiveObject]) -> list[Change]:
    """Managed objects that changed on the server since the last apply (state vs live)."""
    drift = []
    for key, record in sorted(state.resources.items()):
        obj, _ = find(key, record.kind, record.name)
        # The recorded attributes may hold secrets the live object no longer has (e.g. a removed key).
        recorded = KINDS[record.kind].sensitive_paths(record.name, record.attributes, defaults)
        if obj is None:
            reason = "deleted outside prefect-provider"
            if key in conflicts:
                reason += f"; another object (id {conflicts[key].id}) now has the name {record.name!r}"
            drift.append(Change(key, "delete", record.attributes, None, reason, id=record.id, sensitive=recorded))
            continue
        # A server-filled attribute recorded unset was the server's choice when it was applied.
        diff = changed_fields(record.attributes, obj.attributes, KINDS[record.kind].left_to_server(record.attributes))
        if diff:
            drift.append(Change(key, "update", record.attributes, obj.attributes,
                                f"changed outside prefect-provider: {', '.join(diff)}", id=obj.id, changed=diff,
                                sensitive=sorted({*recorded, *obj.sensitive})))
    return drift


def _namesakes_note(key: str, name: str, others: list[LiveObject]) -> str:
    ids = ", ".join(o.id for o in others)
    return f"{key}: other objects named {name!r} on the server (ids {ids}) are not managed by prefect-provider: left alone"


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


def _check_prevent_destroy(config: Configuration | None, state: State, changes: dict[str, Change]) -> None:
    """A declared resource is guarded by its lifecycle; one whose block is gone (or every one, for
    `destroy`) by the guard recorded in state, until an apply with `prevent_destroy: false` lifts it."""
    blocked = []
    for key, change in changes.items():
        if change.action not in ("delete", "replace"):
            continue
        resource = config.resources.get(Address.parse(key)) if config else None
        record = state.resources.get(key)
        if resource and resource.spec.lifecycle.prevent_destroy:
            blocked.append(f"{key} ({resource.location}): {change.reason}")
        elif resource is None and record is not None and record.prevent_destroy:
            blocked.append(
                f"{key}: {change.reason}, but state records lifecycle.prevent_destroy for it; to destroy it, "
                "declare it again with `lifecycle: {prevent_destroy: false}` and apply first"
            )
    if blocked:
        raise PlanError("lifecycle.prevent_destroy forbids destroying:\n  " + "\n  ".join(blocked))


def _mark_create_before_destroy(config: Configuration | None, changes: dict[str, Change]) -> None:
    if config is None:
        return
    impossible = []
    for key, change in changes.items():
        resource = config.resources.get(Address.parse(key))
        if change.action != "replace" or not resource or not resource.spec.lifecycle.create_before_destroy:
            continue
        if resource.kind.unique_names:
            impossible.append(f"{key} ({resource.location})")
        change.create_before_destroy = True
    if impossible:
        raise PlanError(
            "lifecycle.create_before_destroy cannot work here: the server allows one object per name, so the "
            "replacement cannot exist beside the old one:\n  " + "\n  ".join(impossible)
        )


def _scope(targets: list[str], resources: dict[Address, Any], state: State) -> set[str]:
    """The addresses `_targeted` can keep: the targets, what they depend on, and what the state
    says depends on those (deletes and replacements)."""
    depends_on = {str(address): [str(d) for d in resource.depends_on] for address, resource in resources.items()}
    scope: set[str] = set()
    pending = list(targets)
    while pending:
        key = pending.pop()
        if key not in scope:
            scope.add(key)
            pending += depends_on.get(key, [])
    return scope | {key for key, record in state.resources.items() if set(record.dependencies) & scope}


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
    for change in changes:
        if not change.is_change:
            continue
        if change.action in ("delete", "replace"):
            deletes[change.address] = len(steps)
            steps.append(Step(change, "delete"))
        if change.action in ("create", "replace"):
            writes[change.address] = len(steps)
            steps.append(Step(change, "create"))
            if change.create_before_destroy:
                steps[deletes[change.address]].after.add(writes[change.address])
        elif change.action == "update":
            writes[change.address] = len(steps)
            steps.append(Step(change, "update"))
        elif change.action == "forget":
            steps.append(Step(change, "forget"))
        elif change.action == "no-op":
            writes[change.address] = len(steps)  # dependents written in this apply need its id
            steps.append(Step(change, "import"))
    for index, step in enumerate(steps):
        change = step.change
        if step.operation in ("create", "update"):
            step.after |= {writes[d] for d in change.depends_on if d in writes}
            if change.address in deletes and not change.create_before_destroy:  # a replacement deletes first
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
    external: dict[str, str] | None = None,
) -> ApplyResult:
    """Run the plan's steps in dependency order, `parallelism` at a time, saving state after each.

    `external`: ids of objects referred to that are neither configured nor in state (PlanOptions.external)."""
    on_event = on_event or (lambda *_: None)
    steps = build_steps(plan.changes)
    ids = {**(external or {}), **{address: record.id for address, record in writer.state.resources.items()}}
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
            while ready and len(running) < parallelism:
                index = heapq.heappop(ready)
                step = steps[index]
                if result.unreachable is not None:
                    break  # the API is gone: nothing more is started (what is left is listed below)
                on_event("start", step, None)
                started.add(index)
                secrets = secrets_by_address.get(step.change.address, {})
                report = functools.partial(on_event, "progress", step)
                running[pool.submit(_run_step, step, client, writer, ctx, secrets, report)] = index
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
                else:
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


def create_object(client: PrefectClient, kind: ResourceKind, name: str, attributes: dict[str, Any], ctx: ApplyContext) -> str:
    """Create one object and return its id; used by apply and by the Pulumi providers."""
    try:
        return kind.create(client, name, attributes, ctx)
    except Conflict:
        # A create whose first attempt landed before its answer was lost: adopt, don't duplicate.
        existing = {o.name: o for o in kind.list(client, {name})}.get(name)
        if existing is None:
            raise
        kind.update(client, existing.id, name, attributes, existing.attributes, ctx)
        return existing.id


def _run_step(step: Step, client: PrefectClient, writer: StateWriter, ctx: ApplyContext, secrets: dict[str, Any],
              report: Callable[[str], None]) -> None:
    with progress_to(report):
        _apply_step(step, client, writer, ctx, secrets)


def _apply_step(step: Step, client: PrefectClient, writer: StateWriter, ctx: ApplyContext, secrets: dict[str, Any]) -> None:
    change = step.change
    send = reveal(change.after, secrets) if change.after is not None else None
    kind = KINDS[change.kind]
    if step.operation == "delete":
        if not kind.server_owned(change.name):
            try:
                kind.delete(client, change.id, change.name)
            except NotFound:
                pass  # already gone (e.g. deleted with its parent): the goal is reached
        if not change.create_before_destroy:  # else state already records the replacement
            writer.remove(change.address)
        return
    if step.operation == "forget":
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
    if filled:
        # The server filled these in when it made the object (e.g. a webhook's endpoint): read them for state.
        written = next((o for o in kind.list(client, {change.name}) if o.id == obj_id), None)
        if written is not None:
            after = {**after, **{f: written.attributes.get(f) for f in filled}}
    writer.put(change.address, Record(change.kind, change.name, obj_id, after, change.depends_on, change.prevent_destroy))


def _accept_drift(plan: Plan, writer: StateWriter) -> None:
    """A refresh-only apply: state takes the live values; the server is not touched."""
    for change in plan.drift:
        record = writer.state.resources.get(change.address)
        if record is None:
            continue
        if change.after is None:
            writer.remove(change.address)
        else:
            writer.put(change.address, Record(record.kind, record.name, change.id or record.id, change.after, record.dependencies,
                                              record.prevent_destroy))


def describe_error(error: Exception) -> str:
    return str(error) if isinstance(error, ApiError) else f"{type(error).__name__}: {error}"


# --- import -----------------------------------------------------------------------------------


def declared_resource(config: Configuration | None, address: Address) -> Any:
    """The resource an import adopts an object for. As in Terraform, it must be declared: an object
    imported without its block would be deleted by the next apply."""
    resource = config.resources.get(address) if config else None
    if resource is None:
        where = config.directory if config else "the configuration directory"
        raise PlanError(
            f"{address} is not declared in {where}: add `{address.kind}: {{{address.name}: ...}}` "
            "or run `prefect-provider export` to write its configuration"
        )
    return resource


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
    if kind.cloud_only and not client.connection.is_cloud:
        raise PlanError(f"{address}: " + cloud_refusal(address.kind, client.connection))
    resource = declared_resource(config, address)
    defaults = ServerDefaults(client)
    # What the configuration says helps kinds that find their objects by more than the name.
    desired = desired_attributes({address: resource}, defaults, state.lineage).attributes
    known = {address.name: Known(desired=desired[str(address)])}
    found = [obj for obj in kind.read(client, {address.name}, known) if obj.name == address.name]
    if not found:
        raise PlanError(f"{address}: no such object on the server")
    matching = [o for o in found if o.id == id_or_name] or [o for o in found if o.name == id_or_name]
    if not matching:
        raise PlanError(f"{address}: the object named {address.name!r} has id {found[0].id}, not {id_or_name!r}")
    if len(matching) > 1:
        ids = ", ".join(o.id for o in matching)
        raise PlanError(f"{address}: several objects on the server are named {address.name!r} (ids {ids}): import one by its id")
    obj = matching[0]
    kind.name_references(obj, _addresses(state))
    attributes, _ = conceal(obj.attributes, kind.sensitive_paths(obj.name, obj.attributes, defaults), state.lineage)
    dependencies = [str(a) for a in resource.depends_on]
    return Record(address.kind, address.name, obj.id, attributes, dependencies, resource.spec.lifecycle.prevent_destroy)
