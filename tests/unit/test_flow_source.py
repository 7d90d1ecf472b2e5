"""provider/flow_source.py against Prefect 3.8.8 itself.

Every flow in tests/cases/flows/*.py, read from its source, must give the name, version, description and
parameter schema that `prefect deploy` derives by importing it (prefect/cli/deploy/_core.py:
`load_flow_from_entrypoint`, `parameter_schema(flow)`, `RunnerDeployment._set_defaults_from_flow`), computed
here in the test process. Each file in tests/cases/flows/invalid/ is a flow Prefect refuses; its first line says
the line, field and message of the error expected. No Prefect server is needed.
"""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provider.errors import Location
from provider.flow_source import FlowInfo, FlowSourceError, read_flow

ROOT = Path(__file__).resolve().parents[2]
FLOWS = ROOT / "tests" / "cases" / "flows"
INVALID = FLOWS / "invalid"
# Files whose every annotation and default the source alone tells; the others are listed below.
NEEDS_INTERPRETER = {"needs_interpreter_local_model.py"}
# Imports a package that is not installed: prefect deploy cannot import the module either, falls back to
# reading the source (prefect.flows.safe_load_flow_from_entrypoint), and then sets no version. We give the file
# hash, as prefect deploy does where the flow's dependencies are installed (docs/parameter-schemas.md).
NOT_IMPORTABLE = {"unresolvable_imports.py"}


