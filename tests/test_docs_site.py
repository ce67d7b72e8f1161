"""The documentation site builds with warnings as errors: every page in the nav exists, every link
and anchor between pages resolves, and every API reference renders from its docstring."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytest.importorskip("mkdocs", reason="the docs tools are in the [dev] extra")
pytest.importorskip("mkdocstrings_handlers.python", reason="the docs tools are in the [dev] extra")


def build(site: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )


@pytest.mark.slow
def test_the_site_builds_strictly_and_offline(tmp_path):
    result = build(tmp_path / "site")
    assert result.returncode == 0, result.stdout + result.stderr
    pages = {p.relative_to(tmp_path / "site").as_posix() for p in (tmp_path / "site").rglob("*.html")}
    for page in ("index.html", "models.html", "probes/invert.html", "paper.html", "benchmarks.html", "api.html"):
        assert page in pages
    api = (tmp_path / "site" / "api.html").read_text(encoding="utf-8")
    for name in ("probe_invert.api.invert", "probe_neighbours.api.neighbours", "probe.plugin.current_session"):
        assert f'id="{name}"' in api, f"{name} is missing from the API reference"
    for html in (tmp_path / "site").rglob("*.html"):
        text = html.read_text(encoding="utf-8")
        assert "fonts.googleapis" not in text and '<script src="http' not in text, f"{html.name} fetches from the web"
