"""Inversion step time of a real-size tower on this machine against its matmul floor, and images/hour.

Run on demand (not by pytest), e.g.
    python benchmarks/bench_tower_floor.py --model ViT-B-16@random --steps 5 [--save]
For each precision (fp32, bf16 autocast) it measures, in one process:
  - the machine's dense matmul throughput (1024 x 1024 products, median of several);
  - the FLOPs of one inversion step (forward + backward of every augmented view, counted by
    torch's FlopCounterMode) for the `default` and `paper` presets;
  - the median seconds per step (after a warm-up step) of each preset on one prompt;
and prints floor = FLOPs / matmul throughput, the ratio step time / floor, and images per hour
(`default`: its steps per image; `paper`: the authors' 3,400 steps, extrapolated per step).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import torch
from record import add_save_argument, finish, log


def matmul_gflops(dtype: torch.dtype, n: int = 1024, reps: int = 20) -> float:
    """Median GFLOP/s of an n x n matrix product (under autocast for bf16, as the session runs)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    times = []
    for _ in range(reps + 2):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            (a @ b).sum().item()
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times[2:]) / 1e9


def step_flops(session, settings) -> float:
    """FLOPs of one optimisation step of one image (all its augmented views, forward and backward)."""
    from probe_invert.render import _Chunk, text_targets
    from torch.utils.flop_counter import FlopCounterMode

    targets = text_targets(session, ["a photo of a dog"])
    chunk = _Chunk([session], [("a photo of a dog", 0)], settings, [targets], None)
    chunk.step(1)  # builds the session's inference-form tower (and its agreement check) outside the count
    counter = FlopCounterMode(display=False)
    with counter:
        chunk.step(2)
    return float(counter.get_total_flops())


def seconds_per_step(session, settings, steps: int) -> float:
    """Median wall seconds per step of one image, the first (warm-up) step left out."""
    from probe_invert.render import invert

    stamps: list[float] = []
    invert(
        session,
        ["a photo of a dog"],
        [0],
        settings.with_overrides(steps=steps + 1, snapshot_every=0),
        on_step=lambda step, cos: stamps.append(time.perf_counter()),
    )
    return statistics.median(b - a for a, b in itertools.pairwise(stamps))


def measure(model: str, precision: str, steps: int) -> dict:
    from probe_invert.settings import load_preset

    from probe.session import Session

    session = Session.open(model, "cpu", precision)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    gflops = matmul_gflops(dtype)
    out = {
        "model": model,
        "precision": precision,
        "threads": torch.get_num_threads(),
        "matmul_gflops": round(gflops, 1),
    }
    for name in ("default", "paper"):
        settings = load_preset(name, batch_size=1)
        # time the step at the model's full input resolution (the schedule's last and most expensive part)
        settings = settings.with_overrides(resize_at=[], size=session.image_size, size_fraction=0)
        flops = step_flops(session, settings)
        seconds = seconds_per_step(session, settings, steps)
        floor = flops / (gflops * 1e9)
        total_steps = load_preset(name).steps
        out[name] = {
            "views": settings.copies,
            "gflop_per_step": round(flops / 1e9, 2),
            "seconds_per_step": round(seconds, 3),
            "floor_seconds": round(floor, 3),
            "ratio_to_floor": round(seconds / floor, 2),
            "steps_per_image": total_steps,
            "images_per_hour": round(3600 / (seconds * total_steps), 2),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-B-16@random")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per preset and precision (after one warm-up)")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    add_save_argument(parser)
    args = parser.parse_args()
    rows = [measure(args.model, p, args.steps) for p in args.precisions]
    for r in rows:
        for name in ("default", "paper"):
            m = r[name]
            log(
                f"{r['model']} {r['precision']:>4} {name:>7}: {m['views']:2d} views, {m['gflop_per_step']:7.1f} "
                "GFLOP/step, "
                f"{m['seconds_per_step']:6.2f} s/step, floor {m['floor_seconds']:5.2f} s at "
                f"{r['matmul_gflops']} GFLOP/s "
                f"-> {m['ratio_to_floor']:.2f}x the floor; {m['images_per_hour']:.2f} images/hour "
                f"({m['steps_per_image']} steps)"
            )
    finish("bench_tower_floor", args, rows)


if __name__ == "__main__":
    main()
