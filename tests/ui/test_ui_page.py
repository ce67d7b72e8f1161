"""`probe ui` as a user drives it: the page served in-process on a free port, opened in headless
Chromium (Playwright with the system's chromium). Inversion streams and its PNG is byte-identical to
`probe invert`'s; neighbours, the shuffle test, a run's report and a bad input's one-line error show;
two browsers inverting at once share one model load; no request leaves localhost.

Set PROBE_UI_SCREENSHOTS=FOLDER to save a screenshot of each tab there (docs/img/ui)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,  # a web server, a browser and real inversions of the built-in model
    pytest.mark.filterwarnings("ignore::Warning:gradio.queueing"),  # its use of pandas, not ours
]

CHROMIUM = os.environ.get("PROBE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
gradio = pytest.importorskip("gradio", reason="the ui extra is not installed (pip install -e '.[ui]')")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the dev extra has it)")
if not Path(CHROMIUM).is_file():
    pytest.skip("headless Chromium not installed (apt-get install chromium)", allow_module_level=True)

PROMPT = "a red star"
TIMEOUT_MS = 120_000  # two CPU cores shared with other work: inversions and the first model load are slow
WAIT_MS = 30_000  # for an element to show
SHOTS = os.environ.get("PROBE_UI_SCREENSHOTS")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The page on the built-in model, served from this process; the session comes from the same
    accessor the commands use (the CLI state), so its load count is the model loads."""
    from probe_ui.plugin import ui_app, ui_serve

    from probe.cli.state import State
    from probe.plugin import run_cli

    out = tmp_path_factory.mktemp("ui-out")
    experiment = out.parent / "exp.yaml"
    experiment.write_text(
        "name: tiny\nsteps:\n  - invert: {prompts: [a blue circle], seeds: [0], settings: {steps: 1, size: 32}}\n"
    )
    made = run_cli("-o", out, "run", experiment)
    assert made.exit_code == 0, made.output
    state = State(model="shapes-tiny", out_dir=out)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRADIO_TEMP_DIR", str(out / ".ui-files"))
        app = ui_app(lambda: state.session, out)
        url = ui_serve(app, out, port=_free_port(), block=False)
        yield {"url": url.rstrip("/"), "out": out, "state": state}
        app.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    """A fresh browser session on the page, every request it makes recorded."""
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    context.on("request", lambda r: requests.append(r.url))
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(server["url"])
    page.wait_for_selector("#invert-go")
    yield page
    _assert_local(requests, server["url"])
    context.close()


def _assert_local(requests: list[str], url: str) -> None:
    outside = [r for r in requests if not r.startswith((url, "data:", "blob:"))]
    assert requests and outside == []


def _tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def _shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"))


def _watch(page, selector: str) -> None:
    """Record every value a textbox shows, as the page streams them (polled every 5 ms)."""
    page.evaluate(
        """sel => { window.seen = []; setInterval(() => {
            const el = document.querySelector(sel + ' textarea, ' + sel + ' input');
            const v = el ? el.value : null;
            if (v && window.seen[window.seen.length - 1] !== v) window.seen.push(v);
            const q = document.body.innerText.match(/queue: \\d+\\/\\d+/);
            if (q) window.seen.push(q[0]);
        }, 5); }""",
        selector,
    )


def _fill(page, selector: str, text: str) -> None:
    page.locator(f"{selector} textarea, {selector} input").first.fill(text)


def _invert(page, steps: int = 2, seeds: str = "0") -> None:
    _fill(page, "#invert-prompts", PROMPT)
    _fill(page, "#invert-seeds", seeds)
    _fill(page, "#invert-steps", str(steps))
    page.click("#invert-go")


def _finished(page) -> str:
    page.wait_for_function(
        "() => /^(finished|stopped)/.test(document.querySelector('#invert-status textarea').value)",
        timeout=TIMEOUT_MS,
    )
    return page.locator("#invert-status textarea").input_value()


