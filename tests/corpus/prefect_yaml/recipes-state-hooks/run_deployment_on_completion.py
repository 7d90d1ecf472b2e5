"""This examples uses a state change hook to trigger a deployment when a flow run completes.

In this case, the downstream deployment accepts the upstream flow run's result as a
parameter, therefore we need result persistence to be enabled on the upstream flow.
"""
# Stub: decorators (see SOURCE.md), signatures and docstrings of PrefectHQ/prefect-recipes
# flows-advanced/using_state_hooks/run_deployment_on_completion.py.

from prefect import flow


@flow(persist_result=True)
def foobar() -> str:
    return "foobar"


@flow(log_prints=True)
def triggered_flow(prev_result: str) -> str:
    pass
