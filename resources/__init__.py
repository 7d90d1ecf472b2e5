"""Resource kinds, one module each. The order here is the order of the JSON Schema and of output."""

from __future__ import annotations

from resources.account_members import AccountMembers
from resources.accounts import Accounts
from resources.account_roles import AccountRoles
from resources.automations import Automations
from resources.block_types import BlockTypes
from resources.base import Address, Catalog, ResourceKind
from resources.blocks import Blocks
from resources.concurrency_limits import ConcurrencyLimits
from resources.deployments import Deployments
from resources.flows import Flows
from resources.infra import Infra
from resources.object_access import ObjectAccess
from resources.resource_slas import ResourceSlas
from resources.service_accounts import ServiceAccounts
from resources.task_run_concurrency_limits import TaskRunConcurrencyLimits
from resources.teams import Teams
from resources.user_api_keys import UserApiKeys
from resources.variables import Variables
from resources.webhooks import Webhooks
from resources.workspace_access import WorkspaceAccess
from resources.workspace_roles import WorkspaceRoles
from resources.workspaces import Workspaces
from resources.work_pools import WorkPools
from resources.work_queues import WorkQueues
from resources.worker_metadata import WorkerMetadata

CATALOG = Catalog([WorkPools(), WorkQueues(), Variables(), BlockTypes(), Blocks(), Flows(), Deployments(), Automations(),
                   Webhooks(), ConcurrencyLimits(), TaskRunConcurrencyLimits(), Infra(), WorkerMetadata(),
                   ServiceAccounts(), Teams(), Workspaces(), WorkspaceRoles(), WorkspaceAccess(), AccountRoles(),
                   ObjectAccess(), ResourceSlas(),
                   UserApiKeys(), AccountMembers(), Accounts()])
KINDS: dict[str, ResourceKind] = CATALOG.kinds

__all__ = ["CATALOG", "KINDS", "Address", "Catalog", "ResourceKind"]
