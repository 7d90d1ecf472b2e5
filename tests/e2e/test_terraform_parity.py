"""examples/terraform-parity, the Terraform provider's examples translated, on the real server.

Whatever the directory holds is applied (files other kinds add included) and re-planned empty;
then one field of every resource of each kind UPDATES knows is changed in the YAML, the plan
updates exactly those in place, and after the apply the plan is empty again; destroy removes it
all. Names in the examples start with `tfparity` (a scheme of their own, so nothing clashes with
the other tests' prefixed names). The Cloud-only part (cloud/) is refused by the open-source
server at plan time, naming each Cloud feature.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from tests.conftest import all_objects, assert_ok

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "terraform-parity"
SECRETS = {"TFPARITY_AWS_SECRET_ACCESS_KEY": f"tfparity-secret-{uuid.uuid4().hex}"}


def appended(text: str | None) -> str:
    return f"{text} (updated)" if text else "updated"


# A block type's field to change, and its new value (blocks of other types are left as they are).
BLOCK_FIELDS: dict[str, tuple[str, Any]] = {
    "secret": ("value", "bar (updated)"),
    "aws-credentials": ("region_name", "eu-west-1"),
    "gcp-credentials": ("project", "my-other-gcp-project"),
    "slack-webhook": ("url", "https://hooks.slack.example/services/T000/B000/YYYY"),
    "webhook": ("method", "PUT"),
}


def block_change(name: str, spec: dict[str, Any]) -> tuple[str, Any] | None:
    field = BLOCK_FIELDS.get(name.split("/")[0])
    data = spec.get("data")
    if field is None or not isinstance(data, dict):  # e.g. data read from a file: ${file(...)}
        return None
    return "data", {**data, field[0]: field[1]}


# kind -> (NAME, spec as written) -> (field, new value), or None to leave that resource alone.
# Kinds other engineers add are here too; a kind without an entry is applied, not updated.
UPDATES: dict[str, Callable[[str, dict[str, Any]], tuple[str, Any] | None]] = {
    "work_pools": lambda name, spec: ("description", appended(spec.get("description"))),
    "work_queues": lambda name, spec: ("description", appended(spec.get("description"))),
    "variables": lambda name, spec: ("value", {"was": spec["value"]}),
    "blocks": block_change,
    "deployments": lambda name, spec: ("description", appended(spec.get("description"))),
    "automations": lambda name, spec: ("description", appended(spec.get("description"))),
    "concurrency_limits": lambda name, spec: ("limit", spec["limit"] + 1),
    "flows": lambda name, spec: ("tags", [*(spec.get("tags") or []), "updated"]),
    "task_run_concurrency_limits": lambda name, spec: ("concurrency_limit", spec["concurrency_limit"] + 1),
    "block_types": lambda name, spec: ("description", appended(spec.get("description"))),
}


def update_one_field_of_each(directory: Path) -> set[str]:
    """Change the files in place (comments kept); the addresses of the resources changed."""
    yaml = YAML()  # round trip
    changed: set[str] = set()
    for path in sorted(directory.glob("*.yaml")):
        document = yaml.load(path.read_text())
        for kind, resources in (document or {}).items():
            for name, spec in (resources or {}).items() if kind in UPDATES else ():
                change = UPDATES[kind](name, spec)
                if change is not None:
                    spec[change[0]] = change[1]
                    changed.add(f"{kind}.{name}")
        with path.open("w") as out:
            yaml.dump(document, out)
    return changed


def planned_changes(workspace) -> dict[str, list[str]]:
    result = assert_ok(workspace.plan("--json", env=SECRETS), 2)
    changes = json.loads(result.stdout)["resource_changes"]
    return {c["address"]: c["change"]["actions"] for c in changes if c["change"]["actions"] != ["no-op"]}


def test_the_translated_examples_apply_update_and_destroy_cleanly(workspace, api):
    shutil.copytree(EXAMPLE, workspace.directory, dirs_exist_ok=True, ignore=shutil.ignore_patterns("cloud"))
    assert_ok(workspace.run("validate", str(workspace.directory), env=SECRETS))
    applied = assert_ok(workspace.apply(env=SECRETS))
    assert "Apply complete!" in applied.stdout
    assert "No changes." in assert_ok(workspace.plan(env=SECRETS), 0).stdout
    managed = set(workspace.state()["resources"])
    assert {"work_pools.tfparity-test-k8s-pool", "work_queues.tfparity-queue-pool/my-work-queue",
            "variables.tfparity_my_variable_name", "blocks.secret/tfparity-foo",
            "deployments.tfparity-my-flow/my-deployment", "automations.tfparity-test-sequence-trigger",
            "concurrency_limits.tfparity-test-global-concurrency-limit"} <= managed

    # What the examples ask for is what the server holds.
    template = api.get("work_pools/tfparity-test-k8s-pool").json()["base_job_template"]
    assert template == json.loads((EXAMPLE / "templates" / "base-job-template.json").read_text())
    assert api.get("work_pools/tfparity-queue-pool/queues/my-work-queue").json()["concurrency_limit"] == 2
    deployment = api.get("deployments/name/tfparity-my-flow/my-scheduled-deployment").json()
    assert sorted(s["slug"] for s in deployment["schedules"]) == ["test-cron", "test-interval", "test-rrule"]
    limit = api.get("v2/concurrency_limits/tfparity-test-global-concurrency-limit").json()
    assert (limit["limit"], limit["slot_decay_per_second"]) == (1, 1.5)
    state_text = workspace.state_path.read_text()
    assert SECRETS["TFPARITY_AWS_SECRET_ACCESS_KEY"] not in state_text + applied.output

    changed = update_one_field_of_each(workspace.directory)
    assert {"work_pools.tfparity-my-work-pool", "blocks.secret/tfparity-foo", "variables.tfparity_my_variable_name",
            "automations.tfparity-test-event-trigger", "deployments.tfparity-my-flow/my-deployment"} <= changed
    assert planned_changes(workspace) == {address: ["update"] for address in changed}
    assert_ok(workspace.apply(env=SECRETS))
    assert "No changes." in assert_ok(workspace.plan(env=SECRETS), 0).stdout
    assert api.get("variables/name/tfparity_my_variable_name").json()["value"] == {"was": "variable value goes here"}
    assert api.get("v2/concurrency_limits/tfparity-test-global-concurrency-limit").json()["limit"] == 2

    assert_ok(workspace.run("destroy", str(workspace.directory), "--auto-approve", env=SECRETS))
    assert workspace.state()["resources"] == {}
    for path, field in (("work_pools/filter", "name"), ("variables/filter", "name"), ("automations/filter", "name"),
                        ("block_documents/filter", "name"), ("deployments/filter", "name")):
        assert [o[field] for o in all_objects(api, path) if str(o.get(field)).startswith("tfparity")] == []


def test_the_cloud_only_examples_are_refused_by_the_open_source_server(workspace, api):
    shutil.copytree(EXAMPLE / "cloud", workspace.directory, dirs_exist_ok=True)
    assert_ok(workspace.run("validate", str(workspace.directory)))
    result = assert_ok(workspace.plan(), 1)
    for address, feature in (
        ("tfparity-test-event-trigger-incident.actions[0]", "declare-incident actions"),
        ("tfparity-test-metric-trigger.trigger", "metric triggers"),
        ("tfparity-test-send-email-notification.actions[0]", "send-email-notification actions"),
        ("tfparity-test-pause-schedule.actions[0]", "pause-schedule-for-flow-run actions"),
        ("tfparity-test-resume-schedule.actions[0]", "resume-schedule-for-flow-run actions"),
    ):
        assert f"automations.{address}: {feature} are a Prefect Cloud feature" in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert not workspace.state_path.exists()
    assert api.get("deployments/name/tfparity-my-flow/my-cloud-deployment").status_code == 404
