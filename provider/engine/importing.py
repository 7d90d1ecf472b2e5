"""`import`: adopting an existing object into state for a declared address."""

from __future__ import annotations

from provider.client import PrefectClient
from provider.config import Configuration, Resource
from provider.engine.planning import cloud_refusal, desired_attributes, state_addresses
from provider.errors import PlanError
from provider.secrets import conceal
from provider.state import Record, State
from resources import CATALOG
from resources.base import Address, Catalog, Known, ServerDefaults


def declared_resource(config: Configuration | None, address: Address) -> Resource:
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


def import_object(config: Configuration | None, state: State, client: PrefectClient, address: Address, id_or_name: str,
                  catalog: Catalog = CATALOG) -> Record:
    """The state record adopting an existing object, read from the server as it is now."""
    kind = catalog.kinds.get(address.kind)
    if kind is None:
        raise PlanError(f"{address}: unknown kind {address.kind!r} (expected one of: {', '.join(catalog.kinds)})")
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
    desired = desired_attributes({address: resource}, defaults, state.lineage, catalog).attributes
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
    kind.name_references(obj, state_addresses(state, catalog))
    attributes, _ = conceal(obj.attributes, kind.sensitive_paths(obj.name, obj.attributes, defaults), state.lineage)
    dependencies = [str(a) for a in resource.depends_on]
    return Record(address.kind, address.name, obj.id, attributes, dependencies, resource.spec.lifecycle.prevent_destroy)
