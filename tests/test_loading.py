"""What the loader gathers while reading (key values, rows grouped by each reference) is
exactly what a pass over the loaded rows would find, however the rows fall into chunks."""

from __future__ import annotations

import csv
import datetime
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pbrlang
from pbrlang import data, evaluator
from conftest import example

WP = example("work-programme")
ids = st.sampled_from(["P1", "P2", "P3", "P10", "Q"])
spells = st.lists(st.tuples(ids, st.integers(0, 40), st.integers(0, 3) | st.none()), max_size=25)


def _write(folder, participants, employment):
    (folder / "participants.csv").write_text(
        "id,group,attached_on\n" + "".join(f"{p},JSA_18_24,2012-0{1 + i % 9}-01\n" for i, p in enumerate(participants)))
    day = lambda n: (datetime.date(2012, 1, 1) + datetime.timedelta(days=n)).isoformat()  # noqa: E731
    (folder / "employment.csv").write_text("participant_id,start,end\n" + "".join(
        f"{p},{day(s)},{'' if e is None else day(s + e)}\n" for p, s, e in employment))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(employment=spells, chunk=st.integers(1, 7))
def test_groups_gathered_while_loading_are_those_of_the_loaded_rows(tmp_path, monkeypatch, employment, chunk):
    monkeypatch.setattr(data, "CSV_CHUNK", chunk)
    _write(tmp_path, ["P1", "P2", "P3", "P10"], employment)
    contract = pbrlang.load(WP)
    try:
        dataset = contract.load_data([tmp_path])
    except pbrlang.DataError as err:  # a spell of participant Q, who does not exist
        assert any(p == "Q" for p, _, _ in employment)
        assert 'refers to participants "Q", which does not exist' in str(err)
        return
    table = dataset.tables["employment"]
    grouped: dict = {}
    for row in table.rows:
        grouped.setdefault(row[0], []).append(row)
    assert table.by_reference == {0: grouped}
    assert dataset.tables["participants"].keys == {"P1", "P2", "P3", "P10"}
    # the evaluation's index is that grouping, and a fresh pass over the rows gives the same
    assert evaluator.build_indexes(contract.compiled, dataset) == [grouped]
    table.set_rows(list(table.rows))
    assert table.by_reference == {} and evaluator.build_indexes(contract.compiled, dataset) == [grouped]


@pytest.mark.parametrize("chunk", [1, 2, 50_000])
def test_a_duplicate_key_is_found_across_chunks(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(data, "CSV_CHUNK", chunk)
    _write(tmp_path, ["P1", "P2", "P1"], [])
    with pytest.raises(pbrlang.DataError) as err:
        pbrlang.load(WP).load_data([tmp_path])
    assert 'participants.csv:4: field `id`: duplicate key "P1" (first on row 2)' in str(err.value)


def test_rows_dropped_for_broken_data_are_gone_from_the_groups(tmp_path):
    _write(tmp_path, ["P1", "P2"], [("P1", 0, 5), ("P2", 3, None)])
    text = (tmp_path / "employment.csv").read_text().replace("2012-01-04,", "2012-01-04x,")
    (tmp_path / "employment.csv").write_text(text)
    contract = pbrlang.load(WP)
    dataset = contract.load_data([tmp_path], exclude_invalid=True)
    assert set(dataset.excluded) == {"P2"}
    assert [r[0] for r in dataset.tables["employment"].rows] == ["P1"]
    assert evaluator.build_indexes(contract.compiled, dataset) == [{"P1": dataset.tables["employment"].rows}]


# ---- CSV files with no quotes are split by string methods: the same rows and problems as the csv module

_EMPLOYMENT = pbrlang.load(WP).program.tables["employment"]
cells = st.sampled_from(["P1", "P2", " P1", "2012-01-02", "2012-02-30", "2013-05-06", "", "x", "-", "12", "y" * 20])
lines = st.lists(cells, min_size=1, max_size=5).map(",".join).filter(bool)  # a blank line is not a row


def _through_the_csv_module(text: str) -> tuple[list, list[str]]:
    """What reading every row with the csv module, then converting them, gives."""
    problems = data._Collector()
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    plan = data._columns(next(reader), "e.csv", _EMPLOYMENT, problems, [], 1)
    raw, numbers = [], []
    try:
        for row in reader:
            raw.append(row)
            numbers.append(reader.line_num)
    except csv.Error as err:
        rows = data._typed_rows(plan, raw, numbers, "e.csv", problems)
        problems.add("e.csv", reader.line_num, None, f"cannot be read as CSV: {err}")
        return rows, [p.render() for p in problems.problems]
    return data._typed_rows(plan, raw, numbers, "e.csv", problems), [p.render() for p in problems.problems]


@settings(max_examples=300, deadline=None)
@given(body=st.lists(lines, min_size=0, max_size=30), newline=st.sampled_from(["\n", "\r\n"]),
       last_newline=st.booleans(), chunk=st.integers(1, 3), limit=st.sampled_from([16, 131072]))
def test_rows_split_by_string_methods_are_those_the_csv_module_reads(body, newline, last_newline, chunk, limit):
    text = newline.join(["participant_id,start,end"] + body) + (newline if last_newline else "")
    old_chunk, old_limit = data.CSV_CHUNK, csv.field_size_limit(limit)
    data.CSV_CHUNK = chunk  # pieces of a line or two: every way a piece can end
    try:
        problems = data._Collector()
        rows = data._rows_from_csv(text, "e.csv", _EMPLOYMENT, problems, [], data._Gathered(_EMPLOYMENT))
        expected_rows, expected_problems = _through_the_csv_module(text)
    finally:
        data.CSV_CHUNK = old_chunk
        csv.field_size_limit(old_limit)
    assert [p.render() for p in problems.problems] == expected_problems
    assert rows == expected_rows
