"""Reference oracle for `troubled-families` (shared/schemes/troubled-families/SPEC.md).

A direct, deliberately plain transcription of the SPEC; section numbers in the
comments refer to it.  Usage:

    python -m tests.oracles.troubled_families DATA_DIR AS_OF
"""

from __future__ import annotations

import datetime
import json
import sys
from decimal import Decimal, InvalidOperation

from .common import add_days, add_months, money, parse_date, parse_optional_date, period, read_table

CONTRACT = "troubled-families"
FUNDER = "DCLG"  # §6
OUTCOMES = ["attachment", "education_and_crime", "progress_to_work", "continuous_employment"]  # §4 order
FAMILY_CAP = Decimal("4000.00")  # §5.2

# §3 programme years: (first joined_on, last joined_on, attachment, A, B, C)
PROGRAMME_YEARS = [
    (datetime.date(2012, 4, 1), datetime.date(2013, 3, 31), "3200.00", "700.00", "100.00", "800.00"),
    (datetime.date(2013, 4, 1), datetime.date(2014, 3, 31), "2400.00", "1500.00", "100.00", "1600.00"),
    (datetime.date(2014, 4, 1), datetime.date(2015, 3, 31), "1600.00", "2300.00", "100.00", "2400.00"),
]


def prices_for(joined_on: datetime.date):
    """§3: the family's prices by programme year, or None when outside the programme."""
    for first, last, attachment, a, b, c in PROGRAMME_YEARS:
        if first <= joined_on <= last:
            return {
                "attachment": Decimal(attachment),
                "education_and_crime": Decimal(a),
                "progress_to_work": Decimal(b),
                "continuous_employment": Decimal(c),
            }
    return None


def aged(born_on: datetime.date, years: int, day: datetime.date) -> bool:
    """§4: aged N or more on D when born_on + 12N months <= D."""
    return add_months(born_on, 12 * years) <= day


def load(data_dir):
    """§2: read and validate the six tables."""
    families = {}
    for row in read_table(data_dir, "families"):
        fid = row["id"]
        if fid == "" or fid in families:
            raise ValueError(f"family id empty or not unique: {fid!r}")
        families[fid] = {"joined_on": parse_date(row["joined_on"], "joined_on"), "members": []}

    members = {}
    for row in read_table(data_dir, "members"):
        mid = row["id"]
        if mid == "" or mid in members:
            raise ValueError(f"member id empty or not unique: {mid!r}")
        fid = row["family_id"]
        if fid not in families:
            raise ValueError(f"member {mid}: unknown family {fid!r}")
        role = row["role"]
        if role not in ("adult", "child"):
            raise ValueError(f"member {mid}: role {role!r} is not adult or child")
        members[mid] = {
            "family_id": fid,
            "role": role,
            "born_on": parse_date(row["born_on"], "born_on"),
            "terms": [],
            "incidents": [],
            "employment": [],
            "referrals": [],
        }
        families[fid]["members"].append(mid)

    def member_of(row, what):
        mid = row["person_id"]
        if mid not in members:
            raise ValueError(f"{what} row for unknown person {mid!r}")
        return members[mid]

    for row in read_table(data_dir, "school_terms"):
        m = member_of(row, "school_terms")
        start = parse_date(row["term_start"], "term_start")
        end = parse_date(row["term_end"], "term_end")
        if end < start:
            raise ValueError(f"term {start}..{end} ends before it starts")
        text = row["exclusions"]
        if not text.isdigit():
            raise ValueError(f"exclusions {text!r} is not a whole number >= 0")
        try:
            pct = Decimal(row["unauthorised_absence_pct"])
        except InvalidOperation as exc:
            raise ValueError(f"unauthorised_absence_pct {row['unauthorised_absence_pct']!r}") from exc
        if not pct.is_finite() or pct < 0 or pct > 100:
            raise ValueError(f"unauthorised_absence_pct {pct} not in 0..100")
        m["terms"].append((start, end, int(text), pct))

    for row in read_table(data_dir, "incidents"):
        m = member_of(row, "incidents")
        kind = row["kind"]
        if kind not in ("asb", "youth_offence"):
            raise ValueError(f"incident kind {kind!r}")
        m["incidents"].append((parse_date(row["date"], "date"), kind))

    for row in read_table(data_dir, "employment"):
        m = member_of(row, "employment")
        start = parse_date(row["start"], "start")
        end = parse_optional_date(row["end"], "end")
        if end is not None and end < start:
            raise ValueError("employment row ends before it starts")
        m["employment"].append((start, end))

    for row in read_table(data_dir, "work_programme_referrals"):
        m = member_of(row, "work_programme_referrals")
        m["referrals"].append(parse_date(row["date"], "date"))
    return families, members


def child_education_date(terms, joined_on):
    """§4.2 Education, one school-age child: term_end of the third of the earliest
    three adjacent good terms (terms starting before joined_on ignored), or None."""
    recorded = sorted((t for t in terms if t[0] >= joined_on), key=lambda t: (t[0], t[1]))
    good_in_a_row = 0
    for _start, end, exclusions, pct in recorded:
        good = exclusions <= 2 and pct < 15
        if good:
            good_in_a_row += 1
            if good_in_a_row == 3:
                return end
        else:
            good_in_a_row = 0
    return None


