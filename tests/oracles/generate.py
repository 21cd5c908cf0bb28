"""Deterministic generators of larger test data for the five reference schemes.

    generate(scheme, out_dir, n, seed=0)    # writes the scheme's CSV files
    default_as_of(scheme)                   # the as-of date the data is made for
    python -m tests.oracles.generate SCHEME OUT_DIR N [--seed S]

Every generator uses one `random.Random(seed)` and writes files in the scheme's
exact layout (shared/schemes/<scheme>/SPEC.md §Data).  The data is always valid
(unique ids, references that resolve, end >= start, enum values from the SPEC)
and is deliberately rich in the SPECs' edge cases: spells that touch, overlap,
duplicate or start before the subject's start, ongoing spells, ends after the
as-of date, boundary days of contract years / windows / referral periods,
month-end and 29 February dates, same-day outcomes, and enough volume for the
caps and ceilings to bind at larger n.  Ids are not zero-padded ("P9" sorts after
"P10"), so plain-string ordering of subjects is exercised too.
"""

from __future__ import annotations

import argparse
import calendar
import datetime
import random
import sys
from pathlib import Path

DATE = datetime.date
ONE_DAY = datetime.timedelta(days=1)

DEFAULT_AS_OF = {
    "work-programme": DATE(2014, 6, 30),
    "innovation-fund": DATE(2015, 7, 31),
    "troubled-families": DATE(2015, 6, 30),
    "recovery-partnership": DATE(2022, 3, 31),
    "peterborough-sib": DATE(2017, 7, 31),
}

SCHEMES = tuple(DEFAULT_AS_OF)


def default_as_of(scheme: str) -> datetime.date:
    """The as-of date generated data is made for (the sample's as-of date)."""
    return DEFAULT_AS_OF[_canonical(scheme)]


def _canonical(scheme: str) -> str:
    name = scheme.replace("_", "-")
    if name not in DEFAULT_AS_OF:
        raise ValueError(f"unknown scheme {scheme!r}; one of {', '.join(SCHEMES)}")
    return name


# --------------------------------------------------------------------------- helpers


def add_months(d: datetime.date, months: int) -> datetime.date:
    index = d.year * 12 + (d.month - 1) + months
    year, month0 = divmod(index, 12)
    last = calendar.monthrange(year, month0 + 1)[1]
    return DATE(year, month0 + 1, min(d.day, last))


def days(n: int) -> datetime.timedelta:
    return datetime.timedelta(days=n)


