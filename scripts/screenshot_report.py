"""Screenshot of an HTML report's first screen, for the README.

Opens the report in the system Chromium (Playwright, ``/usr/bin/chromium``; nothing is
downloaded) with the browser tests' own helpers (``tests/chromium.py``) and saves a PNG.

Example:
    python scripts/screenshot_report.py --html reports/demo/report.html --out reports/report.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# Test tooling stays out of the installed package; this script borrows it from tests/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from chromium import capture, launch, open_page
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

#: The report has rendered once every embedded figure has decoded.
READY = "document.readyState === 'complete' && [...document.images].every(i => i.complete)"


def main(argv: list[str] | None = None) -> int:
    """Parses the arguments, captures the report and writes the PNG; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, required=True, help="The report to open.")
    parser.add_argument("--out", type=Path, required=True, help="The PNG file to write.")
    parser.add_argument("--width", type=int, default=1400, help="Viewport width (CSS px).")
    parser.add_argument("--height", type=int, default=1100, help="Viewport height (CSS px).")
    args = parser.parse_args(argv)
    if not args.html.is_file():
        print(f"screenshot_report: no report at '{args.html}'", file=sys.stderr)
        return 2
    try:
        with sync_playwright() as playwright:
            browser = launch(playwright)
            try:
                page = open_page(
                    browser,
                    args.html.resolve().as_uri(),
                    ready=READY,
                    width=args.width,
                    height=args.height,
                )
                shot = capture(page)
            finally:
                browser.close()
    except (OSError, PlaywrightError) as err:
        print(f"screenshot_report: {err}", file=sys.stderr)
        return 2
    for line in shot.errors:
        print(f"browser console: {line}", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(shot.png)
    print(f"Report screenshot written to {args.out} ({len(shot.png) / 1024:.0f} KiB)")
    return 1 if shot.errors else 0


if __name__ == "__main__":
    sys.exit(main())
