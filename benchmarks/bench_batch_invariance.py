"""What batch-invariant inversion costs on CPU: step time of a chunk whose images go through the
model one image's copies per call (what `probe invert` does on CPU, so an image never depends on its
batch) against one call for the whole chunk (faster, but rounding depends on the chunk size).

Run on demand (not by pytest), e.g.
    python benchmarks/bench_batch_invariance.py --images 16 --rounds 3
Prints the median seconds per step of each at the model's full input size, and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

from probe_invert import render
from probe_invert.render import _Chunk, text_targets
from probe_invert.settings import load_preset

import probe


def _one_call(model, views, rows, grad=False):
    return model.encode_image(views, grad=grad)


def step_seconds(session, settings, items, encode, steps: int) -> float:
    """Median seconds per step after the resolution schedule has reached the model's input size."""
    render._encode_per_image, saved = encode, render._encode_per_image
    try:
        targets = text_targets(session, [p for p, _ in items])
        chunk = _Chunk([session], items, settings, [targets], None)
        for step in sorted(chunk.sizes):  # every resize, so the timed steps run at full size
            chunk.step(step)
        first = max(chunk.sizes, default=0) + 1
        times = []
        for step in range(first, first + steps):
            start = time.perf_counter()
            chunk.step(step)
            times.append(time.perf_counter() - start)
        return statistics.median(times)
    finally:
        render._encode_per_image = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="shapes-tiny")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    session = probe.open(args.model, device="cpu")
    settings = load_preset("default")
    items = [("a red star", seed) for seed in range(args.images)]
    per_image, one_call = [], []
    for _ in range(args.rounds):  # interleaved, so load on the machine hits both alike
        per_image.append(step_seconds(session, settings, items, render._encode_per_image, args.steps))
        one_call.append(step_seconds(session, settings, items, _one_call, args.steps))
    a, b = statistics.median(per_image), statistics.median(one_call)
    print(f"{args.images} images x {settings.copies} copies, {args.model}, CPU, {args.rounds} rounds")
    print(f"per image (batch-invariant): {a:.3f} s/step   one call per chunk: {b:.3f} s/step   ratio {a / b:.2f}x")


if __name__ == "__main__":
    main()
