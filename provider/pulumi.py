"""Pulumi dynamic providers for every resource kind, driving the same session as the CLI.

One generic provider (`KindProvider`) and one generic resource (`KindResource`) take a resource
kind; the named classes (`WorkPool` and `WorkPoolProvider`, `Deployment` and
`DeploymentProvider`, ...) are generated from `resources.KINDS`, so every kind has both.

A resource is a small configuration: its own object plus the objects its spec declares inside it
(a pool's `queues` and `provision_infra` parts, a deployment's `triggers`). Its state is a small
prefect-provider state kept in its `state` output (a Pulumi secret). Each provider method is one
session (provider/session.py) on that configuration and that state, in memory:

- create: plan and apply from an empty state (`adopt=True` first imports existing objects);
- update: plan and apply against the recorded state; a new name is a `moved` entry where the
  server renames the kind in place;
- delete: a destroy plan; read (`pulumi refresh`): a refresh-only plan, drift taken into state;
- diff: a plan; its changes tell Pulumi whether there are changes and what forces a replacement.

Inputs are the YAML spec's fields, the identity (`ResourceKind.identity_inputs`) and `adopt`.
Outputs are the inputs (secrets as salted fingerprints), `attributes` (the object as recorded,
server-filled fields included), `children` (address -> `id` and `attributes` of each inner
object) and `state`. The Pulumi id is the server id. References to objects other resources make
(a deployment's `work_pool=pool.name`) are looked up by name on the server when planning.

Providers hold no client, lock or credential (Pulumi stores them, serialized with dill, in the
stack state). Each method reads the connection (stack config `prefect:apiUrl` and
`prefect:apiKey`, else PREFECT_API_URL / PREFECT_API_KEY or the Prefect profile, as the CLI does)
and opens its own client.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import pulumi
import pulumi.dynamic as dynamic
from pulumi.runtime.rpc import UNKNOWN
from pydantic import ValidationError

from provider.client import Connection, PrefectClient
from provider.config import Configuration, Moved, declared_configuration, validation_problems
from provider.connection import resolve
from provider.engine import ApplyResult, describe_error
from provider.errors import ConfigErrors, ProviderError
from provider.plan import Change, Plan
from provider.secrets import conceal
from provider.session import Session
from provider.state import MemoryBackend, Record, State, parse_state
from provider.yamlsource import SourceMap, _dotted
from resources import CATALOG, KINDS
from resources.base import Address, ResourceKind, Spec

CONFIG = "prefect"  # the stack config namespace: prefect:apiUrl, prefect:apiKey
OUTPUTS = ("attributes", "children", "state")  # filled by the provider, never inputs
ADOPT = "adopt"  # the input that takes an existing object of the name into the stack on create
INTERNAL = "__provider"  # where Pulumi keeps the serialized provider among the properties


def class_name(kind: ResourceKind) -> str:
    """work_pools -> WorkPool, concurrency_limits -> ConcurrencyLimit."""
    return "".join(part.capitalize() for part in kind.kind.removesuffix("s").split("_"))


# --- inputs -------------------------------------------------------------------------------------


@dataclass
class Parsed:
    address: Address | None  # the resource's own object; None when its name is not known or valid
    spec: Spec | None  # None when the inputs are not valid
    problems: list[tuple[str, str]]  # (property, reason)


def is_unknown(value: Any) -> bool:
    """Whether `value` holds an input Pulumi does not know yet (in a preview)."""
    if isinstance(value, dict):
        return any(is_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(is_unknown(v) for v in value)
    return isinstance(value, str) and UNKNOWN in value


def name_of(kind: ResourceKind, fields: dict[str, Any]) -> str:
    return "/".join(str(fields.get(key)) for key in kind.identity_inputs)


def parse(kind: ResourceKind, fields: dict[str, Any]) -> Parsed:
    """The resource's own object and spec, or the problems with its inputs, found as `validate`
    finds them. Problems caused by inputs not known yet are left out: they are judged once known."""
    identity = kind.identity_inputs
    spec_fields = {key: value for key, value in fields.items() if key not in identity and key != ADOPT}
    problems: list[tuple[str, str]] = []
    if "lifecycle" in spec_fields:
        del spec_fields["lifecycle"]
        problems.append(("lifecycle", "use Pulumi's resource options (protect, ignore_changes) instead"))
    adopt = fields.get(ADOPT)
    if adopt is not None and not isinstance(adopt, bool) and not is_unknown(adopt):
        problems.append((ADOPT, "must be true or false"))
    for key in identity:
        if fields.get(key) is None:
            problems.append((key, "required field is missing"))
        elif not isinstance(fields[key], str):
            problems.append((key, "must be a string"))
        elif len(identity) > 1 and "/" in fields[key]:
            problems.append((key, "must not contain /"))  # the parts are joined with / into the name
    name = name_of(kind, fields)
    address = None
    if not problems and not is_unknown(name):
        try:
            kind.check_name(name)
            address = kind.address(name)
        except ValueError as exc:
            problems.append(("/".join(identity), f"invalid name {name!r}: {exc}"))
    spec = _validated(kind, spec_fields, (), problems)
    if spec is not None and address is not None:
        for child in kind.children(name, spec):  # checked here to name the property at fault
            _validated(KINDS[child.kind], child.spec, child.path, problems)
    return Parsed(address, None if problems else spec, problems)


def _validated(kind: ResourceKind, spec: Any, path: tuple, problems: list[tuple[str, str]]) -> Spec | None:
    if isinstance(spec, Spec):
        return spec
    try:
        return kind.spec.model_validate(spec)
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


def outputs_of(kind: ResourceKind) -> tuple[str, ...]:
    """A kind's output properties: the provider's, then the secrets the server issues (`issued`)."""
    return (*OUTPUTS, *sorted(kind.issued))


def _inputs(kind: ResourceKind, props: dict[str, Any]) -> dict[str, Any]:
    outputs = outputs_of(kind)
    return {key: value for key, value in props.items() if key != INTERNAL and key not in outputs}


# --- the provider -------------------------------------------------------------------------------


def _no_api() -> Connection:
    raise ProviderError(
        "no Prefect API is configured: `pulumi config set prefect:apiUrl URL` (and "
        "`pulumi config set --secret prefect:apiKey KEY` for Prefect Cloud), or set PREFECT_API_URL"
    )


class KindProvider(dynamic.ResourceProvider):
    """The dynamic provider of one resource kind (`kind_name`), through a session per call."""

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

    def _session(self, client: PrefectClient, fields: dict[str, Any] | None, state: State | None,
                 moved_from: Address | None = None) -> Session:
        """A session on the resource's configuration (None: none, to read or destroy) and state,
        through the call's one client (opening a client costs more than most calls' requests)."""
        config = None
        if fields is not None:
            parsed = parse(self.kind, fields)
            if parsed.problems:
                raise ProviderError("; ".join(f"{prop}: {reason}" for prop, reason in parsed.problems))
            config = _configuration(parsed.address, parsed.spec)
            if moved_from is not None:
                config.moved = [Moved.model_validate({"from": str(moved_from), "to": str(parsed.address)})]
        return Session(config, MemoryBackend(state), lambda: nullcontext(client))

    # --- the dynamic provider interface -----------------------------------------------------

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.CheckResult:
        problems = parse(self.kind, _inputs(self.kind, news)).problems
        return dynamic.CheckResult(news, [dynamic.CheckFailure(prop, reason) for prop, reason in problems])

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        fields = _inputs(self.kind, news)
        renamed = [key for key in self.kind.identity_inputs if olds.get(key) != fields.get(key)]
        # A new identity replaces the object, unless only its own name changed and the server can
        # rename it (within its parent: a queue cannot move to another pool). The replacement has
        # another name, so it is created before the old object goes.
        replaces = [key for key in renamed if not (key == "name" and self.kind.renamable)]
        if replaces or is_unknown(fields):
            # (In a preview, inputs from resources not written yet: a change, its extent unknown.)
            return dynamic.DiffResult(changes=True, replaces=replaces, delete_before_replace=False)
        with self._client() as client:
            _, plan = self._planned_against(client, id_, olds, fields)
        own = _own_change(plan, self._address(fields))
        if own is not None and own.action.replaces:
            forced = self.kind.replace_fields_for(own.name)
            replaces = [f for f in own.changed if f in forced] or list(own.changed) or ["name"]
        return dynamic.DiffResult(
            changes=plan.has_changes,
            replaces=replaces,
            # Where names are unique on the server, the old object must go before its namesake comes.
            delete_before_replace=bool(replaces) and self.kind.unique_names,
        )

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        with self._client() as client:
            return self._create(client, _inputs(self.kind, props))

    def _create(self, client: PrefectClient, fields: dict[str, Any]) -> dynamic.CreateResult:
        session = self._session(client, fields, None)
        existing = session.existing(namesakes=bool(fields.get(ADOPT)))
        if existing and not fields.get(ADOPT):
            found = ", ".join(f"{address} (id {obj_id})" for address, obj_id in existing.items())
            raise ProviderError(
                f"{found} already exists on the server: set adopt=True on this resource to take it into the "
                "stack (Pulumi's import cannot adopt into a dynamic provider), or delete it first"
            )
        for address, obj_id in existing.items():
            session.import_(address, obj_id)
        plan = _planned(session)
        result = session.apply(plan)
        if not result.ok:
            # A failed create leaves nothing it made behind: Pulumi records no resource for it.
            made = [step.change.address for step in result.done if step.operation == "create"]
            if made:
                cleanup = self._session(client, None, session.backend.read())
                left = cleanup.apply(cleanup.plan("destroy", made))
                if not left.ok:
                    raise ProviderError(f"{_failure(result)}; removing what it made failed too: {_failure(left)}")
            raise _failure(result)
        state = session.backend.read()
        return dynamic.CreateResult(state.resources[str(self._address(fields))].id,
                                    self._outputs(fields, state, _own_change(plan, self._address(fields)), {}))

    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        with self._client() as client:
            session = self._session(client, None, self._recorded(id_, props))
            session.apply(session.plan("refresh-only"))
        state = session.backend.read()
        record = state.resources.get(str(self._address(props))) if state else None
        if record is None or record.id != id_:
            return dynamic.ReadResult("", {})  # gone: Pulumi drops it from the stack
        return dynamic.ReadResult(id_, {**_inputs(self.kind, props), **self._state_outputs(props, state, props)})

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        fields = _inputs(self.kind, news)
        address = self._address(fields)
        with self._client() as client:
            session, plan = self._planned_against(client, id_, olds, fields)
            own = _own_change(plan, address)
            if own is not None and own.action == "create":
                raise ProviderError(f"{address} (id {id_}) was deleted outside Pulumi: run `pulumi refresh`")
            result = session.apply(plan)
        if not result.ok:
            raise _failure(result)
        return dynamic.UpdateResult(self._outputs(fields, session.backend.read(), own, olds))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        with self._client() as client:
            session = self._session(client, None, self._recorded(id_, props))
            result = session.apply(session.plan("destroy"))
        if not result.ok:
            raise _failure(result)

    # --- helpers -----------------------------------------------------------------------------

    def _address(self, fields: dict[str, Any]) -> Address:
        return self.kind.address(name_of(self.kind, fields))

    def _planned_against(self, client: PrefectClient, id_: str, olds: dict[str, Any],
                         fields: dict[str, Any]) -> tuple[Session, Plan]:
        """A plan of the new inputs against the recorded state; a new name of a renamable kind is
        a `moved` entry (the server renames the object in place)."""
        old_address = self._address(olds)
        moved_from = old_address if old_address != self._address(fields) else None
        session = self._session(client, fields, self._recorded(id_, olds), moved_from)
        return session, _planned(session)

    def _recorded(self, id_: str, props: dict[str, Any]) -> State | None:
        """The resource's state, as its `state` output holds it. Resources made by releases before
        it was kept have only `attributes` and `children`: the state is made from those (their
        fingerprints were salted with the object's id, which the lineage then is)."""
        if props.get("state"):
            return parse_state(json.dumps(props["state"]), "the resource's state output")
        if props.get("attributes") is None:
            return None
        own = self._address(props)
        state = State(lineage=id_)
        state.resources[str(own)] = Record(own.kind, own.name, id_, props["attributes"])
        for key, child in (props.get("children") or {}).items():
            address = CATALOG.parse(key)
            state.resources[key] = Record(address.kind, address.name, child["id"], child["attributes"], [str(own)])
        return state

    def _outputs(self, fields: dict[str, Any], state: State, own: Change | None, before: dict[str, Any]) -> dict[str, Any]:
        # Inputs at secret paths are fingerprints, as the plan concealed them.
        paths = own.sensitive if own is not None else []
        return {**conceal(fields, paths, state.lineage)[0], **self._state_outputs(fields, state, before)}

    def _state_outputs(self, fields: dict[str, Any], state: State, before: dict[str, Any]) -> dict[str, Any]:
        """What the state holds of the resource, and the secrets the server issued (`issued`): a
        key issued in this call, else the one `before` (the previous outputs) kept. Given once and
        never in state, a key is kept only here, in the stack, as a Pulumi secret."""
        own = str(self._address(fields))
        record = state.resources[own]
        fresh = self.kind.outputs(record.name, record.id, record.attributes)
        return {
            "attributes": record.attributes,
            "children": {address: {"id": child.id, "attributes": child.attributes}
                         for address, child in state.resources.items() if address != own},
            "state": state.to_json(),
            **{key: fresh.get(key, before.get(key)) for key in sorted(self.kind.issued)},
        }


def _configuration(address: Address, spec: Spec) -> Configuration:
    return declared_configuration(Path("."), {address: spec}, SourceMap("inputs"))


def _planned(session: Session) -> Plan:
    try:
        return session.plan()
    except ConfigErrors as exc:
        raise _explained(exc, session.config) from None


def _own_change(plan: Plan, address: Address) -> Change | None:
    return next((c for c in plan.changes if c.address == str(address)), None)


def _failure(result: ApplyResult) -> ProviderError:
    lines = [f"{step.change.address}: {describe_error(error)}" for step, error in result.failed]
    lines += [f"{step.change.address}: not attempted because something it depends on failed" for step in result.skipped]
    return ProviderError("; ".join(lines) or "apply did not finish")


def _explained(exc: ConfigErrors, config: Configuration | None) -> ProviderError:
    """Configuration errors named by the resource's input property, not by address."""
    lines = []
    for error in exc.errors:
        field = error.field or ""
        for address, resource in (config.resources if config else {}).items():
            prefix = _dotted((address.kind, address.name))
            if field == prefix or field.startswith((prefix + ".", prefix + "[")):
                field = (_dotted(resource.path) + field[len(prefix):]).lstrip(".") or str(address)
                break
        lines.append(f"{field}: {error.message}" if field else error.message)
    return ProviderError("; ".join(lines))


# --- the resources ------------------------------------------------------------------------------


class KindResource(dynamic.Resource):
    """A Prefect object of one kind: `Kind(resource_name, opts=None, **fields)`.

    `fields` are the YAML spec's fields plus the identity inputs; `name` defaults to the resource
    name. Fields of kinds that hold secrets (blocks' `data`) are Pulumi secrets.
    """

    kind_name: ClassVar[str]
    provider_class: ClassVar[type[KindProvider]]

    def __init__(self, resource_name: str, opts: pulumi.ResourceOptions | None = None, **fields: Any) -> None:
        kind = KINDS[self.kind_name]
        taken = sorted(set(fields) & set(outputs_of(kind)))
        if taken:
            raise TypeError(f"{type(self).__name__}: {', '.join(taken)} are outputs, not inputs")
        fields.setdefault("name", resource_name)
        secret = sorted(set(fields) & secret_inputs(kind))
        fields.update({key: pulumi.Output.secret(fields[key]) for key in secret})
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=[*secret, *secret_outputs(kind)]))
        # Pulumi's serialize_provider wraps pickle's _batch_setitems again on every call and never
        # unwraps it: past about 300 dynamic resources in one program, pickling the next provider
        # recurses too deep (RecursionError). Each resource puts the original back.
        batch_setitems = pickle._Pickler._batch_setitems
        try:
            super().__init__(self.provider_class(), resource_name, {**fields, **dict.fromkeys(outputs_of(kind))}, opts)
        finally:
            pickle._Pickler._batch_setitems = batch_setitems


