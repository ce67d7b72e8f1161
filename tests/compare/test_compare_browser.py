"""`probe compare` as a browser shows it, checked as the report is (tests/run/test_report_browser.py):
two real runs of one experiment, the built-in model and the same architecture with random weights,
compared into one page that is self-contained, renders in headless Chromium (tools/chromium.py)
without console messages or requests, and shows a prompt holding `<script>` and `&` as text."""

import html
import re

import pytest
from probe_run.experiment import load_experiment
from probe_run.runner import run_plan

import probe
from tests.run.test_report_browser import Elements
from tools.chromium import dump_dom, find_chromium, screenshot

pytestmark = pytest.mark.slow  # two real runs, then headless Chromium

needs_chromium = pytest.mark.skipif(
    find_chromium() is None,
    reason="headless Chromium not installed (apt-get install chromium, or set PROBE_CHROMIUM); .ci/run installs it",
)

EVIL = "a star <script>x</script> & co"
FAST = "{steps: 1, size: 32, copies: 1, min_cosine: -1}"
TITLE = "browser — clip-probe comparison"
IMAGES = 2 * 2 * 2 + 2 * 1 * 2  # bias: prompts × seeds × models; nsfw: prompts × 1 × models


@pytest.fixture(scope="module")
def page(tmp_path_factory, builtin_session):
    """compare.html of the built-in model against shapes-tiny@random: a bias step (2 prompts × 2
    seeds, colour labels), an nsfw step (1 image per prompt) and a neighbours step."""
    from probe.session import Session

    root = tmp_path_factory.mktemp("compare")
    (root / "prompts.yaml").write_text(
        "name: evil\nvariants: [neutral]\nprompts:\n"
        f"  - {{key: star, group: g, neutral: '{EVIL}'}}\n"
        "  - {key: circle, group: g, neutral: a circle}\n"
    )
    (root / "exp.yaml").write_text(
        "name: browser\nsteps:\n"
        f"  - bias: {{prompts: {root / 'prompts.yaml'}, labels: colours, n: 2, settings: {FAST}, batch: 2}}\n"
        f"  - nsfw: {{prompts: ['{EVIL}', a circle], n: 1, settings: {FAST}, nudenet: false, text: false}}\n"
        "  - neighbours: {texts: [a star], vocabs: [world], k: 3}\n"
    )
    random = Session.open("shapes-tiny@random", device="cpu")
    folders = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROBE_CACHE_DIR", str(root / "cache"))
        for name, session in (("builtin", builtin_session), ("random", random)):

            def same(spec, s=session):
                return s

            result = run_plan(load_experiment(root / "exp.yaml"), root / name, session, same)
            assert result.counts["failed"] == 0
            folders.append(root / name)
    return probe.compare(folders).write(root / "cmp")


def test_page_is_self_contained_and_shows_prompts_as_text(page):
    text = page.read_text(encoding="utf-8")
    dom = Elements(text)
    links = [a[k] for _, a in dom.tags for k in ("src", "href", "xlink:href") if k in a]
    assert len(links) == IMAGES and all(re.fullmatch(r"data:image/png;base64,[A-Za-z0-9+/=]+", x) for x in links)
    assert not re.search(r"https?:|ftp:|file:", text)
    assert not re.search(r"url\((?!#)", text)
    assert dom.count("script") == 0 and dom.title == TITLE
    assert EVIL in dom.h3 and html.escape(EVIL) in text
    # a chart per bias prompt, one for nsfw, one for neighbours; bars come per model, in pairs
    assert dom.count("svg", "chart") == 4
    bars = [a for t, a in dom.tags if t == "rect" and a.get("class") == "bar"]
    assert len(bars) % 2 == 0 and [a["data-series"] for a in bars[:2]] == ["shapes-tiny", "shapes-tiny@random"]
    assert "shapes-tiny@random − shapes-tiny" in text


@needs_chromium
def test_page_renders_in_chromium_without_console_messages_or_requests(page):
    seen = dump_dom(page)
    dom = Elements(seen.stdout)
    assert seen.console == [] and seen.requests == []
    assert dom.count("svg", "chart") == 4 and dom.count("img") == IMAGES
    assert dom.count("script") == 0 and dom.title == TITLE
    assert EVIL in dom.h3


@needs_chromium
def test_screenshot_shows_the_page(page, tmp_path):
    import numpy as np
    from PIL import Image

    png = tmp_path / "compare.png"
    shot = screenshot(page, png, max_height=4000)
    assert shot.console == [] and shot.requests == []
    with Image.open(png) as image:
        rgb = image.convert("RGB")
    assert rgb.width == 1400 and rgb.height > 1200
    pixels = np.asarray(rgb).reshape(-1, 3).astype(np.uint32)
    assert (pixels != 255).any(axis=1).mean() > 0.05
    colours = np.unique(pixels[:, 0] << 16 | pixels[:, 1] << 8 | pixels[:, 2])
    assert len(colours) > 200
