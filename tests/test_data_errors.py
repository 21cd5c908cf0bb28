"""Broken data gives an error naming file, row and field; never a traceback, never a dropped row."""

from __future__ import annotations

import datetime
from decimal import Decimal
from pathlib import Path

import pytest

import pbrlang
from conftest import ROOT, example, golden, pbr, sample

BROKEN = sorted(p for p in (ROOT / "tests" / "data" / "broken").iterdir() if p.is_dir())
WP = example("work-programme")


def _contract_for(folder: Path) -> tuple[Path, str]:
    scheme = (folder / "scheme.txt").read_text().strip() if (folder / "scheme.txt").exists() else "work-programme"
    as_of = {"work-programme": "2014-06-30", "troubled-families": "2015-06-30"}[scheme]
    return example(scheme), as_of


@pytest.mark.parametrize("folder", BROKEN, ids=lambda p: p.name)
def test_broken_data_is_rejected_with_file_row_and_field(folder: Path):
    contract, as_of = _contract_for(folder)
    out = pbr("eval", contract.relative_to(ROOT), "--data", folder.relative_to(ROOT), "--as-of", as_of)
    assert out.returncode == 1, out.stdout
    assert "Traceback" not in out.stderr
    assert out.stdout == ""
    golden(folder / "expected.err", out.stderr)


def test_byte_order_mark_is_accepted(tmp_path):
    (tmp_path / "participants.csv").write_bytes(b"\xef\xbb\xbfid,group,attached_on\nP01,JSA_18_24,2011-06-01\n")
    (tmp_path / "employment.csv").write_text("participant_id,start,end\n")
    st = pbrlang.load(WP).evaluate([tmp_path], as_of="2014-06-30")
    assert [p.outcome for p in st.payments] == ["attachment"]


def test_in_memory_records_with_native_values():
    st = pbrlang.load(WP).evaluate(
        {
            "participants": [{"id": "P01", "group": "JSA_18_24", "attached_on": datetime.date(2011, 6, 1)}],
            "employment": [{"participant_id": "P01", "start": "2011-06-01", "end": None}],
        },
        as_of=datetime.date(2012, 1, 31),
    )
    assert [(p.outcome, p.amount) for p in st.payments] == [
        ("attachment", Decimal("400.00")),
        ("job_outcome", Decimal("1200.00")),
        ("sustainment", Decimal("170.00")),
        ("sustainment", Decimal("170.00")),
    ]  # job outcome 2011-11-29, then every 28 days: 12-27 and 01-24


def test_float_money_is_refused():
    contract = pbrlang.loads(
        'contract "f"\nfunder X\ntable t:\n  id: text key\n  fee: money\n  day: date\nsubject s: t\n'
        "outcome o:\n  achieved on day\n  pays fee\n"
    )
    with pytest.raises(pbrlang.DataError) as info:
        contract.evaluate({"t": [{"id": "a", "fee": 12.5, "day": "2020-01-01"}]}, as_of="2020-12-31")
    assert "floating point" in str(info.value)
    assert info.value.problems[0].field == "fee"


def test_missing_table_is_named():
    with pytest.raises(pbrlang.DataError) as info:
        pbrlang.load(WP).evaluate({"participants": []}, as_of="2014-06-30")
    assert "employment" in str(info.value)


def test_extra_columns_are_ignored_with_a_warning(tmp_path):
    (tmp_path / "participants.csv").write_text("id,group,attached_on,notes\nP01,JSA_18_24,2011-06-01,x\n")
    (tmp_path / "employment.csv").write_text("participant_id,start,end\n")
    out = pbr("eval", WP, "--data", tmp_path, "--as-of", "2014-06-30", "--format", "json")
    assert out.returncode == 0
    assert "ignored column notes" in out.stderr


