"""Evaluation: compiled contract + tables + as-of day -> statement.

Two passes. First each subject on its own: definitions, the day each outcome
is achieved, which outcomes an alternative excludes, and what each pays
before any cap. Then one ordered pass over every payment of every subject
(day, then subject id, then contract order): caps, the funders' split and
the funders' ceilings. Only the second pass needs all subjects at once, so
the first can be split between processes.
"""

from __future__ import annotations

import datetime
import decimal
from decimal import Decimal
from typing import Any

import attrs

from . import nodes as n
from .calendar import financial_year_label, iso, month_label
from fractions import Fraction

from .compiler import AS_OF, INDEXES, LEDGER, SUBJECT, TRACE, CompiledContract, recurrences
from .data import Dataset, Table
from .errors import DataError, DataProblem, EvaluationError
from .money import ZERO, exact_context, round_money, split
from .statement import CapUse, Cut, Overflow, Payment, Statement


@attrs.frozen
class Claim:
    """A payable outcome of one subject, before caps."""

    day: int
    subject: str
    outcome: int
    occurrence: int
    tariff: Decimal | None  # None: decided in the ordered pass (it depends on what was paid before)
    limits: tuple  # this subject's limit for each per-subject cap (None for other caps)
    frame: Any = attrs.field(default=None, eq=False, repr=False)  # kept when pays or reports need it later


@attrs.frozen
class SubjectResult:
    """What the first pass found for one subject; `days` holds each outcome's day (or None)."""

    subject: str
    eligible: bool
    days: tuple
    excluded: tuple  # (outcome index, the outcome that excluded it or a reason)
    claims: tuple[Claim, ...]


def build_indexes(compiled: CompiledContract, dataset: Dataset) -> list:
    indexes: list[Any] = []
    for spec in compiled.indexes:
        if spec[1] not in dataset.tables:
            indexes.append({} if spec[0] == "children" else [])  # a virtual table, filled in later
        elif spec[0] == "all":
            indexes.append(dataset.tables[spec[1]].rows)
        else:
            _, table, field_index = spec
            index: dict = {}
            for row in dataset.tables[table].rows:
                key = row[field_index]
                bucket = index.get(key)
                if bucket is None:
                    index[key] = [row]
                else:
                    bucket.append(row)
            indexes.append(index)
    return indexes


def check_rows(compiled: CompiledContract, dataset: Dataset, as_of: int) -> None:
    """Apply each table's `valid when` rules; every broken row is reported."""
    problems: list[DataProblem] = []
    for name, checks in compiled.checks.items():
        table = dataset.tables[name]
        fr = [None] * compiled.frame_size
        fr[AS_OF] = as_of
        for fn, node in checks:
            fields = _fields_named(node, table.info)
            rule = node.span.source.text.splitlines()[node.span.line - 1].strip() if node.span else "a rule"
            for row in table.rows:
                fr[SUBJECT] = row
                if not fn(fr):
                    problems.append(DataProblem(table.file, row[-1], ", ".join(fields) or None,
                                                f"breaks the contract's rule `{rule}` ({node.span.location})"))
                    if len(problems) >= 200:
                        raise DataError(problems)
    if problems:
        raise DataError(problems)


def _fields_named(node: n.Expr, info) -> list[str]:
    found: list[str] = []
    for x in n.walk(node):
        if isinstance(x, n.Ref) and x.meaning and x.meaning[0] == "row_field":
            name = info.fields[x.meaning[1]].name
            if name not in found:
                found.append(name)
    return found


