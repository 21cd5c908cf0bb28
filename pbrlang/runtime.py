"""The compiled contract and what its generated code calls: the evaluator's half of compiling.

The compiler (pbrlang.compiler) writes a contract's expressions as Python functions over a frame;
this module holds what those functions call (`RUNTIME`), where a frame keeps what, and the compiled
contract the evaluator runs. None of it imports the syntax tree or the checker, so that a compiled
contract kept by pbrlang.cache is evaluated without them (as Jinja's templates run against its
`runtime`, not its compiler).
"""

from __future__ import annotations

from fractions import Fraction

from .calendar import Spells, add_months, join_runs
from .errors import EvaluationError
from .frozen import Frozen
from .program import _MISSING, Program

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: `typing` is not imported on the evaluator's path
    from typing import Any, Callable

    Fn = Callable[[list], Any]

GENERATED = "<pbrlang contract>"  # the file name of generated code, in its functions and tracebacks

SUBJECT, AS_OF, INDEXES, LEDGER, TRACE, STEPS = 0, 1, 2, 3, 4, 5
FIRST_DAY, LAST_DAY = 1, 3652059  # 0001-01-01 and 9999-12-31 as ordinals
EMPTY: tuple = ()


def _frac(x):
    return x if isinstance(x, Fraction) else Fraction(x)


# A numeric operator where Decimal and Fraction may meet (as Fractions). Module functions, not
# closures, so that a compiled contract holding them can be kept (pickled by name).
def _add(a, b):
    if a is None or b is None:
        return None
    if isinstance(a, Fraction) or isinstance(b, Fraction):
        return _frac(a) + _frac(b)
    return a + b


def _subtract(a, b):
    if a is None or b is None:
        return None
    if isinstance(a, Fraction) or isinstance(b, Fraction):
        return _frac(a) - _frac(b)
    return a - b


def _multiply(a, b):
    if a is None or b is None:
        return None
    if isinstance(a, Fraction) or isinstance(b, Fraction):
        return _frac(a) * _frac(b)
    return a * b


MIXED = {"+": _add, "-": _subtract, "*": _multiply}


# `span`: the contract's expression, so that the error names its line and column.
def _divide(a, b, span=None):
    if a is None or b is None:
        return None
    if b == 0:
        raise EvaluationError("division by zero", span=span)
    return _frac(a) / _frac(b)


def _add_months(day, months, sign, span=None):
    if day is None or months is None:
        return None
    try:
        return add_months(day, sign * months)
    except OverflowError:
        raise EvaluationError("a date went outside the calendar (years 1 to 9999)", span=span) from None


def _outside_calendar(span=None):
    raise EvaluationError("a date went outside the calendar (years 1 to 9999)", span=span)


def _too_many_steps(limit):
    raise EvaluationError(f"needs more than {limit:,} evaluation steps "
                          "(records gone through by its aggregates); the limit keeps every run short")


def _within(value, size, anchor, months, after):
    if value is None or size is None or anchor is None:
        return False
    if after:
        last = (add_months(anchor, size) if months else anchor + size) - 1
        return anchor <= value <= last
    first = add_months(anchor, -size) if months else anchor - size
    return first <= value <= anchor - 1


def _row_key(record: tuple):
    # Orders records by their values (not their position in a file), so results
    # never depend on the order rows arrive in.
    return tuple((v is None, v if v is not None else 0) for v in record[:-1])


def _first_two(x):
    return x[0], x[1]


def _framed(template: list, subject: tuple, steps: int, slots: tuple) -> list:
    """A subject's frame, made only when the lean path needs one (see _Body.frame_needed): the
    template with the subject, the steps counted and the slots its steps worked out."""
    fr = template[:]
    fr[SUBJECT] = subject
    fr[STEPS] = steps
    for slot, value in slots:
        fr[slot] = value
    return fr


