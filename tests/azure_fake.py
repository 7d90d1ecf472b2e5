"""A stand-in for Azure on loopback: Microsoft Entra sign-in, Azure Resource Manager and Microsoft Graph.

No emulator exists for these control planes. This fake keeps state and answers in the services'
documented JSON shapes over HTTPS, for the real SDK clients (azure-identity, the azure-mgmt-*
clients, azure-core's pipeline for Graph):

- the authority's OpenID configuration and token endpoint (client credentials, checked; tokens
  are JWT-shaped with `tid` and `aud`), and every API call must carry a token for its audience;
- ARM: resource groups, container registries (with the global name check), user-assigned
  identities, role assignments, container instance capabilities, the resources of a group;
  Graph: applications (with client secrets) and service principals;
- long-running operations: registry create answers 201 with Azure-AsyncOperation (InProgress, then
  Succeeded), registry and resource group delete answer 202 with Location (202, then done);
- conflicts: RoleAssignmentExists (409); 404s in each service's shape;
- resource providers: namespaces in `unregistered` are not registered for the subscription: their
  resources answer 409 MissingSubscriptionRegistration; registering one (`register/action`) makes it
  Registering for `registration_polls` reads of the provider, then Registered;
- Entra replication: with `replication_lag` N, the first N lookups of a new app registration, service
  principal or managed identity's principal miss it, as Entra answers while it replicates: Graph 404
  Request_ResourceNotFound, 400 Request_BadRequest for a service principal of the app, ARM 400
  PrincipalNotFound for a role assignment to the principal;
- an action put in `deny` (an ARM action such as Microsoft.Resources/subscriptions/resourceGroups/write,
  or an Entra permission such as microsoft.directory/applications/credentials/update) fails with
  403 AuthorizationFailed naming the action and scope, or Graph's Authorization_RequestDenied.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import secrets
import threading
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

from tests.fake_https import Request, Response, https_server

ARM_AUDIENCE, GRAPH_AUDIENCE = "https://management.azure.com", "https://graph.microsoft.com"
LOCATIONS = {"eastus", "westeurope"}
ROLE_NAMES = {"b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor", "7f951dda-4ed3-4680-a7ca-43fe172d538d": "AcrPull"}
POLL = {"Retry-After": "1"}  # seconds (whole: the SDKs read it as an integer; 0 would mean their default, 30)


class Refused(Exception):
    def __init__(self, status: int, body: Any):
        super().__init__(str(body))
        self.status, self.body = status, body


def _arm_error(status: int, code: str, message: str) -> Refused:
    return Refused(status, {"error": {"code": code, "message": message}})


def _graph_error(status: int, code: str, message: str) -> Refused:
    return Refused(status, {"error": {"code": code, "message": message,
                                      "innerError": {"date": _now(), "request-id": str(uuid.uuid4())}}})


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'typ': 'JWT', 'alg': 'RS256'})}.{part(claims)}.{secrets.token_urlsafe(32)}"


class AzureFake:
    def __init__(self, certificate: tuple[Path, Path]):
        self.tenant = str(uuid.uuid4())
        self.subscription = str(uuid.uuid4())
        self.client_id, self.client_secret = str(uuid.uuid4()), secrets.token_urlsafe(24)
        self.operator_object_id = str(uuid.uuid4())
        self.lock = threading.RLock()
        self.deny: set[str] = set()
        self.calls: list[str] = []  # the action each ARM or Graph call needed, in order
        self.tokens: dict[str, str] = {}  # access token -> audience
        self.groups: dict[str, dict[str, Any]] = {}  # lowercased name -> resource group
        self.registries: dict[str, dict[str, Any]] = {}  # lowercased ARM id -> registry
        self.taken_registry_names: set[str] = set()  # held by other subscriptions
        self.identities: dict[str, dict[str, Any]] = {}  # lowercased ARM id -> identity
        self.assignments: dict[str, dict[str, Any]] = {}  # lowercased ARM id -> role assignment
        self.foreign: dict[str, list[str]] = {}  # lowercased group -> ids of resources someone else put there
        self.applications: dict[str, dict[str, Any]] = {}  # object id -> application
        self.secrets: dict[str, str] = {}  # keyId -> secretText, for the tests' checks
        self.principals: dict[str, dict[str, Any]] = {}  # object id -> service principal
        self.operations: dict[str, dict[str, Any]] = {}
        self.replication_lag = 0
        self.unregistered: set[str] = set()  # resource provider namespaces, e.g. Microsoft.ContainerInstance
        self.registration_polls = 2
        self._registering: dict[str, int] = {}  # namespace -> reads still answering Registering
        self._unreplicated: dict[str, int] = {}  # object or principal id -> lookups that still miss it
        self.server = https_server(certificate, self._handle)

    def __enter__(self) -> AzureFake:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url

    def environment(self) -> dict[str, str]:
        """The standard settings (and the provider's endpoints) pointing the SDKs here."""
        return {"AZURE_CLIENT_ID": self.client_id, "AZURE_CLIENT_SECRET": self.client_secret, "AZURE_TENANT_ID": self.tenant,
                "AZURE_AUTHORITY_HOST": self.url, "AZURE_SUBSCRIPTION_ID": self.subscription,
                "PREFECT_PROVIDER_AZURE_ENDPOINT_RESOURCE_MANAGER": self.url, "PREFECT_PROVIDER_AZURE_ENDPOINT_GRAPH": self.url}

    def applications_named(self, name: str) -> list[dict[str, Any]]:
        with self.lock:
            return [a for a in self.applications.values() if a["displayName"] == name]

    def _created(self, object_id: str) -> None:
        if self.replication_lag:
            self._unreplicated[object_id] = self.replication_lag

    def _replicated(self, object_id: str) -> bool:
        """Whether this lookup finds the object (each lookup of a new one before replication misses it)."""
        left = self._unreplicated.get(object_id, 0)
        if left:
            self._unreplicated[object_id] = left - 1
        return not left

    # --- routing ------------------------------------------------------------------------------

    ROUTES: ClassVar[list[tuple[str, str, str]]] = [
        # method, path pattern (case-insensitive), handler
        ("GET", r"/(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration", "_openid"),
        ("POST", r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token", "_token"),
        ("GET", r"/operations/(?P<op>[^/]+)", "_operation"),
        ("GET", r"/subscriptions/(?P<sub>[^/]+)/providers/(?P<namespace>[^/]+)", "_provider"),
        ("POST", r"/subscriptions/(?P<sub>[^/]+)/providers/(?P<namespace>[^/]+)/register", "_register"),
        ("GET", r"/subscriptions/(?P<sub>[^/]+)/providers/Microsoft\.ContainerInstance/locations/(?P<location>[^/]+)/capabilities",
         "_capabilities"),
        ("POST", r"/subscriptions/(?P<sub>[^/]+)/providers/Microsoft\.ContainerRegistry/checkNameAvailability", "_check_name"),
        ("GET", r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<group>[^/]+)/resources", "_group_resources"),
        ("*", r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<group>[^/]+)", "_group"),
        ("GET", r"(?P<scope>/subscriptions/.+?)/providers/Microsoft\.Authorization/roleAssignments", "_list_assignments"),
        ("*", r"(?P<scope>/subscriptions/.+?)/providers/Microsoft\.Authorization/roleAssignments/(?P<name>[^/]+)", "_assignment"),
        ("*", (r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<group>[^/]+)/providers/Microsoft\.ContainerRegistry/registries/"
               r"(?P<name>[^/]+)"), "_registry"),
        ("*", (r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<group>[^/]+)/providers/Microsoft\.ManagedIdentity/"
               r"userAssignedIdentities/(?P<name>[^/]+)"), "_identity"),
        ("GET", r"/v1\.0/applications", "_list_applications"),
        ("POST", r"/v1\.0/applications", "_create_application"),
        ("*", r"/v1\.0/applications\(appId='(?P<app_id>[^']+)'\)", "_application_by_app_id"),
        ("POST", r"/v1\.0/applications/(?P<id>[^/]+)/(?P<verb>addPassword|removePassword)", "_password"),
        ("*", r"/v1\.0/applications/(?P<id>[^/]+)", "_application"),
        ("GET", r"/v1\.0/servicePrincipals", "_list_principals"),
        ("POST", r"/v1\.0/servicePrincipals", "_create_principal"),
        ("*", r"/v1\.0/servicePrincipals/(?P<id>[^/]+)", "_principal"),
    ]

    def _handle(self, request: Request) -> Response:
        for method, pattern, handler in self.ROUTES:
            match = re.fullmatch(pattern, request.path, re.IGNORECASE)
            if match and method in ("*", request.method):
                try:
                    with self.lock:
                        return getattr(self, handler)(request, **match.groupdict())
                except Refused as exc:
                    return exc.status, exc.body, {}
        return 404, {"error": {"code": "NoRoute", "message": f"no route {request.method} {request.path}"}}, {}

    # --- sign-in ------------------------------------------------------------------------------

    def _openid(self, request: Request, tenant: str) -> Response:
        base = f"{self.url}/{tenant}"
        return 200, {"token_endpoint": f"{base}/oauth2/v2.0/token", "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                     "issuer": f"{base}/v2.0", "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode"}, {}

    def _token(self, request: Request, tenant: str) -> Response:
        form = request.body or {}
        if tenant != self.tenant or form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return 401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}, {}
        audience = form.get("scope", "").removesuffix("/.default")
        token = _jwt({"aud": audience, "tid": self.tenant, "oid": self.operator_object_id, "appid": self.client_id,
                      "exp": int(time.time()) + 3600})
        self.tokens[token] = audience
        return 200, {"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600, "access_token": token}, {}

    def _authorize(self, request: Request, audience: str, action: str, scope: str) -> None:
        if self.tokens.get(request.bearer or "") != audience:
            raise _arm_error(401, "InvalidAuthenticationToken", "The access token is invalid.")
        self.calls.append(action)
        if action in self.deny:
            if audience == GRAPH_AUDIENCE:
                raise _graph_error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
            raise _arm_error(403, "AuthorizationFailed", f"The client '{self.client_id}' with object id '{self.operator_object_id}' "
                             f"does not have authorization to perform action '{action}' over scope '{scope}' or the scope is "
                             "invalid. If access was recently granted, please refresh your credentials.")

    def _arm(self, request: Request, action: str, scope: str, subscription: str) -> None:
        self._authorize(request, ARM_AUDIENCE, action, scope)
        if subscription.lower() != self.subscription:
            raise _arm_error(404, "SubscriptionNotFound", f"The subscription '{subscription}' could not be found.")

    def _verb(self, request: Request) -> str:
        return {"GET": "read", "PUT": "write", "PATCH": "write", "DELETE": "delete"}[request.method]

    def _start(self, result: Any, *, location: bool) -> dict[str, str]:
        """A long-running operation's polling header: Azure-AsyncOperation says InProgress once,
        then Succeeded; Location answers 202 until its first poll."""
        op = uuid.uuid4().hex
        self.operations[op] = {"polls": 0, "result": result}
        url = f"{self.url}/operations/{op}?api-version=2023-01-01"
        return {"Location" if location else "Azure-AsyncOperation": url, **POLL}

    def _operation(self, request: Request, op: str) -> Response:
        operation = self.operations[op]
        operation["polls"] += 1
        if operation["result"] == "location":
            return 200, None, {}
        status = "InProgress" if operation["polls"] < 2 else "Succeeded"
        return 200, {"id": f"/operations/{op}", "status": status}, POLL

    # --- ARM ----------------------------------------------------------------------------------

    def _provider_view(self, sub: str, namespace: str) -> dict[str, Any]:
        left = self._registering.get(namespace, 0)
        if left:
            self._registering[namespace] = left - 1
        state = "NotRegistered" if namespace in self.unregistered else "Registering" if left else "Registered"
        return {"id": f"/subscriptions/{sub}/providers/{namespace}", "namespace": namespace, "registrationState": state,
                "registrationPolicy": "RegistrationRequired", "resourceTypes": []}

    def _provider(self, request: Request, sub: str, namespace: str) -> Response:
        self._arm(request, "Microsoft.Resources/subscriptions/providers/read", f"/subscriptions/{sub}", sub)
        return 200, self._provider_view(sub, namespace), {}

    def _register(self, request: Request, sub: str, namespace: str) -> Response:
        self._arm(request, f"{namespace}/register/action", f"/subscriptions/{sub}", sub)
        if namespace in self.unregistered:
            self.unregistered.discard(namespace)
            self._registering[namespace] = self.registration_polls
        return 200, self._provider_view(sub, namespace), {}

    def _require_registration(self, namespace: str) -> None:
        if namespace in self.unregistered or self._registering.get(namespace):
            raise _arm_error(409, "MissingSubscriptionRegistration", f"The subscription is not registered to use namespace "
                             f"'{namespace}'. See https://aka.ms/rps-not-found for how to register subscriptions.")

    def _capabilities(self, request: Request, sub: str, location: str) -> Response:
        self._arm(request, "Microsoft.ContainerInstance/locations/capabilities/read", f"/subscriptions/{sub}", sub)
        self._require_registration("Microsoft.ContainerInstance")
        if location.lower() not in LOCATIONS:
            return 200, {"value": []}, {}
        return 200, {"value": [
            {"resourceType": "containerGroups", "osType": os_type, "location": location, "ipAddressType": "Public",
             "gpu": "None", "capabilities": {"maxMemoryInGB": 16.0, "maxCpu": 4.0, "maxGpuCount": 0.0}}
            for os_type in ("Linux", "Windows")]}, {}

    def _check_name(self, request: Request, sub: str) -> Response:
        self._arm(request, "Microsoft.ContainerRegistry/checkNameAvailability/read", f"/subscriptions/{sub}", sub)
        self._require_registration("Microsoft.ContainerRegistry")
        name = request.body["name"].lower()
        taken = name in self.taken_registry_names or any(r["name"].lower() == name for r in self.registries.values())
        if taken:
            return 200, {"nameAvailable": False, "reason": "AlreadyExists", "message": f"The registry {name} is already in use."}, {}
        return 200, {"nameAvailable": True}, {}

    def _group_resources(self, request: Request, sub: str, group: str) -> Response:
        self._arm(request, "Microsoft.Resources/subscriptions/resourceGroups/resources/read", f"/subscriptions/{sub}/resourceGroups/{group}", sub)
        self._existing_group(group)
        prefix = f"/subscriptions/{sub}/resourcegroups/{group}/".lower()
        ids = [r["id"] for store in (self.registries, self.identities) for key, r in store.items() if key.startswith(prefix)]
        ids += self.foreign.get(group.lower(), [])
        return 200, {"value": [{"id": i, "name": i.rsplit("/", 1)[1]} for i in ids]}, {}

    def _existing_group(self, group: str) -> dict[str, Any]:
        if group.lower() not in self.groups:
            raise _arm_error(404, "ResourceGroupNotFound", f"Resource group '{group}' could not be found.")
        return self.groups[group.lower()]

    def _group(self, request: Request, sub: str, group: str) -> Response:
        scope = f"/subscriptions/{sub}/resourceGroups/{group}"
        self._arm(request, f"Microsoft.Resources/subscriptions/resourceGroups/{self._verb(request)}", scope, sub)
        if request.method == "PUT":
            existing = self.groups.get(group.lower())
            self.groups[group.lower()] = {"id": scope, "name": group, "type": "Microsoft.Resources/resourceGroups",
                                          "location": request.body["location"], "tags": request.body.get("tags") or {},
                                          "properties": {"provisioningState": "Succeeded"}}
            return (200 if existing else 201), self.groups[group.lower()], {}
        found = self._existing_group(group)
        if request.method == "PATCH":
            found["tags"] = request.body.get("tags", found["tags"])
            return 200, found, {}
        if request.method == "DELETE":
            # As ARM does: everything in the group goes with it, role assignments on it included.
            prefix = f"{scope}/".lower()
            for store in (self.registries, self.identities, self.assignments):
                for key in [k for k in store if k.startswith(prefix)]:
                    del store[key]
            del self.groups[group.lower()]
            self.foreign.pop(group.lower(), None)
            return 202, None, self._start("location", location=True)
        return 200, found, {}

    def _registry(self, request: Request, sub: str, group: str, name: str) -> Response:
        arm_id = f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.ContainerRegistry/registries/{name}"
        self._arm(request, f"Microsoft.ContainerRegistry/registries/{self._verb(request)}", arm_id, sub)
        self._require_registration("Microsoft.ContainerRegistry")
        self._existing_group(group)
        found = self.registries.get(arm_id.lower())
        if request.method == "PUT":
            body = request.body
            if found is None and (name.lower() in self.taken_registry_names or not re.fullmatch(r"[a-zA-Z0-9]{5,50}", name)):
                raise _arm_error(409, "AlreadyInUse", f"The registry {name} is already in use.")
            self.registries[arm_id.lower()] = {
                "id": arm_id, "name": name, "type": "Microsoft.ContainerRegistry/registries", "location": body["location"],
                "tags": body.get("tags") or {}, "sku": {"name": body["sku"]["name"], "tier": body["sku"]["name"]},
                "properties": {"loginServer": f"{name.lower()}.azurecr.io", "creationDate": _now(), "provisioningState": "Succeeded",
                               "adminUserEnabled": bool((body.get("properties") or {}).get("adminUserEnabled")),
                               "publicNetworkAccess": "Enabled"},
            }
            creating = {**self.registries[arm_id.lower()], "properties": {**self.registries[arm_id.lower()]["properties"],
                                                                          "provisioningState": "Creating"}}
            return (200 if found else 201), creating, self._start("async", location=False)
        if found is None:
            raise _arm_error(404, "ResourceNotFound", f"The Resource 'Microsoft.ContainerRegistry/registries/{name}' under "
                             f"resource group '{group}' was not found.")
        if request.method == "PATCH":
            body = request.body
            found["tags"] = body.get("tags", found["tags"])
            if "sku" in body:
                found["sku"] = {"name": body["sku"]["name"], "tier": body["sku"]["name"]}
            if "adminUserEnabled" in (body.get("properties") or {}):
                found["properties"]["adminUserEnabled"] = body["properties"]["adminUserEnabled"]
            return 200, found, {}
        if request.method == "DELETE":
            del self.registries[arm_id.lower()]
            return 202, None, self._start("location", location=True)
        return 200, found, {}

    def _identity(self, request: Request, sub: str, group: str, name: str) -> Response:
        arm_id = f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
        self._arm(request, f"Microsoft.ManagedIdentity/userAssignedIdentities/{self._verb(request)}", arm_id, sub)
        self._require_registration("Microsoft.ManagedIdentity")
        self._existing_group(group)
        found = self.identities.get(arm_id.lower())
        if request.method == "PUT":
            if found is None:
                self._created(principal_id := str(uuid.uuid4()))
            self.identities[arm_id.lower()] = found = found or {
                "id": arm_id, "name": name, "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
                "location": request.body["location"], "tags": {},
                "properties": {"tenantId": self.tenant, "principalId": principal_id, "clientId": str(uuid.uuid4())},
            }
            found["tags"] = request.body.get("tags") or {}
            return 201, found, {}
        if found is None:
            raise _arm_error(404, "ResourceNotFound", f"The Resource 'Microsoft.ManagedIdentity/userAssignedIdentities/{name}' "
                             f"under resource group '{group}' was not found.")
        if request.method == "PATCH":
            found["tags"] = request.body.get("tags", found["tags"])
        elif request.method == "DELETE":
            del self.identities[arm_id.lower()]
        return 200, found, {}

    def _principal_exists(self, principal_id: str) -> bool:
        if not self._replicated(principal_id):
            return False
        return principal_id in self.principals or any(i["properties"]["principalId"] == principal_id for i in self.identities.values())

    def _assignment(self, request: Request, scope: str, name: str) -> Response:
        arm_id = f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"
        subscription = scope.split("/")[2]
        self._arm(request, f"Microsoft.Authorization/roleAssignments/{self._verb(request)}", scope, subscription)
        found = self.assignments.get(arm_id.lower())
        if request.method == "PUT":
            properties = request.body["properties"]
            role = properties["roleDefinitionId"].rsplit("/", 1)[1]
            if not self._principal_exists(properties["principalId"]):
                raise _arm_error(400, "PrincipalNotFound", f"Principal {properties['principalId']} does not exist in the directory "
                                 f"{self.tenant}.")
            for other in self.assignments.values():
                same = (other["properties"]["scope"].lower() == scope.lower() and other["properties"]["principalId"] == properties["principalId"]
                        and other["properties"]["roleDefinitionId"].lower().endswith(role))
                if same and other["id"].lower() != arm_id.lower():
                    raise _arm_error(409, "RoleAssignmentExists", "The role assignment already exists.")
            if found is not None:
                raise _arm_error(409, "RoleAssignmentUpdateNotPermitted", "Tenant ID, application ID, principal ID, and scope are "
                                 "not allowed to be updated.")
            self.assignments[arm_id.lower()] = found = {
                "id": arm_id, "name": name, "type": "Microsoft.Authorization/roleAssignments",
                "properties": {"roleDefinitionId": properties["roleDefinitionId"], "principalId": properties["principalId"],
                               "principalType": properties.get("principalType", "ServicePrincipal"), "scope": scope},
            }
            return 201, found, {}
        if found is None:
            if request.method == "DELETE":
                return 204, None, {}
            raise _arm_error(404, "RoleAssignmentNotFound", f"The role assignment '{name}' is not found.")
        if request.method == "DELETE":
            del self.assignments[arm_id.lower()]
        return 200, found, {}

    def _list_assignments(self, request: Request, scope: str) -> Response:
        self._arm(request, "Microsoft.Authorization/roleAssignments/read", scope, scope.split("/")[2])
        principal = re.fullmatch(r"principalId eq '(.*)'", request.query.get("$filter", ""))
        found = [a for a in self.assignments.values() if scope.lower().startswith(a["properties"]["scope"].lower())
                 and (principal is None or a["properties"]["principalId"] == principal.group(1))]
        return 200, {"value": found}, {}

    def roles_of(self, principal_id: str) -> list[tuple[str, str]]:
        """(role name, scope) of every assignment to a principal."""
        with self.lock:
            return sorted((ROLE_NAMES.get(a["properties"]["roleDefinitionId"].rsplit("/", 1)[1], "?"), a["properties"]["scope"])
                          for a in self.assignments.values() if a["properties"]["principalId"] == principal_id)

    # --- Microsoft Graph ----------------------------------------------------------------------

    def _graph(self, request: Request, permission: str) -> None:
        self._authorize(request, GRAPH_AUDIENCE, permission, "/")

    @staticmethod
    def _filter(request: Request, pattern: str) -> str:
        match = re.fullmatch(pattern, request.query.get("$filter", ""))
        if not match:
            raise _graph_error(400, "BadRequest", f"Unsupported filter: {request.query.get('$filter')}")
        return match.group(1).replace("''", "'")

    def _application_view(self, application: dict[str, Any]) -> dict[str, Any]:
        return json.loads(json.dumps(application))

    def _existing_application(self, object_id: str) -> dict[str, Any]:
        if object_id not in self.applications or not self._replicated(object_id):
            raise _graph_error(404, "Request_ResourceNotFound", f"Resource '{object_id}' does not exist or one of its queried "
                               "reference-property objects are not present.")
        return self.applications[object_id]

    def _list_applications(self, request: Request) -> Response:
        self._graph(request, "microsoft.directory/applications/standard/read")
        name = self._filter(request, r"displayName eq '(.*)'")
        return 200, {"value": [self._application_view(a) for a in self.applications.values() if a["displayName"] == name]}, {}

    def _create_application(self, request: Request) -> Response:
        self._graph(request, "microsoft.directory/applications/create")
        object_id = str(uuid.uuid4())
        self.applications[object_id] = {
            "id": object_id, "appId": str(uuid.uuid4()), "displayName": request.body["displayName"],
            "signInAudience": request.body.get("signInAudience", "AzureADMyOrg"), "tags": request.body.get("tags") or [],
            "notes": request.body.get("notes"), "createdDateTime": _now(), "passwordCredentials": [],
        }
        self._created(object_id)
        return 201, self._application_view(self.applications[object_id]), {}

    def _application_by_app_id(self, request: Request, app_id: str) -> Response:
        found = next((a for a in self.applications.values() if a["appId"] == app_id), None)
        return self._application(request, found["id"] if found else app_id)

    def _application(self, request: Request, id: str) -> Response:
        verbs = {"GET": "standard/read", "PATCH": "basic/update", "DELETE": "delete"}
        self._graph(request, f"microsoft.directory/applications/{verbs[request.method]}")
        application = self._existing_application(id)
        if request.method == "PATCH":
            application.update({k: v for k, v in request.body.items() if k in ("displayName", "tags", "notes")})
            return 204, None, {}
        if request.method == "DELETE":
            del self.applications[id]
            # As Entra does: the app's service principal goes with it.
            for key in [k for k, p in self.principals.items() if p["appId"] == application["appId"]]:
                del self.principals[key]
            return 204, None, {}
        return 200, self._application_view(application), {}

    def _password(self, request: Request, id: str, verb: str) -> Response:
        self._graph(request, "microsoft.directory/applications/credentials/update")
        application = self._existing_application(id)
        if verb == "removePassword":
            key_id = request.body["keyId"]
            if not any(p["keyId"] == key_id for p in application["passwordCredentials"]):
                raise _graph_error(400, "InvalidRequest", f"No password credential found with keyId {key_id}.")
            application["passwordCredentials"] = [p for p in application["passwordCredentials"] if p["keyId"] != key_id]
            return 204, None, {}
        secret = secrets.token_urlsafe(30)
        start = dt.datetime.now(dt.UTC)
        credential = {"customKeyIdentifier": None, "displayName": request.body["passwordCredential"].get("displayName"),
                      "endDateTime": (start + dt.timedelta(days=730)).strftime("%Y-%m-%dT%H:%M:%S.%f0Z"),
                      "hint": secret[:3], "keyId": str(uuid.uuid4()), "secretText": None,
                      "startDateTime": start.strftime("%Y-%m-%dT%H:%M:%S.%f0Z")}
        application["passwordCredentials"].append(credential)
        self.secrets[credential["keyId"]] = secret
        return 200, {**credential, "secretText": secret}, {}

    def _list_principals(self, request: Request) -> Response:
        self._graph(request, "microsoft.directory/servicePrincipals/standard/read")
        tag = self._filter(request, r"tags/any\(t:t eq '(.*)'\)")
        return 200, {"value": [p for p in self.principals.values() if tag in p["tags"]]}, {}

    def _create_principal(self, request: Request) -> Response:
        self._graph(request, "microsoft.directory/servicePrincipals/create")
        application = next((a for a in self.applications.values() if a["appId"] == request.body["appId"]), None)
        if application is None or not self._replicated(application["id"]):
            raise _graph_error(400, "Request_BadRequest", f"The appId '{request.body['appId']}' of the service principal does not "
                               "reference a valid application object.")
        object_id = str(uuid.uuid4())
        self.principals[object_id] = {"id": object_id, "appId": application["appId"], "displayName": application["displayName"],
                                      "servicePrincipalType": "Application", "tags": request.body.get("tags") or []}
        self._created(object_id)
        return 201, self.principals[object_id], {}

    def _principal(self, request: Request, id: str) -> Response:
        verbs = {"GET": "standard/read", "PATCH": "basic/update", "DELETE": "delete"}
        self._graph(request, f"microsoft.directory/servicePrincipals/{verbs[request.method]}")
        if id not in self.principals or not self._replicated(id):
            raise _graph_error(404, "Request_ResourceNotFound", f"Resource '{id}' does not exist or one of its queried "
                               "reference-property objects are not present.")
        if request.method == "PATCH":
            self.principals[id]["tags"] = request.body.get("tags", self.principals[id]["tags"])
            return 204, None, {}
        if request.method == "DELETE":
            del self.principals[id]
            return 204, None, {}
        return 200, self.principals[id], {}
