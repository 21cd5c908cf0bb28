"""pbrlang's lexer (pbrlang/lexer.py) reads every text exactly as Lark's own contextual lexer does.

The same tokens (type, text, positions) reach the parser, and the parse ends the same way: the
same tree, or the same error (its type, line, column, position, expected terminals, the token
or character found, the parser state). The texts: every contract of the repository and of
the documentation, every string of the tests, those texts mutated (deterministically), and
texts drawn by hypothesis, built from the grammar's words glued together in every way that
makes a lexer choose (a keyword inside a name, `£1,00`, `2014-03-3`, `days_on`, ...). And the
scanner of every state of the parser on its own, on those words with other characters glued on,
whether or not a text reaches that state.

Lark's lexer here is Lark(...) as pbrlang makes it, without pbrlang's lexer. Both read the same
parse table (the numbers of its states are in the errors, and a table built in another process
may number them otherwise).
"""

from __future__ import annotations

import ast
import random
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.lexer import ContextualLexer

from conftest import ROOT
from pbrlang import parser
from pbrlang.errors import ContractError
from pbrlang.lexer import FastContextualLexer
from pbrlang.parse_table import CompactLALRParser


@pytest.fixture(scope="module")
def larks():
    """Lark with its own lexer, and pbrlang's; both read the same parse table from pbrlang's cache."""
    fast = parser._lark()
    grammar = parser.grammar_text()
    stock = Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=True,
                 cache=parser._cache_file(grammar), tree_class=parser._Tree,
                 _plugins={"LALR_Parser": CompactLALRParser})
    assert stock.parser.parser._parse_table.states == fast.parser.parser._parse_table.states
    assert type(stock.parser.lexer) is ContextualLexer
    assert isinstance(fast.parser.lexer, FastContextualLexer)
    return stock, fast


def _token(t: Token) -> tuple:
    return (t.type, str(t), t.start_pos, t.line, t.column, t.end_line, t.end_column, t.end_pos)


def _error(e: Exception) -> tuple:
    if not isinstance(e, UnexpectedInput):
        return (type(e).__name__, str(e))
    found = (type(e).__name__, e.line, e.column, e.pos_in_stream, str(e),
             getattr(getattr(e, "state", None), "position", None),
             tuple(_token(t) for t in (getattr(e, "token_history", None) or []) if t is not None))
    if isinstance(e, UnexpectedCharacters):
        return found + (e.char, tuple(sorted(e.allowed)), e.considered_tokens)
    assert isinstance(e, UnexpectedToken)
    return found + (_token(e.token), tuple(sorted(e.expected)), tuple(sorted(e.accepts or ())))


def _run(lark: Lark, text: str) -> tuple:
    """pbrlang's parser loop (parser._parse_tree) on this Lark: the tokens it reads and how it ends."""
    state = lark.parse_interactive(text).parser_state
    tokens = []
    try:
        token = None
        for token in state.lexer.lex(state):
            tokens.append(_token(token))
            state.feed_token(token)
        end = Token.new_borrow_pos("$END", "", token) if token else Token("$END", "", 0, 1, 1)
        tree = state.feed_token(end, True)
        return tokens, ("tree", tree.pretty(), _positions(tree))
    except Exception as e:  # noqa: BLE001 - whatever it is, both must raise the same
        return tokens, ("error", _error(e))


def _positions(tree) -> list:
    return [(t.data, t.meta.line, t.meta.column, t.meta.end_line, t.meta.end_column, t.meta.start_pos,
             t.meta.end_pos) if not t.meta.empty else (t.data,) for t in tree.iter_subtrees()]


def _same(larks, text: str) -> tuple:
    stock, fast = larks
    expected = _run(stock, text)
    assert _run(fast, text) == expected, text
    return expected


# ---- the texts ------------------------------------------------------------------------------

def _contract_files() -> list:
    return sorted(p for d in ("examples", "tests") for p in (ROOT / d).rglob("*.pbr"))


def _documented() -> list[str]:
    blocks = []
    for path in sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]):
        blocks += re.findall(r"```pbr\n(.*?)```", path.read_text(encoding="utf-8"), re.S)
    return blocks


