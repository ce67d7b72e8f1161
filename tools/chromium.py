"""Headless Chromium for checking an HTML report as a browser shows it, without the DevTools protocol:
`--dump-dom` for the rendered DOM, `--screenshot` for a PNG, the browser's stderr log for console
messages, and its net log for every request the page made. The browser runs with its proxy set to
a closed local port, so a request to the network would fail rather than leave the machine.

    python tools/chromium.py report.html report.png     # full-page screenshot
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
QUIET = [
    "--headless",
    "--no-sandbox",  # needed as root in containers
    "--disable-gpu",
    "--hide-scrollbars",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--proxy-server=127.0.0.1:9",  # the discard port, closed: no request can reach the network
    "--enable-logging=stderr",
    "--v=0",
]


def find_chromium() -> str | None:
    """The browser to use: $PROBE_CHROMIUM, else the first of NAMES on PATH; None when there is none."""
    chosen = os.environ.get("PROBE_CHROMIUM")
    if chosen:
        return shutil.which(chosen) or (chosen if Path(chosen).is_file() else None)
    return next((path for path in map(shutil.which, NAMES) if path), None)


@dataclass
class Visit:
    """What a headless visit of a page produced."""

    stdout: str
    console: list[str]  # console messages the page logged (errors, failed loads, ...)
    requests: list[str]  # URLs the page itself asked for, other than file: and data:


def _page_requests(net_log: Path) -> list[str]:
    """URLs requested on behalf of a file:// page, from Chromium's net log (the browser's own
    background requests carry another network isolation key and are left out)."""
    if not net_log.is_file():
        return []
    text = net_log.read_text(encoding="utf-8", errors="replace").rstrip().rstrip(",")
    if not text.endswith("}"):
        text += "]}"  # a log cut short when the browser exits: close the events list
    data = json.loads(text)
    start = data["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = []
    for event in data.get("events", []):
        params = event.get("params") or {}
        if event.get("type") != start or "file://" not in str(params.get("network_isolation_key", "")):
            continue
        url = params.get("url", "")
        if not url.startswith(("file:", "data:")):
            urls.append(url)
    return urls


def visit(
    page: Path, *extra: str, browser: str | None = None, timeout: float = 120, query: str = "", budget_ms: int = 5000
) -> Visit:
    """Open page (an HTML file, with an optional `?query`) in headless Chromium with the given extra flags."""
    browser = browser or find_chromium()
    if browser is None:
        raise FileNotFoundError("no Chromium found (apt-get install chromium, or set PROBE_CHROMIUM)")
    with tempfile.TemporaryDirectory(prefix="probe-chromium-") as tmp:
        net_log = Path(tmp) / "net.json"
        done = subprocess.run(
            [
                browser,
                *QUIET,
                f"--user-data-dir={tmp}/profile",
                f"--log-net-log={net_log}",
                f"--virtual-time-budget={budget_ms}",  # let every load finish (or fail) before the dump
                *extra,
                Path(page).resolve().as_uri() + (f"?{query}" if query else ""),
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=tmp,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{browser} exited with {done.returncode}: {done.stderr[-2000:]}")
        console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
        return Visit(done.stdout, console, _page_requests(net_log))


def dump_dom(page: Path, **kw) -> Visit:
    """The DOM after rendering (in Visit.stdout), with console messages and page requests."""
    return visit(page, "--dump-dom", **kw)


def screenshot(page: Path, png: Path, width: int = 1400, max_height: int = 16000, **kw) -> Visit:
    """A full-page PNG: rendered in a window max_height tall, then cut below the last non-white row."""
    from PIL import Image, ImageChops

    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    result = visit(page, f"--window-size={width},{max_height}", f"--screenshot={png.resolve()}", **kw)
    with Image.open(png) as shot:
        rgb = shot.convert("RGB")
    box = ImageChops.difference(rgb, Image.new("RGB", rgb.size, (255, 255, 255))).getbbox()
    bottom = min(rgb.height, (box[3] if box else 0) + 32)
    rgb.crop((0, 0, rgb.width, max(bottom, 1))).save(png, optimize=True)
    return result


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python tools/chromium.py REPORT.html OUT.png", file=sys.stderr)
        return 2
    if find_chromium() is None:
        print("error: no Chromium found: apt-get install chromium (or set PROBE_CHROMIUM)", file=sys.stderr)
        return 1
    result = screenshot(Path(argv[0]), Path(argv[1]))
    for line in result.console:
        print(f"console: {line}", file=sys.stderr)
    for url in result.requests:
        print(f"request: {url}", file=sys.stderr)
    print(argv[1])
    return 1 if result.console or result.requests else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
