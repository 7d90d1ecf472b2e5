# Stub: decorator, signature and docstring of extract in AuckeBos/bunq-ynab-connect@d723b322 bunq_ynab_connect/flows.py.
from prefect import flow
from prefect.task_runners import ConcurrentTaskRunner


@flow(validate_parameters=False, task_runner=ConcurrentTaskRunner())
def extract():
    """
    Run all extractors.
    Run BunqPaymentExtractor in paralel with YnabBudgetExtractor and YnabAccountExtractor
    """
