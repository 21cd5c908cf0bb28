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
import operator
from collections import namedtuple
from decimal import Decimal
from fractions import Fraction
from functools import partial

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: `typing` is not imported on the evaluator's path
    from typing import Any

from .calendar import financial_year_label, iso, month_label

from .runtime import AS_OF, INDEXES, LEDGER, STEPS, SUBJECT, TRACE, CompiledContract, lean_cap, recurrences
from . import data
from .data import Dataset, Table, no_cycle_collection
from .errors import DataError, DataProblem, EvaluationError, EvaluationErrors
from .money import NO_LIMIT, TOO_LARGE, ZERO, exact_context, round_money, splitter, to_pence
from .statement import CapUse, Statement, Totals, file_under_day, grouped_by_day, pence_text, pounds


# A claim is a payable outcome of one subject, before caps, as a tuple:
# (day, outcome index, occurrence, tariff in pence or None, per-subject cap limits, frame or None).
# A tariff of None is decided in the ordered pass (it depends on what was paid
# before); the frame is kept only when pays or reports need it then.
C_DAY, C_OUTCOME, C_OCCURRENCE, C_TARIFF, C_LIMITS, C_FRAME = range(6)


# What the first pass found for one subject; `days` holds each outcome's day (or None), `excluded`
# (outcome index, the outcome that excluded it or a reason). A named tuple, not a class of its own:
# the first pass makes one per subject.
SubjectResult = namedtuple("SubjectResult", ("subject", "eligible", "days", "excluded", "claims"))


def build_indexes(compiled: CompiledContract, dataset: Dataset) -> list:
    indexes: list[Any] = []
    for spec in compiled.indexes:
        if spec[1] not in dataset.tables:
            indexes.append({} if spec[0] == "children" else [])  # a virtual table, filled in later
        elif spec[0] == "all":
            indexes.append(dataset.tables[spec[1]].rows)
        else:
            _, table, field_index = spec
            index = dataset.tables[table].by_reference.get(field_index)  # grouped while loading
            if index is not None:
                indexes.append(index)
                continue
            index = {}
            for row in dataset.tables[table].rows:
                key = row[field_index]
                bucket = index.get(key)
                if bucket is None:
                    index[key] = [row]
                else:
                    bucket.append(row)
            indexes.append(index)
    return indexes


def check_rows(compiled: CompiledContract, dataset: Dataset, as_of: int | None,
               exclude_invalid: bool = False) -> None:
    """Apply each table's `valid when` rules; every broken row is reported (or, when asked,
    its subject is left out). With no `as_of` (as the data is loaded), only the rules that do
    not read it, and the dataset remembers that they were; an evaluation then applies the
    others only."""
    problems: list[DataProblem] = []
    broken: list[tuple[str, tuple, DataProblem]] = []
    done = dataset.rules_checked is compiled
    for name, checks in compiled.checks.items():
        table = dataset.tables[name]
        fr = [None] * compiled.frame_size
        fr[AS_OF] = as_of
        fr[STEPS] = 0
        for failing, span, dated, fields in checks:
            if (dated and as_of is None) or (done and not dated):
                continue
            rule = span.source.text.splitlines()[span.line - 1].strip() if span else "a rule"
            for row in failing(fr, table.rows):
                problem = DataProblem(table.file, row[-1], ", ".join(fields) or None,
                                      f"breaks the contract's rule `{rule}` ({span.location})", table=name)
                problems.append(problem)
                broken.append((name, row, problem))
                if len(problems) >= 200 and not exclude_invalid:
                    raise DataError(problems)
    if problems and not exclude_invalid:
        raise DataError(problems)
    if broken:
        find = data.owners(compiled.program, dataset)
        data.exclude(compiled.program, dataset,
                     [(find[name](row) if find.get(name) else None, problem) for name, row, problem in broken])
    if as_of is None:
        dataset.rules_checked = compiled


# What evaluating one subject may raise: that subject cannot be evaluated, the others go on.
_SUBJECT_FAILS = (EvaluationError, ArithmeticError, OverflowError, ValueError)


