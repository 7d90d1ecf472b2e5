"""`provision-infra POOL`: one pool's cloud side, planned and applied by the same engine as `apply`."""

from __future__ import annotations

import dataclasses

from provider.config import Configuration
from provider.errors import PlanError
from provider.state import State
from provisioners.base import INFRA_KIND
from resources.base import Address


def infra_scope(config: Configuration, state: State | None, pool: str, destroy: bool) -> tuple[Configuration, list[str]]:
    """The configuration to plan and the addresses to target for one pool's infrastructure.

    The pool is targeted with its parts, as its template takes their outputs. To destroy, the
    pool's `provision_infra` is taken out of the configuration: the plan deletes the parts in state
    (dependents first) and gives the pool its template without their outputs.
    """
    address = Address("work_pools", pool)
    resource = config.resources.get(address)
    if resource is None:
        raise PlanError(f"{address} is not declared in {config.directory}")
    prefix = pool + "/"
    parts = [a for a in config.resources if a.kind == INFRA_KIND and a.name.startswith(prefix)]
    if not destroy:
        if not parts:
            raise PlanError(f"{address} ({resource.location}) has no provision_infra")
        return config, [str(address), *map(str, parts)]
    recorded = [key for key, record in (state.resources.items() if state else ())
                if record.kind == INFRA_KIND and record.name.startswith(prefix)]
    resources = {a: r for a, r in config.resources.items() if a not in parts}
    resources[address] = dataclasses.replace(
        resource,
        spec=resource.spec.model_copy(update={"provision_infra": None}),
        depends_on=[d for d in resource.depends_on if d not in parts],
    )
    return dataclasses.replace(config, resources=resources), [str(address), *recorded]
