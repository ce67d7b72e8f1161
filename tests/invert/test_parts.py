"""Parameterisations, transforms and objectives on tiny tensors."""

import math
from typing import Any

import pytest
import torch
from probe_invert.objectives import L1, Context, TextMatch, TotalVariation, weighted_cosine
from probe_invert.param import FFTParam, PixelParam, schedule_sizes
from probe_invert.randomness import ImageRandom
from probe_invert.settings import load_preset
from probe_invert.transforms import ColourShift, Compose, GaussianNoise, Jitter, RandomAffine, Resize, build_transforms

NO_RANDOMNESS: Any = None  # Resize draws no random numbers: it needs no generator


def test_random_draws_depend_only_on_the_images_own_seed():
    a = ImageRandom([3, 5], copies=2, device="cpu").uniform((4,))
    b = ImageRandom([5], copies=2, device="cpu").uniform((4,))
    assert a.shape == (4, 4)
    assert torch.equal(a[2:], b)


def test_schedule_doubles_and_caps_like_the_authors():
    assert schedule_sizes(64, [900, 1800], 224) == {900: 128, 1800: 224}
    assert schedule_sizes(64, [900, 1800], 64) == {900: 64, 1800: 64}


def test_pixel_param_resize_and_clamp():
    p = PixelParam(torch.full((2, 3, 4, 4), 1.5))
    p.clamp_()
    assert p.images().max().item() == 1.0
    q = p.resized(8)
    assert q.images().shape == (2, 3, 8, 8) and q.pixels.requires_grad and q.pixels.is_leaf


def test_pixel_init_amplitude_is_noise_around_grey_and_one_is_the_authors_uniform():
    def rng() -> ImageRandom:
        return ImageRandom([0, 1], copies=1, device="cpu")

    uniform = PixelParam.random(rng(), 8).images()
    quiet = PixelParam.random(rng(), 8, amplitude=0.2).images()
    assert torch.equal(uniform, rng().uniform((3, 8, 8), per_copy=False))
    assert torch.allclose(quiet, 0.5 + (uniform - 0.5) * 0.2)
    assert quiet.min().item() >= 0.4 and quiet.max().item() <= 0.6


def test_fft_param_images_in_range_and_resize_keeps_the_picture():
    rng = ImageRandom([0], copies=1, device="cpu")
    p = FFTParam.random(rng, 16, std=0.5)
    img = p.images()
    assert img.shape == (1, 3, 16, 16) and img.min() > 0 and img.max() < 1
    up = p.resized(32).images()
    down = torch.nn.functional.interpolate(up, size=(16, 16), mode="area")
    assert (down - img).abs().mean() < 0.02


def test_affine_identity_when_p_zero_and_changes_when_p_one():
    x = torch.rand(4, 3, 8, 8)
    rng = ImageRandom([0, 1], copies=2, device="cpu")
    assert torch.equal(RandomAffine(p=0.0)(x, rng), x)
    assert not torch.allclose(RandomAffine(p=1.0)(x, rng), x)


def test_affine_moves_exactly_the_copies_drawn_to_move():
    x = torch.rand(8, 3, 8, 8)
    rng_a, rng_b = ImageRandom([3, 4], copies=4, device="cpu"), ImageRandom([3, 4], copies=4, device="cpu")
    out = RandomAffine(p=0.5)(x, rng_a)
    # the same draws, applied the plain way: resample every copy, keep the ones drawn to move
    angle, shift = rng_b.uniform((), -math.radians(30), math.radians(30)), rng_b.uniform((2,), -0.1, 0.1) * 2
    scale, apply = rng_b.uniform((), 0.7, 1.2), rng_b.uniform(()) < 0.5
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    moved = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    assert 0 < int(apply.sum()) < 8
    assert torch.equal(out[apply], moved[apply]) and torch.equal(out[~apply], x[~apply])


def test_colour_shift_formula():
    x = torch.rand(2, 3, 4, 4)
    rng_a, rng_b = ImageRandom([7], copies=2, device="cpu"), ImageRandom([7], copies=2, device="cpu")
    out = ColourShift(0.5, 0.5)(x, rng_a)
    mu = rng_b.uniform((3, 1, 1), -0.5, 0.5)
    sigma = rng_b.uniform((3, 1, 1), -0.5, 0.5).exp()
    assert torch.allclose(out, (x - mu) / sigma)


def test_jitter_rolls_whole_copies():
    x = torch.arange(16.0).view(1, 1, 4, 4).expand(1, 3, 4, 4)
    out = Jitter(2)(x, ImageRandom([1], copies=1, device="cpu"))
    assert sorted(out[0, 0].flatten().tolist()) == list(range(16))


