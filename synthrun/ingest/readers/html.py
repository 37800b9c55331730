"""HTML via BeautifulSoup: headings, paragraphs, list items, code and tables as blocks."""

from __future__ import annotations

import re

from synthrun.ingest.document import Document, TextBuilder, section_path

_DROP = ["script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form", "button",
         "svg", "iframe"]
# Sphinx / typical site chrome that is not document content.
_DROP_SELECTORS = ["[role=navigation]", "[role=search]", "div.sphinxsidebar", "div.related", "div.footer",
                   "a.headerlink"]
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_LEAVES = {"p", "dt", "dd", "caption", "figcaption", "summary", "address"}
_CONTAINERS = {"body", "main", "article", "section", "div", "ul", "ol", "dl", "blockquote", "details",
               "figure", "center", "html", "fieldset"}
_BLOCK_TAGS = _HEADINGS | _LEAVES | _CONTAINERS | {"li", "pre", "table", "hr", "br"}


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


class _Walker:
    def __init__(self) -> None:
        self.out = TextBuilder()
        self.headings: list[tuple[int, str]] = []
        self.first_heading = ""
        self.inline: list[str] = []
        self.prefix = ""

    @property
    def section(self) -> str:
        return section_path([t for _, t in self.headings])

    def add(self, text: str) -> None:
        if text.strip():
            self.out.add(self.prefix + text, self.section)
            self.prefix = ""

    def flush(self) -> None:
        text = _clean("".join(self.inline))
        self.inline = []
        self.add(text)

    def walk(self, element) -> None:
        from bs4 import NavigableString, Tag

        for child in element.children:
            if isinstance(child, NavigableString):
                if type(child).__name__ in ("Comment", "Doctype", "Declaration", "ProcessingInstruction"):
                    continue
                self.inline.append(str(child))
                continue
            if not isinstance(child, Tag):
                continue
            name = child.name.lower()
            if name not in _BLOCK_TAGS:
                self.inline.append(child.get_text())
                continue
            self.flush()
            if name in _HEADINGS:
                level, text = int(name[1]), _clean(child.get_text())
                self.headings = [(lv, t) for lv, t in self.headings if lv < level] + [(level, text)]
                self.first_heading = self.first_heading or text
                self.add(text)
            elif name == "pre":
                self.add(child.get_text())
            elif name == "table":
                rows = [" | ".join(_clean(c.get_text(" ")) for c in row.find_all(["td", "th"]))
                        for row in child.find_all("tr")]
                self.add("\n".join(r for r in rows if r.strip(" |")))
            elif name == "li":
                if child.find(["ul", "ol", "dl", "pre", "table", "blockquote"]):
                    self.prefix = "- "
                    self.walk(child)
                    self.flush()
                    self.prefix = ""
                else:
                    self.add("- " + _clean(child.get_text()))
            elif name in _LEAVES:
                self.add(_clean(child.get_text()))
            elif name in _CONTAINERS:
                self.walk(child)
                self.flush()


def read_html(text: str, name: str = "") -> Document:
    """Extract the readable content of an HTML page (navigation, scripts and styles dropped)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    page_title = _clean(soup.title.get_text()) if soup.title else ""
    for tag in soup(_DROP):
        tag.decompose()
    for selector in _DROP_SELECTORS:
        for tag in soup.select(selector):
            tag.decompose()
    root = soup.body or soup
    walker = _Walker()
    walker.walk(root)
    walker.flush()
    return Document(text=walker.out.text, title=walker.first_heading or page_title, blocks=walker.out.blocks)
