# Stub: Prefect's docs show no code for these flows; parameters as the prefect.yaml passes them.
from prefect import flow


@flow
def my_flow(number, message):
    pass


@flow
def yet_another_flow():
    pass