def test_jitter_is_a_roll_per_copy():
    x = torch.rand(6, 3, 5, 7)
    out = Jitter(3)(x, ImageRandom([0, 9], copies=3, device="cpu"))
    rng = ImageRandom([0, 9], copies=3, device="cpu")
    dy, dx = rng.integers(-3, 3, ()), rng.integers(-3, 3, ())
    for i in range(6):
        assert torch.equal(out[i], torch.roll(x[i], (int(dy[i]), int(dx[i])), dims=(1, 2)))


@pytest.mark.parametrize(
    "shape,size",
    [
        ((2, 3, 8, 8), 64),
        ((2, 3, 16, 24), 32),
        ((1, 3, 100, 100), 64),
        ((2, 3, 37, 37), 224),
        ((2, 3, 32, 24), 32),  # one side already at the size: the other is still resized
        ((2, 3, 24, 32), 32),
    ],
)
def test_resize_is_interpolate_as_two_matrix_products(shape, size):
    x = torch.rand(shape)
    want = torch.nn.functional.interpolate(x, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
    resize = Resize(size)
    assert torch.allclose(resize(x, NO_RANDOMNESS), want, atol=1e-5)
    assert torch.allclose(resize(x, NO_RANDOMNESS), want, atol=1e-5)  # cached matrices give the same answer


def test_resize_gradient_matches_interpolate():
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    weights = torch.rand(2, 3, 64, 64)
    (Resize(64)(x, NO_RANDOMNESS) * weights).sum().backward()
    mine, x.grad = x.grad.clone(), None
    (
        torch.nn.functional.interpolate(x, size=(64, 64), mode="bicubic", antialias=True, align_corners=False) * weights
    ).sum().backward()
    assert x.grad is not None
    assert torch.allclose(mine, x.grad, atol=1e-4)


def test_default_pipeline_is_its_transforms_applied_in_order():
    s = load_preset("default")
    assert [t.name for t in s.transforms] == ["jitter", "affine", "resize", "colour_shift", "noise"]
    jitter, affine, _, shift, noise = (t.options for t in s.transforms)
    x = torch.rand(4, 3, 16, 16)
    pipeline = build_transforms(s, model_size=32)
    assert isinstance(pipeline, Compose)
    out = pipeline(x, ImageRandom([0, 1], copies=2, device="cpu"))
    # the same draws in the same order, the colour shift and the noise written out by their formulas
    rng = ImageRandom([0, 1], copies=2, device="cpu")
    y = Jitter(jitter.pixels)(x, rng)
    y = RandomAffine(affine.p, affine.degrees, affine.translate, affine.scale_min, affine.scale_max, affine.padding)(
        y, rng
    )
    y = Resize(32)(y, rng)
    mu = rng.uniform((3, 1, 1), -shift.mean, shift.mean)
    sigma = rng.uniform((3, 1, 1), -shift.std, shift.std).exp()
    want = (y - mu) / sigma + rng.normal((3, 32, 32), noise.std)
    assert out.shape == (4, 3, 32, 32)
    assert torch.allclose(out, want, atol=1e-6)


def test_colour_shift_in_a_pipeline_moves_each_channels_mean_and_spread_as_drawn():
    s = load_preset("default", transforms=[{"colour_shift": {"mean": 0.5, "std": 0.5}}])
    x = torch.rand(1, 3, 8, 8).expand(3, 3, 8, 8)  # three copies of one image
    out = build_transforms(s, model_size=8)(x, ImageRandom([4], copies=3, device="cpu"))
    rng = ImageRandom([4], copies=3, device="cpu")
    mu, sigma = rng.uniform((3, 1, 1), -0.5, 0.5), rng.uniform((3, 1, 1), -0.5, 0.5).exp()
    mean, std = x.mean((2, 3), keepdim=True), x.std((2, 3), keepdim=True)
    assert torch.allclose(out.mean((2, 3), keepdim=True), (mean - mu) / sigma, atol=1e-6)
    assert torch.allclose(out.std((2, 3), keepdim=True), std / sigma, atol=1e-6)


def test_noise_is_the_drawn_normal_scaled_and_resize_keeps_a_matching_size():
    noisy = GaussianNoise(0.1)(torch.zeros(2, 3, 8, 8), ImageRandom([0], copies=2, device="cpu"))
    assert torch.equal(noisy, ImageRandom([0], copies=2, device="cpu").normal((3, 8, 8), 0.1))
    x = torch.rand(1, 3, 8, 8)
    assert torch.equal(Resize(8)(x, NO_RANDOMNESS), x)


def test_tv_matches_the_four_direction_l2_definition():
    x = torch.zeros(1, 3, 3, 3)
    x[0, 0, 1, 1] = 1.0  # one bright pixel in channel 0
    ctx = Context(x, torch.zeros(1, 2), 1)
    # channel 0: each direction has 2 differences of magnitude 1 -> norm sqrt(2); mean over 3 channels
    assert TotalVariation()(ctx).item() == pytest.approx(4 * math.sqrt(2) / 3)
    assert L1()(ctx).item() == 1.0


def test_text_match_distance_and_cosine_forms_and_composition():
    t = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # one image, two targets
    w = torch.tensor([[1.0, -0.5]])
    feats = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # two copies
    ctx = Context(torch.zeros(1, 3, 2, 2), feats, 2)
    dist = TextMatch(t, w, "distance")(ctx)
    # copy 1: d=(0, sqrt2) -> 0 - 0.5*sqrt2 ; copy 2: (sqrt2, 0) -> sqrt2
    assert dist.item() == pytest.approx((-0.5 * math.sqrt(2) + math.sqrt(2)) / 2)
    cos = TextMatch(t, w, "cosine")(ctx)
    assert cos.item() == pytest.approx(-((1 - 0) + (0 - 0.5)) / 2)
    combo = TextMatch(t, w, "cosine") + 2 * L1() - L1()
    assert combo(ctx).item() == pytest.approx(cos.item())
    assert weighted_cosine(feats[:1], t, w).item() == pytest.approx(1.0)


def test_context_gives_each_models_features_per_image():
    features, first, second = torch.arange(12.0).view(4, 3), -torch.arange(12.0).view(4, 3), torch.ones(4, 3)
    ctx = Context(torch.zeros(2, 3, 4, 4), features, 2, (first, second))
    assert torch.equal(ctx.features_per_image(), features.view(2, 2, 3))  # the session's model by default
    assert torch.equal(ctx.features_per_image(1), first.view(2, 2, 3))
    assert torch.equal(ctx.features_per_image(2), second.view(2, 2, 3))
    alone = Context(torch.zeros(2, 3, 4, 4), features, 2)
    assert alone.ensemble == () and torch.equal(alone.features_per_image(0), features.view(2, 2, 3))


def test_tv_and_l1_equal_their_definitions_written_as_loops():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 4, 5)
    ctx = Context(x, torch.zeros(2, 2), 1)
    steps = [(0, 1), (1, 0), (1, 1), (1, -1)]  # right, down, down-right, down-left neighbours
    for b in range(2):
        total = 0.0
        for dy, dx in steps:
            per_channel = []
            for c in range(3):
                diffs = [
                    x[b, c, i + dy, j + dx] - x[b, c, i, j]
                    for i in range(4)
                    for j in range(5)
                    if 0 <= i + dy < 4 and 0 <= j + dx < 5
                ]
                per_channel.append(math.sqrt(sum(float(d) ** 2 for d in diffs)))
            total += sum(per_channel) / 3
        assert TotalVariation()(ctx)[b].item() == pytest.approx(total, rel=1e-5)
        assert L1(0.5)(ctx)[b].item() == pytest.approx(sum(abs(float(v) - 0.5) for v in x[b].flatten()), rel=1e-5)


