"""Errors a user sees. Every one of them is rendered as a message, never a traceback."""

from __future__ import annotations

from dataclasses import dataclass


class ProviderError(Exception):
    """Base of every error the CLI turns into a message and exit code 1."""


@dataclass(frozen=True)
class Location:
    file: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


class ConfigError(ProviderError):
    """Bad input: names the file, line and field at fault."""

    def __init__(self, message: str, location: Location | None = None, field: str | None = None):
        self.message = message
        self.location = location
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        what = f"{self.field}: " if self.field else ""
        return f"{where}{what}{self.message}"


class ConfigErrors(ProviderError):
    """Several configuration errors found in one pass, reported together."""

    def __init__(self, errors: list[ConfigError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class PlanError(ProviderError):
    """The configuration is valid but cannot be planned against this workspace."""


class StateError(ProviderError):
    """State could not be read, written or locked."""


class StateLocked(StateError):
    pass


class StateConflict(StateError):
    """A state write refused because the stored state is no longer the one this command read."""


# --- API errors -------------------------------------------------------------------------------


class ApiError(ProviderError):
    """An HTTP error from the Prefect API. Never carries credentials."""

    status_code: int | None = None

    def __init__(self, message: str, *, method: str = "", url: str = "", status_code: int | None = None):
        self.method = method
        self.url = url
        if status_code is not None:
            self.status_code = status_code
        detail = f"{method} {url}: " if method else ""
        super().__init__(f"{detail}{message}")


class BadRequest(ApiError):
    status_code = 400


class Unauthorized(ApiError):
    status_code = 401


class Forbidden(ApiError):
    status_code = 403


class NotFound(ApiError):
    status_code = 404


class Conflict(ApiError):
    status_code = 409


class Unprocessable(ApiError):
    status_code = 422


class ServerError(ApiError):
    pass


class ApiUnreachable(ApiError):
    """The API could not be reached at all (after retries)."""


class ApiGaveUp(ApiUnreachable):
    """The API has been silent for longer than the time budget: every further request fails at once."""


ERRORS_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: Unprocessable,
}
