"""The contract's syntax tree: small frozen values that know where they came from.

The parser builds these; the checker returns the same classes with `type` and
`meaning` filled in (via attrs.evolve), so every later stage reads one tree.
Positions (`span`) and checker annotations are left out of equality, so two
trees compare equal when they say the same thing.
"""

from __future__ import annotations

import functools
from decimal import Decimal
from fractions import Fraction
from typing import Any

import attrs

from .source import Span


def _span():
    return attrs.field(kw_only=True, eq=False, repr=False, default=None)


def _note():
    # Filled in by the checker; not part of what the contract says.
    return attrs.field(kw_only=True, eq=False, repr=False, default=None)


class Value:
    """A frozen attrs class's __repr__, __eq__ and __hash__, as attrs would generate them, written
    once for every class of the tree (each decorated with `repr=False, eq=False`, so that attrs
    leaves these in place). The checked program's classes get the same from pbrlang.frozen.

    attrs compiling the three for each class took half the time of importing this module, which
    every `pbr check` does. These are slower to run, but loading and evaluating a contract never
    calls them (tests do)."""

    __slots__ = ()

    def __repr__(self) -> str:
        cls = self.__class__
        shown = ", ".join(f"{a.name}={getattr(self, a.name)!r}" for a in attrs.fields(cls) if a.repr)
        return f"{cls.__qualname__.rsplit('>.', 1)[-1]}({shown})"

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in _compared(self.__class__))

    def __hash__(self) -> int:
        cls = self.__class__
        return hash((cls, *(getattr(self, name) for name in _compared(cls))))


@attrs.frozen(repr=False, eq=False)
class Node(Value):
    span: Span | None = _span()


@functools.cache
def _compared(cls: type) -> tuple[str, ...]:
    """The fields that equality looks at: not where a node is, nor what the checker noted."""
    return tuple(a.name for a in attrs.fields(cls) if a.eq)


def walk(root: Any):
    """Every node below and including `root`, parents before children, in written order.

    With a stack rather than nested generators, so that time grows with the size
    of the tree, not its size times its depth, and depth never meets Python's
    recursion limit."""
    stack = [root]
    while stack:
        node = stack.pop()
        if not isinstance(node, Node):
            continue
        yield node
        children = []
        for a in attrs.fields(type(node)):
            if a.name in ("span", "type", "meaning", "slot"):
                continue
            value = getattr(node, a.name)
            for item in value if isinstance(value, tuple) else (value,):
                if isinstance(item, tuple):
                    children.extend(item)
                else:
                    children.append(item)
        stack.extend(reversed(children))


# ---- expressions ------------------------------------------------------------


@attrs.frozen(repr=False, eq=False)
class Expr(Node):
    type: Any = _note()
    meaning: Any = _note()


@attrs.frozen(repr=False, eq=False)
class Literal(Expr):
    """A written value. kind: integer, decimal, money, percent, date, text, boolean, none."""

    kind: str = attrs.field()
    value: Any = attrs.field()


@attrs.frozen(repr=False, eq=False)
class Ref(Expr):
    name: str = attrs.field()


@attrs.frozen(repr=False, eq=False)
class AsOf(Expr):
    pass


@attrs.frozen(repr=False, eq=False)
class Field(Expr):
    target: Expr = attrs.field()
    name: str = attrs.field()


@attrs.frozen(repr=False, eq=False)
class Lookup(Expr):
    target: Expr = attrs.field()
    keys: tuple[Expr, ...] = attrs.field()


@attrs.frozen(repr=False, eq=False)
class Duration(Expr):
    amount: Expr = attrs.field()
    unit: str = attrs.field()  # days, weeks, months, years


@attrs.frozen(repr=False, eq=False)
class Call(Expr):
    name: str = attrs.field()
    args: tuple[Expr, ...] = attrs.field()


@attrs.frozen(repr=False, eq=False)
class Unary(Expr):
    op: str = attrs.field()  # "-" or "not"
    operand: Expr = attrs.field()


@attrs.frozen(repr=False, eq=False)
class Binary(Expr):
    op: str = attrs.field()  # + - * / and or
    left: Expr = attrs.field()
    right: Expr = attrs.field()


@attrs.frozen(repr=False, eq=False)
class Compare(Expr):
    op: str = attrs.field()  # = != < <= > >=
    left: Expr = attrs.field()
    right: Expr = attrs.field()


@attrs.frozen(repr=False, eq=False)
class IsNone(Expr):
    operand: Expr = attrs.field()
    negated: bool = attrs.field()


