"""export: the live workspace as configuration files, plus a state that adopts what they declare;
or as a Pulumi program whose resources adopt them (`export_pulumi_program`).

Secrets are written as `${env.NAME}` placeholders (`${jsondecode(env.NAME)}` for a secret that is
not text, e.g. a mapping); the state keeps their fingerprints, so with the variables set to the
live values the first plan is empty. Base job templates go to JSON files beside the configuration.
"""

from __future__ import annotations

import copy
import heapq
import io
import itertools
import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from provider.client import PrefectClient
from provider.secrets import conceal
from provider.state import Record, State
from resources import CATALOG, KINDS
from resources.base import LiveObject, ServerDefaults


@dataclass
class Export:
    files: dict[str, str] = field(default_factory=dict)  # relative path -> text
    state: State = field(default_factory=State)
    counts: dict[str, int] = field(default_factory=dict)  # kind -> objects exported
    secrets: dict[str, str] = field(default_factory=dict)  # environment variable -> where it goes


def export_workspace(client: PrefectClient, kinds: list[str]) -> Export:
    result = Export()
    for kind_name, objects in _listed(client, kinds).items():
        kind = KINDS[kind_name]
        specs: dict[str, Any] = {}
        for obj, spec, paths, dependencies in objects:
            externalized, files = kind.externalize(obj.name, spec)
            spec = _escaped(externalized, spec)
            for path in paths:
                variable = _secret_variable(kind_name, obj, path, result.secrets)
                _set(spec, path, _placeholder(variable, _get(obj.attributes, path)))
            result.files.update(files)
            specs[obj.name] = spec
            attributes, _ = conceal(obj.attributes, paths, result.state.lineage)
            address = f"{kind_name}.{obj.name}"
            result.state.resources[address] = Record(kind_name, obj.name, obj.id, attributes, dependencies)
        if specs:
            result.files[f"{kind_name}.yaml"] = _yaml({kind_name: specs})
            result.counts[kind_name] = len(specs)
    # What the exported objects refer to but the export does not hold (e.g. the deployment an
    # access list is for, with `--kinds object_access`) is read as data, so the configuration plans.
    data: dict[str, dict[str, dict[str, Any]]] = {}
    for record in list(result.state.resources.values()):
        for dependency in record.dependencies:
            if dependency not in result.state.resources:
                address = CATALOG.parse(dependency)
                data.setdefault(address.kind, {})[address.name] = {}
    if data:
        result.files["data.yaml"] = _yaml({"data": {kind: dict(sorted(names.items())) for kind, names in sorted(data.items())}})
    result.state.serial = 1
    return result


def _listed(client: PrefectClient, kinds: list[str]) -> dict[str, list[tuple[LiveObject, dict[str, Any], list[str], list[str]]]]:
    """Kind -> (object, spec, secret paths, dependencies) of every exportable object, by name; the ids
    of other objects an object holds are replaced by their names, as a configuration refers to them."""
    with ThreadPoolExecutor(max_workers=min(8, len(kinds)) or 1) as pool:
        listed = dict(zip(kinds, pool.map(lambda kind: KINDS[kind].list(client, None), kinds)))
    exported = {kind: [obj for obj in objs if _exportable(kind, obj.name)] for kind, objs in listed.items()}
    addresses = {obj.id: CATALOG.address(kind, obj.name) for kind, objs in exported.items() for obj in objs}
    exported_addresses = {str(address) for address in addresses.values()}
    defaults = ServerDefaults(client)
    result: dict[str, list[tuple[LiveObject, dict[str, Any], list[str], list[str]]]] = {}
    for kind_name, objects in exported.items():
        kind = KINDS[kind_name]
        result[kind_name] = []
        for obj in sorted(objects, key=lambda o: o.name):
            kind.name_references(obj, addresses)
            paths = kind.sensitive_paths(obj.name, obj.attributes, defaults)
            spec = kind.to_spec(obj.name, copy.deepcopy(obj.attributes))
            result[kind_name].append((obj, spec, paths, _dependencies(kind_name, obj.name, spec, exported_addresses)))
    return result


def _secret_variable(kind_name: str, obj: LiveObject, path: str, secrets: dict[str, str]) -> str:
    """The environment variable a secret is read from, recorded in `secrets` with where it goes."""
    variable = _unique(_env_name(obj.name, path), secrets)
    as_json = "" if isinstance(_get(obj.attributes, path), str) else ", as JSON"
    secrets[variable] = f"{kind_name}.{obj.name} {path}{as_json}"
    return variable


def _exportable(kind_name: str, name: str) -> bool:
    """Objects a configuration could declare: exportable (not server-owned, by default), with a name the kind accepts."""
    kind = KINDS[kind_name]
    try:
        kind.check_name(name)
    except ValueError:
        return False
    return kind.exportable(name)


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


