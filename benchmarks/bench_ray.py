"""What the Ray engine gains and costs: one small experiment (inversions of the shipped model, one
item per chunk) run with `--engine ray` on 1 and on 2 CPU workers of a local Ray, and with the local
engine for reference. Prints each run's throughput, the 2-worker / 1-worker ratio, and the
coordination per chunk (driver + Ray: dispatch, transfer, writing the files) against the chunk's
compute. Model loads and Ray's start are outside the timings; every run's folder is checked equal.

Run on demand (not by pytest), e.g.
    python benchmarks/bench_ray.py --items 8 --steps 20 --rounds 2
(`--gpu`: one worker per visible GPU instead of the CPU runs.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import ray
from probe_run.engines import EngineOptions
from probe_run.experiment import load_experiment
from probe_run.ray_engine import RayExecutor
from probe_run.runner import run_plan

import probe


def experiment(items: int, steps: int) -> str:
    seeds = f"0-{items // 2 - 1}"
    return (
        "name: bench-ray\nsteps:\n"
        f"  - invert: {{prompts: [a red star, a blue circle], seeds: {seeds}, "
        f"settings: {{steps: {steps}, size: 64, copies: 1}}, batch: 1}}\n"
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    """Records (less timings) and images: what must match between engines."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and rel.startswith("items/"):
            record = json.loads(path.read_text())
            record.pop("seconds")
            out[rel] = json.dumps(record, sort_keys=True).encode()
        elif path.is_file() and rel.startswith("images/"):
            out[rel] = path.read_bytes()
    return out


def timed(plan, folder: Path, executor=None, session=None) -> tuple[float, list[dict]]:
    start = time.perf_counter()
    result = run_plan(plan, folder, session, (lambda spec: session) if session else None, executor=executor)
    return time.perf_counter() - start, result.workers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=8, help="inversions (chunks of one)")
    parser.add_argument("--steps", type=int, default=20, help="optimisation steps per inversion")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each, interleaved (medians reported)")
    parser.add_argument("--gpu", action="store_true", help="one worker per GPU (device auto) instead of CPU runs")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    (root / "exp.yaml").write_text(experiment(args.items, args.steps))
    plan = load_experiment(root / "exp.yaml")
    chunks = len(plan.chunks_for(None))
    device = "auto" if args.gpu else "cpu"
    session_options = {"model": "shapes-tiny", "device": device, "precision": "fp32", "allow_pickle": False}
    cpus = os.cpu_count() or 1
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    gpus = int(ray.cluster_resources().get("GPU", 0))
    counts = [None] if args.gpu else [1, 2]
    local_session = probe.open("shapes-tiny", device=device)
    seconds: dict[str, list[float]] = {"local": []} | {f"ray-{n or gpus}": [] for n in counts}
    overhead: dict[str, list[float]] = {k: [] for k in seconds}
    trip: dict[str, list[float]] = {k: [] for k in seconds}
    compute: dict[str, list[float]] = {k: [] for k in seconds}
    folders: list[Path] = []
    try:
        for r in range(args.rounds):  # interleaved, so load from other users of the machine hits each alike
            folder = root / f"local-{r}"
            wall, workers = timed(plan, folder, session=local_session)
            seconds["local"].append(wall)
            compute["local"].append(sum(w["seconds"] for w in workers) / chunks)
            overhead["local"].append((wall - sum(w["seconds"] for w in workers)) / chunks)
            trip["local"].append(0.0)
            folders.append(folder)
            for n in counts:
                key = f"ray-{n or gpus}"
                with RayExecutor(EngineOptions("ray", n, session=session_options), plan) as ex:  # models load here
                    folder = root / f"{key}-{r}"
                    wall, workers = timed(plan, folder, executor=ex)
                seconds[key].append(wall)
                busy = sum(w["seconds"] for w in workers)
                compute[key].append(busy / chunks)
                # worker time not spent computing, per chunk: dispatch, transfer, the driver's writes, the tail
                overhead[key].append(sum(wall - w["seconds"] for w in workers) / chunks)
                trip[key].append(sum(w["overhead"] for w in workers) / chunks)  # Ray's round trip less compute
                folders.append(folder)
    finally:
        ray.shutdown()
    reference = snapshot(folders[0])
    same = all(snapshot(f) == reference for f in folders[1:])
    print(f"{len(plan.items)} inversions ({args.steps} steps, 64 px, shapes-tiny), one per chunk; {cpus} CPU cores")
    print(
        f"{'engine':<10} {'s/run':>8} {'items/s':>8} {'compute s/chunk':>16} {'idle s/chunk':>13} "
        f"{'Ray round trip s/chunk':>23}"
    )
    for key, runs in seconds.items():
        wall = statistics.median(runs)
        print(
            f"{key:<10} {wall:8.2f} {len(plan.items) / wall:8.2f} {statistics.median(compute[key]):16.3f} "
            f"{statistics.median(overhead[key]):13.3f} {statistics.median(trip[key]):23.4f}"
        )
    if not args.gpu:
        one, two = statistics.median(seconds["ray-1"]), statistics.median(seconds["ray-2"])
        print(f"throughput 2 workers / 1 worker: {one / two:.2f}x")
        print(f"throughput ray 1 worker / local: {statistics.median(seconds['local']) / one:.2f}x")
    ray_key = next(k for k in seconds if k.startswith("ray-"))  # one worker: every idle second is coordination
    share = statistics.median(overhead[ray_key]) / statistics.median(compute[ray_key])
    print(f"coordination (driver + Ray) per chunk / compute per chunk ({ray_key}): {share:.1%}")
    print(f"every run's records and images identical: {same}")


if __name__ == "__main__":
    main()
