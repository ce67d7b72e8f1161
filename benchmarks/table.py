"""The benchmarks page's performance table, rendered from the benchmarks' JSON in benchmarks/results/.

    python benchmarks/table.py                  # print the table
    python benchmarks/table.py --write docs/benchmarks.md  # replace the table between their markers

Every number in the table comes from a results file (`python benchmarks/<name>.py ... --save`
writes one); tests/test_perf_table.py checks that docs/benchmarks.md holds exactly this rendering.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
START = "<!-- performance table: rendered by benchmarks/table.py from benchmarks/results/*.json -->"
END = "<!-- end of performance table -->"
Row = tuple[str, str]  # (measurement, result)


def _core(r: dict) -> list[Row]:
    h = r["help"]
    rows = [
        (
            f"`probe --help` wall time (median of {h['runs']})",
            f"{h['median_seconds']:.2f} s; torch imported: {'yes' if h['torch_imported'] else 'no'}",
        )
    ]
    for t in r["encode_text"]:
        scaled = (
            "" if t["stock_timed_words"] == t["words"] else f" (stock timed on {t['stock_timed_words']} words, scaled)"
        )
        rows.append(
            (
                f"{t['words']:,} single words on `{t['model']}`: exact fast vs stock `encode_text`",
                f"{t['fast_seconds']:.2f} s vs {t['stock_seconds']:.2f} s{scaled}: **{t['speedup']:.1f}×**, "
                f"max\\|Δ\\| {t['max_abs_difference']:.1e}",
            )
        )
    return rows


def _neighbours(r: dict) -> list[Row]:
    rows = []
    if "build" in r:
        b = r["build"]
        rows.append(
            (
                f"CLIP-BPE index build on `{b['model']}` ({b['words']:,}-word sample): fast vs naive",
                f"{b['fast_seconds']:.2f} s vs {b['naive_seconds']:.2f} s: **{b['speedup']:.1f}×**, "
                f"identical top-10: {'yes' if b['identical_top10'] else 'no'}",
            )
        )
    if "query" in r:
        q = r["query"]
        one = next(f for f in q["flat"] if f["faiss_threads"] == 1)
        pool = max(q["flat"], key=lambda f: f["faiss_threads"])
        rows.append(
            (
                f"warm exact scan, {q['n']:,} × {q['dim']} flat index, k = {q['k']} (random unit vectors)",
                f"**{one['one_query_median_ms']:.2f} ms** a single query (FAISS on 1 thread); "
                f"{pool['batched_ms_per_query']:.2f} ms a query in a batch of {q['queries']} "
                f"({pool['faiss_threads']} threads)",
            )
        )
    for c in r.get("cold", []):
        lo, hi = c["snapshot_wall_range_seconds"]
        rows.append(
            (
                f"cold `{c['command']}`, cached index and text snapshot (median of {c['rounds']})",
                f"**{c['snapshot_wall_median_seconds']:.2f} s** ({lo:.2f}–{hi:.2f}); loading the model instead: "
                f"{c['model_load_wall_median_seconds']:.2f} s; bare `import torch, faiss`: "
                f"{c['bare_import_torch_faiss_seconds']:.2f} s",
            )
        )
    return rows


def _shuffle(r: dict) -> list[Row]:
    timed = (
        ""
        if r["naive_captions_timed"] == r["captions"]
        else f" (naive timed on {r['naive_captions_timed']} captions, scaled)"
    )
    return [
        (
            f"{r['captions']:,} captions × {r['perturbations']} perturbations on `{r['model']}`: "
            "batched vs a per-caption stock loop",
            f"{r['batched_seconds']:.2f} s vs {r['naive_seconds']:.1f} s{timed}: **{r['speedup']:.0f}×**, "
            f"max\\|Δ\\| {r['max_abs_difference']:.1e}",
        )
    ]


def _invert(r: dict) -> list[Row]:
    model = r["model"]["model"] if isinstance(r["model"], dict) else r["model"]
    rows = []
    if "image_tower" in r:
        t = r["image_tower"]
        sizes = sorted(int(k.split("_")[1]) for k in t if k.startswith("batch_"))
        rows.append(
            (
                f"image tower forward + backward on `{model}`, stock vs inference form",
                ", ".join(f"**{t[f'batch_{b}']['speedup']:.2f}×** at {b} views" for b in sizes),
            )
        )
    if "batched_vs_single" in r:
        for precision, b in r["batched_vs_single"].items():
            lo, hi = b["throughput_ratio_range"]
            rows.append(
                (
                    f"{b['images']} prompts batched vs one at a time, {precision}",
                    f"**{b['throughput_ratio_median']:.2f}×** (median of {len(b['rounds'])} rounds, {lo:.2f}–{hi:.2f})",
                )
            )
    if "memory" in r:
        m = r["memory"]
        many = next(k for k in m if k.startswith("peak_mib_") and k != "peak_mib_1_image")
        n = many.split("_")[2]
        rows.append(
            (
                f"peak memory inverting on `{model}` (default preset)",
                f"{m['peak_mib_1_image']:.0f} MiB for 1 image, {m[many]:.0f} MiB for {n}: "
                f"{m['mib_per_extra_image']:.1f} MiB per extra image",
            )
        )
    return rows


def _tower_floor(r: list) -> list[Row]:
    rows = []
    for p in r:
        for name in ("default", "paper"):
            m = p[name]
            rows.append(
                (
                    f"`{p['model']}` inversion step, `{name}` preset ({m['views']} views), {p['precision']}",
                    f"{m['seconds_per_step']:.2f} s/step, {m['ratio_to_floor']:.2f}× its matmul floor; "
                    f"{m['images_per_hour']:.2f} images/hour ({m['steps_per_image']:,} steps)",
                )
            )
    return rows


def _world(r: dict) -> list[Row]:
    return [
        (
            f"shapes-world render, {r['scenes']} scenes {r['size']}×{r['size']}",
            f"{r['scenes_per_second_wall']:,} scenes/s wall, {r['scenes_per_cpu_second']:,} per CPU-second",
        )
    ]


RENDERERS: dict[str, Callable[[Any], list[Row]]] = {
    "bench_core": _core,
    "bench_neighbours": _neighbours,
    "bench_shuffle": _shuffle,
    "bench_invert": _invert,
    "bench_tower_floor": _tower_floor,
    "bench_world": _world,
}


def load(folder: Path = RESULTS) -> list[dict]:
    """The results documents, in the table's order (benchmarks without a file are left out)."""
    found = {p.stem: json.loads(p.read_text()) for p in folder.glob("*.json")}
    return [found[name] for name in RENDERERS if name in found]


