"""Benchmark `probe invert`: default vs paper preset, batched vs one at a time, peak memory per image.

Run on demand (not by pytest), e.g.
    python benchmarks/bench_invert.py --model shapes-tiny --paper-steps 340 [--parts tower memory] [--save]
Every ratio is measured side by side in one run (same process, same load). The paper's 3,400
steps take hours on 2 CPU cores, so --paper-steps runs it shortened (its resolution schedule
scaled to match) and the script prints both that measured run and the per-step extrapolation to
3,400 steps, labelled as such. Batched vs one at a time runs once per precision in
--batch-precisions (fp32 and bf16 autocast by default), every precision in every round.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import torch
from record import add_save_argument, finish

if TYPE_CHECKING:
    from probe.session import Session

PROMPTS = [
    "a red circle",
    "a green square",
    "a blue triangle",
    "a yellow star",
    "a purple cross",
    "an orange ring",
    "a white circle",
    "a black square",
]


def _median_cosine_per_snapshot(session, inversions, match_targets) -> list[tuple[int, float]]:
    """(step, median unaugmented cosine over images) for each snapshot step."""
    from probe_invert.objectives import weighted_cosine

    targets, weights = match_targets
    out = []
    for k, step in enumerate(inversions[0].snapshot_steps):
        images = torch.stack([inv.snapshots[k] for inv in inversions])
        feats = session.encode_image(images).cpu()
        out.append((step, statistics.median(weighted_cosine(feats, targets, weights).tolist())))
    return out


def quality_speed(session, prompts: list[str], paper_steps: int, default_steps: int | None) -> dict:
    from probe_invert.render import invert, text_targets
    from probe_invert.settings import load_preset

    paper = load_preset("paper")
    paper = paper.with_overrides(steps=paper_steps, batch_size=len(prompts))  # resize_at: fractions of the run
    start = time.perf_counter()
    paper_runs = invert(session, prompts, [0], paper)
    paper_seconds = time.perf_counter() - start
    target = statistics.median(r.cosine for r in paper_runs)

    default = load_preset("default", batch_size=len(prompts))
    if default_steps:
        default = default.with_overrides(steps=default_steps)
    every = max(1, default.steps // 20)
    default = default.with_overrides(snapshot_every=every)
    start = time.perf_counter()
    default_runs = invert(session, prompts, [0], default)
    default_seconds = time.perf_counter() - start
    curve = _median_cosine_per_snapshot(session, default_runs, text_targets(session, prompts))
    reached = next((step for step, cos in curve if cos >= target), None)
    per_step = default_seconds / default.steps
    n = len(prompts)
    result: dict[str, Any] = {
        "paper_steps_run": paper_steps,
        "paper_seconds": paper_seconds,
        "paper_median_cosine": target,
        "paper_images_per_minute": 60 * n / paper_seconds,
        "paper_seconds_per_step": paper_seconds / paper_steps,
        "paper_extrapolated_3400_step_seconds": paper_seconds / paper_steps * 3400,
        "default_steps": default.steps,
        "default_seconds": default_seconds,
        "default_final_median_cosine": statistics.median(r.cosine for r in default_runs),
        "default_curve": curve,
        "default_step_reaching_target": reached,
        # a strict lower bound: the whole default run (setup and all its steps) against the paper run
        "speedup_lower_bound_whole_default_run": paper_seconds / default_seconds,
    }
    if reached is not None:
        seconds_to_target = per_step * reached
        result["default_images_per_minute_to_target"] = 60 * n / seconds_to_target
        result["speedup_vs_paper_as_run"] = (
            result["default_images_per_minute_to_target"] / result["paper_images_per_minute"]
        )
        result["speedup_vs_paper_3400_extrapolated"] = result["default_images_per_minute_to_target"] / (
            60 * n / result["paper_extrapolated_3400_step_seconds"]
        )
    return result


def _one_round(session, prompts: list[str], settings) -> dict:
    """One batched run of all prompts, then the same prompts one run each (seconds of both)."""
    from probe_invert.render import invert

    start = time.perf_counter()
    invert(session, prompts, [0], settings)
    batched = time.perf_counter() - start
    start = time.perf_counter()
    for p in prompts:
        invert(session, [p], [0], settings)
    single = time.perf_counter() - start
    return {"batched_seconds": batched, "one_at_a_time_seconds": single, "throughput_ratio": single / batched}


def batched_vs_single(sessions: dict[str, Session], prompts: list[str], steps: int | None, repeats: int) -> dict:
    """Throughput of all prompts in one batch vs the same prompts one at a time, for each session
    (one per precision). Every round runs every session, in reversed order on odd rounds, so drift
    within a round does not always land on the same precision; the median of the per-round ratios
    is the headline. Returns {precision: {rounds, medians, range, ...}}."""
    from probe_invert.render import invert
    from probe_invert.settings import load_preset

    settings = load_preset("default", batch_size=len(prompts))
    if steps:
        settings = settings.with_overrides(steps=steps)
    warm = settings.with_overrides(steps=8, resize_at=[0.25, 0.5, 0.75])  # every resolution, batched and single shapes
    for session in sessions.values():
        invert(session, prompts, [0], warm)
        invert(session, prompts[:1], [0], warm)
    rounds: dict[str, list[dict]] = {name: [] for name in sessions}
    for i in range(repeats):
        order = list(sessions.items())
        for name, session in reversed(order) if i % 2 else order:
            rounds[name].append(_one_round(session, prompts, settings))
    out = {}
    for name, session in sessions.items():
        ratios = [r["throughput_ratio"] for r in rounds[name]]
        out[name] = {
            "steps": settings.steps,
            "images": len(prompts),
            "fast_image_tower": session.fast_image,
            "rounds": rounds[name],
            "throughput_ratio_median": statistics.median(ratios),
            "throughput_ratio_range": [min(ratios), max(ratios)],
            "batched_seconds_median": statistics.median(r["batched_seconds"] for r in rounds[name]),
            "one_at_a_time_seconds_median": statistics.median(r["one_at_a_time_seconds"] for r in rounds[name]),
        }
    return out


def cli_batched_vs_single(model: str, prompts: list[str], device: str, precision: str) -> dict:
    """`probe invert` with all prompts in one command vs one command per prompt, each a fresh process
    that loads the model: what a user pays for running prompts one at a time from the shell."""
    import tempfile
    from pathlib import Path

    probe = str(Path(sys.executable).with_name("probe"))
    with tempfile.TemporaryDirectory() as out:

        def run(name: str, items: list[str]) -> float:
            start = time.perf_counter()
            subprocess.run(
                [
                    probe,
                    "--model",
                    model,
                    "--device",
                    device,
                    "--precision",
                    precision,
                    "--out",
                    f"{out}/{name}",
                    "invert",
                    *items,
                    "--json",
                ],
                check=True,
                capture_output=True,
            )
            return time.perf_counter() - start

        batched = run("batched", prompts)
        single = sum(run(f"one-{i}", [p]) for i, p in enumerate(prompts))
    return {
        "images": len(prompts),
        "batched_seconds": batched,
        "one_command_per_prompt_seconds": single,
        "throughput_ratio": single / batched,
    }


def tower_speed(session, batches: tuple[int, ...] = (4, 32), reps: int = 20) -> dict:
    """Image tower forward + backward to the pixels, ms per image: stock vs inference form, side by side."""
    out = {"fast_image_tower": session.fast_image}
    for b in batches:
        images = torch.rand(b, 3, session.image_size, session.image_size, device=session.device)
        row = {}
        for name, fast in (("stock", False), ("fast", True)):
            times = []
            for i in range(reps + 3):
                x = images.clone().requires_grad_(True)
                start = time.perf_counter()
                session.encode_image(x, grad=True, fast=fast).sum().backward()
                if session.device.type == "cuda":
                    torch.cuda.synchronize()
                if i >= 3:
                    times.append(time.perf_counter() - start)
            row[f"{name}_ms_per_image"] = 1000 * statistics.median(times) / b
        row["speedup"] = row["stock_ms_per_image"] / row["fast_ms_per_image"]
        out[f"batch_{b}"] = row
    return out


def _peak_child(model: str, images: int, steps: int, device: str, precision: str) -> float:
    """Peak memory (MiB) of a fresh process inverting `images` images: VmHWM on CPU (ru_maxrss survives
    exec on Linux, so it would report the parent's peak), or peak CUDA memory."""
    code = f"""
import json, resource, torch
from probe.session import Session
from probe_invert.render import invert
from probe_invert.settings import load_preset
s = Session.open({model!r}, device={device!r}, precision={precision!r})
if s.device.type == "cuda": torch.cuda.reset_peak_memory_stats()
invert(s, ["a red circle"], list(range({images})), load_preset("default", steps={steps}, batch_size={images}))
def hwm():
    try:
        line = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
        return int(line.split()[1]) / 1024
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
peak = torch.cuda.max_memory_allocated() / 2**20 if s.device.type == "cuda" else hwm()
print(json.dumps(peak))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def peak_memory(model: str, steps: int, device: str, precision: str, big: int = 16) -> dict:
    one, many = _peak_child(model, 1, steps, device, precision), _peak_child(model, big, steps, device, precision)
    return {"peak_mib_1_image": one, f"peak_mib_{big}_images": many, "mib_per_extra_image": (many - one) / (big - 1)}


def gpu_paper(steps: int) -> dict:
    """ViT-B-16 (random weights) seconds per image for the paper recipe, bf16 vs fp32 (GPU only)."""
    from probe_invert.render import invert
    from probe_invert.settings import load_preset

    from probe.session import Session

    out = {}
    for precision in ("fp32", "bf16"):
        session = Session.open("ViT-B-16@random", device="cuda", precision=precision)
        settings = load_preset("paper", steps=steps, batch_size=8)  # resize_at: fractions of the run
        invert(session, PROMPTS[:1], [0], settings.with_overrides(steps=2))
        torch.cuda.synchronize()
        start = time.perf_counter()
        invert(session, PROMPTS, [0], settings)
        torch.cuda.synchronize()
        per_image = (time.perf_counter() - start) / len(PROMPTS)
        out[precision] = {
            "seconds_per_image_at_steps": per_image,
            "steps": steps,
            "extrapolated_3400": per_image * 3400 / steps,
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="shapes-tiny")
    ap.add_argument("--device", default="auto")
    ap.add_argument(
        "--precision",
        default="fp32",
        choices=["fp32", "bf16", "fp16"],
        help="precision (autocast) of every part but batched vs single",
    )
    ap.add_argument(
        "--batch-precisions",
        nargs="+",
        default=["fp32", "bf16"],
        choices=["fp32", "bf16", "fp16"],
        help="precisions for batched vs single, each its own session, all run in every round (bf16 on a CPU "
        "without native bf16 is emulated: slow)",
    )
    ap.add_argument("--prompts", type=int, default=8, help="prompts for the batched-vs-single comparison")
    ap.add_argument("--quality-prompts", type=int, default=4, help="prompts for default vs paper")
    ap.add_argument("--paper-steps", type=int, default=340, help="shortened paper run (schedule scaled); 3400 = full")
    ap.add_argument("--default-steps", type=int, default=None)
    ap.add_argument("--batch-steps", type=int, default=None, help="steps for batched vs single (default: the preset's)")
    ap.add_argument("--repeats", type=int, default=3, help="alternating batched/single rounds")
    ap.add_argument("--memory-steps", type=int, default=3)
    ap.add_argument("--parts", nargs="+", default=["quality", "tower", "batch", "cli", "memory", "gpu"])
    add_save_argument(ap)
    args = ap.parse_args()
    from probe.session import Session

    session = Session.open(args.model, device=args.device, precision=args.precision)
    prompts = PROMPTS[: args.prompts]
    report: dict = {"model": session.describe(), "torch_threads": torch.get_num_threads()}
    if "quality" in args.parts:
        report["default_vs_paper"] = quality_speed(
            session, PROMPTS[: args.quality_prompts], args.paper_steps, args.default_steps
        )
    if "tower" in args.parts:
        report["image_tower"] = tower_speed(session)
    if "batch" in args.parts:
        sessions = {
            p: session if p == args.precision else Session.open(args.model, device=args.device, precision=p)
            for p in dict.fromkeys(args.batch_precisions)
        }
        report["batched_vs_single"] = batched_vs_single(sessions, prompts, args.batch_steps, args.repeats)
    if "cli" in args.parts:
        report["cli_batched_vs_one_command_per_prompt"] = cli_batched_vs_single(
            args.model, prompts, args.device, args.precision
        )
    if "memory" in args.parts:
        report["memory"] = peak_memory(args.model, args.memory_steps, args.device, args.precision)
    if "gpu" in args.parts:
        report["gpu_vit_b16_paper"] = gpu_paper(100) if torch.cuda.is_available() else "no GPU here: skipped"
    finish("bench_invert", args, report)


if __name__ == "__main__":
    main()
