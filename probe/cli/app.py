"""The root `probe` command: global options, plugin mounting, and the one place errors become exits."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from typer.core import TyperGroup

from probe.cli.mount import add_commands
from probe.cli.state import get_state
from probe.errors import ProbeError, clipped, escaped
from probe.registry import Registry, activate, current, discover
from probe.registry.discovery import SLOW_IMPORT_SECONDS
from probe.registry.extensions import enable_hint

if TYPE_CHECKING:
    from typer._click.core import Context as ClickContext


def _version() -> str:
    from probe.files.versions import package_version

    return package_version("clip-probe")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"clip-probe {_version()}")
        raise typer.Exit()


HELP_PANELS = ("Probes", "Experiments and audits", "More commands", "Models, plugins and data")


class ProbeGroup(TyperGroup):
    """Turns ProbeError (and stray bugs) into one line on stderr and an exit code; --debug re-raises.
    Global options may also follow the command name (`probe invert "a star" -m shapes-tiny`)."""

    def parse_args(self, ctx: ClickContext, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(self, ctx, list(args)))

    def format_commands(self, ctx: ClickContext, formatter: Any) -> None:
        """Commands in panels, the probes first; a plugin names its panel with `rich_help_panel=`
        (a command without one is listed under "More commands")."""
        rows: dict[str, list[tuple[str, str]]] = {}
        width = max(formatter.width - 6 - max((len(n) for n in self.list_commands(ctx)), default=0), 20)
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            panel = getattr(command, "rich_help_panel", None) or "More commands"
            rows.setdefault(panel, []).append((name, command.get_short_help_str(width)))
        for panel in [p for p in HELP_PANELS if p in rows] + [p for p in rows if p not in HELP_PANELS]:
            with formatter.section(panel):
                formatter.write_dl(rows[panel])

    def resolve_command(self, ctx: ClickContext, args: list[str]) -> Any:
        """An unknown command that a disabled or broken plugin provides says so, and how to fix it."""
        from typer._click.exceptions import UsageError as ClickUsageError

        try:
            return super().resolve_command(ctx, args)
        except ClickUsageError:
            name = args[0] if args else ""
            why = _missing_command_reason(current(), name) if name else None
            if why is None:
                raise
            from probe.errors import UsageError

            raise UsageError(why) from None  # one line, exit 2

    def invoke(self, ctx: ClickContext) -> Any:
        def show_warning(message, category, filename, lineno, file=None, line=None):
            typer.echo(f"Warning: {escaped(str(message))}", err=True)

        old = warnings.showwarning
        warnings.showwarning = show_warning
        registry = current()
        _show(registry.messages())
        try:
            return super().invoke(ctx)
        except ProbeError as exc:
            if _debug(ctx):
                raise
            typer.echo(f"Error: {escaped(clipped(str(exc)))}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            typer.echo("Interrupted.", err=True)
            ctx.exit(130)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except Exception as exc:  # a bug, not bad input: one line unless --debug
            if _debug(ctx):
                raise
            message = escaped(clipped(str(exc)))
            typer.echo(
                f"Error: internal error: {type(exc).__name__}: {message} (rerun with --debug for the traceback)",
                err=True,
            )
            ctx.exit(1)
        finally:
            warnings.showwarning = old
            _show(registry.messages())  # what plugins got wrong while this command used them


def _show(messages: list[str]) -> None:
    for message in messages:
        typer.echo(f"Warning: {escaped(str(message))}", err=True)


def _debug(ctx: ClickContext) -> bool:
    obj = ctx.find_root().obj
    return bool(getattr(obj, "debug", False)) or os.environ.get("PROBE_DEBUG") == "1"


def _option_names(command: Any) -> tuple[set[str], set[str]]:
    """(names of options that take a value, names of flags) of a click command."""
    valued: set[str] = set()
    flags: set[str] = set()
    for param in getattr(command, "params", []):
        names = list(getattr(param, "opts", [])) + list(getattr(param, "secondary_opts", []))
        if getattr(param, "param_type_name", "") != "option":
            continue
        (flags if getattr(param, "is_flag", False) or getattr(param, "count", False) else valued).update(names)
    return valued, flags


def _attached_short(token: str, valued: set[str]) -> bool:
    """Whether the token is a short option with its value attached (`-oDIR`, as click accepts it)."""
    return len(token) > 2 and token[0] == "-" and token[1] != "-" and token[:2] in valued


def hoist_global_options(group: Any, ctx: ClickContext, args: list[str]) -> list[str]:
    """Move global options written after the command name (and not defined by that command) in front
    of it, so every command, a plugin's included, accepts them in either place with one meaning."""
    g_valued, g_flags = _option_names(group)
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] != "--":  # the root's own options
        i += 1 if args[i] in g_flags or "=" in args[i] or args[i] not in g_valued else 2
    if i >= len(args) or args[i] == "--":
        return args
    head, rest = args[: i + 1], args[i + 1 :]
    command = group.get_command(ctx, args[i])
    local_valued, local_flags = _option_names(command)
    while rest and hasattr(command, "get_command") and not rest[0].startswith("-"):  # nested groups (cache, world)
        command = command.get_command(ctx, rest[0])
        head, rest = head + rest[:1], rest[1:]
        valued, flags = _option_names(command)
        local_valued, local_flags = local_valued | valued, local_flags | flags
    hoisted: list[str] = []
    kept: list[str] = []
    j = 0
    while j < len(rest):
        token = rest[j]
        if token == "--":
            kept += rest[j:]
            break
        name = token.split("=", 1)[0]
        if _attached_short(token, local_valued | g_valued):  # `-oDIR`: the value is in the token
            (kept if token[:2] in local_valued else hoisted).append(token)
            j += 1
        elif name in local_valued or name in local_flags:
            kept += rest[j : j + (1 if "=" in token or name in local_flags else 2)]
            j += 1 if "=" in token or name in local_flags else 2
        elif name in g_flags and name not in ("--help", "-h", "--version"):
            hoisted.append(token)
            j += 1
        elif name in g_valued and "=" not in token and j + 1 >= len(rest):
            from typer._click.exceptions import UsageError as ClickUsageError

            raise ClickUsageError(f"Option '{name}' requires an argument.", ctx)
        elif name in g_valued:
            take = 1 if "=" in token else 2
            hoisted += rest[j : j + take]
            j += take
        else:
            kept.append(token)
            j += 1
    return head[:i] + hoisted + head[i:] + kept


