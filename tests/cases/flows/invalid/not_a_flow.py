# error: 6 | entrypoint | function 'not_a_flow' is not a flow
from prefect import task


@task
def not_a_flow():
    pass
