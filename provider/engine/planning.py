"""Planning: configuration, state and the live workspace in, a Plan out. Never writes, never prints.

`make_plan` reads what it needs, then plans each configured resource on its own (`Planner.resource`:
one resource in, one change out) and each managed object no longer configured (`Planner.orphan`),
then applies the rules that span changes: replacement cascades, prevent_destroy,
create_before_destroy and `--target`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from provider.client import Connection, PrefectClient
from provider.config import Configuration, DataSource, Resource
from provider.engine.diff import changed_fields
from provider.engine.refresh import LiveView, refresh
from provider.errors import ConfigError, ConfigErrors, PlanError
from provider.plan import KNOWN_AFTER_APPLY, Action, Change, Plan, Reason
from provider.secrets import conceal
from provider.state import Record, State
from provider.yamlsource import _dotted
from resources import CATALOG
from resources.base import Address, Catalog, FieldError, Known, LiveObject, ServerDefaults


@dataclass
class PlanOptions:
    mode: str = "normal"  # normal | destroy | refresh-only
    targets: list[str] = field(default_factory=list)
    replace: list[str] = field(default_factory=list)
    # `moved` entries already applied to state: new address -> the name the object had before.
    moved: dict[str, str] = field(default_factory=dict)


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


# --- what the configuration asks for ------------------------------------------------------------


@dataclass
class Desired:
    """What the configuration asks for, with secrets concealed; the clear values kept apart."""

    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)  # address -> attributes
    sensitive: dict[str, list[str]] = field(default_factory=dict)  # address -> sensitive paths
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)  # address -> path -> clear value
    server_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)  # address -> ResourceKind.server_default


def desired_attributes(resources: dict[Address, Resource], defaults: ServerDefaults, salt: str,
                       catalog: Catalog = CATALOG, only: set[str] | None = None) -> Desired:
    """The desired attributes of `resources` (of those at the addresses `only`, when given)."""
    desired = Desired()
    errors: list[ConfigError] = []
    defaults.declared = {str(address) for address in resources}
    for address, resource in resources.items():  # every one: what one declares, another may need
        catalog[address.kind].declare(address.name, resource.spec, defaults)
    for address, resource in resources.items():
        key = str(address)
        if only is not None and key not in only:
            continue
        kind = catalog[address.kind]
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
        if (server_default := kind.server_default(address.name, resource.spec, defaults)) is not None:
            desired.server_defaults[key] = server_default
    if errors:
        raise ConfigErrors(errors)
    return desired


def cloud_refusal(feature: str, connection: Connection) -> str:
    return (
        f"{feature} are a Prefect Cloud feature, and {connection.api_url} is not a Prefect Cloud workspace "
        "(a workspace URL looks like https://api.prefect.cloud/api/accounts/ID/workspaces/ID)"
    )


def check_cloud_features(resources: dict[Address, Resource], state: State, connection: Connection,
                         catalog: Catalog = CATALOG, data: Iterable[DataSource] = ()) -> None:
    """Refuse Cloud-only kinds and features against an open-source server, before anything is read
    or written: each declared (or read) one named with its file and line, each managed one by address."""
    if connection.is_cloud:
        return
    errors: list[ConfigError] = [ConfigError(cloud_refusal(source.address.kind, connection), source.location, str(source))
                                 for source in data if catalog[source.address.kind].cloud_only]
    for address, resource in resources.items():
        kind = catalog[address.kind]
        if kind.cloud_only:
            errors.append(ConfigError(cloud_refusal(address.kind, connection), resource.location, str(address)))
        for feature, path in kind.cloud_features(address.name, resource.spec):
            errors.append(ConfigError(cloud_refusal(feature, connection), resource.locate(*path),
                                      _dotted((address.kind, address.name, *path))))
    if errors:
        raise ConfigErrors(errors)
    managed = sorted(key for key, record in state.resources.items() if catalog[record.kind].cloud_only)
    if managed:
        kinds = ", ".join(sorted({key.split(".")[0] for key in managed}))
        raise PlanError(f"the state manages {', '.join(managed)}: " + cloud_refusal(kinds, connection))


# --- the plan -----------------------------------------------------------------------------------


def make_plan(
    config: Configuration | None,
    state: State,
    client: PrefectClient,
    options: PlanOptions | None = None,
    *,
    new_state: bool = False,
    catalog: Catalog = CATALOG,
) -> Plan:
    """Compare configuration, state and the live workspace. `new_state`: no state existed before."""
    options = _with_pending_renames(options or PlanOptions(), config, state, catalog)
    if config and config.deferred:
        unread = ", ".join(f"{address} ({location})" for address, location in config.deferred.items())
        raise PlanError(f"these resources read data sources that were not read before planning: {unread}")
    resources = config.resources if config and options.mode != "destroy" else {}
    data = config.data if config and options.mode != "destroy" else {}
    check_cloud_features(resources, state, client.connection, catalog, data.values())

    # A targeted plan reads only what it can touch.
    scope = _scope(options.targets, resources, state) if options.targets else None
    in_scope = (lambda key: True) if scope is None else scope.__contains__
    names_by_kind: dict[str, set[str]] = {}
    for address in resources:
        if in_scope(str(address)):
            names_by_kind.setdefault(address.kind, set()).add(address.name)
    for key, record in state.resources.items():
        if in_scope(key):
            names_by_kind.setdefault(record.kind, set()).add(record.name)
    for key, previous in options.moved.items():
        if in_scope(key):
            names_by_kind.setdefault(catalog.parse(key).kind, set()).add(previous)
    for address in data:
        names_by_kind.setdefault(address.kind, set()).add(address.name)
    defaults = ServerDefaults(client)
    wanted = desired_attributes(resources, defaults, state.lineage, catalog)
    live = refresh(client, names_by_kind, catalog, known=_known(resources, wanted, state))
    data_ids = _data_ids(data.values(), live)
    view = LiveView(live, state, catalog, wanted.attributes, options.moved)
    _as_planned(view, defaults, state, catalog, data_ids)

    drift = [c for c in _drift(view, defaults) if in_scope(c.address)]
    planner = Planner(catalog, state, view, options, wanted, {c.address for c in drift})
    changes: dict[str, Change] = {}
    for address, resource in resources.items():
        change = planner.resource(address, resource)
        if change is not None:
            changes[change.address] = change
    planner.refuse_unmanaged()
    configured = {str(address) for address in resources}
    for key, record in state.resources.items():
        if key not in configured:
            changes[key] = planner.orphan(key, record, defaults)

    _cascade_replacements(changes, catalog)
    _check_prevent_destroy(config, state, changes)
    _mark_create_before_destroy(config, changes, catalog)
    deposed = [change for key in state.resources if in_scope(key) for change in planner.deposed(key)]
    planned = [*changes.values(), *deposed]
    plan_changes = [] if options.mode == "refresh-only" else _targeted(planned, options.targets, changes)
    _check_deletions(plan_changes, client, catalog)
    return Plan(
        changes=sorted(plan_changes, key=lambda c: (c.address, c.of_deposed)),
        drift=drift,
        mode=options.mode,
        lineage=state.lineage,
        serial=None if new_state else state.serial,
        config_dir=str(config.directory.absolute()) if config else None,
        warnings=[*(config.warnings if config else []), *planner.notes],
        data_ids=data_ids,
        secrets=wanted.secrets,
    )


def _with_pending_renames(options: PlanOptions, config: Configuration | None, state: State, catalog: Catalog) -> PlanOptions:
    """`moved` entries already in state whose rename may never have reached the server (an apply that
    stopped after journaling the move): the object may still have its old name."""
    moved = dict(options.moved)
    for move in config.moved if config else []:
        if move.to in state.resources and move.from_ not in state.resources:
            moved.setdefault(move.to, catalog.parse(move.from_).name)
    return replace(options, moved=moved)


@dataclass
class Planner:
    """Plans one resource at a time against what the refresh found; collects what it refuses."""

    catalog: Catalog
    state: State
    view: LiveView
    options: PlanOptions
    wanted: Desired
    drifted: set[str]
    unmanaged: list[str] = field(default_factory=list)  # declared, but another (unmanaged) object has the name
    taken: list[str] = field(default_factory=list)  # managed, gone, and another object now has the name
    notes: list[str] = field(default_factory=list)

    def resource(self, address: Address, resource: Resource) -> Change | None:
        """The change one configured resource needs; None when it is refused (see refuse_unmanaged)."""
        key = str(address)
        kind = self.catalog[address.kind]
        desired = self.wanted.attributes[key]
        record = self.state.resources.get(key)
        obj, renaming = self.view.find(key, address.kind, address.name)
        moved_from = f"{address.kind}.{self.options.moved[key]}" if renaming else None
        if renaming and not kind.renamable:
            raise PlanError(f"{key}: moved from {moved_from}, but the server cannot rename {address.kind}; "
                            "remove the moved entry to replace the object instead")
        if key in self.view.conflicts:
            self.taken.append(f"{key}: name {address.name!r}, id in state {record.id}, id on the server "
                              f"{self.view.conflicts[key].id}")
            return None
        if key in self.view.namesakes:
            self.notes.append(_namesakes_note(key, address.name, self.view.namesakes[key]))
        # Computed attributes belong to the server: like ignored ones, never compared, the live value
        # kept; a new object has them once it is written. So do server-filled ones left unset.
        server = kind.left_to_server(desired)
        ignore = [*resource.spec.lifecycle.ignore_changes, *server]
        unknown = dict.fromkeys(server, KNOWN_AFTER_APPLY)
        base = dict(address=key, kind=address.kind, name=address.name, depends_on=[str(a) for a in resource.depends_on],
                    prevent_destroy=resource.spec.lifecycle.prevent_destroy, deposed=self.deposed_ids(key))
        if obj is None:
            gone = record is not None
            return Change(**base, action=Action.CREATE, before=None, after={**desired, **unknown}, sensitive=self.wanted.sensitive[key],
                          server_default=self.wanted.server_defaults.get(key),
                          action_reason=Reason.DELETED_OUTSIDE if gone else Reason.NEW,
                          reason="deleted outside prefect-provider" if gone else "")
        interrupted = record is None and key in self.state.pending
        adopted = record is None and not interrupted and kind.adopt_reason(obj)
        if record is None and not interrupted and not adopted and not kind.server_owned(address.name):
            self.unmanaged.append(f"{key} (id {obj.id})")
            return None
        diff = changed_fields(obj.attributes, desired, ignore)
        if renaming:
            diff = ["name", *diff]
        if ignore:
            # Ignored fields keep their live value, so applying never touches them.
            desired = {**desired, **{f: obj.attributes[f] for f in ignore if f in obj.attributes}}
        planned = {**desired, **unknown}  # a replacement is a new object: the server fills these in again
        base.update(id=obj.id, before=obj.attributes, changed=diff, moved_from=moved_from,
                    sensitive=sorted({*self.wanted.sensitive[key], *obj.sensitive}),
                    dependencies=record.dependencies if record else [])
        forced = [f for f in diff if f in kind.replace_fields_for(address.name)]
        if key in self.options.replace:
            change = Change(**base, action=Action.REPLACE, after=planned, action_reason=Reason.REPLACE_BY_REQUEST,
                            reason="replacement requested")
        elif forced:
            change = Change(**base, action=Action.REPLACE, after=planned, action_reason=Reason.REPLACE_CANNOT_UPDATE,
                            reason=f"{', '.join(forced)} forces replacement")
        elif diff:
            why, words = ((Reason.MOVED, f"moved from {moved_from}: renamed on the server") if renaming else
                          (Reason.CHANGED_OUTSIDE, "changed outside prefect-provider") if key in self.drifted else
                          (Reason.CONFIGURATION_CHANGED, "configuration changed"))
            change = Change(**base, action=Action.UPDATE, after=desired, action_reason=why, reason=f"{words}: {', '.join(diff)}")
        elif record is not None and record.prevent_destroy != base["prevent_destroy"]:
            # Only state changes: the guard is recorded (or lifted) without writing the object.
            change = Change(**base, action=Action.NO_OP, after=desired, importing=True, action_reason=Reason.GUARD_RECORDED,
                            reason=f"lifecycle.prevent_destroy {'set' if base['prevent_destroy'] else 'lifted'}: recorded in state")
        else:
            change = Change(**base, action=Action.NO_OP, after=desired)
        if key in self.view.replaced:
            change = replace(change, importing=True, action_reason=Reason.INTERRUPTED_CREATE,
                             reason=f"created by an interrupted apply; taken into state (the object it replaces, id {record.id}, "
                                    "is deposed)")
        if record is None:
            why, words = ((Reason.INTERRUPTED_CREATE, "created by an interrupted apply; taken into state") if interrupted else
                          (Reason.ADOPTED, adopted) if adopted else
                          (Reason.SERVER_OWNED, "made by the server, not by a configuration; taken into state"))
            change = replace(change, importing=True, action_reason=why, reason=words)
        return change

    def orphan(self, key: str, record: Record, defaults: ServerDefaults) -> Change:
        """The change for a managed object no longer configured (or every one, to destroy)."""
        kind = self.catalog[record.kind]
        obj, _ = self.view.find(key, record.kind, record.name)
        base = dict(address=key, kind=record.kind, name=record.name, before=record.attributes, after=None, id=record.id)
        if kind.server_owned(record.name):
            return Change(**base, action=Action.FORGET, action_reason=Reason.SERVER_OWNED,
                          reason="belongs to the server: no longer managed, not deleted")
        if obj is None:
            reason = "already deleted outside prefect-provider"
            if key in self.view.conflicts:
                reason += f"; the object now named {record.name!r} (id {self.view.conflicts[key].id}) is another one: left alone"
            return Change(**base, action=Action.FORGET, action_reason=Reason.ALREADY_DELETED, reason=reason,
                          sensitive=kind.sensitive_paths(record.name, record.attributes, defaults))
        if key in self.view.namesakes:
            self.notes.append(_namesakes_note(key, record.name, self.view.namesakes[key]))
        destroying = self.options.mode == "destroy"
        return Change(**{**base, "before": obj.attributes, "id": obj.id}, action=Action.DELETE,
                      action_reason=Reason.DESTROY_REQUESTED if destroying else Reason.NO_RESOURCE_CONFIG,
                      reason="destroy requested" if destroying else "no longer in the configuration",
                      dependencies=record.dependencies, sensitive=obj.sensitive)

    def deposed_ids(self, key: str) -> list[str]:
        """The deposed objects the address's record lists, and one deposed by this plan."""
        record = self.state.resources.get(key)
        recorded = list(record.deposed) if record else []
        return recorded + [o.id for o in self.view.deposed.get(key, []) if o.id not in recorded]

    def deposed(self, key: str) -> list[Change]:
        """Deleting the objects an address's create_before_destroy replacements deposed (forgetting
        those already gone), as Terraform does with deposed objects."""
        record = self.state.resources.get(key)
        if record is None:
            return []
        self.view.find(key, record.kind, record.name)
        found = {o.id: o for o in self.view.deposed.get(key, [])}
        changes = []
        for object_id in self.deposed_ids(key):
            obj = found.get(object_id)
            base = dict(address=key, kind=record.kind, name=record.name, id=object_id, after=None, of_deposed=True,
                        action_reason=Reason.DEPOSED)
            if obj is None:
                changes.append(Change(**base, action=Action.FORGET, before={}, reason=f"deposed object {object_id} is already gone"))
            else:
                changes.append(Change(**base, action=Action.DELETE, before=obj.attributes, sensitive=obj.sensitive,
                                      reason=f"deposed object {object_id}, replaced by a create_before_destroy replacement"))
        return changes

    def refuse_unmanaged(self) -> None:
        """Stop the plan when a declared name belongs to an object the state does not manage."""
        if self.unmanaged:
            lines = "\n".join(f"  {u}" for u in self.unmanaged)
            raise PlanError(
                "these objects already exist on the server but are not managed by prefect-provider:\n"
                f"{lines}\nAdopt each with `prefect-provider import ADDRESS ID_OR_NAME`, or remove it from the configuration."
            )
        if self.taken and self.options.mode != "refresh-only":
            lines = "\n".join(f"  {t}" for t in self.taken)
            raise PlanError(
                "these managed objects are gone, and another object now has the name; it is not the one in state, "
                f"so prefect-provider will not adopt, overwrite or delete it:\n{lines}\n"
                "To manage the new object: `prefect-provider state rm ADDRESS`, then `prefect-provider import ADDRESS ID`. "
                "To stop managing the address: remove it from the configuration (its record is then forgotten)."
            )


