"""Where the client reads from: backend, cache root, version folder, local copy, offline mode.

Settings come from the environment, compatible with existing notebooks, and `configure(...)`
overrides them from code:
- `BIODATA_CACHE_BACKEND`: `S3` (default; the public bucket), `LOCAL` (the folder `make run`
  writes, `.biodata-cache`) or `MEMORY` (the in-process store, for tests). Case-insensitive.
- `BIODATA_CACHE_ROOT`: overrides the backend's default root (a local folder, `s3://bucket/prefix`
  or `memory://name`); the root's scheme decides how it is read. Any other URI is refused.
- `BIODATA_CACHE_VERSION`: pins a version folder `bdc-vMAJOR.MINOR` such as `bdc-v0.1` (default: the
  folder of the installed package, falling back to the newest published one).
- `BIODATA_CACHE_LOCAL_COPY`: a folder where objects read from S3 are kept and revalidated.
- `BIODATA_CACHE_OFFLINE`: `1`/`true` reads only the local copy.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from biodata_cache_client.layout import VERSION_FOLDER_PATTERN

BACKEND_ENV = "BIODATA_CACHE_BACKEND"
ROOT_ENV = "BIODATA_CACHE_ROOT"
VERSION_ENV = "BIODATA_CACHE_VERSION"
LOCAL_COPY_ENV = "BIODATA_CACHE_LOCAL_COPY"
OFFLINE_ENV = "BIODATA_CACHE_OFFLINE"

DEFAULT_ROOTS = {
    "S3": "s3://allen-data-views/data-asset-cache",
    "LOCAL": ".biodata-cache",
    "MEMORY": "memory://data-asset-cache",
}
TRUE_VALUES = ("1", "true", "yes", "on")
URI_SCHEMES = ("s3", "memory")
# A scheme, ':' and a '/' or nothing (`s3:`, `s3:/bucket`, `file:/x`): a URI, never a local folder name.
URI_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:(/|$)")


@dataclass(frozen=True)
class Settings:
    """The resolved configuration of one read."""

    backend: str
    root: str
    version: str | None
    local_copy: str | None
    offline: bool


_overrides: dict = {}


def configure(
    backend: str | None = None,
    root: str | None = None,
    version: str | None = None,
    local_copy: str | None = None,
    offline: bool | None = None,
) -> Settings:
    """Override the environment from code; return the settings now in effect.

    Each call replaces the previous one: arguments left as None fall back to the environment,
    so `configure()` returns to the environment alone.
    """
    given = dict(backend=backend, root=root, version=version, local_copy=local_copy, offline=offline)
    candidate = {key: value for key, value in given.items() if value is not None}
    _resolve(candidate)  # validate before replacing the settings in effect
    _overrides.clear()
    _overrides.update(candidate)
    return current_settings()


def current_settings() -> Settings:
    return _resolve(_overrides)


def _resolve(overrides: dict) -> Settings:
    backend = str(overrides.get("backend") or os.environ.get(BACKEND_ENV) or "S3").upper()
    if backend not in DEFAULT_ROOTS:
        raise ValueError(f"cache backend {backend!r} is not one of {', '.join(DEFAULT_ROOTS)} ({BACKEND_ENV})")
    root = _checked_root(overrides.get("root") or os.environ.get(ROOT_ENV) or DEFAULT_ROOTS[backend])
    local_copy = overrides.get("local_copy") or os.environ.get(LOCAL_COPY_ENV) or None
    offline = overrides.get("offline")
    if offline is None:
        offline = os.environ.get(OFFLINE_ENV, "").strip().lower() in TRUE_VALUES
    return Settings(
        backend=backend,
        root=_absolute(root),
        version=_checked_version(overrides.get("version") or os.environ.get(VERSION_ENV) or None),
        local_copy=_absolute(local_copy) if local_copy else None,
        offline=bool(offline),
    )


def _absolute(location: str) -> str:
    """Local paths become absolute, so a later `os.chdir` does not move the cache; URIs stay."""
    return location.rstrip("/") if "://" in location else os.path.abspath(os.path.expanduser(location))


def _checked_root(root: str) -> str:
    """`root` when it is an `s3://bucket[/prefix]` or `memory://name` URI or a local path, else ValueError."""
    scheme, separator, rest = root.partition("://")
    if separator and scheme in URI_SCHEMES:
        if rest.split("/", 1)[0]:
            return root
        why = "names no bucket" if scheme == "s3" else "names no store"
    elif separator or URI_LIKE.match(root):
        why = "is not an s3:// or memory:// URI, and a URI is never read as a local folder"
    else:
        return root
    raise ValueError(
        f"cache root {root!r} {why}; set {ROOT_ENV} or configure(root=...) to s3://bucket/prefix, memory://name "
        "or a local folder"
    )


def _checked_version(version: str | None) -> str | None:
    """A version folder name `bdc-vMAJOR.MINOR`, so that no read or write leaves the cache root."""
    if version is not None and not VERSION_FOLDER_PATTERN.fullmatch(version):
        raise ValueError(
            f"cache version {version!r} is not a version folder name; set {VERSION_ENV} or configure(version=...) "
            "to bdc-vMAJOR.MINOR, e.g. bdc-v0.1 (get_cache_versions() lists the published ones)"
        )
    return version