def _write(path: Path, header: str, lines: list[str]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(header)
        f.write("\n")
        if lines:
            f.write("\n".join(lines))
            f.write("\n")


def _between(rng: random.Random, first: datetime.date, last: datetime.date) -> datetime.date:
    return first + days(rng.randint(0, (last - first).days))


# --------------------------------------------------------------------------- work-programme

WP_GROUPS = [
    ("JSA_18_24", 26, 13),
    ("JSA_25_PLUS", 26, 13),
    ("JSA_EARLY", 26, 20),
    ("JSA_EX_IB", 13, 20),
    ("ESA_VOLUNTARY", 13, 20),
    ("ESA_FLOW", 13, 20),
    ("ESA_EX_IB", 13, 26),
    ("IB_IS", 13, 20),
    ("JSA_PRISON", 26, 20),
]


def gen_work_programme(out_dir: Path, n: int, rng: random.Random) -> None:
    """participants(id, group, attached_on) + employment(participant_id, start, end).

    Written with plain string formatting over day ordinals so that a million
    participants take seconds (benchmarks/generate_wp.py uses it).
    """
    t = DEFAULT_AS_OF["work-programme"].toordinal()
    base = DATE(2009, 1, 1).toordinal()
    top = DATE(2019, 12, 31).toordinal()
    iso = [DATE.fromordinal(o).isoformat() for o in range(base, top + 1)]
    a_first = DATE(2011, 6, 1).toordinal()
    a_last = DATE(2014, 8, 31).toordinal()  # a few attached after T = 2014-06-30
    special_a = [
        DATE(2011, 6, 1), DATE(2012, 3, 31), DATE(2012, 4, 1), DATE(2013, 3, 31), DATE(2013, 4, 1),
        DATE(2014, 3, 31), DATE(2014, 4, 1), DATE(2012, 2, 29), DATE(2011, 8, 31), DATE(2012, 1, 31),
        DATE(2013, 1, 31), DATE(2012, 12, 31), DATE(2014, 6, 30), DATE(2014, 7, 1), DATE(2012, 4, 30),
    ]
    special_a = [d.toordinal() for d in special_a]
    rnd = rng.random
    rint = rng.randrange
    n_special = len(special_a)
    a_span = a_last - a_first + 1

    part_lines = []
    emp_lines = []
    add_part = part_lines.append
    add_emp = emp_lines.append
    for i in range(1, n + 1):
        pid = f"P{i}"
        group, weeks, max_sust = WP_GROUPS[rint(9)]
        a = special_a[rint(n_special)] if rnd() < 0.06 else a_first + rint(a_span)
        add_part(f"{pid},{group},{iso[a - base]}")

        r = rnd()
        if r < 0.15:
            continue  # no employment rows (§9.8)
        n_spells = 1 if r < 0.55 else (2 if r < 0.85 else 3)
        need = 7 * weeks
        r = rnd()
        if r < 0.18:
            s = a - 1 - rint(300)  # starts before A (§9.4), may end before A
        elif r < 0.28:
            s = a  # starts on A
        elif r < 0.33:
            s = a + 727 - (need - 1) + rint(2)  # threshold on A + 727 or A + 728 (§9.12)
        elif r < 0.36:
            s = t - need + rint(2)  # threshold completed on T - 1 or on T (§9.11)
        else:
            s = a + rint(560)
        for _k in range(n_spells):
            r = rnd()
            if r < 0.22:
                length = need - 1 + rint(2)  # one day short / exactly the threshold (§9.13)
            elif r < 0.42:
                length = need + 28 * (1 + rint(max_sust + 2)) - rint(2)  # sustainment edge (§9.14)
            else:
                length = 1 + rint(760)
            if s < base:
                s = base
            if s > top:
                s = top
            e = s + length - 1
            if e > top:
                e = top
            r = rnd()
            if r < 0.2:
                add_emp(f"{pid},{iso[s - base]},")  # ongoing (§9.1)
            else:
                add_emp(f"{pid},{iso[s - base]},{iso[e - base]}")  # may end after T (§9.2)
                if r > 0.97:
                    add_emp(f"{pid},{iso[s - base]},{iso[e - base]}")  # exact duplicate (§9.5)
            r = rnd()
            if r < 0.35:
                s = e + 1  # touching (§9.6)
            elif r < 0.5:
                s = e + 2  # one uncovered day
            elif r < 0.65:
                s = s + rint(length)  # overlapping, or contained (§9.5)
            else:
                s = e + 2 + rint(240)
    rng.shuffle(emp_lines)  # row order has no effect (§9.7)
    _write(out_dir / "participants.csv", "id,group,attached_on", part_lines)
    _write(out_dir / "employment.csv", "participant_id,start,end", emp_lines)


# --------------------------------------------------------------------------- innovation-fund


def _saturday_on_or_after(d: datetime.date) -> datetime.date:
    return d + days((5 - d.weekday()) % 7)


def if_holidays(rng: random.Random) -> list[tuple[datetime.date, datetime.date]]:
    """An English-style school calendar for 2011-2016, with overlapping and touching rows."""
    rows = []
    for y in range(2011, 2016):
        oct_ht = _saturday_on_or_after(DATE(y, 10, 22))
        rows.append((oct_ht, oct_ht + days(8)))
        xmas = _saturday_on_or_after(DATE(y, 12, 17))
        rows.append((xmas, xmas + days(15)))
        feb = _saturday_on_or_after(DATE(y + 1, 2, 11))
        rows.append((feb, feb + days(8)))
        easter = _saturday_on_or_after(DATE(y + 1, 3, 26))
        rows.append((easter, easter + days(15 + rng.randint(0, 1))))
        may = _saturday_on_or_after(DATE(y + 1, 5, 23))
        rows.append((may, may + days(8)))
        rows.append((DATE(y + 1, 7, 23), DATE(y + 1, 9, 2)))
        # training days overlapping the summer holiday (it then runs to 4 September)
        if rng.random() < 0.6:
            rows.append((DATE(y + 1, 9, 1), DATE(y + 1, 9, 4)))
        # a single INSET day touching the end of the Christmas holiday
        if rng.random() < 0.5:
            rows.append((xmas + days(16), xmas + days(16)))
    rows.append(rows[3])  # a duplicate row
    rows.sort()
    return rows


def _merge(intervals):
    out = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1] + ONE_DAY:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def gen_innovation_fund(out_dir: Path, n: int, rng: random.Random) -> None:
    t = DEFAULT_AS_OF["innovation-fund"]
    holidays = if_holidays(rng)
    merged = _merge(holidays)
    special_start = [
        DATE(2012, 11, 5), DATE(2013, 1, 14), DATE(2013, 2, 28), DATE(2014, 2, 28), DATE(2013, 5, 31),
        DATE(2012, 12, 31), DATE(2013, 3, 29), DATE(2014, 4, 28), t, t - days(90), t - days(181),
        DATE(2013, 8, 31), DATE(2013, 1, 31), DATE(2015, 8, 3),
    ]
    participants, status, quals, employment = [], [], [], []
    for i in range(1, n + 1):
        pid = f"Y{i}"
        r = rng.random()
        if r < 0.08:
            started = rng.choice(special_start)
        elif r < 0.12:
            started = _between(rng, t + ONE_DAY, t + days(60))  # starts after T: nothing
        else:
            started = _between(rng, DATE(2012, 9, 1), DATE(2015, 6, 30))
        # age on the starting day, with the 14th / 16th birthday on the day itself or the day after
        r = rng.random()
        if r < 0.05:
            born = DATE(rng.choice([1996, 2000]), 2, 29)  # 29 February birthdays
            target = rng.choice([14, 16])
            started = add_months(born, 12 * target) + days(rng.randint(-1, 1))
        elif r < 0.55:
            age = rng.choice([14, 14, 15, 15])
            born = add_months(started, -12 * age) - days(rng.randint(0, 360))
        elif r < 0.65:
            born = add_months(started, -12 * 14) + days(rng.choice([0, 1]))  # 14 on the day / 13
        elif r < 0.75:
            born = add_months(started, -12 * 16) + days(rng.choice([0, 1]))  # 16 on the day / 15
        else:
            age = rng.choice([13, 16, 17, 18, 19])
            born = add_months(started, -12 * age) - days(rng.randint(0, 360))
        participants.append(f"{pid},{born.isoformat()},{started.isoformat()}")

        # school_status spells (also for ineligible participants: they must earn nothing)
        for kind in ("attitude", "attendance", "behaviour"):
            if rng.random() < 0.45:
                continue
            s = started + days(rng.choice([-40, -1, 0, 0, 7, 30, 90, 200, rng.randint(0, 400)]))
            for _k in range(rng.choice([1, 1, 2, 2, 3])):
                r = rng.random()
                if r < 0.08:
                    # wholly inside a holiday: no counted day
                    h = rng.choice(merged)
                    status.append(f"{pid},{kind},{h[0].isoformat()},{h[1].isoformat()}")
                    continue
                length = rng.choice([rng.randint(20, 140), rng.randint(100, 200), rng.randint(120, 330)])
                e = s + days(length - 1)
                nxt = None
                r = rng.random()
                following = [h for h in merged if h[0] > s + days(10)]
                if r < 0.25 and following:
                    # end the day before a holiday; the next spell starts the day after it
                    # (the gap is exactly a holiday: the run carries on), or one counted day early
                    h = following[0] if rng.random() < 0.7 else rng.choice(following[:3])
                    e = h[0] - days(1 if rng.random() < 0.75 else 2)
                    nxt = h[1] + ONE_DAY
                elif r < 0.4:
                    nxt = e + ONE_DAY  # touching
                elif r < 0.5:
                    nxt = e + days(3)  # a plain 2-day gap (a weekend, say): breaks the run
                elif r < 0.65:
                    nxt = s + days(rng.randint(0, length))  # overlapping
                else:
                    nxt = e + days(rng.randint(2, 120))
                if e < s:
                    e = s
                open_end = rng.random() < 0.15
                status.append(f"{pid},{kind},{s.isoformat()},{'' if open_end else e.isoformat()}")
                s = nxt

        # qualifications: before / on / after the start, repeats, after T
        for _k in range(rng.choice([0, 0, 1, 1, 2, 3, 4])):
            level = rng.choice("12")
            r = rng.random()
            if r < 0.15:
                d = started - days(rng.randint(1, 300))
            elif r < 0.25:
                d = started
            else:
                d = started + days(rng.randint(0, 1100))
            quals.append(f"{pid},{level},{d.isoformat()}")
            if rng.random() < 0.1:
                quals.append(f"{pid},{rng.choice('12')},{d.isoformat()}")  # same day, maybe other level

        # employment
        if rng.random() < 0.3:
            continue
        window_last = add_months(started, 24) - ONE_DAY
        r = rng.random()
        if r < 0.15:
            s = started - days(rng.randint(1, 200))  # already in work before the start
        elif r < 0.25:
            s = started
        elif r < 0.32:
            s = window_last + days(rng.choice([0, 1]))  # last day of the training window / day after
        elif r < 0.38:
            s = t - days(rng.choice([90, 91, 181, 182]))  # reaches 13 / 26 weeks on T or T + 1
        else:
            s = started + days(rng.randint(0, 800))
        for _k in range(rng.choice([1, 1, 2, 2, 3])):
            length = rng.choice([90, 91, 181, 182, rng.randint(1, 120), rng.randint(60, 700)])
            e = s + days(length - 1)
            training = "true" if rng.random() < 0.45 else "false"
            open_end = rng.random() < 0.2
            employment.append(f"{pid},{s.isoformat()},{'' if open_end else e.isoformat()},{training}")
            r = rng.random()
            if r < 0.35:
                s = e + ONE_DAY  # touching
            elif r < 0.5:
                s = s + days(rng.randint(0, length))  # overlapping
            elif r < 0.6:
                s = e + days(2)  # one day gap
            else:
                s = e + days(rng.randint(2, 300))

    rng.shuffle(status)
    rng.shuffle(quals)
    rng.shuffle(employment)
    _write(out_dir / "participants.csv", "id,born_on,started_on", participants)
    _write(out_dir / "school_holidays.csv", "start,end", [f"{a.isoformat()},{b.isoformat()}" for a, b in holidays])
    _write(out_dir / "school_status.csv", "participant_id,kind,start,end", status)
    _write(out_dir / "qualifications.csv", "participant_id,level,date", quals)
    _write(out_dir / "employment.csv", "participant_id,start,end,with_training", employment)


