"""typing constructs: Optional, Union, Literal, generics, Annotated, PEP 604 unions, aliases."""

import typing as t
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Dict, FrozenSet, List, Literal, Optional, Set, Tuple, Union

import prefect

Mode = Literal["fast", "slow"]
MaybeInts = Optional[List[int]]


@prefect.flow
def optional_and_union(
    a: Optional[int],
    b: Optional[str] = None,
    c: Union[int, str] = 1,
    d: Union[int, None] = None,
    e: int | None = None,
    f: str | int | None = "f",
    g: t.Optional[float] = 1.5,
):
    pass


@prefect.flow(name="literal-things")
def literals(mode: Literal["a", "b"] = "a", level: Literal[1, 2, 3] = 2, alias: Mode = "fast", maybe: MaybeInts = None):
    pass


@prefect.flow
def generics(
    a: List[str],
    b: Dict[str, Any],
    c: Tuple[int, float],
    d: Set[int],
    e: FrozenSet[str],
    f: list[int] = [],
    g: dict[str, list[int]] = {},
    h: tuple[int, ...] = (),
    i: set[str] = set(),
    j: Sequence[str] = ("x",),
    k: Mapping[str, int] = {"k": 1},
    l: list = None,
    m: Any = None,
    n: dict[str, dict[str, Optional[float]]] = {"x": {"y": None}},
):
    pass


@prefect.flow
def annotated(
    a: Annotated[int, "metadata"],
    b: Annotated[str, "doc"] = "b",
    c: t.Annotated[Optional[List[str]], "more"] = None,
):
    pass
