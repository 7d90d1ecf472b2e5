"""Real prefect.yaml files (tests/corpus/prefect_yaml/) applied by the tool and by `prefect deploy`.

For each corpus entry, in one working directory (a copy of the entry, named like it, because
`prefect deploy` derives pull steps from the working directory):
1. `prefect deploy --all` (Prefect's own CLI, the reference) runs against a second, clean server,
   while 2. `prefect-provider apply` runs against the session's server, with the build/push step
   outputs the stub steps produce given as `--step-output`;
3. every deployment is compared field by field (ids, timestamps and flow ids aside), its trigger
   automations included; the tool's plan right after apply must be empty;
4. `prefect deploy --all` runs over the tool's deployments on the session's server (and, for
   reference, over its own on the second server), after which they must still match (no second
   trigger automation, say) and the tool's plan must still be empty: the two can take turns.
A file that `prefect deploy` rejects must be rejected by the tool too, with nothing applied.

Each entry's `corpus.json` names what must exist first, identically on both servers: work pools
(name -> type), environment variables for `{{ $ENV }}`, Prefect variables, blocks; and the
`--step-output` values. Stub step packages for the build/push steps are in tests/corpus/stubs/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from provider.server import EmbeddedServer
from tests.conftest import RetryingTransport, Workspace, all_objects

CORPUS = Path(__file__).parents[1] / "corpus" / "prefect_yaml"
STUBS = Path(__file__).parents[1] / "corpus" / "stubs"
ENTRIES = sorted(entry.name for entry in CORPUS.iterdir() if (entry / "prefect.yaml").is_file())
NOT_COPIED = ("SOURCE.md", "corpus.json")  # notes about the entry, not part of the project
DEPLOY_TIMEOUT = 240  # seconds; a loaded machine is slow to import prefect
ABSENT = "<absent>"


@pytest.fixture(scope="session")
def reference_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second Prefect server that receives only `prefect deploy`, emptied after each entry."""
    server = EmbeddedServer(tmp_path_factory.mktemp("prefect-reference-server"))
    info = server.start()
    try:
        yield info.api_url
    finally:
        server.stop()


def client(api_url: str) -> httpx.Client:
    return httpx.Client(base_url=api_url + "/", timeout=30, transport=RetryingTransport())


# --- what an entry needs on a server -------------------------------------------------------------