def _naming(err: Exception, subject: str) -> EvaluationError:
    """An error met while evaluating one subject, naming the subject."""
    if isinstance(err, EvaluationError):
        return err if err.subject else EvaluationError(err.message, subject, err.span)
    if isinstance(err, decimal.DecimalException):  # Python's own text is a list of classes
        return EvaluationError(f"cannot be evaluated: {TOO_LARGE}", subject)
    return EvaluationError(f"cannot be evaluated: {err}", subject)


def in_payment_order(by_day: dict[int, list]) -> list[tuple]:
    """Payment rows grouped by day (each day's in payment order), one list, day after day."""
    rows: list[tuple] = []
    for day in sorted(by_day):
        rows.extend(by_day[day])
    return rows


def decomposable(program) -> bool:
    """Whether a subject's payments can be finished on their own: every cap per subject, no
    ceilings, nothing that reads what was paid to others (`paid`)."""
    return (all("subject" in c.scopes for c in program.caps) and not program.ceilings
            and not any(o.deferred for o in program.outcomes))


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
        template[STEPS] = 0
        template[INDEXES] = build_indexes(compiled, dataset)
        self.cohort_figures: dict[str, dict] = {}
        if compiled.cohorts is not None:
            tables = dict(dataset.tables)
            try:
                cohort_rows = self._cohort_rows(template)
            except (ArithmeticError, OverflowError, ValueError) as err:
                raise EvaluationError(f"the cohorts cannot be worked out: {err}") from None
            tables["cohorts"] = Table("cohorts", subject_table, "<cohorts>", cohort_rows)
            dataset = Dataset(tables, dataset.warnings)
            self.dataset = dataset
            template[INDEXES] = build_indexes(compiled, dataset)
        self.indexes = template[INDEXES]
        self.subject_rows = dataset.tables[subject_table.name].rows
        for slot, fn in compiled.global_lets:
            template[slot] = fn(template)
        self.template = template
        self.subject_caps = [i for i, c in enumerate(self.program.caps) if c.per_subject_limit]
        self.has_alternatives = any(o.instead_of or o.requires for o in self.program.outcomes)
        self.no_days = (None,) * len(compiled.outcomes)
        self.pence_cache: dict = {}  # tariff value -> its pence, never negative (see _tariff)
        self.limit_pence: dict = {}  # cap limit value -> its pence
        # When every cap is per subject and nothing is shared between subjects (no
        # ceilings, no `paid`), a subject's payments can be finished in the first
        # pass: that is what lets the work be split between processes.
        self.decomposable = decomposable(self.program)
        self.ordered = OrderedPass(self)
        self.keeps_frames = any(o.deferred or o.reports for o in compiled.outcomes)
        # What the per-subject loops need of each outcome, looked up once.
        self.outcome_plan = [(o.index, o, o.deferred, bool(o.deferred or o.reports), o.recurring)
                             for o in compiled.outcomes]
        # Caps that are simply `per subject`: one running total per subject, kept in a local list.
        self.simple_caps = self.decomposable and all(c.scopes == ("subject",) for c in self.program.caps)
        self.simple = self.simple_caps and not self.has_alternatives and not self.keeps_frames
        self.simple_applies = [
            tuple((i, cap.name) for i, cap in enumerate(self.program.caps) if not cap.outcomes or o.name in cap.outcomes)
            for o in self.program.outcomes
        ]
        self.finish_plan = [
            (tuple((i, name, self.ordered.cap_limits[i]) for i, name in self.simple_applies[o.index]),
             self.ordered.splits[o.index], o if o.reports else None)
            for o in compiled.outcomes
        ]
        # With one cap over every outcome and one funder, the first pass takes the lean path:
        # (index, name, fixed limit or None) of that cap.
        cap = lean_cap(self.program)
        self.one_cap = None if cap is None else (cap, self.program.caps[cap].name, self.ordered.cap_limits[cap])
        self.paid_outcomes = compiled.paid_outcomes

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
            fr[STEPS] = 0
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
            return SubjectResult(key, False, self.no_days, (), ())
        compiled.steps(fr)
        days = tuple([fr[o.slot] for o in outcomes])
        as_of = self.as_of
        excluded = self._excluded(days) if self.has_alternatives else {}
        claims: list[tuple] = []
        limits = None
        for index, o, deferred, keeps, recurring in self.outcome_plan:
            day = days[index]
            if day is None or day > as_of or index in excluded:
                continue
            if deferred:
                tariff = None
            else:
                tariff = self._tariff(o, fr, key)
                if tariff is None:
                    continue  # a tariff of `none`: no payment exists
            if limits is None and self.subject_caps:
                limits = self._limits(fr)
            keep = fr if keeps else None
            if recurring is None:
                claims.append((day, index, 0, tariff, limits, keep))
            else:
                for k, d in enumerate(recurrences(fr, recurring), start=1):
                    claims.append((d, index, k, tariff, limits, keep))
        if self.decomposable and claims:
            claims.sort(key=_claim_order)
            if self.simple_caps:
                claims = self._finish(key, claims, limits, fr)
            else:
                take = self.ordered.take
                claims = [row for row in (take(key, c) for c in claims) if row is not None]
                self.ordered.forget_subject()
        return SubjectResult(key, True, days, tuple(sorted(excluded.items())), tuple(claims))

    def _simple_subject(self):
        """`subject` for the common shape of contract, with everything it needs bound once: no
        alternatives or requirements, nothing kept for later (reports, `paid`), every cap simply
        per subject. The same results as `subject`, with no per-subject look-ups of the plan.
        (With one cap over every outcome and one funder, `finish` takes the compiled lean path;
        a tracing build, which has none, and a first pass for cohorts come here.)"""
        compiled = self.compiled
        template = self.template
        key_index = self.key_index
        eligible = compiled.eligible
        steps = compiled.steps
        as_of = self.as_of
        no_days = self.no_days
        slots = tuple(o.slot for o in compiled.outcomes)
        if len(slots) > 1:
            days_of = operator.itemgetter(*slots)
        else:  # itemgetter of one slot gives the value, not a tuple; of none, an error
            days_of = lambda fr: tuple(fr[s] for s in slots)  # noqa: E731
        plan = [(o.index, o.slot, o.pays, o.recurring, o.days_slot) for o in compiled.outcomes]
        pence_get = self.pence_cache.get
        tariff = self._tariff
        outcomes = compiled.outcomes
        finish = self._finish
        result = partial(tuple.__new__, SubjectResult)  # a SubjectResult, with no Python-level __new__ to run
        limits_of = self._limits

        def simple_subject(row: tuple) -> SubjectResult:
            fr = template[:]
            fr[0] = row
            key = row[key_index]
            if eligible is not None and not eligible(fr):
                return result((key, False, no_days, (), ()))
            steps(fr)
            # Claims (day, outcome, occurrence, tariff), through the caps and the split in `finish`.
            made = []
            append = made.append
            for index, slot, pays, recurring, days_slot in plan:
                day = fr[slot]
                if day is None or day > as_of:
                    continue
                raw = pays(fr)
                if raw is None:
                    continue  # a tariff of `none`: no payment exists
                pence = pence_get(raw)
                if pence is None:
                    pence = tariff(outcomes[index], fr, key)
                if recurring is None:
                    append((day, index, 0, pence))
                    continue
                days = fr[days_slot] if days_slot is not None else None
                if days is None:
                    days = recurrences(fr, recurring)
                k = 0
                for d in days:
                    k += 1
                    append((d, index, k, pence))
            if not made:
                return result((key, True, days_of(fr), (), ()))
            made.sort()  # day, (subject,) contract order, occurrence: never equal, so nothing else decides
            return result((key, True, days_of(fr), (), tuple(finish(key, made, limits_of(fr), fr))))

        return simple_subject

    def _cutter(self, outcome_sums: list):
        """For the lean path: cut one subject's whole rows by the one cap, given its room: each
        payment gets what room is left, in payment order (the rows are sorted into it), and a cut
        row is remade in full with its cut and taken off `outcome_sums`."""
        funder = self.program.funders[0]
        cap_name = self.one_cap[1]
        # The one funder's share of each amount: amounts repeat (a few tariffs), so one tuple each,
        # shared by every payment of that amount, not one per payment.
        single_shares: dict[int, tuple] = {}

        def cut(rows: list, room: int) -> None:
            rows.sort()
            for n_, r in enumerate(rows):
                pence = r[4]
                if pence > room:
                    allowed = room if room > 0 else 0
                    shares = single_shares.get(allowed)
                    if shares is None:
                        shares = ((funder, allowed),)
                        if len(single_shares) < 100_000:
                            single_shares[allowed] = shares
                    rows[n_] = r[:4] + (allowed, pence, shares, ((cap_name, pence - allowed),), 0, (), (), None)
                    outcome_sums[r[2]] -= pence - allowed
                else:
                    allowed = pence
                room -= allowed

        return cut

    def _lean_subject(self, sums: "LeanSums"):
        """The compiled lean path's subject function (see compiler.Compiler._lean): its payments
        put under their day in `sums.rows` and added to `sums` as they are made; it returns
        whether the subject was eligible."""
        outcomes = self.compiled.outcomes
        tariff = self._tariff
        limits_of = self._limits
        cap_index, _, fixed = self.one_cap

        def tariff_of(index: int, fr: list, key: str) -> int:
            return tariff(outcomes[index], fr, key)

        def limit_of(fr: list) -> int:
            return limits_of(fr)[cap_index]

        return self.compiled.lean(self.template, sums.rows, sums.by_outcome, sums, self.pence_cache.get, tariff_of,
                                  self.limit_pence.get, limit_of, fixed, self._cutter(sums.by_outcome),
                                  tuple(o.recurring for o in outcomes), recurrences)

    def _finish(self, subject: str, claims: list, limits, fr: list) -> list[tuple]:
        """A subject's payments when every cap is simply per subject: its claims (day, outcome,
        occurrence, tariff, ...), in order, through its caps (`limits`: this subject's) and the
        funders' split (the ordered pass, for one subject)."""
        used = [0] * len(self.program.caps)
        plan = self.finish_plan
        rows = []
        append = rows.append
        for c in claims:
            day, outcome, occurrence, tariff = c[0], c[1], c[2], c[3]
            caps, split, reporting = plan[outcome]
            allowed = tariff
            cuts: tuple = ()
            for i, name, fixed in caps:
                room = (limits[i] if fixed is None else fixed) - used[i]
                if allowed > room:
                    if room < 0:
                        room = 0
                    cuts += ((name, allowed - room),)
                    allowed = room
            for i, _, _ in caps:
                used[i] += allowed
            extra = self._reports(reporting, fr, tariff) if reporting is not None else ()
            append((day, subject, outcome, occurrence, allowed, tariff, split(allowed), cuts, 0, (), extra, None))
        return rows

    def _tariff(self, o, fr: list, key: str) -> int | None:
        """What an outcome pays, in whole pence, rounded once by the contract's rule."""
        raw = o.pays(fr)
        if raw is None:
            return None
        pence = self.pence_cache.get(raw)
        if pence is None:
            try:
                pence = to_pence(raw, self.program.rounding)
            except decimal.DecimalException:
                raise EvaluationError(f"outcome `{o.name}` would pay {TOO_LARGE}", key,
                                      self.program.outcomes[o.index].span) from None
            if len(self.pence_cache) < 100_000 and pence >= 0:  # a negative amount is refused every time
                self.pence_cache[raw] = pence
        if pence < 0:
            raise EvaluationError(f"outcome `{o.name}` would pay a negative amount ({pence_text(pence)})", key,
                                  self.program.outcomes[o.index].span)
        return pence

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
        """This subject's limit of each cap set per subject, in whole pence (each distinct
        value converted once)."""
        limits = [None] * len(self.program.caps)
        for i in self.subject_caps:
            value = self.compiled.cap_limits[i](fr)
            if value is None:
                limits[i] = NO_LIMIT  # `none`: this subject has no such cap
                continue
            pence = self.limit_pence.get(value)
            if pence is None:
                pence = self.limit_pence[value] = _limit(value, self.program.caps[i], self.program.rounding)
            limits[i] = pence
        return tuple(limits)

    def first_pass(self, rows=None) -> tuple[list[SubjectResult], list[EvaluationError]]:
        """Every subject on its own, in subject id order: what each achieved and claims."""
        results, errors = [], []
        append = results.append
        key = self.key_index
        subject = self._simple_subject() if self.simple else self.subject
        for row in sorted(self.subject_rows if rows is None else rows, key=operator.itemgetter(key)):
            try:
                append(subject(row))
            except _SUBJECT_FAILS as err:
                errors.append(_naming(err, row[key]))
        return results, errors

    def payments(self) -> "FinishedPayments":
        """A place to finish subjects' payments in, a batch of subjects at a time (`decomposable`
        contracts only)."""
        return FinishedPayments(self)

    # ---- second pass: caps, split and ceilings, in payment order --------------------------

    def statement(self, results: list[SubjectResult]) -> Statement:
        """Take every claim in payment order (day, subject id, contract order) through the caps,
        the funders' split and the funders' ceilings, in whole pence."""
        eligible = sum(1 for r in results if r.eligible)
        if self.decomposable:  # the payments are finished: group and sum them
            by_day = grouped_by_day(c for r in results for c in r.claims)
            totals = self.new_totals().add_days(by_day, sum(1 for r in results if r.claims))
            return self.assemble(in_payment_order(by_day), totals, len(results), eligible, self._blocks(results))
        # Subjects arrive in id order and each subject's claims in contract order, so one
        # bucket per day keeps payment order without sorting millions of claims.
        buckets: dict[int, list] = {}
        for r in results:
            for c in r.claims:
                bucket = buckets.get(c[0])
                if bucket is None:
                    buckets[c[0]] = [(r.subject, c)]
                else:
                    bucket.append((r.subject, c))
        rows: list[tuple] = []
        take = self.ordered.take
        append = rows.append
        for day in sorted(buckets):
            for subject, c in buckets[day]:
                row = take(subject, c)
                if row is not None:
                    append(row)
        return self.assemble(rows, self.new_totals().add(rows), len(results), eligible, self._blocks(results))

    def new_totals(self) -> Totals:
        return Totals(len(self.program.outcomes), self.program.funders)

    def assemble(self, rows: list[tuple], totals: Totals, evaluated: int, eligible: int,
                 blocks: tuple = ()) -> Statement:
        """The statement of finished payment rows in payment order, with their totals already
        summed and the subjects counted."""
        program = self.program
        statement = Statement(
            contract=program.name,
            as_of=self.as_of_date,
            currency=program.currency,
            rows=tuple(rows),
            outcomes=tuple(o.name for o in program.outcomes),
            funders=program.funders,
            every_outcome="outcome" in program.statement_parts,
            every_funder="funder" in program.statement_parts,
            show_unfunded=any(c.overflow_to is None for c in program.ceilings),
            caps=tuple(self.ordered.cap_uses()),
            blocks=blocks,
            subjects_evaluated=evaluated,
            subjects_eligible=eligible,
            warnings=tuple(self.dataset.warnings),
        )
        statement.__dict__["totals"] = totals  # already summed
        return statement

    def _reports(self, o, fr: list | None, tariff: int) -> tuple:
        out = []
        for name, fn, typ, _ in o.reports:
            if fn is None:
                out.append((name, pounds(tariff)))
                continue
            out.append((name, report_value(fn(fr), typ, self.program.rounding)))
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
            fr[STEPS] = 0
            self.compiled.steps(fr)
            for let, typ in entry.reports:
                block[let] = report_value(fr[self.compiled.let_slots[let]], typ, self.program.rounding)
            blocks.append((name, bool(get("pooled")), block))
        return tuple(blocks)

    def _scope(self, scopes: tuple[str, ...]):
        """How to find a claim's running total for a cap or ceiling: a function of (day, subject, outcome)."""
        outcome_names = [o.name for o in self.program.outcomes]
        parts = []
        for s in scopes:
            if s == "subject":
                parts.append(lambda day, subject, outcome: subject)
            elif s == "outcome":
                parts.append(lambda day, subject, outcome: outcome_names[outcome])
            elif s == "month":
                parts.append(lambda day, subject, outcome: month_label(day))
            elif s == "financial_year":
                parts.append(lambda day, subject, outcome: financial_year_label(day))
            else:
                band = self.program.bands[s]
                parts.append(lambda day, subject, outcome, band=band: band.label_of(day))
        if not parts:
            return lambda day, subject, outcome: ()
        if len(parts) == 1:
            part = parts[0]

            def one(day, subject, outcome):
                label = part(day, subject, outcome)
                return None if label is None else (label,)

            return one

        def many(day, subject, outcome):
            key = tuple(p(day, subject, outcome) for p in parts)
            return None if None in key else key  # outside every band: this limit does not apply

        return many


