"""Mounting plugin commands on the root Typer app, with the clash policy of every other kind:
built-ins mount first; a later plugin's command of a taken name loses, unless the plugin lists it in
its module's `PROBE_REPLACE_COMMANDS`, which replaces the earlier command (printed and recorded)."""

from __future__ import annotations

from typing import Any

from probe.registry import Registry
from probe.registry.checks import one_line

REPLACE_ATTRIBUTE = "PROBE_REPLACE_COMMANDS"


def add_commands(registry: Registry, app: Any) -> None:
    """Call every plugin's register_commands (built-ins first); record which commands each added."""
    owners: dict[str, str] = dict.fromkeys(_command_names(app), "core")
    for plugin in registry.plugins:
        if plugin.module is None:
            continue
        impls = [
            i for i in registry.manager.hook.register_commands.get_hookimpls() if i.plugin_name == plugin.info.name
        ]
        if not impls:
            continue
        n_commands, n_groups = len(app.registered_commands), len(app.registered_groups)
        try:
            impls[0].function(app=app)
        except Exception as exc:  # a plugin that breaks while registering is reported, not fatal
            del app.registered_commands[n_commands:], app.registered_groups[n_groups:]
            registry.warnings.append(
                f"plugin {plugin.info.name!r} failed in register_commands, nothing it registered "
                f"is used: {one_line(exc)}"
            )
            registry.fail(plugin, f"register_commands: {one_line(exc)}")
            continue
        may_replace = set(getattr(plugin.module, REPLACE_ATTRIBUTE, ()) or ())
        plugin.info.commands = []
        for entries, start in ((app.registered_commands, n_commands), (app.registered_groups, n_groups)):
            new, entries[start:] = entries[start:], []
            for entry in new:
                name = _entry_name(entry)
                owner = owners.get(name)
                if owner is not None and (owner == "core" or name not in may_replace):
                    registry.clashes.append(
                        f"command {name!r}: plugin {owner!r} wins, plugin {plugin.info.name!r} loses "
                        + (
                            "(the core's commands cannot be replaced)"
                            if owner == "core"
                            else f"(rename it, or list it in {REPLACE_ATTRIBUTE})"
                        )
                    )
                    continue
                if owner is not None:
                    _remove(app, name)
                    registry.replacements.append(
                        {"kind": "command", "name": name, "plugin": plugin.info.name, "replaced": owner}
                    )
                    for p in registry.plugins:
                        if name in p.info.commands:
                            p.info.commands.remove(name)
                owners[name] = plugin.info.name
                entries.append(entry)
                plugin.info.commands.append(name)


def _remove(app: Any, name: str) -> None:
    """Take the command or group `name` off the app (it is being replaced)."""
    app.registered_commands[:] = [e for e in app.registered_commands if _entry_name(e) != name]
    app.registered_groups[:] = [e for e in app.registered_groups if _entry_name(e) != name]


def _entry_name(entry: Any) -> str:
    """The command name of a Typer command or group registration."""
    callback = getattr(entry, "callback", None)
    typer_instance = getattr(entry, "typer_instance", None)
    if not entry.name and callback is None and typer_instance is not None:
        info = getattr(typer_instance, "info", None)
        return str(getattr(info, "name", "") or "")
    return entry.name or (callback.__name__.replace("_", "-") if callback else "")


def _command_names(app: Any) -> list[str]:
    return [n for n in map(_entry_name, list(app.registered_commands) + list(app.registered_groups)) if n]
