"""Contracts kept between runs (pbrlang/cache.py), checked and compiled: used only for the same text
and the same code, never for a contract with errors, and never needed."""

from __future__ import annotations

import ast
import io
import json
import os
import re
import subprocess
import sys
import zlib

import pytest
from conftest import ROOT, SCHEMES, example, sample

import pbrlang
from pbrlang import cache, compiler, contract
from pbrlang.program import labels_by_day


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "pbrlang"


@pytest.fixture
def checks(monkeypatch):
    """How many times a contract was parsed and checked (not read from the cache)."""
    made = []
    real = contract._checked

    def counted(text, name):
        made.append(name)
        return real(text, name)

    monkeypatch.setattr(contract, "_checked", counted)
    return made


@pytest.fixture
def compiles(monkeypatch):
    """How many times a contract was compiled (not read back compiled from the cache)."""
    made = []
    real = compiler.compile_program

    def counted(program, trace=False):
        made.append(program.name)
        return real(program, trace)

    monkeypatch.setattr(compiler, "compile_program", counted)
    return made


def kept(cache_home, kind="contract"):
    return sorted(p.name for p in cache_home.glob(f"{kind}-*.pickle"))


# Each kind of file kept: how it is used, and what counts the times it was made instead.
KINDS = {"contract": (contract.check_file, "checks"), "compiled": (pbrlang.load, "compiles")}


@pytest.fixture(params=sorted(KINDS))
def kind(request, checks, compiles):
    use, counter = KINDS[request.param]
    return request.param, use, {"checks": checks, "compiles": compiles}[counter]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_kept_contract_gives_the_statement_a_checked_one_gives(scheme, cache_home, checks, compiles):
    first = pbrlang.load(example(scheme))
    again = pbrlang.load(example(scheme))
    assert checks == [str(example(scheme))] and len(compiles) == 1  # the second came from the cache
    assert kept(cache_home) and kept(cache_home, "compiled")
    assert again.compiled.program == first.compiled.program and again.warnings == first.warnings
    assert again.compiled.source == first.compiled.source
    assert again.program == first.program and checks == [str(example(scheme))]  # the checked one, kept too
    fresh = pbrlang.loads(example(scheme).read_text(), str(example(scheme)))
    day = json.loads((sample(scheme) / "expected.json").read_text())["as_of"]
    assert again.evaluate([sample(scheme)], day).to_json() == fresh.evaluate([sample(scheme)], day).to_json()
    buffer, fresh_buffer = io.StringIO(), io.StringIO()
    again.write_json([sample(scheme)], day, buffer)
    fresh.write_json([sample(scheme)], day, fresh_buffer)
    assert buffer.getvalue() == fresh_buffer.getvalue()


def test_a_contract_read_back_compiled_shares_its_bands_labels_again(cache_home):
    """The generated code looks a band's label up in the one dict of that band's labels, which the
    band fills: read back, the code's dict must be that one again, or it would never be filled."""
    pbrlang.load(example("work-programme"))
    again = pbrlang.load(example("work-programme"))
    assert again._program is None  # read back compiled
    labels = [v for v in again.compiled.steps.__globals__.values() if type(v).__name__ == "_Labels"]
    assert labels and all(v is labels_by_day(v.entries) for v in labels)


def test_a_kept_contract_s_warnings_are_shown_again(tmp_path):
    """`pbr check` of a contract read back from the cache warns as the first check did."""
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    path = "tests/contracts/warnings/likely_mistakes.pbr"
    code = ("import sys; from pbrlang import cli; code = cli.run(['check', %r]); "
            "print('checked' if 'pbrlang.checker' in sys.modules else 'read back'); sys.exit(code)" % path)
    runs = [subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=120) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0]
    first, second = (r.stdout.splitlines() for r in runs)
    assert (first[-1], second[-1]) == ("checked", "read back")
    assert runs[1].stderr == runs[0].stderr and first[:-1] == second[:-1]
    assert sorted(set(re.findall(r"W00\d", runs[1].stderr))) == ["W001", "W002", "W003", "W004", "W005"]


def test_a_changed_contract_is_checked_again_and_its_errors_are_reported(tmp_path, cache_home, checks):
    path = tmp_path / "c.pbr"
    text = example("work-programme").read_text()
    path.write_text(text)
    pbrlang.load(path)
    path.write_text(text.replace("pays job_outcome_fee[group]", "pays job_outcome_fee[nothing_such]"))
    with pytest.raises(pbrlang.ContractCheckError) as raised:
        pbrlang.load(path)
    assert "nothing_such" in str(raised.value)
    with pytest.raises(pbrlang.ContractCheckError):  # a contract with errors is never kept
        pbrlang.load(path)
    assert len(checks) == 3
    path.write_text(text)
    pbrlang.load(path)
    assert len(checks) == 3  # the good text's program is still kept


