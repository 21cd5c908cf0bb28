"""Each limit in pbrlang.limits, at its edge: the largest text allowed loads, one step more is refused.

The refusals are positioned diagnostics (E004 nested too deeply, E005 too large)
that say which limit was passed; and the deepest expressions allowed still load,
evaluate and explain with a stack no deeper than a caller can spare.
"""

from __future__ import annotations

import datetime
import inspect
import sys

import pytest

import pbrlang
from pbrlang import explain
from pbrlang.limits import (
    MAX_CONTRACT_BYTES,
    MAX_DECLARATIONS,
    MAX_DEFINITION_CHAIN,
    MAX_DIAGNOSTICS,
    MAX_EXPRESSION_DEPTH,
    MAX_LIST_ITEMS,
    MAX_NESTING,
    MAX_PARSE_STACK,
    MAX_PREFIX_RUN,
    MAX_TOKENS,
)

D = MAX_EXPRESSION_DEPTH

HEAD = """contract "limits"
funder F
enum k: p, q
table t:
  id: text key
  d: date
  a: integer
  m: money
  b: boolean
table e:
  t_id: t
  s: date
  f: optional date
  n: integer
subject s: t
"""
DATA = {
    "t": [{"id": "1", "d": "2020-01-01", "a": 1, "m": "1.00", "b": "true"}],
    "e": [{"t_id": "1", "s": "2020-01-01", "f": None, "n": 1}],
}


def condition(expr: str) -> str:
    return HEAD + f"let x = {expr}\noutcome o:\n  when x\n  achieved on d\n  pays £1.00\n"


def refused(text: str):
    with pytest.raises(pbrlang.ContractError) as info:
        pbrlang.loads(text)
    return info.value.diagnostics


def codes(text: str) -> list[str]:
    """The codes of the problems in a text (not the note that more problems were not listed)."""
    try:
        pbrlang.loads(text)
    except pbrlang.ContractError as err:
        return [d.code for d in err.diagnostics if not d.message.startswith("too many problems")]
    return []


# ---- size --------------------------------------------------------------------------------------


