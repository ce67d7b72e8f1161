"""NSFW: thresholds, the optional NudeNet detector (absent, faked, and real when installed), blurred previews,
report."""

import importlib.util
import json
import sys

import pytest
from probe_audit import nsfw
from probe_run.summaries import blurred


def test_flags_follow_thresholds_exactly():
    concepts = nsfw.ConceptSet(
        "t", ["a photo"], [nsfw.Concept("nudity", 0.5, ["nude"]), nsfw.Concept("gore", 0.3, ["gore"])]
    )
    assert nsfw.flagged_concepts({"nudity": 0.5, "gore": 0.29}, concepts) == ["nudity"]
    assert nsfw.flagged_concepts({"nudity": 0.49, "gore": 0.3}, concepts) == ["gore"]


def test_concept_probabilities_sum_prompt_probabilities(tiny_session):
    import torch

    concepts = nsfw.load_concepts("default")
    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    scores = nsfw.concept_probabilities(tiny_session, images, concepts)
    assert len(scores) == 3 and set(scores[0]) == {c.name for c in concepts.concepts}
    assert all(0 < sum(s.values()) < 1 for s in scores)  # the anchors take the rest
    from probe.scores import zero_shot

    _, probs = zero_shot(tiny_session, images, nsfw.concept_prompts(concepts))
    assert any(len(c.prompts) > 1 for c in concepts.concepts)
    for row, got in zip(probs.tolist(), scores, strict=True):
        start = 0
        for c in concepts.concepts:  # each concept: the sum over its own prompts' probabilities
            assert got[c.name] == pytest.approx(sum(row[start : start + len(c.prompts)]), abs=2e-6)
            start += len(c.prompts)


def test_absent_nudenet_is_reported_not_fatal(monkeypatch):
    monkeypatch.setitem(sys.modules, "nudenet", None)  # makes `import nudenet` raise ImportError
    available, reason = nsfw.nudenet_status()
    assert not available and "pip install 'clip-probe[nsfw]'" in reason
    with pytest.raises(nsfw.ProbeError, match="not installed"):
        nsfw.nudenet_detect([])


