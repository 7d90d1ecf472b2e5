"""blocks (TYPE_SLUG/NAME): a named block document, its data checked against the type's schema.

The newest block schema of the type, read from the server, tells which fields exist, which are
required, what type each takes (checked at plan time as Prefect validates block data), which hold
other blocks and which are secret. Secret fields are the kind's sensitive
paths: they are fingerprinted in plans and state, and read back with `include_secrets` so a secret
changed on the server shows as drift. A field holding another block is written
`{"$ref": "TYPE_SLUG/NAME"}`; the server stores the reference by id and returns the referenced
document inline, which the live view turns back into the same `$ref`.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any
from urllib.parse import quote

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from pydantic import Field, JsonValue, field_validator
from pydantic_core import PydanticCustomError
from referencing import Registry

from resources.base import Address, ApplyContext, FieldError, LiveObject, ResourceKind, ServerDefaults, Spec, wanted
from resources.names import split_pair

IDENTITY = "TYPE_SLUG/NAME"
# The server accepts only these characters in block type slugs and block document names.
SLUG_OR_NAME = re.compile(r"^[a-z0-9-]+$")
REF = "$ref"


class BlockSpec(Spec):
    data: dict[str, JsonValue] = Field(
        default_factory=dict,
        description=(
            "The block's fields, checked against the newest schema of its type. "
            'A field holding another block is written {"$ref": "TYPE_SLUG/NAME"}.'
        ),
    )

    @field_validator("data")
    @classmethod
    def _check_references(cls, data: dict[str, Any]) -> dict[str, Any]:
        for key, value in data.items():
            if _is_reference(value):
                target = value[REF]
                if not isinstance(target, str) or len(value) != 1:
                    raise PydanticCustomError("block_reference", f'{key}: a block reference is written {{"$ref": "{IDENTITY}"}}')
                try:
                    _check_identity(target)
                except ValueError as exc:
                    raise PydanticCustomError("block_reference", f"{key}: {exc}") from None
            elif _holds_reference(value):
                # The server only resolves references that are top-level fields of the data.
                raise PydanticCustomError("block_reference", f"{key}: a $ref is only possible as the whole value of a top-level field")
        return data


class Blocks(ResourceKind):
    kind = "blocks"
    spec = BlockSpec
    identity = IDENTITY
    identity_inputs = ("block_type_slug", "name")
    refers_by_id = True  # the server stores a `$ref` as the referenced document's id

    def check_name(self, name: str) -> None:
        _check_identity(name)

    def references(self, name: str, spec: BlockSpec) -> list[Address]:
        return [Address(self.kind, value[REF]) for value in spec.data.values() if _is_reference(value)]

    def references_if_declared(self, name: str, spec: BlockSpec) -> list[Address]:
        return [Address("block_types", name.split("/", 1)[0])]  # a declared type is registered first

    # --- planning ----------------------------------------------------------------------------

    def desired(self, name: str, spec: BlockSpec, defaults: ServerDefaults) -> dict[str, Any]:
        slug = name.split("/", 1)[0]
        if defaults.client is not None:
            schema = defaults.block_schema(slug)
            if schema is None:
                raise FieldError(f"the server has no block type {slug!r}")
            _check_data(slug, spec.data, schema)
        return {"data": spec.data}

    def sensitive_paths(self, name: str, attributes: dict[str, Any], defaults: ServerDefaults) -> list[str]:
        schema = defaults.block_schema(name.split("/", 1)[0])
        if schema is None:
            return []
        data = attributes.get("data") or {}
        paths: list[str] = []
        for secret in dict.fromkeys(schema["fields"].get("secret_fields") or []):
            paths += [".".join(["data", *parts]) for parts in _secret_leaves(data, secret.split(".")) if _holds_value(data, parts)]
        return paths

    def list(self, client, names: set[str] | None) -> list[LiveObject]:
        body: dict[str, Any] = {
            "block_documents": {"is_anonymous": {"eq_": False}},
            "include_secrets": True,  # the engine fingerprints them, so a changed secret is drift
        }
        if names is not None:
            pairs = [name.split("/", 1) for name in names]
            body["block_documents"]["name"] = {"any_": sorted({n for _, n in pairs})}
            body["block_types"] = {"slug": {"any_": sorted({s for s, _ in pairs})}}
        found = []
        for document in client.filter("/block_documents/filter", body):
            name = f"{document['block_type']['slug']}/{document['name']}"
            if wanted(name, names):
                found.append(LiveObject(id=document["id"], name=name, attributes={"data": _live_data(document)}))
        return found

    # --- applying ----------------------------------------------------------------------------

    def create(self, client, name: str, attributes: dict[str, Any], ctx: ApplyContext) -> str:
        slug, document_name = name.split("/", 1)
        type_id, schema_id = _newest_schema_ids(client, slug)
        body = {
            "name": document_name,
            "block_type_id": type_id,
            "block_schema_id": schema_id,
            "data": _resolved(attributes["data"], ctx),
        }
        return client.post("/block_documents/", body)["id"]

    def update(self, client, obj_id: str, name: str, attributes: dict[str, Any], before: dict[str, Any], ctx: ApplyContext) -> None:
        _, schema_id = _newest_schema_ids(client, name.split("/", 1)[0])
        body = {
            "data": _resolved(attributes["data"], ctx),
            "merge_existing_data": False,  # replace the data, so removed fields really go
            "block_schema_id": schema_id,  # the schema the data was checked against
        }
        client.patch(f"/block_documents/{obj_id}", body)

    def delete(self, client, obj_id: str, name: str) -> None:
        client.delete(f"/block_documents/{obj_id}")


# --- names and references ---------------------------------------------------------------------


def _check_identity(name: str) -> None:
    slug, document_name = split_pair(name, IDENTITY)
    for part, what in ((slug, "block type slug"), (document_name, "block name")):
        if not SLUG_OR_NAME.match(part):
            raise ValueError(f"{what} {part!r} may only contain lowercase letters, numbers and dashes")


def _is_reference(value: Any) -> bool:
    return isinstance(value, dict) and REF in value


def _holds_reference(value: Any) -> bool:
    if isinstance(value, dict):
        return REF in value or any(_holds_reference(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_reference(v) for v in value)
    return False


def _resolved(data: dict[str, Any], ctx: ApplyContext) -> dict[str, Any]:
    """The data as the server takes it: each `$ref` by the referenced document's id."""
    return {
        key: {REF: {"block_document_id": ctx.id_of(Address("blocks", value[REF]))}} if _is_reference(value) else value
        for key, value in data.items()
    }


