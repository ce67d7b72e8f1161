"""The comparison as one self-contained HTML page in the report's style: per step, charts with one
bar per model (Wilson whiskers), the table of shares and tested differences, and image rows that
put the same prompt and seed from each model side by side. Charts and CSS come from the experiment
engine's report (through the registry); the template renders with autoescape, so every run text
is escaped where it is placed."""

from __future__ import annotations

import base64
import os
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from markupsafe import Markup

from probe.plugin import DataError, inside, load_image, pil_png_bytes, python_api, to_pil
from probe_compare.measures import Row

if TYPE_CHECKING:
    from probe_compare.api import Comparison, StepComparison

TILE = 160  # px, the displayed size of an image tile
MODEL_COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")

EXTRA_STYLE = Markup(f"""
td.differs{{font-weight:bold;background:#fff3cd}}
.row{{display:flex;gap:8px;align-items:flex-start;margin:.3em 0}}
.row .key{{width:11em;font-size:.85em;color:#444;flex:none}}
.row figure{{width:{TILE}px}}.row figure img{{width:{TILE}px;height:{TILE}px}}
""")

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("probe_compare", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


def _engine(name: str) -> Any:
    """A function of the experiment engine's report (the `run` plugin), found through the registry."""
    return python_api().require(name, need="probe compare").function


def _bar(model: str, share: Any) -> dict:
    return {"series": model, "k": share.k, "n": share.n, "share": share.share, "low": share.low, "high": share.high}


def _chart(title: str, groups: list[tuple[str, Row]], models: list[str], colours: dict[str, str]) -> dict:
    return {
        "title": title,
        "colours": colours,
        "groups": [
            {"name": name, "bars": [_bar(m, s) for m, s in zip(models, row.shares, strict=True)]}
            for name, row in groups
        ],
    }


def _charts(step: StepComparison, models: list[str], colours: dict[str, str]) -> list[dict]:
    """Bias and label steps: a chart per prompt (labels any model gave); others: one chart of every row."""
    assert step.measured is not None, "only measured steps have charts"
    rows = step.measured.rows
    if step.kind in ("bias", "label"):
        by_subject: dict[tuple[str, str], list[Row]] = defaultdict(list)
        for r in rows:
            by_subject[(r.subject, r.variant)].append(r)
        charts = []
        for (subject, variant), rs in by_subject.items():
            shown = [r for r in rs if any(s.k for s in r.shares)] or rs[:1]
            heading = subject + (f" ({variant})" if variant else "")
            title = f"Share of images of “{heading}” with each label, per model"
            charts.append({"heading": heading, "chart": _chart(title, [(r.metric, r) for r in shown], models, colours)})
        return charts
    title = f"{step.measured.title}: {step.measured.rows[0].metric if rows else ''} per model"
    groups = [(f"{r.subject} · {r.metric}", r) for r in rows]
    return [{"heading": "", "chart": _chart(title, groups, models, colours)}] if rows else []


def _image(run_folder: Any, cell: dict, blur: bool) -> dict:
    """One tile: the embedded image (blurred when flagged) and what its caption says."""
    meta = [x for x in (cell.get("label"), f"cos {cell['cosine']:.3f}" if cell.get("cosine") is not None else "") if x]
    tile: dict[str, Any] = {"meta": " · ".join(meta), "image": cell["image"], "flagged": bool(cell.get("flagged"))}
    try:
        pil = to_pil(load_image(inside(run_folder, cell["image"])))
    except DataError:
        return {**tile, "missing": True}
    hide = blur and tile["flagged"]
    if hide:
        from PIL import ImageFilter

        pil = pil.filter(ImageFilter.GaussianBlur(max(2.0, 0.08 * max(pil.size))))
    uri = "data:image/png;base64," + base64.b64encode(pil_png_bytes(pil)).decode("ascii")
    alt = "blurred: flagged NSFW" if hide else f"{cell.get('prompt') or cell.get('caption')}, {cell.get('label') or ''}"
    return {**tile, "missing": False, "uri": uri, "alt": alt, "small": pil.width < TILE}


def _key(cell: dict) -> tuple:
    """What makes two models' images comparable: the same prompt, variant and seed."""
    return cell.get("prompt"), cell.get("variant"), cell.get("seed")


def _image_rows(comparison: Comparison, step: StepComparison, blur: bool, limit: int) -> list[dict]:
    """Per group, one row per (prompt, variant, seed) with each model's image of it."""
    groups = []
    for group in step.cells[0]:
        keyed = [{_key(c): c for c in cells.get(group, [])} for cells in step.cells]
        keys = list(dict.fromkeys(k for cells in keyed for k in cells))
        rows = []
        for prompt, variant, seed in keys[:limit]:
            tiles = []
            for run, cells in zip(comparison.runs, keyed, strict=True):
                cell = cells.get((prompt, variant, seed))
                shown = _image(run.folder, cell, blur) if cell else {}
                tiles.append({"model": run.model, "absent": cell is None, **shown})
            key = " · ".join(str(x) for x in (variant, f"seed {seed}" if seed is not None else "") if x)
            rows.append({"key": key, "tiles": tiles})
        if rows:
            groups.append({"heading": group, "rows": rows, "more": max(0, len(keys) - limit)})
    return groups


def _cell_class(value: object) -> str | None:
    text = str(value)
    if text.endswith("≠"):
        return "differs"
    return "zero" if text.startswith("0% [") else None


def shown_folder(folder: Path, where: Path | None) -> str:
    """A run folder as a comparison shows it: relative to the comparison's own folder when given."""
    return os.path.relpath(folder, where) if where is not None else str(folder)


def render_page(
    comparison: Comparison, blur: bool = True, images_per_group: int = 12, where: Path | None = None
) -> str:
    """The HTML text of the comparison page; run folders are shown relative to `where` (the folder
    the page is written to), so a comparison folder reads the same wherever it was made."""
    chart_svg, style = _engine("chart_svg"), _engine("report_style")()
    models = comparison.models
    colours = {m: MODEL_COLOURS[i % len(MODEL_COLOURS)] for i, m in enumerate(models)}
    facts = [("experiment", comparison.experiment), ("baseline", f"{models[0]} (differences are model − baseline)")]
    facts += [
        (f"model {i + 1}", f"{r.model} · {r.fingerprint} · {shown_folder(r.folder, where)}")
        for i, r in enumerate(comparison.runs)
    ]
    steps = []
    for index, s in enumerate(comparison.steps):
        measured = s.measured
        charts = _charts(s, models, colours) if measured else []
        steps.append(
            {
                "name": s.name,
                "kind": s.kind,
                "title": measured.title if measured else s.kind,
                "note": measured.note if measured else "",
                "charts": [
                    {"heading": c["heading"], "svg": chart_svg(c["chart"], f"chart-{index}-{j}")}
                    for j, c in enumerate(charts)
                ],
                "table": s.table(models).to_html(cell_class=_cell_class) if measured else None,
                "words": measured.side_by_side if measured else [],
                # a label step's images are another step's, shown there
                "images": [] if s.kind == "label" else _image_rows(comparison, s, blur, images_per_group),
            }
        )
    return _TEMPLATES.get_template("compare.html.j2").render(
        name=comparison.experiment,
        style=style + EXTRA_STYLE,
        facts=facts,
        models=models,
        blur=blur,
        steps=steps,
    )
