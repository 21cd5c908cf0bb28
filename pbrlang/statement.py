"""The statement: what is owed, by whom and why, and its JSON, CSV and table forms.

Payments are kept as compact rows of whole pence (a national statement has
millions of them); `Statement.payments` turns them into `Payment` values on
request, and the writers format the rows directly.
"""

from __future__ import annotations

import csv
import datetime
import functools
import io
import json
import re
from collections import Counter
from decimal import Decimal
from fractions import Fraction
from operator import itemgetter

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: `typing` is not imported on the evaluator's path
    from typing import Any, Callable, Iterable, Sequence, TextIO

from .frozen import Frozen
from .money import ANY_SIZE, ZERO, money_text, pounds

# A payment row: (day ordinal, subject, outcome index, occurrence, amount, tariff,
#   funders ((name, pence), ...), cuts ((cap, pence), ...), unfunded pence,
#   overflow ((from, to, pence), ...), extra ((name, value), ...), reason or None)
DAY, SUBJECT, OUTCOME, OCCURRENCE, AMOUNT, TARIFF, FUNDERS, CUTS, UNFUNDED, OVERFLOW, EXTRA, REASON = range(12)
# A payment paid whole by the contract's only funder, with nothing more to say of it (no cut, no
# report, no reason), may be kept as its first WHOLE fields only, a "whole row": its tariff is its
# amount and the funder pays all of it. A national statement holds millions of them; five fields
# are made, kept and sent between processes for much less than twelve. `full_row` completes one.
WHOLE = 5
_SUBJECT, _OUTCOME, _AMOUNT, _FUNDERS, _UNFUNDED = (itemgetter(i) for i in (SUBJECT, OUTCOME, AMOUNT, FUNDERS, UNFUNDED))


def full_row(r: tuple, funders: tuple[str, ...]) -> tuple:
    """A payment row with all its fields: a whole row completed (paid by the first of `funders`,
    the contract's only one), any other row as it is."""
    if len(r) > WHOLE:
        return r
    return r + (r[AMOUNT], ((funders[0], r[AMOUNT]),), (), 0, (), (), None)


def pence_text(p: int) -> str:
    if p < 0:
        return "-" + pence_text(-p)
    return f"{p // 100}.{p % 100:02d}"


def json_value(value: Any) -> Any:
    """Statement values: money and exact numbers as text, dates as ISO text."""
    if isinstance(value, Decimal):
        if value == value.quantize(Decimal("0.01"), context=ANY_SIZE):
            return money_text(value)
        return format(value.normalize(), "f")
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    if isinstance(value, Fraction):
        return json_value(Decimal(value.numerator) / Decimal(value.denominator))
    return value


class Cut(Frozen):
    cap: str
    amount: Decimal


class Overflow(Frozen):
    source: str
    target: str
    amount: Decimal


class Payment(Frozen):
    subject: str
    outcome: str
    date: datetime.date
    amount: Decimal
    funders: tuple[tuple[str, Decimal], ...]
    tariff: Decimal
    cuts: tuple[Cut, ...] = ()
    unfunded: Decimal = ZERO
    overflow: tuple[Overflow, ...] = ()
    occurrence: int = 0  # 1, 2, ... for a recurring outcome's payments; 0 otherwise
    extra: tuple = ()  # (name, value): the outcome's `reports`
    reason: Any = None  # filled in when the evaluation is asked to explain

    @classmethod
    def from_row(cls, row: tuple, outcomes: tuple[str, ...], funders: tuple[str, ...]) -> "Payment":
        row = full_row(row, funders)
        return cls(
            subject=row[SUBJECT],
            outcome=outcomes[row[OUTCOME]],
            date=datetime.date.fromordinal(row[DAY]),
            amount=pounds(row[AMOUNT]),
            funders=tuple((f, pounds(p)) for f, p in row[FUNDERS]),
            tariff=pounds(row[TARIFF]),
            cuts=tuple(Cut(c, pounds(p)) for c, p in row[CUTS]),
            unfunded=pounds(row[UNFUNDED]),
            overflow=tuple(Overflow(a, b, pounds(p)) for a, b, p in row[OVERFLOW]),
            occurrence=row[OCCURRENCE],
            extra=row[EXTRA],
            reason=row[REASON],
        )

    @property
    def period(self) -> str:
        return f"{self.date.year:04d}-{self.date.month:02d}"

    def to_dict(self, show_unfunded: bool = False) -> dict:
        d: dict[str, Any] = {
            "subject": self.subject,
            "outcome": self.outcome,
            "date": self.date.isoformat(),
            "amount": money_text(self.amount),
            "funders": {name: money_text(v) for name, v in self.funders},
            "tariff": money_text(self.tariff),
        }
        if self.occurrence:
            d["occurrence"] = self.occurrence
        for name, value in self.extra:
            d[name] = json_value(value)
        if show_unfunded:
            d["unfunded"] = money_text(self.unfunded)
        if self.cuts:
            d["cuts"] = [{"cap": c.cap, "amount": money_text(c.amount)} for c in self.cuts]
        if self.overflow:
            d["overflow"] = [{"from": o.source, "to": o.target, "amount": money_text(o.amount)} for o in self.overflow]
        if self.reason is not None:
            d["reason"] = self.reason
        return d


