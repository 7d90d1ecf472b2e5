# error: None | entrypoint | no function 'missing_function' at the top level
from prefect import flow


@flow
def another_flow():
    pass
