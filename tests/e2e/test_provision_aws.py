"""provision_infra for ECS push pools: the cloud side planned, applied, repaired and destroyed.

Against a real moto server process (boto3 reaches it through AWS_ENDPOINT_URL, as the CLI does)
and the real Prefect server. The checks read AWS with their own boto3 clients and Prefect through
its REST API, never through prefect-provider.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from tests.aws_fault_proxy import NOT_YET_IN_IAM, SERVICE_LINKED_ROLE_RACE, AwsFaultProxy
from tests.conftest import assert_ok, moto_server

TAG = "prefect-provider:work-pool"
PROVISIONING_DOC = Path(__file__).parents[2] / "docs" / "provisioning-aws.md"
PARTS = ["aws_credentials", "ecr_repository", "ecs_cluster", "execution_role", "iam_user", "internet_gateway",
         "route_table", "security_group", "subnet_1", "subnet_2", "subnet_3", "vpc"]


def pool_config(pool: str, *, extra: str = "", default_vpc: bool = False, region: str = "us-east-1") -> str:
    network = "" if default_vpc else "      use_default_vpc: false\n"  # most tests look at the pool's own network
    return f"""\
work_pools:
  {pool}:
    type: ecs:push
    queues:
      high: {{priority: 1}}
    provision_infra:
      provider: aws
      region: {region}
{network}{extra}"""


class Aws:
    """boto3 clients of the test itself, pointed at a moto server."""

    def __init__(self, endpoint: str, key: str = "testing", secret: str = "testing"):
        self.session = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret, region_name="us-east-1")
        self.endpoint = endpoint

    def __call__(self, service: str):
        return self.session.client(service, endpoint_url=self.endpoint)

    def tagged(self, kind: str, pool: str) -> list[dict]:
        """EC2 objects of a kind (Vpcs, Subnets, ...) carrying the pool's tag."""
        describe = getattr(self("ec2"), "describe_" + {"Vpcs": "vpcs", "Subnets": "subnets", "InternetGateways": "internet_gateways",
                                                      "RouteTables": "route_tables", "SecurityGroups": "security_groups"}[kind])
        return describe(Filters=[{"Name": f"tag:{TAG}", "Values": [pool]}])[kind]

    def cluster(self, name: str) -> dict | None:
        clusters = self("ecs").describe_clusters(clusters=[name], include=["TAGS"])["clusters"]
        return next((c for c in clusters if c["status"] == "ACTIVE"), None)

    def repository(self, name: str) -> dict | None:
        return next((r for r in self("ecr").describe_repositories()["repositories"] if r["repositoryName"] == name), None)

    def user_names(self) -> list[str]:
        return [u["UserName"] for u in self("iam").list_users()["Users"]]

    def role_names(self) -> list[str]:
        return [r["RoleName"] for r in self("iam").list_roles()["Roles"]]


@pytest.fixture
def aws(aws_env) -> Aws:
    return Aws(aws_env["AWS_ENDPOINT_URL"])


def names(pool: str) -> dict[str, str]:
    return {"cluster": f"prefect-{pool}", "repository": f"prefect-{pool}", "role": f"prefect-{pool}-ecs-execution",
            "user": f"prefect-{pool}-ecs-worker", "block": f"{pool}-aws-credentials"}


def template_defaults(api, pool: str) -> dict:
    properties = api.get(f"work_pools/{pool}").json()["base_job_template"]["variables"]["properties"]
    return {key: properties[key].get("default") for key in ("cluster", "vpc_id", "execution_role_arn", "aws_credentials")}


def secret_key(api, pool: str) -> tuple[str, str]:
    block = api.get(f"block_types/slug/aws-credentials/block_documents/name/{names(pool)['block']}",
                    params={"include_secrets": True}).json()
    return block["data"]["aws_access_key_id"], block["data"]["aws_secret_access_key"]


