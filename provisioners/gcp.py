"""provision_infra for Cloud Run push pools (`provider: gcp`), with the Google Cloud client libraries.

Parts, at work_pools.POOL.infra.PART:

  serviceusage_api, iam_api, resource_manager_api, run_api, artifact_registry_api
                         the APIs the other parts call, each enabled in the project (a fresh project
                         has them off); a call right after enabling one waits for it to propagate
  cloud_run_region       the region, checked usable by listing Cloud Run services in it; fills `region`
  service_account        the account Prefect starts Cloud Run jobs as
  project_roles          roles/run.developer and roles/iam.serviceAccountUser for that account, bound
                         on the project (read-modify-write of the project's policy, with its etag)
  gcp_credentials        one key of the account, kept only in a gcp-credentials block; fills `credentials`
  artifact_repository    a Docker repository for flow images; its URL is an output of apply

The APIs and the region belong to the project: they are looked up, enabled when they are not, and
never disabled (another workload of the project may use them). Objects that take labels carry
prefect-provider-work-pool=POOL (service accounts take none: their description carries it); one
found under its name with it is adopted, one without it is not taken over.

Credentials are Application Default Credentials (google.auth.default: GOOGLE_APPLICATION_CREDENTIALS,
`gcloud auth application-default login`, the metadata server). Every service is called through its
REST transport except IAM admin, whose library has only gRPC. PREFECT_PROVIDER_GCP_ENDPOINT_<SERVICE>
(SERVICE: SERVICEUSAGE, IAM, CLOUDRESOURCEMANAGER, ARTIFACTREGISTRY, RUN) sends a service's calls
elsewhere, for private endpoints and tests. The libraries are imported on the first call.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from collections.abc import Iterator
from typing import Any, ClassVar, Literal

from pydantic import Field

from provisioners.base import (
    CloudError,
    CredentialsBlockPart,
    InfraConfig,
    InfraPart,
    Propagation,
    Provisioner,
    Sought,
    refused_with,
    until_propagated,
)
from resources.base import FieldError, LiveObject

# Label keys take no colon: the pool's label is the tag with a dash.
LABEL = "prefect-provider-work-pool"
ROLES = ("roles/iam.serviceAccountUser", "roles/run.developer")
# The APIs the parts call, each enabled in the project by the apply (a fresh project has them off).
APIS = {"serviceusage_api": "serviceusage.googleapis.com", "iam_api": "iam.googleapis.com",
        "resource_manager_api": "cloudresourcemanager.googleapis.com", "run_api": "run.googleapis.com",
        "artifact_registry_api": "artifactregistry.googleapis.com"}
CREDENTIALS_BLOCK_TYPE = "gcp-credentials"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
OPERATION_TIMEOUT = 600  # seconds a long-running operation may take
POLICY_ATTEMPTS = 5  # read-modify-write rounds of the project policy when others change it meanwhile
# Google's documented "not yet": an API enabled a moment ago answers SERVICE_DISABLED for minutes
# ("wait a few minutes for the action to propagate"); a service account made a moment ago is not
# known to every IAM replica (setIamPolicy: "does not exist", a key: NOT_FOUND).
API_ENABLEMENT = Propagation("Google to propagate the enabled API", "that the API is enabled in the project (APIs & Services)",
                             refused_with("SERVICE_DISABLED"))
ACCOUNT_PROPAGATION = Propagation(
    "IAM to propagate the new service account", "that the service account still exists (IAM > Service accounts)",
    lambda exc: refused_with("NOT_FOUND")(exc) or refused_with("INVALID_ARGUMENT", saying="does not exist")(exc))
ENDPOINT_VARIABLE = "PREFECT_PROVIDER_GCP_ENDPOINT_"
# Service -> (module, client class); each is called through REST except where gRPC is all there is.
CLIENTS = {
    "serviceusage": ("google.cloud.service_usage_v1", "ServiceUsageClient", "rest"),
    "iam": ("google.cloud.iam_admin_v1", "IAMClient", "grpc"),
    "cloudresourcemanager": ("google.cloud.resourcemanager_v3", "ProjectsClient", "rest"),
    "artifactregistry": ("google.cloud.artifactregistry_v1", "ArtifactRegistryClient", "rest"),
    "run": ("google.cloud.run_v2", "ServicesClient", "rest"),
}


class GcpInfra(InfraConfig):
    """`provision_infra` of a Cloud Run pool. Names default to ones derived from the pool's name."""

    pool_types: ClassVar[tuple[str, ...]] = ("cloud-run:push", "cloud-run-v2:push", "cloud-run", "cloud-run-v2")

    provider: Literal["gcp"]
    project: str | None = Field(
        default=None, pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$",
        description="GCP project id; else GOOGLE_CLOUD_PROJECT, or the Application Default Credentials' project.",
    )
    region: str = Field(pattern=r"^[a-z]+-[a-z]+[0-9]+$", description="Where Cloud Run jobs run and images are kept, e.g. us-central1.")
    service_account_name: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
    repository_name: str | None = Field(default=None, pattern=r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
    credentials_block: str | None = Field(
        default=None, pattern=r"^[a-z0-9-]+$", description="Name of the gcp-credentials block holding the key."
    )

    def check(self) -> None:
        if self.project_id() is None:
            raise FieldError("no GCP project: set project here, or GOOGLE_CLOUD_PROJECT, or use Application Default "
                             "Credentials that name one", "project")

    def project_id(self) -> str | None:
        return self.project or os.environ.get("GOOGLE_CLOUD_PROJECT") or _default_project()

    def names(self, pool: str) -> dict[str, str]:
        slug = re.sub(r"[^a-z0-9]+", "-", pool.lower()).strip("-") or "pool"
        return {
            "service_account": self.service_account_name or f"prefect-{slug}"[:30].rstrip("-"),
            "repository": self.repository_name or f"prefect-{slug}"[:63].rstrip("-"),
            "credentials_block": self.credentials_block or f"{slug}-gcp-credentials",
        }


def label_value(pool: str) -> str:
    """The pool's name as a label value (lowercase letters, digits, dashes and underscores, 63 at most)."""
    return re.sub(r"[^a-z0-9_-]", "_", pool.lower())[:63]


# --- calling Google Cloud ----------------------------------------------------------------------

_lock = threading.Lock()
_credentials: dict[tuple, tuple[Any, str | None]] = {}
_clients: dict[tuple, Any] = {}


def _settings() -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(("GOOGLE_", "CLOUDSDK_", ENDPOINT_VARIABLE))))


