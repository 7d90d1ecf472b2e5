# error: 6 | reserved_parameter | 'wait_for' is a reserved argument name
from prefect import flow


@flow
def reserved_parameter(wait_for: list = None):
    pass
