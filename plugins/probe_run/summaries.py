"""Step summaries computed from item records alone (no model): tables, data and contact sheets.

`probe run`, `probe merge`, `probe bias`, `probe nsfw` and `probe report` all go through here, so a
merged run and an unsharded run summarise identically. A step kind that brings its own `summarise`
(the audits' label, bias and nsfw, the shuffle step) is summarised by it; invert and neighbours steps by
the summaries here; any other kind by one row per finished item.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from statistics import mean

from probe.plugin import (
    SheetCell,
    StepPlan,
    StepSummary,
    Table,
    atomic_write_bytes,
    atomic_write_text,
    contact_sheet,
    inside,
    load_image,
    pil_png_bytes,
    safe_name,
    step_kinds,
    write_json,
)
from probe_run.experiment import Plan

__all__ = ["SheetCell", "StepSummary", "blurred", "summarise", "write_summaries"]


def _by_prompt(recs: list[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in recs:
        groups[r["params"]["prompt"]].append(r)
    return groups


def summarise_invert(step: StepPlan, records: dict[str, dict]) -> StepSummary:
    rows, data, sheets = [], [], {}
    for prompt, recs in _by_prompt(step.done_records(records)).items():
        cos = [r["result"]["cosine"] for r in recs]
        rows.append([prompt, str(len(recs)), f"{mean(cos):.3f}", f"{min(cos):.3f}", f"{max(cos):.3f}"])
        data.append(
            {"prompt": prompt, "n": len(recs), "mean_cosine": mean(cos), "min_cosine": min(cos), "max_cosine": max(cos)}
        )
        sheets[prompt] = [
            SheetCell(
                r["image"],
                f"s{r['params']['seed']} {r['result']['cosine']:.2f}",
                prompt=prompt,
                seed=r["params"]["seed"],
                cosine=r["result"]["cosine"],
            )
            for r in recs
        ]
    table = Table(f"invert: {step.name}", ["prompt", "N", "mean cosine", "min", "max"], rows)
    out = {"prompts": data, "status": step.status_counts(records)}
    return StepSummary(step.name, step.kind, table, out, sheets, title="Inversions")


def summarise_neighbours(step: StepPlan, records: dict[str, dict]) -> StepSummary:
    rows, data = [], []
    for r in step.done_records(records):
        res = r["result"]
        words = ", ".join(f"{n.get('word', '?')}{'*' if n.get('flagged') else ''}" for n in res["neighbours"])
        rows.append([r["params"]["text"], f"{100 * res['flag_rate']:.0f}%", words])
        data.append({"text": r["params"]["text"], **res})
    return StepSummary(
        step.name,
        step.kind,
        Table(f"neighbours: {step.name}", ["text", "flagged", "nearest words (* flagged)"], rows),
        {"texts": data, "status": step.status_counts(records)},
        title="Nearest vocabulary words",
    )


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


SUMMARISERS = {"invert": summarise_invert, "neighbours": summarise_neighbours}


def summarise_generic(step: StepPlan, records: dict[str, dict]) -> StepSummary:
    """Any other kind (a plugin's): one row per finished item with its result's plain values."""
    recs = step.done_records(records)
    columns = sorted({k for r in recs for k, v in r["result"].items() if not isinstance(v, (dict, list))})
    rows = [[r["key"], *(_fmt(r["result"].get(c, "")) for c in columns)] for r in recs]
    return StepSummary(
        step.name,
        step.kind,
        Table(f"{step.kind}: {step.name}", ["item", *columns], rows),
        {"items": [{"key": r["key"], **r["result"]} for r in recs], "status": step.status_counts(records)},
    )


def summarise(plan: Plan, records: dict[str, dict]) -> list[StepSummary]:
    """Each step's summary: its kind's own `summarise` when it has one, else the engine's."""
    kinds = {name: ext.step for name, ext in step_kinds().items()}
    out = []
    for step in plan.steps:
        own = getattr(kinds.get(step.kind), "summarise", None)
        out.append((own or SUMMARISERS.get(step.kind, summarise_generic))(step, records))
    return out


def blurred(pil, radius_fraction: float = 0.08):
    """A heavily blurred copy of a PIL image (flagged previews): shapes and colours survive, detail does not."""
    from PIL import ImageFilter

    radius = max(2.0, radius_fraction * max(pil.size))
    return pil.filter(ImageFilter.GaussianBlur(radius))


def sheet_image(folder: Path, cells: list[SheetCell], blur: bool = True, columns: int = 10, cell: int = 96):
    """A contact sheet of the cells' images; flagged ones blurred unless blur is False."""
    from probe.plugin import to_pil

    pictures = []
    for c in cells:
        pil = to_pil(load_image(inside(folder, c.image)))
        pictures.append(blurred(pil.resize((cell, cell))) if blur and c.flagged else pil)
    return contact_sheet(pictures, [c.caption for c in cells], columns=columns, cell=cell)


def write_summaries(folder: Path, plan: Plan, records: dict[str, dict], blur: bool = True) -> dict:
    """Write summary.json, tables/<step>.{md,csv,json} and sheets/<step>/<group>.png; return the summary."""
    folder = Path(folder)
    summaries = summarise(plan, records)
    steps: list[dict] = []
    out = {"experiment": plan.name, "steps": steps}
    for s in summaries:
        base = f"tables/{s.name}"
        atomic_write_text(inside(folder, f"{base}.md"), s.table.to_markdown())
        long = s.data.get("long")
        atomic_write_text(inside(folder, f"{base}.csv"), (Table(**long) if long else s.table).to_csv())
        write_json(inside(folder, f"{base}.json"), {"table": s.table.as_dict(), "data": s.data})
        sheet_files = {}
        for group, cells in s.sheets.items():
            if not cells:
                continue
            rel = f"sheets/{s.name}/{safe_name(group)}.png"
            atomic_write_bytes(inside(folder, rel), pil_png_bytes(sheet_image(folder, cells, blur)))
            sheet_files[group] = rel
        steps.append(
            {
                "name": s.name,
                "kind": s.kind,
                "table": s.table.as_dict(),
                "data": s.data,
                "sheets": sheet_files,
                "cells": {g: [c.__dict__ for c in cells] for g, cells in s.sheets.items()},
            }
        )
    write_json(folder / "summary.json", out)
    return out
