"""What a provisioner is: the cloud side of a push work pool, as a list of infra parts.

A pool's `provision_infra: {provider: ...}` names a provisioner. The provisioner lists the parts
it makes for that pool (an IAM role, a cluster, a network, a credentials block, ...); each part is
one resource the engine plans, applies, records in state and destroys like any other, at the
address `work_pools.POOL.infra.PART`. A part reads the live state of all its objects (of every
pool) at once, creates idempotently, converges an existing object to its attributes, deletes, and
gives the value its object fills into the pool's base job template.

Attributes that name another part hold its address (as configurations name other resources);
live objects hold that part's id there, turned back into the address through state (or among the
parts read together), so a part re-created with a new id makes the parts and the pool that refer
to it update.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict

from provider.errors import ApiError
from resources.base import Address, ApplyContext, LiveObject, report_progress

if TYPE_CHECKING:
    from provider.client import PrefectClient

# Every cloud object a provisioner makes carries this tag, valued with the pool's name: it is how
# an object left by an interrupted apply (or a lost state) is recognized as this pool's and adopted.
TAG = "prefect-provider:work-pool"
INFRA_KIND = "infra"  # the resource kind of the parts, addressed work_pools.POOL.infra.PART
INFRA_PARENT = "work_pools"  # the kind the parts belong to
# In a base job template default, a part's value to come: {"$infra": ADDRESS}, filled in at apply.
REF = "$infra"


class CloudError(ApiError):
    """A cloud API refused or failed a call; the message names the action (e.g. iam:CreateRole).
    `code` is the cloud's own error code (NoSuchEntity, PrincipalNotFound, SERVICE_DISABLED, ...)."""

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.code = code


# --- waiting for a cloud to catch up -------------------------------------------------------------

# The total a cloud gets to make an object it just made visible everywhere (seconds); the delays
# between attempts scale with it (1 s first, at most 1/8 of it), each with jitter.
PROPAGATION_WAIT_VARIABLE = "PREFECT_PROVIDER_PROPAGATION_WAIT"
PROPAGATION_WAIT = 180.0
PROPAGATION_ATTEMPTS = 12
T = TypeVar("T")


@dataclass(frozen=True)
class Propagation:
    """A documented "not there yet" answer of a cloud, right after something was made or enabled.

    `matches` tells the error apart; `waiting_for` and `check` word the progress lines and the
    final error ("waiting for Entra to replicate the app registration", "that the app registration
    still exists in the tenant").
    """

    waiting_for: str
    check: str
    matches: Callable[[Exception], bool]


def refused_with(*codes: str, saying: str = "") -> Callable[[Exception], bool]:
    """Matches a CloudError with one of the cloud's `codes` whose message holds `saying`."""
    return lambda exc: isinstance(exc, CloudError) and exc.code in codes and saying in str(exc)


def propagation_wait() -> float:
    value = os.environ.get(PROPAGATION_WAIT_VARIABLE)
    try:
        return max(0.0, float(value)) if value else PROPAGATION_WAIT
    except ValueError:
        raise CloudError(f"{PROPAGATION_WAIT_VARIABLE}={value!r}: expected a number of seconds") from None


def until_propagated(action: str, attempt: Callable[[], T], *propagations: Propagation) -> T:
    """`attempt()`, tried again while it fails with one of the `propagations` (a cloud not yet
    consistent), with growing jittered delays, each announced through the apply's progress, for
    at most PROPAGATION_ATTEMPTS tries and PREFECT_PROVIDER_PROPAGATION_WAIT seconds in all.
    The last failure names the action, what was waited for and what to check."""
    budget = propagation_wait()
    first_delay, longest_delay = budget / PROPAGATION_WAIT, budget / 8
    started = time.monotonic()
    for number in range(1, PROPAGATION_ATTEMPTS + 1):
        try:
            return attempt()
        except Exception as exc:
            propagation = next((p for p in propagations if p.matches(exc)), None)
            if propagation is None:
                raise
            waited = time.monotonic() - started
            # Full jitter: parallel applies of several pools do not retry in step.
            delay = random.uniform(0.5, 1.0) * min(longest_delay, first_delay * 2 ** (number - 1))
            if number == PROPAGATION_ATTEMPTS or waited + delay > budget:
                raise CloudError(
                    f"{action}: gave up waiting for {propagation.waiting_for} after {number} attempts in {waited:.0f} s "
                    f"(at most {budget:g} s, {PROPAGATION_WAIT_VARIABLE}); check {propagation.check}. Last error: {exc}",
                    code=getattr(exc, "code", None)) from None
            report_progress(f"waiting for {propagation.waiting_for}, {number}/{PROPAGATION_ATTEMPTS}…")
            time.sleep(delay)
    raise AssertionError("unreachable")  # the loop returns or raises


