"""reStructuredText via docutils, tolerant of Sphinx directives and roles.

docutils alone does not know Sphinx markup (``.. autoclass::``, ``:class:`File```).
This module registers permissive stand-ins: object directives (``class``, ``method``,
``autofunction``, ``data`` ...) become a signature line plus their parsed content, and
Sphinx roles render as their display text. Any directive still unknown is reported by
docutils as a (silenced) system message holding the raw directive text, which is kept
as plain text instead of being lost. File inclusion and raw passthrough are disabled.
"""

from __future__ import annotations

import io
import re

from docutils import nodes
from docutils.parsers.rst import Directive, directives, roles
from docutils.statemachine import StringList

from synthrun.ingest.document import Document, TextBuilder, section_path


class _AnyOptions(dict):
    """An ``option_spec`` accepting every option (Sphinx directives have many)."""

    def __missing__(self, key):
        return directives.unchanged

    def __bool__(self) -> bool:
        return True


class sphinx_object(nodes.Element):  # docutils node classes are lowercase
    """A Sphinx directive kept as ``signature`` + parsed content."""


_PREFIXES = {"versionadded": "New in version", "versionchanged": "Changed in version",
             "deprecated": "Deprecated since version", "seealso": "See also:"}
_SKIPPED = {"toctree", "index", "highlight", "currentmodule", "module", "py:module", "py:currentmodule",
            "literalinclude", "tabularcolumns", "autosummary", "include", "raw", "only", "ifconfig",
            "default-role", "default-domain", "c:namespace", "cpp:namespace", "testsetup", "testcleanup"}
_CODE = {"code-block", "sourcecode", "code", "doctest", "testcode", "testoutput", "ipython", "jupyter-execute"}
_OBJECTS = [
    "class", "method", "function", "attribute", "data", "exception", "classmethod", "staticmethod",
    "decorator", "property", "describe", "object", "envvar", "option", "program", "glossary",
    "autoclass", "autofunction", "automethod", "autoattribute", "automodule", "autodata",
    "autoexception", "autoproperty", "rubric", "centered", "hlist", "productionlist", "todo", "plot",
    *[f"py:{n}" for n in ("class", "method", "function", "attribute", "data", "exception",
                          "classmethod", "staticmethod", "decorator", "property")],
    *[f"c:{n}" for n in ("function", "type", "macro", "member", "var", "struct", "enum", "enumerator")],
    *[f"cpp:{n}" for n in ("class", "function", "member", "type", "enum", "struct")],
]


class _SphinxDirective(Directive):
    has_content = True
    optional_arguments = 20
    final_argument_whitespace = True
    option_spec = _AnyOptions()

    def run(self):
        name = self.name.lower()
        if name in _SKIPPED:
            return []
        if name in _CODE:
            text = "\n".join(self.content)
            return [nodes.literal_block(text, text)] if text.strip() else []
        node = sphinx_object()
        node["directive"] = name
        node["signature"] = " ".join(self.arguments)
        content = list(self.content)
        if name in _PREFIXES:  # `.. versionchanged:: 3.0 text`: the text after the version is content
            version, _, rest = node["signature"].partition(" ")
            node["signature"], rest = ("", node["signature"]) if name == "seealso" else (version, rest)
            content = ([rest, ""] if rest.strip() else []) + content
        if content:
            self.state.nested_parse(StringList(content), self.content_offset, node)
        return [node]


def _display(text: str) -> str:
    """Display text of a Sphinx cross-reference: ``title <target>`` -> title, ``~a.b.c`` -> c."""
    match = re.match(r"^(.*?)\s*<([^<>]+)>$", text, re.S)
    if match and match.group(1):
        return match.group(1)
    target = match.group(2) if match else text
    if target.startswith("~"):
        target = target[1:].rsplit(".", 1)[-1]
    return target.lstrip("!")


def _sphinx_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    shown = _display(text)
    if name in ("issue", "pr"):
        shown = f"#{shown}"
    return [nodes.literal(rawtext, shown)], []


_ROLES = ["ref", "doc", "class", "func", "meth", "attr", "mod", "data", "exc", "obj", "const", "term",
          "issue", "pr", "envvar", "option", "program", "file", "samp", "kbd", "abbr", "command", "dfn",
          "guilabel", "menuselection", "mimetype", "newsgroup", "regexp", "numref", "keyword", "download",
          "any", "token", "manpage", "pep", "rfc",
          *[f"py:{n}" for n in ("class", "func", "meth", "attr", "mod", "data", "exc", "obj", "const")],
          *[f"c:{n}" for n in ("func", "type", "macro", "data", "member", "var", "struct", "enum")],
          *[f"cpp:{n}" for n in ("class", "func", "member", "type", "any")]]

_registered = False


def _register() -> None:
    global _registered
    if _registered:
        return
    for name in [*_OBJECTS, *_SKIPPED, *_CODE, *_PREFIXES]:
        directives.register_directive(name, _SphinxDirective)
    for name in _ROLES:
        roles.register_local_role(name, _sphinx_role)
    _registered = True


_SETTINGS = {"report_level": 5, "halt_level": 5, "file_insertion_enabled": False, "raw_enabled": False,
             "input_encoding": "unicode", "syntax_highlight": "none", "doctitle_xform": False,
             "sectsubtitle_xform": False, "smart_quotes": False}


