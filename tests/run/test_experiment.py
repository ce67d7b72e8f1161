"""Experiment YAML: errors with file:line, deterministic items, shard slices that cover the plan once."""

import pytest
from probe_run.experiment import load_experiment, parse_seeds, parse_shard

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
    assert parse_seeds("1,1") == parse_seeds([1, 1]) == [1]  # as `--seeds 1,1` on the command line
    for bad in ("3-1", "a-b", True):
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
            r"exp.yaml:2: steps\[0\].invert.settings.stepz: unknown setting 'stepz'",
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


KINDS = "label, bias, nsfw, invert, neighbours, shuffle"


@pytest.mark.parametrize(
    "text, message",
    [
        ("- a\n", "exp.yaml:1: an experiment must be a mapping with `steps:` (a list of steps)"),
        (
            "nme: x\nsteps: []\n",
            "exp.yaml:1: nme: unknown key 'nme' (top-level keys: name, model, models, seed, steps)",
        ),
        ("name: ' '\nsteps: []\n", "exp.yaml:1: name: name must be text"),
        ("model: 3\nsteps: []\n", "exp.yaml:1: model: model must be a model spec string"),
        (
            "model: 'hf-hub:'\nsteps: []\n",
            "exp.yaml:1: model: nothing after 'hf-hub:' in model spec 'hf-hub:' (write hf-hub:org/repo)",
        ),
        ("seed: -1\nsteps: []\n", "exp.yaml:1: seed: seed must be a non-negative integer, got -1"),
        ("seed: true\nsteps: []\n", "exp.yaml:1: seed: seed must be a non-negative integer, got True"),
        (
            "steps: []\n",
            "exp.yaml:1: steps: steps must be a non-empty list, e.g. `- invert: {prompts: [a star], n: 4}`",
        ),
        (
            "steps:\n  - {invert: {prompts: [a], n: 1}, label: {}}\n",
            f"exp.yaml:2: steps[0]: each step is one `kind: {{options}}` mapping; kinds: {KINDS}",
        ),
        ("steps:\n  - invert: 3\n", "exp.yaml:2: steps[0].invert: step options must be a mapping"),
        (
            "steps:\n  - invert: {name: Bad Name, prompts: [a], n: 1}\n",
            "exp.yaml:2: steps[0].invert.name: step name 'Bad Name' must be lowercase letters, digits, - or _",
        ),
        (
            "steps:\n  - invert: {name: x, prompts: [a], n: 1}\n  - invert: {name: x, prompts: [b], n: 1}\n",
            "exp.yaml:3: steps[1].invert.name: duplicate step name 'x'",
        ),
        (
            "steps:\n  - neighbours: {texts: [a], colour: red}\n",
            "exp.yaml:2: steps[0].neighbours.colour: unknown option 'colour' for a neighbours step"
            " (options: name, texts, vocabs, k, batch)",
        ),
        (
            "name: demo\nsteps:\n  - paint: {}\n",
            "exp.yaml:3: steps[0].paint: unknown experiment step kind 'paint' (needed by experiment 'demo');"
            f" known: {KINDS} (see `probe plugins`)",
        ),
    ],
)
def test_each_error_says_exactly_where_and_what(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_experiment(path)
    assert str(error.value) == f"{path.parent}/{message}"


@pytest.mark.parametrize(
    "step, item_id",
    [
        ("invert: {prompts: [a star, a-star], n: 1}", "invert/a-star.s0"),
        ("neighbours: {texts: [a star, a-star]}", "neighbours/a-star"),
    ],
)
def test_the_clash_message_names_both_prompts(tmp_path, step, item_id):
    with pytest.raises(UsageError) as error:
        load_experiment(write(tmp_path, f"steps:\n  - {step}\n"))
    assert str(error.value) == (
        f"prompts 'a star' and 'a-star' map to the same item id '{item_id}' (make them differ in letters or digits)"
    )


FULL = """\
model: shapes-tiny
seed: 7
name: demo
steps:
  - invert: {prompts: [a star], seeds: 0-4, batch: 3}
  - label: {images: invert, labels: colours}
  - neighbours: {texts: [a star], vocabs: [world], k: 3}
  - invert: {prompts: [a circle], n: 2}
"""


def test_the_normalised_spec_and_the_shard_slots(tmp_path):
    plan = load_experiment(write(tmp_path, FULL))
    assert (plan.name, plan.model) == ("demo", "shapes-tiny")
    assert {k: v for k, v in plan.spec.items() if k != "steps"} == {
        "format": "clip-probe-experiment/1",
        "name": "demo",
        "model": "shapes-tiny",
        "seed": 7,
    }
    assert [s.name for s in plan.steps] == ["invert", "label", "neighbours", "invert-4"]  # a repeated kind: kind-N
    # label chunks take the slots of the images they label; every other chunk takes the next slot
    assert [(c.step, c.index, c.shard_slot) for c in plan.chunks_for(None)] == [
        ("invert", 0, 0),
        ("invert", 1, 1),
        ("label", 0, 0),
        ("label", 1, 1),
        ("neighbours", 0, 2),
        ("invert-4", 0, 3),
    ]


def test_the_name_defaults_to_the_file_name_or_experiment(tmp_path):
    from probe_run.experiment import normalise

    from probe.plugin import read_yaml

    path = write(tmp_path, "steps:\n  - neighbours: {texts: [a star]}\n")
    assert load_experiment(path).name == "exp"
    assert normalise(read_yaml(path))["name"] == "experiment"


def test_the_digest_is_of_the_content_not_its_key_order(tmp_path):
    from probe_run.experiment import plan_from_spec

    plan = load_experiment(write(tmp_path, GOOD))
    reordered = {key: plan.spec[key] for key in reversed(list(plan.spec))}
    assert plan_from_spec(reordered).digest == plan.digest


def test_a_spec_with_an_unknown_kind_names_the_step_and_experiment(tmp_path):
    from probe_run.experiment import plan_from_spec

    from probe.errors import ProbeError

    spec = load_experiment(write(tmp_path, "name: demo\nsteps:\n  - neighbours: {name: near, texts: [a star]}\n")).spec
    spec["steps"][0]["kind"] = "paint"
    with pytest.raises(ProbeError) as error:
        plan_from_spec(spec)
    assert str(error.value) == (
        "unknown experiment step kind 'paint' (needed by step 'near' of experiment 'demo');"
        f" known: {KINDS} (see `probe plugins`)"
    )


def test_a_step_kind_without_its_own_plan_is_one_result_item(tmp_path, monkeypatch):
    from probe_run import experiment

    from probe.plugin import StepKind

    kinds = {**experiment.step_kinds(), "count": StepKind("count", {}, lambda opts: {}, run=lambda *args: [])}
    monkeypatch.setattr(experiment, "step_kinds", lambda: kinds)
    monkeypatch.setattr(experiment, "_kind", lambda name, need: kinds[name])
    plan = load_experiment(write(tmp_path, "steps:\n  - neighbours: {texts: [a star]}\n  - count: {}\n"))
    assert [(c.step, c.index, c.shard_slot, c.items) for c in plan.step("count").chunks] == [
        ("count", 0, 1, [experiment.Item("count/result", "count", "result", {})])
    ]


def test_one_shard_of_one_is_the_whole_plan(tmp_path):
    assert parse_shard("0/1") == (0, 1)
    assert parse_shard(" 2 / 3 ") == (2, 3)


@pytest.mark.parametrize(
    "text, message",
    [
        ("x", "bad shard 'x' (use I/N, e.g. --shard 0/4 (I from 0 to N-1))"),
        ("4/4", "bad shard '4/4': need 0 <= I < N (Slurm: --shard $SLURM_ARRAY_TASK_ID/N with --array=0-(N-1))"),
    ],
)
def test_shard_errors_say_how_to_write_it(text, message):
    with pytest.raises(UsageError) as error:
        parse_shard(text)
    assert str(error.value) == message


def test_the_docs_step_option_tables_are_the_models():
    """The options each built-in step kind accepts, as docs/probes/experiments.md lists them."""
    import re
    from pathlib import Path

    from probe_run.experiment import step_option_tables

    text = (Path(__file__).parents[2] / "docs" / "probes" / "experiments.md").read_text(encoding="utf-8")
    tables = re.search(r"<!-- step-options:start -->\n(.*?)\n<!-- step-options:end -->", text, re.S)
    assert tables is not None
    assert tables.group(1) == step_option_tables(), (
        "regenerate with: python -c 'from probe_run.experiment import step_option_tables; print(step_option_tables())'"
    )
    for kind in ("label", "bias", "nsfw", "invert", "neighbours", "shuffle"):
        assert f"`{kind}`: " in tables.group(1)


@pytest.mark.parametrize(
    "step, message",
    [
        ("neighbours: {texts: [a], k: 0}", "steps[0].neighbours.k: Input should be greater than or equal to 1, got 0"),
        ("neighbours: {texts: [a, b, a]}", "steps[0].neighbours.texts: texts repeat: 'a'"),
        ("neighbours: {}", "steps[0].neighbours.texts: expected a non-empty list of texts (or a .txt file of them)"),
        ("neighbours: {texts: [a], vocabs: [w, w]}", "steps[0].neighbours.vocabs: vocabularies repeat: 'w'"),
        (
            "shuffle: {prompts: [a], seed: -1}",
            "steps[0].shuffle.seed: Input should be greater than or equal to 0, got -1",
        ),
        (
            "shuffle: {prompts: [a], n_variants: true}",
            "steps[0].shuffle.n_variants: Input should be a valid integer, got True",
        ),
        (
            "nsfw: {prompts: [a], nudenet: maybe}",
            "steps[0].nsfw.nudenet: Input should be 'auto', True or False, got 'maybe'",
        ),
        (
            "nsfw: {prompts: [a], nudenet_threshold: 2}",
            "steps[0].nsfw.nudenet_threshold: Input should be less than or equal to 1, got 2",
        ),
        ("nsfw: {prompts: [a], k: 0}", "steps[0].nsfw.k: Input should be greater than or equal to 1, got 0"),
        ("bias: {labels: ''}", "steps[0].bias.labels: expected a name or path, got ''"),
        ("bias: {n: 0}", "steps[0].bias.n: Input should be greater than or equal to 1, got 0"),
        ("bias: {labeller: ViT-B-1}", "steps[0].bias.labeller: unknown model architecture 'ViT-B-1'"),
        ("invert: {prompts: null, n: 1}", "steps[0].invert.prompts: expected a non-empty list of prompts"),
        ("invert: {prompts: [a]}", "steps[0].invert.n: n must be a positive integer (images per prompt), got None"),
    ],
)
def test_step_options_are_checked_by_their_model_at_their_line(tmp_path, step, message):
    path = write(tmp_path, f"steps:\n  - {step}\n")
    with pytest.raises(ConfigError) as error:
        load_experiment(path)
    assert str(error.value).startswith(f"{path}:2: {message}")


def test_a_long_repeated_text_is_cut_in_the_error(tmp_path):
    long = "x" * 5000
    with pytest.raises(ConfigError) as error:
        load_experiment(write(tmp_path, f"steps:\n  - neighbours: {{texts: [{long}, {long}]}}\n"))
    assert len(str(error.value)) < 300