class InfraConfig(BaseModel):
    """A pool's `provision_infra`; each provider's model fixes `provider` to its own name."""

    model_config = ConfigDict(extra="forbid")

    # The work pool types this provider's infrastructure serves.
    pool_types: ClassVar[tuple[str, ...]] = ()

    provider: str

    def check(self) -> None:
        """Raise a FieldError for what only shows while planning (e.g. no region anywhere)."""


@dataclass
class Sought:
    """One part of one pool whose live object is read: what configuration and state say of it."""

    name: str  # POOL/PART
    desired: dict[str, Any] | None  # None: no longer configured, only in state
    id: str | None  # from state
    recorded: dict[str, Any] | None

    @property
    def pool(self) -> str:
        return self.name.rsplit("/", 1)[0]

    @property
    def attributes(self) -> dict[str, Any]:
        """Where to look: as configured, else as last applied."""
        return self.desired if self.desired is not None else self.recorded or {}


class InfraPart:
    """One cloud object of a pool's infrastructure. Instances are registered by `part` name."""

    part: str
    # Parts whose objects must exist first; destroyed after this one.
    needs: tuple[str, ...] = ()
    # Attributes holding another part's address (its id once applied): a value or a list of them.
    references: ClassVar[tuple[str, ...]] = ()
    # The base job template variable whose default this part's object fills.
    template_variable: ClassVar[str | None] = None
    # Further variables whose defaults `template_defaults` builds around this part's value (e.g. a
    # list holding it, or a mapping of it and configured values).
    template_variables: ClassVar[tuple[str, ...]] = ()
    # Objects the cloud owns (e.g. a default VPC): looked up instead of created, never deleted.
    server_owned: ClassVar[bool] = False
    # Another name, place (project, subscription, resource group, region, location, scope) or
    # network, or a property the cloud cannot change, is another object.
    replace_fields: ClassVar[frozenset[str]] = frozenset({
        "name", "region", "vpc", "cidr_block", "description", "project", "subscription_id", "resource_group", "location",
        "scope", "role"})

    def desired(self, pool: str, config: InfraConfig) -> dict[str, Any]:
        raise NotImplementedError

    def read(self, client: PrefectClient, sought: list[Sought]) -> list[LiveObject]:
        """The live objects of `sought` (several pools at once), named POOL/PART like them."""
        raise NotImplementedError

    def adopt_reason(self, pool: str, obj: LiveObject) -> str | None:
        """Why a live object not in state is this pool's and taken into state (None: it is not).

        By default: it carries the pool's tag, so an earlier apply of this pool made it.
        """
        if (obj.attributes.get("tags") or {}).get(TAG) == pool:
            return f"found with the tag {TAG}={pool}, left by an earlier apply: taken into state"
        return None

    def create(self, client: PrefectClient, pool: str, attributes: dict[str, Any]) -> str:
        """Make the object (references resolved to ids) and return its id."""
        raise NotImplementedError

    def update(self, client: PrefectClient, obj_id: str, pool: str, attributes: dict[str, Any]) -> None:
        """Make the object match every attribute; references may point at re-created objects."""
        raise NotImplementedError

    def delete(self, client: PrefectClient, obj_id: str) -> None:
        raise NotImplementedError

    def template_value(self, obj_id: str) -> Any:
        """The default this part's object gives `template_variable`."""
        return obj_id

    def template_defaults(self, pool: str, config: InfraConfig) -> dict[str, Any]:
        """Template variable -> the default this part gives it: a reference to its object
        (`{"$infra": ADDRESS}`, replaced by `template_value` at apply), a structure holding such
        references, or a configured value."""
        return {self.template_variable: reference(pool, self.part)} if self.template_variable else {}

    def outputs(self, obj_id: str) -> dict[str, Any]:
        """Values shown after an apply (e.g. a registry URL)."""
        return {}