def _live_data(document: dict[str, Any]) -> dict[str, Any]:
    """The document's data with each named referenced block written back as its `$ref`.

    The server returns a referenced document's data inline (secrets included); anonymous ones
    (made by Prefect's Python client for unsaved nested blocks) stay inline, as they have no name.
    """
    data = dict(document.get("data") or {})
    for key, reference in (document.get("block_document_references") or {}).items():
        target = reference["block_document"]
        if not target.get("is_anonymous"):
            data[key] = {REF: f"{target['block_type']['slug']}/{target['name']}"}
    return data


def _newest_schema_ids(client, slug: str) -> tuple[str, str]:
    block_type = client.get(f"/block_types/slug/{quote(slug, safe='')}")
    body = {"block_schemas": {"block_type_id": {"any_": [block_type["id"]]}}, "limit": 1}
    schema = client.post("/block_schemas/filter", body)[0]  # the server lists the newest first
    return block_type["id"], schema["id"]


# --- the schema check ---------------------------------------------------------------------------


def _check_data(slug: str, data: dict[str, Any], block_schema: dict[str, Any]) -> None:
    """Unknown fields, `$ref`s to blocks of a type the field does not hold, then everything else the
    schema says (required fields, types, enums, nested objects) as Prefect validates it."""
    fields = block_schema["fields"]
    properties = fields.get("properties") or {}
    for key, value in data.items():
        if key not in properties:
            known = ", ".join(properties) or "none"
            raise FieldError(f"unknown field of block type {slug} (its fields: {known})", "data", key)
        if _is_reference(value):
            _check_reference(slug, key, value[REF], fields)
    schema = dict(_validation_schema(block_schema["checksum"], fields))
    # A $ref names another declared block, whose data is checked on its own.
    schema["properties"] = {**schema["properties"], **{key: {} for key, value in data.items() if _is_reference(value)}}
    error = best_match(Draft202012Validator(schema, registry=Registry()).iter_errors(data))
    if error is not None:
        message, path = _describe(error)
        raise FieldError(message, "data", *path)


def _check_reference(slug: str, key: str, target: str, fields: dict[str, Any]) -> None:
    allowed = (fields.get("block_schema_references") or {}).get(key)
    if allowed is None:
        raise FieldError(f"field {key!r} of block type {slug} does not hold a block, so it cannot be a $ref", "data", key)
    slugs = [a["block_type_slug"] for a in (allowed if isinstance(allowed, list) else [allowed])]
    target_slug = target.split("/", 1)[0]
    if target_slug not in slugs:
        raise FieldError(f"expects a block of type {' or '.join(slugs)}, not {target_slug}", "data", key)


_VALIDATION_SCHEMAS: dict[str, dict[str, Any]] = {}  # by block schema checksum: a schema never changes


