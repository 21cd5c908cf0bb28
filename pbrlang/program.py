"""The checked program: what the checker proves and the compiler compiles.

Everything here has been resolved and typed; expressions are syntax-tree
nodes with their `type` and `meaning` filled in. Once compiled, the program
the evaluator reads holds none of them (`for_evaluation`): it is read back
from the cache and evaluated without importing the syntax tree.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from . import types as t
from .frozen import Frozen
from .source import Source, Span

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: `typing` is not imported on the evaluator's path
    from typing import Any


class _Checked(Frozen):
    span: Span | None = None  # given by name, after the other fields
    _hidden = ("span",)  # where a thing is written is not part of what it says
    _last = ("span",)


class FieldInfo(_Checked):
    name: str
    type: t.Type
    optional: bool
    index: int
    references: str | None  # the table this field refers to, if any
    values: tuple[str, ...] | None  # an enumeration's values


class TableInfo(_Checked):
    name: str
    fields: tuple[FieldInfo, ...]
    key: str | None
    checks: tuple[Any, ...]
    virtual: bool = False  # computed by the evaluator (cohorts), not read from data

    def field(self, name: str) -> FieldInfo | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None

    def links_to(self, table: str) -> list[FieldInfo]:
        return [f for f in self.fields if f.references == table]


class Subject(_Checked):
    name: str
    table: str


class Band(_Checked):
    name: str
    entries: tuple[tuple[str, int, int | None], ...]  # (label, first day, last day or None), by first day

    def label_of(self, day: int) -> str | None:
        cache = labels_by_day(self.entries)
        label = cache.get(day, _MISSING)
        if label is _MISSING:
            label = None
            for name, start, end in self.entries:
                if day >= start and (end is None or day <= end):
                    label = name
                    break
            if len(cache) < 200_000:
                cache[day] = label
        return label


_MISSING = object()
_BAND_CACHE: dict = {}  # band entries -> {day: label}: days repeat across millions of records


class _Labels(dict):
    """A band's labels by day. Pickled as its band's entries, so that a compiled contract read back
    from the cache shares the one dict of the band's labels again (its code reads this one)."""

    __slots__ = ("entries",)

    def __reduce__(self):
        return labels_by_day, (self.entries,)


def labels_by_day(entries: tuple) -> dict:
    """The one dict of labels by day for a band's entries."""
    labels = _BAND_CACHE.get(entries)
    if labels is None:
        labels = _BAND_CACHE[entries] = _Labels()
        labels.entries = entries
    return labels


class Tariff(_Checked):
    name: str
    keys: tuple[t.Type, ...]
    cells: dict  # key tuple -> value (Decimal, int or None)
    value_type: t.Type


class Let(_Checked):
    name: str
    expr: Any
    record_table: str | None  # `let x of r in table`: one value per record
    binder: str | None
    deps: frozenset[str]
    per_subject: bool


class Outcome(_Checked):
    name: str
    index: int  # contract order
    conditions: tuple[Any, ...]
    achieved: Any
    recurring: Any
    pays: Any
    shares: tuple[tuple[str, Fraction], ...]
    instead_of: tuple[str, ...]
    requires: tuple[str, ...]
    deps: frozenset[str]
    reports: tuple[tuple[str, Any], ...] = ()  # extra statement fields: (name, expression or None for `due`/a let)
    deferred: bool = False  # pays or reports use `paid`: evaluated in the ordered pass
    clause_spans: dict | None = None  # where each clause is written
    _hidden = ("span", "clause_spans")


class Cap(_Checked):
    name: str
    limit: Any
    scopes: tuple[str, ...]  # "subject", "outcome", "month", "financial_year", band names
    outcomes: tuple[str, ...]  # empty: every outcome
    per_subject_limit: bool


class Ceiling(_Checked):
    name: str
    limit: Any
    scopes: tuple[str, ...]
    funder: str
    overflow_to: str | None


COHORT_FIELDS = (
    ("id", t.TEXT),
    ("pooled", t.BOOLEAN),
    ("released_from", t.DATE),
    ("released_to", t.DATE),
    ("assessment_date", t.DATE),
    ("size", t.INTEGER),
    ("events", t.INTEGER),
    ("comparison", t.DECIMAL),
    ("rate", t.DECIMAL),
    ("expected_events", t.DECIMAL),
    ("events_avoided", t.DECIMAL),
    ("reduction", t.DECIMAL),
)


class Cohort(_Checked):
    """The members placed by a date from `start` to `end` (days), against a comparison group."""

    name: str
    start: int
    end: int
    comparison: Decimal  # events per 100 expected from the comparison group
    assessed: int  # the assessment day
    reports: tuple[tuple[str, t.Type], ...] = ()  # definitions shown in the statement's block


class Pool(_Checked):
    """Every cohort's members together."""

    name: str
    assessed: int
    reports: tuple[tuple[str, t.Type], ...] = ()


class Cohorts(_Checked):
    """Groups of a table's records as subjects; their figures form the virtual table `cohorts`."""

    binder: str
    table: str
    members: Any
    by: Any
    counting: Any
    entries: tuple[Cohort, ...]  # in declared order
    pools: tuple[Pool, ...]


class Program(_Checked):
    source: Source | None
    name: str
    currency: str
    rounding: str
    statement_parts: frozenset[str]
    funders: tuple[str, ...]
    enums: dict[str, tuple[str, ...]]
    tables: dict[str, TableInfo]
    subject: Subject
    eligible: Any
    bands: dict[str, Band]
    tariffs: dict[str, Tariff]
    lets: tuple[Let, ...]
    outcomes: tuple[Outcome, ...]
    caps: tuple[Cap, ...]
    ceilings: tuple[Ceiling, ...]
    cohorts: Cohorts | None = None
    warnings: tuple[Any, ...] = ()

    def for_evaluation(self) -> "Program":
        """This program without its expressions, once they are compiled: what evaluation reads,
        kept with the compiled contract (pbrlang.cache) and read back without the syntax tree."""
        cohorts = self.cohorts
        return self.evolve(
            tables={name: info.evolve(checks=()) for name, info in self.tables.items()},
            eligible=None,
            lets=tuple(let.evolve(expr=None) for let in self.lets),
            outcomes=tuple(o.evolve(conditions=(), achieved=None, recurring=None, pays=None,
                                    reports=tuple((name, None) for name, _ in o.reports)) for o in self.outcomes),
            caps=tuple(c.evolve(limit=None) for c in self.caps),
            ceilings=tuple(c.evolve(limit=None) for c in self.ceilings),
            cohorts=None if cohorts is None else cohorts.evolve(members=None, by=None, counting=None),
        )
