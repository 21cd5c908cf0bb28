"""Both cores: the statement is byte-identical however many processes evaluate it."""

from __future__ import annotations

import io
import os
import tempfile
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

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


@pytest.mark.parametrize("scheme", ["work-programme", "innovation-fund"])
def test_no_subjects_at_all_give_the_same_empty_statement_from_any_number_of_processes(scheme, tmp_path):
    folder = gen.generate(scheme, tmp_path, 30, seed=2)
    contract = pbrlang.load(example(scheme))
    dataset = contract.load_data([folder])
    for table in dataset.tables.values():  # every table empty: headers and no rows
        table.rows.clear()
    as_of = gen.default_as_of(scheme)
    one = contract.evaluate(dataset, as_of, workers=1).to_json()
    assert '"payments": []' in one
    for n in (2, 3):
        assert contract.evaluate(dataset, as_of, workers=n).to_json() == one
        streamed = io.StringIO()
        contract.write_json(dataset, as_of, streamed, workers=n)
        assert streamed.getvalue() == one


@pytest.mark.parametrize("at_once", [True, False])
def test_each_process_copies_its_part_into_place_and_appending_or_refusing_kernels_still_give_the_bytes(
        at_once, tmp_path, monkeypatch):
    from pbrlang import parallel

    if not at_once:  # as a statement too large to write from this process: the kernel copies each part
        monkeypatch.setattr(parallel, "WRITTEN_AT_ONCE", 0)
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


def test_many_new_objects_go_straight_to_the_oldest_generation_and_none_stays_frozen():
    """Fewer than FREEZE_FROM, but many: not walked by the next young collection, not frozen."""
    import gc

    from pbrlang.data import no_cycle_collection

    gc.enable()
    gc.collect()
    assert gc.get_freeze_count() == 0
    with no_cycle_collection():
        rows = [(i, str(i)) for i in range(no_cycle_collection.PROMOTE_FROM + 1000)]
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert gc.get_count()[0] < 100  # nothing young left to walk
    oldest = {id(o) for o in gc.get_objects(generation=2)}
    assert id(rows) in oldest and id(rows[-1]) in oldest
    # A program that froze its own objects keeps them frozen: its young objects are left as usual.
    mine = [[i] for i in range(10)]
    gc.freeze()
    frozen = gc.get_freeze_count()
    try:
        with no_cycle_collection():
            more = [(i, str(i)) for i in range(no_cycle_collection.PROMOTE_FROM + 1000)]
        assert gc.get_freeze_count() == frozen
        assert id(more) not in {id(o) for o in gc.get_objects(generation=2)} and mine
    finally:
        gc.unfreeze()


@pytest.mark.parametrize("share", [150, 7, 20_000])
@pytest.mark.parametrize("scheme", ["work-programme", "recovery-partnership", "innovation-fund"])
def test_rows_sent_back_a_chunk_at_a_time_join_in_the_single_process_order(tmp_path, monkeypatch, share, scheme):
    """The Work Programme's payments finish in each process (rows sent back); the other two
    contracts' do not (each subject's claims sent back, taken through the caps here)."""
    from pbrlang import parallel

    folder = gen.generate(scheme, tmp_path, 2000, seed=17)
    as_of = gen.default_as_of(scheme)
    contract = pbrlang.load(example(scheme))
    dataset = contract.load_data([folder])
    one = contract.evaluate(dataset, as_of, workers=1)
    # Chunks of several sizes (one chunk, taken by this process alone; many, shared).
    monkeypatch.setattr(parallel, "SHARE", share)
    for n in (2, 3):
        many = contract.evaluate(dataset, as_of, workers=n)
        assert many.rows == one.rows
        assert many.totals.__dict__ == one.totals.__dict__
        assert (many.subjects_evaluated, many.subjects_eligible) == (one.subjects_evaluated, one.subjects_eligible)
        assert many.to_json() == one.to_json()


def test_the_other_processes_take_chunks_from_the_back_while_this_one_takes_them_from_the_front(
        tmp_path, monkeypatch):
    from pbrlang import parallel

    taken = []
    real = parallel._Helpers.own_chunks

    def own_chunks(self):
        for number in real(self):
            taken.append(number)
            yield number
            # However slowly the other process starts, it has taken a chunk before this one goes on.
            deadline = time.monotonic() + 30
            while self._CLAIMS.unpack(os.pread(self.claims, self._CLAIMS.size, 0))[1] == self.chunks - 1 \
                    and time.monotonic() < deadline:
                time.sleep(0.001)

    monkeypatch.setattr(parallel._Helpers, "own_chunks", own_chunks)
    monkeypatch.setattr(parallel, "SHARE", 10)
    folder = gen.generate("work-programme", tmp_path, 1000, seed=3)
    contract = pbrlang.load(example("work-programme"))
    dataset = contract.load_data([folder])
    contract.evaluate(dataset, gen.default_as_of("work-programme"), workers=2)
    # This process's chunks are the first ones, in order; the other process did the rest.
    assert taken == list(range(len(taken))) and 0 < len(taken) < 100


