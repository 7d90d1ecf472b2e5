"""provision_infra for Azure Container Instances push pools (`provider: azure`), with the Azure SDKs.

Parts, at work_pools.POOL.infra.PART:

  container_instance_provider, container_registry_provider, managed_identity_provider
                      the resource providers the parts use, registered for the subscription when they
                      are not (waited for until Registered), never unregistered
  aci_location        the location, checked to offer container groups to the subscription; fills
                      `subscription_id`
  resource_group      the pool's resource group; fills `resource_group_name`
  app_registration    a Microsoft Entra app registration, the identity Prefect starts containers as
  service_principal   its service principal in the tenant
  aci_credentials     a client secret of the app, kept only in an azure-container-instance-credentials
                      block; fills `aci_credentials`
  contributor_role    Contributor for the service principal on the resource group
  container_registry  an Azure Container Registry (Basic, no admin user) for flow images
  identity            a user-assigned managed identity containers pull images as; fills `identities`
                      and `image_registry` (the registry's login server and this identity)
  acr_pull_role       AcrPull for the identity on the registry

ARM objects carry the tag prefect-provider:work-pool=POOL, the app registration and the service
principal carry it among their tags; one found under its name with it is adopted, one without it is
not taken over. Role assignments take no tags: theirs have names derived from the pool, the part
and the scope, so they are found again.

Microsoft Entra replicates new objects for a while: the calls right after an app registration or a
principal is made wait for it (provisioners.base.until_propagated) on the answers Entra gives then.

Credentials come from DefaultAzureCredential (AZURE_CLIENT_ID / AZURE_TENANT_ID /
AZURE_CLIENT_SECRET, workload or managed identity, `az login`, ...); AZURE_AUTHORITY_HOST is used as
given (no instance discovery), AZURE_SDK_CLOUD_CONF picks a sovereign cloud (its ARM, Microsoft Graph
and registry domains). Microsoft Graph (app registrations, service principals, client secrets) is
called as plain REST through azure-core's pipeline with a bearer token from the same credential:
the msgraph-sdk would add a large dependency for a dozen calls. PREFECT_PROVIDER_AZURE_ENDPOINT_RESOURCE_MANAGER
and PREFECT_PROVIDER_AZURE_ENDPOINT_GRAPH send the calls elsewhere, for private endpoints and tests.
The SDKs are imported on the first call.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import re
import threading
import uuid
from collections.abc import Iterator
from typing import Any, ClassVar, Literal

from pydantic import Field

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

CREDENTIALS_BLOCK_TYPE = "azure-container-instance-credentials"
ENDPOINT_VARIABLE = "PREFECT_PROVIDER_AZURE_ENDPOINT_"
# Built-in role definitions (the same ids in every subscription and cloud).
ROLE_IDS = {"Contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c", "AcrPull": "7f951dda-4ed3-4680-a7ca-43fe172d538d"}
# Per cloud (azure-core's names): Microsoft Graph and the registries' domain.
CLOUDS = {
    "AZURE_PUBLIC_CLOUD": ("https://graph.microsoft.com", "azurecr.io"),
    "AZURE_CHINA_CLOUD": ("https://microsoftgraph.chinacloudapi.cn", "azurecr.cn"),
    "AZURE_US_GOVERNMENT": ("https://graph.microsoft.us", "azurecr.us"),
}
GRAPH_PERMISSION = "Application.ReadWrite.OwnedBy (or the Application Developer role)"
# Client -> (module, class, resource provider namespace, for messages).
CLIENTS = {
    "resources": ("azure.mgmt.resource.resources", "ResourceManagementClient", "Microsoft.Resources"),
    "containerregistry": ("azure.mgmt.containerregistry", "ContainerRegistryManagementClient", "Microsoft.ContainerRegistry"),
    "msi": ("azure.mgmt.msi", "ManagedServiceIdentityClient", "Microsoft.ManagedIdentity"),
    "authorization": ("azure.mgmt.authorization", "AuthorizationManagementClient", "Microsoft.Authorization"),
    "containerinstance": ("azure.mgmt.containerinstance", "ContainerInstanceManagementClient", "Microsoft.ContainerInstance"),
}
RESOURCE_NAME = r"^[-\w.()]{0,89}[-\w()]$"
# The resource providers the parts use, which a subscription may not be registered for yet
# (ARM then answers MissingSubscriptionRegistration); Resources and Authorization always are.
PROVIDERS = {"container_instance_provider": "Microsoft.ContainerInstance",
             "container_registry_provider": "Microsoft.ContainerRegistry",
             "managed_identity_provider": "Microsoft.ManagedIdentity"}
UNREGISTERED = "MissingSubscriptionRegistration"
# Microsoft Entra is eventually consistent: for seconds (at times minutes) after an app registration
# or a service principal is made, other calls may not find it yet. These are the answers then.
APP_REPLICATION = Propagation(
    "Entra to replicate the app registration", "that the app registration still exists in the tenant (App registrations)",
    lambda exc: refused_with("Request_ResourceNotFound")(exc)
    or refused_with("Request_BadRequest", saying="does not reference a valid application object")(exc))
PRINCIPAL_REPLICATION = Propagation(
    "Entra to replicate the principal", "that the service principal or managed identity still exists in the tenant",
    refused_with("PrincipalNotFound", "Request_ResourceNotFound"))


class AzureInfra(InfraConfig):
    """`provision_infra` of an ACI pool. Names default to ones derived from the pool's name."""

    pool_types: ClassVar[tuple[str, ...]] = ("azure-container-instance:push", "azure-container-instance")

    provider: Literal["azure"]
    subscription_id: str | None = Field(
        default=None, pattern=r"^[0-9a-fA-F-]{36}$", description="Azure subscription id; else AZURE_SUBSCRIPTION_ID."
    )
    location: str = Field(pattern=r"^[a-z0-9]+$", description="Azure region of the resource group and its resources, e.g. eastus.")
    resource_group_name: str | None = Field(default=None, pattern=RESOURCE_NAME)
    app_registration_name: str | None = Field(default=None, min_length=1, max_length=120)
    registry_name: str | None = Field(
        default=None, pattern=r"^[a-z0-9]{5,50}$", description="Globally unique; by default derived from the pool and subscription."
    )
    identity_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][-\w]{2,127}$")
    credentials_block: str | None = Field(
        default=None, pattern=r"^[a-z0-9-]+$", description="Name of the azure-container-instance-credentials block holding the secret."
    )

    def check(self) -> None:
        if self.subscription() is None:
            raise FieldError("no Azure subscription: set subscription_id here, or AZURE_SUBSCRIPTION_ID", "subscription_id")

    def subscription(self) -> str | None:
        return self.subscription_id or os.environ.get("AZURE_SUBSCRIPTION_ID")

    def names(self, pool: str) -> dict[str, str]:
        slug = re.sub(r"[^a-z0-9]+", "-", pool.lower()).strip("-") or "pool"
        # Registry names are global across Azure: a stable suffix keeps other subscriptions' apart.
        suffix = hashlib.sha256(f"{self.subscription()}/{pool}".encode()).hexdigest()[:8]
        return {
            "resource_group": self.resource_group_name or f"prefect-{slug}"[:90].rstrip("-."),
            "app_registration": self.app_registration_name or f"prefect-{slug}",
            "registry": self.registry_name or "prefect" + slug.replace("-", "")[:35] + suffix,
            "identity": self.identity_name or f"prefect-{slug}-acr-pull"[:128],
            "credentials_block": self.credentials_block or f"{slug}-aci-credentials",
        }


