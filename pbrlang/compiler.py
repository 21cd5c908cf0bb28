"""Compiling: checked program -> Python functions over a frame, built once per contract.

Each expression of the contract becomes one Python function `f(frame)`: the
compiler writes its body as Python source, one statement per step of the
expression (the way Jinja compiles a template), so evaluating an outcome for a
subject costs one function call instead of one call per node of its tree.

The source is made only of what this module writes: local names (`v3`, `r7`),
whole numbers it computed (frame slots, field positions) and operators. Every
value that comes from the contract (texts, amounts, names, tariff cells, the
nodes themselves) reaches the code as a constant `k12` in the functions'
namespace, never as text in the source; `generated_source` lets a test check
that of any contract.

A frame is a list: slot 0 holds the subject's record, slot 1 the as-of day,
slot 2 the data indexes, and the slots after them hold definitions, outcome
days and the record each aggregate is looking at. Every name was resolved by
the checker, so nothing here looks a name up while records are evaluated.
Missing values (none) propagate: arithmetic on none gives none, a comparison
with none is false.
"""

from __future__ import annotations

import decimal
import re
from decimal import Decimal
from typing import Any, Callable

import attrs

from . import nodes as n
from .money import NO_LIMIT, exact_context, to_pence
from .program import _MISSING, Program, labels_by_day
from .runtime import GENERATED, MIXED, RUNTIME, CompiledContract, CompiledOutcome, define, lean_cap, recurrences

# Records one subject's aggregates may go through, all told: a contract cannot
# loop, but nested aggregates over a subject with a huge number of records
# could take very long; past this, the subject is reported, not evaluated.
MAX_EVALUATION_STEPS = 20_000_000

# Python refuses more than 20 loops nested in one function and more than 100
# levels of indentation: deeper parts of an expression get a function of their own.
_MAX_LOOPS = 4
_MAX_INDENT = 10

Fn = Callable[[list], Any]


_FRAME = re.compile(r"\bfr\b")  # the frame's name in generated code (which holds no texts)

