"""Broken contracts give positioned errors; each expected message is a golden file next to it."""

from __future__ import annotations

from pathlib import Path

import pytest

import pbrlang
from conftest import ROOT, golden, pbr

BROKEN = sorted((ROOT / "tests" / "contracts" / "broken").glob("*.pbr"))


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_broken_contract_message(path: Path, monkeypatch):
    monkeypatch.chdir(ROOT)  # so messages name the file as a user in the checkout would
    with pytest.raises(pbrlang.ContractError) as info:
        pbrlang.load(path.relative_to(ROOT))
    golden(path.with_suffix(".err"), info.value.render() + "\n")


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_pbr_check_rejects_with_exit_1_and_no_traceback(path: Path):
    out = pbr("check", path.relative_to(ROOT))
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert f"{path.relative_to(ROOT)}:" in out.stderr  # file:line:column


def test_every_error_has_line_column_and_caret():
    for path in BROKEN:
        with pytest.raises(pbrlang.ContractError) as info:
            pbrlang.load(path)
        for d in info.value.diagnostics:
            assert d.span is not None and d.span.line >= 1 and d.span.column >= 1
            assert "^" in d.render()


def test_checker_reports_every_problem_not_just_the_first():
    with pytest.raises(pbrlang.ContractCheckError) as info:
        pbrlang.load(ROOT / "tests" / "contracts" / "broken" / "several_errors.pbr")
    assert len(info.value.diagnostics) >= 3
    lines = [d.span.line for d in info.value.diagnostics]
    assert lines == sorted(lines)


def test_did_you_mean_for_fields():
    with pytest.raises(pbrlang.ContractCheckError) as info:
        pbrlang.load(ROOT / "tests" / "contracts" / "broken" / "unknown_field.pbr")
    assert "did you mean `attached_on`?" in info.value.render()


def test_missing_contract_file_is_a_usage_error():
    out = pbr("check", "no/such/contract.pbr")
    assert out.returncode == 1
    assert "no such contract file" in out.stderr
    assert "Traceback" not in out.stderr


def test_check_warns_about_likely_mistakes_without_failing(monkeypatch):
    monkeypatch.chdir(ROOT)
    path = Path("tests/contracts/warnings/likely_mistakes.pbr")
    contract = pbrlang.load(path)
    codes = sorted(w.code for w in contract.warnings)
    assert codes == ["W001", "W002", "W003", "W004", "W005"]
    out = pbr("check", path)
    assert out.returncode == 0
    golden(path.with_suffix(".err"), out.stderr)


def test_examples_have_no_warnings():
    from conftest import SCHEMES, example

    for scheme in SCHEMES:
        assert pbrlang.load(example(scheme)).warnings == (), scheme
