"""Where things come from: source texts and the spans that point into them."""

from __future__ import annotations

import functools

from .frozen import Frozen


class Source(Frozen):
    """A contract's text and the name it is reported under (usually its path)."""

    name: str
    text: str

    def line(self, number: int) -> str:
        lines = self.text.splitlines()
        if 1 <= number <= len(lines):
            return lines[number - 1]
        return ""


class ContractSource(Source):
    """A contract's Source whose lines are split once, where the parser counts them.

    The parser numbers lines at each "\\n" only (a form feed or a U+2028 in a
    contract does not start a line for it), and diagnostics render the line
    they point at; splitting once also keeps rendering a hundred diagnostics
    of a large text quick.
    """

    @functools.cached_property
    def lines(self) -> tuple:
        return tuple(line[:-1] if line.endswith("\r") else line for line in self.text.split("\n"))

    def line(self, number: int) -> str:
        if 1 <= number <= len(self.lines):
            return self.lines[number - 1]
        return ""

    def last_position(self) -> tuple[int, int]:
        """Where the text ends: just after its last line, not counting a final line break."""
        lines = self.lines
        count = len(lines) - 1 if len(lines) > 1 and lines[-1] == "" else len(lines)
        return count, len(lines[count - 1]) + 1


class Span(Frozen):
    """A stretch of a source: 1-based lines and columns, end column exclusive."""

    source: Source
    line: int
    column: int
    end_line: int
    end_column: int
    _hidden = ("source",)  # two spans are equal where they point, whatever text they are in

    def __init__(self, source: Source, line: int, column: int, end_line: int, end_column: int) -> None:
        # Written out: the parser makes one for every node.
        values = self.__dict__
        values["source"] = source
        values["line"] = line
        values["column"] = column
        values["end_line"] = end_line
        values["end_column"] = end_column

    @classmethod
    def from_meta(cls, source: Source, meta) -> "Span":
        if getattr(meta, "empty", True):
            return cls(source, 1, 1, 1, 1)
        return cls(source, meta.line, meta.column, meta.end_line, meta.end_column)

    @classmethod
    def from_token(cls, source: Source, token) -> "Span":
        line = token.line or 1
        column = token.column or 1
        end_line = token.end_line or line
        end_column = token.end_column or column + len(str(token))
        return cls(source, line, column, end_line, end_column)

    @classmethod
    def at(cls, source: Source, line: int, column: int, width: int = 1) -> "Span":
        return cls(source, line, column, line, column + max(width, 1))

    def join(self, other: "Span") -> "Span":
        start = min((self.line, self.column), (other.line, other.column))
        end = max((self.end_line, self.end_column), (other.end_line, other.end_column))
        return Span(self.source, start[0], start[1], end[0], end[1])

    @property
    def location(self) -> str:
        return f"{self.source.name}:{self.line}:{self.column}"

    def sort_key(self) -> tuple:
        return (self.source.name, self.line, self.column)
