"""`probe compare` on two shapes-world models whose truth differs only in "a star": the shipped
shapes-tiny (red) and a variant trained with `probe world train --star-colour blue` (docs/compare.md
gives the command). Does the comparison mark that difference, and how often does it mark one where
the truth is the same (the other five shapes × 8 colours)?

Runs `probe bias --prompts shapes-all --labels colours` on each model (resumable run folders under
--out), then compares them. Measured, not asserted.

Run: python benchmarks/bench_compare_pair.py [--models shapes-tiny shapes-tiny@FILE] [--n 10] [--save]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from record import add_save_argument, finish, log

import probe

MODELS = ("shapes-tiny", "shapes-tiny@probe-out/world/blue-star.safetensors")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10, help="inversions per prompt and model")
    ap.add_argument("--out", type=Path, default=Path("probe-out/bench-compare-pair"))
    ap.add_argument("--steps", type=int, default=None, help="inversion steps (default: the default preset's)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", nargs=2, default=list(MODELS), help="the pair to compare (default: the built-in pair)")
    add_save_argument(ap)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    bias = {"prompts": "shapes-all", "labels": "colours", "n": args.n}
    if args.steps:
        bias["settings"] = {"steps": args.steps, "min_cosine": -1}
    experiment = {
        "name": "builtin-pair",
        "steps": [{"bias": bias}],
    }
    folders, seconds = [], {}
    for model in args.models:
        session = probe.open(model, device="cpu")
        folder = args.out / model
        start = time.perf_counter()

        def opened(spec: str | None, s: object = session) -> object:
            return s

        probe.run_experiment(experiment, opened, run_dir=folder, resume=True)
        seconds[model] = round(time.perf_counter() - start, 1)
        log(f"{model}: {folder} in {seconds[model]} s")
        folders.append(folder)
    comparison = probe.compare(folders)
    comparison.write(args.out / "compare")
    rows = comparison.rows("bias")
    star = {c: comparison.row("bias", "a star", c) for c in ("red", "blue")}
    same = [r for r in rows if r.subject != "a star"]
    marked = [f"{r.subject} → {r.metric} {r.differences[0].points()}" for r in same if r.differs]
    results = {
        "n_per_prompt": args.n,
        "models": args.models,
        "a star → red": {m: s.percent() for m, s in zip(args.models, star["red"].shares, strict=True)},
        "a star → red difference (points, Newcombe 95%)": star["red"].differences[0].points(),
        "a star → red marked": star["red"].differs,
        "a star → blue difference (points, Newcombe 95%)": star["blue"].differences[0].points(),
        "a star → blue marked": star["blue"].differs,
        "equal-truth rows": len(same),
        "equal-truth rows marked": len(marked),
        "false-difference rate": round(len(marked) / len(same), 4),
        "marked equal-truth rows": marked,
        "seconds": seconds,
    }
    log(
        f"'a star' → red: {star['red'].differences[0].points()} (marked {star['red'].differs}); "
        f"false differences {len(marked)} of {len(same)} equal-truth rows"
    )
    finish("bench_compare_pair", args, results)


if __name__ == "__main__":
    main()
