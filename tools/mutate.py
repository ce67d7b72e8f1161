"""Mutation testing of the modules where a silent bug changes results: `make mutate` (not run by CI).

Each module is mutated by mutmut (one small change at a time: an operator, a constant, a
comparison) and its test subset (the fast-tier tests of every test file that imports it) runs
against every mutant; a mutant the tests do not fail
on "survived". Work happens in a scratch copy of the tree (.mutate/tree), so the checkout is never
edited; the copy's packages come first on PYTHONPATH, so the tests import the mutated files.
The surviving mutants (with their diffs) and the kill ratio per module go to mutation-report.md.

    python tools/mutate.py                                  # every module below
    python tools/mutate.py plugins/probe_audit/stats.py     # just these
    python tools/mutate.py --retest plugins/probe_audit/stats.py   # after new tests: its survivors again
    python tools/mutate.py --list                           # each module's test subset (derived from the tests)
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# the modules where a silent bug changes results; each one's test subset is derived (see subset_for)
MODULES: list[str] = [
    "probe/encoding/text.py",
    "probe/encoding/image.py",
    "plugins/probe_invert/transforms.py",
    "plugins/probe_invert/objectives.py",
    "plugins/probe_invert/param.py",
    "plugins/probe_invert/render.py",
    "plugins/probe_neighbours/query.py",
    "plugins/probe_neighbours/index.py",
    "plugins/probe_shuffle/perturbations.py",
    "plugins/probe_run/experiment.py",
    "plugins/probe_audit/stats.py",
]
FAST_TIER = ["-m", "not slow"]  # the slow tier (training, subprocesses, installs) would set a 10x timeout of minutes


def dotted(module: str) -> str:
    """The import name of a module file: probe/encoding/text.py -> probe.encoding.text (plugins/ is on the path)."""
    parts = list(Path(module).with_suffix("").parts)
    parts = parts[1:] if parts[0] == "plugins" else parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path) -> set[str]:
    """Every module a test file imports, anywhere in it (`from A import b` gives A and A.b)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return names


def subset_for(module: str, root: Path = ROOT) -> list[str]:
    """The module's test subset, read from the tests themselves: every test file that imports the
    module by name, less the slow tier. Not kept by hand, so a new test file that imports a module
    joins its mutation run, and a module no test imports is refused rather than run against nothing."""
    name = dotted(module)
    files = sorted(
        path.relative_to(root).as_posix()
        for path in (root / "tests").rglob("test_*.py")
        if name in imported_names(path)
    )
    if not files:
        raise SystemExit(f"no test file imports {name}: write tests for {module} before mutating it")
    return [*files, *FAST_TIER]


def copy_tree(dest: Path) -> None:
    """The tracked and untracked-but-not-ignored files of the checkout, copied to dest (fresh)."""
    shutil.rmtree(dest, ignore_errors=True)
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def _env(tree: Path) -> dict[str, str]:
    # no .pyc files: a mutant of the same size written within the same second would otherwise reuse a stale one
    return {
        **os.environ,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": os.pathsep.join([str(tree), str(tree / "plugins")]),
    }


def _cache(module: str) -> Path:
    """Where one module's mutmut cache is kept between runs."""
    return ROOT / ".mutate" / "caches" / (re.sub(r"[^A-Za-z0-9]+", "-", module) + ".sqlite")


def run_module(tree: Path, module: str, tests: list[str], retest: bool = False) -> None:
    """mutmut over one module with its test subset as the runner, in the module's own cache (so the
    baseline time, which sets the timeout at 10x, is this subset's own). With `retest`, only the
    mutants that survived or timed out in the module's last run are tried again, against the current tests."""
    # a basetemp of its own (per tree): pytest's shared default prunes other runs' temporary folders
    basetemp = tree.parent / f"{tree.name}-pytest-tmp"
    pytest_args = ["-x", "-q", "-p", "no:cacheprovider", f"--basetemp={basetemp}", *tests]
    runner = shlex.join([sys.executable, "tools/mutate.py", "--pytest", *pytest_args])
    base = [
        sys.executable,
        "-m",
        "mutmut",
        "run",
        "--paths-to-mutate",
        module,
        "--runner",
        runner,
        "--tests-dir",
        "tests",
        "--simple-output",
        "--no-progress",
    ]
    (tree / ".mutmut-cache").unlink(missing_ok=True)
    if not retest:
        subprocess.run(base, cwd=tree, env=_env(tree), check=False)
        return
    if not _cache(module).is_file():
        raise SystemExit(f"no earlier run of {module} to retest: run it without --retest first")
    shutil.copy2(_cache(module), tree / ".mutmut-cache")
    # mutmut keeps killed mutants killed and, the tests having changed, tries every other one again
    subprocess.run(base, cwd=tree, env=_env(tree), check=False)


