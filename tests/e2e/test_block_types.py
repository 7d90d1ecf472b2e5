"""block_types against a real server: a custom type and its schema registered as Prefect registers
them, blocks of it checked against the declared schema before the type exists, schema versions,
drift, deletion refused while blocks of the type stay, Prefect's own types never changed."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from tests.conftest import assert_ok

SECRETS = {"DB_PASSWORD": "pw-1"}
PROPERTIES = {
    "host": {"title": "Host", "type": "string"},
    "port": {"title": "Port", "type": "integer", "default": 5432},
    "password": {"title": "Password", "type": "string", "format": "password", "writeOnly": True},
}


def type_config(slug: str, *, description: str = "The Acme database", version: str = "1.0",
                extra: dict | None = None, block: str | None = "host: db.acme") -> str:
    fields = {
        "title": "AcmeDB", "type": "object", "properties": {**PROPERTIES, **(extra or {})},
        "required": ["host", "password"], "secret_fields": ["password"], "block_type_slug": slug,
    }
    text = f"""\
block_types:
  {slug}:
    name: {slug} database
    description: {description}
    documentation_url: https://example.com/docs
    schema:
      fields: {json.dumps(fields)}
      capabilities: [read]
      version: "{version}"
"""
    if block:
        text += f"""\
blocks:
  {slug}/prod:
    data:
      {block}
      password: ${{env.DB_PASSWORD}}
"""
    return text


def schemas(api, slug: str) -> list[dict]:
    """The type's schemas, newest first ([] when the type is gone)."""
    found = api.get(f"block_types/slug/{slug}")
    if found.status_code == 404:
        return []
    body = {"block_schemas": {"block_type_id": {"any_": [found.json()["id"]]}}}
    return api.post("block_schemas/filter", json=body).json()


def document(api, slug: str, name: str) -> dict | None:
    found = api.get(f"block_types/slug/{slug}/block_documents/name/{name}", params={"include_secrets": True})
    return found.json() if found.status_code == 200 else None


