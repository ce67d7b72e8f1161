"""Shapes-world render speed (goal: >= 1,000 scenes/s on 2 cores), measured, not asserted.

Reports wall-clock and CPU-time throughput for batches of fresh scenes at 64x64 (best of 3), so a
busy machine shows up as a gap between the two.

Run: python benchmarks/bench_world.py [--scenes 512] [--threads 2] [--save]
"""

from __future__ import annotations

import argparse
import time

import torch
from record import add_save_argument, finish, log

from probe.world.render import render
from probe.world.scenes import sample


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    add_save_argument(ap)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    scenes = sample(args.scenes, seed=1).scenes
    render(scenes.select(slice(0, 8)))  # warm-up
    wall, cpu = [], []
    for _ in range(3):
        w, c = time.perf_counter(), time.process_time()
        render(scenes)
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    log(
        f"render {args.scenes} scenes 64x64, {args.threads} threads: "
        f"{args.scenes / min(wall):,.0f} scenes/s wall, {args.scenes / min(cpu):,.0f} scenes per CPU-second (goal >= "
        "1,000/s)"
    )
    results = {
        "scenes": args.scenes,
        "size": 64,
        "threads": args.threads,
        "scenes_per_second_wall": round(args.scenes / min(wall)),
        "scenes_per_cpu_second": round(args.scenes / min(cpu)),
    }
    finish("bench_world", args, results)


if __name__ == "__main__":
    main()
