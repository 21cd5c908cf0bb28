"""Invariants as properties: money, caps, splits, record order."""

from __future__ import annotations

import calendar
import datetime
import json
import random
from decimal import Decimal
from fractions import Fraction

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import pbrlang
from pbrlang.money import exact_sum, money_text, round_money, split
from pbrlang.statement import WHOLE, full_row, pence_text, pounds
from conftest import example

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WP = pbrlang.load(example("work-programme"))
GROUPS = WP.program.enums["payment_group"]

# ---- Work Programme records ---------------------------------------------------------------

day = st.dates(min_value=datetime.date(2011, 6, 1), max_value=datetime.date(2015, 6, 30))


@st.composite
def wp_tables(draw):
    n = draw(st.integers(min_value=0, max_value=8))
    participants, employment = [], []
    for i in range(n):
        pid = f"P{i:02d}"
        attached = draw(day)
        participants.append({"id": pid, "group": draw(st.sampled_from(GROUPS)), "attached_on": attached.isoformat()})
        for _ in range(draw(st.integers(min_value=0, max_value=4))):
            start = draw(st.dates(min_value=attached - datetime.timedelta(days=200),
                                  max_value=attached + datetime.timedelta(days=900)))
            length = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=700)))
            end = None if length is None else (start + datetime.timedelta(days=length)).isoformat()
            employment.append({"participant_id": pid, "start": start.isoformat(), "end": end})
    return {"participants": participants, "employment": employment}


@SETTINGS
@given(wp_tables(), st.randoms(use_true_random=False), day)
def test_record_order_does_not_change_the_statement(tables, rnd, as_of):
    first = WP.evaluate(tables, as_of=as_of).to_json()
    shuffled = {name: rnd.sample(rows, len(rows)) for name, rows in tables.items()}
    assert WP.evaluate(shuffled, as_of=as_of).to_json() == first


@SETTINGS
@given(wp_tables(), day)
def test_no_float_reaches_a_money_value(tables, as_of):
    statement = WP.evaluate(tables, as_of=as_of)
    for p in statement.payments:
        assert isinstance(p.amount, Decimal) and isinstance(p.tariff, Decimal)
        assert all(isinstance(v, Decimal) for _, v in p.funders)
        assert p.amount == p.amount.quantize(Decimal("0.01"))

    def no_float(text):
        raise AssertionError(f"a float in the statement: {text}")

    json.loads(statement.to_json(), parse_float=no_float)


@SETTINGS
@given(wp_tables(), day, day)
def test_a_later_as_of_date_never_loses_what_was_achieved_earlier(tables, a, b):
    early, late = min(a, b), max(a, b)
    def key(p):
        return (p.subject, p.outcome, p.date, p.occurrence)

    before = {key(p): p.amount for p in WP.evaluate(tables, as_of=early).payments}
    after = {key(p): p.amount for p in WP.evaluate(tables, as_of=late).payments}
    # The Work Programme's cap never binds, so every earlier payment is still there, unchanged.
    for k, amount in before.items():
        assert after.get(k) == amount


# ---- exact splits -------------------------------------------------------------------------


@st.composite
def shares(draw):
    count = draw(st.integers(min_value=1, max_value=5))
    cuts = sorted(draw(st.lists(st.integers(min_value=1, max_value=9999), min_size=count - 1, max_size=count - 1,
                                unique=True)))
    points = [b - a for a, b in zip([0] + cuts, cuts + [10000])]
    return tuple((f"F{i}", Fraction(p, 10000)) for i, p in enumerate(points))


@given(st.integers(min_value=0, max_value=10**90), shares(), st.integers(min_value=1, max_value=28))
def test_funder_shares_add_up_to_the_payment_at_any_size_whatever_the_callers_context(pence, parts, precision):
    """Each share is within a penny of its exact part and to the penny; together they are the payment."""
    import decimal

    amount = Decimal(pence_text(pence))
    with decimal.localcontext(decimal.Context(prec=precision)):
        result = split(amount, parts)
    assert sum(Fraction(v) for v in result.values()) == Fraction(amount)
    for name, fraction in parts:
        assert abs(Fraction(result[name]) - Fraction(amount) * fraction) < Fraction(1, 100)
        assert result[name].as_tuple().exponent == -2  # to the penny


