"""Test and screenshot tooling: the system Chromium driven by Playwright, and TensorBoard served
in-process so the gradscope dashboard can be opened in it.

Used by the browser tests (``tests/render/test_browser.py``, through the ``browser`` fixture of
``tests/render/conftest.py``) and by ``scripts/screenshot_dashboard.py``, so the README's
screenshot is taken exactly the way the tests look at the dashboard. Playwright launches
``/usr/bin/chromium`` (Debian's package, which CI installs): ``playwright install`` is never
needed and nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, Request

#: The browser every test and script uses: Debian's ``chromium`` package.
CHROMIUM = Path("/usr/bin/chromium")
#: Why browser tests skip on a machine without it.
NO_CHROMIUM = f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run installs it)"
#: A quiet, reproducible headless browser in a container or CI (root: no sandbox; no GPU; no
#: network of its own: no QUIC, updates, sync or background requests).
LAUNCH_ARGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

#: The dashboard inside TensorBoard's own UI (the plugin's tab).
DASHBOARD_FRAGMENT = "#gradscope"
#: The dashboard alone: TensorBoard's iframe entry page for the plugin's ES module.
PLUGIN_ENTRY = "data/plugin_entry.html?name=gradscope"
#: JavaScript: the dashboard's document, whether it is the page itself (:data:`PLUGIN_ENTRY`) or
#: the plugin's same-origin iframe inside TensorBoard's UI; null until the module has run.
DASHBOARD_DOCUMENT = """(() => {
  if (document.body && document.body.dataset.gradscope) return document;
  for (const f of document.querySelectorAll('iframe')) {
    const d = f.contentDocument;
    if (d && d.body && d.body.dataset.gradscope) return d;
  }
  return null;
})()"""
#: JavaScript: truthy once ``index.js`` has drawn every run (or reported an error).
DASHBOARD_READY = (
    f"(() => {{ const d = {DASHBOARD_DOCUMENT}; return d && d.body.dataset.gradscope; }})()"
)


def launch(playwright: Playwright) -> Browser:
    """Starts the system Chromium, headless.

    Args:
        playwright: a started Playwright (``sync_playwright().start()``).

    Returns:
        The browser; close it when done.

    Raises:
        FileNotFoundError: no Chromium at :data:`CHROMIUM`.
    """
    if not CHROMIUM.exists():
        raise FileNotFoundError(NO_CHROMIUM)
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=list(LAUNCH_ARGS)
    )


@dataclass
class OpenPage:
    """A page that has rendered, and everything that went wrong while it loaded.

    Attributes:
        page: the Playwright page (closed by :meth:`close`).
        errors: console errors, uncaught exceptions and failed loads, one line each.
    """

    page: Page
    errors: list[str] = field(default_factory=list)

    def screenshot(self, full_page: bool = False) -> bytes:
        """Returns a PNG of the viewport (or the whole page)."""
        return self.page.screenshot(full_page=full_page, type="png")

    def close(self) -> None:
        """Closes the page (its browser context goes with it)."""
        self.page.context.close()


def _watch(page: Page, errors: list[str]) -> None:
    # Errors of every frame (the dashboard runs in an iframe of TensorBoard's UI) end up here.
    def console(message: ConsoleMessage) -> None:
        if message.type in ("error", "assert") and "/favicon.ico" not in message.location.get(
            "url", ""
        ):
            errors.append(f"console.{message.type}: {message.text}")

    def failed(request: Request) -> None:
        # The browser asks every origin for a favicon by itself; a failure there is not the page's.
        if not request.url.endswith("/favicon.ico"):
            errors.append(f"failed load: {request.url} ({request.failure})")

    page.on("console", console)
    page.on("pageerror", lambda err: errors.append(f"uncaught: {err}"))
    page.on("requestfailed", failed)


def open_page(
    browser: Browser,
    url: str,
    *,
    ready: str = "document.readyState === 'complete'",
    width: int = 1280,
    height: int = 900,
    timeout: float = 30.0,
) -> OpenPage:
    """Opens ``url`` in a fresh context of ``browser`` and waits until ``ready`` is truthy.

    Args:
        browser: from :func:`launch`.
        url: the page (``file://`` or ``http://``).
        ready: JavaScript expression that becomes truthy once the page has rendered.
        width: viewport width in CSS pixels.
        height: viewport height in CSS pixels.
        timeout: seconds to wait for loading and ``ready``.

    Returns:
        The open page and the errors seen so far (the list keeps filling while it is open).
    """
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    opened = OpenPage(page)
    _watch(page, opened.errors)
    try:
        page.goto(url, timeout=timeout * 1000)
        page.wait_for_function(ready, timeout=timeout * 1000, polling=100)
    except Exception:
        context.close()
        raise
    return opened


#: JavaScript: for each ``<img>`` matched by ``selector``, how many of its pixels are within
#: ``tolerance`` (per channel) of each ``#rrggbb`` colour. Figures are data: URIs, so drawing
#: them into a canvas is allowed (same origin); decoded pixels are the PNG's, not the screen's.
COLOUR_COUNTS = """({selector, colours, tolerance}) => [...document.querySelectorAll(selector)]
  .map((img) => {
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    const targets = colours.map((c) => [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16)));
    const counts = targets.map(() => 0);
    for (let i = 0; i < px.length; i += 4) {
      targets.forEach((t, k) => {
        if (Math.abs(px[i] - t[0]) <= tolerance && Math.abs(px[i + 1] - t[1]) <= tolerance
            && Math.abs(px[i + 2] - t[2]) <= tolerance) counts[k] += 1;
      });
    }
    return counts;
  })"""


def colour_counts(
    page: Page, selector: str, colours: list[str], tolerance: int = 6
) -> list[list[int]]:
    """Counts pixels near given colours in each image of a page (see :data:`COLOUR_COUNTS`).

    Args:
        page: an open page.
        selector: CSS selector of ``<img>`` elements.
        colours: ``#rrggbb`` colours.
        tolerance: allowed difference per channel (the report's PNGs are 256-colour).

    Returns:
        One list of counts (one per colour) per matched image.
    """
    arg = {"selector": selector, "colours": colours, "tolerance": tolerance}
    return page.evaluate(COLOUR_COUNTS, arg)


@dataclass(frozen=True)
class Capture:
    """What a page showed and said, after it rendered.

    Attributes:
        png: the screenshot, PNG bytes.
        errors: console errors, uncaught exceptions and failed loads, one line each.
        probe: the JSON value of the probe expression (None without one).
    """

    png: bytes
    errors: tuple[str, ...]
    probe: Any = None


def capture(
    opened: OpenPage, probe: str | None = None, full_page: bool = False, settle: float = 0.2
) -> Capture:
    """Evaluates ``probe`` on an open page, screenshots it and closes it.

    Args:
        opened: from :func:`open_page` or :func:`open_dashboard`.
        probe: optional JavaScript expression; its JSON value is returned.
        full_page: capture the whole document height instead of the viewport.
        settle: seconds to wait first (canvas paints, late console errors).

    Returns:
        The capture.
    """
    try:
        opened.page.wait_for_timeout(settle * 1000)
        value = opened.page.evaluate(probe) if probe else None
        png = opened.screenshot(full_page=full_page)
        return Capture(png, tuple(opened.errors), value)
    finally:
        opened.close()


@contextlib.contextmanager
def serve_tensorboard(logdir: str | os.PathLike[str], port: int = 0) -> Iterator[str]:
    """Runs TensorBoard (every installed plugin, gradscope included) on localhost in a thread.

    Args:
        logdir: TensorBoard's ``--logdir``.
        port: the port; 0 picks a free one.

    Yields:
        The base URL, ending in ``/`` (e.g. ``http://localhost:6006/``).

    Raises:
        NotADirectoryError: ``logdir`` is not a directory.
    """
    root = Path(logdir)
    if not root.is_dir():
        raise NotADirectoryError(f"No log directory at '{root}'.")
    from tensorboard import program

    # TensorBoard logs every request at INFO through werkzeug; keep test and script output clean.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    board = program.TensorBoard()
    # The Rust data server is an optional download; the Python reader is always there.
    board.configure(
        argv=["tensorboard", "--logdir", str(root), "--port", str(port), "--host", "localhost",
              "--load_fast", "false"]
    )  # fmt: skip
    # TensorBoard.launch() starts a server it never stops; building the server ourselves (the
    # same private step launch() takes) lets the context manager shut it down and free the port.
    server = board._make_server()
    thread = threading.Thread(target=server.serve_forever, name="TensorBoard", daemon=True)
    thread.start()
    try:
        yield server.get_url()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def open_dashboard(
    browser: Browser,
    base_url: str,
    *,
    in_tensorboard_ui: bool = True,
    width: int = 1400,
    height: int = 1000,
    timeout: float = 40.0,
) -> OpenPage:
    """Opens the gradscope dashboard of a running TensorBoard and waits until it has drawn.

    Args:
        browser: from :func:`launch`.
        base_url: as yielded by :func:`serve_tensorboard`.
        in_tensorboard_ui: TensorBoard's UI on the gradscope tab (True) or the dashboard's own
            page without TensorBoard's header (False).
        width: viewport width in CSS pixels.
        height: viewport height in CSS pixels.
        timeout: seconds; TensorBoard's UI takes a few seconds to load.

    Returns:
        The open page.
    """
    page = DASHBOARD_FRAGMENT if in_tensorboard_ui else PLUGIN_ENTRY
    return open_page(
        browser, base_url + page, ready=DASHBOARD_READY, width=width, height=height,
        timeout=timeout,
    )  # fmt: skip
