"""Whatever text arrives, pbrlang.loads answers with a Contract or with positioned diagnostics.

The rule: for any str (hand-written, truncated, random bytes, hostile),
`pbrlang.loads(text)` returns a checked Contract or raises a ContractError
(ContractSyntaxError or ContractCheckError) whose every diagnostic has a span
with a line and a column at least 1, inside the text, and renders; never
another exception, never a hang, never a RecursionError. The texts come from:

- the grammar itself (hypothesis.extra.lark.from_lark), with realistic tokens;
- the five example contracts, mutated: cut short at token boundaries, lines
  deleted and duplicated, neighbouring tokens swapped, random characters
  (NUL, control characters, non-ASCII, unpaired surrogates) put in;
- texts built to be deep or long: `(` x 10,000, `not ` x 10,000, a chain of
  100,000 additions, `-` x 50,000, a 1 MB line. Each must fail with its own
  clear diagnostic in well under a second (asserted with a generous 5 s, as
  CI machines vary).

A contract that survives a mutation is also evaluated on its example's sample
data, where the only errors allowed are pbrlang's own (PbrError); so is an
example with one of its values replaced by `none`, 0, -1 or £0.00.

Crashes found this way are pinned by their own tests at the end of this file.
PBR_FUZZ_SCALE=N multiplies the number of examples, for a longer campaign.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark
from lark import Lark

import pbrlang
from conftest import ROOT, SCHEMES, example as example_path, sample
from pbrlang.limits import MAX_EXPRESSION_DEPTH, MAX_NESTING, MAX_PREFIX_RUN, MAX_TOKENS
from pbrlang.parser import grammar_text

TIME_LIMIT = 5.0  # seconds; every case here takes well under one on a laptop

TEXTS = {s: example_path(s).read_text(encoding="utf-8") for s in SCHEMES}
AS_OF = {
    "work-programme": "2014-06-30",
    "innovation-fund": "2015-06-30",
    "troubled-families": "2015-03-31",
    "recovery-partnership": "2021-06-30",
    "peterborough-sib": "2017-07-31",
}

# PBR_FUZZ_SCALE=20 runs twenty times as many examples (a longer campaign, before a release).
# (The contracts from the grammar draw slowly; the default counts keep this file near 30 s.)
SCALE = int(os.environ.get("PBR_FUZZ_SCALE", "1"))
FUZZ = settings(
    max_examples=100 * SCALE,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    database=None,
)


# ---- the property ------------------------------------------------------------------------


def answer(text: str, name: str = "<fuzz>"):
    """loads(text), checked against the rule; returns the Contract or the ContractError."""
    started = time.perf_counter()
    try:
        result = pbrlang.loads(text, name)
    except pbrlang.ContractError as err:
        assert isinstance(err, (pbrlang.ContractSyntaxError, pbrlang.ContractCheckError)), type(err)
        assert err.diagnostics, "a ContractError with no diagnostics"
        assert any(d.severity == "error" for d in err.diagnostics)
        check_diagnostics(text, err.diagnostics)
        rendered = err.render()
        assert "error[E" in rendered and rendered.endswith("found")
        result = err
    else:
        assert isinstance(result, pbrlang.Contract)
        check_diagnostics(text, result.warnings)
    elapsed = time.perf_counter() - started
    assert elapsed < TIME_LIMIT, f"loads took {elapsed:.1f}s"
    return result


def check_diagnostics(text: str, diagnostics) -> None:
    lines = text.split("\n")
    for d in diagnostics:
        assert re.fullmatch(r"[EW][0-9]{3}", d.code), d.code
        assert d.message
        assert d.span is not None, f"{d.code} {d.message}: no position"
        sp = d.span
        assert sp.line >= 1 and sp.column >= 1, (d.code, d.message, sp)
        assert sp.line <= len(lines), (d.code, d.message, sp.line, len(lines))
        line = lines[sp.line - 1].rstrip("\r")
        assert sp.column <= len(line) + 1, (d.code, d.message, sp, line[:80])
        assert (sp.end_line, sp.end_column) >= (sp.line, sp.column), (d.code, d.message, sp)
        rendered = d.render()
        assert f"[{d.code}]" in rendered and f":{sp.line}:{sp.column}" in rendered


def evaluates_cleanly(contract: pbrlang.Contract, scheme: str) -> None:
    """A contract that loaded is evaluated on the sample data: a statement, or pbrlang's own error."""
    try:
        statement = contract.evaluate([sample(scheme)], as_of=AS_OF[scheme], workers=1)
    except pbrlang.PbrError as err:
        assert str(err)
    else:
        statement.to_json()


