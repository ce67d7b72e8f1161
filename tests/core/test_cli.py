import json
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

import tests.fake_plugin as fake_plugin


def test_help_lists_builtin_and_third_party_commands(invoke):
    result = invoke("--help", extra_plugins={"fake": lambda: fake_plugin})
    assert result.exit_code == 0
    for name in ("score", "plugins", "models", "fake-two-probes"):
        assert name in result.stdout


def test_help_lists_the_probes_first_in_panels(invoke):
    """`probe --help` groups commands: the probes first, then experiments, then models and plugins; a
    plugin's command without a panel is listed under "More commands" before the housekeeping."""
    text = invoke("--help", extra_plugins={"fake": lambda: fake_plugin}).stdout
    panels = [line[:-1] for line in text.splitlines() if line.endswith(":") and not line.startswith(" ")]
    assert panels[panels.index("Probes") :] == [
        "Probes",
        "Experiments and audits",
        "More commands",
        "Models, plugins and data",
    ]
    probes = text.split("Probes:")[1].split("Experiments and audits:")[0]
    assert [line.split()[0] for line in probes.strip().splitlines()] == [
        "invert",
        "neighbours",
        "score",
        "shuffle-test",
        "ui",
    ]
    assert "fake-two-probes" in text.split("More commands:")[1].split("Models, plugins and data:")[0]


