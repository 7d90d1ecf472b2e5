"""A stand-in for the Google Cloud control plane on loopback, for the real client libraries.

No emulator exists for these APIs. This fake keeps state and answers in the services' documented
shapes, over the transports the clients use: JSON over HTTPS for Service Usage, Resource Manager
(project IAM policy), Artifact Registry and Cloud Run (REST transport), and gRPC over TLS for IAM
admin (service accounts and keys), whose library has no REST transport. It does what the
provisioner leans on:

- every request must carry a bearer token, a JWT signed by the operator's service account key
  (what google-auth makes from a service-account GOOGLE_APPLICATION_CREDENTIALS); 401 otherwise;
- a permission put in `deny` makes the calls that need it fail with 403 PERMISSION_DENIED
  ("Permission 'X' denied on resource ..."), as IAM does;
- a fresh project: the APIs (Service Usage, IAM, Resource Manager, Cloud Run, Artifact Registry) start
  disabled, and a call to one that is not enabled answers 403 SERVICE_DISABLED (with its ErrorInfo,
  over REST and over gRPC); enabling one is a long-running operation. Service Usage is called with
  the operator's own project as the quota project, so it answers while disabled in this one;
- organization policies: the boolean constraints in `enforced_constraints` are enforced on the project
  (Resource Manager v1 getEffectiveOrgPolicy), and iam.disableServiceAccountKeyCreation refuses key
  creation with FAILED_PRECONDITION, as IAM does;
- `enable_propagation` N: an API enabled a moment ago still answers SERVICE_DISABLED for its next N
  calls, as Google's does while the enablement propagates;
- long-running operations (enable, repository create and delete) are `done: false` when started
  and done on the first poll;
- "already exists" is 409 ALREADY_EXISTS; setIamPolicy with a stale etag is 409 ABORTED;
- `concurrent_policy_changes` makes the next setIamPolicy calls lose a race with another writer,
  `unpropagated_accounts` makes a new service account unknown to setIamPolicy once (eventual
  consistency).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import secrets
import threading
import uuid
from concurrent import futures
from pathlib import Path
from typing import Any, ClassVar

from tests.fake_https import Request, Response, https_server

PROJECT_NUMBER = "123456789012"
REGIONS = {"us-central1", "europe-west1"}
API_TITLES = {"run.googleapis.com": "Cloud Run Admin API", "artifactregistry.googleapis.com": "Artifact Registry API",
              "iam.googleapis.com": "Identity and Access Management (IAM) API", "serviceusage.googleapis.com": "Service Usage API",
              "cloudresourcemanager.googleapis.com": "Cloud Resource Manager API"}


class Denied(Exception):
    def __init__(self, status: int, code: str, message: str, details: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or []


def _grpc_status(exc: Denied) -> Any:
    """The refusal as a gRPC status with its details (an ErrorInfo carries SERVICE_DISABLED), as Google sends it."""
    import grpc
    from google.protobuf import any_pb2
    from google.rpc import error_details_pb2, status_pb2
    from grpc_status import rpc_status

    details = []
    for detail in exc.details:
        packed = any_pb2.Any()
        packed.Pack(error_details_pb2.ErrorInfo(reason=detail["reason"], domain=detail["domain"], metadata=detail["metadata"]))
        details.append(packed)
    code = getattr(grpc.StatusCode, exc.code)
    return rpc_status.to_status(status_pb2.Status(code=code.value[0], message=exc.message, details=details))


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _etag() -> str:
    return base64.b64encode(secrets.token_bytes(8)).decode()


class GcpFake:
    def __init__(self, project: str, certificate: tuple[Path, Path], operator_public_key: str, operator_email: str):
        self.project = project
        self.certificate = certificate
        self.operator_public_key = operator_public_key
        self.operator_email = operator_email
        self.lock = threading.RLock()
        self.deny: set[str] = set()
        self.calls: list[str] = []  # the permission each call needed, in order
        self.services = dict.fromkeys(API_TITLES, "DISABLED")  # a fresh project
        self.enable_propagation = 0
        self.enforced_constraints: set[str] = set()  # boolean organization policies enforced on the project
        self._propagating: dict[str, int] = {}  # service -> calls that still find it disabled
        self.policy: dict[str, Any] = {"version": 1, "etag": _etag(),
                                       "bindings": [{"role": "roles/owner", "members": [f"serviceAccount:{operator_email}"]}]}
        self.accounts: dict[str, dict[str, Any]] = {}  # email -> ServiceAccount fields
        self.keys: dict[str, list[dict[str, Any]]] = {}  # email -> its user-managed keys (with the secret)
        self.repositories: dict[str, dict[str, Any]] = {}  # name -> Repository
        self.operations: dict[str, dict[str, Any]] = {}
        self.concurrent_policy_changes = 0
        self.unpropagated_accounts = False
        self._unknown_to_policy: set[str] = set()
        self.rest = https_server(certificate, self._handle)
        self.grpc = self._grpc_server()

    # --- lifecycle and settings ---------------------------------------------------------------

    def __enter__(self) -> GcpFake:
        self.rest.start()
        self.grpc.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.rest.stop()
        self.grpc.stop(None)

    def endpoints(self) -> dict[str, str]:
        """The environment sending each service's calls here."""
        rest = {f"PREFECT_PROVIDER_GCP_ENDPOINT_{s}": self.rest.url
                for s in ("SERVICEUSAGE", "CLOUDRESOURCEMANAGER", "ARTIFACTREGISTRY", "RUN")}
        return {**rest, "PREFECT_PROVIDER_GCP_ENDPOINT_IAM": f"localhost:{self.grpc_port}"}

    def bound_roles(self, member: str) -> list[str]:
        with self.lock:
            return sorted(b["role"] for b in self.policy["bindings"] if member in b["members"])

    # --- what every call goes through ---------------------------------------------------------

    def _authorize(self, token: str | None, permission: str) -> None:
        import jwt

        try:
            claims = jwt.decode(token or "", self.operator_public_key, algorithms=["RS256"], options={"verify_aud": False})
        except jwt.PyJWTError:
            raise Denied(401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access "
                         "token, login cookie or other valid authentication credential.") from None
        if claims.get("iss") != self.operator_email:
            raise Denied(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        with self.lock:
            self.calls.append(permission)
            if permission in self.deny:
                raise Denied(403, "PERMISSION_DENIED", f"Permission '{permission}' denied on resource (or it may not exist).", [
                    {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "IAM_PERMISSION_DENIED",
                     "domain": "iam.googleapis.com", "metadata": {"permission": permission}}])

    def enable_all(self) -> None:
        """The project as one where the APIs are in use already."""
        with self.lock:
            self.services = dict.fromkeys(API_TITLES, "ENABLED")

    def _require_api(self, service: str) -> None:
        left = self._propagating.get(service, 0)
        if left:
            self._propagating[service] = left - 1
        if self.services.get(service) != "ENABLED" or left:
            raise Denied(403, "PERMISSION_DENIED", f"{API_TITLES[service]} has not been used in project {PROJECT_NUMBER} before "
                         f"or it is disabled. Enable it by visiting https://console.developers.google.com/apis/api/{service}/"
                         f"overview?project={PROJECT_NUMBER} then retry. If you enabled this API recently, wait a few minutes "
                         "for the action to propagate to our systems and retry.", [
                             {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "SERVICE_DISABLED",
                              "domain": "googleapis.com", "metadata": {"service": service, "consumer": f"projects/{PROJECT_NUMBER}"}}])

    def _check_project(self, project: str) -> None:
        if project not in (self.project, PROJECT_NUMBER, "-"):
            raise Denied(403, "PERMISSION_DENIED", f"Permission denied on resource project {project} (or it may not exist).")

    # --- REST: Service Usage, Resource Manager, Artifact Registry, Cloud Run --------------------

    ROUTES: ClassVar[list[tuple[str, str, str, str]]] = [
        # method, path pattern, handler, permission
        ("GET", r"/v1/projects/(?P<project>[^/]+)/services/(?P<service>[^/:]+)", "_get_service", "serviceusage.services.get"),
        ("POST", r"/v1/projects/(?P<project>[^/]+)/services/(?P<service>[^/:]+):enable", "_enable_service", "serviceusage.services.enable"),
        ("GET", r"/v1/(?P<name>operations/[^/]+)", "_get_operation", "serviceusage.operations.get"),
        ("POST", r"/v3/projects/(?P<project>[^/:]+):getIamPolicy", "_get_policy", "resourcemanager.projects.getIamPolicy"),
        ("POST", r"/v3/projects/(?P<project>[^/:]+):setIamPolicy", "_set_policy", "resourcemanager.projects.setIamPolicy"),
        ("POST", r"/v1/projects/(?P<project>[^/:]+):getEffectiveOrgPolicy", "_effective_org_policy", "orgpolicy.policy.get"),
        ("GET", r"/v1/projects/(?P<project>[^/]+)/locations/(?P<region>[^/]+)/repositories/(?P<id>[^/]+)",
         "_get_repository", "artifactregistry.repositories.get"),
        ("POST", r"/v1/projects/(?P<project>[^/]+)/locations/(?P<region>[^/]+)/repositories",
         "_create_repository", "artifactregistry.repositories.create"),
        ("PATCH", r"/v1/projects/(?P<project>[^/]+)/locations/(?P<region>[^/]+)/repositories/(?P<id>[^/]+)",
         "_update_repository", "artifactregistry.repositories.update"),
        ("DELETE", r"/v1/projects/(?P<project>[^/]+)/locations/(?P<region>[^/]+)/repositories/(?P<id>[^/]+)",
         "_delete_repository", "artifactregistry.repositories.delete"),
        ("GET", r"/v1/(?P<name>projects/[^/]+/locations/[^/]+/operations/[^/]+)", "_get_operation", "artifactregistry.repositories.get"),
        ("GET", r"/v2/projects/(?P<project>[^/]+)/locations/(?P<region>[^/]+)/services", "_list_run_services", "run.services.list"),
    ]

    def _handle(self, request: Request) -> Response:
        for method, pattern, handler, permission in self.ROUTES:
            match = re.fullmatch(pattern, request.path)
            if method == request.method and match:
                try:
                    self._authorize(request.bearer, permission)
                    with self.lock:
                        return 200, getattr(self, handler)(request, **match.groupdict()), {}
                except Denied as exc:
                    return exc.status, {"error": {"code": exc.status, "message": exc.message, "status": exc.code,
                                                  "details": exc.details}}, {}
        return 404, {"error": {"code": 404, "message": f"no route {request.method} {request.path}", "status": "NOT_FOUND"}}, {}

    def _operation(self, name: str, response: dict[str, Any]) -> dict[str, Any]:
        """A long-running operation: not done when it starts, done when it is first looked at."""
        self.operations[name] = response
        return {"name": name, "done": False}

    def _get_operation(self, request: Request, name: str) -> dict[str, Any]:
        if name not in self.operations:
            raise Denied(404, "NOT_FOUND", f"Operation {name} not found.")
        return {"name": name, "done": True, "response": self.operations[name]}

    def _get_service(self, request: Request, project: str, service: str) -> dict[str, Any]:
        self._check_project(project)
        return {"name": f"projects/{PROJECT_NUMBER}/services/{service}", "parent": f"projects/{PROJECT_NUMBER}",
                "state": self.services.get(service, "DISABLED"), "config": {"name": service, "title": API_TITLES.get(service, service)}}

    def _enable_service(self, request: Request, project: str, service: str) -> dict[str, Any]:
        self._check_project(project)
        if self.services.get(service) != "ENABLED" and self.enable_propagation:
            self._propagating[service] = self.enable_propagation
        self.services[service] = "ENABLED"
        return self._operation(f"operations/acf.p2-{uuid.uuid4().hex}", {
            "@type": "type.googleapis.com/google.api.serviceusage.v1.EnableServiceResponse",
            "service": self._get_service(request, project, service)})

    def _get_policy(self, request: Request, project: str) -> dict[str, Any]:
        self._check_project(project)
        self._require_api("cloudresourcemanager.googleapis.com")
        return json.loads(json.dumps(self.policy))

    def _effective_org_policy(self, request: Request, project: str) -> dict[str, Any]:
        self._check_project(project)
        self._require_api("cloudresourcemanager.googleapis.com")
        constraint = request.body["constraint"]
        enforced = constraint.removeprefix("constraints/") in self.enforced_constraints
        return {"constraint": constraint, "booleanPolicy": {"enforced": True} if enforced else {}, "etag": _etag()}

    def _set_policy(self, request: Request, project: str) -> dict[str, Any]:
        self._check_project(project)
        self._require_api("cloudresourcemanager.googleapis.com")
        policy = request.body["policy"]
        if self.concurrent_policy_changes:
            self.concurrent_policy_changes -= 1
            self.policy["bindings"].append({"role": "roles/viewer", "members": [f"user:someone-{uuid.uuid4().hex[:6]}@example.com"]})
            self.policy["etag"] = _etag()
        if policy.get("etag") != self.policy["etag"]:
            raise Denied(409, "ABORTED", "There were concurrent policy changes. Please retry the whole read-modify-write with "
                         "exponential backoff. The request's ETag '{}' did not match the current policy's ETag '{}'.".format(
                             policy.get("etag"), self.policy["etag"]))
        present = {m for b in self.policy["bindings"] for m in b["members"]}
        for binding in policy.get("bindings", []):
            if not binding.get("members"):
                raise Denied(400, "INVALID_ARGUMENT", f"Binding for role {binding['role']} has no members.")
            for member in set(binding["members"]) - present:  # members being added must exist
                email = member.split(":", 1)[1] if member.startswith("serviceAccount:") else None
                if email and (email not in self.accounts or email in self._unknown_to_policy):
                    self._unknown_to_policy.discard(email)
                    raise Denied(400, "INVALID_ARGUMENT", f"Service account {email} does not exist.")
        self.policy = {"version": policy.get("version", 1), "etag": _etag(), "bindings": policy.get("bindings", [])}
        return json.loads(json.dumps(self.policy))

    def _repository_name(self, project: str, region: str, repository: str) -> str:
        self._check_project(project)
        self._require_api("artifactregistry.googleapis.com")
        if region not in REGIONS:
            raise Denied(400, "INVALID_ARGUMENT", f"Invalid location: {region}")
        return f"projects/{self.project}/locations/{region}/repositories/{repository}"

    def _get_repository(self, request: Request, project: str, region: str, id: str) -> dict[str, Any]:
        name = self._repository_name(project, region, id)
        if name not in self.repositories:
            raise Denied(404, "NOT_FOUND", "Requested entity was not found.")
        return self.repositories[name]

    def _create_repository(self, request: Request, project: str, region: str) -> dict[str, Any]:
        name = self._repository_name(project, region, request.query["repositoryId"])
        if name in self.repositories:
            raise Denied(409, "ALREADY_EXISTS", f"the repository {name} already exists")
        body = request.body or {}
        formats = {1: "DOCKER", "DOCKER": "DOCKER"}
        self.repositories[name] = {"name": name, "format": formats.get(body.get("format"), "FORMAT_UNSPECIFIED"),
                                   "description": body.get("description", ""), "labels": body.get("labels", {}),
                                   "mode": "STANDARD_REPOSITORY", "createTime": _now(), "updateTime": _now()}
        return self._operation(f"projects/{self.project}/locations/{region}/operations/{uuid.uuid4()}", {
            "@type": "type.googleapis.com/google.devtools.artifactregistry.v1.Repository", **self.repositories[name]})

    def _update_repository(self, request: Request, project: str, region: str, id: str) -> dict[str, Any]:
        repository = self._get_repository(request, project, region, id)
        for field in request.query.get("updateMask", "").split(","):
            if field in (request.body or {}):
                repository[field] = request.body[field]
        repository["updateTime"] = _now()
        return repository

    def _delete_repository(self, request: Request, project: str, region: str, id: str) -> dict[str, Any]:
        self._get_repository(request, project, region, id)
        del self.repositories[self._repository_name(project, region, id)]
        return self._operation(f"projects/{self.project}/locations/{region}/operations/{uuid.uuid4()}",
                               {"@type": "type.googleapis.com/google.protobuf.Empty"})

    def _list_run_services(self, request: Request, project: str, region: str) -> dict[str, Any]:
        self._check_project(project)
        self._require_api("run.googleapis.com")
        if region not in REGIONS:
            raise Denied(404, "NOT_FOUND", f"Location '{region}' is not found or it does not support Cloud Run.")
        return {}

    # --- gRPC: IAM admin -----------------------------------------------------------------------

    def _grpc_server(self) -> Any:
        import grpc
        from google.cloud.iam_admin_v1 import types
        from google.protobuf import empty_pb2

        methods = {
            "GetServiceAccount": (self._get_account, types.GetServiceAccountRequest, types.ServiceAccount, "iam.serviceAccounts.get"),
            "CreateServiceAccount": (self._create_account, types.CreateServiceAccountRequest, types.ServiceAccount,
                                     "iam.serviceAccounts.create"),
            "PatchServiceAccount": (self._patch_account, types.PatchServiceAccountRequest, types.ServiceAccount,
                                    "iam.serviceAccounts.update"),
            "DeleteServiceAccount": (self._delete_account, types.DeleteServiceAccountRequest, None, "iam.serviceAccounts.delete"),
            "ListServiceAccountKeys": (self._list_keys, types.ListServiceAccountKeysRequest, types.ListServiceAccountKeysResponse,
                                       "iam.serviceAccountKeys.list"),
            "CreateServiceAccountKey": (self._create_key, types.CreateServiceAccountKeyRequest, types.ServiceAccountKey,
                                        "iam.serviceAccountKeys.create"),
            "DeleteServiceAccountKey": (self._delete_key, types.DeleteServiceAccountKeyRequest, None, "iam.serviceAccountKeys.delete"),
        }

        def handler(function, request_type, response_type, permission):
            def serve(request, context):
                token = dict(context.invocation_metadata()).get("authorization", "")
                try:
                    self._authorize(token[len("Bearer "):] if token.startswith("Bearer ") else None, permission)
                    with self.lock:
                        self._require_api("iam.googleapis.com")
                        answer = function(request)
                except Denied as exc:
                    context.abort_with_status(_grpc_status(exc))
                return answer if response_type else empty_pb2.Empty()

            serializer = response_type.serialize if response_type else empty_pb2.Empty.SerializeToString
            return grpc.unary_unary_rpc_method_handler(serve, request_deserializer=request_type.deserialize,
                                                       response_serializer=serializer)

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
            "google.iam.admin.v1.IAM", {name: handler(*spec) for name, spec in methods.items()})])
        key, cert = self.certificate[1].read_bytes(), self.certificate[0].read_bytes()
        self.grpc_port = server.add_secure_port("localhost:0", grpc.ssl_server_credentials([(key, cert)]))
        return server

    def _account_email(self, name: str) -> str:
        match = re.fullmatch(r"projects/([^/]+)/serviceAccounts/([^/]+)", name)
        if not match:
            raise Denied(400, "INVALID_ARGUMENT", f"Invalid service account name {name}.")
        self._check_project(match.group(1))
        if match.group(2) not in self.accounts:
            raise Denied(404, "NOT_FOUND", f"Service account {match.group(2)} does not exist.")
        return match.group(2)

    def _account_message(self, email: str) -> Any:
        from google.cloud.iam_admin_v1 import types

        return types.ServiceAccount(**self.accounts[email])

    def _get_account(self, request: Any) -> Any:
        return self._account_message(self._account_email(request.name))

    def _create_account(self, request: Any) -> Any:
        self._check_project(request.name.split("/")[1])
        email = f"{request.account_id}@{self.project}.iam.gserviceaccount.com"
        if email in self.accounts:
            raise Denied(409, "ALREADY_EXISTS", f"Service account {request.account_id} already exists within project "
                         f"projects/{self.project}.")
        self.accounts[email] = {
            "name": f"projects/{self.project}/serviceAccounts/{email}", "project_id": self.project,
            "unique_id": str(secrets.randbelow(10 ** 20)), "email": email, "oauth2_client_id": str(secrets.randbelow(10 ** 20)),
            "display_name": request.service_account.display_name, "description": request.service_account.description,
        }
        self.keys[email] = []
        if self.unpropagated_accounts:
            self._unknown_to_policy.add(email)
        return self._account_message(email)

    def _patch_account(self, request: Any) -> Any:
        email = self._account_email(request.service_account.name)
        for field in request.update_mask.paths:
            self.accounts[email][field] = getattr(request.service_account, field)
        return self._account_message(email)

    def _delete_account(self, request: Any) -> None:
        email = self._account_email(request.name)
        account = self.accounts.pop(email)
        self.keys.pop(email, None)
        # As IAM does: the bindings of a deleted account name it as deleted, with its unique id.
        for binding in self.policy["bindings"]:
            binding["members"] = [f"deleted:serviceAccount:{email}?uid={account['unique_id']}" if m == f"serviceAccount:{email}" else m
                                  for m in binding["members"]]

    def _list_keys(self, request: Any) -> Any:
        from google.cloud.iam_admin_v1 import types

        email = self._account_email(request.name)
        user_managed = [types.ServiceAccountKey(name=k["name"], key_type=types.ListServiceAccountKeysRequest.KeyType.USER_MANAGED,
                                                disabled=k["disabled"]) for k in self.keys[email]]
        system = types.ServiceAccountKey(name=f"{request.name}/keys/{secrets.token_hex(20)}",
                                         key_type=types.ListServiceAccountKeysRequest.KeyType.SYSTEM_MANAGED)
        only_user = list(request.key_types) == [types.ListServiceAccountKeysRequest.KeyType.USER_MANAGED]
        return types.ListServiceAccountKeysResponse(keys=user_managed if only_user else [*user_managed, system])

    def _create_key(self, request: Any) -> Any:
        from google.cloud.iam_admin_v1 import types

        email = self._account_email(request.name)
        if "iam.disableServiceAccountKeyCreation" in self.enforced_constraints:
            raise Denied(400, "FAILED_PRECONDITION", "Key creation is not allowed on this service account.")
        if len(self.keys[email]) >= 10:
            raise Denied(400, "FAILED_PRECONDITION", "Precondition check failed.")
        key_id = secrets.token_hex(20)
        private_key = base64.b64encode(secrets.token_bytes(48)).decode()
        key_file = {"type": "service_account", "project_id": self.project, "private_key_id": key_id,
                    "private_key": f"-----BEGIN PRIVATE KEY-----\n{private_key}\n-----END PRIVATE KEY-----\n",
                    "client_email": email, "client_id": self.accounts[email]["oauth2_client_id"],
                    "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": "https://oauth2.googleapis.com/token"}
        key = {"name": f"{request.name}/keys/{key_id}", "disabled": False, "secret": private_key}
        self.keys[email].append(key)
        return types.ServiceAccountKey(name=key["name"], private_key_data=json.dumps(key_file).encode(),
                                       key_type=types.ListServiceAccountKeysRequest.KeyType.USER_MANAGED)

    def _delete_key(self, request: Any) -> None:
        email = self._account_email(request.name.rsplit("/keys/", 1)[0])
        before = len(self.keys[email])
        self.keys[email] = [k for k in self.keys[email] if k["name"] != request.name]
        if len(self.keys[email]) == before:
            raise Denied(404, "NOT_FOUND", f"Service account key {request.name} does not exist.")
