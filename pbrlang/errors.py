"""pbrlang's errors: positioned diagnostics for contracts, located errors for data.

Every problem a user can cause is one of these; the CLI prints them and exits
1, the Python API raises them. Nothing else should escape to a user.
"""

from __future__ import annotations

from .frozen import Frozen
from .source import Span


class Diagnostic(Frozen):
    """One problem in a contract: a stable code, a message, where, and a hint."""

    code: str
    message: str
    span: Span | None
    hint: str | None = None
    severity: str = "error"  # or "warning"

    def render(self) -> str:
        head = f"{self.severity}[{self.code}]: {self.message}"
        if self.span is None:
            return head + (f"\n  = hint: {self.hint}" if self.hint else "")
        sp = self.span
        text = sp.source.line(sp.line)
        number = str(sp.line)
        gutter = " " * len(number)
        width = (sp.end_column - sp.column) if sp.end_line == sp.line else len(text) - sp.column + 1
        width = max(1, width)
        caret = " " * (sp.column - 1) + "^" * width
        lines = [
            head,
            f"{gutter}--> {sp.location}",
            f"{gutter} |",
            f"{number} | {text}",
            f"{gutter} | {caret}" + (f" {self.hint}" if self.hint else ""),
        ]
        return "\n".join(lines)


class PbrError(Exception):
    """Base of every error pbrlang raises on purpose."""

    def render(self) -> str:
        return str(self)


class ContractError(PbrError):
    """A contract that cannot be used: syntax or check errors, all of them, sorted."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = sorted(
            diagnostics, key=lambda d: (d.span.sort_key() if d.span else ("", 0, 0), d.code)
        )
        super().__init__(self.render())

    def render(self) -> str:
        errors = [d for d in self.diagnostics if d.severity == "error"]
        body = "\n\n".join(d.render() for d in self.diagnostics)
        return body + f"\n\n{len(errors)} error{'s' if len(errors) != 1 else ''} found"


class ContractSyntaxError(ContractError):
    """The contract's text does not follow the grammar."""


class ContractCheckError(ContractError):
    """The contract parses but is not well formed or well typed."""


class DataProblem(Frozen):
    """One problem in the input data, located by file, row (line) and field."""

    file: str
    row: int | None
    field: str | None
    message: str
    table: str | None = None  # which table the file holds
    _hidden = ("table",)

    def render(self) -> str:
        where = self.file + (f":{self.row}" if self.row is not None else "")
        if self.field and ", " in self.field:
            what = " fields " + ", ".join(f"`{f}`" for f in self.field.split(", ")) + ":"
        else:
            what = f" field `{self.field}`:" if self.field else ""
        return f"data error: {where}:{what} {self.message}"


class DataError(PbrError):
    """Input tables that cannot be evaluated; carries every problem found."""

    def __init__(self, problems: list[DataProblem]):
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        shown = self.problems[:50]
        text = "\n".join(p.render() for p in shown)
        if len(self.problems) > len(shown):
            text += f"\n... and {len(self.problems) - len(shown)} more data errors"
        return text


class EvaluationError(PbrError):
    """A record that cannot be evaluated (reported, never skipped)."""

    def __init__(self, message: str, subject: str | None = None, span: Span | None = None):
        self.message = message
        self.subject = subject
        self.span = span
        where = f" ({span.location})" if span else ""
        who = f"subject {subject}: " if subject else ""
        super().__init__(f"evaluation error: {who}{message}{where}")


class UsageError(PbrError):
    """The command or API was called wrongly (a bad date, a missing file)."""


class EvaluationErrors(EvaluationError):
    """Subjects that could not be evaluated: every one is listed; none is skipped."""

    def __init__(self, errors: list[EvaluationError]):
        self.errors = errors
        shown = "\n".join(str(e) for e in errors[:50])
        more = f"\n... and {len(errors) - 50} more" if len(errors) > 50 else ""
        Exception.__init__(self, shown + more)
