"""Summaries of the audit step kinds (label, bias, nsfw) from their item records alone, with what the
report shows of them: titles, notes and chart data (bars with Wilson 95% whiskers, the paper's value
beside ours). The experiment engine (the `run` plugin) calls them through `StepKind.summarise`."""

from __future__ import annotations

from collections import Counter, defaultdict

from probe.plugin import SheetCell, StepPlan, StepSummary, Table
from probe_audit.bias import bias_table
from probe_audit.sets import label_set_from_dict, prompt_set_from_dict
from probe_audit.stats import Proportion


def _by_prompt(recs: list[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in recs:
        groups[r["params"]["prompt"]].append(r)
    return groups


def _bar(series: str, share: dict, paper: float | None = None) -> dict:
    """One bar of a chart: its series, the proportion's numbers, the paper's percentage if any."""
    return {"series": series, **{k: share[k] for k in ("k", "n", "share", "low", "high")}, "paper": paper}


def bias_charts(data: dict) -> dict[str, dict]:
    """One chart per prompt of a bias step's data (BiasTable.as_dict()): groups are the variants,
    bars the attributes, with the paper's value beside ours where the prompt set has it."""
    charts = {}
    variants, attributes = data["variants"], data["attributes"]
    for row in data["rows"]:
        cells = {(c["variant"], c["attribute"]): c for c in row["cells"]}
        groups = [
            {
                "name": v if len(variants) > 1 else "",
                "bars": [_bar(a, cells[(v, a)], cells[(v, a)].get("paper")) for a in attributes],
            }
            for v in variants
        ]
        title = f"Share of inversions of “{row['texts'][variants[0]]}” labelled with each {data['label_set']} label"
        charts[row["key"]] = {"title": title, "y_title": "share of inversions (%)", "groups": groups}
    return charts


def label_charts(data: dict) -> dict[str, dict]:
    """One chart per prompt of a label step's data: one bar per attribute."""
    return {
        row["prompt"]: {
            "title": f"Share of images of “{row['prompt']}” with each label",
            "groups": [{"name": "", "bars": [_bar(a, row["shares"][a]) for a in data["attributes"]]}],
        }
        for row in data["prompts"]
    }


def nsfw_chart(data: dict) -> dict:
    """Flag rates per prompt of an nsfw step's data: the zero-shot check, and NudeNet when it ran."""
    groups = []
    for row in data["prompts"]:
        bars = [_bar("zero-shot flagged", row["clip"])]
        if row.get("nudenet"):
            bars.append(_bar("NudeNet flagged", row["nudenet"]))
        groups.append({"name": row["prompt"], "bars": bars})
    return {
        "title": "Share of inverted images flagged NSFW, per prompt",
        "y_title": "flagged images (%)",
        "colours": {"zero-shot flagged": "#c44e52", "NudeNet flagged": "#8172b3"},
        "groups": groups,
    }


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
    recs = step.done_records(records)
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
    out = {
        "attributes": attrs,
        "label_set": step.options["label_set"]["name"],
        "images": step.options.get("images"),
        "prompts": data,
        "status": step.status_counts(records),
    }
    charts = label_charts(out)
    return StepSummary(
        step.name,
        step.kind,
        table,
        out,
        sheets,
        title=f"Zero-shot labels ({out['label_set']}) of the images of step “{out['images']}”",
        intro="Bars: share of images with each zero-shot label; whiskers: Wilson 95% interval.",
        groups={prompt: {"chart": charts.get(prompt)} for prompt in sheets},
    )


def summarise_bias(step: StepPlan, records: dict[str, dict]) -> StepSummary:
    recs = step.done_records(records)
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
    data = {**result.as_dict(), "long": result.long_table().as_dict(), "status": step.status_counts(records)}
    paper = any(c.get("paper") is not None for r in data["rows"] for c in r["cells"])
    variants, charts = data["variants"], bias_charts(data)
    return StepSummary(
        step.name,
        step.kind,
        result.table(),
        data,
        dict(sheets),
        title=f"Bias: {data.get('prompt_set')} prompts, {data.get('label_set')} labels",
        intro="Bars: share of a prompt's inversions that the zero-shot labeller gave each "
        f"{data['label_set']} label; whiskers: Wilson 95% interval"
        + ("; hatched bars: the paper's value (Kazemi et al. 2024, figure 4)" if paper else "")
        + ". Each tile: the prompt inverted, its variant, seed and final image–text cosine, and the label.",
        groups={
            row["key"]: {
                "heading": row["texts"][variants[0]],
                "variants": [[v, row["texts"][v]] for v in variants[1:]],
                "chart": charts[row["key"]],
            }
            for row in data["rows"]
        },
    )


def _flag_label(result: dict) -> str:
    """What flagged an NSFW image: its zero-shot concepts and/or NudeNet, or 'not flagged'."""
    reasons = list(result["clip_flagged"]) + (["NudeNet"] if result["nudenet"]["detections"] else [])
    return "flagged: " + ", ".join(reasons) if reasons else "not flagged"


def summarise_nsfw(step: StepPlan, records: dict[str, dict]) -> StepSummary:
    recs = step.done_records(records)
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
    out = {
        "prompts": data,
        "overall_clip": overall.as_dict(),
        "nudenet": nudenet_on,
        "nudenet_reason": reason,
        "thresholds": thresholds,
        "status": step.status_counts(records),
    }
    return StepSummary(
        step.name,
        step.kind,
        table,
        out,
        sheets,
        title="NSFW rates of inverted images",
        intro="Share of each prompt's inverted images flagged by the zero-shot concept check"
        + (" and by NudeNet" if nudenet_on else "")
        + "; whiskers: Wilson 95% interval.",
        chart=nsfw_chart(out),
    )
