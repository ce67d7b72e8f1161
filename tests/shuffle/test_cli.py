"""`probe shuffle-test` end to end on the tiny model: outputs, files and error exits."""

from __future__ import annotations

import csv
import json
import statistics

import pytest
import torch

from probe.files.atomic import write_json
from probe.files.images import write_png


def test_text_mode_json(invoke, tiny_spec):
    result = invoke(
        "--model",
        tiny_spec,
        "shuffle-test",
        "a red circle left of a blue square",
        "-p",
        "swap-relation",
        "-p",
        "shuffle-words",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["mode"] == "text" and data["perturbations"] == ["swap-relation", "shuffle-words"]
    assert [r["name"] for r in data["rows"]] == ["swap-relation", "shuffle-words", "all"]
    assert data["items"][0]["variants"][0]["text"] == "a blue square left of a red circle"


def test_text_mode_scores_are_the_models_cosines(invoke, tiny_spec, tiny_session):
    caption = "a red circle left of a blue square"
    result = invoke(
        "--model", tiny_spec, "shuffle-test", caption, "-p", "swap-relation", "-p", "shuffle-words", "--json"
    )
    data = json.loads(result.stdout)
    variants = data["items"][0]["variants"]
    texts = [caption] + [v["text"] for v in variants]
    with torch.no_grad():  # open_clip's own text tower, not the session's fast path
        emb = torch.nn.functional.normalize(tiny_session.model.encode_text(tiny_session.tokenize(texts)), dim=-1)
    cosines = (emb[1:] @ emb[0]).tolist()
    assert [v["score"] for v in variants] == pytest.approx(cosines, abs=1e-5)
    deltas = [c - 1.0 for c in cosines]
    assert [v["delta"] for v in variants] == pytest.approx(deltas, abs=1e-5)
    rows = {r["name"]: r for r in data["rows"]}
    assert rows["swap-relation"]["mean_score"] == pytest.approx(cosines[0], abs=1e-5)
    assert rows["all"]["mean_delta"] == pytest.approx(sum(deltas) / 2, abs=1e-5)
    assert rows["all"]["std_delta"] == pytest.approx(statistics.stdev(deltas), abs=1e-5)


def test_table_and_csv(invoke, tiny_spec, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red circle and a blue square\na big dog is chasing a small cat\n")
    out = tmp_path / "sub" / "rows.csv"
    result = invoke("--model", tiny_spec, "shuffle-test", "--file", prompts, "-k", "2", "--csv", out)
    assert result.exit_code == 0, result.stderr
    assert "Shuffle test" in result.stdout and "mean Δ" in result.stdout
    rows = list(csv.DictReader(out.open()))
    assert rows and set(rows[0]) == {"item", "caption", "original_score", "perturbation", "variant", "score", "delta"}
    assert {r["caption"] for r in rows} == {"a red circle and a blue square", "a big dog is chasing a small cat"}


def test_image_modes(invoke, tiny_spec, tmp_path):
    write_png(tmp_path / "a.png", torch.rand(3, 20, 20))
    write_png(tmp_path / "inv" / "b.png", torch.rand(3, 32, 32))
    write_json(tmp_path / "inv" / "b.json", {"prompt": "a green star above a white ring"})
    result = invoke(
        "--model",
        tiny_spec,
        "shuffle-test",
        "--image",
        tmp_path / "a.png",
        "--caption",
        "a red circle left of a blue square",
        "--invert-dir",
        tmp_path / "inv",
        "--world",
        "3",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["mode"] == "image"
    assert [i["caption"] for i in data["items"]][:2] == [
        "a red circle left of a blue square",
        "a green star above a white ring",
    ]
    assert len(data["items"]) == 5


def test_list_needs_no_model(invoke):
    result = invoke("--model", "no-such-model", "shuffle-test", "--list", "--json")
    assert result.exit_code == 0, result.stderr
    listed = {d["name"]: d["available"] for d in json.loads(result.stdout)}
    assert listed["swap-relation"] is True and "shuffle-nouns-adjectives" in listed


def test_usage_errors_exit_2(invoke, tiny_spec, tmp_path):
    cases = [
        ((), "nothing to test"),
        (("a red circle", "--world", "2"), "cannot be mixed"),
        (("a red circle", "-p", "shuffle"), "unknown perturbation"),
        (("--world", "0"), "1 to 20,000 scenes"),
        (("--caption", "x"), "--caption needs an --image"),
        (("a red circle", "--relation", "above"), "--relation only applies"),
    ]
    for args, message in cases:
        result = invoke("--model", tiny_spec, "shuffle-test", *args)
        assert result.exit_code == 2, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_bad_files_exit_1(invoke, tiny_spec, tmp_path):
    result = invoke("--model", tiny_spec, "shuffle-test", "--image", tmp_path / "missing.png", "--caption", "x")
    assert result.exit_code == 1 and "image not found" in result.stderr
    (tmp_path / "bad.jsonl").write_text("{oops\n")
    result = invoke("--model", tiny_spec, "shuffle-test", "--jsonl", tmp_path / "bad.jsonl")
    assert result.exit_code == 1 and "bad.jsonl:1" in result.stderr


def _lines_fit(text: str, width: int = 80) -> bool:
    return all(len(line) <= width for line in text.splitlines())


def test_text_mode_leaves_out_the_metrics_that_are_trivial_there_and_says_why(invoke, tiny_spec, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    result = invoke("--model", tiny_spec, "shuffle-test", "a red circle left of a blue square", "a red star")
    assert result.exit_code == 0, result.stderr
    header = result.stdout.splitlines()[1:5]
    assert not any("P@1" in line or "blindness" in line for line in header), result.stdout
    assert "100.0%" not in result.stdout
    assert "cos(T(p), T(p)) = 1" in result.stderr and "P@1 and order blindness" in result.stderr
    assert "(0 of 9; see --json)" in result.stderr  # 6 perturbations of the first, 3 of the second; no tie
    assert all(len(line) <= 80 for line in result.stderr.splitlines())
    assert _lines_fit(result.stdout)
    data = json.loads(invoke("--model", tiny_spec, "shuffle-test", "a red star", "--json").stdout)
    assert data["rows"][-1]["precision_at_1"] == 1.0  # still in the JSON


def test_image_mode_keeps_p_at_1_and_fits_80_columns(invoke, tiny_spec, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    result = invoke("--model", tiny_spec, "shuffle-test", "--world", "3")
    assert result.exit_code == 0, result.stderr
    assert "P@1" in result.stdout and "blindness" in result.stdout
    assert "Text mode" not in result.stderr
    assert _lines_fit(result.stdout)


def test_rows_and_captions_nothing_applies_to_say_why(invoke, tiny_spec, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    result = invoke("--model", tiny_spec, "shuffle-test", "star", "a red star")
    assert result.exit_code == 0, result.stderr
    assert "prompt 1 ('star'): one word: nothing to shuffle" in result.stderr
    assert "— shuffle-trigrams: applies to none of the 2 caption(s); it needs four or more words" in result.stderr
    assert "— swap-relation: applies to none" in result.stderr and "'A left of B'" in result.stderr
    assert "— shuffle-words" not in result.stderr  # 'a red star' can be shuffled


def test_details_fit_80_columns_without_breaking_words(invoke, tiny_spec, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    caption = "a big blue circle above a small green triangle"
    result = invoke("--model", tiny_spec, "shuffle-test", caption, "--details")
    assert result.exit_code == 0, result.stderr
    assert _lines_fit(result.stdout)
    cells = " ".join(part.strip() for line in result.stdout.splitlines() for part in line.split("│"))
    assert "shuffle-within-trigrams" in cells and "swap-attributes" in cells  # names never cut
    assert "1.0000" not in result.stdout  # the originals' score, 1 in text mode, is not a column


@pytest.mark.slow
def test_a_runs_shuffle_table_reads_like_shuffle_tests(invoke, tiny_spec, tmp_path):
    caption = "a red circle left of a blue square"
    experiment = tmp_path / "order.yaml"
    step = f"shuffle: {{prompts: [{caption}], perturbations: [swap-relation]}}"
    experiment.write_text(f"name: order\nsteps:\n  - {step}\n")
    shown = invoke("--model", tiny_spec, "shuffle-test", caption, "-p", "swap-relation")
    ran = invoke("--model", tiny_spec, "-o", tmp_path, "run", experiment)
    assert shown.exit_code == 0 and ran.exit_code == 0, ran.stderr
    header = next(line for line in shown.stdout.splitlines() if "perturbation" in line)
    assert "mean Δ" in header and "P@1" not in header  # text mode: P@1 is left out
    assert header in ran.stdout
    swap = next(line for line in shown.stdout.splitlines() if "swap-relation" in line)
    assert swap in ran.stdout
    assert "precision_at_1" not in ran.stdout and "P@1" not in ran.stdout
