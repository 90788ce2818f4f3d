"""Reading generated HTML reports in tests: the sections, elements and text they hold."""

from __future__ import annotations

from html.parser import HTMLParser

#: The sections of one run's part of the report, in order.
RUN_SECTIONS = ("summary", "findings", "heatmap", "depth", "update-ratio", "activations", "loss",
                "model")  # fmt: skip


class Page(HTMLParser):
    """Collects what the tests look at: elements with their attributes and the text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def tags(self, tag: str) -> list[dict[str, str]]:
        return [a for t, a in self.elements if t == tag]

    def sections(self) -> list[str]:
        return [a["data-section"] for a in self.tags("section") if "data-section" in a]


def section(html: str, name: str, occurrence: int = 0) -> str:
    """The HTML of the ``occurrence``-th ``<section data-section=name>``."""
    return html.split(f'data-section="{name}"')[1 + occurrence].split("</section>")[0]
