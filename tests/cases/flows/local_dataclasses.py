"""Dataclasses (the standard library's and pydantic's) and named tuples defined in the flow file."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

import pydantic.dataclasses

from prefect import flow


@dataclass
class Point:
    x: int
    when: datetime = datetime(2020, 1, 1)
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Doc:
    """A documented one."""

    a: int = 1


@pydantic.dataclasses.dataclass
class Checked:
    name: str
    size: int = pydantic.Field(3, ge=0)


class Pair(NamedTuple):
    left: int
    right: int = 0


@flow
def shapes(p: Point, checked: Checked, d: Doc = Doc(), pair: Pair = Pair(1), points: list[Point] = []):
    pass
