"""The statement: what is owed, by whom and why, and its JSON, CSV and table forms."""

from __future__ import annotations

import csv
import datetime
import io
import json
from decimal import Decimal
from typing import Any

import attrs

from .money import ZERO, money_text


def json_value(value: Any) -> Any:
    """Statement values: money and exact numbers as text, dates as ISO text."""
    if isinstance(value, Decimal):
        return money_text(value) if value == value.quantize(Decimal("0.01")) else format(value.normalize(), "f")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    from fractions import Fraction

    if isinstance(value, Fraction):
        return json_value(Decimal(value.numerator) / Decimal(value.denominator))
    return value


@attrs.frozen
class Cut:
    cap: str
    amount: Decimal


@attrs.frozen
class Overflow:
    source: str
    target: str
    amount: Decimal


@attrs.frozen
class Payment:
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


@attrs.frozen
class CapUse:
    """How much of a cap or ceiling was used; `period` is empty for a whole-contract limit."""

    name: str
    period: str
    limit: Decimal
    used: Decimal

    @property
    def headroom(self) -> Decimal:
        return max(self.limit - self.used, ZERO)


@attrs.frozen
class Statement:
    contract: str
    as_of: datetime.date
    currency: str
    payments: tuple[Payment, ...]
    outcomes: tuple[str, ...]  # contract order
    funders: tuple[str, ...]  # declared order
    every_outcome: bool = False
    every_funder: bool = False
    show_unfunded: bool = False
    caps: tuple[CapUse, ...] = ()
    blocks: tuple = ()  # (name, is a pool, figures): cohorts and pools
    subjects_evaluated: int = 0
    subjects_eligible: int = 0
    warnings: tuple[str, ...] = ()

    @property
    def total(self) -> Decimal:
        return sum((p.amount for p in self.payments), ZERO)

    @property
    def unfunded(self) -> Decimal:
        return sum((p.unfunded for p in self.payments), ZERO)

    def by_outcome(self) -> dict[str, Decimal]:
        sums = {o: ZERO for o in self.outcomes}
        seen = set()
        for p in self.payments:
            sums[p.outcome] += p.amount
            seen.add(p.outcome)
        return {o: v for o, v in sums.items() if self.every_outcome or o in seen}

    def by_funder(self) -> dict[str, Decimal]:
        sums = {f: ZERO for f in self.funders}
        seen = set()
        for p in self.payments:
            for name, v in p.funders:
                sums[name] += v
                seen.add(name)
        return {f: v for f, v in sums.items() if self.every_funder or f in seen}

    def by_period(self) -> dict[str, Decimal]:
        sums: dict[str, Decimal] = {}
        for p in self.payments:
            sums[p.period] = sums.get(p.period, ZERO) + p.amount
        return dict(sorted(sums.items()))

    def to_dict(self) -> dict:
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
            "total": money_text(self.total),
            "by_outcome": {k: money_text(v) for k, v in self.by_outcome().items()},
            "by_funder": {k: money_text(v) for k, v in self.by_funder().items()},
            "by_period": {k: money_text(v) for k, v in self.by_period().items()},
        }
        if self.show_unfunded:
            d["unfunded"] = money_text(self.unfunded)
        d["caps"] = caps
        cohorts = {name: {k: json_value(v) for k, v in fig.items()} for name, pool, fig in self.blocks if not pool}
        if cohorts:
            d["cohorts"] = cohorts
        for name, pool, fig in self.blocks:
            if pool:
                d[name] = {k: json_value(v) for k, v in fig.items()}
        d["subjects"] = {
            "evaluated": self.subjects_evaluated,
            "eligible": self.subjects_eligible,
            "paid": len({p.subject for p in self.payments}),
        }
        d["payments"] = [p.to_dict(self.show_unfunded) for p in self.payments]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(
            ["subject", "outcome", "occurrence", "date", "period", "tariff", "amount", "cuts", *self.funders,
             "unfunded"]
        )
        for p in self.payments:
            shares = dict(p.funders)
            cuts = "; ".join(f"{c.cap} {money_text(c.amount)}" for c in p.cuts)
            writer.writerow(
                [p.subject, p.outcome, p.occurrence or "", p.date.isoformat(), p.period, money_text(p.tariff),
                 money_text(p.amount), cuts, *(money_text(shares[f]) if f in shares else "" for f in self.funders),
                 money_text(p.unfunded)]
            )
        return out.getvalue()

    def to_table(self) -> str:
        """A report for a terminal: totals by outcome, funder and period."""
        lines = [
            f"Statement for {self.contract} as of {self.as_of.isoformat()} ({self.currency})",
            f"Subjects evaluated: {self.subjects_evaluated}, eligible: {self.subjects_eligible}, "
            f"paid: {len({p.subject for p in self.payments})}; payments: {len(self.payments)}",
            "",
        ]

        def block(title: str, rows: dict[str, Decimal]) -> None:
            width = max([len(title)] + [len(k) for k in rows]) + 2
            amounts = [money_text(v) for v in rows.values()] + [money_text(sum(rows.values(), ZERO))]
            aw = max(len(a) for a in amounts) + 2
            lines.append(f"{title:<{width}}{'amount':>{aw}}")
            lines.append("-" * (width + aw))
            for k, v in rows.items():
                lines.append(f"{k:<{width}}{money_text(v):>{aw}}")
            lines.append("-" * (width + aw))
            lines.append(f"{'total':<{width}}{money_text(sum(rows.values(), ZERO)):>{aw}}")
            lines.append("")

        block("outcome", self.by_outcome())
        block("funder", self.by_funder())
        block("period", self.by_period())
        cut = [p for p in self.payments if p.cuts]
        if cut:
            lines.append(f"Payments cut by caps: {len(cut)}, "
                         f"{money_text(sum((c.amount for p in cut for c in p.cuts), ZERO))} in all")
        if self.show_unfunded:
            lines.append(f"Unfunded: {money_text(self.unfunded)}")
        for c in self.caps:
            label = c.name + (f" {c.period}" if c.period else "")
            lines.append(f"Cap {label}: limit {money_text(c.limit)}, used {money_text(c.used)}, "
                         f"headroom {money_text(c.headroom)}")
        return "\n".join(lines).rstrip() + "\n"
