"""`from __future__ import annotations`: every annotation is a string that Prefect evaluates later."""

from __future__ import annotations

from datetime import date
from typing import Literal, Optional

from prefect import flow


@flow
def stringly(day: date, mode: Literal["a", "b"] = "a", limit: Optional[int] = None, names: list[str] | None = None):
    pass


@flow
def forward_reference(threshold: "float" = 0.5, labels: "dict[str, int]" = {}):
    pass