def _adc() -> tuple[Any, str | None]:
    """Application Default Credentials and their project, once per set of settings."""
    import google.auth

    settings = _settings()
    with _lock:
        if settings not in _credentials:
            _credentials[settings] = google.auth.default(scopes=SCOPES)
        return _credentials[settings]


def _default_project() -> str | None:
    from google.auth.exceptions import DefaultCredentialsError

    try:
        return _adc()[1]
    except DefaultCredentialsError:
        return None


def _client(service: str) -> Any:
    import importlib

    from google.api_core.client_options import ClientOptions

    key = (_settings(), service)
    with _lock:
        if key in _clients:
            return _clients[key]
    module, name, transport = CLIENTS[service]
    endpoint = os.environ.get(ENDPOINT_VARIABLE + service.upper())
    if endpoint and transport == "grpc":
        endpoint = re.sub(r"^https://", "", endpoint)  # gRPC takes HOST:PORT, always over TLS
    options = ClientOptions(api_endpoint=endpoint) if endpoint else None
    client = getattr(importlib.import_module(module), name)(credentials=_adc()[0], transport=transport, client_options=options)
    with _lock:
        return _clients.setdefault(key, client)


@contextlib.contextmanager
def _translated(action: str) -> Iterator[None]:
    """Every Google Cloud failure as a CloudError that names the call, e.g. `iam:CreateServiceAccount denied: ...`."""
    import concurrent.futures

    from google.api_core import exceptions
    from google.auth.exceptions import (
        DefaultCredentialsError,
        GoogleAuthError,
        RefreshError,
        TransportError,
    )

    try:
        yield
    except exceptions.Forbidden as exc:
        status, message = _error(exc)
        if exc.reason == "SERVICE_DISABLED":
            raise CloudError(f"{action} failed: the API is disabled in the project: {message}", code="SERVICE_DISABLED") from None
        permission = (exc.metadata or {}).get("permission")
        missing = f" (missing permission {permission})" if permission and permission not in message else ""
        raise CloudError(f"{action} denied: {message}{missing}", code=status) from None
    except exceptions.Unauthorized as exc:
        raise CloudError(f"{action} failed: the Google Cloud credentials were refused: {_error(exc)[1]}") from None
    except exceptions.GoogleAPICallError as exc:
        status, message = _error(exc)
        raise CloudError(f"{action} failed: {status}: {message}", code=status) from None
    except DefaultCredentialsError:
        raise CloudError(
            f"{action}: no Google Cloud credentials found: set GOOGLE_APPLICATION_CREDENTIALS, or run "
            "`gcloud auth application-default login` (Application Default Credentials)"
        ) from None
    except (RefreshError, TransportError, GoogleAuthError) as exc:
        raise CloudError(f"{action} failed: the Google Cloud credentials could not be used: {exc}") from None
    except concurrent.futures.TimeoutError:
        raise CloudError(f"{action} did not finish within {OPERATION_TIMEOUT} s") from None


