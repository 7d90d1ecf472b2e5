"""Blocks against a real server: schema checks, nested references, secrets as drift, in saved plans and
in API errors. That no command prints or writes a secret is tests/e2e/test_secret_scan.py."""

from __future__ import annotations

import pytest

from provider.client import Connection, PrefectClient
from provider.errors import Unprocessable
from tests.conftest import assert_ok

SECRETS = {"AWS_SECRET": "aws-secret-1", "REPO_TOKEN": "token-1"}


def plan(workspace, env=SECRETS, *extra: str):
    return workspace.run("plan", str(workspace.directory), "--detailed-exitcode", *extra, env=env)


def apply(workspace, env=SECRETS):
    return workspace.run("apply", str(workspace.directory), "--auto-approve", env=env)


def document(api, address: str) -> dict | None:
    """The live block document TYPE_SLUG/NAME, secrets included (None when there is none)."""
    slug, name = address.split("/")
    body = {
        "block_documents": {"name": {"any_": [name]}},
        "block_types": {"slug": {"any_": [slug]}},
        "include_secrets": True,
    }
    found = api.post("block_documents/filter", json=body).json()
    return found[0] if found else None


def document_body(api, slug: str, name: str, data: dict, **extra) -> dict:
    """A POST /block_documents/ body on the type's newest schema, for objects made by hand."""
    block_type = api.get(f"block_types/slug/{slug}").json()
    body = {"block_schemas": {"block_type_id": {"any_": [block_type["id"]]}}, "limit": 1}
    schema = api.post("block_schemas/filter", json=body).json()[0]
    return {"name": name, "data": data, "block_type_id": block_type["id"], "block_schema_id": schema["id"], **extra}


def creds_config(prefix: str, *, region: str | None = "us-east-1") -> str:
    region_line = f"      region_name: {region}\n" if region else ""
    return f"""\
blocks:
  aws-credentials/{prefix}-aws:
    data:
      aws_access_key_id: AKIAEXAMPLE
      aws_secret_access_key: ${{env.AWS_SECRET}}
{region_line}  secret/{prefix}-token:
    data: {{value: "${{env.REPO_TOKEN}}"}}
"""


def test_create_noop_update_in_place_and_delete(workspace, prefix, api):
    workspace.write("blocks.yaml", creds_config(prefix))
    planned = assert_ok(plan(workspace), 2)
    assert "Plan: 2 to add, 0 to change, 0 to destroy." in planned.stdout
    assert_ok(apply(workspace))

    aws = document(api, f"aws-credentials/{prefix}-aws")
    assert aws["data"] == {"aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": "aws-secret-1", "region_name": "us-east-1"}
    assert document(api, f"secret/{prefix}-token")["data"] == {"value": "token-1"}
    assert_ok(plan(workspace), 0)

    # Drop region_name and rotate the secret: one in-place update that replaces the data.
    workspace.write("blocks.yaml", creds_config(prefix, region=None))
    rotated = {**SECRETS, "AWS_SECRET": "aws-secret-2"}
    planned = assert_ok(plan(workspace, rotated), 2)
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in planned.stdout
    assert "~ aws_secret_access_key = (sensitive value) -> (sensitive value)" in planned.stdout
    assert '- region_name           = "us-east-1" -> null' in planned.stdout
    assert_ok(apply(workspace, rotated))
    updated = document(api, f"aws-credentials/{prefix}-aws")
    assert updated["id"] == aws["id"], "an update must not re-create the block"
    assert updated["data"] == {"aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": "aws-secret-2"}
    assert_ok(plan(workspace, rotated), 0)

    workspace.write("blocks.yaml", f"blocks:\n  secret/{prefix}-token:\n    data: {{value: token-1}}\n")
    planned = assert_ok(plan(workspace), 2)
    assert f"# blocks.aws-credentials/{prefix}-aws will be destroyed" in planned.stdout
    assert "Plan: 0 to add, 0 to change, 1 to destroy." in planned.stdout
    assert_ok(apply(workspace))
    assert document(api, f"aws-credentials/{prefix}-aws") is None
    assert f"blocks.aws-credentials/{prefix}-aws" not in workspace.state()["resources"]
    assert_ok(plan(workspace), 0)


