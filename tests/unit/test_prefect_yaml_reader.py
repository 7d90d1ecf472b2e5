"""The prefect.yaml reader (provider/prefect_yaml.py) and Prefect's templating (provider/templating.py),
offline: each case writes a prefect.yaml (and its flow files) and reads it as a configuration, as
`prefect-provider validate` does, checking the deployment specs, errors and notes against what
`prefect deploy` of Prefect 3.8.8 makes of the same file. No server: variable and block templates
are checked against a stand-in for the server's answers.
"""

from __future__ import annotations

import hashlib
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from provider.config import load_configuration
from provider.errors import ConfigErrors
from provider.templating import NOT_SET, ServerLookups, TemplateError, resolve_server_templates
from resources import CATALOG
from resources.base import Address

FLOWS = '''\
from prefect import flow


@flow(name="etl-flow")
def etl(full_refresh: bool = False):
    """Load the warehouse."""


@flow(version="7.1", description="Loads things")
def load_data(limit: int = 10):
    pass


@flow
def quiet():
    pass
'''


@dataclass
class Case:
    id: str
    prefect_yaml: str
    expect: dict[str, dict[str, Any]] = field(default_factory=dict)  # address -> spec fields
    errors: list[str] = field(default_factory=list)  # each must appear in one error
    notes: list[str] = field(default_factory=list)  # each must appear in one note
    step_outputs: dict[str, dict[str, Any]] | None = field(default_factory=dict)  # None: not checked
    env: dict[str, str] = field(default_factory=dict)
    absent: list[str] = field(default_factory=list)  # addresses that must not be read


class Md5:
    """Stands for the MD5 of a flow file, the version Prefect gives a flow without `version=`."""

    def __init__(self, relative: str):
        self.relative = relative


POOL = "work_pool: {name: pool}"

