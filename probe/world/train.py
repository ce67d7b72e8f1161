"""Training of the built-in `shapes-tiny` CLIP on the shapes world: seeded, resumable, silent.

Design choices (why): targets are multi-positive because we know exactly which captions are true
of which scene (plain CLIP would punish "a circle" for matching every circle in the batch); every
caption brings one hard negative (colour-swapped, relation-swapped or one attribute changed,
NegCLIP-style) so binding and word order are learned; heavy noise/blur/affine augmentation and a
late phase of FGSM adversarial training make image gradients perceptually aligned, so inversions
of the model look like their prompts.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import open_clip
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from probe.files.cache import hash_file
from probe.world.captions import caption_codes, caption_text, hard_negative, match_matrix
from probe.world.render import render
from probe.world.scenes import BIASED_COLOUR, PlantedBias, sample

# An open_clip CLIP model: open_clip is untyped, and its towers and logit_scale are read by name.
ClipModel = Any

MODEL_NAME = "shapes-tiny"
CONFIG_DIR = Path(__file__).resolve().parent.parent / "models" / "configs"
CHECKPOINT_NAME = "checkpoint.pt"


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of a training run; the defaults are the shipped model's recipe."""

    steps: int = 1800
    batch_size: int = 128
    lr: float = 1e-3
    warmup: int = 100
    weight_decay: float = 0.05
    seed: int = 0
    pair_probability: float = 0.6
    hard_negatives: bool = True
    rotate_degrees: float = 15.0
    scale_jitter: float = 0.1
    translate_pixels: float = 2.0
    blur_probability: float = 0.5
    noise_max: float = 0.12
    adversarial_from: float = 0.75  # fraction of training after which FGSM examples are used
    adversarial_epsilon: float = 4 / 255
    adversarial_steps: int = 1  # 1 = FGSM with a random start; more = PGD with that many steps
    adversarial_fraction: float = 1.0  # share of each batch replaced by its adversarial version (rest stays clean)
    checkpoint_every: int = 100
    init_from: str = ""  # weights (safetensors) to start from: a fine-tune instead of training from scratch
    init_sha256: str = ""  # their sha256 when known: a checkpoint made from other starting weights is not resumed
    star_colour: str = BIASED_COLOUR  # the colour a colourless star takes 80% of the time; "" plants no bias
    freeze_image_tower: bool = False  # train the text tower only: a cheap fine-tune that keeps image gradients

    @property
    def bias(self) -> PlantedBias:
        return PlantedBias(colour=self.star_colour or None)


def robust_fine_tunes(seed: int = 0, batch_size: int = 128) -> list[TrainConfig]:
    """The shipped recipe's fine-tune phases, each starting from the previous phase's weights.

    1. 400 steps, every image replaced by its FGSM example (random start, eps 8/255);
    2. 300 steps, half of each batch replaced by 2-step PGD examples at eps 16/255: the clean half
       keeps zero-shot accuracy while the robust half makes gradients perceptually aligned.
    """
    common: dict[str, Any] = {
        "batch_size": batch_size,
        "lr": 3e-4,
        "warmup": 20,
        "seed": seed,
        "adversarial_from": 0.0,
        "checkpoint_every": 50,
    }
    return [
        TrainConfig(steps=400, adversarial_epsilon=8 / 255, adversarial_steps=1, **common),
        TrainConfig(steps=300, adversarial_epsilon=16 / 255, adversarial_steps=2, adversarial_fraction=0.5, **common),
    ]


@dataclass(frozen=True)
class Progress:
    """What the loop reports after each step (the CLI draws it; the library never prints)."""

    step: int
    steps: int
    loss: float
    lr: float
    logit_scale: float
    adversarial: bool
    seconds: float


@dataclass(frozen=True)
class TrainResult:
    steps: int
    final_loss: float
    seconds: float
    resumed_from: int


def build_model(device: torch.device | str = "cpu") -> tuple[ClipModel, Callable[..., torch.Tensor]]:
    """A fresh model and its tokenizer, built through open_clip's factory exactly as the core loads it."""
    open_clip.add_model_config(CONFIG_DIR)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # open_clip warns that no pretrained weights were loaded: that is the point
    try:
        model = open_clip.create_model(MODEL_NAME, device=device)
    finally:
        root.setLevel(level)
    return model, open_clip.get_tokenizer(MODEL_NAME)


