"""What the Ray engine gains and costs: one small experiment (inversions of the shipped model, one
item per chunk) run with `--engine ray` on 1 and on 2 CPU workers of a local Ray, and with the local
engine for reference. Prints each run's throughput, the 2-worker / 1-worker ratio, and the
coordination per chunk (driver + Ray: dispatch, transfer, writing the files) against the chunk's
compute. Model loads and Ray's start are outside the timings; runs with equal threads per process
are checked equal (and whether another thread count changed any byte is printed).

Run on demand (not by pytest), e.g.
    python benchmarks/bench_ray.py --items 8 --steps 20 --rounds 1
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


def ray_run(plan, folder: Path, workers: int | None, cpus: int, session_options: dict) -> tuple[float, list[dict]]:
    """One timed run on a fresh local Ray of `cpus` cores (the workers' threads: cores / workers);
    Ray's start and the model loads happen before the clock starts."""
    ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    try:
        with RayExecutor(EngineOptions("ray", workers, session=session_options), plan) as ex:
            return timed(plan, folder, executor=ex)
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=8, help="inversions (chunks of one)")
    parser.add_argument("--steps", type=int, default=20, help="optimisation steps per inversion")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each, interleaved (medians reported)")
    parser.add_argument("--gpu", action="store_true", help="one worker per GPU (device auto) instead of CPU runs")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    (root / "exp.yaml").write_text(experiment(args.items, args.steps))
    plan = load_experiment(root / "exp.yaml")
    chunks = len(plan.chunks_for(None))
    device = "auto" if args.gpu else "cpu"
    session_options = {"model": "shapes-tiny", "device": device, "precision": "fp32", "allow_pickle": False}
    cpus = os.cpu_count() or 1
    # (row, workers, Ray's cores): what `--engine ray` does on this machine with 1 and 2 workers (the
    # cores divided between them), and 1 worker on 1 core (scaling at equal threads per worker)
    configs = (
        [("ray-gpus", None, cpus)] if args.gpu else [("ray-1", 1, cpus), ("ray-1x1core", 1, 1), ("ray-2", 2, cpus)]
    )
    local_session = probe.open("shapes-tiny", device=device)
    rows = ["local"] + [c[0] for c in configs]
    seconds: dict[str, list[float]] = {k: [] for k in rows}
    idle: dict[str, list[float]] = {k: [] for k in rows}
    compute: dict[str, list[float]] = {k: [] for k in rows}
    trip: dict[str, list[float]] = {k: [] for k in rows}
    folders: list[Path] = []
    for r in range(args.rounds):  # interleaved, so load from other users of the machine hits each alike
        for key, workers, cores in [("local", 0, cpus), *configs]:
            folder = root / f"{key}-{r}"
            if key == "local":
                wall, stats = timed(plan, folder, session=local_session)
            else:
                wall, stats = ray_run(plan, folder, workers, cores, session_options)
            seconds[key].append(wall)
            compute[key].append(sum(w["seconds"] for w in stats) / chunks)
            # worker time not spent computing, per chunk: dispatch, transfer, the driver's writes, the tail
            idle[key].append(sum(wall - w["seconds"] for w in stats) / chunks)
            trip[key].append(sum(w["overhead"] for w in stats) / chunks)  # Ray's round trip less compute
            folders.append(folder)
    # CPU kernels may round differently with another thread count: runs are compared in groups of
    # equal threads per process (local and ray-1: all cores; ray-1x1core and ray-2: one core each)
    groups: dict[str, list[Path]] = {}
    for folder in folders:
        key = folder.name.rsplit("-", 1)[0]
        threads = "all" if key in ("local", "ray-1", "ray-gpus") else "one"
        groups.setdefault(threads, []).append(folder)
    same = {t: all(snapshot(f) == snapshot(fs[0]) for f in fs[1:]) for t, fs in groups.items()}
    across = snapshot(groups["all"][0]) == snapshot(groups["one"][0]) if len(groups) == 2 else True
    print(f"{len(plan.items)} inversions ({args.steps} steps, 64 px, shapes-tiny), one per chunk; {cpus} CPU cores")
    print(
        f"{'engine':<12} {'s/run':>8} {'items/s':>8} {'compute s/chunk':>16} {'idle s/chunk':>13} "
        f"{'Ray round trip s/chunk':>23}"
    )
    for key, runs in seconds.items():
        wall = statistics.median(runs)
        print(
            f"{key:<12} {wall:8.2f} {len(plan.items) / wall:8.2f} {statistics.median(compute[key]):16.3f} "
            f"{statistics.median(idle[key]):13.3f} {statistics.median(trip[key]):23.4f}"
        )

    def ratio(a: str, b: str) -> float:
        return statistics.median(seconds[b]) / statistics.median(seconds[a])

    if not args.gpu:
        print(f"throughput 2 workers / 1 worker (cores divided, as --engine ray does): {ratio('ray-2', 'ray-1'):.2f}x")
        print(f"throughput 2 workers / 1 worker on 1 core (equal threads): {ratio('ray-2', 'ray-1x1core'):.2f}x")
        print(f"throughput ray 1 worker / local: {ratio('ray-1', 'local'):.2f}x")
    one = "ray-gpus" if args.gpu else "ray-1"  # one worker: every idle second is coordination
    share = statistics.median(idle[one]) / statistics.median(compute[one])
    print(f"coordination (driver + Ray) per chunk / compute per chunk ({one}): {share:.1%}")
    for t, ok in same.items():
        print(f"records and images identical among runs on {t} thread(s) per process: {ok}")
    print(f"identical between {cpus} threads and 1 thread per process: {across}")


if __name__ == "__main__":
    main()