# --------------------------------------------------------------------------- troubled-families


def tf_terms() -> list[tuple[datetime.date, datetime.date]]:
    terms = []
    for y in range(2010, 2016):
        terms.append((DATE(y, 9, 4), DATE(y, 12, 20)))
        terms.append((DATE(y + 1, 1, 6), DATE(y + 1, 3, 28)))
        terms.append((DATE(y + 1, 4, 15), DATE(y + 1, 7, 23)))
    return terms


def gen_troubled_families(out_dir: Path, n: int, rng: random.Random) -> None:
    terms = tf_terms()
    special_join = [
        DATE(2012, 3, 31), DATE(2012, 4, 1), DATE(2013, 3, 31), DATE(2013, 4, 1), DATE(2014, 3, 31),
        DATE(2014, 4, 1), DATE(2015, 3, 31), DATE(2015, 4, 1), DATE(2012, 2, 29), DATE(2013, 8, 31),
        DATE(2013, 2, 28), DATE(2012, 10, 31), DATE(2014, 12, 31), DATE(2013, 12, 31), DATE(2012, 5, 31),
    ]
    families, members, school, incidents, employment, referrals = [], [], [], [], [], []
    for i in range(1, n + 1):
        fid = f"F{i}"
        r = rng.random()
        if r < 0.1:
            joined = rng.choice(special_join)
        elif r < 0.14:
            joined = rng.choice([_between(rng, DATE(2011, 10, 1), DATE(2012, 3, 31)),
                                 _between(rng, DATE(2015, 4, 1), DATE(2015, 6, 30))])  # outside
        else:
            joined = _between(rng, DATE(2012, 4, 1), DATE(2015, 3, 31))
        families.append(f"{fid},{joined.isoformat()}")

        adults, children = [], []
        for j in range(1, rng.choice([1, 1, 2, 2, 3]) + 1):
            mid = f"{fid}A{j}"
            born = joined - days(rng.randint(18 * 365, 55 * 365))
            members.append(f"{mid},{fid},adult,{born.isoformat()}")
            adults.append(mid)
        for j in range(1, rng.choice([0, 1, 1, 2, 2, 3]) + 1):
            mid = f"{fid}C{j}"
            r = rng.random()
            if r < 0.06:
                born = add_months(joined, -60) + days(rng.choice([0, 1]))  # 5 on the day / 4
            elif r < 0.12:
                born = add_months(joined, -192) + days(rng.choice([0, 1]))  # 16 on the day / 15
            elif r < 0.15:
                born = DATE(rng.choice([1996, 2000, 2004, 2008]), 2, 29)
            elif r < 0.25:
                born = joined - days(rng.randint(365, 5 * 365 - 1))  # under 5
            elif r < 0.32:
                born = joined - days(rng.randint(16 * 365 + 5, 17 * 365 + 300))  # 16 or 17
            else:
                born = joined - days(rng.randint(5 * 365 + 2, 16 * 365 - 2))
            members.append(f"{mid},{fid},child,{born.isoformat()}")
            children.append(mid)

        # school terms: a run of recorded terms (some before joining, some missing)
        for mid in children:
            if rng.random() < 0.1:
                continue  # a child with no term records
            k0 = next((k for k, tm in enumerate(terms) if tm[0] >= joined), len(terms) - 1)
            first = max(0, min(len(terms) - 1, k0 + rng.randint(-2, 1)))  # may begin before joining
            last = min(len(terms), first + rng.randint(2, 9))
            for k in range(first, last):
                if rng.random() < 0.08:
                    continue  # a term missing from the records: not a break
                start, end = terms[k]
                if rng.random() < 0.8:
                    excl = rng.choice([0, 0, 0, 1, 2])
                    pct = rng.choice(["0.0", "3.5", "8.0", "12", "14.9", "14.99"])
                elif rng.random() < 0.5:
                    excl = rng.choice([3, 4, 7])
                    pct = rng.choice(["1.0", "9.5"])
                else:
                    excl = rng.choice([0, 1, 2])
                    pct = rng.choice(["15", "15.00", "15.0", "22.5", "40.0", "100"])
                school.append(f"{mid},{start.isoformat()},{end.isoformat()},{excl},{pct}")

        # incidents: counts hitting the exact 60% / 33% boundaries, days on and just outside the windows
        everyone = adults + children
        before_first = add_months(joined, -6)
        before_last = joined - ONE_DAY
        after_last = add_months(joined, 6) - ONE_DAY
        if rng.random() < 0.7:
            asb = rng.choice([(5, 2), (5, 3), (10, 4), (10, 5), (4, 2), (3, 1), (0, 0), (0, 1), (1, 0), (2, 1), (6, 2)])
            yo = rng.choice([(0, 0), (0, 0), (3, 2), (3, 1), (1, 1), (2, 0), (0, 1), (6, 4), (6, 5)])
            if rng.random() < 0.02:
                yo = rng.choice([(100, 67), (100, 68)])  # exactly 33% passes, just under fails
            for kind, (nb, na) in (("asb", asb), ("youth_offence", yo)):
                for k in range(nb):
                    d = before_first if k == 0 and rng.random() < 0.3 else (
                        before_last if k == 1 and rng.random() < 0.3 else _between(rng, before_first, before_last))
                    incidents.append(f"{rng.choice(everyone)},{d.isoformat()},{kind}")
                for k in range(na):
                    d = joined if k == 0 and rng.random() < 0.3 else (
                        after_last if k == 1 and rng.random() < 0.3 else _between(rng, joined, after_last))
                    incidents.append(f"{rng.choice(everyone)},{d.isoformat()},{kind}")
            for _k in range(rng.choice([0, 0, 1, 2])):
                d = rng.choice([before_first - ONE_DAY, after_last + ONE_DAY, before_first - days(40), after_last + days(90)])
                incidents.append(f"{rng.choice(everyone)},{d.isoformat()},{rng.choice(['asb', 'youth_offence'])}")

        # employment of adults (and sometimes a child, which never counts)
        c_days = []
        for mid in adults:
            r = rng.random()
            if r < 0.45:
                continue
            if r < 0.6:
                # a job already going before joining, maybe with a spell touching it
                s0 = joined - days(rng.randint(1, 400))
                e0 = joined - ONE_DAY + days(rng.randint(0, 200))
                employment.append(f"{mid},{s0.isoformat()},{'' if rng.random() < 0.3 else e0.isoformat()}")
                s = e0 + days(rng.choice([1, 1, 2, 30]))
            elif r < 0.7:
                s = add_months(joined, 3)  # (C) may tie with (A)'s crime date
            else:
                s = joined + days(rng.choice([0, 1, rng.randint(0, 900)]))
            for _k in range(rng.choice([1, 1, 2, 3])):
                need = (add_months(s, 3) - s).days
                length = rng.choice([need - 1, need, need + rng.randint(1, 400), rng.randint(10, 80)])
                e = s + days(length - 1)
                open_end = rng.random() < 0.25
                employment.append(f"{mid},{s.isoformat()},{'' if open_end else e.isoformat()}")
                if open_end or length >= need:
                    c_days.append(add_months(s, 3) - ONE_DAY)
                r = rng.random()
                if r < 0.35:
                    s = e + ONE_DAY
                elif r < 0.5:
                    s = s + days(rng.randint(0, max(0, length - 1)))
                else:
                    s = e + days(rng.randint(2, 200))
        if children and rng.random() < 0.15:
            s = joined + days(rng.randint(0, 300))
            employment.append(f"{rng.choice(children)},{s.isoformat()},")

        # referrals: adults before / after joining, on the (C) day, the day after; children too
        for mid in adults:
            if rng.random() < 0.5:
                d = joined + days(rng.choice([-30, -1, 0, rng.randint(0, 500), rng.randint(0, 120)]))
                referrals.append(f"{mid},{d.isoformat()}")
        if c_days and rng.random() < 0.35:
            c = rng.choice(c_days)
            referrals.append(f"{rng.choice(adults)},{(c + days(rng.choice([-1, 0, 0, 1]))).isoformat()}")
        if children and rng.random() < 0.15:
            referrals.append(f"{rng.choice(children)},{(joined + days(rng.randint(0, 200))).isoformat()}")

    for rows in (school, incidents, employment, referrals):
        rng.shuffle(rows)
    _write(out_dir / "families.csv", "id,joined_on", families)
    _write(out_dir / "members.csv", "id,family_id,role,born_on", members)
    _write(out_dir / "school_terms.csv", "person_id,term_start,term_end,exclusions,unauthorised_absence_pct", school)
    _write(out_dir / "incidents.csv", "person_id,date,kind", incidents)
    _write(out_dir / "employment.csv", "person_id,start,end", employment)
    _write(out_dir / "work_programme_referrals.csv", "person_id,date", referrals)


