"""provision_infra for Azure Container Instances push pools: planned, applied, repaired and destroyed.

The real SDK clients (azure-identity's DefaultAzureCredential, the azure-mgmt-* clients, azure-core's
pipeline for Microsoft Graph) talk to a loopback fake of Entra sign-in, ARM and Graph
(tests/azure_fake.py), reached through the standard settings (AZURE_CLIENT_ID / AZURE_CLIENT_SECRET /
AZURE_TENANT_ID / AZURE_AUTHORITY_HOST, REQUESTS_CA_BUNDLE) and the provider's endpoint settings.
Checks read the fake's state and Prefect's REST API, never prefect-provider.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.azure_fake import AzureFake
from tests.conftest import assert_ok
from tests.fake_https import make_certificate

TAG = "prefect-provider:work-pool"
PROVIDERS = {"container_instance_provider": "Microsoft.ContainerInstance", "container_registry_provider": "Microsoft.ContainerRegistry",
             "managed_identity_provider": "Microsoft.ManagedIdentity"}
PARTS = [*PROVIDERS, "aci_credentials", "aci_location", "acr_pull_role", "app_registration", "container_registry", "contributor_role",
         "identity", "resource_group", "service_principal"]
# Anything not on loopback goes to a closed loopback port and fails at once.
OFFLINE = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1,localhost"}
READS = {"Microsoft.Resources/subscriptions/providers/read", "Microsoft.ContainerInstance/locations/capabilities/read", "Microsoft.Resources/subscriptions/resourceGroups/read",
         "Microsoft.ContainerRegistry/registries/read", "Microsoft.ContainerRegistry/checkNameAvailability/read",
         "Microsoft.ManagedIdentity/userAssignedIdentities/read", "Microsoft.Authorization/roleAssignments/read",
         "microsoft.directory/applications/standard/read", "microsoft.directory/servicePrincipals/standard/read"}


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("azure-tls"))


@pytest.fixture
def azure(certificate) -> Iterator[AzureFake]:
    with AzureFake(certificate) as fake:
        yield fake


@pytest.fixture
def azure_env(azure, certificate) -> dict[str, str]:
    return {**azure.environment(), "REQUESTS_CA_BUNDLE": str(certificate[0]), **OFFLINE}


def pool_config(pool: str, *, location: str = "eastus", extra: str = "") -> str:
    return f"""\
