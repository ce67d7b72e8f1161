"""The shuffle test's summary as every front end shows it: the table (P@1 and order blindness only in
image mode) and the notes that say what a '—' or a left-out metric means. Imports no torch."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from probe_shuffle.order_scores import ShuffleReport

TIE_TOLERANCE = 1e-6  # as probe_shuffle.order_scores (not imported here: it imports torch)


def _fmt(value: float | None, percent: bool = False, signed: bool = False) -> str:
    if value is None:
        return "—"
    if percent:
        return f"{value:.1%}"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


# In text mode every original scores cos(T(p), T(p)) = 1: these metrics then only count perturbations
# whose embedding equals the original's, so the terminal table leaves them out and a note says so.
IMAGE_ONLY_COLUMNS = ("P@1", "order blindness")


def summary_table(report: ShuffleReport, title: str) -> tuple[str, list[str], list[list[str]]]:
    """Title, columns and rows of the summary; the ARO metrics come first in image mode, where they matter."""
    columns = ["perturbation", "captions", "variants", "P@1", "order blindness", "mean score", "mean Δ", "std Δ"]
    rows = [
        [
            r.name,
            str(r.n_items),
            str(r.n),
            _fmt(r.precision_at_1, percent=True),
            _fmt(r.order_blindness, percent=True),
            _fmt(r.mean_score),
            _fmt(r.mean_delta, signed=True),
            _fmt(r.std_delta),
        ]
        for r in report.rows
    ]
    if report.mode == "text":
        keep = [i for i, c in enumerate(columns) if c not in IMAGE_ONLY_COLUMNS]
        columns, rows = [columns[i] for i in keep], [[row[i] for i in keep] for row in rows]
    return title, columns, rows


def summary_notes(report: ShuffleReport) -> list[str]:
    """Why a row shows '—' (the perturbation applies to no caption), which captions nothing applies to,
    and, in text mode, what the left-out metrics would say."""
    from probe_shuffle.perturbations import registered_perturbations, tokenize

    known = registered_perturbations()
    notes = []
    for row in report.rows:
        if row.n == 0 and row.name in known:
            needs = known[row.name].needs
            notes.append(
                f"— {row.name}: applies to none of the {len(report.items)} caption(s)"
                + (f"; it needs {needs}" if needs else "")
            )
    for item in report.items:
        if not item.variants:
            words = [t for t in tokenize(item.caption) if t[:1].isalnum() or t[:1] == "_"]
            why = "one word: nothing to shuffle" if len(words) <= 1 else "no perturbation applies to it"
            notes.append(f"{item.name} ({item.caption!r}): {why}; left out of every row")
    if report.mode == "text":
        ties = sum(1 for item in report.items for v in item.variants if v.delta >= -TIE_TOLERANCE)
        total = sum(len(item.variants) for item in report.items)
        notes += [
            "P@1 and order blindness are left out in text mode: each original scores",
            f"cos(T(p), T(p)) = 1: they only count identical embeddings ({ties} of {total}; see --json).",
        ]
    return notes
