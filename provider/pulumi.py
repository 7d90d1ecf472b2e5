"""Pulumi dynamic providers for every resource kind, on the CLI's kinds, validation and API client.

One generic provider (`KindProvider`) and one generic resource (`KindResource`) take a resource
kind; the named classes (`WorkPool` and `WorkPoolProvider`, `Deployment` and
`DeploymentProvider`, ...) are generated from `resources.KINDS`, so every kind has both.

A resource manages one Prefect object, plus the objects its spec declares inline (a pool's
`queues`, a deployment's `triggers`), written in the order the CLI writes them. Its inputs are the
YAML spec's fields and the identity (`name`; `work_pool` + `name` for a queue, `flow_name` +
`name` for a deployment, `block_type_slug` + `name` for a block). Its outputs are those inputs,
`attributes` (the object as read back from the server, normalized as plans show it, server-filled
fields included) and `children` (address -> `id` and `attributes` of each inline object). The
Pulumi id is the server id. Secrets never reach outputs: at the kind's sensitive paths they are
fingerprints salted with the object's id, which still shows a changed secret in `diff`.

Providers hold no client, lock or credential (Pulumi stores them, serialized with dill, in the
stack state). Each method reads the connection (stack config `prefect:apiUrl` and
`prefect:apiKey`, else PREFECT_API_URL / PREFECT_API_KEY or the Prefect profile, as the CLI does)
and opens its own client. Names given as another resource's output (a deployment's
`work_pool=pool.name`) make Pulumi order the resources; ids are looked up by name when writing.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import pulumi
import pulumi.dynamic as dynamic
from pulumi.runtime.rpc import UNKNOWN
from pydantic import ValidationError

from provider.client import Connection, PrefectClient
from provider.config import validation_problems
from provider.connection import resolve
from provider.engine import changed_fields, cloud_refusal, create_object, refresh
from provider.errors import NotFound, ProviderError
from provider.secrets import conceal
from provider.yamlsource import _dotted
from resources import CATALOG, KINDS
from resources.base import Address, ApplyContext, FieldError, Known, LiveObject, ResourceKind, ServerDefaults, Spec

CONFIG = "prefect"  # the stack config namespace: prefect:apiUrl, prefect:apiKey
OUTPUTS = ("attributes", "children")  # filled by the provider, never inputs
INTERNAL = "__provider"  # where Pulumi keeps the serialized provider among the properties
# How a two-part identity is spelled as inputs; every other kind is identified by `name`.
IDENTITY_INPUTS = {
    "work_queues": ("work_pool", "name"),
    "block_types": ("slug",),
    "blocks": ("block_type_slug", "name"),
    "deployments": ("flow_name", "name"),
}


def identity_inputs(kind: ResourceKind) -> tuple[str, ...]:
    return IDENTITY_INPUTS.get(kind.kind, ("name",))


def class_name(kind: ResourceKind) -> str:
    """work_pools -> WorkPool, concurrency_limits -> ConcurrencyLimit."""
    return "".join(part.capitalize() for part in kind.kind.removesuffix("s").split("_"))


# --- inputs -------------------------------------------------------------------------------------


@dataclass
class Unit:
    """One object a resource manages: its own, or one its spec declares inline."""

    kind: ResourceKind
    name: str
    spec: Spec
    path: tuple[str | int, ...] = ()  # where its spec stands among the resource's inputs

    @property
    def address(self) -> str:
        return str(self.kind.address(self.name))


@dataclass
class Parsed:
    units: list[Unit]  # the resource's own object first; empty when the inputs are not valid
    problems: list[tuple[str, str]]  # (property, reason)


def is_unknown(value: Any) -> bool:
    """Whether `value` holds an input Pulumi does not know yet (in a preview)."""
    if isinstance(value, dict):
        return any(is_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(is_unknown(v) for v in value)
    return isinstance(value, str) and UNKNOWN in value


def parse(kind: ResourceKind, fields: dict[str, Any]) -> Parsed:
    """The objects a resource manages (its own, then the inline ones in the order they are written),
    or the problems with its inputs, found as `validate` finds them.

    Problems caused by inputs not known yet are left out: they are judged once known.
    """
    identity = identity_inputs(kind)
    spec_fields = {key: value for key, value in fields.items() if key not in identity}
    problems: list[tuple[str, str]] = []
    if "lifecycle" in spec_fields:
        del spec_fields["lifecycle"]
        problems.append(("lifecycle", "use Pulumi's resource options (protect, ignore_changes) instead"))
    for key in identity:
        if fields.get(key) is None:
            problems.append((key, "required field is missing"))
        elif not isinstance(fields[key], str):
            problems.append((key, "must be a string"))
        elif len(identity) > 1 and "/" in fields[key]:
            problems.append((key, "must not contain /"))  # the parts are joined with / into the name
    name = "/".join(str(fields.get(key)) for key in identity)
    if not problems and not is_unknown(name):
        try:
            kind.check_name(name)
        except ValueError as exc:
            problems.append(("/".join(identity), f"invalid name {name!r}: {exc}"))
    own = _unit(kind, name, spec_fields, (), problems)
    if own is None:
        return Parsed([], problems)
    children: list[Unit] = []
    for child in kind.children(own.name, own.spec):
        if KINDS[child.kind].nested_under:
            # Its parent is written after it (a pool's template holds its infra's ids), which
            # one Pulumi resource per parent does not do; Pulumi's cloud providers make those.
            problem = (str(child.path[0]), f"not supported by the Pulumi providers: make the {child.kind} objects "
                       "with Pulumi's cloud providers (e.g. pulumi_aws) and pass their outputs to this resource")
            if problem not in problems:
                problems.append(problem)
            continue
        unit = _unit(KINDS[child.kind], child.name, child.spec, child.path, problems)
        if unit is not None:
            children.append(unit)
    return Parsed([] if problems else [own, *_ordered(children)], problems)


def _unit(kind: ResourceKind, name: str, spec: Any, path: tuple, problems: list[tuple[str, str]]) -> Unit | None:
    if isinstance(spec, Spec):
        return Unit(kind, name, spec, path)
    try:
        return Unit(kind, name, kind.spec.model_validate(spec), path)
    except ValidationError as exc:
        for field_path, message in validation_problems(exc, spec):
            if not _unknown_along(spec, field_path):
                problems.append((_dotted((*path, *field_path)), message))
        return None


def _unknown_along(data: Any, path: tuple) -> bool:
    """Whether the value at `path`, or one on the way to it, is not known yet."""
    node = data
    for part in path:
        if isinstance(node, str) and UNKNOWN in node:
            return True
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return False
    return is_unknown(node)


def _ordered(children: list[Unit]) -> list[Unit]:
    """Inline objects in the order the CLI writes them (e.g. queues by ascending priority)."""
    by_address = {unit.address: unit for unit in children}
    graph: dict[str, set[str]] = {address: set() for address in by_address}
    specs: dict[str, dict[str, Spec]] = {}
    for unit in children:
        specs.setdefault(unit.kind.kind, {})[unit.name] = unit.spec
    for kind_name, kind_specs in specs.items():
        for later, earlier in KINDS[kind_name].ordering(kind_specs):
            graph[str(CATALOG.address(kind_name, later))].add(str(CATALOG.address(kind_name, earlier)))
    return [by_address[address] for address in graphlib.TopologicalSorter(graph).static_order()]


# --- the provider -------------------------------------------------------------------------------


def _no_api() -> Connection:
    raise ProviderError(
        "no Prefect API is configured: `pulumi config set prefect:apiUrl URL` (and "
        "`pulumi config set --secret prefect:apiKey KEY` for Prefect Cloud), or set PREFECT_API_URL"
    )


class KindProvider(dynamic.ResourceProvider):
    """The dynamic provider of one resource kind (`kind_name`), through the kind's own methods."""

    kind_name: ClassVar[str]

    def __init__(self) -> None:
        super().__init__()
        # Filled by `configure` in Pulumi's provider process, after this object was deserialized:
        # the serialized provider never holds it.
        self._stack_config: dict[str, str | None] = {}

    @property
    def kind(self) -> ResourceKind:
        return KINDS[self.kind_name]

    # --- connection ------------------------------------------------------------------------

    def configure(self, req: dynamic.ConfigureRequest) -> None:
        # The provider process gets the stack's config here; pulumi.Config is empty there.
        self._stack_config = {key: req.config.get(f"{CONFIG}:{key}") for key in ("apiUrl", "apiKey")}

    def _setting(self, key: str) -> str | None:
        return self._stack_config.get(key) or pulumi.Config(CONFIG).get(key)

    @contextmanager
    def _client(self) -> Iterator[PrefectClient]:
        url, key = self._setting("apiUrl"), self._setting("apiKey")
        connection = resolve(url, start_embedded=_no_api)
        if url:
            connection = replace(connection, source="Pulumi config prefect:apiUrl")
        if key:
            connection = replace(connection, api_key=key)
        with PrefectClient(connection) as client:
            yield client

    # --- the dynamic provider interface -----------------------------------------------------

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.CheckResult:
        problems = parse(self.kind, _inputs(news)).problems
        return dynamic.CheckResult(news, [dynamic.CheckFailure(prop, reason) for prop, reason in problems])

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        fields = _inputs(news)
        renamed = [key for key in identity_inputs(self.kind) if olds.get(key) != fields.get(key)]
        # A new identity replaces the object, unless only its own name changed and the server can
        # rename it (within its parent: a queue cannot move to another pool).
        replaces = [key for key in renamed if not (key == "name" and self.kind.renamable)]
        if is_unknown(fields):
            # A preview with inputs from resources not written yet: a change, its extent unknown.
            return dynamic.DiffResult(changes=True, replaces=replaces, delete_before_replace=True)
        units = self._parse(fields)
        with self._client() as client:
            defaults = ServerDefaults(client)
            own = _concealed(units[0], self._desired(units[0], defaults), id_, defaults)
            changed = changed_fields(olds.get("attributes") or {}, own, self.kind.left_to_server(own))
            old_children = olds.get("children") or {}
            children_changed = {unit.address for unit in units[1:]} != set(old_children) or any(
                changed_fields(old_children[unit.address]["attributes"], desired, unit.kind.left_to_server(desired))
                for unit in units[1:]
                for desired in [_concealed(unit, self._desired(unit, defaults), old_children[unit.address]["id"], defaults)]
            )
        replaces += [f for f in changed if f in self.kind.replace_fields]
        return dynamic.DiffResult(
            changes=bool(renamed or changed or children_changed),
            replaces=replaces,
            # Names are unique on the server: the old object goes before its replacement comes.
            delete_before_replace=True,
        )

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        fields = _inputs(props)
        units = self._parse(fields)
        own = units[0]
        with self._client() as client:
            self._refuse_cloud_features(units, client.connection)
            ctx = self._context(client, units)
            existing = ctx.ids.get(own.address)
            if existing and not own.kind.server_owned(own.name):
                raise ProviderError(
                    f"{own.address} already exists on the server (id {existing}): adopt it with "
                    f"opts=pulumi.ResourceOptions(import_={existing!r}), or delete it first"
                )
            defaults = ServerDefaults(client)
            created: list[tuple[Unit, str]] = []
            try:
                for unit in units:
                    obj_id = create_object(client, unit.kind, unit.name, self._desired(unit, defaults), ctx)
                    ctx.ids[unit.address] = obj_id
                    created.append((unit, obj_id))
            except Exception:
                # A failed create must leave nothing behind: Pulumi records no resource for it.
                for unit, obj_id in reversed(created):
                    _delete(client, unit.kind, obj_id, unit.name)
                raise
            return dynamic.CreateResult(created[0][1], self._outputs(client, fields, units, ctx, defaults))

    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        fields = _inputs(props)
        units = self._parse(fields)
        with self._client() as client:
            defaults = ServerDefaults(client)
            ctx = self._context(client, units)
            found = ctx.ids.get(units[0].address)
            # By id, or by name for an import given the object's name (as `prefect-provider import`).
            if found is None or id_ not in (found, units[0].name):
                return dynamic.ReadResult("", {})  # gone: Pulumi drops it from the stack
            return dynamic.ReadResult(found, self._outputs(client, fields, units, ctx, defaults))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        fields = _inputs(news)
        units = self._parse(fields)
        with self._client() as client:
            self._refuse_cloud_features(units, client.connection)
            defaults = ServerDefaults(client)
            ctx = self._context(client, units)
            live = self._live(client, units, ctx)
            own = units[0]
            old_name = "/".join(olds[key] for key in identity_inputs(own.kind))
            if old_name != own.name:
                own.kind.rename(client, id_, own.name, self._desired(own, defaults), ctx)
                live[own.address] = self._live(client, units[:1], ctx)[own.address]
            if live.get(own.address) is None or live[own.address].id != id_:
                raise ProviderError(f"{own.address} (id {id_}) was deleted outside Pulumi: run `pulumi refresh`")
            declared = {unit.address for unit in units}
            for address, child in (olds.get("children") or {}).items():
                if address not in declared:
                    child_address = CATALOG.parse(address)
                    _delete(client, KINDS[child_address.kind], child["id"], child_address.name)
            for unit in units:
                attributes = self._desired(unit, defaults)
                obj = live.get(unit.address)
                if obj is None:
                    ctx.ids[unit.address] = create_object(client, unit.kind, unit.name, attributes, ctx)
                elif changed_fields(_concealed(unit, obj.attributes, obj.id, defaults),
                                    _concealed(unit, attributes, obj.id, defaults), unit.kind.left_to_server(attributes)):
                    unit.kind.update(client, obj.id, unit.name, attributes, obj.attributes, ctx)
            return dynamic.UpdateResult(self._outputs(client, fields, units, ctx, defaults))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        fields = _inputs(props)
        name = "/".join(fields[key] for key in identity_inputs(self.kind))
        with self._client() as client:
            for address, child in reversed((props.get("children") or {}).items()):
                child_address = CATALOG.parse(address)
                child_kind = KINDS[child_address.kind]
                if not child_kind.deleted_with_parent:
                    _delete(client, child_kind, child["id"], child_address.name)
            _delete(client, self.kind, id_, name)

    # --- helpers -----------------------------------------------------------------------------

    def _parse(self, fields: dict[str, Any]) -> list[Unit]:
        parsed = parse(self.kind, fields)
        if parsed.problems:
            raise ProviderError("; ".join(f"{prop}: {reason}" for prop, reason in parsed.problems))
        return parsed.units

    @staticmethod
    def _desired(unit: Unit, defaults: ServerDefaults) -> dict[str, Any]:
        try:
            return unit.kind.desired(unit.name, unit.spec, defaults)
        except ValueError as exc:
            # What only the server knows (e.g. a block type's schema), checked as `plan` does.
            path = (*unit.path, *(exc.path if isinstance(exc, FieldError) else ()))
            raise ProviderError(f"{_dotted(path) or unit.address}: {exc}") from None

    @staticmethod
    def _refuse_cloud_features(units: list[Unit], connection: Connection) -> None:
        if connection.is_cloud:
            return
        for unit in units:
            if unit.kind.cloud_only:
                raise ProviderError(f"{unit.address}: " + cloud_refusal(unit.kind.kind, connection))
            for feature, path in unit.kind.cloud_features(unit.name, unit.spec):
                raise ProviderError(f"{_dotted((*unit.path, *path))}: " + cloud_refusal(feature, connection))

    @staticmethod
    def _context(client: PrefectClient, units: list[Unit]) -> ApplyContext:
        """The ids of everything the units refer to (and of the units that exist), looked up by name."""
        names: dict[str, set[str]] = {}
        for unit in units:
            names.setdefault(unit.kind.kind, set()).add(unit.name)
            for address in unit.kind.references(unit.name, unit.spec):
                names.setdefault(address.kind, set()).add(address.name)
        live = refresh(client, names, CATALOG)
        found = {str(CATALOG.address(kind, name)): named[0].id for kind, objects in live.items() for name, named in objects.items()}
        own = {unit.address for unit in units}
        for unit in units:
            for address in unit.kind.references(unit.name, unit.spec):
                if str(address) not in found and str(address) not in own:
                    raise ProviderError(f"{unit.address} refers to {address}, which does not exist on the server")
        return ApplyContext(found)

    @staticmethod
    def _live(client: PrefectClient, units: list[Unit], ctx: ApplyContext) -> dict[str, LiveObject]:
        """The units as they are on the server, naming what they refer to as the inputs do."""
        names: dict[str, set[str]] = {}
        known: dict[str, dict[str, Known]] = {}
        defaults = ServerDefaults(client)
        for unit in units:
            names.setdefault(unit.kind.kind, set()).add(unit.name)
            # What the inputs ask for helps kinds that find objects by more than the name (a trigger's owner).
            known.setdefault(unit.kind.kind, {})[unit.name] = Known(desired=KindProvider._desired(unit, defaults))
        live = refresh(client, names, CATALOG, known=known)
        addresses = {obj_id: CATALOG.parse(address) for address, obj_id in ctx.ids.items()}
        found = {}
        for unit in units:
            obj = next(iter(live.get(unit.kind.kind, {}).get(unit.name, [])), None)
            if obj is not None:
                unit.kind.name_references(obj, addresses)
                found[unit.address] = obj
        return found

    def _outputs(self, client: PrefectClient, fields: dict[str, Any], units: list[Unit], ctx: ApplyContext,
                 defaults: ServerDefaults) -> dict[str, Any]:
        live = self._live(client, units, ctx)
        own = units[0]
        obj = live[own.address]
        children = {
            unit.address: {"id": live[unit.address].id,
                           "attributes": _concealed(unit, live[unit.address].attributes, live[unit.address].id, defaults)}
            for unit in units[1:]
            if unit.address in live
        }
        return {
            **_concealed(own, fields, obj.id, defaults, sensitive_of=obj.attributes),
            "attributes": _concealed(own, obj.attributes, obj.id, defaults),
            "children": children,
        }