def _validation_schema(checksum: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The block schema in the dialect Prefect validates block data with (made once per schema).

    As `prefect.utilities.schema_tools.preprocess_schema` does: an optional field without a default
    also takes null (schemas made by pydantic 1 do not say so). A `$ref` to a definition the schema
    does not carry (the `secret` block's JsonValue) allows anything, and nothing is ever fetched.
    """
    if checksum in _VALIDATION_SCHEMAS:
        return _VALIDATION_SCHEMAS[checksum]
    schema = copy.deepcopy(fields)
    schema.setdefault("properties", {})
    definitions = schema.get("definitions") or {}
    for model in [schema, *definitions.values()]:
        _allow_null_where_optional(model)

    def open_dangling(node: Any) -> None:
        if isinstance(node, dict):
            target = node.get("$ref")
            if isinstance(target, str) and target.removeprefix("#/definitions/") not in definitions:
                del node["$ref"]
            for value in node.values():
                open_dangling(value)
        elif isinstance(node, list):
            for value in node:
                open_dangling(value)

    open_dangling(schema)
    _VALIDATION_SCHEMAS[checksum] = schema
    return schema


def _allow_null_where_optional(model: dict[str, Any]) -> None:
    required = model.get("required") or []
    for key, field in (model.get("properties") or {}).items():
        if key not in required and "type" in field and field["type"] != "null" and "default" not in field:
            field["anyOf"] = [{"type": field.pop("type")}, {"type": "null"}]
        if "properties" in field:
            _allow_null_where_optional(field)


JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object", type(None): "null"}


def _describe(error: ValidationError) -> tuple[str, list[str | int]]:
    """What is wrong and where, in words that never repeat the value (it may be a secret)."""
    path = list(error.absolute_path)
    got = JSON_TYPES.get(type(error.instance), type(error.instance).__name__)
    rule, expected = error.validator, error.validator_value
    if rule == "type":
        return f"expected {' or '.join(_listed(expected))}, not {got}", path
    if rule in ("anyOf", "oneOf"):
        allowed = _types_allowed(error.schema)
        if allowed and got not in allowed and not (got == "integer" and "number" in allowed):
            return f"expected {' or '.join(allowed)}, not {got}", path
        if rule == "oneOf" and not error.context:
            return "matches more than one of the forms the schema allows for it, and must match exactly one", path
        return "matches none of the forms the schema allows for it", path
    if rule == "required":
        missing = next(key for key in expected if key not in error.instance)
        return f"required field {missing!r} is missing", [*path, missing]
    if rule == "additionalProperties" and expected is False:
        unknown = sorted(set(error.instance) - set(error.schema.get("properties") or {}))
        return f"unknown field (the schema allows only: {', '.join(error.schema.get('properties') or {}) or 'none'})", [*path, unknown[0]]
    if rule == "enum":
        return f"must be one of {', '.join(json.dumps(v) for v in expected)}", path
    if rule == "const":
        return f"must be {json.dumps(expected)}", path
    return f"does not satisfy {rule}: {json.dumps(expected)}", path


def _listed(value: Any) -> list[str]:
    return list(value) if isinstance(value, list) else [value]


def _types_allowed(schema: dict[str, Any]) -> list[str]:
    """The JSON types an anyOf/oneOf admits, as far as its alternatives say (empty: any)."""
    allowed: list[str] = []
    for alternative in schema.get("anyOf") or schema.get("oneOf") or []:
        if "$ref" in alternative or "properties" in alternative:
            allowed.append("object")
        elif "type" in alternative:
            allowed += _listed(alternative["type"])
        elif "enum" in alternative or "const" in alternative:
            allowed += [JSON_TYPES[type(v)] for v in alternative.get("enum", [alternative.get("const")])]
        else:
            return []
    return list(dict.fromkeys(allowed))


def _secret_leaves(data: dict[str, Any], parts: list[str]) -> list[list[str]]:
    """The paths in `data` a schema's secret field covers, as lists of keys.

    A `*` (e.g. `headers.*`, a SecretDict) makes everything under its prefix secret, as the server
    treats it: each leaf, or the whole value when a key could not be written as a dotted path.
    """
    if "*" not in parts:
        return [parts]
    prefix = parts[: parts.index("*")]
    node: Any = data
    for part in prefix:
        if not isinstance(node, dict) or part not in node:
            return []
        node = node[part]
    leaves = _leaves(node)
    if any("." in key for leaf in leaves for key in leaf):
        return [prefix]
    return [prefix + leaf for leaf in leaves]


def _holds_value(data: dict[str, Any], parts: list[str]) -> bool:
    """Whether the data has a value at the path: a secret field of a nested block the data leaves
    out, or holds as a `$ref`, or of the other type of a union (MinIO or AWS credentials), is not there."""
    node: Any = data
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return node is not None


def _leaves(node: Any) -> list[list[str]]:
    if not isinstance(node, dict) or not node:
        return [[]]
    return [[key, *leaf] for key, value in node.items() for leaf in _leaves(value)]