# ---- texts from the grammar ------------------------------------------------------------------

# Names a contract would use (from the examples), keywords in backquotes, and a few odd ones.
_EXAMPLE_NAMES = sorted(
    {w for text in TEXTS.values() for w in re.findall(r"(?<![£\w])[A-Za-z_][A-Za-z0-9_]*", re.sub(r"#[^\n]*", "", text))}
)
NAMES = st.one_of(
    st.sampled_from(_EXAMPLE_NAMES),
    st.sampled_from(["`count`", "`first`", "`day`", "`outcome`", "`not`", "x", "_", "a1", "Année"]),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True),
)
DATES = st.one_of(
    st.dates().map(lambda d: f"{d.year:04d}-{d.month:02d}-{d.day:02d}"),
    st.sampled_from(["2014-02-29", "2013-13-01", "0000-00-00", "2012-02-29", "9999-12-31"]),
)
MONEY = st.one_of(
    st.decimals(min_value=0, max_value=10**7, places=2).map(lambda d: f"£{d:,.2f}"),
    st.integers(0, 10**9).map(lambda i: f"£{i}"),
    st.sampled_from(["£0.00", "£1,200.00", "£3,000,000.00", "£0.5"]),
)


def _spaced(strategy):
    return strategy.map(lambda s: s + " ")


def grammar_lark(start):
    return Lark(grammar_text(), parser="lalr", start=start)


def _terminal_strategies(lark: Lark) -> dict:
    """A strategy for every terminal, each followed by a space, so that tokens stay apart."""
    explicit = {}
    for t in lark.terminals:
        if t.name == "WS":
            explicit[t.name] = st.sampled_from([" ", "\n", "\n  ", "\t", "\r\n"])
        elif t.name == "COMMENT":
            explicit[t.name] = st.text(st.characters(blacklist_characters="\n\r", codec="utf-8"), max_size=20).map(
                lambda s: "# " + s + "\n")
        elif t.name == "NAME":
            explicit[t.name] = _spaced(NAMES)
        elif t.name == "DATE":
            explicit[t.name] = _spaced(DATES)
        elif t.name == "MONEY":
            explicit[t.name] = _spaced(MONEY)
        elif t.name == "STRING":
            explicit[t.name] = _spaced(st.text(st.characters(blacklist_characters='"\n', codec="utf-8"),
                                               max_size=12).map(lambda s: f'"{s}"'))
        elif t.pattern.type == "str":
            explicit[t.name] = st.just(t.pattern.value + " ")
        else:
            explicit[t.name] = _spaced(st.from_regex(t.pattern.to_regexp(), fullmatch=True))
    return explicit


_WHOLE = grammar_lark("start")
WHOLE_CONTRACTS = from_lark(_WHOLE, explicit=_terminal_strategies(_WHOLE))

def _declarations(start: str):
    lark = grammar_lark(start)
    terminals, rules, ignore = lark.grammar.compile([start], ())
    used = {t.name for t in terminals} | set(ignore)
    for rule in rules:
        used |= {s.name for s in rule.expansion if s.is_term}
    explicit = {k: v for k, v in _terminal_strategies(lark).items() if k in used}
    return from_lark(lark, start=start, explicit=explicit)


DECLARATIONS = st.one_of(*(_declarations(s) for s in ["let_decl", "outcome_decl", "cap_decl", "eligible_decl",
                                                      "tariff_decl"]))

# A valid start that declarations generated from the grammar can use names of.
HEADER = """contract "fuzz"
funder DWP
funder LA
shares DWP 50%, LA 50%
enum payment_group: JSA_18_24, JSA_25_PLUS, ESA_FLOW
table participants:
  id: text key
  group: payment_group
  attached_on: date
  started_on: date
  born_on: date
table employment:
  participant_id: participants
  start: date
  end: optional date
  with_training: boolean
table school_holidays:
  start: date
  end: date
subject participant: participants
band contract_year:
  year_1  2011-06-01 to 2012-03-31
  year_2  from 2012-04-01
let work = (spells from e.start to e.end for e in employment) counted from attached_on
"""