def test_apply_replan_schema_version_drift_and_delete(workspace, prefix, api):
    slug = f"{prefix}-db"
    workspace.write("types.yaml", type_config(slug))
    # The block is checked against the declared schema although the type is not on the server yet.
    planned = assert_ok(workspace.plan(env=SECRETS), 2)
    assert "Plan: 2 to add, 0 to change, 0 to destroy." in planned.stdout
    assert "pw-1" not in planned.output
    assert_ok(workspace.apply(env=SECRETS))

    block_type = api.get(f"block_types/slug/{slug}").json()
    assert (block_type["name"], block_type["description"], block_type["is_protected"]) == (f"{slug} database", "The Acme database", False)
    [first] = schemas(api, slug)
    assert (first["version"], first["capabilities"], first["fields"]["secret_fields"]) == ("1.0", ["read"], ["password"])
    block = document(api, slug, "prod")
    assert block["data"] == {"host": "db.acme", "password": "pw-1"}
    assert block["block_schema_id"] == first["id"]
    state = workspace.state()
    assert state["resources"][f"blocks.{slug}/prod"]["dependencies"] == [f"block_types.{slug}"]
    assert state["resources"][f"block_types.{slug}"]["attributes"]["schema"]["checksum"] == first["checksum"]
    assert "pw-1" not in workspace.state_path.read_text()
    assert_ok(workspace.plan(env=SECRETS), 0)

    # A schema change registers a new schema (the old one stays, as Prefect keeps it); the block,
    # using the new field, is checked against the new schema and written on it.
    extra = {"database": {"title": "Database", "type": "string"}}
    workspace.write("types.yaml", type_config(slug, version="1.1", extra=extra, block="host: db.acme\n      database: sales"))
    planned = assert_ok(workspace.plan(env=SECRETS), 2)
    assert "Plan: 0 to add, 2 to change, 0 to destroy." in planned.stdout
    assert '~ version  = "1.0" -> "1.1"' in planned.stdout
    assert_ok(workspace.apply(env=SECRETS))
    newest, older = schemas(api, slug)
    assert (newest["version"], older["id"]) == ("1.1", first["id"])
    assert "database" in newest["fields"]["properties"]
    assert api.get(f"block_types/slug/{slug}").json()["id"] == block_type["id"], "a schema change keeps the type"
    assert document(api, slug, "prod")["block_schema_id"] == newest["id"]
    assert_ok(workspace.plan(env=SECRETS), 0)

    # Hand-made drift: the description, and a secret of the block.
    api.patch(f"block_types/{block_type['id']}", json={"description": "edited by hand"}).raise_for_status()
    drift = assert_ok(workspace.run("drift", str(workspace.directory), env=SECRETS), 2)
    assert f"~ block_types.{slug}" in drift.stdout
    assert '~ description = "The Acme database" -> "edited by hand"' in drift.stdout
    assert_ok(workspace.apply(env=SECRETS))
    assert api.get(f"block_types/slug/{slug}").json()["description"] == "The Acme database"
    assert_ok(workspace.run("drift", str(workspace.directory), env=SECRETS), 0)

    # Deleting the type would delete its block on the server: refused while the block stays.
    workspace.write("types.yaml", f"blocks:\n  {slug}/prod:\n    data: {{host: db.acme, database: sales, password: '${{env.DB_PASSWORD}}'}}\n")
    refused = assert_ok(workspace.plan(env=SECRETS), 1)
    assert f"block_types.{slug}: deleting a block type deletes every block of it on the server" in refused.stderr
    assert f"not deleted by this plan: {slug}/prod" in refused.stderr
    assert api.get(f"block_types/slug/{slug}").status_code == 200

    # Both gone from the configuration: the block is deleted first, then the type and its schemas.
    workspace.write("types.yaml", "variables: {}\n")
    planned = assert_ok(workspace.plan(env=SECRETS), 2)
    assert "Plan: 0 to add, 0 to change, 2 to destroy." in planned.stdout
    assert_ok(workspace.apply(env=SECRETS))
    assert api.get(f"block_types/slug/{slug}").status_code == 404
    assert api.get(f"block_schemas/{newest['id']}").status_code == 404
    assert workspace.state()["resources"] == {}
    assert_ok(workspace.plan(env=SECRETS), 0)


def test_blocks_made_elsewhere_stop_the_deletion_of_their_type(workspace, prefix, api):
    """An unmanaged block, named or anonymous, would go with the type: the plan names it."""
    slug = f"{prefix}-db"
    workspace.write("types.yaml", type_config(slug, block=None))
    assert_ok(workspace.apply())
    [schema] = schemas(api, slug)
    block_type_id = schema["block_type_id"]
    made = {"data": {"host": "h", "password": "p"}, "block_type_id": block_type_id, "block_schema_id": schema["id"]}
    api.post("block_documents/", json={**made, "name": "by-hand"}).raise_for_status()
    anonymous = api.post("block_documents/", json={**made, "is_anonymous": True})
    anonymous.raise_for_status()

    workspace.write("types.yaml", "variables: {}\n")
    refused = assert_ok(workspace.plan(), 1)
    assert f"{slug}/by-hand" in refused.stderr
    assert f"anonymous block {anonymous.json()['id']}" in refused.stderr
    assert_ok(workspace.apply(), 1)
    assert document(api, slug, "by-hand") is not None


def test_schema_registered_by_hand_is_drift_and_the_apply_says_why_it_cannot_win(workspace, prefix, api):
    slug = f"{prefix}-db"
    workspace.write("types.yaml", type_config(slug, block=None))
    assert_ok(workspace.apply())
    [declared] = schemas(api, slug)
    by_hand = {"fields": {"type": "object", "properties": {"x": {"type": "string"}}}, "block_type_id": declared["block_type_id"], "version": "9"}
    api.post("block_schemas/", json=by_hand).raise_for_status()

    drift = assert_ok(workspace.run("drift", str(workspace.directory)), 2)
    assert '~ version      = "1.0" -> "9"' in drift.stdout
    failed = assert_ok(workspace.apply(), 1)
    assert f"the declared schema (checksum {declared['checksum']}, version 1.0) was registered before" in failed.stderr
    assert "Traceback" not in failed.output
    # Another version of the same fields is a new schema, which becomes the newest again.
    workspace.write("types.yaml", type_config(slug, block=None, version="1.0.1"))
    assert_ok(workspace.apply())
    newest = schemas(api, slug)[0]
    assert (newest["checksum"], newest["version"]) == (declared["checksum"], "1.0.1")
    assert_ok(workspace.plan(), 0)


