"""No secret in clear, anywhere: every CLI command run on a configuration with secrets, then every
byte they printed and every file under the test's directory (configuration, state, saved plan,
markdown reports, export, Prefect home) searched for the secret values.

The secrets come from `${env.NAME}`: an aws-credentials key, a secret block, a webhook's headers
(every header is secret), one read back inline through an s3-bucket's `$ref`, secrets changed by
hand on the server (drift), and a block adopted with `import`.
"""

from __future__ import annotations

import uuid

from tests.conftest import Result, assert_ok
from tests.e2e.test_blocks import document, document_body


def test_no_command_prints_or_writes_a_secret(workspace, prefix, api, tmp_path):
    env = {name: f"{name.lower()}-{uuid.uuid4().hex}" for name in ("AWS_SECRET", "REPO_TOKEN", "HOOK_TOKEN", "IMPORTED_TOKEN")}
    by_hand = f"by-hand-{uuid.uuid4().hex}"
    secrets = [*env.values(), by_hand]
    directory = str(workspace.directory)
    results: list[Result] = []
    plans: list[Result] = []  # plans, saved plans and drift: "(sensitive value)", never a fingerprint

    def run(*args: str, code: int = 0) -> Result:
        result = assert_ok(workspace.run(*args, env=env), code)
        results.append(result)
        if args[0] in ("plan", "show", "drift") and "--dir" not in args:
            plans.append(result)
        return result

    workspace.write("main.yaml", f"""\
        variables:
          {prefix}_region: {{value: us-east-1, tags: [aws]}}
        blocks:
          aws-credentials/{prefix}-aws:
            data:
              aws_access_key_id: AKIAEXAMPLE
              aws_secret_access_key: ${{env.AWS_SECRET}}
              region_name: us-east-1
          secret/{prefix}-token:
            data: {{value: "${{env.REPO_TOKEN}}"}}
          webhook/{prefix}-hook:
            data:
              url: https://hooks.example.com/x
              headers: {{Authorization: "Bearer ${{env.HOOK_TOKEN}}"}}
          s3-bucket/{prefix}-lake:
            data:
              bucket_name: lake
              credentials: {{"$ref": "aws-credentials/{prefix}-aws"}}
        """)
    saved = tmp_path / "plan.tfplan"
    run("validate", directory)
    run("plan", directory, "--detailed-exitcode", code=2)
    run("plan", directory, "--json")
    run("plan", directory, "--markdown", str(tmp_path / "plan.md"))
    run("plan", directory, "--out", str(saved))
    run("show", str(saved))
    run("show", str(saved), "--json")
    run("apply", str(saved))
    run("plan", directory, "--detailed-exitcode")
    assert document(api, f"aws-credentials/{prefix}-aws")["data"]["aws_secret_access_key"] == env["AWS_SECRET"]
    assert document(api, f"secret/{prefix}-token")["data"]["value"] == env["REPO_TOKEN"]
    hook = document(api, f"webhook/{prefix}-hook")
    assert hook["data"]["headers"] == {"Authorization": f"Bearer {env['HOOK_TOKEN']}"}

    # Secrets changed by hand: drift, in every format, and a refresh-only apply that records it.
    aws = document(api, f"aws-credentials/{prefix}-aws")
    api.patch(f"block_documents/{aws['id']}", json={"data": {"aws_secret_access_key": by_hand}}).raise_for_status()
    api.patch(f"block_documents/{hook['id']}", json={"data": {"headers": {"X-Token": by_hand}}}).raise_for_status()
    drift = run("drift", directory, code=2)
    assert "~ aws_secret_access_key = (sensitive value) -> (sensitive value)" in drift.stdout
    run("drift", directory, "--json", code=2)
    run("drift", directory, "--markdown", str(tmp_path / "drift.md"), code=2)
    run("plan", directory, "--detailed-exitcode", code=2)
    run("plan", directory, "--json")
    run("plan", directory, "--refresh-only", "--detailed-exitcode", code=2)
    run("apply", directory, "--refresh-only", "--auto-approve")

    for name in ("aws-credentials/{p}-aws", "secret/{p}-token", "webhook/{p}-hook", "s3-bucket/{p}-lake"):
        run("state", "show", "blocks." + name.format(p=prefix), directory)
    run("state", "list", directory)
    run("state", "pull", directory)
    run("show", "--dir", directory)
    run("show", "--dir", directory, "--json")
    run("apply", directory, "--auto-approve")
    assert document(api, f"aws-credentials/{prefix}-aws")["data"]["aws_secret_access_key"] == env["AWS_SECRET"]

    # Adopting a block made by hand, whose secret the configuration takes from the environment.
    made = api.post("block_documents/", json=document_body(api, "secret", f"{prefix}-imported", {"value": env["IMPORTED_TOKEN"]}))
    workspace.write("imported.yaml", f"blocks:\n  secret/{prefix}-imported:\n    data: {{value: '${{env.IMPORTED_TOKEN}}'}}\n")
    run("import", f"blocks.secret/{prefix}-imported", made.json()["id"], directory)
    run("plan", directory, "--detailed-exitcode")
    run("export", "--kinds", "blocks", "--out", str(tmp_path / "export"))

    # A block the server's schema rejects: the error names the fields, never their values.
    workspace.write("bad.yaml", f"blocks:\n  secret/{prefix}-bad:\n    data: {{value: '${{env.REPO_TOKEN}}', extra: 1}}\n")
    assert "extra: unknown field" in run("plan", directory, code=1).stderr
    workspace.remove("bad.yaml")

    run("destroy", directory, "--auto-approve")
    assert document(api, f"secret/{prefix}-imported") is None

    outputs = "\n".join(r.output for r in results)
    assert "(sensitive value)" in outputs
    # Even a secret the server no longer has (a header removed by hand) shows as "(sensitive value)".
    assert not [r.output for r in plans if "fingerprint:" in r.output]
    files = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    assert {saved, workspace.state_path, tmp_path / "plan.md", tmp_path / "drift.md"} <= set(files)
    assert any(path.is_relative_to(tmp_path / "export") for path in files), "export wrote nothing"
    for secret in secrets:
        assert secret not in outputs, f"{secret} printed"
        for path, content in files.items():
            assert secret.encode() not in content, f"{secret} in clear in {path}"
