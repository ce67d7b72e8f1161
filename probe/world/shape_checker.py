"""An independent shape classifier, used to judge whether inverted images show the prompt's shape.

Not CLIP: a small CNN trained only on shape labels, on deliberately messy renders (random colours,
noisy/textured/coloured backgrounds, blur, noise, rotation), so it names the outline rather than
trusting the clean statistics the CLIP saw. Its weights ship next to the model's.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from probe.world.captions import CaptionSpec, ObjectSpec
from probe.world.evaluate import uniform_single_scenes
from probe.world.render import object_masks, render
from probe.world.scenes import build_scenes, complete
from probe.world.vocab import COLOURS, POSITIONS, SHAPES, SIZES

CHECKER_PATH = Path(__file__).resolve().parent.parent / "models" / "weights" / "shape-checker.safetensors"
INPUT_SIZE = 64


class ShapeChecker(nn.Module):
    """A strided stem, three conv blocks and a linear head; takes [B, 3, H, W] in [0, 1] at any size,
    returns logits over SHAPES."""

    def __init__(self, width: int = 24) -> None:
        super().__init__()
        channels = [3, width, 2 * width, 3 * width, 4 * width]
        blocks: list[nn.Module] = [
            nn.Conv2d(3, width, 5, stride=2, padding=2, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
        ]
        channels = channels[1:]
        for c_in, c_out in itertools.pairwise(channels):
            blocks += [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
        self.features = nn.Sequential(*blocks)
        self.head = nn.Linear(channels[-1], len(SHAPES))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] != INPUT_SIZE or images.shape[-2] != INPUT_SIZE:
            images = F.interpolate(
                images, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True, align_corners=False
            )
        # Per-image standardisation: the checker judges outlines, not absolute colours or contrast.
        mean = images.mean(dim=(1, 2, 3), keepdim=True)
        std = images.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-3)
        return self.head(self.features((images - mean) / std).mean(dim=(2, 3)))


@torch.no_grad()
def predict_shapes(checker: ShapeChecker, images: torch.Tensor) -> torch.Tensor:
    """Index into SHAPES of the shape each image shows."""
    checker.eval()
    device = next(checker.parameters()).device
    return checker(images.to(device)).argmax(1).cpu()


def _smooth_field(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    cells = int(torch.randint(2, 9, (1,), generator=generator))
    low = torch.rand(n, 3, cells, cells, generator=generator)
    return F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


def messy_renders(n: int, seed: int, size: int = INPUT_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """n one-object images with random-looking colours and backgrounds, and their shape labels."""
    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)
    specs = [
        CaptionSpec(ObjectSpec(rng.choice(SHAPES), rng.choice(COLOURS), rng.choice(SIZES), rng.choice(POSITIONS)))
        for _ in range(n)
    ]
    scenes = build_scenes([complete(spec, rng) for spec in specs], rng)
    # Wider geometry than the CLIP saw: anywhere on the canvas, radius 8-18.
    radius = 8 + 10 * torch.rand(n, generator=generator)
    centre = radius[:, None] + (64 - 2 * radius[:, None]) * torch.rand(n, 2, generator=generator)
    scenes = type(scenes)(
        **{
            **scenes.__dict__,
            "radius": torch.stack([radius, torch.zeros(n)], 1),
            "centre": torch.stack([centre, torch.zeros(n, 2)], 1),
        }
    )
    mask = object_masks(scenes, size)[:, 0, None].float()
    mask = F.avg_pool2d(F.pad(mask, (1, 1, 1, 1), mode="replicate"), 3, stride=1)  # soft edges
    # Background: flat (half), smooth colour field, or flat with speckle; foreground: a random colour
    # at least 0.35 away from the background's mean in some channel, with a little texture.
    kind = torch.randint(0, 4, (n, 1, 1, 1), generator=generator)
    flat = torch.rand(n, 3, 1, 1, generator=generator).expand(n, 3, size, size)
    speckle = (
        (torch.rand(n, 3, size, size, generator=generator) - 0.5) * 0.6 * torch.rand(n, 1, 1, 1, generator=generator)
    )
    background = torch.where(
        kind <= 1, flat, torch.where(kind == 2, _smooth_field(n, size, generator), (flat + speckle).clamp(0, 1))
    )
    base = background.mean(dim=(2, 3), keepdim=True)
    foreground = torch.rand(n, 3, 1, 1, generator=generator)
    far = (foreground - base).abs().amax(1, keepdim=True) >= 0.35
    foreground = torch.where(far, foreground, (base + 0.5).remainder(1.0))
    foreground = (foreground + 0.2 * (_smooth_field(n, size, generator) - 0.5)).clamp(0, 1)
    images = mask * foreground + (1 - mask) * background
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(30)
    theta = torch.stack(
        [
            torch.stack([angle.cos(), -angle.sin(), torch.zeros(n)], 1),
            torch.stack([angle.sin(), angle.cos(), torch.zeros(n)], 1),
        ],
        1,
    )
    grid = F.affine_grid(theta, [n, 3, size, size], align_corners=False)
    images = F.grid_sample(images, grid, padding_mode="reflection", align_corners=False)
    noise = torch.randn(images.shape, generator=generator) * 0.2 * torch.rand(n, 1, 1, 1, generator=generator)
    return (images + noise).clamp(0, 1), scenes.shape[:, 0].clone()


def train_shape_checker(
    steps: int = 1500, batch_size: int = 64, seed: int = 0, on_progress: Callable[[int, float], None] | None = None
) -> ShapeChecker:
    """Train the checker from scratch (seeded); some minutes on CPU."""
    torch.manual_seed(seed)
    checker = ShapeChecker()
    optimizer = torch.optim.AdamW(checker.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps, pct_start=0.1)
    checker.train()
    for step in range(steps):
        images, labels = messy_renders(batch_size, seed=seed * 1_000_003 + step)
        loss = F.cross_entropy(checker(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if on_progress is not None:
            on_progress(step + 1, loss.item())
    return checker.eval()


def save_shape_checker(checker: ShapeChecker, path: Path = CHECKER_PATH) -> None:
    save_file({k: v.detach().cpu().contiguous() for k, v in checker.state_dict().items()}, str(path))


def load_shape_checker(path: Path = CHECKER_PATH, device: torch.device | str = "cpu") -> ShapeChecker:
    """The shipped checker; raises FileNotFoundError if it has not been trained and saved yet."""
    checker = ShapeChecker()
    checker.load_state_dict(load_file(str(path)))
    return checker.to(device).eval()


def checker_accuracy(checker: ShapeChecker, n: int = 500, seed: int = 777_000_001) -> tuple[float, float]:
    """(accuracy on held-out messy renders, accuracy on clean world renders): a sanity check of the judge."""
    images, labels = messy_renders(n, seed=seed)
    messy = (predict_shapes(checker, images) == labels).float().mean().item()
    scenes = uniform_single_scenes(n, seed + 1)
    clean = (predict_shapes(checker, render(scenes)) == scenes.shape[:, 0]).float().mean().item()
    return messy, clean