# --- calling Azure ----------------------------------------------------------------------------

_lock = threading.Lock()
_credentials: dict[tuple, Any] = {}
_clients: dict[tuple, Any] = {}


def _settings() -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(("AZURE_", "IDENTITY_", "MSI_", ENDPOINT_VARIABLE))))


def _cloud() -> str:
    from azure.core.settings import settings

    return settings.current.azure_cloud.name


def _arm() -> tuple[str, list[str]]:
    """The ARM endpoint and the token scopes for it."""
    from azure.core import AzureClouds
    from azure.mgmt.core.tools import get_arm_endpoints

    endpoints = get_arm_endpoints(AzureClouds[_cloud()])
    return os.environ.get(ENDPOINT_VARIABLE + "RESOURCE_MANAGER") or endpoints["resource_manager"], endpoints["credential_scopes"]


def _graph_endpoint() -> str:
    return os.environ.get(ENDPOINT_VARIABLE + "GRAPH") or CLOUDS[_cloud()][0]


def registry_domain() -> str:
    return CLOUDS[_cloud()][1]


def _credential() -> Any:
    from azure.identity import DefaultAzureCredential

    settings = _settings()
    with _lock:
        if settings not in _credentials:
            # Sign-in failures reach the operator in the error of the call, not as log lines besides.
            logging.getLogger("azure.identity").setLevel(logging.ERROR)
            # The authority is the operator's (AZURE_AUTHORITY_HOST): not checked against Microsoft's list.
            _credentials[settings] = DefaultAzureCredential(disable_instance_discovery=True)
        return _credentials[settings]


def _client(name: str, subscription: str) -> Any:
    import importlib

    key = (_settings(), name, subscription)
    with _lock:
        if key in _clients:
            return _clients[key]
    module, class_name, _ = CLIENTS[name]
    base_url, scopes = _arm()
    client = getattr(importlib.import_module(module), class_name)(
        _credential(), subscription, base_url=base_url, credential_scopes=scopes)
    _without_automatic_registration(client)
    with _lock:
        return _clients.setdefault(key, client)


def _without_automatic_registration(client: Any) -> None:
    """Take out azure-mgmt-core's policy that registers a missing resource provider by itself: it would
    write during a plan and wait in silent 10 s rounds. Registration is a planned part (ResourceProvider).
    The generated clients take no option for it, so the policy in the pipeline is made to pass through."""
    from azure.mgmt.core.policies import ARMAutoResourceProviderRegistrationPolicy

    for policy in client._client._pipeline._impl_policies:
        if isinstance(policy, ARMAutoResourceProviderRegistrationPolicy):
            policy.send = policy.next.send


def _graph_client() -> Any:
    from azure.core import PipelineClient
    from azure.core.pipeline import policies

    key = (_settings(), "graph")
    with _lock:
        if key in _clients:
            return _clients[key]
    scope = CLOUDS[_cloud()][0] + "/.default"
    client = PipelineClient(base_url=_graph_endpoint(), policies=[
        policies.HeadersPolicy(), policies.UserAgentPolicy("prefect-provider"), policies.RetryPolicy(),
        policies.BearerTokenCredentialPolicy(_credential(), scope),
    ])
    with _lock:
        return _clients.setdefault(key, client)


