"""One self-contained HTML page for a run folder: per step its charts (inline SVG), image grids and
table; images embedded as base64 PNG, no scripts and no external files, so it opens offline in any
browser. The page is the template `templates/report.html.j2`, rendered with autoescape: every piece
of run text (prompts, variants, labels, step and model names) is escaped where it is placed."""

from __future__ import annotations

import base64
from pathlib import Path

import jinja2
from markupsafe import Markup

from probe.plugin import SheetCell, StepSummary, inside, load_image, pil_png_bytes, to_pil
from probe_run.charts import chart_svg
from probe_run.runner import plan_of, read_manifest, read_records
from probe_run.summaries import blurred, summarise

TILE = 200  # px, the displayed size of an image tile

STYLE = Markup(f"""
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
""")  # the page's own CSS, placed as it is


def report_style() -> Markup:
    """The report's own CSS, so that other pages (e.g. `probe compare`) look the same."""
    return STYLE


_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("probe_run", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


def _data_uri(folder: Path, rel: str, blur: bool) -> tuple[str, int] | None:
    """The image as a data: URI and its width, or None when the file is missing or damaged."""
    from probe.plugin import DataError

    try:
        pil = to_pil(load_image(inside(folder, rel)))
    except DataError:
        return None
    if blur:
        pil = blurred(pil)
    return "data:image/png;base64," + base64.b64encode(pil_png_bytes(pil)).decode("ascii"), pil.width


def _tile(folder: Path, cell: SheetCell, blur: bool) -> dict:
    """One image tile: the embedded image (blurred when flagged) and its caption's parts."""
    meta = [cell.variant] if cell.variant else []
    if cell.seed is not None:
        meta.append(f"seed {cell.seed}")
    if cell.cosine is not None:
        meta.append(f"cos {cell.cosine:.3f}")
    hide = blur and cell.flagged
    tile = {
        "prompt": cell.prompt,
        "meta": " · ".join(meta),
        "label": cell.label,
        "caption": cell.caption,
        "image": cell.image,
        "flagged": cell.flagged,
    }
    image = _data_uri(folder, cell.image, hide)
    if image is None:
        return {**tile, "missing": True}
    uri, width = image
    alt = "blurred: flagged NSFW" if hide else f"{cell.prompt or cell.caption}, {cell.label or cell.caption}"
    return {**tile, "missing": False, "uri": uri, "alt": alt, "small": width < TILE}


def _zero(value: object) -> str | None:
    """Cells with a 0% share are greyed so the non-zero ones stand out."""
    return "zero" if str(value).startswith("0% [") else None


def _step(folder: Path, s: StepSummary, index: int, blur: bool, limit: int) -> dict:
    """What the template shows of one step: title, note, charts, groups of tiles and the table."""
    keys = list(s.groups) or list(s.sheets)
    groups = []
    for j, key in enumerate(keys):
        view = s.groups.get(key, {})
        cells = s.sheets.get(key, [])
        chart = view.get("chart")
        groups.append(
            {
                "heading": view.get("heading", key),
                "variants": view.get("variants") or [],
                "chart": chart_svg(chart, f"chart-{index}-{j}") if chart else ("" if "chart" in view else None),
                "tiles": [_tile(folder, c, blur) for c in cells[:limit]],
                "more": max(0, len(cells) - limit),
            }
        )
    return {
        "name": s.name,
        "kind": s.kind,
        "title": s.title or s.kind,
        "intro": s.intro,
        "chart": chart_svg(s.chart, f"chart-{index}") if s.chart else None,
        "groups": groups,
        "table": s.table.to_html(cell_class=_zero),
    }


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
    steps = [_step(folder, s, index, blur, images_per_group) for index, s in enumerate(summaries)]
    return _TEMPLATES.get_template("report.html.j2").render(
        name=plan.name, style=STYLE, facts=list(facts.items()), blur=blur, steps=steps
    )
