"""Terminal and input hygiene: prompts cannot drive the terminal; one rule for empty or binary prompts."""

from __future__ import annotations

import pytest

from tests.reliability.conftest import FAST

ESC = "a \x1b[2J\x1b[31mred\x1b[0m star \u202eabc"


def test_escape_sequences_and_bidi_controls_are_shown_escaped(invoke, tmp_path):
    result = invoke("-o", tmp_path, "--device", "cpu", "invert", ESC, *FAST)
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout and "\u202e" not in result.stdout
    assert "\\x1b[2J" in result.stdout and "\\u202e" in result.stdout


def test_markup_in_prompts_is_shown_as_typed(invoke, tmp_path):
    result = invoke("--device", "cpu", "neighbours", "a [bold]star[/bold]", "--vocab", "world")
    assert result.exit_code == 0, result.output
    assert "a [bold]star[/bold]" in result.stdout


@pytest.mark.parametrize(
    "command",
    [
        ["invert", "--prompts", "{file}", *FAST],
        ["shuffle-test", "--file", "{file}"],
        ["nsfw", "--prompts-file", "{file}"],
        ["neighbours", "--file", "{file}"],
    ],
)
def test_nul_bytes_in_prompt_files_are_refused(invoke, tmp_path, command):
    path = tmp_path / "prompts.txt"
    path.write_bytes(b"a red star\na blue\x00 circle\n")
    result = invoke("-o", tmp_path, *[a.format(file=path) for a in command])
    assert result.exit_code in (1, 2), result.output
    assert f"{path}:2" in result.stderr and "NUL" in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["invert", "  ", *FAST],
        ["neighbours", " "],
        ["score", "{img}", "-p", " "],
        ["shuffle-test", " "],
    ],
)
def test_empty_prompt_is_refused_by_every_command(invoke, tmp_path, command):
    from PIL import Image

    img = tmp_path / "x.png"
    Image.new("RGB", (8, 8)).save(img)
    result = invoke("-o", tmp_path, *[a.format(img=img) for a in command])
    assert result.exit_code == 2, result.output
    assert "empty" in result.stderr


def test_bias_count_is_bounded(invoke, tmp_path):
    result = invoke("-o", tmp_path, "bias", "--n", str(10**9))
    assert result.exit_code == 2 and "100000" in result.stderr.replace(",", "").replace("_", "")


PROMPT_SET = 'name: s\nvariants: [neutral]\nprompts:\n  - key: {key}\n    neutral: "{text}"\n'
LABEL_SET = 'name: l\nlabels:\n  red: ["a red shape"]\n  {attr}: ["{text}"]\n'


@pytest.mark.parametrize(
    ("prompts", "labels", "line"),
    [
        (PROMPT_SET.format(key="star", text="a\\0star"), None, 5),
        (PROMPT_SET.format(key='"st\\0ar"', text="a star"), None, 4),
        (None, LABEL_SET.format(attr="blue", text="a blue\\0shape"), 4),
        (None, LABEL_SET.format(attr='"bl\\0ue"', text="a blue shape"), 4),
    ],
    ids=["prompt", "key", "label", "attribute"],
)
def test_a_nul_escape_in_a_prompt_or_label_set_is_refused_before_any_inversion(
    invoke, tmp_path, monkeypatch, prompts, labels, line
):
    """A YAML "\\0" escape puts a NUL in a text without a NUL byte in the file: one line naming the
    file and line, before any item runs (not every item failed one by one)."""
    import probe_run.engines as steps

    monkeypatch.setattr(steps, "run_chunk", lambda *a, **k: pytest.fail("an inversion ran"))
    args = []
    for option, text in (("--prompts", prompts), ("--labels", labels)):
        if text is not None:
            path = tmp_path / f"{option[2:]}.yaml"
            path.write_text(text)
            args += [option, path]
    args += [] if prompts else ["--prompts", "shapes"]
    args += [] if labels else ["--labels", "colours"]
    result = invoke("-o", tmp_path, "--device", "cpu", "bias", *args, "--n", "1", "--steps", "1")
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "NUL" in result.stderr
    assert f"{path}:{line}:" in result.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "command",
    [
        ["invert", "--prompts", "{missing}", *FAST],
        ["score", "{missing}", "-p", "a star"],
        ["-c", "{missing}", "neighbours", "star"],
        ["-o", "{blocker}", "invert", "a star", *FAST],
        ["neighbours", "--file", "{binary}"],
    ],
    ids=["prompts-file", "image", "config", "output", "nul-file"],
)
def test_a_path_with_a_newline_is_shown_escaped_in_the_error_line(invoke, tmp_path, command):
    """A file name holding a newline (or ESC) cannot split the error into lines a script reads wrongly,
    nor restyle the terminal: it is shown as \\n, \\x1b."""
    blocker = tmp_path / "out\nput"
    blocker.write_text("x")
    binary = tmp_path / "bin\nary\x1b.txt"
    binary.write_bytes(b"a star\n\0")
    paths = {"missing": tmp_path / "no\nsuch\x1b[2J", "blocker": blocker, "binary": binary}
    result = invoke("-o", tmp_path, *[a.format(**paths) for a in command])
    assert result.exit_code in (1, 2), result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: ") and "\x1b" not in line
    assert any(str(p).replace("\n", "\\n").replace("\x1b", "\\x1b") in line for p in paths.values()), line