@contextlib.contextmanager
def _translated(action: str) -> Iterator[None]:
    """Every Azure failure as a CloudError that names the call, e.g. `Microsoft.Resources:ResourceGroups.CreateOrUpdate denied: ...`."""
    from azure.core.exceptions import (
        AzureError,
        ClientAuthenticationError,
        HttpResponseError,
    )
    from azure.identity import CredentialUnavailableError

    try:
        yield
    except CredentialUnavailableError:
        raise CloudError(
            f"{action}: no Azure credentials found: set AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET, "
            "or use a managed identity, or sign in with `az login` (DefaultAzureCredential)"
        ) from None
    except ClientAuthenticationError as exc:
        raise CloudError(f"{action} failed: the Azure credentials were refused: {_message(exc)[1]}") from None
    except HttpResponseError as exc:
        code, message = _message(exc)
        if exc.status_code == 403 or code in ("AuthorizationFailed", "LinkedAuthorizationFailed"):
            raise CloudError(f"{action} denied: {message}", code=code) from None
        raise CloudError(f"{action} failed: {code}: {message}", code=code) from None
    except AzureError as exc:
        raise CloudError(f"{action} failed: {exc.message}") from None


def _message(exc: Any) -> tuple[str, str]:
    error = getattr(exc, "error", None)
    if error is not None and error.code:
        return error.code, error.message or ""
    return str(getattr(exc, "status_code", "") or type(exc).__name__), " ".join(line.strip() for line in str(exc.message).splitlines())


def _camel(name: str) -> str:
    return "".join(word.capitalize() for word in name.split("_"))


def call(client: str, operation: str, subscription: str, *args: Any, missing: bool = False, **kwargs: Any) -> Any:
    """One ARM call, e.g. call("resources", "resource_groups.get", S, "rg"); a long-running one
    (begin_*) is waited for, a listing read to its end. With `missing`, "no such object" (404) is None."""
    from azure.core.exceptions import ResourceNotFoundError
    from azure.core.paging import ItemPaged

    group, method = operation.split(".")
    action = f"{CLIENTS[client][2]}:{_camel(group)}.{_camel(method.removeprefix('begin_'))}"
    try:
        with _translated(action):
            try:
                answer = getattr(getattr(_client(client, subscription), group), method)(*args, **kwargs)
                if method.startswith("begin_"):
                    return answer.result()
                return list(answer) if isinstance(answer, ItemPaged) else answer
            except ResourceNotFoundError:
                if missing:
                    return None
                raise
    except CloudError as exc:
        if missing and exc.code == UNREGISTERED:  # nothing of a provider the subscription is not registered for
            return None
        raise


def graph(method: str, path: str, action: str, *, body: Any = None, params: dict[str, str] | None = None,
          missing: bool = False) -> Any:
    """One Microsoft Graph call (v1.0) through azure-core's pipeline; with `missing`, a 404 is None."""
    from azure.core.rest import HttpRequest

    with _translated(f"graph:{action}"):
        response = _graph_client().send_request(
            HttpRequest(method, f"{_graph_endpoint()}/v1.0{path}", params=params, json=body))
    if response.status_code == 404 and missing:
        return None
    if response.status_code >= 400:
        try:
            error = response.json().get("error") or {}
        except ValueError:
            error = {}
        code, message = error.get("code", str(response.status_code)), error.get("message", response.text())
        if response.status_code == 403:
            raise CloudError(f"graph:{action} denied ({code}): {message} It needs the Microsoft Graph permission {GRAPH_PERMISSION}.",
                             code=code)
        raise CloudError(f"graph:{action} failed: {code}: {message}", code=code)
    return response.json() if response.content else None


def _tenant() -> str:
    """The tenant of the credential (the `tid` claim of its Microsoft Graph token): where the app lives."""
    token = _credential().get_token(CLOUDS[_cloud()][0] + "/.default").token
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["tid"]


# --- small helpers ----------------------------------------------------------------------------


def _ours(tags: dict[str, str] | None) -> dict[str, str]:
    """The tags we manage; others a user adds are left alone."""
    return {TAG: tags[TAG]} if tags and TAG in tags else {}


def _tag_strings(tags: list[str]) -> dict[str, str]:
    """Graph tags are strings: ours is `TAG=POOL`."""
    ours = [t.split("=", 1)[1] for t in tags if t.startswith(TAG + "=")]
    return {TAG: ours[0]} if ours else {}


def _group_id(subscription: str, group: str) -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{group}"


def _parse(arm_id: str) -> tuple[str, str, str]:
    """Subscription, resource group and name of a resource's ARM id."""
    match = re.fullmatch(r"/subscriptions/([^/]+)/resourceGroups/([^/]+)(?:/providers/.+/([^/]+))?", arm_id, re.IGNORECASE)
    return match.group(1), match.group(2), match.group(3) or match.group(2)


def _location(name: str) -> str:
    """A location as configured: `eastus`, also when an answer says `East US`."""
    return name.replace(" ", "").lower()


def _same(a: str | None, b: str | None) -> bool:
    """ARM ids and GUIDs compare without regard to case."""
    return (a or "").lower() == (b or "").lower()


# --- parts ------------------------------------------------------------------------------------


class AzurePart(InfraPart):
    def desired(self, pool: str, config: AzureInfra) -> dict[str, Any]:
        return {"subscription_id": config.subscription(), **self.settings(pool, config), "tags": {TAG: pool}}

    def settings(self, pool: str, config: AzureInfra) -> dict[str, Any]:
        return {}


