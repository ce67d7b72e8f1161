"""`probe report` as a browser shows it: a report of a small real run of the built-in model, opened
in headless Chromium (tools/chromium.py). It renders (non-blank screenshot, SVG bars in the DOM),
logs nothing to the console, requests nothing from the network, and a prompt holding `<script>` and
`&` is shown as text. The browser tests skip when Chromium is not installed; `.ci/run` installs it."""

import html
import re
from html.parser import HTMLParser

import pytest
from probe_run.experiment import load_experiment
from probe_run.report import render_report
from probe_run.runner import run_plan

from tools.chromium import dump_dom, find_chromium, screenshot, visit

pytestmark = pytest.mark.slow  # headless Chromium renders the report

needs_chromium = pytest.mark.skipif(
    find_chromium() is None,
    reason="headless Chromium not installed (apt-get install chromium, or set PROBE_CHROMIUM); .ci/run installs it",
)

EVIL = "a star <script>x</script> & co"  # if the script ran, its ReferenceError would reach the console
FAST = "{steps: 1, size: 32, copies: 1}"
TITLE = "browser — clip-probe report"


@pytest.fixture(scope="module")
def report(tmp_path_factory, builtin_session):
    """report.html of a run of the built-in model: a bias step (2 prompts × 2 seeds, colour labels)
    and an nsfw step (1 image per prompt), 1-step inversions."""
    root = tmp_path_factory.mktemp("report")
    (root / "prompts.yaml").write_text(
        "name: evil\nvariants: [neutral]\nprompts:\n"
        f"  - {{key: star, group: g, neutral: '{EVIL}'}}\n"
        "  - {key: circle, group: g, neutral: a circle}\n"
    )
    (root / "exp.yaml").write_text(
        "name: browser\nsteps:\n"
        f"  - bias: {{prompts: {root / 'prompts.yaml'}, labels: colours, n: 2, settings: {FAST}, batch: 2}}\n"
        f"  - nsfw: {{prompts: ['{EVIL}', a circle], n: 1, settings: {FAST}, nudenet: false, text: false}}\n"
    )
    run = root / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROBE_CACHE_DIR", str(root / "cache"))
        result = run_plan(load_experiment(root / "exp.yaml"), run, builtin_session, lambda spec: builtin_session)
    assert result.counts["failed"] == 0
    page = root / "report.html"
    page.write_text(render_report(run), encoding="utf-8")
    return page


class Elements(HTMLParser):
    """Start tags with their attributes, and the text of each h3."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.h3: list[str] = []
        self._in_h3 = False
        self.title = ""
        self._in_title = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "h3":
            self._in_h3, self.h3 = True, [*self.h3, ""]
        self._in_title = tag == "title" and not any(t == "svg" for t, _ in self.tags[:-1]) and not self.title

    def handle_endtag(self, tag):
        self._in_h3 = self._in_h3 and tag != "h3"
        self._in_title = False

    def handle_data(self, data):
        if self._in_h3:
            self.h3[-1] += data
        if self._in_title:
            self.title += data

    def count(self, tag: str, cls: str | None = None) -> int:
        return sum(t == tag and (cls is None or a.get("class") == cls) for t, a in self.tags)


def test_report_is_self_contained_and_shows_prompts_as_text(report):
    text = report.read_text(encoding="utf-8")
    page = Elements(text)
    links = [a[k] for _, a in page.tags for k in ("src", "href", "xlink:href") if k in a]
    assert links and all(link.startswith("data:image/png;base64,") for link in links)
    assert all(re.fullmatch(r"data:image/png;base64,[A-Za-z0-9+/=]+", link) for link in links)
    assert not re.search(r"https?:|ftp:|file:", text)  # no URL anywhere, not even in text or styles
    assert not re.search(r"url\((?!#)", text)  # CSS and SVG fills only point inside the page
    assert page.count("script") == 0 and page.title == TITLE
    assert EVIL in page.h3 and html.escape(EVIL) in text
    # full prompts head the sections; tiles say prompt, seed, label and cosine
    assert "a circle" in page.h3 and "bias: bias" not in text
    assert re.search(r"seed 0 · cos 0\.\d{3}</span><b>(red|green|blue|yellow|purple|orange|white|black)</b>", text)
    assert page.count("svg", "chart") == 3 and page.count("rect", "bar") == 2 * 8 + 2
    bars = [a for t, a in page.tags if t == "rect" and a.get("class") == "bar"]
    assert [sum(int(a["data-k"]) for a in bars[i : i + 8]) for i in (0, 8)] == [2, 2]  # each prompt's 2 images
    assert {a["data-n"] for a in bars} == {"2", "1"}  # 2 per bias prompt, 1 per nsfw prompt


@needs_chromium
def test_report_renders_in_chromium_without_console_messages_or_requests(report):
    seen = dump_dom(report)
    dom = Elements(seen.stdout)
    assert seen.console == [] and seen.requests == []
    assert dom.count("svg", "chart") == 3 and dom.count("rect", "bar") == 2 * 8 + 2
    assert dom.count("script") == 0 and dom.title == TITLE  # the prompt's script neither exists nor ran
    assert EVIL in dom.h3
    assert dom.count("img") == 2 * 2 + 2


@needs_chromium
def test_screenshot_shows_the_page(report, tmp_path):
    import numpy as np
    from PIL import Image

    png = tmp_path / "report.png"
    shot = screenshot(report, png, max_height=4000)
    assert shot.console == [] and shot.requests == []
    with Image.open(png) as image:
        rgb = image.convert("RGB")
    assert rgb.width == 1400 and rgb.height > 1200  # header, two charts with grids, the NSFW chart
    pixels = np.asarray(rgb).reshape(-1, 3).astype(np.uint32)
    assert (pixels != 255).any(axis=1).mean() > 0.05
    colours = np.unique(pixels[:, 0] << 16 | pixels[:, 1] << 8 | pixels[:, 2])
    assert len(colours) > 200  # text, bars and images, not a blank or one-colour page


@needs_chromium
def test_the_checks_catch_a_console_error_and_a_network_request(tmp_path):
    """The browser checks above are not vacuous: a planted console error and image request are caught
    (the request fails at the closed proxy port; the net log still names it)."""
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><title>x</title><img src='http://example.com/x.png'><script>console.error('planted')</script>"
    )
    seen = visit(page, "--dump-dom")
    assert any("planted" in line for line in seen.console)
    assert "http://example.com/x.png" in seen.requests
