"""export of every block type the server registers, secrets included: a plan of the export is empty.

Data-driven over the server's own list: for each block type, one document with minimal valid data
generated from its newest schema (required fields, the fields its schema marks secret, required
nested blocks as references to documents made the same way) is created through the API; then
`export` and a `plan` of the exported directory, with each placeholder's variable set to the live
value, must show no change. A block type the server adds later is covered without a test change.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from typing import Any

import pytest
from ruamel.yaml import YAML

from provider.server import EmbeddedServer
from tests.conftest import Workspace, all_objects, assert_ok

PLACEHOLDER = re.compile(r"^\$\{(jsondecode\()?env\.([A-Za-z0-9_]+)\)?\}$")
SECRET_TEXT = "sekret-"  # every generated secret starts so; none may reach an exported file or the output


@pytest.fixture(scope="module")
def own_server(tmp_path_factory):
    """export reads a whole workspace: this module gets a server of its own."""
    server = EmbeddedServer(tmp_path_factory.mktemp("export-block-types-server"))
    info = server.start()
    yield info.api_url
    server.stop()


@pytest.fixture(scope="module")
def own_api(own_server):
    import httpx

    with httpx.Client(base_url=own_server.rstrip("/") + "/", timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def documents(own_api):
    return Documents(own_api)


class Documents:
    """Block documents made through the API, each with minimal valid data for its type's newest schema."""

    def __init__(self, api):
        self.api = api
        self.schemas: dict[str, dict[str, Any]] = {}
        for schema in all_objects(api, "block_schemas/filter"):
            self.schemas.setdefault(schema["block_type"]["slug"], schema)  # listed newest first
        self.data: dict[str, dict[str, Any]] = {}  # TYPE_SLUG/NAME -> the data as sent
        self._counter = itertools.count()

    def create(self, slug: str, name: str, data: dict[str, Any] | None = None, *, anonymous: bool = False) -> str:
        schema = self.schemas[slug]
        if data is None:
            data = self.minimal(schema["fields"], schema["fields"], [], self._secret_paths(schema["fields"]))
        body = {"name": name, "data": data, "block_type_id": schema["block_type_id"], "block_schema_id": schema["id"],
                "is_anonymous": anonymous}
        for _ in range(5):  # SQLite answers 503 while the server's own start-up writes hold the database
            response = self.api.post("block_documents/", json=body)
            if response.status_code != 503:
                break
            time.sleep(1)
        assert response.status_code == 201, f"{slug}/{name}: {response.status_code} {response.text[:300]}"
        if not anonymous:  # an anonymous block is not exported: it is part of the block referring to it
            self.data[f"{slug}/{name}"] = data
        return response.json()["id"]

    @staticmethod
    def _secret_paths(fields: dict[str, Any]) -> list[list[str]]:
        return [secret.split(".") for secret in fields.get("secret_fields") or []]

    def minimal(self, node: dict[str, Any], fields: dict[str, Any], path: list[str], secrets: list[list[str]]) -> Any:
        node = self._resolved(node, fields)
        if "block_type_slug" in node and path:
            # A nested block: a document of its own, referred to by id as Prefect's client does.
            slug = node["block_type_slug"]
            return {"$ref": {"block_document_id": self.create(slug, f"ref-{slug}-{next(self._counter)}")}}
        for union in ("anyOf", "oneOf"):
            if union in node:
                choice = next(a for a in node[union] if self._resolved(a, fields).get("type") != "null")
                return self.minimal(choice, fields, path, secrets)
        if "allOf" in node:
            merged: dict[str, Any] = {}
            for part in node["allOf"]:
                merged.update(self._resolved(part, fields))
            return self.minimal(merged, fields, path, secrets)
        if "const" in node:
            return node["const"]
        if "enum" in node:
            return node["enum"][0]
        kind = node.get("type", "string")
        if isinstance(kind, list):
            kind = next(k for k in kind if k != "null")
        if kind == "object":
            if any(p[: len(path) + 1] == [*path, "*"] for p in secrets):
                return {"first": self._secret(), "second": self._secret()}
            required = node.get("required") or []
            properties = node.get("properties") or {}
            chosen = [key for key in properties if key in required or self._holds_secret(properties[key], fields, [*path, key], secrets)]
            return {key: self.minimal(properties[key], fields, [*path, key], secrets) for key in chosen}
        if kind == "array":
            return [self.minimal(node.get("items") or {}, fields, [*path, "0"], secrets)]
        if kind == "string":
            if path in secrets or node.get("format") == "password":
                return self._secret()
            return {"uri": "https://example.com/x", "path": "/tmp/x", "file-path": "/tmp/x", "directory-path": "/tmp"}.get(
                node.get("format"), "x" * max(1, node.get("minLength", 1))
            )
        return {"integer": 1, "number": 1.5, "boolean": True, "null": None}[kind]

    def _holds_secret(self, node: dict[str, Any], fields: dict[str, Any], path: list[str], secrets: list[list[str]]) -> bool:
        """An optional field on the way to a secret field; optional nested blocks are left out (no credentials)."""
        node = self._resolved(node, fields)
        alternatives = [node, *node.get("anyOf", []), *node.get("oneOf", []), *node.get("allOf", [])]
        if any("block_type_slug" in self._resolved(a, fields) for a in alternatives):
            return False
        return any(p[: len(path)] == path for p in secrets)

    @staticmethod
    def _resolved(node: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        while isinstance(node.get("$ref"), str):
            found = (fields.get("definitions") or {}).get(node["$ref"].removeprefix("#/definitions/"))
            if found is None:
                return {**{k: v for k, v in node.items() if k != "$ref"}, "type": "object"}
            node = {**{k: v for k, v in node.items() if k != "$ref"}, **found}
        return node

    def _secret(self) -> str:
        return f"{SECRET_TEXT}{next(self._counter)}"


def placeholders(exported: Any, live: Any, found: dict[str, str]) -> None:
    """Each exported placeholder's variable, set to the live value it stands for."""
    if isinstance(exported, str) and (match := PLACEHOLDER.match(exported)):
        found[match.group(2)] = json.dumps(live) if match.group(1) else live
    elif isinstance(exported, dict) and isinstance(live, dict):
        for key, value in exported.items():
            if key != "$ref":
                placeholders(value, live.get(key), found)
    elif isinstance(exported, list) and isinstance(live, list):
        for exported_item, live_item in zip(exported, live):
            placeholders(exported_item, live_item, found)


def test_every_block_type_exports_and_plans_empty(own_server, documents, tmp_path):
    assert len(documents.schemas) > 40, "the server registers its block types at start"
    for slug in sorted(documents.schemas):
        documents.create(slug, f"t-{slug}")
    # Secrets that are not text, and nested credentials written inline rather than as a block.
    documents.create("secret", "t-json", {"value": {"user": "u", "password": f"{SECRET_TEXT}json", "ports": [1, 2]}})
    documents.create("secret", "t-number", {"value": 12345})
    documents.create("webhook", "t-dotted-header", {"url": f"{SECRET_TEXT}url", "headers": {"X.Token": f"{SECRET_TEXT}h"}})
    twins = {"X-Token": f"{SECRET_TEXT}dash", "X_Token": f"{SECRET_TEXT}underscore"}  # one variable name, two secrets
    documents.create("webhook", "t-twins", {"url": f"{SECRET_TEXT}url", "headers": twins})
    inline = {"aws_access_key_id": "AKIA1", "aws_secret_access_key": f"{SECRET_TEXT}inline"}
    documents.create("s3-bucket", "t-inline", {"bucket_name": "lake", "credentials": inline})
    documents.create("shell-operation", "t-dollar", {"commands": ["echo ${HOME} $${x}"]})
    # A nested block Prefect's client saved anonymously: exported inline, its secret as a placeholder.
    nested = {"aws_access_key_id": "AKIA2", "aws_secret_access_key": f"{SECRET_TEXT}anonymous"}
    anonymous = documents.create("aws-credentials", "anonymous-nested", nested, anonymous=True)
    documents.create("s3-bucket", "t-anonymous", {"bucket_name": "lake", "credentials": {"$ref": {"block_document_id": anonymous}}})
    documents.data["s3-bucket/t-anonymous"] = {"bucket_name": "lake", "credentials": nested}  # as the server reads it

    home = tmp_path / "home"
    home.mkdir()
    out = tmp_path / "exported"
    result = assert_ok(Workspace(tmp_path, own_server, home).run("export", "--kinds", "blocks", "--out", str(out)))
    assert SECRET_TEXT not in result.output
    for path in out.rglob("*"):
        if path.is_file():
            assert SECRET_TEXT not in path.read_text(), path

    exported = YAML(typ="safe").load((out / "blocks.yaml").read_text())["blocks"]
    assert sorted(exported) == sorted(documents.data), "every document of every block type is exported"
    env = exported_variables(out, documents)
    assert set(env) <= set(re.findall(r"^\s+([A-Z0-9_]+)\s+\(", result.stdout, re.M)), "export lists every variable it wrote"
    assert exported["secret/t-json"]["data"]["value"] == "${jsondecode(env.SECRET_T_JSON_VALUE)}"
    assert exported["secret/t-number"]["data"]["value"] == "${jsondecode(env.SECRET_T_NUMBER_VALUE)}"
    assert exported["s3-bucket/t-inline"]["data"]["credentials"] == {
        "aws_access_key_id": "AKIA1", "aws_secret_access_key": "${env.S3_BUCKET_T_INLINE_CREDENTIALS_AWS_SECRET_ACCESS_KEY}",
    }, "no invented secret fields (minio_root_password)"
    assert exported["github-repository/t-github-repository"]["data"] == {"repository_url": "x"}
    assert exported["s3-bucket/t-anonymous"]["data"]["credentials"]["aws_secret_access_key"].startswith("${env.")
    assert exported["shell-operation/t-dollar"]["data"]["commands"] == ["echo $${HOME} $$${x}"]

    planned = Workspace(out, own_server, home).plan(env=env)
    assert planned.exit_code == 0, f"the plan of the export is not empty:\n{planned.stdout}\n{planned.stderr}"
    assert SECRET_TEXT not in planned.output


def test_a_mapping_secret_stays_a_mapping_through_export_and_apply(own_server, own_api, documents, tmp_path):
    documents.create("secret", "t-map", {"value": {"user": "u", "password": f"{SECRET_TEXT}1"}})
    home = tmp_path / "home"
    home.mkdir()
    out = tmp_path / "exported"
    assert_ok(Workspace(tmp_path, own_server, home).run("export", "--kinds", "blocks", "--out", str(out)))
    exported = Workspace(out, own_server, home)
    env = exported_variables(out, documents)
    assert json.loads(env["SECRET_T_MAP_VALUE"]) == {"user": "u", "password": f"{SECRET_TEXT}1"}
    assert_ok(exported.plan(env=env), 0)

    # Another value: a (sensitive) change, and applying writes a mapping, not its JSON text.
    env["SECRET_T_MAP_VALUE"] = json.dumps({"user": "u", "password": f"{SECRET_TEXT}2"})
    planned = assert_ok(exported.plan(env=env), 2)
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in planned.stdout
    assert "~ value = (sensitive value) -> (sensitive value)" in planned.stdout
    assert_ok(exported.apply(env=env))
    body = {"block_documents": {"name": {"any_": ["t-map"]}}, "include_secrets": True}
    [document] = own_api.post("block_documents/filter", json=body).json()
    assert document["data"]["value"] == {"user": "u", "password": f"{SECRET_TEXT}2"}
    assert_ok(exported.plan(env=env), 0)


def exported_variables(out, documents: Documents) -> dict[str, str]:
    """The variable of every placeholder in an export, set to the live value it stands for."""
    exported = YAML(typ="safe").load((out / "blocks.yaml").read_text())["blocks"]
    env: dict[str, str] = {}
    for address, spec in exported.items():
        placeholders(spec["data"], documents.data[address], env)
    return env