@given(st.integers(min_value=-10**90, max_value=10**90), st.lists(st.integers(min_value=0, max_value=10**90)),
       st.integers(min_value=1, max_value=28))
def test_pence_become_pounds_exactly_whatever_their_size_and_the_callers_context(pence, more, precision):
    """A payment, a total or a cut of any size comes out of the statement to the penny: the caller's
    decimal context (28 digits by default, fewer here) never rounds it, nor does pbrlang's own."""
    import decimal

    with decimal.localcontext(decimal.Context(prec=precision)):
        as_pounds = pounds(pence)
        assert as_pounds == Decimal(pence_text(pence)) and as_pounds.as_tuple().exponent == -2
        assert money_text(as_pounds) == pence_text(pence)
        assert exact_sum(pounds(p) for p in more) == Decimal(pence_text(sum(more)))


@given(st.fractions(min_value=-10**6, max_value=10**6))
def test_rounding_a_fraction_agrees_with_decimal_rounding_when_exact(value):
    as_decimal = Decimal(value.numerator) / Decimal(value.denominator)
    assume(Fraction(as_decimal) == value)  # only values a Decimal holds exactly
    assert round_money(value, "half_up") == round_money(as_decimal, "half_up")
    assert abs(round_money(value, "half_up") - as_decimal) <= Decimal("0.005")


# ---- generated contracts: caps, ceilings and splits -------------------------------------------

KINDS = ["a", "b", "c"]


@st.composite
def capped_contracts(draw):
    """A contract with random tariffs, shares, caps and ceilings over a small event table."""
    funders = ["F0", "F1", "F2"]
    lines = ['contract "generated"', "rounding half_up"] + [f"funder {f}" for f in funders]
    lines += ["enum kind: a, b, c", "table people:", "  id: text key", "  joined_on: date",
              "table events:", "  person_id: people", "  kind: kind", "  date: date",
              "subject person: people"]
    for k in KINDS:
        price = draw(st.decimals(min_value=0, max_value=5000, places=2))
        parts = draw(shares())
        named = ", ".join(f"{funders[i]} {Decimal(f.numerator * 100) / f.denominator}%" for i, (_, f) in
                          enumerate(parts[:3]))
        if len(parts) > 3:  # keep to the three funders: fold the rest into the last
            rest = sum((f for _, f in parts[2:]), Fraction(0))
            named = ", ".join(f"{funders[i]} {Decimal(f.numerator * 100) / f.denominator}%" for i, (_, f) in
                              enumerate(parts[:2])) + f", F2 {Decimal(rest.numerator * 100) / rest.denominator}%"
        lines += [f"outcome got_{k}:",
                  f"  achieved on earliest e.date for e in events where e.kind = {k} and e.date >= joined_on",
                  f"  pays £{price}", f"  shares {named}"]
    caps = []
    if draw(st.booleans()):
        caps.append(("per_person", draw(st.decimals(min_value=0, max_value=8000, places=2)), "per person"))
    if draw(st.booleans()):
        caps.append(("whole_contract", draw(st.decimals(min_value=0, max_value=30000, places=2)), ""))
    if draw(st.booleans()):
        caps.append(("monthly", draw(st.decimals(min_value=0, max_value=6000, places=2)), "per month"))
    for name, limit, scope in caps:
        lines.append(f"cap {name}: £{limit} {scope}")
    ceilings = []
    if draw(st.booleans()):
        limit = draw(st.decimals(min_value=0, max_value=10000, places=2))
        action = draw(st.sampled_from(["overflow to F1", "unfunded"]))
        lines.append(f"ceiling f0_ceiling: £{limit} on F0, {action}")
        ceilings.append(("f0_ceiling", limit, "F0", action))
    if draw(st.booleans()):
        limit = draw(st.decimals(min_value=0, max_value=4000, places=2))
        lines.append(f"ceiling f2_yearly: £{limit} per financial_year on F2, unfunded")
        ceilings.append(("f2_yearly", limit, "F2", "yearly"))
    text = "\n".join(lines) + "\n"
    people, events = [], []
    for i in range(draw(st.integers(min_value=0, max_value=12))):
        joined = draw(st.dates(min_value=datetime.date(2019, 1, 1), max_value=datetime.date(2021, 12, 31)))
        people.append({"id": f"S{i:02d}", "joined_on": joined.isoformat()})
        for _ in range(draw(st.integers(min_value=0, max_value=5))):
            d = joined + datetime.timedelta(days=draw(st.integers(min_value=-30, max_value=700)))
            events.append({"person_id": f"S{i:02d}", "kind": draw(st.sampled_from(KINDS)), "date": d.isoformat()})
    return text, {"people": people, "events": events}, caps, ceilings