class ResourceProvider(AzurePart):
    """A resource provider the subscription is registered for: registered when it is not (the apply
    waits until it is), never unregistered (other workloads of the subscription may use it)."""

    server_owned = True

    def __init__(self, part: str, namespace: str):
        self.part, self.namespace = part, namespace

    def desired(self, pool: str, config: AzureInfra) -> dict[str, Any]:
        return {"subscription_id": config.subscription(), "namespace": self.namespace}

    def read(self, client, sought: list[Sought]) -> list[LiveObject]:
        found = []
        for subscription in sorted({item.desired["subscription_id"] for item in sought if item.desired is not None}):
            if self._state(subscription) == "Registered":
                found += [LiveObject(self._id(subscription), item.name, item.desired) for item in sought
                          if item.desired is not None and item.desired["subscription_id"] == subscription]
        return found

    def adopt_reason(self, pool: str, obj: LiveObject) -> str | None:
        return f"the subscription is registered for {self.namespace}: taken into state (never unregistered)"

    def create(self, client, pool: str, attributes: dict[str, Any]) -> str:
        subscription = attributes["subscription_id"]
        call("resources", "providers.register", subscription, self.namespace)

        def registered() -> None:
            state = self._state(subscription)
            if state != "Registered":
                raise CloudError(f"Microsoft.Resources:Providers.Register: {self.namespace} is {state}", code="Registering")

        until_propagated("Microsoft.Resources:Providers.Register", registered, Propagation(
            f"Azure to register {self.namespace} for the subscription",
            f"the registration state of {self.namespace} (Subscription > Resource providers)", refused_with("Registering")))
        return self._id(subscription)

    def update(self, client, obj_id: str, pool: str, attributes: dict[str, Any]) -> None:
        """Nothing to change: the subscription and the namespace are the object."""

    def _state(self, subscription: str) -> str:
        return call("resources", "providers.get", subscription, self.namespace).registration_state

    def _id(self, subscription: str) -> str:
        return f"/subscriptions/{subscription}/providers/{self.namespace}"


class AciLocation(AzurePart):
    """The location, offering container groups to the subscription: checked, never created or deleted.
    While the subscription is not registered for Container Instances, the check waits for the apply."""

    part = "aci_location"
    server_owned = True
    needs = ("container_instance_provider",)
    template_variables = ("subscription_id",)

    def desired(self, pool: str, config: AzureInfra) -> dict[str, Any]:
        return {"subscription_id": config.subscription(), "location": config.location}

    def template_defaults(self, pool: str, config: AzureInfra) -> dict[str, Any]:
        return {"subscription_id": config.subscription()}

    def read(self, client, sought: list[Sought]) -> list[LiveObject]:
        # Only configured pools are checked: a location only in state is just forgotten.
        found = []
        for item in sought:
            if item.desired is not None:
                try:
                    found.append(self._checked(item.name, item.desired))
                except CloudError as exc:
                    if exc.code != UNREGISTERED:
                        raise
        return found

    def adopt_reason(self, pool: str, obj: LiveObject) -> str | None:
        return f"{obj.attributes['location']} offers container groups to the subscription: taken into state"

    def create(self, client, pool: str, attributes: dict[str, Any]) -> str:
        return self._checked(pool, attributes).id

    def update(self, client, obj_id: str, pool: str, attributes: dict[str, Any]) -> None:
        """Nothing to change: the subscription and the location are the object."""

    @staticmethod
    def _checked(name: str, attributes: dict[str, Any]) -> LiveObject:
        subscription, location = attributes["subscription_id"], attributes["location"]
        capabilities = call("containerinstance", "location.list_capabilities", subscription, location)
        if not any((c.resource_type or "").lower() == "containergroups" for c in capabilities):
            raise CloudError(f"Microsoft.ContainerInstance:Location.ListCapabilities: the location {location} offers no "
                             f"container groups to the subscription {subscription}")
        return LiveObject(f"/subscriptions/{subscription}/providers/Microsoft.ContainerInstance/locations/{location}", name,
                          {"subscription_id": subscription, "location": location})


class ResourceGroup(AzurePart):
    part = "resource_group"
    template_variable = "resource_group_name"

    def settings(self, pool: str, config: AzureInfra) -> dict[str, Any]:
        return {"name": config.names(pool)["resource_group"], "location": config.location}

    def read(self, client, sought: list[Sought]) -> list[LiveObject]:
        found = []
        for item in sought:
            subscription, name = _parse(item.id)[:2] if item.id else (item.attributes["subscription_id"], item.attributes["name"])
            group = call("resources", "resource_groups.get", subscription, name, missing=True)
            if group is not None:
                found.append(LiveObject(_group_id(subscription, group.name), item.name, {
                    "subscription_id": subscription, "name": group.name, "location": _location(group.location),
                    "tags": _ours(group.tags),
                }))
        return found

    def create(self, client, pool: str, attributes: dict[str, Any]) -> str:
        subscription, name = attributes["subscription_id"], attributes["name"]
        call("resources", "resource_groups.create_or_update", subscription, name,
             {"location": attributes["location"], "tags": attributes["tags"]})
        return _group_id(subscription, name)

    def update(self, client, obj_id: str, pool: str, attributes: dict[str, Any]) -> None:
        subscription, name, _ = _parse(obj_id)
        group = call("resources", "resource_groups.get", subscription, name)
        call("resources", "resource_groups.update", subscription, name, {"tags": {**(group.tags or {}), **attributes["tags"]}})

    def delete(self, client, obj_id: str) -> None:
        subscription, name, _ = _parse(obj_id)
        # Deleting a group deletes all it holds: what the pool made is gone by now, anything else is someone's.
        others = [r.id for r in call("resources", "resources.list_by_resource_group", subscription, name, missing=True) or []]
        if others:
            raise CloudError(f"Microsoft.Resources:ResourceGroups.Delete: not deleting the resource group {name}: it holds "
                             f"resources prefect-provider did not make: {', '.join(sorted(others))}")
        call("resources", "resource_groups.begin_delete", subscription, name, missing=True)

    def template_value(self, obj_id: str) -> Any:
        return _parse(obj_id)[1]


