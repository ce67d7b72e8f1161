"""Every text of a run folder that reaches `report.html` is escaped on every path: prompts, variants
(several per prompt), labels, concept and NudeNet class names, neighbour words, shuffle rows, a
plugin's step kind with its own result names, the experiment, model, labeller and version names.

The folder is written by hand (no model): each field holds its own marker `<i>field</i>`, so the test
also shows which fields reach the page; a raw `<i` anywhere in the page means one escape is missing.
Step names are left plain: the experiment file allows only lowercase letters, digits, - and _ there.
"""

from __future__ import annotations

import json
import re
import types
from pathlib import Path

import pytest
import torch
from probe_run.experiment import normalise, plan_from_spec
from probe_run.report import render_report
from probe_run.runner import RUN_FORMAT, record_path

from probe.files.atomic import write_json
from probe.files.images import write_png
from probe.files.yamldoc import YamlDoc
from probe.hookspecs import hookimpl
from probe.plugin import Outcome, SheetCell, StepKind, StepSummary, Table
from probe.registry import Registry, activate, discover


def m(field: str) -> str:
    """The marker of one field: markup that must never reach the page as markup."""
    return f"<i>{field}</i>"


def escaped(field: str) -> str:
    return f"&lt;i&gt;{field}&lt;/i&gt;"


PLUGIN_KIND = m("plugin kind")
SUMMARY_KIND = "summarised"


def _plugin_run(step, chunk, ctx):
    return [Outcome(it.id, "done", {m("plugin column"): m("plugin value")}) for it in chunk.items]


def _plugin_summary(step, records) -> StepSummary:
    """A plugin's own summary: every text the report shows of a step, and a tile with only a caption."""
    bar = {"series": m("chart series"), "k": 1, "n": 2, "share": 0.5, "low": 0.1, "high": 0.9, "paper": 40.0}
    chart = {
        "title": m("chart title"),
        "y_title": m("chart axis"),
        "groups": [{"name": m("chart group"), "bars": [bar]}],
    }
    cell = SheetCell(f"images/{step.name}/result.png", m("tile caption"))
    return StepSummary(
        step.name,
        step.kind,
        Table(
            m("table title"),
            [m("table column"), "share"],
            [[m("table cell"), f"0% [{m('zero cell')}]"]],
            m("table note"),
        ),
        {},
        {m("group key"): [cell]},
        title=m("step title"),
        intro=m("step intro"),
        chart=chart,
        groups={
            m("group key"): {
                "heading": m("group heading"),
                "variants": [[m("variant"), m("variant text")]],
                # a short series name is written level under its bar (long ones are turned)
                "chart": {"title": "t", "groups": [{"name": "", "bars": [{**bar, "series": m("s")}]}]},
            }
        },
    )


def marker_plugin() -> types.ModuleType:
    """A third-party plugin whose step kinds' names, results and own summary texts are markup."""
    module = types.ModuleType("marker_plugin")
    module.PROBE_API = 1  # type: ignore[attr-defined]

    @hookimpl
    def register_experiment_steps(register):
        register(StepKind(PLUGIN_KIND, {}, lambda opts: {}, _plugin_run))
        register(StepKind(SUMMARY_KIND, {}, lambda opts: {}, _plugin_run, summarise=_plugin_summary))

    module.register_experiment_steps = register_experiment_steps  # type: ignore[attr-defined]
    return module


def write_sets(folder: Path) -> dict[str, str]:
    """A prompt set (two variants per prompt), a label set and a concept list, every name a marker."""
    files = {
        "prompts": f"""\
name: "{m("prompt set")}"
variants: ["{m("variant one")}", "{m("variant two")}"]
prompts:
  - key: "{m("prompt key")}"
    group: "{m("group")}"
    "{m("variant one")}": "{m("bias prompt one")}"
    "{m("variant two")}": "{m("bias prompt two")}"
""",
        "labels": f"""\
name: "{m("label set")}"
labels:
  "{m("attribute a")}": ["a red shape"]
  "{m("attribute b")}": ["a blue shape"]
""",
        "concepts": f"""\
name: "{m("concept list")}"
anchors: ["a photo"]
concepts:
  "{m("concept")}":
    threshold: 0.5
    prompts: ["a drawing"]
""",
    }
    out = {}
    for name, text in files.items():
        path = folder / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        out[name] = str(path)
    return out


def result_of(kind: str, params: dict) -> dict:
    """A finished item's result as each kind's run writes it, its texts markers."""
    neighbours = [{"word": m("neighbour word"), "score": 0.5, "flagged": True}]
    if kind == "invert":
        return {"cosine": 0.25}
    if kind in ("label", "bias"):
        return {"label": m("attribute a"), "probs": {m("attribute a"): 0.75, m("attribute b"): 0.25}, "cosine": 0.25}
    if kind == "nsfw" and params.get("text"):
        return {"flag_rate": 0.5, "neighbours": neighbours}
    if kind == "nsfw":
        return {
            "cosine": 0.25,
            "concepts": {m("concept"): 0.75},
            "clip_flagged": [m("concept")],
            "nudenet": {"available": True, "detections": [{"class": m("nudenet class"), "score": 0.9}], "reason": ""},
            "flagged": True,
        }
    if kind == "neighbours":
        return {"flag_rate": 0.5, "neighbours": neighbours}
    if kind == "shuffle":
        row = {"name": m("perturbation"), "n": 2, "n_items": 1, "mean_score": 0.5, "mean_delta": -0.125}
        row |= {"std_delta": 0.01, "order_blindness": 0.5, "precision_at_1": 0.5}  # a PerturbationRow's fields
        return {"report": {"mode": "image", "rows": [row]}}
    return _plugin_run(None, types.SimpleNamespace(items=[types.SimpleNamespace(id="x")]), None)[0].result


