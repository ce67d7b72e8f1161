"""The built-in model says what it cannot answer: words outside its world, people, rates fixed by construction."""

import json

import pytest

from probe.world.vocab import builtin_text_notes, unknown_words


def test_unknown_words_are_those_no_caption_uses():
    assert unknown_words("Taylor Swift") == ["taylor", "swift"]
    assert unknown_words("a big red circle on the left of a blue square") == []
    assert builtin_text_notes("shapes-tiny", ["a red star"]) == []
    assert builtin_text_notes("ViT-B-16@openai", ["Taylor Swift"]) == []  # real models: no note


def test_neighbours_notes_words_the_builtin_model_never_saw(invoke):
    result = invoke("--device", "cpu", "neighbours", "Taylor Swift", "a red star", "--json")
    assert result.exit_code == 0, result.stderr
    notes = [n for n in json.loads(result.stdout)["notes"] if "knows only" in n]
    assert len(notes) == 1 and "'taylor', 'swift'" in notes[0] and "means nothing" in notes[0]
    table = invoke("--device", "cpu", "neighbours", "Taylor Swift")
    assert "'taylor', 'swift'" in table.stderr


def test_flag_rate_of_a_vocabulary_without_flagged_words_says_so(invoke):
    result = invoke("--device", "cpu", "neighbours", "a red star", "--flag-rate", "--json")
    assert result.exit_code == 0, result.stderr
    assert any("0% by construction" in n for n in json.loads(result.stdout)["notes"])


def test_invert_notes_unknown_words(invoke, tmp_path):
    result = invoke("--device", "cpu", "--out", tmp_path, "invert", "a photo of a dog", "--steps", "1", "--json")
    assert result.exit_code == 0, result.stderr
    notes = json.loads(result.stdout)["notes"]
    assert len(notes) == 1 and "'photo', 'dog'" in notes[0]


@pytest.mark.slow
def test_bias_with_person_prompts_on_the_builtin_model_says_it_knows_no_people(invoke, tmp_path):
    result = invoke(
        "--device", "cpu", "--out", tmp_path, "bias", "--variant", "neutral", "--n", "1", "--steps", "1", "--json"
    )
    assert result.exit_code == 0, result.stderr
    notes = json.loads(result.stdout)["notes"]
    assert [n.split(" knows no people")[0] for n in notes] == ["shapes-tiny", "shapes-tiny"]  # prompts and labels
    shapes = invoke(
        "--device",
        "cpu",
        "--out",
        tmp_path,
        "bias",
        "--prompts",
        "shapes",
        "--labels",
        "colours",
        "--n",
        "1",
        "--steps",
        "1",
        "--json",
    )
    assert json.loads(shapes.stdout)["notes"] == []


@pytest.mark.slow
def test_nsfw_on_the_builtin_model_says_its_flags_are_noise(invoke, tmp_path):
    """'25% flagged: nudity 1, sexual 1' from a model that never saw those words is noise: said beside it."""
    args = ["--device", "cpu", "--out", tmp_path, "nsfw", "The map of African continent", "--n", "1", "--steps", "1"]
    result = invoke(*args, "--nudenet", "off", "--json")
    assert result.exit_code == 0, result.stderr
    notes = json.loads(result.stdout)["notes"]
    assert len(notes) == 2
    assert notes[0].startswith("shapes-tiny knows none of the NSFW concepts' words (") and "noise" in notes[0]
    assert notes[1].startswith("shapes-tiny knows no word outside its shapes world (map, african, continent)")
    table = invoke(*args, "--nudenet", "off", "--resume")
    assert "its zero-shot flags are noise" in table.stderr
    quiet = invoke(
        "--device", "cpu", "--out", tmp_path / "b", "nsfw", "a red star", "--n", "1", "--steps", "1", "--no-text"
    )
    assert "outside its shapes world" not in quiet.stderr


def test_the_note_cuts_a_long_text_and_its_words(invoke):
    """`neighbours --truncate` on a 1,000-character prompt: the note quotes at most 80 characters of
    it and 30 of each word, never the whole text."""
    text = "a star " + "zq" * 496
    result = invoke("--device", "cpu", "neighbours", text, "--truncate", "--json")
    assert result.exit_code == 0, result.stderr
    (note,) = [n for n in json.loads(result.stdout)["notes"] if "knows only" in n]
    assert "'zq" in note and "a star zq" in note and len(note) < 250, note


def test_notes_for_many_texts_are_counted_not_listed():
    """A prompt file of many unknown texts gives ten notes and one count, not a note a line."""
    notes = builtin_text_notes("shapes-tiny", [f"a dog {i}" for i in range(23)])
    assert len(notes) == 11
    assert notes[-1] == "shapes-tiny never saw words of 13 more of these texts (use a real CLIP with -m)"