@attrs.frozen(repr=False, eq=False)
class Within(Expr):
    """`value within length of anchor` (anchor .. anchor+length-1) or `before` (anchor-length .. anchor-1)."""

    value: Expr = attrs.field()
    length: Expr = attrs.field()
    anchor: Expr = attrs.field()
    direction: str = attrs.field()  # "of" or "before"


@attrs.frozen(repr=False, eq=False)
class InBand(Expr):
    value: Expr = attrs.field()
    band: str = attrs.field()


@attrs.frozen(repr=False, eq=False)
class InList(Expr):
    value: Expr = attrs.field()
    options: tuple[Expr, ...] = attrs.field()


@attrs.frozen(repr=False, eq=False)
class If(Expr):
    condition: Expr = attrs.field()
    then: Expr = attrs.field()
    otherwise: Expr = attrs.field()


@attrs.frozen(repr=False, eq=False)
class SpellOp(Expr):
    """counted_from (clip days), starting_from (keep runs), not_counting (skip days)."""

    op: str = attrs.field()
    spells: Expr = attrs.field()
    arg: Expr = attrs.field()


@attrs.frozen(repr=False, eq=False)
class Paid(Expr):
    """`paid OUTCOME`: what that outcome has paid so far, in payment order, after caps."""

    outcome: str = attrs.field()


@attrs.frozen(repr=False, eq=False)
class FirstDayLasting(Expr):
    spells: Expr = attrs.field()
    length: Expr = attrs.field()


@attrs.frozen(repr=False, eq=False)
class Binding(Node):
    """`name in source [where condition]`: the records an aggregate ranges over."""

    name: str = attrs.field()
    source: Expr = attrs.field()
    where: Expr | None = attrs.field()
    slot: Any = _note()


@attrs.frozen(repr=False, eq=False)
class Count(Expr):
    binding: Binding = attrs.field()


@attrs.frozen(repr=False, eq=False)
class CountDistinct(Expr):
    value: Expr = attrs.field()
    binding: Binding = attrs.field()


@attrs.frozen(repr=False, eq=False)
class Aggregate(Expr):
    kind: str = attrs.field()  # earliest latest sum min max
    value: Expr = attrs.field()
    binding: Binding = attrs.field()


@attrs.frozen(repr=False, eq=False)
class Quantifier(Expr):
    kind: str = attrs.field()  # any no every
    binding: Binding = attrs.field()
    condition: Expr | None = attrs.field()


@attrs.frozen(repr=False, eq=False)
class Each(Expr):
    binding: Binding = attrs.field()


@attrs.frozen(repr=False, eq=False)
class Spells(Expr):
    start: Expr = attrs.field()
    end: Expr = attrs.field()
    binding: Binding = attrs.field()


@attrs.frozen(repr=False, eq=False)
class FirstRun(Expr):
    length: Expr = attrs.field()
    binding: Binding = attrs.field()
    order: Expr = attrs.field()
    condition: Expr = attrs.field()


# ---- declarations -------------------------------------------------------------


@attrs.frozen(repr=False, eq=False)
class Decl(Node):
    pass


@attrs.frozen(repr=False, eq=False)
class ContractDecl(Decl):
    name: str = attrs.field()


@attrs.frozen(repr=False, eq=False)
class CurrencyDecl(Decl):
    code: str = attrs.field()


@attrs.frozen(repr=False, eq=False)
class RoundingDecl(Decl):
    mode: str = attrs.field()


@attrs.frozen(repr=False, eq=False)
class StatementDecl(Decl):
    parts: tuple[str, ...] = attrs.field()


@attrs.frozen(repr=False, eq=False)
class FunderDecl(Decl):
    name: str = attrs.field()


@attrs.frozen(repr=False, eq=False)
class Share(Node):
    funder: str = attrs.field()
    fraction: Fraction = attrs.field()
    text: str = attrs.field()


@attrs.frozen(repr=False, eq=False)
class SharesDecl(Decl):
    shares: tuple[Share, ...] = attrs.field()


@attrs.frozen(repr=False, eq=False)
class EnumValue(Node):
    name: str = attrs.field()


@attrs.frozen(repr=False, eq=False)
class EnumDecl(Decl):
    name: str = attrs.field()
    values: tuple[EnumValue, ...] = attrs.field()


@attrs.frozen(repr=False, eq=False)
class FieldDecl(Node):
    name: str = attrs.field()
    type_name: str = attrs.field()
    optional: bool = attrs.field()
    key: bool = attrs.field()


