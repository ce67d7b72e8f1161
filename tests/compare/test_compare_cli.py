"""`probe compare` and `probe.compare(runs)` on run folders written as the experiment engine writes
them (manifest.json + summary.json), with counts chosen so every interval is known: refusals are
one line naming what to do, differences are marked exactly where Newcombe's interval excludes 0."""

import csv
import io
import json

import pytest

import probe
from probe.plugin import newcombe_interval, run_cli

ATTRIBUTES = ["red", "blue", "green"]


def bias_data(counts: dict[str, dict[str, int]], n: int, paper: dict | None = None) -> dict:
    """A bias step's summary data (BiasTable.as_dict()) for prompts 'a star' / 'a circle'."""
    rows = []
    for key, per in counts.items():
        cells = [
            {
                "variant": "neutral",
                "attribute": a,
                "k": per.get(a, 0),
                "n": n,
                "share": per.get(a, 0) / n,
                "low": 0.0,
                "high": 1.0,
                "paper": (paper or {}).get(key, {}).get(a),
            }
            for a in ATTRIBUTES
        ]
        rows.append({"key": key, "group": "g", "texts": {"neutral": f"a {key}"}, "n": {"neutral": n}, "cells": cells})
    return {
        "prompt_set": "shapes",
        "label_set": "colours",
        "variants": ["neutral"],
        "attributes": ATTRIBUTES,
        "rows": rows,
    }


def write_run(folder, model: str, counts: dict, n: int = 20, digest: str = "d1", pending: int = 0, paper=None):
    """A finished (or, with pending, unfinished) run folder of a one-step bias experiment."""
    folder.mkdir(parents=True)
    items = {f"bias/{key}.neutral.s{i}": "done" for key in counts for i in range(n)}
    for item in list(items)[:pending]:
        items[item] = "pending"
    manifest = {
        "format": "clip-probe-run/1",
        # the experiment as run (its digest names the steps; a comparison ignores the model key)
        "experiment": {"name": "bias", "model": model, "steps": [{"name": "bias", "kind": "bias", "run": digest}]},
        "digest": digest,
        "source": "exp.yaml",
        "model": {"model": model, "fingerprint": f"{model}-fp"},
        "items": items,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    summary = {"steps": [{"name": "bias", "kind": "bias", "data": bias_data(counts, n, paper), "cells": {}}]}
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


@pytest.fixture
def pair(tmp_path):
    a = write_run(tmp_path / "a", "model-a", {"star": {"red": 16, "blue": 2}, "circle": {"red": 3, "green": 5}})
    b = write_run(tmp_path / "b", "model-b", {"star": {"red": 2, "blue": 16}, "circle": {"red": 4, "green": 5}})
    return a, b


def test_compare_marks_the_real_difference_with_newcombes_interval(pair, tmp_path):
    result = run_cli("--out", tmp_path / "out", "compare", *pair, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [r["model"] for r in out["runs"]] == ["model-a", "model-b"]
    rows = {(r["subject"], r["metric"]): r for r in out["steps"][0]["rows"]}
    star_red = rows[("a star", "red")]["differences"]["model-b - model-a"]
    assert (star_red["low"], star_red["high"]) == pytest.approx(newcombe_interval(2, 20, 16, 20))
    assert star_red["diff"] == pytest.approx(-0.7) and star_red["excludes_zero"]
    marked = sorted(key for key, r in rows.items() if r["differences"]["model-b - model-a"]["excludes_zero"])
    assert marked == [("a star", "blue"), ("a star", "red")]  # 3/20 vs 4/20 and 5/20 vs 5/20 are noise
    page = tmp_path / "out" / "compare" / "bias" / "compare.html"
    assert out["page"] == str(page) and page.is_file()
    assert "model-b − model-a" in page.read_text(encoding="utf-8")


def test_tables_are_written_as_markdown_csv_and_json(pair, tmp_path):
    result = run_cli("compare", *pair, "-o", tmp_path / "cmp")
    assert result.exit_code == 0, result.output
    assert "2 difference(s) whose 95% interval excludes 0" in result.output
    md = (tmp_path / "cmp" / "tables" / "bias.md").read_text()
    assert "| a star | red | 80% [58–92] | 10% [3–30] | -70 [-84, -40] ≠ |" in md
    rows = list(csv.DictReader(io.StringIO((tmp_path / "cmp" / "tables" / "bias.csv").read_text())))
    assert len(rows) == 2 * 3 * 2  # prompts × labels × models
    star_red_b = next(r for r in rows if r["subject"] == "a star" and r["label"] == "red" and r["model"] == "model-b")
    assert star_red_b["k"] == "2" and star_red_b["differs"] == "true" and star_red_b["diff_points"] == "-70.0"
    table = json.loads((tmp_path / "cmp" / "tables" / "bias.json").read_text())["table"]
    assert table["columns"] == ["prompt", "label", "model-a", "model-b", "model-b − model-a"]
    assert (tmp_path / "cmp" / "compare.json").is_file()


def test_the_papers_figure_4_numbers_stand_beside_the_paper_prompts(tmp_path):
    paper = {"star": {"red": 96}}
    a = write_run(tmp_path / "a", "model-a", {"star": {"red": 16}}, paper=paper)
    b = write_run(tmp_path / "b", "model-b", {"star": {"red": 15}}, paper=paper)
    comparison = probe.compare([a, b])
    table = comparison.steps[0].table(comparison.models)
    assert table.columns[-1] == "paper"
    assert table.rows[0][-1] == "96%" and table.rows[1][-1] == ""


def test_python_api_returns_a_comparison_that_jupyter_shows_and_writes(pair, tmp_path):
    comparison = probe.compare(list(pair))
    assert comparison.models == ["model-a", "model-b"]
    assert comparison.row("bias", "a star", "red").differs
    assert not comparison.row("bias", "a circle", "red").differs
    html = comparison._repr_html_()
    assert html.startswith("<!DOCTYPE html>") and "<svg class='chart'" in html
    page = comparison.write(tmp_path / "nb")
    assert page == tmp_path / "nb" / "compare.html" and (tmp_path / "nb" / "tables" / "bias.csv").is_file()
    assert not list((tmp_path / "nb").rglob("*.tmp*"))  # atomic writes leave no temporary files


def test_runs_of_different_experiments_are_refused_in_one_line(tmp_path):
    a = write_run(tmp_path / "a", "model-a", {"star": {"red": 1}})
    b = write_run(tmp_path / "b", "model-b", {"star": {"red": 1}}, digest="other")
    result = run_cli("compare", a, b, "-o", tmp_path / "cmp")
    assert result.exit_code == 2
    assert f"{b} is a run of another experiment" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "cmp").exists()


def test_a_missing_step_names_the_model_it_belongs_to(tmp_path):
    a = write_run(tmp_path / "a", "model-a", {"star": {"red": 1}})
    b = write_run(tmp_path / "b", "model-b", {"star": {"red": 1}}, pending=5)
    result = run_cli("compare", a, b, "-o", tmp_path / "cmp")
    assert result.exit_code == 2
    assert f"step 'bias' is missing from {b} (model model-b): 5 of 20 items unfinished" in result.output
    assert "probe -m model-b run exp.yaml" in result.output and "--resume" in result.output


def test_fewer_than_two_runs_or_no_run_folder_is_a_clear_error(pair, tmp_path):
    one = run_cli("compare", pair[0])
    assert one.exit_code == 2 and "at least two run folders" in one.output
    (tmp_path / "empty").mkdir()
    none = run_cli("compare", pair[0], tmp_path / "empty")
    assert none.exit_code == 2 and "is not a run folder (no manifest.json)" in none.output