def _inputs(props: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in props.items() if key != INTERNAL and key not in OUTPUTS}


def _concealed(unit: Unit, values: dict[str, Any], salt: str, defaults: ServerDefaults,
               sensitive_of: dict[str, Any] | None = None) -> dict[str, Any]:
    """`values` with fingerprints at the unit's sensitive paths (found in `sensitive_of`, default `values`)."""
    paths = unit.kind.sensitive_paths(unit.name, values if sensitive_of is None else sensitive_of, defaults)
    return conceal(values, paths, salt)[0]


def _delete(client: PrefectClient, kind: ResourceKind, obj_id: str, name: str) -> None:
    """Delete an object, unless the server owns it (then it is only no longer managed)."""
    if kind.server_owned(name):
        return
    try:
        kind.delete(client, obj_id, name)
    except NotFound:
        pass  # already gone (e.g. deleted with its parent): the goal is reached


# --- the resources ------------------------------------------------------------------------------


class KindResource(dynamic.Resource):
    """A Prefect object of one kind: `Kind(resource_name, opts=None, **fields)`.

    `fields` are the YAML spec's fields plus the identity inputs; `name` defaults to the resource
    name. Fields of kinds that hold secrets (blocks' `data`) are Pulumi secrets.
    """

    kind_name: ClassVar[str]
    provider_class: ClassVar[type[KindProvider]]

    def __init__(self, resource_name: str, opts: pulumi.ResourceOptions | None = None, **fields: Any) -> None:
        taken = sorted(set(fields) & set(OUTPUTS))
        if taken:
            raise TypeError(f"{type(self).__name__}: {', '.join(taken)} are outputs, not inputs")
        fields.setdefault("name", resource_name)
        secret = sorted(set(fields) & secret_inputs(KINDS[self.kind_name]))
        if secret:
            fields.update({key: pulumi.Output.secret(fields[key]) for key in secret})
            opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=secret))
        super().__init__(self.provider_class(), resource_name, {**fields, **dict.fromkeys(OUTPUTS)}, opts)


