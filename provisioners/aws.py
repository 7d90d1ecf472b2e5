"""provision_infra for ECS push pools (`provider: aws`): IAM, an ECS cluster, a network, a registry.

Parts, at work_pools.POOL.infra.PART:

  execution_role   the ECS task execution role: AmazonECSTaskExecutionRolePolicy, plus
                   logs:CreateLogGroup (the worker's awslogs options ask ECS to create the group)
  iam_user         the worker's IAM user with a least-privilege inline policy (iam:PassRole only
                   for the execution role, only to ECS tasks)
  aws_credentials  the user's access key, kept only in an aws-credentials block in Prefect
  ecs_cluster      a Fargate cluster
  ecr_repository   a repository for flow images; its URL is an output of apply
  default_vpc      the region's default VPC, looked up and never deleted (use_default_vpc, the default,
                   as in Prefect's own provisioner), or with use_default_vpc: false:
  vpc, internet_gateway, subnet_1..3, route_table, security_group
                   a public network across availability zones in a /16 that overlaps no VPC of the
                   region; its subnets and security group fill network_configuration

IAM's propagation of a new role or user and ECS's service-linked-role race on an account's first
cluster are waited for (provisioners.base.until_propagated); a plan that would exceed the region's
VPC or internet gateway quota is refused.

Every AWS object carries the tag prefect-provider:work-pool=POOL; objects found by their names
with it (an interrupted apply, a lost state) are adopted, objects without it are not taken over.
boto3 is imported on the first AWS call and honours the standard settings (AWS_PROFILE,
AWS_REGION, AWS_ENDPOINT_URL, the credentials chain); every AWS error becomes a CloudError
naming the action, e.g. "iam:CreateRole denied: ...".
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import threading
from collections.abc import Iterator
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from provisioners.base import (
    TAG,
    CloudError,
    CredentialsBlockPart,
    InfraConfig,
    InfraPart,
    Propagation,
    Provisioner,
    Sought,
    part_address,
    reference,
    refused_with,
    until_propagated,
)
from resources.base import FieldError, LiveObject

IAM_NAME = r"^[A-Za-z0-9_+=,.@-]{1,64}$"
EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
ROLE_INLINE_POLICY = "prefect-create-log-group"
USER_POLICY = "prefect-ecs-worker"
CREDENTIALS_BLOCK_TYPE = "aws-credentials"
# What the Prefect ECS worker calls with the pool's credentials, and nothing else.
WORKER_ACTIONS = (
    "ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVpcs",
    "ecs:DeregisterTaskDefinition", "ecs:DescribeClusters", "ecs:DescribeTaskDefinition", "ecs:DescribeTasks",
    "ecs:ListTaskDefinitions", "ecs:RegisterTaskDefinition", "ecs:RunTask", "ecs:StopTask", "ecs:TagResource",
    "logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogGroups", "logs:GetLogEvents", "logs:PutLogEvents",
)
SUBNETS = 3
# AWS's documented "not yet" answers. IAM is eventually consistent: a role or user made a moment ago
# may be unknown to the next call (NoSuchEntity). The first cluster of an account makes ECS's
# service-linked role, which ECS cannot assume for a while (InvalidParameterException).
IAM_PROPAGATION = Propagation("IAM to propagate the new role or user", "that it still exists (IAM > Roles, Users)",
                              refused_with("NoSuchEntity"))
SERVICE_LINKED_ROLE = Propagation(
    "ECS to take up its service-linked role", "that the role AWSServiceRoleForECS exists (IAM > Roles); the operator needs "
    "iam:CreateServiceLinkedRole for ecs.amazonaws.com to make it", refused_with("InvalidParameterException", saying="service linked role"))
ECS_TASKS_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


class AwsInfra(InfraConfig):
    """`provision_infra` of an ECS pool. Names default to ones derived from the pool's name."""

    pool_types: ClassVar[tuple[str, ...]] = ("ecs:push", "ecs")

    provider: Literal["aws"]
    region: str | None = Field(default=None, description="AWS region; else AWS_REGION / AWS_DEFAULT_REGION / the profile's.")
    use_default_vpc: bool = Field(default=True, description="Run tasks in the region's default VPC (as Prefect's own "
                                  "provisioner does); false makes a VPC of the pool's own.")
    cidr_block: str | None = Field(default=None, description="The new VPC's IPv4 range (split into three subnets); by "
                                   "default the first /16 from 172.31.0.0 that overlaps no VPC of the region.")
    permissions_boundary: str | None = Field(
        default=None, pattern=r"^arn:aws[a-z-]*:iam::(\d{12}|aws):policy/.+$",
        description="A managed policy's ARN set as the permissions boundary of the role and user made, so that an operator "
                    "allowed to write their policies cannot grant more than it (see the operator policy in the docs).")
    execution_role_name: str | None = Field(default=None, pattern=IAM_NAME)
    user_name: str | None = Field(default=None, pattern=IAM_NAME)
    cluster_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,255}$")
    repository_name: str | None = Field(
        default=None, pattern=r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$", max_length=256
    )
    vpc_name: str | None = Field(default=None, max_length=200)
    security_group_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_ .:/()#,@\[\]+=&;{}!$*-]{1,255}$")
    credentials_block: str | None = Field(
        default=None, pattern=r"^[a-z0-9-]+$", description="Name of the aws-credentials block holding the access key."
    )

    @field_validator("cidr_block")
    @classmethod
    def _cidr(cls, value: str | None) -> str | None:
        if value is None:
            return None
        network = ipaddress.IPv4Network(value)  # a ValueError names what is wrong
        if not 16 <= network.prefixlen <= 26:
            raise ValueError("the VPC range must be between /16 and /26 (AWS limits)")
        return str(network)

    def check(self) -> None:
        if self.region_name() is None:
            raise FieldError("no AWS region: set region here, or AWS_REGION / AWS_DEFAULT_REGION, or a profile's region",
                             "region")

    def region_name(self) -> str | None:
        global _configured_region
        if self.region:
            _configured_region = _configured_region or self.region
        return self.region or _session().region_name

    def vpc_cidr(self, pool: str) -> str:
        return self.cidr_block or _free_cidr(self.region_name(), pool, self.names(pool)["vpc"])

    def names(self, pool: str) -> dict[str, str]:
        slug = re.sub(r"[^a-z0-9]+", "-", pool.lower()).strip("-")[:40] or "pool"
        return {
            "execution_role": self.execution_role_name or f"prefect-{slug}-ecs-execution",
            "user": self.user_name or f"prefect-{slug}-ecs-worker",
            "cluster": self.cluster_name or f"prefect-{slug}",
            "repository": self.repository_name or f"prefect-{slug}",
            "vpc": self.vpc_name or f"prefect-{slug}",
            "security_group": self.security_group_name or f"prefect-{slug}-ecs-tasks",
            "credentials_block": self.credentials_block or f"{slug}-aws-credentials",
        }