class CapUse(Frozen):
    """How much of a cap or ceiling was used; `period` is empty for a whole-contract limit."""

    name: str
    period: str
    limit: Decimal
    used: Decimal

    @property
    def headroom(self) -> Decimal:
        return max(self.limit - self.used, ZERO)


def grouped_by_day(rows: Iterable[tuple]) -> dict[int, list]:
    """Payment rows (or claims) under their day, each day's in the order given."""
    return file_under_day({}, rows)


def file_under_day(by_day: dict[int, list], rows: Iterable[tuple]) -> dict[int, list]:
    """Add payment rows (or claims) to `by_day` under their day, after that day's rows already there."""
    same_day_of = by_day.get
    for row in rows:
        same_day = same_day_of(row[0])
        if same_day is None:
            by_day[row[0]] = [row]
        else:
            same_day.append(row)
    return by_day


class Totals:
    """Sums of payment rows, in pence: what the statement's head reports. Two can be merged."""

    def __init__(self, outcomes: int, funders: tuple[str, ...]):
        self.funders = funders
        self.total = 0
        self.unfunded = 0
        self.by_outcome = [0] * outcomes
        self.seen_outcome = [False] * outcomes
        self.by_funder = {f: 0 for f in funders}
        self.seen_funder: set[str] = set()
        self.by_period: dict[str, int] = {}
        self.subjects_paid = 0

    def add(self, rows: Sequence[tuple]) -> "Totals":
        """Add payment rows, in any order. One subject's rows must all come in one call (the
        subjects paid are counted per call)."""
        return self.add_days(grouped_by_day(rows))

    def add_days(self, by_day: dict[int, list], subjects_paid: int | None = None) -> "Totals":
        """Add payment rows grouped by day (day -> that day's rows), as a statement groups them.
        `subjects_paid`, when the caller knows it, saves counting the subjects here; one
        subject's rows must all come in one call."""
        paid: set[str] = set()
        for day, rows in by_day.items():
            self.add_day(day, rows)
            if subjects_paid is None:
                paid.update(map(_SUBJECT, rows))
        self.subjects_paid += len(paid) if subjects_paid is None else subjects_paid
        return self

    def add_day(self, day: int, rows: list) -> None:
        """Add one day's payment rows; the subjects paid are not counted here.

        A day's rows are few enough to stay in the processor's cache: each figure is a pass
        over them in C. Over millions of rows in one pass, each row would be fetched from
        memory again for every figure (most of the time this took)."""
        amount = self._add_period(day, rows)
        self.total += amount
        by_outcome = self.by_outcome
        for row in rows:
            by_outcome[row[OUTCOME]] += row[AMOUNT]
        whole = [r for r in rows if len(r) == WHOLE]
        if whole:  # paid whole by the only funder
            self.by_funder[self.funders[0]] += sum(map(_AMOUNT, whole))
            self.seen_funder.add(self.funders[0])
            rows = [r for r in rows if len(r) > WHOLE]
        self.unfunded += sum(map(_UNFUNDED, rows))
        by_funder = self.by_funder
        for shares, count in Counter(map(_FUNDERS, rows)).items():  # each distinct split once
            for funder, pence in shares:
                by_funder[funder] += pence * count
                self.seen_funder.add(funder)

    def _add_period(self, day: int, rows: list) -> int:
        """One day's rows in the figures found the same way however they were made: the day's
        period and the outcomes seen. The day's amount."""
        amount = sum(map(_AMOUNT, rows))
        month = _month(day)
        self.by_period[month] = self.by_period.get(month, 0) + amount
        seen = self.seen_outcome
        if not all(seen):  # soon every outcome is seen, and the rows need not be looked at for it
            for outcome in set(map(_OUTCOME, rows)):
                seen[outcome] = True
        return amount

    def add_sums(self, by_day: dict[int, list], by_outcome: list[int], subjects_paid: int) -> None:
        """Add payment rows grouped by day (`by_day`), all paid by the contract's only funder and
        none unfunded, whose paid per outcome was summed as they were made: what add_days finds,
        without a pass in Python over every row for the outcomes' sums."""
        total = sum([self._add_period(day, rows) for day, rows in by_day.items()])
        self.total += total
        self.by_outcome = [a + b for a, b in zip(self.by_outcome, by_outcome)]
        if by_day:
            self.by_funder[self.funders[0]] += total
            self.seen_funder.add(self.funders[0])
        self.subjects_paid += subjects_paid

    @classmethod
    def from_dict(cls, figures: dict) -> "Totals":
        """Totals from their `__dict__`, as they cross between processes (marshal's format)."""
        totals = cls.__new__(cls)
        totals.__dict__.update(figures)
        return totals

    def merge(self, other: "Totals") -> "Totals":
        self.total += other.total
        self.unfunded += other.unfunded
        self.by_outcome = [a + b for a, b in zip(self.by_outcome, other.by_outcome)]
        self.seen_outcome = [a or b for a, b in zip(self.seen_outcome, other.seen_outcome)]
        for f, v in other.by_funder.items():
            self.by_funder[f] += v
        self.seen_funder |= other.seen_funder
        for m, v in other.by_period.items():
            self.by_period[m] = self.by_period.get(m, 0) + v
        self.subjects_paid += other.subjects_paid  # subjects are split between parts, never shared
        return self


