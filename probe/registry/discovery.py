"""Finding plugins: the `probe.plugins` entry points, the PROBE_LOAD_PLUGINS / PROBE_DISABLE_PLUGINS
selection, the plugin API version check. A plugin that fails to import is reported, never fatal."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from importlib import import_module
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType

GROUP = "probe.plugins"
LOAD_ENV = "PROBE_LOAD_PLUGINS"
DISABLE_ENV = "PROBE_DISABLE_PLUGINS"
API_VERSION = 2  # the plugin API this clip-probe provides; a plugin declares PROBE_API = N in its module
#: API 1 plugins may implement a hook with an unmarked function of the hook's name; from API 2 only
#: @hookimpl-marked functions count (an unmarked one is an error at load time).
UNMARKED_HOOKS_UNTIL = 1
OLDEST_API = 1  # plugins written for an older API than this no longer load
BUILTIN_DISTRIBUTION = "clip-probe"


@dataclass
class PluginInfo:
    """One row of `probe plugins`."""

    name: str
    module: str
    distribution: str
    version: str
    status: str  # loaded | failed | disabled
    reason: str = ""
    commands: list[str] = field(default_factory=list)
    hooks: list[str] = field(default_factory=list)
    api: str = ""  # the plugin API version the plugin declares ("" = not declared)
    builtin: bool = False
    import_seconds: float = 0.0  # how long importing the plugin's module took (0 when not imported)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class LoadedPlugin:
    info: PluginInfo
    module: ModuleType | None


def _env_names(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None:
        return None
    return {n.strip() for n in raw.split(",") if n.strip()}


def _dist_of(ep: EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "", ""
    return dist.metadata["Name"] or "", dist.version or ""


SLOW_IMPORT_SECONDS = 0.2  # a plugin whose import takes longer gets a note on `probe --help`


def _one_line(exc: BaseException) -> str:
    """The exception as one line; a multi-line message (pluggy's validation errors) joined with '; '."""
    text = "; ".join(line.strip() for line in str(exc).strip().splitlines() if line.strip())
    return f"{type(exc).__name__}: {text}".rstrip(": ")


def _import_quietly(factory: Callable[[], ModuleType]) -> tuple[ModuleType, float]:
    """Import a plugin module with its prints sent to stderr (stdout carries `--json`); with the time it took."""
    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        module = factory()
    return module, time.perf_counter() - start


def _api_problem(module: ModuleType) -> tuple[str, str]:
    """(declared API version or "", why it cannot load or "")."""
    declared = getattr(module, "PROBE_API", None)
    if declared is None:
        return "", ""
    if not isinstance(declared, int) or isinstance(declared, bool):
        return str(declared), f"PROBE_API must be an integer, got {declared!r}"
    if declared > API_VERSION:
        return str(declared), f"needs plugin API {declared}; this clip-probe provides {API_VERSION}: upgrade clip-probe"
    if declared < OLDEST_API:
        return str(
            declared
        ), f"written for plugin API {declared}, no longer supported (oldest {OLDEST_API}): upgrade the plugin"
    return str(declared), ""


def _module_name(factory: Callable[[], ModuleType]) -> str:
    """The module name an extra plugin's factory gives, or "" when calling it fails (reported later)."""
    try:
        with contextlib.redirect_stdout(sys.stderr):
            return str(factory().__name__)
    except (Exception, SystemExit):  # the import failure is reported when the plugin is loaded below
        return ""


def _entry_points() -> list[tuple[str, str, str, str, Callable[[], ModuleType]]]:
    found: list[tuple[str, str, str, str, Callable[[], ModuleType]]] = []
    seen = set()
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        if ep.name in seen:  # the same distribution visible twice (e.g. editable + site) counts once
            continue
        seen.add(ep.name)
        dist, version = _dist_of(ep)
        found.append((ep.name, ep.value, dist, version, partial(import_module, ep.value.split(":")[0])))
    return found


def discover(extra: dict[str, Callable[[], ModuleType]] | None = None) -> tuple[list[LoadedPlugin], list[str]]:
    """Import every selected plugin module; a broken one is reported, never fatal.

    `extra` maps names to module factories and exists for tests and embedding applications. An extra
    module stands in for the installed plugin of the same entry-point name or module (a plugin's own
    tests run against the module they import, even when the package is also installed).
    Returns the plugins and warnings (e.g. a name in PROBE_LOAD_PLUGINS that no plugin has).
    """
    allow, deny = _env_names(LOAD_ENV), _env_names(DISABLE_ENV) or set()
    extras = [(name, _module_name(factory), factory) for name, factory in (extra or {}).items()]
    stand_ins = {name for name, _, _ in extras} | {module for _, module, _ in extras if module}
    found = [f for f in _entry_points() if f[0] not in stand_ins and f[1].split(":")[0] not in stand_ins]
    found += [(name, module or name, "", "", factory) for name, module, factory in extras]
    names = {f[0] for f in found}
    warnings = [
        f"{var} names unknown plugin {n!r} (installed: {', '.join(sorted(names))})"
        for var, given in ((LOAD_ENV, allow or set()), (DISABLE_ENV, deny))
        for n in sorted(given - names)
    ]
    plugins = []
    for name, module_name, dist, version, factory in found:
        info = PluginInfo(name, module_name, dist, version, "loaded", builtin=dist == BUILTIN_DISTRIBUTION)
        if allow is not None and name not in allow:
            info.status, info.reason = "disabled", f"not in {LOAD_ENV}"
            plugins.append(LoadedPlugin(info, None))
            continue
        if name in deny:
            info.status, info.reason = "disabled", f"listed in {DISABLE_ENV}"
            plugins.append(LoadedPlugin(info, None))
            continue
        module: ModuleType | None
        try:
            module, info.import_seconds = _import_quietly(factory)
        except (Exception, SystemExit) as exc:  # any import-time failure of a plugin must not break the CLI
            reason = f"called sys.exit({exc.code!r}) at import" if isinstance(exc, SystemExit) else _one_line(exc)
            info.status, info.reason = "failed", reason
            plugins.append(LoadedPlugin(info, None))
            continue
        info.api, problem = _api_problem(module)
        if problem:
            info.status, info.reason = "failed", problem
            module = None
        plugins.append(LoadedPlugin(info, module))
    return plugins, warnings