def _error(exc: Any) -> tuple[str, str]:
    """The status and message Google sent (over REST, the exception's message starts with the request's URL)."""
    try:
        error = exc.response.json()["error"]
        return error.get("status") or str(exc.code), error.get("message") or exc.message
    except (AttributeError, KeyError, TypeError, ValueError):  # a gRPC error, or a body that is not Google's
        return exc.grpc_status_code.name if exc.grpc_status_code else str(exc.code), exc.message


def call(service: str, method: str, request: dict[str, Any], *, missing: bool = False,
         propagations: tuple[Propagation, ...] = ()) -> Any:
    """One call, e.g. call("iam", "get_service_account", {...}); a long-running one is waited for.

    With `missing`, "no such object" is None: a 404, or the service's API not enabled in the
    project yet (so it holds no object). Otherwise the API was enabled by an earlier step (the
    parts need their API's part): SERVICE_DISABLED is Google still propagating that, waited for,
    as are the `propagations` given.
    """
    from google.api_core import exceptions, operation

    action = f"{service}:{''.join(word.capitalize() for word in method.split('_'))}"

    def attempt() -> Any:
        with _translated(action):
            try:
                answer = getattr(_client(service), method)(request=request)
            except (exceptions.NotFound, exceptions.Forbidden) as exc:
                if missing and (isinstance(exc, exceptions.NotFound) or exc.reason == "SERVICE_DISABLED"):
                    return None
                raise
            if isinstance(answer, operation.Operation):
                return answer.result(timeout=OPERATION_TIMEOUT)
            return answer

    return until_propagated(action, attempt, API_ENABLEMENT, *propagations)


# --- parts ------------------------------------------------------------------------------------


def _by_project(sought: list[Sought]) -> dict[str, list[Sought]]:
    groups: dict[str, list[Sought]] = {}
    for item in sought:
        groups.setdefault(item.attributes["project"], []).append(item)
    return groups


