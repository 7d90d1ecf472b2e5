"""Names imported only for type checkers: with `from __future__ import annotations` the module imports fine,
but inspect.signature(eval_str=True) fails, so Prefect keeps every annotation as a string."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from prefect import flow

if TYPE_CHECKING:
    from pandas import DataFrame


@flow
def typed_for_checkers(frame: DataFrame, limit: int = 5, names: list[str] = [], maybe: Optional[int] = None,
                       either: int | None = None, mapping: typing.Dict[str, int] = {}):
    pass
