"""Flows made by calling flow() or with_options() rather than by decorating."""

from typing import Optional

from prefect import Flow, flow


def load(table: str, limit: Optional[int] = None):
    """Load a table.

    Args:
        table: where to load
    """


load_flow = flow(load, name="load-table", version="7")
load_factory = flow(log_prints=True)(load)
plain_load = flow(load)


@flow(name="base-flow", description="The base")
def base(x: int = 1):
    pass


nightly = base.with_options(name="nightly-base", version="nightly")
renamed_only = base.with_options(name="renamed")


class_made = Flow(load, name="made-by-the-class", description="Flow(fn, ...)")
