"""Benchmark: `probe shuffle-test` batched scoring vs a naive per-caption loop, side by side in one run.

Batched: `text_shuffle_test` (every distinct text of every caption in ONE `session.encode_text`
call on the exact fast path). Naive: for each caption, the stock padded `encode_text(fast=False)`
one text at a time (the original, then each perturbation). Both include generating the
perturbations. The naive side is time-bounded: when its budget runs out it stops, and its time
for all captions is extrapolated from the captions it finished (said so in the output).
Scores are compared on every caption the naive side finished (max |Δ|).

    python benchmarks/bench_shuffle.py [--n 1000] [--model shapes-tiny@random] [--naive-seconds 120] [--save]
"""

from __future__ import annotations

import argparse
import time

import torch
from record import add_save_argument, finish, log


def naive_scores(session, captions: list[str], names: list[str], budget_s: float) -> tuple[list[float], int, float]:
    """Per-caption loop with the stock encoder; returns (scores, captions finished, seconds)."""
    from probe_shuffle.perturbations import perturb

    scores: list[float] = []
    start = time.perf_counter()
    done = 0
    for caption in captions:
        anchor = session.encode_text([caption], fast=False)[0]
        for texts in perturb(caption, names).values():
            scores += [float(anchor @ session.encode_text([text], fast=False)[0]) for text in texts]
        done += 1
        if time.perf_counter() - start > budget_s:
            break
    return scores, done, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="captions (rendered world two-object captions)")
    parser.add_argument(
        "--model", default="shapes-tiny@random", help="model spec (timing does not depend on the weights)"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--naive-seconds", type=float, default=120.0, help="time budget of the naive loop")
    add_save_argument(parser)
    args = parser.parse_args()

    from probe_shuffle.order_scores import text_shuffle_test
    from probe_shuffle.perturbations import list_perturbations
    from probe_shuffle.sources import world_pairs

    from probe.session import Session

    session = Session.open(args.model, device=args.device)
    captions = world_pairs(args.n, seed=0).captions
    names = list_perturbations()
    session.encode_text(captions[:64])  # warm both paths up
    session.encode_text(captions[:8], fast=False)

    start = time.perf_counter()
    report = text_shuffle_test(session, captions, names)
    if session.device.type == "cuda":
        torch.cuda.synchronize()
    batched_s = time.perf_counter() - start
    batched = [v.score for item in report.items for v in item.variants]

    naive, done, naive_s = naive_scores(session, captions, names, args.naive_seconds)
    naive_full_s = naive_s / done * len(captions)
    max_diff = max(abs(a - b) for a, b in zip(naive, batched[: len(naive)], strict=True))
    texts = len(captions) + len(batched)
    log(f"model {args.model} on {session.device}, torch threads {torch.get_num_threads()}")
    log(f"{len(captions)} captions x {len(names)} perturbations = {len(batched)} perturbed captions ({texts} texts)")
    log(f"batched (one encode_text call, fast path): {batched_s:.2f} s")
    subsample = "" if done == len(captions) else f" (time-bounded: {done} captions in {naive_s:.1f} s, extrapolated)"
    log(f"naive (per caption, encode_text(fast=False) one text at a time): {naive_full_s:.2f} s{subsample}")
    log(f"speed-up: {naive_full_s / batched_s:.1f}x   max |score difference| over {len(naive)} scores: {max_diff:.2e}")
    results = {
        "model": args.model,
        "device": str(session.device),
        "captions": len(captions),
        "perturbations": len(names),
        "texts": texts,
        "batched_seconds": round(batched_s, 3),
        "naive_seconds": round(naive_full_s, 3),
        "naive_captions_timed": done,
        "speedup": round(naive_full_s / batched_s, 2),
        "max_abs_difference": float(f"{max_diff:.2e}"),
    }
    finish("bench_shuffle", args, results)


if __name__ == "__main__":
    main()
