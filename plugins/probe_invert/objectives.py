"""Objectives: per-image losses (lower is better), composable with + and scalar *.

Every objective returns one value per image, never a batch mean, so the gradient each image
receives is exactly what it would receive alone, and a NaN in one image cannot reach another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class Context:
    """What objectives see at one step: the images [B,3,H,W] and the embeddings of their copies
    [B*copies, D] by the session's model, plus one such tensor per further model of an ensemble."""

    images: torch.Tensor
    features: torch.Tensor
    copies: int
    ensemble: tuple[torch.Tensor, ...] = ()

    def features_per_image(self, model: int = 0) -> torch.Tensor:
        """[B, copies, D] by model `model` (0: the session's; 1, 2, ...: the ensemble's)."""
        features = self.features if model == 0 else self.ensemble[model - 1]
        return features.view(self.images.shape[0], self.copies, -1)


class Objective:
    """Base: subclasses implement `__call__(ctx) -> [B]`."""

    def __call__(self, ctx: Context) -> torch.Tensor:
        raise NotImplementedError

    def __add__(self, other: Objective) -> Objective:
        return Sum([self, other])

    def __mul__(self, weight: float) -> Objective:
        return Scaled(self, float(weight))

    __rmul__ = __mul__

    def __neg__(self) -> Objective:
        return Scaled(self, -1.0)

    def __sub__(self, other: Objective) -> Objective:
        return Sum([self, Scaled(other, -1.0)])


@dataclass
class Sum(Objective):
    parts: list[Objective]

    def __call__(self, ctx: Context) -> torch.Tensor:
        return sum((part(ctx) for part in self.parts[1:]), self.parts[0](ctx))


@dataclass
class Lambda(Objective):
    """Any callable ctx -> [B] (e.g. a plugin's prior) as an Objective."""

    fn: Callable[[Context], torch.Tensor]

    def __call__(self, ctx: Context) -> torch.Tensor:
        return self.fn(ctx)


@dataclass
class Scaled(Objective):
    inner: Objective
    weight: float

    def __call__(self, ctx: Context) -> torch.Tensor:
        return self.weight * self.inner(ctx)


def weighted_cosine(features: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The reported score: sum_k w_k cos(f, t_k) / sum of positive w_k; features [B,D] or [B,C,D] -> [B] or
    [B,C], against each image's own targets [B,K,D] and weights [B,K]."""
    squeeze = features.dim() == 2
    f = features[:, None] if squeeze else features
    cos = torch.bmm(f, targets.transpose(1, 2))  # [B,C,K]
    score = (cos * weights[:, None, :]).sum(-1) / weights.clamp_min(0).sum(-1, keepdim=True).clamp_min(1e-12)
    return score[:, 0] if squeeze else score


@dataclass
class TextMatch(Objective):
    """Match each image's copies to its weighted text embeddings (negative weights push away).

    targets [B,K,D] (normalised, zero rows for padding), weights [B,K]. form "distance" is the
    authors' ||norm(V) - norm(T)||_2; "cosine" is -cos. Averaged over copies. `model` picks whose
    image features to match (0: the session's model; i: the i-th ensemble member, own text targets).
    """

    targets: torch.Tensor
    weights: torch.Tensor
    form: str = "distance"
    model: int = 0

    def __call__(self, ctx: Context) -> torch.Tensor:
        f = ctx.features_per_image(self.model)  # [B,C,D]
        if self.form == "distance":
            per_target = (f[:, :, None, :] - self.targets[:, None, :, :]).norm(dim=-1)  # [B,C,K]
        else:
            per_target = -torch.bmm(f, self.targets.transpose(1, 2))
        return (per_target * self.weights[:, None, :]).sum(-1).mean(1)

    def score(self, features: torch.Tensor) -> torch.Tensor:
        """Reported cosine per image (or per copy for [B,C,D] features)."""
        return weighted_cosine(features, self.targets, self.weights)


def _direction_norms(x: torch.Tensor) -> torch.Tensor:
    """Per image: sum over 4 directions of the mean over channels of each channel's L2 difference norm."""
    diffs = (
        x[..., :, 1:] - x[..., :, :-1],
        x[..., 1:, :] - x[..., :-1, :],
        x[..., 1:, 1:] - x[..., :-1, :-1],
        x[..., 1:, :-1] - x[..., :-1, 1:],
    )
    return sum(d.flatten(2).norm(dim=-1).mean(1) for d in diffs)


class TotalVariation(Objective):
    """TV as the authors' code: L2 norms of neighbour differences in x, y and both diagonals."""

    def __call__(self, ctx: Context) -> torch.Tensor:
        return _direction_norms(ctx.images)


@dataclass
class L1(Objective):
    """Sum of |pixel - center| per image: the paper's L1 prior at center 0; at a grey center it keeps
    everything the prompt does not need at a plain background."""

    center: float = 0.0

    def __call__(self, ctx: Context) -> torch.Tensor:
        return (ctx.images - self.center).abs().flatten(1).sum(1)
