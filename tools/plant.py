"""Planted bugs: `make plant` (not run by CI). Does the suite catch the bugs people actually write?

Each file in tests/planted/ describes one human-style bug (a dropped normalisation, a cache key built
from too little, a truthiness test where 0 is valid, an escape dropped on one path, ...) as exact
search/replace edits of the source, and names the few test files that should catch it. The bugs are
planted one at a time in a scratch copy of the tree (the checkout is never edited); the named tests
run against each with a basetemp of their own; a bug the tests pass with has *survived*.

    python tools/plant.py                          # every patch in tests/planted/
    python tools/plant.py 03-text-unnormalised     # just these (file names, with or without .yaml)
    python tools/plant.py --list                   # each patch, what it breaks and its tests
    python tools/plant.py --check                  # every patch still applies (exactly once), nothing runs

First the named tests run once on the unpatched copy (a selection that already fails would make every
patch look caught); then each patch. The table (patch, result, minutes) goes to stdout and to
plant-report.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

if not __package__:  # run as a script (python tools/plant.py): the repository root makes `tools` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tools.mutate import copy_tree

ROOT = Path(__file__).resolve().parent.parent
PLANTED = ROOT / "tests" / "planted"
AREAS = (
    "loading",
    "encoding",
    "invert",
    "neighbours",
    "shuffle",
    "audits",
    "report",
    "run",
    "cli",
    "caches",
    "compare",
    "ray",
    "ui",
)


@dataclass
class Edit:
    """Replace the one occurrence of `search` in `file` with `replace`."""

    file: str
    search: str
    replace: str


@dataclass
class Patch:
    """One planted bug: what it is, what a user would get, where it goes and which tests must catch it."""

    name: str
    bug: str
    breaks: str
    area: str
    tests: list[str]
    edits: list[Edit] = field(default_factory=list)


class PatchError(Exception):
    """A patch file that is malformed, or no longer applies to the code."""


def read_patch(path: Path) -> Patch:
    """One patch file (YAML: bug, breaks, area, tests, edits of file/search/replace)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PatchError(f"{path.name}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise PatchError(f"{path.name}: not a mapping")
    missing = [k for k in ("bug", "breaks", "area", "tests", "edits") if not data.get(k)]
    if missing:
        raise PatchError(f"{path.name}: missing {', '.join(missing)}")
    if data["area"] not in AREAS:
        raise PatchError(f"{path.name}: area {data['area']!r} is not one of {', '.join(AREAS)}")
    edits = [Edit(str(e["file"]), str(e["search"]), str(e["replace"])) for e in data["edits"]]
    return Patch(path.stem, str(data["bug"]), str(data["breaks"]), data["area"], [str(t) for t in data["tests"]], edits)


def read_patches(folder: Path = PLANTED, names: list[str] | None = None) -> list[Patch]:
    """Every patch in the folder (by file name), or the named ones."""
    paths = sorted(folder.glob("*.yaml"))
    if names:
        wanted = {n.removesuffix(".yaml") for n in names}
        unknown = wanted - {p.stem for p in paths}
        if unknown:
            raise PatchError(f"no such patch: {sorted(unknown)[0]} (see --list)")
        paths = [p for p in paths if p.stem in wanted]
    return [read_patch(p) for p in paths]


def apply(patch: Patch, tree: Path) -> dict[Path, str]:
    """Plant the patch in `tree`; returns the files' original texts, to put back. A search text that is
    not found exactly once is an error: the patch has gone stale and must be rewritten."""
    originals: dict[Path, str] = {}
    for edit in patch.edits:
        path = tree / edit.file
        if not path.is_file():
            raise PatchError(f"{patch.name}: no file {edit.file}")
        text = originals.get(path) or path.read_text(encoding="utf-8")
        originals.setdefault(path, text)
        current = path.read_text(encoding="utf-8")
        count = current.count(edit.search)
        if count != 1:
            raise PatchError(f"{patch.name}: the search text occurs {count} times in {edit.file} (need exactly 1)")
        path.write_text(current.replace(edit.search, edit.replace), encoding="utf-8")
    return originals


def restore(originals: dict[Path, str]) -> None:
    for path, text in originals.items():
        path.write_text(text, encoding="utf-8")


def check_tests_exist(patch: Patch, root: Path = ROOT) -> None:
    for test in patch.tests:
        if not (root / test.split("::")[0]).is_file():
            raise PatchError(f"{patch.name}: no test file {test.split('::')[0]}")


def run_tests(tree: Path, tests: list[str], basetemp: Path) -> tuple[int, str]:
    """pytest over the selection inside the tree (its packages first on the path); (status, the first
    failing test, or the last lines of the output when none failed)."""
    env = {
        **os.environ,
        # no .pyc: a patched file of the same size written within the same second would reuse a stale one
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": os.pathsep.join([str(tree), str(tree / "plugins")]),
    }
    shutil.rmtree(basetemp, ignore_errors=True)
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", f"--basetemp={basetemp}", *tests]
    done = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
    shutil.rmtree(basetemp, ignore_errors=True)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    # pytest's summary line: "FAILED tests/x.py::test[id with spaces] - message"
    failed = [line.split(" ", 1)[1].split(" - ")[0] for line in lines if line.startswith(("FAILED ", "ERROR "))]
    return done.returncode, failed[0] if failed else " / ".join(lines[-3:])


@dataclass
class Result:
    patch: Patch
    killed: bool
    minutes: float
    detail: str


def report(results: list[Result], total_minutes: float, path: Path) -> str:
    lines = [
        "# Planted bugs",
        "",
        "| patch | area | what it breaks | result | minutes |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        verdict = f"killed by `{r.detail}`" if r.killed else "**survived**"
        lines.append(f"| {r.patch.name} | {r.patch.area} | {r.patch.breaks} | {verdict} | {r.minutes:.1f} |")
    killed = sum(r.killed for r in results)
    lines += ["", f"{killed} of {len(results)} killed; {total_minutes:.1f} min in all."]
    survivors = [r for r in results if not r.killed]
    if survivors:
        lines += ["", "## Survivors", ""]
        lines += [f"- {r.patch.name}: {r.patch.bug} (tests: {' '.join(r.patch.tests)}): {r.detail}" for r in survivors]
    text = "\n".join(lines) + "\n"
    path.write_text(text, encoding="utf-8")
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("patches", nargs="*", help="patch names (default: every file in tests/planted/)")
    parser.add_argument("--list", action="store_true", help="print each patch and its tests, run nothing")
    parser.add_argument("--check", action="store_true", help="check that every patch applies, run nothing")
    parser.add_argument("--no-baseline", action="store_true", help="skip the run of the tests on unpatched code")
    parser.add_argument("--tree", type=Path, help="scratch copy to plant in (default: a new temporary folder)")
    parser.add_argument("--report", type=Path, default=ROOT / "plant-report.md")
    args = parser.parse_args()
    try:
        patches = read_patches(names=args.patches)
    except PatchError as exc:
        parser.error(str(exc))
    if args.list:
        for p in patches:
            print(f"{p.name} [{p.area}]: {p.bug}\n    breaks: {p.breaks}\n    tests: {' '.join(p.tests)}")
        return 0
    scratch = Path(tempfile.mkdtemp(prefix="plant-")) if args.tree is None else args.tree.resolve()
    tree = scratch / "tree"
    copy_tree(tree)
    try:
        for p in patches:  # every patch applies and names real tests before anything runs
            check_tests_exist(p, tree)
            restore(apply(p, tree))
        if args.check:
            print(f"{len(patches)} patches apply")
            return 0
        if not args.no_baseline:
            selection = list(dict.fromkeys(t for p in patches for t in p.tests))
            start = time.monotonic()
            status, tail = run_tests(tree, selection, scratch / "pytest-tmp")
            minutes = (time.monotonic() - start) / 60
            print(f"baseline: {len(selection)} selections, status {status}, {minutes:.1f} min", flush=True)
            if status != 0:
                print(f"the tests fail on unpatched code: {tail}", file=sys.stderr)
                return 1
        results = []
        start_all = time.monotonic()
        for p in patches:
            start = time.monotonic()
            originals = apply(p, tree)
            try:
                status, tail = run_tests(tree, p.tests, scratch / "pytest-tmp")
            finally:
                restore(originals)
            result = Result(p, status != 0, (time.monotonic() - start) / 60, tail)
            results.append(result)
            verdict = f"killed by {tail}" if result.killed else "SURVIVED"
            print(f"{p.name}: {verdict} ({result.minutes:.1f} min)", flush=True)
        print(report(results, (time.monotonic() - start_all) / 60, args.report))
        return 0 if all(r.killed for r in results) else 1
    except PatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.tree is None:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