class Seeded:
    """Objects created on one server for one entry, removed again by id afterwards."""

    def __init__(self, api: httpx.Client):
        self.api = api
        self.paths: list[str] = []

    def create(self, path: str, body: dict[str, Any], *, name_path: str, remove_path: str) -> dict[str, Any]:
        """Create an object (removed after the entry), or reuse one of that name already there."""
        response = self.api.post(path, json=body)
        if response.status_code == 409:
            response = self.api.get(name_path)
            response.raise_for_status()
            return response.json()
        response.raise_for_status()
        created = response.json()
        self.paths.append(remove_path.format(**created))
        return created

    def seed(self, setup: dict[str, Any]) -> None:
        for name, pool_type in setup.get("work_pools", {}).items():
            self.create("work_pools/", {"name": name, "type": pool_type},
                        name_path=f"work_pools/{name}", remove_path="work_pools/{name}")
        for name, value in setup.get("variables", {}).items():
            self.create("variables/", {"name": name, "value": value},
                        name_path=f"variables/name/{name}", remove_path="variables/{id}")
        for block in setup.get("blocks", []):
            block_type, schema = self.block_type(block["type"], block["data"])
            self.create(
                "block_documents/",
                {"name": block["name"], "block_type_id": block_type["id"], "block_schema_id": schema["id"],
                 "data": block["data"]},
                name_path=f"block_types/slug/{block['type']}/block_documents/name/{block['name']}",
                remove_path="block_documents/{id}",
            )

    def block_type(self, slug: str, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The server's block type and schema; one is registered when an integration package
        (prefect-docker, prefect-kubernetes) would have registered it, with the fields of `data`."""
        found = self.api.get(f"block_types/slug/{slug}")
        if found.status_code == 404:
            block_type = self.create("block_types/", {"name": slug.replace("-", " ").title(), "slug": slug},
                                     name_path=f"block_types/slug/{slug}", remove_path="block_types/{id}")
            fields = {"title": block_type["name"], "type": "object", "block_type_slug": slug,
                      "properties": {key: {"title": key} for key in data}}
            schema = self.api.post("block_schemas/", json={
                "block_type_id": block_type["id"], "fields": fields, "capabilities": []})
            schema.raise_for_status()
            return block_type, schema.json()
        found.raise_for_status()
        block_type = found.json()
        schemas = self.api.post("block_schemas/filter", json={
            "block_schemas": {"block_type_id": {"any_": [block_type["id"]]}}})
        schemas.raise_for_status()
        return block_type, schemas.json()[0]

    def remove_deployments(self, ids: set[str]) -> None:
        for automation in all_objects(self.api, "automations/filter"):
            if deployment_of(automation) in ids:
                self.api.delete(f"automations/{automation['id']}")
        for deployment_id in ids:
            self.api.delete(f"deployments/{deployment_id}")

    def remove(self) -> None:
        for path in reversed(self.paths):
            self.api.delete(path)


# --- running both sides --------------------------------------------------------------------------

class PrefectDeploy:
    """Prefect's own `prefect deploy --all` in `workdir`: non-interactive, a fresh HOME, the stub
    step packages on PYTHONPATH. The process starts at once (importing prefect takes seconds) and
    deploys when released, so its start-up overlaps other work without touching the server early."""

    WAIT_THEN_DEPLOY = (
        "import sys\n"
        "from prefect.cli import app\n"
        "import prefect.cli.deploy._core\n"
        "sys.stdin.readline()\n"
        "sys.argv = ['prefect', '--no-prompt', 'deploy', '--all']\n"
        "app()\n"
    )

    def __init__(self, workdir: Path, api_url: str, env: dict[str, str]):
        home = workdir.parent / f"home-{time.monotonic_ns()}"
        home.mkdir()
        self.process = subprocess.Popen(
            [sys.executable, "-c", self.WAIT_THEN_DEPLOY],
            cwd=workdir,
            env={"PATH": os.environ["PATH"], "HOME": str(home), "PREFECT_HOME": str(home / ".prefect"),
                 "PREFECT_API_URL": api_url, "PYTHONPATH": str(STUBS), "NO_COLOR": "1", "COLUMNS": "200", **env},
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )

    def release(self) -> None:
        self.process.stdin.write("go\n")
        self.process.stdin.close()
        self.process.stdin = None  # so that communicate() leaves it alone

    def wait(self) -> tuple[int, str]:
        """Its exit code and output, once it has run."""
        try:
            output, _ = self.process.communicate(timeout=DEPLOY_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            output, _ = self.process.communicate()
            pytest.fail(f"prefect deploy did not finish within {DEPLOY_TIMEOUT}s:\n{output}")
        return self.process.returncode, output

    def stop(self) -> None:
        """Ends the process if it is still waiting (the test stopped before releasing it)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


def step_output_flags(setup: dict[str, Any]) -> list[str]:
    return [flag for key, value in setup.get("step_outputs", {}).items()
            for flag in ("--step-output", f"{key}={value}")]


# --- reading a deployment as comparable fields ---------------------------------------------------

def deployment_of(automation: dict[str, Any]) -> str | None:
    """The deployment an automation belongs to: its owner, else the deployment its action runs."""
    owner = automation.get("owner_resource") or ""
    if owner.startswith("prefect.deployment."):
        return owner.removeprefix("prefect.deployment.")
    for action in automation.get("actions", []):
        if action.get("type") == "run-deployment" and action.get("deployment_id"):
            return action["deployment_id"]
    return None


def without_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_ids(v) for k, v in value.items() if k not in ("id", "created", "updated")}
    if isinstance(value, list):
        return [without_ids(v) for v in value]
    return value


