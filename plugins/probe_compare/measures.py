"""What a comparison measures, per step kind, from each run's summary data: proportions (k of n)
per model with Wilson 95% intervals, and each model's difference from the first with Newcombe's
95% interval, marked where it excludes 0."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from probe.plugin import Difference, Proportion

EMPTY = Proportion.of(0, 0)


@dataclass
class Row:
    """One measured share (a label, a flag rate, a P@1) of one subject (a prompt, a text), per model."""

    subject: str
    metric: str
    shares: list[Proportion]
    variant: str = ""
    paper: float | None = None  # the paper's percentage for this prompt and label (figure 4), if any

    @property
    def differences(self) -> list[Difference]:
        """Each later model minus the first."""
        return [Difference.of(share, self.shares[0]) for share in self.shares[1:]]

    @property
    def differs(self) -> bool:
        return any(d.excludes_zero for d in self.differences)

    def as_dict(self, models: list[str]) -> dict:
        return {
            "subject": self.subject,
            "variant": self.variant,
            "metric": self.metric,
            "paper": self.paper,
            "models": {m: s.as_dict() for m, s in zip(models, self.shares, strict=True)},
            "differences": {
                f"{m} - {models[0]}": d.as_dict() for m, d in zip(models[1:], self.differences, strict=True)
            },
        }


@dataclass
class Measured:
    """A step's rows, plus what the page shows beside them (top-k words side by side)."""

    title: str
    note: str
    subject: str  # what a row's subject is: prompt, text, perturbation
    rows: list[Row]
    side_by_side: list[list[str]] = field(default_factory=list)  # [subject, model 1's words, model 2's, ...]


def _p(d: dict | None) -> Proportion:
    return Proportion.of(int(d["k"]), int(d["n"])) if d else EMPTY


def _label(datas: list[dict]) -> Measured:
    attributes = datas[0]["attributes"]
    by_model = [{row["prompt"]: row for row in d["prompts"]} for d in datas]
    prompts = list(dict.fromkeys(p for rows in by_model for p in rows))
    rows = [
        Row(p, a, [_p((rows.get(p) or {}).get("shares", {}).get(a)) for rows in by_model])
        for p in prompts
        for a in attributes
    ]
    return Measured(
        f"Zero-shot labels ({datas[0]['label_set']}) of the images of step “{datas[0]['images']}”",
        "Share of each prompt's images given each label, per model.",
        "prompt",
        rows,
    )


def _cell(row: dict | None, variant: str, attribute: str) -> dict | None:
    cells = (row or {}).get("cells", [])
    return next((c for c in cells if c["variant"] == variant and c["attribute"] == attribute), None)


def _bias(datas: list[dict]) -> Measured:
    variants, attributes = datas[0]["variants"], datas[0]["attributes"]
    by_model = [{row["key"]: row for row in d["rows"]} for d in datas]
    rows = []
    for key, first in by_model[0].items():
        for v in variants:
            for a in attributes:
                cells = [_cell(rows_.get(key), v, a) for rows_ in by_model]
                paper = cells[0].get("paper") if cells[0] else None
                rows.append(Row(first["texts"][v], a, [_p(c) for c in cells], v if len(variants) > 1 else "", paper))
    paper_note = (
        " The paper's column is Kazemi et al. 2024, figure 4 (ViT-B-16, OpenAI weights)."
        if any(r.paper is not None for r in rows)
        else ""
    )
    return Measured(
        f"Bias: {datas[0]['prompt_set']} prompts, {datas[0]['label_set']} labels",
        "Share of each prompt's inversions the zero-shot labeller gave each label, per model." + paper_note,
        "prompt",
        rows,
    )


def _nsfw(datas: list[dict]) -> Measured:
    by_model = [{row["prompt"]: row for row in d["prompts"]} for d in datas]
    prompts = list(dict.fromkeys(p for rows in by_model for p in rows))
    rows = [Row(p, "zero-shot flagged", [_p((rows.get(p) or {}).get("clip")) for rows in by_model]) for p in prompts]
    if any(d.get("nudenet") for d in datas):
        rows += [
            Row(p, "NudeNet flagged", [_p((rows.get(p) or {}).get("nudenet")) for rows in by_model]) for p in prompts
        ]
    rows.append(Row("all prompts", "zero-shot flagged", [_p(d.get("overall_clip")) for d in datas]))
    return Measured(
        "NSFW rates of inverted images",
        "Share of each prompt's inverted images flagged NSFW, per model.",
        "prompt",
        rows,
    )


def _flagged(entry: dict | None) -> Proportion:
    words = (entry or {}).get("neighbours") or []
    return Proportion.of(sum(bool(w.get("flagged")) for w in words), len(words))


def _words(entry: dict | None) -> str:
    words = (entry or {}).get("neighbours") or []
    return ", ".join(f"{w.get('word', '?')}{'*' if w.get('flagged') else ''}" for w in words) or "–"


def _neighbours(datas: list[dict]) -> Measured:
    by_model = [{row["text"]: row for row in d["texts"]} for d in datas]
    texts = list(dict.fromkeys(t for rows in by_model for t in rows))
    rows = [Row(t, "flagged neighbours", [_flagged(rows.get(t)) for rows in by_model]) for t in texts]
    pooled = [
        Proportion.of(sum(_flagged(e).k for e in rows.values()), sum(_flagged(e).n for e in rows.values()))
        for rows in by_model
    ]
    rows.append(Row("all texts", "flagged neighbours", pooled))
    return Measured(
        "Nearest vocabulary words",
        "Share of each text's top-k nearest words that are flagged, per model (* flagged).",
        "text",
        rows,
        [[t, *(_words(rows.get(t)) for rows in by_model)] for t in texts],
    )


def _count(share: float | None, n: int) -> Proportion:
    return Proportion.of(round(share * n), n) if share is not None and n else EMPTY


def _shuffle(datas: list[dict]) -> Measured:
    by_model = [{row["name"]: row for row in (d.get("report") or {}).get("rows", [])} for d in datas]
    names = list(dict.fromkeys(n for rows in by_model for n in rows))
    rows = []
    for name in names:
        entries = [rows_.get(name) or {} for rows_ in by_model]
        rows.append(Row(name, "P@1", [_count(e.get("precision_at_1"), e.get("n_items", 0)) for e in entries]))
        rows.append(Row(name, "order blindness", [_count(e.get("order_blindness"), e.get("n", 0)) for e in entries]))
    return Measured(
        "Word-order shuffle test",
        "P@1: share of captions scoring above all their perturbations (n = captions); order blindness: "
        "share of perturbed captions scoring at least their original (n = perturbed captions), per model.",
        "perturbation",
        rows,
    )


MEASURES: dict[str, Callable[[list[dict]], Measured]] = {
    "label": _label,
    "bias": _bias,
    "nsfw": _nsfw,
    "neighbours": _neighbours,
    "shuffle": _shuffle,
}


def measure(kind: str, datas: list[dict]) -> Measured | None:
    """The rows of a step of this kind from each model's summary data (None: nothing to measure)."""
    how = MEASURES.get(kind)
    return how(datas) if how else None
