# Stub: decorator and signature of my_flow in kevingrismore/version-testing-docker flow.py.
from prefect import flow


@flow(log_prints=True)
def my_flow():
    pass