# --------------------------------------------------------------------------- recovery-partnership


def gen_recovery_partnership(out_dir: Path, n: int, rng: random.Random) -> None:
    """Mostly opiate users with an offending history, so that at a few hundred
    participants the LCF ceiling, both years' PCC ceilings and the contract cap bind."""
    t = DEFAULT_AS_OF["recovery-partnership"]
    period_first, period_last = DATE(2019, 4, 1), DATE(2021, 3, 31)
    special = [
        DATE(2019, 3, 31), DATE(2019, 4, 1), DATE(2021, 3, 31), DATE(2021, 4, 1), DATE(2020, 2, 29),
        DATE(2019, 8, 31), DATE(2020, 1, 31), DATE(2020, 3, 31), DATE(2020, 4, 1), DATE(2019, 12, 31),
        DATE(2020, 10, 31), DATE(2019, 5, 31),
    ]
    participants, events = [], []
    for i in range(1, n + 1):
        pid = f"R{i}"
        r = rng.random()
        if r < 0.08:
            referred = rng.choice(special)
        elif r < 0.11:
            referred = rng.choice([_between(rng, DATE(2019, 1, 1), DATE(2019, 3, 31)),
                                   _between(rng, DATE(2021, 4, 1), DATE(2021, 6, 30))])  # ineligible
        else:
            referred = _between(rng, period_first, period_last)
        substance = rng.choices(["opiate", "non_opiate", "alcohol"], weights=[6, 2, 2])[0]
        history = "true" if rng.random() < 0.7 else "false"
        participants.append(f"{pid},{referred.isoformat()},{substance},{history}")
        window_last = add_months(referred, 12) - ONE_DAY

        def event(kind, d):
            events.append(f"{pid},{kind},{d.isoformat()}")

        # treatment completions and re-presentations (§5.1)
        if rng.random() < 0.8:
            r = rng.random()
            if r < 0.1:
                c = referred - days(rng.randint(1, 60))  # before R: ignored
            elif r < 0.16:
                c = t - days(rng.choice([182, 181]))  # achieved on T / T + 1
            else:
                c = referred + days(rng.randint(0, 330))
            event("treatment_completed", c)
            r = rng.random()
            if r < 0.08:
                event("re_presented", c)  # on C: does not block
            elif r < 0.16:
                event("re_presented", c + days(182))  # blocks
            elif r < 0.22:
                event("re_presented", c + days(183))  # too late to block
            elif r < 0.3:
                event("re_presented", c + days(rng.randint(1, 181)))  # blocks
                if rng.random() < 0.6:
                    event("treatment_completed", c + days(rng.randint(182, 400)))  # a second episode
            if rng.random() < 0.05:
                event("treatment_completed", c)  # duplicate
        # proven offences (§5.2)
        if rng.random() < 0.3:
            d = rng.choice([referred - ONE_DAY, referred, window_last, window_last + ONE_DAY,
                            _between(rng, referred, window_last), window_last + days(60)])
            event("proven_offence", d)
        # housing and employment (§5.3, §5.4)
        for kind, p in (("housing_secured", 0.35), ("employment_started", 0.3)):
            for _k in range(rng.choice([0, 1, 1, 2]) if rng.random() < p else 0):
                d = rng.choice([referred - ONE_DAY, referred, window_last, window_last + ONE_DAY,
                                _between(rng, referred, window_last), _between(rng, referred, window_last)])
                event(kind, d)
                if rng.random() < 0.05:
                    event(kind, d)  # duplicate
    rng.shuffle(events)
    _write(out_dir / "participants.csv", "id,referred_on,substance,offending_history", participants)
    _write(out_dir / "events.csv", "participant_id,kind,date", events)


