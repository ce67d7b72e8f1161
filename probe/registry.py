"""Plugin discovery (entry-point group `probe.plugins`), the pluggy plugin manager, and the registry
of everything plugins add through the hooks in `probe.hookspecs`.

A plugin is a module; its hook implementations are functions named after the hooks, marked with
`probe.plugin.hookimpl` (unmarked functions with a hook's name are accepted too, as pytest does).
Its top level must stay light (the standard library, typer): heavy imports belong inside command
bodies and factories, which keeps `probe --help` fast. `PROBE_LOAD_PLUGINS` (comma list; empty =
none) selects plugins and `PROBE_DISABLE_PLUGINS` removes some, by entry-point name.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from importlib import import_module
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from probe import hookspecs
from probe.errors import ProbeError

GROUP = "probe.plugins"
LOAD_ENV = "PROBE_LOAD_PLUGINS"
DISABLE_ENV = "PROBE_DISABLE_PLUGINS"
API_VERSION = 1  # the plugin API this clip-probe provides; a plugin declares PROBE_API = N in its module
OLDEST_API = 1  # plugins written for an older API than this no longer load
BUILTIN_DISTRIBUTION = "clip-probe"

HOOKS = tuple(name for name in dir(hookspecs) if name.startswith("register_"))

#: The extension kinds collected from the `register_*` hooks (other than commands): hook -> kind label.
KINDS = {
    "register_model_loaders": "model loader",
    "register_vocabularies": "vocabulary",
    "register_perturbations": "perturbation",
    "register_experiment_steps": "experiment step kind",
    "register_invert_transforms": "invert transform",
    "register_invert_params": "invert parameterisation",
    "register_invert_priors": "invert prior",
    "register_label_sets": "label set",
    "register_python_api": "Python API function",
}


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

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class LoadedPlugin:
    info: PluginInfo
    module: ModuleType | None


@dataclass
class Extension:
    """One thing a plugin registered: a vocabulary, a perturbation, a step kind..."""

    kind: str
    name: str
    value: Any
    plugin: str
    about: str = ""
    options: dict = field(default_factory=dict)


def _shape_problem(hook: str, name: str, value: Any) -> str:
    """Why a registered value cannot work (checked at registration, not at first use), or ""."""
    if hook == "register_experiment_steps":
        if not all(callable(getattr(value, a, None)) for a in ("normalise", "run")) or not hasattr(value, "options"):
            return "register a StepKind(name, options, normalise, run, ...)"
        if getattr(value, "name", name) != name:
            return f"its StepKind is named {value.name!r}"
        return ""
    if hook == "register_label_sets":
        return (
            "" if isinstance(value, (dict, str, os.PathLike)) else "give a mapping attribute -> prompts or a YAML path"
        )
    return "" if callable(value) else f"expected a function, got {type(value).__name__}"


class _Manager(pluggy.PluginManager):
    """Also accepts unmarked module functions named after a hook, so `def register_commands(app)` works."""

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name in HOOKS and inspect.isfunction(getattr(plugin, name, None)):
            return {}
        return opts


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


def _one_line(exc: BaseException) -> str:
    """The exception as one line; a multi-line message (pluggy's validation errors) joined with '; '."""
    text = "; ".join(line.strip() for line in str(exc).strip().splitlines() if line.strip())
    return f"{type(exc).__name__}: {text}".rstrip(": ")


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


class Registry:
    """The loaded plugins, their pluggy manager and everything they registered.

    Extensions are collected on first use, one hook at a time; within a kind the first registration
    of a name wins (built-ins come first), and a later one is recorded as a clash unless it passed
    `replace=True`.
    """

    def __init__(self, plugins: list[LoadedPlugin], warnings: list[str] | None = None) -> None:
        self.plugins = plugins
        self.warnings: list[str] = list(warnings or [])
        self.clashes: list[str] = []
        self.manager = _Manager(hookspecs.PROJECT)
        self.manager.add_hookspecs(hookspecs)
        self._extensions: dict[str, dict[str, Extension]] = {}
        self._shown: set[str] = set()
        from probe import core_plugin

        self.manager.register(core_plugin, name=core_plugin.NAME)  # the core's own registrations come first
        for plugin in sorted(plugins, key=lambda p: not p.info.builtin):  # built-ins register first
            if plugin.module is None:
                continue
            try:
                self.manager.register(plugin.module, name=plugin.info.name)
                self.manager.check_pending()
            except Exception as exc:  # a plugin whose hooks do not match the specs is reported, not fatal
                if self.manager.is_registered(plugin.module):
                    self.manager.unregister(plugin.module)
                plugin.info.status, plugin.info.reason = "failed", _one_line(exc)
                plugin.module = None
                continue
            plugin.info.hooks = sorted({c.name for c in self.manager.get_hookcallers(plugin.module) or []})
            wrappers = [
                i.function.__name__
                for c in self.manager.get_hookcallers(plugin.module) or []
                for i in c.get_hookimpls()
                if i.plugin is plugin.module and (i.hookwrapper or i.wrapper)
            ]
            if wrappers:
                self.manager.unregister(plugin.module)
                plugin.info.status, plugin.info.reason = (
                    "failed",
                    f"hook wrappers are not supported ({', '.join(wrappers)})",
                )
                plugin.module = None
                continue
            if not plugin.info.hooks:
                self.manager.unregister(plugin.module)
                plugin.info.status, plugin.info.reason = (
                    "failed",
                    "the module implements no probe hook (e.g. register_commands)",
                )
                plugin.module = None

    # ------------------------------------------------------------------ plugins

    def unavailable(self) -> list[PluginInfo]:
        """Plugins that are installed but not running: disabled or failed."""
        return [p.info for p in self.plugins if p.info.status != "loaded"]

    def why_missing(self) -> str:
        """A hint naming the plugins that are disabled or failed, for 'not found' messages."""
        parts = []
        for info in self.unavailable():
            why = "disabled" if info.status == "disabled" else f"failed: {info.reason}"
            parts.append(f"{info.name} ({why})")
        return "plugins not running: " + "; ".join(parts) + " — see `probe plugins`" if parts else "see `probe plugins`"

    # ------------------------------------------------------------------ extensions

    def _collect(self, hook: str) -> dict[str, Extension]:
        """Call each plugin's implementation in registration order (built-ins first). A plugin's
        registrations count only if its hook finishes; a bad one is a warning, never fatal."""
        kind = KINDS[hook]
        found: dict[str, Extension] = {}
        for impl in getattr(self.manager.hook, hook).get_hookimpls():
            staged: list[tuple[Extension, bool]] = []

            def register(
                name: Any,
                value: Any = None,
                about: str = "",
                *,
                replace: bool = False,
                _plugin: str = impl.plugin_name,
                _staged: list[tuple[Extension, bool]] = staged,
                **options: Any,
            ) -> None:
                if hook == "register_experiment_steps" and value is None:  # register(StepKind(...))
                    name, value = getattr(name, "name", name), name
                if not isinstance(name, str) or not name.strip():
                    raise ValueError(f"a {kind} registered without a name")
                problem = _shape_problem(hook, name, value)
                if problem:
                    raise ValueError(f"{kind} {name!r}: {problem}")
                _staged.append((Extension(kind, name, value, _plugin, about, options), replace))

            try:
                impl.function(register=register)
            except Exception as exc:  # a broken hook drops that plugin's contributions to this hook only
                self.warnings.append(
                    f"plugin {impl.plugin_name!r} failed in {hook}, nothing it registered there is used: "
                    f"{_one_line(exc)}"
                )
                continue
            for ext, replace in staged:
                if ext.name in found and not replace:
                    self.clashes.append(
                        f"{kind} {ext.name!r}: plugin {found[ext.name].plugin!r} wins, "
                        f"plugin {ext.plugin!r} loses (rename it, or register with replace=True)"
                    )
                    continue
                found[ext.name] = ext
        return found

    def messages(self) -> list[str]:
        """Warnings and clashes not yet shown (each is returned once), for the CLI to print."""
        out = [m for m in self.warnings + [f"clash: {c}" for c in self.clashes] if m not in self._shown]
        self._shown.update(out)
        return out

    def extensions(self, hook: str) -> dict[str, Extension]:
        """Name -> Extension for one `register_*` hook, collected once."""
        if hook not in self._extensions:
            self._extensions[hook] = self._collect(hook)
        return self._extensions[hook]

    def get(self, hook: str, name: str, need: str = "") -> Extension:
        """The extension registered under `name`, or a one-line error saying what exists and what is off."""
        found = self.extensions(hook)
        if name in found:
            return found[name]
        kind = KINDS[hook]
        known = ", ".join(found) or "none"
        for_what = f" (needed by {need})" if need else ""
        raise ProbeError(f"unknown {kind} {name!r}{for_what}; known: {known}", hint=self.why_missing())

    def add_commands(self, app: Any) -> None:
        """Call every plugin's register_commands; record which commands each added."""
        for plugin in self.plugins:
            if plugin.module is None:
                continue
            impls = [
                i for i in self.manager.hook.register_commands.get_hookimpls() if i.plugin_name == plugin.info.name
            ]
            if not impls:
                continue
            taken = set(_command_names(app))
            n_commands, n_groups = len(app.registered_commands), len(app.registered_groups)
            try:
                impls[0].function(app=app)
            except Exception as exc:  # a plugin that breaks while registering is reported, not fatal
                del app.registered_commands[n_commands:], app.registered_groups[n_groups:]
                plugin.info.status, plugin.info.reason = "failed", _one_line(exc)
                continue
            plugin.info.commands = []
            for entries, start in ((app.registered_commands, n_commands), (app.registered_groups, n_groups)):
                kept = []
                for entry in entries[start:]:
                    name = _entry_name(entry)
                    if name in taken:  # the first plugin to take a command name keeps it
                        owner = next((p.info.name for p in self.plugins if name in p.info.commands), "core")
                        self.clashes.append(
                            f"command {name!r}: plugin {owner!r} wins, plugin {plugin.info.name!r} loses "
                            "(rename the command)"
                        )
                        continue
                    taken.add(name)
                    kept.append(entry)
                    plugin.info.commands.append(name)
                entries[start:] = kept

    def all_extensions(self) -> Iterator[Extension]:
        for hook in KINDS:
            yield from self.extensions(hook).values()


def _entry_name(entry: Any) -> str:
    """The command name of a Typer command or group registration."""
    callback = getattr(entry, "callback", None)
    return entry.name or (callback.__name__.replace("_", "-") if callback else "")


def _command_names(app: Any) -> list[str]:
    return [n for n in map(_entry_name, list(app.registered_commands) + list(app.registered_groups)) if n]


def discover(extra: dict[str, Callable[[], ModuleType]] | None = None) -> tuple[list[LoadedPlugin], list[str]]:
    """Import every selected plugin module; a broken one is reported, never fatal.

    `extra` maps names to module factories and exists for tests and embedding applications.
    Returns the plugins and warnings (e.g. a name in PROBE_LOAD_PLUGINS that no plugin has).
    """
    allow, deny = _env_names(LOAD_ENV), _env_names(DISABLE_ENV) or set()
    found = _entry_points() + [(name, name, "", "", factory) for name, factory in (extra or {}).items()]
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
            module = factory()
        except Exception as exc:  # any import-time failure of a plugin must not break the CLI
            info.status, info.reason = "failed", _one_line(exc)
            plugins.append(LoadedPlugin(info, None))
            continue
        info.api, problem = _api_problem(module)
        if problem:
            info.status, info.reason = "failed", problem
            module = None
        plugins.append(LoadedPlugin(info, module))
    return plugins, warnings


_active: list[Registry] = []  # the process's registry: set by the CLI (or a test), else made on first use


def activate(registry: Registry) -> Registry:
    """Make `registry` the one library lookups use (the CLI does this once per process)."""
    _active[:] = [registry]
    return registry


def deactivate() -> None:
    """Forget the process's registry; the next lookup discovers the installed plugins again."""
    _active.clear()


def current() -> Registry:
    """The process's registry, discovering installed plugins on first use (scripts and notebooks)."""
    if not _active:
        plugins, warnings = discover()
        activate(Registry(plugins, warnings))
    return _active[0]


def lookup(hook: str, name: str, need: str = "") -> Any:
    """The value registered under `name` for `hook`, from the process's registry."""
    return current().get(hook, name, need).value


def registered(hook: str) -> dict[str, Extension]:
    """Every extension registered for `hook`, by name."""
    return current().extensions(hook)


def commands_of(info: PluginInfo) -> list[str]:
    """The commands a plugin that is not running would add, read from its source without running it
    (`@app.command("name")` and `add_typer(..., name="name")` with literal names)."""
    import ast
    from importlib.util import find_spec

    if info.commands:
        return info.commands
    try:
        spec = find_spec(info.module.split(":")[0])
        source = Path(spec.origin).read_text(encoding="utf-8") if spec and spec.origin else ""
        tree = ast.parse(source)
    except (ImportError, OSError, SyntaxError, ValueError):
        return []
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "command" and node.args and isinstance(node.args[0], ast.Constant):
                names.append(str(node.args[0].value))
            names += [
                str(k.value.value)
                for k in node.keywords
                if node.func.attr in ("command", "add_typer") and k.arg == "name" and isinstance(k.value, ast.Constant)
            ]
    return names