# --- calling AWS ------------------------------------------------------------------------------

_lock = threading.Lock()
_configured_region: str | None = None  # a region a configuration names, for global services (see _client)
_sessions: dict[tuple, Any] = {}
_clients: dict[tuple, Any] = {}
DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Client.UnauthorizedOperation"}
REFUSED_CREDENTIALS = {"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch",
                       "AuthFailure", "ExpiredToken", "ExpiredTokenException", "InvalidAccessKeyId"}


def _settings() -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_")))


def _session() -> Any:
    """One boto3 session per set of AWS settings (building one loads the service models again)."""
    import boto3

    settings = _settings()
    with _lock:
        if settings not in _sessions:
            _sessions[settings] = boto3.session.Session()
        return _sessions[settings]


def _client(service: str, region: str | None) -> Any:
    from botocore.config import Config

    session = _session()
    # IAM is global: boto3 finds its endpoint without a region, but a custom endpoint (AWS_ENDPOINT_URL)
    # is signed for a region, which the configuration names when the environment does not.
    region = region or session.region_name or _configured_region
    key = (_settings(), service, region)
    with _lock:
        if key not in _clients:
            config = Config(retries={"mode": "standard", "max_attempts": 5})
            _clients[key] = session.client(service, region_name=region, config=config)
        return _clients[key]


@contextlib.contextmanager
def _translated(service: str, operation: str) -> Iterator[None]:
    """Every AWS failure as a CloudError that names the action, e.g. `iam:CreateRole denied: ...`."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    action = f"{service}:{''.join(word.capitalize() for word in operation.split('_'))}"
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", ""), error.get("Message", "")
        if code in DENIED:
            raise CloudError(f"{action} denied: {message}", code=code) from None
        if code in REFUSED_CREDENTIALS:
            raise CloudError(f"{action} failed: the AWS credentials were refused ({code}: {message})", code=code) from None
        raise CloudError(f"{action} failed: {code}: {message}", code=code) from None
    except NoRegionError:
        raise CloudError(f"{action}: no AWS region to sign the call with: set provision_infra.region, or AWS_REGION / "
                         "AWS_DEFAULT_REGION") from None
    except NoCredentialsError:
        raise CloudError(
            f"{action}: no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(boto3's standard credentials chain)"
        ) from None
    except BotoCoreError as exc:
        raise CloudError(f"{action} failed: {exc}") from None


def call(service: str, operation: str, region: str | None = None, *, missing: tuple[str, ...] = (), **kwargs: Any) -> Any:
    """One AWS call. An error whose code is in `missing` means "no such object": None is returned."""
    from botocore.exceptions import ClientError

    with _translated(service, operation):
        try:
            return getattr(_client(service, region), operation)(**kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in missing:
                return None
            raise


def paginate(service: str, operation: str, key: str, region: str | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    with _translated(service, operation):
        return [item for page in _client(service, region).get_paginator(operation).paginate(**kwargs) for item in page[key]]


def wait(service: str, waiter: str, region: str, **kwargs: Any) -> None:
    with _translated(service, waiter):
        _client(service, region).get_waiter(waiter).wait(**kwargs)


# --- small helpers ----------------------------------------------------------------------------


def _by_region(sought: list[Sought]) -> dict[str, list[Sought]]:
    groups: dict[str, list[Sought]] = {}
    for item in sought:
        groups.setdefault(item.attributes.get("region"), []).append(item)
    return groups


def _tags(tags: list[dict[str, str]] | None, key: str = "Key", value: str = "Value") -> dict[str, str]:
    return {tag[key]: tag[value] for tag in tags or []}


def _ours(tags: dict[str, str], keys: tuple[str, ...] = (TAG,)) -> dict[str, str]:
    """The tags we manage; others a user adds are left alone."""
    return {key: tags[key] for key in keys if key in tags}


def _tag_list(tags: dict[str, str], key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
    return [{key: k, value: v} for k, v in sorted(tags.items())]


def _region_of(arn: str) -> str | None:
    return arn.split(":")[3] or None


def _account_of(arn: str) -> str:
    return arn.split(":")[4]


def _last(arn: str) -> str:
    """The resource's own id or name: what follows the last slash of its ARN."""
    return arn.rsplit("/", 1)[-1]


def _ec2_arn(region: str, owner: str, resource_type: str, native_id: str) -> str:
    return f"arn:aws:ec2:{region}:{owner}:{resource_type}/{native_id}"


def _policy(document: Any) -> dict[str, Any]:
    """A policy document as boto3 returns it: decoded already, or URL-encoded JSON."""
    if isinstance(document, str):
        from urllib.parse import unquote

        return json.loads(unquote(document))
    return document or {}


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    statements = document.get("Statement") or []
    return statements if isinstance(statements, list) else [statements]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# --- parts ------------------------------------------------------------------------------------


