"""Compiling: checked program -> Python closures over a frame, built once per contract.

A frame is a list: slot 0 holds the subject's record, slot 1 the as-of day,
slot 2 the data indexes, and the slots after them hold definitions, outcome
days and the record each aggregate is looking at. Every name was resolved by
the checker, so nothing here looks a name up while records are evaluated.
Missing values (none) propagate: arithmetic on none gives none, a comparison
with none is false.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any, Callable

import attrs

from . import nodes as n
from .calendar import Spells, add_months
from .errors import EvaluationError
from .program import Program

SUBJECT, AS_OF, INDEXES, LEDGER, TRACE, STEPS = 0, 1, 2, 3, 4, 5
FIRST_DAY, LAST_DAY = 1, 3652059  # 0001-01-01 and 9999-12-31 as ordinals

# Records one subject's aggregates may go through, all told: a contract cannot
# loop, but nested aggregates over a subject with a huge number of records
# could take very long; past this, the subject is reported, not evaluated.
MAX_EVALUATION_STEPS = 20_000_000
EMPTY: tuple = ()

Fn = Callable[[list], Any]


def _frac(x):
    return x if isinstance(x, Fraction) else Fraction(x)


def _mixed(op):
    """Apply a numeric operator; Decimal and Fraction meet as Fractions."""

    def apply(a, b):
        if a is None or b is None:
            return None
        if isinstance(a, Fraction) or isinstance(b, Fraction):
            return op(_frac(a), _frac(b))
        return op(a, b)

    return apply


def _divide(a, b):
    if a is None or b is None:
        return None
    if b == 0:
        raise EvaluationError("division by zero")
    return _frac(a) / _frac(b)


_COMPARE = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _counted(source: Fn) -> Fn:
    """Count the records an aggregate goes through against the subject's step budget."""

    def counted(fr):
        records = source(fr)
        steps = fr[STEPS] + len(records)
        if steps > MAX_EVALUATION_STEPS:
            raise EvaluationError(f"needs more than {MAX_EVALUATION_STEPS:,} evaluation steps "
                                  "(records gone through by its aggregates); the limit keeps every run short")
        fr[STEPS] = steps
        return records

    return counted


def _binder_field(e: n.Expr, binder: str) -> int | None:
    """The field index when `e` is just `binder.field`."""
    if isinstance(e, n.Field) and isinstance(e.target, n.Ref) and e.target.name == binder and e.meaning[0] == "field":
        return e.meaning[1]
    return None


def _row_key(record: tuple):
    # Orders records by their values (not their position in a file), so results
    # never depend on the order rows arrive in.
    return tuple((v is None, v if v is not None else 0) for v in record[:-1])


@attrs.frozen
class CompiledOutcome:
    name: str
    index: int
    slot: int  # the frame slot holding the day it is achieved (or None)
    achieved: Fn  # frame -> day or None, conditions included
    pays: Fn
    recurring: Any  # (every_fn, months: bool, anchor_slot, spells_fn, at_most_fn) or None
    reports: tuple = ()  # (name, fn or None for `due`, type, uses paid)
    deferred: bool = False
    conditions: tuple = ()  # tracing build only: each `when` on its own
    day: Fn | None = None  # tracing build only: `achieved on` without the conditions