class GcpPart(InfraPart):
    def desired(self, pool: str, config: GcpInfra) -> dict[str, Any]:
        return {"project": config.project_id(), **self.settings(pool, config)}

    def settings(self, pool: str, config: GcpInfra) -> dict[str, Any]:
        return {"labels": {LABEL: label_value(pool)}}

    def adopt_reason(self, pool: str, obj: LiveObject) -> str | None:
        if (obj.attributes.get("labels") or {}).get(LABEL) == label_value(pool):
            return f"found with the label {LABEL}={label_value(pool)}, left by an earlier apply: taken into state"
        return None


class ServiceApi(GcpPart):
    """An API enabled in the project. It belongs to the project: enabled when it is not, never disabled."""

    server_owned = True

    def __init__(self, part: str, service: str):
        self.part, self.service = part, service
        # Service Usage itself is asked first: the others are enabled through it.
        self.needs = () if part == "serviceusage_api" else ("serviceusage_api",)

    def settings(self, pool: str, config: GcpInfra) -> dict[str, Any]:
        return {"service": self.service}

    def read(self, client, sought: list[Sought]) -> list[LiveObject]:
        found = []
        # Only configured pools are looked at: an API only in state is just forgotten.
        for project, items in _by_project([item for item in sought if item.desired is not None]).items():
            name = f"projects/{project}/services/{self.service}"
            service = call("serviceusage", "get_service", {"name": name}, missing=True)
            if service is not None and service.state.name == "ENABLED":
                found += [LiveObject(name, item.name, {"project": project, "service": self.service}) for item in items]
        return found

    def adopt_reason(self, pool: str, obj: LiveObject) -> str | None:
        return f"{self.service} is enabled in the project {obj.attributes['project']}: taken into state (never disabled)"

    def create(self, client, pool: str, attributes: dict[str, Any]) -> str:
        name = f"projects/{attributes['project']}/services/{self.service}"
        call("serviceusage", "enable_service", {"name": name})
        return name

    def update(self, client, obj_id: str, pool: str, attributes: dict[str, Any]) -> None:
        """Nothing to change: the project and the service are the object."""


class CloudRunRegion(GcpPart):
    """The pool's region, usable by Cloud Run in the project: checked, never created or deleted."""

    part = "cloud_run_region"
    server_owned = True
    needs = ("run_api",)
    template_variables = ("region",)

    def settings(self, pool: str, config: GcpInfra) -> dict[str, Any]:
        return {"region": config.region}

    def template_defaults(self, pool: str, config: GcpInfra) -> dict[str, Any]:
        return {"region": config.region}

    def read(self, client, sought: list[Sought]) -> list[LiveObject]:
        found = []
        for item in sought:
            if item.desired is None:
                continue  # only in state: just forgotten
            project, region = item.desired["project"], item.desired["region"]
            if self._usable(project, region):
                found.append(LiveObject(self._id(project, region), item.name, {"project": project, "region": region}))
        return found

    def adopt_reason(self, pool: str, obj: LiveObject) -> str | None:
        return f"Cloud Run is available in {obj.attributes['region']} to the project {obj.attributes['project']}: taken into state"

    def create(self, client, pool: str, attributes: dict[str, Any]) -> str:
        project, region = attributes["project"], attributes["region"]

        def usable() -> None:
            if not self._usable(project, region):
                raise CloudError(f"run:ListServices failed: the Cloud Run API is not enabled in the project {project} yet",
                                 code="SERVICE_DISABLED")

        until_propagated("run:ListServices", usable, API_ENABLEMENT)
        return self._id(project, region)

    def update(self, client, obj_id: str, pool: str, attributes: dict[str, Any]) -> None:
        """Nothing to change: the project and the region are the object."""

    @staticmethod
    def _id(project: str, region: str) -> str:
        return f"projects/{project}/locations/{region}"

    @staticmethod
    def _usable(project: str, region: str) -> bool:
        """Whether Cloud Run answers for the region, asked for (at most one of) its services there;
        False while the Cloud Run API is not enabled. A region Cloud Run does not know is refused."""
        from google.api_core import exceptions

        with _translated("run:ListServices"):
            try:
                next(iter(_client("run").list_services(request={"parent": f"projects/{project}/locations/{region}", "page_size": 1})), None)
            except exceptions.Forbidden as exc:
                if exc.reason == "SERVICE_DISABLED":
                    return False
                raise
            except (exceptions.NotFound, exceptions.BadRequest) as exc:
                raise CloudError(f"run:ListServices: Cloud Run cannot be used in the region {region} of the project {project}: "
                                 f"{_error(exc)[1]}") from None
        return True


