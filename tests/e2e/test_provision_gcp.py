"""provision_infra for Cloud Run push pools: the cloud side planned, applied, repaired and destroyed.

The real Google Cloud client libraries (REST, and gRPC for IAM admin) talk to a loopback fake of
the control plane (tests/gcp_fake.py), reached through the provider's endpoint settings and
trusted through REQUESTS_CA_BUNDLE / GRPC_DEFAULT_SSL_ROOTS_FILE_PATH; the credentials are a
service-account GOOGLE_APPLICATION_CREDENTIALS, as Application Default Credentials find them.
Checks read the fake's state and Prefect's REST API, never prefect-provider.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import assert_ok
from tests.fake_https import make_certificate
from tests.gcp_fake import GcpFake

PROJECT = "prefect-test-project"
APIS = {"serviceusage_api": "serviceusage.googleapis.com", "iam_api": "iam.googleapis.com",
        "resource_manager_api": "cloudresourcemanager.googleapis.com", "run_api": "run.googleapis.com",
        "artifact_registry_api": "artifactregistry.googleapis.com"}
PARTS = [*APIS, "artifact_repository", "cloud_run_region", "gcp_credentials", "project_roles", "service_account"]
# Anything not on loopback goes to a closed loopback port and fails at once: google-auth looks up
# the credentials' regional access boundary at iamcredentials.googleapis.com in the background.
OFFLINE = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1,localhost"}
# What a plan may ask: reads only.
READS = {"serviceusage.services.get", "resourcemanager.projects.getIamPolicy", "artifactregistry.repositories.get",
         "run.services.list", "iam.serviceAccounts.get", "iam.serviceAccountKeys.list", "orgpolicy.policy.get"}


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    # One for the session: gRPC reads GRPC_DEFAULT_SSL_ROOTS_FILE_PATH once per process.
    return make_certificate(tmp_path_factory.mktemp("gcp-tls"))


@pytest.fixture(scope="session")
def operator(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """The operator's service-account key file, its public key and its email."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    email = f"operator@{PROJECT}.iam.gserviceaccount.com"
    path = tmp_path_factory.mktemp("gcp-operator") / "operator.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": PROJECT, "private_key_id": "operator-key", "client_email": email,
        "client_id": "1", "token_uri": "https://oauth2.googleapis.com/token",
        "private_key": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()).decode(),
    }))
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return path, public, email


@pytest.fixture
def gcp(certificate, operator) -> Iterator[GcpFake]:
    with GcpFake(PROJECT, certificate, operator[1], operator[2]) as fake:
        yield fake


@pytest.fixture
def gcp_env(gcp, certificate, operator) -> dict[str, str | None]:
    return {"GOOGLE_APPLICATION_CREDENTIALS": str(operator[0]), "GOOGLE_CLOUD_PROJECT": None,
            "REQUESTS_CA_BUNDLE": str(certificate[0]), "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(certificate[0]),
            **gcp.endpoints(), **OFFLINE}


def pool_config(pool: str, *, pool_type: str = "cloud-run:push", region: str = "us-central1") -> str:
    return f"""\
work_pools:
  {pool}:
    type: {pool_type}
    provision_infra:
      provider: gcp
      project: {PROJECT}
      region: {region}
"""


def names(pool: str) -> dict[str, str]:
    return {"email": f"prefect-{pool}@{PROJECT}.iam.gserviceaccount.com", "block": f"{pool}-gcp-credentials",
            "repository": f"projects/{PROJECT}/locations/us-central1/repositories/prefect-{pool}"}


def template_defaults(api, pool: str) -> dict:
    properties = api.get(f"work_pools/{pool}").json()["base_job_template"]["variables"]["properties"]
    return {key: properties[key].get("default") for key in ("credentials", "region")}


def block(api, pool: str) -> dict:
    return api.get(f"block_types/slug/gcp-credentials/block_documents/name/{names(pool)['block']}",
                   params={"include_secrets": True}).json()