work_pools:
  {pool}:
    type: azure-container-instance:push
    provision_infra:
      provider: azure
      location: {location}
{extra}"""


def tagged(store: dict, pool: str) -> list[dict]:
    return [r for r in store.values() if r["tags"].get(TAG) == pool]


def template_defaults(api, pool: str) -> dict:
    properties = api.get(f"work_pools/{pool}").json()["base_job_template"]["variables"]["properties"]
    return {key: properties[key].get("default")
            for key in ("aci_credentials", "resource_group_name", "subscription_id", "image_registry", "identities")}


def block(api, pool: str) -> dict:
    return api.get(f"block_types/slug/azure-container-instance-credentials/block_documents/name/{pool}-aci-credentials",
                   params={"include_secrets": True}).json()


def test_plan_creates_nothing_then_apply_creates_everything_tagged(workspace, prefix, api, azure, azure_env):
    pool = f"{prefix}-aci"
    workspace.write("pools.yaml", pool_config(pool))
    outputs = []

    planned = assert_ok(workspace.plan(env=azure_env), 2)
    outputs.append(planned.output)
    for part in PARTS:
        assert f"work_pools.{pool}.infra.{part} {{" in planned.stdout, part
    assert f"# work_pools.{pool}.infra.aci_location will be imported" in planned.stdout  # checked, never made
    assert "Plan: 9 to add, 0 to change, 0 to destroy, 4 to import." in planned.stdout  # 8 parts and the pool
    assert set(azure.calls) <= READS, "plan only reads"
    assert not azure.groups and not azure.applications and not azure.registries
    assert api.get(f"work_pools/{pool}").status_code == 404 and not workspace.state_path.exists()

    applied = assert_ok(workspace.apply(env=azure_env))
    outputs.append(applied.output)
    [group] = tagged(azure.groups, pool)
    [registry] = tagged(azure.registries, pool)
    [identity] = tagged(azure.identities, pool)
    [application] = azure.applications_named(f"prefect-{pool}")
    [principal] = azure.principals.values()
    assert group["name"] == f"prefect-{pool}" and group["location"] == "eastus"
    assert registry["sku"]["name"] == "Basic" and registry["properties"]["adminUserEnabled"] is False
    assert f'registry_url = "{registry["properties"]["loginServer"]}"' in applied.stdout
    assert f"{TAG}={pool}" in application["tags"] and f"{TAG}={pool}" in principal["tags"]
    assert principal["appId"] == application["appId"]
    assert azure.roles_of(principal["id"]) == [("Contributor", group["id"])]
    assert azure.roles_of(identity["properties"]["principalId"]) == [("AcrPull", registry["id"])]

    # One secret, only in the block; the template's defaults point at what was made.
    [password] = application["passwordCredentials"]
    secret = azure.secrets[password["keyId"]]
    document = block(api, pool)
    assert document["data"] == {"client_id": application["appId"], "tenant_id": azure.tenant, "client_secret": secret}
    assert template_defaults(api, pool) == {
        "aci_credentials": {"$ref": {"block_document_id": document["id"]}},
        "resource_group_name": group["name"],
        "subscription_id": azure.subscription,
        "image_registry": {"registry_url": registry["properties"]["loginServer"], "identity": identity["id"]},
        "identities": [identity["id"]],
    }

    again = assert_ok(workspace.plan(env=azure_env), 0)
    outputs.append(again.output)
    outputs.append(assert_ok(workspace.run("show", "--dir", str(workspace.directory), "--json")).output)
    for text in outputs + [p.read_text() for p in workspace.directory.rglob("*") if p.is_file()]:
        assert secret not in text


def test_reapply_makes_no_second_secret_and_what_was_deleted_by_hand_comes_back(workspace, prefix, api, azure, azure_env):
    pool = f"{prefix}-aci"
    workspace.write("pools.yaml", pool_config(pool))
    assert_ok(workspace.apply(env=azure_env))
    assert_ok(workspace.apply(env=azure_env))
    [application] = azure.applications_named(f"prefect-{pool}")
    passwords = list(application["passwordCredentials"])
    assert len(passwords) == 1, "a re-apply makes no secret"

    # The identity is deleted by hand: it comes back, its AcrPull goes to the new one, the pool follows.
    [identity] = tagged(azure.identities, pool)
    del azure.identities[identity["id"].lower()]
    planned = assert_ok(workspace.plan(env=azure_env), 2)
    assert f"work_pools.{pool}.infra.identity: deleted outside prefect-provider" in planned.stdout
    assert "Plan: 1 to add, 2 to change, 0 to destroy." in planned.stdout  # the identity; its role assignment and the pool
    assert_ok(workspace.apply(env=azure_env))
    [renewed] = tagged(azure.identities, pool)
    [registry] = tagged(azure.registries, pool)
    assert azure.roles_of(renewed["properties"]["principalId"]) == [("AcrPull", registry["id"])]
    assert template_defaults(api, pool)["identities"] == [renewed["id"]]
    assert_ok(workspace.plan(env=azure_env), 0)

    # With the state lost, the tagged objects, the assignments and the block are adopted: no second secret.
    workspace.state_path.unlink()
    assert_ok(workspace.run("import", f"work_pools.{pool}", pool, str(workspace.directory), env=azure_env))
    adopting = assert_ok(workspace.plan(env=azure_env), 2)
    assert f"# work_pools.{pool}.infra.app_registration will be imported" in adopting.stdout
    assert "exists in Prefect: taken into state, no new credential" in adopting.stdout
    assert "12 to import" in adopting.stdout
    assert_ok(workspace.apply(env=azure_env))
    assert_ok(workspace.plan(env=azure_env), 0)
    assert azure.applications_named(f"prefect-{pool}")[0]["passwordCredentials"] == passwords
    assert len(azure.applications) == 1 and len(azure.principals) == 1


def test_a_secret_removed_by_hand_is_replaced_by_exactly_one_new_secret(workspace, prefix, api, azure, azure_env):
    pool = f"{prefix}-aci"
    workspace.write("pools.yaml", pool_config(pool))
    assert_ok(workspace.apply(env=azure_env))
    [application] = azure.applications_named(f"prefect-{pool}")
    old = application["passwordCredentials"].pop()

    planned = assert_ok(workspace.plan(env=azure_env), 2)
    assert re.search(r'~ client_secret\s+= "missing" -> "active"', planned.stdout)
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in planned.stdout
    assert_ok(workspace.apply(env=azure_env))
    [new] = application["passwordCredentials"]
    assert new["keyId"] != old["keyId"] and block(api, pool)["data"]["client_secret"] == azure.secrets[new["keyId"]]
    assert_ok(workspace.plan(env=azure_env), 0)


def test_destroy_removes_what_was_made(workspace, prefix, api, azure, azure_env):
    pool = f"{prefix}-aci"
    workspace.write("pools.yaml", pool_config(pool))
    assert_ok(workspace.apply(env=azure_env))
    block_id = block(api, pool)["id"]

    destroyed = assert_ok(workspace.run("destroy", str(workspace.directory), "--auto-approve", env=azure_env))
    assert "Plan: 0 to add, 0 to change, 9 to destroy, 4 to forget." in destroyed.stdout  # the location, the providers: forgotten
    assert not azure.groups and not azure.registries and not azure.identities and not azure.assignments
    assert not azure.applications and not azure.principals
    assert api.get(f"block_documents/{block_id}").status_code == 404
    assert api.get(f"work_pools/{pool}").status_code == 404
    assert workspace.state()["resources"] == {}


def test_a_resource_group_holding_others_resources_is_not_deleted(workspace, prefix, azure, azure_env):
    pool = f"{prefix}-aci"
    workspace.write("pools.yaml", pool_config(pool))
    assert_ok(workspace.apply(env=azure_env))
    [group] = tagged(azure.groups, pool)
    theirs = f"{group['id']}/providers/Microsoft.Storage/storageAccounts/theirs"
    azure.foreign[group["name"].lower()] = [theirs]

    refused = assert_ok(workspace.run("destroy", str(workspace.directory), "--auto-approve", env=azure_env), 1)
    assert (f"work_pools.{pool}.infra.resource_group: Microsoft.Resources:ResourceGroups.Delete: not deleting the resource "
            f"group {group['name']}: it holds resources prefect-provider did not make: {theirs}") in refused.stderr
    assert group["name"].lower() in azure.groups and not azure.registries and not azure.applications
    assert list(workspace.state()["resources"]) == [f"work_pools.{pool}.infra.resource_group"]


def test_a_denied_action_is_named_and_the_next_apply_carries_on(workspace, prefix, api, azure, azure_env):
    pool = f"{prefix}-aci"
    workspace.write("pools.yaml", pool_config(pool))
    azure.deny.add("Microsoft.Authorization/roleAssignments/write")

    failed = assert_ok(workspace.apply(env=azure_env), 1)
    assert (f"work_pools.{pool}.infra.contributor_role: Microsoft.Authorization:RoleAssignments.CreateById denied: The client "
            f"'{azure.client_id}' with object id '{azure.operator_object_id}' does not have authorization to perform action "
            "'Microsoft.Authorization/roleAssignments/write' over scope") in failed.stderr
    assert f"work_pools.{pool}.infra.acr_pull_role: Microsoft.Authorization:RoleAssignments.CreateById denied" in failed.stderr
    assert "Traceback" not in failed.output
    recorded = workspace.state()["resources"]
    for part in ("resource_group", "app_registration", "service_principal", "container_registry", "identity"):
        assert f"work_pools.{pool}.infra.{part}" in recorded, part
    for part in ("contributor_role", "acr_pull_role", "aci_credentials"):
        assert f"work_pools.{pool}.infra.{part}" not in recorded, part
    assert f"work_pools.{pool}" not in recorded and api.get(f"work_pools/{pool}").status_code == 404
    assert not azure.assignments and not azure.secrets, "no secret before the principal may act"

    azure.deny.clear()
    finished = assert_ok(workspace.apply(env=azure_env))
    assert "Plan: 4 to add, 0 to change, 0 to destroy." in finished.stdout  # the assignments, the block, the pool
    [application] = azure.applications_named(f"prefect-{pool}")
    assert len(application["passwordCredentials"]) == 1 and len(azure.assignments) == 2
    assert_ok(workspace.plan(env=azure_env), 0)


def test_a_denied_graph_call_names_the_permission_it_needs(workspace, prefix, azure, azure_env):
    pool = f"{prefix}-aci"
    workspace.write("pools.yaml", pool_config(pool))
    azure.deny.add("microsoft.directory/applications/create")
    failed = assert_ok(workspace.apply(env=azure_env), 1)
    assert (f"work_pools.{pool}.infra.app_registration: graph:CreateApplication denied (Authorization_RequestDenied): "
            "Insufficient privileges to complete the operation. It needs the Microsoft Graph permission "
            "Application.ReadWrite.OwnedBy") in failed.stderr
    assert tagged(azure.groups, pool) and not azure.applications


def test_a_location_without_container_groups_or_a_taken_registry_name_is_refused_at_plan(workspace, prefix, azure, azure_env):
    pool = f"{prefix}-aci"
    workspace.write("pools.yaml", pool_config(pool, location="antarctica"))
    refused = assert_ok(workspace.plan(env=azure_env), 1)
    assert (f"Microsoft.ContainerInstance:Location.ListCapabilities: the location antarctica offers no container groups to the "
            f"subscription {azure.subscription}") in refused.stderr

    azure.taken_registry_names.add("prefectregistry")
    workspace.write("pools.yaml", pool_config(pool, extra="      registry_name: prefectregistry\n"))
    taken = assert_ok(workspace.plan(env=azure_env), 1)
    assert "Microsoft.ContainerRegistry:Registries.CheckNameAvailability: the registry name prefectregistry is taken" in taken.stderr
    assert set(azure.calls) <= READS and not azure.groups


def test_missing_subscription_or_refused_credentials_are_clear_errors(workspace, prefix, azure, azure_env):
    pool = f"{prefix}-aci"
    workspace.write("pools.yaml", pool_config(pool))
    no_subscription = assert_ok(workspace.plan(env={**azure_env, "AZURE_SUBSCRIPTION_ID": None}), 1)
    assert f"pools.yaml:4: work_pools.{pool}.provision_infra.subscription_id: no Azure subscription" in no_subscription.stderr

    refused = assert_ok(workspace.plan(env={**azure_env, "AZURE_CLIENT_SECRET": "wrong"}), 1)
    assert "the Azure credentials were refused" in refused.stderr and "AADSTS7000215" in refused.stderr
    assert "wrong" not in refused.output and "Traceback" not in refused.output


def test_bad_gcp_or_azure_provision_infra_is_refused_offline(workspace, prefix):
    workspace.write("pools.yaml", f"""\
