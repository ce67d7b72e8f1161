"""The render loop on the tiny random CLIP (image 32): order, determinism, NaN, stop, schedule, chunking;
bf16 on CPU on the shipped model."""

import pytest
import torch
from probe_invert import render
from probe_invert.objectives import Objective
from probe_invert.render import Inversion, invert
from probe_invert.settings import load_preset

from probe.errors import UsageError

FAST = {"steps": 4, "copies": 2, "size": 16, "batch_size": 8, "resize_at": []}  # one resolution: 16


def fast(**kw):
    return load_preset("default", **{**FAST, **kw})


def test_prompt_major_order_and_image_contract(tiny_session):
    res = invert(tiny_session, ["a red circle", "a star | red:-0.5"], [0, 1], fast())
    assert [(r.prompt, r.seed) for r in res] == [
        ("a red circle", 0),
        ("a red circle", 1),
        ("a star | red:-0.5", 0),
        ("a star | red:-0.5", 1),
    ]
    for r in res:
        assert isinstance(r, Inversion) and r.status == "done" and r.steps == 4
        assert r.image.shape == (3, 16, 16) and r.image.device.type == "cpu"
        assert r.image.min() >= 0 and r.image.max() <= 1 and r.seconds > 0
    # the reported cosine is the final image's against its prompt: for "a | b:-0.5", (cos a - 0.5 cos b) / 1
    image = tiny_session.encode_image(torch.stack([r.image for r in res]))
    cos = image @ tiny_session.encode_text(["a red circle", "a star", "red"]).T
    want = [cos[0, 0], cos[1, 0], cos[2, 1] - 0.5 * cos[2, 2], cos[3, 1] - 0.5 * cos[3, 2]]
    assert [r.cosine for r in res] == pytest.approx([w.item() for w in want], abs=1e-5)


def test_pixel_init_reaches_the_image(tiny_session):
    size = tiny_session.image_size
    still = fast(param={"pixel": {"init": 0.0}}, lr=1e-9, steps=1, size=size, resize_at=[])
    image = invert(tiny_session, ["a red circle"], [0], still)[0].image
    assert torch.allclose(image, torch.full_like(image, 0.5), atol=1e-6)


def test_pixel_init_outside_zero_one_is_a_usage_error():
    from probe_invert.settings import SettingsError

    with pytest.raises(SettingsError, match=r"less than or equal to 1, got 1\.5") as error:
        fast(param={"pixel": {"init": 1.5}})
    assert error.value.loc == ("param", "pixel", "init")


def test_same_seeds_same_batch_identical_pixels(tiny_session):
    a = invert(tiny_session, ["a cat", "a dog"], [3], fast(param="pixel"))
    b = invert(tiny_session, ["a cat", "a dog"], [3], fast(param="pixel"))
    assert all(torch.equal(x.image, y.image) for x, y in zip(a, b, strict=True))
    c = invert(tiny_session, ["a cat"], [4], fast(param="pixel"))
    assert not torch.equal(a[0].image, c[0].image)


def test_optimisation_raises_the_cosine(tiny_session):
    settings = {"copies": 1, "transforms": ["resize"], "loss": "cosine", "lr": 0.1, "param": "pixel", "size": 32}
    before = invert(tiny_session, ["a red circle"], [0], fast(steps=1, **settings))[0].cosine
    after = invert(tiny_session, ["a red circle"], [0], fast(steps=25, **settings))[0].cosine
    assert after > before + 0.05


@pytest.mark.slow
def test_bf16_on_cpu_is_deterministic_and_optimises(builtin_session):
    """bf16 autocast on CPU (the faster batched path on CPUs with native bf16) through the shipped
    model's inference-form tower: same seed, same bytes; the cosine climbs; and the images differ
    from fp32's, so bf16 really ran (not a silent fp32 fallback)."""
    from probe.session import Session

    bf16 = Session.open("shapes-tiny", device="cpu", precision="bf16")
    assert bf16.fast_image
    settings = load_preset("default", steps=12, resize_at=[1 / 3, 2 / 3], batch_size=8)
    prompts = ["a red circle", "a blue square"]
    a = invert(bf16, prompts, [0], settings)
    b = invert(bf16, prompts, [0], settings)
    assert all(torch.equal(x.image, y.image) and x.image.dtype == torch.float32 for x, y in zip(a, b, strict=True))
    # seen: about -0.21 after 1 step, 0.23-0.36 after 12 (fp32 alike)
    start = invert(bf16, prompts, [0], settings.with_overrides(steps=1))
    assert all(y.cosine > x.cosine + 0.2 for x, y in zip(start, a, strict=True))
    fp32 = invert(builtin_session, prompts, [0], settings)
    assert all(not torch.equal(x.image, y.image) for x, y in zip(a, fp32, strict=True))