def test_blurred_preview_hides_detail():
    from PIL import Image

    checker = Image.new("RGB", (64, 64))
    checker.putdata([(255, 255, 255) if (x // 4 + y // 4) % 2 else (0, 0, 0) for y in range(64) for x in range(64)])
    import numpy as np

    values = np.asarray(blurred(checker), dtype=float).mean(axis=2)
    assert np.ptp(np.asarray(checker, dtype=float)) == 255
    assert np.ptp(values) < 60  # the 4-pixel checkerboard is gone


@pytest.fixture
def flag_everything(tmp_path):
    path = tmp_path / "concepts.yaml"
    path.write_text("name: strict\nanchors: [a photo]\nconcepts:\n  nudity: {threshold: 0.01, prompts: [nude body]}\n")
    return path


def test_probe_nsfw_then_report_blurs_flagged_images(tmp_path, tiny_spec, invoke, cpu, flag_everything, monkeypatch):
    monkeypatch.setitem(sys.modules, "nudenet", None)
    out = tmp_path / "out"
    words = tmp_path / "words.txt"
    words.write_text("sunset\nmountain\npebble\tnudity\nriver\n")  # one of four words flagged by its category
    result = invoke(
        "--model",
        tiny_spec,
        "-o",
        out,
        "nsfw",
        "a beautiful landscape",
        "--n",
        "2",
        "--steps",
        "1",
        "--concepts",
        flag_everything,
        "--vocab",
        words,
        "--k",
        "4",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)["nsfw"]
    row = data["prompts"][0]
    assert row["clip"]["k"] == 2 and row["clip"]["n"] == 2  # threshold 0.01: everything flagged
    assert row["nudenet"] is None and "not installed" in data["nudenet_reason"]
    assert sorted(n["word"] for n in row["neighbours"]) == ["mountain", "pebble", "river", "sunset"]
    assert [n["word"] for n in row["neighbours"] if n["flagged"]] == ["pebble"] and row["text_flag_rate"] == 0.25
    run = out / "runs" / "nsfw"
    blurred = invoke("report", run, "-o", tmp_path / "blurred.html")
    plain = invoke("report", run, "-o", tmp_path / "plain.html", "--no-blur")
    assert blurred.exit_code == 0 and plain.exit_code == 0, blurred.stderr + plain.stderr
    b, p = (tmp_path / "blurred.html").read_text(), (tmp_path / "plain.html").read_text()
    assert b.count("<img") == p.count("<img") == 2
    assert "blurred: flagged NSFW" in b and "blurred: flagged NSFW" not in p
    assert b != p
    for html in (b, p):
        assert "http://" not in html and "https://" not in html and "<script" not in html  # self-contained
        assert "data:image/png;base64," in html and "NSFW rates of inverted images" in html


def test_nudenet_on_without_the_package_is_a_usage_error(invoke, monkeypatch):
    monkeypatch.setitem(sys.modules, "nudenet", None)
    result = invoke("nsfw", "a landscape", "--nudenet", "on")
    assert result.exit_code == 2 and "pip install 'clip-probe[nsfw]'" in result.stderr


def test_nsfw_needs_prompts(invoke):
    result = invoke("nsfw")
    assert result.exit_code == 2 and "give prompts" in result.stderr


def test_report_of_a_folder_that_is_not_a_run(tmp_path, invoke):
    result = invoke("report", tmp_path)
    assert result.exit_code == 2 and "not a run folder" in result.stderr


NUDENET = pytest.mark.skipif(
    importlib.util.find_spec("nudenet") is None, reason="NudeNet not installed (pip install 'clip-probe[nsfw]')"
)


class FakeDetector:
    """NudeNet's detector API (detect(path) -> [{class, score, box}]) with fixed answers."""

    def detect(self, path: str) -> list[dict]:
        return [
            {"class": "FEMALE_BREAST_EXPOSED", "score": 0.81, "box": [0, 0, 4, 4]},
            {"class": "FACE_FEMALE", "score": 0.99, "box": [0, 0, 4, 4]},  # not nudity
            {"class": "BUTTOCKS_EXPOSED", "score": 0.42, "box": [0, 0, 4, 4]},
        ]  # below the threshold


def test_nudenet_detections_keep_nudity_classes_at_or_above_the_threshold(monkeypatch):
    import types

    import torch

    monkeypatch.setitem(sys.modules, "nudenet", types.SimpleNamespace(NudeDetector=FakeDetector))
    found = nsfw.nudenet_detect([torch.zeros(3, 8, 8)], threshold=0.5)
    assert found == [[{"class": "FEMALE_BREAST_EXPOSED", "score": 0.81}]]
    assert nsfw.nudenet_detect([torch.zeros(3, 8, 8)], threshold=0.4)[0][1]["class"] == "BUTTOCKS_EXPOSED"


@NUDENET
def test_real_nudenet_runs_offline_and_flags_no_world_render():
    from probe.world.captions import parse_caption
    from probe.world.render import render
    from probe.world.scenes import scenes_for_caption

    images = render(scenes_for_caption(parse_caption("a red circle left of a blue square"), 3, seed=0))
    assert nsfw.nudenet_status() == (True, "")
    assert nsfw.nudenet_detect(list(images)) == [[], [], []]


@NUDENET
def test_probe_nsfw_reports_nudenet_beside_the_zero_shot_rate(tmp_path, tiny_spec, invoke, cpu):
    result = invoke(
        "--model",
        tiny_spec,
        "-o",
        tmp_path,
        "nsfw",
        "a landscape",
        "--n",
        "2",
        "--steps",
        "1",
        "--nudenet",
        "on",
        "--no-text",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)["nsfw"]
    assert data["nudenet"] is True and data["nudenet_reason"] == ""
    assert data["prompts"][0]["nudenet"]["n"] == 2 and data["prompts"][0]["nudenet"]["k"] == 0
