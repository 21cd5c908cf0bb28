"""Language features not covered by the example schemes, each pinned down on small data."""

from __future__ import annotations

from decimal import Decimal

import pbrlang
from conftest import ROOT

HEADER = """contract "features"
funder X
table people:
  id: text key
  joined_on: date
table events:
  person_id: people
  kind: text
  date: date
  score: integer
subject person: people
"""


def _run(body: str, people, events, as_of="2021-12-31"):
    contract = pbrlang.loads(HEADER + body)
    return contract.evaluate({"people": people, "events": events}, as_of=as_of)


def test_mean_is_exact_until_the_payment():
    contract = pbrlang.load(ROOT / "tests" / "contracts" / "features" / "mean.pbr")
    st = contract.evaluate({"people": [{"id": "a"}, {"id": "b"}, {"id": "c"}],
                            "scores": [{"person_id": "a", "score": 2}, {"person_id": "a", "score": 3},
                                       {"person_id": "a", "score": 3}, {"person_id": "b", "score": 1}]},
                           as_of="2020-12-31")
    assert [(p.subject, p.amount) for p in st.payments] == [("a", Decimal("266.67"))]  # 100 x 8/3, half up


def test_requires_an_earlier_outcome():
    body = """
outcome first_job:
  achieved on earliest e.date for e in events where e.kind = "job"
  pays £100.00
outcome promotion:
  achieved on earliest e.date for e in events where e.kind = "promotion"
  requires first_job
  pays £50.00
"""
    people = [{"id": "a", "joined_on": "2020-01-01"}, {"id": "b", "joined_on": "2020-01-01"}]
    events = [
        {"person_id": "a", "kind": "job", "date": "2020-02-01", "score": 0},
        {"person_id": "a", "kind": "promotion", "date": "2020-05-01", "score": 0},
        {"person_id": "b", "kind": "promotion", "date": "2020-05-01", "score": 0},  # no job: not paid
    ]
    st = _run(body, people, events)
    assert [(p.subject, p.outcome) for p in st.payments] == [("a", "first_job"), ("a", "promotion")]


def test_cap_per_month_cuts_in_payment_order_and_reports_use():
    body = """
outcome start:
  achieved on joined_on
  pays £300.00
cap monthly: £500.00 per month
"""
    people = [{"id": i, "joined_on": d} for i, d in [("a", "2020-01-05"), ("b", "2020-01-05"), ("c", "2020-01-31"),
                                                       ("d", "2020-02-01")]]
    st = _run(body, people, [])
    assert [(p.subject, str(p.amount)) for p in st.payments] == [("a", "300.00"), ("b", "200.00"), ("c", "0.00"),
                                                                 ("d", "300.00")]
    caps = st.to_dict()["caps"]["monthly"]
    assert caps == {"2020-01": {"limit": "500.00", "used": "500.00", "headroom": "0.00"},
                    "2020-02": {"limit": "500.00", "used": "300.00", "headroom": "200.00"}}


def test_an_evaluation_step_budget_reports_the_subject(monkeypatch):
    from pbrlang import compiler

    body = """
outcome pairs:
  when (count a in events where (count b in events where b.date = a.date) > 1) > 0
  achieved on joined_on
  pays £1.00
"""
    people = [{"id": "big", "joined_on": "2020-01-01"}, {"id": "small", "joined_on": "2020-01-01"}]
    events = [{"person_id": "big", "kind": "x", "date": "2020-01-02", "score": i} for i in range(300)]
    events += [{"person_id": "small", "kind": "x", "date": "2020-01-02", "score": i} for i in range(2)]
    monkeypatch.setattr(compiler, "MAX_EVALUATION_STEPS", 10_000)
    try:
        _run(body, people, events)
    except pbrlang.EvaluationErrors as err:
        assert [e.subject for e in err.errors] == ["big"]
        assert "evaluation steps" in str(err)
    else:
        raise AssertionError("the step budget did not stop the subject")
    statement = pbrlang.loads(HEADER + body).evaluate({"people": people, "events": events}, as_of="2021-12-31",
                                                     exclude_invalid=True)
    assert [s for s, _ in statement.excluded] == ["big"] and [p.subject for p in statement.payments] == ["small"]


