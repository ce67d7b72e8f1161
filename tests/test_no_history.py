"""The project's documents, comments and docstrings speak of the product and its users only.

Development history (numbered work sessions, which machines the work borrowed, what the issue
tracker asked) belongs in CHANGELOG.md; every other tracked text file is scanned for it. The
patterns below match spaces with a whitespace class, so this file (scanned too) does not hold the
phrases it looks for.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SUFFIXES = {".md", ".py", ".yaml", ".sh", ".toml"}
SKIPPED = {"CHANGELOG.md"}
HISTORY = [
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        r"\bsessions?\s\d",
        r"\bthis\ssession\b",
        r"\bearlier\ssession",
        r"\bin\ssession\b",
        r"\bwas\slent\b",
        r"no\sGPU\swas\s(lent|available)\sto\sthis\swork",
        r"\bthe\sissue\s(says|asks)",
        r"\bthe\sissue's\b",
        r"\bissue\s\d+'s\b",
        r"\(read\s\d{4}-\d\d-\d\d\)",  # a lab-notebook date on a product page
        r"\bnot\skept\b(?!\sby\s)",  # a rejected variant listed on a product page
        r"next\ssteps\s\(not\syet\srun\)",
    )
]


def tracked_files() -> list[str]:
    """Text files git tracks (so venvs, caches and build outputs are never scanned)."""
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        pytest.skip(f"not a git checkout ({err}): nothing to scan")
    return [name for name in out.splitlines() if Path(name).suffix in SUFFIXES]


def history_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of every line holding a development-history phrase."""
    return [
        (number, line.strip())
        for number, line in enumerate(text.splitlines(), 1)
        if any(pattern.search(line) for pattern in HISTORY)
    ]


def test_history_phrases_are_found_and_product_words_are_not():
    word = "sess" + "ion"  # planted at run time, so this file never holds a history phrase itself
    planted = (
        f"Fast.\nMeasured in {word} 5 on the idle box.\n{word}s 2 and 3 agreed\nthe issue {'says'} so\n"
        f"The authors' code ({'read'} 2026-11-29).\nRows marked {'not'} kept.\n## Next steps ({'not'} yet run)\n"
    )
    assert [number for number, _ in history_lines(planted)] == [2, 3, 4, 5, 6, 7]
    product = "Load the index for the session's model.\nfor session in sessions.values():\n"
    assert history_lines(product) == []


def test_no_tracked_document_or_comment_holds_development_history():
    found = []
    for name in tracked_files():
        if name in SKIPPED or not (ROOT / name).is_file():
            continue
        text = (ROOT / name).read_text(encoding="utf-8", errors="replace")
        found += [f"{name}:{number}: {line}" for number, line in history_lines(text)]
    assert not found, "development history (move it to CHANGELOG.md, or say it as a finding):\n" + "\n".join(found)