def test_import_adopts_a_registered_type(workspace, prefix, api):
    slug = f"{prefix}-db"
    block_type = api.post("block_types/", json={"name": f"{slug} database", "slug": slug, "description": "The Acme database",
                                                "documentation_url": "https://example.com/docs"}).json()
    workspace.write("types.yaml", type_config(slug, block=None))
    fields = json.loads(type_config(slug, block=None).split("fields: ", 1)[1].split("\n", 1)[0])
    api.post("block_schemas/", json={"fields": {**fields, "block_schema_references": {}}, "block_type_id": block_type["id"],
                                     "capabilities": ["read"], "version": "1.0"}).raise_for_status()
    unmanaged = assert_ok(workspace.plan(), 1)
    assert f"block_types.{slug} (id {block_type['id']})" in unmanaged.stderr
    assert_ok(workspace.run("import", f"block_types.{slug}", block_type["id"], str(workspace.directory)))
    assert_ok(workspace.plan(), 0)
    workspace.write("types.yaml", "variables: {}\n")
    assert_ok(workspace.apply())
    assert api.get(f"block_types/slug/{slug}").status_code == 404


def test_schema_registered_as_prefect_registers_it(workspace, prefix, api):
    """A Block class's own JSON schema, declared as is: Prefect's `register_type_and_schema` then
    finds the registered schema by its checksum and version (nothing new to register)."""
    from prefect.blocks.core import Block

    slug = f"{prefix}-warehouse"

    class Warehouse(Block):
        _block_type_slug = slug
        _block_type_name = f"{slug} warehouse"
        _block_schema_version = "2.0"
        account: str
        token: SecretStr
        options: dict[str, int] = {}

    fields = Warehouse.model_json_schema()
    workspace.write("types.yaml", f"""\
block_types:
  {slug}:
    name: {slug} warehouse
    schema:
      fields: {json.dumps(fields)}
      capabilities: {json.dumps(sorted(Warehouse.get_block_capabilities()))}
      version: "2.0"
blocks:
  {slug}/main:
    data: {{account: acme, token: "${{env.TOKEN}}"}}
""")
    assert_ok(workspace.apply(env={"TOKEN": "tok-1"}))
    found = api.get(f"block_schemas/checksum/{Warehouse._calculate_schema_checksum()}", params={"version": "2.0"})
    assert found.status_code == 200, "the schema's checksum is not the one Prefect computes"
    assert found.json()["id"] == schemas(api, slug)[0]["id"]
    assert fields["secret_fields"] == ["token"]
    record = workspace.state()["resources"][f"blocks.{slug}/main"]
    assert record["attributes"]["data"]["token"].startswith("fingerprint:"), "a secret field of the declared schema"
    assert_ok(workspace.plan(env={"TOKEN": "tok-1"}), 0)
    rotated = assert_ok(workspace.plan(env={"TOKEN": "tok-2"}), 2)
    assert "~ token = (sensitive value) -> (sensitive value)" in rotated.stdout
    assert "tok-" not in rotated.output
    workspace.write("types.yaml", "variables: {}\n")
    assert_ok(workspace.apply(env={"TOKEN": "tok-1"}))


