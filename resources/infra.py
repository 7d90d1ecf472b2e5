"""infra (work_pools.POOL.infra.PART): the cloud objects a work pool's `provision_infra` makes.

Declared only inside a pool. Each part its provisioner (provisioners/) chooses is one resource,
planned, applied, recorded in state and destroyed like any other; this kind hands every call to
the part, resolving the addresses in reference attributes to ids on the way.

The pool depends on the parts whose objects fill its base job template: the template's default
for such a variable is `{"$infra": ADDRESS}` until apply puts the value in (the cluster's ARN, the
VPC's id, the role's ARN, the credentials block's `$ref`). A default may also hold references
inside a list or mapping (an ACI pool's `identities`, `image_registry`), or be a configured value
(a Cloud Run pool's `region`). Live templates say the same: a value that is the output of a part
in state is turned back into its reference, so a part re-created with a new id makes the pool update.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from provisioners import PARTS, ProvisionInfra, provisioner_for
from provisioners.base import INFRA_KIND, INFRA_PARENT, REF, InfraConfig, InfraPart, Sought
from resources.base import Address, ApplyContext, Catalog, Child, Known, Lifecycle, LiveObject, ResourceKind, Spec
from resources.names import check_object_name

MARKER = f".{INFRA_KIND}."  # inside an address; so work pool names may not contain it


class InfraSpec(Spec):
    config: ProvisionInfra


class Infra(ResourceKind):
    kind = INFRA_KIND
    spec = InfraSpec
    identity = "POOL/PART"
    nested_under = INFRA_PARENT
    deleted_with_parent = True  # a part on a replaced part (a subnet of a VPC) is replaced with it
    refers_by_id = True  # parts hold the ids of the parts they name

    def check_name(self, name: str) -> None:
        pool, slash, part = name.rpartition("/")
        if not slash:
            raise ValueError(f"expected {self.identity}")
        check_object_name(pool, "work pool name")
        if part not in PARTS:
            raise ValueError(f"unknown infra part {part!r} (known: {', '.join(PARTS)})")

    def references(self, name: str, spec: InfraSpec) -> list[Address]:
        pool, part = _split(name)
        return [self.address(f"{pool}/{need}") for need in part.needs]

    def server_owned(self, name: str) -> bool:
        return _split(name)[1].server_owned

    def replace_fields_for(self, name: str) -> frozenset[str]:
        return _split(name)[1].replace_fields

    # --- planning ----------------------------------------------------------------------------

    def desired(self, name: str, spec: InfraSpec, defaults) -> dict[str, Any]:
        pool, part = _split(name)
        return part.desired(pool, spec.config)

    def read(self, client, names: set[str], known: Mapping[str, Known]) -> list[LiveObject]:
        by_part: dict[str, list[Sought]] = {}
        for name in sorted(names):
            entry = known.get(name)
            if entry is None or (entry.desired is None and entry.recorded is None):
                continue  # nothing says where to look (an earlier name of a moved resource)
            by_part.setdefault(name.rsplit("/", 1)[1], []).append(Sought(name, entry.desired, entry.id, entry.recorded))
        if not by_part:
            return []
        with ThreadPoolExecutor(max_workers=min(8, len(by_part))) as pool:
            found = [obj for objects in pool.map(lambda item: PARTS[item[0]].read(client, item[1]), by_part.items())
                     for obj in objects]
        # Parts found together name each other, so objects about to be adopted into state refer
        # to each other as the configuration does.
        addresses = {obj.id: self.address(obj.name) for obj in found}
        for obj in found:
            self.name_references(obj, addresses)
        return found

    def list(self, client, names: set[str] | None) -> list[LiveObject]:
        """Parts are found with what configuration and state say of them (`read`), not by name alone."""
        return []

    def name_references(self, obj: LiveObject, addresses: Mapping[str, Address]) -> None:
        for field in _split(obj.name)[1].references:
            value = obj.attributes.get(field)
            if isinstance(value, list):
                obj.attributes[field] = sorted(str(addresses[v]) if v in addresses else v for v in value)
            elif value in addresses:
                obj.attributes[field] = str(addresses[value])

    def adopt_reason(self, obj: LiveObject) -> str | None:
        pool, part = _split(obj.name)
        return part.adopt_reason(pool, obj)

    # --- applying ----------------------------------------------------------------------------

    def create(self, client, name: str, attributes: dict[str, Any], ctx: ApplyContext) -> str:
        pool, part = _split(name)
        return part.create(client, pool, _resolved(part, attributes, ctx))

    def update(self, client, obj_id: str, name: str, attributes: dict[str, Any], before: dict[str, Any], ctx: ApplyContext) -> None:
        pool, part = _split(name)
        part.update(client, obj_id, pool, _resolved(part, attributes, ctx))

    def delete(self, client, obj_id: str, name: str) -> None:
        _split(name)[1].delete(client, obj_id)

    def outputs(self, name: str, obj_id: str, attributes: dict[str, Any]) -> dict[str, Any]:
        return _split(name)[1].outputs(obj_id)


_PARTS_ONLY = Catalog([Infra()])


def parse_part_address(text: str) -> Address:
    """A part's address as attributes hold it (work_pools.POOL.infra.PART)."""
    return _PARTS_ONLY.parse(text)