class Compiler:
    def __init__(self, program: Program, trace: bool = False):
        self.program = program
        # A tracing build logs evidence into frame[TRACE] for `pbr explain`; the
        # ordinary build has none of that code in it.
        self.trace = trace
        self.next_slot = 6
        self.let_slots: dict[str, int] = {}
        self.outcome_slots: dict[str, int] = {}
        self.derived: dict[str, tuple[int, Fn | None]] = {}
        self.indexes: list[tuple] = []  # what each entry of frame[INDEXES] holds

    def slot(self) -> int:
        s = self.next_slot
        self.next_slot += 1
        return s

    def index(self, spec: tuple) -> int:
        if spec not in self.indexes:
            self.indexes.append(spec)
        return self.indexes.index(spec)

    # ---- expressions -------------------------------------------------------------

    def expr(self, e: n.Expr, scope: dict[str, int]) -> Fn:
        fn = getattr(self, "_c_" + type(e).__name__)(e, scope)
        if self.trace:
            fn = self._traced(e, fn, scope)
        return fn

    def _traced(self, e: n.Expr, fn: Fn, scope) -> Fn:
        """Wrap a closure so that it also logs what it decided (tracing build only)."""
        if isinstance(e, n.Lookup):
            keys = [self.expr(k, scope) for k in e.keys]
            name = e.meaning[1]

            def lookup(fr):
                value = fn(fr)
                fr[TRACE].append(("tariff", name, tuple(k(fr) for k in keys), value, e))
                return value

            return lookup
        if isinstance(e, n.Call) and e.meaning and e.meaning[0] == "band":
            arg = self.expr(e.args[0], scope)

            def band(fr):
                value = fn(fr)
                fr[TRACE].append(("band", e.name, arg(fr), value, e))
                return value

            return band
        if isinstance(e, n.FirstDayLasting):
            spells = self.expr(e.spells, scope)
            length = self.expr(e.length, scope)

            def lasting(fr):
                value = fn(fr)
                fr[TRACE].append(("lasting", spells(fr), length(fr), e.length.type.kind == "months", value, e))
                return value

            return lasting
        if isinstance(e, n.Within):
            value_fn, length_fn, anchor_fn = (self.expr(x, scope) for x in (e.value, e.length, e.anchor))

            def within(fr):
                result = fn(fr)
                fr[TRACE].append(("window", value_fn(fr), length_fn(fr), anchor_fn(fr), e.length.type.kind == "months",
                                  e.direction, result, e))
                return result

            return within
        return fn

    def _c_Literal(self, e: n.Literal, scope):
        value = e.value
        return lambda fr: value

    def _c_AsOf(self, e, scope):
        return lambda fr: fr[AS_OF]

    def _c_Paid(self, e: n.Paid, scope):
        name = e.outcome
        return lambda fr: fr[LEDGER].get(name, Decimal(0))

    def _c_Ref(self, e: n.Ref, scope):
        kind = e.meaning[0]
        if kind == "binder":
            s = scope[e.name]
            return lambda fr: fr[s]
        if kind == "let":
            s = self.let_slots[e.name]
            return lambda fr: fr[s]
        if kind in ("subject_field", "row_field"):
            i = e.meaning[1]
            return lambda fr: fr[SUBJECT][i]
        if kind == "subject":
            return lambda fr: fr[SUBJECT]
        if kind == "outcome":
            s = self.outcome_slots[e.name]
            return lambda fr: fr[s]
        if kind == "enum":
            value = e.meaning[1]
            return lambda fr: value
        if kind == "related":
            table, field_index = e.meaning[1], e.meaning[2]
            subject_table = self.program.tables[self.program.subject.table]
            key = subject_table.field(subject_table.key).index
            ix = self.index(("children", table, field_index))
            return lambda fr: fr[INDEXES][ix].get(fr[SUBJECT][key], EMPTY)
        if kind == "table":
            ix = self.index(("all", e.meaning[1]))
            return lambda fr: fr[INDEXES][ix]
        raise AssertionError(e.meaning)

    def _c_Field(self, e: n.Field, scope):
        target = self.expr(e.target, scope)
        kind = e.meaning[0]
        if kind == "field":
            i = e.meaning[1]

            def field(fr):
                rec = target(fr)
                return None if rec is None else rec[i]

            return field
        if kind in ("children", "children_of_all"):
            table, field_index = e.meaning[1], e.meaning[2]
            parent = self.program.tables[e.target.type.name]
            key = parent.field(parent.key).index
            ix = self.index(("children", table, field_index))
            if kind == "children":

                def children(fr):
                    rec = target(fr)
                    return EMPTY if rec is None else fr[INDEXES][ix].get(rec[key], EMPTY)

                return children

            def children_of_all(fr):
                index = fr[INDEXES][ix]
                out: list = []
                for rec in target(fr):
                    out.extend(index.get(rec[key], EMPTY))
                return out

            return children_of_all
        if kind == "derived":
            name = e.name

            def derived(fr):
                rec = target(fr)
                if rec is None:
                    return None
                s, body = self.derived[name]
                fr[s] = rec
                return body(fr)

            return derived
        raise AssertionError(e.meaning)

    def _c_Lookup(self, e: n.Lookup, scope):
        cells = self.program.tariffs[e.meaning[1]].cells
        keys = [self.expr(k, scope) for k in e.keys]
        if len(keys) == 1:
            k0 = keys[0]

            def lookup1(fr):
                k = k0(fr)
                return None if k is None else cells.get((k,))

            return lookup1

        if len(keys) == 2:
            k0, k1 = keys

            def lookup2(fr):
                return cells.get((k0(fr), k1(fr)))  # a key of none finds no cell

            return lookup2

        def lookup(fr):
            key = tuple(k(fr) for k in keys)
            return None if None in key else cells.get(key)

        return lookup

    def _c_Duration(self, e: n.Duration, scope):
        amount = self.expr(e.amount, scope)
        factor = {"days": 1, "weeks": 7, "months": 1, "years": 12}[e.unit]
        if isinstance(e.amount, n.Literal):
            value = None if e.amount.value is None else e.amount.value * factor
            return lambda fr: value

        def duration(fr):
            a = amount(fr)
            return None if a is None else a * factor

        return duration

    def _c_Call(self, e: n.Call, scope):
        args = [self.expr(a, scope) for a in e.args]
        kind, name = e.meaning
        if kind == "band":
            label_of = self.program.bands[name].label_of
            arg = args[0]

            def band_of(fr):
                d = arg(fr)
                return None if d is None else label_of(d)

            return band_of
        if name in ("later", "higher"):
            return lambda fr: max((v for v in (a(fr) for a in args) if v is not None), default=None)
        if name in ("earlier", "lower"):
            return lambda fr: min((v for v in (a(fr) for a in args) if v is not None), default=None)
        if name == "abs":
            a0 = args[0]
            return lambda fr: None if (v := a0(fr)) is None else abs(v)
        if name == "days_between":
            a0, a1 = args

            def days_between(fr):
                x, y = a0(fr), a1(fr)
                return None if x is None or y is None else y - x

            return days_between
        raise AssertionError(name)

    def _c_Unary(self, e: n.Unary, scope):
        operand = self.expr(e.operand, scope)
        if e.op == "not":
            return lambda fr: not operand(fr)
        return lambda fr: None if (v := operand(fr)) is None else -v

    def _c_Binary(self, e: n.Binary, scope):
        left = self.expr(e.left, scope)
        right = self.expr(e.right, scope)
        if e.op == "and":
            return lambda fr: bool(left(fr)) and bool(right(fr))
        if e.op == "or":
            return lambda fr: bool(left(fr)) or bool(right(fr))
        lk = e.left.type.kind if e.left.type else None
        rk = e.right.type.kind if e.right.type else None
        if e.op in ("+", "-") and "months" in (lk, rk) and "date" in (lk, rk):
            sign = 1 if e.op == "+" else -1
            if lk == "date":
                date_fn, months_fn = left, right
            else:
                date_fn, months_fn = right, left

            def add_calendar_months(fr):
                d, m = date_fn(fr), months_fn(fr)
                if d is None or m is None:
                    return None
                try:
                    return add_months(d, sign * m)
                except OverflowError:
                    raise EvaluationError("a date went outside the calendar") from None

            return add_calendar_months
        if e.op == "/":
            return lambda fr: _divide(left(fr), right(fr))
        op = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}[e.op]
        if e.type is not None and e.type.kind == "date":

            def day_op(fr):
                a, b = left(fr), right(fr)
                if a is None or b is None:
                    return None
                day = op(a, b)
                if not FIRST_DAY <= day <= LAST_DAY:
                    raise EvaluationError("a date went outside the calendar (years 1 to 9999)")
                return day

            return day_op
        if lk in ("integer", "date", "days", "months") and rk in ("integer", "date", "days", "months"):

            def integer_op(fr):
                a, b = left(fr), right(fr)
                return None if a is None or b is None else op(a, b)

            return integer_op
        mixed = _mixed(op)
        return lambda fr: mixed(left(fr), right(fr))

    def _c_Compare(self, e: n.Compare, scope):
        left = self.expr(e.left, scope)
        right = self.expr(e.right, scope)
        test = _COMPARE[e.op]
        if isinstance(e.right, n.Literal) and e.right.value is not None:
            value = e.right.value

            def compare_constant(fr):
                a = left(fr)
                return a is not None and test(a, value)

            return compare_constant

        def compare(fr):
            a, b = left(fr), right(fr)
            return a is not None and b is not None and test(a, b)

        return compare

    def _c_IsNone(self, e: n.IsNone, scope):
        operand = self.expr(e.operand, scope)
        if e.negated:
            return lambda fr: operand(fr) is not None
        return lambda fr: operand(fr) is None

    def _c_Within(self, e: n.Within, scope):
        value = self.expr(e.value, scope)
        length = self.expr(e.length, scope)
        anchor = self.expr(e.anchor, scope)
        months = e.length.type.kind == "months"
        after = e.direction == "of"

        def within(fr):
            v, size, a = value(fr), length(fr), anchor(fr)
            if v is None or size is None or a is None:
                return False
            if after:
                last = (add_months(a, size) if months else a + size) - 1
                return a <= v <= last
            first = add_months(a, -size) if months else a - size
            return first <= v <= a - 1

        return within

    def _c_InBand(self, e: n.InBand, scope):
        value = self.expr(e.value, scope)
        band = self.program.bands[e.band]
        return lambda fr: (v := value(fr)) is not None and band.label_of(v) is not None

    def _c_InList(self, e: n.InList, scope):
        value = self.expr(e.value, scope)
        options = [self.expr(o, scope) for o in e.options]
        return lambda fr: (v := value(fr)) is not None and any(v == o(fr) for o in options)

    def _c_If(self, e: n.If, scope):
        cond = self.expr(e.condition, scope)
        then = self.expr(e.then, scope)
        other = self.expr(e.otherwise, scope)
        return lambda fr: then(fr) if cond(fr) else other(fr)

    def _c_SpellOp(self, e: n.SpellOp, scope):
        spells = self.expr(e.spells, scope)
        arg = self.expr(e.arg, scope)
        method = {"counted_from": Spells.counted_from, "starting_from": Spells.starting_from,
                  "not_counting": Spells.not_counting}[e.op]

        def spell_op(fr):
            s, a = spells(fr), arg(fr)
            if s is None:
                return None
            if a is None:
                return s if e.op == "not_counting" else Spells([])
            return method(s, a)

        return spell_op

    def _c_FirstDayLasting(self, e: n.FirstDayLasting, scope):
        spells = self.expr(e.spells, scope)
        length = self.expr(e.length, scope)
        months = e.length.type.kind == "months"

        def first_day(fr):
            s, size = spells(fr), length(fr)
            if s is None or size is None:
                return None
            return s.first_day_lasting_months(size) if months else s.first_day_lasting_days(size)

        return first_day

    # aggregates: each binding gets its own frame slot for the record in hand
    def _binding(self, b: n.Binding, scope):
        source = _counted(self.expr(b.source, scope))
        s = self.slot()
        inner = dict(scope)
        inner[b.name] = s
        where = self.expr(b.where, inner) if b.where is not None else None
        if self.trace:
            table = b.source.type.name if b.source.type is not None else "?"
            if where is None:
                plain = source

                def source(fr):
                    records = plain(fr)
                    fr[TRACE].extend(("evidence", table, rec) for rec in records)
                    return records

            else:
                test = where

                def where(fr):
                    ok = test(fr)
                    if ok:
                        fr[TRACE].append(("evidence", table, fr[s]))
                    return ok

        return source, s, where, inner

    def _c_Count(self, e: n.Count, scope):
        source, s, where, _ = self._binding(e.binding, scope)
        if where is None:
            return lambda fr: len(source(fr))

        def count(fr):
            c = 0
            for rec in source(fr):
                fr[s] = rec
                if where(fr):
                    c += 1
            return c

        return count

    def _c_CountDistinct(self, e: n.CountDistinct, scope):
        source, s, where, inner = self._binding(e.binding, scope)
        value = self.expr(e.value, inner)

        def count_distinct(fr):
            seen = set()
            for rec in source(fr):
                fr[s] = rec
                if where is None or where(fr):
                    v = value(fr)
                    if v is not None:
                        seen.add(v)
            return len(seen)

        return count_distinct

    def _c_Aggregate(self, e: n.Aggregate, scope):
        source, s, where, inner = self._binding(e.binding, scope)
        value = self.expr(e.value, inner)
        kind = e.kind

        add = _mixed(lambda a, b: a + b)

        def aggregate(fr):
            best = None
            total = 0
            count = 0
            for rec in source(fr):
                fr[s] = rec
                if where is not None and not where(fr):
                    continue
                v = value(fr)
                if v is None:
                    continue
                if kind in ("sum", "mean"):
                    total = add(total, v)
                    count += 1
                elif best is None or (v < best if kind in ("earliest", "min") else v > best):
                    best = v
            if kind == "mean":
                return _frac(total) / count if count else None  # exact: no rounding until a payment
            return total if kind == "sum" else best

        return aggregate

    def _c_Quantifier(self, e: n.Quantifier, scope):
        source, s, where, inner = self._binding(e.binding, scope)
        cond = self.expr(e.condition, inner) if e.condition is not None else None
        kind = e.kind

        def quantifier(fr):
            for rec in source(fr):
                fr[s] = rec
                if where is not None and not where(fr):
                    continue
                holds = True if cond is None else bool(cond(fr))
                if kind == "every" and not holds:
                    return False
                if kind in ("any", "no") and holds:
                    return kind == "any"
            return kind != "any"

        return quantifier

    def _c_Each(self, e: n.Each, scope):
        source, s, where, _ = self._binding(e.binding, scope)
        if where is None:
            return source

        def each(fr):
            out = []
            for rec in source(fr):
                fr[s] = rec
                if where(fr):
                    out.append(rec)
            return out

        return each

    def _c_Spells(self, e: n.Spells, scope):
        source, s, where, inner = self._binding(e.binding, scope)
        start = self.expr(e.start, inner)
        end = self.expr(e.end, inner)
        a_index, b_index = _binder_field(e.start, e.binding.name), _binder_field(e.end, e.binding.name)
        if where is None and a_index is not None and b_index is not None and not self.trace:
            # The usual case, `spells from e.start to e.end for e in employment`: read the
            # two fields straight from each record.

            def plain_spells(fr):
                as_of = fr[AS_OF]
                intervals = []
                for rec in source(fr):
                    a, b = rec[a_index], rec[b_index]
                    if a is None:
                        continue
                    if b is None or b > as_of:
                        b = as_of
                    if a <= b:
                        intervals.append((a, b))
                return Spells.of(intervals)

            return plain_spells

        def spells(fr):
            as_of = fr[AS_OF]
            intervals = []
            for rec in source(fr):
                fr[s] = rec
                if where is not None and not where(fr):
                    continue
                a, b = start(fr), end(fr)
                if a is None:
                    continue
                # An open spell runs to the as-of day; days after it do not exist yet.
                if b is None or b > as_of:
                    b = as_of
                if a <= b:
                    intervals.append((a, b))
            return Spells.of(intervals)

        return spells

    def _c_FirstRun(self, e: n.FirstRun, scope):
        length = self.expr(e.length, scope)
        source, s, where, inner = self._binding(e.binding, scope)
        order = self.expr(e.order, inner)
        cond = self.expr(e.condition, inner)

        def first_run(fr):
            needed = length(fr)
            if needed is None or needed <= 0:
                return None
            chosen = []
            for rec in source(fr):
                fr[s] = rec
                if where is None or where(fr):
                    key = order(fr)
                    chosen.append(((key is None, key if key is not None else 0), _row_key(rec), rec))
            chosen.sort(key=lambda x: (x[0], x[1]))
            streak = 0
            for _, _, rec in chosen:
                fr[s] = rec
                streak = streak + 1 if cond(fr) else 0
                if streak >= needed:
                    return rec
            return None

        return first_run

    # ---- the contract's definitions and outcomes ---------------------------------------

    def compile(self) -> "CompiledContract":
        program = self.program
        for let in program.lets:
            if let.record_table is None:
                self.let_slots[let.name] = self.slot()
            else:
                self.derived[let.name] = (self.slot(), None)
        for o in program.outcomes:
            self.outcome_slots[o.name] = self.slot()

        global_lets = []
        subject_steps: list[tuple[str, Any]] = []
        let_fns: dict[str, Fn] = {}
        for let in program.lets:
            if let.record_table is not None:
                s, _ = self.derived[let.name]
                self.derived[let.name] = (s, self.expr(let.expr, {let.binder: s}))
            else:
                let_fns[let.name] = self.expr(let.expr, {})
        outcomes = [self._outcome(o) for o in program.outcomes]
        by_name = {o.name: o for o in outcomes}

        # One order for definitions and outcome days, each after what it uses.
        order: list[tuple[str, str]] = []
        seen: set[str] = set()
        lets = {let.name: let for let in program.lets}
        outcome_deps = {o.name: o.deps for o in program.outcomes}

        def visit(name: str) -> None:
            if name in seen:
                return
            seen.add(name)
            deps = lets[name].deps if name in lets else outcome_deps.get(name, ())
            for d in sorted(deps):
                visit(d)
            if name in lets and lets[name].record_table is None:
                order.append(("let", name))
            elif name in by_name:
                order.append(("outcome", name))

        for let in program.lets:
            visit(let.name)
        for o in program.outcomes:
            visit(o.name)
        for kind, name in order:
            if kind == "let":
                if lets[name].per_subject:
                    subject_steps.append((self.let_slots[name], let_fns[name]))
                else:
                    global_lets.append((self.let_slots[name], let_fns[name]))
            else:
                o = by_name[name]
                subject_steps.append((o.slot, o.achieved))

        eligible = self.expr(program.eligible, {}) if program.eligible is not None else None
        cap_limits = [self.expr(c.limit, {}) for c in program.caps]
        ceiling_limits = [self.expr(c.limit, {}) for c in program.ceilings]
        checks = {
            name: [(self.expr(c, {}), c) for c in info.checks] for name, info in program.tables.items() if info.checks
        }
        cohorts = None
        if program.cohorts is not None:
            c = program.cohorts
            s = self.slot()
            scope = {c.binder: s}
            cohorts = (s, self.expr(c.members, scope), self.expr(c.by, scope), self.expr(c.counting, scope))
        return CompiledContract(
            program=program,
            frame_size=self.next_slot,
            indexes=tuple(self.indexes),
            global_lets=tuple(global_lets),
            subject_steps=tuple(subject_steps),
            outcomes=tuple(outcomes),
            eligible=eligible,
            cap_limits=tuple(cap_limits),
            ceiling_limits=tuple(ceiling_limits),
            checks=checks,
            let_slots=dict(self.let_slots),
            cohorts=cohorts,
        )

    def _outcome(self, o) -> CompiledOutcome:
        conditions = [self.expr(c, {}) for c in o.conditions]
        pays = self.expr(o.pays, {})
        reports = tuple((name, None if e is None else self.expr(e, {}), e.type if e is not None else None,
                         e is not None and uses_paid(e))
                        for name, e in o.reports)
        slot = self.outcome_slots[o.name]
        recurring = None
        if o.recurring is not None:
            r = o.recurring
            every = self.expr(r.every, {})
            months = r.every.type.kind == "months"
            anchor = self.outcome_slots[r.after]
            spells = self.expr(r.spells, {})
            at_most = self.expr(r.at_most, {})
            recurring = (every, months, anchor, spells, at_most)

            def first_recurrence(fr):
                if not all(c(fr) for c in conditions):
                    return None
                days = recurrences(fr, recurring, limit_to_as_of=False, first_only=True)
                return days[0] if days else None

            achieved = first_recurrence
        else:
            day_of = self.expr(o.achieved, {})
            if not conditions:
                achieved = day_of
            else:

                def achieved(fr):
                    day = day_of(fr)
                    if day is None:
                        return None
                    for c in conditions:
                        if not c(fr):
                            return None
                    return day

        day_fn = None if o.recurring is not None else self.expr(o.achieved, {}) if self.trace else None
        return CompiledOutcome(o.name, o.index, slot, achieved, pays, recurring, reports, o.deferred,
                               tuple(conditions) if self.trace else (), day_fn)


