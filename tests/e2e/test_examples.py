"""examples/infra-repo, the realistic infra repo, applies and then plans clean on the real server."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import assert_ok

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "infra-repo"
SECRETS = {
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T000/B000/example-secret-url",
    "AWS_SECRET_ACCESS_KEY": "example-aws-secret-value",
    "REPO_TOKEN": "example-repo-token-value",
}


def test_infra_repo_example_applies_clean_and_keeps_secrets_out(workspace, api):
    shutil.copytree(EXAMPLE, workspace.directory, dirs_exist_ok=True)
    assert_ok(workspace.run("validate", str(workspace.directory), "--var", "image_tag=2024.06.1", env=SECRETS))
    applied = assert_ok(workspace.apply("--var", "image_tag=2024.06.1", env=SECRETS))
    assert "Apply complete!" in applied.stdout
    assert_ok(workspace.plan("--var", "image_tag=2024.06.1", env=SECRETS), 0)

    deployment = api.get("deployments/name/etl/nightly").json()
    assert deployment["job_variables"]["image"] == "registry.example.com/etl:2024.06.1"
    assert deployment["pull_steps"][0]["prefect.deployments.steps.git_clone"]["access_token"] == "{{ prefect.blocks.secret.repo-token }}"
    pool = api.get("work_pools/ecs-prod").json()
    assert pool["base_job_template"]["variables"]["properties"]["cluster"]["default"] == "prefect-prod"
    state_text = workspace.state_path.read_text()
    for secret in SECRETS.values():
        assert secret not in state_text and secret not in applied.output