def test_secret_changed_out_of_band_is_drift_and_is_repaired(workspace, prefix, api):
    workspace.write("blocks.yaml", creds_config(prefix))
    assert_ok(apply(workspace))
    aws = document(api, f"aws-credentials/{prefix}-aws")
    api.patch(f"block_documents/{aws['id']}", json={"data": {"aws_secret_access_key": "rotated-by-hand"}}).raise_for_status()

    drift = assert_ok(workspace.run("drift", str(workspace.directory), env=SECRETS), 2)
    assert f"~ blocks.aws-credentials/{prefix}-aws" in drift.stdout
    assert "~ aws_secret_access_key = (sensitive value) -> (sensitive value)" in drift.stdout
    planned = assert_ok(plan(workspace), 2)
    assert "changed outside prefect-provider: data" in planned.stdout
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in planned.stdout

    assert_ok(apply(workspace))
    assert document(api, f"aws-credentials/{prefix}-aws")["data"]["aws_secret_access_key"] == "aws-secret-1"
    assert_ok(plan(workspace), 0)
    assert_ok(workspace.run("drift", str(workspace.directory), env=SECRETS), 0)


def bucket_config(prefix: str, credentials: str) -> str:
    return f"""\
blocks:
  aws-credentials/{prefix}-a:
    data: {{aws_access_key_id: AKIA1, aws_secret_access_key: secret-a}}
  aws-credentials/{prefix}-b:
    data: {{aws_access_key_id: AKIA2, aws_secret_access_key: secret-b}}
  s3-bucket/{prefix}-lake:
    data:
      bucket_name: lake
      credentials: {{"$ref": "aws-credentials/{prefix}-{credentials}"}}
"""


def test_nested_block_reference(workspace, prefix, api):
    workspace.write("blocks.yaml", bucket_config(prefix, "a"))
    assert_ok(workspace.apply())
    bucket = document(api, f"s3-bucket/{prefix}-lake")
    referenced = bucket["block_document_references"]["credentials"]["block_document"]
    assert referenced["id"] == document(api, f"aws-credentials/{prefix}-a")["id"]
    record = workspace.state()["resources"][f"blocks.s3-bucket/{prefix}-lake"]
    assert record["attributes"]["data"]["credentials"] == {"$ref": f"aws-credentials/{prefix}-a"}
    assert record["dependencies"] == [f"blocks.aws-credentials/{prefix}-a"]
    noop = assert_ok(workspace.plan(), 0)
    assert "secret-a" not in noop.output, "the referenced block's data comes back inline, secrets included"

    workspace.write("blocks.yaml", bucket_config(prefix, "b"))
    planned = assert_ok(workspace.plan(), 2)
    assert f'~ $ref = "aws-credentials/{prefix}-a" -> "aws-credentials/{prefix}-b"' in planned.stdout
    assert_ok(workspace.apply())
    relinked = document(api, f"s3-bucket/{prefix}-lake")
    assert relinked["id"] == bucket["id"]
    referenced = relinked["block_document_references"]["credentials"]["block_document"]
    assert referenced["id"] == document(api, f"aws-credentials/{prefix}-b")["id"]
    assert_ok(workspace.plan(), 0)

    # A replaced block gets a new id: the block referring to it is updated to the new one.
    replaced = f"blocks.aws-credentials/{prefix}-b"
    planned = assert_ok(workspace.plan("--replace", replaced), 2)
    assert "Plan: 1 to add, 1 to change, 1 to destroy." in planned.stdout
    assert_ok(workspace.apply("--replace", replaced))
    new_id = document(api, f"aws-credentials/{prefix}-b")["id"]
    assert new_id != referenced["id"]
    referenced = document(api, f"s3-bucket/{prefix}-lake")["block_document_references"]["credentials"]["block_document"]
    assert referenced["id"] == new_id
    assert_ok(workspace.plan(), 0)