def _machines(docs: list[dict]) -> str:
    """One sentence naming each distinct machine and the load on it during the runs."""
    groups: dict[tuple, list[dict]] = {}
    for d in docs:
        m = d["machine"]
        groups.setdefault((m["cpu"], m["cores"], m["gpu"], m["torch"]), []).append(d)
    parts = []
    for (cpu, cores, gpu, torch), ds in groups.items():
        loads = [x for d in ds for x in (d["machine"]["load_average_at_start"], d["machine"]["load_average_at_end"])]
        dates = sorted({d["date"] for d in ds})
        parts.append(
            f"{cores}-core {cpu} CPU, {'GPU ' + gpu if gpu else 'no GPU'}, torch {torch}, "
            f"{' to '.join(dict.fromkeys([dates[0], dates[-1]]))}; 1-minute load average "
            f"{min(loads):.1f}–{max(loads):.1f} during the runs (the cores are shared, so times are pessimistic)"
        )
    return "Measured on a " + "; and on a ".join(parts) + "."


def render(docs: list[dict]) -> str:
    """The markdown between the page's markers: the machine, the table, the commands."""
    lines = [
        _machines(docs),
        "",
        "| benchmark | measurement | result |",
        "|---|---|---|",
    ]
    for d in docs:
        for i, (what, result) in enumerate(RENDERERS[d["benchmark"]](d["results"])):
            name = f"`{d['benchmark']}.py`" if i == 0 else ""
            lines.append(f"| {name} | {what} | {result} |")
    commands = "; ".join(f"`{d['command']}`" for d in docs)
    lines += ["", f"Measure again: {commands}; then `python benchmarks/table.py --write docs/benchmarks.md`."]
    return "\n".join(lines) + "\n"


def section(text: str) -> str:
    """What a document holds between the markers (ValueError when they are missing)."""
    start, end = text.index(START) + len(START), text.index(END)
    return text[start:end].strip("\n") + "\n"


def replace(text: str, table: str) -> str:
    start, end = text.index(START) + len(START), text.index(END)
    return text[:start] + "\n" + table + text[end:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--write", type=Path, nargs="+", default=[], help="markdown files holding the markers: replace their table"
    )
    args = ap.parse_args()
    table = render(load())
    for path in args.write:
        path.write_text(replace(path.read_text(), table))
    if not args.write:
        print(table, end="")


if __name__ == "__main__":
    main()
