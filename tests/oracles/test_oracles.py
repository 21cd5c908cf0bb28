"""Tests of the reference oracles and the data generators.

* each oracle reproduces its scheme's sample/expected.json exactly;
* the oracles read JSON Lines as well as CSV;
* generated data is deterministic for a seed, valid, and rich enough that the
  caps and ceilings bind;
* each oracle runs on generated data and its statement is self-consistent;
* the subtle rules are cross-checked against deliberately naive day-by-day
  re-implementations on generated data;
* benchmarks/baseline_wp.py agrees with the work-programme oracle.
"""

from __future__ import annotations

import collections
import csv
import datetime
import importlib.util
import io
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

try:
    from . import common, generate
    from . import innovation_fund, peterborough_sib, recovery_partnership, troubled_families, work_programme
except ImportError:  # imported outside its package (e.g. pytest --import-mode=importlib)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.oracles import common, generate  # type: ignore[no-redef]
    from tests.oracles import (  # type: ignore[no-redef]
        innovation_fund,
        peterborough_sib,
        recovery_partnership,
        troubled_families,
        work_programme,
    )

REPO = Path(__file__).resolve().parents[2]
SCHEMES_DIR = Path(__file__).resolve().parents[3] / "shared" / "schemes"

ORACLES = {
    "work-programme": work_programme,
    "innovation-fund": innovation_fund,
    "troubled-families": troubled_families,
    "recovery-partnership": recovery_partnership,
    "peterborough-sib": peterborough_sib,
}
OUTCOME_ORDER = {
    "work-programme": work_programme.OUTCOMES,
    "innovation-fund": innovation_fund.OUTCOME_ORDER,
    "troubled-families": troubled_families.OUTCOMES,
    "recovery-partnership": recovery_partnership.OUTCOMES,
    "peterborough-sib": peterborough_sib.OUTCOMES,
}
RECURRING = {"work-programme": {"sustainment"}}
# sizes for the generated-data tests: big enough for the caps to bind where noted
GENERATED_N = {
    "work-programme": 400,
    "innovation-fund": 300,
    "troubled-families": 300,
    "recovery-partnership": 700,
    "peterborough-sib": 400,
}

D = datetime.date.fromisoformat


def sample_dir(scheme: str) -> Path:
    return SCHEMES_DIR / scheme / "sample"


def roundtrip(statement: dict) -> dict:
    """The statement as a consumer reads it: through JSON."""
    return json.loads(json.dumps(statement))


def expected_for(scheme: str) -> dict:
    return json.loads((sample_dir(scheme) / "expected.json").read_text(encoding="utf-8"))


_generated_cache: dict = {}


def generated(scheme: str, tmp_path_factory, n: int | None = None, seed: int = 0) -> Path:
    key = (scheme, n, seed)
    if key not in _generated_cache:
        out = tmp_path_factory.mktemp(f"{scheme}-{seed}")
        generate.generate(scheme, out, GENERATED_N[scheme] if n is None else n, seed)
        _generated_cache[key] = out
    return _generated_cache[key]


# --------------------------------------------------------------------------- samples


@pytest.mark.parametrize("scheme", sorted(ORACLES))
def test_sample_reproduces_expected(scheme):
    expected = expected_for(scheme)
    got = roundtrip(ORACLES[scheme].evaluate(sample_dir(scheme), D(expected["as_of"])))
    for key in ("contract", "as_of", "currency", "total", "by_outcome", "by_funder", "by_period"):
        assert got[key] == expected[key], key
    assert len(got["payments"]) == len(expected["payments"])
    for i, (g, e) in enumerate(zip(got["payments"], expected["payments"])):
        assert g == e, f"payment {i}"
    assert got == expected  # including the scheme's extra top-level fields


@pytest.mark.parametrize("scheme", sorted(ORACLES))
def test_sample_as_jsonl(scheme, tmp_path):
    """README: a table may be a JSON Lines file with the same field names."""
    for path in sample_dir(scheme).glob("*.csv"):
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        with open(tmp_path / f"{path.stem}.jsonl", "w", encoding="utf-8") as out:
            for row in rows:
                typed = {}
                for k, v in row.items():  # write typed JSON values where natural
                    if v == "":
                        typed[k] = None
                    elif v in ("true", "false"):
                        typed[k] = v == "true"
                    elif k in ("exclusions", "sentence_months", "level"):
                        typed[k] = int(v)
                    else:
                        typed[k] = v
                out.write(json.dumps(typed) + "\n")
    expected = expected_for(scheme)
    assert roundtrip(ORACLES[scheme].evaluate(tmp_path, D(expected["as_of"]))) == expected