# What --exclude-invalid does with each broken corpus case: the subject it leaves out, or None when the
# problem belongs to no subject and the run must still stop.
EXCLUDED = {
    "bad_date": "P01",
    "not_a_date": "P01",
    "unknown_group": "P02",
    "duplicate_key": "P01",
    "end_before_start": "P01",
    "attached_too_early": "P01",
    "wrong_cell_count": "P01",
    "empty_required_value": "P02",
    "jsonl_not_object": None,
    "missing_column": None,
    "missing_subject": None,
    "empty_file": None,
    "not_utf8": None,
    "nan_in_decimal": "F01",
    "text_in_integer": "F01",
    "huge_number": "F01",
    "negative_count_breaks_rule": "F01",
    "decimal_with_comma": "F01",
    "grandchild_refers_to_missing_member": None,
}


@pytest.mark.parametrize("folder", BROKEN, ids=lambda p: p.name)
def test_exclude_invalid_leaves_out_the_subject_and_says_so(folder: Path):
    contract_path, as_of = _contract_for(folder)
    contract = pbrlang.load(contract_path)
    expected = EXCLUDED[folder.name]
    if expected is None:
        with pytest.raises(pbrlang.DataError):
            contract.evaluate([folder], as_of=as_of, exclude_invalid=True)
        return
    statement = contract.evaluate([folder], as_of=as_of, exclude_invalid=True)
    assert [s for s, _ in statement.excluded] == [expected]
    assert all(p.subject != expected for p in statement.payments)
    subject_table = contract.program.subject.table
    rows = (folder / f"{subject_table}.csv").read_text().splitlines()[1:]
    ids = {r.split(",")[0] for r in rows if r}
    # every subject is either evaluated or listed as excluded: nothing is dropped silently
    assert statement.subjects_evaluated + len(statement.excluded) == len(ids)
    assert statement.to_dict()["subjects"]["excluded"] == 1


# ---- an evaluation error leaves the output file as it was ------------------------------------------

DIVIDING = """contract "dividing"
funder DWP
table participants:
  id: text key
  start: date
  sessions: integer
subject participant: participants
outcome attended:
  achieved on start
  pays £10.00 / sessions
"""


@pytest.mark.parametrize("form", ["json", "csv", "table"])
def test_an_evaluation_error_leaves_the_output_file_as_it_was(tmp_path, form):
    (tmp_path / "contract.pbr").write_text(DIVIDING)
    (tmp_path / "data").mkdir()
    table = tmp_path / "data" / "participants.csv"
    table.write_text("id,start,sessions\nP1,2020-01-01,2\nP2,2020-01-01,0\n")
    out = tmp_path / "out" / "statement.txt"
    out.parent.mkdir()
    out.write_text("last month's statement\n")
    out.chmod(0o640)
    args = ("eval", tmp_path / "contract.pbr", "--data", tmp_path / "data", "--as-of", "2020-12-31",
            "--format", form, "--output", out)

    failed = pbr(*args)
    assert failed.returncode == 1
    assert "subject P2: division by zero" in failed.stderr
    assert out.read_text() == "last month's statement\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["statement.txt"]  # nothing half-written beside it

    new = tmp_path / "out" / "new.txt"
    assert pbr(*args[:-1], new).returncode == 1
    assert sorted(p.name for p in out.parent.iterdir()) == ["statement.txt"]

    table.write_text("id,start,sessions\nP1,2020-01-01,2\nP2,2020-01-01,4\n")
    done = pbr(*args)
    assert done.returncode == 0, done.stderr
    # £10.00 / 2 + £10.00 / 4: the total in the table, the payments in JSON and CSV
    assert ("7.50" if form == "table" else "2.50") in out.read_text()
    assert out.stat().st_mode & 0o777 == 0o640  # the file's permissions kept
    assert sorted(p.name for p in out.parent.iterdir()) == ["statement.txt"]


def test_the_output_can_be_a_device():
    args = ("eval", example("work-programme"), "--data", sample("work-programme"), "--as-of", "2014-06-30",
            "--format", "json", "--output", "/dev/stdout")
    done = pbr(*args)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("{") and '"payments"' in done.stdout


