"""Mounting plugin commands on the root Typer app: each plugin's `register_commands`, the first
plugin to take a command name keeps it, and the command names of plugins that are not running."""

from __future__ import annotations

import ast
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from probe.registry import Registry
from probe.registry.discovery import PluginInfo, _one_line


def add_commands(registry: Registry, app: Any) -> None:
    """Call every plugin's register_commands; record which commands each added."""
    for plugin in registry.plugins:
        if plugin.module is None:
            continue
        impls = [
            i for i in registry.manager.hook.register_commands.get_hookimpls() if i.plugin_name == plugin.info.name
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
                    owner = next((p.info.name for p in registry.plugins if name in p.info.commands), "core")
                    registry.clashes.append(
                        f"command {name!r}: plugin {owner!r} wins, plugin {plugin.info.name!r} loses "
                        "(rename the command)"
                    )
                    continue
                taken.add(name)
                kept.append(entry)
                plugin.info.commands.append(name)
            entries[start:] = kept


def _entry_name(entry: Any) -> str:
    """The command name of a Typer command or group registration."""
    callback = getattr(entry, "callback", None)
    return entry.name or (callback.__name__.replace("_", "-") if callback else "")


def _command_names(app: Any) -> list[str]:
    return [n for n in map(_entry_name, list(app.registered_commands) + list(app.registered_groups)) if n]


def commands_of(info: PluginInfo) -> list[str]:
    """The commands a plugin that is not running would add, read from its source without running it
    (`@app.command("name")` and `add_typer(..., name="name")` with literal names)."""
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