def test_data_not_matching_the_schema_is_an_error_and_creates_nothing(workspace, prefix, api):
    path = workspace.write(
        "blocks.yaml",
        f"""\
        blocks:
          secret/{prefix}-fine:
            data: {{value: fine}}
          aws-credentials/{prefix}-typo:
            data:
              aws_access_key_id: AKIA1
              aws_secret_acess_key: oops
          secret/{prefix}-empty:
            data: {{}}
          s3-bucket/{prefix}-lake:
            data:
              bucket_name: lake
              credentials: {{"$ref": "secret/{prefix}-fine"}}
        """,
    )
    result = assert_ok(workspace.apply(), 1)
    assert f"{path.name}:7: blocks.aws-credentials/{prefix}-typo.data.aws_secret_acess_key: unknown field" in result.stderr
    assert f"{path.name}:9: blocks.secret/{prefix}-empty.data.value: required field 'value'" in result.stderr
    assert f"blocks.s3-bucket/{prefix}-lake.data.credentials: expects a block of type aws-credentials" in result.stderr
    assert "oops" not in result.output
    assert document(api, f"secret/{prefix}-fine") is None, "nothing may be created"
    assert not workspace.state_path.exists()


def register_strict_block_type(api, slug: str) -> None:
    """A block type as a user's own Block class with `extra="forbid"` on a nested model registers it."""
    block_type = api.post("block_types/", json={"name": slug, "slug": slug}).json()
    endpoint = {
        "type": "object",
        "properties": {"host": {"type": "string"}, "port": {"type": "integer"}},
        "required": ["host"],
        "additionalProperties": False,
    }
    fields = {
        "title": "Strict",
        "type": "object",
        "properties": {
            "endpoint": {"$ref": "#/definitions/Endpoint"},
            "token": {"type": "string", "format": "password", "writeOnly": True},
            "retries": {"type": "integer", "default": 3},
        },
        "required": ["endpoint"],
        "secret_fields": ["token"],
        "block_type_slug": slug,
        "block_schema_references": {},
        "definitions": {"Endpoint": endpoint},
    }
    api.post("block_schemas/", json={"fields": fields, "block_type_id": block_type["id"], "capabilities": []}).raise_for_status()


def test_data_of_the_wrong_type_is_an_error_that_never_shows_the_value(workspace, prefix, api):
    slug = f"{prefix}-strict"
    register_strict_block_type(api, slug)
    path = workspace.write(
        "blocks.yaml",
        f"""\
        blocks:
          {slug}/typed:
            data:
              endpoint: {{host: db, prot: 5432}}
              token: 918273645
          {slug}/text:
            data:
              endpoint: {{host: db, port: "5432"}}
          {slug}/listed:
            data:
              endpoint: [db, 5432]
          {slug}/nulls:
            data:
              endpoint: {{host: db, port: null}}
              retries: null
        """,
    )
    for command in (["plan", str(workspace.directory)], ["apply", str(workspace.directory), "--auto-approve"]):
        result = assert_ok(workspace.run(*command), 1)
        assert f"{path.name}:5: blocks.{slug}/typed.data.token: expected string or null, not integer" in result.stderr
        assert f"{path.name}:8: blocks.{slug}/text.data.endpoint.port: expected integer or null, not string" in result.stderr
        assert f"{path.name}:11: blocks.{slug}/listed.data.endpoint: expected object, not array" in result.stderr
        # As Prefect validates: an optional field takes null unless it has a default.
        assert f"{path.name}:15: blocks.{slug}/nulls.data.retries: expected integer, not null" in result.stderr
        assert f"{slug}/nulls.data.endpoint" not in result.stderr
        assert "918273645" not in result.output and "Traceback" not in result.output
    assert not workspace.state_path.exists()

    # One error per block: with the secret's type fixed, the unknown nested field is reported.
    workspace.write("blocks.yaml", f"blocks:\n  {slug}/typed:\n    data: {{endpoint: {{host: db, prot: 1}}, token: '918273645'}}\n")
    result = assert_ok(workspace.plan(), 1)
    assert f"blocks.{slug}/typed.data.endpoint.prot: unknown field (the schema allows only: host, port)" in result.stderr
    assert "918273645" not in result.output

    # The same data with the right types applies, and plans empty.
    workspace.write("blocks.yaml", f"blocks:\n  {slug}/typed:\n    data: {{endpoint: {{host: db, port: 5432}}, token: '918273645'}}\n")
    assert_ok(workspace.apply())
    assert document(api, f"{slug}/typed")["data"] == {"endpoint": {"host": "db", "port": 5432}, "token": "918273645"}
    assert_ok(workspace.plan(), 0)


