"""The README's quick start works verbatim: every command of its shell blocks, then its Python blocks,
run as written in a fresh folder with the installed `probe` on PATH and the built-in model."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def section(text: str, title: str) -> str:
    """The body of a `## title` section, up to the next `## ` heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.M | re.S)


def commands(block: str) -> list[str]:
    """Each non-empty, non-comment line of a shell block is one command."""
    return [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_quick_start_blocks_are_found():
    quick = section(README.read_text(), "Quick start")
    shell = [c for b in blocks(quick, "bash") for c in commands(b)]
    assert shell and shell[0].startswith("probe invert ")
    assert len(blocks(quick, "python")) == 1
    assert commands("probe a  # b\n\n# only a comment\n  probe c\n") == ["probe a  # b", "  probe c"]


@pytest.mark.slow
def test_quick_start_runs_verbatim(tmp_path):
    quick = section(README.read_text(), "Quick start")
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    env.pop("PROBE_MODEL", None)  # the built-in model, as a new user gets it
    for command in [c for b in blocks(quick, "bash") for c in commands(b)]:
        done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"`{command}` exited {done.returncode}:\n{done.stderr[-2000:]}"
        assert done.stdout.strip(), f"`{command}` printed nothing"
    # what the first command promises: one image per prompt and a contact sheet in probe-out/invert/
    made = tmp_path / "probe-out" / "invert"
    for name in ("a-red-star/seed-0.png", "a-blue-circle/seed-0.png", "contact-sheet.png"):
        assert (made / name).stat().st_size > 0, f"probe invert did not write {name}"
    for code in blocks(quick, "python"):
        done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"the quick start's Python block failed:\n{done.stderr[-2000:]}"
        assert "['a red star']" in done.stdout  # print(scores.labels): the inverted red star scores as one


def relative_links(text: str) -> list[str]:
    """The targets of the Markdown links and images that point inside the repository (anchors dropped)."""
    targets = re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", text)
    return [t for t in targets if not re.match(r"[a-z]+:", t)]


def test_readme_links_resolve():
    """A front page whose links 404 on the repository page: every relative link names a file that exists."""
    links = relative_links(README.read_text())
    assert "docs/models.md" in links and "LICENSE" in links
    assert [t for t in links if not (ROOT / t).exists()] == []
    assert relative_links("[a](docs/x.md#y) ![b](img.png) [c](https://e.org/z)") == ["docs/x.md", "img.png"]