@SETTINGS
@given(capped_contracts(), st.randoms(use_true_random=False))
def test_caps_ceilings_and_splits_hold(generated, rnd):
    text, tables, caps, ceilings = generated
    contract = pbrlang.loads(text)
    as_of = datetime.date(2022, 12, 31)
    statement = contract.evaluate(tables, as_of=as_of)

    for p in statement.payments:
        # cuts plus paid equal the uncapped amount; funder shares add up to the payment
        assert p.amount + sum(c.amount for c in p.cuts) == p.tariff
        assert sum(v for _, v in p.funders) == p.amount
        assert p.amount >= 0 and all(v >= 0 for _, v in p.funders)

    # no cap is ever exceeded (caps count what was allowed, before unfunded shares)
    allowed = [(p, p.tariff - sum(c.amount for c in p.cuts if c.cap in {n for n, _, _ in caps})) for p in
               statement.payments]
    for name, limit, scope in caps:
        groups: dict = {}
        for p, a in allowed:
            key = {"per person": p.subject, "per month": p.period, "": ""}[scope]
            groups[key] = groups.get(key, Decimal(0)) + a
        assert all(v <= limit for v in groups.values()), name

    # no ceiling is ever exceeded
    for name, limit, funder, kind in ceilings:
        groups = {}
        for p in statement.payments:
            key = p.date.year - (p.date.month < 4) if kind == "yearly" else ""
            groups[key] = groups.get(key, Decimal(0)) + dict(p.funders).get(funder, Decimal(0))
        assert all(v <= limit for v in groups.values()), name

    # a subject that achieves nothing is paid nothing
    achievers = {e["person_id"] for e in tables["events"]}
    assert {p.subject for p in statement.payments} <= achievers

    # the statement does not depend on record order
    shuffled = {k: rnd.sample(v, len(v)) for k, v in tables.items()}
    assert contract.evaluate(shuffled, as_of=as_of).to_json() == statement.to_json()


