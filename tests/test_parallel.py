"""Both cores: the statement is byte-identical however many processes evaluate it."""

from __future__ import annotations

import io
import os

import pytest

import pbrlang
from conftest import example
from oracles import generate as gen


@pytest.mark.parametrize("scheme,n", [("work-programme", 3000), ("recovery-partnership", 900),
                                      ("innovation-fund", 1200)])
def test_two_processes_give_the_same_bytes_as_one(scheme, n, tmp_path):
    folder = gen.generate(scheme, tmp_path, n, seed=5)
    as_of = gen.default_as_of(scheme)
    contract = pbrlang.load(example(scheme))
    dataset = contract.load_data([folder])
    one = contract.evaluate(dataset, as_of, workers=1).to_json()
    two = contract.evaluate(dataset, as_of, workers=2).to_json()
    assert one == two
    streamed = io.StringIO()
    contract.write_json(dataset, as_of, streamed, workers=2)
    assert streamed.getvalue() == one
    # To a file, the parts are copied as bytes: still the same bytes.
    path = tmp_path / "statement.json"
    with open(path, "w", encoding="utf-8", newline="") as out:
        contract.write_json(dataset, as_of, out, workers=2)
    assert path.read_bytes() == one.encode("utf-8")


def test_each_process_copies_its_part_into_place_and_appending_or_refusing_kernels_still_give_the_bytes(
        tmp_path, monkeypatch):
    folder = gen.generate("work-programme", tmp_path, 2500, seed=11)
    as_of = gen.default_as_of("work-programme")
    contract = pbrlang.load(example("work-programme"))
    dataset = contract.load_data([folder])
    one = contract.evaluate(dataset, as_of, workers=1).to_json().encode("utf-8")
    path = tmp_path / "statement.json"
    with open(path, "w", encoding="utf-8", newline="") as out:  # three parts, two copied by other processes
        contract.write_json(dataset, as_of, out, workers=3)
    assert path.read_bytes() == one
    # Appending: no place in the file can be chosen, the bytes go through in order after what was there.
    path.write_bytes(b"before\n")
    with open(path, "a", encoding="utf-8", newline="") as out:
        contract.write_json(dataset, as_of, out, workers=2)
    assert path.read_bytes() == b"before\n" + one

    # A kernel that cannot copy between the two files: the same bytes, written by this process.
    def refuse(*args):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", refuse)
    with open(path, "w", encoding="utf-8", newline="") as out:
        contract.write_json(dataset, as_of, out, workers=2)
    assert path.read_bytes() == one


def test_a_large_load_leaves_the_cycle_collector_on_with_its_objects_out_of_sight():
    import gc

    from pbrlang.data import no_cycle_collection

    gc.enable()
    gc.collect()
    frozen = gc.get_freeze_count()
    with no_cycle_collection():
        assert not gc.isenabled()
        rows = [(i, str(i)) for i in range(no_cycle_collection.FREEZE_FROM + 1000)]
    assert gc.isenabled() and gc.get_freeze_count() >= frozen + len(rows)
    gc.unfreeze()
    with no_cycle_collection():
        small = [(i,) for i in range(10)]
    assert gc.isenabled() and gc.get_freeze_count() == 0 and small


def test_rows_sent_back_a_chunk_at_a_time_join_in_the_single_process_order(tmp_path, monkeypatch):
    from pbrlang import parallel

    folder = gen.generate("work-programme", tmp_path, 2000, seed=17)
    as_of = gen.default_as_of("work-programme")
    contract = pbrlang.load(example("work-programme"))
    dataset = contract.load_data([folder])
    one = contract.evaluate(dataset, as_of, workers=1)
    monkeypatch.setattr(parallel, "CHUNK", 150)  # each other process sends several chunks
    for n in (2, 3):
        many = contract.evaluate(dataset, as_of, workers=n)
        assert many.rows == one.rows
        assert many.totals.__dict__ == one.totals.__dict__
        assert (many.subjects_evaluated, many.subjects_eligible) == (one.subjects_evaluated, one.subjects_eligible)
        assert many.to_json() == one.to_json()


PEOPLE = """contract "people"
funder X
table people:
  id: text key
  joined_on: date
subject person: people
outcome joined:
  achieved on joined_on
  pays £10.00
cap per_person: £25.00 per person
"""


NEGATIVE = PEOPLE.replace("pays £10.00", "pays £10.00 - offset") \
    .replace("  joined_on: date\n", "  joined_on: date\n  offset: money\n")


def test_subjects_that_cannot_be_evaluated_read_the_same_from_any_number_of_processes():
    contract = pbrlang.loads(NEGATIVE)
    people = [{"id": f"P{i:03d}", "joined_on": "2020-01-01", "offset": "12.00" if i % 7 == 0 else "1.00"}
              for i in range(300)]
    messages = {}
    for n in (1, 2, 3):
        try:
            contract.evaluate({"people": people}, as_of="2020-12-31", workers=n)
        except pbrlang.EvaluationErrors as err:
            messages[n] = [str(e) for e in err.errors]
        else:
            raise AssertionError("a negative payment was not refused")
    assert messages[1] == messages[2] == messages[3]
    assert len(messages[1]) == 43 and messages[1][0].startswith("evaluation error: subject P000: outcome `joined`")
    assert all(m.count("subject P") == 1 and m.endswith("(-2.00) (<contract>:8:1)") for m in messages[1])
    left_out = [contract.evaluate({"people": people}, as_of="2020-12-31", workers=n, exclude_invalid=True)
                for n in (1, 2)]
    assert left_out[0].to_json() == left_out[1].to_json() and len(left_out[0].excluded) == 43


def test_a_streamed_statement_lists_the_subjects_its_loaded_data_left_out():
    # Data loaded with exclude_invalid: write_json gives evaluate()'s bytes, the left-out subjects listed.
    contract = pbrlang.loads(PEOPLE)
    people = [{"id": f"P{i}", "joined_on": "2020-01-01" if i != 3 else "2020-02-30"} for i in range(6)]
    dataset = contract.load_data({"people": people}, exclude_invalid=True)
    expected = contract.evaluate(dataset, "2020-12-31", workers=1).to_json()
    assert '"P3"' in expected and "excluded" in expected
    for n in (1, 2):
        streamed = io.StringIO()
        contract.write_json(dataset, "2020-12-31", streamed, workers=n)
        assert streamed.getvalue() == expected