@pytest.mark.parametrize("how,said", [("raises", "OSError: disk full"), ("dies", "signal 9")])
def test_a_process_that_fails_or_dies_fails_the_run_and_says_so(tmp_path, monkeypatch, how, said):
    import signal

    from pbrlang import parallel

    class Failing:  # only the other processes write rows out (this one reads them)
        @staticmethod
        def dumps(value):
            if how == "dies":
                os.kill(os.getpid(), signal.SIGKILL)
            raise OSError("disk full")

        loads = staticmethod(parallel.marshal.loads)

    monkeypatch.setattr(parallel, "marshal", Failing)
    monkeypatch.setattr(parallel, "SHARE", 10)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    folder = gen.generate("work-programme", tmp_path, 1000, seed=3)
    contract = pbrlang.load(example("work-programme"))
    dataset = contract.load_data([folder])
    with pytest.raises(pbrlang.EvaluationError) as err:
        contract.evaluate(dataset, gen.default_as_of("work-programme"), workers=2)
    assert "a process evaluating part of the subjects stopped before it had finished" in str(err.value)
    assert said in str(err.value)
    assert not os.listdir(scratch)  # nothing left behind: no files, and no process still running
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


@pytest.mark.parametrize("scheme,path", [("work-programme", "json"), ("innovation-fund", "claims")])
def test_a_process_that_dies_while_writing_its_part_or_finding_claims_fails_the_run(tmp_path, monkeypatch,
                                                                                   scheme, path):
    import signal

    from pbrlang import evaluator, parallel

    parent = os.getpid()
    if path == "json":
        real = parallel._format

        def dying(*args):
            if os.getpid() != parent:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args)

        monkeypatch.setattr(parallel, "_format", dying)
    else:
        real = evaluator.Evaluation.first_pass

        def dying(self, rows=None):
            if os.getpid() != parent:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(self, rows)

        monkeypatch.setattr(evaluator.Evaluation, "first_pass", dying)
        monkeypatch.setattr(parallel, "SHARE", 10)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    folder = gen.generate(scheme, tmp_path, 1000, seed=3)
    contract = pbrlang.load(example(scheme))
    dataset = contract.load_data([folder])
    with pytest.raises(pbrlang.EvaluationError) as err:
        if path == "json":
            contract.write_json(dataset, gen.default_as_of(scheme), io.StringIO(), workers=2)
        else:
            contract.evaluate(dataset, gen.default_as_of(scheme), workers=2)
    assert "a process evaluating part of the subjects stopped before it had finished (signal 9)" in str(err.value)
    assert not os.listdir(scratch)
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


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


# ---- each process loading only its own subjects -------------------------------------------------