class AwsPart(InfraPart):
    regional: ClassVar[bool] = True  # False for IAM, which is global

    def desired(self, pool: str, config: AwsInfra) -> dict[str, Any]:
        region = {"region": config.region_name()} if self.regional else {}
        return {**region, **self.settings(pool, config), "tags": self.tags(pool, config)}

    def settings(self, pool: str, config: AwsInfra) -> dict[str, Any]:
        return {}

    def tags(self, pool: str, config: AwsInfra) -> dict[str, str]:
        return {TAG: pool}


# IAM ------------------------------------------------------------------------------------------


def _boundary(config: AwsInfra) -> dict[str, str]:
    """The permissions boundary attribute, only when one is configured (the role and user carry none otherwise)."""
    return {"permissions_boundary": config.permissions_boundary} if config.permissions_boundary else {}


def _live_boundary(entity: dict[str, Any], attributes: dict[str, Any]) -> dict[str, str | None]:
    if "permissions_boundary" not in attributes:
        return {}
    return {"permissions_boundary": (entity.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")}


def _boundary_argument(attributes: dict[str, Any]) -> dict[str, str]:
    return {"PermissionsBoundary": attributes["permissions_boundary"]} if attributes.get("permissions_boundary") else {}


class ExecutionRole(AwsPart):
    part = "execution_role"
    regional = False
    template_variable = "execution_role_arn"

    def settings(self, pool: str, config: AwsInfra) -> dict[str, Any]:
        return {"name": config.names(pool)["execution_role"], "managed_policies": [EXECUTION_POLICY],
                "inline_actions": ["logs:CreateLogGroup"], **_boundary(config)}

    def read(self, client, sought: list[Sought]) -> list[LiveObject]:
        found = []
        for item in sought:
            name = _last(item.id) if item.id else item.attributes["name"]
            role = call("iam", "get_role", missing=("NoSuchEntity",), RoleName=name)
            if role is None:
                continue
            attached = paginate("iam", "list_attached_role_policies", "AttachedPolicies", RoleName=name)
            inline = call("iam", "get_role_policy", missing=("NoSuchEntity",), RoleName=name, PolicyName=ROLE_INLINE_POLICY)
            actions = [a for s in _statements(_policy(inline["PolicyDocument"])) for a in _as_list(s.get("Action"))] if inline else []
            found.append(LiveObject(role["Role"]["Arn"], item.name, {
                "name": role["Role"]["RoleName"],
                "managed_policies": sorted(p["PolicyArn"] for p in attached if p["PolicyArn"] == EXECUTION_POLICY),
                "inline_actions": sorted(actions),
                **_live_boundary(role["Role"], item.attributes),
                "tags": _ours(_tags(role["Role"].get("Tags"))),
            }))
        return found

    def create(self, client, pool: str, attributes: dict[str, Any]) -> str:
        role = call("iam", "create_role", RoleName=attributes["name"], AssumeRolePolicyDocument=json.dumps(ECS_TASKS_TRUST),
                    Description=f"ECS task execution role of the Prefect work pool {pool}",
                    Tags=_tag_list(attributes["tags"]), **_boundary_argument(attributes))
        arn = role["Role"]["Arn"]
        until_propagated("iam:PutRolePolicy", lambda: self.update(client, arn, pool, attributes), IAM_PROPAGATION)
        return arn

    def update(self, client, obj_id: str, pool: str, attributes: dict[str, Any]) -> None:
        name = _last(obj_id)
        if attributes.get("permissions_boundary"):  # first: the operator's policy may ask for it on every write
            call("iam", "put_role_permissions_boundary", RoleName=name, PermissionsBoundary=attributes["permissions_boundary"])
        for policy in attributes["managed_policies"]:
            call("iam", "attach_role_policy", RoleName=name, PolicyArn=policy)
        document = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": attributes["inline_actions"], "Resource": "*"}]}
        call("iam", "put_role_policy", RoleName=name, PolicyName=ROLE_INLINE_POLICY, PolicyDocument=json.dumps(document))
        call("iam", "tag_role", RoleName=name, Tags=_tag_list(attributes["tags"]))

    def delete(self, client, obj_id: str) -> None:
        name = _last(obj_id)
        call("iam", "detach_role_policy", missing=("NoSuchEntity",), RoleName=name, PolicyArn=EXECUTION_POLICY)
        call("iam", "delete_role_policy", missing=("NoSuchEntity",), RoleName=name, PolicyName=ROLE_INLINE_POLICY)
        call("iam", "delete_role", missing=("NoSuchEntity",), RoleName=name)


class IamUser(AwsPart):
    part = "iam_user"
    regional = False
    needs = ("execution_role",)
    references = ("pass_role",)

    def settings(self, pool: str, config: AwsInfra) -> dict[str, Any]:
        return {"name": config.names(pool)["user"], "actions": sorted(WORKER_ACTIONS),
                "pass_role": part_address(pool, "execution_role"), **_boundary(config)}

    def read(self, client, sought: list[Sought]) -> list[LiveObject]:
        found = []
        for item in sought:
            name = _last(item.id) if item.id else item.attributes["name"]
            user = call("iam", "get_user", missing=("NoSuchEntity",), UserName=name)
            if user is None:
                continue
            policy = call("iam", "get_user_policy", missing=("NoSuchEntity",), UserName=name, PolicyName=USER_POLICY)
            statements = _statements(_policy(policy["PolicyDocument"])) if policy else []
            pass_role = [s.get("Resource") for s in statements if s.get("Action") == "iam:PassRole"]
            found.append(LiveObject(user["User"]["Arn"], item.name, {
                "name": user["User"]["UserName"],
                "actions": sorted(a for s in statements if s.get("Action") != "iam:PassRole" for a in _as_list(s.get("Action"))),
                "pass_role": pass_role[0] if pass_role else None,
                **_live_boundary(user["User"], item.attributes),
                "tags": _ours(_tags(user["User"].get("Tags"))),
            }))
        return found

    def create(self, client, pool: str, attributes: dict[str, Any]) -> str:
        user = call("iam", "create_user", UserName=attributes["name"], Tags=_tag_list(attributes["tags"]), **_boundary_argument(attributes))
        arn = user["User"]["Arn"]
        until_propagated("iam:PutUserPolicy", lambda: self.update(client, arn, pool, attributes), IAM_PROPAGATION)
        return arn

    def update(self, client, obj_id: str, pool: str, attributes: dict[str, Any]) -> None:
        name = _last(obj_id)
        if attributes.get("permissions_boundary"):
            call("iam", "put_user_permissions_boundary", UserName=name, PermissionsBoundary=attributes["permissions_boundary"])
        document = {"Version": "2012-10-17", "Statement": [
            {"Sid": "PrefectEcsWorker", "Effect": "Allow", "Action": attributes["actions"], "Resource": "*"},
            {"Sid": "PassTheExecutionRoleToEcsTasks", "Effect": "Allow", "Action": "iam:PassRole",
             "Resource": attributes["pass_role"],
             "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}},
        ]}
        call("iam", "put_user_policy", UserName=name, PolicyName=USER_POLICY, PolicyDocument=json.dumps(document))
        call("iam", "tag_user", UserName=name, Tags=_tag_list(attributes["tags"]))

    def delete(self, client, obj_id: str) -> None:
        name = _last(obj_id)
        # The user is this pool's alone: its keys were only ever in the pool's credentials block.
        for key in paginate("iam", "list_access_keys", "AccessKeyMetadata", UserName=name):
            call("iam", "delete_access_key", missing=("NoSuchEntity",), UserName=name, AccessKeyId=key["AccessKeyId"])
        call("iam", "delete_user_policy", missing=("NoSuchEntity",), UserName=name, PolicyName=USER_POLICY)
        call("iam", "delete_user", missing=("NoSuchEntity",), UserName=name)


class AwsCredentials(CredentialsBlockPart):
    """The worker's access key, held only by an aws-credentials block: never in state, plans or output.

    Live attributes say whether the block's key is an active key of the user (`access_key`), so a
    key deleted or deactivated by hand shows as drift and the next apply rotates it. A block that
    already exists is adopted as it is: no second key is made. Keys are removed with the user, or
    when a new key replaces them.
    """

    part = "aws_credentials"
    block_type = CREDENTIALS_BLOCK_TYPE
    credential = "access key"
    needs = ("iam_user",)
    template_variable = "aws_credentials"

    def desired(self, pool: str, config: AwsInfra) -> dict[str, Any]:
        names = config.names(pool)
        return {"name": names["credentials_block"], "user_name": names["user"], "region_name": config.region_name(),
                "access_key": "active"}

    def live(self, data: dict[str, Any], attributes: dict[str, Any]) -> dict[str, Any]:
        status = _key_status(attributes["user_name"], data.get("aws_access_key_id"))
        return {"user_name": attributes["user_name"] if status != "missing" else None,
                "region_name": data.get("region_name"), "access_key": status}

    def settings(self, attributes: dict[str, Any]) -> dict[str, Any]:
        return {"region_name": attributes["region_name"]}

    def needs_new_credential(self, live: dict[str, Any], attributes: dict[str, Any]) -> bool:
        return live["access_key"] != "active"  # a changed region is a setting: the key stays

    def issue(self, attributes: dict[str, Any]) -> dict[str, Any]:
        return until_propagated("iam:CreateAccessKey", lambda: _new_key(attributes["user_name"]), IAM_PROPAGATION)

    def revoke(self, attributes: dict[str, Any], issued: dict[str, Any]) -> None:
        call("iam", "delete_access_key", missing=("NoSuchEntity",), UserName=attributes["user_name"],
             AccessKeyId=issued["aws_access_key_id"])


def _key_status(user: str, key_id: str | None) -> str:
    """"active" or "inactive" when the key is one of the user's (who has two at most), else "missing"."""
    keys = call("iam", "list_access_keys", missing=("NoSuchEntity",), UserName=user)
    return next((k["Status"].lower() for k in (keys or {}).get("AccessKeyMetadata", []) if k["AccessKeyId"] == key_id), "missing")


def _new_key(user: str) -> dict[str, str]:
    """A fresh access key for the user, whose other keys go: their secrets were only in the block."""
    for key in paginate("iam", "list_access_keys", "AccessKeyMetadata", UserName=user):
        call("iam", "delete_access_key", missing=("NoSuchEntity",), UserName=user, AccessKeyId=key["AccessKeyId"])
    key = call("iam", "create_access_key", UserName=user)["AccessKey"]
    return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}


# ECS and ECR ----------------------------------------------------------------------------------


class EcsCluster(AwsPart):
    part = "ecs_cluster"
    template_variable = "cluster"

    def settings(self, pool: str, config: AwsInfra) -> dict[str, Any]:
        return {"name": config.names(pool)["cluster"], "capacity_providers": ["FARGATE"]}

    def read(self, client, sought: list[Sought]) -> list[LiveObject]:
        found = []
        for region, items in _by_region(sought).items():
            for chunk in _chunks(items, 100):  # describe_clusters takes at most 100
                by_key = {item.id or item.attributes["name"]: item for item in chunk}
                answer = call("ecs", "describe_clusters", region, clusters=list(by_key), include=["TAGS"])
                for cluster in answer["clusters"]:
                    item = by_key.get(cluster["clusterArn"]) or by_key.get(cluster["clusterName"])
                    if item is None or cluster["status"] != "ACTIVE":  # INACTIVE: deleted
                        continue
                    found.append(LiveObject(cluster["clusterArn"], item.name, {
                        "region": region, "name": cluster["clusterName"],
                        "capacity_providers": sorted(cluster.get("capacityProviders") or []),
                        "tags": _ours(_tags(cluster.get("tags"), "key", "value")),
                    }))
        return found

    def create(self, client, pool: str, attributes: dict[str, Any]) -> str:
        cluster = until_propagated("ecs:CreateCluster", lambda: call(
            "ecs", "create_cluster", attributes["region"], clusterName=attributes["name"],
            capacityProviders=attributes["capacity_providers"], defaultCapacityProviderStrategy=self._strategy(attributes),
            tags=_tag_list(attributes["tags"], "key", "value")), SERVICE_LINKED_ROLE)
        return cluster["cluster"]["clusterArn"]

    def update(self, client, obj_id: str, pool: str, attributes: dict[str, Any]) -> None:
        region = attributes["region"]
        call("ecs", "put_cluster_capacity_providers", region, cluster=obj_id,
             capacityProviders=attributes["capacity_providers"], defaultCapacityProviderStrategy=self._strategy(attributes))
        call("ecs", "tag_resource", region, resourceArn=obj_id, tags=_tag_list(attributes["tags"], "key", "value"))

    def delete(self, client, obj_id: str) -> None:
        call("ecs", "delete_cluster", _region_of(obj_id), missing=("ClusterNotFoundException",), cluster=obj_id)

    @staticmethod
    def _strategy(attributes: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"capacityProvider": provider, "weight": 1} for provider in attributes["capacity_providers"]]


class EcrRepository(AwsPart):
    part = "ecr_repository"

    def settings(self, pool: str, config: AwsInfra) -> dict[str, Any]:
        return {"name": config.names(pool)["repository"]}

    def read(self, client, sought: list[Sought]) -> list[LiveObject]:
        found = []
        for region, items in _by_region(sought).items():
            by_key = {item.id or item.attributes["name"]: item for item in items}
            for repository in paginate("ecr", "describe_repositories", "repositories", region):
                arn = repository["repositoryArn"]
                item = by_key.get(arn) or by_key.get(repository["repositoryName"])
                if item is None:
                    continue
                tags = call("ecr", "list_tags_for_resource", region, resourceArn=arn)["tags"]
                found.append(LiveObject(arn, item.name, {
                    "region": region, "name": repository["repositoryName"], "tags": _ours(_tags(tags)),
                }))
        return found

    def create(self, client, pool: str, attributes: dict[str, Any]) -> str:
        repository = call("ecr", "create_repository", attributes["region"], repositoryName=attributes["name"],
                          tags=_tag_list(attributes["tags"]))
        return repository["repository"]["repositoryArn"]

    def update(self, client, obj_id: str, pool: str, attributes: dict[str, Any]) -> None:
        call("ecr", "tag_resource", attributes["region"], resourceArn=obj_id, tags=_tag_list(attributes["tags"]))

    def delete(self, client, obj_id: str) -> None:
        # force: images pushed to it go with it (destroy tears the pool's cloud side down).
        call("ecr", "delete_repository", _region_of(obj_id), missing=("RepositoryNotFoundException",),
             repositoryName=obj_id.split(":repository/", 1)[1], force=True)

    def outputs(self, obj_id: str) -> dict[str, Any]:
        _, _, _, region, account, resource = obj_id.split(":", 5)
        registry = f"{account}.dkr.ecr.{region}.amazonaws.com"
        return {"registry_url": registry, "repository_url": f"{registry}/{resource.split('/', 1)[1]}"}


# The network ----------------------------------------------------------------------------------


class Ec2Part(AwsPart):
    """An EC2 object, identified by its Name tag and the pool's tag (EC2 names are not unique)."""

    resource_type: ClassVar[str]  # in ARNs and TagSpecifications: vpc, subnet, internet-gateway, ...
    listing: ClassVar[str]  # the describe call's result key: Vpcs, Subnets, ...
    id_key: ClassVar[str]  # VpcId, SubnetId, ...
    id_filter: ClassVar[str]  # vpc-id, subnet-id, ...
    missing_code: ClassVar[str]  # the error code of a deleted one

    def object_name(self, pool: str, config: AwsInfra) -> str:
        return config.names(pool)["vpc"]

    def tags(self, pool: str, config: AwsInfra) -> dict[str, str]:
        return {TAG: pool, "Name": self.object_name(pool, config)}

    def live(self, raw: dict[str, Any], region: str) -> dict[str, Any]:
        """Attributes of a described object besides region and tags."""
        return {}

    def described(self, region: str, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        operation = "describe_" + re.sub(r"(?<!^)(?=[A-Z])", "_", self.listing).lower()  # Vpcs: describe_vpcs
        return paginate("ec2", operation, self.listing, region, Filters=filters)

    def described_one(self, obj_id: str) -> dict[str, Any]:
        found = self.described(_region_of(obj_id), [{"Name": self.id_filter, "Values": [_last(obj_id)]}])
        return found[0] if found else {}

    def read(self, client, sought: list[Sought]) -> list[LiveObject]:
        found = []
        for region, items in _by_region(sought).items():
            by_id = {_last(item.id): item for item in items if item.id}
            by_name = {(item.pool, item.attributes["tags"]["Name"]): item for item in items if not item.id}
            raws = []
            if by_id:
                raws += self.described(region, [{"Name": self.id_filter, "Values": sorted(by_id)}])
            if by_name:
                raws += self.described(region, [
                    {"Name": "tag:Name", "Values": sorted({name for _, name in by_name})},
                    {"Name": f"tag:{TAG}", "Values": sorted({pool for pool, _ in by_name})},
                ])
            seen = set()
            for raw in raws:
                tags = _tags(raw.get("Tags"))
                item = by_id.get(raw[self.id_key]) or by_name.get((tags.get(TAG), tags.get("Name")))
                if item is None or item.name in seen:
                    continue
                seen.add(item.name)
                found.append(LiveObject(self.arn(region, raw), item.name, {
                    "region": region, **self.live(raw, region), "tags": _ours(tags, (TAG, "Name")),
                }))
        return found

    def arn(self, region: str, raw: dict[str, Any], native_id: str | None = None) -> str:
        return _ec2_arn(region, raw["OwnerId"], self.resource_type, native_id or raw[self.id_key])

    def tag_spec(self, attributes: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"ResourceType": self.resource_type, "Tags": _tag_list(attributes["tags"])}]

    def update(self, client, obj_id: str, pool: str, attributes: dict[str, Any]) -> None:
        call("ec2", "create_tags", attributes["region"], Resources=[_last(obj_id)], Tags=_tag_list(attributes["tags"]))

    def template_value(self, obj_id: str) -> Any:
        return _last(obj_id)

    def delete(self, client, obj_id: str) -> None:
        operation = "delete_" + self.resource_type.replace("-", "_")
        call("ec2", operation, _region_of(obj_id), missing=(self.missing_code,), **{self.id_key: _last(obj_id)})


class Vpc(Ec2Part):
    part = "vpc"
    template_variable = "vpc_id"
    resource_type, listing, id_key, id_filter, missing_code = "vpc", "Vpcs", "VpcId", "vpc-id", "InvalidVpcID.NotFound"

    def settings(self, pool: str, config: AwsInfra) -> dict[str, Any]:
        return {"cidr_block": config.vpc_cidr(pool)}

    def live(self, raw: dict[str, Any], region: str) -> dict[str, Any]:
        return {"cidr_block": raw["CidrBlock"]}

    def read(self, client, sought: list[Sought]) -> list[LiveObject]:
        found = super().read(client, sought)
        existing = {obj.name for obj in found}
        # A VPC and an internet gateway are to be made for these: the region's quotas may not allow it.
        for region, items in _by_region([item for item in sought if item.desired and item.name not in existing]).items():
            _check_room(region, len(items))
        return found

    def create(self, client, pool: str, attributes: dict[str, Any]) -> str:
        region = attributes["region"]
        vpc = call("ec2", "create_vpc", region, CidrBlock=attributes["cidr_block"], TagSpecifications=self.tag_spec(attributes))["Vpc"]
        wait("ec2", "vpc_available", region, VpcIds=[vpc["VpcId"]])
        return self.arn(region, vpc)

    def template_value(self, obj_id: str) -> Any:
        return _last(obj_id)


# Like Prefect's provisioner: new VPCs take /16s from the default VPC's usual range upwards.
FIRST_CIDR = ipaddress.IPv4Network("172.31.0.0/16")
_cidrs: dict[tuple[str, str], str] = {}  # (region, pool) -> the range chosen for the pool's new VPC in this run


def _free_cidr(region: str, pool: str, vpc_name: str) -> str:
    """The pool's VPC's range when it exists, else the first /16 from 172.31.0.0 overlapping neither a VPC
    of the region nor a range chosen for another pool in this run (so pools planned together differ)."""
    with _lock:
        if (region, pool) in _cidrs:
            return _cidrs[(region, pool)]
    vpcs = paginate("ec2", "describe_vpcs", "Vpcs", region)
    own = [v for v in vpcs if _tags(v.get("Tags")).get(TAG) == pool and _tags(v.get("Tags")).get("Name") == vpc_name]
    with _lock:
        if (region, pool) in _cidrs:  # chosen by another thread meanwhile
            return _cidrs[(region, pool)]
        if own:
            _cidrs[(region, pool)] = own[0]["CidrBlock"]
            return own[0]["CidrBlock"]
        taken = [ipaddress.IPv4Network(v["CidrBlock"]) for v in vpcs]
        taken += [ipaddress.IPv4Network(c) for (r, _), c in _cidrs.items() if r == region]
        candidate = FIRST_CIDR
        while any(candidate.overlaps(other) for other in taken):
            following = int(candidate.network_address) + candidate.num_addresses
            if following >= 2 ** 32:
                raise CloudError(f"ec2:DescribeVpcs: every /16 from {FIRST_CIDR} up overlaps a VPC in {region}: set cidr_block")
            candidate = ipaddress.IPv4Network((following, candidate.prefixlen))
        _cidrs[(region, pool)] = str(candidate)
        return str(candidate)


# Regional quotas a new network counts against: (Service Quotas code, AWS's default, what is counted).
NETWORK_QUOTAS = {"VPCs per Region": ("L-F678F1CE", 5, "describe_vpcs", "Vpcs"),
                  "Internet gateways per Region": ("L-A4707A72", 5, "describe_internet_gateways", "InternetGateways")}


def _check_room(region: str, new: int) -> None:
    """Refuse at plan time when `new` more VPCs (each with its internet gateway) exceed the region's quotas."""
    for quota_name, (code, default, operation, key) in NETWORK_QUOTAS.items():
        used = len(paginate("ec2", operation, key, region))
        quota = _quota(region, code, default)
        if used + new > quota:
            raise CloudError(
                f"ec2:{_camel(operation)}: {new} more of the {quota_name} would exceed the quota in {region} ({used} of {quota} "
                "used): set use_default_vpc: true to run tasks in the region's default VPC, delete a VPC that is not used, or "
                f"ask for more in Service Quotas (Amazon VPC, {quota_name}, {code})", code="VpcLimitExceeded")


def _quota(region: str, code: str, default: int) -> int:
    """The account's value of an Amazon VPC quota; AWS's default when Service Quotas cannot tell (no
    servicequotas:GetServiceQuota, or a quota never raised, which it may not list)."""
    try:
        answer = call("service-quotas", "get_service_quota", region, ServiceCode="vpc", QuotaCode=code)
    except CloudError:
        return default
    return int(answer["Quota"]["Value"])


def _camel(operation: str) -> str:
    return "".join(word.capitalize() for word in operation.split("_"))


class InternetGateway(Ec2Part):
    part = "internet_gateway"
    needs = ("vpc",)
    references = ("vpc",)
    resource_type, listing, id_key, id_filter = "internet-gateway", "InternetGateways", "InternetGatewayId", "internet-gateway-id"
    missing_code = "InvalidInternetGatewayID.NotFound"
    replace_fields = InfraPart.replace_fields - {"vpc"}  # `update` moves it to another VPC

    def object_name(self, pool: str, config: AwsInfra) -> str:
        return config.names(pool)["vpc"] + "-igw"

    def settings(self, pool: str, config: AwsInfra) -> dict[str, Any]:
        return {"vpc": part_address(pool, "vpc")}

    def live(self, raw: dict[str, Any], region: str) -> dict[str, Any]:
        attached = [a["VpcId"] for a in raw.get("Attachments") or []]
        return {"vpc": _ec2_arn(region, raw["OwnerId"], "vpc", attached[0]) if attached else None}

    def create(self, client, pool: str, attributes: dict[str, Any]) -> str:
        region = attributes["region"]
        gateway = call("ec2", "create_internet_gateway", region, TagSpecifications=self.tag_spec(attributes))["InternetGateway"]
        call("ec2", "attach_internet_gateway", region, InternetGatewayId=gateway["InternetGatewayId"], VpcId=_last(attributes["vpc"]))
        return self.arn(region, gateway)

    def update(self, client, obj_id: str, pool: str, attributes: dict[str, Any]) -> None:
        region, vpc = attributes["region"], _last(attributes["vpc"])
        attached = [a["VpcId"] for a in self.described_one(obj_id).get("Attachments") or []]
        for other in attached:
            if other != vpc:
                call("ec2", "detach_internet_gateway", region, InternetGatewayId=_last(obj_id), VpcId=other)
        if vpc not in attached:
            call("ec2", "attach_internet_gateway", region, InternetGatewayId=_last(obj_id), VpcId=vpc)
        super().update(client, obj_id, pool, attributes)

    def delete(self, client, obj_id: str) -> None:
        region = _region_of(obj_id)
        for attachment in self.described_one(obj_id).get("Attachments") or []:
            call("ec2", "detach_internet_gateway", region, missing=("Gateway.NotAttached",),
                 InternetGatewayId=_last(obj_id), VpcId=attachment["VpcId"])
        super().delete(client, obj_id)


class Subnet(Ec2Part):
    template_variables = ("network_configuration",)  # in the list SecurityGroup.template_defaults builds
    needs = ("vpc",)
    references = ("vpc",)
    resource_type, listing, id_key, id_filter, missing_code = "subnet", "Subnets", "SubnetId", "subnet-id", "InvalidSubnetID.NotFound"

    def __init__(self, index: int):
        self.index = index  # 1-based; subnet N goes to the Nth availability zone
        self.part = f"subnet_{index}"

    def object_name(self, pool: str, config: AwsInfra) -> str:
        return f"{config.names(pool)['vpc']}-{self.index}"

    def settings(self, pool: str, config: AwsInfra) -> dict[str, Any]:
        network = ipaddress.IPv4Network(config.vpc_cidr(pool))
        cidr = list(network.subnets(prefixlen_diff=2))[self.index - 1]
        return {"vpc": part_address(pool, "vpc"), "cidr_block": str(cidr), "map_public_ip_on_launch": True}

    def live(self, raw: dict[str, Any], region: str) -> dict[str, Any]:
        return {"vpc": _ec2_arn(region, raw["OwnerId"], "vpc", raw["VpcId"]), "cidr_block": raw["CidrBlock"],
                "map_public_ip_on_launch": raw.get("MapPublicIpOnLaunch", False)}

    def create(self, client, pool: str, attributes: dict[str, Any]) -> str:
        region = attributes["region"]
        zones = sorted(z["ZoneName"] for z in call("ec2", "describe_availability_zones", region, Filters=[
            {"Name": "state", "Values": ["available"]}, {"Name": "zone-type", "Values": ["availability-zone"]}])["AvailabilityZones"])
        if not zones:
            raise CloudError(f"ec2:DescribeAvailabilityZones: no availability zone is available in {region}")
        subnet = call("ec2", "create_subnet", region, VpcId=_last(attributes["vpc"]), CidrBlock=attributes["cidr_block"],
                      AvailabilityZone=zones[(self.index - 1) % len(zones)], TagSpecifications=self.tag_spec(attributes))["Subnet"]
        arn = self.arn(region, subnet)
        self.update(client, arn, pool, attributes)
        return arn

    def update(self, client, obj_id: str, pool: str, attributes: dict[str, Any]) -> None:
        call("ec2", "modify_subnet_attribute", attributes["region"], SubnetId=_last(obj_id),
             MapPublicIpOnLaunch={"Value": attributes["map_public_ip_on_launch"]})
        super().update(client, obj_id, pool, attributes)


class RouteTable(Ec2Part):
    """The subnets' route table: a default route to the internet gateway, associated with each subnet."""

    part = "route_table"
    needs = ("vpc", "internet_gateway", *(f"subnet_{i}" for i in range(1, SUBNETS + 1)))
    references = ("vpc", "gateway", "subnets")
    resource_type, listing, id_key, id_filter = "route-table", "RouteTables", "RouteTableId", "route-table-id"
    missing_code = "InvalidRouteTableID.NotFound"
    DEFAULT_ROUTE = "0.0.0.0/0"

    def object_name(self, pool: str, config: AwsInfra) -> str:
        return config.names(pool)["vpc"] + "-public"

    def settings(self, pool: str, config: AwsInfra) -> dict[str, Any]:
        return {"vpc": part_address(pool, "vpc"), "gateway": part_address(pool, "internet_gateway"),
                "subnets": sorted(part_address(pool, f"subnet_{i}") for i in range(1, SUBNETS + 1))}

    def live(self, raw: dict[str, Any], region: str) -> dict[str, Any]:
        owner = raw["OwnerId"]
        gateways = [r.get("GatewayId") for r in raw.get("Routes") or [] if r.get("DestinationCidrBlock") == self.DEFAULT_ROUTE]
        subnets = [a["SubnetId"] for a in raw.get("Associations") or [] if a.get("SubnetId")]
        return {
            "vpc": _ec2_arn(region, owner, "vpc", raw["VpcId"]),
            "gateway": _ec2_arn(region, owner, "internet-gateway", gateways[0]) if gateways and gateways[0] else None,
            "subnets": sorted(_ec2_arn(region, owner, "subnet", s) for s in subnets),
        }

    def create(self, client, pool: str, attributes: dict[str, Any]) -> str:
        region = attributes["region"]
        table = call("ec2", "create_route_table", region, VpcId=_last(attributes["vpc"]),
                     TagSpecifications=self.tag_spec(attributes))["RouteTable"]
        arn = self.arn(region, table)
        self.update(client, arn, pool, attributes)
        return arn

    def update(self, client, obj_id: str, pool: str, attributes: dict[str, Any]) -> None:
        region, table_id, gateway = attributes["region"], _last(obj_id), _last(attributes["gateway"])
        raw = self.described_one(obj_id)
        routes = [r for r in raw.get("Routes") or [] if r.get("DestinationCidrBlock") == self.DEFAULT_ROUTE]
        if not routes:
            call("ec2", "create_route", region, RouteTableId=table_id, DestinationCidrBlock=self.DEFAULT_ROUTE, GatewayId=gateway)
        elif routes[0].get("GatewayId") != gateway:
            call("ec2", "replace_route", region, RouteTableId=table_id, DestinationCidrBlock=self.DEFAULT_ROUTE, GatewayId=gateway)
        wanted = {_last(s) for s in attributes["subnets"]}
        associations = {a["SubnetId"]: a["RouteTableAssociationId"] for a in raw.get("Associations") or [] if a.get("SubnetId")}
        for subnet, association in associations.items():
            if subnet not in wanted:
                call("ec2", "disassociate_route_table", region, AssociationId=association)
        for subnet in sorted(wanted - set(associations)):
            call("ec2", "associate_route_table", region, RouteTableId=table_id, SubnetId=subnet)
        super().update(client, obj_id, pool, attributes)

    def delete(self, client, obj_id: str) -> None:
        region = _region_of(obj_id)
        for association in self.described_one(obj_id).get("Associations") or []:
            if not association.get("Main"):
                call("ec2", "disassociate_route_table", region, missing=("InvalidAssociationID.NotFound",),
                     AssociationId=association["RouteTableAssociationId"])
        super().delete(client, obj_id)


class SecurityGroup(Ec2Part):
    """The tasks' security group: no inbound traffic, all outbound (EC2's defaults for a new group)."""

    part = "security_group"
    needs = ("vpc",)
    references = ("vpc",)
    resource_type, listing, id_key, id_filter = "security-group", "SecurityGroups", "GroupId", "group-id"
    missing_code = "InvalidGroup.NotFound"
    # The ECS worker's awsvpcConfiguration: without it tasks get the VPC's default security group.
    template_variables = ("network_configuration",)
    DESCRIPTION = "Prefect ECS tasks: no inbound traffic, all outbound traffic"

    def object_name(self, pool: str, config: AwsInfra) -> str:
        return config.names(pool)["security_group"]

    def settings(self, pool: str, config: AwsInfra) -> dict[str, Any]:
        return {"name": self.object_name(pool, config), "vpc": part_address(pool, "vpc"), "description": self.DESCRIPTION}

    def live(self, raw: dict[str, Any], region: str) -> dict[str, Any]:
        return {"name": raw["GroupName"], "vpc": _ec2_arn(region, raw["OwnerId"], "vpc", raw["VpcId"]),
                "description": raw.get("Description")}

    def create(self, client, pool: str, attributes: dict[str, Any]) -> str:
        region = attributes["region"]
        group = call("ec2", "create_security_group", region, GroupName=attributes["name"], Description=attributes["description"],
                     VpcId=_last(attributes["vpc"]), TagSpecifications=self.tag_spec(attributes))
        return _ec2_arn(region, _account_of(attributes["vpc"]), self.resource_type, group["GroupId"])

    def template_defaults(self, pool: str, config: AwsInfra) -> dict[str, Any]:
        return {"network_configuration": {
            "subnets": [reference(pool, f"subnet_{i}") for i in range(1, SUBNETS + 1)],
            "securityGroups": [reference(pool, self.part)], "assignPublicIp": "ENABLED"}}


class DefaultVpc(AwsPart):
    """The region's default VPC, used as it is (use_default_vpc, the default): looked up, never created or
    deleted. Tasks get its subnets and its default security group, as the ECS worker picks them."""

    part = "default_vpc"
    server_owned = True
    template_variable = "vpc_id"

    def desired(self, pool: str, config: AwsInfra) -> dict[str, Any]:
        return {"region": config.region_name()}

    def read(self, client, sought: list[Sought]) -> list[LiveObject]:
        found = []
        for region, items in _by_region(sought).items():
            vpc = self._find(region, required=any(item.desired is not None for item in items))
            found += [LiveObject(vpc, item.name, {"region": region}) for item in items if vpc]
        return found

    def create(self, client, pool: str, attributes: dict[str, Any]) -> str:
        return self._find(attributes["region"], required=True)

    @staticmethod
    def _find(region: str, required: bool) -> str | None:
        vpcs = call("ec2", "describe_vpcs", region, Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
        if not vpcs:
            if required:
                raise CloudError(f"ec2:DescribeVpcs: the region {region} has no default VPC; set use_default_vpc: false to create one")
            return None  # only in state: nothing to look at, nothing to delete
        return _ec2_arn(region, vpcs[0]["OwnerId"], "vpc", vpcs[0]["VpcId"])

    def template_value(self, obj_id: str) -> Any:
        return _last(obj_id)


class AwsProvisioner(Provisioner):
    provider = "aws"
    config = AwsInfra

    def __init__(self) -> None:
        self._iam_and_more = [ExecutionRole(), IamUser(), AwsCredentials(), EcsCluster(), EcrRepository()]
        self._network = [Vpc(), InternetGateway(), *(Subnet(i) for i in range(1, SUBNETS + 1)), RouteTable(), SecurityGroup()]
        self._default_vpc = DefaultVpc()

    def parts(self, config: AwsInfra) -> list[InfraPart]:
        return [*self._iam_and_more, *([self._default_vpc] if config.use_default_vpc else self._network)]

    def all_parts(self) -> list[InfraPart]:
        return [*self._iam_and_more, *self._network, self._default_vpc]
