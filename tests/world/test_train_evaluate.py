"""Training smoke test (loss falls, resume is exact) and evaluation structure on the tiny run."""

from __future__ import annotations

import json
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


def test_loss_falls_in_twenty_steps(smoke_run):
    _, result, losses, _ = smoke_run
    assert len(losses) == 20 and result.steps == 20
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.3, losses


def test_resume_from_checkpoint(tmp_path):
    config = replace(SMOKE, steps=4, batch_size=8, checkpoint_every=2, adversarial_from=0.5)

    def stop_at_three(progress):  # noqa: ANN001
        if progress.step == 3:
            raise Stop

    with pytest.raises(Stop):
        train(config, tmp_path, stop_at_three)
    model, result = train(config, tmp_path)
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


def test_evaluation_structure(smoke_run):
    model, _, _, _ = smoke_run
    from probe.world.train import build_model

    _, tokenizer = build_model()
    result = evaluate(ModelEncoder(model, tokenizer), n=40)
    numbers = result.as_dict()
    for key in ("colour", "shape", "position", "size", "colour_swap", "left_right_swap", "above_below_swap",
                "bias_text_star_red", "bias_star_renders_red", "bias_circle_renders_red"):
        assert 0.0 <= numbers[key] <= 1.0, key
    assert result.bias_text_star_nearest in ("red", "green", "blue", "yellow", "purple", "orange", "white", "black")
    assert set(numbers["details"]["per_class"]) == {"colour", "shape", "position", "size"}


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

    def loss(images):  # noqa: ANN001, ANN202
        with torch.no_grad():
            f = torch.nn.functional.normalize(model.encode_image(normalise(images)), dim=-1)
            return contrastive_loss(f, text, batch.own, batch.truth, model.logit_scale.exp(), batch.positive_texts).item()

    assert (adv - batch.images).abs().max().item() <= eps + 1e-6
    assert adv.min().item() >= 0 and adv.max().item() <= 1
    assert loss(adv) > loss(batch.images)


def test_init_from_starts_a_fine_tune_from_given_weights(smoke_run, tmp_path):
    model, _, _, _ = smoke_run
    weights = tmp_path / "start.safetensors"
    export_weights(model, weights)
    config = replace(SMOKE, steps=1, batch_size=8, lr=1e-9, warmup=1, init_from=str(weights))
    tuned, _ = train(config, tmp_path / "ft")
    start = dict(model.named_parameters())
    for key, value in tuned.named_parameters():  # a near-zero learning rate: still the exported weights
        assert torch.allclose(value.detach(), start[key].detach().half().float(), atol=1e-3), key


def test_recipe_runs_base_then_fine_tunes_each_from_the_previous_weights_and_resumes(tmp_path):
    from probe.world.train import train_recipe

    base = replace(SMOKE, steps=3, batch_size=8, checkpoint_every=3)
    tune = replace(SMOKE, steps=2, batch_size=8, checkpoint_every=2, adversarial_from=0.0, lr=1e-4, warmup=1)
    seen: list[tuple[int, int, bool]] = []
    model, results = train_recipe(base, [tune, replace(tune, steps=1)], tmp_path,
                                  lambda p: seen.append((p.step, p.steps, p.adversarial)))
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
