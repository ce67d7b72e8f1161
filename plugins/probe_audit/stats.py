"""Proportions with Wilson score intervals: honest error bars for small N (e.g. 20 inversions)."""

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


def separated(a: Proportion, b: Proportion) -> bool:
    """Whether two intervals do not overlap."""
    return a.high < b.low or b.high < a.low