def education_and_crime_day(family, members):
    """§4.2: the day (A) is achieved, or None if it never is."""
    j = family["joined_on"]
    # Education: children aged 5 or more but not 16 or more on joined_on
    dates = []
    for mid in family["members"]:
        m = members[mid]
        if m["role"] == "child" and aged(m["born_on"], 5, j) and not aged(m["born_on"], 16, j):
            d = child_education_date(m["terms"], j)
            if d is None:
                return None  # one child failing fails the education part
            dates.append(d)
    education_date = max(dates) if dates else None

    # Crime and ASB: incidents of all members, before and after windows
    before_first = add_months(j, -6)
    before_last = add_days(j, -1)
    after_first = j
    after_last = add_days(add_months(j, 6), -1)
    asb_before = asb_after = yo_before = yo_after = 0
    for mid in family["members"]:
        for d, kind in members[mid]["incidents"]:
            if before_first <= d <= before_last:
                if kind == "asb":
                    asb_before += 1
                else:
                    yo_before += 1
            elif after_first <= d <= after_last:
                if kind == "asb":
                    asb_after += 1
                else:
                    yo_after += 1
    if not (5 * asb_after <= 2 * asb_before and 100 * yo_after <= 67 * yo_before):
        return None
    crime_date = after_last
    return crime_date if education_date is None else max(education_date, crime_date)


def progress_to_work_day(family, members):
    """§4.3: earliest referral of an adult on or after joined_on."""
    j = family["joined_on"]
    dates = [
        d
        for mid in family["members"]
        if members[mid]["role"] == "adult"
        for d in members[mid]["referrals"]
        if d >= j
    ]
    return min(dates) if dates else None


def join_spells(spells, t):
    """README: overlapping or touching spells form one; an open spell runs to T."""
    pieces = []
    for start, end in spells:
        last = end if end is not None else t
        if start <= last:
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


def continuous_employment_day(family, members, t):
    """§4.4: earliest S + 3 months - 1 day over the adults' counting spells (S >= joined_on)."""
    j = family["joined_on"]
    days = []
    for mid in family["members"]:
        m = members[mid]
        if m["role"] != "adult":
            continue
        for s, e in join_spells(m["employment"], t):
            if s < j:
                continue
            last_needed = add_days(add_months(s, 3), -1)
            if e >= last_needed:
                days.append(last_needed)
    return min(days) if days else None


def family_outcomes(family, members, t):
    """§4 and §5.1: the family's payable outcomes, {outcome: date}."""
    j = family["joined_on"]
    if prices_for(j) is None:  # §3: outside the programme: nothing at all
        return {}
    achieved = {
        "attachment": j,  # §4.1
        "education_and_crime": education_and_crime_day(family, members),
        "progress_to_work": progress_to_work_day(family, members),
        "continuous_employment": continuous_employment_day(family, members, t),
    }
    # payable only if achieved on or before the as-of date
    payable = {o: d for o, d in achieved.items() if d is not None and d <= t}
    # §5.1 (C) instead of (A) and (B): A and B stay only if strictly before c
    if "continuous_employment" in payable:
        c = payable["continuous_employment"]
        for o in ("education_and_crime", "progress_to_work"):
            if o in payable and not payable[o] < c:
                del payable[o]
    return payable


def evaluate(data_dir, as_of: datetime.date) -> dict:
    t = as_of
    families, members = load(data_dir)

    rows = []
    for fid, family in families.items():
        for outcome, d in family_outcomes(family, members, t).items():
            rows.append((d, fid, OUTCOMES.index(outcome), outcome))
    # README order: achievement date, family id as text, outcome order of §4
    rows.sort(key=lambda r: (r[0], r[1], r[2]))

    paid = {}
    payments = []
    for d, fid, _idx, outcome in rows:
        price = prices_for(families[fid]["joined_on"])[outcome]
        # §5.2 family cap: cut to what is left of £4,000, possibly 0.00
        room = max(Decimal("0"), FAMILY_CAP - paid.get(fid, Decimal("0")))
        amount = min(price, room)
        paid[fid] = paid.get(fid, Decimal("0")) + amount
        payment = {
            "subject": fid,
            "outcome": outcome,
            "date": d.isoformat(),
            "amount": money(amount),
            "funders": {FUNDER: money(amount)},
        }
        if amount < price:
            payment["cuts"] = [{"cap": "family_cap", "amount": money(price - amount)}]
        payments.append(payment)

    # §6: by_outcome lists all four; by_period every month with a payment (even 0.00)
    by_outcome = {o: Decimal("0") for o in OUTCOMES}
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
        "by_outcome": {o: money(v) for o, v in by_outcome.items()},
        "by_funder": {FUNDER: money(total)},
        "by_period": {m: money(by_period[m]) for m in sorted(by_period)},
        "payments": payments,
    }


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m tests.oracles.troubled_families DATA_DIR AS_OF", file=sys.stderr)
        return 2
    print(json.dumps(evaluate(argv[0], parse_date(argv[1], "as-of date")), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