def test_plan_creates_nothing_then_apply_creates_everything_labelled(workspace, prefix, api, gcp, gcp_env):
    pool, n = f"{prefix}-run", names(f"{prefix}-run")
    workspace.write("pools.yaml", pool_config(pool))
    outputs = []

    planned = assert_ok(workspace.plan(env=gcp_env), 2)
    outputs.append(planned.output)
    for part in PARTS:
        assert f"+ work_pools.{pool}.infra.{part} {{" in planned.stdout
    assert "Plan: 11 to add, 0 to change, 0 to destroy." in planned.stdout  # 10 parts and the pool
    for part, service in APIS.items():  # a fresh project: every API the parts call is enabled by the apply
        assert re.search(rf'\+ work_pools\.{pool}\.infra\.{part} {{\n\s+\+ project\s+= "{PROJECT}"\n\s+\+ service\s+= "{service}"',
                         planned.stdout), part
    assert set(gcp.calls) <= READS, "plan only reads"
    assert set(gcp.services.values()) == {"DISABLED"} and not gcp.accounts and not gcp.repositories
    assert api.get(f"work_pools/{pool}").status_code == 404 and not workspace.state_path.exists()

    applied = assert_ok(workspace.apply(env=gcp_env))
    outputs.append(applied.output)
    assert f'repository_url = "us-central1-docker.pkg.dev/{PROJECT}/prefect-{pool}"' in applied.stdout

    assert set(gcp.services.values()) == {"ENABLED"}
    account = gcp.accounts[n["email"]]
    assert f"prefect-provider-work-pool={pool}" in account["description"] and account["display_name"] == f"Prefect work pool {pool}"
    assert gcp.bound_roles(f"serviceAccount:{n['email']}") == ["roles/iam.serviceAccountUser", "roles/run.developer"]
    assert {"role": "roles/owner", "members": [f"serviceAccount:{gcp.operator_email}"]} in gcp.policy["bindings"], "others' bindings stay"
    repository = gcp.repositories[n["repository"]]
    assert repository["format"] == "DOCKER" and repository["labels"] == {"prefect-provider-work-pool": pool}

    # One key, only in the block; the pool's template points at the block and the region.
    [key] = gcp.keys[n["email"]]
    document = block(api, pool)
    info = document["data"]["service_account_info"]
    assert key["name"].endswith("/keys/" + info["private_key_id"]) and info["client_email"] == n["email"]
    assert document["data"]["project"] == PROJECT
    assert template_defaults(api, pool) == {"credentials": {"$ref": {"block_document_id": document["id"]}}, "region": "us-central1"}

    again = assert_ok(workspace.plan(env=gcp_env), 0)
    outputs.append(again.output)
    outputs.append(assert_ok(workspace.run("show", "--dir", str(workspace.directory), "--json")).output)
    for text in outputs + [p.read_text() for p in workspace.directory.rglob("*") if p.is_file()]:
        assert key["secret"] not in text and info["private_key_id"] not in text


def test_cloud_run_v2_pool_gets_the_same_defaults(workspace, prefix, api, gcp, gcp_env):
    pool = f"{prefix}-run2"
    workspace.write("pools.yaml", pool_config(pool, pool_type="cloud-run-v2:push", region="europe-west1"))
    assert_ok(workspace.apply(env=gcp_env))
    assert template_defaults(api, pool) == {"credentials": {"$ref": {"block_document_id": block(api, pool)["id"]}},
                                            "region": "europe-west1"}
    assert f"projects/{PROJECT}/locations/europe-west1/repositories/prefect-{pool}" in gcp.repositories
    assert_ok(workspace.plan(env=gcp_env), 0)


def test_reapply_makes_no_second_key_and_what_was_deleted_by_hand_comes_back(workspace, prefix, api, gcp, gcp_env):
    pool, n = f"{prefix}-run", names(f"{prefix}-run")
    workspace.write("pools.yaml", pool_config(pool))
    assert_ok(workspace.apply(env=gcp_env))
    assert_ok(workspace.apply(env=gcp_env))
    keys = [k["name"] for k in gcp.keys[n["email"]]]
    assert len(keys) == 1, "a re-apply makes no key"

    del gcp.repositories[n["repository"]]
    for binding in gcp.policy["bindings"]:
        if binding["role"] == "roles/run.developer":
            binding["members"].remove(f"serviceAccount:{n['email']}")
    planned = assert_ok(workspace.plan(env=gcp_env), 2)
    assert f"work_pools.{pool}.infra.artifact_repository: deleted outside prefect-provider" in planned.stdout
    assert re.search(r"~ roles\s+= \[", planned.stdout)
    assert "Plan: 1 to add, 1 to change, 0 to destroy." in planned.stdout
    assert_ok(workspace.apply(env=gcp_env))
    assert n["repository"] in gcp.repositories
    assert gcp.bound_roles(f"serviceAccount:{n['email']}") == ["roles/iam.serviceAccountUser", "roles/run.developer"]
    assert_ok(workspace.plan(env=gcp_env), 0)

    # With the state lost, the labelled objects and the block are adopted: no second key.
    workspace.state_path.unlink()
    assert_ok(workspace.run("import", f"work_pools.{pool}", pool, str(workspace.directory), env=gcp_env))
    adopting = assert_ok(workspace.plan(env=gcp_env), 2)
    assert f"# work_pools.{pool}.infra.service_account will be imported" in adopting.stdout
    assert "exists in Prefect: taken into state, no new credential" in adopting.stdout
    assert "10 to import" in adopting.stdout  # 5 APIs, the region, the account, its roles, the repository, the block
    assert_ok(workspace.apply(env=gcp_env))
    assert_ok(workspace.plan(env=gcp_env), 0)
    assert [k["name"] for k in gcp.keys[n["email"]]] == keys


