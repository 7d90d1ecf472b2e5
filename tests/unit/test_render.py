"""The plan views: nested diffs show only what changes, the JSON plan names the changed nested
paths, and a value made from a server default shows only what was filled in. No server needed."""

from __future__ import annotations

import copy
import dataclasses
import json
import textwrap

import pytest

from provider.plan import Change, Plan, load_saved_plan
from provider.render import change_block, human, plan_json, plan_markdown

ADDRESS = "work_pools.p"


def change(address: str, action: str, before: dict | None, after: dict | None, **extra) -> Change:
    """A Change by keyword, with `kind` and `name` where the plan holds them as fields."""
    kind, _, name = address.partition(".")
    fields = {field.name for field in dataclasses.fields(Change)}
    extra.update({key: value for key, value in (("kind", kind), ("name", name)) if key in fields})
    return Change(address=address, action=action, before=before, after=after, **extra)


def body(before: dict | None, after: dict | None, sensitive: list[str] = (), action: str = "update", **extra) -> str:
    """The lines between `~ ADDRESS {` and the closing brace, dedented."""
    change_ = change(ADDRESS, action, before, after, sensitive=list(sensitive), **extra)
    lines = [text for _, text in change_block(change_)]
    start = next(i for i, text in enumerate(lines) if text.endswith(f"{ADDRESS} {{"))
    return textwrap.dedent("\n".join(lines[start + 1:-1]))


TEMPLATE = {
    "job_configuration": {"image": "{{ image }}", "env": "{{ env }}", "command": "{{ command }}"},
    "variables": {
        "type": "object",
        "properties": {
            "image": {"title": "Image", "type": "string", "description": "The image to run."},
            "env": {"title": "Environment", "type": "object"},
            "command": {"title": "Command", "type": "string"},
        },
    },
}


def with_image_default(template: dict, image: str) -> dict:
    changed = copy.deepcopy(template)
    changed["variables"]["properties"]["image"]["default"] = image
    return changed


CASES = [
    pytest.param(
        {"limit": 1, "name": "a"}, {"limit": 2, "name": "a"}, [],
        """\
        ~ limit = 1 -> 2
          # (1 unchanged attribute hidden)""",
        id="scalar",
    ),
    pytest.param(
        {"type": "docker", "template": TEMPLATE}, {"type": "docker", "template": with_image_default(TEMPLATE, "python:3.12")}, [],
        """\
        ~ template = {
            ~ variables = {
                ~ properties = {
                    ~ image = {
                        + default = "python:3.12"
                          # (3 unchanged attributes hidden)
                      }
                      # (2 unchanged attributes hidden)
                  }
                  # (1 unchanged attribute hidden)
              }
              # (1 unchanged attribute hidden)
          }
          # (1 unchanged attribute hidden)""",
        id="addition-at-depth",
    ),
    pytest.param(
        {"t": {"a": {"b": {"c": 1, "d": 2}}}}, {"t": {"a": {"b": {"d": 2}}}}, [],
        """\
        ~ t = {
            ~ a = {
                ~ b = {
                    - c = 1 -> null
                      # (1 unchanged attribute hidden)
                  }
              }
          }""",
        id="removal-at-depth",
    ),
    pytest.param(
        {"t": {"gone": {"x": 1, "y": [1, 2]}, "keep": 1}}, {"t": {"keep": 1}}, [],
        """\
        ~ t = {
            - gone = {"x": 1, "y": [1, 2]} -> null
              # (1 unchanged attribute hidden)
          }""",
        id="mapping-removed-whole",
    ),
    pytest.param(
        {"a": None, "b": "x", "c": None, "d": 1}, {"a": "now", "b": None, "d": 1}, [],
        """\
        + a = "now"
        - b = "x" -> null
          # (2 unchanged attributes hidden)""",
        id="null-is-absent",
    ),
    pytest.param(
        {"x": {"a": 1}}, {"x": "flat"}, [],
        """~ x = {"a": 1} -> \"flat\"""",
        id="type-change",
    ),
    pytest.param(
        {"tags": ["a", "b", "c", "d"]}, {"tags": ["a", "c", "d", "e"]}, [],
        """\
        ~ tags = [
              # (1 unchanged element hidden)
            - "b"
              # (2 unchanged elements hidden)
            + "e"
          ]""",
        id="list-of-scalars",
    ),
    pytest.param(
        {"containers": [{"name": "a", "image": "x:1", "cpu": 1}, {"name": "b", "image": "y:1"}]},
        {"containers": [{"name": "a", "image": "x:2", "cpu": 1}, {"name": "b", "image": "y:1"}, {"name": "c"}]}, [],
        """\
        ~ containers = [
            ~ {
                ~ image = "x:1" -> "x:2"
                  # (2 unchanged attributes hidden)
              }
              # (1 unchanged element hidden)
            + {"name": "c"}
          ]""",
        id="list-of-mappings",
    ),
    pytest.param(
        {"rows": [[1, 2], [3]]}, {"rows": [[1, 5], [3]]}, [],
        """\
        ~ rows = [
            ~ [
                  # (1 unchanged element hidden)
                ~ 2 -> 5
              ]
              # (1 unchanged element hidden)
          ]""",
        id="list-of-lists",
    ),
    pytest.param(
        {"data": {"password": "fp:1", "user": "u", "deep": {"token": "fp:2"}}},
        {"data": {"password": "fp:3", "user": "u", "deep": {"token": "fp:2"}, "key": "fp:4"}},
        ["data.password", "data.deep.token", "data.key"],
        """\
        ~ data = {
            ~ password = (sensitive value) -> (sensitive value)
            + key      = (sensitive value)
              # (2 unchanged attributes hidden)
          }""",
        id="secrets",
    ),
    pytest.param(
        {"data": {"creds": {"id": "a", "secret": "fp:1"}}}, {"data": {"creds": None}}, ["data.creds.secret"],
        """\
        ~ data = {
            - creds = {"id": "a", "secret": "(sensitive value)"} -> null
          }""",
        id="secret-inside-a-removed-mapping",
    ),
    pytest.param(
        {"data": {"value": {"user": "etl", "password": "pw-1"}}}, {"data": {"value": {"user": "etl", "password": "pw-2"}}},
        ["data.value"],
        """\
        ~ data = {
            ~ value = (sensitive value) -> (sensitive value)
          }""",
        id="secret-mapping-changed-inside",
    ),
]


