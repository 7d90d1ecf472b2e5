"""A Prefect workspace as a Pulumi program, with prefect-provider's dynamic providers.

    pulumi config set prefect:apiUrl http://127.0.0.1:4200/api    # or set PREFECT_API_URL
    pulumi config set --secret repoToken ghp_example
    pulumi up

Names end with the stack's name, so `dev` and `prod` stacks can share one workspace.
"""

import pulumi

from provider.pulumi import Block, Deployment, Variable, WorkPool, WorkQueue

config = pulumi.Config()
stack = pulumi.get_stack()

# A pool with its queues declared inline: written in ascending priority, as `apply` writes them.
pool = WorkPool(
    "etl-pool",
    name=f"etl-{stack}",
    type="process",
    description="ETL work",
    concurrency_limit=10,
    queues={
        "critical": {"priority": 1, "concurrency_limit": 1},
        "high": {"priority": 5, "concurrency_limit": 3},
        "low": {"priority": 10},
    },
)

# A queue as a resource of its own: the server deletes it with its pool, so it goes (and comes
# back) with the pool.
backfill = WorkQueue(
    "backfill-queue",
    work_pool=pool.name,
    name="backfill",
    priority=20,
    paused=True,
    opts=pulumi.ResourceOptions(deleted_with=pool, replace_with=[pool]),
)

# The block's data is a Pulumi secret; its secret fields are fingerprints in the outputs.
repo_token = Block(
    "repo-token",
    block_type_slug="secret",
    name=f"repo-token-{stack}",
    data={"value": config.require_secret("repoToken")},
)

branch = Variable("deployment-branch", name=f"deployment_branch_{stack}", value="main", tags=["git"])

# work_pool is the pool's output: Pulumi creates the pool (and its queues) first.
nightly = Deployment(
    "etl-nightly",
    flow_name="etl",
    name=f"nightly-{stack}",
    entrypoint="flows/etl.py:etl",
    work_pool=pool.name,
    work_queue="high",
    parameters={"full_refresh": False},
    schedules=[{"slug": "nightly", "cron": "0 2 * * *", "timezone": "America/Chicago"}],
    pull_steps=[{
        "prefect.deployments.steps.git_clone": {
            "repository": "https://github.com/org/repo.git",
            # Prefect's own template, resolved by the worker at run time: kept verbatim.
            "access_token": repo_token.name.apply(lambda name: "{{ prefect.blocks.secret." + name + " }}"),
        },
    }],
)

pulumi.export("work_pool_id", pool.id)
pulumi.export("queues", pool.children)  # work_queues.POOL/QUEUE -> id and attributes
pulumi.export("base_job_template", pool.attributes["base_job_template"])  # the server's default
pulumi.export("deployment_id", nightly.id)