def test_a_key_deleted_by_hand_is_replaced_by_exactly_one_new_key(workspace, prefix, api, gcp, gcp_env):
    pool, n = f"{prefix}-run", names(f"{prefix}-run")
    workspace.write("pools.yaml", pool_config(pool))
    assert_ok(workspace.apply(env=gcp_env))
    old = gcp.keys[n["email"]][0]["name"]
    gcp.keys[n["email"]] = []

    planned = assert_ok(workspace.plan(env=gcp_env), 2)
    assert re.search(r'~ key\s+= "missing" -> "active"', planned.stdout)
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in planned.stdout
    assert_ok(workspace.apply(env=gcp_env))
    [new] = gcp.keys[n["email"]]
    assert new["name"] != old and new["name"].endswith("/keys/" + block(api, pool)["data"]["service_account_info"]["private_key_id"])
    assert_ok(workspace.plan(env=gcp_env), 0)


def test_destroy_removes_what_was_made_and_leaves_the_apis_enabled(workspace, prefix, api, gcp, gcp_env):
    pool, n = f"{prefix}-run", names(f"{prefix}-run")
    workspace.write("pools.yaml", pool_config(pool))
    assert_ok(workspace.apply(env=gcp_env))
    block_id = block(api, pool)["id"]

    destroyed = assert_ok(workspace.run("destroy", str(workspace.directory), "--auto-approve", env=gcp_env))
    assert "Plan: 0 to add, 0 to change, 5 to destroy, 6 to forget." in destroyed.stdout  # APIs and region: forgotten
    assert not gcp.accounts and not gcp.repositories and n["email"] not in json.dumps(gcp.policy)
    assert gcp.services["run.googleapis.com"] == "ENABLED", "an API is never disabled"
    assert api.get(f"block_documents/{block_id}").status_code == 404
    assert api.get(f"work_pools/{pool}").status_code == 404
    assert workspace.state()["resources"] == {}


def test_a_denied_permission_is_named_and_the_next_apply_carries_on(workspace, prefix, api, gcp, gcp_env):
    pool, n = f"{prefix}-run", names(f"{prefix}-run")
    workspace.write("pools.yaml", pool_config(pool))
    gcp.deny.add("iam.serviceAccountKeys.create")

    failed = assert_ok(workspace.apply(env=gcp_env), 1)
    assert (f"work_pools.{pool}.infra.gcp_credentials: iam:CreateServiceAccountKey denied: Permission "
            "'iam.serviceAccountKeys.create' denied on resource (or it may not exist).") in failed.stderr
    assert "Traceback" not in failed.output
    recorded = workspace.state()["resources"]
    for part in ("service_account", "project_roles", "artifact_repository", "run_api"):
        assert f"work_pools.{pool}.infra.{part}" in recorded, part
    assert f"work_pools.{pool}.infra.gcp_credentials" not in recorded and f"work_pools.{pool}" not in recorded
    assert gcp.keys[n["email"]] == [] and api.get(f"work_pools/{pool}").status_code == 404

    gcp.deny.clear()
    finished = assert_ok(workspace.apply(env=gcp_env))
    assert "Plan: 2 to add, 0 to change, 0 to destroy." in finished.stdout  # the block and the pool
    assert len(gcp.keys[n["email"]]) == 1 and len(gcp.accounts) == 1
    assert_ok(workspace.plan(env=gcp_env), 0)


def test_a_region_cloud_run_does_not_offer_is_refused_at_plan(workspace, prefix, gcp, gcp_env):
    pool = f"{prefix}-run"
    gcp.services["run.googleapis.com"] = "ENABLED"
    workspace.write("pools.yaml", pool_config(pool, region="mars-north1"))
    refused = assert_ok(workspace.plan(env=gcp_env), 1)
    assert "run:ListServices: Cloud Run cannot be used in the region mars-north1 of the project prefect-test-project" in refused.stderr
    assert set(gcp.calls) <= READS and not gcp.accounts