def comparable(api: httpx.Client, deployment: dict[str, Any], automations: list[dict[str, Any]],
               deployed_between: tuple[datetime, datetime]) -> dict[str, Any]:
    """The fields `prefect deploy` sets, as the API returns them; in the deployment's trigger
    automations its own id reads `<this deployment>`."""
    own = deployment["id"]
    triggers = [
        json.loads(json.dumps(without_ids(a)).replace(own, "<this deployment>"))
        for a in automations if deployment_of(a) == own
    ]
    return {
        "name": deployment["name"],
        "flow_name": api.get(f"flows/{deployment['flow_id']}").json()["name"],
        "description": deployment["description"],
        "version": deployment["version"],
        "tags": deployment["tags"],
        "entrypoint": deployment["entrypoint"],
        "path": deployment["path"],
        "parameters": deployment["parameters"],
        "job_variables": deployment["job_variables"],
        "pull_steps": deployment["pull_steps"],
        "work_pool_name": deployment["work_pool_name"],
        "work_queue_name": deployment["work_queue_name"],
        "schedules": sorted((schedule(s, deployed_between) for s in deployment["schedules"]), key=json.dumps),
        "parameter_openapi_schema": deployment["parameter_openapi_schema"],
        "enforce_parameter_schema": deployment["enforce_parameter_schema"],
        "paused": deployment["paused"],
        "concurrency_limit": (deployment.get("global_concurrency_limit") or {}).get("limit"),
        "concurrency_options": deployment["concurrency_options"],
        "triggers": sorted(triggers, key=lambda a: a["name"]),
    }


def schedule(found: dict[str, Any], deployed_between: tuple[datetime, datetime]) -> dict[str, Any]:
    """A deployment schedule's content. An interval anchored at the moment of the deploy (what
    Prefect does when the file gives no anchor_date) reads as `<deploy time>` on either side."""
    content = dict(found["schedule"])
    anchor = content.get("anchor_date")
    if anchor and deployed_between[0] <= datetime.fromisoformat(anchor) <= deployed_between[1]:
        content["anchor_date"] = "<deploy time>"
    return {"schedule": content, "active": found["active"], "slug": found["slug"],
            "parameters": found["parameters"], "max_scheduled_runs": found.get("max_scheduled_runs")}


def differences(reference: Any, tool: Any, path: str = "") -> list[str]:
    """Where two JSON values differ, one line per leaf: `path: prefect deploy=… tool=…`."""
    if isinstance(reference, dict) and isinstance(tool, dict):
        lines = []
        for key in sorted(set(reference) | set(tool), key=str):
            if key in reference and key in tool:
                lines += differences(reference[key], tool[key], f"{path}.{key}")
            else:
                lines.append(f"{path}.{key}: prefect deploy={_short(reference.get(key, ABSENT))} "
                             f"tool={_short(tool.get(key, ABSENT))}")
        return lines
    if isinstance(reference, list) and isinstance(tool, list):
        lines = [line for index, (r, t) in enumerate(zip(reference, tool)) for line in differences(r, t, f"{path}[{index}]")]
        if len(reference) != len(tool):
            lines.insert(0, f"{path}: {len(reference)} item(s) from prefect deploy, {len(tool)} on the tool's side")
            extra, side = (reference, "prefect deploy") if len(reference) > len(tool) else (tool, "tool")
            lines += [f"{path}[{index}]: only {side}: {_short(item)}" for index, item in enumerate(extra)
                      if index >= min(len(reference), len(tool))]
        return lines
    if reference != tool or type(reference) is not type(tool):
        return [f"{path}: prefect deploy={_short(reference)} tool={_short(tool)}"]
    return []


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 400 else text[:400] + "…"


def now() -> datetime:
    return datetime.now(timezone.utc)


# --- the test ------------------------------------------------------------------------------------