# Microsoft Entra (Microsoft Graph) --------------------------------------------------------------


def _application(object_id: str) -> dict[str, Any] | None:
    return graph("GET", f"/applications/{object_id}", "GetApplication", missing=True)


def _replicated_application(object_id: str) -> dict[str, Any]:
    """The app registration, which exists (it is in state): a 404 is Entra not having replicated it yet."""
    application = _application(object_id)
    if application is None:
        raise CloudError(f"graph:GetApplication: the app registration applications/{object_id} does not exist",
                         code="Request_ResourceNotFound")
    return application


def _application_by_client_id(client_id: str) -> dict[str, Any] | None:
    return graph("GET", f"/applications(appId='{client_id}')", "GetApplication", missing=True)


def _odata(value: str) -> str:
    return value.replace("'", "''")


class AppRegistration(AzurePart):
    """The app registration Prefect signs in as. Display names are not unique: the one with the
    pool's tag is the pool's, others are left alone."""

    part = "app_registration"

    def desired(self, pool: str, config: AzureInfra) -> dict[str, Any]:
        return {"name": config.names(pool)["app_registration"], "tags": {TAG: pool}}

    def read(self, client, sought: list[Sought]) -> list[LiveObject]:
        found = []
        for item in sought:
            if item.id:
                application = _application(item.id.rsplit("/", 1)[1])
            else:
                listed = graph("GET", "/applications", "ListApplications", params={
                    "$filter": f"displayName eq '{_odata(item.attributes['name'])}'"})["value"]
                application = next((a for a in listed if _tag_strings(a.get("tags") or []).get(TAG) == item.pool), None)
            if application is not None:
                found.append(LiveObject(f"applications/{application['id']}", item.name, {
                    "name": application["displayName"], "tags": _tag_strings(application.get("tags") or []),
                }))
        return found

    def create(self, client, pool: str, attributes: dict[str, Any]) -> str:
        application = graph("POST", "/applications", "CreateApplication", body={
            "displayName": attributes["name"], "signInAudience": "AzureADMyOrg", "tags": [f"{TAG}={pool}"],
            "notes": f"Starts the Azure Container Instances of the Prefect work pool {pool}",
        })
        return f"applications/{application['id']}"

    def update(self, client, obj_id: str, pool: str, attributes: dict[str, Any]) -> None:
        application = _application(obj_id.rsplit("/", 1)[1]) or {}
        others = [t for t in application.get("tags") or [] if not t.startswith(TAG + "=")]
        graph("PATCH", f"/{obj_id}", "UpdateApplication", body={"displayName": attributes["name"], "tags": [*others, f"{TAG}={pool}"]})

    def delete(self, client, obj_id: str) -> None:
        # Its service principal and client secrets go with it.
        graph("DELETE", f"/{obj_id}", "DeleteApplication", missing=True)


class ServicePrincipal(AzurePart):
    part = "service_principal"
    needs = ("app_registration",)
    references = ("application",)

    def desired(self, pool: str, config: AzureInfra) -> dict[str, Any]:
        return {"application": part_address(pool, "app_registration"), "tags": {TAG: pool}}

    def read(self, client, sought: list[Sought]) -> list[LiveObject]:
        found = []
        for item in sought:
            if item.id:
                principal = graph("GET", f"/{item.id}", "GetServicePrincipal", missing=True)
            else:
                listed = graph("GET", "/servicePrincipals", "ListServicePrincipals", params={
                    "$filter": f"tags/any(t:t eq '{_odata(f'{TAG}={item.pool}')}')"})["value"]
                principal = listed[0] if listed else None
            if principal is not None:
                application = _application_by_client_id(principal["appId"])
                found.append(LiveObject(f"servicePrincipals/{principal['id']}", item.name, {
                    "application": f"applications/{application['id']}" if application else None,
                    "tags": _tag_strings(principal.get("tags") or []),
                }))
        return found

    def create(self, client, pool: str, attributes: dict[str, Any]) -> str:
        def attempt() -> dict[str, Any]:
            application = _replicated_application(attributes["application"].rsplit("/", 1)[1])
            return graph("POST", "/servicePrincipals", "CreateServicePrincipal",
                         body={"appId": application["appId"], "tags": [f"{TAG}={pool}"]})

        principal = until_propagated("graph:CreateServicePrincipal", attempt, APP_REPLICATION)
        return f"servicePrincipals/{principal['id']}"

    def update(self, client, obj_id: str, pool: str, attributes: dict[str, Any]) -> None:
        principal = graph("GET", f"/{obj_id}", "GetServicePrincipal")
        others = [t for t in principal.get("tags") or [] if not t.startswith(TAG + "=")]
        graph("PATCH", f"/{obj_id}", "UpdateServicePrincipal", body={"tags": [*others, f"{TAG}={pool}"]})

    def delete(self, client, obj_id: str) -> None:
        graph("DELETE", f"/{obj_id}", "DeleteServicePrincipal", missing=True)


