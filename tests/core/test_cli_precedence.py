"""Command line over config file over default, for every option of every command, falsy values included.

The cases are generated from the app itself (every command the built-in plugins mount, walked
through click), so a new option is covered the day it is added. For each option a value of 0,
false or empty on the command line must reach the command although the config file says
otherwise, and the config's value must reach it when the command line says nothing. A flag that
has no off switch (`--resume`, `--json`) cannot say false on the command line: for it the config's
`true` beats the default and the command line's flag beats the config's `false`. Commands run with
their bodies replaced by a recorder, so only the option handling is under test.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import typer
import yaml
from typer.testing import CliRunner

SKIP = {"help", "version", "install_completion", "show_completion", "config"}  # actions and the config's own path
GLOBAL_ONLY_ON_THE_COMMAND_LINE = {"debug"}  # the config has no such key: a traceback switch, per run


@dataclass
class Case:
    command: tuple[str, ...]  # () for the root's global options
    option: str  # the parameter's name
    flag: str  # its option as typed
    cli: list[str]  # the command line's tokens: 0, false or empty
    against: Any  # the config's value when the command line gives one
    expect_cli: Any  # what reaches the command then
    alone: Any  # the config's value when the command line says nothing
    expect_config: Any  # what reaches the command then
    one_way: bool = False  # a flag with no off switch

    @property
    def id(self) -> str:
        return f"{' '.join(self.command) or 'probe'} {self.flag}"


# The root's options set the session's state; their config values must be valid ones (a device is checked at once).
GLOBAL_CONFIG: dict[str, Any] = {
    "model": "from-config",
    "device": "cpu",
    "precision": "bf16",
    "out": "from-config",
    "seed": 1,
}


def _group():
    from probe.cli.app import build_app

    return typer.main.get_command(build_app())


def _commands(group) -> list[tuple[tuple[str, ...], Any]]:
    from typer._click.core import Context

    ctx = Context(group)
    out: list[tuple[tuple[str, ...], Any]] = []

    def walk(cmd, path: tuple[str, ...]) -> None:
        if hasattr(cmd, "list_commands"):
            for name in cmd.list_commands(ctx):
                walk(cmd.get_command(ctx, name), (*path, name))
        else:
            out.append((path, cmd))

    walk(group, ())
    return out


def _base(annotation: Any) -> tuple[Any, bool]:
    """(element type, is a list) of an option's annotation, Optional stripped."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (list, tuple):
        return _base(args[0])[0], True
    if args and typing.get_origin(annotation) is not None:  # X | None
        return _base(args[0])
    return annotation, False


def _case(path: tuple[str, ...], param: Any) -> Case | None:
    if param.param_type_name != "option" or param.name in SKIP:
        return None
    flag = next(o for o in param.opts if o.startswith("--"))
    if param.is_flag:
        default = bool(param.default)
        if param.secondary_opts:  # --x/--no-x: the command line's opposite of the default beats the config
            cli = [param.secondary_opts[0]] if default else [param.opts[0]]
            return Case(path, param.name, flag, cli, default, not default, not default, not default)
        return Case(path, param.name, flag, [flag], False, True, True, True, one_way=True)
    kind, many = _base(param.type_descriptor.annotation)
    cli_value: str
    cfg_value: Any
    want_cli: Any
    want_cfg: Any
    if kind is int or kind is float:
        low = param.min if param.min is not None else 0
        falsy = kind(max(0, low))
        high = param.max if param.max is not None else falsy + 2
        other = next(kind(v) for v in (falsy + 1, falsy + 2, (falsy + high) / 2) if v <= high and v != param.default)
        cli_value, cfg_value, want_cli, want_cfg = str(falsy), other, falsy, other
    elif kind is str or kind is Path:
        cli_value, cfg_value = "", GLOBAL_CONFIG.get(param.name, "from-config") if not path else "from-config"
        want_cli, want_cfg = str(kind("")), str(kind(cfg_value))
    else:
        raise AssertionError(f"{' '.join(path)} {flag}: no case for options of type {kind!r}")
    if not path and param.name in GLOBAL_CONFIG:
        cfg_value = GLOBAL_CONFIG[param.name]
        want_cfg = str(Path(str(cfg_value))) if kind is Path else cfg_value
    if many and not path and param.name == "model":
        many = False  # -m is repeatable (several models compared) but the config names one model, read as state.model
    if many:
        return Case(path, param.name, flag, [flag, cli_value], [cfg_value], [want_cli], [cfg_value], [want_cfg])
    return Case(path, param.name, flag, [flag, cli_value], cfg_value, want_cli, cfg_value, want_cfg)


def _cases() -> list[Case]:
    group = _group()
    cases = [c for p in group.params if p.name not in GLOBAL_ONLY_ON_THE_COMMAND_LINE for c in [_case((), p)] if c]
    for path, cmd in _commands(group):
        cases += [c for p in cmd.params for c in [_case(path, p)] if c]
    return cases


CASES = _cases()


