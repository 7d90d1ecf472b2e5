"""Builtin types, literal defaults (None, mutable, negative, computed from constants), untyped parameters."""

from prefect import flow

RETRIES = 3
LABELS = ["a", "b"]


@flow
def plain_types(count: int, ratio: float, label: str, enabled: bool, payload: bytes):
    pass


@flow
def literal_defaults(
    count: int = -1,
    ratio: float = 0.5,
    label: str = "x",
    enabled: bool = False,
    nothing: str = None,
    items: list = [1, 2],
    mapping: dict = {"a": 1, "b": [True, None]},
    pair: tuple = (1, "two"),
    retries: int = RETRIES,
    labels: list = LABELS,
    seconds: int = 60 * 60,
    greeting: str = "hello" + " " + "world",
):
    pass


@flow
def untyped(a, b=2, c=None, d="d"):
    pass


@flow()
def no_parameters():
    pass
