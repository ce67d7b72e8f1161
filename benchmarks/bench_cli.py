"""What the `probe` entry point's exit and argument handling cost or save, side by side in one run.

  exit  Short commands in fresh processes, each run two ways in every round: as shipped (once torch
        is loaded, `main` runs the atexit handlers, flushes and leaves with `os._exit`, skipping the
        interpreter's teardown of torch and friends), and with a plain `SystemExit` instead (the
        interpreter's full teardown). Wall time and CPU time (user + sys) of each process, medians.
  argv  Global options written after the command name are moved in front of it before click parses
        them (`probe neighbours "a star" -m MODEL`). Its cost: the rewrite alone, timed in-process on
        a long command line, and the same command with `-m` after vs before the command name.

Run: python benchmarks/bench_cli.py [--parts exit argv] [--runs 5] [--big] [--save]
`--big` adds `probe --model ViT-B-16@random neighbours ... --vocab english` (a 49,882-word index;
its first run embeds the list, minutes on 2 cores). Caches go to a throwaway folder unless
--cache-dir is given.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from record import add_save_argument, finish, log

# The shipped entry point, or the same with the interpreter's normal exit in place of the fast one.
ENTRY = """
import sys
from probe.cli import app
if sys.argv.pop(1) == "plain":
    def plain_exit(code):
        if code is not None and not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
        raise SystemExit(code or 0)
    app._exit = plain_exit
app.main()
"""


def _measure(cmd: list[str], env: dict) -> tuple[float, float, int, str]:
    """(wall s, CPU s (user + sys) of that child alone, exit code, stderr tail) of one fresh process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None  # stderr=PIPE
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    return wall, usage.ru_utime + usage.ru_stime, os.waitstatus_to_exitcode(status), err.decode()[-400:]


def _image(folder: Path) -> Path:
    """A 64x64 PNG for `probe score`."""
    from PIL import Image

    path = folder / "red.png"
    Image.new("RGB", (64, 64), (220, 30, 30)).save(path)
    return path


def _commands(big: bool, folder: Path) -> list[list[str]]:
    cases = [
        ["--model", "shapes-tiny", "neighbours", "a red star", "--k", "10"],
        ["--model", "shapes-tiny", "score", str(_image(folder)), "-p", "a red star", "-p", "a blue circle"],
    ]
    if big:
        cases.append(["--model", "ViT-B-16@random", "neighbours", "a famous actor", "--k", "10", "--vocab", "english"])
    return cases


def bench_exit(runs: int, big: bool, folder: Path) -> list[dict]:
    env = dict(os.environ)
    out = []
    for args in _commands(big, folder):
        shown = "probe " + " ".join(a if " " not in a and "/" not in a else repr(Path(a).name) for a in args)
        first = _measure([sys.executable, "-c", ENTRY, "fast", *args], env)  # builds the index and text snapshot
        if first[2] != 0:
            log(f"[exit] {shown} failed: {first[3]}")
            continue
        rows = []
        for r in range(runs):
            ways = ("fast", "plain") if r % 2 == 0 else ("plain", "fast")  # alternate which goes first
            got = {way: _measure([sys.executable, "-c", ENTRY, way, *args], env) for way in ways}
            if any(g[2] != 0 for g in got.values()):
                raise SystemExit(f"{shown} failed: {got}")
            rows.append((got["fast"][0], got["plain"][0], got["fast"][1], got["plain"][1]))
        fast_wall, plain_wall, fast_cpu, plain_cpu = (statistics.median(c) for c in zip(*rows, strict=True))
        saved = plain_wall - fast_wall
        log(
            f"[exit] `{shown}`, fresh processes, medians of {runs} rounds: fast exit wall {fast_wall:.2f} s "
            f"(CPU {fast_cpu:.2f} s), plain exit wall {plain_wall:.2f} s (CPU {plain_cpu:.2f} s): saves "
            f"{saved:.2f} s wall ({saved / plain_wall:.0%} of the plain run), {plain_cpu - fast_cpu:.2f} s CPU"
        )
        out.append(
            {
                "command": shown,
                "rounds": runs,
                "fast_exit_wall_seconds": round(fast_wall, 3),
                "plain_exit_wall_seconds": round(plain_wall, 3),
                "fast_exit_cpu_seconds": round(fast_cpu, 3),
                "plain_exit_cpu_seconds": round(plain_cpu, 3),
                "saved_wall_seconds": round(saved, 3),
                "saved_share_of_plain": round(saved / plain_wall, 3),
            }
        )
    return out


