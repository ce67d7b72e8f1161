"""Per-image random streams: every random draw of an inversion comes from its own image's generator.

So an image's result depends on its seed, not on which other images share its batch.
"""

from __future__ import annotations

import torch


def _generator_device(device: torch.device) -> torch.device:
    """Devices with their own generator type (cpu, cuda) draw in place; others draw on cpu and copy."""
    return device if device.type in ("cpu", "cuda") else torch.device("cpu")


class ImageRandom:
    """One torch.Generator per image; draws come back stacked as [images * copies, ...] rows."""

    def __init__(self, seeds: list[int], copies: int, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.copies = copies
        self._gen_device = _generator_device(self.device)
        self.generators = [torch.Generator(device=self._gen_device).manual_seed(int(s)) for s in seeds]

    def __len__(self) -> int:
        return len(self.generators)

    def _draw(self, kind: str, shape: tuple[int, ...], per_copy: bool) -> torch.Tensor:
        """Each image's rows filled in place from its generator (no per-image tensors to stack)."""
        rows = self.copies if per_copy else 1
        out = torch.empty((len(self.generators) * rows, *tuple(shape)), device=self._gen_device)
        for i, g in enumerate(self.generators):
            block = out[i * rows : (i + 1) * rows]
            if kind == "uniform":
                block.uniform_(generator=g)
            else:
                block.normal_(generator=g)
        return out.to(self.device)

    def uniform(
        self, shape: tuple[int, ...], low: float = 0.0, high: float = 1.0, per_copy: bool = True
    ) -> torch.Tensor:
        """U(low, high) draws, [images * copies, *shape] (or [images, *shape] with per_copy=False)."""
        return self._draw("uniform", shape, per_copy).mul_(high - low).add_(low)

    def normal(self, shape: tuple[int, ...], std: float = 1.0, per_copy: bool = True) -> torch.Tensor:
        return self._draw("normal", shape, per_copy).mul_(std)

    def integers(self, low: int, high: int, shape: tuple[int, ...], per_copy: bool = True) -> torch.Tensor:
        """Integers in [low, high] inclusive."""
        return low + torch.floor(self.uniform(shape, 0.0, 1.0, per_copy) * (high - low + 1)).long().clamp_max(
            high - low
        )