def test_the_project_policy_is_written_with_its_etag_through_races_and_a_new_account(workspace, prefix, gcp, gcp_env):
    pool, n = f"{prefix}-run", names(f"{prefix}-run")
    gcp.concurrent_policy_changes = 2  # two other writers get in between our read and our write
    gcp.unpropagated_accounts = True  # and IAM does not know the new account everywhere at once
    workspace.write("pools.yaml", pool_config(pool))
    applied = assert_ok(workspace.apply(env={**gcp_env, "PREFECT_PROVIDER_PROPAGATION_WAIT": "8"}))
    assert (f"work_pools.{pool}.infra.project_roles: waiting for IAM to propagate the new service account, 1/12…"
            in applied.stderr)
    assert gcp.bound_roles(f"serviceAccount:{n['email']}") == ["roles/iam.serviceAccountUser", "roles/run.developer"]
    others = [m for b in gcp.policy["bindings"] if b["role"] == "roles/viewer" for m in b["members"]]
    assert len(others) == 2, "the other writers' bindings are kept"
    assert_ok(workspace.plan(env=gcp_env), 0)


def test_missing_credentials_or_project_are_clear_errors(workspace, prefix, gcp, gcp_env, tmp_path):
    pool = f"{prefix}-run"
    workspace.write("pools.yaml", f"work_pools:\n  {pool}:\n    type: cloud-run:push\n"
                                  f"    provision_infra: {{provider: gcp, region: us-central1}}\n")
    no_project_file = tmp_path / "no-project.json"
    no_project_file.write_text(json.dumps({**json.loads(Path(gcp_env["GOOGLE_APPLICATION_CREDENTIALS"]).read_text()),
                                           "project_id": None}))
    no_project = assert_ok(workspace.plan(env={**gcp_env, "GOOGLE_APPLICATION_CREDENTIALS": str(no_project_file)}), 1)
    assert f"pools.yaml:4: work_pools.{pool}.provision_infra.project: no GCP project" in no_project.stderr

    workspace.write("pools.yaml", pool_config(pool))
    missing = tmp_path / "missing.json"
    no_credentials = assert_ok(workspace.plan(env={**gcp_env, "GOOGLE_APPLICATION_CREDENTIALS": str(missing)}), 1)
    assert "no Google Cloud credentials found: set GOOGLE_APPLICATION_CREDENTIALS" in no_credentials.stderr
    assert "Traceback" not in no_credentials.output and not workspace.state_path.exists()