# IAM -----------------------------------------------------------------------------------------


def _email(project: str, account: str) -> str:
    return f"{account}@{project}.iam.gserviceaccount.com"


class ServiceAccount(GcpPart):
    """The account Cloud Run jobs are started as. Service accounts take no labels: the description
    carries the pool's label, as `LABEL=VALUE`."""

    part = "service_account"
    needs = ("iam_api",)

    def settings(self, pool: str, config: GcpInfra) -> dict[str, Any]:
        return {"name": config.names(pool)["service_account"], "display_name": f"Prefect work pool {pool}"[:100],
                **super().settings(pool, config)}

    def read(self, client, sought: list[Sought]) -> list[LiveObject]:
        found = []
        for item in sought:
            name = item.id or f"projects/{item.attributes['project']}/serviceAccounts/" + _email(
                item.attributes["project"], item.attributes["name"])
            account = call("iam", "get_service_account", {"name": name}, missing=True)
            if account is None:
                continue
            labels = dict(re.findall(rf"\b({re.escape(LABEL)})=([a-z0-9_-]+)", account.description))
            found.append(LiveObject(account.name, item.name, {
                "project": account.project_id, "name": account.email.split("@", 1)[0],
                "display_name": account.display_name, "labels": labels,
            }))
        return found

    def create(self, client, pool: str, attributes: dict[str, Any]) -> str:
        account = call("iam", "create_service_account", {
            "name": f"projects/{attributes['project']}", "account_id": attributes["name"],
            "service_account": self._fields(pool, attributes),
        })
        return account.name

    def update(self, client, obj_id: str, pool: str, attributes: dict[str, Any]) -> None:
        call("iam", "patch_service_account", {
            "service_account": {"name": obj_id, **self._fields(pool, attributes)},
            "update_mask": {"paths": ["display_name", "description"]},
        })

    def delete(self, client, obj_id: str) -> None:
        call("iam", "delete_service_account", {"name": obj_id}, missing=True)  # its keys go with it

    @staticmethod
    def _fields(pool: str, attributes: dict[str, Any]) -> dict[str, str]:
        labels = " ".join(f"{key}={value}" for key, value in sorted(attributes["labels"].items()))
        return {"display_name": attributes["display_name"],
                "description": f"Starts the Cloud Run jobs of the Prefect work pool {pool} ({labels})"[:256]}