class AciCredentials(CredentialsBlockPart):
    """A client secret of the app registration, kept only in the ACI credentials block.

    `client_secret` says whether the block's secret is a current secret of its app ("active",
    "expired" or "missing"); secrets are told apart by their display name (the block's) and their
    hint (the first characters of the secret, which Microsoft Graph shows).
    """

    part = "aci_credentials"
    needs = ("service_principal", "contributor_role")  # a secret is issued once the principal may act
    references = ("application",)
    template_variable = "aci_credentials"
    block_type = CREDENTIALS_BLOCK_TYPE

    def desired(self, pool: str, config: AzureInfra) -> dict[str, Any]:
        return {"name": config.names(pool)["credentials_block"], "application": part_address(pool, "app_registration"),
                "client_secret": "active"}

    def live(self, data: dict[str, Any], attributes: dict[str, Any]) -> dict[str, Any]:
        application = _application_by_client_id(data["client_id"]) if data.get("client_id") else None
        secret = data.get("client_secret") or ""
        passwords = [p for p in (application or {}).get("passwordCredentials") or [] if self._holds(p, attributes, secret)]
        if not passwords:
            status = "missing"
        elif all(dt.datetime.fromisoformat(p["endDateTime"]) <= dt.datetime.now(dt.UTC)
                 for p in passwords):
            status = "expired"
        else:
            status = "active"
        return {"application": f"applications/{application['id']}" if application else None, "client_secret": status}

    def issue(self, attributes: dict[str, Any]) -> dict[str, Any]:
        return until_propagated("graph:AddPassword", lambda: self._issue(attributes), APP_REPLICATION)

    def _issue(self, attributes: dict[str, Any]) -> dict[str, Any]:
        object_id = attributes["application"].rsplit("/", 1)[1]
        application = _replicated_application(object_id)
        # The block held the app's earlier secrets of this name: they exist nowhere else, they go.
        for password in application.get("passwordCredentials") or []:
            if password.get("displayName") == self._secret_name(attributes):
                graph("POST", f"/applications/{object_id}/removePassword", "RemovePassword", body={"keyId": password["keyId"]})
        password = graph("POST", f"/applications/{object_id}/addPassword", "AddPassword",
                         body={"passwordCredential": {"displayName": self._secret_name(attributes)}})
        return {"client_id": application["appId"], "tenant_id": _tenant(), "client_secret": password["secretText"]}

    def revoke(self, attributes: dict[str, Any], issued: dict[str, Any]) -> None:
        object_id = attributes["application"].rsplit("/", 1)[1]
        for password in (_application(object_id) or {}).get("passwordCredentials") or []:
            if self._holds(password, attributes, issued["client_secret"]):
                graph("POST", f"/applications/{object_id}/removePassword", "RemovePassword", body={"keyId": password["keyId"]})

    @staticmethod
    def _secret_name(attributes: dict[str, Any]) -> str:
        return f"prefect-provider {CREDENTIALS_BLOCK_TYPE}/{attributes['name']}"

    def _holds(self, password: dict[str, Any], attributes: dict[str, Any], secret: str) -> bool:
        """Whether the app's password credential is the block's `secret`."""
        hint = password.get("hint")
        return password.get("displayName") == self._secret_name(attributes) and bool(hint) and secret.startswith(hint)


# Role assignments ----------------------------------------------------------------------------