def _placeholder(variable: str, value: Any) -> str:
    """The expression a secret is exported as: text is the variable itself; any other value (a
    mapping, a list, a number) is the variable's JSON text decoded, so it comes back as the same
    value, not as a string."""
    if isinstance(value, str):
        return f"${{env.{variable}}}"
    return f"${{jsondecode(env.{variable})}}"


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


# --- a Pulumi program ---------------------------------------------------------------------------

LINE_WIDTH = 100  # a value that does not fit on its line takes a line an entry
PULUMI_YAML = """\
name: prefect-workspace
description: A Prefect workspace exported by `prefect-provider export --pulumi`
runtime:
  name: python
  options:
    toolchain: pip
    virtualenv: venv
"""
REQUIREMENTS = "pulumi>=3.120,<4\nprefect-provider[pulumi]\n"


class Code(str):
    """Python source written as it is into a value of the program (an output, a secret read)."""


@dataclass
class Declared:
    """One exported object as a resource of the program."""

    address: str
    class_name: str
    variable: str
    inputs: dict[str, Any]
    dependencies: list[str]


def export_pulumi_program(client: PrefectClient, kinds: list[str]) -> Export:
    """The live workspace as a Pulumi program: every object a resource with `adopt=True`, so the
    first `pulumi up` takes the objects into the stack and changes nothing.

    Its specs, secret variables and externalized files are those of the YAML export; secrets are
    read from the environment (`os.environ`), files with `json.load`. A reference to another
    exported object is that resource's `name` output where the input names the object itself (a
    queue's `work_pool`), otherwise a `depends_on`, so Pulumi orders them.
    """
    result = Export()
    declared: list[Declared] = []
    taken: set[str] = set()
    for kind_name, objects in _listed(client, kinds).items():
        kind = KINDS[kind_name]
        for obj, spec, paths, dependencies in objects:
            spec, files = kind.externalize(obj.name, spec)
            spec = _read_from_files(spec, files)
            for path in paths:
                variable = _secret_variable(kind_name, obj, path, result.secrets)
                _set(spec, path, _environment_read(variable, _get(obj.attributes, path)))
            result.files.update(files)
            identity = dict(zip(kind.identity_inputs, obj.name.split("/", len(kind.identity_inputs) - 1)))
            variable = _unique_identifier(f"{kind_name.removesuffix('s')}_{obj.name}", taken)  # work_pool_etl
            declared.append(Declared(f"{kind_name}.{obj.name}", _class_name(kind_name), variable, {**identity, **spec},
                                     dependencies))
            result.counts[kind_name] = result.counts.get(kind_name, 0) + 1
    result.files["__main__.py"] = _program(_in_dependency_order(declared), result.secrets, result.files)
    result.files["Pulumi.yaml"] = PULUMI_YAML
    result.files["requirements.txt"] = REQUIREMENTS
    return result


def _read_from_files(spec: Any, files: dict[str, str]) -> Any:
    """The spec with each `${file("PATH")}` that externalizing wrote read back with `json.load`."""
    if isinstance(spec, dict):
        return {key: _read_from_files(value, files) for key, value in spec.items()}
    if isinstance(spec, list):
        return [_read_from_files(value, files) for value in spec]
    for path in files:
        if spec == f'${{file("{path}")}}':
            return Code(f"from_json({json.dumps(path)})")
    return spec


def _environment_read(variable: str, value: Any) -> Code:
    if isinstance(value, str):
        return Code(f'os.environ["{variable}"]')
    return Code(f'json.loads(os.environ["{variable}"])')


def _class_name(kind_name: str) -> str:
    """work_pools -> WorkPool, as provider/pulumi.py names its classes (that module needs pulumi)."""
    return "".join(part.capitalize() for part in kind_name.removesuffix("s").split("_"))


def _unique_identifier(text: str, taken: set[str]) -> str:
    """A valid Python identifier for `text` (lowercase, `_` between words), numbered when taken."""
    base = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    identifier = next(c for c in itertools.chain([base], (f"{base}_{n}" for n in itertools.count(2))) if c not in taken)
    taken.add(identifier)
    return identifier


