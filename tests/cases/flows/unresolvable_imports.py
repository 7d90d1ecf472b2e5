"""Annotations and defaults from user code that is not importable here (prefect deploy falls back to reading
the source, exactly as this tool does without --flow-python)."""

from typing import Optional

from acme_pipeline.models import LoadConfig, Mode  # not installed: prefect cannot import it either
from acme_pipeline.settings import DEFAULT_LIMIT

from prefect import flow


@flow
def uses_user_models(
    config: LoadConfig,
    mode: Mode = Mode.FAST,
    limit: int = DEFAULT_LIMIT,
    maybe: Optional[LoadConfig] = None,
    plain: int = 1,
):
    """Load.

    Args:
        config: the configuration
    """
