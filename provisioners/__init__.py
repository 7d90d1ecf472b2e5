"""Cloud routines behind a work pool's `provision_infra`, one module per provider.

`ProvisionInfra` is the pydantic type of the `provision_infra` field, discriminated on `provider`;
a new provider adds its config model there and its provisioner to PROVISIONERS. Part names are
unique across providers: a part is found by name alone (from an address in state).
"""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from provisioners.aws import AwsProvisioner
from provisioners.azure import AzureProvisioner
from provisioners.base import InfraConfig, InfraPart, Provisioner
from provisioners.gcp import GcpProvisioner

PROVISIONERS: dict[str, Provisioner] = {p.provider: p for p in (AwsProvisioner(), GcpProvisioner(), AzureProvisioner())}

# The `provision_infra` field: one model per provider, told apart by `provider`.
ProvisionInfra = Annotated[Union[tuple(p.config for p in PROVISIONERS.values())], Field(discriminator="provider")]  # noqa: UP007


def _parts() -> dict[str, InfraPart]:
    parts: dict[str, InfraPart] = {}
    for provisioner in PROVISIONERS.values():
        for part in provisioner.all_parts():
            if part.part in parts:
                raise TypeError(f"infra part {part.part!r} is defined twice")
            parts[part.part] = part
    return parts


PARTS: dict[str, InfraPart] = _parts()


def provisioner_for(config: InfraConfig) -> Provisioner:
    return PROVISIONERS[config.provider]


__all__ = ["PARTS", "PROVISIONERS", "ProvisionInfra", "provisioner_for"]
