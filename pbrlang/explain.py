"""Explaining: why one subject is paid what it is, outcome by outcome, like a remittance note.

The statement comes from the ordinary evaluation (caps depend on every
subject, in payment order); the reasons come from a separate tracing build of
the same contract run for one subject, so tracing never slows `pbr eval`.
"""

from __future__ import annotations

import datetime
import decimal
import functools
import json
from decimal import Decimal
from typing import Any

import attrs

from .calendar import add_months, iso
from .compiler import compile_program
from .runtime import SUBJECT, TRACE, recurrences
from .data import Dataset
from .errors import UsageError
from .evaluator import Evaluation, check_rows
from .money import ANY_SIZE, exact_context, exact_sum, money_text
from .statement import OUTCOME, REASON, SUBJECT as SUBJECT_COLUMN, Payment, Statement, full_row, json_value


@attrs.frozen
class Evidence:
    table: str
    file: str
    row: int
    values: tuple[tuple[str, str], ...]

    def to_dict(self) -> dict:
        return {"table": self.table, "file": self.file, "row": self.row, "values": dict(self.values)}

    def text(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.values)
        return f"{self.file} row {self.row}: {shown}"


@attrs.frozen
class Rule:
    location: str
    source: str

    def to_dict(self) -> dict:
        return {"location": self.location, "source": self.source}


@attrs.frozen
class Condition:
    rule: Rule
    value: bool

    def to_dict(self) -> dict:
        return {**self.rule.to_dict(), "value": self.value}


@attrs.frozen
class OutcomeExplanation:
    outcome: str
    status: str  # paid, cut, not achieved, pending, excluded, not eligible, no payment
    achieved_on: datetime.date | None
    rule: Rule
    conditions: tuple[Condition, ...]
    day_rule: Rule | None
    definitions: tuple[tuple[str, Rule], ...]
    tariffs: tuple[dict, ...]
    bands: tuple[dict, ...]
    evidence: tuple[Evidence, ...]
    progress: tuple[str, ...]
    payments: tuple[Payment, ...]
    excluded_by: str | None
    caps: tuple[tuple[str, Rule], ...]

    def to_dict(self) -> dict:
        return {
            "outcome": self.outcome,
            "status": self.status,
            "achieved_on": self.achieved_on.isoformat() if self.achieved_on else None,
            "rule": self.rule.to_dict(),
            "conditions": [c.to_dict() for c in self.conditions],
            "achieved_rule": self.day_rule.to_dict() if self.day_rule else None,
            "definitions": [{"name": name, **r.to_dict()} for name, r in self.definitions],
            "tariffs": list(self.tariffs),
            "bands": list(self.bands),
            "evidence": [e.to_dict() for e in self.evidence],
            "progress": list(self.progress),
            "excluded_by": self.excluded_by,
            "payments": [p.to_dict() for p in self.payments],
            "caps": [{"cap": name, **r.to_dict()} for name, r in self.caps],
        }