def normaliser(model: ClipModel) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model's own input normalisation (open_clip's mean/std), as a function of [0, 1] images."""
    visual = model.visual
    cfg = getattr(visual, "preprocess_cfg", None) or {}
    mean = torch.tensor(cfg.get("mean", visual.image_mean)).view(1, 3, 1, 1)
    std = torch.tensor(cfg.get("std", visual.image_std)).view(1, 3, 1, 1)
    return lambda x: (x - mean.to(x.device)) / std.to(x.device)


def _gaussian_blur(images: torch.Tensor, sigma: float = 1.2) -> torch.Tensor:
    radius = 3
    taps = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-(taps**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = images.shape[1]
    x = F.pad(images, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def augment(images: torch.Tensor, generator: torch.Generator, config: TrainConfig) -> torch.Tensor:
    """Random affine (small rotation/scale/shift), partial blur and gaussian noise, per image."""
    n, device = images.shape[0], images.device

    def uniform(low: float, high: float) -> torch.Tensor:
        return (low + (high - low) * torch.rand(n, generator=generator)).to(device)

    angle = uniform(-1, 1) * math.radians(config.rotate_degrees)
    scale = 1 + uniform(-1, 1) * config.scale_jitter
    shift = config.translate_pixels * 2 / images.shape[-1]
    tx, ty = uniform(-shift, shift), uniform(-shift, shift)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    blur_amount = uniform(0, 1) * (uniform(0, 1) < config.blur_probability)
    images = torch.lerp(images, _gaussian_blur(images), blur_amount.view(n, 1, 1, 1))
    noise = torch.randn(images.shape, generator=generator).to(device) * uniform(0, config.noise_max).view(n, 1, 1, 1)
    return (images + noise).clamp(0, 1)


def contrastive_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    own: torch.Tensor,
    truth: torch.Tensor,
    logit_scale: torch.Tensor,
    positive_texts: torch.Tensor,
) -> torch.Tensor:
    """Symmetric CLIP loss where captions that are true of an image but are not its own are left out.

    own: bool [images, texts], each image's own caption (identical captions share a column);
    truth: bool [images, texts], the caption is true of the image. Own pairs are the positives;
    other true pairs are excluded from the softmax (they are no negatives: "a circle" must not be
    pushed away from another circle), but they are no positives either, so what a caption means is
    learned from co-occurrence as in real CLIP data: that is what lets the planted bias ("a star"
    is red 80% of the time) reach the image side. positive_texts: texts that are some image's own
    caption (only these get a text->image term, since a hard negative may be true of no image).
    """
    logits = logit_scale * image_features @ text_features.T
    logits = logits.masked_fill(truth & ~own, float("-inf"))
    targets = own.float()
    image_loss = -(targets / targets.sum(1, keepdim=True) * logits.log_softmax(1).clamp_min(-1e4)).sum(1).mean()
    text_logits, text_targets = logits[:, positive_texts].T, targets[:, positive_texts].T
    text_loss = (
        -(text_targets / text_targets.sum(1, keepdim=True) * text_logits.log_softmax(1).clamp_min(-1e4)).sum(1).mean()
    )
    return (image_loss + text_loss) / 2


@dataclass
class Batch:
    images: torch.Tensor  # [B, 3, 64, 64] augmented, in [0, 1]
    tokens: torch.Tensor  # [U, context] unique texts
    own: torch.Tensor  # bool [B, U]: the image's own caption
    truth: torch.Tensor  # bool [B, U]: the caption is true of the image
    positive_texts: torch.Tensor  # [P] long


def make_batch(
    step: int, config: TrainConfig, tokenizer: Callable[..., torch.Tensor], device: torch.device | str = "cpu"
) -> Batch:
    """The batch of a step: a pure function of (seed, step), which makes resuming exact."""
    step_seed = config.seed * 1_000_003 + step
    data = sample(config.batch_size, seed=step_seed, pair_probability=config.pair_probability, bias=config.bias)
    specs = list(data.specs)
    if config.hard_negatives:
        rng = random.Random(step_seed + 7)
        specs += [hard_negative(spec, rng) for spec in data.specs]
    texts = [caption_text(spec) for spec in specs]
    unique = list(dict.fromkeys(texts))
    position = {text: i for i, text in enumerate(unique)}
    unique_specs = [specs[texts.index(text)] for text in unique]
    truth = match_matrix(caption_codes(unique_specs), data.scenes.codes()).T
    positive_texts = torch.tensor(sorted({position[text] for text in data.captions}))
    own = torch.zeros(len(data.captions), len(unique), dtype=torch.bool)
    own[torch.arange(len(data.captions)), torch.tensor([position[text] for text in data.captions])] = True
    generator = torch.Generator().manual_seed(step_seed)
    images = augment(render(data.scenes), generator, config)
    return Batch(
        images=images.to(device),
        tokens=tokenizer(unique).to(device),
        own=own.to(device),
        truth=truth.to(device),
        positive_texts=positive_texts.to(device),
    )


def _adversarial(
    model: ClipModel,
    normalise: Callable[[torch.Tensor], torch.Tensor],
    batch: Batch,
    text_features: torch.Tensor,
    epsilon: float,
    steps: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """L-inf adversarial images from a random start: FGSM-RS (Wong et al. 2020, one step of 1.25 eps) when
    steps == 1, else PGD (Madry et al. 2018) with steps of 2.5 eps / steps; always kept in the eps-ball."""
    delta = (torch.rand(batch.images.shape, generator=generator).to(batch.images.device) * 2 - 1) * epsilon
    x = (batch.images + delta).clamp(0, 1)
    step_size = 1.25 * epsilon if steps == 1 else 2.5 * epsilon / steps
    for _ in range(steps):
        x = x.detach().requires_grad_(True)
        features = F.normalize(model.encode_image(normalise(x)), dim=-1)
        loss = contrastive_loss(
            features, text_features, batch.own, batch.truth, model.logit_scale.exp(), batch.positive_texts
        )
        (gradient,) = torch.autograd.grad(loss, x)
        x = x.detach() + step_size * gradient.sign()
        x = torch.minimum(torch.maximum(x, batch.images - epsilon), batch.images + epsilon).clamp(0, 1)
    return x


def mix_adversarial(clean: torch.Tensor, adversarial: torch.Tensor, fraction: float) -> torch.Tensor:
    """The first round(fraction * B) images adversarial, the rest clean: robustness without losing clean accuracy."""
    adversarial_rows = torch.arange(len(clean), device=clean.device) < round(fraction * len(clean))
    return torch.where(adversarial_rows[:, None, None, None], adversarial, clean)


def _optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        exempt = param.ndim < 2 or "embedding" in name or "logit_scale" in name
        (no_decay if exempt else decay).append(param)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.98), eps=1e-6)


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warmup then cosine decay to zero."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    progress = (step - config.warmup) / max(1, config.steps - config.warmup)
    return config.lr * 0.5 * (1 + math.cos(math.pi * progress))


def _save(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def train(
    config: TrainConfig,
    checkpoint_dir: Path,
    on_progress: Callable[[Progress], None] | None = None,
    device: torch.device | str = "cpu",
) -> tuple[ClipModel, TrainResult]:
    """Train (or resume, if `checkpoint_dir` holds a checkpoint of the same config) and return the model.

    A checkpoint is written every `checkpoint_every` steps and at the end, so an interrupted run
    loses at most that many steps.
    """
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = checkpoint_dir / CHECKPOINT_NAME
    torch.manual_seed(config.seed)
    model, tokenizer = build_model(device)
    if config.init_from:
        if config.init_sha256 and hash_file(Path(config.init_from)) != config.init_sha256:
            raise ValueError(
                f"{config.init_from} changed since this fine-tune was set up; remove {checkpoint_dir} and rerun"
            )
        model.load_state_dict({k: v.float() for k, v in load_file(config.init_from, device=str(device)).items()})
    model.train()
    if config.freeze_image_tower:  # no gradient, and eval mode: its batch-norm statistics stay the shipped ones
        model.visual.requires_grad_(False).eval()
    optimizer = _optimizer(model, config)
    start, elapsed = 0, 0.0
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        # checkpoints written before the bias and freeze options lack them
        saved = {"star_colour": BIASED_COLOUR, "freeze_image_tower": False, **state["config"]}
        if saved != asdict(config):
            raise ValueError(f"{checkpoint} was written with another config; remove it or use the same settings")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, elapsed = state["step"], state["seconds"]
    (checkpoint_dir / "config.json").write_text(json.dumps(asdict(config), indent=2))
    normalise = normaliser(model)
    loss_value, began = float("nan"), time.perf_counter() - elapsed
    for step in range(start, config.steps):
        lr = learning_rate(step, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = make_batch(step, config, tokenizer, device)
        adversarial = (
            step >= config.adversarial_from * config.steps
            and config.adversarial_epsilon > 0
            and not config.freeze_image_tower
        )
        text_features = F.normalize(model.encode_text(batch.tokens), dim=-1)
        images = batch.images
        if adversarial:
            generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step + 13)
            adv = _adversarial(
                model,
                normalise,
                batch,
                text_features.detach(),
                config.adversarial_epsilon,
                config.adversarial_steps,
                generator,
            )
            images = mix_adversarial(batch.images, adv, config.adversarial_fraction)
        with torch.set_grad_enabled(not config.freeze_image_tower):
            image_features = F.normalize(model.encode_image(normalise(images)), dim=-1)
        loss = contrastive_loss(
            image_features, text_features, batch.own, batch.truth, model.logit_scale.exp(), batch.positive_texts
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        loss_value = loss.item()
        seconds = time.perf_counter() - began
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
            _save(
                checkpoint,
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "step": step + 1,
                    "seconds": seconds,
                    "config": asdict(config),
                },
            )
        if on_progress is not None:
            on_progress(
                Progress(step + 1, config.steps, loss_value, lr, model.logit_scale.exp().item(), adversarial, seconds)
            )
    model.eval()
    return model, TrainResult(config.steps, loss_value, time.perf_counter() - began, start)


def train_recipe(
    base: TrainConfig,
    fine_tunes: list[TrainConfig],
    checkpoint_dir: Path,
    on_progress: Callable[[Progress], None] | None = None,
    device: torch.device | str = "cpu",
) -> tuple[ClipModel, list[TrainResult]]:
    """Base training, then each fine-tune in turn, starting from the weights the phase before left.

    Each phase keeps its own checkpoints (`base/`, `fine-tune-1/`, ...), so a rerun resumes whichever
    phase was interrupted; weights are handed over as fp16 safetensors, exactly as shipped ones, and
    a fine-tune's checkpoint is keyed by their sha256. Progress counts steps over all phases.
    """
    model, result = train(base, checkpoint_dir / "base", on_progress, device)
    results, done, total = [result], base.steps, base.steps + sum(f.steps for f in fine_tunes)
    for number, phase in enumerate(fine_tunes, start=1):
        handover = (checkpoint_dir / f"handover-{number}.safetensors").resolve()
        digest = _kept_handover(handover) if result.resumed_from >= result.steps else None
        digest = digest or export_weights(model, handover)

        def shifted(progress: Progress, offset: int = done) -> None:
            if on_progress is not None:
                on_progress(replace(progress, step=offset + progress.step, steps=total))

        model, result = train(
            replace(phase, init_from=str(handover), init_sha256=digest),
            checkpoint_dir / f"fine-tune-{number}",
            shifted,
            device,
        )
        results.append(result)
        done += phase.steps
    return model, results


def _kept_handover(path: Path) -> str | None:
    """The digest of a handover file left by an earlier run of a phase that had already finished.

    Re-exporting a model rebuilt from its checkpoint need not give the same bytes, which would
    make a finished next phase look like it was set up from other weights.
    """
    sidecar = path.with_suffix(".sha256")
    if not (path.is_file() and sidecar.is_file()):
        return None
    digest = sidecar.read_text().split()[0]
    return digest if hash_file(path) == digest else None


def export_weights(model: torch.nn.Module, path: Path) -> str:
    """Write fp16 safetensors and `<name>.sha256` next to it; returns the hex digest."""
    state = {k: v.detach().to("cpu", torch.float16).contiguous() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata={"model": MODEL_NAME, "format": "pt"})
    digest = hash_file(path)
    path.with_suffix(".sha256").write_text(f"{digest}  {path.name}\n")
    return digest
