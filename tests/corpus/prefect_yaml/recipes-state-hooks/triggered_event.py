"""This example uses `emit_event` to trigger a deployment when a flow run completes.

See the `prefect.yaml` for the corresponding trigger definition.
"""
# Stub: the flows foobar_event and event_triggered_flow live in PrefectHQ/prefect-recipes
# flows-advanced/using_state_hooks/emit_event_on_completion.py (see SOURCE.md).

from prefect import flow


@flow(persist_result=True)
def foobar_event() -> str:
    return "foobar"


@flow(log_prints=True)
def event_triggered_flow(prev_result: str) -> str:
    pass