def bench_argv(runs: int) -> dict:
    import typer
    from typer._click.core import Context

    from probe.cli.app import build_app, hoist_global_options

    command = typer.main.get_command(build_app())
    ctx = Context(command, info_name="probe")
    line = ["invert", "a red star", "a blue circle", "--steps", "8", "-o", "out", "--seed", "3", "-m", "shapes-tiny"]
    line += ["--device", "cpu", "--preset", "default"]
    hoist_global_options(command, ctx, list(line))
    n = 2000
    t0 = time.perf_counter()
    for _ in range(n):
        hoist_global_options(command, ctx, list(line))
    per_call_us = (time.perf_counter() - t0) / n * 1e6
    log(f"[argv] rewriting a {len(line)}-token `probe invert` line: {per_call_us:.1f} us per call (in-process)")

    env = dict(os.environ)
    before = [sys.executable, "-c", ENTRY, "fast", "--model", "shapes-tiny", "neighbours", "a red star", "--k", "10"]
    after = [sys.executable, "-c", ENTRY, "fast", "neighbours", "a red star", "--k", "10", "--model", "shapes-tiny"]
    _measure(before, env)
    rows = []
    for r in range(runs):
        ways = (before, after) if r % 2 == 0 else (after, before)
        got = {id(w): _measure(w, env) for w in ways}
        if any(g[2] != 0 for g in got.values()):
            raise SystemExit(f"argv runs failed: {got}")
        rows.append((got[id(before)][0], got[id(after)][0]))
    wall_before, wall_after = (statistics.median(c) for c in zip(*rows, strict=True))
    log(
        f"[argv] `probe --model shapes-tiny neighbours ...` {wall_before:.2f} s vs `probe neighbours ... --model "
        f"shapes-tiny` {wall_after:.2f} s (medians of {runs} rounds; the difference is noise: the rewrite costs "
        f"{per_call_us:.0f} us)"
    )
    return {
        "rewrite_us_per_call": round(per_call_us, 1),
        "tokens": len(line),
        "model_before_command_wall_seconds": round(wall_before, 3),
        "model_after_command_wall_seconds": round(wall_after, 3),
        "rounds": runs,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", nargs="+", default=["exit", "argv"], choices=["exit", "argv"])
    ap.add_argument("--runs", type=int, default=5, help="rounds per command (each runs both ways)")
    ap.add_argument("--big", action="store_true", help="add ViT-B-16@random with the 49,882-word English index")
    ap.add_argument("--cache-dir", default=None, help="cache folder (default: a throwaway one)")
    add_save_argument(ap)
    args = ap.parse_args()
    os.environ["PROBE_CACHE_DIR"] = args.cache_dir or tempfile.mkdtemp(prefix="bench-cli-")
    folder = Path(tempfile.mkdtemp(prefix="bench-cli-files-"))
    os.chdir(folder)  # outputs a command writes stay out of the checkout
    log(f"cache folder {os.environ['PROBE_CACHE_DIR']}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    results: dict[str, object] = {}
    if "exit" in args.parts:
        results["exit"] = bench_exit(args.runs, args.big, folder)
    if "argv" in args.parts:
        results["argv"] = bench_argv(args.runs)
    finish("bench_cli", args, results)


if __name__ == "__main__":
    main()