def test_the_same_text_under_another_name_is_checked_for_that_name(tmp_path, cache_home, checks):
    """Spans name the file a problem is in: the name is part of what is kept."""
    (tmp_path / "a.pbr").write_text(example("work-programme").read_text())
    (tmp_path / "b.pbr").write_text(example("work-programme").read_text())
    a = pbrlang.load(tmp_path / "a.pbr")
    b = pbrlang.load(tmp_path / "b.pbr")
    assert len(checks) == 2
    assert a.program.outcomes[0].span.source.name.endswith("a.pbr")
    assert b.program.outcomes[0].span.source.name.endswith("b.pbr")


def test_a_program_kept_by_other_code_is_never_read(cache_home, kind, monkeypatch):
    name, use, made = kind
    use(example("work-programme"))
    (path,) = cache_home.glob(f"{name}-*.pickle")
    real = cache._code()
    monkeypatch.setattr(cache, "_code", lambda: ("another pbrlang",))
    use(example("work-programme"))
    assert len(made) == 2
    another = path.with_name(path.name.replace(cache._crc(repr(real)), cache._crc(repr(("another pbrlang",)))))
    path.rename(another)  # even under the name the other code's program would have
    use(example("work-programme"))
    assert len(made) == 3


def test_two_pbrlangs_side_by_side_each_keep_their_own(cache_home, kind, monkeypatch):
    """Two installs running the same contract file do not take turns replacing each other's."""
    name, use, made = kind
    real = cache._code()
    for code in [real, ("another pbrlang",), real, ("another pbrlang",)]:
        monkeypatch.setattr(cache, "_code", lambda code=code: code)
        use(example("work-programme"))
    assert len(made) == 2 and len(kept(cache_home, name)) == 2


@pytest.mark.parametrize("damage", ["cut short", "not a pickle", "writable by others"])
def test_a_damaged_or_unsafe_file_is_passed_over(damage, cache_home, kind):
    name, use, made = kind
    use(example("work-programme"))
    (path,) = cache_home.glob(f"{name}-*.pickle")
    if damage == "cut short":
        path.write_bytes(path.read_bytes()[:-100])
    elif damage == "not a pickle":
        path.write_bytes(b"PK\x03\x04 not what pbrlang writes")
    else:
        path.chmod(0o666)
    again = use(example("work-programme"))
    assert len(made) == 2 and again.name == "work-programme"
    assert oct(path.stat().st_mode & 0o777) == "0o600"  # written again, whole, for this user only


def test_no_cache_folder_still_loads(tmp_path, monkeypatch, checks):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "a-file"))
    pbrlang.load(example("work-programme"))
    pbrlang.load(example("work-programme"))
    assert len(checks) == 2


def test_at_most_keep_contracts_are_kept_the_oldest_going_first(tmp_path, cache_home, checks, monkeypatch):
    monkeypatch.setattr(cache, "KEEP", 3)
    text = example("work-programme").read_text()
    paths = [tmp_path / f"c{i}.pbr" for i in range(5)]
    for i, path in enumerate(paths):
        path.write_text(text)
        contract.check_file(path)
        (kept_for,) = cache_home.glob(f"contract-{zlib.crc32(str(path).encode()):08x}-*.pickle")
        os.utime(kept_for, ns=(i * 10**9, i * 10**9))  # made one after the other, a second apart
    assert len(kept(cache_home)) == 3
    contract.check_file(paths[4])
    contract.check_file(paths[0])
    assert checks.count(str(paths[4])) == 1  # still kept
    assert checks.count(str(paths[0])) == 2  # the oldest: forgotten


# What evaluating a kept contract needs none of: Lark and the parser, the checker, the syntax tree,
# the compiler, attrs and the modules attrs imports (about 30 ms of a new process).
NOT_NEEDED = ("attr", "attrs", "inspect", "lark", "pbrlang.checker", "pbrlang.compiler", "pbrlang.nodes",
              "pbrlang.parser", "typing")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_pbr_eval_of_a_kept_contract_imports_nothing_of_checking(tmp_path, scheme):
    """The point of keeping it: a new process skips Lark, the parser, the checker, the syntax tree,
    the compiler and attrs, and writes the same statement."""
    day = json.loads((sample(scheme) / "expected.json").read_text())["as_of"]
    code = ("import sys; from pbrlang import cli; "
            "assert cli.run(['eval', %r, '--data', %r, '--as-of', %r, '--format', 'json', "
            "'--output', sys.argv[1]]) == 0; print(sorted(m for m in %r if m in sys.modules))"
            % (str(example(scheme)), str(sample(scheme)), day, NOT_NEEDED))
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    runs = [subprocess.run([sys.executable, "-c", code, str(tmp_path / f"s{i}.json")], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=120) for i in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr + runs[1].stderr
    first = set(ast.literal_eval(runs[0].stdout.split("\n")[-2]))
    assert {"lark", "pbrlang.checker", "pbrlang.compiler", "pbrlang.nodes", "attrs"} <= first
    assert runs[1].stdout.split("\n")[-2] == "[]"
    assert (tmp_path / "s1.json").read_bytes() == (tmp_path / "s0.json").read_bytes()
    assert '"total": "' in (tmp_path / "s1.json").read_text()