def test_a_mapping_secret_is_compared_by_content_not_key_order(workspace, prefix, api):
    workspace.write("blocks.yaml", f"""\
        blocks:
          secret/{prefix}-login:
            data: {{value: "${{jsondecode(env.LOGIN)}}"}}
        """)
    login = {"LOGIN": '{"user": "etl", "password": "pw-1", "ports": [1, 2]}'}
    assert_ok(workspace.apply(env=login))
    block = document(api, f"secret/{prefix}-login")
    assert block["data"] == {"value": {"user": "etl", "password": "pw-1", "ports": [1, 2]}}
    # As PostgreSQL's jsonb returns it: the same mapping, its keys in another order.
    reordered = {"value": {"ports": [1, 2], "password": "pw-1", "user": "etl"}}
    api.patch(f"block_documents/{block['id']}", json={"data": reordered, "merge_existing_data": False}).raise_for_status()
    assert_ok(workspace.plan(env=login), 0)
    changed = assert_ok(workspace.plan(env={"LOGIN": '{"user": "etl", "password": "pw-2", "ports": [1, 2]}'}), 2)
    assert "pw-" not in changed.output
    bad = assert_ok(workspace.plan(env={"LOGIN": "{'user': 'pw-3'}"}), 1)
    assert "env.LOGIN is not valid JSON" in bad.stderr and "pw-3" not in bad.output


def test_anonymous_blocks_are_never_taken_for_managed_ones(workspace, prefix, api):
    anonymous = document_body(api, "secret", f"{prefix}-anon", {"value": "x"}, is_anonymous=True)
    api.post("block_documents/", json=anonymous).raise_for_status()
    workspace.write("blocks.yaml", f"blocks:\n  secret/{prefix}-anon:\n    data: {{value: x}}\n")
    planned = assert_ok(workspace.plan(), 2)
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in planned.stdout


def test_import_an_existing_block_with_a_secret(workspace, prefix, api):
    existing = document_body(api, "secret", f"{prefix}-token", {"value": "token-1"})
    block_id = api.post("block_documents/", json=existing).json()["id"]
    workspace.write("blocks.yaml", f"blocks:\n  secret/{prefix}-token:\n    data: {{value: '${{env.REPO_TOKEN}}'}}\n")
    assert_ok(plan(workspace), 1)  # exists, not managed: import it first

    address = f"blocks.secret/{prefix}-token"
    assert_ok(workspace.run("import", address, block_id, str(workspace.directory), env=SECRETS))
    record = workspace.state()["resources"][address]
    assert record["id"] == block_id
    assert record["attributes"]["data"]["value"].startswith("fingerprint:")
    assert_ok(plan(workspace), 0)


def test_saved_plan_with_a_secret_applies_with_the_secret_from_the_configuration(workspace, prefix, api):
    workspace.write("blocks.yaml", f"blocks:\n  secret/{prefix}-token:\n    data: {{value: '${{env.REPO_TOKEN}}'}}\n")
    saved = workspace.directory / "token.tfplan"
    assert_ok(workspace.run("plan", str(workspace.directory), "--out", str(saved), env=SECRETS))
    assert "token-1" not in saved.read_text()

    # The secret changed since the plan was made: the saved plan no longer says what would be written.
    changed = assert_ok(workspace.run("apply", str(saved), env={"REPO_TOKEN": "token-2"}), 1)
    assert "changed since the plan was made" in changed.stderr
    assert document(api, f"secret/{prefix}-token") is None

    assert_ok(workspace.run("apply", str(saved), env=SECRETS))
    assert document(api, f"secret/{prefix}-token")["data"] == {"value": "token-1"}
    assert_ok(plan(workspace), 0)


def test_api_validation_errors_do_not_echo_the_request(api_url, api):
    """The server answers a 422 with the whole request body, secrets included; errors must not show it."""
    body = document_body(api, "secret", "Not A Valid Name", {"value": "do-not-echo-me"})
    with PrefectClient(Connection(api_url)) as client, pytest.raises(Unprocessable) as error:
        client.post("/block_documents/", body)
    assert "do-not-echo-me" not in str(error.value)
    assert "body.name: Value error, Block document name must only contain lowercase letters" in str(error.value)