class NaNFor(Objective):
    """Loss NaN for one image from a given step on (counts its own calls)."""

    def __init__(self, row: int, from_call: int) -> None:
        self.row, self.from_call, self.calls = row, from_call, 0

    def __call__(self, ctx):
        self.calls += 1
        out = torch.zeros(ctx.images.shape[0])
        if self.calls >= self.from_call:
            out[self.row] = float("nan")
        return out


def test_nan_stops_that_image_only(tiny_session):
    clean = invert(tiny_session, ["a", "b"], [0], fast(param="pixel", lr_schedule="constant"))
    steady = {"param": "pixel", "lr_schedule": "constant"}  # so the first two steps do not depend on the total
    two_steps = invert(tiny_session, ["a", "b"], [0], fast(steps=2, **steady))
    res = invert(tiny_session, ["a", "b"], [0], fast(**steady), extra_objective=NaNFor(1, 3))
    assert res[0].status == "done" and torch.equal(res[0].image, clean[0].image) and res[0].message == ""
    assert res[1].status == "nan" and res[1].steps == 2
    assert res[1].message == "loss became nan at step 3; kept the image from before it"
    assert torch.equal(res[1].image, two_steps[1].image)  # the last finite image, as it was after step 2


def test_an_image_whose_first_loss_is_nan_has_no_steps_and_a_run_of_dead_images_ends(tiny_session):
    seen: list[int] = []
    res = invert(
        tiny_session, ["a"], [0], fast(param="pixel"), extra_objective=NaNFor(0, 2), on_step=lambda s, c: seen.append(s)
    )
    assert res[0].status == "nan" and res[0].steps == 1 and seen == [1, 2]  # no steps after every image died
    first = invert(tiny_session, ["a"], [0], fast(param="pixel"), extra_objective=NaNFor(0, 1))[0]
    assert first.status == "nan" and first.steps == 0 and "at step 1;" in first.message


def test_unclamped_pixels_still_come_back_in_zero_one_everywhere(tiny_session):
    """With --no-clamp the pixels may leave [0, 1] while optimising; every image handed back (final,
    snapshot, or kept before a NaN) is clamped."""
    settings = fast(param="pixel", clamp=False, lr=5.0, steps=4, snapshot_every=2, size=32)
    res = invert(tiny_session, ["a", "b"], [0], settings, extra_objective=NaNFor(1, 4))
    for r in res:
        for image in [r.image, *r.snapshots]:
            assert image.min() >= 0 and image.max() <= 1
    assert res[0].image.min() == 0 and res[0].image.max() == 1  # lr 5 pushed pixels past both ends
    assert res[1].status == "nan" and res[1].image.min() == 0 and res[1].image.max() == 1
    assert torch.equal(res[0].snapshots[-1], res[0].image)  # the step-4 snapshot is the final image


def test_stop_request_returns_what_exists(tiny_session):
    steps = []
    res = invert(
        tiny_session,
        ["a", "b", "c"],
        [0],
        fast(batch_size=1),
        on_step=lambda s, c: steps.append(s),
        should_stop=lambda: len(steps) >= 2,
    )
    assert [r.status for r in res] == ["interrupted"] * 3
    assert [r.steps for r in res] == [2, 0, 0]
    assert [(r.prompt, r.seed) for r in res] == [("a", 0), ("b", 0), ("c", 0)]
    assert res[0].seconds > 0 and res[1].seconds == res[2].seconds == 0.0
    for never in res[1:]:  # stopped before their chunk began: grey, no score, nothing else to show
        assert torch.equal(never.image, torch.full((3, 32, 32), 0.5)) and never.cosine != never.cosine  # NaN
        assert (never.message, never.snapshots, never.snapshot_steps, never.model_cosines) == ("", [], [], [])


