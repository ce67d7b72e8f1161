"""The root `probe` command: global options, plugin mounting, and the one place errors become exits."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer
from typer.core import TyperGroup

from probe.cli_state import get_state
from probe.errors import ProbeError
from probe.registry import discover


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("clip-probe")
    except PackageNotFoundError:
        return "0+unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"clip-probe {_version()}")
        raise typer.Exit()


class ProbeGroup(TyperGroup):
    """Turns ProbeError (and stray bugs) into one line on stderr and an exit code; --debug re-raises."""

    def invoke(self, ctx: typer.Context) -> Any:
        def show_warning(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
            typer.echo(f"Warning: {message}", err=True)

        old = warnings.showwarning
        warnings.showwarning = show_warning
        try:
            return super().invoke(ctx)
        except ProbeError as exc:
            if _debug(ctx):
                raise
            typer.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            typer.echo("Interrupted.", err=True)
            ctx.exit(130)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except Exception as exc:  # a bug, not bad input: one line unless --debug
            if _debug(ctx):
                raise
            typer.echo(f"Error: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", err=True)
            ctx.exit(1)
        finally:
            warnings.showwarning = old


def _debug(ctx: typer.Context) -> bool:
    obj = ctx.find_root().obj
    return bool(getattr(obj, "debug", False)) or os.environ.get("PROBE_DEBUG") == "1"


def _check_command_sections(ctx: typer.Context, sections: dict[str, dict[str, Any]], where: Callable[[str], str]) -> None:
    """Config sections must name real commands and options, so typos are not silently ignored."""
    from probe.errors import ConfigError

    group = ctx.command
    for name, options in sections.items():
        cmd = group.get_command(ctx, name)
        if cmd is None:
            raise ConfigError(f"{where(name)}: unknown key or command {name!r}")
        if hasattr(cmd, "list_commands"):
            for sub, sub_opts in options.items():
                subcmd = cmd.get_command(ctx, sub.replace("_", "-"))
                if subcmd is None or not isinstance(sub_opts, dict):
                    raise ConfigError(f"{where(name)}: {name} has no command {sub!r}")
            continue
        params = {p.name for p in cmd.params}
        unknown = sorted(set(options) - params)
        if unknown:
            raise ConfigError(f"{where(name)}: `probe {name}` has no option {unknown[0]!r} (options: {', '.join(sorted(params))})")
        for param in cmd.params:
            if param.name in options and options[param.name] is not None and param.callback is None:
                try:
                    param.process_value(ctx, options[param.name])  # the value click would get: converted and range-checked
                except typer.BadParameter as exc:
                    raise ConfigError(f"{where(name)}: {name}.{param.name}: bad value {options[param.name]!r}: {exc.message}") from None


def _root(
    ctx: typer.Context,
    model: Annotated[Optional[str], typer.Option("--model", "-m", envvar="PROBE_MODEL", help="Model spec: shapes-tiny (default), ARCH@TAG, ARCH@file.safetensors, ARCH@random, hf-hub:…, local-dir:…", show_default=False)] = None,
    device: Annotated[Optional[str], typer.Option(envvar="PROBE_DEVICE", help="auto (cuda, mps, cpu), cpu, cuda, cuda:N, mps.")] = None,
    precision: Annotated[Optional[str], typer.Option(envvar="PROBE_PRECISION", help="fp32 (default), bf16 or fp16 autocast; fp16 GPU only; bf16 also on CPU (faster batched inversion on CPUs with native bf16, slightly less accurate).")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", "-c", envvar="PROBE_CONFIG", help="YAML file of defaults (global keys and per-command sections).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", envvar="PROBE_OUT", help="Output folder (default probe-out).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Base random seed (0 to 2**63-1).", min=0, max=2**63 - 1)] = None,
    allow_pickle: Annotated[bool, typer.Option("--allow-pickle", help="Allow loading pickle checkpoints (.pt/.bin): only for files you trust.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks.")] = False,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.", is_eager=True, callback=lambda v: _print_version(v))] = False,
) -> None:
    """Look inside CLIP models: inversion, nearest words, word-order tests and audits."""
    state = get_state(ctx)
    state.debug = debug
    from probe.config import load_config

    cfg = load_config(config)
    _check_command_sections(ctx, cfg.commands, cfg.where)
    ctx.default_map = {**(ctx.default_map or {}), **cfg.commands}
    v = cfg.values
    state.model = model or v.get("model", state.model)
    state.device = device or v.get("device", state.device)
    state.precision = precision or v.get("precision", state.precision)
    state.out_dir = out or Path(v.get("out", state.out_dir))
    state.seed = seed if seed is not None else v.get("seed")
    state.allow_pickle = allow_pickle or bool(v.get("allow_pickle", False))
    state.labeller = v.get("labeller")
    state.config = v


def build_app(extra_plugins: dict | None = None) -> typer.Typer:
    """The root app with core commands and every selected plugin's commands mounted."""
    app = typer.Typer(
        cls=ProbeGroup,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        context_settings={"help_option_names": ["-h", "--help"]},
        rich_markup_mode=None,
    )
    app.callback()(_root)
    plugins = discover(extra_plugins)
    from probe import core_commands

    core_commands.register(app, plugins)
    for plugin in plugins:
        if plugin.module is None:
            continue
        before = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
        try:
            plugin.module.register_commands(app)
        except Exception as exc:  # a plugin that breaks while registering is reported, not fatal
            plugin.info.status, plugin.info.reason = "failed", f"{type(exc).__name__}: {exc}"
            continue
        after = [c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands] + [g.name for g in app.registered_groups]
        plugin.info.commands = [n for n in after if n not in before and n]
    return app


def main() -> None:
    """Console-script entry point."""
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
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (e.g. `probe ... | head`)
            pass
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
