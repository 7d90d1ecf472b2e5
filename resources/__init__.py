"""Resource kinds, one module each. The order here is the order of the JSON Schema and of output."""

from __future__ import annotations

from resources.base import Address, ResourceKind
from resources.blocks import Blocks
from resources.variables import Variables
from resources.work_pools import WorkPools
from resources.work_queues import WorkQueues

KINDS: dict[str, ResourceKind] = {k.kind: k for k in (WorkPools(), WorkQueues(), Variables(), Blocks())}

__all__ = ["KINDS", "Address", "ResourceKind"]