def _test_strings() -> list[str]:
    """Every string constant of the tests (contracts, pieces of contracts, messages)."""
    found = set()
    for path in sorted((ROOT / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) < 20_000:
                found.add(node.value)
    return sorted(found)


CONTRACTS = {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in _contract_files()}
DOCUMENTED = _documented()


def test_there_are_texts_to_compare():
    assert len(CONTRACTS) >= 60 and len(DOCUMENTED) >= 20


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_every_contract_reads_the_same(larks, name):
    tokens, end = _same(larks, CONTRACTS[name])
    if "broken" not in name and "/error-" not in name:
        assert end[0] == "tree" and len(tokens) > 10


def test_every_documented_contract_reads_the_same(larks):
    for text in DOCUMENTED:
        _same(larks, text)


def test_every_string_of_the_tests_reads_the_same(larks):
    strings = _test_strings()
    assert len(strings) > 1000
    for text in strings:
        _same(larks, text)


# Words that make a lexer choose: keywords, pieces and extensions of them, numbers cut short.
WORDS = sorted({
    "contract", "currency", "rounding", "half_up", "half_even", "down", "up", "download", "upper", "statement",
    "shows", "every", "everyone", "outcome", "outcomes", "funder", "funders", "shares", "enum", "table", "key",
    "keys", "keyworker", "optional", "optionally", "valid", "when", "subject", "eligible", "band", "to", "from",
    "tariff", "by", "and", "android", "let", "of", "off", "in", "into", "achieved", "on", "once", "after",
    "while", "continues", "at", "most", "times", "pays", "instead", "requires", "reports", "cap", "per", "ceiling",
    "overflow", "unfunded", "cohorts", "cohort", "members", "counting", "counted", "count", "counter",
    "comparison", "assessed", "pool", "all", "if", "then", "else", "or", "not", "nothing", "is", "none", "within",
    "before", "starting", "day", "days", "days_on", "week", "weeks", "month", "months", "monthly", "year", "years",
    "as_of", "paid", "first", "lasts", "distinct", "for", "earliest", "latest", "sum", "summary", "mean", "min",
    "minimum", "max", "any", "no", "each", "spells", "run", "ordered", "meeting", "satisfies", "where", "true",
    "false", "x", "_", "a1", "`count`", "`day`", "`", "`x", "2014-03-31", "2014-03-3", "2014-3-31", "12", "0",
    "1.5", "1.", ".5", "20%", "2.5%", "%", "£400.00", "£1,000", "£1,000.50", "£1,00", "£1,0000", "£", "£.5",
    "£12.345", '"text"', '"', '"a\nb"', "'x'", "$5", ":", ",", "(", ")", "[", "]", "|", "=", "==", ".", "+", "-",
    "*", "/", "<", "<=", ">", ">=", "!=", "!", "<>", "# a comment", "#", "\u00a0", "\u2028", "\x00", "é",
})
GLUE = ["", " ", "\n", "\t", "  ", "\r\n", "# note\n"]


def _soup(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(WORDS) + rng.choice(GLUE) for _ in range(n))


def _mutations(text: str, rng: random.Random, count: int) -> list[str]:
    """The text cut, with a piece deleted, doubled or moved, or with a word of WORDS put in."""
    out = []
    for _ in range(count):
        i, j = sorted(rng.randrange(len(text) + 1) for _ in range(2))
        k = rng.randrange(len(text) + 1)
        kind = rng.randrange(6)
        if kind == 0:
            out.append(text[:j])
        elif kind == 1:
            out.append(text[:i] + text[i + (j - i) % 12:])
        elif kind == 2:
            out.append(text[:k] + rng.choice(WORDS) + text[k:])
        elif kind == 3:
            out.append(text[:k] + rng.choice(WORDS) + rng.choice(GLUE) + text[k + rng.randrange(1, 8):])
        elif kind == 4:
            out.append(text[:k] + text[i:i + 40] + text[k:])
        else:
            out.append(text[:k] + _soup(rng, rng.randrange(1, 4)) + text[k:])
    return out


@pytest.mark.parametrize("name", sorted(n for n in CONTRACTS if "broken" not in n and "/error-" not in n))
def test_mutated_contracts_read_the_same(larks, name):
    rng = random.Random(name)
    ends = set()
    for text in _mutations(CONTRACTS[name], rng, 40):
        ends.add(_same(larks, text)[1][0])
    assert "error" in ends


def test_mutated_documented_contracts_read_the_same(larks):
    rng = random.Random(7)
    for text in DOCUMENTED:
        for mutated in _mutations(text, rng, 5):
            _same(larks, mutated)


def test_glued_words_read_the_same(larks):
    rng = random.Random(11)
    for n in range(3000):
        _same(larks, _soup(rng, 1 + n % 6))


def _first_token(lexer, text: str, state: int | None):
    """The first token one scanner reads from the text, or its error; `state` None: the root lexer's."""
    from lark.lexer import LexerState

    try:
        from lark.utils import TextSlice  # Lark 1.2 and later lex slices of a text
    except ImportError:
        lex_state = LexerState(text)
    else:
        lex_state = LexerState(TextSlice.cast_from(text))
    try:
        if isinstance(lexer, FastContextualLexer):
            scanner = lexer.root if state is None else lexer._for_state(state)
            t = lexer.next_token(lex_state, None, scanner)
        else:
            t = (lexer.root_lexer if state is None else lexer.lexers[state]).next_token(lex_state, None)
        return _token(t)
    except EOFError:
        return "end"
    except UnexpectedCharacters as e:
        return _error(e)


def test_every_state_of_the_parser_reads_every_word_the_same(larks):
    """Each state's scanner on its own, whether or not a text reaches it: a word, a keyword or a
    value, with each of a few continuations glued on, read by Lark's scanner for that state and by
    ours (one state of each set of terminals; the root lexer too)."""
    stock, fast = larks
    keywords = [t.pattern.value for t in stock.terminals if t.pattern.type == "str"]
    ends = ["", "x", "_1", "s", "ed", "er", "ing", " ", "(", "0", "1", "%", ",000", ",00", ".5", ".", "-01", "-0",
            "=", "`", "\n", "#", "£"]
    words = sorted(set(WORDS) | set(keywords))
    states = {}
    for state, actions in stock.parser.parser._parse_table.states.items():
        states.setdefault(frozenset(actions), state)
    rng = random.Random(5)
    compared = 0
    for state in [None, *states.values()]:
        for word in words:
            for text in {word, word + rng.choice(ends), word + rng.choice(ends)}:
                assert _first_token(fast.parser.lexer, text, state) == _first_token(stock.parser.lexer, text, state), \
                    (state, text)
                compared += 1
    assert compared > 50_000


def test_from_every_position_of_every_contract_the_whole_grammar_reads_the_same(larks):
    """The root lexer (all terminals: the whole grammar's alternation as it is) from each character."""
    stock, fast = larks
    compared = 0
    for text in CONTRACTS.values():
        for pos in range(0, len(text), 3):
            piece = text[pos:pos + 60]
            assert _first_token(fast.parser.lexer, piece, None) == _first_token(stock.parser.lexer, piece, None), piece
            compared += 1
    assert compared > 10_000


HEAD = CONTRACTS["examples/work-programme/contract.pbr"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(words=st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(GLUE)), max_size=12),
       at=st.integers(0, len(HEAD)), cut=st.integers(0, 12))
