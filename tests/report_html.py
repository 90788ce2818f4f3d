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


#: Elements without an end tag: never left open while collecting text.
VOID_TAGS = frozenset({"area", "br", "col", "embed", "hr", "img", "input", "link", "meta", "wbr"})


class Texts(HTMLParser):
    """Every element in document order with its attributes and its whole text content."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str], list[str]]] = []
        self._open: list[tuple[str, list[str]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        parts: list[str] = []
        self.elements.append((tag, {k: v or "" for k, v in attrs}, parts))
        if tag not in VOID_TAGS:
            self._open.append((tag, parts))

    def handle_endtag(self, tag: str) -> None:
        # Close up to the matching element (the report's HTML is well formed; be lenient anyway).
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i][0] == tag:
                del self._open[i:]
                return

    def handle_data(self, data: str) -> None:
        for _, parts in self._open:
            parts.append(data)

    def find(self, tag: str | None = None, attr: str | None = None) -> list[tuple[int, str]]:
        """``(index, text)`` of the elements with that tag and/or attribute, in order."""
        return [
            (i, "".join(parts))
            for i, (t, attrs, parts) in enumerate(self.elements)
            if (tag is None or t == tag) and (attr is None or attr in attrs)
        ]

    def previous(self, index: int, tag: str) -> str:
        """The text of the last ``tag`` element that starts before element ``index``."""
        for t, _, parts in reversed(self.elements[:index]):
            if t == tag:
                return "".join(parts)
        raise AssertionError(f"no <{tag}> before element {index}")
