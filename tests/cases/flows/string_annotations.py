"""String annotations without the __future__ import: only those are evaluated later, by
inspect.signature(eval_str=True), which fails as a whole when one names a type-checking-only import."""

from typing import TYPE_CHECKING, Optional

from prefect import flow

if TYPE_CHECKING:
    from pandas import DataFrame


@flow
def quoted_checker_type(frame: "DataFrame", limit: "int" = 5, maybe: Optional[int] = None, label: "Optional[str]" = None):
    pass


@flow
def quoted_known_types(limit: "int" = 5, ratio: "float | None" = None):
    pass
