"""TensorBoard in-process on a log directory, and the gradscope dashboard captured in Chromium.

Shared by ``scripts/screenshot_dashboard.py`` (the README's screenshot) and the browser tests, so
both open the dashboard the same way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from gradscope.errors import GradscopeInputError
from gradscope.render.browser import PageCapture, capture_page

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


@contextlib.contextmanager
def serve_tensorboard(logdir: str | os.PathLike[str], port: int = 0) -> Iterator[str]:
    """Runs TensorBoard (with every installed plugin, gradscope included) on localhost.

    Args:
        logdir: TensorBoard's ``--logdir``.
        port: the port; 0 picks a free one.

    Yields:
        The base URL, ending in ``/`` (e.g. ``http://localhost:6006/``).

    Raises:
        GradscopeInputError: ``logdir`` is not a directory.

    Example:
        >>> with serve_tensorboard("runs") as url:  # doctest: +SKIP
        ...     print(url + DASHBOARD_FRAGMENT)
    """
    root = Path(logdir)
    if not root.is_dir():
        raise GradscopeInputError(
            f"No log directory at '{root}'. Pass a folder that holds gradscope runs."
        )
    from tensorboard import program

    # TensorBoard logs every request at INFO through werkzeug; keep test and script output clean.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    board = program.TensorBoard()
    board.configure(
        argv=[
            "tensorboard",
            "--logdir",
            str(root),
            "--port",
            str(port),
            "--host",
            "localhost",
            # The Rust data server is an optional download; the Python reader is always there.
            "--load_fast",
            "false",
        ]
    )
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


def capture_dashboard(
    base_url: str,
    *,
    in_tensorboard_ui: bool = True,
    probe: str | None = None,
    width: int = 1400,
    height: int = 1000,
    full_page: bool = False,
    timeout: float = 40.0,
) -> PageCapture:
    """Opens the gradscope dashboard of a running TensorBoard in headless Chromium.

    Args:
        base_url: TensorBoard's URL, as yielded by :func:`serve_tensorboard`.
        in_tensorboard_ui: open TensorBoard's UI on the gradscope tab (True) or the dashboard's
            own page without TensorBoard's header (False).
        probe: optional JavaScript evaluated once the dashboard has rendered; its value is
            returned in the capture.
        width: viewport width in CSS pixels.
        height: viewport height in CSS pixels.
        full_page: capture the whole page (useful without the UI, whose tab scrolls inside).
        timeout: seconds for the whole capture; TensorBoard's UI takes a few seconds to load.

    Returns:
        The screenshot, console errors and probe value.

    Raises:
        BrowserError: the dashboard did not render in time.

    Example:
        >>> with serve_tensorboard("runs") as url:  # doctest: +SKIP
        ...     shot = capture_dashboard(url)
    """
    page = DASHBOARD_FRAGMENT if in_tensorboard_ui else PLUGIN_ENTRY
    return capture_page(
        base_url + page,
        ready=DASHBOARD_READY,
        probe=probe,
        width=width,
        height=height,
        full_page=full_page,
        timeout=timeout,
    )


__all__ = [
    "DASHBOARD_DOCUMENT",
    "DASHBOARD_FRAGMENT",
    "DASHBOARD_READY",
    "PLUGIN_ENTRY",
    "capture_dashboard",
    "serve_tensorboard",
]
