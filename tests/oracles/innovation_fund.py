"""Reference oracle for `innovation-fund` (shared/schemes/innovation-fund/SPEC.md).

A direct, deliberately plain transcription of the SPEC; section numbers in the
comments refer to it.  Usage:

    python -m tests.oracles.innovation_fund DATA_DIR AS_OF
"""

from __future__ import annotations

import datetime
import json
import sys
from decimal import Decimal

from .common import add_days, add_months, money, parse_date, parse_optional_date, period, read_table

CONTRACT = "innovation-fund"
FUNDER = "DWP"  # §6: one funder paying every payment in full

# §3 rate card, in contract order (the order used to sort payments and apply the caps)
OUTCOMES = [
    ("improved_attitude", Decimal("800.00")),
    ("improved_attendance", Decimal("1300.00")),
    ("improved_behaviour", Decimal("800.00")),
    ("first_level_1_qualification", Decimal("900.00")),
    ("first_level_2_qualification", Decimal("3300.00")),
    ("employment_with_training", Decimal("2600.00")),
    ("sustained_employment_13_weeks", Decimal("1000.00")),
    ("sustained_employment_26_weeks", Decimal("2000.00")),
]
OUTCOME_ORDER = [name for name, _ in OUTCOMES]
PRICE = dict(OUTCOMES)

PARTICIPANT_CAP = Decimal("8200.00")  # §3 / §5.1
CONTRACT_CAP = Decimal("3000000.00")  # §3 / §5.2
SCHOOL_COUNTED_DAYS = 91  # §3: 13 continuous weeks, school holidays not counted
SCHOOL_KINDS = {"attitude": "improved_attitude", "attendance": "improved_attendance", "behaviour": "improved_behaviour"}
TRAINING_WINDOW_MONTHS = 24  # §4.3


def aged(born_on: datetime.date, years: int, day: datetime.date) -> bool:
    """§4: aged N or more on D when born_on + 12N months <= D."""
    return add_months(born_on, 12 * years) <= day


def parse_bool(text: str, what: str) -> bool:
    if text == "true":
        return True
    if text == "false":
        return False
    raise ValueError(f"invalid boolean for {what}: {text!r}")


def load(data_dir):
    """§2: read and validate the five tables."""
    participants = {}
    for row in read_table(data_dir, "participants"):
        pid = row["id"]
        if pid == "" or pid in participants:
            raise ValueError(f"participant id empty or not unique: {pid!r}")
        participants[pid] = {
            "born_on": parse_date(row["born_on"], "born_on"),
            "started_on": parse_date(row["started_on"], "started_on"),
            "status": {kind: [] for kind in SCHOOL_KINDS},
            "qualifications": [],
            "employment": [],
        }

    holidays = []
    for row in read_table(data_dir, "school_holidays"):
        start = parse_date(row["start"], "holiday start")
        end = parse_date(row["end"], "holiday end")
        if end < start:
            raise ValueError(f"holiday {start}..{end} ends before it starts")
        holidays.append((start, end))

    for row in read_table(data_dir, "school_status"):
        pid = row["participant_id"]
        if pid not in participants:
            raise ValueError(f"school_status row for unknown participant {pid!r}")
        kind = row["kind"]
        if kind not in SCHOOL_KINDS:
            raise ValueError(f"school_status row for {pid}: unknown kind {kind!r}")
        start = parse_date(row["start"], "start")
        end = parse_optional_date(row["end"], "end")
        if end is not None and end < start:
            raise ValueError(f"school_status row for {pid}: end before start")
        participants[pid]["status"][kind].append((start, end))

    for row in read_table(data_dir, "qualifications"):
        pid = row["participant_id"]
        if pid not in participants:
            raise ValueError(f"qualification for unknown participant {pid!r}")
        level = row["level"]
        if level not in ("1", "2"):
            raise ValueError(f"qualification for {pid}: level {level!r} is not 1 or 2")
        participants[pid]["qualifications"].append((int(level), parse_date(row["date"], "date")))

    for row in read_table(data_dir, "employment"):
        pid = row["participant_id"]
        if pid not in participants:
            raise ValueError(f"employment row for unknown participant {pid!r}")
        start = parse_date(row["start"], "start")
        end = parse_optional_date(row["end"], "end")
        if end is not None and end < start:
            raise ValueError(f"employment row for {pid}: end before start")
        training = parse_bool(row["with_training"], "with_training")
        participants[pid]["employment"].append((start, end, training))
    return participants, holidays


def holiday_days(holidays) -> set:
    """§4.1: a holiday day is inside at least one school_holidays row."""
    days = set()
    for start, end in holidays:
        d = start
        while d <= end:
            days.add(d)
            d = add_days(d, 1)
    return days


def school_outcome_day(spells, started_on, t, holidays: set):
    """§4.1: the first counted day D such that D and the 90 counted days before it
    are all improved days, or None.

    Improved day: on or after started_on and covered by a spell of the kind (an
    open spell covers days up to T).  Holiday days are skipped entirely: they
    neither count nor break the run.  Only days up to T matter, since the outcome
    must be achieved on or before T.
    """
    improved = []
    for start, end in spells:
        first = max(start, started_on)
        last = end if end is not None else t
        last = min(last, t)
        if first <= last:
            improved.append((first, last))
    if not improved:
        return None
    begin = min(first for first, _ in improved)
    finish = max(last for _, last in improved)

    def is_improved(day):
        return any(first <= day <= last for first, last in improved)

    count = 0  # counted days in a row that were all improved, ending at `day`
    day = begin  # every counted day before `begin` is not improved, so the count starts at 0
    while day <= finish:
        if day not in holidays:  # a counted day
            if is_improved(day):
                count += 1
                if count == SCHOOL_COUNTED_DAYS:
                    return day
            else:
                count = 0
        day = add_days(day, 1)
    return None