RUNTIME = {  # the names generated code may call, besides its constants
    "Spells": Spells, "EMPTY": EMPTY, "_frac": _frac, "_divide": _divide, "_framed": _framed,
    "_join_runs": join_runs,
    "_add_months": _add_months, "add_months": add_months, "_outside_calendar": _outside_calendar,
    "_too_many_steps": _too_many_steps, "_within": _within, "_row_key": _row_key,
    "_first_two": _first_two, "_MISSING": _MISSING, "FIRST_DAY": FIRST_DAY, "LAST_DAY": LAST_DAY,
}


def define(code, namespace: dict) -> None:
    """Define a contract's generated functions in `namespace`, from their module's bytecode: the
    compiler's, just compiled from the source it wrote, or the same kept by pbrlang.cache. That
    module holds only `def`s: running it makes the functions and nothing else."""
    exec(code, namespace)  # noqa: S102


class CompiledOutcome(Frozen):
    name: str
    index: int
    slot: int  # the frame slot holding the day it is achieved (or None)
    achieved: Fn | None  # frame -> day or None, conditions included (tracing build only: else in `steps`)
    pays: Fn
    recurring: Any  # (every_fn, months: bool, anchor_slot, spells_fn, at_most_fn) or None
    reports: tuple = ()  # (name, fn or None for `due`, type, uses paid)
    deferred: bool = False
    conditions: tuple = ()  # tracing build only: each `when` on its own
    day: Fn | None = None  # tracing build only: `achieved on` without the conditions
    days_slot: int | None = None  # a recurring outcome's paying days up to the as-of day, left by `steps`


class CompiledContract(Frozen):
    program: Program
    frame_size: int
    indexes: tuple[tuple, ...]
    global_lets: tuple
    subject_steps: tuple  # (slot, fn) one by one: tracing build only (else all in `steps`)
    outcomes: tuple[CompiledOutcome, ...]
    eligible: Fn | None
    cap_limits: tuple
    ceiling_limits: tuple
    checks: dict  # table -> [(rows breaking the rule, the rule, whether it reads as_of)]
    let_slots: dict
    cohorts: Any = None  # (binder slot, members fn, by fn, counting fn)
    steps: Fn | None = None  # a subject's steps in order: one generated function (a tracing build: one by one)
    lean: Callable | None = None  # the lean path's subject, for a contract of that shape (see lean_cap)
    source: str = ""  # the generated Python, for reading and for tests
    paid_outcomes: frozenset = frozenset()  # outcomes whose running total some `paid X` reads
    code: Any = None  # the generated functions' module, compiled (to keep it: pbrlang.cache)
    constants: dict | None = None  # the contract's values the generated code reads (k0, k1, ...)
    _hidden = ("code", "constants")


def lean_cap(program: Program) -> int | None:
    """For a contract whose payments a subject's own pass can finish as rows at once, the index of
    its one cap; None for any other shape. That shape (the Work Programme's): one funder, one cap
    over every outcome and simply per subject, no ceilings, nothing that excludes or requires
    another outcome, nothing kept for later (`paid`, reports)."""
    if len(program.funders) != 1 or len(program.caps) != 1 or not program.outcomes or program.ceilings:
        return None
    cap = program.caps[0]
    if cap.scopes != ("subject",) or any(o.name not in cap.outcomes for o in program.outcomes if cap.outcomes):
        return None
    if any(o.instead_of or o.requires or o.deferred or o.reports for o in program.outcomes):
        return None
    return 0


def recurrences(fr: list, recurring, limit_to_as_of: bool = True, first_only: bool = False):
    """The days of a recurring outcome (a sequence): anchor + k x period, while the anchor's run goes
    on unbroken."""
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
    if not months and limit_to_as_of and not first_only:
        # Days are whole numbers: the first break ends it for good, days after the as-of day are not due.
        return range(anchor + every, min(run[1], fr[AS_OF], anchor + at_most * every) + 1, every)
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