@settings(FUZZ, max_examples=60 * SCALE)  # drawing from the grammar is slow: most of the time goes there
@given(WHOLE_CONTRACTS)
def test_contracts_from_the_grammar(text):
    answer(text)


@settings(FUZZ, max_examples=40 * SCALE)
@given(st.lists(DECLARATIONS, min_size=1, max_size=3))
def test_declarations_from_the_grammar_after_a_valid_header(declarations):
    text = HEADER + "\n".join(declarations) + "\n"
    result = answer(text)
    if isinstance(result, pbrlang.Contract):
        tables = {"participants": [], "employment": [], "school_holidays": []}
        try:
            result.evaluate(tables, as_of="2014-06-30", workers=1).to_json()
        except pbrlang.PbrError:
            pass


# ---- the examples, mutated ---------------------------------------------------------------------

_TOKEN = re.compile(r'#[^\n]*|"[^"\n]*"|`[^`\n]*`|£[0-9][0-9,]*(?:\.[0-9]+)?|[0-9]{4}-[0-9]{2}-[0-9]{2}'
                    r'|[0-9]+(?:\.[0-9]+)?%?|[A-Za-z_][A-Za-z0-9_]*|[<>!]=|\S')


def token_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _TOKEN.finditer(text) if not m.group().startswith("#")]