def evaluate(compiled: CompiledContract, dataset: Dataset, as_of: datetime.date, workers: int | None = None,
             exclude_invalid: bool = False) -> Statement:
    from . import parallel

    with decimal.localcontext(exact_context()), no_cycle_collection():
        check_rows(compiled, dataset, as_of.toordinal(), exclude_invalid)
        run = Evaluation(compiled, dataset, as_of)
        try:
            statement = parallel.statement(run, parallel.workers_for(run, workers))
        except EvaluationErrors as err:
            if not exclude_invalid or any(e.subject is None for e in err.errors):
                raise
            # Subjects that cannot be evaluated are left out and listed, never skipped silently.
            for e in err.errors:
                dataset.excluded.setdefault(e.subject, []).append(str(e).removeprefix("evaluation error: "))
            data.drop(compiled.program, dataset, set(dataset.excluded))
            run = Evaluation(compiled, dataset, as_of)
            statement = parallel.statement(run, parallel.workers_for(run, workers))
        if dataset.excluded:
            statement = statement.evolve(excluded=tuple(sorted((s, tuple(p)) for s, p in dataset.excluded.items())))
        return statement


def write_json(compiled: CompiledContract, dataset: Dataset, as_of: datetime.date, out, workers: int | None = None):
    """Evaluate and write the JSON statement; a large contract whose payments finish subject by
    subject is formatted in several processes. The bytes are the same either way."""
    from . import parallel

    if dataset.excluded:  # the statement lists the subjects left out: the in-memory statement does
        evaluate(compiled, dataset, as_of, workers).write_json(out)
        return
    with decimal.localcontext(exact_context()), no_cycle_collection():
        check_rows(compiled, dataset, as_of.toordinal())
        run = Evaluation(compiled, dataset, as_of)
        n = parallel.workers_for(run, workers)
        if n > 1 and parallel.finishes_in_parts(run):
            parallel.write_json(run, out, n)
            return
        parallel.statement(run, n).write_json(out)