def test_text_match_and_weighted_cosine_equal_their_definitions_written_as_loops():
    torch.manual_seed(1)
    b, c, k, d = 2, 3, 2, 4  # images, copies, targets, embedding size: all different
    f = torch.nn.functional.normalize(torch.randn(b * c, d), dim=-1)
    t = torch.nn.functional.normalize(torch.randn(b, k, d), dim=-1)
    w = torch.tensor([[1.0, -0.5], [0.6, 0.2]])  # positive weights summing to 1 and to 0.8
    ctx = Context(torch.zeros(b, 3, 2, 2), f, c)
    per_copy = f.view(b, c, d)
    for i in range(b):
        cos = [[float(per_copy[i, j] @ t[i, m]) for m in range(k)] for j in range(c)]
        dist = [[float((per_copy[i, j] - t[i, m]).norm()) for m in range(k)] for j in range(c)]
        positive = sum(float(v) for v in w[i] if v > 0)
        want_score = [sum(float(w[i, m]) * cos[j][m] for m in range(k)) / positive for j in range(c)]
        assert weighted_cosine(per_copy, t, w)[i].tolist() == pytest.approx(want_score, abs=1e-6)
        assert weighted_cosine(per_copy[:, 0], t, w)[i].item() == pytest.approx(want_score[0], abs=1e-6)
        want_cos = sum(-float(w[i, m]) * cos[j][m] for j in range(c) for m in range(k)) / c
        want_dist = sum(float(w[i, m]) * dist[j][m] for j in range(c) for m in range(k)) / c
        assert TextMatch(t, w, "cosine")(ctx)[i].item() == pytest.approx(want_cos, abs=1e-6)
        assert TextMatch(t, w)(ctx)[i].item() == pytest.approx(want_dist, abs=1e-6)  # distance by default