def test_on_step_reports_per_image_cosine_over_all_chunks(tiny_session):
    seen = []
    invert(
        tiny_session, ["a", "b", "c"], [0], fast(batch_size=2), on_step=lambda s, c: seen.append((s, tuple(c.shape)))
    )
    assert [s for s, _ in seen] == list(range(1, 9))
    assert seen[0][1] == (2,) and seen[-1][1] == (1,)
    steps: list[int] = []
    invert(tiny_session, ["a", "b", "c"], [0], fast(batch_size=1), on_step=lambda s, c: steps.append(s))
    assert steps == list(range(1, 13))  # three chunks of 4 steps, counted on from one chunk to the next


def test_snapshots_every_k_steps(tiny_session):
    res = invert(tiny_session, ["a"], [0], fast(steps=7, snapshot_every=3))[0]
    assert res.snapshot_steps == [3, 6] and len(res.snapshots) == 2


def test_progressive_resolution_and_snapshots(tiny_session):
    s = load_preset("paper", steps=6, resize_at=[1 / 3, 2 / 3], size=8, copies=2, snapshot_every=2)
    res = invert(tiny_session, ["a"], [0], s)[0]
    assert res.image.shape == (3, 32, 32)  # 8 -> 16 -> 32 (capped at the model input, 32)
    assert [snap.shape[-1] for snap in res.snapshots] == [8, 16, 32] and res.snapshot_steps == [2, 4, 6]


def test_out_of_memory_chunks_are_split(tiny_session, monkeypatch):
    real = render._run_chunk
    sizes = []

    def flaky(session, items, *args):
        sizes.append(len(items))
        if len(items) > 1:
            raise RuntimeError("CUDA out of memory. Tried to allocate 1 GiB")
        return real(session, items, *args)

    monkeypatch.setattr(render, "_run_chunk", flaky)
    res = invert(tiny_session, ["a", "b", "c"], [0], fast())
    assert [r.prompt for r in res] == ["a", "b", "c"] and all(r.status == "done" for r in res)
    assert sizes == [3, 1, 2, 1, 1]


def test_out_of_memory_in_the_first_chunk_keeps_the_chunks_after_it(tiny_session, monkeypatch):
    real = render._run_chunk
    sizes = []

    def flaky(session, items, *args):
        sizes.append([p for p, _ in items])
        if len(sizes) == 1:
            raise RuntimeError("CUDA out of memory. Tried to allocate 1 GiB")
        return real(session, items, *args)

    monkeypatch.setattr(render, "_run_chunk", flaky)
    res = invert(tiny_session, ["a", "b", "c", "d"], [0], fast(batch_size=2))
    assert [r.prompt for r in res] == ["a", "b", "c", "d"] and all(r.status == "done" for r in res)
    assert sizes == [["a", "b"], ["a"], ["b"], ["c", "d"]]


def test_any_other_error_in_a_chunk_is_raised_at_once(tiny_session, monkeypatch):
    sizes = []

    def broken(session, items, *args):
        sizes.append(len(items))
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(render, "_run_chunk", broken)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        invert(tiny_session, ["a", "b", "c"], [0], fast())
    assert sizes == [3]  # not split and retried as if memory had run out


def test_empty_inputs_are_usage_errors(tiny_session):
    with pytest.raises(UsageError) as error:
        invert(tiny_session, [], [0], fast())
    assert str(error.value) == "no prompts to invert (give at least one prompt)"
    with pytest.raises(UsageError) as error:
        invert(tiny_session, ["a"], [], fast())
    assert str(error.value) == "no seeds (give at least one seed, e.g. --seeds 0-3)"


def test_fft_param_through_the_loop_with_a_resize(tiny_session):
    res = invert(tiny_session, ["a"], [0], fast(param="fft", steps=3, resize_at=[0.5], size=16))[0]
    assert res.image.shape == (3, 32, 32) and res.status == "done"
    assert res.image.min() > 0 and res.image.max() < 1


@pytest.mark.parametrize(
    "schedule, want",
    [
        ("cosine", [0.2, 0.2 * 0.5 * (1 + 0.5**0.5), 0.1, 0.2 * 0.5 * (1 - 0.5**0.5)]),  # cos(0), cos(pi/4), ...
        ("constant", [0.2, 0.2, 0.2, 0.2]),
    ],
)
def test_each_step_runs_at_its_scheduled_learning_rate(tiny_session, schedule, want):
    """The optimiser's rate at steps 0, 2, 4, 6 of 8: cosine decays lr * (1 + cos(pi t / T)) / 2."""
    settings = fast(steps=8, lr=0.2, lr_schedule=schedule, param="pixel").validated()
    targets = render.text_targets(tiny_session, ["a"])
    chunk = render._Chunk([tiny_session], [("a", 0)], settings, [targets], None)
    seen = []
    for step in range(0, 8, 2):
        chunk.step(step)
        seen.append(chunk.optimizer.param_groups[0]["lr"])
    assert seen == pytest.approx(want, rel=1e-12)


