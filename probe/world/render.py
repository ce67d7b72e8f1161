"""Vectorised renderer: a Scenes batch to RGB images in [0, 1], any resolution, no per-pixel Python.

Every shape is a membership test on a coordinate grid expressed in units of the object's radius,
so geometry is defined once (64-pixel units) and rendered at whatever size is asked for.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from probe.world.scenes import CANVAS, Scenes
from probe.world.vocab import COLOURS, PALETTE, SHAPES

STAR_POINTS = 5
STAR_INNER = 0.5
SQUARE_HALF = 0.85
CROSS_HALF_WIDTH = 0.33
RING_INNER = 0.55


def palette_tensor(device: torch.device | str = "cpu") -> torch.Tensor:
    """[8, 3] RGB of COLOURS, in COLOURS order."""
    return torch.tensor([PALETTE[name] for name in COLOURS], device=device)


def _star(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Five-point star, point up: straight edges between tips (radius 1) and valleys (STAR_INNER)."""
    rho = torch.sqrt(u * u + v * v)
    sector = 2 * math.pi / STAR_POINTS
    angle = torch.atan2(u, -v)  # 0 points up
    phi = torch.remainder(angle + sector / 2, sector) - sector / 2
    phi = phi.abs()  # angle from the nearest tip, in [0, sector/2]
    # Edge from tip A=(1, 0) to valley B=(r cos(s/2), r sin(s/2)) in the tip's frame; ray hits it at n.A / n.d.
    bx, by = STAR_INNER * math.cos(sector / 2), STAR_INNER * math.sin(sector / 2)
    nx, ny = -by, bx - 1.0
    limit = nx / (nx * torch.cos(phi) + ny * torch.sin(phi))
    return rho <= limit


def _triangle(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return (v <= 0.7) & (u.abs() <= (v + 1.0) / 1.7)


def _cross(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    au, av = u.abs(), v.abs()
    return ((au <= CROSS_HALF_WIDTH) & (av <= 1.0)) | ((av <= CROSS_HALF_WIDTH) & (au <= 1.0))


def _ring(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    rho2 = u * u + v * v
    return (rho2 <= 1.0) & (rho2 >= RING_INNER**2)


SHAPE_TESTS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "circle": lambda u, v: u * u + v * v <= 1.0,
    "square": lambda u, v: torch.maximum(u.abs(), v.abs()) <= SQUARE_HALF,
    "triangle": _triangle,
    "star": _star,
    "cross": _cross,
    "ring": _ring,
}


def object_masks(scenes: Scenes, size: int = 64, device: torch.device | str = "cpu") -> torch.Tensor:
    """Bool [B, 2, size, size]: which pixels each object covers (all False for an empty slot)."""
    scale = size / CANVAS
    coords = (torch.arange(size, device=device, dtype=torch.float32) + 0.5) / scale  # pixel centres, 64-units
    shape = scenes.shape.to(device).reshape(-1)
    centre = scenes.centre.to(device).reshape(-1, 2)
    radius = scenes.radius.to(device).reshape(-1).clamp_min(1e-6)
    mask = torch.zeros(shape.shape[0], size, size, dtype=torch.bool, device=device)
    for index, name in enumerate(SHAPES):
        rows = (shape == index).nonzero().squeeze(1)
        if rows.numel() == 0:
            continue
        u = (coords.view(1, 1, size) - centre[rows, 0, None, None]) / radius[rows, None, None]
        v = (coords.view(1, size, 1) - centre[rows, 1, None, None]) / radius[rows, None, None]
        u, v = torch.broadcast_tensors(u, v)
        mask[rows] = SHAPE_TESTS[name](u, v)
    return mask.view(len(scenes), 2, size, size)


def render(scenes: Scenes, size: int = 64, device: torch.device | str = "cpu") -> torch.Tensor:
    """Images [B, 3, size, size] in [0, 1]; deterministic (no randomness here; it all lives in Scenes)."""
    n = len(scenes)
    mask = object_masks(scenes, size, device)
    colours = palette_tensor(device)[scenes.colour.to(device).clamp_min(0)]  # [B, 2, 3]
    image = scenes.background.to(device).view(n, 3, 1, 1).expand(n, 3, size, size)
    for k in (0, 1):
        image = torch.where(mask[:, k, None], colours[:, k, :, None, None], image)
    return image.contiguous()