def _known(resources: dict[Address, Resource], wanted: Desired, state: State) -> dict[str, dict[str, Known]]:
    """By kind and name: the attributes configured and the state record of each object to read."""
    known: dict[str, dict[str, Known]] = {}
    for address in resources:
        known.setdefault(address.kind, {})[address.name] = Known(desired=wanted.attributes[str(address)])
    for record in state.resources.values():
        entry = known.setdefault(record.kind, {}).setdefault(record.name, Known())
        entry.id, entry.recorded = record.id, record.attributes
    return known


def _data_ids(data: Iterable[DataSource], live: dict[str, dict[str, list[LiveObject]]]) -> dict[str, str]:
    """The id of each data source's object, by address; a plan error for any not found exactly once."""
    found, problems = {}, []
    for source in data:
        objects = live.get(source.address.kind, {}).get(source.address.name, [])
        if len(objects) == 1:
            found[str(source.address)] = objects[0].id
        elif objects:
            problems.append(source.problem(f"{len(objects)} objects on the server have this name "
                                           f"(ids {', '.join(o.id for o in objects)}): name exactly one"))
        else:
            problems.append(source.problem("no such object on the server"))
    if problems:
        raise PlanError("objects read but not managed (data sources) that cannot be read:\n  " + "\n  ".join(problems))
    return found


