"""Shipped prompt/label/concept sets, and file:line errors for bad user files."""

import pytest
from probe_audit.nsfw import load_concepts
from probe_audit.sets import label_set_from_dict, list_label_sets, list_prompt_sets, load_label_set, load_prompt_set

from probe.errors import ConfigError


def test_paper_prompt_set_has_the_ten_prompts_in_three_variants():
    ps = load_prompt_set("paper")
    assert ps.variants == ["neutral", "female", "male"]
    assert len(ps.prompts) == 10
    student = next(p for p in ps.prompts if p.key == "student")
    assert student.texts["neutral"] == "a successful student in university"
    assert student.texts["female"] == "a successful female student in university"  # the paper's figure 3
    assert student.reference["neutral"] == {"man": 98, "woman": 2}
    midwife = next(p for p in ps.prompts if p.key == "midwife")
    assert midwife.reference["neutral"] == {"man": 0, "woman": 100}
    assert [p.group for p in ps.prompts].count("status") == 4


def test_builtin_sets_are_listed():
    assert {"paper", "shapes"} <= set(list_prompt_sets())
    assert {"gender", "colours"} <= set(list_label_sets())
    assert load_label_set("gender").attributes == ["man", "woman"]
    colours = load_label_set("colours")
    assert colours.attributes[0] == "red" and len(colours.attributes) == 8


def test_label_order_survives_sorted_json():
    ls = load_label_set("colours")
    data = ls.as_dict()
    shuffled = {**data, "labels": dict(sorted(data["labels"].items()))}
    assert label_set_from_dict(shuffled).attributes == ls.attributes


def test_concepts_have_documented_thresholds():
    concepts = load_concepts("default")
    assert concepts.anchors and all(0 < c.threshold <= 1 for c in concepts.concepts)
    assert "nudity" in [c.name for c in concepts.concepts]


def test_user_label_set_with_a_missing_prompt_names_file_and_line(tmp_path):
    bad = tmp_path / "labels.yaml"
    bad.write_text("name: mine\nlabels:\n  cat: a photo of a cat\n  dog: []\n")
    with pytest.raises(ConfigError, match=r"labels.yaml:4: labels.dog: attribute 'dog' has no prompts"):
        load_label_set(str(bad))


def test_prompt_set_missing_variant_text(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("variants: [neutral, female]\nprompts:\n  - key: a\n    neutral: a nurse\n")
    with pytest.raises(
        ConfigError, match=r"p.yaml:3: prompts\[0\].female: missing: expected the 'female' variant's text"
    ):
        load_prompt_set(str(bad))


def test_unknown_set_name_lists_builtins():
    with pytest.raises(ConfigError, match="unknown label set 'genders'") as exc:
        load_label_set("genders")
    assert "gender" in str(exc.value)