def test_a_tariff_cell_too_large_for_pence_stops_only_the_subjects_that_meet_it():
    """The lean path reads tariffs in pence converted when compiled; a cell that cannot be (more
    digits than an exact amount holds) leaves that tariff to the general route, which refuses it
    for the subject paid from it, by name, as it always has; other subjects are evaluated."""
    text = """contract "huge"
funder F
enum kind: a, b
table people:
  id: text key
  group: kind
  joined_on: date
subject person: people
tariff by kind:
  | kind | fee |
  | a    | £%s.00 |
  | b    | £1.00 |
outcome joined:
  achieved on joined_on
  pays fee[group]
cap c: fee[group] per person
""" % ("9" * 70)
    contract = pbrlang.loads(text)
    assert contract.compiled.lean is not None
    people = [{"id": "P1", "group": "b", "joined_on": "2020-01-01"},
              {"id": "P2", "group": "a", "joined_on": "2020-01-01"}]
    statement = contract.evaluate({"people": people[:1]}, as_of="2020-06-30")
    assert [(p.subject, str(p.amount)) for p in statement.payments] == [("P1", "1.00")]
    try:
        contract.evaluate({"people": people}, as_of="2020-06-30")
    except pbrlang.EvaluationErrors as err:
        assert [e.subject for e in err.errors] == ["P2"]
        assert [(e.message, e.span.line) for e in err.errors] == [
            ("outcome `joined` would pay an amount too large to be exact (more than 60 digits)", 13)]
    else:
        raise AssertionError("a cell too large for pence was paid")


_LARGE = """
outcome joined:
  achieved on joined_on
  pays £%s.00 * 1000
cap c: %s per person
"""
_ONE_PERSON = {"people": [{"id": "P1", "joined_on": "2020-01-01"}], "events": []}


def _files(tmp_path, body: str) -> list[str]:
    """The contract HEADER + body and P1's data as files: `pbr eval`'s arguments."""
    (tmp_path / "contract.pbr").write_text(HEADER + body)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "people.csv").write_text("id,joined_on\nP1,2020-01-01\n")
    (tmp_path / "data" / "events.csv").write_text("person_id,kind,date,score\n")
    return ["eval", str(tmp_path / "contract.pbr"), "--data", str(tmp_path / "data"), "--as-of", "2020-06-30"]


def test_a_payment_beyond_28_digits_is_exact_in_the_statement_and_its_explanation():
    """Python's default decimal context holds 28 digits; a statement's amounts are never rounded by it."""
    from pbrlang import explain

    nines = "9" * 58
    contract = pbrlang.loads(HEADER + _LARGE % (nines, "£" + nines + ".00"))
    statement = contract.evaluate(_ONE_PERSON, as_of="2020-06-30")
    (payment,) = statement.payments
    assert payment.tariff == Decimal(nines + "000.00")
    assert payment.amount == statement.total == Decimal(nines + ".00")
    assert payment.cuts[0].amount == Decimal(f"{int(nines) * 1000 - int(nines)}.00")  # not Decimal's 28 digits
    found = explain.explain(contract, contract.load_data(_ONE_PERSON), statement.as_of, "P1")
    assert found.total == Decimal(nines + ".00")
    assert "headroom £0.00" in found.to_text()


def test_a_limit_too_large_to_be_exact_is_an_evaluation_error_naming_the_cap(tmp_path, capsys):
    from pbrlang.cli import run

    body = _LARGE % ("1", "£" + "9" * 70 + ".00")
    message = "`c` would limit to an amount too large to be exact (more than 60 digits)"
    try:
        pbrlang.loads(HEADER + body, "contract.pbr").evaluate(_ONE_PERSON, as_of="2020-06-30")
    except pbrlang.EvaluationError as err:
        assert (err.message, err.span.line) == (message, HEADER.count("\n") + 5)
    else:
        raise AssertionError("a limit too large for pence was applied")
    assert run(_files(tmp_path, body)) == 1
    err = capsys.readouterr().err
    assert message in err and "internal error" not in err