PAYMENTS_END = "\n  ]\n}\n"
EMPTY_PAYMENTS_END = "]\n}\n"
PAYMENT_SEPARATOR = ",\n    "
FIRST_PAYMENT = "\n    "
_OPENING = '{"subject": "'
_NEXT = PAYMENT_SEPARATOR + _OPENING
_CLOSE = "}" + _NEXT


class LineFormatter:
    """Payment rows as lines of the statement's JSON, the same whichever process writes them."""

    def __init__(self, outcomes: tuple[str, ...], funders: tuple[str, ...], show_unfunded: bool):
        self.names = [json.dumps(o, ensure_ascii=False) for o in outcomes]
        self.funders = funders
        self.show_unfunded = show_unfunded
        self.dates: dict[int, str] = {}
        self.tails: dict[tuple, str] = {}

    def line(self, r: tuple) -> str:
        return self.text((r,), "")

    def text(self, rows: Sequence[tuple], separator: str = PAYMENT_SEPARATOR,
             more: Callable[[tuple], str] | None = None) -> str:
        """The rows' lines, in the rows' order, each after PAYMENT_SEPARATOR but the first after
        `separator`; `more` gives fields to add at the end of a row's line. Cheapest for rows in
        day order, as a statement has them.

        The text is joined once from the subjects and the ends of their lines, each end
        running on to the next line's opening. An end is fixed by the day and the row's other
        fields: rows with no reports and no reason (nearly all) share it with the day's other
        rows like them, and the part after the date with every other day's."""
        if not rows:
            return ""
        names, dates, tails, tail_of = self.names, self.dates, self.tails, self._tail
        pieces = [separator + _OPENING]
        append = pieces.append
        day = None
        for r in rows:  # fields by number, not by their module-level names: no global look-ups per row
            if r[0] != day:
                day = r[0]
                date = dates.get(day)
                if date is None:
                    date = dates[day] = datetime.date.fromordinal(day).isoformat()
                ends: dict[tuple, str] = {}
            if len(r) == 5 or (r[11] is None and not r[10]):  # whole, or no reason, no reports: plain values
                # outcome, occurrence, amount (a whole row); tariff, funders, cuts, unfunded, overflow
                key = r[2:10]
                end = ends.get(key)
                if end is None:
                    tail = tails.get(key[1:])
                    if tail is None:
                        tail = tail_of(r)
                        if len(tails) < 100_000:
                            tails[key[1:]] = tail
                    end = ends[key] = f'", "outcome": {names[r[2]]}, "date": "{date}", {tail}}}{_NEXT}'
            else:
                end = f'", "outcome": {names[r[2]]}, "date": "{date}", {tail_of(r)}}}{_NEXT}'
            subject = r[1]
            if subject.isalnum() or _PLAIN(subject):  # needs no escaping (letters and digits never do)
                append(subject)
            else:
                append(json.dumps(subject, ensure_ascii=False)[1:-1])
            if more is None:
                append(end)
            else:
                append(end[:-len(_CLOSE)])
                append(more(r))
                append(_CLOSE)
        pieces[-1] = pieces[-1][:-len(_NEXT)]
        return "".join(pieces)

    def _tail(self, r: tuple) -> str:
        dumps = json.dumps
        r = full_row(r, self.funders)
        funders = ", ".join(f'{dumps(f, ensure_ascii=False)}: "{pence_text(p)}"' for f, p in r[FUNDERS])
        line = (f'"amount": "{pence_text(r[AMOUNT])}", '
                f'"funders": {{{funders}}}, "tariff": "{pence_text(r[TARIFF])}"')
        if r[OCCURRENCE]:
            line += f', "occurrence": {r[OCCURRENCE]}'
        for name, value in r[EXTRA]:
            line += f", {dumps(name, ensure_ascii=False)}: {dumps(json_value(value), ensure_ascii=False)}"
        if self.show_unfunded:
            line += f', "unfunded": "{pence_text(r[UNFUNDED])}"'
        if r[CUTS]:
            line += ', "cuts": [' + ", ".join(
                f'{{"cap": {dumps(c)}, "amount": "{pence_text(p)}"}}' for c, p in r[CUTS]) + "]"
        if r[OVERFLOW]:
            line += ', "overflow": [' + ", ".join(
                f'{{"from": {dumps(a)}, "to": {dumps(b)}, "amount": "{pence_text(p)}"}}'
                for a, b, p in r[OVERFLOW]) + "]"
        if r[REASON] is not None:
            line += f', "reason": {dumps(r[REASON], ensure_ascii=False)}'
        return line