@pytest.mark.parametrize(
    ("body", "line", "field", "message"),
    [
        ("name: Prefect Thing\n    schema: {fields: {}}", 3, "block_types.SLUG.name", "reserved by Prefect"),
        ("name: Thing", 2, "block_types.SLUG.schema", "required field is missing"),
        ("name: Thing\n    schema:\n      fields: {secret_fields: password}", 5, "block_types.SLUG.schema.fields",
         "secret_fields: expected a list"),
        ("name: Thing\n    schema: {fields: {}, versoin: '1'}", 4, "block_types.SLUG.schema.versoin", "unknown field"),
        ("name: Thing\n    schema:\n      fields:\n        properties: {host: {type: strnig}}", 5, "block_types.SLUG.schema.fields",
         "properties.host.type: not a valid JSON schema"),
    ],
    ids=["reserved-name", "no-schema", "secret-fields-not-a-list", "unknown-key", "not-a-json-schema"],
)
def test_bad_type_is_reported_with_file_line_and_field(workspace, prefix, api, body, line, field, message):
    slug = f"{prefix}-bad"
    workspace.write("types.yaml", f"block_types:\n  {slug}:\n    {body}\n")
    for command in (["validate"], ["plan"], ["apply", "--auto-approve"]):
        result = assert_ok(workspace.run(*command, str(workspace.directory)), 1)
        assert f"types.yaml:{line}: {field.replace('SLUG', slug)}" in result.stderr
        assert message in result.stderr
        assert "Traceback" not in result.output
    assert api.get(f"block_types/slug/{slug}").status_code == 404


@pytest.mark.parametrize(
    ("data", "line", "field", "message"),
    [
        ("{host: 5, password: x}", 3, "data.host", "expected string, not integer"),
        ("{host: h}", 3, "data.password", "required field 'password' is missing"),
        ("{host: h, password: x, hots: y}", 3, "data.hots", "unknown field of block type"),
    ],
    ids=["wrong-type", "missing-required", "unknown-field"],
)
def test_block_of_a_declared_type_is_checked_against_its_schema(workspace, prefix, api, data, line, field, message):
    slug = f"{prefix}-db"
    workspace.write("blocks.yaml", f"blocks:\n  {slug}/prod:\n    data: {data}\n")
    workspace.write("types.yaml", type_config(slug, block=None))
    result = assert_ok(workspace.plan(), 1)
    assert f"blocks.yaml:{line}: blocks.{slug}/prod.{field}: {message}" in result.stderr
    assert "Traceback" not in result.output
    assert api.get(f"block_types/slug/{slug}").status_code == 404, "nothing is applied"


def test_prefect_own_block_type_is_never_changed(workspace, api):
    before = api.get("block_types/slug/secret").json()
    workspace.write("types.yaml", "block_types:\n  secret:\n    name: Secret\n    description: mine now\n    schema: {fields: {}}\n")
    refused = assert_ok(workspace.plan(), 1)
    assert "block_types.secret: secret is one of Prefect's own (protected) block types, which are never changed" in refused.stderr
    assert "description" in refused.stderr
    assert_ok(workspace.apply(), 1)
    assert api.get("block_types/slug/secret").json() == before


def test_prefect_own_block_type_declared_as_it_is_is_adopted_and_never_deleted(workspace, api):
    live = api.get("block_types/slug/local-file-system").json()
    schema = schemas(api, "local-file-system")[0]
    spec = {key: live[key] for key in ("name", "description", "logo_url", "documentation_url", "code_example")}
    spec["schema"] = {key: schema[key] for key in ("fields", "capabilities", "version")}
    workspace.write("types.yaml", json.dumps({"block_types": {"local-file-system": spec}}))
    adopted = assert_ok(workspace.plan(), 2)
    assert "one of Prefect's own block types, declared as it is" in adopted.stdout
    assert_ok(workspace.apply())
    assert workspace.state()["resources"]["block_types.local-file-system"]["id"] == live["id"]
    assert_ok(workspace.plan(), 0)

    workspace.write("types.yaml", "variables: {}\n")
    refused = assert_ok(workspace.plan(), 1)
    assert "block_types.local-file-system: is one of Prefect's own (protected) block types, which are never deleted" in refused.stderr
    assert_ok(workspace.run("state", "rm", "block_types.local-file-system", str(workspace.directory)))
    assert_ok(workspace.plan(), 0)
    assert api.get("block_types/slug/local-file-system").json() == live