def read_data(client: PrefectClient, config: Configuration, catalog: Catalog = CATALOG) -> dict[str, dict[str, Any]]:
    """What each data source reads, for `${data.KIND.NAME.ATTRIBUTE}` ("KIND.NAME" -> attributes as
    plans show them, secrets as fingerprints, with `id` and `name`); a plan error for any not found."""
    check_cloud_features(config.resources, State(), client.connection, catalog, config.data.values())  # before any read
    names: dict[str, set[str]] = {}
    for address in config.data:
        names.setdefault(address.kind, set()).add(address.name)
    live = refresh(client, names, catalog)
    _data_ids(config.data.values(), live)
    defaults = ServerDefaults(client)
    values = {}
    for address in config.data:
        obj = live[address.kind][address.name][0]
        paths = catalog[address.kind].sensitive_paths(obj.name, obj.attributes, defaults)
        attributes, _ = conceal(obj.attributes, paths, "data source")
        values[str(address)] = {**attributes, "id": obj.id, "name": obj.name}
    return values


def state_addresses(state: State, catalog: Catalog, data_ids: dict[str, str] | None = None) -> dict[str, Address]:
    """The address of every managed (or data) object by its id: how live objects name what they refer to."""
    addresses = {object_id: catalog.parse(address) for address, object_id in (data_ids or {}).items()}
    return {**addresses, **{record.id: catalog.address(record.kind, record.name) for record in state.resources.values()}}