class RoleAssignment(AzurePart):
    """A built-in role for a principal on a scope. Assignments take no tags: the name is derived
    from the pool, the part and the scope, and another principal means a new assignment of that name."""

    role: ClassVar[str]

    def scope(self, pool: str, config: AzureInfra) -> str:
        raise NotImplementedError

    def principal(self, pool: str, config: AzureInfra) -> str:
        """The `principal` attribute: what names the principal (an address or an ARM id)."""
        raise NotImplementedError

    def principal_id(self, principal: str) -> str | None:
        """The object id of the principal the (resolved) attribute names; None: it does not exist."""
        raise NotImplementedError

    def live_principal(self, principal_id: str, attributes: dict[str, Any]) -> str:
        """The `principal` attribute of an assignment to `principal_id`."""
        raise NotImplementedError

    def desired(self, pool: str, config: AzureInfra) -> dict[str, Any]:
        return {"scope": self.scope(pool, config), "role": self.role, "principal": self.principal(pool, config)}

    def assignment_id(self, pool: str, scope: str) -> str:
        name = uuid.uuid5(uuid.NAMESPACE_URL, f"prefect-provider/{pool}/{self.part}/{scope.lower()}")
        return f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"

    def read(self, client, sought: list[Sought]) -> list[LiveObject]:
        found = []
        for item in sought:
            obj_id = item.id or self.assignment_id(item.pool, item.attributes["scope"])
            assignment = call("authorization", "role_assignments.get_by_id", _parse(obj_id)[0], obj_id, missing=True)
            if assignment is None:
                continue
            role = next((r for r, guid in ROLE_IDS.items() if assignment.role_definition_id.lower().endswith(guid)), None)
            scope = item.attributes["scope"] if _same(assignment.scope, item.attributes["scope"]) else assignment.scope
            found.append(LiveObject(obj_id, item.name, {
                "scope": scope, "role": role or assignment.role_definition_id,
                "principal": self.live_principal(assignment.principal_id, item.attributes),
            }))
        return found

    def adopt_reason(self, pool: str, obj: LiveObject) -> str | None:
        return f"the {obj.attributes['role']} assignment named for this pool exists: taken into state"

    def create(self, client, pool: str, attributes: dict[str, Any]) -> str:
        obj_id = self.assignment_id(pool, attributes["scope"])
        self._assign(obj_id, attributes)
        return obj_id

    def update(self, client, obj_id: str, pool: str, attributes: dict[str, Any]) -> None:
        # An assignment cannot change: another principal is a new assignment under the same name.
        self.delete(client, obj_id)
        self._assign(obj_id, attributes)

    def delete(self, client, obj_id: str) -> None:
        call("authorization", "role_assignments.delete_by_id", _parse(obj_id)[0], obj_id, missing=True)

    def _assign(self, obj_id: str, attributes: dict[str, Any]) -> None:
        until_propagated("Microsoft.Authorization:RoleAssignments.Create", lambda: self._assign_once(obj_id, attributes),
                         PRINCIPAL_REPLICATION)

    def _assign_once(self, obj_id: str, attributes: dict[str, Any]) -> None:
        subscription = _parse(obj_id)[0]
        principal = self.principal_id(attributes["principal"])
        if principal is None:
            raise CloudError(f"Microsoft.Authorization:RoleAssignments.Create: the principal {attributes['principal']} does not exist",
                             code="PrincipalNotFound")
        try:
            call("authorization", "role_assignments.create_by_id", subscription, obj_id, {
                "role_definition_id": f"/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/"
                                      f"{ROLE_IDS[attributes['role']]}",
                "principal_id": principal, "principal_type": "ServicePrincipal",
            })
        except CloudError as exc:
            if "RoleAssignmentExists" not in str(exc):
                raise
            role_id = ROLE_IDS[attributes["role"]]
            theirs = [a.id for a in call("authorization", "role_assignments.list_for_scope", subscription, attributes["scope"],
                                         filter=f"principalId eq '{principal}'")
                      if a.role_definition_id.lower().endswith(role_id) and _same(a.scope, attributes["scope"])]
            raise CloudError(f"{exc} The principal already holds {attributes['role']} on {attributes['scope']} through "
                             f"{', '.join(theirs) or 'an assignment'}, which prefect-provider did not make: delete it, and the "
                             "next apply makes the pool's own.") from None


class ContributorRole(RoleAssignment):
    """Contributor for the service principal on the resource group: what it needs to run containers there."""

    part = "contributor_role"
    needs = ("resource_group", "service_principal")
    references = ("principal",)
    role = "Contributor"

    def scope(self, pool: str, config: AzureInfra) -> str:
        return _group_id(config.subscription(), config.names(pool)["resource_group"])

    def principal(self, pool: str, config: AzureInfra) -> str:
        return part_address(pool, "service_principal")

    def principal_id(self, principal: str) -> str | None:
        return principal.rsplit("/", 1)[1]

    def live_principal(self, principal_id: str, attributes: dict[str, Any]) -> str:
        return f"servicePrincipals/{principal_id}"


class AcrPullRole(RoleAssignment):
    """AcrPull for the managed identity on the registry: what lets containers pull its images."""

    part = "acr_pull_role"
    needs = ("identity", "container_registry")
    role = "AcrPull"

    def scope(self, pool: str, config: AzureInfra) -> str:
        names = config.names(pool)
        return ContainerRegistry.arm_id(config.subscription(), names["resource_group"], names["registry"])

    def principal(self, pool: str, config: AzureInfra) -> str:
        names = config.names(pool)
        return Identity.arm_id(config.subscription(), names["resource_group"], names["identity"])

    def principal_id(self, principal: str) -> str | None:
        subscription, group, name = _parse(principal)
        identity = call("msi", "user_assigned_identities.get", subscription, group, name, missing=True)
        return identity.principal_id if identity else None

    def live_principal(self, principal_id: str, attributes: dict[str, Any]) -> str:
        return attributes["principal"] if _same(self.principal_id(attributes["principal"]), principal_id) else f"principals/{principal_id}"


# The registry and the identity ------------------------------------------------------------------


class ArmResource(AzurePart):
    """A tagged resource in the pool's resource group."""

    needs = ("resource_group",)
    client: ClassVar[str]
    group: ClassVar[str]  # the client's operations group
    name_key: ClassVar[str]  # the key of its name in AzureInfra.names

    def settings(self, pool: str, config: AzureInfra) -> dict[str, Any]:
        names = config.names(pool)
        return {"resource_group": names["resource_group"], "name": names[self.name_key], "location": config.location}

    def live(self, resource: Any) -> dict[str, Any]:
        """The attributes of the resource beyond its place and tags."""
        return {}

    def read(self, client, sought: list[Sought]) -> list[LiveObject]:
        found = []
        for item in sought:
            subscription, group, name = _parse(item.id) if item.id else (
                item.attributes["subscription_id"], item.attributes["resource_group"], item.attributes["name"])
            resource = call(self.client, f"{self.group}.get", subscription, group, name, missing=True)
            if resource is None:
                self.check_absent(item)
                continue
            found.append(LiveObject(self.arm_id(subscription, group, resource.name), item.name, {
                "subscription_id": subscription, "resource_group": group, "name": resource.name,
                "location": _location(resource.location), **self.live(resource), "tags": _ours(resource.tags),
            }))
        return found

    def check_absent(self, item: Sought) -> None:
        """Called for a configured resource not found in its group (e.g. to see that its name is free)."""

    def template_value(self, obj_id: str) -> Any:
        return obj_id