CASES = [
    Case(
        "slugless and legacy schedules are read; both at once are refused",
        f"""\
        deployments:
          - name: many
            entrypoint: flows/etl.py:etl
            {POOL}
            schedules:
              - cron: "0 1 * * *"
              - interval: 600
                timezone: Europe/Berlin
              - slug: named
                rrule: "FREQ=DAILY"
          - name: legacy
            entrypoint: flows/etl.py:etl
            {POOL}
            schedule: {{cron: "0 2 * * *", timezone: America/Chicago}}
          - name: both
            entrypoint: flows/etl.py:etl
            {POOL}
            schedule: {{cron: "0 2 * * *"}}
            schedules: []
        """,
        expect={
            "deployments.etl-flow/many": {"schedules": [
                {"cron": "0 1 * * *"}, {"interval": 600, "timezone": "Europe/Berlin"}, {"slug": "named", "rrule": "FREQ=DAILY"},
            ]},
            "deployments.etl-flow/legacy": {"schedules": [{"cron": "0 2 * * *", "timezone": "America/Chicago"}]},
        },
        errors=["prefect.yaml:18: deployments[2].schedule: both schedule and schedules are given"],
    ),
    Case(
        "keys prefect deploy ignores are notes naming their line",
        """\
        deployments:
          - name: extra
            entrypoint: flows/etl.py:etl
            is_schedule_active: false
            parameter_openapi_schema: {type: object}
            paramters: {full_refresh: true}
            work_pool:
              name: pool
              infra_overrides: {image: x}
            version_type: vcs:git
        """,
        expect={"deployments.etl-flow/extra": {"parameters": None, "work_pool": "pool", "job_variables": None}},
        notes=[
            "prefect.yaml:4: deployments[0].is_schedule_active: is_schedule_active is not a prefect.yaml field: "
            "prefect deploy ignores it, and so does prefect-provider (give each schedule `active: false` instead)",
            "prefect.yaml:5: deployments[0].parameter_openapi_schema: parameter_openapi_schema is not a prefect.yaml "
            "field: prefect deploy ignores it",
            "prefect.yaml:6: deployments[0].paramters: paramters is not a prefect.yaml field",
            "prefect.yaml:9: deployments[0].work_pool.infra_overrides: infra_overrides is not a prefect.yaml field",
            "prefect.yaml:10: deployments[0].version_type: version_type is ignored",
        ],
    ),
    Case(
        "environment variables and step outputs are resolved where prefect deploy resolves them",
        """\
        build:
          - prefect_docker.deployments.steps.build_docker_image:
              id: build-image
              image_name: registry.example.com/etl
              tag: "{{ $GIT_SHA }}"
        pull:
          - prefect.deployments.steps.git_clone:
              id: clone
              repository: "{{ $REPO_URL }}"
              access_token: "{{ prefect.blocks.secret.repo-token }}"
          - prefect.deployments.steps.pip_install_requirements:
              directory: "{{ clone.directory }}"
              image: "{{ build-image.image }}"
        deployments:
          - name: nightly
            entrypoint: flows/etl.py:etl
            version: "{{ build-image.tag }}"
            tags: [etl, "{{ $TEAM }}", "team-{{ $TEAM }}"]
            parameters: {home: "{{ HOME_DIR }}", run: "{{ ctx.flow_run.id }}", unset: "x{{ $NOT_SET_ANYWHERE }}"}
            work_pool:
              name: "pool-{{ $TEAM }}"
              job_variables:
                image: "{{ build-image.image }}"
                env: {SHA: "{{ $GIT_SHA }}", TOKEN: "{{ prefect.blocks.secret.api-token }}"}
            triggers:
              - expect: [external.thing.happened]
                match: {prefect.resource.id: "thing.{{ build-image.tag }}"}
                parameters: {thing: "{{ event.resource.id }}", image: "{{ build-image.image }}"}
        """,
        step_outputs={"build-image": {"image": "registry.example.com/etl:abc123", "tag": "abc123"}},
        env={"GIT_SHA": "abc123", "REPO_URL": "https://github.com/org/repo.git", "TEAM": "data", "HOME_DIR": "/home/x"},
        expect={"deployments.etl-flow/nightly": {
            "version": "abc123",
            "tags": ["etl", "data", "team-data"],
            "parameters": {"home": "/home/x", "run": "{{ ctx.flow_run.id }}", "unset": "x"},
            "work_pool": "pool-data",
            "job_variables": {"image": "registry.example.com/etl:abc123",
                              "env": {"SHA": "abc123", "TOKEN": "{{ prefect.blocks.secret.api-token }}"}},
            "pull_steps": [
                {"prefect.deployments.steps.git_clone": {
                    "id": "clone", "repository": "https://github.com/org/repo.git",
                    "access_token": "{{ prefect.blocks.secret.repo-token }}"}},
                {"prefect.deployments.steps.pip_install_requirements": {
                    "directory": "{{ clone.directory }}", "image": "registry.example.com/etl:abc123"}},
            ],
            "triggers": [{  # as the spec nests a deployment trigger's own fields
                "trigger": {"type": "event", "expect": ["external.thing.happened"],
                            "match": {"prefect.resource.id": "thing.abc123"}},
                "parameters": {"thing": "{{ event.resource.id }}", "image": "{{ build-image.image }}"},
            }],
        }},
        notes=["prefect.yaml:19: deployments[0].parameters.unset: {{ $NOT_SET_ANYWHERE }}: environment variable "
               "NOT_SET_ANYWHERE is not set, so it is written as an empty string",
               "build and push steps are not run by prefect-provider (build-image)"],
    ),
    Case(
        "a step output used and not supplied is an error naming the template, its line and the flag",
        """\
        build:
          - prefect_docker.deployments.steps.build_docker_image: {id: build-image, image_name: x, tag: y}
        deployments:
          - name: nightly
            entrypoint: flows/etl.py:etl
            version: "{{ build-image.tag }}"
            work_pool:
              name: pool
              job_variables: {image: "{{ build-image.image }}", label: "v-{{ image_id }}",
                              run: "{{ flow_run.name }}"}
        """,
        errors=[
            "prefect.yaml:6: deployments[0].version: {{ build-image.tag }} has no value: it is the output of a build "
            "or push step, which prefect-provider does not run; supply it with --step-output build-image.tag=VALUE",
            "prefect.yaml:9: deployments[0].work_pool.job_variables.image: {{ build-image.image }} has no value",
            "prefect.yaml:9: deployments[0].work_pool.job_variables.label: {{ image_id }} has no value: "
            "it is the output of a build or push step, which prefect-provider does not run; supply it with "
            "--step-output STEP_ID.image_id=VALUE",
            "prefect.yaml:10: deployments[0].work_pool.job_variables.run: {{ flow_run.name }} has no value: no build "
            "or push step of this file has the id 'flow_run', so prefect deploy would drop it; supply it with "
            "--step-output flow_run.name=VALUE, or write {{ ctx.flow_run.name }} for a value of the flow run",
        ],
    ),
    Case(
        "a step's outputs are also found by their own name, as prefect's run_steps merges them",
        f"""\
        deployments:
          - name: nightly
            entrypoint: flows/etl.py:etl
            version: "{{{{ tag }}}}"
            {POOL}
        """,
        step_outputs={"build-image": {"tag": "v9"}},
        expect={"deployments.etl-flow/nightly": {"version": "v9"}},
    ),
    Case(
        "without known step outputs (e.g. state commands) their templates are kept, not reported",
        f"""\
        deployments:
          - name: nightly
            entrypoint: flows/etl.py:etl
            version: "{{{{ build-image.tag }}}}"
            {POOL}
        """,
        step_outputs=None,
        expect={"deployments.etl-flow/nightly": {"version": "{{ build-image.tag }}"}},
    ),
    Case(
        "a list item that is only a step-output template is dropped, as prefect deploy drops it",
        f"""\
        deployments:
          - name: nightly
            entrypoint: flows/etl.py:etl
            tags: [first, "{{{{ build-image.tag }}}}", last]
            {POOL}
        """,
        step_outputs={"build-image": {"tag": "v9"}},
        expect={"deployments.etl-flow/nightly": {"tags": ["first", "last"]}},
        notes=["prefect.yaml:4: deployments[0].tags[1]: {{ build-image.tag }} is dropped from this list"],
    ),
    Case(
        "the flow gives name, version, description and parameter schema; tags keep their order",
        f"""\
        deployments:
          - name: a
            entrypoint: flows/etl.py:etl
            tags: [zeta, alpha, zeta]
            {POOL}
          - name: b
            entrypoint: flows/etl.py:load_data
            flow_name: something-else
            {POOL}
          - name: c
            entrypoint: flows/etl.py:quiet
            description: Mine
            version: "3"
            {POOL}
          - name: d
            entrypoint: flows/etl.py:quiet
            {POOL}
        """,
        expect={
            "deployments.etl-flow/a": {
                "version": Md5("flows/etl.py"), "description": "Load the warehouse.", "tags": ["zeta", "alpha", "zeta"],
                "parameter_openapi_schema": {
                    "title": "Parameters", "type": "object",
                    "properties": {"full_refresh": {"default": False, "position": 0, "title": "full_refresh", "type": "boolean"}},
                },
            },
            "deployments.load-data/b": {"version": "7.1", "description": "Loads things"},
            "deployments.quiet/c": {"version": "3", "description": "Mine"},
            "deployments.quiet/d": {"version": Md5("flows/etl.py"), "description": "None"},
        },
        notes=["prefect.yaml:8: deployments[1].flow_name: flow_name is ignored: prefect deploy names the flow 'load-data'"],
    ),
    Case(
        "pull steps: the deployment's, else the file's, `[]` for none, else the one prefect deploy generates",
        """\
        pull:
          - prefect.deployments.steps.set_working_directory: {directory: /top}
        deployments:
          - name: inherits
            entrypoint: flows/etl.py:etl
            work_pool: {name: pool}
          - name: inherits-through-null
            entrypoint: flows/etl.py:etl
            pull: null
            work_pool: {name: pool}
          - name: own
            entrypoint: flows/etl.py:etl
            pull:
              prefect.deployments.steps.set_working_directory: {directory: /own}
            work_pool: {name: pool}
          - name: none
            entrypoint: flows/etl.py:etl
            pull: []
            work_pool: {name: pool}
        """,
        expect={
            "deployments.etl-flow/inherits": {"pull_steps": [{"prefect.deployments.steps.set_working_directory": {"directory": "/top"}}]},
            "deployments.etl-flow/inherits-through-null": {"pull_steps": [{"prefect.deployments.steps.set_working_directory": {"directory": "/top"}}]},
            "deployments.etl-flow/own": {"pull_steps": [{"prefect.deployments.steps.set_working_directory": {"directory": "/own"}}]},
            "deployments.etl-flow/none": {"pull_steps": None},
        },
    ),
    Case(
        "without any pull steps, prefect deploy's generated one",
        """\
        deployments:
          - name: here
            entrypoint: flows/etl.py:etl
            work_pool: {name: pool}
          - name: in-image
            entrypoint: flows/etl.py:etl
            work_pool: {name: pool, job_variables: {image: "org/image:1"}}
          - name: built
            entrypoint: flows/etl.py:etl
            build:
              - prefect_docker.deployments.steps.build_docker_image: {id: img, image_name: x, tag: y, dockerfile: auto}
            work_pool: {name: pool}
        """,
        expect={
            "deployments.etl-flow/here": {"pull_steps": [{"prefect.deployments.steps.set_working_directory": {"directory": "<here>"}}]},
            "deployments.etl-flow/in-image": {"pull_steps": [{"prefect.deployments.steps.set_working_directory": {"directory": "/opt/prefect"}}]},
            "deployments.etl-flow/built": {"pull_steps": [{"prefect.deployments.steps.set_working_directory": {"directory": "/opt/prefect/<name>"}}]},
        },
        notes=["prefect.yaml:2: deployments[0]: has no pull steps: prefect deploy would generate"],
    ),
    Case(
        "the generated pull step looks past a deployment's empty build to the file's, as prefect deploy does",
        """\
        build:
          - prefect_docker.deployments.steps.build_docker_image: {id: img, image_name: x, tag: y, dockerfile: auto}
        deployments:
          - name: no-build
            entrypoint: flows/etl.py:etl
            build: []
            work_pool: {name: pool}
        """,
        expect={"deployments.etl-flow/no-build": {
            "pull_steps": [{"prefect.deployments.steps.set_working_directory": {"directory": "/opt/prefect/<name>"}}]}},
    ),
    Case(
        "what prefect deploy skips or refuses",
        """\
        deployments:
          - entrypoint: flows/etl.py:etl
            work_pool: {name: pool}
          - name: no-pool
            entrypoint: flows/etl.py:etl
          - name: no-entrypoint
            work_pool: {name: pool}
          - name: missing-file
            entrypoint: flows/missing.py:etl
            work_pool: {name: pool}
          - name: variable-in-trigger
            entrypoint: flows/etl.py:etl
            work_pool: {name: pool}
            triggers:
              - expect: [x.y]
                enabled: "{{ prefect.variables.is_prod }}"
        """,
        notes=["prefect.yaml:2: deployments[0]: has no name: prefect deploy skips it"],
        errors=[
            "prefect.yaml:4: deployments[1]: a deployment needs a work pool",
            "prefect.yaml:6: deployments[2]: a deployment needs an entrypoint",
            "prefect.yaml:9: deployments[3].entrypoint: ",
            "prefect.yaml:14: deployments.etl-flow/variable-in-trigger.triggers: prefect-provider cannot resolve",
        ],
    ),
    Case(
        "a file's only deployment is deployed as `prefect deploy` deploys one: unnamed, it is refused",
        """\
        deployments:
          - name: null
            entrypoint: flows/etl.py:etl
            work_pool: {name: pool}
        """,
        errors=["prefect.yaml:2: deployments[0]: a deployment needs a name"],
    ),
    Case(
        "a file's only deployment without name nor entrypoint fails on the entrypoint first",
        """\
        deployments:
          - name: null
            entrypoint: null
            work_pool: {name: pool}
        """,
        errors=["prefect.yaml:2: deployments[0]: a deployment needs an entrypoint"],
    ),
    Case(
        "a missing flow file with a flow_name is named by it, with a note",
        """\
        deployments:
          - name: listed
            flow_name: my-flow
            entrypoint: flows/missing.py:main
            work_pool: {name: pool}
        """,
        expect={"deployments.my-flow/listed": {"entrypoint": "flows/missing.py:main"}},
        notes=["prefect.yaml:4: deployments[0].entrypoint: "],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_prefect_yaml_is_read_as_prefect_deploy_reads_it(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    directory = tmp_path / "project"
    (directory / "flows").mkdir(parents=True)
    (directory / "flows" / "etl.py").write_text(FLOWS)
    (directory / "prefect.yaml").write_text(textwrap.dedent(case.prefect_yaml))
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    monkeypatch.chdir(directory)

    try:
        config = load_configuration(directory, {}, case.step_outputs)
        errors: list[str] = []
    except ConfigErrors as exc:
        config, errors = None, [str(e) for e in exc.errors]
    for expected in case.errors:
        assert any(expected in error for error in errors), f"{expected!r} not in:\n" + "\n".join(errors)
    if not case.errors:
        assert not errors, "\n".join(errors)
    if config is None:
        return
    for expected in case.notes:
        assert any(expected in note for note in config.warnings), f"{expected!r} not in:\n" + "\n".join(config.warnings)
    for address, fields in case.expect.items():
        spec = config.resources[CATALOG.parse(address)].spec.model_dump(mode="json", exclude_unset=True)
        for name, value in fields.items():
            assert spec.get(name) == _expected(value, directory), f"{address}.{name}"


def _expected(value: Any, directory: Path) -> Any:
    if isinstance(value, Md5):
        return hashlib.md5((directory / value.relative).read_bytes()).hexdigest()
    if isinstance(value, list):
        return [_expected(v, directory) for v in value]
    if isinstance(value, dict):
        return {k: _expected(v, directory) for k, v in value.items()}
    if isinstance(value, str):
        return value.replace("<here>", str(directory.resolve())).replace("<name>", directory.name)
    return value


def test_schedules_without_slug_stay_refused_in_our_own_yaml(tmp_path: Path):
    (tmp_path / "deployments.yaml").write_text(textwrap.dedent("""\
        deployments:
          etl/nightly:
            entrypoint: flows/etl.py:etl
            schedules: [{cron: "0 2 * * *"}]
        """))
    with pytest.raises(ConfigErrors) as raised:
        load_configuration(tmp_path)
    assert "deployments.yaml:4: deployments.etl/nightly.schedules[0]: this schedule has no slug" in str(raised.value)


def test_our_own_yaml_takes_the_parameter_schema_from_the_flow_when_its_file_is_there(tmp_path: Path):
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "etl.py").write_text(FLOWS)
    (tmp_path / "deployments.yaml").write_text(textwrap.dedent("""\
        deployments:
          etl/found: {entrypoint: flows/etl.py:load_data}
          etl/explicit: {entrypoint: flows/etl.py:load_data, parameter_openapi_schema: {type: object, properties: {}}}
          etl/elsewhere: {entrypoint: other/etl.py:load_data}
        """))
    resources = load_configuration(tmp_path).resources
    schema = resources[Address("deployments", "etl/found")].spec.parameter_openapi_schema
    assert schema["properties"] == {"limit": {"default": 10, "position": 0, "title": "limit", "type": "integer"}}
    assert resources[Address("deployments", "etl/explicit")].spec.parameter_openapi_schema == {"type": "object", "properties": {}}
    assert resources[Address("deployments", "etl/elsewhere")].spec.parameter_openapi_schema is None


def test_step_outputs_from_the_configuration_and_the_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "etl.py").write_text(FLOWS)
    (tmp_path / "prefect.yaml").write_text(textwrap.dedent("""\
        deployments:
          - name: nightly
            entrypoint: flows/etl.py:etl
            version: "{{ build-image.tag }}"
            work_pool: {name: pool, job_variables: {image: "{{ build-image.image }}"}}
        """))
    (tmp_path / "main.yaml").write_text("step_outputs:\n  build-image: {image: \"reg/etl:${env.TAG}\", tag: from-config}\n")
    monkeypatch.setenv("TAG", "t1")
    spec = load_configuration(tmp_path, {}, {"build-image": {"tag": "from-flag"}}).resources[
        Address("deployments", "etl-flow/nightly")].spec
    assert (spec.version, spec.job_variables) == ("from-flag", {"image": "reg/etl:t1"})


# --- variables and blocks (resolved at plan time) ---------------------------------------------

BLOCKS = {
    ("secret", "api-token"): ({"value": "s3cr3t"}, ["value"]),
    ("json", "settings"): ({"value": {"region": "eu", "sizes": [1, 2]}}, []),
    ("aws-credentials", "prod"): ({"aws_access_key_id": "AKIA", "aws_secret_access_key": "k"}, ["aws_secret_access_key"]),
}
VARIABLES = {"image_tag": "v3", "replicas": 4}
SERVER = ServerLookups(lambda name: VARIABLES.get(name, NOT_SET), lambda slug, name: BLOCKS.get((slug, name)))

RESOLVED = [
    ("{{ prefect.variables.image_tag }}", "v3", []),
    ("{{ prefect.variables.replicas }}", 4, []),
    ("img:{{ prefect.variables.image_tag }}-{{ prefect.variables.replicas }}", "img:v3-4", []),
    ("{{ prefect.variables.missing }}", "", []),
    ("a{{ prefect.variables.missing }}b", "ab", []),
    ("{{ prefect.blocks.secret.api-token }}", "s3cr3t", [()]),
    ("Bearer {{ prefect.blocks.secret.api-token }}", "Bearer s3cr3t", [()]),
    ("{{ prefect.blocks.json.settings }}", {"region": "eu", "sizes": [1, 2]}, []),
    ("{{ prefect.blocks.json.settings.region }}", "eu", []),
    ("{{ prefect.blocks.json.settings.sizes[1] }}", 2, []),
    ("{{ prefect.blocks.aws-credentials.prod.aws_access_key_id }}", "AKIA", []),
    ("{{ prefect.blocks.aws-credentials.prod.aws_secret_access_key }}", "k", [()]),
    ("{{ build-image.image }} {{ $HOME }} {{ ctx.x }}", "{{ build-image.image }} {{ $HOME }} {{ ctx.x }}", []),
]


@pytest.mark.parametrize("template, value, secret", RESOLVED, ids=[r[0] for r in RESOLVED])
def test_variable_and_block_templates(template: str, value: Any, secret: list):
    assert resolve_server_templates(template, SERVER) == (value, secret)


def test_secret_paths_lead_to_the_strings_that_hold_them():
    value = {"env": {"TOKEN": "{{ prefect.blocks.secret.api-token }}", "TAG": "{{ prefect.variables.image_tag }}"},
             "args": ["--token", "{{ prefect.blocks.secret.api-token }}"]}
    resolved, secret = resolve_server_templates(value, SERVER, ("job_variables",))
    assert resolved == {"env": {"TOKEN": "s3cr3t", "TAG": "v3"}, "args": ["--token", "s3cr3t"]}
    assert secret == [("job_variables", "env", "TOKEN"), ("job_variables", "args", 1)]


@pytest.mark.parametrize("template, message", [
    ("{{ prefect.blocks.secret.nope }}", "there is no block 'nope' of type 'secret'"),
    ("x-{{ prefect.blocks.json.settings }}", "is a dict, which cannot be put inside other text"),
    ("{{ prefect.blocks.json.settings.nope }}", "the block has no field 'value.nope'"),
    ("{{ prefect.blocks.secret }}", "expected prefect.blocks.BLOCK_TYPE.BLOCK_NAME"),
])
def test_block_templates_that_cannot_be_resolved(template: str, message: str):
    with pytest.raises(TemplateError, match=message.replace("(", r"\(").replace(")", r"\)")) as raised:
        resolve_server_templates({"field": template}, SERVER, ("job_variables",))
    assert raised.value.path == ("job_variables", "field")


def test_flow_python_reads_what_the_source_alone_cannot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A model imported from the project: without --flow-python a note and Prefect's schema for an
    unresolvable annotation; with it, Prefect itself (in that interpreter) describes the model."""
    (tmp_path / "models.py").write_text("from pydantic import BaseModel\n\n\nclass Target(BaseModel):\n    table: str\n")
    (tmp_path / "flow.py").write_text(
        "from prefect import flow\n\nfrom models import Target\n\n\n@flow\ndef load(target: Target, limit: int = 1):\n    pass\n")
    (tmp_path / "prefect.yaml").write_text("deployments:\n  - name: d\n    entrypoint: flow.py:load\n    work_pool: {name: p}\n")
    monkeypatch.chdir(tmp_path)
    address = Address("deployments", "load/d")

    static = load_configuration(tmp_path, {}, {})
    assert any("prefect.yaml:3: deployments[0].entrypoint: " in note for note in static.warnings), static.warnings
    assert "definitions" not in static.resources[address].spec.parameter_openapi_schema

    read = load_configuration(tmp_path, {}, {}, flow_python=sys.executable)
    schema = read.resources[address].spec.parameter_openapi_schema
    assert schema["properties"]["target"] == {"$ref": "#/definitions/Target", "position": 0, "title": "target"}
    assert schema["definitions"]["Target"]["properties"] == {"table": {"title": "Table", "type": "string"}}
    assert not any("entrypoint" in note for note in read.warnings)
