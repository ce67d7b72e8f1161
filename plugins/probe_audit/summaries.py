"""Step summaries computed from item records alone (no model): tables, data and contact sheets.

`probe run`, `probe merge`, `probe bias`, `probe nsfw` and `probe report` all go through here, so a
merged run and an unsharded run summarise identically.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean

from probe.plugin import (
    atomic_write_bytes,
    atomic_write_text,
    contact_sheet,
    inside,
    load_image,
    pil_png_bytes,
    safe_name,
    write_json,
)
from probe_audit.experiment import Plan, StepPlan
from probe_audit.stats import Proportion
from probe_audit.tables import Table


@dataclass
class SheetCell:
    """One image of a group: the short caption of contact sheets, and what a report tile shows."""

    image: str  # path relative to the run folder
    caption: str
    flagged: bool = False
    prompt: str = ""  # the full prompt the image was inverted from
    seed: int | None = None
    label: str = ""  # e.g. the zero-shot label, or which NSFW concepts flagged it
    cosine: float | None = None  # image-text cosine similarity at the end of the inversion
    variant: str = ""


@dataclass
class StepSummary:
    """One step's table, its JSON data, and image groups (one contact sheet each)."""

    name: str
    kind: str
    table: Table
    data: dict
    sheets: dict[str, list[SheetCell]] = field(default_factory=dict)


def _done(step: StepPlan, records: dict[str, dict]) -> list[dict]:
    return [records[it.id] for it in step.items if records.get(it.id, {}).get("status") == "done"]


def _status_counts(step: StepPlan, records: dict[str, dict]) -> dict[str, int]:
    return dict(Counter(records.get(it.id, {}).get("status", "pending") for it in step.items))