def _required(cmd, tmp_path: Path, but: str) -> list[str]:
    """Values for the command's required arguments and options but the one under test (the
    recorder ignores them): an existing file, for types that want one."""
    out = []
    for p in cmd.params:
        if p.required and p.name != but:
            target = tmp_path / f"arg-{p.name}"
            target.write_text("x")
            out += [str(target)] if p.param_type_name == "argument" else [p.opts[0], str(target)]
    return out


def _normal(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_normal(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


REFUSED = "refused"  # the command line's value was used, and refused as a bad value (exit 1 or 2, one line)


def _run(case: Case, tmp_path: Path, cli: list[str], config: Any) -> Any:
    """Run the case's command with the recorder as its body; the value its option (or the global
    state, for the root's options) ended up with, or REFUSED."""
    from typer._click.globals import get_current_context

    from probe.cli.state import get_state

    group = _group()
    seen: dict[str, Any] = {}
    commands = dict(_commands(group))
    path = case.command or ("vocabs",)  # globals: any command without arguments
    cmd = commands[path]

    def record(**kwargs: Any) -> None:
        seen.update(kwargs)
        seen["__state__"] = get_state(typing.cast(typer.Context, get_current_context()))

    cmd.callback = record
    doc: dict[str, Any] = {} if config is None else {case.flag[2:]: config}
    if not case.command and config is not None:
        doc = {case.option: config}  # the global keys are spelled as the parameters
    for name in reversed(case.command):
        doc = {name: doc}
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    globals_, local = ([], cli) if case.command else (cli, [])
    args = ["-c", str(cfg), *globals_, *path, *local, *_required(cmd, tmp_path, case.option)]
    with mock.patch("typer.testing._get_command", lambda app: group):  # this group, its bodies replaced
        result = CliRunner().invoke(typer.Typer(), args, catch_exceptions=False)
    if result.exit_code in (1, 2) and cli and "from-config" not in result.output and "Traceback" not in result.output:
        return f"{REFUSED}: {result.output.strip()}"
    assert result.exit_code == 0, f"probe {' '.join(args)}: {result.output}"
    if case.command:
        return _normal(seen[case.option])
    return _normal(getattr(seen["__state__"], "out_dir" if case.option == "out" else case.option))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_command_line_beats_the_config_even_when_falsy(case, tmp_path):
    """0, false or empty on the command line is the value used (or refused as a bad value, for a
    setting that cannot be empty), never replaced by the config's."""
    got = _run(case, tmp_path, case.cli, case.against)
    assert got == _normal(case.expect_cli) or (str(got).startswith(REFUSED) and case.cli[-1] == ""), got


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_config_beats_the_default(case, tmp_path):
    assert _run(case, tmp_path, [], case.alone) == _normal(case.expect_config)


def test_every_option_of_every_command_is_covered(capsys):
    """Each option of each command has its case, but for the actions that are not settings."""
    group = _group()
    options = {
        (path, p.name)
        for path, cmd in [((), group), *_commands(group)]
        for p in cmd.params
        if p.param_type_name == "option" and p.name not in SKIP | GLOBAL_ONLY_ON_THE_COMMAND_LINE
    }
    covered = {(c.command, c.option) for c in CASES}
    assert options == covered
    with capsys.disabled():
        print(
            f"\nprecedence: {len(covered)} options of {len({c.command for c in CASES})} commands"
            f" (the root's global options counted as one), {sum(c.one_way for c in CASES)} of them"
            " flags without an off switch"
        )


def test_a_config_that_allows_pickle_grants_the_consent_the_flag_gives(tmp_path):
    """`--allow-pickle` has no off switch: consent cannot be withdrawn on the command line, so a
    config's `allow_pickle: true` is consent given in writing (docs/models.md says so) and a
    config's `false` does not undo the flag."""
    case = next(c for c in CASES if not c.command and c.option == "allow_pickle")
    assert _run(case, tmp_path, [], True) is True
    assert _run(case, tmp_path, ["--allow-pickle"], False) is True
    assert _run(case, tmp_path, [], False) is False
    assert _run(case, tmp_path, [], None) is False  # the default: no pickle
    docs = " ".join((Path(__file__).resolve().parents[2] / "docs" / "models.md").read_text().split())
    assert "`allow_pickle: true` in a config file is consent to load pickle checkpoints" in docs


PAIRS = [c for c in CASES if c.command and not c.one_way and isinstance(c.alone, bool)]


@pytest.mark.parametrize("case", PAIRS, ids=[c.id for c in PAIRS])
def test_a_config_key_spelled_as_the_off_switch_means_the_opposite(case, tmp_path):
    """`no-fine-tune: true` in a config is `--no-fine-tune`, and `no-fine-tune: false` is `--fine-tune`."""
    group = _group()
    param = next(p for p in dict(_commands(group))[case.command].params if p.name == case.option)
    off = param.secondary_opts[0][2:]
    for value in (True, False):
        doc: dict = {off: value}
        for name in reversed(case.command):
            doc = {name: doc}
        (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(doc))
        seen: dict = {}
        dict(_commands(group))[case.command].callback = seen.update
        with mock.patch("typer.testing._get_command", lambda app: group):
            result = CliRunner().invoke(typer.Typer(), ["-c", str(tmp_path / "cfg.yaml"), *case.command])
        assert result.exit_code == 0, result.output
        assert seen[case.option] is (not value)
