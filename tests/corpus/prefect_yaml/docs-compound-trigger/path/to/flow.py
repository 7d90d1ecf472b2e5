# Stub: decorator and signature of decorated_fn as the same docs page shows it.
from prefect import flow


@flow(log_prints=True)
def decorated_fn(param_1: str):
    pass