work_pools:
  {prefix}-run:
    type: ecs:push
    provision_infra: {{provider: gcp, region: us-central1}}
  {prefix}-aci:
    type: azure-container-instance:push
    provision_infra: {{provider: azure, location: eastus, registry_name: Not-Valid}}
  {prefix}-run2:
    type: cloud-run-v2:push
    provision_infra: {{provider: gcp}}
""")
    result = assert_ok(workspace.run("validate", str(workspace.directory)), 1)
    assert (f"pools.yaml:2: work_pools.{prefix}-run: provision_infra with provider gcp is for work pools of type "
            "cloud-run:push or cloud-run-v2:push or cloud-run or cloud-run-v2, not ecs:push") in result.stderr
    assert f"pools.yaml:7: work_pools.{prefix}-aci.provision_infra.registry_name:" in result.stderr
    assert f"pools.yaml:10: work_pools.{prefix}-run2.provision_infra.region:" in result.stderr


def test_the_same_role_granted_by_hand_is_a_named_conflict(workspace, prefix, azure, azure_env):
    pool = f"{prefix}-aci"
    workspace.write("pools.yaml", pool_config(pool))
    assert_ok(workspace.apply(env=azure_env))
    [principal] = azure.principals.values()
    [ours] = [a for a in azure.assignments.values() if a["properties"]["principalId"] == principal["id"]]
    # Someone replaces the pool's Contributor assignment with one of their own for the same principal.
    del azure.assignments[ours["id"].lower()]
    theirs = ours["id"].rsplit("/", 1)[0] + "/" + "0" * 8 + "-0000-0000-0000-" + "0" * 12
    azure.assignments[theirs.lower()] = {**ours, "id": theirs, "name": theirs.rsplit("/", 1)[1]}

    planned = assert_ok(workspace.plan(env=azure_env), 2)
    assert f"work_pools.{pool}.infra.contributor_role: deleted outside prefect-provider" in planned.stdout
    failed = assert_ok(workspace.apply(env=azure_env), 1)
    assert (f"work_pools.{pool}.infra.contributor_role: Microsoft.Authorization:RoleAssignments.CreateById failed: "
            "RoleAssignmentExists: The role assignment already exists. The principal already holds Contributor on") in failed.stderr
    assert (f"through {theirs}, which prefect-provider did not make: delete it, and the next apply makes the pool's own."
            in failed.stderr)

    # Done as the message says, the pool has its own assignment again.
    del azure.assignments[theirs.lower()]
    assert_ok(workspace.apply(env=azure_env))
    assert azure.roles_of(principal["id"]) == [("Contributor", ours["properties"]["scope"])]
    assert ours["id"].lower() in azure.assignments
    assert_ok(workspace.plan(env=azure_env), 0)


# Entra replication: how many lookups of each new object miss it, and the waiting budget (seconds).
@pytest.mark.parametrize("lag", [1, 3])
def test_an_apply_waits_while_entra_replicates_what_it_just_made(workspace, prefix, api, azure, azure_env, lag):
    pool = f"{prefix}-aci"
    workspace.write("pools.yaml", pool_config(pool))
    azure.replication_lag = lag

    applied = assert_ok(workspace.apply(env={**azure_env, "PREFECT_PROVIDER_PROPAGATION_WAIT": "8"}))
    waits = re.findall(r"(work_pools\.\S+): waiting for (Entra to replicate the [a-z ]+), (\d+)/12…", applied.stderr)
    assert (f"work_pools.{pool}.infra.service_principal", "Entra to replicate the app registration", "1") in waits
    assert (f"work_pools.{pool}.infra.acr_pull_role", "Entra to replicate the principal", "1") in waits
    assert max(int(number) for *_, number in waits) == lag
    [application] = azure.applications_named(f"prefect-{pool}")
    [principal] = azure.principals.values()
    [identity] = tagged(azure.identities, pool)
    assert azure.roles_of(principal["id"]) == [("Contributor", tagged(azure.groups, pool)[0]["id"])]
    assert [role for role, _ in azure.roles_of(identity["properties"]["principalId"])] == ["AcrPull"]
    assert len(application["passwordCredentials"]) == 1
    assert api.get(f"work_pools/{pool}").status_code == 200
    assert_ok(workspace.plan(env=azure_env), 0)


def test_replication_that_never_comes_stops_naming_the_call_and_what_to_check(workspace, prefix, api, azure, azure_env):
    pool = f"{prefix}-aci"
    workspace.write("pools.yaml", pool_config(pool))
    azure.replication_lag = 10_000

    failed = assert_ok(workspace.apply(env={**azure_env, "PREFECT_PROVIDER_PROPAGATION_WAIT": "1"}), 1)
    assert re.search(rf"work_pools\.{pool}\.infra\.service_principal: graph:CreateServicePrincipal: gave up waiting for Entra to "
                     r"replicate the app registration after \d+ attempts in \d+ s \(at most 1 s, PREFECT_PROVIDER_PROPAGATION_WAIT\); "
                     r"check that the app registration still exists in the tenant \(App registrations\)\. Last error: graph:GetApplication",
                     failed.stderr), failed.stderr
    assert "Traceback" not in failed.output
    assert f"work_pools.{pool}.infra.app_registration" in workspace.state()["resources"]
    assert not azure.principals and api.get(f"work_pools/{pool}").status_code == 404


def test_an_unregistered_resource_provider_is_registered_by_the_apply(workspace, prefix, api, azure, azure_env):
    pool = f"{prefix}-aci"
    workspace.write("pools.yaml", pool_config(pool))
    azure.unregistered = {"Microsoft.ContainerInstance", "Microsoft.ContainerRegistry", "Microsoft.ManagedIdentity"}

    planned = assert_ok(workspace.plan(env=azure_env), 2)
    for part, namespace in PROVIDERS.items():
        assert re.search(rf'\+ work_pools\.{pool}\.infra\.{part} {{[^}}]*namespace\s+= "{namespace}"', planned.stdout), part
    assert f"+ work_pools.{pool}.infra.aci_location {{" in planned.stdout  # checked once Container Instances is registered
    assert set(azure.calls) <= READS, "plan only reads"

    applied = assert_ok(workspace.apply(env={**azure_env, "PREFECT_PROVIDER_PROPAGATION_WAIT": "8"}))
    assert (f"work_pools.{pool}.infra.container_instance_provider: waiting for Azure to register Microsoft.ContainerInstance "
            "for the subscription, 1/12…") in applied.stderr
    for namespace in PROVIDERS.values():
        assert f"{namespace}/register/action" in azure.calls
    assert not azure.unregistered and len(tagged(azure.registries, pool)) == 1 and len(tagged(azure.identities, pool)) == 1
    assert api.get(f"work_pools/{pool}").status_code == 200
    assert_ok(workspace.plan(env=azure_env), 0)


def test_registering_a_provider_without_register_action_is_named(workspace, prefix, azure, azure_env):
    pool = f"{prefix}-aci"
    workspace.write("pools.yaml", pool_config(pool))
    azure.unregistered = {"Microsoft.ContainerRegistry"}
    azure.deny.add("Microsoft.ContainerRegistry/register/action")

    failed = assert_ok(workspace.apply(env=azure_env), 1)
    assert (f"work_pools.{pool}.infra.container_registry_provider: Microsoft.Resources:Providers.Register denied: The client "
            f"'{azure.client_id}'") in failed.stderr
    assert "'Microsoft.ContainerRegistry/register/action'" in failed.stderr and "Traceback" not in failed.output
    assert not azure.registries