@st.composite
def one_cap_contracts(draw):
    """One funder and one cap per person over every outcome (the Work Programme's shape, which
    evaluation takes by a lean path), with a recurring outcome and limits that often bite."""
    def amount(most):
        return f"£{draw(st.decimals(min_value=0, max_value=most, places=2))}"

    def cell(most):  # a tariff's cell: `none` (no payment; no limit) one time in four
        return "none" if draw(st.integers(0, 3)) == 0 else amount(most)

    # The cap's limit: an amount, a field, or a tariff's cell (which the lean path reads in pence).
    cap = draw(st.sampled_from([amount(3000), "limit", "ceiling[group, period(joined_on)]"])) + " per person"
    lines = ['contract "one-cap"', "rounding half_up", "funder F0", "enum kind: a, b",
             "band period:", "  early 2019-06-01 to 2020-06-30", "  late from 2020-07-01",
             "tariff by kind:", "  | kind | fee |", f"  | a | {cell(1500)} |", f"  | b | {cell(1500)} |",
             "tariff ceiling by kind and period:", "  | kind | early | late |",
             f"  | a | {cell(3000)} | {cell(3000)} |", f"  | b | {cell(3000)} | {cell(3000)} |",
             "table people:", "  id: text key", "  group: kind", "  joined_on: date", "  limit: optional money",
             "table events:", "  person_id: people", "  kind: kind", "  date: date",
             "table work:", "  person_id: people", "  start: date", "  end: optional date",
             "subject person: people",
             "let working = (spells from w.start to w.end for w in work) counted from joined_on"]
    # Definitions for each row of work, which the lean path reads through functions of the frame
    # (so it keeps one); a dozen of them, so their functions' names run past the lean path's locals'.
    derived = draw(st.integers(0, 12))
    lines += [f"let long_{j} of w in work = days_between(w.start, earlier(w.end, as_of)) >= {7 * j}"
              for j in range(derived)]
    for k in ("a", "b"):
        lines += [f"outcome got_{k}:",
                  f"  achieved on earliest e.date for e in events where e.kind = {k} and e.date >= joined_on",
                  f"  pays {draw(st.sampled_from([amount(1500), 'fee[group]']))}"]
    lines += [f"  when (count w in work where w.long_{j}) <= {draw(st.integers(0, 2))}" for j in range(derived)]
    lines += ["outcome kept:", f"  every {draw(st.integers(1, 6))} weeks after got_a while working continues, "
              f"at most {draw(st.integers(1, 12))} times", f"  pays £{draw(st.decimals(0, 400, places=2))}",
              f"cap limited: {cap}"]
    people, events, work = [], [], []
    for i in range(draw(st.integers(min_value=0, max_value=8))):
        joined = draw(st.dates(min_value=datetime.date(2019, 1, 1), max_value=datetime.date(2021, 6, 30)))
        limit = draw(st.one_of(st.none(), st.decimals(min_value=0, max_value=3000, places=2)))
        people.append({"id": f"S{i:02d}", "group": draw(st.sampled_from("ab")), "joined_on": joined.isoformat(),
                       "limit": None if limit is None else str(limit)})
        for _ in range(draw(st.integers(min_value=0, max_value=3))):
            # Often on a few shared days, so that one person's outcomes fall on one day together.
            offset = draw(st.one_of(st.sampled_from([0, 28, 56]), st.integers(min_value=-30, max_value=500)))
            d = joined + datetime.timedelta(days=offset)
            events.append({"person_id": f"S{i:02d}", "kind": draw(st.sampled_from("ab")), "date": d.isoformat()})
        for _ in range(draw(st.integers(min_value=0, max_value=2))):
            start = joined + datetime.timedelta(days=draw(st.integers(min_value=-30, max_value=400)))
            length = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=300)))
            work.append({"person_id": f"S{i:02d}", "start": start.isoformat(),
                         "end": None if length is None else (start + datetime.timedelta(days=length)).isoformat()})
    return "\n".join(lines) + "\n", {"people": people, "events": events, "work": work}


