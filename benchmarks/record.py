"""A benchmark's JSON document: its results, the command that produced them and the machine it ran on.

Every benchmark prints its document on stdout (its progress lines go to stderr); with `--save` it
also writes benchmarks/results/<name>.json, which `python benchmarks/table.py` renders into the
README's performance table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
LOAD_AT_START = os.getloadavg()[0]


def add_save_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--save", action="store_true", help=f"also write the JSON to {RESULTS.parent.name}/{RESULTS.name}/<name>.json"
    )


def log(text: str) -> None:
    """A progress line for people watching; stdout stays the JSON document alone."""
    print(text, file=sys.stderr, flush=True)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """What the numbers depend on: CPU, cores, GPU, versions, and how busy the machine was."""
    import torch

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "load_average_at_start": round(LOAD_AT_START, 2),
        "load_average_at_end": round(os.getloadavg()[0], 2),
    }


def finish(name: str, args: argparse.Namespace, results: object) -> dict:
    """Print the document (and write it under results/ with --save); returns it."""
    doc = {
        "benchmark": name,
        "command": " ".join(["python", f"benchmarks/{name}.py", *sys.argv[1:]]),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
        "machine": machine(),
        "results": results,
    }
    text = json.dumps(doc, indent=2) + "\n"
    print(text, end="")
    if getattr(args, "save", False):
        RESULTS.mkdir(exist_ok=True)
        tmp = RESULTS / f".{name}.json.tmp"
        tmp.write_text(text)
        tmp.replace(RESULTS / f"{name}.json")
    return doc