@pytest.mark.parametrize("entry", ENTRIES)
def test_prefect_yaml_applies_as_prefect_deploy_does(entry: str, tmp_path: Path, api_url: str, reference_url: str):
    setup = json.loads((CORPUS / entry / "corpus.json").read_text())
    env = setup.get("env", {})
    workdir = tmp_path / entry
    shutil.copytree(CORPUS / entry, workdir, ignore=shutil.ignore_patterns(*NOT_COPIED))
    (tmp_path / "prefect-home").mkdir()
    workspace = Workspace(workdir, api_url, tmp_path / "prefect-home")

    with client(reference_url) as reference_api, client(api_url) as api:
        reference, main = Seeded(reference_api), Seeded(api)
        created_on_main: set[str] = set()
        # The `prefect deploy` processes start now and wait to be released: the first deploy of
        # the reference, then prefect deploy over the tool's deployments and over its own (an
        # update by prefect deploy differs from its create, e.g. a missing description is the
        # string "None" on create and null on update).
        deploying = PrefectDeploy(workdir, reference_url, env)
        over_the_tool = PrefectDeploy(workdir, api_url, env)
        over_its_own = PrefectDeploy(workdir, reference_url, env)
        try:
            reference.seed(setup)
            main.seed(setup)

            started = now()
            deploying.release()  # the two sides run at the same time, on their own servers
            applied = workspace.apply(*step_output_flags(setup), env=env)
            deploy_code, deploy_output = deploying.wait()
            window = (started, now())
            tool_ids = {r["id"] for r in workspace.state()["resources"].values() if r["kind"] == "deployments"} \
                if workspace.state_path.exists() else set()
            created_on_main |= tool_ids

            print(f"--- prefect deploy (exit {deploy_code})\n{deploy_output}\n--- apply\n{applied.output}")
            if deploy_code != 0:  # prefect deploy rejects the file: so must the tool
                assert applied.exit_code == 1 and not tool_ids, (
                    f"prefect deploy rejected {entry}, the tool did not (exit {applied.exit_code}):\n"
                    f"--- prefect deploy\n{deploy_output}\n--- apply\n{applied.output}")
                assert re.search(r"prefect\.yaml:\d+", applied.output) and "Traceback" not in applied.output, (
                    f"the tool's error must name the file and line:\n{applied.output}")
                return
            assert applied.exit_code == 0, (
                f"prefect deploy accepted {entry}, apply failed (exit {applied.exit_code}):\n{applied.output}")

            problems = compare(reference_api, api, tool_ids, window)
            replanned = workspace.plan(*step_output_flags(setup), env=env)
            if replanned.exit_code != 0:
                problems.append(f"plan right after apply is not empty (exit {replanned.exit_code}):\n{replanned.output}")

            # Coexistence: prefect deploy over the tool's deployments, then the tool's plan.
            over_the_tool.release()
            over_its_own.release()
            again_code, again_output = over_the_tool.wait()
            own_code, own_output = over_its_own.wait()
            created_on_main |= same_names(api, reference_api)
            if again_code != 0:
                problems.append(f"prefect deploy over the tool's deployments failed:\n{again_output}")
            elif own_code != 0:
                problems.append(f"prefect deploy over its own deployments failed:\n{own_output}")
            else:  # e.g. a second trigger automation next to the tool's
                problems += [f"after prefect deploy ran over the tool's deployments (and over its own): {problem}"
                             for problem in compare(reference_api, api, tool_ids, (started, now()))]
            after = workspace.plan(*step_output_flags(setup), env=env)
            if after.exit_code != 0:
                problems.append(f"plan after prefect deploy ran over the tool's deployments is not empty "
                                f"(exit {after.exit_code}):\n{after.output}")
            assert not problems, f"{entry}: {len(problems)} problem(s)\n\n" + "\n\n".join(problems)
        finally:
            for process in (deploying, over_the_tool, over_its_own):
                process.stop()
            reference.remove_deployments({d["id"] for d in all_objects(reference_api, "deployments/filter")})
            main.remove_deployments(created_on_main)
            reference.remove()
            main.remove()


def same_names(api: httpx.Client, reference_api: httpx.Client) -> set[str]:
    """Ids of the deployments on `api` named like those on the reference server."""
    ids = set()
    for deployment in all_objects(reference_api, "deployments/filter"):
        flow = reference_api.get(f"flows/{deployment['flow_id']}").json()["name"]
        found = api.get(f"deployments/name/{flow}/{deployment['name']}")
        if found.status_code == 200:
            ids.add(found.json()["id"])
    return ids


def compare(reference_api: httpx.Client, api: httpx.Client, tool_ids: set[str],
            window: tuple[datetime, datetime]) -> list[str]:
    """Every deployment of the reference server against the tool's deployment of the same
    flow and name: the lines that differ, per deployment, and deployments only one side has."""
    def read(client_: httpx.Client, deployments: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        automations = all_objects(client_, "automations/filter")
        found = (comparable(client_, d, automations, window) for d in deployments)
        return {f"{d['flow_name']}/{d['name']}": d for d in found}

    expected = read(reference_api, all_objects(reference_api, "deployments/filter"))
    actual = read(api, [api.get(f"deployments/{i}").json() for i in sorted(tool_ids)])
    problems = [f"{key}: created by prefect deploy, not by the tool" for key in sorted(set(expected) - set(actual))]
    problems += [f"{key}: created by the tool, not by prefect deploy" for key in sorted(set(actual) - set(expected))]
    for key in sorted(set(expected) & set(actual)):
        lines = differences(expected[key], actual[key])
        if lines:
            problems.append(f"{key} differs:\n  " + "\n  ".join(lines))
    return problems