def _as_planned(view: LiveView, defaults: ServerDefaults, state: State, catalog: Catalog, data_ids: dict[str, str]) -> None:
    """Live objects as plans compare them: references by name, secrets as fingerprints."""
    addresses = state_addresses(state, catalog, data_ids)
    for kind_name, obj in view.objects():
        kind = catalog[kind_name]
        kind.name_references(obj, addresses)
        obj.sensitive = kind.sensitive_paths(obj.name, obj.attributes, defaults)
        obj.attributes, _ = conceal(obj.attributes, obj.sensitive, state.lineage)


def _drift(view: LiveView, defaults: ServerDefaults) -> list[Change]:
    """Managed objects that changed on the server since the last apply (state vs live)."""
    drift = []
    for key, record in sorted(view.state.resources.items()):
        kind = view.catalog[record.kind]
        obj, _ = view.find(key, record.kind, record.name)
        # The recorded attributes may hold secrets the live object no longer has (e.g. a removed key).
        recorded = kind.sensitive_paths(record.name, record.attributes, defaults)
        base = dict(address=key, kind=record.kind, name=record.name, before=record.attributes)
        if obj is None:
            reason = "deleted outside prefect-provider"
            if key in view.conflicts:
                reason += f"; another object (id {view.conflicts[key].id}) now has the name {record.name!r}"
            drift.append(Change(**base, action=Action.DELETE, after=None, action_reason=Reason.DELETED_OUTSIDE,
                                reason=reason, id=record.id, sensitive=recorded))
            continue
        # A server-filled attribute recorded unset was the server's choice when it was applied.
        diff = changed_fields(record.attributes, obj.attributes, kind.left_to_server(record.attributes))
        if diff:
            drift.append(Change(**base, action=Action.UPDATE, after=obj.attributes, action_reason=Reason.CHANGED_OUTSIDE,
                                reason=f"changed outside prefect-provider: {', '.join(diff)}", id=obj.id, changed=diff,
                                sensitive=sorted({*recorded, *obj.sensitive})))
    return drift


