"""`pbr explain` and `pbr eval --explain`: every figure explains itself."""

from __future__ import annotations

import datetime
import json

import pbrlang
from pbrlang.explain import explain
from conftest import example, golden, pbr, sample, ROOT

WP = example("work-programme")


def _explain(scheme, subject, as_of):
    contract = pbrlang.load(example(scheme))
    return explain(contract, contract.load_data([sample(scheme)]), datetime.date.fromisoformat(as_of), subject)


def test_paid_outcomes_show_rule_tariff_and_evidence():
    found = _explain("work-programme", "P02", "2014-06-30")
    job = {o.outcome: o for o in found.outcomes}["job_outcome"]
    assert job.status == "paid" and job.achieved_on == datetime.date(2012, 10, 8)
    assert [e.row for e in job.evidence] == [3, 4, 5]
    assert {"tariff": "job_outcome_fee", "keys": ["JSA_25_PLUS"], "value": "1200.00"}.items() <= job.tariffs[1].items()
    assert any("reached on 2012-10-08" in line for line in job.progress)
    sustainment = {o.outcome: o for o in found.outcomes}["sustainment"]
    assert len(sustainment.payments) == 3
    assert any("stopped for good" in line and "2013-01-15" in line for line in sustainment.progress)
    assert found.total == sum(p.amount for o in found.outcomes for p in o.payments)


def test_not_achieved_outside_the_window_and_pending_in_progress():
    p06 = {o.outcome: o for o in _explain("work-programme", "P06", "2014-06-30").outcomes}
    assert p06["job_outcome"].status == "not achieved"
    assert any("2013-09-29 (closed)" in line for line in p06["job_outcome"].progress)
    p09 = {o.outcome: o for o in _explain("work-programme", "P09", "2014-06-30").outcomes}
    assert p09["job_outcome"].status == "pending"
    assert any("still going at 2014-06-30" in line and "90 more" in line for line in p09["job_outcome"].progress)
    assert p09["sustainment"].status == "pending"


def test_cut_by_a_cap_names_the_cap_and_the_amount():
    found = {o.outcome: o for o in _explain("recovery-partnership", "E24", "2022-03-31").outcomes}
    housing = found["housing_secured"]
    assert housing.status == "cut"
    (payment,) = housing.payments
    assert [(c.cap, str(c.amount)) for c in payment.cuts] == [("participant_cap", "325.00")]
    assert dict(payment.funders) == {"LCF": payment.funders[0][1], "LA": payment.funders[1][1],
                                     "PCC": payment.funders[2][1], "DWP": payment.funders[3][1]}
    assert [name for name, _ in housing.caps] == ["participant_cap"]


def test_excluded_by_an_alternative():
    found = {o.outcome: o for o in _explain("troubled-families", "F10", "2015-06-30").outcomes}
    assert found["education_and_crime"].status == "excluded"
    assert "continuous_employment" in found["education_and_crime"].excluded_by


def test_not_eligible_subject():
    found = _explain("troubled-families", "F08", "2015-06-30")
    assert not found.eligible and {o.status for o in found.outcomes} == {"not eligible"}


def test_explain_text_is_golden_for_a_disputed_claim():
    out = pbr("explain", WP.relative_to(ROOT), "--data", sample("work-programme").relative_to(ROOT),
              "--as-of", "2014-06-30", "--subject", "P13")
    assert out.returncode == 0, out.stderr
    golden(ROOT / "tests" / "golden" / "explain-work-programme-P13.txt", out.stdout)


def test_explain_json_follows_its_documented_shape():
    out = pbr("explain", WP, "--data", sample("work-programme"), "--as-of", "2014-06-30", "--subject", "P08",
              "--format", "json")
    assert out.returncode == 0, out.stderr
    tree = json.loads(out.stdout)
    assert set(tree) == {"contract", "as_of", "subject", "record", "eligible", "eligible_rule", "total", "caps",
                         "outcomes"}
    assert tree["caps"] == [{"cap": "participant_cap", "limit": "3600.00", "used": "1530.00", "headroom": "2070.00",
                             "location": str(WP) + ":104"}]
    for o in tree["outcomes"]:
        assert set(o) == {"outcome", "status", "achieved_on", "rule", "conditions", "achieved_rule", "definitions",
                          "tariffs", "bands", "evidence", "progress", "excluded_by", "payments", "caps"}
        assert o["status"] in {"paid", "cut", "not achieved", "pending", "excluded", "not eligible", "no payment"}


def test_unknown_subject_is_a_clear_error():
    out = pbr("explain", WP, "--data", sample("work-programme"), "--as-of", "2014-06-30", "--subject", "P99")
    assert out.returncode == 1 and "no subject `P99`" in out.stderr and "Traceback" not in out.stderr


def test_eval_explain_adds_a_reason_to_every_payment():
    out = pbr("eval", WP, "--data", sample("work-programme"), "--as-of", "2014-06-30", "--format", "json", "--explain")
    assert out.returncode == 0, out.stderr
    payments = json.loads(out.stdout)["payments"]
    assert all(p["reason"]["rule"].startswith(str(WP)) for p in payments)
    job = next(p for p in payments if p["subject"] == "P02" and p["outcome"] == "job_outcome")
    assert job["reason"]["evidence"] == [{"table": "employment", "row": 3}, {"table": "employment", "row": 4},
                                         {"table": "employment", "row": 5}]