@SETTINGS
@given(one_cap_contracts())
def test_one_cap_over_every_outcome_cuts_as_the_general_path_does(generated):
    from pbrlang import compiler, evaluator, parallel
    from pbrlang.money import exact_context

    text, tables = generated
    contract = pbrlang.loads(text)
    as_of = datetime.date(2022, 6, 30)
    statement = contract.evaluate(tables, as_of=as_of)
    for p in statement.payments:
        assert p.amount + sum(c.amount for c in p.cuts) == p.tariff
        assert p.amount >= 0 and dict(p.funders) == {"F0": p.amount}
    # The same statement from the general per-subject path, which applies caps claim by claim.
    import decimal

    dataset = contract.load_data(tables)
    with decimal.localcontext(exact_context()):
        run = evaluator.Evaluation(contract.compiled, dataset, as_of)
        # The compiled lean path is what the statement above came from; it makes a frame for each
        # subject only when something it calls reads one.
        assert run.simple and run.one_cap is not None and contract.compiled.lean is not None
        lean = contract.compiled.source[contract.compiled.source.index("def subject(s_):"):]
        assert ("fr = template[:]" in lean) == ("long_0" in text)
        run.simple = False
        general = parallel.statement(run, 1)
        # A tracing build has no compiled lean function: its first pass makes the same statement.
        traced = evaluator.Evaluation(compiler.compile_program(contract.program, trace=True), dataset, as_of)
        assert traced.compiled.lean is None and traced.one_cap is not None
        assert parallel.statement(traced, 1).to_json() == statement.to_json()
    assert general.to_json() == statement.to_json()
    # The lean path keeps a payment paid whole as a five-field row; everything reads it as the full
    # row the general path makes: every form, the payments, and totals summed again from the rows.
    assert all(len(r) > WHOLE for r in general.rows)
    assert [full_row(r, ("F0",)) for r in statement.rows] == list(general.rows)
    assert statement.payments == general.payments
    assert (statement.to_csv(), statement.to_table()) == (general.to_csv(), general.to_table())
    assert statement.evolve(rows=statement.rows).to_json() == general.to_json()


@st.composite
def runs_and_holidays(draw):
    """People with spells of work (some open, overlapping or touching), a number of days each must
    last, and holidays that do not count, or none."""
    start = datetime.date(2020, 1, 1)
    day = lambda n: (start + datetime.timedelta(days=n)).isoformat()  # noqa: E731
    people, work, holidays = [], [], []
    for i in range(draw(st.integers(min_value=1, max_value=6))):
        need = draw(st.integers(0, 40))
        people.append({"id": f"P{i}", "joined_on": day(draw(st.integers(0, 60))), "need": need})
        for _ in range(draw(st.integers(min_value=0, max_value=4))):
            first = draw(st.integers(0, 200))
            # Often a spell of just the days needed, or one day fewer or more.
            length = draw(st.one_of(st.none(), st.integers(0, 60),
                                    st.sampled_from([max(need - 2, 0), max(need - 1, 0), need])))
            work.append({"person_id": f"P{i}", "start": day(first),
                         "end": None if length is None else day(first + length)})
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        first = draw(st.integers(0, 200))
        holidays.append({"start": day(first), "end": day(first + draw(st.integers(0, 20)))})
    return draw(st.booleans()), {"people": people, "work": work, "holidays": holidays}


@SETTINGS
@given(runs_and_holidays())
def test_a_run_read_in_the_generated_steps_agrees_with_the_spells_it_came_from(generated):
    """The ordinary build reads the first day a run lasts, and the run holding a day, straight off
    the runs where no day is skipped; the tracing build asks the spells. Both find the same days."""
    import decimal

    from pbrlang import compiler, evaluator
    from pbrlang.money import exact_context

    skipping, tables = generated
    contract = pbrlang.loads(f"""contract "runs"
funder F
table people:
  id: text key
  joined_on: date
  need: integer
table holidays:
  start: date
  end: date
table work:
  person_id: people
  start: date
  end: optional date
subject person: people
let holiday_days = spells from h.start to h.end for h in holidays
let working = (spells from w.start to w.end for w in work) counted from joined_on
let counted = {"working not counting holiday_days" if skipping else "working"}
outcome lasted:
  achieved on first day counted lasts need days
  pays £10.00
outcome kept:
  every 2 weeks after lasted while counted continues, at most 5 times
  pays £1.00
""")
    # Written out only where no day is skipped; otherwise the spells are asked.
    assert ("first_day_lasting_days" in contract.compiled.source) == skipping
    dataset = contract.load_data(tables)
    as_of = datetime.date(2020, 12, 31)
    traced = compiler.compile_program(contract.program, trace=True)
    with decimal.localcontext(exact_context()):
        ordinary = evaluator.Evaluation(contract.compiled, dataset, as_of)
        tracing = evaluator.Evaluation(traced, dataset, as_of)
        for row in ordinary.subject_rows:
            assert ordinary.subject(row) == tracing.subject(row)


