"""Source code: the file itself, split at blank lines, sections named after top-level definitions."""

from __future__ import annotations

import ast
import re

from synthrun.ingest.document import Block, Document, line_offsets
from synthrun.ingest.readers.text import paragraphs

#: File suffix -> language of the code files ingest understands.
LANGUAGES: dict[str, str] = {
    ".py": "python", ".pyx": "cython", ".pxd": "cython", ".pyi": "python",
    ".c": "c", ".h": "c", ".cc": "c++", ".cpp": "c++", ".cxx": "c++", ".hpp": "c++", ".hh": "c++",
    ".hxx": "c++", ".cu": "cuda", ".f": "fortran", ".f90": "fortran", ".f95": "fortran",
    ".java": "java", ".js": "javascript", ".mjs": "javascript", ".ts": "typescript", ".go": "go",
    ".rs": "rust", ".rb": "ruby", ".jl": "julia", ".r": "r", ".m": "matlab", ".sh": "shell",
    ".bash": "shell", ".cmake": "cmake", ".sql": "sql", ".scala": "scala", ".kt": "kotlin", ".swift": "swift",
}

# A C-family function definition head at column 0: `type name(args` not ending in `;`.
_C_FUNCTION = re.compile(r"^(?![#/*\s])(?!(?:if|for|while|switch|return|else|typedef)\b)"
                         r"[\w\s\*&:<>,~]*?\b([A-Za-z_]\w*(?:::~?\w+)*)\s*\([^;]*$")
_C_TYPE = re.compile(r"^(?:typedef\s+)?(struct|class|enum|union|namespace)\s+(\w+)[^;]*$")


def _python_sections(text: str) -> list[tuple[int, str]]:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    sections = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            kind = "class" if isinstance(node, ast.ClassDef) else "def"
            sections.append((first - 1, f"{kind} {node.name}"))
            sections.append((node.end_lineno or node.lineno, ""))
    return sections


def _c_sections(lines: list[str]) -> list[tuple[int, str]]:
    sections = []
    for i, line in enumerate(lines):
        match = _C_TYPE.match(line)
        if match:
            sections.append((i, f"{match.group(1)} {match.group(2)}"))
            continue
        match = _C_FUNCTION.match(line)
        if not match:
            continue
        rest = "".join(lines[i:i + 4])
        if "{" in rest and ";" not in rest.split("{", 1)[0]:
            sections.append((i, f"{match.group(1)}()"))
    return sections


def read_code(text: str, name: str = "", language: str = "") -> Document:
    """One block per blank-line separated run of lines; sections follow top-level definitions."""
    lines = text.splitlines(keepends=True)
    offsets = line_offsets(text)
    if language in ("python", "cython"):
        marks = _python_sections(text)
    elif language in ("c", "c++", "cuda"):
        marks = _c_sections(lines)
    else:
        marks = []
    bounds = sorted((offsets[min(line, len(offsets) - 1)], label) for line, label in marks)
    blocks: list[Block] = []
    for start, end in paragraphs(text):
        start = text.rfind("\n", 0, start) + 1  # keep the first line's indentation
        # cut a paragraph where a definition starts inside it (no blank line before it)
        cuts = [start] + [pos for pos, _ in bounds if start < pos < end] + [end]
        for s, e in zip(cuts, cuts[1:], strict=False):
            piece = text[s:e].rstrip()
            if piece.strip():
                section = ""
                for pos, label in bounds:
                    if pos <= s:
                        section = label
                blocks.append(Block(s, s + len(piece), section))
    return Document(text=text, title=name, blocks=blocks, kind="code", language=language)
