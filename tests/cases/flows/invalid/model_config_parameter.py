# error: 6 | model_config_parameter | Prefect refuses this flow
from prefect import flow


@flow
def model_config_parameter(model_config: dict = None):
    pass
