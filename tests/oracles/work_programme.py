"""Reference oracle for `work-programme` (shared/schemes/work-programme/SPEC.md).

A direct, deliberately plain transcription of the SPEC; section numbers in the
comments refer to it.  Usage:

    python -m tests.oracles.work_programme DATA_DIR AS_OF
"""

from __future__ import annotations

import datetime
import json
import sys
from decimal import Decimal

from .common import add_days, money, parse_date, parse_optional_date, period, read_table

CONTRACT = "work-programme"
FUNDER = "DWP"  # §2, §8: the only funder, pays 100%
OUTCOMES = ["attachment", "job_outcome", "sustainment"]  # §2 contract order

PROGRAMME_START = datetime.date(2011, 6, 1)  # §3 valid data: attached_on >= 2011-06-01

# §4 contract years, fixed by A alone: (first day, last day or None, year)
CONTRACT_YEARS = [
    (datetime.date(2011, 6, 1), datetime.date(2012, 3, 31), 1),
    (datetime.date(2012, 4, 1), datetime.date(2013, 3, 31), 2),
    (datetime.date(2013, 4, 1), datetime.date(2014, 3, 31), 3),
    (datetime.date(2014, 4, 1), None, 4),
]

ATTACHMENT_WINDOW_LAST = 727  # §4: days A .. A + 727

# §5.1: threshold weeks, job outcome fee, sustainment fee per 4 weeks, max sustainment payments
GROUPS = {
    "JSA_18_24": (26, Decimal("1200.00"), Decimal("170.00"), 13),
    "JSA_25_PLUS": (26, Decimal("1200.00"), Decimal("215.00"), 13),
    "JSA_EARLY": (26, Decimal("1200.00"), Decimal("250.00"), 20),
    "JSA_EX_IB": (13, Decimal("1200.00"), Decimal("250.00"), 20),
    "ESA_VOLUNTARY": (13, Decimal("1000.00"), Decimal("115.00"), 20),
    "ESA_FLOW": (13, Decimal("1200.00"), Decimal("235.00"), 20),
    "ESA_EX_IB": (13, Decimal("3500.00"), Decimal("370.00"), 26),
    "IB_IS": (13, Decimal("1000.00"), Decimal("115.00"), 20),
    "JSA_PRISON": (26, Decimal("1200.00"), Decimal("200.00"), 20),
}

# §5.2: attachment fee by contract year 1, 2, 3 (year 4 on: none)
ATTACHMENT_FEES = {
    "JSA_18_24": ("400.00", "300.00", "200.00"),
    "JSA_25_PLUS": ("400.00", "300.00", "200.00"),
    "JSA_EARLY": ("400.00", "300.00", "200.00"),
    "JSA_EX_IB": ("400.00", "300.00", "200.00"),
    "ESA_VOLUNTARY": ("400.00", "300.00", "200.00"),
    "ESA_FLOW": ("600.00", "450.00", "300.00"),
    "ESA_EX_IB": ("600.00", "450.00", "300.00"),
    "IB_IS": ("400.00", "300.00", "200.00"),
    "JSA_PRISON": ("400.00", "300.00", "200.00"),
}

# §5.3: per-participant cap by contract year 1, 2, 3, 4-on
CAPS = {
    "JSA_18_24": ("3810.00", "3710.00", "3610.00", "3410.00"),
    "JSA_25_PLUS": ("4395.00", "4295.00", "4195.00", "3995.00"),
    "JSA_EARLY": ("6600.00", "6500.00", "6400.00", "6200.00"),
    "JSA_EX_IB": ("6600.00", "6500.00", "6400.00", "6200.00"),
    "ESA_VOLUNTARY": ("3700.00", "3600.00", "3500.00", "3300.00"),
    "ESA_FLOW": ("6500.00", "6350.00", "6200.00", "5900.00"),
    "ESA_EX_IB": ("13720.00", "13570.00", "13420.00", "13120.00"),
    "IB_IS": ("3700.00", "3600.00", "3500.00", "3300.00"),
    "JSA_PRISON": ("5600.00", "5500.00", "5400.00", "5200.00"),
}


def contract_year(a: datetime.date) -> int:
    """§4: the contract year is fixed by the attachment date alone."""
    for first, last, year in CONTRACT_YEARS:
        if a >= first and (last is None or a <= last):
            return year
    raise ValueError(f"attached_on {a} is before the programme")


def load(data_dir):
    """§3: read and validate both tables; invalid data is rejected, never guessed."""
    participants = {}
    for row in read_table(data_dir, "participants"):
        pid = row["id"]
        if pid == "" or pid in participants:
            raise ValueError(f"participant id empty or not unique: {pid!r}")
        group = row["group"]
        if group not in GROUPS:
            raise ValueError(f"participant {pid}: unknown group {group!r}")
        attached = parse_date(row["attached_on"], "attached_on")
        if attached < PROGRAMME_START:
            raise ValueError(f"participant {pid}: attached_on {attached} before 2011-06-01")
        participants[pid] = {"group": group, "attached_on": attached, "spells": []}
    for row in read_table(data_dir, "employment"):
        pid = row["participant_id"]
        if pid not in participants:
            raise ValueError(f"employment row for unknown participant {pid!r}")
        start = parse_date(row["start"], "start")
        end = parse_optional_date(row["end"], "end")
        if end is not None and end < start:
            raise ValueError(f"employment row for {pid}: end {end} before start {start}")
        participants[pid]["spells"].append((start, end))
    return participants


