"""Parameter kinds and positions, decorator arguments, docstrings, async flows."""

from typing import Optional

from prefect import flow
from prefect import flow as prefect_flow

PREFIX = "team"
VERSION = "2.1"


@flow(name="kinds", version="1.0", description="All the parameter kinds")
def kinds(a, /, b: int, c: str = "c", *args: int, d: bool, e: float = 2.0, **kwargs: str):
    """Not the description: description= wins."""


@flow(name=f"{PREFIX}-flow", version=VERSION)
async def async_flow(x: int = 1):
    """Runs asynchronously.

    More text here.

    Args:
        x: how many
            things, on two lines.

    Returns:
        nothing
    """


@prefect_flow
def google_docstring(source: str, target: Optional[str] = None, limit: int = 10, dry_run: bool = False):
    """Copy rows from source to target.

    Arguments:
        source (str): the table to read
        target: the table to write; defaults to the source
        limit (int, optional): at most this many rows. Defaults to 10.
        unknown: documented but not a parameter

    Raises:
        ValueError: when things go wrong
    """


@flow(description="")
def empty_description(a: int = 1):
    """The docstring is used when description is empty."""


@flow(name=None, version=None)
def explicit_nones(self_param: int = 0):
    pass


@flow
def skips_self_and_cls(self, cls, other: int = 1):
    pass
