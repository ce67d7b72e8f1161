"""The documentation site builds with warnings as errors: every page in the nav exists, every link
and anchor between pages resolves, and every API reference renders from its docstring."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tools.chromium import dump_dom, find_chromium

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


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("docs") / "site"
    result = build(folder)
    assert result.returncode == 0, result.stdout + result.stderr
    return folder


@pytest.mark.slow
def test_the_site_builds_strictly_and_offline(site):
    tmp_path = site.parent
    pages = {p.relative_to(tmp_path / "site").as_posix() for p in (tmp_path / "site").rglob("*.html")}
    for page in ("index.html", "models.html", "probes/invert.html", "paper.html", "benchmarks.html", "api.html"):
        assert page in pages
    api = (tmp_path / "site" / "api.html").read_text(encoding="utf-8")
    for name in ("probe_invert.api.invert", "probe_neighbours.api.neighbours", "probe.plugin.current_session"):
        assert f'id="{name}"' in api, f"{name} is missing from the API reference"
    for html in (tmp_path / "site").rglob("*.html"):
        text = html.read_text(encoding="utf-8")
        assert "fonts.googleapis" not in text and '<script src="http' not in text, f"{html.name} fetches from the web"


@pytest.mark.slow
@pytest.mark.skipif(find_chromium() is None, reason="headless Chromium not installed (apt-get install chromium)")
def test_search_works_when_the_site_is_opened_from_the_file_system(site):
    """`make docs` says to open site/index.html: search must answer over file://, not only over HTTP,
    and without fetching anything (the browser's network is closed in these tests)."""
    page = dump_dom(site / "index.html", query="q=neighbours", budget_ms=15000)
    assert re.search(r'md-search-result__meta">\s*\d+ matching document', page.stdout), "search gave no results"
    assert 'href="probes/neighbours.html' in page.stdout
    assert page.requests == []