def _missing_command_reason(registry: Registry, name: str) -> str | None:
    """Why `probe NAME` is not a command, when plugins that are not running may explain it. Disabled
    plugins are never imported, so each one that is off is named as a possible provider."""
    off = registry.unavailable()
    if not off:
        return None
    if len(off) == 1:
        info = off[0]
        if info.status == "disabled":
            how = enable_hint(info).removeprefix("disabled: ")
            return f"no command {name!r}; it may come from plugin {info.name!r}, which is disabled: {how}"
        return f"no command {name!r}; it may come from plugin {info.name!r}, which failed to load: {info.reason}"
    names = "; ".join(f"{i.name} ({enable_hint(i)})" for i in off)
    return f"no command {name!r}; it may come from a plugin that is not running: {names} (see `probe plugins`)"


def _option_keys(cmd: Any) -> dict[str, str]:
    """Config key -> parameter name for one command: option names as typed (`flag-rate`, `json`),
    their underscore spellings, and the parameter names. The off switch of a flag pair
    (`no-decorrelate`) maps to "!decorrelate": its value is inverted."""
    keys: dict[str, str] = {}
    for param in cmd.params:
        if param.name is None:
            continue
        keys[param.name] = param.name
        for opts, prefix in ((getattr(param, "opts", []), ""), (getattr(param, "secondary_opts", []), "!")):
            for opt in opts:
                if opt.startswith("--"):
                    keys[opt[2:]] = keys[opt[2:].replace("-", "_")] = prefix + param.name
    return keys