_PLAIN = re.compile(r"[A-Za-z0-9_.:/ -]*").fullmatch  # needs no JSON escaping


def head_json(head: dict) -> str:
    """The statement's JSON up to the payments, left open for them."""
    return json.dumps(head, indent=2, ensure_ascii=False)[:-2] + ',\n  "payments": ['


@functools.lru_cache(maxsize=16384)
def _month(day: int) -> str:
    d = datetime.date.fromordinal(day)
    return f"{d.year:04d}-{d.month:02d}"


class Statement(Frozen):
    contract: str
    as_of: datetime.date
    currency: str
    rows: tuple
    outcomes: tuple[str, ...] = ()  # contract order
    funders: tuple[str, ...] = ()  # declared order
    every_outcome: bool = False
    every_funder: bool = False
    show_unfunded: bool = False
    caps: tuple[CapUse, ...] = ()
    blocks: tuple = ()  # (name, is a pool, figures): cohorts and pools
    subjects_evaluated: int = 0
    subjects_eligible: int = 0
    warnings: tuple[str, ...] = ()
    excluded: tuple = ()  # (subject, (problem, ...)): subjects left out because their data is broken
    ledger: Any = None  # pbrlang.ledger.Ledger: what the previous run paid
    _unshown = ("rows",)

    @functools.cached_property
    def payments(self) -> tuple[Payment, ...]:
        return tuple(Payment.from_row(r, self.outcomes, self.funders) for r in self.rows)

    @functools.cached_property
    def totals(self) -> Totals:
        return Totals(len(self.outcomes), self.funders).add(self.rows)

    @property
    def _sums(self) -> tuple:
        t = self.totals
        outcomes = {o: t.by_outcome[i] for i, o in enumerate(self.outcomes) if self.every_outcome or t.seen_outcome[i]}
        funders = {f: v for f, v in t.by_funder.items() if self.every_funder or f in t.seen_funder}
        return t.total, t.unfunded, outcomes, funders, dict(sorted(t.by_period.items())), t.subjects_paid

    @property
    def total(self) -> Decimal:
        return pounds(self._sums[0])

    @property
    def unfunded(self) -> Decimal:
        return pounds(self._sums[1])

    def by_outcome(self) -> dict[str, Decimal]:
        return {k: pounds(v) for k, v in self._sums[2].items()}

    def by_funder(self) -> dict[str, Decimal]:
        return {k: pounds(v) for k, v in self._sums[3].items()}

    def by_period(self) -> dict[str, Decimal]:
        return {k: pounds(v) for k, v in self._sums[4].items()}

    @property
    def subjects_paid(self) -> int:
        return self._sums[5]

    def _head(self) -> dict:
        total, unfunded, outcomes, funders, periods, paid = self._sums
        caps: dict[str, Any] = {}
        for c in self.caps:
            entry = {"limit": money_text(c.limit), "used": money_text(c.used), "headroom": money_text(c.headroom)}
            if c.period:
                caps.setdefault(c.name, {})[c.period] = entry
            else:
                caps[c.name] = entry
        d: dict[str, Any] = {
            "contract": self.contract,
            "as_of": self.as_of.isoformat(),
            "currency": self.currency,
            "total": pence_text(total),
            "by_outcome": {k: pence_text(v) for k, v in outcomes.items()},
            "by_funder": {k: pence_text(v) for k, v in funders.items()},
            "by_period": {k: pence_text(v) for k, v in periods.items()},
        }
        if self.show_unfunded:
            d["unfunded"] = pence_text(unfunded)
        d["caps"] = caps
        cohorts = {name: {k: json_value(v) for k, v in fig.items()} for name, pool, fig in self.blocks if not pool}
        if cohorts:
            d["cohorts"] = cohorts
        for name, pool, fig in self.blocks:
            if pool:
                d[name] = {k: json_value(v) for k, v in fig.items()}
        d["subjects"] = {"evaluated": self.subjects_evaluated, "eligible": self.subjects_eligible, "paid": paid,
                         "excluded": len(self.excluded)}
        if self.excluded:
            d["excluded"] = [{"subject": subject, "problems": list(problems)} for subject, problems in self.excluded]
        if self.ledger is not None:
            d["ledger"] = self._ledger_summary()
        return d

    def _previous(self, r: tuple):
        return self.ledger.payments.get((r[SUBJECT], self.outcomes[r[OUTCOME]], r[OCCURRENCE]))

    def _ledger_summary(self) -> dict:
        """What was paid before, what is due now, and what must be clawed back."""
        before = now = clawback = 0
        by_funder: dict[str, int] = {}
        seen = set()
        for r in self.rows:
            r = full_row(r, self.funders)
            prev = self._previous(r)
            seen.add((r[SUBJECT], self.outcomes[r[OUTCOME]], r[OCCURRENCE]))
            paid = prev.amount if prev else 0
            before += paid
            now += r[AMOUNT] - paid
            clawback += max(0, paid - r[AMOUNT])
            old = dict(prev.funders) if prev else {}
            for f, p in r[FUNDERS]:
                by_funder[f] = by_funder.get(f, 0) + p - old.pop(f, 0)
            for f, p in old.items():
                by_funder[f] = by_funder.get(f, 0) - p
        withdrawn = []
        for key in sorted(set(self.ledger.payments) - seen):
            prev = self.ledger.payments[key]
            before += prev.amount
            now -= prev.amount
            clawback += prev.amount
            for f, p in prev.funders:
                by_funder[f] = by_funder.get(f, 0) - p
            withdrawn.append({"subject": key[0], "outcome": key[1], "occurrence": key[2], "date": prev.date,
                              "previously_paid": pence_text(prev.amount), "now_due": pence_text(-prev.amount)})
        order = {f: i for i, f in enumerate(self.funders)}
        return {
            "file": self.ledger.file,
            "as_of": self.ledger.as_of,
            "previously_paid": pence_text(before),
            "now_due": pence_text(now),
            "now_due_by_funder": {f: pence_text(v) for f, v in sorted(by_funder.items(),
                                                                       key=lambda x: order.get(x[0], len(order)))},
            "clawback": pence_text(clawback),
            "withdrawn": withdrawn,
        }

    def to_dict(self) -> dict:
        d = self._head()
        d["payments"] = [p.to_dict(self.show_unfunded) for p in self.payments]
        if self.ledger is not None:
            for p, r in zip(d["payments"], self.rows):
                prev = self._previous(r)
                p["previously_paid"] = pence_text(prev.amount if prev else 0)
                p["now_due"] = pence_text(r[AMOUNT] - (prev.amount if prev else 0))
        return d

    def write_json(self, out: TextIO) -> None:
        """Write the statement as JSON: the totals, then one line per payment, in payment order."""
        out.write(head_json(self._head()))
        formatter = LineFormatter(self.outcomes, self.funders, self.show_unfunded)
        rows = self.rows
        separator = FIRST_PAYMENT
        for start in range(0, len(rows), 8192):
            part = rows[start: start + 8192]
            out.write(formatter.text(part, separator, None if self.ledger is None else self._ledger_fields))
            separator = PAYMENT_SEPARATOR
        out.write(PAYMENTS_END if self.rows else EMPTY_PAYMENTS_END)

    def _ledger_fields(self, r: tuple) -> str:
        """What a payment's line adds with a ledger: what was paid before and what is due now."""
        prev = self._previous(r)
        paid = prev.amount if prev else 0
        return f', "previously_paid": "{pence_text(paid)}", "now_due": "{pence_text(r[AMOUNT] - paid)}"'

    def to_json(self) -> str:
        out = io.StringIO()
        self.write_json(out)
        return out.getvalue()

    def to_csv(self) -> str:
        out = io.StringIO()
        self.write_csv(out)
        return out.getvalue()

    def write_csv(self, out: TextIO) -> None:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(
            ["subject", "outcome", "occurrence", "date", "period", "tariff", "amount", "cuts", *self.funders,
             "unfunded"]
        )
        funders = self.funders
        for r in self.rows:
            r = full_row(r, funders)
            shares = dict(r[FUNDERS])
            cuts = "; ".join(f"{c} {pence_text(p)}" for c, p in r[CUTS])
            writer.writerow(
                [_cell(r[SUBJECT]), self.outcomes[r[OUTCOME]], r[OCCURRENCE] or "",
                 datetime.date.fromordinal(r[DAY]).isoformat(), _month(r[DAY]), pence_text(r[TARIFF]),
                 pence_text(r[AMOUNT]), cuts, *(pence_text(shares[f]) if f in shares else "" for f in self.funders),
                 pence_text(r[UNFUNDED])]
            )

    def to_table(self) -> str:
        """A report for a terminal: totals by outcome, funder and period."""
        total, unfunded, outcomes, funders, periods, paid = self._sums
        lines = [
            f"Statement for {self.contract} as of {self.as_of.isoformat()} ({self.currency})",
            f"Subjects evaluated: {self.subjects_evaluated}, eligible: {self.subjects_eligible}, "
            f"paid: {paid}; payments: {len(self.rows)}"
            + (f"; excluded for broken data: {len(self.excluded)}" if self.excluded else ""),
            "",
        ]
        for subject, problems in self.excluded:
            lines.insert(-1, f"  excluded {subject}: {problems[0]}" + (f" (and {len(problems) - 1} more)"
                                                                        if len(problems) > 1 else ""))

        def block(title: str, rows: dict[str, int]) -> None:
            shown = {k: _grouped(v) for k, v in rows.items()}
            all_total = _grouped(sum(rows.values()))
            width = max([len(title), len("total")] + [len(k) for k in rows]) + 2
            aw = max([len("amount"), len(all_total)] + [len(a) for a in shown.values()]) + 2
            lines.append(f"{title:<{width}}{'amount':>{aw}}")
            lines.append("-" * (width + aw))
            for k, a in shown.items():
                lines.append(f"{k:<{width}}{a:>{aw}}")
            lines.append("-" * (width + aw))
            lines.append(f"{'total':<{width}}{all_total:>{aw}}")
            lines.append("")

        block("outcome", outcomes)
        block("funder", funders)
        block("period", periods)
        cut = [r for r in self.rows if len(r) > WHOLE and r[CUTS]]
        if cut:
            lines.append(f"Payments cut by caps: {len(cut)}, {_grouped(sum(p for r in cut for _, p in r[CUTS]))} in all")
        if self.show_unfunded:
            lines.append(f"Unfunded: {_grouped(unfunded)}")
        for c in self.caps:
            label = c.name + (f" {c.period}" if c.period else "")
            lines.append(f"Cap {label}: limit {c.limit:,.2f}, used {c.used:,.2f}, headroom {c.headroom:,.2f}")
        return "\n".join(lines).rstrip() + "\n"


def _cell(text: str) -> str:
    """A text cell a spreadsheet will not run as a formula (an id such as `=cmd|...`)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _grouped(p: int) -> str:
    sign = "-" if p < 0 else ""
    p = abs(p)
    return f"{sign}{p // 100:,}.{p % 100:02d}"