def _namesakes_note(key: str, name: str, others: list[LiveObject]) -> str:
    ids = ", ".join(o.id for o in others)
    return f"{key}: other objects named {name!r} on the server (ids {ids}) are not managed by prefect-provider: left alone"


# --- rules across changes -----------------------------------------------------------------------


def _cascade_replacements(changes: dict[str, Change], catalog: Catalog) -> None:
    """Objects the server deletes along with their parent are replaced when the parent is, and
    objects holding the id of one that gets a new id (replaced or re-created) are updated."""
    replaced = {k for k, c in changes.items() if c.action.replaces}
    cascading = True
    while cascading:  # a cascaded replacement may cascade further
        cascading = False
        for key, change in changes.items():
            kind = catalog[change.kind]
            parents = [d for d in change.depends_on if d in replaced and kind.deleted_with(catalog.parse(d))]
            if parents and change.action in (Action.NO_OP, Action.UPDATE):
                changes[key] = replace(change, action=Action.REPLACE, action_reason=Reason.REPLACE_WITH_PARENT,
                                       reason=f"{parents[0]} is replaced, which deletes it on the server")
                replaced.add(key)
                cascading = True
    for key, change in changes.items():
        if change.action == Action.NO_OP and catalog[change.kind].refers_by_id:
            # A no-op object refers to what is in state: a create among them is a re-creation.
            renewed = [changes[d] for d in change.depends_on if d in changes and changes[d].action.creates]
            if renewed:
                how = "replaced" if renewed[0].action.replaces else "re-created"
                changes[key] = replace(change, action=Action.UPDATE, action_reason=Reason.REFERENCE_RENEWED,
                                       reason=f"{renewed[0].address} is {how}: refer to the new object")