def _command_sections(
    ctx: typer.Context, sections: dict[str, dict[str, Any]], where: Callable[..., str], registry: Registry
) -> dict[str, dict[str, Any]]:
    """Config sections as click default maps (parameter names). A section for a command that is not
    loaded is a warning naming the plugins that are off; unknown options of a loaded command are errors."""
    from probe.errors import ConfigError

    group = cast(TyperGroup, ctx.command)  # the root command: a ProbeGroup
    out: dict[str, dict[str, Any]] = {}
    for name, options in sections.items():
        cmd = group.get_command(ctx, name)
        if cmd is None:
            off = registry.why_missing() if registry.unavailable() else "no installed plugin provides it"
            warnings.warn(f"{where(name)}: no loaded command {name!r}; its section is ignored ({off})", stacklevel=2)
            continue
        if hasattr(cmd, "list_commands"):
            own = _option_keys(cmd)  # a group's own options (e.g. `probe models --json`)
            sub_maps: dict[str, Any] = _section(
                name, cmd, {k: v for k, v in options.items() if str(k) in own}, partial(where, name)
            )
            for sub, sub_opts in options.items():
                if str(sub) in own:
                    continue
                subcmd = cast(TyperGroup, cmd).get_command(ctx, sub.replace("_", "-"))
                if subcmd is None or not isinstance(sub_opts, dict):
                    raise ConfigError(f"{where(name, sub)}: {name} has no command or option {sub!r}")
                sub_maps[sub.replace("_", "-")] = _section(f"{name} {sub}", subcmd, sub_opts, partial(where, name, sub))
            out[name] = sub_maps
            continue
        out[name] = _section(name, cmd, options, partial(where, name))
    return out


def _section(name: str, cmd: Any, options: dict[str, Any], where: Callable[[str], str]) -> dict[str, Any]:
    """One command's section as its default map: keys checked, `no-x` inverted, values checked by
    the section's pydantic model, built from the command's options (each error at its file:line)."""
    from probe.errors import ConfigError

    keys = _option_keys(cmd)
    unknown = [k for k in options if str(k) not in keys]
    if unknown:
        shown = sorted(
            next((o[2:] for o in getattr(p, "opts", []) if o.startswith("--")), p.name)
            for p in cmd.params
            if getattr(p, "param_type_name", "") == "option"
        )
        takes_set = any("--set" in getattr(p, "opts", []) for p in cmd.params)
        raise ConfigError(
            f"{where(unknown[0])}: `probe {name}` has no option {unknown[0]!r} (options: {', '.join(shown)})",
            hint=f"other settings go under `set:`, e.g. set: [{unknown[0]}=VALUE]" if takes_set else None,
        )
    from probe.cli.config import check_section

    out: dict[str, Any] = {}
    written: dict[str, str] = {}
    for key, value in options.items():
        target = keys[str(key)]
        if target.startswith("!"):  # `no-x: true` means x = false
            if not isinstance(value, bool):
                raise ConfigError(f"{where(key)}: {key!r} takes true or false, got {value!r}")
            target, value = target[1:], not value
        out[target] = value
        written[target] = str(key)
    return check_section(name, list(cmd.params), out, written, where)  # types and bounds, as the flags'


