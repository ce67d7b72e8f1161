import pytest
from probe_invert.settings import InvertSettings, list_presets, load_preset

from probe.errors import ConfigError, UsageError


def test_presets_listed_and_paper_is_the_authors_recipe():
    assert {"paper", "default"} <= set(list_presets())
    p = load_preset("paper")
    assert (p.steps, p.lr, p.size, p.resize_at, p.copies, p.tv_weight, p.grad_clip) == (
        3400,
        0.1,
        64,
        [900, 1800],
        13,
        0.005,
        1.0,
    )
    assert p.param == "pixel" and p.loss == "distance" and p.lr_schedule == "constant" and p.clamp
    assert p.transforms == ["affine", "resize", "colour_shift"]
    assert (
        p.affine_p,
        p.affine_degrees,
        p.affine_translate,
        p.affine_scale_min,
        p.affine_scale_max,
        p.affine_padding,
    ) == (0.5, 30.0, 0.1, 0.7, 1.2, "border")
    assert p.preset == "paper"
    assert p.start_size(224) == 64 and p.start_size(64) == 64  # the authors' absolute 64, on any model


@pytest.mark.parametrize(("image_size", "start", "end"), [(64, 8, 64), (224, 28, 224), (256, 32, 256), (378, 48, 378)])
def test_default_schedule_reaches_the_model_input(image_size, start, end):
    from probe_invert.param import schedule_sizes

    s = load_preset("default")
    assert s.start_size(image_size) == start
    assert max(schedule_sizes(start, s.resize_at, image_size).values()) == end


def test_explicit_size_wins_over_the_preset_fraction():
    assert load_preset("default", size=16).start_size(224) == 16
    assert load_preset("default", size=16, size_fraction=0.25).start_size(224) == 56
    with pytest.raises(UsageError, match="size-fraction"):
        load_preset("default", size_fraction=2.0)


def test_overrides_and_to_dict():
    s = load_preset("default", steps=7, lr=None)
    assert s.steps == 7 and s.lr == load_preset("default").lr
    assert s.to_dict()["steps"] == 7


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(UsageError, match=r"unknown preset 'nope'.*default.*paper"):
        load_preset("nope")


@pytest.mark.parametrize(
    "override",
    [
        {"steps": 0},
        {"lr": -1.0},
        {"param": "wavelet"},
        {"transforms": ["blur"]},
        {"affine_p": 2.0},
        {"loss": "l2"},
        {"colour_shift_std": float("nan")},
    ],
)
def test_bad_values_are_usage_errors(override):
    with pytest.raises(UsageError):
        load_preset("default", **override)


def test_unknown_override_key():
    with pytest.raises(UsageError, match="unknown invert setting"):
        load_preset("default", stepz=3)


def test_preset_from_yaml_file(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("steps: 5\nparam: pixel\n")
    s = load_preset(str(f))
    assert s.steps == 5 and s.preset == "mine" and s.copies == InvertSettings().copies
    f.write_text("stepz: 5\n")
    with pytest.raises(ConfigError, match="unknown setting 'stepz'"):
        load_preset(str(f))
