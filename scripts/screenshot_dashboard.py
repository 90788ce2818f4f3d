"""Screenshot of the gradscope TensorBoard dashboard, for the README.

Starts TensorBoard in-process on a log directory, opens its "gradscope" tab in the system
Chromium (Playwright, ``/usr/bin/chromium``; nothing is downloaded) and saves a PNG. The browser
and server helpers are the browser tests' own (``tests/chromium.py``), so the picture is taken
the way the tests check the dashboard.

Example:
    python scripts/screenshot_dashboard.py --logdir reports/demo --out reports/dashboard.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# Test tooling stays out of the installed package; this script borrows it from tests/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from chromium import capture, launch, open_dashboard, serve_tensorboard
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright


def main(argv: list[str] | None = None) -> int:
    """Parses the arguments, captures the dashboard and writes the PNG; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", type=Path, required=True, help="TensorBoard's --logdir.")
    parser.add_argument("--out", type=Path, required=True, help="The PNG file to write.")
    parser.add_argument("--width", type=int, default=1400, help="Viewport width (CSS px).")
    parser.add_argument("--height", type=int, default=1000, help="Viewport height (CSS px).")
    parser.add_argument(
        "--no-ui",
        action="store_true",
        help="The dashboard's own page (whole height) instead of TensorBoard's UI tab.",
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="Seconds for the capture.")
    args = parser.parse_args(argv)
    try:
        with serve_tensorboard(args.logdir) as url, sync_playwright() as playwright:
            browser = launch(playwright)
            try:
                page = open_dashboard(
                    browser,
                    url,
                    in_tensorboard_ui=not args.no_ui,
                    width=args.width,
                    height=args.height,
                    timeout=args.timeout,
                )
                shot = capture(page, full_page=args.no_ui)
            finally:
                browser.close()
    except (OSError, PlaywrightError) as err:
        print(f"screenshot_dashboard: {err}", file=sys.stderr)
        return 2
    for line in shot.errors:
        print(f"browser console: {line}", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(shot.png)
    print(f"Dashboard screenshot written to {args.out} ({len(shot.png) / 1024:.0f} KiB)")
    # A dashboard that logged errors is not one to show in the README.
    return 1 if shot.errors else 0


if __name__ == "__main__":
    sys.exit(main())
