import pytest
from probe_invert.settings import InvertSettings, SettingsError, list_presets, load_preset

from probe.errors import ConfigError, UsageError


def test_presets_listed_and_paper_is_the_authors_recipe():
    assert {"paper", "default"} <= set(list_presets())
    p = load_preset("paper")
    assert (p.steps, p.lr, p.size, p.size_fraction, p.copies, p.grad_clip) == (3400, 0.1, 64, 0.0, 13, 1.0)
    assert p.resize_steps() == [900, 1800]
    assert p.to_dict()["priors"] == {"tv": {"weight": 0.005}}  # no L1: only what the paper file names
    assert p.to_dict()["param"] == {"pixel": {"init": 1.0}}
    assert p.loss == "distance" and p.lr_schedule == "constant" and p.clamp
    assert p.to_dict()["transforms"] == [
        {
            "affine": {
                "p": 0.5,
                "degrees": 30.0,
                "translate": 0.1,
                "scale_min": 0.7,
                "scale_max": 1.2,
                "padding": "border",
            }
        },
        {"resize": {}},
        {"colour_shift": {"mean": 1.0, "std": 1.0}},
    ]
    assert p.preset == "paper"
    assert p.start_size(224) == 64 and p.start_size(64) == 64  # the authors' absolute 64, on any model
    assert p.size_schedule(224) == {0: 64, 900: 128, 1800: 224}


def test_the_default_preset_is_the_models_defaults():
    assert load_preset("default").to_dict() == InvertSettings().to_dict()


@pytest.mark.parametrize(("image_size", "start"), [(64, 8), (224, 28), (256, 32), (378, 48)])
@pytest.mark.parametrize("steps", [4, 30, 90, 400])
def test_any_step_count_ends_at_the_model_input(image_size, start, steps):
    s = load_preset("default", steps=steps)
    schedule = s.size_schedule(image_size)
    assert schedule[0] == start
    assert list(schedule.values())[-1] == image_size
    assert max(schedule) < steps  # the last doubling happens inside the run


def test_the_schedule_keeps_its_shape_as_fractions_of_the_run():
    assert load_preset("default").resize_steps() == [20, 40, 60]
    assert load_preset("default", steps=30).resize_steps() == [7, 13, 20]
    assert load_preset("paper", steps=340).resize_steps() == [90, 180]


def test_explicit_size_wins_over_the_preset_fraction():
    assert load_preset("default", size=16).start_size(224) == 16
    assert load_preset("default", size=16, size_fraction=0.25).start_size(224) == 56
    with pytest.raises(SettingsError, match="less than or equal to 1") as error:
        load_preset("default", size_fraction=2.0)
    assert error.value.loc == ("size_fraction",)


def test_overrides_and_to_dict():
    s = load_preset("default", steps=7, lr=None)
    assert s.steps == 7 and s.lr == load_preset("default").lr
    assert s.to_dict()["steps"] == 7


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(UsageError, match=r"unknown preset 'nope'.*default.*paper"):
        load_preset("nope")


@pytest.mark.parametrize(
    ("override", "loc"),
    [
        ({"steps": 0}, ("steps",)),
        ({"lr": -1.0}, ("lr",)),
        ({"param": "wavelet"}, ("param",)),
        ({"transforms": ["jitter", "blur"]}, ("transforms", 1)),
        ({"transforms": [{"affine": {"p": 2.0}}]}, ("transforms", 0, "affine", "p")),
        ({"transforms": [{"affine": {"scale_min": 2.0}}]}, ("transforms", 0, "affine")),
        ({"transforms": [{"affine": {"spin": 1}}]}, ("transforms", 0, "affine", "spin")),
        ({"loss": "l2"}, ("loss",)),
        ({"transforms": [{"colour_shift": {"std": float("nan")}}]}, ("transforms", 0, "colour_shift", "std")),
        ({"priors": {"tv": -1}}, ("priors", "tv")),
        ({"priors": {"l1": {"weight": 1, "center": 3}}}, ("priors", "l1", "center")),
        ({"resize_at": [900, 1800]}, ("resize_at", 0)),
        ({"stepz": 3}, ("stepz",)),
    ],
)
def test_bad_values_name_their_knob(override, loc):
    with pytest.raises(SettingsError) as error:
        load_preset("default", **override)
    assert error.value.loc == loc
    assert isinstance(error.value, UsageError)


