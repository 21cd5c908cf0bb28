#!/usr/bin/env python3
"""Hand-written plain-Python Work Programme evaluator: the performance baseline.

Implements shared/schemes/work-programme/SPEC.md directly, in one self-contained
file (stdlib only), written the way a competent developer would write a
one-off evaluator: read the two CSV files with the csv module, work in day
ordinals and whole pence, sort each participant's spells once and build runs from
the sorted intervals (no per-day loops), then write the statement as JSON.

    python benchmarks/baseline_wp.py DATA_DIR --as-of 2014-06-30 [--output FILE]

Without --output the statement goes to standard output.  The JSON is the same
statement as `pbr eval ... --format json` (and tests/oracles/work_programme.py):
compare it parsed, not byte for byte.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import gc
import json
import sys
import time

CONTRACT = "work-programme"
OUTCOMES = ("attachment", "job_outcome", "sustainment")  # §2 contract order

# §5.1 group -> (threshold days 7W, job outcome fee, sustainment fee per 4 weeks, max sustainment
# payments); §5.2 attachment fee by contract year 1-3; §5.3 cap by contract year 1-4.  Pence.
GROUPS = {
    "JSA_18_24": (182, 120000, 17000, 13, (40000, 30000, 20000), (381000, 371000, 361000, 341000)),
    "JSA_25_PLUS": (182, 120000, 21500, 13, (40000, 30000, 20000), (439500, 429500, 419500, 399500)),
    "JSA_EARLY": (182, 120000, 25000, 20, (40000, 30000, 20000), (660000, 650000, 640000, 620000)),
    "JSA_EX_IB": (91, 120000, 25000, 20, (40000, 30000, 20000), (660000, 650000, 640000, 620000)),
    "ESA_VOLUNTARY": (91, 100000, 11500, 20, (40000, 30000, 20000), (370000, 360000, 350000, 330000)),
    "ESA_FLOW": (91, 120000, 23500, 20, (60000, 45000, 30000), (650000, 635000, 620000, 590000)),
    "ESA_EX_IB": (91, 350000, 37000, 26, (60000, 45000, 30000), (1372000, 1357000, 1342000, 1312000)),
    "IB_IS": (91, 100000, 11500, 20, (40000, 30000, 20000), (370000, 360000, 350000, 330000)),
    "JSA_PRISON": (182, 120000, 20000, 20, (40000, 30000, 20000), (560000, 550000, 540000, 520000)),
}

_ORD = datetime.date.toordinal
PROGRAMME_START = _ORD(datetime.date(2011, 6, 1))
YEAR2 = _ORD(datetime.date(2012, 4, 1))
YEAR3 = _ORD(datetime.date(2013, 4, 1))
YEAR4 = _ORD(datetime.date(2014, 4, 1))
WINDOW = 727  # §4: attachment window A .. A + 727


class InvalidData(ValueError):
    pass


def pounds(pence: int) -> str:
    sign = "-" if pence < 0 else ""
    pence = abs(pence)
    return f"{sign}{pence // 100}.{pence % 100:02d}"


def evaluate(data_dir: str, as_of: datetime.date) -> dict:
    t = as_of.toordinal()

    # ---- dates: parse each distinct string once (strict YYYY-MM-DD)
    ordinal_of: dict[str, int] = {}
    known = ordinal_of.get

    def day(text: str) -> int:
        o = ordinal_of.get(text)
        if o is None:
            if len(text) != 10 or text[4] != "-" or text[7] != "-":
                raise InvalidData(f"invalid date {text!r}")
            try:
                o = datetime.date.fromisoformat(text).toordinal()
            except ValueError:
                raise InvalidData(f"invalid date {text!r}") from None
            ordinal_of[text] = o
        return o

    # ---- participants.csv: id, group, attached_on
    ids: list[str] = []
    groups: list[tuple] = []
    attached: list[int] = []
    index: dict[str, int] = {}
    with open(f"{data_dir}/participants.csv", newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        c_id, c_group, c_att = header.index("id"), header.index("group"), header.index("attached_on")
        for row in reader:
            pid = row[c_id]
            if pid == "" or pid in index:
                raise InvalidData(f"participant id empty or not unique: {pid!r}")
            g = GROUPS.get(row[c_group])
            if g is None:
                raise InvalidData(f"participant {pid}: unknown group {row[c_group]!r}")
            a = known(row[c_att]) or day(row[c_att])
            if a < PROGRAMME_START:
                raise InvalidData(f"participant {pid}: attached before 2011-06-01")
            index[pid] = len(ids)
            ids.append(pid)
            groups.append(g)
            attached.append(a)

    # ---- employment.csv: participant_id, start, end (empty: still in work)
    spells: list[list | None] = [None] * len(ids)
    with open(f"{data_dir}/employment.csv", newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        c_pid, c_start, c_end = header.index("participant_id"), header.index("start"), header.index("end")
        for row in reader:
            i = index.get(row[c_pid])
            if i is None:
                raise InvalidData(f"employment row for unknown participant {row[c_pid]!r}")
            s = known(row[c_start]) or day(row[c_start])
            end_text = row[c_end]
            if end_text:
                e = known(end_text) or day(end_text)
                if e < s:
                    raise InvalidData(f"employment row for {row[c_pid]}: end before start")
            else:
                e = t
            lst = spells[i]
            if lst is None:
                spells[i] = [(s, e)]
            else:
                lst.append((s, e))

    read_done = time.perf_counter()

    # ---- outcomes per participant (§6) with the per-participant cap (§7)
    # Payments are sorted by date, then subject (plain string), then outcome order (§8).
    # Visiting participants in id order and dropping each payment into its day's
    # bucket gives that order without a comparison sort of all payments: one
    # participant never has two payments on one day, and its payments come out
    # in date order.
    buckets: dict[int, list] = {}  # day -> [(subject as a JSON string, outcome idx, amount, cut), ...]
    for i in sorted(range(len(ids)), key=ids.__getitem__):
        a = attached[i]
        if a > t:
            continue  # §9.9: attached after T: nothing
        pid = ids[i]
        pid = f'"{pid}"' if pid.isalnum() else json.dumps(pid)  # the subject, JSON-quoted once
        need, job_fee, sust_fee, max_sust, att_fees, caps = groups[i]
        year = 1 if a < YEAR2 else 2 if a < YEAR3 else 3 if a < YEAR4 else 4
        cap = caps[year - 1]
        paid = 0

        if year <= 3:  # §6.1 attachment on A
            fee = att_fees[year - 1]
            amount = fee if fee <= cap - paid else max(0, cap - paid)
            paid += amount
            bucket = buckets.get(a)
            if bucket is None:
                bucket = buckets[a] = []
            bucket.append((pid, 0, amount, fee - amount))

        lst = spells[i]
        if lst is None:
            continue
        # employed days are A .. T only (§4): clip, drop empty pieces, sort once
        pieces = []
        for s, e in lst:
            if s < a:
                s = a
            if e > t:
                e = t
            if s <= e:
                pieces.append((s, e))
        if not pieces:
            continue
        pieces.sort()
        # walk the sorted pieces, joining overlapping / touching ones into runs (§4),
        # and stop at the first run holding at least 7W days (§6.2)
        run_s, run_e = pieces[0]
        for s, e in pieces[1:]:
            if s <= run_e + 1:
                if e > run_e:
                    run_e = e
                continue
            if run_e - run_s + 1 >= need:
                break  # this run is complete and long enough
            run_s, run_e = s, e
        if run_e - run_s + 1 < need:
            continue  # no run holds 7W days
        d = run_s + need - 1  # §6.2 job outcome day
        if d > a + WINDOW:
            continue  # outside the 104-week window: never a job outcome (§9.12)
        amount = job_fee if job_fee <= cap - paid else max(0, cap - paid)
        paid += amount
        bucket = buckets.get(d)
        if bucket is None:
            bucket = buckets[d] = []
        bucket.append((pid, 1, amount, job_fee - amount))
        # §6.3 sustainment: min(max, (E - D) // 28) payments on D + 28k (E = run end)
        count = (run_e - d) // 28
        if count > max_sust:
            count = max_sust
        for k in range(1, count + 1):
            amount = sust_fee if sust_fee <= cap - paid else max(0, cap - paid)
            paid += amount
            day_k = d + 28 * k
            bucket = buckets.get(day_k)
            if bucket is None:
                bucket = buckets[day_k] = []
            bucket.append((pid, 2, amount, sust_fee - amount))

    # ---- totals (§8): keys only where a payment row falls
    days_sorted = sorted(buckets)
    total = 0
    n_payments = 0
    by_outcome = [0, 0, 0]
    seen_outcome = [False, False, False]
    by_period: dict[str, int] = {}
    for d in days_sorted:
        dt = datetime.date.fromordinal(d)
        month = f"{dt.year:04d}-{dt.month:02d}"
        day_total = 0
        for _pid, k, amount, _cut in buckets[d]:
            day_total += amount
            by_outcome[k] += amount
            seen_outcome[k] = True
        n_payments += len(buckets[d])
        total += day_total
        by_period[month] = by_period.get(month, 0) + day_total

    return {
        "contract": CONTRACT,
        "as_of": as_of.isoformat(),
        "currency": "GBP",
        "total": pounds(total),
        "by_outcome": {OUTCOMES[k]: pounds(by_outcome[k]) for k in range(3) if seen_outcome[k]},
        "by_funder": {"DWP": pounds(total)} if n_payments else {},
        "by_period": {m: pounds(by_period[m]) for m in sorted(by_period)},
        "_buckets": (days_sorted, buckets, n_payments),
        "_read_done": read_done,
    }


def write_statement(statement: dict, out) -> None:
    """Write the statement as JSON, streaming the payment rows (one per line)."""
    days_sorted, buckets, n_payments = statement.pop("_buckets")
    statement.pop("_read_done", None)  # a timing, not part of the statement
    head = json.dumps(statement, indent=2)
    out.write(head[:-2])  # everything but the closing "\n}"
    out.write(',\n  "payments": [')
    separator = "\n    "
    for d in days_sorted:
        iso = datetime.date.fromordinal(d).isoformat()
        tails: dict[tuple[int, int, int], str] = {}  # (outcome, amount, cut) -> rest of the row
        lines = []
        for q, k, amount, cut in buckets[d]:
            tail = tails.get((k, amount, cut))
            if tail is None:
                m = pounds(amount)
                tail = f', "outcome": "{OUTCOMES[k]}", "date": "{iso}", "amount": "{m}", "funders": {{"DWP": "{m}"}}'
                if cut:
                    tail += f', "cuts": [{{"cap": "participant_cap", "amount": "{pounds(cut)}"}}]'
                tail = tails[(k, amount, cut)] = tail + "}"
            lines.append(separator + '{"subject": ' + q + tail)
            separator = ",\n    "
        out.write("".join(lines))
    out.write("\n  ]\n}\n" if n_payments else "]\n}\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Plain-Python Work Programme evaluator (benchmark baseline)")
    parser.add_argument("data_dir")
    parser.add_argument("--as-of", required=True, help="evaluation date, YYYY-MM-DD")
    parser.add_argument("--output", help="write the JSON statement here (default: standard output)")
    parser.add_argument("--timing", action="store_true",
                        help="print read / evaluate / write times (JSON) to standard error")
    args = parser.parse_args(argv)
    as_of = datetime.date.fromisoformat(args.as_of)
    # A batch run that builds millions of small acyclic tuples: the cyclic garbage
    # collector only costs time here.
    gc.disable()
    t0 = time.perf_counter()
    try:
        statement = evaluate(args.data_dir, as_of)
    except InvalidData as exc:
        print(f"invalid data: {exc}", file=sys.stderr)
        return 1
    t1 = time.perf_counter()
    n_payments = statement["_buckets"][2]
    read_done = statement.pop("_read_done")
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            write_statement(statement, f)
    else:
        write_statement(statement, sys.stdout)
    t2 = time.perf_counter()
    if args.timing:
        print(json.dumps({"read": read_done - t0, "evaluate": t1 - read_done, "write": t2 - t1,
                          "payments": n_payments}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
