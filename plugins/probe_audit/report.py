"""One self-contained HTML page for a run folder: per step its charts (inline SVG), image grids and
table; images embedded as base64 PNG, no scripts and no external files, so it opens offline in any
browser. Every piece of run text (prompts, labels, names) is escaped."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from probe.plugin import inside, load_image, pil_png_bytes, to_pil
from probe_audit.charts import bias_charts, label_charts, nsfw_chart
from probe_audit.runner import plan_of, read_manifest, read_records
from probe_audit.summaries import SheetCell, StepSummary, summarise
from probe_audit.tables import Table

TILE = 200  # px, the displayed size of an image tile

STYLE = f"""
body{{font-family:system-ui,sans-serif;margin:2em auto;padding:0 2em;color:#222;max-width:1500px;line-height:1.35}}
h1{{margin:.2em 0 .6em}}h2{{margin:1.6em 0 .3em;padding-top:.6em;border-top:2px solid #ddd}}
h3{{margin:1.2em 0 .4em;font-size:1.15em}}h3 q{{quotes:"“" "”"}}
.step{{color:#777;font-size:.7em;font-weight:normal;margin-left:.5em}}
table{{border-collapse:collapse;margin:.5em 0 .4em;font-size:.85em}}
th,td{{border:1px solid #ccc;padding:.2em .45em;text-align:left}}th{{background:#f2f2f2}}td.zero{{color:#aaa}}
.prompt{{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start;margin-bottom:.8em}}
.chart{{flex:none;background:#fff}}
.grid{{display:flex;flex-wrap:wrap;gap:8px;flex:1 1 400px;align-content:flex-start}}
figure{{margin:0;width:{TILE}px;font-size:12px;background:#f6f6f6;border-radius:4px;overflow:hidden}}
figure img{{width:{TILE}px;height:{TILE}px;display:block}}
figure img.small{{image-rendering:pixelated}}
figcaption{{padding:4px 6px 6px}}figcaption .p{{display:block;color:#333;overflow-wrap:anywhere}}
figcaption .m{{display:block;color:#666}}figcaption b{{color:#111}}
figure.flagged figcaption b{{color:#b00}}
.variants{{margin:-.2em 0 .6em;font-size:.9em;color:#444}}
.note{{color:#555;font-size:.85em;max-width:75em}}
dl.facts{{display:grid;grid-template-columns:max-content auto;gap:.15em 1em;font-size:.92em}}
dl.facts dt{{font-weight:bold}}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _data_uri(folder: Path, rel: str, blur: bool) -> tuple[str, int] | None:
    """The image as a data: URI and its width, or None when the file is missing or damaged."""
    from probe.plugin import DataError
    from probe_audit.nsfw import blurred

    try:
        pil = to_pil(load_image(inside(folder, rel)))
    except DataError:
        return None
    if blur:
        pil = blurred(pil)
    return "data:image/png;base64," + base64.b64encode(pil_png_bytes(pil)).decode("ascii"), pil.width


def _caption(cell: SheetCell) -> str:
    """Prompt, then variant · seed · cosine, then the label: escaped, for one tile."""
    meta = [cell.variant] if cell.variant else []
    if cell.seed is not None:
        meta.append(f"seed {cell.seed}")
    if cell.cosine is not None:
        meta.append(f"cos {cell.cosine:.3f}")
    parts = [f"<span class='p'>“{_e(cell.prompt)}”</span>"] if cell.prompt else []
    if meta:
        parts.append(f"<span class='m'>{_e(' · '.join(meta))}</span>")
    if cell.label:
        parts.append(f"<b>{_e(cell.label)}</b>")
    return "".join(parts) or _e(cell.caption)


def _grid(folder: Path, cells: list[SheetCell], blur: bool, limit: int) -> str:
    figures = []
    for cell in cells[:limit]:
        hide = blur and cell.flagged
        cls = " class='flagged'" if cell.flagged else ""
        caption = _caption(cell)
        image = _data_uri(folder, cell.image, hide)
        if image is None:
            figures.append(
                f"<figure class='missing'><p class='note'>{_e(cell.image)} is missing or damaged: "
                f"rerun the run with --resume to recompute it</p><figcaption>{caption}</figcaption></figure>"
            )
            continue
        uri, width = image
        alt = "blurred: flagged NSFW" if hide else f"{cell.prompt or cell.caption}, {cell.label or cell.caption}"
        small = " class='small'" if width < TILE else ""
        figures.append(
            f"<figure{cls}><img{small} alt='{_e(alt)}' src='{uri}'><figcaption>{caption}</figcaption></figure>"
        )
    more = f"<p class='note'>{len(cells) - limit} more not shown</p>" if len(cells) > limit else ""
    return f"<div class='grid'>{''.join(figures)}{more}</div>"


def _table(table: Table) -> str:
    """The step's table; cells with a 0% share are greyed so the non-zero ones stand out."""
    head = "".join(f"<th>{_e(c)}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f"<td{' class=zero' if str(c).startswith('0% [') else ''}>{_e(c)}</td>" for c in row) + "</tr>"
        for row in table.rows
    )
    note = f"<p class='note'>{_e(table.note)}</p>" if table.note else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"


def _heading(s: StepSummary) -> str:
    """A step's section title in words, with the step's name from the experiment beside it."""
    d = s.data
    titles = {
        "bias": lambda: f"Bias: {d.get('prompt_set')} prompts, {d.get('label_set')} labels",
        "label": lambda: f"Zero-shot labels ({d.get('label_set')}) of the images of step “{d.get('images')}”",
        "nsfw": lambda: "NSFW rates of inverted images",
        "invert": lambda: "Inversions",
        "neighbours": lambda: "Nearest vocabulary words",
        "shuffle": lambda: "Word-order shuffle test",
    }
    title = titles.get(s.kind, lambda: s.kind)()
    kind = "" if s.name == s.kind else f" ({_e(s.kind)})"
    return f"<h2>{_e(title)}<span class='step'>step “{_e(s.name)}”{kind}</span></h2>"


def _bias_section(folder: Path, s: StepSummary, index: int, blur: bool, limit: int) -> list[str]:
    d = s.data
    charts = bias_charts(d, f"chart-{index}")
    paper = any(c.get("paper") is not None for r in d["rows"] for c in r["cells"])
    parts = [
        "<p class='note'>Bars: share of a prompt's inversions that the zero-shot labeller gave each "
        f"{_e(d['label_set'])} label; whiskers: Wilson 95% interval"
        + ("; hatched bars: the paper's value (Kazemi et al. 2024, figure 4)" if paper else "")
        + ". Each tile: the prompt inverted, its variant, seed and final image–text cosine, and the label.</p>"
    ]
    variants = d["variants"]
    for row in d["rows"]:
        parts.append(f"<h3><q>{_e(row['texts'][variants[0]])}</q></h3>")
        if len(variants) > 1:
            parts.append(
                "<p class='variants'>"
                + " · ".join(f"<b>{_e(v)}</b> “{_e(row['texts'][v])}”" for v in variants[1:])
                + "</p>"
            )
        cells = s.sheets.get(row["key"], [])
        parts.append(f"<div class='prompt'>{charts[row['key']]}{_grid(folder, cells, blur, limit)}</div>")
    return parts


def _label_section(folder: Path, s: StepSummary, index: int, blur: bool, limit: int) -> list[str]:
    charts = label_charts(s.data, f"chart-{index}")
    parts = ["<p class='note'>Bars: share of images with each zero-shot label; whiskers: Wilson 95% interval.</p>"]
    for prompt, cells in s.sheets.items():
        parts.append(f"<h3><q>{_e(prompt)}</q></h3>")
        parts.append(f"<div class='prompt'>{charts.get(prompt, '')}{_grid(folder, cells, blur, limit)}</div>")
    return parts


def _nsfw_section(folder: Path, s: StepSummary, index: int, blur: bool, limit: int) -> list[str]:
    parts = [
        "<p class='note'>Share of each prompt's inverted images flagged by the zero-shot concept check"
        + (" and by NudeNet" if s.data.get("nudenet") else "")
        + "; whiskers: Wilson 95% interval.</p>",
        nsfw_chart(s.data, f"chart-{index}"),
    ]
    for prompt, cells in s.sheets.items():
        parts.append(f"<h3><q>{_e(prompt)}</q></h3>{_grid(folder, cells, blur, limit)}")
    return parts


def _plain_section(folder: Path, s: StepSummary, index: int, blur: bool, limit: int) -> list[str]:
    return [f"<h3><q>{_e(group)}</q></h3>{_grid(folder, cells, blur, limit)}" for group, cells in s.sheets.items()]


SECTIONS = {"bias": _bias_section, "label": _label_section, "nsfw": _nsfw_section}


def render_report(folder: Path, blur: bool = True, images_per_group: int = 60) -> str:
    """The HTML text of a run's report (flagged images blurred unless blur is False)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    plan = plan_of(folder)
    summaries = summarise(plan, read_records(folder, plan))
    model = manifest.get("model") or {}
    shard = manifest.get("shard")
    facts = {
        "experiment": plan.name,
        "model": model.get("model"),
        "fingerprint": model.get("fingerprint"),
        "device / precision": f"{model.get('device')} / {model.get('precision')}",
        "labellers": ", ".join(manifest.get("labellers") or {}) or "the audited model",
        "items": ", ".join(f"{k} {v}" for k, v in manifest.get("counts", {}).items()),
        "shard": f"{shard['index']}/{shard['count']}"
        if shard
        else ("merged from " + ", ".join(manifest["merged_from"]) if manifest.get("merged_from") else "whole run"),
        "versions": ", ".join(f"{k} {v}" for k, v in (manifest.get("versions") or {}).items()),
        "created / updated": f"{manifest.get('created')} / {manifest.get('updated')}",
    }
    body = [
        f"<h1>clip-probe run: {_e(plan.name)}</h1>",
        "<dl class='facts'>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts.items()) + "</dl>",
    ]
    if not blur:
        body.append("<p class='note'>Flagged images are shown unblurred (--no-blur).</p>")
    for index, s in enumerate(summaries):
        body.append(_heading(s))
        body += SECTIONS.get(s.kind, _plain_section)(folder, s, index, blur, images_per_group)
        body.append(_table(s.table))
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_e(plan.name)} — clip-probe report</title>"
        f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n"
    )
