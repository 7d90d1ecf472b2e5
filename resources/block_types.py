"""block_types (SLUG): a custom block type and the schema its blocks are checked against.

The type is registered as `prefect block register` registers a Block class: the type by its slug,
then its schema. A schema is immutable and identified by its checksum (computed here exactly as
Prefect computes it) and version; changing the declared schema registers a new schema, which
becomes the type's newest, and blocks written afterwards use it (Prefect keeps the older ones).
Blocks of a declared type depend on it and are checked against the declared schema at plan time,
even before the type exists on the server.

Prefect's own (protected) block types are never changed or deleted. Deleting a type deletes its
schemas and, on the server, every block of it: refused unless the same plan deletes those blocks.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import Field, JsonValue, field_validator
from pydantic_core import PydanticCustomError

from resources.base import ApplyContext, LiveObject, ResourceKind, ServerDefaults, Spec
from resources.blocks import SLUG_OR_NAME

# Prefect's default for a schema registered without a version (server/schemas/core.py).
DEFAULT_VERSION = "non-versioned"
METADATA = ("description", "logo_url", "documentation_url", "code_example")


class SchemaSpec(Spec):
    fields: dict[str, JsonValue] = Field(
        description=(
            "The JSON schema of the block's fields, as a Block class's `model_json_schema()` gives it: "
            "`properties`, `required`, `definitions`, and `secret_fields` (dotted paths of secret values)."
        ),
    )
    capabilities: list[str] = Field(default_factory=list, description="What blocks of this type can do (e.g. read-path).")
    version: str = Field(default=DEFAULT_VERSION, description="Human-readable identifier of this schema version.")

    @field_validator("fields")
    @classmethod
    def _check_fields(cls, fields: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(fields.get("properties", {}), dict):
            raise PydanticCustomError("block_type", "properties: expected a mapping of field names to their JSON schemas")
        secret = fields.get("secret_fields", [])
        if not isinstance(secret, list) or not all(isinstance(path, str) for path in secret):
            raise PydanticCustomError("block_type", "secret_fields: expected a list of dotted field paths")
        if fields.get("block_schema_references"):
            raise PydanticCustomError("block_type", "block_schema_references: fields holding other blocks are not supported in declared block types")
        try:
            # What blocks of the type are validated with (resources/blocks.py) must be a JSON schema.
            Draft202012Validator.check_schema(fields)
        except SchemaError as exc:
            raise PydanticCustomError("block_type", f"{'.'.join(map(str, exc.absolute_path)) or 'fields'}: not a valid JSON schema: {exc.message}") from None
        return fields


class BlockTypeSpec(Spec):
    name: str = Field(description="The display name (Prefect reserves names starting with 'Prefect').")
    description: str | None = Field(default=None, description="A short blurb about the block type's intended use.")
    logo_url: str | None = Field(default=None, description="Web URL of the block type's logo.")
    documentation_url: str | None = Field(default=None, description="Web URL of the block type's documentation.")
    code_example: str | None = Field(default=None, description="A code snippet showing how to use the block.")
    schema_: SchemaSpec = Field(alias="schema", description="The fields of its blocks, their capabilities, the schema version.")

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        if not name.strip():
            raise PydanticCustomError("block_type", "must not be empty")
        if name.lower().startswith("prefect"):
            raise PydanticCustomError("block_type", "block type names starting with 'Prefect' are reserved by Prefect")
        return name


class BlockTypes(ResourceKind):
    kind = "block_types"
    spec = BlockTypeSpec
    identity = "SLUG"
    identity_inputs = ("slug",)
    replace_fields = frozenset({"name"})  # the server cannot rename a block type
    computed = frozenset({"protected"})  # Prefect's own types: never changed, never deleted

    def check_name(self, name: str) -> None:
        if not SLUG_OR_NAME.match(name):
            raise ValueError("a block type slug may only contain lowercase letters, numbers and dashes")

    def declare(self, name: str, spec: BlockTypeSpec, defaults: ServerDefaults) -> None:
        fields = _normalized(spec.schema_.fields)
        defaults.declared_block_schemas[name] = {"fields": fields, "checksum": checksum(fields)}

    def desired(self, name: str, spec: BlockTypeSpec, defaults: ServerDefaults) -> dict[str, Any]:
        fields = _normalized(spec.schema_.fields)
        return {
            "name": spec.name,
            **{key: getattr(spec, key) for key in METADATA},
            "schema": {"fields": fields, "capabilities": spec.schema_.capabilities,
                       "version": spec.schema_.version, "checksum": checksum(fields)},
        }

    def list(self, client, names: set[str] | None) -> list[LiveObject]:
        """The types among `names`. None for `export`: the server registers dozens of types of its own
        (Prefect's collections: s3-bucket, aws-credentials, ...) without marking them protected, so
        nothing tells a custom type apart; one is taken into state with `import`."""
        if not names:
            return []
        types = client.filter("/block_types/filter", {"block_types": {"slug": {"any_": sorted(names)}}})
        if not types:
            return []
        ids = [t["id"] for t in types]
        newest: dict[str, dict[str, Any]] = {}
        for schema in client.filter("/block_schemas/filter", {"block_schemas": {"block_type_id": {"any_": ids}}}):
            newest.setdefault(schema["block_type_id"], schema)  # listed newest first
        return [LiveObject(id=t["id"], name=t["slug"], attributes={
            "name": t["name"],
            **{key: t.get(key) for key in METADATA},
            "schema": _live_schema(newest.get(t["id"])),
            "protected": t["is_protected"],
        }) for t in types]

    def read(self, client, names: set[str], known) -> list[LiveObject]:
        found = self.list(client, names)
        for obj in found:
            desired = known.get(obj.name) and known[obj.name].desired
            if obj.attributes["protected"] and desired:
                different = [key for key in ("name", *METADATA, "schema") if desired.get(key) != obj.attributes.get(key)]
                if different:
                    from provider.errors import PlanError

                    raise PlanError(f"{self.address(obj.name)}: {obj.name} is one of Prefect's own (protected) block types, "
                                    f"which are never changed, and the configuration declares another {', '.join(different)}; "
                                    "remove the declaration (blocks of it need none)")
        return found

    def adopt_reason(self, obj: LiveObject) -> str | None:
        if obj.attributes.get("protected"):
            return "one of Prefect's own block types, declared as it is: taken into state, never changed"
        return None

    def deletion_refused(self, client, obj_id: str, name: str, deleting: set[str]) -> str | None:
        if client.get(f"/block_types/{obj_id}")["is_protected"]:
            return ("is one of Prefect's own (protected) block types, which are never deleted; "
                    "stop managing it with `prefect-provider state rm`")
        # Anonymous blocks too (an explicit null lifts the server's default filter): the server
        # deletes every block of the type with it. Prefect's client makes anonymous ones for
        # unsaved nested blocks; they have no name.
        every_block = {"block_documents": {"block_type_id": {"any_": [obj_id]}, "is_anonymous": None}}
        kept = [f"anonymous block {document['id']}" if document.get("is_anonymous") else f"{name}/{document['name']}"
                for document in client.filter("/block_documents/filter", every_block)]
        kept = [block for block in kept if f"blocks.{block}" not in deleting]
        if kept:
            return ("deleting a block type deletes every block of it on the server, and these blocks are not deleted "
                    f"by this plan: {', '.join(kept)}; delete them first (or in the same plan)")
        return None

    def outputs(self, name: str, obj_id: str, attributes: dict[str, Any]) -> dict[str, Any]:
        return {}  # `protected` is for planning, not worth showing after an apply

    # --- applying ----------------------------------------------------------------------------

    def create(self, client, name: str, attributes: dict[str, Any], ctx: ApplyContext) -> str:
        body = {"name": attributes["name"], "slug": name, **{key: attributes[key] for key in METADATA}}
        type_id = client.post("/block_types/", body)["id"]
        _register_schema(client, type_id, name, attributes["schema"])
        return type_id

    def update(self, client, obj_id: str, name: str, attributes: dict[str, Any], before: dict[str, Any], ctx: ApplyContext) -> None:
        if any(attributes[key] != before.get(key) for key in METADATA):
            client.patch(f"/block_types/{obj_id}", {key: attributes[key] for key in METADATA})
        if attributes["schema"] != before.get("schema"):
            _register_schema(client, obj_id, name, attributes["schema"])

    def delete(self, client, obj_id: str, name: str) -> None:
        client.delete(f"/block_types/{obj_id}")  # the server deletes its schemas with it


def _register_schema(client, type_id: str, slug: str, schema: dict[str, Any]) -> None:
    """Register the schema, as `Block.register_type_and_schema` does; the server answers with the
    existing schema when one has this checksum and version, which is then not the newest."""
    body = {"fields": schema["fields"], "block_type_id": type_id, "capabilities": schema["capabilities"], "version": schema["version"]}
    registered = client.post("/block_schemas/", body)
    newest = client.post("/block_schemas/filter", {"block_schemas": {"block_type_id": {"any_": [type_id]}}, "limit": 1})[0]
    if newest["id"] != registered["id"]:
        raise RuntimeError(
            f"block type {slug}: the declared schema (checksum {registered['checksum']}, version {registered['version']}) "
            f"was registered before, and a newer schema (checksum {newest['checksum']}, version {newest['version']}) "
            "was registered outside prefect-provider since; blocks use the newest schema. Declare the newer schema, "
            "or give the declared one another version"
        )


def _live_schema(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    if schema is None:
        return None
    return {"fields": schema["fields"], "capabilities": schema["capabilities"], "version": schema["version"],
            "checksum": schema["checksum"]}


def _normalized(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields as the server stores them: block references in a table of their own (so
    `block_schema_references` reads back empty), and only the definitions the fields use."""
    fields = {**fields, "block_schema_references": {}}
    if "definitions" in fields:
        used = _used_definitions(fields, fields["definitions"] or {})
        if used:
            fields["definitions"] = used
        else:
            del fields["definitions"]
    return fields


def _used_definitions(node: Any, definitions: dict[str, Any], used: dict[str, Any] | None = None) -> dict[str, Any]:
    """The definitions `node` refers to with `$ref`, directly or through other definitions."""
    used = {} if used is None else used
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "definitions":
                continue
            if key == "$ref" and isinstance(value, str):
                target = value.removeprefix("#/definitions/")
                if target in definitions and target not in used:
                    used[target] = definitions[target]
                    _used_definitions(definitions[target], definitions, used)
            else:
                _used_definitions(value, definitions, used)
    elif isinstance(node, list):
        for value in node:
            _used_definitions(value, definitions, used)
    return used


def checksum(fields: dict[str, Any]) -> str:
    """A schema's identity, as `Block._calculate_schema_checksum` computes it: the sha256 of the
    fields without `secret_fields` (at any depth), as sorted JSON of Prefect's `hash_objects`."""

    def without_secret_fields(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        return {key: without_secret_fields(value) for key, value in node.items() if key != "secret_fields"}

    serialized = json.dumps([[without_secret_fields(fields)], {}], sort_keys=True)
    return "sha256:" + hashlib.sha256(serialized.encode()).hexdigest()