class FinishedPayments:
    """The first pass of a contract whose payments finish subject by subject (`decomposable`),
    for subjects added in id order, a batch at a time: each one's payment rows put under their
    day in `by_day`, in payment order, while they are fresh in the processor's cache; the
    subjects evaluated and eligible, and the errors. The totals are summed once, at the end, and
    are whole only when no subject failed: a subject that fails may have made some of its rows
    (every caller stops at the errors, and no statement is made)."""

    def __init__(self, run: Evaluation):
        assert run.decomposable
        self.run = run
        self.by_day: dict[int, list] = {}
        self.evaluated = self.eligible = 0
        self.errors: list[EvaluationError] = []
        self.paid = 0  # subjects with a payment (the lean path counts them in its sums)
        # The lean path puts the rows under their day and sums them itself, and says only
        # whether the subject was eligible.
        self.sums = None
        if run.simple and run.compiled.lean is not None:  # compiled for one cap and one funder (lean_cap)
            self.sums = LeanSums(len(run.program.outcomes), self.by_day)
            self.subject = run._lean_subject(self.sums)
        else:
            self.subject = run._simple_subject() if run.simple else run.subject

    def add(self, rows, ordered: bool = False) -> None:
        """Evaluate these subjects (in id order already when `ordered`)."""
        key = self.run.key_index
        subject = self.subject
        by_day = self.by_day
        errors = self.errors
        lean = self.sums is not None
        evaluated = eligible = paid = 0
        for row in (rows if ordered else sorted(rows, key=operator.itemgetter(key))):
            try:
                result = subject(row)
            except _SUBJECT_FAILS as err:
                errors.append(_naming(err, row[key]))
                continue
            evaluated += 1
            if lean:
                eligible += result
            else:
                eligible += result.eligible
                if result.claims:
                    paid += 1
                    file_under_day(by_day, result.claims)
        self.evaluated += evaluated
        self.eligible += eligible
        self.paid += paid

    def totals(self) -> Totals:
        """The totals of every row made (once: a second call would count them again)."""
        totals = self.run.new_totals()
        if self.sums is not None:
            totals.add_sums(self.by_day, self.sums.by_outcome, self.sums.paid)
        else:
            totals.add_days(self.by_day, self.paid)
        return totals