@pytest.mark.parametrize("scheme", sorted(ORACLES))
def test_cli_prints_statement(scheme):
    module = "tests.oracles." + scheme.replace("-", "_")
    expected = expected_for(scheme)
    proc = subprocess.run(
        [sys.executable, "-m", module, str(sample_dir(scheme)), expected["as_of"]],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(proc.stdout) == expected


# --------------------------------------------------------------------------- helpers


def test_add_months_clamps_to_month_end():
    assert common.add_months(D("2020-02-29"), 12) == D("2021-02-28")
    assert common.add_months(D("2019-08-31"), 12) == D("2020-08-31")
    assert common.add_months(D("2013-01-31"), 3) == D("2013-04-30")
    assert common.add_months(D("2011-08-31"), 18) == D("2013-02-28")
    assert common.add_months(D("2013-08-31"), -6) == D("2013-02-28")
    assert common.add_months(D("2012-01-15"), -13) == D("2010-12-15")


def test_largest_remainder_split_examples():
    shares = recovery_partnership.SHARES["housing_secured"]
    split = common.largest_remainder_split(Decimal("475.00"), shares)
    assert {k: str(v) for k, v in split.items()} == {"LCF": "95", "LA": "126.68", "PCC": "126.68", "DWP": "126.64"}
    split = common.largest_remainder_split(Decimal("150.00"), shares)
    assert [common.money(v) for v in split.values()] == ["30.00", "40.01", "40.00", "39.99"]
    split = common.largest_remainder_split(Decimal("0.01"), shares)
    assert [common.money(v) for v in split.values()] == ["0.00", "0.01", "0.00", "0.00"]  # LA, PCC tie: LA first


def test_peterborough_exact_figures():
    assert peterborough_sib.exact_text(peterborough_sib.Fraction(155 * 1000, 100)) == "1550"
    assert peterborough_sib.to_pounds(27450 * peterborough_sib.Fraction("162.3781")) == Decimal("4457278.85")


# --------------------------------------------------------------------------- invalid data


def _copy_sample(scheme: str, dest: Path) -> Path:
    for path in sample_dir(scheme).glob("*.csv"):
        (dest / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    return dest


@pytest.mark.parametrize(
    "scheme,table,line",
    [
        ("work-programme", "employment", "NOPE,2012-01-01,"),
        ("work-programme", "employment", "P01,2012-01-02,2012-01-01"),
        ("work-programme", "participants", "P01,JSA_18_24,2012-01-01"),
        ("work-programme", "participants", "P99,JSA_OTHER,2012-01-01"),
        ("work-programme", "participants", "P99,JSA_18_24,2011-05-31"),
        ("innovation-fund", "qualifications", "P01,3,2013-01-01"),
        ("innovation-fund", "employment", "P01,2014-01-01,,yes"),
        ("troubled-families", "members", "M9999,F01,parent,1980-01-01"),
        ("troubled-families", "incidents", "M0101,2012-01-01,burglary"),
        ("recovery-partnership", "events", "E01,relapse,2020-01-01"),
        ("recovery-partnership", "participants", "E99,2020-01-01,cannabis,true"),
        ("peterborough-sib", "offences", "E01,2011-01-02,2011-01-01"),
        ("peterborough-sib", "prisoners", "E99,2011-01-01,6.5"),
        ("peterborough-sib", "prisoners", "E98,2011-02-30,6"),
    ],
)
def test_invalid_data_is_rejected(scheme, table, line, tmp_path):
    data = _copy_sample(scheme, tmp_path)
    with open(data / f"{table}.csv", "a", encoding="utf-8") as f:
        f.write(line + "\n")
    with pytest.raises(ValueError):
        ORACLES[scheme].evaluate(data, generate.default_as_of(scheme))


# --------------------------------------------------------------------------- generators


@pytest.mark.parametrize("scheme", sorted(ORACLES))
def test_generation_is_deterministic(scheme, tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate.generate(scheme, a, 150, seed=7)
    generate.generate(scheme, b, 150, seed=7)
    generate.generate(scheme, c, 150, seed=8)
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir()) == sorted(p.name for p in c.iterdir())
    assert names == sorted(p.name for p in sample_dir(scheme).glob("*.csv"))
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert any((a / name).read_bytes() != (c / name).read_bytes() for name in names)
    for name in names:  # the same header as the sample's table
        with open(a / name, encoding="utf-8") as f, open(sample_dir(scheme) / name, encoding="utf-8") as g:
            assert f.readline() == g.readline(), name


def test_generate_cli(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "tests.oracles.generate", "work-programme", str(tmp_path), "25", "--seed", "3"],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    with open(tmp_path / "participants.csv", encoding="utf-8") as f:
        assert sum(1 for _ in f) == 26


def test_default_as_of_is_the_samples():
    for scheme in ORACLES:
        assert generate.default_as_of(scheme).isoformat() == expected_for(scheme)["as_of"]


def check_statement(scheme: str, st: dict) -> None:
    """Internal consistency of a statement (README "The statement")."""
    order = OUTCOME_ORDER[scheme]
    payments = st["payments"]
    money = [Decimal(p["amount"]) for p in payments]
    assert Decimal(st["total"]) == sum(money, Decimal("0"))
    for p in payments:
        assert Decimal(p["amount"]) >= 0
        assert p["amount"] == f"{Decimal(p['amount']):.2f}"
        assert sum((Decimal(v) for v in p["funders"].values()), Decimal("0")) == Decimal(p["amount"])
        assert p["date"] <= st["as_of"]
    keys = [(p["date"], p["subject"], order.index(p["outcome"])) for p in payments]
    assert keys == sorted(keys), "payments must be sorted by date, subject (plain string), outcome order"
    seen = collections.Counter((p["subject"], p["outcome"]) for p in payments)
    for (subject, outcome), count in seen.items():
        if outcome not in RECURRING.get(scheme, ()):
            assert count == 1, (subject, outcome)
    by_outcome = collections.defaultdict(Decimal)
    by_period = collections.defaultdict(Decimal)
    by_funder = collections.defaultdict(Decimal)
    for p in payments:
        by_outcome[p["outcome"]] += Decimal(p["amount"])
        by_period[p["date"][:7]] += Decimal(p["amount"])
        for f, v in p["funders"].items():
            by_funder[f] += Decimal(v)
    for o, v in st["by_outcome"].items():
        assert Decimal(v) == by_outcome[o]
    assert set(by_outcome) <= set(st["by_outcome"])
    assert {m: Decimal(v) for m, v in st["by_period"].items()} == dict(by_period)
    for f, v in st["by_funder"].items():
        assert Decimal(v) == by_funder[f]


@pytest.mark.parametrize("scheme", sorted(ORACLES))
def test_oracle_runs_on_generated_data(scheme, tmp_path_factory):
    data = generated(scheme, tmp_path_factory)
    st = roundtrip(ORACLES[scheme].evaluate(data, generate.default_as_of(scheme)))
    check_statement(scheme, st)
    if scheme != "peterborough-sib":
        assert len(st["payments"]) > GENERATED_N[scheme] // 2
    # a second as-of date, earlier, gives a statement that is consistent too
    earlier = common.add_months(generate.default_as_of(scheme), -14)
    check_statement(scheme, roundtrip(ORACLES[scheme].evaluate(data, earlier)))


def test_recovery_partnership_generated_data_binds_every_limit(tmp_path_factory):
    data = generated("recovery-partnership", tmp_path_factory)
    st = recovery_partnership.evaluate(data, generate.default_as_of("recovery-partnership"))
    caps = st["caps"]
    assert caps["contract_cap"]["headroom"] == "0.00"
    assert caps["lcf_ceiling"]["headroom"] == "0.00"
    assert caps["pcc_ceiling"]["2020-21"]["headroom"] == "0.00"
    assert caps["pcc_ceiling"]["2021-22"]["headroom"] == "0.00"
    cut_names = {c["cap"] for p in st["payments"] for c in p.get("cuts", [])}
    assert cut_names == {"participant_cap", "contract_cap", "pcc_ceiling"}
    assert any("overflow" in p for p in st["payments"])
    assert Decimal(st["total"]) + Decimal(st["unfunded"]) == Decimal(caps["contract_cap"]["used"])
    for p in st["payments"]:
        cuts = sum((Decimal(c["amount"]) for c in p.get("cuts", [])), Decimal("0"))
        assert Decimal(p["amount"]) + cuts == Decimal(p["tariff"])


def test_innovation_fund_generated_data_reaches_contract_cap(tmp_path_factory):
    data = generated("innovation-fund", tmp_path_factory, n=1500)
    st = innovation_fund.evaluate(data, generate.default_as_of("innovation-fund"))
    assert st["total"] == "3000000.00"
    cut_names = collections.Counter(c["cap"] for p in st["payments"] for c in p.get("cuts", []))
    assert cut_names["contract_cap"] > 0 and cut_names["participant_cap"] > 0
    assert any(p["amount"] == "0.00" for p in st["payments"])
    check_statement("innovation-fund", roundtrip(st))


def test_troubled_families_generated_data_uses_the_family_cap(tmp_path_factory):
    data = generated("troubled-families", tmp_path_factory)
    st = troubled_families.evaluate(data, generate.default_as_of("troubled-families"))
    per_family = collections.defaultdict(Decimal)
    for p in st["payments"]:
        per_family[p["subject"]] += Decimal(p["amount"])
    assert max(per_family.values()) <= Decimal("4000")
    assert any(p.get("cuts") for p in st["payments"])
    assert list(st["by_outcome"]) == troubled_families.OUTCOMES
    assert {p["outcome"] for p in st["payments"]} == set(troubled_families.OUTCOMES)


def test_peterborough_generated_thresholds_pass_and_fail(tmp_path_factory):
    results = collections.Counter()
    for seed in range(10):
        data = generated("peterborough-sib", tmp_path_factory, n=900, seed=seed)
        st = peterborough_sib.evaluate(data, generate.default_as_of("peterborough-sib"))
        for name, info in st["cohorts"].items():
            results[("cohort", info["threshold_met"])] += 1
        results[("pooled", st["pooled"]["threshold_met"])] += 1
        results[("capped", any(p.get("cuts") for p in st["payments"]))] += 1
        check_statement("peterborough-sib", roundtrip(st))
        pending = peterborough_sib.evaluate(data, D("2014-08-06"))  # the day before cohort 1's assessment
        assert pending["payments"] == [] and pending["total"] == "0.00"
        assert {c["status"] for c in pending["cohorts"].values()} == {"pending"}
        later = peterborough_sib.evaluate(data, D("2015-01-01"))
        assert [p["subject"] for p in later["payments"]] == (["cohort_1"] if st["cohorts"]["cohort_1"]["threshold_met"] else [])
    assert results[("cohort", True)] and results[("cohort", False)]
    assert results[("pooled", True)] and results[("pooled", False)]
    assert results[("capped", True)]


# --------------------------------------------------------------------------- naive cross-checks


def _days(first: datetime.date, last: datetime.date):
    d = first
    while d <= last:
        yield d
        d += datetime.timedelta(days=1)


def naive_work_programme(data_dir, t):
    """SPEC §4 and §6 day by day: {(subject, outcome, date)} of job outcomes and sustainment."""
    participants = work_programme.load(data_dir)
    found = set()
    for pid, p in participants.items():
        a = p["attached_on"]
        if a > t:
            continue
        weeks, _fee, _sfee, max_sust = work_programme.GROUPS[p["group"]]
        employed = set()
        for start, end in p["spells"]:
            for d in _days(max(start, a), min(end or t, t)):
                employed.add(d)
        run = 0
        job_day = None
        for d in _days(a, t):
            run = run + 1 if d in employed else 0
            if run == 7 * weeks:
                job_day = d  # the first run to hold 7W days completes them today
                break
        if job_day is None or (job_day - a).days > 727:
            continue
        found.add((pid, "job_outcome", job_day))
        for k in range(1, max_sust + 1):
            due = job_day + datetime.timedelta(days=28 * k)
            if due > t or not all(d in employed for d in _days(job_day, due)):
                break
            found.add((pid, "sustainment", due))
    return found


@pytest.mark.parametrize("seed", [0, 1])
def test_work_programme_matches_day_by_day(seed, tmp_path_factory):
    data = generated("work-programme", tmp_path_factory, seed=seed)
    for t in (D("2014-06-30"), D("2013-02-28")):
        st = work_programme.evaluate(data, t)
        got = {(p["subject"], p["outcome"], D(p["date"])) for p in st["payments"] if p["outcome"] != "attachment"}
        assert got == naive_work_programme(data, t)


def naive_school_day(spells, started, t, holidays):
    """SPEC §4.1 "Equivalently": join spells cut to started_on when they overlap, touch,
    or the gap holds only holiday days; count counted days from each joined spell's
    first day; the earliest joined spell reaching 91 gives the day."""
    pieces = sorted(
        (max(s, started), min(e or t, t)) for s, e in spells if max(s, started) <= min(e or t, t)
    )
    joined = []
    for s, e in pieces:
        if joined:
            gap = list(_days(joined[-1][1] + datetime.timedelta(days=1), s - datetime.timedelta(days=1)))
            if all(d in holidays for d in gap):
                joined[-1] = (joined[-1][0], max(joined[-1][1], e))
                continue
        joined.append((s, e))
    for s, e in joined:
        count = 0
        for d in _days(s, e):
            if d not in holidays:
                count += 1
                if count == 91:
                    return d
    return None


def test_innovation_fund_school_outcomes_match_equivalent_rule(tmp_path_factory):
    data = generated("innovation-fund", tmp_path_factory)
    t = generate.default_as_of("innovation-fund")
    participants, holiday_rows = innovation_fund.load(data)
    holidays = innovation_fund.holiday_days(holiday_rows)
    st = innovation_fund.evaluate(data, t)
    got = {(p["subject"], p["outcome"]): D(p["date"]) for p in st["payments"] if p["outcome"].startswith("improved_")}
    want = {}
    for pid, p in participants.items():
        started = p["started_on"]
        if started > t or not innovation_fund.aged(p["born_on"], 14, started) or innovation_fund.aged(p["born_on"], 16, started):
            continue
        for kind, outcome in innovation_fund.SCHOOL_KINDS.items():
            day = naive_school_day(p["status"][kind], started, t, holidays)
            if day is not None:
                want[(pid, outcome)] = day
    assert got == want
    assert len(want) > 20


def test_troubled_families_continuous_employment_matches_day_by_day(tmp_path_factory):
    data = generated("troubled-families", tmp_path_factory)
    t = generate.default_as_of("troubled-families")
    families, members = troubled_families.load(data)
    for fid, family in families.items():
        j = family["joined_on"]
        best = None
        for mid in family["members"]:
            m = members[mid]
            if m["role"] != "adult":
                continue
            employed = set()
            for s, e in m["employment"]:
                employed.update(_days(s, e or t))
            for s in sorted(employed):
                if s < j or (s - datetime.timedelta(days=1)) in employed:
                    continue  # not the first day of a continuous spell that starts on or after joining
                last = common.add_months(s, 3) - datetime.timedelta(days=1)
                if all(d in employed for d in _days(s, last)) and (best is None or last < best):
                    best = last
        assert troubled_families.continuous_employment_day(family, members, t) == best, fid


# --------------------------------------------------------------------------- the benchmark baseline


def _load_baseline():
    path = REPO / "benchmarks" / "baseline_wp.py"
    spec = importlib.util.spec_from_file_location("baseline_wp", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _baseline_statement(baseline, data_dir, t) -> dict:
    buf = io.StringIO()
    baseline.write_statement(baseline.evaluate(str(data_dir), t), buf)
    return json.loads(buf.getvalue())


def test_baseline_matches_sample():
    baseline = _load_baseline()
    expected = expected_for("work-programme")
    assert _baseline_statement(baseline, sample_dir("work-programme"), D(expected["as_of"])) == expected


@pytest.mark.parametrize("seed", [0, 5])
def test_baseline_matches_oracle_on_generated_data(seed, tmp_path_factory):
    baseline = _load_baseline()
    data = generated("work-programme", tmp_path_factory, n=3000, seed=seed)
    for t in (D("2014-06-30"), D("2012-12-31"), D("2011-05-31")):
        assert _baseline_statement(baseline, data, t) == roundtrip(work_programme.evaluate(data, t))


def test_baseline_cli(tmp_path):
    out = tmp_path / "statement.json"
    subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "baseline_wp.py"),
            str(sample_dir("work-programme")),
            "--as-of",
            "2014-06-30",
            "--output",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    assert json.loads(out.read_text(encoding="utf-8")) == expected_for("work-programme")
