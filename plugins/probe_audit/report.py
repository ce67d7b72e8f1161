"""One self-contained HTML page for a run folder: tables and image grids, images embedded as
base64 PNG, no scripts and no external files, so it opens offline in any browser."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from probe.plugin import inside, load_image, pil_png_bytes, to_pil
from probe_audit.runner import plan_of, read_manifest, read_records
from probe_audit.summaries import StepSummary, summarise

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left}th{background:#f2f2f2}
.grid{display:flex;flex-wrap:wrap;gap:6px;margin:.3em 0 1.2em}
figure{margin:0;width:112px;font-size:.75em;text-align:center}
figure img{width:112px;height:112px;image-rendering:pixelated;display:block}
figure.flagged figcaption{color:#b00;font-weight:bold}
.note{color:#555;font-size:.85em}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:bold}
"""


def _data_uri(folder: Path, rel: str, blur: bool) -> str | None:
    """The image as a data: URI, or None when the file is missing or damaged."""
    from probe.plugin import DataError
    from probe_audit.nsfw import blurred

    try:
        pil = to_pil(load_image(inside(folder, rel)))
    except DataError:
        return None
    if blur:
        pil = blurred(pil)
    return "data:image/png;base64," + base64.b64encode(pil_png_bytes(pil)).decode("ascii")


def _grids(folder: Path, summary: StepSummary, blur: bool, limit: int) -> str:
    parts = []
    for group, cells in summary.sheets.items():
        figures = []
        for cell in cells[:limit]:
            hide = blur and cell.flagged
            cls = " class='flagged'" if cell.flagged else ""
            alt = "blurred: flagged NSFW" if hide else cell.caption
            uri = _data_uri(folder, cell.image, hide)
            if uri is None:
                figures.append(
                    f"<figure class='missing'><p class='note'>{html.escape(cell.image)} is missing or damaged: "
                    "rerun the run with --resume to recompute it</p>"
                    f"<figcaption>{html.escape(cell.caption)}</figcaption></figure>"
                )
                continue
            figures.append(
                f"<figure{cls}><img alt='{html.escape(alt, quote=True)}' src='{uri}'>"
                f"<figcaption>{html.escape(cell.caption)}</figcaption></figure>"
            )
        more = f"<p class='note'>{len(cells) - limit} more not shown</p>" if len(cells) > limit else ""
        parts.append(f"<h4>{html.escape(group)}</h4><div class='grid'>{''.join(figures)}</div>{more}")
    return "".join(parts)


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
        f"<h1>clip-probe run: {html.escape(plan.name)}</h1>",
        "<dl>"
        + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in facts.items())
        + "</dl>",
    ]
    if not blur:
        body.append("<p class='note'>Flagged images are shown unblurred (--no-blur).</p>")
    for s in summaries:
        body.append(f"<h2>{html.escape(s.kind)}: {html.escape(s.name)}</h2>")
        body.append(s.table.to_html())
        body.append(_grids(folder, s, blur, images_per_group))
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(plan.name)} — clip-probe report</title>"
        f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n"
    )