def test_objective_arithmetic_is_per_image_arithmetic():
    x = torch.rand(2, 3, 4, 4)
    ctx = Context(x, torch.zeros(2, 2), 1)
    tv, l1 = TotalVariation()(ctx), L1(0.5)(ctx)
    assert torch.allclose((TotalVariation() + L1(0.5))(ctx), tv + l1)
    assert torch.allclose((TotalVariation() - L1(0.5))(ctx), tv - l1)
    assert torch.allclose((-L1(0.5))(ctx), -l1)
    assert torch.allclose((3 * L1(0.5))(ctx), 3 * l1) and torch.allclose((L1(0.5) * 3)(ctx), 3 * l1)


LUMA = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)  # Rec. 601 grey


def test_colour_jitter_is_brightness_then_contrast_then_saturation_by_their_formulas():
    from probe_invert.transforms import ColourJitter

    x = torch.rand(4, 3, 5, 5)
    out = ColourJitter(0.2, 0.3, 0.4)(x, ImageRandom([2, 3], copies=2, device="cpu"))
    rng = ImageRandom([2, 3], copies=2, device="cpu")
    b, c, s = (rng.uniform((1, 1, 1), 1 - a, 1 + a) for a in (0.2, 0.3, 0.4))
    y = x * b
    mean = (y * LUMA).sum(1, keepdim=True).mean((2, 3), keepdim=True)
    y = mean + (y - mean) * c
    grey = (y * LUMA).sum(1, keepdim=True)
    assert torch.allclose(out, grey + (y - grey) * s, atol=1e-6)


def test_colour_jitter_draws_only_for_the_knobs_that_are_set():
    from probe_invert.transforms import ColourJitter

    x = torch.rand(2, 3, 4, 4)
    assert torch.equal(ColourJitter()(x, ImageRandom([1], copies=2, device="cpu")), x)
    out = ColourJitter(saturation=0.5)(x, ImageRandom([1], copies=2, device="cpu"))
    s = ImageRandom([1], copies=2, device="cpu").uniform((1, 1, 1), 0.5, 1.5)
    grey = (x * LUMA).sum(1, keepdim=True)
    assert torch.allclose(out, grey + (x - grey) * s, atol=1e-6)


def lucent_image(spectrum: torch.Tensor, decay: float, decorrelate: bool) -> torch.Tensor:
    """lucent's FFT image written out: 1/f^decay spectrum scale (f floored at 1/size), orthonormal
    inverse rFFT divided by 4, then the square-rooted colour correlation (columns scaled to a
    largest norm of 1) and a sigmoid."""
    size = spectrum.shape[2]
    f = torch.sqrt(torch.fft.rfftfreq(size)[None, :] ** 2 + torch.fft.fftfreq(size)[:, None] ** 2)
    scaled = torch.view_as_complex(spectrum) / f.clamp_min(1 / size) ** decay
    latent = torch.fft.irfft2(scaled, s=(size, size), norm="ortho") / 4
    if decorrelate:
        m = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
        latent = torch.einsum("ij,bjhw->bihw", m / m.norm(dim=0).max(), latent)
    return torch.sigmoid(latent)


@pytest.mark.parametrize("decay, decorrelate", [(1.0, True), (2.0, False)])
def test_fft_param_image_is_lucents_formula(decay, decorrelate):
    torch.manual_seed(0)
    spectrum = 0.1 * torch.randn(2, 3, 8, 5, 2)
    p = FFTParam(spectrum, decay=decay, decorrelate=decorrelate)
    assert torch.allclose(p.images(), lucent_image(spectrum, decay, decorrelate), atol=1e-6)
    assert torch.allclose(p.resized(8).images(), p.images(), atol=1e-6)  # same size: the same image
    bigger = p.resized(16)
    assert bigger.spectrum.shape == (2, 3, 16, 9, 2) and (bigger.decay, bigger.decorrelate) == (decay, decorrelate)


