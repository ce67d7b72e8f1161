"""`probe.compare(runs)`: runs of one experiment on different models, side by side with tested
differences. A `Comparison` holds every step's rows; it writes compare.html and tables/ into a
folder, and Jupyter shows it as the same page."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from probe.plugin import Table, atomic_write_text, inside, write_json
from probe_compare.measures import Measured, Row, measure
from probe_compare.runs import Run, load_runs

MARK = "≠"  # a difference whose 95% interval excludes 0


@dataclass
class StepComparison:
    """One step of the experiment, compared: its measured rows (None for kinds without shares) and
    its image cells per run, matched by prompt, variant and seed."""

    name: str
    kind: str
    measured: Measured | None
    cells: list[dict[str, list[dict]]]  # per run: group -> its image cells (summary.json's)

    def table(self, models: list[str]) -> Table:
        """Rows subject × label; per model its share with Wilson interval, then each model minus the
        first with Newcombe's interval (≠ where it excludes 0), then the paper's value when known."""
        assert self.measured is not None, "only measured steps have a table"
        rows = self.measured.rows
        variants = any(r.variant for r in rows)
        paper = any(r.paper is not None for r in rows)
        columns = [self.measured.subject, *(["variant"] if variants else []), "label", *models]
        columns += [f"{m} − {models[0]}" for m in models[1:]]
        columns += ["paper"] if paper else []
        out = []
        for r in rows:
            line = [r.subject, *([r.variant] if variants else []), r.metric, *(s.percent() for s in r.shares)]
            line += [d.points() + (f" {MARK}" if d.excludes_zero else "") for d in r.differences]
            line += [("" if r.paper is None else f"{r.paper:g}%")] if paper else []
            out.append(line)
        note = (
            "Share with Wilson 95% interval per model; differences in percentage points with Newcombe's "
            f"95% interval (hybrid score, method 10); {MARK}: the interval excludes 0."
        )
        return Table(f"{self.kind}: {self.name}", columns, out, note)

    def long_table(self, models: list[str]) -> Table:
        """One line per row × model: the CSV form, with the difference from the first model."""
        columns = ["subject", "variant", "label", "model", "k", "n", "percent", "low", "high"]
        columns += ["diff_points", "diff_low", "diff_high", "differs", "paper_percent"]
        out = []
        assert self.measured is not None, "only measured steps have a table"
        for r in self.measured.rows:
            diffs = [None, *r.differences]
            for m, s, d in zip(models, r.shares, diffs, strict=True):
                out.append(
                    [
                        r.subject,
                        r.variant,
                        r.metric,
                        m,
                        str(s.k),
                        str(s.n),
                        _pct(s.share),
                        _pct(s.low),
                        _pct(s.high),
                        "" if d is None else _pct(d.diff),
                        "" if d is None else _pct(d.low),
                        "" if d is None else _pct(d.high),
                        "" if d is None else str(d.excludes_zero).lower(),
                        "" if r.paper is None else f"{r.paper:g}",
                    ]
                )
        return Table("", columns, out)


def _pct(value: float) -> str:
    return "" if math.isnan(value) else f"{100 * value:.1f}"


@dataclass
class Comparison:
    """Runs of one experiment on several models (the first is the baseline), step by step."""

    experiment: str
    runs: list[Run]
    steps: list[StepComparison]

    @property
    def models(self) -> list[str]:
        return [r.model for r in self.runs]

    def rows(self, step: str) -> list[Row]:
        """A measured step's rows (e.g. `comparison.rows("bias")`)."""
        found = next((s for s in self.steps if s.name == step), None)
        return found.measured.rows if found and found.measured else []

    def row(self, step: str, subject: str, metric: str, variant: str = "") -> Row:
        """One row, e.g. `comparison.row("bias", "a star", "red")`; KeyError when there is none."""
        for r in self.rows(step):
            if r.subject == subject and r.metric == metric and r.variant == variant:
                return r
        raise KeyError(f"no row {subject!r} / {metric!r} in step {step!r}")

    def as_dict(self, where: Path | None = None) -> dict:
        """The comparison as JSON data; run folders relative to `where` when given (see `write`)."""
        from probe_compare.page import shown_folder

        return {
            "experiment": self.experiment,
            "digest": self.runs[0].digest,
            "runs": [
                {"model": r.model, "fingerprint": r.fingerprint, "folder": shown_folder(r.folder, where)}
                for r in self.runs
            ],
            "steps": [
                {
                    "name": s.name,
                    "kind": s.kind,
                    "rows": [r.as_dict(self.models) for r in s.measured.rows] if s.measured else [],
                }
                for s in self.steps
            ],
        }

    def html(self, blur: bool = True, where: Path | None = None) -> str:
        """The self-contained page (images embedded, flagged ones blurred unless blur is False)."""
        from probe_compare.page import render_page

        return render_page(self, blur=blur, where=where)

    def _repr_html_(self) -> str:
        return self.html()

    def write(self, folder: str | Path, blur: bool = True) -> Path:
        """Write compare.html, compare.json and tables/<step>.{md,csv,json} into `folder` (each
        file atomically, the page last); returns the page's path."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for s in self.steps:
            if s.measured is None:
                continue
            table = s.table(self.models)
            base = f"tables/{s.name}"
            atomic_write_text(inside(folder, f"{base}.md"), table.to_markdown())
            atomic_write_text(inside(folder, f"{base}.csv"), s.long_table(self.models).to_csv())
            write_json(
                inside(folder, f"{base}.json"),
                {"table": table.as_dict(), "rows": [r.as_dict(self.models) for r in s.measured.rows]},
            )
        write_json(folder / "compare.json", self.as_dict(where=folder))  # run folders relative to it
        page = folder / "compare.html"
        atomic_write_text(page, self.html(blur=blur, where=folder))
        return page


def compare(runs: Sequence[str | Path]) -> Comparison:
    """Compare run folders of one experiment made with different models (the first is the baseline).

    Raises a UsageError / ConfigError (one line, with what to do) for fewer than two folders, runs
    of different experiments, or a run with an unfinished step (naming its model)."""
    loaded = load_runs([Path(r) for r in runs])
    steps = []
    for step in loaded[0].steps:
        own = [r.step(step["name"]) or {} for r in loaded]
        measured = measure(step["kind"], [s.get("data") or {} for s in own])
        steps.append(StepComparison(step["name"], step["kind"], measured, [s.get("cells") or {} for s in own]))
    return Comparison(loaded[0].experiment, loaded, steps)
