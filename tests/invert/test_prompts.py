import pytest
from probe_invert.prompts import parse_prompt, parse_seeds, read_prompts_file

from probe.errors import ConfigError, UsageError


def test_weighted_blend_parses_weights_and_negatives():
    wp = parse_prompt("a panda | a mad scientist:0.5 | blurry:-0.3")
    assert wp.parts == (("a panda", 1.0), ("a mad scientist", 0.5), ("blurry", -0.3))


def test_colon_followed_by_words_is_text():
    assert parse_prompt("time: noon").parts == (("time: noon", 1.0),)


@pytest.mark.parametrize(
    "bad, words",
    [
        ("a cat:", "missing weight"),
        ("a cat | ", "empty part"),
        ("a cat:0", "zero weight"),
        ("blurry:-1", "no positive part"),
        (":0.5", "weight without text"),
        ("a cat:1.2.3", "bad weight"),
        ("  ", "empty prompt"),
    ],
)
def test_bad_syntax_is_a_usage_error_naming_the_problem(bad, words):
    with pytest.raises(UsageError, match=words):
        parse_prompt(bad)


def test_seed_ranges():
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("5, 0-1,5,9") == [5, 0, 1, 9]


@pytest.mark.parametrize("bad", ["3-1", "a", "-2", "1-", "0-9999999"])
def test_bad_seeds(bad):
    with pytest.raises(UsageError):
        parse_seeds(bad)


def test_prompts_file(tmp_path):
    f = tmp_path / "p.txt"
    f.write_text("# comment\na red circle\n\na star | red:-0.5\n")
    assert read_prompts_file(f) == ["a red circle", "a star | red:-0.5"]
    f.write_text("ok\na cat:\n")
    with pytest.raises(ConfigError, match=r"p.txt:2: missing weight"):
        read_prompts_file(f)
    with pytest.raises(ConfigError, match="not found"):
        read_prompts_file(tmp_path / "nope.txt")
    f.write_text("# nothing\n")
    with pytest.raises(ConfigError, match="no prompts"):
        read_prompts_file(f)
