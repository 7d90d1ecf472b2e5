"""export: the live workspace as configuration files, plus a state that adopts what they declare.

Secrets are written as `${env.NAME}` placeholders (the state keeps their fingerprints, so with
the variables set to the live values the first plan is empty); base job templates go to JSON
files beside the configuration.
"""

from __future__ import annotations

import copy
import io
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from provider.client import PrefectClient
from provider.secrets import conceal
from provider.state import Record, State
from resources import KINDS
from resources.base import Address, ServerDefaults


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
    addresses = {obj.id: Address(kind, obj.name) for kind, objs in exported.items() for obj in objs}
    defaults = ServerDefaults(client)
    for kind_name, objects in exported.items():
        kind = KINDS[kind_name]
        specs: dict[str, Any] = {}
        for obj in sorted(objects, key=lambda o: o.name):
            kind.name_references(obj, addresses)
            paths = kind.sensitive_paths(obj.name, obj.attributes, defaults)
            spec = kind.to_spec(obj.name, copy.deepcopy(obj.attributes))
            for path in paths:
                variable = _env_name(obj.name, path)
                _set(spec, path, f"${{env.{variable}}}")
                result.secrets[variable] = f"{kind_name}.{obj.name} {path}"
            dependencies = _dependencies(kind_name, obj.name, spec)
            spec, files = kind.externalize(obj.name, spec)
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


def _dependencies(kind_name: str, name: str, spec: dict[str, Any]) -> list[str]:
    """What the exported object refers to, as the configuration will say (for delete ordering)."""
    try:
        parsed = KINDS[kind_name].spec.model_validate(spec)
    except ValueError:
        return []
    return [str(a) for a in KINDS[kind_name].references(name, parsed)]


def _env_name(name: str, path: str) -> str:
    leaf = path.removeprefix("data.")
    return re.sub(r"[^A-Za-z0-9]+", "_", f"{name}_{leaf}").strip("_").upper()


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
