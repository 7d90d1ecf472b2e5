"""A model defined in the flow file that only running it describes (a plain validator replaces its schema),
and a model imported from the project's own package: --flow-python lets Prefect read them."""

from typing import Any

from flow_support.models import Target
from pydantic import BaseModel, field_validator

from prefect import flow


class Window(BaseModel):
    start: str
    days: int = 1

    @field_validator("days", mode="plain")
    @classmethod
    def any_days(cls, value: Any) -> int:
        return int(value)


@flow(name="load-window")
def load_window(window: Window, target: Target, limit: int = 10):
    """Load a window.

    Args:
        window: what to load
    """