@pytest.mark.parametrize(
    ("old", "new"),
    [("affine_p", "transforms: [{affine: {p: ...}}]"), ("tv_weight", "priors: {tv: WEIGHT}"), ("plugin_options", "")],
)
def test_old_flat_keys_say_their_new_spelling(old, new):
    with pytest.raises(SettingsError, match=f"'{old}' is now") as error:
        load_preset("default", **{old: 0.1})
    assert new in str(error.value)


def test_a_preset_file_starts_from_default_and_errors_name_its_line(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("steps: 5\nparam: pixel\n")
    s = load_preset(str(f))
    assert s.steps == 5 and s.preset == "mine" and s.copies == InvertSettings().copies
    assert s.to_dict()["transforms"] == InvertSettings().to_dict()["transforms"]
    f.write_text("stepz: 5\n")
    with pytest.raises(ConfigError, match=r"mine.yaml:1: stepz: unknown setting 'stepz'"):
        load_preset(str(f))
    f.write_text("steps: 5\ntransforms:\n  - jitter\n  - affine:\n      p: 0.5\n      degrees: -3\n")
    with pytest.raises(ConfigError, match=r"mine.yaml:6: transforms\[1\]\.affine\.degrees: .*greater than or equal"):
        load_preset(str(f))
    f.write_text("steps: 5\nresize_at: [900, 1800]\n")
    with pytest.raises(ConfigError, match=r"mine.yaml:2: resize_at\[0\]: resize_at holds fractions"):
        load_preset(str(f))


def test_set_reaches_every_knob_by_its_dotted_key():
    s = load_preset("default").with_set(
        [
            "lr=0.05",
            "transforms.affine.degrees=20",
            "priors.tv=0.1",
            "priors.l1.center=0.3",
            "param=fft",
            "param.fft.decay=1.5",
            "resize_at=[0.5]",
            "clamp=false",
        ]
    )
    d = s.to_dict()
    assert (d["lr"], d["clamp"], d["resize_at"]) == (0.05, False, [0.5])
    assert d["transforms"][1]["affine"]["degrees"] == 20.0
    assert d["transforms"][1]["affine"]["translate"] == 0.05  # the preset's other options stay
    assert d["priors"] == {"tv": {"weight": 0.1}, "l1": {"weight": 0.0004, "center": 0.3}}
    assert d["param"] == {"fft": {"decay": 1.5, "init_std": 0.01, "decorrelate": True}}
    assert load_preset("default").with_set(["transforms=jitter,resize"]).to_dict()["transforms"] == [
        {"jitter": {"pixels": 4}},
        {"resize": {}},
    ]


@pytest.mark.parametrize(
    ("assignment", "words"),
    [
        ("lr=-1", "bad --set: lr: Input should be greater than 0, got -1"),
        ("transforms.affine.p=2", "bad --set: transforms.affine.p: Input should be less than or equal to 1, got 2"),
        ("transforms.colour_jitter.contrast=1", "no 'colour_jitter' in transforms"),
        ("param.fft.decay=2", "param is 'pixel'"),
        ("nonsense", "use KEY=VALUE"),
        ("tv_weight=0.1", "'tv_weight' is now priors: {tv: WEIGHT}"),
    ],
)
def test_bad_set_is_a_usage_error_naming_the_key(assignment, words):
    with pytest.raises(UsageError) as error:
        load_preset("default").with_set([assignment])
    assert words in str(error.value)


def test_overrides_of_zero_and_false_are_applied_not_dropped():
    """0 and False are values (`grad_clip=0` turns clipping off, `clamp=False` lets pixels leave [0, 1]);
    only None means "keep the preset's"."""
    base = load_preset("default")
    assert base.grad_clip != 0 and base.clamp is True
    changed = load_preset("default", grad_clip=0.0, clamp=False, snapshot_every=None)
    assert changed.grad_clip == 0 and changed.clamp is False
    assert changed.snapshot_every == base.snapshot_every
    assert base.with_overrides(grad_clip=0.0).grad_clip == 0
