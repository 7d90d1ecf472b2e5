"""The one HTTP layer: typed errors, retries with backoff that honour Retry-After, paging, and a
time budget for an API that stops answering."""

from __future__ import annotations

import base64
import contextlib
import email.utils
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from provider import __version__
from provider.errors import ERRORS_BY_STATUS, ApiError, ApiGaveUp, ApiUnreachable, ServerError
from provider.secrets import REDACTOR, URL_USERINFO, redact

PAGE_SIZE = 200
RETRY_STATUSES = {429, 502, 503, 504}
RETRY_EXCEPTIONS = (httpx.TransportError,)
# Answers and errors that say the server is saturated: fewer requests at once, not just a retry.
OVERLOAD_STATUSES = {429, 503}
OVERLOAD_EXCEPTIONS = (httpx.TimeoutException,)
MAX_CONNECTIONS = 32
# Answers that mean nothing behind the gateway answered: they count as silence, like a dropped connection.
SILENT_STATUSES = {502, 504}
# How long the API may stay silent before every request fails at once (--timeout, PREFECT_PROVIDER_TIMEOUT).
# Twice the 60 s a SQLite-backed Prefect server may wait for its write lock (its busy_timeout), during
# which its whole event loop can stand still (docs/security.md): a healthy server is waited out.
DEFAULT_UNREACHABLE_AFTER = 120.0
# What is shown of a server's error body at most.
EXPLANATION_LIMIT = 500


@dataclass(frozen=True)
class Connection:
    api_url: str
    api_key: str | None = None
    auth_string: str | None = None
    source: str = "configured"  # where the URL came from, for messages

    @property
    def is_cloud(self) -> bool:
        return "/accounts/" in self.api_url and "/workspaces/" in self.api_url

    @property
    def workspace_id(self) -> str | None:
        """The id of the Cloud workspace the API URL is in (None for any other server)."""
        return self.api_url.rstrip("/").partition("/workspaces/")[2].split("/")[0] if self.is_cloud else None

    @property
    def account_url(self) -> str:
        """The account a Cloud workspace URL belongs to (`…/api/accounts/ID`): where account-scoped
        objects (service accounts, teams) live."""
        return self.api_url[: self.api_url.index("/workspaces/")]

    @property
    def api_root_url(self) -> str:
        """The API root of a Cloud workspace URL (`…/api`): where per-user objects (a user's API keys) live."""
        return self.api_url[: self.api_url.index("/accounts/")]

    @property
    def display_url(self) -> str:
        """The URL without a password it may carry."""
        return URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", self.api_url)


