"""Calibrate the zero-shot NSFW thresholds of a concept list for one model.

A probability threshold means different things in different CLIPs, so the shipped 0.5 is only a
default. Given images the user knows are safe (and, optionally, images known to be flagged), each
concept's threshold is set to the lowest value that flags at most a target share of the safe images,
and the flagged images say how much that threshold catches.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import yaml

from probe.plugin import UsageError, images_under
from probe_audit.nsfw import Concept, ConceptSet, concept_probabilities, concept_text_embeddings

if TYPE_CHECKING:
    from probe.plugin import Session

BATCH = 64


@dataclass(frozen=True)
class ConceptCalibration:
    """One concept: its threshold before and after, and the rates measured at the new one."""

    name: str
    old_threshold: float
    threshold: float
    safe_flag_rate: float
    flagged_catch_rate: float | None


@dataclass(frozen=True)
class Calibration:
    concepts: ConceptSet
    rows: list[ConceptCalibration]
    target: float
    n_safe: int
    n_flagged: int
    safe_flag_rate: float  # any concept, at the new thresholds
    flagged_catch_rate: float | None

    @property
    def missed(self) -> list[str]:
        """Concepts that flag more safe images than the target even at threshold 1.0 (scores of 1.0)."""
        return [r.name for r in self.rows if r.safe_flag_rate > self.target]

    def as_dict(self) -> dict:
        return {
            **{k: v for k, v in asdict(self).items() if k != "concepts"},
            "concepts": self.concepts.as_dict(),
            "missed": self.missed,
        }


def image_files(paths: Sequence[Path]) -> list[Path]:
    """Image files named directly or found (recursively, sorted) in the folders given."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(images_under(path))
        elif path.is_file():
            found.append(path)
        else:
            raise UsageError(f"no such image file or folder: {path}")
    return found


def threshold_for_rate(scores: Sequence[float], rate: float) -> float:
    """The lowest threshold (in (0, 1]) at which at most floor(rate * n) of these scores reach it."""
    if not 0 <= rate < 1:
        raise UsageError(f"target rate must be in [0, 1), got {rate}")
    ordered = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    if ordered.size == 0:
        raise UsageError("no safe images to calibrate on")
    allowed = math.floor(rate * ordered.size + 1e-9)
    return float(min(1.0, max(np.nextafter(ordered[allowed], np.inf), np.nextafter(0.0, 1.0))))


def concept_scores(
    session: Session, paths: Sequence[Path], concepts: ConceptSet, on_batch=None
) -> list[dict[str, float]]:
    """Each image's concept probabilities, batched; `on_batch(n)` after each batch."""
    import torch

    from probe.plugin import load_photo

    scores: list[dict[str, float]] = []
    text_emb = concept_text_embeddings(session, concepts) if paths else None
    for start in range(0, len(paths), BATCH):
        chunk = paths[start : start + BATCH]
        batch = torch.cat([session.prepare(load_photo(p)) for p in chunk])
        scores.extend(concept_probabilities(session, batch, concepts, text_emb))
        if on_batch:
            on_batch(len(chunk))
    return scores


def calibrate(
    concepts: ConceptSet, safe: list[dict[str, float]], flagged: list[dict[str, float]], target: float
) -> Calibration:
    """Thresholds that flag at most `target` of the safe images per concept, with measured rates."""
    new, rows = [], []
    for c in concepts.concepts:
        thr = threshold_for_rate([s[c.name] for s in safe], target)
        caught = sum(f[c.name] >= thr for f in flagged) / len(flagged) if flagged else None
        rows.append(
            ConceptCalibration(c.name, c.threshold, thr, sum(s[c.name] >= thr for s in safe) / len(safe), caught)
        )
        new.append(Concept(c.name, thr, list(c.prompts)))
    calibrated = ConceptSet(concepts.name, list(concepts.anchors), new)

    def any_flag(s: dict[str, float]) -> bool:
        return any(s[c.name] >= c.threshold for c in calibrated.concepts)

    return Calibration(
        calibrated,
        rows,
        target,
        len(safe),
        len(flagged),
        sum(map(any_flag, safe)) / len(safe),
        sum(map(any_flag, flagged)) / len(flagged) if flagged else None,
    )


def calibrated_yaml(cal: Calibration, model: str, fingerprint: str, sources: dict[str, list[str]]) -> str:
    """A concept file `probe nsfw --concepts` reads, with a header saying how it was calibrated."""
    header = [
        f"# NSFW concepts calibrated by `probe nsfw-calibrate` for model {model} (fingerprint {fingerprint[:16]}).",
        f"# Target: each concept flags at most {cal.target:.2%} of {cal.n_safe} safe images "
        f"({', '.join(sources['safe'])}).",
        "# Measured at these thresholds: "
        + ", ".join(f"{r.name} {r.safe_flag_rate:.2%}" for r in cal.rows)
        + f"; any concept {cal.safe_flag_rate:.2%}.",
    ]
    if cal.flagged_catch_rate is not None:
        header.append(
            f"# On {cal.n_flagged} flagged images ({', '.join(sources['flagged'])}) "
            f"any concept catches {cal.flagged_catch_rate:.2%}."
        )
    header.append("# Valid for this model only: calibrate again for another.")
    body = {
        "name": f"{cal.concepts.name}-calibrated",
        "anchors": cal.concepts.anchors,
        "concepts": {c.name: {"threshold": c.threshold, "prompts": c.prompts} for c in cal.concepts.concepts},
    }
    return "\n".join(header) + "\n" + yaml.safe_dump(body, sort_keys=False, allow_unicode=True)
