"""Mutation testing of the modules where a silent bug changes results: `make mutate` (not run by CI).

Each module is mutated by mutmut (one small change at a time: an operator, a constant, a
comparison) and its fast test subset runs against every mutant; a mutant the tests do not fail
on "survived". Work happens in a scratch copy of the tree (.mutate/tree), so the checkout is never
edited; the copy's packages come first on PYTHONPATH, so the tests import the mutated files.
The surviving mutants (with their diffs) and the kill ratio per module go to mutation-report.md.

    python tools/mutate.py                                  # every module below
    python tools/mutate.py plugins/probe_audit/stats.py     # just these
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# module -> its fast test subset (the tests that exercise it without training or the full CLI)
MODULES: dict[str, list[str]] = {
    "probe/text_encoding.py": ["tests/core/test_text_encoding.py", "tests/core/test_text_snapshot.py"],
    "probe/image_encoding.py": ["tests/core/test_image_encoding.py"],
    "plugins/probe_invert/transforms.py": ["tests/invert/test_parts.py"],
    "plugins/probe_invert/objectives.py": ["tests/invert/test_parts.py"],
    "plugins/probe_invert/param.py": ["tests/invert/test_parts.py"],
    "plugins/probe_invert/render.py": ["tests/invert/test_render.py"],
    "plugins/probe_neighbours/query.py": ["tests/neighbours/test_neighbours_query.py"],
    "plugins/probe_neighbours/index.py": ["tests/neighbours/test_neighbours_index.py"],
    "plugins/probe_neighbours/prefilter.py": ["tests/neighbours/test_prefilter.py"],
    "plugins/probe_shuffle/perturbations.py": ["tests/shuffle/test_perturbations.py"],
    "plugins/probe_audit/experiment.py": ["tests/audit/test_experiment.py"],
    "plugins/probe_audit/stats.py": ["tests/audit/test_stats.py"],
}


def copy_tree(dest: Path) -> None:
    """The tracked and untracked-but-not-ignored files of the checkout, copied to dest (fresh)."""
    shutil.rmtree(dest, ignore_errors=True)
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def run_module(tree: Path, module: str, tests: list[str]) -> None:
    """mutmut over one module with its test subset as the runner (results land in tree/.mutmut-cache)."""
    runner = f"{sys.executable} -m pytest -x -q -p no:cacheprovider {' '.join(tests)}"
    # no .pyc files: a mutant of the same size written within the same second would otherwise reuse a stale one
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": os.pathsep.join([str(tree), str(tree / "plugins")])}
    # a generous base time: the first import of torch dominates a test run and varies on a busy machine
    cmd = [sys.executable, "-m", "mutmut", "run", "--paths-to-mutate", module, "--runner", runner,
           "--tests-dir", "tests", "--test-time-base", "60", "--simple-output", "--no-progress"]
    subprocess.run(cmd, cwd=tree, env=env, check=False)


def results(tree: Path) -> dict[str, dict[str, list[int]]]:
    """file -> status -> mutant ids, read from mutmut's cache."""
    out: dict[str, dict[str, list[int]]] = {}
    with sqlite3.connect(tree / ".mutmut-cache") as db:
        rows = db.execute("SELECT SourceFile.filename, Mutant.id, Mutant.status FROM Mutant "
                          "JOIN Line ON Mutant.line = Line.id JOIN SourceFile ON Line.sourcefile = SourceFile.id").fetchall()
    for filename, mutant_id, status in rows:
        out.setdefault(filename, {}).setdefault(status, []).append(mutant_id)
    return out


def show(tree: Path, mutant_id: int) -> str:
    """The diff of one mutant, as mutmut shows it."""
    text = subprocess.run([sys.executable, "-m", "mutmut", "show", str(mutant_id)], cwd=tree, capture_output=True, text=True).stdout
    return "\n".join(line for line in text.splitlines() if not re.match(r"^(---|\+\+\+) ", line)).strip()


def write_report(tree: Path, modules: list[str], path: Path, seconds: float) -> tuple[int, int]:
    """mutation-report.md: per module killed / total, then every surviving mutant's diff."""
    found = results(tree)
    lines = ["# Mutation report", "", f"Command: `python tools/mutate.py {' '.join(modules)}` ({seconds / 60:.1f} min).", "",
             "| module | tests | killed | survived | timeout / suspicious | kill ratio |", "|---|---|---|---|---|---|"]
    killed_all = total_all = 0
    survivors: list[tuple[str, int]] = []
    for module in modules:
        by_status = found.get(module, {})
        killed = len(by_status.get("ok_killed", []))
        slow = len(by_status.get("bad_timeout", [])) + len(by_status.get("ok_suspicious", []))
        survived = by_status.get("bad_survived", [])
        total = killed + slow + len(survived)
        killed_all, total_all = killed_all + killed + slow, total_all + total
        ratio = f"{(killed + slow) / total:.1%}" if total else "–"
        lines.append(f"| {module} | {', '.join(MODULES[module])} | {killed} | {len(survived)} | {slow} | {ratio} |")
        survivors += [(module, i) for i in sorted(survived)]
    if total_all:
        lines += ["", f"All listed modules: {killed_all} of {total_all} mutants killed ({killed_all / total_all:.1%}; "
                      "a timeout or a suspiciously slow run counts as killed)."]
    lines += ["", "## Surviving mutants", ""]
    for module, mutant_id in survivors:
        lines += [f"### {module} #{mutant_id}", "", "```diff", show(tree, mutant_id), "```", ""]
    if not survivors:
        lines.append("None.")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return killed_all, total_all


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="modules to mutate (default: all of them)")
    parser.add_argument("--report", type=Path, default=ROOT / "mutation-report.md")
    args = parser.parse_args()
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        parser.error(f"no test subset for {unknown[0]}; known modules: {', '.join(MODULES)}")
    modules = args.modules or list(MODULES)
    tree = ROOT / ".mutate" / "tree"
    copy_tree(tree)
    start = time.monotonic()
    for module in modules:
        run_module(tree, module, MODULES[module])
    killed, total = write_report(tree, modules, args.report, time.monotonic() - start)
    print(f"{killed} of {total} mutants killed; survivors in {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
