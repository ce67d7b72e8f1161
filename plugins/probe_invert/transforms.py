"""Augmentations applied to the B x copies image batch each step: small callables, composed in order.

Each transform takes `x` [B*copies, 3, H, W] and the per-image random streams, and draws one set
of parameters per copy, so every copy of every image sees its own augmentation. Device-agnostic:
all parameters are drawn and applied on the images' device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
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
        angle = rng.uniform((), -math.radians(self.degrees), math.radians(self.degrees))
        shift = rng.uniform((2,), -self.translate, self.translate) * 2  # normalised coords span 2
        scale = rng.uniform((), self.scale_min, self.scale_max)
        apply = rng.uniform(()) < self.p
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
        chosen = apply.nonzero().flatten()  # only the copies drawn to move pay for the resampling
        if chosen.numel() == 0:
            return x
        theta = theta.index_select(0, chosen).to(x.dtype)
        subset = x.index_select(0, chosen)
        grid = F.affine_grid(theta, list(subset.shape), align_corners=False)
        moved = F.grid_sample(subset, grid, mode="bilinear", padding_mode=self.padding, align_corners=False)
        return x.index_copy(0, chosen, moved)


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
        source = (rows.view(n, h, 1) * w + cols.view(n, 1, w)).view(n, 1, h * w)  # one gather, not one per axis
        return x.flatten(2).gather(2, source.expand(n, c, h * w)).view(n, c, h, w)


def resize_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """[n_out, n_in] weights of antialiased bicubic resizing along one axis, read off F.interpolate
    itself by resizing the identity (a length-2 second axis: torch treats a length-1 axis specially)."""
    basis = torch.eye(n_in).view(n_in, 1, n_in, 1).expand(n_in, 1, n_in, 2).contiguous()
    out = F.interpolate(basis, size=(n_out, 2), mode="bicubic", antialias=True, align_corners=False)
    return out[:, 0, :, 0].T.contiguous()


@dataclass
class Resize:
    """To the model's input size (bicubic, antialiased); deterministic. Applied as two small matrix
    products, the same linear map as F.interpolate to float rounding, because interpolate's
    antialiased backward is several times slower than a matmul's on CPU."""

    size: int
    _matrices: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def _matrix(self, n: int, like: torch.Tensor) -> torch.Tensor:
        key = (n, like.device, like.dtype)
        if key not in self._matrices:
            self._matrices[key] = resize_matrix(n, self.size).to(like.device, like.dtype)
        return self._matrices[key]

    def __call__(self, x: torch.Tensor, rng: ImageRandom) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h == self.size and w == self.size:
            return x
        return self._matrix(h, x) @ x @ self._matrix(w, x).T


@dataclass
class Compose:
    """Apply transforms in order."""

    transforms: list[Transform]

    def __call__(self, x: torch.Tensor, rng: ImageRandom) -> torch.Tensor:
        for transform in self.transforms:
            x = transform(x, rng)
        return x


def build_transforms(settings, model_size: int) -> Compose:
    """The pipeline `settings.transforms` names, in that order, each part made by its registered
    factory from its own options (objects given from Python are used as they are)."""
    return Compose(settings.build_transforms(model_size))