def secret_inputs(kind: ResourceKind) -> set[str]:
    """The spec fields of a kind that can hold secrets: all of them, when it names sensitive paths.

    Which paths are secret may depend on the server (a block type's schema), which a program
    does not ask; so each such field is a secret as a whole.
    """
    if type(kind).sensitive_paths is ResourceKind.sensitive_paths:
        return set()
    return set(kind.spec.model_fields) - {"lifecycle"}


def secret_outputs(kind: ResourceKind) -> list[str]:
    """The outputs that are Pulumi secrets: the state always (it may hold any inner object's
    fingerprints); the recorded attributes where the kind names sensitive paths (fingerprints) or
    the server fills some in (e.g. a webhook's endpoint, which is a credential); issued secrets."""
    if secret_inputs(kind) or kind.computed:
        return ["attributes", "children", "state", *sorted(kind.issued)]
    return ["state", *sorted(kind.issued)]


def _generate() -> dict[str, type]:
    """`<Kind>Provider` and `<Kind>` for every kind declared on its own (not nested in another), as
    module attributes (dill pickles them by name)."""
    classes: dict[str, type] = {}
    for kind in KINDS.values():
        if not kind.declarable:
            continue
        name = class_name(kind)
        overlap = {*kind.identity_inputs, *outputs_of(kind), ADOPT} & set(kind.spec.model_fields)
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