class LeanSums:
    """What the lean first pass adds up as it makes each subject's rows (one funder, nothing
    unfunded): paid per outcome, subjects paid; and the rows themselves, put under their day
    (`rows`, the first pass's `by_day`)."""

    __slots__ = ("by_outcome", "paid", "rows")

    def __init__(self, outcomes: int, rows: dict[int, list]):
        self.by_outcome = [0] * outcomes
        self.paid = 0
        self.rows = rows


class OrderedPass:
    """Caps, the funders' split and the funders' ceilings, applied to claims taken in payment order."""

    def __init__(self, run: "Evaluation"):
        self.run = run
        program = run.program
        fr = run.template[:]
        rounding = program.rounding
        self.caps = program.caps
        self.cap_limits = [None if c.per_subject_limit else _limit(fn(fr), c, rounding)
                           for c, fn in zip(self.caps, run.compiled.cap_limits)]
        self.ceiling_limits = [_limit(fn(fr), c, rounding)
                               for c, fn in zip(program.ceilings, run.compiled.ceiling_limits)]
        self.cap_used: list[dict] = [{} for _ in self.caps]
        self.ceiling_used: list[dict] = [{} for _ in program.ceilings]
        # For each outcome: the caps that apply to it, with how to find each one's running total.
        self.applies = [
            [(i, run._scope(cap.scopes), cap.per_subject_limit, cap.name) for i, cap in enumerate(self.caps)
             if not cap.outcomes or o.name in cap.outcomes]
            for o in program.outcomes
        ]
        self.ceilings = [(j, c, run._scope(c.scopes)) for j, c in enumerate(program.ceilings)]
        self.splits = [splitter(o.shares) for o in program.outcomes]
        self.funder_order = {f: k for k, f in enumerate(program.funders)}
        self.ledger = run.template[LEDGER]
        self.ledger.clear()

    def forget_subject(self) -> None:
        """Drop running totals that belong to one subject (all of them, when every cap is per subject)."""
        for used in self.cap_used:
            used.clear()

    def take(self, subject: str, c: tuple) -> tuple | None:
        run = self.run
        day = c[C_DAY]
        outcome = c[C_OUTCOME]
        tariff = c[C_TARIFF]
        compiled_outcome = run.compiled.outcomes[outcome]
        if tariff is None:
            c[C_FRAME][LEDGER] = {k: pounds(v) for k, v in self.ledger.items()}
            tariff = run._tariff(compiled_outcome, c[C_FRAME], subject)
            if tariff is None:
                return None
        allowed = tariff
        cuts: tuple = ()
        cap_used = self.cap_used
        keys = []
        for i, scope, per_subject, name in self.applies[outcome]:
            key = scope(day, subject, outcome)
            keys.append((i, key))
            if key is None:
                continue
            limit = c[C_LIMITS][i] if per_subject else self.cap_limits[i]
            room = limit - cap_used[i].get(key, 0)
            if room < 0:
                room = 0
            if allowed > room:
                cuts += ((name, allowed - room),)
                allowed = room
        for i, key in keys:
            if key is not None:
                used = cap_used[i]
                used[key] = used.get(key, 0) + allowed
        shares = self.splits[outcome](allowed)
        unfunded = 0
        overflow: tuple = ()
        if self.ceilings:
            shares = dict(shares)
            for j, ceiling, scope in self.ceilings:
                share = shares.get(ceiling.funder)
                if share is None:
                    continue
                key = scope(day, subject, outcome)
                if key is None:
                    continue  # outside every band of a `per band` ceiling: it does not apply
                used = self.ceiling_used[j].get(key, 0)
                room = self.ceiling_limits[j] - used
                pay = share if share <= room else max(room, 0)
                excess = share - pay
                shares[ceiling.funder] = pay
                self.ceiling_used[j][key] = used + pay
                if excess > 0:
                    if ceiling.overflow_to is not None:
                        shares[ceiling.overflow_to] = shares.get(ceiling.overflow_to, 0) + excess
                        overflow += ((ceiling.funder, ceiling.overflow_to, excess),)
                    else:
                        unfunded += excess
                        cuts += ((ceiling.name, excess),)
            shares = tuple(sorted(shares.items(), key=lambda x: self.funder_order[x[0]]))
        amount = allowed - unfunded
        extra = run._reports(compiled_outcome, c[C_FRAME], tariff) if compiled_outcome.reports else ()
        if compiled_outcome.name in run.paid_outcomes:
            self.ledger[compiled_outcome.name] = self.ledger.get(compiled_outcome.name, 0) + amount
        return (day, subject, outcome, c[C_OCCURRENCE], amount, tariff, shares, cuts, unfunded, overflow, extra, None)

    def cap_uses(self) -> list[CapUse]:
        out: list[CapUse] = []
        for i, cap in enumerate(self.caps):
            if "subject" in cap.scopes or self.cap_limits[i] == NO_LIMIT:
                continue  # one per subject: shown by `pbr explain`, not in the statement
            for key, used in sorted(self.cap_used[i].items()):
                out.append(CapUse(cap.name, "/".join(key), pounds(self.cap_limits[i]), pounds(used)))
            if not self.cap_used[i] and not cap.scopes:
                out.append(CapUse(cap.name, "", pounds(self.cap_limits[i]), ZERO))
        for j, ceiling in enumerate(self.run.program.ceilings):
            if self.ceiling_limits[j] == NO_LIMIT:
                continue
            for key, used in sorted(self.ceiling_used[j].items()):
                out.append(CapUse(ceiling.name, "/".join(key), pounds(self.ceiling_limits[j]), pounds(used)))
            if not self.ceiling_used[j] and not ceiling.scopes:
                out.append(CapUse(ceiling.name, "", pounds(self.ceiling_limits[j]), ZERO))
        return out


def report_value(value, typ, rounding: str):
    """A reported value as the statement shows it: money to the penny, days as dates."""
    if value is None or typ is None:
        return value
    if typ.kind == "money":
        return round_money(value, rounding)
    if typ.kind == "date":
        return iso(value)
    return value


def _claim_order(c: tuple) -> tuple:
    return c[0], c[1], c[2]


def _limit(value, limit, rounding: str) -> int:
    try:
        return NO_LIMIT if value is None else to_pence(value, rounding)
    except decimal.DecimalException:
        raise EvaluationError(f"`{limit.name}` would limit to {TOO_LARGE}", span=limit.span) from None


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