def test_a_writable_file_in_a_folder_that_takes_no_new_file_is_written_once_complete(tmp_path, monkeypatch, capsys):
    """(This suite may run as root, whom no folder refuses: the folder's refusal is simulated.)"""
    import tempfile

    from pbrlang import cli

    shared = tmp_path / "shared"
    shared.mkdir()
    out = shared / "statement.json"
    out.write_text("last month's statement\n")
    elsewhere = tmp_path / "tmp"
    elsewhere.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(elsewhere))
    make = tempfile.mkstemp

    def refused_in_shared(*args, dir=None, **kwargs):
        if dir is not None and Path(dir) == shared.resolve():
            raise PermissionError(13, "Permission denied")
        return make(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", refused_in_shared)
    (tmp_path / "contract.pbr").write_text(DIVIDING)
    data = tmp_path / "data"
    data.mkdir()
    (data / "participants.csv").write_text("id,start,sessions\nP1,2020-01-01,2\nP2,2020-01-01,0\n")
    args = ["eval", str(tmp_path / "contract.pbr"), "--data", str(data), "--as-of", "2020-12-31",
            "--format", "json", "--output", str(out)]

    assert cli.run(args) == 1  # an evaluation error: the file as it was, nothing left anywhere
    assert "division by zero" in capsys.readouterr().err
    assert out.read_text() == "last month's statement\n"
    assert list(elsewhere.iterdir()) == [] and sorted(p.name for p in shared.iterdir()) == ["statement.json"]

    (data / "participants.csv").write_text("id,start,sessions\nP1,2020-01-01,2\nP2,2020-01-01,4\n")
    assert cli.run(args) == 0, capsys.readouterr().err
    contract = pbrlang.load(tmp_path / "contract.pbr")
    assert out.read_text() == contract.evaluate(contract.load_data([data]), datetime.date(2020, 12, 31)).to_json()
    assert list(elsewhere.iterdir()) == [] and sorted(p.name for p in shared.iterdir()) == ["statement.json"]

    # A file that is not there cannot be made in such a folder: said so, nothing written.
    assert cli.run(args[:-1] + [str(shared / "new.json")]) == 1
    assert "new.json: cannot be written (Permission denied)" in capsys.readouterr().err


RULES = """contract "rules"
funder X
table people:
  id: text key
  joined_on: date
  hours: integer
  valid when hours >= 0
  valid when joined_on <= as_of
subject person: people
outcome joined:
  achieved on joined_on
  pays £10.00
"""


def test_rules_that_need_no_as_of_reject_the_data_as_it_is_loaded_and_the_others_when_it_is_evaluated():
    contract = pbrlang.loads(RULES, "rules.pbr")
    negative = [{"id": "A", "joined_on": "2020-01-01", "hours": "-1"}]
    with pytest.raises(pbrlang.DataError) as err:
        contract.load_data({"people": negative})
    assert "breaks the contract's rule `valid when hours >= 0` (rules.pbr:7:14)" in str(err.value)
    # Joining after the as-of day breaks the other rule, which only an evaluation can apply.
    later = contract.load_data({"people": [{"id": "A", "joined_on": "2020-06-01", "hours": "3"}]})
    assert contract.evaluate(later, "2020-12-31").total == Decimal("10.00")
    with pytest.raises(pbrlang.DataError) as err:
        contract.evaluate(later, "2020-03-31")
    assert "`valid when joined_on <= as_of`" in str(err.value) and "hours >= 0" not in str(err.value)
    # Left out as the data is loaded, a subject is listed once, with its problem.
    both = negative + [{"id": "B", "joined_on": "2020-01-01", "hours": "2"}]
    statement = contract.evaluate(contract.load_data({"people": both}, exclude_invalid=True), "2020-12-31",
                                  exclude_invalid=True)
    assert [s for s, _ in statement.excluded] == ["A"] and len(statement.excluded[0][1]) == 1
    assert statement.total == Decimal("10.00")


def test_data_loaded_for_another_contract_meets_every_rule_of_the_one_evaluating_it():
    lax = pbrlang.loads(RULES.replace("  valid when hours >= 0\n", ""))
    dataset = lax.load_data({"people": [{"id": "A", "joined_on": "2020-01-01", "hours": "-1"}]})
    with pytest.raises(pbrlang.DataError, match="hours >= 0"):
        pbrlang.loads(RULES).evaluate(dataset, "2020-12-31")
