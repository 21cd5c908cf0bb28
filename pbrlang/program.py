"""The checked program: what the checker proves and the compiler compiles.

Everything here has been resolved and typed; expressions are syntax-tree
nodes with their `type` and `meaning` filled in.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import attrs

from . import types as t
from .nodes import Value
from .source import Source, Span


def _span():
    return attrs.field(kw_only=True, eq=False, repr=False, default=None)


@attrs.frozen(repr=False, eq=False)
class FieldInfo(Value):
    name: str
    type: t.Type
    optional: bool
    index: int
    references: str | None  # the table this field refers to, if any
    values: tuple[str, ...] | None  # an enumeration's values
    span: Span | None = _span()


@attrs.frozen(repr=False, eq=False)
class TableInfo(Value):
    name: str
    fields: tuple[FieldInfo, ...]
    key: str | None
    checks: tuple[Any, ...]
    virtual: bool = False  # computed by the evaluator (cohorts), not read from data
    span: Span | None = _span()

    def field(self, name: str) -> FieldInfo | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None

    def links_to(self, table: str) -> list[FieldInfo]:
        return [f for f in self.fields if f.references == table]


@attrs.frozen(repr=False, eq=False)
class Subject(Value):
    name: str
    table: str
    span: Span | None = _span()


@attrs.frozen(repr=False, eq=False)
class Band(Value):
    name: str
    entries: tuple[tuple[str, int, int | None], ...]  # (label, first day, last day or None), by first day
    span: Span | None = _span()

    def label_of(self, day: int) -> str | None:
        cache = _BAND_CACHE.setdefault(self.entries, {})
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


@attrs.frozen(repr=False, eq=False)
class Tariff(Value):
    name: str
    keys: tuple[t.Type, ...]
    cells: dict  # key tuple -> value (Decimal, int or None)
    value_type: t.Type
    span: Span | None = _span()


@attrs.frozen(repr=False, eq=False)
class Let(Value):
    name: str
    expr: Any
    record_table: str | None  # `let x of r in table`: one value per record
    binder: str | None
    deps: frozenset[str]
    per_subject: bool
    span: Span | None = _span()


@attrs.frozen(repr=False, eq=False)
class Outcome(Value):
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
    span: Span | None = _span()
    clause_spans: dict = attrs.field(factory=dict, eq=False, repr=False)


@attrs.frozen(repr=False, eq=False)
class Cap(Value):
    name: str
    limit: Any
    scopes: tuple[str, ...]  # "subject", "outcome", "month", "financial_year", band names
    outcomes: tuple[str, ...]  # empty: every outcome
    per_subject_limit: bool
    span: Span | None = _span()


@attrs.frozen(repr=False, eq=False)
class Ceiling(Value):
    name: str
    limit: Any
    scopes: tuple[str, ...]
    funder: str
    overflow_to: str | None
    span: Span | None = _span()


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


@attrs.frozen(repr=False, eq=False)
class Cohorts(Value):
    """Groups of a table's records as subjects; their figures form the virtual table `cohorts`."""

    binder: str
    table: str
    members: Any
    by: Any
    counting: Any
    entries: tuple[Any, ...]  # nodes.CohortEntry, in declared order
    pools: tuple[Any, ...]  # nodes.PoolEntry
    span: Span | None = _span()


@attrs.frozen(repr=False, eq=False)
class Program(Value):
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
