"""Which Prefect API to talk to: --api-url, PREFECT_API_URL, the active profile, or the embedded server."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provider.client import Connection, PrefectClient
from provider.errors import ConfigError, Location, ProviderError

if TYPE_CHECKING:
    from provider.config import WorkspaceSetting

# How many of the account's workspace handles an unknown handle's error lists.
HANDLES_SHOWN = 10


def profile_settings(environ: dict[str, str] | os._Environ = os.environ) -> tuple[str | None, dict[str, Any]]:
    """The active profile's name and settings from `$PREFECT_HOME/profiles.toml` (~/.prefect)."""
    home = Path(environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    path = Path(environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return None, {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ProviderError(f"cannot read Prefect profiles {path}: {exc}") from None
    name = environ.get("PREFECT_PROFILE") or data.get("active")
    profiles = data.get("profiles", {})
    return name, (profiles.get(name) or {}) if name else {}


def resolve(
    api_url: str | None = None,
    *,
    environ: dict[str, str] | os._Environ = os.environ,
    start_embedded: Callable[[], Connection] | None = None,
) -> Connection:
    profile_name, profile = profile_settings(environ)

    def setting(name: str) -> str | None:
        return environ.get(name) or profile.get(name) or None

    key = setting("PREFECT_API_KEY")
    auth = setting("PREFECT_API_AUTH_STRING")
    if api_url:
        return Connection(api_url, key, auth, source="--api-url")
    if environ.get("PREFECT_API_URL"):
        return Connection(environ["PREFECT_API_URL"], key, auth, source="PREFECT_API_URL")
    if profile.get("PREFECT_API_URL"):
        return Connection(profile["PREFECT_API_URL"], key, auth, source=f"Prefect profile {profile_name!r}")
    if start_embedded is None:
        raise ProviderError("no Prefect API is configured: pass --api-url or set PREFECT_API_URL")
    return start_embedded()


def workspace_client(client: PrefectClient, setting: WorkspaceSetting, declared_at: Location | None) -> PrefectClient:
    """A client like `client` to the workspace `workspace: HANDLE` names, in the account of the
    client's API URL (any workspace URL of the account serves every workspace of it).

    One request: the account's workspaces (an account holds few; Cloud filters them by handle only).
    `declared_at`: where this configuration declares a workspace of that handle, if it does."""
    from provider.engine import cloud_refusal

    if not client.connection.is_cloud:  # before any request, as Cloud-only kinds are refused
        raise ConfigError(cloud_refusal("workspace settings", client.connection), setting.location, "workspace")
    workspaces = client.filter(client.account("/workspaces/filter"))
    found = next((w for w in workspaces if w["handle"] == setting.handle), None)
    if found is None:
        if declared_at is not None:
            raise ConfigError(
                f"workspace {setting.handle!r} is declared in this configuration ({declared_at}) but does not exist "
                "yet: a configuration cannot create the workspace it works in; manage workspaces in a configuration "
                "without `workspace:` (the account's) and apply that first", setting.location, "workspace")
        handles = sorted(w["handle"] for w in workspaces)
        shown = ", ".join(handles[:HANDLES_SHOWN]) + (f" and {len(handles) - HANDLES_SHOWN} more" if len(handles) > HANDLES_SHOWN else "")
        raise ConfigError(f"the account of {client.connection.display_url} has no workspace with handle "
                          f"{setting.handle!r} (its workspaces: {shown or 'none'})", setting.location, "workspace")
    connection = client.connection
    url = f"{connection.account_url.rstrip('/')}/workspaces/{found['id']}"
    return PrefectClient(Connection(url, connection.api_key, connection.auth_string, source=f"workspace: {setting.handle}"),
                         timeout=client.timeout, max_attempts=client.max_attempts, backoff=client.backoff,
                         max_backoff=client.max_backoff, unreachable_after=client.unreachable_after)