class ContainerRegistry(ArmResource):
    """An Azure Container Registry, Basic, without the admin user (containers pull as the identity)."""

    part = "container_registry"
    needs = ("resource_group", "container_registry_provider")
    client, group, name_key = "containerregistry", "registries", "registry"

    @staticmethod
    def arm_id(subscription: str, group: str, name: str) -> str:
        return f"{_group_id(subscription, group)}/providers/Microsoft.ContainerRegistry/registries/{name}"

    def settings(self, pool: str, config: AzureInfra) -> dict[str, Any]:
        return {**super().settings(pool, config), "sku": "Basic", "admin_user_enabled": False}

    def live(self, resource: Any) -> dict[str, Any]:
        return {"sku": resource.sku.name, "admin_user_enabled": bool(resource.admin_user_enabled)}

    def check_absent(self, item: Sought) -> None:
        if item.desired is None:
            return
        status = call("containerregistry", "registries.check_name_availability", item.attributes["subscription_id"],
                      {"name": item.attributes["name"], "type": "Microsoft.ContainerRegistry/registries"}, missing=True)
        if status is not None and not status.name_available:  # None: not registered for registries yet, nothing to ask
            raise CloudError(f"Microsoft.ContainerRegistry:Registries.CheckNameAvailability: the registry name "
                             f"{item.attributes['name']} is taken ({status.message}): registry names are global, set registry_name")

    def create(self, client, pool: str, attributes: dict[str, Any]) -> str:
        subscription, group, name = attributes["subscription_id"], attributes["resource_group"], attributes["name"]
        registry = call("containerregistry", "registries.begin_create", subscription, group, name, {
            "location": attributes["location"], "sku": {"name": attributes["sku"]}, "tags": attributes["tags"],
            "properties": {"adminUserEnabled": attributes["admin_user_enabled"]},
        })
        if registry.login_server != f"{name}.{registry_domain()}":
            raise CloudError(f"Microsoft.ContainerRegistry:Registries.Create: the registry's login server is {registry.login_server}, "
                             f"not {name}.{registry_domain()}: set AZURE_SDK_CLOUD_CONF to the registry's cloud")
        return self.arm_id(subscription, group, name)

    def update(self, client, obj_id: str, pool: str, attributes: dict[str, Any]) -> None:
        subscription, group, name = _parse(obj_id)
        registry = call("containerregistry", "registries.get", subscription, group, name)
        call("containerregistry", "registries.begin_update", subscription, group, name, {
            "sku": {"name": attributes["sku"]}, "tags": {**(registry.tags or {}), **attributes["tags"]},
            "properties": {"adminUserEnabled": attributes["admin_user_enabled"]},
        })

    def delete(self, client, obj_id: str) -> None:
        # Images pushed to it go with it (destroy tears the pool's cloud side down).
        call("containerregistry", "registries.begin_delete", *_parse(obj_id), missing=True)

    def outputs(self, obj_id: str) -> dict[str, Any]:
        return {"registry_url": f"{_parse(obj_id)[2]}.{registry_domain()}"}


class Identity(ArmResource):
    """The user-assigned identity container groups pull images as."""

    part = "identity"
    needs = ("resource_group", "managed_identity_provider")
    client, group, name_key = "msi", "user_assigned_identities", "identity"
    template_variables = ("identities", "image_registry")

    @staticmethod
    def arm_id(subscription: str, group: str, name: str) -> str:
        return f"{_group_id(subscription, group)}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"

    def template_defaults(self, pool: str, config: AzureInfra) -> dict[str, Any]:
        me = reference(pool, self.part)
        return {"identities": [me],
                "image_registry": {"registry_url": f"{config.names(pool)['registry']}.{registry_domain()}", "identity": me}}

    def create(self, client, pool: str, attributes: dict[str, Any]) -> str:
        subscription, group, name = attributes["subscription_id"], attributes["resource_group"], attributes["name"]
        call("msi", "user_assigned_identities.create_or_update", subscription, group, name,
             {"location": attributes["location"], "tags": attributes["tags"]})
        return self.arm_id(subscription, group, name)

    def update(self, client, obj_id: str, pool: str, attributes: dict[str, Any]) -> None:
        subscription, group, name = _parse(obj_id)
        identity = call("msi", "user_assigned_identities.get", subscription, group, name)
        call("msi", "user_assigned_identities.update", subscription, group, name,
             {"tags": {**(identity.tags or {}), **attributes["tags"]}})

    def delete(self, client, obj_id: str) -> None:
        call("msi", "user_assigned_identities.delete", *_parse(obj_id), missing=True)


class AzureProvisioner(Provisioner):
    provider = "azure"
    config = AzureInfra

    def __init__(self) -> None:
        self._parts = [*(ResourceProvider(part, namespace) for part, namespace in PROVIDERS.items()), AciLocation(), ResourceGroup(), AppRegistration(), ServicePrincipal(), AciCredentials(), ContributorRole(),
                       ContainerRegistry(), Identity(), AcrPullRole()]

    def parts(self, config: AzureInfra) -> list[InfraPart]:
        return list(self._parts)

    def all_parts(self) -> list[InfraPart]:
        return list(self._parts)
