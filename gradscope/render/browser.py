"""Headless Chromium: open a page, wait until it has rendered, screenshot it, collect its errors.

Used by the browser tests of the HTML report and the TensorBoard dashboard and by
``scripts/screenshot_dashboard.py``. Chromium is driven through the DevTools protocol over
``--remote-debugging-pipe`` (JSON messages separated by NUL bytes on file descriptors 3 and 4),
so nothing beyond the standard library and the ``chromium`` binary is needed: no websocket
client, no Selenium, no browser download. The protocol reports console errors and uncaught
exceptions as events, which is more reliable than parsing Chromium's log output.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gradscope.errors import GradscopeInputError

#: Where Debian's ``chromium`` package installs the browser, then names looked up on ``PATH``.
CHROMIUM_CANDIDATES: tuple[str, ...] = (
    "/usr/bin/chromium",
    "chromium",
    "chromium-browser",
    "google-chrome",
)
#: Flags for a quiet, reproducible headless browser in a container or CI (root, no GPU).
HEADLESS_FLAGS: tuple[str, ...] = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--mute-audio",
    "--force-color-profile=srgb",
    "--remote-debugging-pipe",
)


class BrowserError(RuntimeError):
    """Chromium could not be started, or the page did not render in time."""


@dataclass(frozen=True)
class PageCapture:
    """What a page showed and said.

    Attributes:
        png: the screenshot, PNG bytes.
        console_errors: console errors, uncaught exceptions and failed loads, one line each.
        probe: the JSON value of the ``probe`` expression after the page was ready (None when
            no probe was given).
        seconds: wall time from launch to screenshot.
    """

    png: bytes
    console_errors: tuple[str, ...]
    probe: Any = None
    seconds: float = 0.0


def find_chromium() -> str | None:
    """Returns the path of a Chromium (or Chrome) binary, or None if none is installed.

    Returns:
        An executable path, or None.

    Example:
        >>> find_chromium()  # doctest: +SKIP
        '/usr/bin/chromium'
    """
    for candidate in CHROMIUM_CANDIDATES:
        path = shutil.which(candidate)
        if path:
            return path
    return None


@dataclass
class _Pipe:
    """One DevTools protocol connection over Chromium's debugging pipe."""

    process: subprocess.Popen[bytes]
    to_browser: int
    from_browser: int
    next_id: int = 0
    buffer: bytes = b""
    events: list[dict[str, Any]] = field(default_factory=list)

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("Chromium did not answer in time.")
            ready, _, _ = select.select([self.from_browser], [], [], min(left, 0.5))
            if not ready:
                if self.process.poll() is not None:
                    raise BrowserError(f"Chromium exited with code {self.process.returncode}.")
                continue
            chunk = os.read(self.from_browser, 1 << 20)
            if not chunk:
                raise BrowserError("Chromium closed the debugging pipe.")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """Sends one command and returns its result; events read meanwhile are kept."""
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.to_browser, json.dumps(message).encode("utf-8") + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") != self.next_id:
                self.events.append(reply)
                continue
            if "error" in reply:
                raise BrowserError(f"{method}: {reply['error'].get('message', reply['error'])}")
            return reply.get("result", {})


def _error_line(event: dict[str, Any]) -> str | None:
    # Turns a protocol event into one readable line if it reports an error, else None.
    method = event.get("method")
    params = event.get("params", {})
    if method == "Runtime.exceptionThrown":
        details = params.get("exceptionDetails", {})
        description = details.get("exception", {}).get("description") or details.get("text")
        return f"uncaught: {description} ({details.get('url', '')}:{details.get('lineNumber')})"
    if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
        parts = [str(a.get("value", a.get("description", ""))) for a in params.get("args", [])]
        return f"console.{params['type']}: {' '.join(parts)}"
    if method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
        entry = params["entry"]
        # The browser asks every origin for a favicon by itself; a 404 there is not the page's.
        if str(entry.get("url", "")).endswith("/favicon.ico"):
            return None
        return f"{entry.get('source')}: {entry.get('text')} ({entry.get('url', '')})"
    return None


def _evaluate(pipe: _Pipe, session: str, expression: str) -> Any:
    result = pipe.call(
        "Runtime.evaluate",
        {"expression": expression, "returnByValue": True, "awaitPromise": True},
        session,
    )
    if "exceptionDetails" in result:
        text = result["exceptionDetails"].get("exception", {}).get("description", "error")
        raise BrowserError(f"Evaluating {expression[:60]!r} failed: {text}")
    return result.get("result", {}).get("value")