class ProjectRoles(GcpPart):
    """The account's roles, bound on the project. The policy is read, changed and written back with
    its etag; a write that lost a race with another change of the policy is done again."""

    part = "project_roles"
    needs = ("service_account", "resource_manager_api")

    def desired(self, pool: str, config: GcpInfra) -> dict[str, Any]:
        project = config.project_id()
        return {"project": project, "member": "serviceAccount:" + _email(project, config.names(pool)["service_account"]),
                "roles": list(ROLES)}

    def read(self, client, sought: list[Sought]) -> list[LiveObject]:
        found = []
        for project, items in _by_project(sought).items():
            policy = self._policy(project, missing=True)
            if policy is None:  # the Resource Manager API is not enabled yet: nothing is bound
                continue
            for item in items:
                member = item.attributes["member"]
                roles = sorted({b.role for b in policy.bindings if b.role in ROLES and member in b.members and not _conditional(b)})
                if roles:
                    found.append(LiveObject(f"projects/{project}/iamPolicy/{member}", item.name,
                                            {"project": project, "member": member, "roles": roles}))
        return found

    def adopt_reason(self, pool: str, obj: LiveObject) -> str | None:
        return f"{obj.attributes['member']} already has these roles on the project: taken into state"

    def create(self, client, pool: str, attributes: dict[str, Any]) -> str:
        self._change(attributes["project"], attributes["member"], add=set(attributes["roles"]))
        return f"projects/{attributes['project']}/iamPolicy/{attributes['member']}"

    def update(self, client, obj_id: str, pool: str, attributes: dict[str, Any]) -> None:
        self._change(attributes["project"], attributes["member"], add=set(attributes["roles"]))

    def delete(self, client, obj_id: str) -> None:
        project, member = re.fullmatch(r"projects/([^/]+)/iamPolicy/(.+)", obj_id).groups()
        self._change(project, member, add=set())

    @staticmethod
    def _policy(project: str, missing: bool = False) -> Any:
        # Version 3: conditional bindings are returned as they are, so writing the policy back keeps them.
        return call("cloudresourcemanager", "get_iam_policy",
                    {"resource": f"projects/{project}", "options": {"requested_policy_version": 3}}, missing=missing)

    def _change(self, project: str, member: str, add: set[str]) -> None:
        """Give `member` exactly the roles `add` among ours (others it has are not ours to touch)."""
        for _ in range(POLICY_ATTEMPTS):
            policy = self._policy(project)
            if not _bind(policy, member, add):
                return
            try:
                call("cloudresourcemanager", "set_iam_policy", {"resource": f"projects/{project}", "policy": policy},
                     propagations=(ACCOUNT_PROPAGATION,))
                return
            except CloudError as exc:
                if exc.code != "ABORTED":  # the policy changed since it was read (its etag): read it again
                    raise
        raise CloudError(f"cloudresourcemanager:SetIamPolicy failed: the policy of the project {project} kept changing "
                         f"while it was written ({POLICY_ATTEMPTS} attempts)")


def _bind(policy: Any, member: str, roles: set[str]) -> bool:
    """Make `member` hold exactly `roles` among ours in the policy's unconditional bindings; whether it changed."""
    changed = False
    for binding in policy.bindings:
        if binding.role in ROLES and not _conditional(binding):
            if binding.role in roles and member not in binding.members:
                binding.members.append(member)
                changed = True
            elif binding.role not in roles and member in binding.members:
                binding.members.remove(member)
                changed = True
    for role in sorted(roles - {b.role for b in policy.bindings if not _conditional(b)}):
        policy.bindings.add(role=role, members=[member])
        changed = True
    kept = [b for b in policy.bindings if b.members]  # a binding without members is refused
    if len(kept) != len(policy.bindings):
        del policy.bindings[:]
        policy.bindings.extend(kept)
    return changed


def _conditional(binding: Any) -> bool:
    return bool(binding.condition.expression)