@pytest.mark.parametrize(("before", "after", "sensitive", "expected"), CASES)
def test_update_shows_only_what_changes(before, after, sensitive, expected):
    assert body(before, after, sensitive) == textwrap.dedent(expected)


def test_a_create_shows_everything_but_nulls_and_hides_nothing():
    shown = body(None, {"name": "a", "description": None, "tags": {"x": "1"}, "big": {"k": "v" * 90}}, action="create")
    assert shown == textwrap.dedent(f"""\
        + name = "a"
        + tags = {{"x": "1"}}
        + big  = {{
            + k = "{'v' * 90}"
          }}""")


def test_a_secret_is_never_printed_in_any_view():
    rotated = change("blocks.secret/s", "update", {"data": {"value": "fp:old"}}, {"data": {"value": "fp:new"}},
                     sensitive=["data.value"])
    plan = Plan([rotated])
    for text in (human(plan).plain, plan_markdown(plan), json.dumps(plan_json(plan))):
        assert "fp:old" not in text and "fp:new" not in text


SERVER_DEFAULT = {"attribute": "base_job_template", "label": "server default `docker` template", "value": TEMPLATE}


def test_a_value_made_from_a_server_default_shows_only_what_was_filled_in():
    after = {"type": "docker", "base_job_template": with_image_default(TEMPLATE, "python:3.12")}
    shown = body(None, after, action="create", server_default=SERVER_DEFAULT)
    assert shown == textwrap.dedent("""\
        + type              = "docker"
        + base_job_template = (server default `docker` template) {
            + variables.properties.image.default = "python:3.12"
          }""")


def test_the_server_default_unchanged_shows_the_label_alone():
    shown = body(None, {"type": "docker", "base_job_template": TEMPLATE}, action="create", server_default=SERVER_DEFAULT)
    assert "(server default `docker` template) {\n  }" in shown and "Image" not in shown


def json_change(planned: Change) -> dict:
    return plan_json(Plan([planned]))["resource_changes"][0]["change"]


@pytest.mark.parametrize(("planned_change", "paths"), [
    pytest.param(change(ADDRESS, "update", {"type": "docker", "t": TEMPLATE, "limit": 1},
                        {"type": "docker", "t": with_image_default(TEMPLATE, "x"), "limit": 2}),
                 {"t": [["variables", "properties", "image", "default"]], "limit": [[]]}, id="update"),
    pytest.param(change(ADDRESS, "update", {"c": [{"image": "a"}, {"image": "b"}]}, {"c": [{"image": "a"}, {"image": "c"}]}),
                 {"c": [[1, "image"]]}, id="list-index"),
    pytest.param(change(ADDRESS, "create", None, {"type": "docker", "base_job_template": with_image_default(TEMPLATE, "x")},
                        server_default=SERVER_DEFAULT),
                 {"base_job_template": [["variables", "properties", "image", "default"]]}, id="create-from-default"),
    pytest.param(change(ADDRESS, "create", None, {"type": "docker"}), {}, id="create"),
    pytest.param(change(ADDRESS, "no-op", {"t": TEMPLATE}, {"t": TEMPLATE}), {}, id="no-op"),
])
def test_the_json_plan_lists_changed_nested_paths(planned_change, paths):
    planned = json_change(planned_change)
    assert planned["changed_paths"] == paths
    assert {"actions", "before", "after", "after_unknown", "before_sensitive", "after_sensitive"} <= set(planned)


def test_the_json_plan_names_paths_of_secrets_not_their_values():
    rotated = change("blocks.secret/s", "update", {"data": {"value": "fp:old"}}, {"data": {"value": "fp:new"}},
                     sensitive=["data.value"])
    planned = json_change(rotated)
    assert planned["changed_paths"] == {"data": [["value"]]}
    assert planned["after"]["data"]["value"] == "(sensitive value)"


def test_markdown_folds_the_same_short_diff():
    plan = Plan([change(ADDRESS, "update", {"t": TEMPLATE}, {"t": with_image_default(TEMPLATE, "python:3.12")})])
    text = plan_markdown(plan)
    assert '+ default = "python:3.12"' in text and "(3 unchanged attributes hidden)" in text
    assert "The image to run." not in text


def test_a_saved_plan_keeps_the_server_default(tmp_path):
    created = change(ADDRESS, "create", None, {"type": "docker", "base_job_template": with_image_default(TEMPLATE, "x")},
                     server_default=SERVER_DEFAULT)
    path = tmp_path / "p.plan"
    path.write_text(json.dumps(Plan([created], lineage="l", serial=1).to_file()))
    loaded = load_saved_plan(path).changes[0]
    assert loaded.server_default == SERVER_DEFAULT
    assert human(load_saved_plan(path)).plain == human(Plan([created])).plain