def decorated_functions(directory: Path) -> list[tuple[str, str]]:
    """Every decorated top-level function, and every `name = flow(...)` / `name = x.with_options(...)`."""
    cases = []
    for path in sorted(directory.glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.decorator_list:
                cases.append((path.name, node.name))
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and (
                    "flow(" in ast.unparse(node.value).lower() or ".with_options(" in ast.unparse(node.value)):
                cases.append((path.name, node.targets[0].id))
    return cases


def prefect_deploy_view(path: Path, function: str) -> dict[str, Any]:
    """What prefect deploy takes from the flow at path:function."""
    from prefect.flows import load_flow_from_entrypoint
    from prefect.utilities.callables import parameter_schema

    flow = load_flow_from_entrypoint(f"{path}:{function}")
    return {
        "name": flow.name,
        "version": flow.version,
        "description": flow.description,
        "parameter_schema": parameter_schema(flow).model_dump(exclude_unset=True),
    }


def as_dict(info: FlowInfo) -> dict[str, Any]:
    return {"name": info.name, "version": info.version, "description": info.description,
            "parameter_schema": info.parameter_schema}


STATIC_CASES = [case for case in decorated_functions(FLOWS) if case[0] not in NEEDS_INTERPRETER]


@pytest.mark.parametrize(("file", "function"), STATIC_CASES, ids=[f"{f}:{fn}" for f, fn in STATIC_CASES])
def test_read_from_source_matches_prefect_deploy(file: str, function: str) -> None:
    expected = prefect_deploy_view(FLOWS / file, function)
    if file in NOT_IMPORTABLE:
        assert expected["version"] is None
        expected["version"] = hashlib.md5((FLOWS / file).read_bytes()).hexdigest()

    info = read_flow(f"{file}:{function}", FLOWS)

    got = as_dict(info)
    for field in ("name", "version", "description"):
        assert got[field] == expected[field], field
    schema, expected_schema = got["parameter_schema"], expected["parameter_schema"]
    assert list(schema["properties"]) == list(expected_schema["properties"])
    for parameter, expected_property in expected_schema["properties"].items():
        assert schema["properties"][parameter] == expected_property, parameter
    assert schema == expected_schema
    assert json.loads(json.dumps(schema)) == schema  # sent as JSON as it is
    assert bool(info.notes) == (file in NOT_IMPORTABLE), info.notes


# The stub flows of the prefect.yaml corpus (tests/corpus/prefect_yaml/*/, real projects' flows) are read too.
CORPUS = ROOT / "tests" / "corpus" / "prefect_yaml"
CORPUS_CASES = [
    (str(path.relative_to(CORPUS)), node.name)
    for path in sorted(CORPUS.rglob("*.py"))
    for node in ast.parse(path.read_text()).body
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.decorator_list
]


@pytest.mark.parametrize(("file", "function"), CORPUS_CASES, ids=[f"{f}:{fn}" for f, fn in CORPUS_CASES])
def test_corpus_flows_match_prefect_deploy(file: str, function: str) -> None:
    path = CORPUS / file
    expected = prefect_deploy_view(path, function)

    info = read_flow(f"{path.name}:{function}", path.parent)

    assert as_dict(info) == expected
    assert info.notes == []


def test_unresolvable_annotations_and_defaults_are_noted() -> None:
    info = read_flow("unresolvable_imports.py:uses_user_models", FLOWS)

    noted = {(note.split("parameter ")[1].split(":")[0], note.split(": ")[2].split(" ")[0]) for note in info.notes}
    assert noted == {("'config'", "annotation"), ("'mode'", "annotation"), ("'mode'", "default"),
                     ("'limit'", "default"), ("'maybe'", "annotation")}
    assert all("--flow-python" in note and "unresolvable_imports.py:" in note for note in info.notes)


INVALID_CASES = sorted(path.name for path in INVALID.glob("*.py"))


@pytest.mark.parametrize("file", INVALID_CASES)
def test_flows_prefect_refuses_are_errors_naming_file_line_and_field(file: str) -> None:
    path = INVALID / file
    line, field, message = (part.strip() for part in path.read_text().splitlines()[0][len("# error:"):].split("|"))
    function = path.stem
    with pytest.raises(Exception):  # noqa: B017 - Prefect's own refusal, whatever its type
        prefect_deploy_view(path, function)

    with pytest.raises(FlowSourceError) as caught:
        read_flow(f"{file}:{function}", INVALID)

    error = caught.value
    assert error.location is not None and error.location.file == str(path)
    assert error.location.line == (None if line == "None" else int(line))
    assert error.field == (field or None)
    assert message in error.message
    assert str(error).startswith(f"{path}:{line}: " if line != "None" else f"{path}: ")


@pytest.mark.parametrize("entrypoint", ["no_such_file.py:flow", "builtins_and_defaults.py:", "nodots"])
def test_bad_entrypoints_are_errors(entrypoint: str) -> None:
    with pytest.raises(FlowSourceError) as caught:
        read_flow(entrypoint, FLOWS)
    assert caught.value.field == "entrypoint"
    assert entrypoint in caught.value.message


def test_module_path_entrypoint(tmp_path: Path) -> None:
    package = tmp_path / "pipelines"
    package.mkdir()
    (package / "__init__.py").write_text("")
    shutil.copy(FLOWS / "signatures.py", package / "signatures.py")

    info = read_flow("pipelines.signatures.google_docstring", tmp_path)

    assert as_dict(info) == as_dict(read_flow("signatures.py:google_docstring", FLOWS))


# --- Prefect in another interpreter -------------------------------------------------------------------------

LOCAL_MODEL = "needs_interpreter_local_model.py:load_window"


def test_unreadable_models_without_interpreter_get_prefects_open_schema_and_notes() -> None:
    info = read_flow(LOCAL_MODEL, FLOWS)

    assert info.parameter_schema == {
        "title": "Parameters",
        "type": "object",
        "properties": {
            "window": {"title": "window", "position": 0, "description": "what to load"},
            "target": {"title": "target", "position": 1},
            "limit": {"title": "limit", "position": 2, "default": 10, "type": "integer"},
        },
        "required": ["window", "target"],
    }
    assert [note.split(": ")[1] for note in info.notes] == ["parameter 'window'", "parameter 'target'"]
    assert "any_days is a 'plain' validator" in info.notes[0]
    assert "Target is imported from flow_support.models" in info.notes[1]
    assert all("--flow-python" in note for note in info.notes)
    assert info.name == "load-window"


def copy_project(destination: Path) -> Path:
    destination.mkdir()
    shutil.copy(FLOWS / "needs_interpreter_local_model.py", destination / "flow.py")
    shutil.copytree(FLOWS / "flow_support", destination / "flow_support")
    return destination / "flow.py"


def test_flow_python_runs_prefects_own_derivation(tmp_path: Path) -> None:
    expected = prefect_deploy_view(FLOWS / "needs_interpreter_local_model.py", "load_window")
    assert expected["parameter_schema"]["definitions"]  # the models are really described

    info = read_flow(LOCAL_MODEL, FLOWS, flow_python=sys.executable, cache_dir=tmp_path)

    assert as_dict(info) == expected
    assert info.notes == []


def test_flow_python_result_is_cached_by_the_files_content(tmp_path: Path) -> None:
    project, cache = tmp_path / "project", tmp_path / "cache"
    flow_file = copy_project(project)
    entrypoint = "flow.py:load_window"

    started = time.perf_counter()
    first = read_flow(entrypoint, project, flow_python=sys.executable, cache_dir=cache)
    uncached = time.perf_counter() - started
    [cached_file] = cache.iterdir()
    # The cache is what is read: a changed entry shows through while the file is unchanged.
    cached_file.write_text(json.dumps({**json.loads(cached_file.read_text()), "name": "from-the-cache"}))
    started = time.perf_counter()
    assert read_flow(entrypoint, project, flow_python=sys.executable, cache_dir=cache).name == "from-the-cache"
    assert time.perf_counter() - started < uncached

    flow_file.write_text(flow_file.read_text() + "\n# changed\n")
    changed = read_flow(entrypoint, project, flow_python=sys.executable, cache_dir=cache)

    assert changed.name == first.name == "load-window"
    assert changed.version == hashlib.md5(flow_file.read_bytes()).hexdigest() != first.version
    assert len(list(cache.iterdir())) == 2

    # A project module the flow imports counts too: the model gains a field.
    models = project / "flow_support" / "models.py"
    models.write_text(models.read_text() + "    batch: int = 5\n")
    remodelled = read_flow(entrypoint, project, flow_python=sys.executable, cache_dir=cache)

    assert "batch" in remodelled.parameter_schema["definitions"]["Target"]["properties"]
    assert "batch" not in changed.parameter_schema["definitions"]["Target"]["properties"]
    assert len(list(cache.iterdir())) == 3


def test_default_cache_dir_is_under_the_project(tmp_path: Path) -> None:
    project = tmp_path / "project"
    copy_project(project)

    read_flow("flow.py:load_window", project, flow_python=sys.executable)

    assert len(list((project / ".prefect-provider" / "cache").glob("flow-*.json"))) == 1


def test_a_model_documented_by_its_source_needs_the_interpreter(tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(
        "from pydantic import BaseModel, ConfigDict\nfrom prefect import flow\n\n\nclass M(BaseModel):\n"
        "    model_config = ConfigDict(use_attribute_docstrings=True)\n    x: int\n    \"\"\"The x.\"\"\"\n\n\n"
        "@flow\ndef f(m: M):\n    pass\n")

    static = read_flow("flow.py:f", tmp_path)
    assert static.parameter_schema["properties"]["m"] == {"title": "m", "position": 0}
    assert len(static.notes) == 1 and "takes field descriptions from its source" in static.notes[0]

    info = read_flow("flow.py:f", tmp_path, flow_python=sys.executable)
    assert as_dict(info) == prefect_deploy_view(tmp_path / "flow.py", "f")
    assert info.parameter_schema["definitions"]["M"]["properties"]["x"]["description"] == "The x."


def test_flow_python_failure_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text("import not_installed_anywhere\nfrom prefect import flow\n\n"
                                      "@flow(name=make_name())\ndef f():\n    pass\n")
    with pytest.raises(FlowSourceError) as caught:
        read_flow("flow.py:f", tmp_path, flow_python=sys.executable, cache_dir=tmp_path / "cache")
    assert "could not load flow.py:f" in caught.value.message


ONLY_IMPORTING_TELLS = {
    "a computed name": ("import os\nfrom prefect import flow\n\n@flow(name=os.environ['FLOW'])\ndef f():\n    pass\n",
                        "f", 4),
    "a decorator above @flow": ("from prefect import flow\nfrom mylib import register\n\n@register\n@flow\n"
                                "def f():\n    pass\n", "f", 4),
    "a flow imported from elsewhere": ("from pipelines.flows import f\n", "f", 1),
    "a flow made by other code": ("from prefect import flow\nfrom factory import make\n\nf = make(flow)\n", "f", 4),
    "a method": ("from prefect import flow\n\nclass Jobs:\n    @flow\n    def f(self):\n        pass\n",
                 "Jobs.f", None),
}


@pytest.mark.parametrize("case", ONLY_IMPORTING_TELLS)
def test_flows_only_importing_tells_are_errors_pointing_to_flow_python(tmp_path: Path, case: str) -> None:
    source, function, line = ONLY_IMPORTING_TELLS[case]
    (tmp_path / "flow.py").write_text(source)

    with pytest.raises(FlowSourceError) as caught:
        read_flow(f"flow.py:{function}", tmp_path)

    assert caught.value.location == Location(str(tmp_path / "flow.py"), line)
    assert caught.value.field == "entrypoint"
    assert "pass --flow-python PATH" in caught.value.message


def test_a_decorator_below_flow_is_noted(tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text("from prefect import flow\nfrom mylib import traced\n\n@flow\n@traced\n"
                                      "def f(x: int = 1):\n    pass\n")

    info = read_flow("flow.py:f", tmp_path)

    assert info.parameter_schema["properties"] == {"x": {"title": "x", "position": 0, "default": 1, "type": "integer"}}
    assert len(info.notes) == 1 and info.notes[0].startswith(f"{tmp_path / 'flow.py'}:5: f: ")
    assert "@traced" in info.notes[0]


def test_reading_never_imports_prefect_or_the_flow() -> None:
    script = (
        "import sys; from pathlib import Path; from provider.flow_source import read_flow\n"
        f"info = read_flow('stdlib_types.py:stdlib_defaults', Path({str(FLOWS)!r}))\n"
        "assert info.parameter_schema['properties']\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('prefect', 'stdlib_types')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# --- random signatures --------------------------------------------------------------------------------------

RANDOM_FLOW_HEADER = '''
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Dict, List, Literal, Optional, Union
from uuid import UUID

from pydantic import BaseModel, Field

from prefect import flow

if TYPE_CHECKING:
    from pandas import DataFrame


class Color(str, Enum):
    RED = "red"
    BLUE = "blue"


class Model(BaseModel):
    """A model."""

    name: str
    size: int = Field(1, ge=0)
    color: Color = Color.RED

'''
ANNOTATIONS = [None, "int", "str", "float", "bool", "bytes", "list[int]", "dict[str, float]", "Optional[str]",
               "Union[int, str]", "int | None", "Literal['a', 'b']", "tuple[int, str]", "set[str]", "datetime",
               "date", "timedelta", "Path", "UUID", "Decimal", "Any", "List[Dict[str, Any]]",
               "Annotated[int, Field(ge=0, description='annotated')]", "Color", "Model", "Optional[Model]",
               "list[Color]", "'int'"]
DEFAULTS = [None, "None", "1", "-2.5", "'x'", "True", "[1, 2]", "{'a': 1}", "(1, 'a')", "date(2024, 1, 2)",
            "datetime(2024, 1, 2, 3, 4)", "timedelta(minutes=5)", "Path('/tmp')", "Color.RED",
            "Field(3, description='from Field')", "Model(name='m')", "Decimal('1.5')"]


@st.composite
def flow_sources(draw: st.DrawFn) -> str:
    # With `from __future__ import annotations`, a type-checking-only name makes eval_str fail as a whole.
    future = draw(st.booleans())
    annotations = ANNOTATIONS + ["DataFrame", "Optional[DataFrame]"] if future else ANNOTATIONS
    parameter = st.tuples(st.sampled_from(annotations), st.sampled_from(DEFAULTS), st.booleans())
    positional = draw(st.lists(parameter, max_size=6))
    keyword_only = draw(st.lists(parameter, max_size=3))
    # Python wants positional parameters without defaults first.
    positional.sort(key=lambda p: p[1] is not None)

    def render(index: int, annotation: str | None, default: str | None) -> str:
        return f"p{index}" + (f": {annotation}" if annotation else "") + (f" = {default}" if default else "")

    rendered = [render(i, a, d) for i, (a, d, _) in enumerate(positional)]
    if keyword_only:
        rendered.append("*")
        rendered += [render(len(positional) + i, a, d) for i, (a, d, _) in enumerate(keyword_only)]
    documented = [i for i, (_, _, doc) in enumerate(positional + keyword_only) if doc]
    docstring = ""
    if documented:
        docstring = '    """A random flow.\n\n    Args:\n' + "".join(
            f"        p{i}: parameter number {i}\n" for i in documented) + '    """\n'
    decorator = draw(st.sampled_from(["@flow", "@flow()", "@flow(name='random-flow', version='3')"]))
    header = ("from __future__ import annotations\n" if future else "") + RANDOM_FLOW_HEADER
    return f"{header}\n{decorator}\ndef random_flow({', '.join(rendered)}):\n{docstring}    pass\n"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(source=flow_sources())
def test_random_signatures_match_prefect_deploy(tmp_path: Path, source: str) -> None:
    flow_file = tmp_path / f"random_{hashlib.md5(source.encode()).hexdigest()}.py"  # a fresh module each time
    flow_file.write_text(source)

    expected = prefect_deploy_view(flow_file, "random_flow")
    info = read_flow(f"{flow_file.name}:random_flow", tmp_path)

    assert as_dict(info) == expected, source
    assert info.notes == []