def test_each_process_loading_its_own_range_of_subjects_gives_the_same_bytes(tmp_path, monkeypatch):
    from conftest import pbr

    folder = gen.generate("work-programme", tmp_path, 3000, seed=23)
    as_of = gen.default_as_of("work-programme")
    contract = pbrlang.load(example("work-programme"))
    one = contract.evaluate([folder], as_of, workers=1).to_json().encode("utf-8")
    for n in (2, 3):
        out = tmp_path / f"split-{n}.json"
        done = pbr("eval", example("work-programme"), "--data", folder, "--as-of", as_of.isoformat(),
                   "--format", "json", "--output", out, "--workers", str(n))
        assert done.returncode == 0, done.stderr
        assert out.read_bytes() == one
    # The same, called directly: it did load in ranges (None would mean it fell back to loading whole).
    from pbrlang import parallel

    # A statement this small is written by this process, its pieces many to a kernel call.
    placed, written, formatted = [], [], []
    place, write_pieces, format_part = parallel._place, parallel._write_pieces, parallel._format
    monkeypatch.setattr(parallel, "_place", lambda job: placed.append(place(job)) or placed[-1])
    monkeypatch.setattr(parallel, "_write_pieces", lambda fd, pieces: written.append(write_pieces(fd, pieces)))

    def format_seen(run, rows, number, folder):
        part = format_part(run, rows, number, folder)
        formatted.append((number, type(part[0]), os.listdir(folder)))
        return part

    monkeypatch.setattr(parallel, "_format", format_seen)
    out = tmp_path / "direct.json"
    warnings = parallel.write_json_split(contract.compiled, [folder], as_of,
                                         lambda: open(out, "w", encoding="utf-8", newline=""), 2)
    assert warnings == [] and out.read_bytes() == one
    assert written == [None] and placed == []
    # This process formatted its own part (the first) in memory, not into a file of the folder.
    assert [(number, kind) for number, kind, _ in formatted] == [(0, bytes)]
    assert "part-0.json" not in formatted[0][2]
    # Unless it is more than one chunk of subjects: then into its file, as the other parts.
    chunk = parallel.CHUNK
    monkeypatch.setattr(parallel, "CHUNK", 100)
    formatted.clear()
    assert parallel.write_json_split(contract.compiled, [folder], as_of,
                                     lambda: open(out, "w", encoding="utf-8", newline=""), 2) == []
    assert out.read_bytes() == one
    assert [(number, kind) for number, kind, _ in formatted] == [(0, str)] and "part-0.json" in formatted[0][2]
    monkeypatch.setattr(parallel, "CHUNK", chunk)
    # A larger one: every part is copied into place by the kernel, none falls back to going through
    # Python (the output is opened after the workers were forked, so they cannot write to it).
    monkeypatch.setattr(parallel, "WRITTEN_AT_ONCE", 0)
    written.clear()
    warnings = parallel.write_json_split(contract.compiled, [folder], as_of,
                                         lambda: open(out, "w", encoding="utf-8", newline=""), 2)
    assert warnings == [] and out.read_bytes() == one
    assert written == [] and placed == [True, True]


def test_pieces_a_short_write_left_are_written_after_it(tmp_path, monkeypatch):
    from pbrlang import parallel

    pieces = [memoryview(bytes([65 + i % 26]) * (i % 7)) for i in range(3000)]  # some empty
    real_write = os.write
    # The kernel takes at most 10 bytes of a group, and 5 of a piece written alone.
    monkeypatch.setattr(os, "writev", lambda fd, group: real_write(fd, b"".join(group)[:10]))
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, data[:5]))
    path = tmp_path / "pieces"
    with open(path, "wb") as out:
        parallel._write_pieces(out.fileno(), pieces)
    assert path.read_bytes() == b"".join(pieces)


def test_both_cores_load_and_write_the_json_statement_from_split_from_subjects(tmp_path, monkeypatch):
    from pbrlang import parallel

    folder = gen.generate("work-programme", tmp_path, 700, seed=41)
    contract = pbrlang.load(example("work-programme"))
    as_of = gen.default_as_of("work-programme")
    one = contract.evaluate([folder], as_of, workers=1).to_json().encode("utf-8")
    lines = len((folder / "participants.csv").read_text().splitlines())
    out = tmp_path / "statement.json"
    for split_from, split in ((lines + 1, False), (lines, True)):
        monkeypatch.setattr(parallel, "SPLIT_FROM", split_from)
        warnings = parallel.write_json_split(contract.compiled, [folder], as_of,
                                             lambda: open(out, "w", encoding="utf-8", newline=""))
        assert (warnings is not None) == split
        if split:
            assert out.read_bytes() == one


def test_the_ranges_hold_every_row_once_and_only_their_subjects_rows(tmp_path):
    from pbrlang import parallel
    from pbrlang.data import Part, load

    folder = gen.generate("work-programme", tmp_path, 1500, seed=29)
    contract = pbrlang.load(example("work-programme"))
    fields = parallel.id_fields(contract.compiled)
    assert fields == {"participants": 0, "employment": 0}
    whole = load(contract.program, [folder])
    cuts = parallel._boundaries((folder / "participants.csv").read_text(), "id", 3)
    bounds = [None] + cuts + [None]
    parts = [load(contract.program, [folder], part=Part(bounds[i], bounds[i + 1], fields)) for i in range(3)]
    for name, table in whole.tables.items():
        got = [row for p in parts for row in p.tables[name].rows]
        assert sorted(got) == sorted(table.rows)
        for i, p in enumerate(parts):
            assert all((bounds[i] is None or bounds[i] <= r[0]) and (bounds[i + 1] is None or r[0] < bounds[i + 1])
                       for r in p.tables[name].rows)
            # What the evaluation looks up: each subject's rows, as in the whole table.
            for value, rows in p.tables[name].by_reference.get(0, {}).items():
                assert rows == table.by_reference[0][value]
    assert all(300 <= len(p.tables["participants"].rows) <= 700 for p in parts)  # cut from a sample: about a third each


