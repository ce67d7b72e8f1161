"""Augmentations applied to the B x copies image batch each step: small callables, composed in order.

Each transform takes `x` [B*copies, 3, H, W] and the per-image random streams, and draws one set
of parameters per copy, so every copy of every image sees its own augmentation. Device-agnostic:
all parameters are drawn and applied on the images' device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F

from probe_invert.randomness import ImageRandom


class Transform(Protocol):
    def __call__(self, x: torch.Tensor, rng: ImageRandom) -> torch.Tensor: ...


@dataclass
class RandomAffine:
    """Rotate (±degrees), translate (± fraction of size), scale, each copy with probability p; border padding."""

    p: float = 0.5
    degrees: float = 30.0
    translate: float = 0.1
    scale_min: float = 0.7
    scale_max: float = 1.2
    padding: str = "border"

    def __call__(self, x: torch.Tensor, rng: ImageRandom) -> torch.Tensor:
        n = x.shape[0]
        angle = rng.uniform((), -math.radians(self.degrees), math.radians(self.degrees))
        shift = rng.uniform((2,), -self.translate, self.translate) * 2  # normalised coords span 2
        scale = rng.uniform((), self.scale_min, self.scale_max)
        apply = rng.uniform(()) < self.p
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
        identity = torch.eye(2, 3, device=x.device, dtype=theta.dtype).expand(n, 2, 3)
        theta = torch.where(apply[:, None, None], theta, identity).to(x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        moved = F.grid_sample(x, grid, mode="bilinear", padding_mode=self.padding, align_corners=False)
        return torch.where(apply[:, None, None, None], moved, x)


@dataclass
class ColourShift:
    """(x - mu) / sigma per copy and channel, mu ~ U(-mean, mean), sigma = exp(U(-std, std)) (Plug-In Inversion)."""

    mean: float = 1.0
    std: float = 1.0

    def __call__(self, x: torch.Tensor, rng: ImageRandom) -> torch.Tensor:
        mu = rng.uniform((3, 1, 1), -self.mean, self.mean)
        sigma = rng.uniform((3, 1, 1), -self.std, self.std).exp()
        return (x - mu.to(x.dtype)) / sigma.to(x.dtype)


def _grey(x: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * weights).sum(1, keepdim=True)


@dataclass
class ColourJitter:
    """Random brightness, contrast and saturation factors in [1 - a, 1 + a] per copy."""

    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0

    def __call__(self, x: torch.Tensor, rng: ImageRandom) -> torch.Tensor:
        def factor(amount: float) -> torch.Tensor:
            return rng.uniform((1, 1, 1), 1 - amount, 1 + amount).to(x.dtype)

        if self.brightness:
            x = x * factor(self.brightness)
        if self.contrast:
            mean = _grey(x).mean(dim=(2, 3), keepdim=True)
            x = mean + (x - mean) * factor(self.contrast)
        if self.saturation:
            grey = _grey(x)
            x = grey + (x - grey) * factor(self.saturation)
        return x


@dataclass
class GaussianNoise:
    """Additive N(0, std^2) pixel noise, fresh for every copy."""

    std: float = 0.05

    def __call__(self, x: torch.Tensor, rng: ImageRandom) -> torch.Tensor:
        return x + rng.normal(tuple(x.shape[1:]), self.std).to(x.dtype)


@dataclass
class Jitter:
    """Roll each copy by up to `pixels` in x and y (wrap-around), the cheapest translation prior."""

    pixels: int = 4

    def __call__(self, x: torch.Tensor, rng: ImageRandom) -> torch.Tensor:
        n, c, h, w = x.shape
        dy = rng.integers(-self.pixels, self.pixels, ()).view(n, 1)
        dx = rng.integers(-self.pixels, self.pixels, ()).view(n, 1)
        rows = (torch.arange(h, device=x.device).view(1, h) - dy) % h
        cols = (torch.arange(w, device=x.device).view(1, w) - dx) % w
        x = x.gather(2, rows.view(n, 1, h, 1).expand(n, c, h, w))
        return x.gather(3, cols.view(n, 1, 1, w).expand(n, c, h, w))


@dataclass
class Resize:
    """To the model's input size (bicubic, antialiased); deterministic."""

    size: int

    def __call__(self, x: torch.Tensor, rng: ImageRandom) -> torch.Tensor:
        if x.shape[-1] == self.size and x.shape[-2] == self.size:
            return x
        return F.interpolate(x, size=(self.size, self.size), mode="bicubic", antialias=True, align_corners=False)


@dataclass
class Compose:
    """Apply transforms in order."""

    transforms: list[Transform]

    def __call__(self, x: torch.Tensor, rng: ImageRandom) -> torch.Tensor:
        for transform in self.transforms:
            x = transform(x, rng)
        return x


def build_transforms(settings, model_size: int) -> Compose:
    """The pipeline named by `settings.transforms`, in that order, with the settings' knobs."""
    makers = {
        "jitter": lambda: Jitter(settings.jitter_pixels),
        "affine": lambda: RandomAffine(settings.affine_p, settings.affine_degrees, settings.affine_translate,
                                       settings.affine_scale_min, settings.affine_scale_max, settings.affine_padding),
        "resize": lambda: Resize(model_size),
        "colour_shift": lambda: ColourShift(settings.colour_shift_mean, settings.colour_shift_std),
        "colour_jitter": lambda: ColourJitter(settings.colour_jitter_brightness, settings.colour_jitter_contrast,
                                              settings.colour_jitter_saturation),
        "noise": lambda: GaussianNoise(settings.noise_std),
    }
    return Compose([makers[name]() for name in settings.transforms])