@attrs.frozen(repr=False, eq=False)
class TableDecl(Decl):
    name: str = attrs.field()
    fields: tuple[FieldDecl, ...] = attrs.field()
    checks: tuple[Expr, ...] = attrs.field()


@attrs.frozen(repr=False, eq=False)
class SubjectDecl(Decl):
    name: str = attrs.field()
    table: str = attrs.field()


@attrs.frozen(repr=False, eq=False)
class EligibleDecl(Decl):
    condition: Expr = attrs.field()


@attrs.frozen(repr=False, eq=False)
class BandEntry(Node):
    label: str = attrs.field()
    start: int = attrs.field()  # date ordinal
    end: int | None = attrs.field()  # None: open-ended


@attrs.frozen(repr=False, eq=False)
class BandDecl(Decl):
    name: str = attrs.field()
    entries: tuple[BandEntry, ...] = attrs.field()


@attrs.frozen(repr=False, eq=False)
class CellName(Node):
    name: str = attrs.field()


@attrs.frozen(repr=False, eq=False)
class GridRow(Node):
    cells: tuple[Any, ...] = attrs.field()  # CellName or Literal


@attrs.frozen(repr=False, eq=False)
class TariffDecl(Decl):
    name: str | None = attrs.field()
    keys: tuple[str, ...] = attrs.field()
    rows: tuple[GridRow, ...] = attrs.field()


@attrs.frozen(repr=False, eq=False)
class LetDecl(Decl):
    name: str = attrs.field()
    expr: Expr = attrs.field()
    # `let NAME of binder in table = expr`: a value for each record of a table.
    binder: str | None = attrs.field(default=None)
    table: str | None = attrs.field(default=None)


@attrs.frozen(repr=False, eq=False)
class Recurring(Node):
    every: Expr = attrs.field()
    after: str = attrs.field()
    spells: Expr = attrs.field()
    at_most: Expr = attrs.field()


@attrs.frozen(repr=False, eq=False)
class OutcomeDecl(Decl):
    name: str = attrs.field()
    conditions: tuple[Expr, ...] = attrs.field()
    achieved: Expr | None = attrs.field()
    recurring: Recurring | None = attrs.field()
    pays: Expr | None = attrs.field()
    shares: tuple[Share, ...] | None = attrs.field()
    instead_of: tuple[Ref, ...] = attrs.field()
    requires: tuple[Ref, ...] = attrs.field()
    reports: tuple[tuple[str, Expr | None], ...] = attrs.field(default=())
    clause_spans: dict = attrs.field(factory=dict, eq=False, repr=False)


@attrs.frozen(repr=False, eq=False)
class Scope(Node):
    """`per NAME`: the subject, `outcome`, `month`, `financial_year` or a band."""

    name: str = attrs.field()


@attrs.frozen(repr=False, eq=False)
class CapDecl(Decl):
    name: str = attrs.field()
    limit: Expr = attrs.field()
    scopes: tuple[Scope, ...] = attrs.field()
    outcomes: tuple[Ref, ...] = attrs.field()


@attrs.frozen(repr=False, eq=False)
class CeilingDecl(Decl):
    name: str = attrs.field()
    limit: Expr = attrs.field()
    scopes: tuple[Scope, ...] = attrs.field()
    funder: str = attrs.field()
    overflow_to: str | None = attrs.field()  # None: the rest is unfunded


@attrs.frozen(repr=False, eq=False)
class CohortEntry(Node):
    name: str = attrs.field()
    start: int = attrs.field()
    end: int = attrs.field()
    comparison: Decimal = attrs.field()  # events per 100 expected from the comparison group
    assessed: int = attrs.field()
    reports: tuple[Ref, ...] = attrs.field(default=())  # definitions shown in the statement's block


@attrs.frozen(repr=False, eq=False)
class PoolEntry(Node):
    name: str = attrs.field()
    assessed: int = attrs.field()
    reports: tuple[Ref, ...] = attrs.field(default=())


@attrs.frozen(repr=False, eq=False)
class CohortsDecl(Decl):
    """Cohorts of the records of a table: who is a member, which cohort by which date, what is counted."""

    binder: str = attrs.field()
    table: str = attrs.field()
    members: Expr = attrs.field()
    by: Expr = attrs.field()
    counting: Expr = attrs.field()
    entries: tuple[Any, ...] = attrs.field()


@attrs.frozen(repr=False, eq=False)
class ContractTree(Node):
    declarations: tuple[Decl, ...] = attrs.field()
