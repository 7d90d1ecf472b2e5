"""Names imported only for type checkers: with `from __future__ import annotations` the module imports fine,
but inspect.signature(eval_str=True) fails, so Prefect keeps every annotation as a string."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import pydantic

from prefect import flow

if TYPE_CHECKING:
    from pandas import DataFrame


@flow
def typed_for_checkers(frame: DataFrame, limit: int = 5, names: list[str] = [], maybe: Optional[int] = None,
                       either: int | None = None, mapping: typing.Dict[str, int] = {}):
    pass


@flow
def resolved_in_prefects_module(frame: DataFrame, strict: pydantic.StrictInt = 1, maybe: t.Optional[int] = None,
                                model: V2BaseModel = None, info: FieldInfo = None):
    """The strings are resolved among the globals of prefect._internal.pydantic.v2_schema, where `t`,
    `pydantic`, `V2BaseModel` and `FieldInfo` happen to be defined."""