def test_every_truncation_of_an_example_at_a_token_boundary():
    """peterborough-sib, cut after each of its tokens in turn (and mid-way through each long one)."""
    text = TEXTS["peterborough-sib"]
    cuts = sorted({end for _, end in token_spans(text)} | {(a + b) // 2 for a, b in token_spans(text) if b - a > 2})
    assert len(cuts) > 200
    valid = 0
    for cut in cuts:
        result = answer(text[:cut])
        valid += isinstance(result, pbrlang.Contract)
    assert valid >= 1  # the whole contract, at least, still loads


@pytest.mark.parametrize("scheme", [s for s in SCHEMES if s != "peterborough-sib"])
def test_sampled_truncations_of_the_other_examples(scheme):
    text = TEXTS[scheme]
    ends = [end for _, end in token_spans(text)]
    for cut in ends[:: max(1, len(ends) // 40)] + [0, 1, len(text) - 1]:
        answer(text[:cut])


@pytest.mark.parametrize("scheme", SCHEMES)
def test_each_line_deleted_and_duplicated(scheme):
    lines = TEXTS[scheme].split("\n")
    step = 1 if scheme == "work-programme" else 3
    for i in range(0, len(lines), step):
        if not lines[i].strip() or lines[i].lstrip().startswith("#"):
            continue
        answer("\n".join(lines[:i] + lines[i + 1:]))
        answer("\n".join(lines[: i + 1] + lines[i:]))


@FUZZ
@given(scheme=st.sampled_from(SCHEMES), data=st.data())
def test_adjacent_tokens_swapped(scheme, data):
    text = TEXTS[scheme]
    spans = token_spans(text)
    i = data.draw(st.integers(0, len(spans) - 2))
    (a, b), (c, d) = spans[i], spans[i + 1]
    mutated = text[:a] + text[c:d] + text[b:c] + text[a:b] + text[d:]
    result = answer(mutated)
    if isinstance(result, pbrlang.Contract):
        evaluates_cleanly(result, scheme)


# Characters to put in: control characters (NUL first), quotes, brackets, operators, the pound
# sign, letters from other scripts, emoji, characters outside the BMP, line and paragraph
# separators, and unpaired surrogates (only a str built in Python can hold those).
ODD = st.one_of(
    st.sampled_from(["\x00", "\x01", "\x1b", "\x7f", "\x0b", "\x0c", "\r", "\u2028", "\u2029", "\ufeff",
                     "\ud800", "\udfff", '"', "`", "#", "£", "$", "'", "(", ")", "[", "]", "|", ":", ",",
                     "-", "not ", "\n", "é", "ß", "中", "🙂", "\U0010ffff", "\u0301"]),
    st.characters(),
    st.text(max_size=8),
)


@FUZZ
@given(scheme=st.sampled_from(SCHEMES), data=st.data())
@example(scheme="work-programme", data=None)
def test_odd_characters_put_in(scheme, data):
    text = TEXTS[scheme]
    if data is None:  # NUL at the start, in a name, in a string and at the end
        for mutated in ["\x00" + text, text.replace("attached_on", "attached\x00on", 1),
                        text.replace('"work-programme"', '"work\x00programme"'), text + "\x00"]:
            answer(mutated)
        return
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text)))
        text = text[:at] + data.draw(ODD) + text[at:]
    result = answer(text)
    if isinstance(result, pbrlang.Contract):
        evaluates_cleanly(result, scheme)


@FUZZ
@given(st.text(max_size=300))
def test_random_unicode(text):
    answer(text)


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_decoded_as_a_file_would_be(raw):
    text = raw.decode("utf-8", errors="replace")
    answer(text)
    answer(raw.decode("latin-1"))


@FUZZ
@given(scheme=st.sampled_from(SCHEMES), data=st.data())
def test_spans_of_an_example_replaced_by_random_text(scheme, data):
    text = TEXTS[scheme]
    spans = token_spans(text)
    i = data.draw(st.integers(0, len(spans) - 1))
    j = data.draw(st.integers(i, min(len(spans) - 1, i + 5)))
    filler = data.draw(st.one_of(st.text(max_size=10), st.sampled_from(list(map(str, [
        "", "(", ")", "not", "-", "none", "true", "£", "0", "2014-02-30", "`", "every", "if", "then",
        "else", "|", ":", "for", "where", "in", "x.y", "a b c", "1/0", "0%"])))))
    mutated = text[: spans[i][0]] + filler + text[spans[j][1]:]
    result = answer(mutated)
    if isinstance(result, pbrlang.Contract):
        evaluates_cleanly(result, scheme)


# ---- deep and long texts -------------------------------------------------------------------

HEAD = 'contract "deep"\nfunder F\ntable t:\n  id: text key\n  d: date\n  a: integer\nsubject s: t\n'


def _deep_cases():
    return {
        "brackets x 10,000": ("E004", "let x = " + "(" * 10_000 + "a" + ")" * 10_000),
        "square brackets x 10,000": ("E004", "let x = a" + "[" * 10_000),
        "not x 10,000": ("E004", HEAD + "let x = " + "not " * 10_000 + "true\n"),
        "- x 50,000": ("E004", HEAD + "let x = " + "-" * 50_000 + "a\n"),
        "- - - x 50,000, spaced": ("E004", HEAD + "let x = " + "- " * 50_000 + "a\n"),
        "a + a ... 100,000 terms": ("E005", HEAD + "let x = " + " + ".join(["a"] * 100_000) + "\n"),
        "a + a ... 5,000 terms": ("E004", HEAD + "let x = " + " + ".join(["a"] * 5_000) + "\n"),
        "a and a ... 20,000 terms": ("E004", HEAD + "let x = " + " and ".join(["true"] * 20_000) + "\n"),
        "a * a ... 10,000 terms": ("E004", HEAD + "let x = " + "*".join(["a"] * 10_000) + "\n"),
        "s.a.a.a ... 10,000": ("E004", HEAD + "let x = s" + ".a" * 10_000 + "\n"),
        "1 day days days ...": ("E004", HEAD + "let x = 1" + " days" * 10_000 + "\n"),
        "counted from x 5,000": ("E004", HEAD + "let x = a" + " counted from d" * 5_000 + "\n"),
        "if ... else if ... x 5,000": ("E004", HEAD + "let x = " + "if true then 1 else " * 5_000 + "1\n"),
        "any ... where any ... x 3,000": ("E004", HEAD + "let x = " + "any y in t where " * 3_000 + "true\n"),
        "count ... where count x 2,000": ("E004", HEAD + "let x = " + "count y in t where (" * 2_000 + "true"),
        "nested calls x 10,000": ("E004", HEAD + "let x = " + "abs(" * 10_000 + "a" + ")" * 10_000 + "\n"),
        "first run of ... x 2,000": ("E004", HEAD + "let x = " + "first run of 2 r in t ordered by r.d meeting " * 2_000 + "true\n"),
        "a 1 MB line": ("E005", "let x = " + "a" * (1 << 20)),
        "a 1 MB line of one name, just under the size limit": ("E003", "a" * 999_000),
        "a 1 MB line of a + a + ...": ("E005", "let x = " + "a+" * 499_000 + "a"),
        "a 1 MB comment": ("E108", "#" + "x" * 999_000),
        "a 1 MB text": ("E108", 'contract "' + "x" * 999_000 + '"'),
        "1 MB of newlines": ("E108", "\n" * 999_000),
        "1 MB of NULs": ("E005", "\x00" * 999_000),
        "200,000 enumeration values": ("E005", HEAD + "enum e: " + ", ".join(f"v{i}" for i in range(200_000))),
        "6,000 enumeration values": ("E005", HEAD + "enum e: " + ", ".join(f"v{i}" for i in range(6_000))),
        "6,000 declarations": ("E005", HEAD + "".join(f"funder f{i}\n" for i in range(6_000))),
        "a chain of 3,000 definitions": ("E004", HEAD + "".join(f"let l{i} = l{i + 1} + 1\n" for i in range(3_000))
                                          + "let l3000 = 1\noutcome o:\n achieved on d\n pays £1\n when l0 > 0\n"),
        "a circle of 3,000 definitions": ("E004", HEAD + "".join(f"let l{i} = l{i + 1} + 1\n" for i in range(3_000))
                                           + "let l3000 = l0\n"),
        "a chain of 2,000 outcomes": ("E004", HEAD + "".join(f"outcome o{i}:\n achieved on d\n pays £1\n requires o{i + 1}\n"
                                                             for i in range(2_000))
                                      + "outcome o2000:\n achieved on d\n pays £1\n"),
        "a circle of 2,000 outcomes": ("E107", HEAD + "".join(f"outcome o{i}:\n achieved on d\n pays £1\n requires o{(i + 1) % 2000}\n"
                                                              for i in range(2_000))),
        "4,000 syntax errors": ("E001", HEAD + "".join(f"outcome o{i}:\n pays\n" for i in range(4_000))),
        "4,000 unknown names": ("E100", HEAD + "".join(f"let l{i} = zz{i} + 1\n" for i in range(4_000))),
    }


DEEP = _deep_cases()


@pytest.mark.parametrize("name", list(DEEP))
def test_deep_and_long_texts_fail_quickly_with_a_clear_error(name):
    code, text = DEEP[name]
    started = time.perf_counter()
    with pytest.raises(pbrlang.ContractError) as info:
        pbrlang.loads(text)
    elapsed = time.perf_counter() - started
    err = info.value
    check_diagnostics(text, err.diagnostics)
    assert err.diagnostics[0].code == code, err.render()[:500]
    assert len(err.diagnostics) <= 101
    err.render()
    assert elapsed < TIME_LIMIT, f"{name}: {elapsed:.2f}s"


def test_the_deep_errors_say_what_is_wrong():
    def first(text):
        with pytest.raises(pbrlang.ContractError) as info:
            pbrlang.loads(text)
        return info.value.diagnostics[0]

    d = first("let x = " + "(" * 10_000)
    assert d.message == f"brackets are nested more than {MAX_NESTING} deep" and (d.span.line, d.span.column) == (1, 73)
    d = first(HEAD + "let x = " + "not " * 10_000 + "true")
    assert d.message == f"more than {MAX_PREFIX_RUN} `not`s or `-`s in a row" and d.span.line == 8
    d = first(HEAD + "let x = " + " + ".join(["a"] * 5_000))
    assert d.message == f"this expression is nested more than {MAX_EXPRESSION_DEPTH} levels deep"
    assert "chain" in d.hint and (d.span.line, d.span.column) == (8, 9)
    d = first(HEAD + "let x = " + "any y in t where " * 3_000 + "true")
    assert d.message == f"this expression is nested more than {MAX_EXPRESSION_DEPTH} levels deep"
    d = first(HEAD + "let x = " + " + ".join(["a"] * 100_000))
    assert d.message == f"the contract has more than {MAX_TOKENS:,} words, numbers and symbols"
    d = first(HEAD + "".join(f"let l{i} = l{i + 1} + 1\n" for i in range(300)) + "let l300 = 1\n")
    assert d.message.startswith("`l0` starts a chain of 301 definitions and outcomes")


def test_the_limits_are_not_a_recursion_limit_in_disguise():
    """With the recursion limit lowered to what a deep caller would leave, the deep texts still fail cleanly."""
    import inspect

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack(0)) + 450)
    try:
        for name in ["not x 10,000", "a + a ... 5,000 terms", "if ... else if ... x 5,000",
                     "any ... where any ... x 3,000", "a chain of 3,000 definitions", "a circle of 3,000 definitions",
                     "a chain of 2,000 outcomes"]:
            with pytest.raises(pbrlang.ContractError):
                pbrlang.loads(DEEP[name][1])
    finally:
        sys.setrecursionlimit(old)


