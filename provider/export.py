"""export: the live workspace as configuration files, plus a state that adopts what they declare.

Secrets are written as `${env.NAME}` placeholders (`${jsondecode(env.NAME)}` for a secret that is
not text, e.g. a mapping); the state keeps their fingerprints, so with the variables set to the
live values the first plan is empty. Base job templates go to JSON files beside the configuration.
"""

from __future__ import annotations

import copy
import io
import itertools
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from provider.client import PrefectClient
from provider.secrets import conceal
from provider.state import Record, State
from resources import CATALOG, KINDS
from resources.base import ServerDefaults


@dataclass
class Export:
    files: dict[str, str] = field(default_factory=dict)  # relative path -> text
    state: State = field(default_factory=State)
    counts: dict[str, int] = field(default_factory=dict)  # kind -> objects exported
    secrets: dict[str, str] = field(default_factory=dict)  # environment variable -> where it goes


def export_workspace(client: PrefectClient, kinds: list[str]) -> Export:
    result = Export()
    with ThreadPoolExecutor(max_workers=min(8, len(kinds)) or 1) as pool:
        listed = dict(zip(kinds, pool.map(lambda kind: KINDS[kind].list(client, None), kinds)))
    exported = {kind: [obj for obj in objs if _exportable(kind, obj.name)] for kind, objs in listed.items()}
    addresses = {obj.id: CATALOG.address(kind, obj.name) for kind, objs in exported.items() for obj in objs}
    defaults = ServerDefaults(client)
    for kind_name, objects in exported.items():
        kind = KINDS[kind_name]
        specs: dict[str, Any] = {}
        for obj in sorted(objects, key=lambda o: o.name):
            kind.name_references(obj, addresses)
            paths = kind.sensitive_paths(obj.name, obj.attributes, defaults)
            spec = kind.to_spec(obj.name, copy.deepcopy(obj.attributes))
            dependencies = _dependencies(kind_name, obj.name, spec, {str(a) for a in addresses.values()})
            externalized, files = kind.externalize(obj.name, spec)
            spec = _escaped(externalized, spec)
            for path in paths:
                variable = _unique(_env_name(obj.name, path), result.secrets)
                placeholder, where = _placeholder(variable, _get(obj.attributes, path))
                _set(spec, path, placeholder)
                result.secrets[variable] = f"{kind_name}.{obj.name} {path}{where}"
            result.files.update(files)
            specs[obj.name] = spec
            attributes, _ = conceal(obj.attributes, paths, result.state.lineage)
            address = f"{kind_name}.{obj.name}"
            result.state.resources[address] = Record(kind_name, obj.name, obj.id, attributes, dependencies)
        if specs:
            result.files[f"{kind_name}.yaml"] = _yaml({kind_name: specs})
            result.counts[kind_name] = len(specs)
    result.state.serial = 1
    return result


def _exportable(kind_name: str, name: str) -> bool:
    """Objects a configuration could declare: not server-owned, with a name the kind accepts."""
    kind = KINDS[kind_name]
    try:
        kind.check_name(name)
    except ValueError:
        return False
    return not kind.server_owned(name)


def _dependencies(kind_name: str, name: str, spec: dict[str, Any], exported: set[str]) -> list[str]:
    """What the exported object refers to, as the configuration will say (for delete ordering)."""
    kind = KINDS[kind_name]
    try:
        parsed = kind.spec.model_validate(spec)
    except ValueError:
        return []
    declared = [str(a) for a in kind.references_if_declared(name, parsed) if str(a) in exported]
    return [str(a) for a in kind.references(name, parsed)] + declared


def _env_name(name: str, path: str) -> str:
    leaf = path.removeprefix("data.")
    return re.sub(r"[^A-Za-z0-9]+", "_", f"{name}_{leaf}").strip("_").upper()


def _unique(variable: str, taken: dict[str, str]) -> str:
    """The variable name, numbered when another secret already has it (`X-Token` and `X_Token`)."""
    candidates = itertools.chain([variable], (f"{variable}_{n}" for n in itertools.count(2)))
    return next(candidate for candidate in candidates if candidate not in taken)


def _placeholder(variable: str, value: Any) -> tuple[str, str]:
    """The expression a secret is exported as, and how to set its variable.

    Text is the variable itself; any other value (a mapping, a list, a number) is the variable's
    JSON text decoded, so it comes back as the same value, not as a string.
    """
    if isinstance(value, str):
        return f"${{env.{variable}}}", ""
    return f"${{jsondecode(env.{variable})}}", ", as JSON"


def _escaped(spec: Any, live: Any) -> Any:
    """The spec with every `${` of live text written `$${`, so it is read back as text, not as an
    expression (a shell command's `${HOME}`). `live` is the spec before externalizing: what export
    wrote itself (`${file(...)}`) differs from it and is kept."""
    if isinstance(spec, dict):
        return {key: _escaped(value, live.get(key) if isinstance(live, dict) else None) for key, value in spec.items()}
    if isinstance(spec, list):
        return [_escaped(value, live[i] if isinstance(live, list) and i < len(live) else None) for i, value in enumerate(spec)]
    if isinstance(spec, str) and spec == live:
        return spec.replace("${", "$${")
    return spec


def _get(attributes: dict[str, Any], path: str) -> Any:
    node: Any = attributes
    for part in path.split("."):
        node = node[part]
    return node


def _set(attributes: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = attributes
    for part in parents:
        node = node[part]
    node[leaf] = value


def _yaml(data: dict[str, Any]) -> str:
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.default_flow_style = False
    yaml.width = 120
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()