def test_plan_creates_nothing_then_apply_creates_everything_tagged(workspace, prefix, api, aws, aws_env):
    pool, n = f"{prefix}-ecs", names(f"{prefix}-ecs")
    workspace.write("pools.yaml", pool_config(pool))
    outputs = []

    planned = assert_ok(workspace.plan(env=aws_env), 2)
    outputs.append(planned.output)
    for part in PARTS:
        assert f"+ work_pools.{pool}.infra.{part} {{" in planned.stdout
    assert "Plan: 14 to add, 0 to change, 0 to destroy." in planned.stdout  # 12 parts, the pool, its queue
    assert aws.cluster(n["cluster"]) is None and aws.repository(n["repository"]) is None
    assert n["user"] not in aws.user_names() and n["role"] not in aws.role_names()
    assert aws.tagged("Vpcs", pool) == []
    assert api.get(f"work_pools/{pool}").status_code == 404
    assert api.get(f"block_types/slug/aws-credentials/block_documents/name/{n['block']}").status_code == 404
    assert not workspace.state_path.exists()

    applied = assert_ok(workspace.apply(env=aws_env))
    outputs.append(applied.output)
    repository = aws.repository(n["repository"])
    assert f'registry_url = "{repository["repositoryUri"].split("/")[0]}"' in applied.stdout
    assert f'repository_url = "{repository["repositoryUri"]}"' in applied.stdout

    # Every AWS object exists and carries the pool's tag.
    cluster = aws.cluster(n["cluster"])
    assert cluster["capacityProviders"] == ["FARGATE"] and {"key": TAG, "value": pool} in cluster["tags"]
    assert {"Key": TAG, "Value": pool} in aws("ecr").list_tags_for_resource(resourceArn=repository["repositoryArn"])["tags"]
    iam = aws("iam")
    role = iam.get_role(RoleName=n["role"])["Role"]
    user = iam.get_user(UserName=n["user"])["User"]
    assert {"Key": TAG, "Value": pool} in role["Tags"] and {"Key": TAG, "Value": pool} in user["Tags"]
    attached = iam.list_attached_role_policies(RoleName=n["role"])["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AmazonECSTaskExecutionRolePolicy"]
    assert "logs:CreateLogGroup" in json.dumps(iam.get_role_policy(RoleName=n["role"], PolicyName="prefect-create-log-group"))
    [vpc] = aws.tagged("Vpcs", pool)
    subnets = aws.tagged("Subnets", pool)
    assert len(subnets) == 3 and {s["VpcId"] for s in subnets} == {vpc["VpcId"]}
    assert len({s["AvailabilityZone"] for s in subnets}) == 3, "subnets across availability zones"
    [gateway] = aws.tagged("InternetGateways", pool)
    assert gateway["Attachments"][0]["VpcId"] == vpc["VpcId"]
    [table] = aws.tagged("RouteTables", pool)
    assert {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": gateway["InternetGatewayId"]}.items() <= next(
        r for r in table["Routes"] if r["DestinationCidrBlock"] == "0.0.0.0/0").items()
    assert sorted(a["SubnetId"] for a in table["Associations"]) == sorted(s["SubnetId"] for s in subnets)
    [group] = aws.tagged("SecurityGroups", pool)
    assert group["VpcId"] == vpc["VpcId"] and group["IpPermissions"] == []

    # The worker's policy: least privilege with the logs permissions, PassRole only for the role.
    document = iam.get_user_policy(UserName=n["user"], PolicyName="prefect-ecs-worker")["PolicyDocument"]
    statements = document["Statement"]
    actions = {a for s in statements if s["Action"] != "iam:PassRole" for a in s["Action"]}
    assert {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:GetLogEvents",
            "ecs:RunTask", "ecs:RegisterTaskDefinition", "ec2:DescribeSubnets"} <= actions
    assert not any(a.startswith("iam:") or a.endswith(":*") or a == "*" for a in actions)
    [pass_role] = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert pass_role["Resource"] == role["Arn"]
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}

    # The pool's template defaults point at what was made; the key lives only in the block.
    block = api.get(f"block_types/slug/aws-credentials/block_documents/name/{n['block']}").json()
    assert template_defaults(api, pool) == {
        "cluster": cluster["clusterArn"],
        "vpc_id": vpc["VpcId"],
        "execution_role_arn": role["Arn"],
        "aws_credentials": {"$ref": {"block_document_id": block["id"]}},
    }
    key_id, secret = secret_key(api, pool)
    assert [k["AccessKeyId"] for k in iam.list_access_keys(UserName=n["user"])["AccessKeyMetadata"]] == [key_id]
    assert api.get(f"block_documents/{block['id']}", params={"include_secrets": True}).json()["data"]["region_name"] == "us-east-1"

    state = workspace.state()["resources"]
    assert state[f"work_pools.{pool}.infra.ecs_cluster"]["id"] == cluster["clusterArn"]
    assert state[f"work_pools.{pool}.infra.aws_credentials"]["id"] == block["id"]

    again = assert_ok(workspace.plan(env=aws_env), 0)
    outputs.append(again.output)
    assert "No changes." in again.stdout
    outputs.append(assert_ok(workspace.run("show", "--dir", str(workspace.directory), "--json")).output)

    # The access key never shows: not in any output, not in any file beside the configuration.
    for text in outputs + [p.read_text() for p in workspace.directory.rglob("*") if p.is_file()]:
        assert secret not in text and key_id not in text


