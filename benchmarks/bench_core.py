"""Core benchmarks: exact fast text encoding vs stock encode_text, and `probe --help` wall time.

Run: python benchmarks/bench_core.py [--words 2048] [--stock-limit 2048] [--models ViT-B-16@random shapes-tiny] [--save]
Ratios are measured side by side in one run on the same machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from record import add_save_argument, finish, log


def words(n: int) -> list[str]:
    from wordfreq import top_n_list

    return top_n_list("en", n)


def bench_text(model: str, vocab: list[str], stock_limit: int) -> dict:
    import torch

    from probe.session import Session

    session = Session.open(model, device="cpu")
    t0 = time.perf_counter()
    fast = session.encode_text(vocab)
    t_fast = time.perf_counter() - t0
    sub = vocab[:stock_limit]
    t0 = time.perf_counter()
    stock = session.encode_text(sub, fast=False)
    t_stock = (time.perf_counter() - t0) * len(vocab) / len(sub)
    delta = (fast[: len(sub)] - stock).abs().max().item()
    note = "" if len(sub) == len(vocab) else f" (stock timed on {len(sub)} words, scaled x{len(vocab) / len(sub):.1f})"
    log(
        f"{model:>20}: {len(vocab)} words  fast {t_fast:7.2f} s   stock {t_stock:7.2f} s{note}   "
        f"speed-up {t_stock / t_fast:5.1f}x   max|d| {delta:.2e}   threads {torch.get_num_threads()}"
    )
    return {
        "model": model,
        "words": len(vocab),
        "stock_timed_words": len(sub),
        "fast_seconds": round(t_fast, 3),
        "stock_seconds": round(t_stock, 3),
        "speedup": round(t_stock / t_fast, 2),
        "max_abs_difference": float(f"{delta:.2e}"),
        "threads": torch.get_num_threads(),
    }


def bench_help(runs: int = 5) -> dict:
    exe = os.path.join(os.path.dirname(sys.executable), "probe")
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([exe, "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    code = (
        "import sys; from probe.cli.app import build_app; from typer.testing import CliRunner; "
        "CliRunner().invoke(build_app(), ['--help']); print('torch' in sys.modules)"
    )
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip()
    median = sorted(times)[runs // 2]
    log(f"probe --help: median {median:.3f} s over {runs} runs (goal < 0.6 s); torch imported: {imported}")
    return {"runs": runs, "median_seconds": round(median, 3), "torch_imported": imported == "True"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--words", type=int, default=2048)
    parser.add_argument("--stock-limit", type=int, default=2048, help="time the stock path on at most this many words")
    parser.add_argument("--models", nargs="+", default=["ViT-B-16@random", "shapes-tiny"])
    add_save_argument(parser)
    args = parser.parse_args()
    help_time = bench_help()
    vocab = words(args.words)
    text = [bench_text(model, vocab, args.stock_limit) for model in args.models]
    finish("bench_core", args, {"help": help_time, "encode_text": text})


if __name__ == "__main__":
    main()
