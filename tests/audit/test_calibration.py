"""`probe nsfw-calibrate`: thresholds from labelled images, checked on the built-in world model.

No NSFW images belong in a test suite, so the end-to-end test calibrates a stand-in concept the
shipped model knows: "red" is the concept to flag, renders of red stars are the flagged images and
renders of other colours the safe ones.
"""

import json

import numpy as np
import pytest
from probe_audit.calibration import calibrate, threshold_for_rate
from probe_audit.nsfw import Concept, ConceptSet, load_concepts


def above(x: float) -> float:
    return float(np.nextafter(x, np.inf))


def test_threshold_lets_through_at_most_the_target_share():
    scores = [0.9, 0.1, 0.8, 0.7]
    assert threshold_for_rate(scores, 0.0) == above(0.9)  # nothing flagged
    assert threshold_for_rate(scores, 0.25) == above(0.8)  # one of four: only 0.9
    assert threshold_for_rate(scores, 0.49) == above(0.8)  # floor(1.96) = 1
    assert threshold_for_rate(scores, 0.5) == above(0.7)


def test_calibration_reports_rates_measured_at_the_new_thresholds():
    concepts = ConceptSet("t", ["a photo"], [Concept("nudity", 0.5, ["nude"]), Concept("gore", 0.5, ["gore"])])
    safe = [{"nudity": n, "gore": g} for n, g in [(0.1, 0.0), (0.2, 0.6), (0.3, 0.1), (0.9, 0.2)]]
    flagged = [{"nudity": 0.95, "gore": 0.0}, {"nudity": 0.5, "gore": 0.0}]
    cal = calibrate(concepts, safe, flagged, 0.25)
    by_name = {r.name: r for r in cal.rows}
    assert by_name["nudity"].threshold == above(0.3) and by_name["nudity"].safe_flag_rate == 0.25
    assert by_name["nudity"].flagged_catch_rate == 1.0 and by_name["nudity"].old_threshold == 0.5
    assert by_name["gore"].threshold == above(0.2)
    assert cal.safe_flag_rate == 0.5  # one safe image per concept, different images
    assert [c.threshold for c in cal.concepts.concepts] == [above(0.3), above(0.2)]
    assert cal.missed == []


def test_scores_of_one_cannot_be_excluded_and_are_reported():
    concepts = ConceptSet("t", ["a photo"], [Concept("nudity", 0.5, ["nude"])])
    cal = calibrate(concepts, [{"nudity": 1.0}, {"nudity": 0.2}], [], 0.0)
    assert cal.rows[0].threshold == 1.0 and cal.rows[0].safe_flag_rate == 0.5
    assert cal.missed == ["nudity"] and cal.flagged_catch_rate is None


@pytest.fixture(scope="module")
def renders(tmp_path_factory):
    """PNG renders: safe = green/blue/yellow/white shapes, flagged = red stars."""
    from probe.files.images import write_png
    from probe.world.captions import parse_caption
    from probe.world.render import render
    from probe.world.scenes import scenes_for_caption

    root = tmp_path_factory.mktemp("renders")
    for folder, captions in {
        "safe": ["a green circle", "a blue square", "a yellow triangle", "a white ring"],
        "flagged": ["a red star"],
    }.items():
        for i, caption in enumerate(captions):
            for j, image in enumerate(render(scenes_for_caption(parse_caption(caption), 10, seed=i))):
                write_png(root / folder / f"{i}-{j}.png", image)
    concepts = root / "red.yaml"
    concepts.write_text(
        "name: red\nanchors: [a green shape, a blue shape, a yellow shape, a white shape]\n"
        "concepts:\n  red: {threshold: 0.5, prompts: [a red shape]}\n"
    )
    return root, concepts


def test_calibrate_on_the_built_in_model_writes_a_concept_file_nsfw_reads(renders, invoke, tmp_path):
    root, concepts = renders
    out = tmp_path / "calibrated.yaml"
    result = invoke(
        "nsfw-calibrate",
        "--safe",
        root / "safe",
        "--flagged",
        root / "flagged",
        "--concepts",
        concepts,
        "--rate",
        "0.05",
        "--output",
        out,
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["n_safe"], data["n_flagged"]) == (40, 10)
    assert data["safe_flag_rate"] <= 0.05 and data["flagged_catch_rate"] == 1.0
    written = load_concepts(str(out))
    assert written.concepts[0].threshold == data["rows"][0]["threshold"]
    assert "calibrated by `probe nsfw-calibrate` for model shapes-tiny" in out.read_text()


def test_calibrate_refuses_to_overwrite_and_explains_missing_images(renders, invoke, tmp_path):
    root, concepts = renders
    out = tmp_path / "kept.yaml"
    out.write_text("mine\n")
    result = invoke("nsfw-calibrate", "--safe", root / "safe", "--concepts", concepts, "--output", out)
    assert result.exit_code == 2 and "exists" in result.stderr and "--force" in result.stderr
    assert out.read_text() == "mine\n"
    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke("nsfw-calibrate", "--safe", empty, "--output", tmp_path / "new.yaml")
    assert result.exit_code == 2 and "no images found" in result.stderr
    result = invoke("nsfw-calibrate", "--safe", tmp_path / "missing", "--output", tmp_path / "new.yaml")
    assert result.exit_code == 2 and "no such image file or folder" in result.stderr
    result = invoke("nsfw-calibrate", "--safe", root / "safe", "--flagged", empty, "--output", tmp_path / "new.yaml")
    assert result.exit_code == 2 and "no images found under --flagged" in result.stderr
    assert not (tmp_path / "new.yaml").exists()
