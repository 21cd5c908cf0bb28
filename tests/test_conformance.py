"""The conformance suite: one folder per language feature, each a small contract and its answer.

Each folder of tests/conformance/ holds:

- `contract.pbr`, the contract;
- `data/`, its tables as CSV files;
- `case.json`, {"as_of": "YYYY-MM-DD"};
- either `expected.json`, the statement (compared as parsed JSON, so layout does not matter), or
  `expected-error.txt`, the exact error as `pbr eval` prints it (a contract's diagnostics, a data
  error or an evaluation error);
- `README.md`, what the case pins down and why the expected figures are right (each was worked
  out by hand from the language's documented rules, then compared with the implementation's);
- optionally `xfail.txt`: the case shows a bug; its expected file holds the correct answer, and
  the test is a strict xfail with the file's text as the reason, until the bug is fixed.

The contract is loaded as `contract.pbr` and the data as `data`, from inside the folder, so that
messages name the files as a user in that folder would see them. PBR_REGOLD=1 rewrites the expected
file from the current output (then review the change with git diff, and check it by hand).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import pbrlang
from conftest import REGOLD, ROOT

CASES = sorted(p for p in (ROOT / "tests" / "conformance").iterdir() if p.is_dir())


def _params():
    out = []
    for folder in CASES:
        marks = []
        xfail = folder / "xfail.txt"
        if xfail.exists():
            marks.append(pytest.mark.xfail(strict=True, reason=xfail.read_text(encoding="utf-8").strip()))
        out.append(pytest.param(folder, marks=marks, id=folder.name))
    return out


def run(folder: Path) -> tuple[dict | None, str | None]:
    """(statement as parsed JSON, None) or (None, the error as pbr eval prints it)."""
    as_of = json.loads((folder / "case.json").read_text(encoding="utf-8"))["as_of"]
    try:
        contract = pbrlang.load("contract.pbr")
        statement = contract.evaluate(["data"], as_of=as_of)
        return json.loads(statement.to_json()), None
    except pbrlang.ContractError as err:
        return None, err.render()
    except pbrlang.PbrError as err:
        return None, str(err)


def test_the_suite_is_complete():
    assert len(CASES) >= 25
    errors = [f for f in CASES if (f / "expected-error.txt").exists()]
    assert len(errors) >= 8
    for folder in CASES:
        assert (folder / "contract.pbr").is_file() and (folder / "data").is_dir(), folder.name
        assert (folder / "case.json").is_file() and (folder / "README.md").is_file(), folder.name
        assert (folder / "expected.json").exists() != (folder / "expected-error.txt").exists(), folder.name


@pytest.mark.parametrize("folder", _params())
def test_conformance(folder: Path, monkeypatch):
    monkeypatch.chdir(folder)
    statement, error = run(folder)
    expected_json = folder / "expected.json"
    expected_error = folder / "expected-error.txt"
    if REGOLD and not (folder / "xfail.txt").exists():
        if error is None:
            expected_json.write_text(json.dumps(statement, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        else:
            expected_error.write_text(error + "\n", encoding="utf-8")
    if expected_error.exists():
        assert error is not None, f"{folder.name}: expected an error, got a statement"
        assert error + "\n" == expected_error.read_text(encoding="utf-8")
    else:
        assert error is None, f"{folder.name}: expected a statement, got:\n{error}"
        assert statement == json.loads(expected_json.read_text(encoding="utf-8"))


CLI_CASES = ["tariff-two-keys", "recurring-stops-at-break", "ceiling-overflow", "cohort-pool"]


@pytest.mark.parametrize("name", CLI_CASES)
def test_conformance_through_the_command_line(name: str):
    """`pbr eval --format json` prints the same statement (a few cases are enough for the CLI)."""
    from conftest import pbr

    folder = ROOT / "tests" / "conformance" / name
    as_of = json.loads((folder / "case.json").read_text(encoding="utf-8"))["as_of"]
    out = pbr("eval", "contract.pbr", "--data", "data", "--as-of", as_of, "--format", "json", cwd=folder)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == json.loads((folder / "expected.json").read_text(encoding="utf-8"))
