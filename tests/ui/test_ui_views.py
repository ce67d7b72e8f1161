"""The web page's pure parts, without a browser or the web framework: form fields to probe arguments,
results to table rows, which run folders the page lists, and `probe ui` without the extra."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from probe_ui import views

from probe.plugin import UsageError, run_cli


def test_prompts_are_one_a_line_without_comments_or_blanks():
    assert views.prompt_lines("a red star\n\n# a note\n  a blue circle  \n") == ["a red star", "a blue circle"]
    with pytest.raises(UsageError, match="no prompts given"):
        views.prompt_lines(" \n# only a comment\n")


def test_seeds_use_the_command_line_syntax_and_default_to_zero():
    assert views.seed_list("0-2,7") == [0, 1, 2, 7]
    assert views.seed_list("") == [0]
    with pytest.raises(UsageError, match="bad seeds 'three'"):
        views.seed_list("three")


def test_empty_knobs_keep_the_presets_and_bad_ones_name_the_field():
    assert views.invert_knobs("2", "", None, "", "") == ({"steps": 2}, [])
    assert views.invert_knobs("", "16", "3", "0.05", "0") == ({"size": 16, "copies": 3, "lr": 0.05}, ["priors.tv=0.0"])
    with pytest.raises(UsageError, match=r"steps must be a whole number of at least 1, got 2\.5"):
        views.invert_knobs("2.5", "", "", "", "")
    with pytest.raises(UsageError, match="size must be a number, got 'big'"):
        views.invert_knobs("", "big", "", "", "")
    with pytest.raises(UsageError, match="learning rate must be above 0"):
        views.invert_knobs("", "", "", "-1", "")


@dataclass
class _Word:
    word: str
    score: float
    vocab: str
    flagged: bool
    category: str | None


@dataclass
class _Result:
    query: str
    neighbours: list[_Word]


def test_flagged_neighbours_are_marked_with_their_category():
    result = _Result("star", [_Word("star", 1.0, "world", False, None), _Word("bad", 0.5, "flagged", True, "slur")])
    assert views.neighbour_rows([result], {"star": "my star"}) == [
        ["my star", 1, "star", "1.000", "world", ""],
        ["my star", 2, "bad", "0.500", "flagged", "⚑ slur"],
    ]


def test_invert_rows_and_downloads_follow_the_command():
    rows = [
        {
            "prompt": "a",
            "seed": 0,
            "cosine": 0.25,
            "status": "done",
            "steps": 2,
            "seconds": 0.1,
            "png": "a.png",
            "sidecar": "a.json",
            "skipped": True,
        },
        {
            "prompt": "b",
            "seed": 1,
            "cosine": None,
            "status": "interrupted",
            "steps": 0,
            "seconds": 0,
            "png": None,
            "sidecar": None,
        },
    ]
    assert views.invert_rows(rows) == [
        ["a", 0, "0.250", "done (skipped)", 2, 0.1],
        ["b", 1, "-", "interrupted", 0, 0],
    ]
    assert views.download_files(rows) == ["a.png", "a.json"]


def test_run_folders_are_those_with_a_manifest_and_none_outside(tmp_path):
    for name in ("runs/one", "bias/two/shard", "invert/a-red-star"):
        (tmp_path / name).mkdir(parents=True)
    (tmp_path / "runs/one/manifest.json").write_text("{}")
    (tmp_path / "bias/two/shard/manifest.json").write_text("{}")
    assert views.run_folders(tmp_path) == ["bias/two/shard", "runs/one"]
    assert views.run_folder(tmp_path, "runs/one") == (tmp_path / "runs/one").resolve()
    for bad in ("invert/a-red-star", "../", "runs/one/../../..", ""):
        with pytest.raises(UsageError):
            views.run_folder(tmp_path, bad)


def test_a_report_is_framed_as_inert_text_in_a_sandbox():
    framed = views.framed_report('<p title="x">a & <script>alert(1)</script></p>')
    assert 'sandbox=""' in framed
    assert "<script>" not in framed and "&lt;script&gt;" in framed and "&quot;x&quot;" in framed


def test_only_paths_inside_the_output_folder_are_inside(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "link").symlink_to(tmp_path)
    assert views.inside_folder(tmp_path / "out" / "a.png", tmp_path / "out")
    assert not views.inside_folder(tmp_path / "out" / "link" / "secret", tmp_path / "out")
    assert not views.inside_folder(Path("/etc/passwd"), tmp_path / "out")


def test_error_line_is_what_the_command_line_prints():
    exc = UsageError("bad seeds 'three'", hint="e.g. 0-3 or 0,5,9")
    assert views.error_line(exc) == f"Error: {exc}"  # as probe.cli.app prints a ProbeError
    assert "\n" not in views.error_line(exc) and "e.g. 0-3" in views.error_line(exc)


def test_probe_ui_without_the_extra_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio fails as if it were not installed
    result = run_cli("ui")
    assert result.exit_code == 2
    assert (
        result.output.strip()
        == 'probe ui needs the web page extra: pip install -e ".[ui]" (or pip install "clip-probe[ui]")'
    )