# --------------------------------------------------------------------------- peterborough-sib

PSIB_PERIODS = {
    "cohort_1": (DATE(2010, 9, 9), DATE(2012, 6, 30), 1.55),
    "cohort_2": (DATE(2012, 7, 1), DATE(2014, 6, 30), 1.5137),
}


def gen_peterborough_sib(out_dir: Path, n: int, rng: random.Random) -> None:
    """Each cohort's reconviction rate is drawn per seed, relative to its comparison
    rate, so the 10% / 7.5% thresholds pass for some seeds and fail for others."""
    special = [
        DATE(2010, 9, 8), DATE(2010, 9, 9), DATE(2012, 6, 30), DATE(2012, 7, 1), DATE(2014, 6, 30),
        DATE(2014, 7, 1), DATE(2012, 2, 29), DATE(2011, 8, 31), DATE(2011, 1, 31), DATE(2013, 10, 31),
        DATE(2012, 8, 30), DATE(2013, 12, 31), DATE(2011, 3, 29),
    ]
    ratio = {
        "cohort_1": rng.choice([0.6, 0.75, 0.85, 0.88, 0.9, 0.92, 0.95, 1.0, 1.05]),
        "cohort_2": rng.choice([0.6, 0.75, 0.85, 0.88, 0.9, 0.92, 0.95, 1.0, 1.05]),
    }
    prisoners, offences = [], []
    for i in range(1, n + 1):
        pid = f"X{i}"
        r = rng.random()
        if r < 0.04:
            released = rng.choice(special)
        elif r < 0.07:
            released = rng.choice([_between(rng, DATE(2010, 1, 1), DATE(2010, 9, 8)),
                                   _between(rng, DATE(2014, 7, 1), DATE(2015, 3, 31))])  # no cohort
        elif r < 0.5:
            released = _between(rng, *PSIB_PERIODS["cohort_1"][:2])
        else:
            released = _between(rng, *PSIB_PERIODS["cohort_2"][:2])
        sentence = rng.choice([11, 12]) if rng.random() < 0.1 else (
            rng.randint(0, 11) if rng.random() < 0.95 else rng.randint(12, 48))
        prisoners.append(f"{pid},{released.isoformat()},{sentence}")

        offence_last = add_months(released, 12) - ONE_DAY
        conviction_last = add_months(released, 18) - ONE_DAY
        cohort = "cohort_1" if released <= DATE(2012, 6, 30) else "cohort_2"
        mean = PSIB_PERIODS[cohort][2] * ratio[cohort]
        # number of conviction occasions: a skewed distribution with the chosen mean
        occasions = 0
        # P(any) * E[1 + floor(Exp(mean 1.2))] = p * 1.7686 ~ mean
        if rng.random() < min(0.95, mean / 1.7686):
            occasions = 1 + int(rng.expovariate(1 / 1.2))
        used = set()
        for _k in range(occasions):
            conv = _between(rng, released, conviction_last)
            if rng.random() < 0.03:
                conv = conviction_last  # last day of the conviction window
            if conv in used and rng.random() < 0.5:
                continue
            used.add(conv)
            for _m in range(rng.choice([1, 1, 1, 2, 3])):
                off = _between(rng, released, min(conv, offence_last))
                if rng.random() < 0.03:
                    off = released  # offence on the release day
                offences.append(f"{pid},{off.isoformat()},{conv.isoformat()}")
            if rng.random() < 0.05:
                # a pre-release offence dealt with on the same occasion: counts once
                offences.append(f"{pid},{(released - days(rng.randint(1, 90))).isoformat()},{conv.isoformat()}")
        # offences that must not count
        r = rng.random()
        if r < 0.06:
            off = released - days(rng.randint(1, 60))  # before release
            offences.append(f"{pid},{off.isoformat()},{(released + days(rng.randint(0, 100))).isoformat()}")
        elif r < 0.1:
            off = offence_last + ONE_DAY + days(rng.choice([0, rng.randint(0, 200)]))  # after the offence window
            offences.append(f"{pid},{off.isoformat()},{(off + days(rng.randint(0, 100))).isoformat()}")
        elif r < 0.14:
            off = _between(rng, released, offence_last)
            conv = conviction_last + ONE_DAY + days(rng.choice([0, rng.randint(0, 200)]))  # convicted too late
            offences.append(f"{pid},{off.isoformat()},{conv.isoformat()}")
        elif r < 0.18:
            off = _between(rng, released, offence_last + days(100))
            offences.append(f"{pid},{off.isoformat()},")  # never convicted
        elif r < 0.2:
            off = offence_last  # last day of the offence window, convicted the same day
            offences.append(f"{pid},{off.isoformat()},{off.isoformat()}")
    rng.shuffle(offences)
    _write(out_dir / "prisoners.csv", "id,released_on,sentence_months", prisoners)
    _write(out_dir / "offences.csv", "prisoner_id,offence_date,conviction_date", offences)


# --------------------------------------------------------------------------- entry points

GENERATORS = {
    "work-programme": gen_work_programme,
    "innovation-fund": gen_innovation_fund,
    "troubled-families": gen_troubled_families,
    "recovery-partnership": gen_recovery_partnership,
    "peterborough-sib": gen_peterborough_sib,
}


def generate(scheme: str, out_dir, n: int, seed: int = 0) -> Path:
    """Write `n` subjects' worth of valid data for `scheme` into `out_dir` (created if needed)."""
    name = _canonical(scheme)
    if n < 0:
        raise ValueError("n must be >= 0")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    GENERATORS[name](out, n, random.Random(seed))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.oracles.generate", description=__doc__.splitlines()[0])
    parser.add_argument("scheme", choices=sorted(SCHEMES + tuple(s.replace("-", "_") for s in SCHEMES)))
    parser.add_argument("out_dir")
    parser.add_argument("n", type=int)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = generate(args.scheme, args.out_dir, args.n, args.seed)
    print(f"{_canonical(args.scheme)}: {args.n} subjects written to {out} (suggested --as-of {default_as_of(args.scheme)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
