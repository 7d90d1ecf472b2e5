"""Any input to the configuration loader gives a Configuration, or errors that each name the file
(and the line, when the file could be parsed): never another exception, never a traceback.

Inputs: random bytes and text; random YAML documents built from the kinds' own field names,
resource names good and bad, and `${...}` expressions of every sort; damaged copies of the example
configurations; random prefect.yaml files; random strings given to the expression evaluator.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from ruamel.yaml import YAML

from provider.config import SETTINGS_KEYS, Configuration, load_configuration
from provider.errors import ConfigError, ConfigErrors
from provider.expressions import Evaluator, ExpressionError
from resources import KINDS

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_FILES = sorted(p for p in EXAMPLES.rglob("*.yaml") if p.parent.name != "github-actions")
VARIABLES = {"tag": "v1", "nested": {"a": [1, 2]}}

# Files beside the configuration (under files/, so not configuration themselves), for ${file(...)}
# and prefect.yaml entrypoints to read.
HELPERS: dict[str, str | bytes] = {
    "files/t.json": '{"a": 1, "b": [true, null]}',
    "files/bad.json": '{"a": ',
    "files/t.yaml": "a: [1, 2]\nb: {c: d}\n",
    "files/bad.yaml": "a: [1,\n",
    "files/text.txt": "plain text",
    "files/binary.dat": b"\xff\xfe\x00\x81",
    "flows.py": '@flow(name="named-flow")\ndef etl():\n    """Docs."""\n\n@flow(name=NAME)\ndef computed():\n    pass\n',
    "broken.py": "def (:\n",
}

EXPRESSIONS = [
    "${env.HOME}", "${env.PREFECT_PROVIDER_UNSET_FOR_TESTS}", "${var.tag}", "${var.nested}", "${var.missing}",
    '${file("files/t.json")}', '${file("files/bad.json")}', '${file("files/t.yaml")}', '${file("files/bad.yaml")}',
    '${file("files/text.txt")}', '${file("files/binary.dat")}', '${file("missing.json")}', '${file("")}', "${file('files')}", "${bogus.thing}", "${}",
    "$${literal}", "${", "}", "a-${var.tag}-b", "${var.nested}/x", "{{ prefect.blocks.secret.token }}", "${env.}",
]
RESOURCE_NAMES = [
    "p", "pool-a", "p/q", "etl/nightly", "secret/token", "aws-credentials/prod", "s3-bucket/lake", "x_y", "Bad Name",
    "", "a/b/c", "/x", "prefect-reserved", "UPPER", "émoji-✓", "1",
]
NESTED_FIELDS = [
    "cron", "interval", "rrule", "slug", "timezone", "anchor_date", "day_or", "max_scheduled_runs", "$ref", "expect",
    "match", "posture", "threshold", "within", "deployment", "prevent_destroy", "ignore_changes",
    "create_before_destroy", "from", "to", "s3", "local", "bucket", "key", "collision_strategy", "name",
    "work_queue_name", "provider", "region",
]
FIELDS = sorted({field for kind in KINDS.values() for field in kind.spec.model_fields} | set(NESTED_FIELDS))
TOP_LEVEL = [*KINDS, *SETTINGS_KEYS, "bogus_kind"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text(max_size=15),
    st.sampled_from(EXPRESSIONS), st.sampled_from(RESOURCE_NAMES), st.sampled_from(FIELDS),
)
keys = st.one_of(st.sampled_from(FIELDS), st.text(max_size=8))
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5), max_leaves=15
)
specs = st.one_of(st.dictionaries(keys, values, max_size=6), values)
kind_bodies = st.one_of(st.dictionaries(st.sampled_from(RESOURCE_NAMES) | st.text(max_size=10), specs, max_size=4), values)
documents = st.one_of(st.dictionaries(st.sampled_from(TOP_LEVEL), kind_bodies, max_size=4), values)


def dump(document: Any) -> str:
    from io import StringIO

    stream = StringIO()
    YAML(typ="safe", pure=True).dump(document, stream)
    return stream.getvalue()


def check_loads_or_reports(files: dict[str, str | bytes]) -> Configuration | None:
    """Write `files` beside the helpers and load the directory: a Configuration, or errors that
    each name one of the files (and a line of it, when it is YAML that parses)."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for name, content in {**HELPERS, **files}.items():
            path = directory / name
            path.parent.mkdir(exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
        try:
            return load_configuration(directory, VARIABLES)
        except ConfigErrors as exc:
            errors = exc.errors
        except ConfigError as exc:
            errors = [exc]
        assert errors, "ConfigErrors without any error"
        for error in errors:
            assert error.location is not None and error.location.file, f"no location: {error}"
            name = Path(error.location.file).name
            assert name in files, f"{error} names {name}, not one of {sorted(files)}"
            if error.location.line is not None:
                # YAML breaks lines at \r and at \x85 and \u2028 too, as str.splitlines does.
                lines = len((directory / name).read_text(errors="replace").splitlines()) + 1
                assert 1 <= error.location.line <= lines, f"{error}: no line {error.location.line} in {name}"
            elif _parses(directory / name):
                raise AssertionError(f"{error}: no line, though {name} is YAML that parses")
            assert error.message and "Traceback" not in str(error)
        return None


def _parses(path: Path) -> bool:
    try:
        YAML(typ="safe", pure=True).load(path.read_text())
    except Exception:  # noqa: BLE001 - any parse failure (or bad encoding) means "does not parse"
        return False
    return True


@given(st.binary(max_size=300))
def test_random_bytes(content):
    check_loads_or_reports({"main.yaml": content})


@given(st.text(max_size=300))
def test_random_text(content):
    check_loads_or_reports({"main.yaml": content})


@given(documents)
def test_random_documents(document):
    check_loads_or_reports({"main.yaml": dump(document)})


@given(documents, documents)
def test_random_documents_in_two_files(first, second):
    check_loads_or_reports({"a.yaml": dump(first), "b.yml": dump(second)})


@given(st.sampled_from(EXAMPLE_FILES), st.data())
def test_damaged_examples(example, data):
    """An example file with a random cut, insertion or repeated line (its ${file(...)}s may dangle)."""
    text = example.read_text()
    lines = text.splitlines(keepends=True)
    damage = data.draw(st.sampled_from(["cut", "insert", "repeat", "indent"]))
    at = data.draw(st.integers(0, len(text)))
    if damage == "cut":
        text = text[:at] + text[at + data.draw(st.integers(1, 40)):]
    elif damage == "insert":
        text = text[:at] + data.draw(st.text(max_size=20) | st.sampled_from([*EXPRESSIONS, ": ", "- ", "\n  ", "{", "&a", "*a"])) + text[at:]
    elif damage == "repeat":
        index = data.draw(st.integers(0, len(lines) - 1))
        text = "".join(lines[: index + 1] + lines[index:])
    else:
        index = data.draw(st.integers(0, len(lines) - 1))
        text = "".join(lines[:index] + [" " * data.draw(st.integers(1, 3)) + lines[index]] + lines[index + 1:])
    check_loads_or_reports({example.name: text})


YAML_EDGES = [  # str.format templates: {n} numbers anchors, {{ }} are braces
    "2020-13-45", "2020-01-01", "2020-01-01T10:00:00+02:00", "!foo bar", "!!binary aGVsbG8=", "&x{n} [*x{n}]", "&x{n} {{a: *x{n}}}",
    "*undefined", "!!set {{a, b}}", "!!omap [a: 1]", "0x1F", "1_000", ".inf", ".nan", "~", "yes", "!!str 1", "!!int x",
    "!!float x", "[a, &y{n} b, *y{n}]", "{{<<: {{a: 1}}, a: 2}}", "{{<<: [1]}}", "{{<<: *y{n}}}", "{{a: https://x.com/y}}",
    "{{a: 10:00}}", "{{a: 1, a: 2}}", "[1, 2", "'unterminated", "${{env.HOME}}", "{{{{ template }}}}",
]


@given(st.lists(st.sampled_from(YAML_EDGES), min_size=1, max_size=3), st.sampled_from(["value", "name", "spec", "kind"]))
def test_unusual_yaml(snippets, where):
    """Tags, anchors and aliases (recursive too), merge keys, timestamps, duplicate keys, flow style."""
    lines = []
    for index, edge in enumerate(snippets):
        snippet = edge.format(n=index)  # anchors named apart: YAML warns when one is reused
        lines += {
            "value": ["variables:", f"  v{index}: {{value: {snippet}}}"],
            "name": ["variables:", f"  {snippet}: {{value: 1}}"],
            "spec": ["variables:", f"  v{index}: {snippet}"],
            "kind": [f"{snippet}: {{}}"],
        }[where]
    check_loads_or_reports({"main.yaml": "\n".join(lines) + "\n"})


prefect_yaml_entries = st.dictionaries(
    st.sampled_from(["name", "entrypoint", "flow_name", "work_pool", "schedule", "schedules", "pull", "build", "push",
                     "concurrency_limit", "parameters", "tags", "triggers", "sla", "version_type", "description"])
    | st.text(max_size=6),
    st.one_of(values, st.sampled_from(["flows.py:etl", "flows.py:computed", "broken.py:f", "missing.py:f", "flows.py",
                                       ":f", "binary.dat:f", "sub:f", "x"])),
    max_size=7,
)


@given(st.one_of(st.dictionaries(st.sampled_from(["deployments", "pull", "build", "definitions", "name"]),
                                 st.lists(prefect_yaml_entries, max_size=3) | values, max_size=4), values))
def test_random_prefect_yaml(document):
    check_loads_or_reports({"prefect.yaml": dump(document)})


@given(st.text(max_size=60) | st.lists(st.sampled_from([*EXPRESSIONS, "x", " ", "$", "{", "}"]), max_size=6).map("".join))
def test_expressions_evaluate_or_raise_an_expression_error(text):
    evaluator = Evaluator(VARIABLES, environ={"HOME": "/home/user"})
    try:
        value = evaluator.evaluate(text, EXAMPLES)
    except ExpressionError as exc:
        assert str(exc)
        return
    if "${" not in text and "$${" not in text:
        assert value == text, "text without expressions is kept as written"


@given(st.text(alphabet=st.characters(blacklist_characters="$"), max_size=40))
def test_prefect_templates_and_plain_text_pass_through(text):
    template = "{{ " + text + " }}"
    assert Evaluator({}, environ={}).evaluate(template, EXAMPLES) == template
