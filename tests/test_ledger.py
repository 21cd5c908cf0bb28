"""`pbr eval --paid`: nothing is paid twice across runs; clawbacks are stated."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal

from conftest import example, pbr, sample

WP = example("work-programme")


def _eval(tmp_path, name, as_of, data=None, paid=None):
    out = tmp_path / name
    args = ["eval", WP, "--data", data or sample("work-programme"), "--as-of", as_of, "--format", "json",
            "--output", out]
    if paid:
        args += ["--paid", paid]
    result = pbr(*args)
    assert result.returncode == 0, result.stderr
    return out, json.loads(out.read_text())


def test_a_later_run_pays_only_what_is_new(tmp_path):
    first, one = _eval(tmp_path, "one.json", "2013-06-30")
    second, two = _eval(tmp_path, "two.json", "2014-06-30", paid=first)
    ledger = two["ledger"]
    assert Decimal(ledger["previously_paid"]) == Decimal(one["total"])
    assert Decimal(ledger["now_due"]) == Decimal(two["total"]) - Decimal(one["total"])
    assert ledger["withdrawn"] == [] and ledger["clawback"] == "0.00"
    assert sum(Decimal(p["now_due"]) for p in two["payments"]) == Decimal(ledger["now_due"])
    # the new statement is the next ledger: evaluating again finds nothing due
    _, three = _eval(tmp_path, "three.json", "2014-06-30", paid=second)
    assert three["ledger"]["now_due"] == "0.00"
    assert all(p["now_due"] == "0.00" for p in three["payments"])
    # and the same ledger twice gives the same figures
    _, again = _eval(tmp_path, "again.json", "2014-06-30", paid=first)
    assert again == two | {"ledger": again["ledger"]} and again["ledger"] == two["ledger"] | {"file": str(first)}


def test_corrected_data_gives_a_clawback(tmp_path):
    paid, before = _eval(tmp_path, "paid.json", "2014-06-30")
    corrected = tmp_path / "corrected"
    shutil.copytree(sample("work-programme"), corrected)
    rows = (corrected / "employment.csv").read_text().splitlines()
    # P02 turns out never to have been in work: the job outcome and sustainment were not earned.
    (corrected / "employment.csv").write_text("\n".join(r for r in rows if not r.startswith("P02,")) + "\n")
    _, after = _eval(tmp_path, "after.json", "2014-06-30", data=corrected, paid=paid)
    withdrawn = {(w["subject"], w["outcome"], w["occurrence"]) for w in after["ledger"]["withdrawn"]}
    assert ("P02", "job_outcome", 0) in withdrawn
    assert Decimal(after["ledger"]["clawback"]) > 0
    assert Decimal(after["ledger"]["now_due"]) == Decimal(after["total"]) - Decimal(before["total"])


def test_a_broken_or_foreign_ledger_is_refused(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    out = pbr("eval", WP, "--data", sample("work-programme"), "--as-of", "2014-06-30", "--format", "json",
              "--paid", bad)
    assert out.returncode == 1 and "is not a JSON statement" in out.stderr and "Traceback" not in out.stderr
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"contract": "innovation-fund", "payments": []}))
    out = pbr("eval", WP, "--data", sample("work-programme"), "--as-of", "2014-06-30", "--paid", other)
    assert out.returncode == 1 and "not `work-programme`" in out.stderr


def test_a_paid_amount_in_exponent_form_is_refused_not_expanded(tmp_path):
    """A statement writes amounts as digits; `1e999999999999` would ask for a trillion digits."""
    one, first = _eval(tmp_path, "one.json", "2013-06-30")
    first["payments"][0]["amount"] = "1e999999999999"
    one.write_text(json.dumps(first))
    out = pbr("eval", WP, "--data", sample("work-programme"), "--as-of", "2014-06-30", "--format", "json",
              "--paid", one)
    assert out.returncode == 1 and "'1e999999999999' is not an amount in pounds and pence" in out.stderr


def test_a_paid_occurrence_that_is_not_a_whole_number_is_refused(tmp_path):
    one, first = _eval(tmp_path, "one.json", "2013-06-30")
    for bad in ("x", 1.5, -1):
        first["payments"][0]["occurrence"] = bad
        one.write_text(json.dumps(first))
        out = pbr("eval", WP, "--data", sample("work-programme"), "--as-of", "2014-06-30", "--paid", one)
        assert out.returncode == 1 and f"payment 1: occurrence {bad} is not a whole number" in out.stderr, out.stderr
