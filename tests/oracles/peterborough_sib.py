"""Reference oracle for `peterborough-sib` (shared/schemes/peterborough-sib/SPEC.md).

A direct, deliberately plain transcription of the SPEC; section numbers in the
comments refer to it.  All cohort figures are exact fractions (§3.3); the only
rounding is at a payment (half-up to the penny) and in the display-only
`rate_per_100` / `reduction_percent` fields.  Usage:

    python -m tests.oracles.peterborough_sib DATA_DIR AS_OF
"""

from __future__ import annotations

import datetime
import json
import sys
from decimal import Decimal
from fractions import Fraction

from .common import add_days, add_months, money, parse_date, parse_optional_date, period, read_table

CONTRACT = "peterborough-sib"
FUNDER = "MoJ"  # §2: the only funder
OUTCOMES = ["cohort_payment", "final_payment"]  # §2 contract order

# §4 contract parameters: name -> (release first, release last, comparison K (text), assessment date)
COHORTS = {
    "cohort_1": (datetime.date(2010, 9, 9), datetime.date(2012, 6, 30), "155", datetime.date(2014, 8, 7)),
    "cohort_2": (datetime.date(2012, 7, 1), datetime.date(2014, 6, 30), "151.37", datetime.date(2016, 7, 28)),
}
FINAL_ASSESSMENT = datetime.date(2017, 7, 27)
COHORT_THRESHOLD = Fraction(10, 100)  # reduction >= 10%
POOLED_THRESHOLD = Fraction(75, 1000)  # pooled reduction >= 7.5%
PRICE = Fraction(27450)  # per reconviction event avoided
OUTCOME_CAP = Decimal("8000000.00")
ELIGIBLE_BELOW_MONTHS = 12  # §3.1: sentence_months < 12


def exact_text(x: Fraction) -> str:
    """An exact terminating decimal, without trailing zeros ('1550', '1533.3781')."""
    x = Fraction(x)
    sign = "-" if x < 0 else ""
    x = abs(x)
    places = 0
    while (x * 10**places).denominator != 1:
        places += 1
        if places > 60:
            raise ValueError(f"{x} is not a terminating decimal")
    scaled = int(x * 10**places)
    if places == 0:
        return f"{sign}{scaled}"
    whole, frac = divmod(scaled, 10**places)
    text = f"{sign}{whole}.{frac:0{places}d}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def round_half_up(x: Fraction, places: int) -> Fraction:
    """Round half-up (ties away from zero) to `places` decimals."""
    scale = 10**places
    magnitude = abs(x) * scale
    n = int(magnitude)  # floor for non-negative values
    if magnitude - n >= Fraction(1, 2):
        n += 1
    return Fraction(n if x >= 0 else -n, scale)


def fixed_text(x: Fraction, places: int = 2) -> str:
    value = round_half_up(x, places)
    scaled = int(value * 10**places)
    sign = "-" if scaled < 0 else ""
    whole, frac = divmod(abs(scaled), 10**places)
    return f"{sign}{whole}.{frac:0{places}d}"


def to_pounds(x: Fraction) -> Decimal:
    """Half-up to the penny, as a Decimal (§5: the only rounding is at a payment)."""
    value = round_half_up(x, 2)
    return Decimal(int(value * 100)) / 100


def load(data_dir):
    """§3: read and validate both tables."""
    prisoners = {}
    for row in read_table(data_dir, "prisoners"):
        pid = row["id"]
        if pid == "" or pid in prisoners:
            raise ValueError(f"prisoner id empty or not unique: {pid!r}")
        months = row["sentence_months"]
        if not months.isdigit():
            raise ValueError(f"prisoner {pid}: sentence_months {months!r} is not a whole number")
        prisoners[pid] = {
            "released_on": parse_date(row["released_on"], "released_on"),
            "sentence_months": int(months),
            "offences": [],
        }
    for row in read_table(data_dir, "offences"):
        pid = row["prisoner_id"]
        if pid not in prisoners:
            raise ValueError(f"offence for unknown prisoner {pid!r}")
        offence = parse_date(row["offence_date"], "offence_date")
        conviction = parse_optional_date(row["conviction_date"], "conviction_date")
        if conviction is not None and conviction < offence:
            raise ValueError(f"offence for {pid}: conviction before offence")
        prisoners[pid]["offences"].append((offence, conviction))
    return prisoners


def cohort_of(p):
    """§3.1: the cohort whose release period holds released_on, for an eligible prisoner."""
    if p["sentence_months"] >= ELIGIBLE_BELOW_MONTHS:
        return None
    for name, (first, last, _k, _assess) in COHORTS.items():
        if first <= p["released_on"] <= last:
            return name
    return None


def reconviction_events(p, t) -> int:
    """§3.2: distinct conviction dates among qualifying offences.

    Only convictions on or before T are known (§6: pending figures are the
    current ones); for an assessed cohort every window closed before T anyway.
    """
    d = p["released_on"]
    offence_last = add_days(add_months(d, 12), -1)
    conviction_last = add_days(add_months(d, 18), -1)
    dates = set()
    for offence, conviction in p["offences"]:
        if d <= offence <= offence_last and conviction is not None and conviction <= conviction_last and conviction <= t:
            dates.add(conviction)
    return len(dates)


def figures(size: int, events: int, expected: Fraction):
    """§3.3 derived figures (exact), plus the display-only roundings of §6."""
    avoided = expected - events
    return {
        "size": size,
        "events": events,
        "rate_per_100": fixed_text(Fraction(100 * events, size)) if size else None,
        "expected_events": exact_text(expected),
        "events_avoided": exact_text(avoided),
        "reduction_percent": fixed_text(100 * avoided / expected) if expected else None,
    }