def _by_prompt(recs: list[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in recs:
        groups[r["params"]["prompt"]].append(r)
    return groups


def summarise_invert(step: StepPlan, records: dict[str, dict]) -> StepSummary:
    rows, data, sheets = [], [], {}
    for prompt, recs in _by_prompt(_done(step, records)).items():
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
    return StepSummary(step.name, step.kind, table, {"prompts": data, "status": _status_counts(step, records)}, sheets)


def _attribute_rows(groups: dict[str, list[str]], attributes: list[str]) -> tuple[list[list[str]], list[dict]]:
    rows, data = [], []
    for prompt, labels in groups.items():
        counts = Counter(labels)
        shares = {a: Proportion.of(counts[a], len(labels)) for a in attributes}
        rows.append([prompt, *(shares[a].percent() for a in attributes), str(len(labels))])
        data.append({"prompt": prompt, "n": len(labels), "shares": {a: s.as_dict() for a, s in shares.items()}})
    return rows, data


def summarise_label(step: StepPlan, records: dict[str, dict]) -> StepSummary:
    attrs = step.options["label_set"].get("attributes") or list(step.options["label_set"]["labels"])
    recs = _done(step, records)
    groups = {p: [r["result"]["label"] for r in rs] for p, rs in _by_prompt(recs).items()}
    rows, data = _attribute_rows(groups, attrs)
    sheets = {}
    for prompt, rs in _by_prompt(recs).items():
        src = [records.get(r["params"]["source"], {}) for r in rs]
        sheets[prompt] = [
            SheetCell(
                s["image"],
                r["result"]["label"],
                prompt=prompt,
                seed=s.get("params", {}).get("seed"),
                label=r["result"]["label"],
                cosine=s.get("result", {}).get("cosine"),
            )
            for r, s in zip(rs, src, strict=True)
            if s.get("image")
        ]
    table = Table(
        f"labels: {step.name} ({step.options['label_set']['name']})",
        ["prompt", *attrs, "N"],
        rows,
        "Share of images with each zero-shot label, Wilson 95% interval in brackets.",
    )
    return StepSummary(
        step.name,
        step.kind,
        table,
        {
            "attributes": attrs,
            "label_set": step.options["label_set"]["name"],
            "images": step.options.get("images"),
            "prompts": data,
            "status": _status_counts(step, records),
        },
        sheets,
    )


def summarise_bias(step: StepPlan, records: dict[str, dict]) -> StepSummary:
    from probe_audit.bias import bias_table
    from probe_audit.sets import label_set_from_dict, prompt_set_from_dict

    recs = _done(step, records)
    labels = [(r["params"]["prompt_key"], r["params"]["variant"], r["result"]["label"]) for r in recs]
    result = bias_table(
        prompt_set_from_dict(step.options["prompt_set"]),
        label_set_from_dict(step.options["label_set"]),
        step.options["variants"],
        labels,
    )
    sheets: dict[str, list[SheetCell]] = defaultdict(list)
    for r in recs:
        sheets[r["params"]["prompt_key"]].append(
            SheetCell(
                r["image"],
                f"{r['params']['variant']}: {r['result']['label']}",
                prompt=r["params"]["prompt"],
                seed=r["params"]["seed"],
                label=r["result"]["label"],
                cosine=r["result"].get("cosine"),
                variant=r["params"]["variant"],
            )
        )
    data = {**result.as_dict(), "long": result.long_table().as_dict(), "status": _status_counts(step, records)}
    return StepSummary(step.name, step.kind, result.table(), data, dict(sheets))


def _flag_label(result: dict) -> str:
    """What flagged an NSFW image: its zero-shot concepts and/or NudeNet, or 'not flagged'."""
    reasons = list(result["clip_flagged"]) + (["NudeNet"] if result["nudenet"]["detections"] else [])
    return "flagged: " + ", ".join(reasons) if reasons else "not flagged"


def summarise_nsfw(step: StepPlan, records: dict[str, dict]) -> StepSummary:
    recs = _done(step, records)
    images = [r for r in recs if not r["params"].get("text")]
    texts = {r["params"]["prompt"]: r["result"] for r in recs if r["params"].get("text")}
    concepts = [c["name"] for c in step.options["concepts"]["concepts"]]
    nudenet_on = any(r["result"]["nudenet"]["available"] for r in images)
    rows, data, sheets = [], [], {}
    groups = _by_prompt(images)
    for prompt in step.options["prompts"]:
        rs = groups.get(prompt, [])
        clip = Proportion.of(sum(bool(r["result"]["clip_flagged"]) for r in rs), len(rs))
        per_concept = {c: sum(c in r["result"]["clip_flagged"] for r in rs) for c in concepts}
        nude = (
            Proportion.of(sum(bool(r["result"]["nudenet"]["detections"]) for r in rs), len(rs)) if nudenet_on else None
        )
        text = texts.get(prompt)
        rows.append(
            [
                prompt,
                str(len(rs)),
                clip.percent(),
                ", ".join(f"{c} {k}" for c, k in per_concept.items() if k) or "–",
                nude.percent() if nude else "not installed",
                f"{100 * text['flag_rate']:.0f}%" if text else "–",
            ]
        )
        data.append(
            {
                "prompt": prompt,
                "n": len(rs),
                "clip": clip.as_dict(),
                "concepts": per_concept,
                "nudenet": nude.as_dict() if nude else None,
                "text_flag_rate": text["flag_rate"] if text else None,
                "neighbours": text["neighbours"] if text else None,
            }
        )
        sheets[prompt] = [
            SheetCell(
                r["image"],
                f"s{r['params']['seed']}" + (" FLAGGED" if r["result"]["flagged"] else ""),
                r["result"]["flagged"],
                prompt=prompt,
                seed=r["params"]["seed"],
                label=_flag_label(r["result"]),
                cosine=r["result"].get("cosine"),
            )
            for r in rs
        ]
    overall = Proportion.of(sum(bool(r["result"]["clip_flagged"]) for r in images), len(images))
    rows.append(["all prompts", str(len(images)), overall.percent(), "", "", ""])
    reason = next((r["result"]["nudenet"]["reason"] for r in images if r["result"]["nudenet"]["reason"]), "")
    note = (
        "Zero-shot: concept probability >= its threshold (see the concept list). "
        + (
            "NudeNet: any exposed-nudity detection >= threshold. "
            if nudenet_on
            else f"NudeNet: {reason}. "
            if reason
            else ""
        )
        + "Text: flagged share of each prompt's nearest vocabulary words."
    )
    table = Table(
        f"nsfw: {step.name}",
        ["prompt", "N", "zero-shot flagged", "concepts", "NudeNet flagged", "neighbour flag rate"],
        rows,
        note,
    )
    thresholds = {c["name"]: c["threshold"] for c in step.options["concepts"]["concepts"]}
    return StepSummary(
        step.name,
        step.kind,
        table,
        {
            "prompts": data,
            "overall_clip": overall.as_dict(),
            "nudenet": nudenet_on,
            "nudenet_reason": reason,
            "thresholds": thresholds,
            "status": _status_counts(step, records),
        },
        sheets,
    )


def summarise_neighbours(step: StepPlan, records: dict[str, dict]) -> StepSummary:
    rows, data = [], []
    for r in _done(step, records):
        res = r["result"]
        words = ", ".join(f"{n.get('word', '?')}{'*' if n.get('flagged') else ''}" for n in res["neighbours"])
        rows.append([r["params"]["text"], f"{100 * res['flag_rate']:.0f}%", words])
        data.append({"text": r["params"]["text"], **res})
    return StepSummary(
        step.name,
        step.kind,
        Table(f"neighbours: {step.name}", ["text", "flagged", "nearest words (* flagged)"], rows),
        {"texts": data, "status": _status_counts(step, records)},
    )


def summarise_shuffle(step: StepPlan, records: dict[str, dict]) -> StepSummary:
    recs = _done(step, records)
    report = recs[0]["result"]["report"] if recs else {}
    rows_data = report.get("rows") or []
    columns = (
        sorted({k for row in rows_data for k, v in row.items() if not isinstance(v, (dict, list))}) if rows_data else []
    )
    if "name" in columns:
        columns.remove("name")
        columns.insert(0, "name")
    rows = [[_fmt(row.get(c)) for c in columns] for row in rows_data]
    return StepSummary(
        step.name,
        step.kind,
        Table(f"shuffle: {step.name}", columns or ["report"], rows),
        {"report": report, "status": _status_counts(step, records)},
    )


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


SUMMARISERS = {
    "invert": summarise_invert,
    "label": summarise_label,
    "bias": summarise_bias,
    "nsfw": summarise_nsfw,
    "neighbours": summarise_neighbours,
    "shuffle": summarise_shuffle,
}


def summarise_generic(step: StepPlan, records: dict[str, dict]) -> StepSummary:
    """Any other kind (a plugin's): one row per finished item with its result's plain values."""
    recs = _done(step, records)
    columns = sorted({k for r in recs for k, v in r["result"].items() if not isinstance(v, (dict, list))})
    rows = [[r["key"], *(_fmt(r["result"].get(c, "")) for c in columns)] for r in recs]
    return StepSummary(
        step.name,
        step.kind,
        Table(f"{step.kind}: {step.name}", ["item", *columns], rows),
        {"items": [{"key": r["key"], **r["result"]} for r in recs], "status": _status_counts(step, records)},
    )


def summarise(plan: Plan, records: dict[str, dict]) -> list[StepSummary]:
    return [SUMMARISERS.get(step.kind, summarise_generic)(step, records) for step in plan.steps]


def sheet_image(folder: Path, cells: list[SheetCell], blur: bool = True, columns: int = 10, cell: int = 96):
    """A contact sheet of the cells' images; flagged ones blurred unless blur is False."""
    from probe.plugin import to_pil
    from probe_audit.nsfw import blurred

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
