"""Prompts longer than the model's context fail before the model loads (only its tokenizer is built),
in `invert`, `score` and `probe run`; blended prompts are checked part by part."""

from __future__ import annotations

import pytest

LONG = "a big red star left of a small blue circle above a big green square below a small yellow triangle"


@pytest.fixture
def no_model_load(monkeypatch):
    from probe.session import Session

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(Session, "open", classmethod(refuse))


def test_invert_refuses_an_over_long_prompt_before_the_model_loads(invoke, tmp_path, no_model_load):
    result = invoke("-o", tmp_path, "invert", "a star", LONG, "--steps", "1")
    assert result.exit_code == 2 and "longer than the model's 14-token context" in result.stderr
    assert "shorten them to 14 tokens" in result.stderr and not (tmp_path / "invert").exists()


def test_a_blend_is_checked_part_by_part(invoke, tmp_path, monkeypatch):
    from probe.plugin import check_prompt_lengths

    blend = "a big red star left of a small blue circle | a big green square below a yellow triangle:0.5"
    check_prompt_lengths(
        None,  # type: ignore[arg-type]  # no command context is needed when the model is named
        ["a big red star left of a small blue circle", "a big green square below a yellow triangle"],
        model="shapes-tiny",
    )  # each part fits
    with pytest.raises(Exception, match="longer than the model's 14-token context"):
        check_prompt_lengths(None, [blend], model="shapes-tiny")  # type: ignore[arg-type]  # the whole text would not
    result = invoke("-o", tmp_path, "invert", blend, "--steps", "1")
    assert result.exit_code == 0, result.output


def test_score_refuses_an_over_long_prompt_before_the_model_loads(invoke, tmp_path, no_model_load):
    from PIL import Image

    Image.new("RGB", (8, 8), (255, 0, 0)).save(tmp_path / "red.png")
    result = invoke("score", tmp_path / "red.png", "-p", "red", "-p", LONG)
    assert result.exit_code == 2 and "longer than the model's 14-token context" in result.stderr


def test_run_refuses_an_over_long_prompt_before_the_model_loads(invoke, tmp_path, no_model_load):
    exp = tmp_path / "exp.yaml"
    exp.write_text(f"steps:\n  - invert: {{prompts: [a star, {LONG}], n: 1, settings: {{steps: 1}}}}\n")
    result = invoke("-o", tmp_path, "run", exp)
    assert result.exit_code == 2 and "longer than the model's 14-token context" in result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.png"))


@pytest.mark.parametrize(
    "command",
    [
        ["invert", "{word}", "--steps", "1"],
        ["score", "{img}", "-p", "{word}"],
        ["neighbours", "{word}", "--truncate"],
        ["shuffle-test", "{word}", "--truncate"],
        ["invert", "--prompts", "{file}", "--steps", "1"],
    ],
    ids=["invert", "score", "neighbours-truncate", "shuffle-truncate", "invert-file"],
)
def test_a_huge_prompt_is_refused_by_its_characters_before_tokenizing(invoke, tmp_path, monkeypatch, command):
    """A prompt far beyond the context (64 characters per token: 1,024 for shapes-tiny) is refused
    before any tokenizer reads it, with or without --truncate: BPE's cost grows with the square of
    a word's length, so a 10 MB word would never finish."""
    from open_clip.tokenizer import SimpleTokenizer
    from PIL import Image

    encode = SimpleTokenizer.encode

    def refuse_long(self, text):
        assert len(text) <= 1024, "the tokenizer read the huge prompt"
        return encode(self, text)

    monkeypatch.setattr(SimpleTokenizer, "encode", refuse_long)
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    word = "q" * 1025
    (tmp_path / "p.txt").write_text("a star\n" + "x" * 10_000_000 + "\n")
    args = [a.format(word=word, img=tmp_path / "x.png", file=tmp_path / "p.txt") for a in command]
    result = invoke("-o", tmp_path, *args)
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "1 prompt(s) of over 1,024 characters" in line and "16-token context" in line
    assert "shorten them" in line and len(line) < 400  # the prompt itself is not echoed whole
    assert not (tmp_path / "invert").exists()


def test_a_prompt_at_the_character_bound_is_still_read():
    from probe.encoding.text import check_prompt_characters

    check_prompt_characters(16, ["q" * 1024])
    with pytest.raises(Exception, match="1 prompt"):
        check_prompt_characters(16, ["a star", "q" * 1025])