def test_each_images_gradient_is_clipped_on_its_own():
    """As clip_grad_norm_ per image over all its parameters: image 0 (norm 5 over two parameters)
    scales to norm 1, image 1 (norm 0.5) is left alone, a retired image's gradient is zeroed, and a
    NaN entry counts as 0."""
    a = torch.tensor([[3.0, 0.0], [0.3, 0.0], [7.0, 1.0]])
    b = torch.tensor([[[4.0]], [[0.4]], [[float("nan")]]])
    render._clip_per_image([a, b], 1.0, torch.tensor([True, True, False]))
    scale = 1.0 / (5.0 + 1e-6)
    assert a.flatten().tolist() == pytest.approx([3.0 * scale, 0.0, 0.3, 0.0, 0.0, 0.0], rel=1e-6)
    assert b.flatten().tolist() == pytest.approx([4.0 * scale, 0.4, 0.0], rel=1e-6)
    c = torch.tensor([[30.0], [float("nan")], [float("inf")], [float("-inf")]])
    render._clip_per_image([c], 0.0, torch.tensor([True, True, True, True]))  # 0: no clipping; NaN, inf zeroed
    assert c.flatten().tolist() == [30.0, 0.0, 0.0, 0.0]


def test_an_extra_objective_is_added_to_the_loss(tiny_session):
    """An objective that rewards brightness (its loss falls as the pixels rise) brightens the image."""
    from probe_invert.objectives import Lambda

    settings = fast(param="pixel", steps=6, lr=0.05, priors={}, size=32)
    plain = invert(tiny_session, ["a"], [0], settings)[0].image.mean()
    brighter = Lambda(lambda ctx: -100.0 * ctx.images.mean(dim=(1, 2, 3)))
    lit = invert(tiny_session, ["a"], [0], settings, extra_objective=brighter)[0].image.mean()
    assert lit > plain + 0.1


def test_a_prior_nobody_registered_is_named_in_the_error():
    from probe_invert.settings import SettingsError

    with pytest.raises(SettingsError, match=r"^unknown prior 'nope' \(use one of: tv, l1"):
        fast(priors={"tv": 0.0, "nope": 1.0})


def test_each_image_is_charged_its_share_of_its_chunks_time(tiny_session):
    import time

    start = time.perf_counter()
    res = invert(tiny_session, ["a", "b", "c"], [0], fast(batch_size=2))
    wall = time.perf_counter() - start
    assert res[0].seconds == res[1].seconds > 0 and res[2].seconds > 0
    assert sum(r.seconds for r in res) <= wall


def test_out_of_memory_is_recognised_by_type_or_by_message():
    assert render._out_of_memory(torch.cuda.OutOfMemoryError("allocation of 2 GiB failed"))
    assert render._out_of_memory(RuntimeError("MPS backend Out Of Memory (MPS allocated: 9 GB)"))
    assert not render._out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))


def test_inverting_no_items_is_a_usage_error(tiny_session):
    with pytest.raises(UsageError) as error:
        render.invert_items(tiny_session, [], fast())
    assert str(error.value) == "nothing to invert (give at least one prompt and one seed)"


def test_per_image_clipping_is_torchs_clip_grad_norm_on_each_image_alone():
    """Against torch.nn.utils.clip_grad_norm_ run image by image, down to norms near its 1e-6 guard."""
    torch.manual_seed(0)
    grads = [torch.randn(4, 3) * 1e-6, torch.randn(4, 2, 2) * 1e-6]
    grads[0][3] *= 1e6  # one image far above the limit
    want = []
    for i in range(4):
        params = [torch.nn.Parameter(torch.zeros_like(g[i])) for g in grads]
        for p, g in zip(params, grads, strict=True):
            p.grad = g[i].clone()
        torch.nn.utils.clip_grad_norm_(params, max_norm=1e-6)
        want.append([p.grad for p in params])
    render._clip_per_image(grads, 1e-6, torch.ones(4, dtype=torch.bool))
    for i in range(4):
        for got, expected in zip((g[i] for g in grads), want[i], strict=True):
            torch.testing.assert_close(got, expected, rtol=1e-6, atol=0)