class GcpCredentials(CredentialsBlockPart):
    """One key of the service account, kept only in a gcp-credentials block.

    `key` says whether the block's key is a key of the account ("active", "disabled" or "missing").
    """

    part = "gcp_credentials"
    needs = ("service_account", "project_roles")  # a key is made once the account may act
    template_variable = "credentials"
    block_type = CREDENTIALS_BLOCK_TYPE

    def desired(self, pool: str, config: GcpInfra) -> dict[str, Any]:
        names, project = config.names(pool), config.project_id()
        return {"name": names["credentials_block"], "project": project,
                "service_account": _email(project, names["service_account"]), "key": "active"}

    def read(self, client, sought: list[Sought]) -> list[LiveObject]:
        found = super().read(client, sought)
        active = {obj.name for obj in found if obj.attributes.get("key") == "active"}
        # A key is to be made for these: an organization policy may forbid it, which is better known now.
        for project in sorted({item.desired["project"] for item in sought if item.desired and item.name not in active}):
            _check_key_creation_allowed(project, missing=True)
        return found

    def live(self, data: dict[str, Any], attributes: dict[str, Any]) -> dict[str, Any]:
        info = data.get("service_account_info") or {}
        status = _key_status(attributes["project"], attributes["service_account"], info.get("private_key_id"))
        return {"project": data.get("project"), "service_account": info.get("client_email") if status != "missing" else None,
                "key": status}

    def settings(self, attributes: dict[str, Any]) -> dict[str, Any]:
        return {"project": attributes["project"]}

    def issue(self, attributes: dict[str, Any]) -> dict[str, Any]:
        _check_key_creation_allowed(attributes["project"])  # when the plan could not ask yet (API just enabled)
        account = f"projects/{attributes['project']}/serviceAccounts/{attributes['service_account']}"
        # The account is the pool's: its other keys were only ever in this block.
        for key in _user_keys(attributes["project"], attributes["service_account"]):
            call("iam", "delete_service_account_key", {"name": key.name}, missing=True)
        key = call("iam", "create_service_account_key", {"name": account}, propagations=(ACCOUNT_PROPAGATION,))
        return {"service_account_info": json.loads(key.private_key_data)}

    def revoke(self, attributes: dict[str, Any], issued: dict[str, Any]) -> None:
        info = issued["service_account_info"]
        call("iam", "delete_service_account_key", {
            "name": f"projects/{attributes['project']}/serviceAccounts/{info['client_email']}/keys/{info['private_key_id']}"},
            missing=True)


KEY_CONSTRAINT = "constraints/iam.disableServiceAccountKeyCreation"


def _check_key_creation_allowed(project: str, *, missing: bool = False) -> None:
    """Refuse, naming the way out, when the organization policy iam.disableServiceAccountKeyCreation
    (enforced by default in organizations made since May 2024) holds for the project. With
    `missing`, a Resource Manager API not enabled yet in the project means "not known yet"."""
    policy = _effective_org_policy(project, KEY_CONSTRAINT, missing=missing)
    if policy is not None and (policy.get("booleanPolicy") or {}).get("enforced"):
        raise CloudError(
            f"cloudresourcemanager:GetEffectiveOrgPolicy: the organization policy iam.disableServiceAccountKeyCreation is "
            f"enforced on the project {project}, so no service account key can be made for the gcp-credentials block. "
            "Ask an organization policy administrator to exempt the project (a policy on it with enforce: false), or "
            "instead run a Cloud Run worker on Google Cloud (a `cloud-run` pool without provision_infra), which uses its "
            "attached service account and needs no key.", code="FAILED_PRECONDITION")


def _effective_org_policy(project: str, constraint: str, *, missing: bool) -> dict[str, Any] | None:
    """The project's effective policy for a constraint (Resource Manager v1, which no client library
    of this version covers: one REST call with the same credentials and endpoint)."""
    from google.auth.transport.requests import AuthorizedSession

    endpoint = os.environ.get(ENDPOINT_VARIABLE + "CLOUDRESOURCEMANAGER") or "https://cloudresourcemanager.googleapis.com"
    action = "cloudresourcemanager:GetEffectiveOrgPolicy"
    with _translated(action):
        credentials = _adc()[0]
        if hasattr(credentials, "with_always_use_jwt_access"):  # a service account signs its own token, as the clients do
            credentials = credentials.with_always_use_jwt_access(True)
        session = AuthorizedSession(credentials)
        response = session.post(f"{endpoint}/v1/projects/{project}:getEffectiveOrgPolicy", json={"constraint": constraint},
                                timeout=60)
    if response.ok:
        return response.json()
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        error = {"status": str(response.status_code), "message": response.text}
    reasons = {detail.get("reason") for detail in error.get("details") or []}
    if "SERVICE_DISABLED" in reasons:
        if missing:
            return None
        raise CloudError(f"{action} failed: the API is disabled in the project: {error.get('message')}", code="SERVICE_DISABLED")
    if response.status_code == 403:
        raise CloudError(f"{action} denied: {error.get('message')}", code=error.get("status"))
    raise CloudError(f"{action} failed: {error.get('status')}: {error.get('message')}", code=error.get("status"))


