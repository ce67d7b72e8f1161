"""Experiment YAML: errors with file:line, deterministic items, shard slices that cover the plan once."""

import pytest
from probe_audit.experiment import load_experiment, parse_seeds, parse_shard

from probe.errors import ConfigError, UsageError

GOOD = """\
name: demo
steps:
  - invert: {name: shapes, prompts: [a star, a circle], seeds: 0-4, settings: {steps: 3}, batch: 3}
  - label: {images: shapes, labels: colours}
  - neighbours: {texts: [a star], vocabs: [world], k: 3}
"""


def write(tmp_path, text):
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


def test_items_have_deterministic_ids_and_chunks(tmp_path):
    a, b = load_experiment(write(tmp_path, GOOD)), load_experiment(write(tmp_path, GOOD))
    assert [i.id for i in a.items] == [i.id for i in b.items]
    assert a.digest == b.digest
    shapes = a.step("shapes")
    assert [len(c.items) for c in shapes.chunks] == [3, 3, 3, 1]
    assert shapes.items[0].id == "shapes/a-star.s0" and shapes.items[0].params == {"prompt": "a star", "seed": 0}
    assert a.step("shapes").options["settings"]["steps"] == 3


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_shards_partition_the_plan_and_keep_labels_with_their_images(tmp_path, count):
    plan = load_experiment(write(tmp_path, GOOD))
    seen = []
    for index in range(count):
        ids = {it.id for c in plan.chunks_for((index, count)) for it in c.items}
        for it in plan.step("label").items:
            if it.id in ids:
                assert it.params["source"] in ids  # the image it labels is made in the same shard
        seen += sorted(ids)
    assert sorted(seen) == sorted(i.id for i in plan.items)


SECOND = """\
steps:
  - invert: {name: first, prompts: [a star], seeds: 0, settings: {steps: 3}, batch: 1}
  - invert: {name: second, prompts: [a circle, a square], seeds: 0-1, settings: {steps: 3}, batch: 2}
  - label: {images: second, labels: colours}
"""


@pytest.mark.parametrize("count", [2, 3])
def test_labels_of_a_later_image_step_follow_its_images_into_each_shard(tmp_path, count):
    plan = load_experiment(write(tmp_path, SECOND))
    label = plan.step("label")
    assert [c.shard_slot for c in label.chunks] == [c.shard_slot for c in plan.step("second").chunks] == [1, 2]
    for index in range(count):
        ids = {it.id for c in plan.chunks_for((index, count)) for it in c.items}
        assert all(it.params["source"] in ids for it in label.items if it.id in ids)


def test_seed_syntax():
    assert parse_seeds("0-3,7") == [0, 1, 2, 3, 7]
    assert parse_seeds([2, 5]) == [2, 5]
    for bad in ("3-1", "a-b", "1,1", True):
        with pytest.raises(ValueError):
            parse_seeds(bad)


def test_shard_syntax():
    assert parse_shard("1/4") == (1, 4)
    for bad in ("4/4", "1-4", "x", "0/0"):
        with pytest.raises(UsageError):
            parse_shard(bad)


@pytest.mark.parametrize(
    "text, message",
    [
        ("steps:\n  - invert: {prompts: [a], seeds: 3-1}\n", r"exp.yaml:2: steps\[0\].invert.seeds: empty seed range"),
        (
            "steps:\n  - invert:\n      prompts: [a]\n      n: 2\n      colour: red\n",
            r"exp.yaml:5: steps\[0\].invert.colour: unknown option 'colour'",
        ),
        ("steps:\n  - paint: {}\n", r"exp.yaml:2: steps\[0\].paint: unknown experiment step kind 'paint'"),
        (
            "steps:\n  - label: {images: nowhere, labels: colours}\n",
            r"exp.yaml:2: steps\[0\].label.images: 'nowhere' is not an earlier",
        ),
        ("steps:\n  - bias: {labels: hues}\n", r"exp.yaml:2: steps\[0\].bias.labels: unknown label set 'hues'"),
        (
            "steps:\n  - invert: {prompts: [a], n: 2, settings: {stepz: 3}}\n",
            r"exp.yaml:2: steps\[0\].invert.settings: unknown invert setting 'stepz'",
        ),
        ("steps: [\n", r"exp.yaml:2: invalid YAML"),
        ("nme: x\nsteps: []\n", r"exp.yaml:1: nme: unknown key 'nme'"),
        (
            "steps:\n  - invert: {prompts: [a, a], n: 1}\n",
            r"exp.yaml:2: steps\[0\].invert.prompts: prompts repeat: 'a'",
        ),
    ],
)
def test_errors_say_file_line_and_what(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_experiment(write(tmp_path, text))


def test_prompt_file_relative_to_the_experiment(tmp_path):
    (tmp_path / "prompts.txt").write_text("# shapes\na star\n\na circle\n")
    plan = load_experiment(write(tmp_path, "steps:\n  - invert: {prompts: prompts.txt, n: 1}\n"))
    assert [i.params["prompt"] for i in plan.items] == ["a star", "a circle"]


def test_prompts_that_share_a_file_name_are_refused(tmp_path):
    with pytest.raises(UsageError, match=r"map to the same item id 'invert/a-star\.s0'"):
        load_experiment(write(tmp_path, "steps:\n  - invert: {prompts: [a star, a-star], n: 1}\n"))