def runs(spells, a: datetime.date, t: datetime.date):
    """§4 Runs: maximal unbroken sequences of employed days (A <= d <= T).

    Each row covers start .. end (empty end: .. T); days before A and after T
    are never employed days (§9.1, §9.2, §9.4).  Overlapping and touching rows
    join (§9.5, §9.6).  Returns [(first day, last day), ...] in date order.
    """
    pieces = []
    for start, end in spells:
        first = max(start, a)
        last = min(end if end is not None else t, t)
        if first <= last:
            pieces.append((first, last))
    pieces.sort()
    joined = []
    for first, last in pieces:
        if joined and first <= add_days(joined[-1][1], 1):
            if last > joined[-1][1]:
                joined[-1] = (joined[-1][0], last)
        else:
            joined.append((first, last))
    return joined


def participant_outcomes(pid, p, t):
    """§6: the payable outcomes of one participant, as (date, outcome, tariff)."""
    a = p["attached_on"]
    group = p["group"]
    if a > t:  # §6, §9.9: no outcome exists for a participant with A > T
        return []
    weeks, job_fee, sustain_fee, max_sustain = GROUPS[group]
    year = contract_year(a)
    found = []

    # §6.1 attachment: contract years 1-3 only, achieved on A
    if year <= 3:
        found.append((a, "attachment", Decimal(ATTACHMENT_FEES[group][year - 1])))

    # §6.2 job_outcome: the first run holding at least 7W employed days
    need = 7 * weeks
    for first, last in runs(p["spells"], a, t):
        if (last - first).days + 1 >= need:
            d = add_days(first, need - 1)
            if d <= add_days(a, ATTACHMENT_WINDOW_LAST):  # window condition
                found.append((d, "job_outcome", job_fee))
                # §6.3 sustainment: payment k on D + 28k while D + 28k <= E
                e = last
                count = min(max_sustain, (e - d).days // 28)
                for k in range(1, count + 1):
                    found.append((add_days(d, 28 * k), "sustainment", sustain_fee))
            break  # only the first such run matters, whether or not it is in the window

    # every outcome is achieved on or before T here (runs stop at T), but keep the rule explicit
    return [(d, o, amt) for d, o, amt in found if d <= t]


def evaluate(data_dir, as_of: datetime.date) -> dict:
    t = as_of
    participants = load(data_dir)

    # All payable outcomes, in the README / §8 order: date, subject (plain string), outcome order.
    rows = []
    for pid, p in participants.items():
        for d, outcome, tariff in participant_outcomes(pid, p, t):
            rows.append((d, pid, OUTCOMES.index(outcome), outcome, tariff))
    rows.sort(key=lambda r: (r[0], r[1], r[2]))

    # §7 per-participant cap by group and contract year, applied in that order.
    paid_so_far = {}
    payments = []
    for d, pid, _idx, outcome, tariff in rows:
        p = participants[pid]
        cap = Decimal(CAPS[p["group"]][contract_year(p["attached_on"]) - 1])
        already = paid_so_far.get(pid, Decimal("0"))
        amount = min(tariff, max(Decimal("0"), cap - already))
        paid_so_far[pid] = already + amount
        payment = {
            "subject": pid,
            "outcome": outcome,
            "date": d.isoformat(),
            "amount": money(amount),
            "funders": {FUNDER: money(amount)},  # §8: DWP pays 100%
        }
        if amount < tariff:
            payment["cuts"] = [{"cap": "participant_cap", "amount": money(tariff - amount)}]
        payments.append(payment)

    # §8 totals: keys only where at least one payment row falls.
    total = Decimal("0")
    by_outcome, by_funder, by_period = {}, {}, {}
    for payment in payments:
        amt = Decimal(payment["amount"])
        total += amt
        by_outcome[payment["outcome"]] = by_outcome.get(payment["outcome"], Decimal("0")) + amt
        by_funder[FUNDER] = by_funder.get(FUNDER, Decimal("0")) + amt
        month = period(datetime.date.fromisoformat(payment["date"]))
        by_period[month] = by_period.get(month, Decimal("0")) + amt

    return {
        "contract": CONTRACT,
        "as_of": t.isoformat(),
        "currency": "GBP",
        "total": money(total),
        "by_outcome": {o: money(by_outcome[o]) for o in OUTCOMES if o in by_outcome},
        "by_funder": {f: money(v) for f, v in by_funder.items()},
        "by_period": {m: money(by_period[m]) for m in sorted(by_period)},
        "payments": payments,
    }


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m tests.oracles.work_programme DATA_DIR AS_OF", file=sys.stderr)
        return 2
    statement = evaluate(argv[0], parse_date(argv[1], "as-of date"))
    print(json.dumps(statement, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
