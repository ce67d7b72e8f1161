"""Proportions with honest 95% intervals for small N: Wilson score intervals for one share (e.g. 20
inversions labelled red), and Newcombe's hybrid score interval for the difference of two shares
from independent samples (one model's runs against another's)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

Z95 = 1.959963984540054  # two-sided 95% normal quantile


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for successes/n; (0, 1) when n is 0 (nothing is known)."""
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got {successes}/{n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_interval(k1: int, n1: int, k2: int, n2: int, z: float = Z95) -> tuple[float, float]:
    """95% interval for p1 - p2 of two independent proportions: Newcombe's hybrid score method
    (method 10 of Newcombe 1998), built from each share's Wilson interval. It keeps its coverage
    for small N and shares near 0 or 1, where the textbook Wald interval does not. (-1, 1) when a
    sample is empty."""
    if n1 == 0 or n2 == 0:
        return -1.0, 1.0
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_interval(k1, n1, z)
    l2, u2 = wilson_interval(k2, n2, z)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return max(-1.0, low), min(1.0, high)


@dataclass(frozen=True)
class Proportion:
    """k of n, the share and its Wilson 95% interval."""

    k: int
    n: int
    share: float
    low: float
    high: float

    @classmethod
    def of(cls, k: int, n: int) -> Proportion:
        low, high = wilson_interval(k, n)
        return cls(k, n, k / n if n else float("nan"), low, high)

    def percent(self) -> str:
        """'85% [64–95]' (share and interval in whole percent); '–' when n is 0."""
        if not self.n:
            return "–"
        return f"{100 * self.share:.0f}% [{100 * self.low:.0f}–{100 * self.high:.0f}]"

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Difference:
    """p1 - p2 of two Proportions with Newcombe's 95% interval; `excludes_zero` marks a difference
    larger than the noise of the two samples."""

    diff: float
    low: float
    high: float

    @classmethod
    def of(cls, a: Proportion, b: Proportion) -> Difference:
        low, high = newcombe_interval(a.k, a.n, b.k, b.n)
        diff = a.share - b.share if a.n and b.n else float("nan")
        return cls(diff, low, high)

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def points(self) -> str:
        """'+20 [+5, +33]' in percentage points; '–' when a sample is empty."""
        if math.isnan(self.diff):
            return "–"
        return f"{100 * self.diff:+.0f} [{100 * self.low:+.0f}, {100 * self.high:+.0f}]"

    def as_dict(self) -> dict:
        return {**asdict(self), "excludes_zero": self.excludes_zero}
