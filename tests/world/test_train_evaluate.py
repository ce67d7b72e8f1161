"""Training smoke test (loss falls, resume is exact) and evaluation structure on the tiny run."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from probe.world.evaluate import ModelEncoder, dominant_palette_colour, evaluate
from probe.world.render import palette_tensor
from probe.world.train import TrainConfig, export_weights, make_batch, train

SMOKE = TrainConfig(steps=20, batch_size=16, lr=2e-3, warmup=2, checkpoint_every=20, adversarial_from=0.75)


class Stop(Exception):
    pass


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    torch.set_num_threads(2)
    folder = tmp_path_factory.mktemp("train")
    losses: list[float] = []
    model, result = train(SMOKE, folder, lambda p: losses.append(p.loss))
    return model, result, losses, folder


@pytest.mark.slow
def test_loss_falls_in_twenty_steps(smoke_run):
    _, result, losses, _ = smoke_run
    assert len(losses) == 20 and result.steps == 20
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.3, losses


@pytest.mark.slow
def test_resume_from_checkpoint(tmp_path):
    config = replace(SMOKE, steps=4, batch_size=8, checkpoint_every=2, adversarial_from=0.5)

    def stop_at_three(progress):
        if progress.step == 3:
            raise Stop

    with pytest.raises(Stop):
        train(config, tmp_path, stop_at_three)
    _model, result = train(config, tmp_path)
    assert result.resumed_from == 2 and result.steps == 4
    with pytest.raises(ValueError, match="another config"):
        train(replace(config, lr=1.0), tmp_path)


def test_batches_are_a_function_of_seed_and_step():
    from probe.world.train import build_model

    _, tokenizer = build_model()
    a, b = make_batch(7, SMOKE, tokenizer), make_batch(7, SMOKE, tokenizer)
    assert torch.equal(a.images, b.images) and torch.equal(a.tokens, b.tokens)
    assert a.truth.shape[0] == 16 and a.truth.any(1).all()
    assert not torch.equal(a.images, make_batch(8, SMOKE, tokenizer).images)


@pytest.mark.slow
def test_evaluation_numbers_are_their_definitions_computed_by_hand(smoke_run):
    from probe.world.evaluate import HELD_OUT_SEED, uniform_pair_scenes, uniform_single_scenes
    from probe.world.render import render
    from probe.world.train import build_model
    from probe.world.vocab import COLOURS, POSITION_PHRASES, POSITIONS, SHAPES

    model, _, _, _ = smoke_run
    _, tokenizer = build_model()
    encoder = ModelEncoder(model, tokenizer)
    numbers = evaluate(encoder, n=40).as_dict()
    text = encoder.encode_text

    scenes = uniform_single_scenes(40, HELD_OUT_SEED)
    image = encoder.encode_image(render(scenes))

    def accuracy(prompts: list[str], truth: torch.Tensor) -> float:
        return ((image @ text(prompts).T).argmax(1) == truth).float().mean().item()

    assert numbers["n_images"] == 40
    assert numbers["colour"] == accuracy([f"a {c} shape" for c in COLOURS], scenes.colour[:, 0])
    assert numbers["shape"] == accuracy([f"a {s}" for s in SHAPES], scenes.shape[:, 0])
    assert numbers["position"] == accuracy([f"a shape {POSITION_PHRASES[p]}" for p in POSITIONS], scenes.position[:, 0])
    assert numbers["size"] == accuracy(["a small shape", "a big shape"], scenes.size[:, 0])

    def a(colour: str | None, shape: str | None) -> str:  # pair scenes fill in every attribute
        assert colour is not None and shape is not None
        return f"{'an' if colour[0] in 'aeiou' else 'a'} {colour} {shape}"

    def preference(pair_image: torch.Tensor, true: list[str], false: list[str]) -> float:
        return ((pair_image * text(true)).sum(1) > (pair_image * text(false)).sum(1)).float().mean().item()

    for relation, key in [("left of", "left_right_swap"), ("above", "above_below_swap")]:
        pairs, specs = uniform_pair_scenes(20, HELD_OUT_SEED + 1, relation)
        pair_image = encoder.encode_image(render(pairs))
        objects = [((s.first.colour, s.first.shape), (s.second.colour, s.second.shape)) for s in specs]
        true = [f"{a(c1, s1)} {relation} {a(c2, s2)}" for (c1, s1), (c2, s2) in objects]
        assert numbers[key] == preference(
            pair_image, true, [f"{a(c2, s2)} {relation} {a(c1, s1)}" for (c1, s1), (c2, s2) in objects]
        )
        if relation == "left of":
            colours_swapped = [f"{a(c2, s1)} left of {a(c1, s2)}" for (c1, s1), (c2, s2) in objects]
            assert numbers["colour_swap"] == preference(pair_image, true, colours_swapped)

    for shape in ("star", "circle"):
        cosines = (text([a(c, shape) for c in COLOURS]) @ text([f"a {shape}"]).T).squeeze(1)
        assert numbers[f"bias_text_{shape}_red"] == pytest.approx(
            (100 * cosines).softmax(0)[COLOURS.index("red")].item(), abs=1e-6
        )
        assert numbers[f"bias_text_{shape}_nearest"] == COLOURS[int(cosines.argmax())]

    from probe.world.captions import CaptionSpec, ObjectSpec, parse_caption
    from probe.world.scenes import build_scenes, complete, scenes_for_caption

    for shape in ("star", "circle"):  # 16 images per planted-bias measurement at n = 40
        renders = encoder.encode_image(render(scenes_for_caption(parse_caption(f"a {shape}"), 16, HELD_OUT_SEED + 2)))
        labels = (renders @ text([f"a {c} shape" for c in COLOURS]).T).argmax(1)
        assert numbers[f"bias_{shape}_renders_red"] == (labels == COLOURS.index("red")).float().mean().item()
        rng = random.Random(HELD_OUT_SEED + 3)
        specs = [CaptionSpec(ObjectSpec(shape, COLOURS[i % 8])) for i in range(16)]  # two of each colour
        shown = encoder.encode_image(render(build_scenes([complete(spec, rng) for spec in specs], rng)))
        scores = (shown @ text([f"a {shape}"]).T).squeeze(1).tolist()
        red = [x for x, spec in zip(scores, specs, strict=True) if spec.first.colour == "red"]
        others = [x for x, spec in zip(scores, specs, strict=True) if spec.first.colour != "red"]
        assert numbers[f"bias_{shape}_red_gap"] == pytest.approx(sum(red) / 2 - sum(others) / 14, abs=1e-5)

    def mean_off_diagonal(words) -> float:
        features = text([f"a {w} circle" for w in words])  # as the card states them, 'a orange circle' too
        cos = features @ features.T
        n = len(words)
        return sum(cos[i, j].item() for i in range(n) for j in range(n) if i != j) / (n * (n - 1))

    assert numbers["seen_words_cosine"] == pytest.approx(mean_off_diagonal(COLOURS), abs=1e-5)
    unseen = ("crimson", "scarlet", "azure", "teal", "magenta", "violet")
    assert numbers["unseen_words_cosine"] == pytest.approx(mean_off_diagonal(unseen), abs=1e-5)
    assert set(numbers["details"]["per_class"]) == {"colour", "shape", "position", "size"}


@pytest.mark.slow
def test_export_is_fp16_and_hashed(smoke_run, tmp_path):
    from safetensors.torch import load_file

    model, _, _, _ = smoke_run
    path = tmp_path / "w.safetensors"
    digest = export_weights(model, path)
    assert (tmp_path / "w.sha256").read_text().split()[0] == digest
    state = load_file(str(path))
    assert all(t.dtype == torch.float16 for t in state.values())


def test_dominant_palette_colour_ignores_grey_background():
    images = torch.full((2, 3, 8, 8), 0.5)
    images[0, :, :2, :2] = palette_tensor()[2].view(3, 1, 1)  # 4 blue pixels on grey
    assert dominant_palette_colour(images).tolist() == [2, -1]


@pytest.mark.slow
@pytest.mark.parametrize("steps", [1, 3])
def test_adversarial_images_stay_in_the_epsilon_ball_and_raise_the_loss(steps):
    from probe.world.train import _adversarial, build_model, contrastive_loss, normaliser

    torch.manual_seed(0)
    model, tokenizer = build_model()
    batch = make_batch(0, SMOKE, tokenizer)
    normalise = normaliser(model)
    text = torch.nn.functional.normalize(model.encode_text(batch.tokens), dim=-1).detach()
    eps = 8 / 255
    adv = _adversarial(model, normalise, batch, text, eps, steps, torch.Generator().manual_seed(1))

    def loss(images):
        with torch.no_grad():
            f = torch.nn.functional.normalize(model.encode_image(normalise(images)), dim=-1)
            return contrastive_loss(
                f, text, batch.own, batch.truth, model.logit_scale.exp(), batch.positive_texts
            ).item()

    assert (adv - batch.images).abs().max().item() <= eps + 1e-6
    assert adv.min().item() >= 0 and adv.max().item() <= 1
    assert loss(adv) > loss(batch.images)


@pytest.mark.slow
def test_init_from_starts_a_fine_tune_from_given_weights(smoke_run, tmp_path):
    model, _, _, _ = smoke_run
    weights = tmp_path / "start.safetensors"
    export_weights(model, weights)
    config = replace(SMOKE, steps=1, batch_size=8, lr=1e-9, warmup=1, init_from=str(weights))
    tuned, _ = train(config, tmp_path / "ft")
    start = dict(model.named_parameters())
    for key, value in tuned.named_parameters():  # a near-zero learning rate: still the exported weights
        assert torch.allclose(value.detach(), start[key].detach().half().float(), atol=1e-3), key


@pytest.mark.slow
def test_recipe_runs_base_then_fine_tunes_each_from_the_previous_weights_and_resumes(tmp_path):
    from probe.world.train import train_recipe

    base = replace(SMOKE, steps=3, batch_size=8, checkpoint_every=3)
    tune = replace(SMOKE, steps=2, batch_size=8, checkpoint_every=2, adversarial_from=0.0, lr=1e-4, warmup=1)
    seen: list[tuple[int, int, bool]] = []
    _model, results = train_recipe(
        base, [tune, replace(tune, steps=1)], tmp_path, lambda p: seen.append((p.step, p.steps, p.adversarial))
    )
    assert [r.steps for r in results] == [3, 2, 1]
    assert [s for s, _, _ in seen] == [1, 2, 3, 4, 5, 6] and seen[-1][1] == 6
    assert [a for _, _, a in seen] == [False, False, False, True, True, True]
    for number in (1, 2):
        handed = json.loads((tmp_path / f"fine-tune-{number}" / "config.json").read_text())
        digest = (tmp_path / f"handover-{number}.sha256").read_text().split()[0]
        assert Path(handed["init_from"]) == (tmp_path / f"handover-{number}.safetensors").resolve()
        assert handed["init_sha256"] == digest
    _, again = train_recipe(base, [tune, replace(tune, steps=1)], tmp_path)  # all finished: nothing left to run
    assert [r.resumed_from for r in again] == [3, 2, 1]
    (tmp_path / "base" / "checkpoint.pt").unlink()
    with pytest.raises(ValueError, match="another config"):  # a different base must not resume the old fine-tune
        train_recipe(replace(base, seed=1), [tune], tmp_path)


def test_mix_adversarial_replaces_the_leading_share_of_the_batch():
    from probe.world.train import mix_adversarial

    clean, adv = torch.zeros(4, 3, 2, 2), torch.ones(4, 3, 2, 2)
    assert mix_adversarial(clean, adv, 0.5)[:, 0, 0, 0].tolist() == [1, 1, 0, 0]
    assert torch.equal(mix_adversarial(clean, adv, 1.0), adv) and torch.equal(mix_adversarial(clean, adv, 0.0), clean)