# ---- cohorts ---------------------------------------------------------------------------------

PSIB = pbrlang.load(example("peterborough-sib"))


@st.composite
def cohort_tables(draw):
    prisoners, offences = [], []
    rnd = random.Random(draw(st.integers(min_value=0, max_value=10**6)))
    for i in range(draw(st.integers(min_value=1, max_value=40))):
        released = datetime.date(2010, 9, 9) + datetime.timedelta(days=rnd.randrange(0, 1390))
        pid = f"P{i:04d}"
        prisoners.append({"id": pid, "released_on": released.isoformat(), "sentence_months": rnd.randrange(0, 14)})
        for _ in range(rnd.randrange(0, 4)):
            offence = released + datetime.timedelta(days=rnd.randrange(-30, 400))
            conviction = offence + datetime.timedelta(days=rnd.randrange(0, 300))
            offences.append({"prisoner_id": pid, "offence_date": offence.isoformat(),
                             "conviction_date": conviction.isoformat() if rnd.random() < 0.9 else None})
    return {"prisoners": prisoners, "offences": offences}


def _figures(statement):
    return statement.to_dict()["cohorts"]


@SETTINGS
@given(cohort_tables(), st.integers(min_value=1, max_value=30))
def test_members_who_do_not_reoffend_lower_the_rate(tables, extra):
    as_of = datetime.date(2017, 7, 31)
    before = _figures(PSIB.evaluate(tables, as_of=as_of))["cohort_1"]
    more = dict(tables)
    more["prisoners"] = tables["prisoners"] + [
        {"id": f"N{i:04d}", "released_on": "2011-01-01", "sentence_months": 3} for i in range(extra)
    ]
    after = _figures(PSIB.evaluate(more, as_of=as_of))["cohort_1"]
    assert after["size"] == before["size"] + extra and after["events"] == before["events"]
    if before["size"] and before["events"]:
        assert Fraction(after["rate_per_100"]) <= Fraction(before["rate_per_100"])
        assert Fraction(after["events"], after["size"]) < Fraction(before["events"], before["size"])


@SETTINGS
@given(cohort_tables())
def test_pooled_payment_is_never_negative_nor_over_the_cap(tables):
    statement = PSIB.evaluate(tables, as_of=datetime.date(2017, 7, 31))
    assert all(p.amount >= 0 for p in statement.payments)
    assert statement.total <= Decimal("8000000.00")
    final = [p for p in statement.payments if p.outcome == "final_payment"]
    assert len(final) <= 1


def _month_end(d: datetime.date) -> datetime.date:
    return d.replace(day=calendar.monthrange(d.year, d.month)[1])


@given(st.dates() | st.dates().map(_month_end),  # month ends: where the rule has something to do
       st.integers(min_value=-24, max_value=24) | st.integers(min_value=-12 * 10_000, max_value=12 * 10_000))
def test_a_date_months_later_is_the_same_day_or_the_months_last(start, months):
    """add_months keeps the day, or takes the month's last day when the month is shorter; a date
    beyond the calendar (years 1 to 9999) is an error, never a wrapped or clamped year."""
    from pbrlang.calendar import add_months

    year, month0 = divmod(start.year * 12 + start.month - 1 + months, 12)
    if not 1 <= year <= 9999:
        try:
            add_months(start.toordinal(), months)
        except OverflowError:
            return
        raise AssertionError("a date outside the calendar was made")
    expected = datetime.date(year, month0 + 1, min(start.day, calendar.monthrange(year, month0 + 1)[1]))
    assert add_months(start.toordinal(), months) == expected.toordinal()


def test_february_follows_the_century_rules():
    from pbrlang.calendar import add_months

    for year, last in ((1900, 28), (2000, 29), (2024, 29), (2100, 28)):
        assert add_months(datetime.date(year, 1, 31).toordinal(), 1) == datetime.date(year, 2, last).toordinal()