def test_every_subject_whose_outcome_would_pay_a_negative_amount_is_reported():
    # The same negative amount for three people: each is refused, not only the first one met.
    body = """
outcome refund:
  achieved on joined_on
  pays £1.00 - £3.50
"""
    people = [{"id": p, "joined_on": "2020-01-01"} for p in ("a", "b", "c")]
    try:
        _run(body, people, [])
    except pbrlang.EvaluationErrors as err:
        assert [e.subject for e in err.errors] == ["a", "b", "c"]
        assert all("negative amount (-2.50)" in str(e) for e in err.errors)
    else:
        raise AssertionError("a negative payment was not refused")
    statement = pbrlang.loads(HEADER + body).evaluate({"people": people, "events": []}, as_of="2021-12-31",
                                                     exclude_invalid=True)
    assert [s for s, _ in statement.excluded] == ["a", "b", "c"] and statement.payments == ()


GUARDS = """contract "guards"
rounding half_up
funder F
table people:
  id: text key
  joined_on: date
  left_on: optional date
table work:
  person_id: people
  start: date
  end: optional date
subject person: people
band year:
  first  2020-01-01 to 2020-12-31
  second from 2021-01-01
tariff by year:
  | year   | joined_fee | left_fee |
  | first  | £100.00    | £10.00   |
  | second | £200.00    | £20.00   |
let working = (spells from w.start to w.end for w in work) counted from joined_on
let leaving = (spells from w.start to w.end for w in work) counted from left_on
outcome joined:
  when joined_on <= 2021-06-30
  achieved on joined_on
  pays joined_fee[year(joined_on)]
outcome left:
  when left_on <= 2021-06-30
  achieved on left_on
  pays left_fee[year(left_on)]
outcome settled:
  achieved on first day working lasts 4 weeks
  when first day working lasts 4 weeks within 26 weeks of joined_on
  pays £50.00
outcome settled_after_leaving:
  achieved on first day leaving lasts 4 weeks
  when first day leaving lasts 4 weeks within 26 weeks of left_on
  pays £5.00
"""


def test_a_required_field_is_never_tested_for_none_and_an_optional_one_always_is():
    contract = pbrlang.loads(GUARDS)
    source = contract.compiled.source
    # joined_on (field 1) is required: loading refuses a record without it, so no test for none.
    assert "s_[1] is None" not in source and "s_[1] is not None" not in source
    assert "s_[2] is None" in source and "s_[2] is not None" in source  # left_on may be empty
    people = [{"id": "A", "joined_on": "2020-03-01", "left_on": "2020-09-01"},
              {"id": "B", "joined_on": "2021-02-01", "left_on": None}]
    work = [{"person_id": "A", "start": "2020-03-10", "end": None},
            {"person_id": "B", "start": "2021-02-01", "end": "2021-02-10"}]
    statement = contract.evaluate({"people": people, "work": work}, as_of="2021-06-30")
    assert [(p.subject, p.outcome, p.date.isoformat(), p.amount) for p in statement.payments] == [
        ("A", "joined", "2020-03-01", Decimal("100.00")),
        ("A", "settled", "2020-04-06", Decimal("50.00")),  # 10 March + 27 days
        ("A", "left", "2020-09-01", Decimal("10.00")),
        ("A", "settled_after_leaving", "2020-09-28", Decimal("5.00")),  # counted from 1 September
        ("B", "joined", "2021-02-01", Decimal("200.00")),  # B left no date: nothing counted from it
    ]


def test_a_percentage_and_a_paid_amount_beyond_28_digits_are_read_exactly(tmp_path):
    """A percentage in the contract, and a previous statement's amounts (`--paid`), are exact at any size."""
    import json

    from pbrlang.cli import run

    args = _files(tmp_path, "outcome joined:\n  achieved on joined_on\n"
                            "  pays £1.00 * 1234567890123456789012345678901.25%\n")
    args += ["--format", "json"]
    assert run(args + ["--output", str(tmp_path / "one.json")]) == 0
    one = json.loads((tmp_path / "one.json").read_text())
    assert one["total"] == "12345678901234567890123456789.01"  # £1 x 1.2345...0125 x 10^29 %, to the penny
    assert run(args + ["--paid", str(tmp_path / "one.json"), "--output", str(tmp_path / "two.json")]) == 0
    ledger = json.loads((tmp_path / "two.json").read_text())["ledger"]
    assert (ledger["previously_paid"], ledger["now_due"]) == ("12345678901234567890123456789.01", "0.00")