# ---- the command line ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["not x 10,000", "a + a ... 100,000 terms", "a 1 MB line", "1 MB of NULs"])
def test_pbr_check_exits_1_without_a_traceback(name, tmp_path):
    path = tmp_path / "deep.pbr"
    path.write_text(DEEP[name][1], encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "pbrlang.cli", "check", str(path)],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 1, out.stdout[:300]
    assert "Traceback" not in out.stderr
    assert f"error[{DEEP[name][0]}]" in out.stderr and f"{path}:" in out.stderr


@pytest.mark.parametrize("raw", [b"\xff\xfe\x00c\x00o", b"contract \"\xe9\"", b"\x00" * 100, b"", b"\xef\xbb\xbf"])
def test_pbr_check_on_bytes_that_are_not_a_contract(raw, tmp_path):
    path = tmp_path / "odd.pbr"
    path.write_bytes(raw)
    out = subprocess.run([sys.executable, "-m", "pbrlang.cli", "check", str(path)],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode in (0, 1)
    assert "Traceback" not in out.stderr
    assert out.returncode == 1


def test_a_contract_file_with_a_byte_order_mark_checks(tmp_path):
    path = tmp_path / "bom.pbr"
    path.write_bytes(b"\xef\xbb\xbf" + example_path("work-programme").read_bytes())
    out = subprocess.run([sys.executable, "-m", "pbrlang.cli", "check", str(path)],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert pbrlang.load(path).name == "work-programme"


def _limit_memory():  # run in the child: 1 GB of address space, so an unbounded read fails fast
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


@pytest.mark.skipif(not Path("/dev/zero").exists() or sys.platform == "darwin", reason="needs /dev/zero and rlimits")
def test_pbr_check_on_an_endless_file_reports_that_it_is_too_large():
    out = subprocess.run([sys.executable, "-m", "pbrlang.cli", "check", "/dev/zero"], capture_output=True, text=True,
                         timeout=60, cwd=ROOT, preexec_fn=_limit_memory)
    assert "Traceback" not in out.stderr, out.stderr[-500:]
    assert out.returncode == 1 and "error[E005]" in out.stderr


# ---- values replaced by `none`, zero and the like ------------------------------------------------


@FUZZ
@given(scheme=st.sampled_from(SCHEMES), data=st.data())
def test_a_value_replaced_by_none_or_zero(scheme, data):
    """Each value of an example (a number, an amount, a date, a name) replaced by `none`, 0, -1 or £0.00:
    a contract that still checks must evaluate on the sample data, or fail with pbrlang's own error."""
    text = TEXTS[scheme]
    spans = [(a, b) for a, b in token_spans(text) if re.fullmatch(r"[£0-9A-Za-z_][0-9A-Za-z_,.%-]*", text[a:b])]
    a, b = data.draw(st.sampled_from(spans))
    replacement = data.draw(st.sampled_from(["none", "0", "-1", "£0.00", "(none)", "none + 1"]))
    mutated = text[:a] + replacement + text[b:]
    result = answer(mutated)
    if isinstance(result, pbrlang.Contract):
        evaluates_cleanly(result, scheme)


def test_a_cap_of_none_per_subject_checks():
    # The checker's "cap can never bind" warning (W005) compared the outcomes' most with a `none`
    # limit, and crashed with a TypeError.
    text = TEXTS["innovation-fund"].replace("cap participant_cap: £8,200.00", "cap participant_cap: none")
    assert isinstance(answer(text), pbrlang.Contract)


def test_a_duration_of_none_is_none():
    text = TEXTS["work-programme"].replace("within 104 weeks of attached_on", "within none weeks of attached_on")
    contract = answer(text)
    assert isinstance(contract, pbrlang.Contract)
    statement = contract.evaluate([sample("work-programme")], as_of=AS_OF["work-programme"], workers=1)
    assert "job_outcome" not in statement.by_outcome()  # `within` a none window is false


# ---- days outside the calendar (year 1 to 9999) ---------------------------------------------------

DATES_HEAD = """contract "dates"
funder DWP
table participants:
  id: text key
  start: date
subject participant: participants
"""
ONE = {"participants": [{"id": "P1", "start": "2020-01-01"}]}


def test_months_beyond_the_calendar_are_an_evaluation_error():
    contract = answer(DATES_HEAD + "outcome o:\n  achieved on start + 1000000000 months\n  pays £1.00\n")
    with pytest.raises(pbrlang.EvaluationError, match="outside the calendar"):
        contract.evaluate(ONE, as_of="2020-12-31", workers=1)


def test_months_beyond_the_calendar_name_the_expression():
    contract = answer(DATES_HEAD + "outcome o:\n  achieved on start + 1000000000 months\n  pays £1.00\n")
    with pytest.raises(pbrlang.EvaluationError) as raised:
        contract.evaluate(ONE, as_of="2020-12-31", workers=1)
    assert "<fuzz>:8:15" in str(raised.value)  # `start + 1000000000 months`


def test_days_beyond_the_calendar_name_the_expression():
    contract = answer(DATES_HEAD + "outcome o:\n  achieved on start + 100000000 days\n  pays £1.00\n")
    with pytest.raises(pbrlang.EvaluationError) as raised:
        contract.evaluate(ONE, as_of="2020-12-31", workers=1)
    assert "subject P1: a date went outside the calendar" in str(raised.value)
    assert "<fuzz>:8:15" in str(raised.value)


def test_division_by_zero_names_the_subject_and_the_expression():
    head = DATES_HEAD.replace("  start: date\n", "  start: date\n  n: integer\n")
    contract = answer(head + "outcome o:\n  achieved on start\n  pays £10.00 / n\n")
    data = {"participants": [{"id": "P1", "start": "2020-01-01", "n": "2"},
                             {"id": "P2", "start": "2020-01-01", "n": "0"}]}
    with pytest.raises(pbrlang.EvaluationError) as raised:
        contract.evaluate(data, as_of="2020-12-31", workers=1)
    assert str(raised.value) == "evaluation error: subject P2: division by zero (<fuzz>:10:8)"


def test_days_before_the_calendar_are_an_evaluation_error():
    contract = answer(DATES_HEAD + "outcome o:\n  achieved on start - 1000000 days\n  pays £1.00\n")
    with pytest.raises(pbrlang.PbrError):
        contract.evaluate(ONE, as_of="2020-12-31", workers=1).to_json()


def test_a_reported_day_before_the_calendar_is_an_evaluation_error():
    contract = answer(DATES_HEAD + "outcome o:\n  achieved on start\n  pays £1.00\n"
                      "  reports long_ago = start - 1000000 days\ncap total: £1,000.00\n")
    with pytest.raises(pbrlang.PbrError):
        contract.evaluate(ONE, as_of="2020-12-31", workers=1).to_json()


def test_a_cohort_window_beyond_the_calendar_is_an_evaluation_error():
    text = TEXTS["peterborough-sib"].replace("o.offence_date within 12 months of p.released_on",
                                             "o.offence_date within 1000000000 months of p.released_on")
    contract = answer(text)
    with pytest.raises(pbrlang.PbrError):
        contract.evaluate([sample("peterborough-sib")], as_of=AS_OF["peterborough-sib"], workers=1)