class Evaluation:
    """One evaluation of a compiled contract over one dataset at one as-of day."""

    def __init__(self, compiled: CompiledContract, dataset: Dataset, as_of: datetime.date):
        self.compiled = compiled
        self.program = compiled.program
        self.dataset = dataset
        self.as_of = as_of.toordinal()
        self.as_of_date = as_of
        subject_table = self.program.tables[self.program.subject.table]
        self.key_index = subject_table.field(subject_table.key).index
        template = [None] * compiled.frame_size
        template[AS_OF] = self.as_of
        template[LEDGER] = {}
        template[TRACE] = []  # read only by a tracing build (pbr explain)
        template[INDEXES] = build_indexes(compiled, dataset)
        self.cohort_figures: dict[str, dict] = {}
        if compiled.cohorts is not None:
            tables = dict(dataset.tables)
            tables["cohorts"] = Table("cohorts", subject_table, "<cohorts>", self._cohort_rows(template))
            dataset = Dataset(tables, dataset.warnings)
            self.dataset = dataset
            template[INDEXES] = build_indexes(compiled, dataset)
        self.indexes = template[INDEXES]
        self.subject_rows = dataset.tables[subject_table.name].rows
        for slot, fn in compiled.global_lets:
            template[slot] = fn(template)
        self.template = template
        self.subject_caps = [i for i, c in enumerate(self.program.caps) if c.per_subject_limit]

    def _cohort_rows(self, template: list) -> list[tuple]:
        """Each cohort's and pool's figures, exact, from its members' counted events."""
        cohorts = self.program.cohorts
        slot, members, by, counting = self.compiled.cohorts
        fr = template[:]
        size = {e.name: 0 for e in cohorts.entries}
        events = {e.name: 0 for e in cohorts.entries}
        ranges = [(e.start, e.end, e.name) for e in cohorts.entries]
        for rec in self.dataset.tables[cohorts.table].rows:
            fr[slot] = rec
            if not members(fr):
                continue
            day = by(fr)
            if day is None:
                continue
            for start, end, name in ranges:
                if start <= day <= end:
                    count = counting(fr)
                    if count is None or count < 0:
                        raise EvaluationError(f"member {rec[0]} of cohort `{name}` has no event count", name)
                    size[name] += 1
                    events[name] += count
                    break
        rows = []
        for i, e in enumerate(cohorts.entries):
            comparison = Fraction(e.comparison)
            expected = comparison * size[e.name] / 100
            rows.append(_cohort_row(e.name, False, e.start, e.end, e.assessed, size[e.name], events[e.name],
                                    comparison, expected, len(rows) + 1))
            self.cohort_figures[e.name] = {"entry": e}
        for p in cohorts.pools:
            n_ = sum(size.values())
            e_ = sum(events.values())
            expected = sum((Fraction(e.comparison) * size[e.name] / 100 for e in cohorts.entries), Fraction(0))
            comparison = expected * 100 / n_ if n_ else None
            first = min(e.start for e in cohorts.entries)
            last = max(e.end for e in cohorts.entries)
            rows.append(_cohort_row(p.name, True, first, last, p.assessed, n_, e_, comparison, expected, len(rows) + 1))
            self.cohort_figures[p.name] = {"entry": p}
        return rows

    # ---- first pass: one subject at a time ----------------------------------------------

    def subject(self, row: tuple) -> SubjectResult:
        compiled = self.compiled
        fr = self.template[:]
        fr[SUBJECT] = row
        key = row[self.key_index]
        outcomes = compiled.outcomes
        if compiled.eligible is not None and not compiled.eligible(fr):
            return SubjectResult(key, False, (None,) * len(outcomes), (), ())
        for slot, fn in compiled.subject_steps:
            fr[slot] = fn(fr)
        days = tuple(fr[o.slot] for o in outcomes)
        as_of = self.as_of
        excluded = self._excluded(days)
        claims: list[Claim] = []
        limits = None
        rounding = self.program.rounding
        for o in outcomes:
            day = days[o.index]
            if day is None or day > as_of or o.index in excluded:
                continue
            if o.deferred:
                tariff = None
            else:
                tariff = self._tariff(o, fr, key)
                if tariff is None:
                    continue  # a tariff of `none`: no payment exists
            if limits is None:
                limits = self._limits(fr)
            keep = fr if (o.deferred or o.reports) else None
            if o.recurring is None:
                claims.append(Claim(day, key, o.index, 0, tariff, limits, keep))
            else:
                for k, d in enumerate(recurrences(fr, o.recurring), start=1):
                    claims.append(Claim(d, key, o.index, k, tariff, limits, keep))
        return SubjectResult(key, True, days, tuple(sorted(excluded.items())), tuple(claims))

    def _tariff(self, o, fr: list, key: str) -> Decimal | None:
        raw = o.pays(fr)
        if raw is None:
            return None
        tariff = round_money(raw, self.program.rounding)
        if tariff < 0:
            raise EvaluationError(f"outcome `{o.name}` would pay a negative amount ({tariff})", key,
                                  self.program.outcomes[o.index].span)
        return tariff

    def _excluded(self, days: tuple) -> dict[int, str]:
        """Outcomes not paid because an alternative was achieved first, or a requirement was not."""
        program = self.program
        index = {o.name: o.index for o in program.outcomes}
        excluded: dict[int, str] = {}
        for o in program.outcomes:
            c = days[o.index]
            if o.instead_of and c is not None and c <= self.as_of:
                for other in o.instead_of:
                    d = days[index[other]]
                    if d is not None and d >= c:
                        excluded[index[other]] = f"instead of: {o.name}"
            for req in o.requires:
                r = days[index[req]]
                if days[o.index] is not None and (r is None or r > days[o.index]):
                    excluded[o.index] = f"requires: {req}"
        return excluded

    def _limits(self, fr: list) -> tuple:
        limits = [None] * len(self.program.caps)
        for i in self.subject_caps:
            limits[i] = self.compiled.cap_limits[i](fr)
        return tuple(limits)

    def first_pass(self, rows=None) -> tuple[list[SubjectResult], list[EvaluationError]]:
        results, errors = [], []
        for row in self.subject_rows if rows is None else rows:
            try:
                results.append(self.subject(row))
            except EvaluationError as err:
                errors.append(err if err.subject else EvaluationError(str(err).removeprefix("evaluation error: "),
                                                                       row[self.key_index], err.span))
            except (ArithmeticError, OverflowError, ValueError) as err:
                errors.append(EvaluationError(f"cannot be evaluated: {err}", row[self.key_index]))
        return results, errors

    # ---- second pass: caps, split and ceilings, in payment order --------------------------

    def statement(self, results: list[SubjectResult]) -> Statement:
        program = self.program
        claims = [c for r in results for c in r.claims]
        claims.sort(key=lambda c: (c.day, c.subject, c.outcome, c.occurrence))
        fr = self.template[:]
        cap_limits = [None if c.per_subject_limit else fn(fr) for c, fn in zip(program.caps, self.compiled.cap_limits)]
        ceiling_limits = [fn(fr) for fn in self.compiled.ceiling_limits]
        cap_used: list[dict] = [{} for _ in program.caps]
        ceiling_used: list[dict] = [{} for _ in program.ceilings]
        cap_applies = [
            (frozenset(program.outcomes[i].index for i in range(len(program.outcomes))
                       if not cap.outcomes or program.outcomes[i].name in cap.outcomes))
            for cap in program.caps
        ]
        outcome_names = [o.name for o in program.outcomes]
        payments: list[Payment] = []
        ledger = self.template[LEDGER]
        ledger.clear()
        for c in claims:
            compiled_outcome = self.compiled.outcomes[c.outcome]
            tariff = c.tariff
            if tariff is None:
                tariff = self._tariff(compiled_outcome, c.frame, c.subject)
                if tariff is None:
                    continue
            allowed = tariff
            cuts: list[Cut] = []
            keys = []
            for i, cap in enumerate(program.caps):
                if c.outcome not in cap_applies[i]:
                    keys.append(None)
                    continue
                key = self._scope_key(cap.scopes, c, outcome_names)
                keys.append(key)
                if key is None:
                    continue
                limit = c.limits[i] if cap.per_subject_limit else cap_limits[i]
                if limit is None:
                    continue
                room = max(limit - cap_used[i].get(key, ZERO), ZERO)
                if allowed > room:
                    cuts.append(Cut(cap.name, allowed - room))
                    allowed = room
            for i, key in enumerate(keys):
                if key is not None:
                    cap_used[i][key] = cap_used[i].get(key, ZERO) + allowed
            shares = program.outcomes[c.outcome].shares
            funders = split(allowed, shares)
            unfunded = ZERO
            overflow: list[Overflow] = []
            for j, ceiling in enumerate(program.ceilings):
                if ceiling.funder not in funders:
                    continue
                key = self._scope_key(ceiling.scopes, c, outcome_names)
                used = ceiling_used[j].get(key, ZERO)
                share = funders[ceiling.funder]
                pay = min(share, max(ceiling_limits[j] - used, ZERO))
                excess = share - pay
                funders[ceiling.funder] = pay
                ceiling_used[j][key] = used + pay
                if excess > 0:
                    if ceiling.overflow_to is not None:
                        funders[ceiling.overflow_to] = funders.get(ceiling.overflow_to, ZERO) + excess
                        overflow.append(Overflow(ceiling.funder, ceiling.overflow_to, excess))
                    else:
                        unfunded += excess
                        cuts.append(Cut(ceiling.name, excess))
            order = {f: k for k, f in enumerate(program.funders)}
            extra = self._reports(compiled_outcome, c.frame, tariff)
            ledger[outcome_names[c.outcome]] = ledger.get(outcome_names[c.outcome], ZERO) + allowed - unfunded
            payments.append(
                Payment(
                    subject=c.subject,
                    outcome=outcome_names[c.outcome],
                    date=datetime.date.fromordinal(c.day),
                    amount=allowed - unfunded,
                    funders=tuple(sorted(funders.items(), key=lambda x: order[x[0]])),
                    tariff=tariff,
                    cuts=tuple(cuts),
                    unfunded=unfunded,
                    overflow=tuple(overflow),
                    occurrence=c.occurrence,
                    extra=extra,
                )
            )
        caps: list[CapUse] = []
        for i, cap in enumerate(program.caps):
            if "subject" in cap.scopes:
                continue  # one per subject: shown by `pbr explain`, not in the statement
            for key, used in sorted(cap_used[i].items()):
                caps.append(CapUse(cap.name, "/".join(key), cap_limits[i], used))
            if not cap_used[i] and not cap.scopes:
                caps.append(CapUse(cap.name, "", cap_limits[i], ZERO))
        for j, ceiling in enumerate(program.ceilings):
            for key, used in sorted(ceiling_used[j].items()):
                caps.append(CapUse(ceiling.name, "/".join(key), ceiling_limits[j], used))
            if not ceiling_used[j] and not ceiling.scopes:
                caps.append(CapUse(ceiling.name, "", ceiling_limits[j], ZERO))
        return Statement(
            contract=program.name,
            as_of=self.as_of_date,
            currency=program.currency,
            payments=tuple(payments),
            outcomes=tuple(outcome_names),
            funders=program.funders,
            every_outcome="outcome" in program.statement_parts,
            every_funder="funder" in program.statement_parts,
            show_unfunded=any(c.overflow_to is None for c in program.ceilings),
            caps=tuple(caps),
            blocks=self._blocks(results),
            subjects_evaluated=len(results),
            subjects_eligible=sum(1 for r in results if r.eligible),
            warnings=tuple(self.dataset.warnings),
        )

    def _reports(self, o, fr: list | None, tariff: Decimal) -> tuple:
        out = []
        for name, fn, typ, _ in o.reports:
            if fn is None:
                out.append((name, tariff))
                continue
            value = fn(fr)
            if typ is not None and typ.kind == "money" and value is not None:
                value = round_money(value, self.program.rounding)
            out.append((name, value))
        return tuple(out)

    def _blocks(self, results: list[SubjectResult]) -> tuple:
        """The cohorts' and pools' figures for the statement, pending until their assessment date."""
        if self.program.cohorts is None:
            return ()
        fields = {f.name: f.index for f in self.program.tables["cohorts"].fields}
        met = {r.subject: any(d is not None for d in r.days) for r in results}
        by_id = {row[0]: row for row in self.subject_rows}
        fr = self.template[:]
        blocks = []
        for name, info in self.cohort_figures.items():
            row = by_id[name]
            entry = info["entry"]
            get = lambda f: row[fields[f]]  # noqa: E731
            block: dict[str, Any] = {}
            if not get("pooled"):
                block["released"] = [iso(get("released_from")), iso(get("released_to"))]
            block["assessment_date"] = iso(get("assessment_date"))
            block["status"] = "assessed" if get("assessment_date") <= self.as_of else "pending"
            block["size"] = get("size")
            block["events"] = get("events")
            block["rate_per_100"] = _fixed(get("rate"), 2)
            if not get("pooled"):
                block["comparison_per_100"] = format(entry.comparison.normalize(), "f")
            block["expected_events"] = _exact(get("expected_events"))
            block["events_avoided"] = _exact(get("events_avoided"))
            block["reduction_percent"] = _fixed(None if get("reduction") is None else get("reduction") * 100, 2)
            block["threshold_met"] = met.get(name, False)
            fr[SUBJECT] = row
            for slot, fn in self.compiled.subject_steps:
                fr[slot] = fn(fr)
            for ref in entry.reports:
                value = fr[self.compiled.let_slots[ref.name]]
                if ref.type is not None and ref.type.kind == "money" and value is not None:
                    value = round_money(value, self.program.rounding)
                block[ref.name] = value
            blocks.append((name, bool(get("pooled")), block))
        return tuple(blocks)

    def _scope_key(self, scopes: tuple[str, ...], c: Claim, outcome_names) -> tuple | None:
        key = []
        for s in scopes:
            if s == "subject":
                key.append(c.subject)
            elif s == "outcome":
                key.append(outcome_names[c.outcome])
            elif s == "month":
                key.append(month_label(c.day))
            elif s == "financial_year":
                key.append(financial_year_label(c.day))
            else:
                label = self.program.bands[s].label_of(c.day)
                if label is None:
                    return None  # outside every band: this cap does not apply
                key.append(label)
        return tuple(key)


