"""Markdown via markdown-it-py: the text is the file itself, blocks come from the token map."""

from __future__ import annotations

import re

from synthrun.ingest.document import Block, Document, line_offsets, section_path

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*\n", re.S)
_CONTAINERS = {"bullet_list_open", "ordered_list_open", "blockquote_open"}


def read_markdown(text: str, name: str = "") -> Document:
    """Split Markdown into heading-scoped blocks (paragraphs, list items, code, tables)."""
    from markdown_it import MarkdownIt

    title = ""
    skip_lines = 0
    front = _FRONT_MATTER.match(text)
    if front:
        skip_lines = front.group(0).count("\n")
        found = re.search(r"^title:\s*['\"]?(.*?)['\"]?\s*$", front.group(1), re.M)
        title = found.group(1) if found else ""
    body = "\n" * skip_lines + text[front.end():] if front else text
    tokens = MarkdownIt("commonmark").enable("table").parse(body)
    offsets = line_offsets(text)
    last_line = len(offsets) - 1
    blocks: list[Block] = []
    headings: list[tuple[int, str]] = []
    first_heading = ""

    def span(lines: list[int]) -> tuple[int, int]:
        start, end = offsets[min(lines[0], last_line)], offsets[min(lines[1], last_line)]
        while end > start and text[end - 1] in "\r\n \t":
            end -= 1
        return start, end

    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.type == "heading_open":
            level = int(tok.tag[1])
            inline = tokens[i + 1]
            heading = "".join(c.content for c in inline.children or [] if c.type in ("text", "code_inline"))
            heading = heading.strip() or inline.content.strip()
            first_heading = first_heading or heading
            headings = [(lv, t) for lv, t in headings if lv < level] + [(level, heading)]
            title = title or (heading if level == 1 else "")
        if tok.map and tok.level == 0 or (tok.map and tok.type == "list_item_open" and tok.level == 1):
            if tok.type in _CONTAINERS and tok.type != "blockquote_open":
                i += 1  # descend: each list item becomes a block
                continue
            start, end = span(tok.map)
            if end > start:
                blocks.append(Block(start, end, section_path([t for _, t in headings])))
            depth, i = tok.nesting, i + 1
            while depth > 0 and i < len(tokens):  # skip the block's inner tokens
                depth += tokens[i].nesting
                i += 1
            continue
        i += 1
    return Document(text=text, title=title or first_heading, blocks=blocks)