def evaluate(data_dir, as_of: datetime.date) -> dict:
    t = as_of
    prisoners = load(data_dir)

    # §3.1 / §3.3: size and events per cohort
    size = {name: 0 for name in COHORTS}
    events = {name: 0 for name in COHORTS}
    for p in prisoners.values():
        name = cohort_of(p)
        if name is not None:
            size[name] += 1
            events[name] += reconviction_events(p, t)
    k = {name: Fraction(Decimal(COHORTS[name][2])) for name in COHORTS}
    expected = {name: k[name] * size[name] / 100 for name in COHORTS}
    avoided = {name: expected[name] - events[name] for name in COHORTS}

    # Candidate payments (before the cap), §5
    candidates = []
    cohort_info = {}
    for name, (first, last, k_text, assess) in COHORTS.items():
        # §5.1: n_c > 0 and e_c <= 0.9 E_c
        met = size[name] > 0 and events[name] <= (1 - COHORT_THRESHOLD) * expected[name]
        info = {"released": [first.isoformat(), last.isoformat()], "assessment_date": assess.isoformat()}
        info["status"] = "assessed" if assess <= t else "pending"
        fig = figures(size[name], events[name], expected[name])
        info.update(
            {
                "size": fig["size"],
                "events": fig["events"],
                "rate_per_100": fig["rate_per_100"],
                "comparison_per_100": k_text,
                "expected_events": fig["expected_events"],
                "events_avoided": fig["events_avoided"],
                "reduction_percent": fig["reduction_percent"],
                "threshold_met": met,
            }
        )
        cohort_info[name] = info
        if met and assess <= t:
            candidates.append((assess, name, "cohort_payment", to_pounds(PRICE * avoided[name])))

    n = sum(size.values())
    e = sum(events.values())
    pooled_expected = sum(expected.values(), Fraction(0))
    pooled_avoided = pooled_expected - e
    pooled_met = n > 0 and e <= (1 - POOLED_THRESHOLD) * pooled_expected  # §5.2
    pooled_amount = to_pounds(PRICE * pooled_avoided)
    fig = figures(n, e, pooled_expected)
    pooled_info = {
        "assessment_date": FINAL_ASSESSMENT.isoformat(),
        "status": "assessed" if FINAL_ASSESSMENT <= t else "pending",
        "size": fig["size"],
        "events": fig["events"],
        "rate_per_100": fig["rate_per_100"],
        "expected_events": fig["expected_events"],
        "events_avoided": fig["events_avoided"],
        "reduction_percent": fig["reduction_percent"],
        "threshold_met": pooled_met,
        "pooled_amount": money(pooled_amount),
    }

    # §5.3: by date, then subject, then contract order; each cut to what the cap still allows.
    candidates.sort(key=lambda c: (c[0], c[1], OUTCOMES.index(c[2])))
    used = Decimal("0")
    paid_cohort_payments = Decimal("0")
    payments = []

    def pay(day, subject, outcome, due, extra):
        nonlocal used
        amount = min(due, max(Decimal("0"), OUTCOME_CAP - used))
        used += amount
        payment = {
            "subject": subject,
            "outcome": outcome,
            "date": day.isoformat(),
            "amount": money(amount),
            "funders": {FUNDER: money(amount)},
            "due": money(due),
        }
        payment.update(extra)
        if amount < due:
            payment["cuts"] = [{"cap": "outcome_cap", "amount": money(due - amount)}]
        payments.append(payment)
        return amount

    for day, subject, outcome, due in candidates:
        paid_cohort_payments += pay(day, subject, outcome, due, {})

    # §5.2 final_payment: pooled amount less cohort payments actually paid, floored at 0.00.
    # The final assessment date is after every cohort's, so it is taken last (§5.3 order).
    if pooled_met and FINAL_ASSESSMENT <= t:
        due = max(Decimal("0"), pooled_amount - paid_cohort_payments)
        extra = {"pooled_amount": money(pooled_amount), "cohort_payments": money(paid_cohort_payments)}
        pay(FINAL_ASSESSMENT, "pooled", "final_payment", due, extra)

    total = Decimal("0")
    by_outcome, by_period = {}, {}
    for payment in payments:
        amt = Decimal(payment["amount"])
        total += amt
        by_outcome[payment["outcome"]] = by_outcome.get(payment["outcome"], Decimal("0")) + amt
        month = period(datetime.date.fromisoformat(payment["date"]))
        by_period[month] = by_period.get(month, Decimal("0")) + amt

    return {
        "contract": CONTRACT,
        "as_of": t.isoformat(),
        "currency": "GBP",
        "total": money(total),
        "by_outcome": {o: money(by_outcome[o]) for o in OUTCOMES if o in by_outcome},
        "by_funder": {FUNDER: money(total)},
        "by_period": {m: money(by_period[m]) for m in sorted(by_period)},
        "caps": {
            "outcome_cap": {
                "limit": money(OUTCOME_CAP),
                "used": money(used),
                "headroom": money(OUTCOME_CAP - used),
            }
        },
        "cohorts": cohort_info,
        "pooled": pooled_info,
        "payments": payments,
    }


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m tests.oracles.peterborough_sib DATA_DIR AS_OF", file=sys.stderr)
        return 2
    print(json.dumps(evaluate(argv[0], parse_date(argv[1], "as-of date")), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