def test_shell_completion_completes_commands_and_options():
    env = {**os.environ, "_PROBE_COMPLETE": "complete_bash", "COMP_WORDS": "probe inv", "COMP_CWORD": "1"}
    probe = str(Path(sys.executable).with_name("probe"))
    out = subprocess.run([probe], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["invert", "invert-validate"]
    env.update(COMP_WORDS="probe invert --pre", COMP_CWORD="2")
    assert subprocess.run([probe], env=env, capture_output=True, text=True, timeout=60).stdout.split() == ["--preset"]


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys; from probe.cli.app import build_app; from typer.testing import CliRunner; "
        "r = CliRunner().invoke(build_app(), ['--help']); assert r.exit_code == 0, r.output; "
        "heavy = ('torch', 'open_clip', 'faiss', 'numpy', 'transformers', 'pydantic', 'ray', 'gradio'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_listing_plugins_and_their_registrations_does_not_import_torch():
    code = (
        "import sys; from probe.cli.app import build_app; from typer.testing import CliRunner; "
        "r = CliRunner().invoke(build_app(), ['plugins', '--json']); assert r.exit_code == 0, r.output; "
        "print(sorted(m for m in ('torch', 'open_clip', 'faiss', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_plugins_command_lists_status(invoke):
    result = invoke("plugins", "--json", extra_plugins={"fake": lambda: fake_plugin})
    rows = {r["name"]: r for r in json.loads(result.stdout)["plugins"]}
    assert rows["score"]["status"] == "loaded" and rows["score"]["distribution"] == "clip-probe"
    assert rows["fake"]["commands"] == ["fake-two-probes", "fake-fail"]


def test_broken_plugin_is_reported_and_others_still_work(invoke):
    def broken():
        raise ImportError("No module named 'missing_dependency'")

    result = invoke("plugins", "--json", extra_plugins={"broken": broken})
    rows = {r["name"]: r for r in json.loads(result.stdout)["plugins"]}
    assert rows["broken"]["status"] == "failed"
    assert "missing_dependency" in rows["broken"]["reason"]
    assert rows["score"]["status"] == "loaded"
    assert invoke("models", "--json", extra_plugins={"broken": broken}).exit_code == 0


def test_module_without_hook_is_a_failed_plugin(invoke):
    result = invoke("plugins", "--json", extra_plugins={"empty": lambda: types.ModuleType("empty")})
    rows = {r["name"]: r for r in json.loads(result.stdout)["plugins"]}
    assert rows["empty"]["status"] == "failed" and "implements no probe hook" in rows["empty"]["reason"]


def test_env_var_selects_and_disables_plugins(invoke, monkeypatch):
    monkeypatch.setenv("PROBE_LOAD_PLUGINS", "fake")
    rows = {
        r["name"]: r["status"]
        for r in json.loads(invoke("plugins", "--json", extra_plugins={"fake": lambda: fake_plugin}).stdout)["plugins"]
    }
    assert rows["fake"] == "loaded"
    assert {status for name, status in rows.items() if name != "fake"} == {"disabled"}
    assert not [line for line in invoke("--help").stdout.splitlines() if line.split()[:1] == ["score"]]
    monkeypatch.delenv("PROBE_LOAD_PLUGINS")
    monkeypatch.setenv("PROBE_DISABLE_PLUGINS", "score")
    rows = {r["name"]: r["status"] for r in json.loads(invoke("plugins", "--json").stdout)["plugins"]}
    assert rows["score"] == "disabled"


def test_two_probes_share_one_model_load(invoke, tiny_spec, monkeypatch):
    from probe.session import Session

    calls = []
    real_open = Session.open.__func__  # type: ignore[attr-defined]  # the function under the classmethod

    def counting_open(cls, *a, **k):
        calls.append(a)
        return real_open(cls, *a, **k)

    monkeypatch.setattr(Session, "open", classmethod(counting_open))
    result = invoke("-m", tiny_spec, "--device", "cpu", "fake-two-probes", extra_plugins={"fake": lambda: fake_plugin})
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "same=True loads=1"
    assert len(calls) == 1


def test_domain_error_is_one_line_and_debug_shows_traceback(invoke):
    result = invoke("fake-fail", extra_plugins={"fake": lambda: fake_plugin})
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: the fake probe failed (do the other thing)"
    result = invoke("--debug", "fake-fail", extra_plugins={"fake": lambda: fake_plugin})
    assert result.exit_code == 1 and "ProbeError" in repr(result.exception)


@pytest.mark.parametrize(
    "args, message",
    [
        (["-m", "ViT-B-1"], "did you mean ViT-B-16"),
        (["-m", "ViT-B-16"], "needs weights"),
        (["-m", "RN50@openai"], "not cached and cannot be downloaded"),
        (["-m", "shapes-tiny@/nope/w.bin"], "refusing to load pickle"),
        (["--device", "tpu"], "unknown device"),
    ],
)
def test_model_errors_are_clean(invoke, tmp_path, args, message):
    from PIL import Image

    img = tmp_path / "x.png"
    Image.new("RGB", (8, 8)).save(img)
    if "w.bin" in args[-1]:
        args = ["-m", f"shapes-tiny@{tmp_path / 'w.bin'}"]
        (tmp_path / "w.bin").write_bytes(b"x")
    result = invoke(*args, "score", img, "-p", "a")
    assert result.exit_code in (1, 2)
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_score_end_to_end(invoke, tiny_spec, tmp_path, monkeypatch):
    from PIL import Image

    Image.new("RGB", (20, 30), (255, 0, 0)).save(tmp_path / "red.png")
    Image.new("RGB", (40, 40), (0, 0, 255)).save(tmp_path / "blue.png")
    result = invoke(
        "-m", tiny_spec, "score", tmp_path / "red.png", tmp_path / "blue.png", "-p", "red", "-p", "blue", "--json"
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(data["cosine"]) == 2 and len(data["cosine"][0]) == 2
    assert all(abs(sum(p) - 1) < 1e-5 for p in data["probs"])
    assert data["labels"][0] in ("red", "blue")
    assert data["model"]["fingerprint"]
    monkeypatch.chdir(tmp_path)  # a short relative path, so the table does not wrap it
    table = invoke("-m", tiny_spec, "score", "red.png", "-p", "red", "-p", "blue")
    assert table.exit_code == 0 and "red.png" in table.stdout


def test_score_table_names_the_shared_folder_once_and_fits_80_columns(invoke, tmp_path, monkeypatch):
    import csv

    from PIL import Image

    monkeypatch.chdir(tmp_path)  # relative paths, as a user types them
    folder = Path("probe-out") / "invert"
    names = ["red-square/seed-0.png", "a-red-circle-left-of-a-blue-square-above-a-green-star/seed-1.png"]
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (20, 20), (255, 0, 0)).save(folder / name)
    monkeypatch.setenv("COLUMNS", "80")
    prompts = ["red square", "a red circle left of a blue square", "a big blue circle above a small green triangle"]
    args = ["score", *(folder / n for n in names), *(a for p in prompts for a in ("-p", p))]
    result = invoke(*args, "--csv", tmp_path / "scores.csv")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert f"images in {folder}" in lines[0]
    assert all(len(line) <= 80 for line in lines)
    assert not any("probe-out" in line for line in lines[1:])  # rows show paths below the folder
    assert "red-square/seed-0.png" in result.stdout
    assert "triangle" in result.stdout and "circle" in result.stdout  # prompts wrap between words
    rows = list(csv.DictReader((tmp_path / "scores.csv").open()))
    assert [(r["image"], r["prompt"]) for r in rows] == [(str(folder / n), p) for n in names for p in prompts]
    data = json.loads(invoke(*args, "--json").stdout)
    assert [float(r["cosine"]) for r in rows] == pytest.approx([c for row in data["cosine"] for c in row])


def test_bad_image_is_a_clean_error(invoke, tmp_path):
    (tmp_path / "bad.png").write_text("not an image")
    result = invoke("score", tmp_path / "bad.png", "-p", "a")
    assert result.exit_code == 1 and "cannot read image" in result.stderr


def test_config_file_defaults_and_errors(invoke, tiny_spec, tmp_path):
    cfg = tmp_path / "probe.yaml"
    cfg.write_text(f"model: {tiny_spec}\nmodels:\n  as_json: true\n")
    result = invoke("--config", cfg, "models")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0] == "shapes-tiny"
    cfg.write_text("model: shapes-tiny\nseed: 1: 2\n")
    result = invoke("--config", cfg, "models")
    assert result.exit_code == 2 and f"{cfg}:2: invalid YAML" in result.stderr
    cfg.write_text("model: shapes-tiny\n\ncolour: red\n")
    result = invoke("--config", cfg, "models")
    assert result.exit_code == 2 and f"{cfg}:3: unknown key 'colour'" in result.stderr
    cfg.write_text("seed: abc\n")
    assert "'seed' must be int" in invoke("--config", cfg, "models").stderr
    cfg.write_text("score:\n  colour: 1\n")
    assert "`probe score` has no option 'colour'" in invoke("--config", cfg, "models").stderr
    assert "config file not found" in invoke("--config", tmp_path / "nope.yaml", "models").stderr


def test_config_global_keys_are_checked_by_their_model_at_their_line(invoke, tmp_path):
    cfg = tmp_path / "probe.yaml"
    for text, message in (
        ("model: shapes-tiny\nseed: -1\n", f"{cfg}:2: seed: Input should be greater than or equal to 0, got -1"),
        ("seed: true\n", f"{cfg}:1: 'seed' must be int, got True"),
        ("out: out\nallow_pickle: 'yes'\n", f"{cfg}:2: 'allow_pickle' must be bool, got 'yes'"),
        ("device: 3\n", f"{cfg}:1: 'device' must be str, got 3"),
    ):
        cfg.write_text(text)
        result = invoke("--config", cfg, "models")
        assert result.exit_code == 2 and message in result.stderr, (text, result.stderr)


@pytest.mark.parametrize(
    "text, message",
    [
        ("neighbours:\n  k: -1\n", "{cfg}:2: neighbours.k: bad value -1: Input should be greater than or equal to 1"),
        ("invert:\n  steps: abc\n", "{cfg}:2: invert.steps: bad value 'abc': Input should be a valid integer"),
        ("models:\n  json: maybe\n", "{cfg}:2: models.json: bad value 'maybe': Input should be a valid boolean"),
        ("world:\n\n  render:\n    size: x\n", "{cfg}:4: world render.size: bad value 'x': Input should be a valid"),
        ("bias:\n  n: 0\n", "{cfg}:2: bias.n: bad value 0: Input should be greater than or equal to 1"),
        ("seed: 1\n\nshuffle_test:\n  # c\n  seed: -1\n", "{cfg}:5: shuffle-test.seed: bad value -1: Input should be"),
    ],
)
def test_config_sections_are_checked_by_a_model_of_the_commands_options(invoke, tmp_path, text, message):
    cfg = tmp_path / "probe.yaml"
    cfg.write_text(text)
    result = invoke("--config", cfg, "models")
    assert result.exit_code == 2 and message.format(cfg=cfg) in result.stderr, result.stderr


def test_a_config_section_value_is_read_as_the_flag_would_be(tmp_path):
    import typer.main

    from probe.cli.app import build_app
    from probe.cli.config import check_section

    group = typer.main.get_command(build_app())
    ctx = group.make_context("probe", ["models"], resilient_parsing=True)
    world: Any = group.get_command(ctx, "world")  # type: ignore[attr-defined]
    train = world.get_command(ctx, "train")
    values = {"lr": "1e-3", "steps": "3"}
    assert check_section("world train", list(train.params), values, {}, str) == {"lr": 0.001, "steps": 3}


def test_a_config_section_sets_invert_knobs_through_set(invoke, tiny_spec, tmp_path):
    cfg = tmp_path / "probe.yaml"
    cfg.write_text(f"model: {tiny_spec}\ninvert:\n  steps: 2\n  set: [lr=0.07, 'transforms=[resize]']\n")
    result = invoke("--config", cfg, "--device", "cpu", "-o", tmp_path, "invert", "a star", "--json")
    assert result.exit_code == 0, result.stderr
    sidecar = json.loads(Path(json.loads(result.stdout)["images"][0]["sidecar"]).read_text())
    assert (sidecar["settings"]["lr"], sidecar["settings"]["transforms"], sidecar["steps"]) == (
        0.07,
        [{"resize": {}}],
        2,
    )


def test_a_knob_without_a_flag_in_a_config_section_points_to_set(invoke, tmp_path):
    cfg = tmp_path / "probe.yaml"
    cfg.write_text("invert:\n  steps: 2\n  lr: 0.05\n")
    result = invoke("--config", cfg, "models")
    assert result.exit_code == 2 and f"{cfg}:3: `probe invert` has no option 'lr'" in result.stderr
    assert "set: [lr=VALUE]" in result.stderr


def test_console_script_runs():
    exe = os.path.join(os.path.dirname(sys.executable), "probe")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("clip-probe ")


class Exited(Exception):
    """Stands in for os._exit, which would end the test process."""


@pytest.mark.parametrize(
    "argv, code", [(["--version"], 0), (["score"], 2), (["neighbours", "--vocab", "/nonexistent/v.txt", "x"], 1)]
)
def test_main_exits_without_teardown_once_torch_is_loaded(monkeypatch, capsys, argv, code):
    import torch  # noqa: F401  (as after any command that loaded a model)

    from probe.cli import app as cli

    def fake_exit(status: int) -> None:
        raise Exited(status)

    monkeypatch.setattr(cli.os, "_exit", fake_exit)
    monkeypatch.setattr(sys, "argv", ["probe", *argv])
    with pytest.raises(Exited) as exited:
        cli.main()
    assert exited.value.args == (code,)


def test_main_exits_normally_before_torch_is_loaded():
    code = "import sys; from probe.cli.app import main; sys.argv = ['probe', '--version']; main()"
    out = subprocess.run([sys.executable, "-c", code + "; print('unreachable')"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("clip-probe ") and "unreachable" not in out.stdout


@pytest.mark.slow
def test_output_is_complete_when_the_cli_exits_fast(tmp_path, tiny_spec):
    probe = str(Path(sys.executable).with_name("probe"))
    out = subprocess.run(
        [
            probe,
            "--model",
            tiny_spec,
            "--out",
            str(tmp_path),
            "neighbours",
            "red",
            "--vocab",
            "world",
            "--k",
            "24",
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)["results"][0]["neighbours"]) == 24  # flushed before os._exit


@pytest.mark.slow
def test_fast_exit_still_runs_atexit_handlers(tmp_path, monkeypatch):
    code = (
        "import atexit, sys, torch; from pathlib import Path; from probe.cli.app import main; "
        f"atexit.register(lambda: Path({str(tmp_path / 'ran')!r}).write_text('yes')); "
        "sys.argv = ['probe', 'no-such-command']; main()"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 2 and (tmp_path / "ran").read_text() == "yes"


@pytest.mark.slow
def test_global_options_after_the_command(invoke, tiny_spec, tmp_path):
    """`-m`, `-o`, `--device`, `--seed` work after the command too, for plugin commands as well."""
    before = json.loads(invoke("-m", tiny_spec, "--device", "cpu", "neighbours", "star", "--k", "3", "--json").stdout)
    after = invoke("neighbours", "star", "-m", tiny_spec, "--k", "3", "--device=cpu", "--json")
    assert after.exit_code == 0, after.output
    assert (
        json.loads(after.stdout)["results"] == before["results"]
        and json.loads(after.stdout)["model"] == before["model"]
    )
    assert before["model"]["model"] == tiny_spec and before["model"]["device"] == "cpu"
    fake = invoke("fake-two-probes", "-m", tiny_spec, extra_plugins={"fake": lambda: fake_plugin})
    assert fake.exit_code == 0 and "same=True" in fake.stdout


def test_a_commands_own_option_wins_over_the_global_one(invoke, tmp_path):
    from probe.cli.app import build_app, hoist_global_options

    app = build_app()
    import typer.main

    group = typer.main.get_command(app)
    ctx = group.make_context("probe", ["--help"], resilient_parsing=True)
    assert hoist_global_options(group, ctx, ["merge", "a", "-o", "out"]) == [
        "merge",
        "a",
        "-o",
        "out",
    ]  # merge's own -o
    assert hoist_global_options(group, ctx, ["invert", "x", "-o", "out", "--steps", "2"]) == [
        "-o",
        "out",
        "invert",
        "x",
        "--steps",
        "2",
    ]
    assert hoist_global_options(group, ctx, ["--debug", "world", "render", "c", "--seed", "3", "-m", "M"]) == [
        "--debug",
        "-m",
        "M",
        "world",
        "render",
        "c",
        "--seed",
        "3",
    ]  # world render's own --seed stays
    # a short option with its value attached, as click accepts it: global hoisted, a command's own kept
    assert hoist_global_options(group, ctx, ["invert", "x", "-oout", "-mM"]) == ["-oout", "-mM", "invert", "x"]
    assert hoist_global_options(group, ctx, ["merge", "a", "-oout"]) == ["merge", "a", "-oout"]


def test_attached_short_values_work_after_the_command(invoke):
    """`-mSPEC` after the command is the global --model, as `-m SPEC` is (not "No such option")."""
    result = invoke("neighbours", "star", "-mno-such-model")
    assert result.exit_code == 1
    assert "unknown model architecture 'no-such-model'" in result.output


def test_a_global_option_without_its_value_is_reported_not_hoisted(invoke):
    result = invoke("neighbours", "star", "-m")
    assert result.exit_code == 2 and "requires an argument" in result.output and "No such command" not in result.output


def test_config_off_switch_of_a_flag_pair_inverts(tmp_path):
    import typer.main

    from probe.cli.app import _option_keys, _section, build_app

    group: Any = typer.main.get_command(build_app())  # a group: its commands are looked up by name
    ctx = group.make_context("probe", ["--help"], resilient_parsing=True)
    train = group.get_command(ctx, "world").get_command(ctx, "train")
    assert _option_keys(train)["no-fine-tune"] == "!fine_tune"
    assert _section("world train", train, {"no-fine-tune": True, "steps": 3}, lambda k: "f:1") == {
        "fine_tune": False,
        "steps": 3,
    }


def test_a_disabled_plugins_command_is_one_line(invoke, monkeypatch):
    monkeypatch.setenv("PROBE_DISABLE_PLUGINS", "neighbours")
    result = invoke("vocabs")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "Error: no command 'vocabs'; it may come from plugin 'neighbours', which is disabled: "
        "remove it from PROBE_DISABLE_PLUGINS"
    ]


def test_loading_status_shows_before_the_first_progress_bar_on_a_terminal(invoke, tiny_spec, tmp_path, terminal_stderr):
    result = invoke("-m", tiny_spec, "-o", tmp_path, "invert", "a star", "--steps", "2", "--size", "16", "--json")
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)  # stdout is the JSON alone
    shown = terminal_stderr.getvalue()
    assert f"loading {tiny_spec}…" in shown and "inverting 1 image(s)" in shown
    assert shown.index(f"loading {tiny_spec}…") < shown.index("inverting 1 image(s)")
    assert f"loading {tiny_spec}" not in result.stdout


def test_loading_status_stays_off_when_stderr_is_not_a_terminal(invoke, tiny_spec, tmp_path):
    result = invoke("-m", tiny_spec, "-o", tmp_path, "invert", "a star", "--steps", "2", "--size", "16")
    assert result.exit_code == 0, result.output
    assert f"loading {tiny_spec}" not in result.stderr  # logs and pipes get no spinner frames, as with progress bars


@pytest.mark.parametrize(
    "args",
    [
        ["score", "{tmp}/missing.png", "-p", "a"],
        ["score", "{tmp}/bad.png", "-p", "a"],
        ["neighbours", "-i", "{tmp}/bad.png"],
        ["shuffle-test", "-f", "{tmp}/missing.txt"],
        ["neighbours", "a star", "-v", "{tmp}/missing.txt"],
        ["neighbours", "a star", "-v", "no-such-list"],
        ["shuffle-test", "--jsonl", "{tmp}/missing.jsonl"],
        ["invert", "a star", "--preset", "{tmp}/missing.yaml"],
    ],
)
def test_bad_input_files_fail_before_the_model_loads(invoke, tmp_path, monkeypatch, terminal_stderr, args):
    from probe.cli.state import State

    (tmp_path / "bad.png").write_text("not an image")
    monkeypatch.setattr(State, "session_for", lambda self, model: pytest.fail("the model loaded"))
    monkeypatch.setattr(State, "text_session", property(lambda self: pytest.fail("the text tower loaded")))
    result = invoke(*[a.format(tmp=tmp_path) for a in args])
    assert result.exit_code in (1, 2), result.output
    assert "Error" in result.stderr and "Traceback" not in result.output
    assert "loading shapes-tiny" not in terminal_stderr.getvalue()  # not even the model libraries were imported for it
