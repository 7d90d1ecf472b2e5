"""Less common constructs: NewType, Literal of enum members, containers of local enums, odd defaults."""

import typing
from enum import Enum
from typing import Annotated, Literal, NewType, Union

import pydantic
from pydantic import BaseModel, Field

from prefect import flow

UserId = NewType("UserId", int)


class Size(int, Enum):
    SMALL = 1
    LARGE = 2


class Shape(BaseModel):
    size: Size = Size.SMALL
    tags: dict[str, Size] = {}


@flow
def misc(
    user: UserId,
    size: Literal[Size.SMALL, Size.LARGE] = Size.SMALL,
    sizes: dict[str, Size] = {"a": Size.LARGE},
    kinds: list[Literal["a", "b"]] = ["a"],
    shape: Union[Shape, None] = None,
    shapes: typing.List[Shape] = [],
    titled: Annotated[int, Field(title="Custom title", description="from Field")] = 0,
    numbers: set[int] = {1, 2},
    frozen: frozenset[str] = frozenset({"x"}),
    raw: bytes = b"raw",
    big: float = float("inf"),
    hexed: int = int("ff", 16),
    strict: pydantic.StrictInt = 1,
    created: Shape = Shape(size=Size.LARGE),
):
    """Misc.

    Args:
        titled: docstring loses to Annotated Field description
        numbers: a set
    """