def test_reapply_makes_no_second_key_and_objects_deleted_by_hand_come_back(workspace, prefix, api, aws, aws_env):
    pool, n = f"{prefix}-ecs", names(f"{prefix}-ecs")
    workspace.write("pools.yaml", pool_config(pool))
    assert_ok(workspace.apply(env=aws_env))
    keys = aws("iam").list_access_keys(UserName=n["user"])["AccessKeyMetadata"]
    pool_id = api.get(f"work_pools/{pool}").json()["id"]

    aws("ecr").delete_repository(repositoryName=n["repository"], force=True)
    aws("ecs").delete_cluster(cluster=n["cluster"])
    planned = assert_ok(workspace.plan(env=aws_env), 2)
    assert f"work_pools.{pool}.infra.ecr_repository: deleted outside prefect-provider" in planned.stdout
    assert f"work_pools.{pool}.infra.ecs_cluster: deleted outside prefect-provider" in planned.stdout
    assert f"work_pools.{pool}.infra.ecs_cluster is re-created: refer to the new object" in planned.stdout
    assert "Plan: 2 to add, 1 to change, 0 to destroy." in planned.stdout
    assert_ok(workspace.apply(env=aws_env))
    assert aws.repository(n["repository"]) is not None
    assert template_defaults(api, pool)["cluster"] == aws.cluster(n["cluster"])["clusterArn"]
    assert_ok(workspace.plan(env=aws_env), 0)

    # With the state lost, the objects carrying the pool's tag and the block are adopted as they are.
    workspace.state_path.unlink()
    for address, name in ((f"work_pools.{pool}", pool), (f"work_queues.{pool}/high", f"{pool}/high")):
        assert_ok(workspace.run("import", address, name, str(workspace.directory), env=aws_env))
    adopting = assert_ok(workspace.plan(env=aws_env), 2)
    assert f"# work_pools.{pool}.infra.vpc will be imported" in adopting.stdout
    assert "exists in Prefect: taken into state, no new access key" in adopting.stdout
    assert "Plan: 0 to add, 1 to change, 0 to destroy, 12 to import." in adopting.stdout
    assert_ok(workspace.apply(env=aws_env))
    assert_ok(workspace.plan(env=aws_env), 0)

    assert aws("iam").list_access_keys(UserName=n["user"])["AccessKeyMetadata"] == keys, "no second access key"
    assert aws.user_names().count(n["user"]) == 1 and len(aws.tagged("Vpcs", pool)) == 1
    assert api.get(f"work_pools/{pool}").json()["id"] == pool_id