def test_wrong_data_is_reported_as_when_loaded_whole(tmp_path):
    # The ranges load separately; a problem in any of them sends the data through the usual
    # loader, which reports every problem, in file order, exactly as before.
    from conftest import pbr

    folder = gen.generate("work-programme", tmp_path, 1200, seed=31)
    employment = folder / "employment.csv"
    good = employment.read_text().splitlines()
    args = ["eval", example("work-programme"), "--data", folder, "--as-of", "2014-06-30", "--format", "json"]
    # Bad dates in the rows of the lowest and the highest subject id (two ranges); then a
    # reference to no one.
    ids = sorted(line.split(",")[0] for line in good[1:])
    first = next(i for i, line in enumerate(good) if line.startswith(ids[0] + ","))
    last = next(i for i, line in enumerate(good) if line.startswith(ids[-1] + ","))
    bad_dates = list(good)
    bad_dates[first] = ids[0] + ",2013-02-30,"
    bad_dates[last] = ids[-1] + ",2013-13-01,"
    for lines, expected in ((bad_dates, ["2013-02-30", "2013-13-01"]),
                            (good[:-3] + ["NOBODY,2013-01-01,"] + good[-2:], ['"NOBODY", which does not exist'])):
        employment.write_text("\n".join(lines) + "\n")
        split = pbr(*args, "--workers", "2", "--output", tmp_path / "a.json")
        whole = pbr(*args, "--workers", "1", "--output", tmp_path / "b.json")
        assert split.returncode == whole.returncode == 1
        assert split.stderr == whole.stderr
        assert all(text in split.stderr for text in expected) and "Traceback" not in split.stderr


@pytest.mark.parametrize("scheme", ["recovery-partnership", "innovation-fund", "peterborough-sib",
                                    "troubled-families"])
def test_contracts_of_other_shapes_are_not_loaded_in_ranges(scheme):
    from pbrlang import parallel

    # Caps or ceilings shared between subjects, cohorts, or tables reaching subjects through other tables.
    assert parallel.id_fields(pbrlang.load(example(scheme)).compiled) is None


def test_a_table_reaching_subjects_through_another_table_keeps_the_data_whole():
    from pbrlang import parallel

    chained = PEOPLE.replace("subject person: people\n", """table enrolments:
  id: text key
  person_id: people
table sessions:
  enrolment_id: enrolments
  on: date
subject person: people
""")
    assert parallel.id_fields(pbrlang.loads(PEOPLE).compiled) == {"people": 0}
    assert parallel.id_fields(pbrlang.loads(chained).compiled) is None


@given(st.lists(st.text(alphabet="P0129a_", max_size=4), max_size=30),
       st.one_of(st.none(), st.text(alphabet="P0129a_", min_size=1, max_size=3)),
       st.one_of(st.none(), st.text(alphabet="P0129a_", min_size=1, max_size=3)))
def test_a_part_chooses_the_same_cells_as_text_as_it_holds_values_once_read(cells, low, high):
    from pbrlang.data import Part

    part = Part(low, high, {"t": 0})
    assert part.chosen(cells) == [part.holds(c if c != "" else None) for c in cells]
    rest = [Part(None, low, {}), Part(low, None, {})] if low is not None else [Part(None, None, {})]
    assert all(sum(p.holds(c or None) for p in rest) == 1 for c in cells)  # two ranges cut at `low`: each id in one


# Few characters, on both sides of the comma (space < "," < "A" < "é"), so that ids that are
# prefixes of a bound, and bounds holding a comma, come often.
@given(st.lists(st.tuples(st.text(alphabet=" Aé", max_size=3), st.text(alphabet=",x", max_size=2)), max_size=30),
       st.one_of(st.none(), st.text(alphabet=" ,Aé", min_size=1, max_size=3)),
       st.one_of(st.none(), st.text(alphabet=" ,Aé", min_size=1, max_size=3)))
def test_a_part_choosing_whole_lines_by_their_first_cell_chooses_as_by_the_cell(rows, low, high):
    # A line is its first cell, then (when there are more cells) a comma and the rest.
    from pbrlang.data import Part

    part = Part(low, high, {"t": 0})
    lines = [cell + ("," + rest if rest else "") for cell, rest in rows]
    by_cell = [part.holds(cell if cell != "" else None) for cell, _ in rows]
    if part.chooses_whole_lines():
        assert part.chosen(lines) == by_cell
    # Bounds made only of characters after the comma (ids such as P123) are chosen by lines.
    bounds = [b for b in (low, high) if b is not None]
    if bounds and all(set(b) <= set("Aé") for b in bounds):
        assert part.chooses_whole_lines()
