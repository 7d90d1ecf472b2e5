# Stub: Prefect's docs show no code for this flow.
from prefect import flow


@flow
def my_other_flow():
    pass