def _split(name: str) -> tuple[str, InfraPart]:
    pool, _, part = name.rpartition("/")
    return pool, PARTS[part]


def _resolved(part: InfraPart, attributes: dict[str, Any], ctx: ApplyContext) -> dict[str, Any]:
    """The attributes with the parts they name as ids, as the cloud API takes them."""
    resolved = dict(attributes)
    for field in part.references:
        value = attributes[field]
        resolved[field] = [ctx.id_of(v) for v in value] if isinstance(value, list) else ctx.id_of(value)
    return resolved


# --- the pool's side ----------------------------------------------------------------------------


def infra_children(pool: str, config: InfraConfig, lifecycle: Lifecycle) -> list[Child]:
    """The parts of a pool's infrastructure, as child resources (they share the pool's prevent_destroy)."""
    spec = InfraSpec(config=config, lifecycle=Lifecycle(prevent_destroy=lifecycle.prevent_destroy))
    return [Child(INFRA_KIND, f"{pool}/{part.part}", spec, ("provision_infra",)) for part in provisioner_for(config).parts(config)]


def template_defaults(pool: str, config: InfraConfig) -> dict[str, Any]:
    """Base job template variable -> the default the pool's parts give it (references to parts inside)."""
    defaults: dict[str, Any] = {}
    for part in provisioner_for(config).parts(config):
        defaults.update(part.template_defaults(pool, config))
    return defaults


def template_parts(pool: str, config: InfraConfig) -> list[str]:
    """The addresses of the parts whose objects fill the template's defaults."""
    return sorted({address for default in template_defaults(pool, config).values() for address in _references(default)})


def with_infra_defaults(template: dict[str, Any], pool: str, config: InfraConfig) -> dict[str, Any]:
    """The template with the defaults the pool's parts give, holding references to the parts."""
    filled = copy.deepcopy(template)
    properties = (filled.get("variables") or {}).get("properties") or {}
    for variable, default in template_defaults(pool, config).items():
        if isinstance(properties.get(variable), dict):
            properties[variable]["default"] = default
    return filled


def resolved_template(template: dict[str, Any], ctx: ApplyContext) -> dict[str, Any]:
    """The template as the server takes it: each part reference replaced by the part's output."""
    properties = (template.get("variables") or {}).get("properties") or {}
    if not any(_references(p.get("default")) for p in properties.values() if isinstance(p, dict)):
        return template
    resolved = copy.deepcopy(template)
    for prop in resolved["variables"]["properties"].values():
        if isinstance(prop, dict) and "default" in prop:
            prop["default"] = _resolved_default(prop["default"], ctx)
    return resolved


def name_template_outputs(template: dict[str, Any], pool: str, addresses: Mapping[str, Address]) -> None:
    """Turn the outputs of the pool's parts in a live template's defaults back into references."""
    properties = (template.get("variables") or {}).get("properties") or {}
    variables = {v for p in PARTS.values() for v in (p.template_variable, *p.template_variables) if v}
    if not variables & set(properties):
        return
    prefix = pool + "/"
    outputs: dict[str, list[tuple[Any, dict[str, str]]]] = {}  # variable -> (part output, its reference)
    for obj_id, address in addresses.items():
        if address.kind != INFRA_KIND or not address.name.startswith(prefix):
            continue
        part = PARTS.get(address.name[len(prefix):])
        for variable in (part.template_variable, *part.template_variables) if part else ():
            if variable:
                outputs.setdefault(variable, []).append((part.template_value(obj_id), {REF: str(address)}))
    for variable, known in outputs.items():
        prop = properties.get(variable)
        if isinstance(prop, dict) and "default" in prop:
            prop["default"] = _named_default(prop["default"], known)


def _resolved_default(value: Any, ctx: ApplyContext) -> Any:
    if _is_reference(value):
        _, part = _split(parse_part_address(value[REF]).name)
        return part.template_value(ctx.id_of(value[REF]))
    if isinstance(value, dict):
        return {key: _resolved_default(item, ctx) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolved_default(item, ctx) for item in value]
    return value


def _named_default(value: Any, known: list[tuple[Any, dict[str, str]]]) -> Any:
    for output, ref in known:
        if value == output:
            return ref
    if isinstance(value, dict):
        return {key: _named_default(item, known) for key, item in value.items()}
    if isinstance(value, list):
        return [_named_default(item, known) for item in value]
    return value


def _references(value: Any) -> list[str]:
    if _is_reference(value):
        return [value[REF]]
    if isinstance(value, dict):
        return [address for item in value.values() for address in _references(item)]
    if isinstance(value, list):
        return [address for item in value for address in _references(item)]
    return []


def _is_reference(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {REF}
