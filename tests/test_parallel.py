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