_COMPARE = {"=": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


class _FrameLine:
    """A line of the lean path that touches the frame, and what it is without one (None: nothing):
    which is written is settled when the whole function is known (_Body.frame_needed)."""

    __slots__ = ("indent", "with_frame", "without")

    def __init__(self, indent: str, with_frame: str, without: str | None):
        self.indent, self.with_frame, self.without = indent, with_frame, without


class _SpellsLine:
    """A line making a Spells of runs already joined in a local: written only if a line left names
    the Spells itself (a method of it, its frame slot), not only its runs (see _Body.runs)."""

    __slots__ = ("indent", "name", "runs")

    def __init__(self, indent: str, name: str, runs: str):
        self.indent, self.name, self.runs = indent, name, runs


class _Body:
    """One generated function being written: its lines, locals and what its preamble needs."""

    def __init__(self, name: str):
        self.name = name
        self.lines: list[str] = []
        self.indent = 1
        self.loops = 0
        self.count = 0
        self.locals: dict[int, str] = {}  # frame slot -> the local holding its value here
        self.uses: set[str] = set()  # subject, as_of, indexes
        self.rows_loop = False  # a function over many rows: `for s_ in rows`, not one row from the frame
        self.lean = False  # the lean path's subject (see Compiler._lean)
        # The lean path keeps its steps' values in locals and needs no frame unless something
        # reads one (see `source`): then it makes one per subject, as every other function has.
        # Without one, its fallbacks (a tariff or limit not met before) make one when they run
        # (`_framed`).
        self.frame_needed = False
        self.stored: dict[int, str] = {}  # frame slot -> the local stored there, at the top level
        # A Spells made from records -> the local holding its runs: most uses read only the runs,
        # and a subject's Spells is then never made (_SpellsLine).
        self.runs: dict[str, str] = {}

    def w_frame(self, with_frame: str, without: str | None) -> None:
        """A line touching the frame; in the lean path, `without` is written instead when it
        needs no frame (None: no line)."""
        if self.lean:
            self.lines.append(_FrameLine("    " * self.indent, with_frame, without))
        else:
            self.w(with_frame)

    def framed(self) -> str:
        """An expression for the subject's frame, in the lean path's fallbacks, as it would be
        with the frame kept: the frame itself, or one made from the locals stored so far."""
        slots = "".join(f"({slot}, {self.spells(value) if value in self.runs else value}), "
                        for slot, value in sorted(self.stored.items()))
        return f"_framed(template, s_, steps_, ({slots}))"

    def made_spells(self, name: str, runs: str) -> None:
        """`name` is the Spells of the joined runs in local `runs`; made only if some line needs it."""
        self.runs[name] = runs
        self.lines.append(_SpellsLine("    " * self.indent, name, runs))

    def runs_of(self, spells: str) -> str:
        """An expression for the runs of the Spells written `spells`."""
        return self.runs.get(spells) or f"{spells}.runs"

    def spells(self, name: str) -> str:
        """The Spells `name` made where it is needed (in a fallback's frame), from its runs."""
        return f"Spells({self.runs[name]})"

    def _rendered(self) -> list[str]:
        lines: list = []
        for line in self.lines:
            if type(line) is _FrameLine:
                text = line.with_frame if self.frame_needed else line.without
                if text is not None:
                    lines.append(line.indent + text)
            else:
                lines.append(line)  # text, or a _SpellsLine settled below
        if any(type(line) is _SpellsLine for line in lines):
            text = "\n".join(line for line in lines if type(line) is str)
            lines = [line if type(line) is str else f"{line.indent}{line.name} = {self.spells(line.name)}"
                     for line in lines if type(line) is str or re.search(rf"\b{line.name}\b", text)]
        return lines

    def tmp(self, prefix: str = "v") -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def w(self, line: str) -> None:
        self.lines.append("    " * self.indent + line)

    def source(self) -> str:
        if self.lean:  # a factory binding what the evaluation provides, around the subject's function
            head = [f"def {self.name}(template, by_day, by_outcome, sums, pence_get, tariff, limit_get, limit_of, "
                    "fixed, cut, recurring, recurrences):",
                    "    asof = template[1]", "    ix = template[2]", "    day_get = by_day.get",
                    "    def subject(s_):"]
            # Without a frame, unless a line left reads it (a function of the frame it calls, a
            # value another function left there, what has been paid).
            lines = self._rendered()
            if any(_FRAME.search(line) for line in lines):
                self.frame_needed = True
                lines = self._rendered()
            return "\n".join(head + lines + ["    return subject"]) + "\n"
        if self.rows_loop:
            head = [f"def {self.name}(fr, rows):"]
        else:
            head = [f"def {self.name}(fr):"]
        if "subject" in self.uses and not self.rows_loop:
            head.append("    s_ = fr[0]")
        if "as_of" in self.uses:
            head.append("    asof = fr[1]")
        if "indexes" in self.uses:
            head.append("    ix = fr[2]")
        return "\n".join(head + self._rendered()) + "\n"


class Compiler:
    def __init__(self, program: Program, trace: bool = False):
        self.program = program
        # A tracing build logs evidence into frame[TRACE] for `pbr explain`; the
        # ordinary build has none of that code in it.
        self.trace = trace
        self.next_slot = 6
        self.let_slots: dict[str, int] = {}
        self.outcome_slots: dict[str, int] = {}
        self.derived: dict[str, tuple[int, str]] = {}  # let name -> (binder slot, function name)
        self.indexes: list[tuple] = []  # what each entry of frame[INDEXES] holds
        self.namespace: dict[str, Any] = dict(RUNTIME)
        self.code = None  # the generated functions' module, once built
        self.constants: dict[Any, str] = {}
        self.functions: list[_Body] = []
        self.body: _Body | None = None
        self.frame_read: set[int] = set()  # binder slots some other function reads from the frame
        self.recurring_days_slots: dict[str, int] = {}  # where the steps leave a recurring outcome's days
        self.pence_cells: dict[tuple, dict | None] = {}  # (tariff, none) -> _in_pence, once for each
        self.let_may_be_none: dict[str, bool] = {}  # definition -> whether it may be none (see compile)
        self.nullable: dict[int, bool] = {}  # id of an expression node -> whether it may be none
        self.lets = {let.name: let for let in program.lets if let.record_table is None}

    def slot(self) -> int:
        s = self.next_slot
        self.next_slot += 1
        return s

    def index(self, spec: tuple) -> int:
        if spec not in self.indexes:
            self.indexes.append(spec)
        return self.indexes.index(spec)

    def const(self, value: Any) -> str:
        """A name for a value from the contract; only true, false and none are written into the
        source as they are."""
        if value is None or value is True or value is False:
            return repr(value)
        # Texts are shared; anything else by identity (1.0 and 1 are equal but print differently).
        key = ("text", value) if type(value) is str else ("id", id(value))
        name = self.constants.get(key)
        if name is None:
            name = self.constants[key] = f"k{len(self.constants)}"
            self.namespace[name] = value
        return name

    # ---- functions --------------------------------------------------------------------

    def function(self, e: n.Expr, scope: dict[str, int], prefix: str = "f") -> str:
        """Start a new generated function returning the value of `e`; its name."""
        outer = self.body
        body = self.body = _Body(f"{prefix}{len(self.functions)}")
        self.functions.append(body)
        result = self.emit(e, scope)
        body.w(f"return {result}")
        self.body = outer
        return body.name

    def fn(self, e: n.Expr, scope: dict[str, int] | None = None) -> Fn:
        """A compiled function frame -> value, for use after `build`."""
        return _Pending(self.function(e, scope or {}))

    def build(self) -> None:
        """Compile every generated function at once and replace the pending references."""
        source = self.source()
        self.code = compile(source, GENERATED, "exec")  # only this module's own text: see the docstring
        define(self.code, self.namespace)

    def source(self) -> str:
        return "\n".join(b.source() for b in self.functions)

    def resolve(self, value):
        if isinstance(value, _Pending):
            return self.namespace[value.name]
        return value

    # ---- expressions -------------------------------------------------------------

    def may_be_none(self, e: n.Expr) -> bool:
        """Whether `e` can be none when evaluated. False only where the language or the loaded
        data rule it out (a literal, the as-of day, a field its table requires, a record in hand,
        spells), so that the generated code leaves out tests that cannot fail; otherwise True.
        Each node is asked about at every level above it: answered once (by identity: the
        nodes live as long as the compiler)."""
        known = self.nullable.get(id(e))
        if known is None:
            known = self.nullable[id(e)] = self._may_be_none(e)
        return known

    def _may_be_none(self, e: n.Expr) -> bool:
        if isinstance(e, n.Literal):
            return e.value is None
        if isinstance(e, (n.AsOf, n.Spells)):
            return False
        if isinstance(e, n.SpellOp):
            return self.may_be_none(e.spells)  # none only when its spells are
        if isinstance(e, n.Duration):
            return self.may_be_none(e.amount)
        if isinstance(e, n.Ref):
            kind = e.meaning[0] if e.meaning else None
            if kind == "subject_field":
                return self._optional(self.program.subject.table, int(e.meaning[1]))
            if kind == "binder":
                return e.type is None or e.type.kind != "record"  # bound to each record in turn
            if kind == "enum":
                return False
            if kind == "let":  # worked out for every definition, in order, before any is written
                return self.let_may_be_none.get(e.name, True)
            return True
        if isinstance(e, n.Field) and e.meaning and e.meaning[0] == "field":
            return self.may_be_none(e.target) or self._optional(e.target.type.name, int(e.meaning[1]))
        if isinstance(e, n.Binary) and e.op in ("+", "-", "*"):
            kinds = {x.type.kind if x.type else None for x in (e.left, e.right)}
            if kinds <= {"integer", "date", "days"}:
                return self.may_be_none(e.left) or self.may_be_none(e.right)
        return True

    def _counts_every_day(self, e: n.Expr) -> bool:
        """Whether spells `e` count every day of their runs (nothing `not counting`), followed
        through definitions without recursing."""
        while True:
            if isinstance(e, n.Spells):
                return True
            if isinstance(e, n.SpellOp) and e.op != "not_counting":
                e = e.spells
            elif isinstance(e, n.Ref) and e.meaning and e.meaning[0] == "let" and e.name in self.lets:
                e = self.lets[e.name].expr
            else:
                return False

    def _optional(self, table: str, index: int) -> bool:
        """Whether a table's field may be empty. Loading refuses a record without a required field;
        the evaluator's own table (cohorts) may leave any figure empty."""
        info = self.program.tables[table]
        return info.virtual or info.fields[index].optional

    def _nullable(self, *pairs: tuple[str, n.Expr]) -> list[str]:
        """Of (value, expression) pairs, the values that may be none: the only ones to test."""
        return [v for v, e in pairs if self.may_be_none(e)]

    def _not_none(self, *pairs: tuple[str, n.Expr]) -> list[str]:
        """`x is not None` for each value that may be none."""
        return [f"{v} is not None" for v in self._nullable(*pairs)]

    def _any_none(self, *pairs: tuple[str, n.Expr]) -> str:
        """`x is None or y is None` over the values that may be none; empty when none may be."""
        return " or ".join(f"{v} is None" for v in self._nullable(*pairs))

    def emit(self, e: n.Expr, scope: dict[str, int]) -> str:
        """Write the statements computing `e` into the current function; an expression naming its value."""
        body = self.body
        if (body.indent > _MAX_INDENT or body.loops > _MAX_LOOPS) and not isinstance(e, (n.Literal, n.Ref, n.AsOf)):
            name = self.function(e, scope, "g")  # too deep for one function: a function of its own
            v = body.tmp()
            body.w(f"{v} = {name}(fr)")
            return v
        # A tracing build also logs what tariffs, bands, windows and runs decided, and the
        # records each aggregate used (`pbr explain`); the ordinary build has none of that.
        return getattr(self, "_e_" + type(e).__name__)(e, scope)

    def _e_Literal(self, e: n.Literal, scope):
        return self.const(e.value)

    def _e_AsOf(self, e, scope):
        self.body.uses.add("as_of")
        return "asof"

    def _e_Paid(self, e: n.Paid, scope):
        v = self.body.tmp()
        self.body.w(f"{v} = fr[3].get({self.const(e.outcome)}, {self.const(Decimal(0))})")
        return v

    def _store(self, slot: int, value: str) -> None:
        """Leave a step's value (a local) in its frame slot, for what reads it from there."""
        body = self.body
        body.w_frame(f"fr[{slot}] = {value}", None)
        body.locals[slot] = value
        if body.indent == (2 if body.lean else 1):
            body.stored[slot] = value

    def _read_slot(self, s: int) -> str:
        local = self.body.locals.get(s)
        return local if local is not None else f"fr[{s}]"

    def _e_Ref(self, e: n.Ref, scope):
        kind = e.meaning[0]
        body = self.body
        if kind == "binder":
            s = scope[e.name]
            local = body.locals.get(s)
            if local is None:
                self.frame_read.add(s)
                return f"fr[{s}]"
            return local
        if kind == "let":
            return self._read_slot(self.let_slots[e.name])
        if kind in ("subject_field", "row_field"):
            body.uses.add("subject")
            return f"s_[{int(e.meaning[1])}]"
        if kind == "subject":
            body.uses.add("subject")
            return "s_"
        if kind == "outcome":
            return self._read_slot(self.outcome_slots[e.name])
        if kind == "enum":
            return self.const(e.meaning[1])
        if kind == "related":
            table, field_index = e.meaning[1], e.meaning[2]
            subject_table = self.program.tables[self.program.subject.table]
            key = subject_table.field(subject_table.key).index
            ix = self.index(("children", table, field_index))
            body.uses.update(("subject", "indexes"))
            v = body.tmp()
            body.w(f"{v} = ix[{ix}].get(s_[{int(key)}], EMPTY)")
            return v
        if kind == "table":
            ix = self.index(("all", e.meaning[1]))
            body.uses.add("indexes")
            return f"ix[{ix}]"
        raise AssertionError(e.meaning)

    def _e_Field(self, e: n.Field, scope):
        target = self.emit(e.target, scope)
        body = self.body
        kind = e.meaning[0]
        v = body.tmp()
        if kind == "field":
            i = int(e.meaning[1])
            if target == "s_" or (target.startswith("r") and target[1:].isdigit()):
                body.w(f"{v} = {target}[{i}]")  # the subject or a record in hand: never none
            else:
                body.w(f"{v} = None if {target} is None else {target}[{i}]")
            return v
        if kind in ("children", "children_of_all"):
            table, field_index = e.meaning[1], e.meaning[2]
            parent = self.program.tables[e.target.type.name]
            key = int(parent.field(parent.key).index)
            ix = self.index(("children", table, field_index))
            body.uses.add("indexes")
            if kind == "children":
                body.w(f"{v} = EMPTY if {target} is None else ix[{ix}].get({target}[{key}], EMPTY)")
                return v
            r = body.tmp("r")
            body.w(f"{v} = []")
            body.w(f"for {r} in {target}:")
            body.indent += 1
            body.w(f"{v}.extend(ix[{ix}].get({r}[{key}], EMPTY))")
            body.indent -= 1
            return v
        if kind == "derived":
            s, name = self.derived[e.name]
            body.w(f"if {target} is None:")
            body.w(f"    {v} = None")
            body.w("else:")
            body.w(f"    fr[{s}] = {target}")
            body.w(f"    {v} = {name}(fr)")
            return v
        raise AssertionError(e.meaning)

    def _e_Lookup(self, e: n.Lookup, scope):
        v = self.body.tmp()
        keys = self._lookup(e, scope, self.program.tariffs[e.meaning[1]].cells, v)
        if self.trace:
            self.body.w(f"fr[4].append(('tariff', {self.const(e.meaning[1])}, ({', '.join(keys)},), {v}, "
                        f"{self.const(e)}))")
        return v

    def _lookup(self, e: n.Lookup, scope, cells: dict, into: str, missing: str = "None") -> list[str]:
        """Write `into` = the cell of `cells` (a tariff's, or the same in pence) at the lookup's
        keys, `missing` where there is none; the keys' expressions."""
        keys = [self.emit(k, scope) for k in e.keys]
        body = self.body
        default = "" if missing == "None" else f", {missing}"
        if len(keys) == 1:
            # One key: a table by the key itself (no cell is keyed by none).
            single = {k[0]: value for k, value in cells.items()}
            body.w(f"{into} = {self.const(single)}.get({keys[0]}{default})")
        elif len(keys) == 2:
            body.w(f"{into} = {self.const(cells)}.get(({keys[0]}, {keys[1]}){default})")  # a key of none finds no cell
        else:
            nones = " or ".join(f"{k} is None" for k in keys)
            body.w(f"{into} = {missing} if {nones} else {self.const(cells)}.get(({', '.join(keys)},){default})")
        return keys

    def _in_pence(self, e: n.Expr, none: Any) -> dict | None:
        """When `e` is a tariff's cell and nothing more, the tariff's cells in whole pence, as the
        evaluator rounds them (money.to_pence), once, here (`none` for a cell of none). None
        otherwise, or when a cell is below zero (the grammar writes none such) or too large to be
        pence exactly: the general route then refuses it for the subject that meets it, naming
        the subject, and no other subject is held up by it."""
        if not isinstance(e, n.Lookup):
            return None
        name = e.meaning[1]
        made = self.pence_cells.get((name, none), _MISSING)
        if made is _MISSING:
            try:
                with decimal.localcontext(exact_context()):
                    made = {key: none if value is None else to_pence(value, self.program.rounding)
                            for key, value in self.program.tariffs[name].cells.items()}
            except ArithmeticError:
                made = None
            if made is not None and any(pence is not none and pence < 0 for pence in made.values()):
                made = None
            self.pence_cells[(name, none)] = made
        return made

    def _e_Duration(self, e: n.Duration, scope):
        factor = {"days": 1, "weeks": 7, "months": 1, "years": 12}[e.unit]
        if isinstance(e.amount, n.Literal):
            return self.const(None if e.amount.value is None else e.amount.value * factor)
        amount = self.emit(e.amount, scope)
        v = self.body.tmp()
        if self.may_be_none(e.amount):
            self.body.w(f"{v} = None if {amount} is None else {amount} * {factor}")
        else:
            self.body.w(f"{v} = {amount} * {factor}")
        return v

    def _e_Call(self, e: n.Call, scope):
        args = [self.emit(a, scope) for a in e.args]
        kind, name = e.meaning
        body = self.body
        v = body.tmp()
        if kind == "band":
            band = self.program.bands[name]
            cache = labels_by_day(band.entries)
            d = args[0]
            dateless = self.may_be_none(e.args[0])
            if dateless:
                body.w(f"if {d} is None:")
                body.w(f"    {v} = None")
                body.w("else:")
                body.indent += 1
            body.w(f"{v} = {self.const(cache)}.get({d}, _MISSING)")
            body.w(f"if {v} is _MISSING:")
            body.w(f"    {v} = {self.const(band.label_of)}({d})")
            if dateless:
                body.indent -= 1
            if self.trace:
                body.w(f"fr[4].append(('band', {self.const(e.name)}, {d}, {v}, {self.const(e)}))")
            return v
        present = ", ".join(args) + ","
        if name in ("later", "higher"):
            body.w(f"{v} = max((x for x in ({present}) if x is not None), default=None)")
        elif name in ("earlier", "lower"):
            body.w(f"{v} = min((x for x in ({present}) if x is not None), default=None)")
        elif name == "abs":
            body.w(f"{v} = None if {args[0]} is None else abs({args[0]})")
        elif name == "days_between":
            a, b = args
            body.w(f"{v} = None if {a} is None or {b} is None else {b} - {a}")
        else:
            raise AssertionError(name)
        return v

    def _e_Unary(self, e: n.Unary, scope):
        operand = self.emit(e.operand, scope)
        v = self.body.tmp()
        if e.op == "not":
            self.body.w(f"{v} = not {operand}")
        else:
            self.body.w(f"{v} = None if {operand} is None else -{operand}")
        return v

    def _e_Binary(self, e: n.Binary, scope):
        body = self.body
        if e.op in ("and", "or"):
            v = body.tmp()
            left = self.emit(e.left, scope)
            body.w(f"{v} = bool({left})")
            body.w(f"if {'' if e.op == 'and' else 'not '}{v}:")
            body.indent += 1
            right = self.emit(e.right, scope)
            body.w(f"{v} = bool({right})")
            body.indent -= 1
            return v
        left = self.emit(e.left, scope)
        right = self.emit(e.right, scope)
        v = body.tmp()
        lk = e.left.type.kind if e.left.type else None
        rk = e.right.type.kind if e.right.type else None
        if e.op in ("+", "-") and "months" in (lk, rk) and "date" in (lk, rk):
            sign = 1 if e.op == "+" else -1
            date, months = (left, right) if lk == "date" else (right, left)
            body.w(f"{v} = _add_months({date}, {months}, {sign}, {self.const(e.span)})")
            return v
        if e.op == "/":
            body.w(f"{v} = _divide({left}, {right}, {self.const(e.span)})")
            return v
        op = {"+": "+", "-": "-", "*": "*"}[e.op]
        whole = lk in ("integer", "date", "days", "months") and rk in ("integer", "date", "days", "months")
        if whole or (e.type is not None and e.type.kind == "date"):
            nones = self._any_none((left, e.left), (right, e.right))
            body.w(f"{v} = {f'None if {nones} else ' if nones else ''}{left} {op} {right}")
            if e.type is not None and e.type.kind == "date":
                body.w(f"if {v} is not None and not FIRST_DAY <= {v} <= LAST_DAY:")
                body.w(f"    _outside_calendar({self.const(e.span)})")
            return v
        body.w(f"{v} = {self.const(MIXED[e.op])}({left}, {right})")
        return v

    def _e_Compare(self, e: n.Compare, scope):
        left = self.emit(e.left, scope)
        right = self.emit(e.right, scope)
        op = _COMPARE[e.op]
        v = self.body.tmp()
        tests = self._not_none((left, e.left), (right, e.right)) + [f"{left} {op} {right}"]
        self.body.w(f"{v} = {' and '.join(tests)}")
        return v

    def _e_IsNone(self, e: n.IsNone, scope):
        operand = self.emit(e.operand, scope)
        v = self.body.tmp()
        self.body.w(f"{v} = {operand} is {'not ' if e.negated else ''}None")
        return v

    def _e_Within(self, e: n.Within, scope):
        value, length, anchor = (self.emit(x, scope) for x in (e.value, e.length, e.anchor))
        months = e.length.type.kind == "months"
        v = self.body.tmp()
        if not months and e.direction == "of":  # the usual window, written out: no call
            tests = self._not_none((value, e.value), (length, e.length), (anchor, e.anchor))
            self.body.w(f"{v} = {' and '.join(tests + [f'{anchor} <= {value} <= {anchor} + {length} - 1'])}")
        else:
            self.body.w(f"{v} = _within({value}, {length}, {anchor}, {months}, {e.direction == 'of'})")
        if self.trace:
            self.body.w(f"fr[4].append(('window', {value}, {length}, {anchor}, {months}, "
                        f"{self.const(e.direction)}, {v}, {self.const(e)}))")
        return v

    def _e_InBand(self, e: n.InBand, scope):
        value = self.emit(e.value, scope)
        v = self.body.tmp()
        label_of = self.const(self.program.bands[e.band].label_of)
        self.body.w(f"{v} = {value} is not None and {label_of}({value}) is not None")
        return v

    def _e_InList(self, e: n.InList, scope):
        value = self.emit(e.value, scope)
        body = self.body
        v = body.tmp()
        if all(isinstance(o, n.Literal) or (isinstance(o, n.Ref) and o.meaning[0] == "enum") for o in e.options):
            options = tuple(o.value if isinstance(o, n.Literal) else o.meaning[1] for o in e.options)
            body.w(f"{v} = {value} is not None and {value} in {self.const(options)}")
            return v
        body.w(f"{v} = False")
        body.w(f"if {value} is not None:")
        body.indent += 1
        options = [self.emit(o, scope) for o in e.options]
        body.w(f"{v} = {value} in ({', '.join(options)},)")
        body.indent -= 1
        return v

    def _e_If(self, e: n.If, scope):
        body = self.body
        cond = self.emit(e.condition, scope)
        v = body.tmp()
        body.w(f"if {cond}:")
        body.indent += 1
        then = self.emit(e.then, scope)
        body.w(f"{v} = {then}")
        body.indent -= 1
        body.w("else:")
        body.indent += 1
        other = self.emit(e.otherwise, scope)
        body.w(f"{v} = {other}")
        body.indent -= 1
        return v

    def _e_SpellOp(self, e: n.SpellOp, scope):
        if e.op == "counted_from" and isinstance(e.spells, n.Spells) and not self.trace:
            # `(spells ...) counted from d`: each spell is cut at d as it is read, not the runs after.
            return self._e_Spells(e.spells, scope, self.emit(e.arg, scope), self.may_be_none(e.arg))
        spells = self.emit(e.spells, scope)
        arg = self.emit(e.arg, scope)
        v = self.body.tmp()
        body = self.body
        body.w(f"if {spells} is None:")
        body.w(f"    {v} = None")
        body.w(f"elif {arg} is None:")
        body.w(f"    {v} = {spells if e.op == 'not_counting' else 'Spells([])'}")
        body.w("else:")
        body.w(f"    {v} = {spells}.{ {'counted_from': 'counted_from', 'starting_from': 'starting_from', 'not_counting': 'not_counting'}[e.op]}({arg})")
        return v

    def _e_FirstDayLasting(self, e: n.FirstDayLasting, scope):
        spells = self.emit(e.spells, scope)
        length = self.emit(e.length, scope)
        months = e.length.type.kind == "months"
        v = self.body.tmp()
        method = "first_day_lasting_months" if months else "first_day_lasting_days"
        nones = self._any_none((spells, e.spells), (length, e.length))
        if not months and not self.trace and self._counts_every_day(e.spells):
            # Read straight off the runs (Spells.first_day_lasting_days without skipped days).
            body = self.body
            body.w(f"{v} = None")
            if nones:
                body.w(f"if not ({nones}):")
                body.indent += 1
            start, end = body.tmp(), body.tmp()
            body.w(f"for {start}, {end} in {body.runs_of(spells)}:")
            body.w(f"    if {start} + {length} - 1 <= {end}:")
            body.w(f"        {v} = {start} + {length} - 1 if {length} > 0 else {start}")
            body.w("        break")
            if nones:
                body.indent -= 1
            return v
        self.body.w(f"{v} = {f'None if {nones} else ' if nones else ''}{spells}.{method}({length})")
        if self.trace:
            self.body.w(f"fr[4].append(('lasting', {spells}, {length}, {months}, {v}, {self.const(e)}))")
        return v

    # aggregates: each binding's record is a local; it goes into its frame slot too when
    # some other function (a derived definition, a part of its own) reads it from there
    def _source(self, b: n.Binding, scope) -> tuple[str, str, dict, Any]:
        """The binding's records (counted against the step budget); (records, record local, inner scope)."""
        body = self.body
        records = self.emit(b.source, scope)
        steps = body.tmp()
        body.w_frame(f"{steps} = fr[5] + len({records})", f"{steps} = steps_ + len({records})")
        limit = int(MAX_EVALUATION_STEPS)  # read now, so a test can lower it before compiling
        body.w(f"if {steps} > {limit}:")
        body.w(f"    _too_many_steps({limit})")
        body.w_frame(f"fr[5] = {steps}", f"steps_ = {steps}")
        if self.trace and b.where is None:
            table = b.source.type.name if b.source.type is not None else "?"
            body.w(f"fr[4].extend(('evidence', {self.const(table)}, x) for x in {records})")
        s = self.slot()
        inner = dict(scope)
        inner[b.name] = s
        return records, body.tmp("r"), inner, s

    def _open(self, records: str, rec: str, s: int, b: n.Binding, inner: dict) -> int:
        """Start `for rec in records:` (rec also to its frame slot, skipped unless `where` holds).

        Opened and closed around the loop's body, not given it as a callback, so a
        nesting level of the contract costs two Python frames here, not four."""
        body = self.body
        body.w(f"for {rec} in {records}:")
        body.indent += 1
        body.loops += 1
        body.locals[s] = rec
        store = len(body.lines)
        body.w_frame(f"fr[{s}] = {rec}", None)
        if b.where is not None:
            ok = self.emit(b.where, inner)
            body.w(f"if not {ok}:")
            body.w("    continue")
            if self.trace:
                table = b.source.type.name if b.source.type is not None else "?"
                body.w(f"fr[4].append(('evidence', {self.const(table)}, {rec}))")
        return store

    def _close(self, store: int, s: int) -> None:
        body = self.body
        if s not in self.frame_read:
            body.lines[store] = ""  # nothing reads this record from the frame
        del body.locals[s]
        body.loops -= 1
        body.indent -= 1

    def _e_Count(self, e: n.Count, scope):
        records, rec, inner, s = self._source(e.binding, scope)
        body = self.body
        v = body.tmp()
        if e.binding.where is None:
            body.w(f"{v} = len({records})")
            return v
        body.w(f"{v} = 0")
        store = self._open(records, rec, s, e.binding, inner)
        body.w(f"{v} += 1")
        self._close(store, s)
        return v

    def _e_CountDistinct(self, e: n.CountDistinct, scope):
        records, rec, inner, s = self._source(e.binding, scope)
        body = self.body
        seen = body.tmp()
        body.w(f"{seen} = set()")
        store = self._open(records, rec, s, e.binding, inner)
        value = self.emit(e.value, inner)
        body.w(f"if {value} is not None:")
        body.w(f"    {seen}.add({value})")
        self._close(store, s)
        v = body.tmp()
        body.w(f"{v} = len({seen})")
        return v

    def _e_Aggregate(self, e: n.Aggregate, scope):
        records, rec, inner, s = self._source(e.binding, scope)
        body = self.body
        kind = e.kind
        best, total, count = body.tmp(), body.tmp(), body.tmp()
        body.w(f"{best} = None")
        body.w(f"{total} = 0")
        body.w(f"{count} = 0")
        store = self._open(records, rec, s, e.binding, inner)
        value = self.emit(e.value, inner)
        body.w(f"if {value} is not None:")
        if kind in ("sum", "mean"):
            body.w(f"    {total} = {self.const(MIXED['+'])}({total}, {value})")
            body.w(f"    {count} += 1")
        else:
            op = "<" if kind in ("earliest", "min") else ">"
            body.w(f"    if {best} is None or {value} {op} {best}:")
            body.w(f"        {best} = {value}")
        self._close(store, s)
        if kind == "mean":
            v = body.tmp()
            body.w(f"{v} = _frac({total}) / {count} if {count} else None")  # exact: no rounding until a payment
            return v
        return total if kind == "sum" else best

    def _e_Quantifier(self, e: n.Quantifier, scope):
        records, rec, inner, s = self._source(e.binding, scope)
        body = self.body
        kind = e.kind
        v = body.tmp()
        body.w(f"{v} = {kind != 'any'}")
        store = self._open(records, rec, s, e.binding, inner)
        holds = "True" if e.condition is None else f"bool({self.emit(e.condition, inner)})"
        if kind == "every":
            body.w(f"if not {holds}:")
            body.w(f"    {v} = False")
        else:
            body.w(f"if {holds}:")
            body.w(f"    {v} = {kind == 'any'}")
        body.w("    break")
        self._close(store, s)
        return v

    def _e_Each(self, e: n.Each, scope):
        records, rec, inner, s = self._source(e.binding, scope)
        if e.binding.where is None:
            return records
        body = self.body
        v = body.tmp()
        body.w(f"{v} = []")
        store = self._open(records, rec, s, e.binding, inner)
        body.w(f"{v}.append({rec})")
        self._close(store, s)
        return v

    def _e_Spells(self, e: n.Spells, scope, counted_from: str | None = None, from_may_be_none: bool = True):
        records, rec, inner, s = self._source(e.binding, scope)
        body = self.body
        body.uses.add("as_of")
        intervals = body.tmp()
        body.w(f"{intervals} = []")
        store = self._open(records, rec, s, e.binding, inner)
        a = self.emit(e.start, inner)
        end = self.emit(e.end, inner)
        b = body.tmp()
        body.w(f"{b} = {end}")
        # A spell with no start is no spell.
        started = self.may_be_none(e.start)
        if started:
            body.w(f"if {a} is not None:")
            body.indent += 1
        # An open spell runs to the as-of day; days after it do not exist yet.
        if self.may_be_none(e.end):
            body.w(f"if {b} is None or {b} > asof:")
        else:
            body.w(f"if {b} > asof:")
        body.w(f"    {b} = asof")
        if counted_from is not None:
            start = body.tmp()
            if from_may_be_none:
                body.w(f"{start} = {a} if {counted_from} is None or {a} >= {counted_from} else {counted_from}")
            else:
                body.w(f"{start} = {a} if {a} >= {counted_from} else {counted_from}")
            a = start
        body.w(f"if {a} <= {b}:")
        body.w(f"    {intervals}.append(({a}, {b}))")
        if started:
            body.indent -= 1
        self._close(store, s)
        v, runs = body.tmp(), body.tmp("j")
        joined = f"{intervals} if len({intervals}) < 2 else _join_runs({intervals})"  # most subjects: no call
        if counted_from is None or not from_may_be_none:
            body.w(f"{runs} = {joined}")
        else:  # counted from none: no day counts
            body.w(f"{runs} = [] if {counted_from} is None else {joined}")
        body.made_spells(v, runs)
        return v

    def _e_FirstRun(self, e: n.FirstRun, scope):
        body = self.body
        needed = self.emit(e.length, scope)
        v = body.tmp()
        body.w(f"{v} = None")
        body.w(f"if {needed} is not None and {needed} > 0:")
        body.indent += 1
        records, rec, inner, s = self._source(e.binding, scope)
        chosen = body.tmp()
        body.w(f"{chosen} = []")
        store = self._open(records, rec, s, e.binding, inner)
        key = self.emit(e.order, inner)
        body.w(f"{chosen}.append((({key} is None, {key} if {key} is not None else 0), _row_key({rec}), {rec}))")
        self._close(store, s)
        body.w(f"{chosen}.sort(key=_first_two)")
        streak = body.tmp()
        body.w(f"{streak} = 0")
        ordered = body.tmp()
        body.w(f"{ordered} = [x[2] for x in {chosen}]")
        store = self._open(ordered, rec, s, attrs.evolve(e.binding, where=None), inner)
        cond = self.emit(e.condition, inner)
        body.w(f"{streak} = {streak} + 1 if {cond} else 0")
        body.w(f"if {streak} >= {needed}:")
        body.w(f"    {v} = {rec}")
        body.w("    break")
        self._close(store, s)
        body.indent -= 1
        return v

    # ---- the contract's definitions and outcomes ---------------------------------------

    def compile(self) -> "CompiledContract":
        program = self.program
        for let in program.lets:
            if let.record_table is None:
                self.let_slots[let.name] = self.slot()
        for let in program.lets:
            if let.record_table is not None:
                s = self.slot()
                self.derived[let.name] = (s, f"d{len(self.derived)}")
        for o in program.outcomes:
            self.outcome_slots[o.name] = self.slot()
            if o.recurring is not None:
                self.recurring_days_slots[o.name] = self.slot()

        # One order for definitions and outcome days, each after what it uses.
        order: list[tuple[str, str]] = []
        seen: set[str] = set()
        lets = {let.name: let for let in program.lets}
        outcome_deps = {o.name: o.deps for o in program.outcomes}

        def visit(name: str) -> None:
            stack = [(name, False)]
            while stack:
                current, expanded = stack.pop()
                if expanded:
                    if current in lets and lets[current].record_table is None:
                        order.append(("let", current))
                    elif current in outcome_deps:
                        order.append(("outcome", current))
                    continue
                if current in seen:
                    continue
                seen.add(current)
                stack.append((current, True))
                deps = lets[current].deps if current in lets else outcome_deps.get(current, ())
                for d in sorted(deps, reverse=True):
                    if d not in seen:
                        stack.append((d, False))

        for let in program.lets:
            visit(let.name)
        for o in program.outcomes:
            visit(o.name)
        # Whether each definition may be none, each after those it uses: an answer never recurses
        # along a chain of definitions (up to 200 long), only within one expression.
        for kind, name in order:
            if kind == "let":
                self.let_may_be_none[name] = self.may_be_none(lets[name].expr)

        let_fns: dict[str, Fn] = {}
        for let in program.lets:
            if let.record_table is not None:
                s, name = self.derived[let.name]
                body = self.body = _Body(name)
                self.functions.append(body)
                result = self.emit(let.expr, {let.binder: s})
                body.w(f"return {result}")
                self.body = None
            else:
                # A subject's definitions are written into its steps; only a tracing build (which
                # runs the steps one by one) and definitions outside any subject need their own.
                if self.trace or not let.per_subject:
                    let_fns[let.name] = self.fn(let.expr)
        outcomes = [self._outcome(o) for o in program.outcomes]
        by_name = {o.name: o for o in outcomes}

        global_lets = []
        subject_steps: list[tuple[int, Any]] = []
        for kind, name in order:
            if kind == "let":
                if lets[name].per_subject:
                    if self.trace:
                        subject_steps.append((self.let_slots[name], let_fns[name]))
                else:
                    global_lets.append((self.let_slots[name], let_fns[name]))
            else:
                o = by_name[name]
                if self.trace:
                    subject_steps.append((o.slot, o.achieved))

        # A tracing build keeps each step a function of its own (explain logs them one by one);
        # its `steps` runs them in order, so the evaluator always makes one call.
        steps = _StepsInOrder(subject_steps) if self.trace else self._steps(order, lets, program)
        cap = lean_cap(program)
        lean = self._lean(order, lets, program, program.caps[cap]) if cap is not None and not self.trace else None
        eligible = self.fn(program.eligible) if program.eligible is not None else None
        cap_limits = [self.fn(c.limit) for c in program.caps]
        ceiling_limits = [self.fn(c.limit) for c in program.ceilings]
        checks = {
            name: [(self._rows_failing(c), c) for c in info.checks] for name, info in program.tables.items()
            if info.checks
        }
        cohorts = None
        if program.cohorts is not None:
            c = program.cohorts
            s = self.slot()
            scope = {c.binder: s}
            self.frame_read.add(s)
            cohorts = (s, self.fn(c.members, scope), self.fn(c.by, scope), self.fn(c.counting, scope))
        self.build()
        r = self.resolve
        subject_steps[:] = [(s, r(fn)) for s, fn in subject_steps]  # `steps` of a tracing build holds this list
        for o in outcomes:
            if isinstance(o.achieved, _Recurring):
                o.achieved.resolved = (tuple(r(c) for c in o.achieved.conditions),
                                       tuple(r(x) for x in o.achieved.recurring))
        outcomes = [o.evolve(
            achieved=r(o.achieved), pays=r(o.pays),
            recurring=None if o.recurring is None else tuple(r(x) for x in o.recurring),
            reports=tuple((name, r(fn), typ, paid) for name, fn, typ, paid in o.reports),
            conditions=tuple(r(c) for c in o.conditions), day=r(o.day)) for o in outcomes]
        paid = [x.outcome for o in program.outcomes for e in (o.pays, *(e for _, e in o.reports))
                for x in n.walk(e) if isinstance(x, n.Paid)]
        return CompiledContract(
            program=program.for_evaluation(),
            frame_size=self.next_slot,
            indexes=tuple(self.indexes),
            global_lets=tuple((s, r(fn)) for s, fn in global_lets),
            subject_steps=tuple(subject_steps),
            steps=r(steps),
            lean=r(lean),
            outcomes=tuple(outcomes),
            eligible=r(eligible),
            cap_limits=tuple(r(fn) for fn in cap_limits),
            ceiling_limits=tuple(r(fn) for fn in ceiling_limits),
            # Each rule with where it is written, whether it reads as_of (the others are applied as
            # the data is loaded), and the fields of the row it reads (named in its errors).
            checks={name: [(r(fn), c.span, any(isinstance(x, n.AsOf) for x in n.walk(c)),
                            _fields_read(c, program.tables[name])) for fn, c in fns]
                    for name, fns in checks.items()},
            let_slots=dict(self.let_slots),
            cohorts=None if cohorts is None else (cohorts[0],) + tuple(r(fn) for fn in cohorts[1:]),
            source=self.source(),
            paid_outcomes=frozenset(paid),
            code=self.code,
            constants={name: self.namespace[name] for name in self.constants.values()},
        )

    def _outcome(self, o) -> CompiledOutcome:
        # Conditions and the day on their own only for a tracing build: the ordinary build writes
        # them into the subject's steps.
        conditions = [self.fn(c) for c in o.conditions] if self.trace else []
        pays = self.fn(o.pays)
        reports = tuple((name, None if e is None else self.fn(e), e.type if e is not None else None,
                         e is not None and uses_paid(e))
                        for name, e in o.reports)
        slot = self.outcome_slots[o.name]
        recurring = None
        if o.recurring is not None:
            r = o.recurring
            every = self.fn(r.every)
            months = r.every.type.kind == "months"
            anchor = self.outcome_slots[r.after]
            spells = self.fn(r.spells)
            at_most = self.fn(r.at_most)
            recurring = (every, months, anchor, spells, at_most)
            achieved = _Recurring(conditions, recurring) if self.trace else None
        else:
            achieved = self._achieved(o) if self.trace else None
        day_fn = None if o.recurring is not None else self.fn(o.achieved) if self.trace else None
        return CompiledOutcome(o.name, o.index, slot, achieved, pays, recurring, reports, o.deferred,
                               tuple(conditions) if self.trace else (), day_fn,
                               None if self.trace else self.recurring_days_slots.get(o.name))

    def _steps(self, order, lets, program) -> "_Pending":
        """One function doing a subject's steps in order: each definition and outcome day, written
        to its frame slot (and kept in a local for the steps after it)."""
        body = self.body = _Body(f"s{len(self.functions)}")
        self.functions.append(body)
        self._write_steps(order, lets, program)
        body.w("return None")
        self.body = None
        return _Pending(body.name)

    def _write_steps(self, order, lets, program) -> None:
        body = self.body
        outcomes = {o.name: o for o in program.outcomes}
        for kind, name in order:
            if kind == "let":
                if not lets[name].per_subject:
                    continue
                slot = self.let_slots[name]
                value = self.emit(lets[name].expr, {})
            else:
                o = outcomes[name]
                slot = self.outcome_slots[name]
                value = body.tmp()
                if o.recurring is not None:
                    self._first_recurrence(o, value)
                else:
                    day = self.emit(o.achieved, {})
                    body.w(f"{value} = {day}")
                    for i, c in enumerate(o.conditions):  # each `when` only while the day stands
                        guarded = i > 0 or self.may_be_none(o.achieved)  # a `when` that failed left none
                        if guarded:
                            body.w(f"if {value} is not None:")
                            body.indent += 1
                        ok = self.emit(c, {})
                        body.w(f"if not {ok}:")
                        body.w(f"    {value} = None")
                        if guarded:
                            body.indent -= 1
            self._store(slot, value)

    def _lean(self, order, lets, program, cap) -> "_Pending":
        """The lean path's subject, written out whole (see `lean_cap`): a factory that, given where
        the rows go and what rounds and cuts them, returns a function of a subject's record that
        runs its steps, makes its payments as finished rows (day, subject, outcome, occurrence,
        pence), cuts them by the one cap when their sum is over its room, puts them under their
        day and adds them to the sums; it returns whether the subject was eligible. The same
        rows, in the same order, as the evaluator's own per-subject path; what this saves is a
        call for each expression and a pass over the plan."""
        body = self.body = _Body(f"l{len(self.functions)}")
        body.lean = True
        body.indent = 2
        self.functions.append(body)
        table = self.program.tables[program.subject.table]
        body.w_frame("fr = template[:]", "steps_ = 0")  # as the template starts every subject's count
        body.w_frame("fr[0] = s_", None)
        body.w(f"key = s_[{int(table.field(table.key).index)}]")
        if program.eligible is not None:
            ok = self.emit(program.eligible, {})
            body.w(f"if not {ok}:")
            body.w("    return False")
        self._write_steps(order, lets, program)
        # Each outcome's pence (None: no payment) and, for a recurring one, its days, summed into
        # `claimed` first; the rows are made once the room is known. Most subjects are not cut:
        # their rows go straight under their days, with no list of them made and walked again.
        paying = []  # per outcome: (index, pence local, its day or its days local, recurring)
        body.w("claimed = 0")
        for o in program.outcomes:
            i = o.index
            pence, days = body.tmp("p"), None
            body.w(f"{pence} = None")
            day = self._read_slot(self.outcome_slots[o.name])
            body.w(f"if {day} is not None and {day} <= asof:")
            body.indent += 1
            cells = self._in_pence(o.pays, None)
            if cells is not None:  # a tariff's cell: in pence already
                self._lookup(o.pays, {}, cells, pence)
                body.w(f"if {pence} is not None:")  # a cell of `none`, or none found: no payment exists
                body.indent += 1
            else:
                raw = self.emit(o.pays, {})
                body.w(f"if {raw} is not None:")  # a tariff of `none`: no payment exists
                body.indent += 1
                body.w(f"{pence} = pence_get({raw})")
                body.w(f"if {pence} is None:")  # a value not met before (or negative: refused there)
                body.w_frame(f"    {pence} = tariff({i}, fr, key)", f"    {pence} = tariff({i}, {body.framed()}, key)")
            if o.recurring is None:
                body.w(f"claimed += {pence}")
                body.w(f"by_outcome[{i}] += {pence}")
            else:
                # Its days up to the as-of day, as the steps left them (or, by months, worked out).
                days = body.tmp("w")
                body.w(f"{days} = {self._read_slot(self.recurring_days_slots[o.name])}")
                body.w(f"if {days} is None:")
                body.w_frame(f"    {days} = recurrences(fr, recurring[{i}])",
                             f"    {days} = recurrences({body.framed()}, recurring[{i}])")
                body.w(f"claimed += {pence} * len({days})")
                body.w(f"by_outcome[{i}] += {pence} * len({days})")
            body.indent -= 2
            paying.append((i, pence, days if days is not None else day, days is not None))
        none = [f"{pence} is None" if not recurring else f"({pence} is None or not {days})"
                for _, pence, days, recurring in paying]
        body.w(f"if {' and '.join(none)}:")
        body.w("    return True")
        cells = self._in_pence(cap.limit, NO_LIMIT) if cap.per_subject_limit else None
        if cells is not None:  # a tariff's cell, in pence already; none found: no limit
            self._lookup(cap.limit, {}, cells, "room", self.const(NO_LIMIT))
        elif cap.per_subject_limit:
            limit = self.emit(cap.limit, {})
            body.w(f"room = limit_get({limit})")
            body.w("if room is None:")  # a value not met before, or `none`
            body.w_frame("    room = limit_of(fr)", f"    room = limit_of({body.framed()})")
        else:
            body.w("room = fixed")
        body.w("sums.paid += 1")
        # Made in contract order, each outcome's days rising: under any one day they are in
        # payment order already; only a cut needs them all in payment order.
        body.w("if claimed > room:")
        body.indent += 1
        body.w("made = []")
        self._lean_rows(paying, lambda day, row: body.w(f"made.append({row})"))
        body.w("cut(made, room)")
        body.w("for row in made:")
        body.indent += 1
        self._file_under_day("row[0]", "row")
        body.indent -= 1
        body.w("return True")
        body.indent -= 1
        self._lean_rows(paying, self._file_under_day)
        body.w("return True")
        self.body = None
        return _Pending(body.name)

    def _lean_rows(self, paying: list, put) -> None:
        """The lean path's rows, each outcome's in turn, given to `put(day, row)` (expressions) to
        write what is done with each: (day, subject, outcome, occurrence, pence)."""
        body = self.body
        for i, pence, when, recurring in paying:
            body.w(f"if {pence} is not None:")
            body.indent += 1
            if recurring:
                body.w("k = 0")
                body.w(f"for d in {when}:")
                body.w("    k += 1")
                body.indent += 1
                put("d", f"(d, key, {i}, k, {pence})")
                body.indent -= 1
            else:
                put(when, f"({when}, key, {i}, 0, {pence})")
            body.indent -= 1

    def _file_under_day(self, day: str, row: str) -> None:
        """Put a row under its day in the lean path's `by_day` (statement.file_under_day, written out)."""
        body = self.body
        body.w(f"same_day = day_get({day})")
        body.w("if same_day is None:")
        body.w(f"    by_day[{day}] = [{row}]")
        body.w("else:")
        body.w(f"    same_day.append({row})")

    def _first_recurrence(self, o, value: str) -> None:
        """Write the first day of a recurring outcome into `value` (what `_Recurring` works out,
        written out: its conditions, then one period after its anchor, if the anchor's run lasts)."""
        body = self.body
        r = o.recurring
        body.w(f"{value} = None")
        days = body.tmp("w")  # its paying days, when worked out here (see below)
        body.w(f"{days} = None")
        ok = body.tmp()
        body.w(f"{ok} = True")
        for c in o.conditions:
            body.w(f"if {ok}:")
            body.indent += 1
            holds = self.emit(c, {})
            body.w(f"{ok} = bool({holds})")
            body.indent -= 1
        anchor = body.tmp()
        body.w(f"{anchor} = {self._read_slot(self.outcome_slots[r.after])}")
        body.w(f"if {ok} and {anchor} is not None:")
        body.indent += 1
        every = self.emit(r.every, {})
        spells = self.emit(r.spells, {})
        at_most = self.emit(r.at_most, {})
        tests = self._not_none((every, r.every), (spells, r.spells), (at_most, r.at_most)) + [f"{every} > 0"]
        body.w(f"if {' and '.join(tests)}:")
        body.indent += 1
        run = body.tmp()
        # The run holding the anchor (Spells.run_containing, written out: a subject has few runs).
        body.w(f"for {run} in {body.runs_of(spells)}:")
        body.w(f"    if {run}[0] <= {anchor} <= {run}[1]:")
        body.w("        break")
        body.w("else:")
        body.w(f"    {run} = None")
        first = f"add_months({anchor}, {every})" if r.every.type.kind == "months" else f"{anchor} + {every}"
        body.w(f"if {run} is not None and {at_most} >= 1 and {first} <= {run}[1]:")
        body.w(f"    {value} = {first}")
        if r.every.type.kind != "months":
            # Every day it pays on, up to the as-of day, while the figures are at hand: the
            # evaluator takes them from this slot instead of working them out again.
            body.uses.add("as_of")
            body.w(f"    {days} = range({first}, min({run}[1], asof, {anchor} + {at_most} * {every}) + 1, {every})")
        body.indent -= 2
        self._store(self.recurring_days_slots[o.name], days)

    def _rows_failing(self, rule: n.Expr) -> "_Pending":
        """A table's `valid when` rule as one function over all its rows: (frame, rows) -> the rows
        that break it, in their order."""
        body = self.body = _Body(f"t{len(self.functions)}")
        body.rows_loop = True
        self.functions.append(body)
        broken = body.tmp("x")
        body.w(f"{broken} = []")
        body.w("for s_ in rows:")
        body.indent += 1
        body.w("fr[0] = s_")
        body.w("fr[5] = 0")
        ok = self.emit(rule, {})
        body.w(f"if not {ok}:")
        body.w(f"    {broken}.append(s_)")
        body.indent -= 1
        body.w(f"return {broken}")
        self.body = None
        return _Pending(body.name)

    def _achieved(self, o) -> "_Pending":
        """The day an outcome is achieved, conditions included: none unless every `when` holds."""
        body = self.body = _Body(f"a{len(self.functions)}")
        self.functions.append(body)
        day = self.emit(o.achieved, {})
        if o.conditions:
            body.w(f"if {day} is None:")
            body.w("    return None")
            for c in o.conditions:
                ok = self.emit(c, {})
                body.w(f"if not {ok}:")
                body.w("    return None")
        body.w(f"return {day}")
        self.body = None
        return _Pending(body.name)


class _StepsInOrder:
    """A subject's steps one function at a time (a tracing build): `steps` as the evaluator calls it."""

    def __init__(self, steps):
        self.steps = steps

    def __call__(self, fr):
        for slot, fn in self.steps:
            fr[slot] = fn(fr)


@attrs.frozen
class _Pending:
    """A generated function not yet compiled: its name in the namespace."""

    name: str


class _Recurring:
    """The first day a recurring outcome is achieved (its conditions holding)."""

    def __init__(self, conditions, recurring):
        self.conditions = conditions
        self.recurring = recurring
        self.resolved = None

    def __call__(self, fr):
        conditions, recurring = self.resolved
        for c in conditions:
            if not c(fr):
                return None
        days = recurrences(fr, recurring, limit_to_as_of=False, first_only=True)
        return days[0] if days else None


def _fields_read(rule: n.Expr, info) -> tuple[str, ...]:
    """The fields of a table's row that a `valid when` rule reads, in written order."""
    found: list[str] = []
    for x in n.walk(rule):
        if isinstance(x, n.Ref) and x.meaning and x.meaning[0] == "row_field":
            name = info.fields[x.meaning[1]].name
            if name not in found:
                found.append(name)
    return tuple(found)


def uses_paid(node) -> bool:
    """Whether an expression reads what has been paid so far (so waits for the ordered pass)."""
    return any(isinstance(x, n.Paid) for x in n.walk(node))


def compile_program(program: Program, trace: bool = False) -> CompiledContract:
    return Compiler(program, trace).compile()