def test_invert_streams_and_downloads_the_cli_bytes(page, server, tmp_path):
    from probe.plugin import run_cli

    _watch(page, "#invert-status")
    _invert(page)
    status = _finished(page)
    seen = page.evaluate("window.seen")
    assert any(s.startswith("step 1 ") for s in seen), seen  # an intermediate image arrived, with its cosine
    assert status.startswith("finished: 1 image(s)")
    page.wait_for_selector("#invert-live img")
    shown, gallery = page.evaluate(
        "() => [document.querySelector('#invert-live img').getBoundingClientRect().width,"
        " document.querySelector('#invert-live').getBoundingClientRect().width]"
    )
    assert shown < gallery / 2, (shown, gallery)  # one image keeps its grid cell, not stretched across
    page.wait_for_selector("#invert-sheet img")
    assert PROMPT in page.locator("#invert-table").inner_text()
    _shot(page, "invert")
    with page.expect_download() as got:
        page.locator('#invert-files a[download="seed-0.png"]').click()
    downloaded = Path(got.value.path()).read_bytes()

    cli = run_cli("-o", tmp_path, "invert", PROMPT, "--seeds", "0", "--steps", "2")
    assert cli.exit_code == 0, cli.output
    assert downloaded == (tmp_path / "invert" / "a-red-star" / "seed-0.png").read_bytes()
    sidecar = server["out"] / "invert" / "a-red-star" / "seed-0.json"
    assert sidecar.is_file()  # written beside it, as the command writes it


def test_neighbours_of_star(page):
    _tab(page, "Neighbours")
    _fill(page, "#neighbours-text", "star\ncircle")
    page.locator("#neighbours-flag-rate input").check()
    page.click("#neighbours-go")
    page.wait_for_function(
        "() => /\\d\\.\\d{3}/.test(document.querySelector('#neighbours-table').innerText)", timeout=TIMEOUT_MS
    )
    table = page.locator("#neighbours-table").inner_text()
    assert "star" in table and re.search(r"0\.\d{3}|1\.000", table)
    rates = page.locator("#neighbours-rates").inner_text()  # the world vocabulary has no flagged word
    assert "all 2 queries" in rates and "0/20" in rates, rates
    assert "every flag rate is 0% by construction" in page.locator("#neighbours-notes textarea").input_value()
    _shot(page, "neighbours")


def test_shuffle_test_shows_its_notes(page):
    _tab(page, "Shuffle test")
    page.click("#shuffle-go")
    page.wait_for_function(
        "() => document.querySelector('#shuffle-notes textarea').value.length > 0", timeout=TIMEOUT_MS
    )
    notes = page.locator("#shuffle-notes textarea").input_value()
    assert "P@1 and order blindness are left out in text mode" in notes
    assert "a red star left of a blue circle" in page.locator("#shuffle-variants").inner_text()


def test_shuffle_test_of_the_world_scenes(page):
    from probe_shuffle.sources import world_pairs

    _tab(page, "Shuffle test")
    page.get_by_label("the built-in world's scenes").check()
    _fill(page, "#shuffle-scenes", "4")
    page.click("#shuffle-go")
    page.wait_for_function("() => document.querySelectorAll('#shuffle-scenes-shown img').length == 4")
    assert "P@1" in page.locator("#shuffle-summary").inner_text()  # image mode: the true caption is scored
    variants = page.locator("#shuffle-variants").inner_text()
    assert all(caption in variants for caption in world_pairs(4, 0).captions)
    _shot(page, "shuffle")


def test_a_runs_report_opens(page):
    _tab(page, "Runs")
    page.locator("#runs-list input").click()
    page.get_by_role("option", name="runs/tiny").click()
    page.click("#runs-show")
    frame = page.frame_locator("#runs-report iframe")
    frame.locator("body").wait_for()
    assert "tiny" in frame.locator("body").inner_text()
    _shot(page, "runs")


def test_an_experiment_file_runs_from_the_page(page, server, tmp_path):
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(
        "name: from-page\nsteps:\n  - invert: {prompts: [a red star], seeds: [0], settings: {steps: 1, size: 32}}\n"
    )
    _tab(page, "Runs")
    page.locator("#runs-yaml input[type=file]").set_input_files(str(experiment))
    page.wait_for_selector("#runs-yaml >> text=exp.yaml")
    page.click("#runs-start")
    page.wait_for_function(
        "() => document.querySelector('#runs-ran textarea').value.includes('done 1')", timeout=TIMEOUT_MS
    )
    assert (server["out"] / "runs" / "from-page" / "manifest.json").is_file()