@attrs.frozen
class Explanation:
    contract: str
    as_of: datetime.date
    subject: str
    subject_record: Evidence
    eligible: bool
    eligible_rule: Rule | None
    outcomes: tuple[OutcomeExplanation, ...]
    subject_caps: tuple[dict, ...] = ()  # each per-subject cap: its limit, what it used and the headroom

    @property
    def total(self) -> decimal.Decimal:
        return exact_sum(p.amount for o in self.outcomes for p in o.payments)

    def to_dict(self) -> dict:
        return {
            "contract": self.contract,
            "as_of": self.as_of.isoformat(),
            "subject": self.subject,
            "record": self.subject_record.to_dict(),
            "eligible": self.eligible,
            "eligible_rule": self.eligible_rule.to_dict() if self.eligible_rule else None,
            "total": money_text(self.total),
            "caps": list(self.subject_caps),
            "outcomes": [o.to_dict() for o in self.outcomes],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def to_text(self) -> str:
        out = [
            f"{self.contract}: subject {self.subject}, as of {self.as_of.isoformat()}",
            f"  record: {self.subject_record.text()}",
        ]
        if self.eligible_rule is not None:
            out.append(f"  eligible: {'yes' if self.eligible else 'no'} ({self.eligible_rule.location}: "
                       f"{self.eligible_rule.source})")
        out.append(f"  total paid: {pounds(self.total)}")
        for c in self.subject_caps:
            out.append(f"  cap {c['cap']}: limit {pounds(Decimal(c['limit']))}, used {pounds(Decimal(c['used']))}, "
                       f"headroom {pounds(Decimal(c['headroom']))}  ({c['location']})")
        for o in self.outcomes:
            out.append("")
            out.append(_headline(o))
            out.append(f"  rule: {o.rule.location}")
            for c in o.conditions:
                out.append(f"    when {c.rule.source}  -> {'yes' if c.value else 'no'}  ({c.rule.location})")
            if o.day_rule is not None:
                day = o.achieved_on.isoformat() if o.achieved_on else "none"
                out.append(f"    achieved on {o.day_rule.source}  -> {day}  ({o.day_rule.location})")
            for name, r in o.definitions:
                out.append(f"    uses {name}: {r.source}  ({r.location})")
            for b in o.bands:
                out.append(f"  band: {b['band']}({b['date']}) = {b['label']}")
            for t in o.tariffs:
                out.append(f"  tariff: {t['tariff']}[{', '.join(t['keys'])}] = {t['value']}  ({t['location']})")
            for line in o.progress:
                out.append(f"  progress: {line}")
            if o.evidence:
                out.append("  evidence:")
                for e in o.evidence:
                    out.append(f"    {e.text()}")
            for p in o.payments:
                out.append(_payment_line(p))
            for name, r in o.caps:
                out.append(f"  limit that cut it: {r.source}  ({r.location})")
        return "\n".join(out) + "\n"


def _headline(o: OutcomeExplanation) -> str:
    if o.status in ("paid", "cut"):
        amounts = exact_sum(p.amount for p in o.payments)
        count = f"{len(o.payments)} payments, " if len(o.payments) > 1 else ""
        word = "PAID" if o.status == "paid" else "CUT"
        return f"{o.outcome}: {word} {count}{pounds(amounts)}"
    if o.status == "excluded":
        return f"{o.outcome}: NOT PAID, {o.excluded_by}"
    if o.status == "pending":
        when = f" (achieved on {o.achieved_on.isoformat()}, after the as-of date)" if o.achieved_on else ""
        return f"{o.outcome}: PENDING{when}"
    if o.status == "no payment":
        return f"{o.outcome}: ACHIEVED on {o.achieved_on.isoformat()}, but its tariff pays nothing here"
    return f"{o.outcome}: {o.status.upper()}"


def pounds(value) -> str:
    return f"£{value:,.2f}"


def _payment_line(p: Payment) -> str:
    text = f"  payment {p.date.isoformat()}" + (f" #{p.occurrence}" if p.occurrence else "")
    text += f": {pounds(p.amount)}"
    if p.cuts:
        text += f" (tariff {pounds(p.tariff)}, " + ", ".join(f"cut {pounds(c.amount)} by {c.cap}" for c in p.cuts) + ")"
    text += "; paid by " + ", ".join(f"{f} {pounds(v)}" for f, v in p.funders)
    for o in p.overflow:
        text += f"; {pounds(o.amount)} moved from {o.source} to {o.target}"
    if p.unfunded:
        text += f"; {pounds(p.unfunded)} unfunded"
    return text


@functools.lru_cache(maxsize=64)
def _lines(text: str) -> list[str]:
    return text.splitlines()


@functools.lru_cache(maxsize=4096)
def _rule(span, whole: bool = True) -> Rule:
    if span is None:
        return Rule("?", "")
    lines = _lines(span.source.text)
    if whole:
        text = " ".join(line.strip() for line in lines[span.line - 1: span.end_line])
    else:
        first = lines[span.line - 1]
        if span.end_line == span.line:
            text = first[span.column - 1: span.end_column - 1]
        else:
            text = " ".join([first[span.column - 1:]] + [x.strip() for x in lines[span.line: span.end_line - 1]]
                            + [lines[span.end_line - 1][: span.end_column - 1].strip()])
    return Rule(f"{span.source.name}:{span.line}", " ".join(text.split()))


def _value_text(value: Any, kind: str) -> str:
    if value is None:
        return ""
    if kind == "date":
        return iso(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Explainer:
    def __init__(self, contract, dataset: Dataset, as_of: datetime.date, statement: Statement):
        self.program = contract.program
        self.compiled = compile_program(self.program, trace=True)
        self.dataset = dataset
        self.as_of = as_of
        self.statement = statement
        self.run = Evaluation(self.compiled, dataset, as_of)
        self.files = {name: t.file for name, t in self.run.dataset.tables.items()}
        self._cap_names = {c.name for c in self.program.caps}
        self.rows_by_subject = {r[self.run.key_index]: r for r in self.run.subject_rows}
        self.rows_of_subject: dict[str, list] = {}
        for r in statement.rows:
            self.rows_of_subject.setdefault(r[SUBJECT_COLUMN], []).append(r)

    def evidence(self, table: str, rec: tuple) -> Evidence:
        info = self.program.tables[table]
        values = tuple((f.name, _value_text(rec[f.index], f.type.kind)) for f in info.fields)
        return Evidence(table, self.files.get(table, table), rec[-1], values)

    def explain(self, subject: str) -> Explanation:
        run = self.run
        row = self.rows_by_subject.get(subject)
        if row is None:
            raise UsageError(f"no subject `{subject}` in table `{self.program.subject.table}`")
        fr = run.template[:]
        fr[SUBJECT] = row
        fr[TRACE] = []
        eligible = self.compiled.eligible(fr) if self.compiled.eligible is not None else True
        events: dict[str, list] = {}
        if eligible:
            for slot, fn in self.compiled.subject_steps:
                fr[TRACE] = []
                fr[slot] = fn(fr)
                events[self._step_name(slot)] = fr[TRACE]
        days = {o.name: fr[o.slot] if eligible else None for o in self.compiled.outcomes}
        result = run.subject(row)
        excluded = dict(result.excluded)
        payments = [Payment.from_row(r, self.statement.outcomes, self.statement.funders)
                    for r in self.rows_of_subject.get(subject, [])]
        outcomes = []
        for o, co in zip(self.program.outcomes, self.compiled.outcomes):
            outcomes.append(self._outcome(o, co, fr, eligible, days, excluded, payments, events))
        eligible_rule = None
        for d in self.program.eligible and [self.program.eligible] or []:
            eligible_rule = _rule(d.span, whole=False)
        subject_caps = []
        if eligible:
            for i, cap in enumerate(self.program.caps):
                if "subject" not in cap.scopes:
                    continue
                fr[TRACE] = []
                limit = self.compiled.cap_limits[i](fr)
                if limit is None:
                    continue
                used = exact_sum(ANY_SIZE.subtract(p.tariff, exact_sum(c.amount for c in p.cuts
                                                                       if c.cap in self._cap_names))
                                 for p in payments if not cap.outcomes or p.outcome in cap.outcomes)
                limit = Decimal(limit).quantize(Decimal("0.01"), context=ANY_SIZE)
                subject_caps.append({"cap": cap.name, "limit": money_text(limit), "used": money_text(used),
                                     "headroom": money_text(max(ANY_SIZE.subtract(limit, used), Decimal(0))),
                                     "location": f"{cap.span.source.name}:{cap.span.line}"})
        return Explanation(
            contract=self.program.name,
            as_of=self.as_of,
            subject=subject,
            subject_record=self.evidence(self.program.subject.table, row),
            eligible=bool(eligible),
            eligible_rule=eligible_rule,
            outcomes=tuple(outcomes),
            subject_caps=tuple(subject_caps),
        )

    def reasons(self, subject: str) -> dict[str, dict]:
        """The compact reason of each outcome: its rule's location and the evidence rows (for eval --explain)."""
        fr = self.run.template[:]
        fr[SUBJECT] = self.rows_by_subject[subject]
        events: dict[str, list] = {}
        for slot, fn in self.compiled.subject_steps:
            fr[TRACE] = []
            fr[slot] = fn(fr)
            events[self._step_name(slot)] = fr[TRACE]
        out = {}
        for o in self.program.outcomes:
            log = list(events.get("outcome " + o.name, []))
            for name in self._deps(o.deps):
                log.extend(events.get(name, []))
            rows = sorted({(e[1], e[2][-1]) for e in log if e[0] == "evidence"})
            out[o.name] = {"rule": f"{o.span.source.name}:{o.span.line}",
                           "evidence": [{"table": t, "row": r} for t, r in rows]}
        return out

    def _step_name(self, slot: int) -> str:
        if not hasattr(self, "_step_names"):
            self._step_names = {}
        if slot in self._step_names:
            return self._step_names[slot]
        self._step_names[slot] = name = self._find_step_name(slot)
        return name

    def _find_step_name(self, slot: int) -> str:
        for name, s in self.compiled.let_slots.items():
            if s == slot:
                return name
        for o in self.compiled.outcomes:
            if o.slot == slot:
                return "outcome " + o.name
        return "?"

    def _deps(self, names) -> list[str]:
        lets = {let.name: let for let in self.program.lets}
        seen: list[str] = []
        stack = sorted(names, reverse=True)
        while stack:
            x = stack.pop()
            if x in seen or x not in lets:
                continue
            seen.append(x)
            stack.extend(sorted(lets[x].deps, reverse=True))
        return seen

    def _outcome(self, o, co, fr, eligible, days, excluded, payments, events) -> OutcomeExplanation:
        mine = tuple(p for p in payments if p.outcome == o.name)
        day = days[o.name]
        log: list = list(events.get("outcome " + o.name, []))
        definitions = []
        for name in self._deps(o.deps):
            let = next(x for x in self.program.lets if x.name == name)
            definitions.append((name, _rule(let.span)))
            log.extend(events.get(name, []))
        conditions: list[Condition] = []
        day_rule = None
        if eligible:
            fr[TRACE] = log
            for node, fn in zip(o.conditions, co.conditions):
                conditions.append(Condition(_rule(node.span, whole=False), bool(fn(fr))))
            if o.achieved is not None:
                day_rule = _rule(o.achieved.span, whole=False)
                if day is None and co.day is not None:
                    co.day(fr)  # log how far the subject got, even when a condition failed
            if mine or (day is not None and day <= fr[1]):
                co.pays(fr) if not co.deferred else None
        tariffs, bands, progress, evidence = [], [], [], []
        seen_rows = set()
        for event in log:
            kind = event[0]
            if kind == "evidence":
                key = (event[1], event[2][-1])
                if key not in seen_rows:
                    seen_rows.add(key)
                    evidence.append(self.evidence(event[1], event[2]))
            elif kind == "tariff":
                _, name, keys, value, node = event
                entry = {"tariff": name, "keys": [str(k) for k in keys], "value": json_value(value)
                         if value is not None else "none", "location": f"{node.span.source.name}:"
                         f"{self.program.tariffs[name].span.line}"}
                if entry not in tariffs:
                    tariffs.append(entry)
            elif kind == "band":
                _, name, date, label, node = event
                entry = {"band": name, "date": iso(date) if date is not None else None, "label": label}
                if entry not in bands:
                    bands.append(entry)
            elif kind == "lasting":
                line = self._lasting(*event[1:])
                if line and line not in progress:
                    progress.append(line)
            elif kind == "window":
                line = self._window(*event[1:])
                if line and line not in progress:
                    progress.append(line)
        if o.recurring is not None and eligible:
            progress.extend(self._recurring(co, fr, days))
        excluded_by = excluded.get(o.index)
        status = self._status(o, day, eligible, mine, excluded_by, progress)
        if status == "not achieved" and o.recurring is not None:
            # A recurring outcome waits on the outcome it follows.
            anchor = next(x for x in self.program.outcomes if x.name == o.recurring.after)
            anchor_status = self._status(anchor, days[anchor.name], eligible, (), None,
                                         [line for e in events.get("outcome " + anchor.name, []) if e[0] == "lasting"
                                          for line in [self._lasting(*e[1:])] if line]
                                         + [line for name in self._deps(anchor.deps) for e in events.get(name, [])
                                            if e[0] == "lasting" for line in [self._lasting(*e[1:])] if line])
            if anchor_status == "pending":
                status = "pending"
                progress.append(f"waits for {anchor.name}, which is pending")
        caps = tuple((c.name, _rule(c.span)) for c in self.program.caps
                     if any(cut.cap == c.name for p in mine for cut in p.cuts))
        caps += tuple((c.name, _rule(c.span)) for c in self.program.ceilings
                      if any(cut.cap == c.name for p in mine for cut in p.cuts) or
                      any(ov.source == c.funder for p in mine for ov in p.overflow))
        return OutcomeExplanation(
            outcome=o.name,
            status=status,
            achieved_on=datetime.date.fromordinal(day) if day is not None else None,
            rule=_rule(o.span),
            conditions=tuple(conditions),
            day_rule=day_rule,
            definitions=tuple(definitions),
            tariffs=tuple(tariffs),
            bands=tuple(bands),
            evidence=tuple(sorted(evidence, key=lambda e: (e.table, e.row))),
            progress=tuple(progress),
            payments=mine,
            excluded_by=excluded_by,
            caps=caps,
        )

    def _status(self, o, day, eligible, mine, excluded_by, progress) -> str:
        as_of = self.as_of.toordinal()
        if not eligible:
            return "not eligible"
        if mine:
            return "cut" if any(p.cuts for p in mine) else "paid"
        if excluded_by:
            return "excluded"
        if day is not None and day > as_of:
            return "pending"
        if day is not None:
            return "no payment"
        if any("still going" in line for line in progress) and not any("closed" in line for line in progress):
            return "pending"
        return "not achieved"

    def _lasting(self, spells, length, months, result, node) -> str | None:
        if spells is None or length is None:
            return None
        as_of = self.as_of.toordinal()
        what = _describe_length(length, months, node)
        if result is not None:
            run = spells.run_containing(result)
            span = f" (run {iso(run[0])} .. {iso(run[1])})" if run else ""
            short = [r for r in spells.runs if run and r[1] < run[0]]
            earlier = "".join(
                f"; an earlier run {iso(a)} .. {iso(b)} had {spells.counted_days(a, b)} counted days, "
                f"{length - spells.counted_days(a, b)} short" for a, b in short if not months)
            return f"{what} reached on {iso(result)}{span}{earlier}"
        if not spells.runs:
            return f"{what} not reached: no days count by {iso(as_of)}"
        best = max(spells.runs, key=lambda r: (spells.counted_days(*r), r[0]))
        have = spells.counted_days(*best)
        if months:
            needed_end = add_months(best[0], length) - 1
            tail = f"it would be reached on {iso(needed_end)}"
        else:
            tail = f"{length - have} more counted days needed"
        line = (f"{what} not reached: the longest run is {have} counted days "
                f"({iso(best[0])} .. {iso(best[1])}); {tail}")
        last = spells.runs[-1]
        if last[1] >= as_of:
            so_far = spells.counted_days(*last)
            line += f"; the run from {iso(last[0])} is still going at {iso(as_of)} ({so_far} counted days so far)"
        return line

    def _window(self, value, length, anchor, months, direction, result, node) -> str | None:
        if anchor is None or length is None:
            return None
        if direction == "of":
            first, last = anchor, (add_months(anchor, length) if months else anchor + length) - 1
        else:
            first, last = (add_months(anchor, -length) if months else anchor - length), anchor - 1
        text = _rule(node.span, whole=False).source
        state = "closed" if last < self.as_of.toordinal() else "open"
        shown = iso(value) if value is not None else "none"
        inside = "inside" if result else "outside"
        return f"`{text}`: window {iso(first)} .. {iso(last)} ({state}); {shown} is {inside}"

    def _recurring(self, co, fr, days) -> list[str]:
        every, months, anchor_slot, spells_fn, at_most_fn = co.recurring
        anchor = fr[anchor_slot]
        if anchor is None:
            return ["the outcome it follows is not achieved"]
        made = recurrences(fr, co.recurring)
        at_most = at_most_fn(fr)
        step = every(fr)
        spells = spells_fn(fr)
        run = spells.run_containing(anchor) if spells is not None else None
        lines = [f"{len(made)} of at most {at_most} payments, every {step} {'months' if months else 'days'} "
                 f"from {iso(anchor)}"]
        if len(made) < (at_most or 0) and run is not None:
            k = len(made) + 1
            nxt = add_months(anchor, k * step) if months else anchor + k * step
            if run[1] >= self.as_of.toordinal():
                lines.append(f"payment {k} falls due on {iso(nxt)} if the run from {iso(run[0])} goes on "
                             f"(still going at {self.as_of.isoformat()})")
            else:
                lines.append(f"stopped for good: the run ended on {iso(run[1])}, before payment {k} on {iso(nxt)}")
        return lines


def _describe_length(length: int, months: bool, node) -> str:
    source = _rule(node.length.span, whole=False).source if node.length.span else ""
    if months:
        return f"{length} months in one unbroken run ({source})"
    weeks = f"{length // 7} weeks ({length} days)" if length % 7 == 0 else f"{length} days"
    return f"{weeks} in one unbroken run ({source})"


def explain(contract, dataset: Dataset, as_of: datetime.date, subject: str) -> Explanation:
    """Why `subject` is paid what it is at `as_of`, outcome by outcome."""
    statement = contract.evaluate(dataset, as_of)
    with decimal.localcontext(exact_context()):
        check_rows(contract.compiled, dataset, as_of.toordinal())
        return _Explainer(contract, dataset, as_of, statement).explain(subject)


def reasons(contract, dataset: Dataset, as_of: datetime.date, statement: Statement) -> Statement:
    """The statement with a compact reason on each payment: the rule's location and the evidence rows."""
    with decimal.localcontext(exact_context()):
        explainer = _Explainer(contract, dataset, as_of, statement)
        by_subject = {subject: explainer.reasons(subject) for subject in sorted({p.subject for p in statement.payments})}
    outcomes = statement.outcomes
    rows = tuple(full_row(r, statement.funders)[:REASON] + (by_subject[r[SUBJECT_COLUMN]][outcomes[r[OUTCOME]]],)
                 for r in statement.rows)
    return statement.evolve(rows=rows)
