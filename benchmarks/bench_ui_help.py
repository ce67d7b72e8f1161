"""What the `ui` plugin costs `probe --help`, side by side in one run: fresh `probe --help` processes
with the plugin loaded (as shipped) and with it off (PROBE_DISABLE_PLUGINS=ui), alternating in every
round; wall and CPU time (user + sys) medians and their ratio. The plugin's module imports typer and
`probe.plugin` only (the web framework loads when `probe ui` runs), so the ratio should be about 1.

Run: python benchmarks/bench_ui_help.py [--runs 21]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from record import add_save_argument, finish, log


def _measure(probe: str, env: dict) -> tuple[float, float]:
    """(wall s, CPU s of that child alone) of one `probe --help` process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([probe, "--help"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("probe --help failed")
    return time.perf_counter() - t0, usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=21)
    add_save_argument(ap)
    args = ap.parse_args()
    probe = shutil.which("probe", path=str(Path(sys.executable).parent)) or "probe"
    base = {k: v for k, v in os.environ.items() if k not in ("PROBE_DISABLE_PLUGINS", "PROBE_LOAD_PLUGINS")}
    ways = {"ui_on": base, "ui_off": {**base, "PROBE_DISABLE_PLUGINS": "ui"}}
    times: dict[str, list[tuple[float, float]]] = {way: [] for way in ways}
    log(f"{args.runs} rounds of `probe --help`, ui plugin on and off; load average {os.getloadavg()[0]:.1f}")
    for _ in range(args.runs):
        for way, env in ways.items():
            times[way].append(_measure(probe, env))
    medians = {
        way: {
            "wall_s": round(statistics.median(w for w, _ in got), 4),
            "cpu_s": round(statistics.median(c for _, c in got), 4),
        }
        for way, got in times.items()
    }
    results: dict[str, Any] = {
        **medians,
        **{f"ratio_{key}": round(medians["ui_on"][key] / medians["ui_off"][key], 3) for key in ("wall_s", "cpu_s")},
    }
    log(f"ui on / off: wall {results['ratio_wall_s']}x, CPU {results['ratio_cpu_s']}x")
    finish("bench_ui_help", args, results)


if __name__ == "__main__":
    main()
