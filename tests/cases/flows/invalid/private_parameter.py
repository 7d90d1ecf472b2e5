# error: 6 | private_parameter | Prefect cannot build the parameter schema
from prefect import flow


@flow(validate_parameters=False)
def private_parameter(_private: int = 0):
    pass
