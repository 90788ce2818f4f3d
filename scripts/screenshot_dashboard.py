"""Screenshot of the gradscope TensorBoard dashboard, for the README.

Starts TensorBoard in-process on a log directory, opens its "gradscope" tab in headless Chromium
and saves a PNG. The browser and server helpers are the ones the browser tests use
(gradscope.render.browser, gradscope.render.tb_plugin.serve).

Example:
    python scripts/screenshot_dashboard.py --logdir reports/demo --out reports/dashboard.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gradscope.errors import GradscopeInputError
from gradscope.render.browser import BrowserError, save_png
from gradscope.render.tb_plugin.serve import capture_dashboard, serve_tensorboard


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
        with serve_tensorboard(args.logdir) as url:
            capture = capture_dashboard(
                url,
                in_tensorboard_ui=not args.no_ui,
                width=args.width,
                height=args.height,
                full_page=args.no_ui,
                timeout=args.timeout,
            )
    except (GradscopeInputError, BrowserError) as err:
        print(f"screenshot_dashboard: {err}", file=sys.stderr)
        return 2
    for line in capture.console_errors:
        print(f"browser console: {line}", file=sys.stderr)
    path = save_png(capture, args.out)
    print(
        f"Dashboard screenshot written to {path} ({len(capture.png) / 1024:.0f} KiB, "
        f"{capture.seconds:.1f} s)"
    )
    # A dashboard that logged errors is not one to show in the README.
    return 1 if capture.console_errors else 0


if __name__ == "__main__":
    sys.exit(main())
