"""A pydantic model and an enum defined in the flow file: only importing the file tells their schema."""

from enum import Enum

from pydantic import BaseModel, Field

from prefect import flow


class Color(str, Enum):
    RED = "red"
    GREEN = "green"


class LoadConfig(BaseModel):
    """How to load."""

    table: str
    batch_size: int = Field(100, ge=1)
    colors: list[Color] = []


@flow(name="load-with-config")
def load_with_config(config: LoadConfig, color: Color = Color.RED, limit: int = 10):
    """Load a table.

    Args:
        config: what to load
    """