def capture_page(
    url: str,
    *,
    ready: str = "document.readyState === 'complete'",
    probe: str | None = None,
    width: int = 1280,
    height: int = 900,
    full_page: bool = False,
    timeout: float = 30.0,
    settle: float = 0.3,
    chromium: str | None = None,
    extra_flags: Sequence[str] = (),
) -> PageCapture:
    """Opens ``url`` in headless Chromium, waits for ``ready``, screenshots and reports errors.

    Args:
        url: the page (``file://`` or ``http://``).
        ready: a JavaScript expression that becomes truthy once the page has rendered; polled
            every 100 ms after the load event.
        probe: an optional JavaScript expression evaluated once ready; its JSON value is
            returned (e.g. counts of rendered elements).
        width: viewport width in CSS pixels.
        height: viewport height in CSS pixels.
        full_page: capture the whole document height instead of the viewport.
        timeout: seconds for the whole capture.
        settle: seconds to wait after ``ready`` (canvas paints, late console errors).
        chromium: the browser binary; default :func:`find_chromium`.
        extra_flags: more Chromium command-line flags.

    Returns:
        The screenshot, the console errors and the probe's value.

    Raises:
        GradscopeInputError: no Chromium is installed, or the size is not positive.
        BrowserError: Chromium failed, or ``ready`` stayed false until the timeout (the message
            lists the console errors seen so far).

    Example:
        >>> shot = capture_page("file:///tmp/report.html")  # doctest: +SKIP
        >>> shot.console_errors  # doctest: +SKIP
        ()
    """
    binary = chromium or find_chromium()
    if binary is None:
        raise GradscopeInputError(
            "No Chromium found (looked for /usr/bin/chromium and chromium on PATH); install it, "
            "e.g. 'apt-get install chromium'."
        )
    if width <= 0 or height <= 0:
        raise GradscopeInputError(
            f"Window size must be positive. Received: width={width}, height={height}."
        )
    start = time.monotonic()
    deadline = start + timeout
    with tempfile.TemporaryDirectory(prefix="gradscope-chromium-") as profile:
        args = [
            binary,
            *HEADLESS_FLAGS,
            f"--window-size={width},{height}",
            f"--user-data-dir={profile}",
            *extra_flags,
            "about:blank",
        ]
        pipe = _launch(args)
        try:
            shot, errors, value = _drive(
                pipe, url, ready, probe, (width, height, full_page), deadline, settle
            )
        finally:
            _shutdown(pipe)
    return PageCapture(shot, errors, value, time.monotonic() - start)


def _high_fd(fd: int) -> int:
    # A copy numbered 10 or more, so that moving it to 3 or 4 in the child never clobbers the
    # other end.
    try:
        return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    finally:
        os.close(fd)


def _launch(args: list[str]) -> _Pipe:
    # Chromium reads commands from fd 3 and writes replies to fd 4 of its own process. A bash
    # one-liner moves our pipe ends to those numbers: preexec_fn could do it too, but is unsafe
    # when the parent runs threads (an in-process TensorBoard server does).
    to_read, to_browser = os.pipe()
    from_browser, to_write = os.pipe()
    to_read, to_write = _high_fd(to_read), _high_fd(to_write)
    remap = f'exec "$0" "$@" 3<&{to_read} 4>&{to_write} {to_read}<&- {to_write}>&-'
    try:
        process = subprocess.Popen(
            [shutil.which("bash") or "/bin/bash", "-c", remap, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(to_read, to_write),
        )
    finally:
        os.close(to_read)
        os.close(to_write)
    return _Pipe(process, to_browser, from_browser)


def _drive(
    pipe: _Pipe,
    url: str,
    ready: str,
    probe: str | None,
    view: tuple[int, int, bool],
    deadline: float,
    settle: float,
) -> tuple[bytes, tuple[str, ...], Any]:
    width, height, full_page = view
    target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log"):
        pipe.call(f"{domain}.enable", session=session)
    # --window-size includes the (invisible) window frame; this makes the viewport exact.
    pipe.call(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        session,
    )
    pipe.events.clear()
    pipe.call("Page.navigate", {"url": url}, session)
    value: Any = False
    while time.monotonic() < deadline:
        value = _evaluate(pipe, session, f"Boolean({ready})")
        if value:
            break
        time.sleep(0.1)
    if not value:
        seen = [line for line in map(_error_line, pipe.events) if line]
        raise BrowserError(f"{url} did not render ({ready!r} stayed false); errors: {seen}")
    time.sleep(settle)
    probed = _evaluate(pipe, session, probe) if probe else None
    params: dict[str, Any] = {"format": "png"}
    if full_page:
        size = pipe.call("Page.getLayoutMetrics", session=session)["cssContentSize"]
        params |= {
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
        }
    left = max(1.0, deadline - time.monotonic())
    data = pipe.call("Page.captureScreenshot", params, session, timeout=left)["data"]
    errors = tuple(line for line in map(_error_line, pipe.events) if line)
    return base64.b64decode(data), errors, probed


def _shutdown(pipe: _Pipe) -> None:
    with contextlib.suppress(BrowserError, OSError):
        pipe.call("Browser.close", timeout=5.0)
    try:
        pipe.process.wait(timeout=5.0)
    except subprocess.TimeoutExpired:
        pipe.process.kill()
        pipe.process.wait()
    for fd in (pipe.to_browser, pipe.from_browser):
        os.close(fd)


def save_png(capture: PageCapture, path: str | os.PathLike[str]) -> Path:
    """Writes a capture's screenshot to ``path`` (parent folders created).

    Args:
        capture: a page capture.
        path: the PNG file.

    Returns:
        The path written.

    Example:
        >>> save_png(capture_page("file:///tmp/r.html"), "shot.png")  # doctest: +SKIP
        PosixPath('shot.png')
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(capture.png)
    return out


__all__ = [
    "BrowserError",
    "PageCapture",
    "capture_page",
    "find_chromium",
    "save_png",
]