def test_contract_bytes():
    body = HEAD + "# "
    text = body + "é" * ((MAX_CONTRACT_BYTES - len(body.encode())) // 2)  # é is two bytes
    text += "x" * (MAX_CONTRACT_BYTES - len(text.encode()))
    assert len(text.encode()) == MAX_CONTRACT_BYTES
    assert "E005" not in codes(text)
    [d] = refused(text + "x")
    assert (d.code, d.message) == ("E005", f"the contract is larger than {MAX_CONTRACT_BYTES} bytes")


def test_tokens_comments_not_counted():
    # Each `let v = a + a ...` is 84 tokens; comments, which do not count, in between.
    text = HEAD + "# a comment with many words in it, none of which count\n" * 100
    lets = (MAX_TOKENS - _count(text)) // 84
    text += "".join(f"let v{i} = a" + " + a" * 40 + "  # and more words\n" for i in range(lets))
    spare = MAX_TOKENS - _count(text)
    assert 0 <= spare < 84
    text += "x " * spare
    assert _count(text) == MAX_TOKENS
    assert "E005" not in codes(text)
    [d] = refused(text + "y")
    assert d.code == "E005"
    assert d.message == f"the contract has more than {MAX_TOKENS:,} words, numbers and symbols"
    assert (d.span.line, d.span.column) == (text.count("\n") + 1, len(text.split("\n")[-1]) + 1)


def _count(text: str) -> int:
    from pbrlang.parser import _SCAN

    return sum(1 for m in _SCAN.finditer(text) if m.lastgroup != "comment")


def test_declarations():
    text = HEAD + "".join(f"funder f{i}\n" for i in range(MAX_DECLARATIONS - 6))  # HEAD has 6
    assert "E005" not in codes(text)  # 5,000 declarations: checked (and accepted)
    [d] = refused(text + "funder one_more\n")
    assert (d.code, d.message) == ("E005", f"the contract has more than {MAX_DECLARATIONS:,} declarations")
    assert d.span.line == text.count("\n") + 1


@pytest.mark.parametrize("kind", ["enum", "table", "checks", "band", "tariff", "row", "outcome"])
def test_list_items(kind):
    def build(n):
        if kind == "enum":
            return HEAD + "enum big: " + ", ".join(f"v{i}" for i in range(n)) + "\n", "this enumeration has", "values"
        if kind == "table":
            return "table big:\n" + "".join(f"  f{i}: text\n" for i in range(n)), "this table has", "fields"
        if kind == "checks":
            return "table big:\n  a: integer\n" + "  valid when a > 0\n" * n, "this table has", "`valid when` rules"
        if kind == "band":
            return "band big:\n" + "".join(f"  b{i} from 2020-01-01\n" for i in range(n)), "this band has", "periods"
        if kind == "tariff":
            return "tariff by k:\n" + "  | k | fee |\n" * n, "this tariff has", "rows"
        if kind == "row":
            return "tariff by k:\n  |" + " k |" * n + "\n", "this row has", "cells"
        return "outcome big:\n" + "  when b\n" * n, "this outcome has", "clauses"

    text, who, what = build(MAX_LIST_ITEMS)
    assert "E005" not in codes(text)
    text, who, what = build(MAX_LIST_ITEMS + 1)
    [d] = refused(text)
    assert (d.code, d.message) == ("E005", f"{who} more than {MAX_LIST_ITEMS:,} {what}")


# ---- nesting -------------------------------------------------------------------------------------


def test_brackets():
    assert "E004" not in codes(condition("(" * MAX_NESTING + "b" + ")" * MAX_NESTING))
    [d] = refused(condition("(" * (MAX_NESTING + 1) + "b" + ")" * (MAX_NESTING + 1)))
    assert (d.code, d.message) == ("E004", f"brackets are nested more than {MAX_NESTING} deep")
    assert (d.span.line, d.span.column) == (HEAD.count("\n") + 1, 9 + MAX_NESTING)


def test_brackets_in_comments_and_texts_do_not_count():
    text = HEAD + "# " + "(" * 100 + "\nlet x = \"" + "[" * 100 + "\"\noutcome o:\n  achieved on d\n  pays £1.00\n"
    assert codes(text) == ["W004"] or codes(text) == []


def test_a_run_of_not_and_minus():
    assert codes(condition("not " * MAX_PREFIX_RUN + "b")) == []
    [d] = refused(condition("not " * (MAX_PREFIX_RUN + 1) + "b"))
    assert (d.code, d.message) == ("E004", f"more than {MAX_PREFIX_RUN} `not`s or `-`s in a row")
    assert (d.span.line, d.span.column) == (HEAD.count("\n") + 1, 9 + 4 * MAX_PREFIX_RUN)
    assert codes(condition("-" * (MAX_PREFIX_RUN - 1) + "a > 0")) == []  # the comparison is one more level
    [d] = refused(condition("- " * (MAX_PREFIX_RUN + 1) + "a > 0"))
    assert d.code == "E004"


# Shapes of expression, each n deep in some way; for each, the largest n the parser allows.
SHAPES = {
    "and": lambda n: condition(" and ".join(["b"] * n)),
    "or": lambda n: condition(" or ".join(["b"] * n)),
    "not": lambda n: condition("not " * n + "b"),
    "minus": lambda n: condition("-" * n + "a > 0"),
    "plus": lambda n: condition(" + ".join(["a"] * n) + " > 0"),
    "money": lambda n: HEAD + "outcome o:\n  achieved on d\n  pays " + " + ".join(["m"] * n) + "\n",
    "if": lambda n: condition("if b then " * n + "b" + " else b" * n),
    "every": lambda n: condition("".join(f"every r{i} in e satisfies " for i in range(n)) + "b"),
    "count": lambda n: condition("".join(f"(count r{i} in e where " for i in range(n)) + "b" + ") > 0" * n),
    "durations": lambda n: HEAD + "outcome o:\n  achieved on d + " + " + ".join(["1 day"] * n) + "\n  pays £1.00\n",
    "first run": lambda n: condition("".join(f"(first run of 1 r{i} in e where " for i in range(n)) + "b"
                                     + " ordered by d meeting b) is not none" * n),
}


def depth(text: str) -> int:
    """How deep the text's deepest expression is, as the parser measures it."""
    from pbrlang.parser import _parse_tree

    return max(d.depth for d in _parse_tree(text).children)


def deepest(shape) -> int:
    """The largest n for which the shape is within MAX_EXPRESSION_DEPTH (found by halving)."""
    from pbrlang.parser import _StackTooDeep, _TooDeep

    def fits(n):
        try:
            depth(shape(n))
            return True
        except (_TooDeep, _StackTooDeep):
            return False

    lo, hi = 1, 2 * D  # fits(lo), not fits(hi)
    assert fits(lo) and not fits(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


AT_THE_LIMIT = {name: shape(deepest(shape)) for name, shape in SHAPES.items()}


def test_the_shapes_reach_the_limit():
    for name, text in AT_THE_LIMIT.items():
        assert D - 3 <= depth(text) <= D, name


def _frames_needed(fn) -> int:
    """The fewest frames, above the caller's, that fn needs (found by halving)."""
    depth = len(inspect.stack(0))
    lo, hi = 1, 2000
    old = sys.getrecursionlimit()
    while lo < hi:
        mid = (lo + hi) // 2
        sys.setrecursionlimit(depth + mid)
        try:
            fn()
            ok = True
        except RecursionError:
            ok = False
        finally:
            sys.setrecursionlimit(old)
        hi, lo = (mid, lo) if ok else (hi, mid + 1)
    return lo


@pytest.mark.parametrize("name", list(AT_THE_LIMIT))
def test_the_deepest_expressions_allowed_load_evaluate_and_explain(name):
    text = AT_THE_LIMIT[name]
    contract = pbrlang.loads(text)
    dataset = contract.load_data(DATA)
    as_of = datetime.date(2021, 1, 1)
    statement = contract.evaluate(dataset, as_of, workers=1)
    explain.explain(contract, dataset, as_of, "1")
    # What each stage needs of the stack, so that a caller with 500 frames in use can call it.
    assert _frames_needed(lambda: pbrlang.loads(text)) <= 450
    assert _frames_needed(lambda: contract.evaluate(dataset, as_of, workers=1)) <= 300
    assert _frames_needed(lambda: explain.explain(contract, dataset, as_of, "1")) <= 300
    assert statement.total >= 0


@pytest.mark.parametrize("name", list(SHAPES))
def test_one_level_deeper_is_refused(name):
    shape = SHAPES[name]
    diagnostics = refused(shape(deepest(shape) + 1))
    d = diagnostics[0]
    assert d.code == "E004", d.render()
    assert d.message in (f"this expression is nested more than {D} levels deep",
                         f"more than {MAX_PREFIX_RUN} `not`s or `-`s in a row")
    assert d.span.line == HEAD.count("\n") + 1 or name in ("money", "durations")


def test_the_parser_stack_stops_right_nesting_early():
    # 20,000 `if`s nested to the right: refused once the parser holds MAX_PARSE_STACK symbols,
    # long before the end of the text (and before the tree could be built).
    text = HEAD + "let x = " + "if b then a else " * 5_000 + "a\n"
    [d] = refused(text)
    assert d.code == "E004"
    assert d.span.line == HEAD.count("\n") + 1
    assert d.span.column < 17 * MAX_PARSE_STACK // 4


def test_calls_nested_as_deep_as_brackets_allow():
    text = condition("higher(" * MAX_NESTING + "a" + ")" * MAX_NESTING + " > 0")
    contract = pbrlang.loads(text)
    dataset = contract.load_data(DATA)
    as_of = datetime.date(2021, 1, 1)
    assert _frames_needed(lambda: pbrlang.loads(text)) <= 450
    assert _frames_needed(lambda: contract.evaluate(dataset, as_of, workers=1)) <= 300
    assert _frames_needed(lambda: explain.explain(contract, dataset, as_of, "1")) <= 300


def test_a_valid_deep_if_does_not_fill_the_parser_stack():
    # MAX_EXPRESSION_DEPTH levels of the longest waiting rule (`first run of ...`) stay under the stack limit.
    text = condition("".join(f"(first run of 1 r{i} in e where " for i in range(D // 3 - 1)) + "b"
                     + " ordered by s.d meeting b) is not none" * (D // 3 - 1))
    assert "E004" not in codes(text)


# ---- definitions and outcomes -------------------------------------------------------------------


def test_a_chain_of_definitions():
    def chain(n):  # an outcome using a_0, which uses a_1, ...: n links in all
        return (HEAD + "".join(f"let a_{i} = a_{i + 1} + 1\n" for i in range(n - 2)) + f"let a_{n - 2} = a\n"
                + "outcome o:\n  when a_0 > 0\n  achieved on d\n  pays £1.00\n")

    assert codes(chain(MAX_DEFINITION_CHAIN)) == []
    [d] = refused(chain(MAX_DEFINITION_CHAIN + 1))
    assert d.code == "E004"
    assert d.message.startswith(f"`o` starts a chain of {MAX_DEFINITION_CHAIN + 1} definitions and outcomes")


@pytest.mark.parametrize("terms, outcome", [
    (1, "when a_{last} > 0\n  achieved on d\n  pays £1.00"),
    # Each definition nested 40 deep, the last used first by an outcome's payment: whether each
    # may be none (for the compiler) is worked out in order too, not along the chain.
    (40, "achieved on d\n  pays if a_{last} > 0 then £1.00 else £2.00"),
])
def test_a_long_chain_written_backwards_checks_without_recursing(terms, outcome):
    # Each definition uses the one declared before it: checked in order, no chain of checks.
    n = MAX_DEFINITION_CHAIN - 1
    plus = " + 1" * terms
    text = (HEAD + "let a_0 = a\n" + "".join(f"let a_{i} = a_{i - 1}{plus}\n" for i in range(1, n))
            + "outcome o:\n  " + outcome.format(last=n - 1) + "\n")
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack(0)) + 200)
    try:
        contract = pbrlang.loads(text)
    finally:
        sys.setrecursionlimit(old)
    assert contract.evaluate(DATA, "2021-01-01", workers=1).total == 1


def test_a_circle_is_reported_once():
    text = HEAD + "let p = (q + 1) * (q + 2) * q\nlet q = (p + 1) * p\n"
    [d] = refused(text)
    assert (d.code, d.message) == ("E107", "`p` depends on itself: p -> q -> p")


def test_a_long_circle_is_reported_once():
    text = HEAD + "".join(f"let l{i} = l{i + 1} + 1\n" for i in range(500)) + "let l500 = l0\n"
    [d] = refused(text)
    assert d.code == "E004" and d.message.startswith("definitions use each other too deeply to check")


# ---- how many problems are listed ----------------------------------------------------------------


def test_diagnostics_are_listed_up_to_the_limit():
    def unknown(n):
        return HEAD + "".join(f"let l{i} = zz{i} + 1\n" for i in range(n))

    exactly = refused(unknown(MAX_DIAGNOSTICS))
    assert len(exactly) == MAX_DIAGNOSTICS and {d.code for d in exactly} == {"E100"}
    more = refused(unknown(MAX_DIAGNOSTICS + 1))
    assert len(more) == MAX_DIAGNOSTICS + 1
    assert more[-1].code == "E005"
    assert more[-1].message == f"too many problems: only the first {MAX_DIAGNOSTICS} found are listed"


def test_syntax_errors_are_listed_up_to_the_limit():
    def broken(n):
        return HEAD + "".join(f"outcome o{i}:\n  pays\n" for i in range(n))

    assert len(refused(broken(MAX_DIAGNOSTICS))) == MAX_DIAGNOSTICS
    more = refused(broken(MAX_DIAGNOSTICS + 5))
    assert len(more) == MAX_DIAGNOSTICS + 1 and more[-1].code == "E005"
