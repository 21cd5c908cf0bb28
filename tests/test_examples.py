"""Each example reproduces its scheme's sample statement, field by field."""

from __future__ import annotations

import filecmp
import json

import pytest

from conftest import SCHEMES, SHARED_SCHEMES, example, expected, pbr, sample


def _schemes():
    return [s for s in SCHEMES if example(s).exists()]


@pytest.mark.parametrize("scheme", _schemes())
def test_example_matches_expected_statement(scheme, contracts):
    want = expected(scheme)
    got = contracts[scheme].evaluate([sample(scheme)], as_of=want["as_of"]).to_dict()
    for key, value in want.items():
        if key == "payments":
            continue
        assert got[key] == value, key
    assert len(got["payments"]) == len(want["payments"])
    for g, w in zip(got["payments"], want["payments"]):
        # Every field the expected statement has, with the same value, in the same order.
        assert {k: g.get(k) for k in w} == w


@pytest.mark.parametrize("scheme", _schemes())
def test_cli_json_is_the_statement(scheme):
    want = expected(scheme)
    out = pbr("eval", example(scheme), "--data", sample(scheme), "--as-of", want["as_of"], "--format", "json")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["total"] == want["total"]
    assert [(p["subject"], p["outcome"], p["date"], p["amount"]) for p in got["payments"]] == [
        (p["subject"], p["outcome"], p["date"], p["amount"]) for p in want["payments"]
    ]


@pytest.mark.parametrize("scheme", _schemes())
def test_sample_copy_matches_shared_schemes(scheme):
    """The examples carry a copy of the published samples; it must not drift from them."""
    shared = SHARED_SCHEMES / scheme / "sample"
    if not shared.exists():
        pytest.skip("../shared/schemes is not beside this checkout")
    names = sorted(p.name for p in shared.iterdir() if p.suffix in (".csv", ".json"))
    match, mismatch, errors = filecmp.cmpfiles(shared, sample(scheme), names, shallow=False)
    assert mismatch == [] and errors == [], (mismatch, errors)


@pytest.mark.parametrize("scheme", _schemes())
def test_check_passes_for_every_example(scheme):
    out = pbr("check", example(scheme))
    assert out.returncode == 0, out.stderr
    assert "ok" in out.stdout