def test_fft_param_random_spectrum_is_the_images_own_normal_draw():
    p = FFTParam.random(ImageRandom([0, 1], copies=1, device="cpu"), 8, std=0.3, decay=1.5, decorrelate=False)
    want = ImageRandom([0, 1], copies=1, device="cpu").normal((3, 8, 5, 2), std=0.3, per_copy=False)
    assert torch.equal(p.spectrum, want) and (p.decay, p.decorrelate) == (1.5, False)


def test_an_unknown_transform_name_lists_the_known_ones():
    from probe_invert.settings import SettingsError

    with pytest.raises(SettingsError) as error:
        load_preset("default", transforms=["jitter", "nope"])
    assert error.value.loc == ("transforms", 1)
    assert str(error.value) == (
        "unknown transform 'nope' (use one of: jitter, affine, resize, colour_shift, colour_jitter, noise)"
    )


def test_pixels_clamp_to_zero_and_one_and_report_their_size():
    p = PixelParam(torch.tensor([-0.5, 0.3, 1.5]).view(1, 3, 1, 1).expand(1, 3, 5, 5))
    p.clamp_()
    assert p.images()[0, :, 0, 0].tolist() == pytest.approx([0.0, 0.3, 1.0])
    assert p.size == 5 and FFTParam(torch.zeros(1, 3, 6, 4, 2)).size == 6


def test_a_resize_is_torchs_bicubic_with_corners_not_aligned():
    torch.manual_seed(0)
    pixels = torch.rand(1, 3, 4, 4)
    want = torch.nn.functional.interpolate(pixels, size=(8, 8), mode="bicubic", align_corners=False)
    assert torch.equal(PixelParam(pixels).resized(8).images(), want)
    spectrum = 0.1 * torch.randn(1, 3, 8, 5, 2)
    p = FFTParam(spectrum)
    size = 8
    f = torch.sqrt(torch.fft.rfftfreq(size)[None, :] ** 2 + torch.fft.fftfreq(size)[:, None] ** 2)
    latent = torch.fft.irfft2(torch.view_as_complex(spectrum) / f.clamp_min(1 / size), s=(size, size), norm="ortho") / 4
    latent = torch.nn.functional.interpolate(latent, size=(16, 16), mode="bicubic", align_corners=False)
    m = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
    want = torch.sigmoid(torch.einsum("ij,bjhw->bihw", m / m.norm(dim=0).max(), latent))
    assert torch.allclose(p.resized(16).images(), want, atol=1e-5)


def test_parameterisations_start_one_draw_per_image_not_per_copy_and_are_trainable_leaves():
    rng = ImageRandom([0, 1], copies=3, device="cpu")
    pixel, fft = PixelParam.random(rng, 8), FFTParam.random(rng, 8)
    assert pixel.images().shape == (2, 3, 8, 8) and fft.spectrum.shape == (2, 3, 8, 5, 2)
    for p in (pixel, fft, pixel.resized(16), fft.resized(16)):
        assert all(t.requires_grad and t.is_leaf for t in p.parameters())


def test_fft_defaults_are_lucents():
    torch.manual_seed(0)
    spectrum = 0.1 * torch.randn(1, 3, 8, 5, 2)
    assert torch.allclose(FFTParam(spectrum).images(), lucent_image(spectrum, 1.0, True), atol=1e-6)
    p = FFTParam.random(ImageRandom([3], copies=1, device="cpu"), 8)
    want = ImageRandom([3], copies=1, device="cpu").normal((3, 8, 5, 2), std=0.01, per_copy=False)
    assert torch.equal(p.spectrum, want) and (p.decay, p.decorrelate) == (1.0, True)


def test_make_param_builds_the_named_parameterisation():
    from probe_invert.param import make_param
    from probe_invert.settings import SettingsError

    s = load_preset("default", param={"pixel": {"init": 0.5}})
    made = make_param(s, ImageRandom([4], copies=2, device="cpu"), 8)
    assert torch.equal(made.images(), PixelParam.random(ImageRandom([4], copies=2, device="cpu"), 8, 0.5).images())
    fft = make_param(load_preset("default", param="fft"), ImageRandom([4], copies=2, device="cpu"), 8)
    assert isinstance(fft, FFTParam)
    with pytest.raises(SettingsError) as error:
        load_preset("default", param="nope")
    assert (error.value.loc, str(error.value)) == (("param",), "unknown param 'nope' (use one of: pixel, fft)")
