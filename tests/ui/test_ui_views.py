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


def test_flag_rate_table_is_the_commands_share_per_name_and_pooled():
    from probe_neighbours.query import Neighbour as _Word  # as `probe neighbours` returns them
    from probe_neighbours.query import NeighbourResult as _Result
    from probe_neighbours.query import flag_rate  # what `probe neighbours --flag-rate` computes

    results = [
        _Result("ann", [_Word("bad", 0.9, "flagged", True, "slur"), _Word("star", 0.5, "world", False, None)]),
        _Result("bob", [_Word("star", 0.8, "world", False, None), _Word("moon", 0.4, "world", False, None)]),
        _Result("cy", [_Word("bad", 0.7, "flagged", True, None), _Word("worse", 0.6, "flagged", True, "x")]),
    ]
    assert views.flag_rate_rows(results, flag_rate(results), {"cy": "Cy"}) == [
        ["ann", "50%", "1/2", "bad"],
        ["bob", "0%", "0/2", ""],
        ["Cy", "100%", "2/2", "bad, worse"],
        ["all 3 queries", "50.0%", "3/6", ""],
    ]


def test_a_flag_rate_on_a_vocabulary_without_flagged_words_says_so():
    from probe_neighbours.api import Neighbours

    notes = Neighbours([], ["world"], 10, {}).flag_rate_notes()
    assert notes == [
        "no word of the vocabulary (world) is flagged: every flag rate is 0% by construction "
        "(add --vocab flagged to measure one)"
    ]
    assert Neighbours([], ["world", "flagged"], 10, {}).flag_rate_notes() == []


def test_shuffle_source_is_typed_captions_or_world_scenes():
    assert views.world_request(views.CAPTION_SOURCE, "3", ["above"], ["a.png"]) is None
    assert views.world_request(views.WORLD_SOURCE, "", None, None) == (views.WORLD_SCENES, [])
    assert views.world_request(views.WORLD_SOURCE, "3", ["above", "below"], []) == (3, ["above", "below"])
    with pytest.raises(UsageError, match="world scenes must be a whole number of at least 1, got 0"):
        views.world_request(views.WORLD_SOURCE, "0", None, None)
    with pytest.raises(UsageError, match="world scenes bring their own images"):
        views.world_request(views.WORLD_SOURCE, "3", None, ["a.png"])


def test_the_page_gets_the_commands_world_scenes():
    from probe_shuffle.sources import world_pairs  # what `probe shuffle-test --world` tests

    from probe.plugin import python_api

    page = python_api().require("world_scenes", need="probe.world_scenes").function(3, 5, relations=["above"])
    cli = world_pairs(3, 5, ["above"])
    assert page.captions == cli.captions and all(" above " in c for c in page.captions)
    assert page.images.shape == (3, 3, 64, 64) and bool((page.images == cli.images).all())


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