def uses_paid(node) -> bool:
    """Whether an expression reads what has been paid so far (so waits for the ordered pass)."""
    return any(isinstance(x, n.Paid) for x in n.walk(node))


def recurrences(fr: list, recurring, limit_to_as_of: bool = True, first_only: bool = False) -> list[int]:
    """The days of a recurring outcome: anchor + k x period, while the anchor's run goes on unbroken."""
    every_fn, months, anchor_slot, spells_fn, at_most_fn = recurring
    anchor = fr[anchor_slot]
    if anchor is None:
        return []
    every, spells, at_most = every_fn(fr), spells_fn(fr), at_most_fn(fr)
    if every is None or spells is None or at_most is None or every <= 0:
        return []
    run = spells.run_containing(anchor)
    if run is None:
        return []
    days = []
    for k in range(1, at_most + 1):
        day = add_months(anchor, k * every) if months else anchor + k * every
        if day > run[1]:
            break  # the first break ends it for good
        if limit_to_as_of and day > fr[AS_OF]:
            break
        days.append(day)
        if first_only:
            break
    return days


@attrs.frozen
class CompiledContract:
    program: Program
    frame_size: int
    indexes: tuple[tuple, ...]
    global_lets: tuple
    subject_steps: tuple
    outcomes: tuple[CompiledOutcome, ...]
    eligible: Fn | None
    cap_limits: tuple
    ceiling_limits: tuple
    checks: dict
    let_slots: dict
    cohorts: Any = None  # (binder slot, members fn, by fn, counting fn)


def compile_program(program: Program, trace: bool = False) -> CompiledContract:
    return Compiler(program, trace).compile()