def _user_keys(project: str, email: str) -> list[Any]:
    answer = call("iam", "list_service_account_keys", {
        "name": f"projects/{project}/serviceAccounts/{email}", "key_types": ["USER_MANAGED"]}, missing=True)
    return list(answer.keys) if answer else []


def _key_status(project: str, email: str, key_id: str | None) -> str:
    for key in _user_keys(project, email):
        if key_id and key.name.rsplit("/", 1)[-1] == key_id:
            return "disabled" if key.disabled else "active"
    return "missing"


# Artifact Registry ----------------------------------------------------------------------------


class ArtifactRepository(GcpPart):
    part = "artifact_repository"
    needs = ("artifact_registry_api",)

    def settings(self, pool: str, config: GcpInfra) -> dict[str, Any]:
        return {"region": config.region, "name": config.names(pool)["repository"], "format": "DOCKER",
                **super().settings(pool, config)}

    def read(self, client, sought: list[Sought]) -> list[LiveObject]:
        found = []
        for item in sought:
            repository = _repository(item.id or self._name(item.attributes))
            if repository is None:
                continue
            project, region, repository_name = _parts_of(repository.name)
            found.append(LiveObject(repository.name, item.name, {
                "project": project, "region": region, "name": repository_name, "format": repository.format_.name,
                "labels": {k: v for k, v in repository.labels.items() if k == LABEL},
            }))
        return found

    def create(self, client, pool: str, attributes: dict[str, Any]) -> str:
        repository = call("artifactregistry", "create_repository", {
            "parent": f"projects/{attributes['project']}/locations/{attributes['region']}",
            "repository_id": attributes["name"],
            "repository": {"format_": attributes["format"], "labels": attributes["labels"],
                           "description": f"Flow images of the Prefect work pool {pool}"},
        })
        return repository.name

    def update(self, client, obj_id: str, pool: str, attributes: dict[str, Any]) -> None:
        repository = _repository(obj_id)
        labels = {**(dict(repository.labels) if repository else {}), **attributes["labels"]}  # others' labels stay
        call("artifactregistry", "update_repository", {
            "repository": {"name": obj_id, "labels": labels}, "update_mask": {"paths": ["labels"]}})

    def delete(self, client, obj_id: str) -> None:
        # Images pushed to it go with it (destroy tears the pool's cloud side down).
        call("artifactregistry", "delete_repository", {"name": obj_id}, missing=True)

    def outputs(self, obj_id: str) -> dict[str, Any]:
        project, region, name = _parts_of(obj_id)
        return {"repository_url": f"{region}-docker.pkg.dev/{project}/{name}"}

    @staticmethod
    def _name(attributes: dict[str, Any]) -> str:
        return f"projects/{attributes['project']}/locations/{attributes['region']}/repositories/{attributes['name']}"


def _repository(name: str) -> Any:
    return call("artifactregistry", "get_repository", {"name": name}, missing=True)


def _parts_of(name: str) -> tuple[str, str, str]:
    project, region, repository = re.fullmatch(r"projects/([^/]+)/locations/([^/]+)/repositories/([^/]+)", name).groups()
    return project, region, repository


class GcpProvisioner(Provisioner):
    provider = "gcp"
    config = GcpInfra

    def __init__(self) -> None:
        self._parts = [
            *(ServiceApi(part, service) for part, service in APIS.items()), CloudRunRegion(),
            ServiceAccount(), ProjectRoles(), GcpCredentials(), ArtifactRepository(),
        ]

    def parts(self, config: GcpInfra) -> list[InfraPart]:
        return list(self._parts)

    def all_parts(self) -> list[InfraPart]:
        return list(self._parts)