def _root(
    ctx: typer.Context,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help=(
                "Model spec: shapes-tiny (default), ARCH@TAG, ARCH@file.safetensors, ARCH@random, hf-hub:…, "
                "local-dir:…; repeat to compare models (run, bias, nsfw, neighbours, shuffle-test). Env: PROBE_MODEL."
            ),
            show_default=False,
        ),
    ] = None,
    device: Annotated[
        str | None, typer.Option(envvar="PROBE_DEVICE", help="auto (cuda, mps, cpu), cpu, cuda, cuda:N, mps.")
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(
            envvar="PROBE_PRECISION",
            help=(
                "fp32 (default), bf16 or fp16 autocast; fp16 GPU only; bf16 also on CPU "
                "(faster on CPUs with native bf16, slightly less accurate)."
            ),
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            envvar="PROBE_CONFIG",
            help="YAML file of defaults (global keys and per-command sections).",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", envvar="PROBE_OUT", help="Output folder (default probe-out).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Base random seed (0 to 2**63-1).", min=0, max=2**63 - 1)] = None,
    allow_pickle: Annotated[
        bool,
        typer.Option("--allow-pickle", help="Allow loading pickle checkpoints (.pt/.bin): only for files you trust."),
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", is_eager=True, callback=lambda v: _print_version(v)
        ),
    ] = False,
) -> None:
    """Look inside CLIP models: inversion, nearest words, word-order tests and audits.

    Global options may come before or after the command name, e.g. `probe invert "a star" -m MODEL`.
    """
    state = get_state(ctx)
    state.debug = debug
    from probe.cli.config import load_config

    registry = current()
    cfg = load_config(config)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sections = _command_sections(ctx, cfg.commands, cfg.where, registry)
    for w in caught:
        typer.echo(f"Warning: {escaped(str(w.message))}", err=True)
    ctx.default_map = {**(ctx.default_map or {}), **sections}
    v = cfg.values
    # the command line over the config over the default, an empty value included (`-m ""` is that model, not none)
    given = list(dict.fromkeys(model or ([os.environ["PROBE_MODEL"]] if os.environ.get("PROBE_MODEL") else [])))
    state.models = given  # read whole: a path with spaces stays one spec, as before -m became repeatable
    state.model = given[0] if given else v.get("model", state.model)
    state.command = ctx.invoked_subcommand
    state.device = device if device is not None else v.get("device", state.device)
    state.precision = precision if precision is not None else v.get("precision", state.precision)
    state.out_dir = out if out is not None else Path(v.get("out", state.out_dir))
    state.seed = seed if seed is not None else v.get("seed")
    # --allow-pickle has no off switch: the flag, or `allow_pickle: true` in the config, is the user's consent
    state.allow_pickle = allow_pickle or bool(v.get("allow_pickle", False))
    state.labeller = v.get("labeller")
    state.config = v
    if not ctx.resilient_parsing and "--help" not in sys.argv and "-h" not in sys.argv:
        state.check_device()  # an absent --device is reported before inputs are read or a model loads


def build_app(extra_plugins: dict | None = None) -> typer.Typer:
    """The root app with core commands and every selected plugin's commands mounted. A plugin whose
    import took over SLOW_IMPORT_SECONDS gets a note under `probe --help`."""
    plugins, warnings_ = discover(extra_plugins)
    slow = [p.info for p in plugins if p.info.import_seconds > SLOW_IMPORT_SECONDS]
    note = "; ".join(f"plugin {i.name!r} took {i.import_seconds:.1f} s to import" for i in slow)
    app = typer.Typer(
        cls=ProbeGroup,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=True,
        context_settings={"help_option_names": ["-h", "--help"]},
        rich_markup_mode=None,
        epilog=f"Note: {note} (every command waits for it; see `probe plugins --timings`)." if slow else None,
    )
    app.callback()(_root)
    registry = activate(Registry(plugins, warnings_))
    from probe.cli import commands as core_commands

    core_commands.register(app, registry)
    add_commands(registry, app)
    return app


def main() -> None:
    """Console-script entry point."""
    if sys.stdout is None or sys.stderr is None:  # started with `>&-`: every print would be a traceback
        if sys.stderr is not None:
            print("Error: standard output is closed (redirect it to a file or /dev/null instead)", file=sys.stderr)
        raise SystemExit(2)
    for stream in (sys.stdout, sys.stderr):  # an ASCII-only terminal gets \u2606 escapes, never a crash
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    app = build_app()
    try:
        app(prog_name="probe")
    except SystemExit as exc:
        _exit(exc.code)
    _exit(0)


def _exit(code: object) -> None:
    """Exit with `code` (SystemExit's: None, an int, or a message). Once torch is loaded, skip the
    interpreter's teardown of its modules (about 1.3 s on 2 cores for torch, open_clip and friends):
    run the atexit handlers (plugins' and logging's included), flush the standard streams, leave."""
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    code = code or 0
    if "torch" not in sys.modules:  # --help, --version and errors before any model: a normal exit
        raise SystemExit(code)
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):  # a closed pipe (e.g. `probe ... | head`)
            stream.flush()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