def evaluate(compiled: CompiledContract, dataset: Dataset, as_of: datetime.date) -> Statement:
    with decimal.localcontext(exact_context()):
        check_rows(compiled, dataset, as_of.toordinal())
        run = Evaluation(compiled, dataset, as_of)
        results, errors = run.first_pass()
        if errors:
            raise EvaluationErrors(errors)
        return run.statement(results)


def _cohort_row(name, pooled, start, end, assessed, size, events, comparison, expected, line) -> tuple:
    rate = Fraction(100 * events, size) if size else None
    avoided = expected - events
    reduction = avoided / expected if expected else None
    return (name, pooled, start, end, assessed, size, events, comparison, rate, expected, avoided, reduction, line)


def _fixed(value, places: int) -> str | None:
    if value is None:
        return None
    return f"{round_money(Fraction(value) / 10 ** (places - 2), 'half_up') * 10 ** (places - 2):f}" if places != 2 else \
        f"{round_money(Fraction(value), 'half_up'):f}"


def _exact(value) -> str | None:
    """An exact decimal's digits, with no trailing zeros; a repeating one to 10 places."""
    if value is None:
        return None
    f = Fraction(value)
    d = f.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    if d != 1:
        return f"{round_money(f * 10 ** 8, 'half_up') / 10 ** 10:f}"
    text = format((Decimal(f.numerator) / Decimal(f.denominator)).normalize(), "f")
    return text


class EvaluationErrors(EvaluationError):
    """Subjects that could not be evaluated: every one is listed; none is skipped."""

    def __init__(self, errors: list[EvaluationError]):
        self.errors = errors
        shown = "\n".join(str(e) for e in errors[:50])
        more = f"\n... and {len(errors) - 50} more" if len(errors) > 50 else ""
        Exception.__init__(self, shown + more)
