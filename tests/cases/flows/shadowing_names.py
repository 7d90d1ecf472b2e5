"""Parameter names that collide with pydantic.BaseModel attributes (Prefect aliases them as `name__`)."""

from prefect import flow


@flow
def shadows_basemodel(json, copy, schema: dict, validate: bool = True, dict=None, construct: int = 0):
    """Parameter names that collide with pydantic.BaseModel attributes.

    Args:
        json: the document
        schema: its schema
    """


@flow(validate_parameters=False)
def unvalidated(model_config: dict = None, model_dump: bool = False):
    pass