class ConcurrencyLimit:
    """How many requests may be in flight at once: every overloaded answer halves it, for the rest
    of the command.

    The SQLite-backed server takes one writer at a time: writers that contend get 503 (at once, or
    after its 10 s lock timeout), so a parallel apply against it gains nothing and stalls. It never
    grows back, as probing upward costs such stalls again (measured on 1,000 objects: 23-27 s this way,
    29-90 s when it grew back after successes, 97 s and failed creates with no limit at all). A
    server that is never overloaded (Prefect Cloud, PostgreSQL) keeps the starting limit.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self._in_flight = 0
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: self._in_flight < self.limit)
            self._in_flight += 1
        try:
            yield
        finally:
            with self._changed:
                self._in_flight -= 1
                self._changed.notify_all()

    def overloaded(self) -> None:
        with self._changed:
            self.limit = max(1, self.limit // 2)


@dataclass
class RequestCounter:
    """Counts requests by method; the benchmarks and the no-op-apply tests read it."""

    reads: int = 0
    writes: int = 0

    def count(self, method: str, path: str) -> None:
        # A POST to .../filter, .../count or a view reads; every other non-GET writes.
        if method == "GET" or path.rstrip("/").endswith(("/filter", "/count")) or "/views/" in path:
            self.reads += 1
        else:
            self.writes += 1


class PrefectClient:
    def __init__(
        self,
        connection: Connection,
        *,
        timeout: float = 30.0,
        max_attempts: int = 10,
        backoff: float = 0.25,
        max_backoff: float = 10.0,
        unreachable_after: float = DEFAULT_UNREACHABLE_AFTER,
    ):
        self.connection = connection
        REDACTOR.add_credentials(connection.api_key, connection.auth_string, connection.api_url)
        self.timeout = timeout
        self.unreachable_after = unreachable_after
        self._silent_since: float | None = None  # when the API last stopped answering; None while it answers
        self._silence_reason = ""
        self._last_answer = 0.0
        self._silence_lock = threading.Lock()
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.counter = RequestCounter()
        self._count_lock = threading.Lock()
        headers = {"User-Agent": f"prefect-provider/{__version__}"}
        if connection.api_key:
            headers["Authorization"] = f"Bearer {connection.api_key}"
        elif connection.auth_string:
            token = base64.b64encode(connection.auth_string.encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        self._http = httpx.Client(
            base_url=connection.api_url.rstrip("/") + "/",
            headers=headers,
            timeout=timeout,
            limits=httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS),
        )
        self.limit = ConcurrencyLimit(MAX_CONNECTIONS)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PrefectClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- verbs -------------------------------------------------------------------------------

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None)

    def post(self, path: str, json: Any = None) -> Any:
        return self.request("POST", path, json=json)

    def patch(self, path: str, json: Any = None) -> Any:
        return self.request("PATCH", path, json=json)

    def put(self, path: str, json: Any = None) -> Any:
        return self.request("PUT", path, json=json)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def account(self, path: str) -> str:
        """The URL of `path` under the account rather than the workspace (Cloud only); any verb takes it."""
        return f"{self.connection.account_url.rstrip('/')}/{path.lstrip('/')}"

    def api_root(self, path: str) -> str:
        """The URL of `path` at the API root, above every account (Cloud only, e.g. `/users/ID/api_keys`)."""
        return f"{self.connection.api_root_url.rstrip('/')}/{path.lstrip('/')}"

    def filter(self, path: str, body: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every object a `POST .../filter` endpoint returns, PAGE_SIZE at a time."""
        return list(self.iter_filter(path, body))

    def iter_filter(self, path: str, body: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            page = self.post(path, {**(body or {}), "limit": PAGE_SIZE, "offset": offset})
            yield from page
            if len(page) < PAGE_SIZE:
                return
            offset += PAGE_SIZE

    # --- the one place a request is sent ---------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        path = path.lstrip("/")
        # An absolute URL (an account path, `account()`) is sent as it is; httpx joins others to the workspace URL.
        absolute = path.startswith(("http://", "https://"))
        url = URL_USERINFO.sub(r"\g<scheme>\g<user>:***@", path) if absolute else f"{self.connection.display_url.rstrip('/')}/{path}"
        for attempt in range(1, self.max_attempts + 1):
            with self._count_lock:
                self.counter.count(method, "/" + path)
            started = time.monotonic()
            try:
                with self.limit.slot():
                    self._check_budget()
                    response = self._http.request(method, path, timeout=self._attempt_timeout(), **kwargs)
            except RETRY_EXCEPTIONS as exc:
                if isinstance(exc, OVERLOAD_EXCEPTIONS):
                    self.limit.overloaded()
                self._silent(started, type(exc).__name__)
                if attempt == self.max_attempts:
                    raise ApiUnreachable(
                        f"no answer after {attempt} attempts ({type(exc).__name__})", method=method, url=url
                    ) from None
                self._sleep(attempt, None)
                continue
            if response.status_code in SILENT_STATUSES:
                self._silent(started, f"{response.status_code} {response.reason_phrase}")
            else:
                self._answered()
            if response.status_code in OVERLOAD_STATUSES:
                self.limit.overloaded()
            if response.status_code in RETRY_STATUSES and attempt < self.max_attempts:
                self._sleep(attempt, response.headers.get("Retry-After"))
                continue
            return self._result(method, url, response)
        raise AssertionError("unreachable")

    # --- the time budget: an API silent for longer than `unreachable_after` is given up on ---------

    def _silent(self, since: float, why: str) -> None:
        with self._silence_lock:
            since = max(since, self._last_answer)  # an answer since this attempt began: silent only from then
            if self._silent_since is None or since < self._silent_since:
                self._silent_since = since
            self._silence_reason = why
        self._check_budget()

    def _answered(self) -> None:
        with self._silence_lock:
            self._silent_since = None
            self._last_answer = time.monotonic()

    def _remaining(self) -> float:
        since = self._silent_since
        return self.unreachable_after - (time.monotonic() - since) if since is not None else self.unreachable_after

    def _check_budget(self) -> None:
        """Fail at once when the API has been silent past the budget: no request waits for it again."""
        if self._remaining() <= 0:
            raise ApiGaveUp(
                f"the Prefect API at {self.connection.display_url} has not answered for "
                f"{self.unreachable_after:g}s (last: {self._silence_reason}); gave up. "
                "Change the limit with --timeout or PREFECT_PROVIDER_TIMEOUT."
            )

    def _attempt_timeout(self) -> httpx.Timeout:
        """No attempt outlives the budget: a request to an API gone silent ends when the budget does."""
        return httpx.Timeout(max(0.1, min(self.timeout, self._remaining())))

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = _retry_after_seconds(retry_after)
        if delay is None:
            delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
        if self._silent_since is not None:
            delay = min(delay, max(0.0, self._remaining()))
        time.sleep(min(delay, 60.0))
        self._check_budget()

    def _result(self, method: str, url: str, response: httpx.Response) -> Any:
        if response.is_success:
            if response.status_code == 204 or not response.content:
                return None
            return response.json()
        explanation = _short(_explanation(response))
        if response.status_code in (401, 403):
            explanation = self._credentials_problem(response.status_code, explanation)
        message = f"{response.status_code} {response.reason_phrase}: {explanation}"
        error = ERRORS_BY_STATUS.get(response.status_code)
        if error is None:
            error = ServerError if response.status_code >= 500 else ApiError
        raise error(message, method=method, url=url, status_code=response.status_code)

    def _credentials_problem(self, status: int, explanation: str) -> str:
        """What to check after a 401 or 403: which credential was used, never its value."""
        connection = self.connection
        if status == 403:
            problem = ("the credentials were accepted but lack permission for this: check the API key's role in the "
                       "workspace, and that the URL names the right account and workspace")
        elif connection.api_key:
            problem = ("the API key was refused: check PREFECT_API_KEY (environment or the active Prefect profile); "
                       "it may be wrong, expired or revoked, or belong to another account")
        elif connection.auth_string:
            problem = "the credentials in PREFECT_API_AUTH_STRING were refused"
        else:
            problem = ("this API needs credentials: set PREFECT_API_KEY for Prefect Cloud, or PREFECT_API_AUTH_STRING "
                       "for a self-hosted server")
        return f"{problem} (the server says: {explanation})"


def _explanation(response: httpx.Response) -> Any:
    """What the server says went wrong, never the request body it may echo (it can hold secrets).

    A body that is not Prefect's JSON (a proxy's page, a server echoing the request) is shown cut
    short and redacted, as everything printed is: `_short` does both."""
    try:
        body = response.json()
    except ValueError:
        return response.text
    if not isinstance(body, dict):
        return response.text
    # Prefect answers a 422 with `exception_detail` (and the whole request body beside it).
    detail = body.get("detail", body.get("exception_detail", response.text))
    if isinstance(detail, list) and all(isinstance(e, dict) and "msg" in e for e in detail):
        # Validation errors: where and what, without the offending `input`.
        return "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e['msg']}" for e in detail)
    return detail


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After is either delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _short(detail: Any, limit: int = EXPLANATION_LIMIT) -> str:
    """Redacted before it is cut, so a cut cannot leave half a secret that no longer matches."""
    text = redact(detail if isinstance(detail, str) else repr(detail))
    text = " ".join(text.split())  # one line: a multi-line page would bury the message
    return text if len(text) <= limit else text[:limit] + "…"