def secret_inputs(kind: ResourceKind) -> set[str]:
    """The spec fields of a kind that can hold secrets: all of them, when it names sensitive paths.

    Which paths are secret may depend on the server (a block type's schema), which a program
    does not ask; so each such field is a secret as a whole.
    """
    if type(kind).sensitive_paths is ResourceKind.sensitive_paths:
        return set()
    return set(kind.spec.model_fields) - {"lifecycle"}


def _generate() -> dict[str, type]:
    """`<Kind>Provider` and `<Kind>` for every kind declared on its own (not nested in another), as
    module attributes (dill pickles them by name)."""
    classes: dict[str, type] = {}
    for kind in KINDS.values():
        if kind.nested_under:
            continue
        name = class_name(kind)
        overlap = {*identity_inputs(kind), *OUTPUTS} & set(kind.spec.model_fields)
        if overlap:
            raise TypeError(f"{kind.kind}: spec fields {sorted(overlap)} clash with identity or output names")
        provider = type(f"{name}Provider", (KindProvider,), {
            "kind_name": kind.kind, "__module__": __name__, "__doc__": f"The dynamic provider of {kind.kind}.",
        })
        resource = type(name, (KindResource,), {
            "kind_name": kind.kind, "provider_class": provider, "__module__": __name__,
            "__doc__": f"A Prefect {kind.kind} object ({kind.identity}), managed by {provider.__name__}.",
        }, module=CONFIG, name=name)
        classes[provider.__name__] = provider
        classes[name] = resource
    return classes


PROVIDERS: dict[str, type[KindProvider]] = {}  # kind -> provider class
RESOURCES: dict[str, type[KindResource]] = {}  # kind -> resource class
for _cls in _generate().values():
    globals()[_cls.__name__] = _cls
    (PROVIDERS if issubclass(_cls, KindProvider) else RESOURCES)[_cls.kind_name] = _cls

__all__ = ["PROVIDERS", "RESOURCES", "KindProvider", "KindResource", *(c.__name__ for c in RESOURCES.values()),
           *(c.__name__ for c in PROVIDERS.values())]
