"""Which Prefect API to talk to: --api-url, PREFECT_API_URL, the active profile, or the embedded server."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from provider.client import Connection
from provider.errors import ProviderError


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