def test_an_access_key_deleted_by_hand_is_replaced_by_exactly_one_new_key(workspace, prefix, api, aws, aws_env):
    pool, n = f"{prefix}-ecs", names(f"{prefix}-ecs")
    workspace.write("pools.yaml", pool_config(pool, default_vpc=True))
    assert_ok(workspace.apply(env=aws_env))
    old_key, _ = secret_key(api, pool)
    aws("iam").delete_access_key(UserName=n["user"], AccessKeyId=old_key)

    planned = assert_ok(workspace.plan(env=aws_env), 2)
    assert re.search(r'~ access_key\s+= "missing" -> "active"', planned.stdout)
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in planned.stdout
    assert_ok(workspace.apply(env=aws_env))
    new_key, _ = secret_key(api, pool)
    keys = aws("iam").list_access_keys(UserName=n["user"])["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in keys] == [new_key] and new_key != old_key
    assert_ok(workspace.plan(env=aws_env), 0)


def test_destroy_tears_the_cloud_side_down(workspace, prefix, api, aws, aws_env):
    pool, n = f"{prefix}-ecs", names(f"{prefix}-ecs")
    workspace.write("pools.yaml", pool_config(pool))
    assert_ok(workspace.apply(env=aws_env))
    block_id = workspace.state()["resources"][f"work_pools.{pool}.infra.aws_credentials"]["id"]

    destroyed = assert_ok(workspace.run("destroy", str(workspace.directory), "--auto-approve", env=aws_env))
    assert "Plan: 0 to add, 0 to change, 14 to destroy." in destroyed.stdout
    assert aws.cluster(n["cluster"]) is None and aws.repository(n["repository"]) is None
    assert n["user"] not in aws.user_names() and n["role"] not in aws.role_names()
    for kind in ("Vpcs", "Subnets", "InternetGateways", "RouteTables", "SecurityGroups"):
        assert aws.tagged(kind, pool) == [], kind
    assert api.get(f"block_documents/{block_id}").status_code == 404
    assert api.get(f"work_pools/{pool}").status_code == 404
    assert workspace.state()["resources"] == {}


def test_prevent_destroy_on_the_pool_protects_its_infrastructure(workspace, prefix, aws, aws_env):
    pool, n = f"{prefix}-ecs", names(f"{prefix}-ecs")
    workspace.write("pools.yaml", pool_config(pool, default_vpc=True, extra="    lifecycle: {prevent_destroy: true}\n"))
    assert_ok(workspace.apply(env=aws_env))
    refused = assert_ok(workspace.run("destroy", str(workspace.directory), "--auto-approve", env=aws_env), 1)
    assert "lifecycle.prevent_destroy forbids destroying" in refused.stderr
    assert f"work_pools.{pool}.infra.ecs_cluster (" in refused.stderr and f"work_pools.{pool}.infra.iam_user (" in refused.stderr
    assert aws.cluster(n["cluster"]) is not None


def test_removing_provision_infra_deletes_the_infra_and_keeps_the_pool(workspace, prefix, api, aws, aws_env):
    pool, n = f"{prefix}-ecs", names(f"{prefix}-ecs")
    workspace.write("pools.yaml", pool_config(pool, default_vpc=True))
    assert_ok(workspace.apply(env=aws_env))
    [default_vpc] = aws("ec2").describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    assert template_defaults(api, pool)["vpc_id"] == default_vpc["VpcId"]
    assert aws.tagged("Vpcs", pool) == []

    workspace.write("pools.yaml", f"work_pools:\n  {pool}:\n    type: ecs:push\n    queues:\n      high: {{priority: 1}}\n")
    planned = assert_ok(workspace.plan(env=aws_env), 2)
    assert f"# work_pools.{pool}.infra.default_vpc will be removed from state (not deleted)" in planned.stdout
    assert "Plan: 0 to add, 1 to change, 5 to destroy, 1 to forget." in planned.stdout
    assert_ok(workspace.apply(env=aws_env))
    assert aws.cluster(n["cluster"]) is None and n["user"] not in aws.user_names()
    assert template_defaults(api, pool) == dict.fromkeys(("cluster", "vpc_id", "execution_role_arn", "aws_credentials"))
    assert aws("ec2").describe_vpcs(VpcIds=[default_vpc["VpcId"]])["Vpcs"], "the default VPC is never deleted"
    assert api.get(f"work_pools/{pool}/queues/high").status_code == 200


def test_provision_infra_command_plans_applies_and_destroys_one_pool(workspace, prefix, api, aws, aws_env):
    pool, other, n = f"{prefix}-ecs", f"{prefix}-other", names(f"{prefix}-ecs")
    workspace.write("pools.yaml", pool_config(pool, default_vpc=True))
    workspace.write("other.yaml", f"work_pools:\n  {other}: {{type: process}}\n")
    directory = str(workspace.directory)

    dry = assert_ok(workspace.run("provision-infra", pool, directory, "--dry-run", env=aws_env))
    assert f"+ work_pools.{pool}.infra.ecs_cluster {{" in dry.stdout
    assert f"work_pools.{other}" not in dry.stdout, "only that pool"
    assert aws.cluster(n["cluster"]) is None and api.get(f"work_pools/{pool}").status_code == 404
    assert not workspace.state_path.exists()

    assert_ok(workspace.run("provision-infra", pool, directory, "--auto-approve", env=aws_env))
    assert template_defaults(api, pool)["cluster"] == aws.cluster(n["cluster"])["clusterArn"]
    assert api.get(f"work_pools/{other}").status_code == 404, "other resources are not applied"

    gone = assert_ok(workspace.run("provision-infra", pool, directory, "--destroy", "--auto-approve", env=aws_env))
    assert "Plan: 0 to add, 1 to change, 5 to destroy, 1 to forget." in gone.stdout
    assert aws.cluster(n["cluster"]) is None and n["role"] not in aws.role_names()
    assert template_defaults(api, pool)["cluster"] is None
    assert api.get(f"work_pools/{pool}").status_code == 200, "the pool itself stays"


def operator_policy(*, without: str = "") -> dict:
    """The documented policy for the operator (docs/provisioning-aws.md). moto authorizes most calls against the resource "*"
    and knows no condition keys, so resources are widened to "*" and conditions dropped: what this
    checks is that its actions are enough."""
    section = PROVISIONING_DOC.read_text()
    policy = json.loads(section.split("```json\n", 1)[1].split("```", 1)[0])
    for statement in policy["Statement"]:
        statement["Resource"] = "*"
        statement.pop("Condition", None)
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        statement["Action"] = [action for action in actions if action != without]
    return policy


def boundary_policy() -> dict:
    """The documented permissions boundary (the second JSON block of the AWS page)."""
    section = PROVISIONING_DOC.read_text()
    return json.loads(section.split("```json\n")[2].split("```", 1)[0])


def test_the_operator_policy_suffices_and_a_denied_action_is_named(workspace, prefix, api, tmp_path):
    pool, n = f"{prefix}-ecs", names(f"{prefix}-ecs")
    # A moto server that enforces IAM policies after its first four calls, which make the operator and
    # the permissions boundary the documented policy asks the role and user to carry.
    with moto_server(tmp_path / "moto-auth.log", INITIAL_NO_AUTH_ACTION_COUNT="4") as url:
        iam = Aws(url)("iam")
        boundary = iam.create_policy(PolicyName="prefect-provider-boundary", PolicyDocument=json.dumps(
            boundary_policy()))["Policy"]["Arn"]
        iam.create_user(UserName="operator")
        iam.put_user_policy(UserName="operator", PolicyName="operator",
                            PolicyDocument=json.dumps(operator_policy(without="iam:CreateRole")))
        key = iam.create_access_key(UserName="operator")["AccessKey"]
        operator = Aws(url, key["AccessKeyId"], key["SecretAccessKey"])
        env = {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
               "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"], "AWS_DEFAULT_REGION": "us-east-1"}
        workspace.write("pools.yaml", pool_config(pool))

        failed = assert_ok(workspace.apply(env=env), 1)
        assert (f"Error: work_pools.{pool}.infra.execution_role: iam:CreateRole denied: User: "
                "arn:aws:iam::123456789012:user/operator is not authorized to perform: iam:CreateRole") in failed.stderr
        assert f"work_pools.{pool}.infra.iam_user: not attempted because something it depends on failed" in failed.stderr
        assert "Traceback" not in failed.output
        recorded = workspace.state()["resources"]
        assert f"work_pools.{pool}.infra.ecs_cluster" in recorded and f"work_pools.{pool}.infra.vpc" in recorded
        assert f"work_pools.{pool}.infra.execution_role" not in recorded and f"work_pools.{pool}" not in recorded
        assert api.get(f"work_pools/{pool}").status_code == 404

        # With the whole policy, the next apply finishes the job without making anything twice.
        operator("iam").put_user_policy(UserName="operator", PolicyName="operator",
                                        PolicyDocument=json.dumps(operator_policy()))
        finished = assert_ok(workspace.apply(env=env))
        assert "Plan: 5 to add, 0 to change, 0 to destroy." in finished.stdout  # role, user, key, pool, queue
        assert len(operator.tagged("Vpcs", pool)) == 1 and operator.cluster(n["cluster"]) is not None
        assert template_defaults(api, pool)["execution_role_arn"].endswith(f":role/{n['role']}")
        assert boundary.endswith(":policy/prefect-provider-boundary")  # the documented boundary is a valid policy
        assert_ok(workspace.plan(env=env), 0)

        assert_ok(workspace.run("destroy", str(workspace.directory), "--auto-approve", env=env))
        assert operator.cluster(n["cluster"]) is None and operator.tagged("Vpcs", pool) == []
        iam = operator("iam")  # the operator may not list users or roles: look them up by name
        for lookup in (lambda: iam.get_user(UserName=n["user"]), lambda: iam.get_role(RoleName=n["role"])):
            with pytest.raises(iam.exceptions.NoSuchEntityException):
                lookup()


