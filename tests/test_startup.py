"""`pbr check` starts quickly: it imports only what checking needs, and the analysed grammar is cached."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT, example

import pbrlang
import pbrlang.nodes as n
from pbrlang import parser


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(os.environ, **env), capture_output=True,
                          text=True, timeout=120)


def test_pbr_check_imports_nothing_of_evaluation(tmp_path):
    code = ("import sys; from pbrlang import cli; assert cli.run(['check', %r]) == 0; "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('pbrlang'))))" % str(example("work-programme")))
    run = _python(code, XDG_CACHE_HOME=str(tmp_path))  # nothing cached: the contract is checked
    assert run.returncode == 0, run.stderr
    loaded = set(run.stdout.split("\n")[-2].split())
    assert "pbrlang.checker" in loaded
    for module in ("compiler", "evaluator", "statement", "data", "parallel", "explain", "calendar", "ledger"):
        assert f"pbrlang.{module}" not in loaded


def test_a_run_small_enough_for_one_process_never_imports_multiprocessing(tmp_path):
    """Workers are for large data; importing multiprocessing costs every small run 10-15 ms."""
    data = example("work-programme").parent / "sample"
    code = ("import sys; from pbrlang import cli; "
            "assert cli.run(['eval', %r, '--data', %r, '--as-of', '2014-06-30', '--format', 'json', "
            "'--output', %r]) == 0; "
            "import pbrlang; c = pbrlang.load(%r); c.evaluate(c.load_data([%r]), '2014-06-30'); "
            "print('pbrlang.parallel' in sys.modules, 'multiprocessing' in sys.modules)"
            % (str(example("work-programme")), str(data), str(tmp_path / "s.json"), str(example("work-programme")),
               str(data)))
    run = _python(code)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n")[-2] == "True False"
    assert (tmp_path / "s.json").read_text().startswith("{")


def test_the_package_still_offers_the_statement_classes():
    import pbrlang
    from pbrlang import statement

    assert pbrlang.Statement is statement.Statement
    assert pbrlang.Payment is statement.Payment and pbrlang.Cut is statement.Cut


def test_a_new_process_reads_the_analysed_grammar_from_the_user_cache(tmp_path):
    code = ("import logging, lark; lark.logger.setLevel(logging.DEBUG); "
            "from pbrlang import parser; parser._lark()")
    first = _python(code, XDG_CACHE_HOME=str(tmp_path))
    assert first.returncode == 0, first.stderr
    (cached,) = (tmp_path / "pbrlang").iterdir()
    second = _python(code, XDG_CACHE_HOME=str(tmp_path))
    assert second.returncode == 0, second.stderr
    assert f"Loading grammar from cache: {cached}" in second.stderr


def test_a_cache_folder_that_cannot_be_made_leaves_the_cache_in_lark_s_own_place(tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "a-file"))
    assert parser._cache_file("grammar") is True


def test_a_node_is_shown_as_attrs_would_show_it():
    node = n.Binary("+", n.Ref("x", span=None), n.Literal("integer", 1), type="t", meaning="m")
    assert repr(node) == "Binary(op='+', left=Ref(name='x'), right=Literal(kind='integer', value=1))"
    assert repr(n.AsOf()) == "AsOf()"


def test_the_checked_program_compares_and_shows_as_attrs_would():
    """program.py's classes share the tree's __repr__, __eq__ and __hash__: equal when they say the
    same, wherever they were written; different when anything they say differs."""
    text = example("work-programme").read_text()
    first = pbrlang.loads(text, "a.pbr").program
    moved = pbrlang.loads("\n\n" + text, "b.pbr").program  # every span moves down two lines
    assert first.tables == moved.tables and first.outcomes == moved.outcomes and first.caps == moved.caps
    assert first.tables["participants"].span != moved.tables["participants"].span
    assert hash(first.tables["participants"]) == hash(moved.tables["participants"])
    cheaper = pbrlang.loads(text.replace("£1,200.00       | £170.00", "£1,100.00       | £170.00"), "c.pbr").program
    assert cheaper.tariffs["job_outcome_fee"] != first.tariffs["job_outcome_fee"] and cheaper.outcomes == first.outcomes
    assert first.subject != first.tables["participants"]  # another class is never equal
    assert repr(first.subject) == "Subject(name='participant', table='participants')"


def _main(monkeypatch, *args: str) -> list[int]:
    """Run `pbr` as its console script does, in this process: the exit codes it ended with."""
    from pbrlang import cli

    class Ended(Exception):
        pass

    ended = []

    def end(code):
        ended.append(code)
        raise Ended

    monkeypatch.setattr(os, "_exit", end)
    # As when nothing watches the process (coverage may be watching this test).
    monkeypatch.setattr(sys, "gettrace", lambda: None)
    monkeypatch.setattr(sys, "getprofile", lambda: None)
    monkeypatch.setattr(sys, "argv", ["pbr", *args])
    try:
        cli.main()
    except Ended:
        pass
    return ended


def test_the_pbr_command_pauses_the_collector_and_ends_without_python_s_finalization(monkeypatch, capsys):
    """`pbr` runs with the cycle collector paused, and ends with os._exit once its streams are
    flushed: freeing its objects one by one would only cost time. run(), which embedding
    programs call, leaves the collector be."""
    import gc

    from pbrlang import cli

    collecting = []
    real_run = cli.run
    monkeypatch.setattr(cli, "run", lambda: collecting.append(gc.isenabled()) or real_run())
    try:
        ended = _main(monkeypatch, "check", str(example("work-programme")))
    finally:
        gc.enable()  # this test's process goes on
    assert ended == [0] and collecting == [False] and "ok" in capsys.readouterr().out
    assert real_run(["check", str(example("work-programme"))]) == 0 and gc.isenabled()


def test_output_that_cannot_be_flushed_as_pbr_ends_is_an_error_not_a_python_message(monkeypatch, capsys):
    import errno
    import gc
    import io

    class Full(io.StringIO):
        def flush(self):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sys, "stdout", Full())
    try:
        ended = _main(monkeypatch, "check", str(example("work-programme")))
    finally:
        gc.enable()
    assert ended == [1] and capsys.readouterr().err == "error: No space left on device\n"


def test_a_profiler_watching_pbr_still_writes_what_it_found(tmp_path):
    profile = tmp_path / "pbr.prof"
    run = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "pbrlang.cli", "check",
                          str(example("work-programme"))], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "ok" in run.stdout and profile.stat().st_size > 0