def _in_dependency_order(declared: list[Declared]) -> list[Declared]:
    """The resources with each after those it refers to, otherwise in the order given (kind by kind,
    by name); a cycle (automations that refer to each other) is broken at its first resource."""
    position = {d.address: i for i, d in enumerate(declared)}
    waiting = [{a for a in d.dependencies if a in position and a != d.address} for d in declared]
    dependents: dict[str, list[int]] = {}
    for i, addresses in enumerate(waiting):
        for address in addresses:
            dependents.setdefault(address, []).append(i)
    ready = [i for i, addresses in enumerate(waiting) if not addresses]
    heapq.heapify(ready)
    ordered: list[Declared] = []
    placed: set[int] = set()
    while len(ordered) < len(declared):
        if not ready:
            heapq.heappush(ready, min(i for i in range(len(declared)) if i not in placed))
        i = heapq.heappop(ready)
        if i in placed:
            continue
        placed.add(i)
        ordered.append(declared[i])
        for j in dependents.get(declared[i].address, []):
            waiting[j].discard(declared[i].address)
            if not waiting[j] and j not in placed:
                heapq.heappush(ready, j)
    return ordered


def _program(declared: list[Declared], secrets: dict[str, str], files: dict[str, str]) -> str:
    body: list[str] = []
    variables: dict[str, str] = {}  # address -> the variable of its resource, once declared
    section = None
    for resource in declared:
        kind_name = resource.address.split(".", 1)[0]
        if kind_name != section:
            section = kind_name
            body += ["", "", f"# --- {kind_name}"]
        body += ["", *_declaration(resource, variables)]
        variables[resource.address] = resource.variable
    lines = [
        '"""A Prefect workspace, exported by `prefect-provider export --pulumi`.',
        "",
        "Every resource has adopt=True: the first `pulumi up` takes the objects that exist into the",
        "stack, by name, without creating anything.",
    ]
    lines += ['"""', ""]
    if secrets:
        lines += ["# Secrets are read from these environment variables; set them before `pulumi up`:"]
        width = max(map(len, secrets))
        lines += [f"#   {variable:<{width}}  {_one_line(where)}" for variable, where in sorted(secrets.items())]
        lines += [""]
    standard = [*(["import json"] if secrets or files else []), *(["import os"] if secrets else []),
                *(["from pathlib import Path"] if files else [])]
    third_party = ["import pulumi"] if any("pulumi.ResourceOptions" in line for line in body) else []
    ours = [f"from provider.pulumi import {', '.join(sorted({d.class_name for d in declared}))}"] if declared else []
    lines += "\n\n".join("\n".join(group) for group in (standard, third_party, ours) if group).split("\n")
    if files:
        lines += [
            "", "",
            "def from_json(path):",
            '    """A large value exported beside this program."""',
            "    with open(Path(__file__).parent / path) as file:",
            "        return json.load(file)",
        ]
    return "\n".join(lines + body) + "\n"


def _one_line(text: str) -> str:
    """`text` fit for a comment: a name or key may hold any character, and a line break ends it."""
    return re.sub(r"[\x00\r\n]", " ", text)


def _declaration(resource: Declared, variables: dict[str, str]) -> list[str]:
    """`variable = Class("name", input=..., adopt=True)`, references written as outputs or
    `depends_on`."""
    inputs = dict(resource.inputs)
    after = []
    for address in resource.dependencies:
        kind_name, _, name = address.partition(".")
        variable = variables.get(address)
        if variable is None:
            continue  # not exported, or declared later (a cycle): the name stays as it is
        field_name = kind_name.removesuffix("s")  # work_pools -> work_pool
        if inputs.get(field_name) == name:
            inputs[field_name] = Code(f"{variable}.name")
        else:
            after.append(variable)
    arguments = [_literal(resource.address.split(".", 1)[1], 1)]
    arguments += [f"{key}={_literal(value, 1, len(key) + 1)}" for key, value in inputs.items()]
    arguments += ["adopt=True"]
    if after:
        arguments += [f"opts=pulumi.ResourceOptions(depends_on=[{', '.join(after)}])"]
    return [f"{resource.variable} = {resource.class_name}(", *(f"    {argument}," for argument in arguments), ")"]


def _literal(value: Any, depth: int, before: int = 0) -> str:
    """`value` as Python source at indentation `depth`, after `before` characters of its line: on
    that line where it fits, otherwise one entry a line with a trailing comma."""
    if isinstance(value, Code):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a Python string literal
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    if isinstance(value, dict):
        keys = {key: _literal(key, depth + 1) for key in value}
        entries = [f"{keys[k]}: {_literal(v, depth + 1, len(keys[k]) + 2)}" for k, v in value.items()]
        opening, closing = "{", "}"
    else:
        entries, opening, closing = [_literal(item, depth + 1) for item in value], "[", "]"
    one_line = opening + ", ".join(entries) + closing
    if "\n" not in one_line and 4 * depth + before + len(one_line) + 1 <= LINE_WIDTH:
        return one_line
    pad = "    " * depth
    return opening + "\n" + "".join(f"{pad}    {entry},\n" for entry in entries) + pad + closing
