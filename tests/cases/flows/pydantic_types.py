"""pydantic types and Field defaults in flow signatures."""

from typing import Annotated, Optional

import pydantic
from pydantic import Field, HttpUrl, PositiveInt, SecretStr, conint, constr

from prefect import flow


@flow
def pydantic_fields(
    limit: int = Field(5, description="At most this many", ge=1),
    name: str = Field(default="n", title="Ignored title", json_schema_extra={"position": 99, "extra": True}),
    tags: list[str] = Field(default_factory=list),
    ratio: Annotated[float, Field(ge=0, le=1)] = 0.5,
    count: Annotated[int, pydantic.Field(gt=0, description="from Annotated")] = 1,
):
    """Fields.

    Args:
        limit: docstring loses to Field(description=...)
        name: docstring wins here
    """


@flow
def pydantic_types(
    token: SecretStr,
    url: HttpUrl = "https://example.com",
    size: PositiveInt = 3,
    small: conint(ge=0, lt=10) = 0,
    code: constr(pattern=r"^[A-Z]{3}$") = "ABC",
    maybe_url: Optional[HttpUrl] = None,
):
    pass