def test_missing_region_or_credentials_is_a_clear_error(workspace, prefix, moto_url):
    pool = f"{prefix}-ecs"
    no_aws_files = {"AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
                    "AWS_EC2_METADATA_DISABLED": "true", "AWS_PROFILE": None, "AWS_ENDPOINT_URL": moto_url}
    workspace.write("pools.yaml", f"work_pools:\n  {pool}:\n    type: ecs:push\n    provision_infra: {{provider: aws}}\n")
    no_region = assert_ok(workspace.plan(env={**no_aws_files, "AWS_REGION": None, "AWS_DEFAULT_REGION": None,
                                               "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}), 1)
    assert f"pools.yaml:4: work_pools.{pool}.provision_infra.region: no AWS region" in no_region.stderr

    no_credentials = assert_ok(workspace.plan(env={**no_aws_files, "AWS_DEFAULT_REGION": "us-east-1",
                                                   "AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None}), 1)
    assert "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in no_credentials.stderr
    assert "Traceback" not in no_credentials.output and not workspace.state_path.exists()


def test_an_object_of_the_same_name_without_the_pool_tag_is_not_taken_over(workspace, prefix, aws, aws_env):
    pool, n = f"{prefix}-ecs", names(f"{prefix}-ecs")
    theirs = aws("ecs").create_cluster(clusterName=n["cluster"])["cluster"]["clusterArn"]
    workspace.write("pools.yaml", pool_config(pool))
    refused = assert_ok(workspace.apply(env=aws_env), 1)
    assert f"work_pools.{pool}.infra.ecs_cluster (id {theirs})" in refused.stderr
    assert "not managed by prefect-provider" in refused.stderr
    assert n["role"] not in aws.role_names() and not workspace.state_path.exists(), "nothing is applied"

    # Adopted deliberately, it is managed from then on: it gets the pool's tag.
    address = f"work_pools.{pool}.infra.ecs_cluster"
    assert_ok(workspace.run("import", address, theirs, str(workspace.directory), env=aws_env))
    planned = assert_ok(workspace.plan(env=aws_env), 2)
    assert f"# {address} will be updated in-place" in planned.stdout and f"+ {TAG} = " in planned.stdout
    assert_ok(workspace.apply(env=aws_env))
    assert aws.cluster(n["cluster"])["clusterArn"] == theirs and {"key": TAG, "value": pool} in aws.cluster(n["cluster"])["tags"]


def test_bad_provision_infra_is_refused_offline(workspace, prefix):
    workspace.write("pools.yaml", f"""\
work_pools:
  {prefix}-proc:
    type: process
    provision_infra: {{provider: aws}}
  {prefix}-gcp:
    type: ecs:push
    provision_infra: {{provider: nimbus}}
  {prefix}-net:
    type: ecs:push
    provision_infra: {{provider: aws, cidr_block: 10.0.0.0/8, cluster_name: "no spaces"}}
""")
    result = assert_ok(workspace.run("validate", str(workspace.directory)), 1)
    assert (f"pools.yaml:2: work_pools.{prefix}-proc: provision_infra with provider aws is for work pools of type "
            "ecs:push or ecs, not process") in result.stderr
    assert f"pools.yaml:7: work_pools.{prefix}-gcp.provision_infra: Input tag 'nimbus'" in result.stderr
    assert f"pools.yaml:10: work_pools.{prefix}-net.provision_infra.cidr_block:" in result.stderr
    assert f"pools.yaml:10: work_pools.{prefix}-net.provision_infra.cluster_name:" in result.stderr


def test_boto3_is_imported_only_for_pools_with_provision_infra(tmp_path):
    (tmp_path / "main.yaml").write_text("work_pools:\n  plain: {type: process}\n")
    code = ("import sys; from provider.config import load_configuration; from provider.engine import make_plan; "
            f"load_configuration(__import__('pathlib').Path({str(tmp_path)!r})); print('boto3' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=Path(__file__).parents[2])
    assert result.stdout.strip() == "False", result.stderr


@pytest.fixture
def faults(moto_url):
    with AwsFaultProxy(moto_url) as proxy:
        yield proxy


def test_an_apply_waits_for_iam_propagation_and_the_service_linked_role_race(workspace, prefix, api, aws, aws_env, faults):
    pool, n = f"{prefix}-ecs", names(f"{prefix}-ecs")
    workspace.write("pools.yaml", pool_config(pool))
    # What a new account answers: the first cluster's service-linked role is not usable at once, and
    # IAM does not know a role or user made a moment ago on every server.
    faults.fail("ecs:CreateCluster", SERVICE_LINKED_ROLE_RACE, times=2)
    faults.fail("iam:PutRolePolicy", (NOT_YET_IN_IAM[0], NOT_YET_IN_IAM[1], NOT_YET_IN_IAM[2].format(name=n["role"])), times=1)
    faults.fail("iam:PutUserPolicy", (NOT_YET_IN_IAM[0], NOT_YET_IN_IAM[1], f"The user with name {n['user']} cannot be found."),
                times=1)
    faults.fail("iam:CreateAccessKey", (NOT_YET_IN_IAM[0], NOT_YET_IN_IAM[1], f"The user with name {n['user']} cannot be found."),
                times=1)
    env = {**aws_env, "AWS_ENDPOINT_URL": faults.url, "PREFECT_PROVIDER_PROPAGATION_WAIT": "8"}

    applied = assert_ok(workspace.apply(env=env))
    assert faults.answered == {"ecs:CreateCluster": 2, "iam:PutRolePolicy": 1, "iam:PutUserPolicy": 1, "iam:CreateAccessKey": 1}
    for part, waiting_for, attempts in [("ecs_cluster", "ECS to take up its service-linked role", 2),
                                        ("execution_role", "IAM to propagate the new role or user", 1),
                                        ("iam_user", "IAM to propagate the new role or user", 1),
                                        ("aws_credentials", "IAM to propagate the new role or user", 1)]:
        for number in range(1, attempts + 1):
            assert f"work_pools.{pool}.infra.{part}: waiting for {waiting_for}, {number}/12…" in applied.stderr, part
    assert aws.cluster(n["cluster"]) is not None and len(aws.tagged("Vpcs", pool)) == 1
    assert aws("iam").get_role_policy(RoleName=n["role"], PolicyName="prefect-create-log-group")
    assert [k["AccessKeyId"] for k in aws("iam").list_access_keys(UserName=n["user"])["AccessKeyMetadata"]] == [secret_key(api, pool)[0]]
    assert_ok(workspace.plan(env=env), 0)
    assert_ok(workspace.run("destroy", str(workspace.directory), "--auto-approve", env=env))


def test_a_race_that_never_ends_stops_naming_the_call_and_what_to_check(workspace, prefix, api, aws, aws_env, faults):
    pool, n = f"{prefix}-ecs", names(f"{prefix}-ecs")
    workspace.write("pools.yaml", pool_config(pool))
    faults.fail("ecs:CreateCluster", SERVICE_LINKED_ROLE_RACE, times=10_000)
    env = {**aws_env, "AWS_ENDPOINT_URL": faults.url, "PREFECT_PROVIDER_PROPAGATION_WAIT": "1"}

    failed = assert_ok(workspace.apply(env=env), 1)
    assert re.search(rf"work_pools\.{pool}\.infra\.ecs_cluster: ecs:CreateCluster: gave up waiting for ECS to take up its "
                     r"service-linked role after \d+ attempts in \d+ s \(at most 1 s, PREFECT_PROVIDER_PROPAGATION_WAIT\); check "
                     r"that the role AWSServiceRoleForECS exists \(IAM > Roles\); the operator needs iam:CreateServiceLinkedRole for "
                     r"ecs\.amazonaws\.com to make it\. Last error: ecs:CreateCluster failed: InvalidParameterException: Unable to "
                     r"assume the service linked role", failed.stderr), failed.stderr
    assert "Traceback" not in failed.output and aws.cluster(n["cluster"]) is None
    assert f"work_pools.{pool}.infra.execution_role" in workspace.state()["resources"]
    assert_ok(workspace.run("destroy", str(workspace.directory), "--auto-approve", env=env))


def test_a_custom_endpoint_without_aws_region_uses_the_configured_region(workspace, prefix, aws, moto_url):
    pool, n = f"{prefix}-ecs", names(f"{prefix}-ecs")
    workspace.write("pools.yaml", pool_config(pool))  # region: us-east-1
    env = {"AWS_ENDPOINT_URL": moto_url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_REGION": None, "AWS_DEFAULT_REGION": None, "AWS_PROFILE": None, "AWS_CONFIG_FILE": "/nonexistent",
           "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true"}
    planned = assert_ok(workspace.plan(env=env), 2)
    assert "no AWS region" not in planned.output
    assert_ok(workspace.apply(env=env))
    assert n["role"] in aws.role_names() and aws.cluster(n["cluster"]) is not None
    assert_ok(workspace.run("destroy", str(workspace.directory), "--auto-approve", env=env))


def test_a_region_without_room_for_another_vpc_is_refused_at_plan(workspace, prefix, aws, aws_env):
    pool = f"{prefix}-ecs"
    ec2 = aws("ec2")
    used = len(ec2.describe_vpcs()["Vpcs"])
    fillers = [ec2.create_vpc(CidrBlock=f"10.{200 + i}.0.0/16")["Vpc"]["VpcId"] for i in range(max(0, 5 - used))]
    try:
        workspace.write("pools.yaml", pool_config(pool))
        refused = assert_ok(workspace.plan(env=aws_env), 1)
        assert (f"ec2:DescribeVpcs: 1 more of the VPCs per Region would exceed the quota in us-east-1 ({max(used, 5)} of 5 used): "
                "set use_default_vpc: true to run tasks in the region's default VPC, delete a VPC that is not used, or ask for "
                "more in Service Quotas (Amazon VPC, VPCs per Region, L-F678F1CE)") in refused.stderr
        assert "Traceback" not in refused.output and not workspace.state_path.exists()

        # With the default VPC, the same pool fits.
        workspace.write("pools.yaml", pool_config(pool, default_vpc=True))
        assert_ok(workspace.plan(env=aws_env), 2)
    finally:
        for vpc in fillers:
            ec2.delete_vpc(VpcId=vpc)


def pools_config(pools: list[str], region: str, *, default_vpc: bool) -> str:
    return "work_pools:\n" + "".join(pool_config(pool, default_vpc=default_vpc, region=region).split("\n", 1)[1] for pool in pools)


def test_six_pools_fit_the_default_quota_in_the_default_vpc_which_destroy_leaves(workspace, prefix, api, aws, aws_env):
    region = "eu-west-3"  # a region of its own: 1 VPC (the default), quotas of 5 VPCs and 5 internet gateways
    ec2 = aws.session.client("ec2", endpoint_url=aws.endpoint, region_name=region)
    [default] = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    assert len(ec2.describe_vpcs()["Vpcs"]) == 1
    pools = [f"{prefix}-ecs{i}" for i in range(1, 7)]

    # Six VPCs of their own do not fit: refused at plan, nothing made.
    workspace.write("pools.yaml", pools_config(pools, region, default_vpc=False))
    refused = assert_ok(workspace.plan(env=aws_env), 1)
    assert f"6 more of the VPCs per Region would exceed the quota in {region} (1 of 5 used)" in refused.stderr

    workspace.write("pools.yaml", pools_config(pools, region, default_vpc=True))
    applied = assert_ok(workspace.apply(env=aws_env))
    assert "error" not in applied.stderr.lower()
    for pool in pools:
        properties = api.get(f"work_pools/{pool}").json()["base_job_template"]["variables"]["properties"]
        assert properties["vpc_id"]["default"] == default["VpcId"], pool
        assert "default" not in properties["network_configuration"], "the worker picks the default VPC's subnets"
        assert workspace.state()["resources"][f"work_pools.{pool}.infra.default_vpc"]["id"].endswith(default["VpcId"])
    assert ec2.describe_vpcs()["Vpcs"] == [default] and ec2.describe_internet_gateways()["InternetGateways"] == \
        ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [default["VpcId"]]}])["InternetGateways"]

    destroyed = assert_ok(workspace.run("destroy", str(workspace.directory), "--auto-approve", env=aws_env))
    assert "default_vpc" in destroyed.stdout
    assert ec2.describe_vpcs(VpcIds=[default["VpcId"]])["Vpcs"][0]["IsDefault"], "the default VPC is not ours to delete"
    assert workspace.state()["resources"] == {}


def test_new_vpcs_get_ranges_that_overlap_no_vpc_and_their_security_group_fills_the_template(workspace, prefix, api, aws, aws_env):
    region = "eu-north-1"
    ec2 = aws.session.client("ec2", endpoint_url=aws.endpoint, region_name=region)
    [default] = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    someone_elses = ec2.create_vpc(CidrBlock="172.32.0.0/16")["Vpc"]["VpcId"]
    pools = [f"{prefix}-net1", f"{prefix}-net2"]
    try:
        workspace.write("pools.yaml", pools_config(pools, region, default_vpc=False))
        assert_ok(workspace.apply(env=aws_env))
        ranges = {}
        for pool in pools:
            [vpc] = ec2.describe_vpcs(Filters=[{"Name": f"tag:{TAG}", "Values": [pool]}])["Vpcs"]
            ranges[pool] = vpc["CidrBlock"]
            subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]
            [group] = ec2.describe_security_groups(Filters=[{"Name": f"tag:{TAG}", "Values": [pool]}])["SecurityGroups"]
            properties = api.get(f"work_pools/{pool}").json()["base_job_template"]["variables"]["properties"]
            assert properties["vpc_id"]["default"] == vpc["VpcId"]
            network = properties["network_configuration"]["default"]
            assert sorted(network["subnets"]) == sorted(s["SubnetId"] for s in subnets) and len(subnets) == 3
            assert network["securityGroups"] == [group["GroupId"]] and network["assignPublicIp"] == "ENABLED"
        assert default["CidrBlock"] == "172.31.0.0/16"
        assert sorted(ranges.values()) == ["172.33.0.0/16", "172.34.0.0/16"], ranges

        # The chosen ranges are the pools' own: a second plan changes nothing.
        assert "No changes." in assert_ok(workspace.plan(env=aws_env), 0).stdout

        assert_ok(workspace.run("destroy", str(workspace.directory), "--auto-approve", env=aws_env))
        assert {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]} == {default["VpcId"], someone_elses}
    finally:
        ec2.delete_vpc(VpcId=someone_elses)


def test_a_region_without_a_default_vpc_is_refused_at_plan_unless_the_pool_has_its_own(workspace, prefix, aws, aws_env):
    region = "ap-south-1"
    ec2 = aws.session.client("ec2", endpoint_url=aws.endpoint, region_name=region)
    for vpc in ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]:
        for subnet in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]:
            ec2.delete_subnet(SubnetId=subnet["SubnetId"])
        for gateway in ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc["VpcId"]]}])["InternetGateways"]:
            ec2.detach_internet_gateway(InternetGatewayId=gateway["InternetGatewayId"], VpcId=vpc["VpcId"])
            ec2.delete_internet_gateway(InternetGatewayId=gateway["InternetGatewayId"])
        ec2.delete_vpc(VpcId=vpc["VpcId"])
    pool = f"{prefix}-ecs"

    workspace.write("pools.yaml", pool_config(pool, default_vpc=True, region=region))
    refused = assert_ok(workspace.plan(env=aws_env), 1)
    assert (f"ec2:DescribeVpcs: the region {region} has no default VPC; set use_default_vpc: false to create one"
            in refused.stderr)
    assert "Traceback" not in refused.output and not workspace.state_path.exists()

    # With no VPC at all in the region, the pool's own VPC takes the first range.
    workspace.write("pools.yaml", pool_config(pool, region=region))
    planned = assert_ok(workspace.plan(env=aws_env), 2)
    assert '"172.31.0.0/16"' in planned.stdout and '"172.31.0.0/18"' in planned.stdout