# Markup that carries no text for a reader.
_HIDDEN = (nodes.comment, nodes.target, nodes.substitution_definition, nodes.raw, nodes.pending, nodes.title,
           nodes.Invisible)


def _flat(text: str) -> str:
    """Join the lines of a paragraph (reST wraps prose at arbitrary columns)."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


class _Extractor:
    def __init__(self) -> None:
        self.out = TextBuilder()
        self.titles: list[str] = []
        self.first_title = ""

    @property
    def section(self) -> str:
        return section_path(self.titles)

    def walk(self, node: nodes.Node) -> None:
        for child in node.children:
            self.visit(child)

    def visit(self, node: nodes.Node) -> None:
        if isinstance(node, nodes.section):
            self._section(node)
        elif isinstance(node, _HIDDEN) and not isinstance(node, nodes.system_message):
            return
        elif self._block(node) or self._structure(node):
            return
        elif isinstance(node, sphinx_object):
            self._sphinx_object(node)
        elif isinstance(node, nodes.Text):
            self.out.add(_flat(node.astext()), self.section)
        elif isinstance(node, nodes.Element):
            if any(isinstance(c, nodes.Body) or isinstance(c, nodes.section) for c in node.children):
                self.walk(node)
            else:
                self.out.add(_flat(node.astext()), self.section)

    def _section(self, node: nodes.Node) -> None:
        title = _flat(node[0].astext()) if node.children and isinstance(node[0], nodes.title) else ""
        self.first_title = self.first_title or title
        self.titles.append(title)
        self.out.add(title, self.section)
        for child in node.children[1:]:
            self.visit(child)
        self.titles.pop()

    def _block(self, node: nodes.Node) -> bool:
        """Text blocks added as they are; False when ``node`` is not one."""
        if isinstance(node, nodes.system_message):
            for block in node.findall(nodes.literal_block):  # the raw text of an unknown directive
                self.out.add(block.astext(), self.section)
        elif isinstance(node, (nodes.literal_block, nodes.doctest_block)):
            self.out.add(node.astext(), self.section)
        elif isinstance(node, (nodes.paragraph, nodes.rubric, nodes.line_block, nodes.caption)):
            self.out.add(_flat(node.astext()), self.section)
        else:
            return False
        return True

    def _structure(self, node: nodes.Node) -> bool:
        """Lists, tables and admonitions; False when ``node`` is none of them."""
        if isinstance(node, (nodes.bullet_list, nodes.enumerated_list)):
            for i, item in enumerate(node.children, 1):
                self._item(item, f"{i}." if isinstance(node, nodes.enumerated_list) else "-")
        elif isinstance(node, nodes.definition_list):
            for item in node.children:
                term = " ".join(_flat(t.astext()) for t in item.children if isinstance(t, nodes.term))
                body = [d for d in item.children if isinstance(d, nodes.definition)]
                self._item_text(term if term.endswith(":") else f"{term}:", body)
        elif isinstance(node, nodes.field_list):
            for field in node.children:
                self._item_text(_flat(field[0].astext()) + ":", field.children[1:])
        elif isinstance(node, nodes.table):
            rows = [" | ".join(_flat(entry.astext()) for entry in row.children)
                    for row in node.findall(nodes.row)]
            self.out.add("\n".join(rows), self.section)
        elif isinstance(node, nodes.Admonition):
            label = type(node).__name__.capitalize() if not isinstance(node, nodes.admonition) else ""
            if label:
                self.out.add(f"{label}:", self.section)
            self.walk(node)
        else:
            return False
        return True

    def _sphinx_object(self, node: nodes.Node) -> None:
        name, signature = node["directive"], node["signature"]
        if name in _PREFIXES:
            head = f"{_PREFIXES[name]} {signature}".strip()
            head = head if head.endswith(":") else f"{head}:"
            first, rest = (node.children[0], node.children[1:]) if node.children else (None, [])
            if isinstance(first, nodes.paragraph):
                self.out.add(f"{head} {_flat(first.astext())}", self.section)
            else:
                self.out.add(head, self.section)
                rest = node.children
            for child in rest:
                self.visit(child)
            return
        if name not in ("rubric", "centered", "hlist", "todo", "glossary", "productionlist") or signature:
            self.out.add(f"{name.split(':')[-1]} {signature}".strip(), self.section)
        self.walk(node)

    def _item(self, item: nodes.Node, marker: str) -> None:
        self._item_text(marker, item.children)

    def _item_text(self, head: str, body) -> None:
        parts = [head] if head else []
        nested: list[nodes.Node] = []
        for child in body:
            for sub in (child.children if isinstance(child, (nodes.definition, nodes.field_body)) else [child]):
                if isinstance(sub, nodes.paragraph) and not nested:
                    parts.append(_flat(sub.astext()))
                else:
                    nested.append(sub)
        self.out.add(" ".join(parts), self.section)
        for sub in nested:
            self.visit(sub)


def read_rst(text: str, name: str = "") -> Document:
    """Parse reStructuredText into a :class:`Document` (never raises on unknown markup)."""
    from docutils.core import publish_doctree

    _register()
    settings = dict(_SETTINGS, warning_stream=io.StringIO())
    tree = publish_doctree(text, source_path=name or None, settings_overrides=settings)
    extractor = _Extractor()
    extractor.walk(tree)
    return Document(text=extractor.out.text, title=extractor.first_title, blocks=extractor.out.blocks)