def _check_prevent_destroy(config: Configuration | None, state: State, changes: dict[str, Change]) -> None:
    """A declared resource is guarded by its lifecycle; one whose block is gone (or every one, for
    `destroy`) by the guard recorded in state, until an apply with `prevent_destroy: false` lifts it."""
    declared = {str(address): resource for address, resource in config.resources.items()} if config else {}
    blocked = []
    for key, change in changes.items():
        if not change.action.deletes:
            continue
        resource = declared.get(key)
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


def _check_deletions(changes: list[Change], client: PrefectClient, catalog: Catalog) -> None:
    """Refuse deleting (or replacing) objects their kind says must stay, e.g. a block type whose
    blocks the server would delete with it while the plan keeps them."""
    deleting = {c.address for c in changes if c.action == Action.DELETE or c.action.replaces}
    refused = [f"  {c.address}: {why}" for c in changes if c.address in deleting and c.id is not None
               and (why := catalog[c.kind].deletion_refused(client, c.id, c.name, deleting))]
    if refused:
        raise PlanError("these objects cannot be deleted:\n" + "\n".join(refused))


def _mark_create_before_destroy(config: Configuration | None, changes: dict[str, Change], catalog: Catalog) -> None:
    if config is None:
        return
    declared = {str(address): resource for address, resource in config.resources.items()}
    impossible = []
    for key, change in changes.items():
        resource = declared.get(key)
        if change.action != Action.REPLACE or not resource or not resource.spec.lifecycle.create_before_destroy:
            continue
        if catalog[change.kind].unique_names:
            impossible.append(f"{key} ({resource.location})")
        changes[key] = replace(change, action=Action.CREATE_THEN_DELETE)
    if impossible:
        raise PlanError(
            "lifecycle.create_before_destroy cannot work here: the server allows one object per name, so the "
            "replacement cannot exist beside the old one:\n  " + "\n  ".join(impossible)
        )


def _scope(targets: Iterable[str], resources: dict[Address, Resource], state: State) -> set[str]:
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
    return scope | _dependents(scope, {key: record.dependencies for key, record in state.resources.items()})


def _dependents(addresses: set[str], dependencies: dict[str, Iterable[str]]) -> set[str]:
    """Every address that depends on one of `addresses`, directly or through others."""
    found: set[str] = set()
    grew = True
    while grew:
        grew = False
        for key, needs in dependencies.items():
            if key not in found and set(needs) & (addresses | found):
                found.add(key)
                grew = True
    return found


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
    keep |= _dependents(keep, {c.address: c.dependencies for c in changes if c.action.deletes})
    return [c for c in changes if c.address in keep]
