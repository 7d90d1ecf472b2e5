"""Enums and pydantic models defined in the flow file: rebuilt from their fields, never run."""

from enum import Enum, IntEnum, auto
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from prefect import flow


class Color(str, Enum):
    RED = "red"
    GREEN = "green"


class Priority(IntEnum):
    """How urgent."""

    LOW = 1
    HIGH = 2


class Step(Enum):
    EXTRACT = auto()
    LOAD = auto()

    def label(self) -> str:
        return self.name.lower()


class Source(BaseModel):
    model_config = ConfigDict(title="A source", extra="forbid")

    url: str
    retries: int = 3


class LoadConfig(BaseModel):
    """How to load."""

    table: str
    batch_size: int = Field(100, ge=1, description="rows per batch")
    colors: list[Color] = []
    source: Optional[Source] = None

    @field_validator("table")
    @classmethod
    def lower(cls, value: str) -> str:
        return value.lower()

    @property
    def qualified(self) -> str:
        return f"public.{self.table}"


@flow(name="load-with-config")
def load_with_config(
    config: LoadConfig,
    color: Color = Color.RED,
    priority: Priority = Priority.HIGH,
    steps: list[Step] = [Step.EXTRACT],
    source: Source = Source(url="https://example.com/data.csv"),
    limit: int = 10,
):
    """Load a table.

    Args:
        config: what to load
    """