def test_drawn_texts_read_the_same(larks, words, at, cut):
    piece = "".join(w + g for w, g in words)
    _same(larks, piece)
    _same(larks, HEAD[:at] + piece + HEAD[at + cut:])


# ---- through pbrlang's own diagnostics ------------------------------------------------------

def _diagnostics(text: str) -> str:
    try:
        return repr(parser.parse(text))
    except ContractError as err:
        return err.render()


def test_pbrlang_s_diagnostics_are_the_same_with_lark_s_lexer(larks, monkeypatch):
    """A syntax error is found per declaration (more parses); each must say the same."""
    stock, fast = larks
    rng = random.Random(3)
    texts = list(CONTRACTS.values()) + DOCUMENTED
    texts += [m for name, text in sorted(CONTRACTS.items()) if "broken" not in name for m in _mutations(text, rng, 8)]
    ours = [_diagnostics(t) for t in texts]
    monkeypatch.setattr(parser, "_lark", lambda: stock)
    assert [_diagnostics(t) for t in texts] == ours


def test_the_tokens_of_the_parse_are_the_lexer_s(larks):
    """parser._parse_tree reads through the lexer this file compares."""
    stock, fast = larks
    assert parser._lark() is fast
    tokens, end = _run(fast, HEAD)
    assert [t[0] for t in tokens[:2]] == ["CONTRACT", "STRING"] and end[0] == "tree"


def test_a_keyword_inside_a_name_and_a_field_named_like_a_unit():
    tokens, _ = _run(parser._lark(), "let days_on = count p in participants where p.day > 2")
    assert [(t[0], t[1]) for t in tokens] == [
        ("LET", "let"), ("NAME", "days_on"), ("EQUAL", "="), ("COUNT", "count"), ("NAME", "p"), ("IN", "in"),
        ("NAME", "participants"), ("WHERE", "where"), ("NAME", "p"), ("DOT", "."), ("NAME", "day"),
        ("COMPARE", ">"), ("INT", "2")]
