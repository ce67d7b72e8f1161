"""Small-N planted-bias checks on the built-in model (skipped until its trained weights exist).

The shapes world plants one bias: a star whose caption omits its colour is red 80% of the time, a
colourless circle is uniformly coloured. (1) The colour labeller must see it on the world's own
renders of colourless stars and circles. (2) Inverting "a star" with the default preset must then
come out red in >= 70% of images and "a circle" in <= 25% (the goal, N = 20 in docs/paper.md;
here N = 8, deterministic seeds on CPU).
"""

from importlib import resources

import pytest
from probe_audit.stats import Proportion, separated

WEIGHTS = resources.files("probe.models").joinpath("weights/shapes-tiny.safetensors")

pytestmark = pytest.mark.skipif(not WEIGHTS.is_file(), reason="shapes-tiny weights not trained yet")


def red_share(labels: list[str]) -> Proportion:
    return Proportion.of(sum(label == "red" for label in labels), len(labels))


def test_labeller_sees_the_planted_bias_on_world_renders(builtin_session):
    from probe_audit.labelling import label_images
    from probe_audit.sets import load_label_set

    from probe.world.captions import parse_caption
    from probe.world.render import render
    from probe.world.scenes import scenes_for_caption

    colours = load_label_set("colours")
    share = {}
    for caption in ("a star", "a circle"):
        images = render(scenes_for_caption(parse_caption(caption), 20, 0))
        share[caption] = red_share(label_images(builtin_session, images, colours).labels)
    assert share["a star"].share >= 0.5 and share["a circle"].share <= 0.25
    assert separated(share["a star"], share["a circle"])


@pytest.mark.slow
def test_inverted_star_comes_out_red_and_circle_does_not(tmp_path, builtin_session):
    from probe_audit.bias import bias_experiment
    from probe_run.experiment import normalise, plan_from_spec
    from probe_run.runner import read_records, run_plan
    from probe_run.summaries import summarise

    from probe.files.yamldoc import YamlDoc

    n = 8
    plan = plan_from_spec(normalise(YamlDoc("test", bias_experiment("shapes", "colours", n=n))))
    run_plan(plan, tmp_path / "run", builtin_session, lambda spec: builtin_session)
    table = summarise(plan, read_records(tmp_path / "run", plan))[0].data
    red = {row["key"]: next(c for c in row["cells"] if c["attribute"] == "red") for row in table["rows"]}
    assert red["star"]["n"] == red["circle"]["n"] == n
    assert red["star"]["k"] >= 0.7 * n and red["circle"]["k"] <= 0.25 * n