def keep_cache(tree: Path, module: str) -> None:
    _cache(module).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(tree / ".mutmut-cache", _cache(module))


def statuses(tree: Path) -> dict[str, list[int]]:
    """status -> mutant ids, from mutmut's cache of the last module run."""
    out: dict[str, list[int]] = {}
    with sqlite3.connect(tree / ".mutmut-cache") as db:
        for mutant_id, status in db.execute("SELECT id, status FROM Mutant ORDER BY id"):
            out.setdefault(status, []).append(mutant_id)
    return out


def show(tree: Path, mutant_id: int) -> str:
    """The diff of one mutant, as mutmut shows it."""
    text = subprocess.run(
        [sys.executable, "-m", "mutmut", "show", str(mutant_id)], cwd=tree, capture_output=True, text=True
    ).stdout
    return "\n".join(line for line in text.splitlines() if not re.match(r"^(---|\+\+\+) ", line)).strip()


@dataclass
class Outcome:
    """One module's counts and its surviving mutants' diffs."""

    module: str
    killed: int  # the tests failed (mutmut's "killed" and "suspicious": failed, but slowly)
    timeout: int  # the tests ran past 10x their unmutated time (an endless loop, or a busy machine)
    survivors: list[tuple[int, str]]

    @property
    def total(self) -> int:
        return self.killed + self.timeout + len(self.survivors)


def collect(tree: Path, module: str) -> Outcome:
    found = statuses(tree)
    survivors = [(i, show(tree, i)) for i in found.get("bad_survived", [])]
    return Outcome(
        module,
        len(found.get("ok_killed", [])) + len(found.get("ok_suspicious", [])),
        len(found.get("bad_timeout", [])),
        survivors,
    )


def write_report(outcomes: list[Outcome], path: Path, seconds: float, retest: bool = False) -> tuple[int, int]:
    """mutation-report.md: per module killed / total, then every surviving mutant's diff."""
    modules = [o.module for o in outcomes]
    lines = [
        "# Mutation report",
        "",
        f"Command: `python tools/mutate.py {' '.join(modules)}` ({seconds / 60:.1f} min"
        f"{'; survivors of the previous run retested' if retest else ''}).",
        "",
        "| module | tests | killed | timed out | survived | killed or timed out |",
        "|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        ratio = f"{(o.killed + o.timeout) / o.total:.1%}" if o.total else "–"
        tests = " ".join(subset_for(o.module))
        lines.append(f"| {o.module} | {tests} | {o.killed} | {o.timeout} | {len(o.survivors)} | {ratio} |")
    caught, total = sum(o.killed + o.timeout for o in outcomes), sum(o.total for o in outcomes)
    if total:
        lines += ["", f"All listed modules: {caught} of {total} mutants killed or timed out ({caught / total:.1%})."]
    lines += ["", "## Surviving mutants", ""]
    for o in outcomes:
        for mutant_id, diff in o.survivors:
            lines += [f"### {o.module} #{mutant_id}", "", "```diff", diff, "```", ""]
    if not any(o.survivors for o in outcomes):
        lines.append("None.")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return caught, total


def pytest_for_mutmut(args: list[str]) -> int:
    """pytest's exit status as mutmut reads it: mutmut counts only status 1 as "killed", so a mutant
    that breaks an import (pytest's status 2, a collection error) would be reported as surviving."""
    import pytest

    return 0 if pytest.main(args) == 0 else 1


def main() -> int:
    if sys.argv[1:2] == ["--pytest"]:
        return pytest_for_mutmut(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="modules to mutate (default: all of them)")
    parser.add_argument("--report", type=Path, default=ROOT / "mutation-report.md")
    parser.add_argument(
        "--tree",
        type=Path,
        default=ROOT / ".mutate" / "tree",
        help="scratch copy to mutate in (give each of two runs at once its own)",
    )
    parser.add_argument("--list", action="store_true", help="print each module's derived test subset and stop")
    parser.add_argument(
        "--retest",
        action="store_true",
        help="try only the last run's surviving and timed-out mutants again (after adding tests)",
    )
    args = parser.parse_args()
    unknown = [m for m in args.modules if not (ROOT / m).is_file()]
    if unknown:
        parser.error(f"no such module: {unknown[0]} (give a path such as {MODULES[0]})")
    modules = args.modules or list(MODULES)
    if args.list:
        for module in modules:
            print(f"{module}: {shlex.join(subset_for(module))}")
        return 0
    tree = args.tree.resolve()
    copy_tree(tree)
    start = time.monotonic()
    outcomes = []
    for module in modules:
        run_module(tree, module, subset_for(module), args.retest)
        outcomes.append(collect(tree, module))
        keep_cache(tree, module)
    caught, total = write_report(outcomes, args.report, time.monotonic() - start, args.retest)
    print(f"{caught} of {total} mutants killed or timed out; survivors in {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