def join_spells(spells, t):
    """README: spells that overlap or touch form one continuous spell; an open spell
    runs to the as-of date.  Returns [(first, last), ...] in date order."""
    pieces = []
    for start, end in spells:
        last = end if end is not None else t
        if start <= last:  # an open spell starting after T covers no day yet
            pieces.append((start, last))
    pieces.sort()
    joined = []
    for first, last in pieces:
        if joined and first <= add_days(joined[-1][1], 1):
            if last > joined[-1][1]:
                joined[-1] = (joined[-1][0], last)
        else:
            joined.append((first, last))
    return joined


def participant_outcomes(p, t, holidays: set):
    """§4: achievement days of one participant's outcomes, {outcome: date}."""
    started = p["started_on"]
    achieved = {}
    if started > t:  # §4: starts after the as-of date: earns nothing
        return achieved

    # §4.1 school outcomes: only if aged 14 or more, but not 16 or more, on started_on
    if aged(p["born_on"], 14, started) and not aged(p["born_on"], 16, started):
        for kind, outcome in SCHOOL_KINDS.items():
            day = school_outcome_day(p["status"][kind], started, t, holidays)
            if day is not None:
                achieved[outcome] = day

    # §4.2 qualifications: earliest record of each level dated on or after started_on
    for level, outcome in ((1, "first_level_1_qualification"), (2, "first_level_2_qualification")):
        dates = [d for lvl, d in p["qualifications"] if lvl == level and d >= started]
        if dates:
            achieved[outcome] = min(dates)

    # §4.3 employment_with_training: earliest with-training start in started_on .. started_on + 24 months - 1
    window_last = add_days(add_months(started, TRAINING_WINDOW_MONTHS), -1)
    starts = [s for s, _e, training in p["employment"] if training and started <= s <= window_last]
    if starts:
        achieved["employment_with_training"] = min(starts)

    # §4.4 sustained employment: joined spells whose first day S >= started_on
    counting = [(s, e) for s, e in join_spells([(s, e) for s, e, _tr in p["employment"]], t) if s >= started]
    for outcome, days in (("sustained_employment_13_weeks", 91), ("sustained_employment_26_weeks", 182)):
        hits = [add_days(s, days - 1) for s, e in counting if e >= add_days(s, days - 1)]
        if hits:
            achieved[outcome] = min(hits)

    # §4: payable only if achieved on or before the as-of date
    return {o: d for o, d in achieved.items() if d <= t}


def evaluate(data_dir, as_of: datetime.date) -> dict:
    t = as_of
    participants, holiday_rows = load(data_dir)
    holidays = holiday_days(holiday_rows)

    rows = []
    for pid, p in participants.items():
        for outcome, d in participant_outcomes(p, t, holidays).items():
            rows.append((d, pid, OUTCOME_ORDER.index(outcome), outcome))
    # §5: achievement date, then participant id as text, then outcome order of §3
    rows.sort(key=lambda r: (r[0], r[1], r[2]))

    paid_participant = {}
    paid_contract = Decimal("0")
    payments = []
    for d, pid, _idx, outcome in rows:
        price = PRICE[outcome]
        cuts = []
        # §5.1 participant_cap
        room = max(Decimal("0"), PARTICIPANT_CAP - paid_participant.get(pid, Decimal("0")))
        amount = min(price, room)
        if amount < price:
            cuts.append({"cap": "participant_cap", "amount": money(price - amount)})
        # §5.2 contract_cap, on what is left after the first cut
        room = max(Decimal("0"), CONTRACT_CAP - paid_contract)
        if amount > room:
            cuts.append({"cap": "contract_cap", "amount": money(amount - room)})
            amount = room
        paid_participant[pid] = paid_participant.get(pid, Decimal("0")) + amount
        paid_contract += amount
        payment = {
            "subject": pid,
            "outcome": outcome,
            "date": d.isoformat(),
            "amount": money(amount),
            "funders": {FUNDER: money(amount)},
        }
        if cuts:
            payment["cuts"] = cuts
        payments.append(payment)

    # §6: by_outcome lists all eight; by_period every month with a payment (even 0.00)
    by_outcome = {name: Decimal("0") for name in OUTCOME_ORDER}
    by_period = {}
    total = Decimal("0")
    for payment in payments:
        amt = Decimal(payment["amount"])
        total += amt
        by_outcome[payment["outcome"]] += amt
        month = period(datetime.date.fromisoformat(payment["date"]))
        by_period[month] = by_period.get(month, Decimal("0")) + amt

    return {
        "contract": CONTRACT,
        "as_of": t.isoformat(),
        "currency": "GBP",
        "total": money(total),
        "by_outcome": {name: money(v) for name, v in by_outcome.items()},
        "by_funder": {FUNDER: money(total)},
        "by_period": {m: money(by_period[m]) for m in sorted(by_period)},
        "payments": payments,
    }


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m tests.oracles.innovation_fund DATA_DIR AS_OF", file=sys.stderr)
        return 2
    print(json.dumps(evaluate(argv[0], parse_date(argv[1], "as-of date")), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