def test_the_cloud_sdks_are_imported_only_for_pools_that_provision(tmp_path):
    (tmp_path / "main.yaml").write_text("work_pools:\n  plain: {type: process}\n")
    code = ("import sys; from provider.config import load_configuration; "
            f"load_configuration(__import__('pathlib').Path({str(tmp_path)!r})); "
            "print(sorted(m for m in ('google.auth', 'google.cloud', 'azure.identity', 'azure.mgmt', 'grpc') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=Path(__file__).parents[2])
    assert result.stdout.strip() == "[]", result.stderr


def test_an_unlabelled_account_is_not_taken_over_and_a_create_race_is_a_clear_conflict(workspace, prefix, gcp, gcp_env):
    pool, n = f"{prefix}-run", names(f"{prefix}-run")
    gcp.enable_all()  # an account can only be there to be found when IAM is enabled
    workspace.write("pools.yaml", pool_config(pool))
    theirs = {"name": f"projects/{PROJECT}/serviceAccounts/{n['email']}", "project_id": PROJECT, "unique_id": "1",
              "email": n["email"], "display_name": "someone else's", "description": ""}
    gcp.accounts[n["email"]] = theirs
    refused = assert_ok(workspace.plan(env=gcp_env), 1)
    assert f"work_pools.{pool}.infra.service_account (id {theirs['name']})" in refused.stderr
    assert "not managed by prefect-provider" in refused.stderr

    # Made by someone else between plan and apply: the create is refused with Google's ALREADY_EXISTS.
    del gcp.accounts[n["email"]]
    saved = workspace.directory / "saved.plan"
    assert_ok(workspace.plan("--out", str(saved), env=gcp_env), 2)
    gcp.accounts[n["email"]] = theirs
    failed = assert_ok(workspace.run("apply", str(saved), "--auto-approve", env=gcp_env), 1)
    assert (f"work_pools.{pool}.infra.service_account: iam:CreateServiceAccount failed: ALREADY_EXISTS: Service account "
            f"prefect-{pool} already exists within project projects/{PROJECT}.") in failed.stderr
    assert gcp.accounts[n["email"]] == theirs and not gcp.keys.get(n["email"])


def test_on_a_fresh_project_the_apis_are_enabled_first_and_their_propagation_is_waited_for(workspace, prefix, api, gcp, gcp_env):
    pool, n = f"{prefix}-run", names(f"{prefix}-run")
    workspace.write("pools.yaml", pool_config(pool))
    gcp.enable_propagation = 2  # each API answers SERVICE_DISABLED twice more after it is enabled

    applied = assert_ok(workspace.apply(env={**gcp_env, "PREFECT_PROVIDER_PROPAGATION_WAIT": "8"}))
    waited = set(re.findall(rf"work_pools\.{pool}\.infra\.(\w+): waiting for Google to propagate the enabled API, (\d)/12…",
                            applied.stderr))
    assert {("service_account", "1"), ("service_account", "2"), ("project_roles", "1"), ("cloud_run_region", "1"),
            ("artifact_repository", "1")} <= waited, applied.stderr
    calls = gcp.calls
    assert calls.index("serviceusage.services.enable") < calls.index("iam.serviceAccounts.create")
    assert set(gcp.services.values()) == {"ENABLED"} and n["email"] in gcp.accounts and len(gcp.keys[n["email"]]) == 1
    assert api.get(f"work_pools/{pool}").status_code == 200
    assert_ok(workspace.plan(env=gcp_env), 0)


def test_an_api_that_never_comes_up_stops_naming_the_call_and_what_to_check(workspace, prefix, api, gcp, gcp_env):
    pool = f"{prefix}-run"
    workspace.write("pools.yaml", pool_config(pool))
    gcp.enable_propagation = 10_000

    failed = assert_ok(workspace.apply(env={**gcp_env, "PREFECT_PROVIDER_PROPAGATION_WAIT": "1"}), 1)
    assert re.search(rf"work_pools\.{pool}\.infra\.service_account: iam:CreateServiceAccount: gave up waiting for Google to "
                     r"propagate the enabled API after \d+ attempts in \d+ s \(at most 1 s, PREFECT_PROVIDER_PROPAGATION_WAIT\); "
                     r"check that the API is enabled in the project \(APIs & Services\)\. Last error: iam:CreateServiceAccount "
                     r"failed: the API is disabled in the project: Identity and Access Management \(IAM\) API has not been used",
                     failed.stderr), failed.stderr
    assert "Traceback" not in failed.output
    assert f"work_pools.{pool}.infra.iam_api" in workspace.state()["resources"]
    assert not gcp.accounts and api.get(f"work_pools/{pool}").status_code == 404


KEY_POLICY_ERROR = ("cloudresourcemanager:GetEffectiveOrgPolicy: the organization policy iam.disableServiceAccountKeyCreation is "
                    f"enforced on the project {PROJECT}, so no service account key can be made for the gcp-credentials block. "
                    "Ask an organization policy administrator to exempt the project")


def test_an_org_policy_forbidding_keys_stops_the_plan_naming_the_way_out(workspace, prefix, api, gcp, gcp_env):
    pool = f"{prefix}-run"
    workspace.write("pools.yaml", pool_config(pool))
    gcp.enable_all()
    gcp.enforced_constraints.add("iam.disableServiceAccountKeyCreation")

    refused = assert_ok(workspace.plan(env=gcp_env), 1)
    assert KEY_POLICY_ERROR in refused.stderr and "a `cloud-run` pool without provision_infra" in refused.stderr
    assert "Traceback" not in refused.output
    assert set(gcp.calls) <= READS and "orgpolicy.policy.get" in gcp.calls
    assert not gcp.accounts and not workspace.state_path.exists()

    gcp.enforced_constraints.clear()  # exempted: the plan goes through
    assert_ok(workspace.plan(env=gcp_env), 2)


def test_on_a_fresh_project_the_org_policy_is_checked_before_the_key(workspace, prefix, api, gcp, gcp_env):
    pool, n = f"{prefix}-run", names(f"{prefix}-run")
    workspace.write("pools.yaml", pool_config(pool))
    gcp.enforced_constraints.add("iam.disableServiceAccountKeyCreation")
    assert_ok(workspace.plan(env=gcp_env), 2)  # Resource Manager is not enabled yet: the apply asks

    failed = assert_ok(workspace.apply(env=gcp_env), 1)
    assert f"work_pools.{pool}.infra.gcp_credentials: {KEY_POLICY_ERROR}" in failed.stderr
    assert "iam.serviceAccountKeys.create" not in gcp.calls and gcp.keys[n["email"]] == []
    assert f"work_pools.{pool}.infra.project_roles" in workspace.state()["resources"]
    refused = assert_ok(workspace.plan(env=gcp_env), 1)  # now the plan knows
    assert KEY_POLICY_ERROR in refused.stderr
