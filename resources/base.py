"""What every resource kind provides to the engine.

The engine knows nothing kind-specific: it asks a kind for its spec model, the addresses a spec
refers to, the normalized attributes it wants, the live objects it finds (in bulk), and to
create, update or delete one object.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from provider.client import PrefectClient


@dataclass(frozen=True, order=True)
class Address:
    """KIND.NAME; a nested kind's OWNER/PART is addressed PARENT_KIND.OWNER.KIND.PART
    (e.g. infra ecs-prod/ecs_cluster is work_pools.ecs-prod.infra.ecs_cluster). Made by a kind
    (`ResourceKind.address`) or a `Catalog`, which know whether the kind is nested."""

    kind: str
    name: str
    parent: str | None = None  # the kind of the object it belongs to, for nested kinds

    def __str__(self) -> str:
        if self.parent:
            owner, _, part = self.name.rpartition("/")
            return f"{self.parent}.{owner}.{self.kind}.{part}"
        return f"{self.kind}.{self.name}"


class FieldError(ValueError):
    """A spec the server would not accept, found while planning; `path` leads to the field at fault."""

    def __init__(self, message: str, *path: str | int):
        super().__init__(message)
        self.path = path


class Lifecycle(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prevent_destroy: bool = False
    ignore_changes: list[str] = Field(default_factory=list)
    create_before_destroy: bool = False


class Spec(BaseModel):
    """Base of every resource spec: unknown fields are errors, not silently dropped."""

    model_config = ConfigDict(extra="forbid")

    lifecycle: Lifecycle = Field(default_factory=Lifecycle, description="Terraform-style lifecycle rules.")


class NoOptions(Spec):
    """The spec of a data source that takes no options (e.g. worker metadata): named, nothing else."""


@dataclass
class LiveObject:
    """An object as read from the server: its id and its normalized attributes."""

    id: str
    name: str
    attributes: dict[str, Any]
    sensitive: list[str] = field(default_factory=list)  # filled by the engine after concealing


@dataclass
class Known:
    """What the engine knows of an object it reads: the attributes configured, its state record."""

    desired: dict[str, Any] | None = None
    id: str | None = None
    recorded: dict[str, Any] | None = None


@dataclass
class Child:
    """A resource declared inside another one (e.g. a pool's inline queues)."""

    kind: str
    name: str
    spec: Any
    path: tuple[str | int, ...]  # where it stands inside the parent's spec, for error locations


@dataclass
class ApplyContext:
    """What an apply step may need besides its own attributes: ids of the objects it refers to."""

    ids: Mapping[str, str] = field(default_factory=dict)  # address -> server id

    def id_of(self, address: Address | str) -> str:
        return self.ids[str(address)]


_progress = threading.local()


@contextlib.contextmanager
def progress_to(report: Callable[[str], None]) -> Iterator[None]:
    """Send `report_progress` messages of this thread (one apply step) to `report` meanwhile."""
    _progress.report = report
    try:
        yield
    finally:
        _progress.report = None


def report_progress(message: str) -> None:
    """A line about a step still under way (e.g. waiting for a cloud); dropped when nobody listens."""
    report = getattr(_progress, "report", None)
    if report is not None:
        report(message)


def find_cloud_features(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str, tuple[str | int, ...]]]:
    """Models marked with a `cloud_feature` class variable (what to call them in messages) in `value`."""
    if isinstance(value, BaseModel):
        feature = getattr(value, "cloud_feature", None)
        if feature:
            yield feature, path
        for name in type(value).model_fields:
            yield from find_cloud_features(getattr(value, name), (*path, name))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from find_cloud_features(item, (*path, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from find_cloud_features(item, (*path, key))


class ResourceKind:
    """One kind of Prefect object. Subclasses fill the class variables and the hooks."""

    kind: ClassVar[str]
    spec: ClassVar[type[Spec]]
    identity: ClassVar[str] = "NAME"  # how a name is spelled, for messages
    # The inputs a Pulumi resource of this kind spells its name with, joined by "/" into the name.
    identity_inputs: ClassVar[tuple[str, ...]] = ("name",)
    replace_fields: ClassVar[frozenset[str]] = frozenset()
    # True when the server deletes these objects together with the object they refer to.
    deleted_with_parent: ClassVar[bool] = False
    # True when these objects hold the server ids of the objects they refer to: when one of those
    # is replaced (and so gets a new id), they are updated to refer to the new one.
    refers_by_id: ClassVar[bool] = False
    # True when the server can rename an object in place (`moved` entries rename, never re-create).
    renamable: ClassVar[bool] = False
    # False when the server allows several objects with one name, which is what lets
    # `create_before_destroy` create the replacement while the old object still exists.
    unique_names: ClassVar[bool] = True
    # True when the whole kind exists only in Prefect Cloud (e.g. webhooks): refused at plan time
    # against an open-source server, before anything is read or written.
    cloud_only: ClassVar[bool] = False
    # Attributes the server fills in (e.g. a webhook's endpoint): shown and recorded in state,
    # never compared, so they cause no diff; "(known after apply)" until the object is written.
    computed: ClassVar[frozenset[str]] = frozenset()
    # Secrets the server issues once, when the object is written (a service account's API key):
    # among `outputs` only right after that apply, never in state; the CLI prints them once, and a
    # Pulumi resource keeps them as secret output properties of these names.
    issued: ClassVar[frozenset[str]] = frozenset()
    # Attributes the server chooses when the configuration leaves them unset (e.g. a work queue's
    # priority): unset means "whatever the server chose", so the live value is kept and recorded;
    # set, they are compared like any other.
    server_filled: ClassVar[frozenset[str]] = frozenset()
    # The kind whose objects these belong to (e.g. infra parts to their work pool): declared only
    # inside the parent's spec (as children), addressed under it.
    nested_under: ClassVar[str | None] = None
    # True for what can only be read (`data:`), never declared as a resource (e.g. worker metadata).
    data_only: ClassVar[bool] = False
    # False for objects that belong to a person rather than to the workspace or account (a user's
    # own API keys): `export` writes them only when asked for by `--kinds`.
    exported_by_default: ClassVar[bool] = True

    @property
    def declarable(self) -> bool:
        """Whether a configuration may declare these at the top level (not nested, not read-only)."""
        return not self.nested_under and not self.data_only

    def deleted_with(self, parent: Address) -> bool:
        """Whether the server deletes this object when `parent`, an object it depends on, is
        deleted (`deleted_with_parent` by default, whichever the parent)."""
        return self.deleted_with_parent

    def replace_fields_for(self, name: str) -> frozenset[str]:
        """The attributes whose change re-creates this object (the kind's `replace_fields` by default)."""
        return self.replace_fields

    def address(self, name: str) -> Address:
        return Address(self.kind, name, self.nested_under)

    # --- configuration -----------------------------------------------------------------------

    def check_name(self, name: str) -> None:
        """Raise ValueError when `name` is not a valid identity for this kind."""
        if not name or "/" in name:
            raise ValueError(f"expected {self.identity}")

    def children(self, name: str, spec: Spec) -> Iterable[Child]:
        return ()

    def references(self, name: str, spec: Spec) -> Iterable[Address]:
        """Addresses this resource depends on; they must exist in the configuration."""
        return ()

    def references_if_declared(self, name: str, spec: Spec) -> Iterable[Address]:
        """Addresses this resource depends on when the configuration declares them (e.g. a
        deployment's flow, which is otherwise made implicitly); undeclared, they are no error."""
        return ()

    def declare(self, name: str, spec: Spec, defaults: ServerDefaults) -> None:
        """Tell `defaults`, before any desired attributes are computed, what this declared resource
        will make exist on the server (e.g. a block type's schema, which its blocks are checked against)."""

    def ordering(self, specs: Mapping[str, Spec]) -> Iterable[tuple[str, str]]:
        """Extra (name, must-come-after-name) pairs among resources of this kind."""
        return ()

    def server_owned(self, name: str) -> bool:
        """Objects the server creates and owns: adopted instead of created, never deleted."""
        return False

    def exportable(self, name: str) -> bool:
        """Whether `export` writes this object: by default not one the server owns (a pool's default
        queue, a built-in role), which a configuration has no need to declare."""
        return not self.server_owned(name)

    def cloud_features(self, name: str, spec: Spec) -> Iterable[tuple[str, tuple[str | int, ...]]]:
        """The Prefect Cloud-only parts of a spec, as (feature, path in the spec) pairs.

        By default: every model in the spec whose class names a `cloud_feature` (e.g. metric
        triggers), found wherever it is nested.
        """
        return find_cloud_features(spec)

    # --- planning ----------------------------------------------------------------------------

    def desired(self, name: str, spec: Spec, defaults: ServerDefaults) -> dict[str, Any]:
        """The normalized attributes the configuration asks for."""
        return spec.model_dump(exclude={"lifecycle"}, mode="json")

    def server_default(self, name: str, spec: Spec, defaults: ServerDefaults) -> dict[str, Any] | None:
        """The attribute a new object takes from a server default, with the default as the server
        gives it (before the configuration fills values in): {"attribute", "label", "value"}, or None.
        Plans show such an attribute as the label and what differs from the default."""
        return None

    def sensitive_paths(self, name: str, attributes: dict[str, Any], defaults: ServerDefaults) -> list[str]:
        """Dotted attribute paths holding secrets: fingerprinted in plans and state, never shown."""
        return []

    def deletion_refused(self, client: PrefectClient, obj_id: str, name: str, deleting: set[str]) -> str | None:
        """Why this live object must not be deleted or replaced by a plan that deletes or replaces
        the addresses `deleting` (e.g. the server would delete objects the plan keeps with it);
        None (the default) when it may. Asked only for objects the plan deletes or replaces."""
        return None

    def list(self, client: PrefectClient, names: set[str] | None) -> list[LiveObject]:
        """Live objects of this kind among `names` (every one when None: `export`), read through
        bulk filter endpoints."""
        raise NotImplementedError

    def read(self, client: PrefectClient, names: set[str], known: Mapping[str, Known]) -> list[LiveObject]:
        """Live objects among `names`; `known` says, by name, what configuration and state know of
        each, for kinds whose objects are not found by name alone (e.g. cloud objects by region).
        Found by name (`list`) by default."""
        return self.list(client, names)

    def left_to_server(self, desired: Mapping[str, Any]) -> list[str]:
        """Attributes never compared with what is desired: computed ones, and server-filled ones
        the configuration leaves unset."""
        return [*self.computed, *(f for f in sorted(self.server_filled) if desired.get(f) is None)]

    def same_object(self, obj: LiveObject, attributes: dict[str, Any]) -> bool:
        """Whether a live object whose id is not the recorded one is still the object these
        (recorded or desired) attributes describe, e.g. a deployment's trigger automation that
        `prefect deploy` re-created for the same deployment. By default the id alone identifies."""
        return False

    def adopt_reason(self, obj: LiveObject) -> str | None:
        """Why a live object not in state is taken into state rather than refused as unmanaged
        (e.g. it carries this configuration's tag); None (the default): it is refused."""
        return None

    def name_references(self, obj: LiveObject, addresses: Mapping[str, Address]) -> None:
        """Replace the server ids a live object holds with the names of the objects they refer to.

        Desired attributes name other resources as the configuration does; `addresses` maps the
        id of every object in state to its address, so live attributes can say the same.
        """

    # --- applying ----------------------------------------------------------------------------

    def create(self, client: PrefectClient, name: str, attributes: dict[str, Any], ctx: ApplyContext) -> str:
        raise NotImplementedError

    def update(
        self,
        client: PrefectClient,
        obj_id: str,
        name: str,
        attributes: dict[str, Any],
        before: dict[str, Any],
        ctx: ApplyContext,
    ) -> None:
        """Make the object match `attributes`; `before` is its live state (send only what differs)."""
        raise NotImplementedError

    def delete(self, client: PrefectClient, obj_id: str, name: str) -> None:
        raise NotImplementedError

    def delete_known(self, client: PrefectClient, obj_id: str, name: str, before: dict[str, Any]) -> None:
        """Delete an object the plan read as `before`: for kinds whose objects are not one server
        object with an id (e.g. a workspace access grant, which is the grants of the actors it names)."""
        self.delete(client, obj_id, name)

    def to_spec(self, name: str, attributes: dict[str, Any]) -> dict[str, Any]:
        """For `export`: the configuration spec that asks for these (live) attributes."""
        return {key: value for key, value in attributes.items() if value is not None and key not in self.computed}

    def outputs(self, name: str, obj_id: str, attributes: dict[str, Any]) -> dict[str, Any]:
        """Values shown after an apply that wrote the object: its computed attributes by default."""
        return {key: attributes.get(key) for key in sorted(self.computed)}

    def externalize(self, name: str, spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """For `export`: move large values of an exported spec into files; (spec, path -> text)."""
        return spec, {}

    def rename(
        self, client: PrefectClient, obj_id: str, new_name: str, attributes: dict[str, Any], ctx: ApplyContext
    ) -> None:
        """Give the object a new name, keeping its id."""
        raise NotImplementedError


class Catalog:
    """The resource kinds an engine works with, by name; it parses and spells their addresses.

    Passed to the engine rather than looked up in a global, so tests can give it kinds of their own.
    """

    def __init__(self, kinds: Iterable[ResourceKind]):
        self.kinds: dict[str, ResourceKind] = {kind.kind: kind for kind in kinds}

    def __getitem__(self, kind: str) -> ResourceKind:
        return self.kinds[kind]

    def __contains__(self, kind: object) -> bool:
        return kind in self.kinds

    def address(self, kind: str, name: str) -> Address:
        known = self.kinds.get(kind)
        return known.address(name) if known else Address(kind, name)

    def parse(self, text: str) -> Address:
        """KIND.NAME, or PARENT_KIND.OWNER.KIND.PART for a nested kind; the kind is not checked."""
        for kind in self.kinds.values():
            parent = kind.nested_under
            if parent and text.startswith(parent + "."):
                owner, marker, part = text.removeprefix(parent + ".").rpartition(f".{kind.kind}.")
                if marker and owner and part and "." not in part:
                    return kind.address(f"{owner}/{part}")
        kind, dot, name = text.partition(".")
        if not dot or not kind or not name:
            raise ValueError(f"{text!r} is not an address: expected KIND.NAME, e.g. work_pools.my-pool")
        return self.address(kind, name)


def name_filter(field: str, names: Iterable[str] | None) -> dict[str, Any]:
    """A filter body part restricting `field` to `names`; empty (no restriction) for None."""
    return {} if names is None else {field: {"name": {"any_": sorted(names)}}}


def list_named(client: PrefectClient, path: str, field: str, names: set[str] | None) -> list[dict[str, Any]]:
    """Every object `path` lists, or only those named `names` (names unique on the server), asked
    for a page of names per request: the whole name list sent with every page of a listing costs
    the server time quadratic in it (5x the listing at 6,000 variables on SQLite)."""
    from provider.client import PAGE_SIZE

    if names is None:
        return client.filter(path)
    ordered = sorted(names)
    return [found for start in range(0, len(ordered), PAGE_SIZE)
            for found in client.post(path, {**name_filter(field, ordered[start:start + PAGE_SIZE]), "limit": PAGE_SIZE})]


# Reads in flight at once where a server reads one object per request (Cloud's access lists, a
# team's members, a deployment's SLAs): its latency, not the objects, sets the time of a plan.
READ_AT_ONCE = 8


def read_each(read: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
    """`read(item)` of every item, READ_AT_ONCE at a time, in the items' order."""
    items = list(items)
    if len(items) < 2:
        return [read(item) for item in items]
    with ThreadPoolExecutor(max_workers=READ_AT_ONCE) as pool:
        return list(pool.map(read, items))


def wanted(name: str, names: set[str] | None) -> bool:
    return names is None or name in names


class ServerDefaults:
    """Server-provided defaults, fetched once per plan and only when a kind asks for them."""

    def __init__(self, client: PrefectClient | None):
        self.client = client
        self._worker_metadata: dict[str, Any] | None = None
        self._block_schemas: dict[str, dict[str, Any]] | None = None
        # Schemas of the block types the configuration declares, by slug: they win over the server's.
        self.declared_block_schemas: dict[str, dict[str, Any]] = {}
        self._variables: dict[str, Any] = {}
        self._blocks: dict[tuple[str, str], tuple[dict[str, Any], list[str]] | None] = {}
        # Attribute paths that took their value from a secret on the server, by address (filled by
        # `desired`, read by `sensitive_paths`, so live attributes are concealed at the same paths).
        self.secret_paths: dict[str, list[str]] = {}
        # The addresses the configuration declares (set by the engine before any desired attributes
        # are computed): what a reference may name before it exists on the server.
        self.declared: set[str] = set()

    def base_job_template(self, pool_type: str) -> dict[str, Any]:
        """The server's default base job template for a work pool type (`{}` when it has none).

        Push (`ecs:push`) and managed pool types share the template of their worker type.
        """
        if self.client is None:
            return {}
        if self._worker_metadata is None:
            self._worker_metadata = self.client.get("/collections/views/aggregate-worker-metadata")
        worker_type = pool_type.split(":", 1)[0]
        for collection in self._worker_metadata.values():
            for worker in collection.values():
                if worker.get("type") == worker_type:
                    return worker.get("default_base_job_configuration") or {}
        return {}

    def block_schema(self, type_slug: str) -> dict[str, Any] | None:
        """The newest block schema of a block type (None when the server has no such type); the
        declared one when the configuration declares the type (it is the newest once applied).

        All schemas are read in one listing, the first time any is asked for.
        """
        if type_slug in self.declared_block_schemas:
            return self.declared_block_schemas[type_slug]
        if self.client is None:
            return None
        if self._block_schemas is None:
            newest: dict[str, dict[str, Any]] = {}
            for schema in self.client.iter_filter("/block_schemas/filter"):
                newest.setdefault(schema["block_type"]["slug"], schema)  # listed newest first
            self._block_schemas = newest
        return self._block_schemas.get(type_slug)

    def variable(self, name: str) -> Any:
        """A variable's value; provider.templating.NOT_SET when the server has none."""
        from provider.errors import NotFound
        from provider.templating import NOT_SET

        if name not in self._variables:
            try:
                self._variables[name] = self.client.get(f"/variables/name/{name}")["value"] if self.client else NOT_SET
            except NotFound:
                self._variables[name] = NOT_SET
        return self._variables[name]

    def block_document(self, type_slug: str, name: str) -> tuple[dict[str, Any], list[str]] | None:
        """A block document's data (secrets in clear) and the dotted paths of its secret fields."""
        from provider.errors import NotFound

        key = (type_slug, name)
        if key not in self._blocks:
            try:
                document = self.client.get(
                    f"/block_types/slug/{type_slug}/block_documents/name/{name}", include_secrets="true"
                ) if self.client else None
            except NotFound:
                document = None
            self._blocks[key] = None if document is None else (
                document.get("data") or {},
                list((document.get("block_schema") or {}).get("fields", {}).get("secret_fields") or []),
            )
        return self._blocks[key]