@pytest.fixture
def marked_run(tmp_path: Path) -> Path:
    """A run folder of every step kind whose every text field holds a marker."""
    plugins, warnings = discover({"marker": marker_plugin})
    activate(Registry(plugins, warnings))
    sets = write_sets(tmp_path)
    fast = {"steps": 1, "size": 32, "copies": 1}
    raw = {
        "name": m("experiment"),
        "steps": [
            {"invert": {"name": "inv", "prompts": [m("invert prompt")], "seeds": "0-1", "settings": fast}},
            {"label": {"name": "lab", "images": "inv", "labels": sets["labels"]}},
            {"bias": {"name": "bia", "prompts": sets["prompts"], "labels": sets["labels"], "n": 2, "settings": fast}},
            {
                "nsfw": {
                    "name": "nsf",
                    "prompts": [m("nsfw prompt")],
                    "n": 1,
                    "settings": fast,
                    "concepts": sets["concepts"],
                }
            },
            {"neighbours": {"name": "nei", "texts": [m("neighbours text")], "vocabs": ["world"], "k": 1}},
            {"shuffle": {"name": "shu", "prompts": [m("shuffle prompt")]}},
            {PLUGIN_KIND: {"name": "plug"}},
            {SUMMARY_KIND: {"name": "own"}},
        ],
    }
    spec = normalise(YamlDoc("marked experiment", raw))
    plan = plan_from_spec(spec)
    folder = tmp_path / "run"
    kinds = {s.name: s.kind for s in plan.steps}
    for item in plan.items:
        kind = kinds[item.step]
        image = None
        if kind in ("invert", "bias", SUMMARY_KIND) or (kind == "nsfw" and not item.params.get("text")):
            image = f"images/{item.id}.png"
            write_png(folder / image, torch.full((3, 8, 8), 0.5), {})
        if item.id == "inv/" + item.key and item.params.get("seed") == 1:
            image = f"images/inv/{m('missing image')}.png"  # a record naming an image that is not there
        write_json(
            record_path(folder, item.id),
            {
                "id": item.id,
                "step": item.step,
                "key": item.key,
                "kind": kind,
                "status": "done",
                "params": item.params,
                "result": result_of(kind, item.params),
                "image": image,
                "message": "",
                "seconds": 0.0,
            },
        )
    model = {"model": m("model"), "fingerprint": m("fingerprint"), "device": m("device"), "precision": m("precision")}
    manifest: dict = {
        "format": RUN_FORMAT,
        "experiment": spec,
        "digest": plan.digest,
        "source": None,
        "model": model,
        "labellers": {m("labeller"): {}},
        "versions": {m("package"): m("version")},
        "shard": None,
        "merged_from": [m("shard folder")],
        "counts": {"done": len(plan.items)},
        "items": {},
        "created": m("created"),
        "updated": m("updated"),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


FIELDS = [
    "experiment",
    "model",
    "fingerprint",
    "device",
    "labeller",
    "package",
    "version",
    "shard folder",
    "created",
    "invert prompt",
    "attribute a",
    "attribute b",
    "label set",
    "prompt set",
    "variant one",
    "variant two",
    "bias prompt one",
    "bias prompt two",
    "nsfw prompt",
    "concept",
    "neighbour word",
    "neighbours text",
    "perturbation",
    "plugin kind",
    "plugin column",
    "plugin value",
    "missing image",
    "chart series",
    "chart title",
    "chart axis",
    "chart group",
    "tile caption",
    "table column",
    "table cell",
    "zero cell",
    "s",
    "table note",
    "group heading",
    "step title",
    "step intro",
    "variant",
    "variant text",
]


@pytest.mark.parametrize("blur", [True, False])
def test_every_marked_field_reaches_the_report_only_escaped(marked_run, blur):
    page = render_report(marked_run, blur=blur)
    raw = sorted(set(re.findall(r"<i>[^<]*</i>", page)))
    assert raw == [], f"unescaped markup in report.html: {raw}"
    assert "<i" not in page.replace("<img", "")
    missing = [f for f in FIELDS if escaped(f) not in page]
    assert missing == []


def test_the_charts_and_tiles_of_every_image_step_are_drawn(marked_run):
    """The markers above sit in the parts that carry them: chart titles, tile captions, tables."""
    page = render_report(marked_run)
    assert page.count("<svg class='chart'") == 5  # label and bias: one per prompt; nsfw: one; the plugin's: two
    assert f"<b>{escaped('variant two')}</b> “{escaped('bias prompt two')}”" in page
    assert f"<span class='p'>“{escaped('bias prompt one')}”</span>" in page
    assert f"alt='{escaped('invert prompt')}" in page