class Provisioner:
    """The parts a provider makes for a pool, chosen by its configuration."""

    provider: ClassVar[str]
    config: ClassVar[type[InfraConfig]]

    def parts(self, config: InfraConfig) -> list[InfraPart]:
        raise NotImplementedError

    def all_parts(self) -> list[InfraPart]:
        """Every part any configuration may choose (for the registry)."""
        raise NotImplementedError


def part_address(pool: str, part: str) -> str:
    """The address of a pool's part, as attributes naming another part hold it."""
    return str(Address(INFRA_KIND, f"{pool}/{part}", INFRA_PARENT))


def reference(pool: str, part: str) -> dict[str, str]:
    """A template default standing for a part's value until apply fills it in."""
    return {REF: part_address(pool, part)}


class CredentialsBlockPart(InfraPart):
    """A credential made for the pool (a key, a client secret), kept only in a Prefect block of
    `block_type`: never in state, plans or output.

    Live attributes describe the block's credential (whose it is, and "active" or why not), so
    one deleted or revoked by hand, or one of another account, shows as drift and the next apply
    issues exactly one new credential. A block that already exists is adopted as it is: nothing
    is issued for it.
    """

    block_type: ClassVar[str]
    credential: ClassVar[str] = "credential"  # what is issued, in messages

    def live(self, data: dict[str, Any], attributes: dict[str, Any]) -> dict[str, Any]:
        """The attributes of a block with `data`, beside its name; `attributes` say where to look."""
        raise NotImplementedError

    def settings(self, attributes: dict[str, Any]) -> dict[str, Any]:
        """The block's fields that are not the credential (e.g. a project or tenant)."""
        return {}

    def needs_new_credential(self, live: dict[str, Any], attributes: dict[str, Any]) -> bool:
        """Whether the block's credential (as `live` describes it) must be replaced by a new one."""
        return live != {key: value for key, value in attributes.items() if key != "name"}

    def issue(self, attributes: dict[str, Any]) -> dict[str, Any]:
        """A new credential, as the block's fields; credentials issued before for the block go."""
        raise NotImplementedError

    def revoke(self, attributes: dict[str, Any], issued: dict[str, Any]) -> None:
        """Undo `issue` (the block did not take the credential, which then exists nowhere else)."""
        raise NotImplementedError

    def read(self, client: PrefectClient, sought: list[Sought]) -> list[LiveObject]:
        by_block = {f"{self.block_type}/{item.attributes['name']}": item for item in sought}
        found = []
        for block in _blocks().list(client, set(by_block)):
            item = by_block[block.name]
            found.append(LiveObject(block.id, item.name, {
                "name": block.name.split("/", 1)[1], **self.live(block.attributes["data"], item.attributes)}))
        return found

    def adopt_reason(self, pool: str, obj: LiveObject) -> str | None:
        return f"the block {self.block_type}/{obj.attributes['name']} exists in Prefect: taken into state, no new {self.credential}"

    def create(self, client: PrefectClient, pool: str, attributes: dict[str, Any]) -> str:
        name = f"{self.block_type}/{attributes['name']}"
        existing = _blocks().list(client, {name})
        if existing:
            self.update(client, existing[0].id, pool, attributes)
            return existing[0].id
        issued = self.issue(attributes)
        try:
            return _blocks().create(client, name, {"data": {**self.settings(attributes), **issued}}, ApplyContext())
        except Exception:
            self.revoke(attributes, issued)
            raise

    def update(self, client: PrefectClient, obj_id: str, pool: str, attributes: dict[str, Any]) -> None:
        data = client.get(f"/block_documents/{obj_id}", include_secrets=True)["data"]
        change = self.settings(attributes)
        if self.needs_new_credential(self.live(data, attributes), attributes):
            change.update(self.issue(attributes))
        client.patch(f"/block_documents/{obj_id}", {"data": change, "merge_existing_data": True})

    def delete(self, client: PrefectClient, obj_id: str) -> None:
        client.delete(f"/block_documents/{obj_id}")

    def template_value(self, obj_id: str) -> Any:
        return {"$ref": {"block_document_id": obj_id}}


def _blocks():
    from resources.blocks import Blocks  # the blocks kind reads and writes block documents

    return Blocks()