def test_score_of_an_uploaded_image(page, tmp_path):
    import torch

    from probe.files.images import write_png

    image = write_png(tmp_path / "red.png", torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1).expand(3, 32, 32))
    _tab(page, "Score")
    page.locator("#score-images input[type=file]").set_input_files(str(image))
    page.wait_for_selector("#score-images >> text=red.png")
    page.click("#score-go")
    page.wait_for_function(
        "() => /\\d\\.\\d{3} \\(\\d+%\\)/.test(document.querySelector('#score-table').innerText)", timeout=TIMEOUT_MS
    )
    table = page.locator("#score-table").inner_text()
    assert "red.png" in table and "a red star" in table
    _shot(page, "score")


def test_stop_keeps_what_was_made(page, server):
    _watch(page, "#invert-status")
    _fill(page, "#invert-prompts", "a green square")
    _fill(page, "#invert-steps", "400")
    page.click("#invert-go")
    page.wait_for_function("() => window.seen.some(s => s.startsWith('step '))", timeout=TIMEOUT_MS)
    page.click("#invert-stop")
    assert _finished(page).startswith("stopped: 1 image(s)")
    assert "interrupted" in page.locator("#invert-table").inner_text()
    assert (server["out"] / "invert" / "a-green-square" / "seed-0.png").is_file()


def test_a_closed_page_stops_its_inversion_and_frees_the_queue(browser, server):
    def running() -> bool:
        return any(t.name == "probe-ui-invert" and t.is_alive() for t in threading.enumerate())

    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server["url"])
    page.wait_for_selector("#invert-go")
    _watch(page, "#invert-status")
    _fill(page, "#invert-prompts", "a yellow triangle")
    _fill(page, "#invert-steps", "5000")  # minutes of work on this machine
    page.click("#invert-go")
    page.wait_for_function("() => window.seen.some(s => s.startsWith('step '))", timeout=TIMEOUT_MS)
    assert running()
    context.close()  # the browser goes away mid-run
    deadline = time.monotonic() + 60
    while running() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not running(), "the inversion still runs after its page closed"
    assert (server["out"] / "invert" / "a-yellow-triangle" / "seed-0.png").is_file()  # stopped, kept its image
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server["url"])
    page.wait_for_selector("#invert-go")
    _invert(page, steps=2, seeds="4")
    assert _finished(page).startswith("finished: 1 image(s)")  # the queue is free for the next
    context.close()


def test_model_tab_shows_the_card(page):
    _tab(page, "Model")
    page.click("#model-show")
    page.wait_for_function(
        "() => document.querySelector('#model-table').innerText.includes('fingerprint')", timeout=TIMEOUT_MS
    )
    assert "shapes-tiny" in page.locator("#model-table").inner_text()
    _shot(page, "model")


def test_bad_input_is_the_one_line_error(page):
    _fill(page, "#invert-seeds", "three")
    page.click("#invert-go")
    message = page.get_by_text(re.compile("Error: bad seeds 'three'"))
    message.first.wait_for()
    assert "Traceback" not in page.locator("body").inner_text()


def test_prompt_markup_shows_as_text(page):
    _tab(page, "Neighbours")
    _fill(page, "#neighbours-text", "<b id=injected>star</b>")
    page.click("#neighbours-go")
    page.wait_for_function(
        "() => document.querySelector('#neighbours-table').innerText.includes('<b id=injected>')", timeout=TIMEOUT_MS
    )
    assert page.locator("#injected").count() == 0


def test_files_outside_the_output_folder_are_refused(page, server):
    response = page.request.get(f"{server['url']}/gradio_api/file=/etc/hostname")
    assert response.status in (403, 404)


def test_two_browsers_invert_at_once_on_one_model_load(browser, server):
    contexts = [browser.new_context() for _ in range(2)]
    pages = []
    for context in contexts:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(server["url"])
        page.wait_for_selector("#invert-go")
        _watch(page, "#invert-status")
        pages.append(page)
    for page, steps, seeds in zip(pages, (40, 3), ("1", "2"), strict=True):  # the first still runs when the second asks
        _invert(page, steps=steps, seeds=seeds)
    statuses = [_finished(page) for page in pages]
    seen = [s for page in pages for s in page.evaluate("window.seen")]
    for context in contexts:
        context.close()
    assert all(s.startswith("finished: 1 image(s)") for s in statuses), statuses
    assert server["state"].loads == 1
    assert any(s.startswith("queue: ") for s in seen), seen  # the waiting one was shown its place
    started = time.monotonic()
    assert time.monotonic() - started < 1
