"""The one reader of installed package versions (for `--version`, run manifests, output sidecars and
cache keys): a package that is not installed reads as "unknown"."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def package_version(dist: str) -> str:
    """The installed version of distribution `dist`, or "unknown" when it is not installed."""
    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"
