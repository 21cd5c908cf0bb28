"""The parse table pbrlang caches (pbrlang/parse_table.py) is the table Lark built, action for action."""

from __future__ import annotations

from lark import Lark
from lark.parsers.lalr_analysis import Reduce, Shift

from conftest import example
from pbrlang import parse_table, parser
from pbrlang.parse_table import CompactLALRParser

OPTIONS = dict(parser="lalr", propagate_positions=True, maybe_placeholders=True, tree_class=parser._Tree)
COMPACT = {"LALR_Parser": CompactLALRParser}


def _table(lark: Lark):
    table = lark.parser.parser._parse_table
    return table.states, table.start_states, table.end_states


def _same_table(a: Lark, b: Lark) -> None:
    assert _table(a) == _table(b)
    for state, actions in _table(a)[0].items():  # in the same order too (it is the order of expected sets)
        assert list(actions) == list(_table(b)[0][state])
    for actions in _table(b)[0].values():
        for action, arg in actions.values():
            assert action is Shift or action is Reduce  # Lark's parser tells them apart by identity
            if action is Reduce:
                assert arg in b.rules and any(arg is rule for rule in b.rules)


def test_the_cached_table_is_the_table_lark_built(tmp_path):
    grammar = parser.grammar_text()
    path = str(tmp_path / "compact")
    built = Lark(grammar, cache=path, _plugins=COMPACT, **OPTIONS)  # no cache yet: analysed here, then saved
    loaded = Lark(grammar, cache=path, _plugins=COMPACT, **OPTIONS)
    assert type(loaded.parser.parser) is CompactLALRParser
    _same_table(built, loaded)
    text = example("work-programme").read_text()
    assert loaded.parse(text) == built.parse(text)


def test_a_cache_in_lark_s_own_format_is_read(tmp_path):
    grammar = parser.grammar_text()
    path = str(tmp_path / "lark")
    built = Lark(grammar, cache=path, **OPTIONS)
    loaded = Lark(grammar, cache=path, _plugins=COMPACT, **OPTIONS)
    _same_table(built, loaded)


def test_a_table_of_another_format_is_analysed_again(tmp_path, monkeypatch):
    grammar = parser.grammar_text()
    path = str(tmp_path / "compact")
    built = Lark(grammar, cache=path, _plugins=COMPACT, **OPTIONS)
    first = (tmp_path / "compact").read_bytes()
    monkeypatch.setattr(parse_table, "FORMAT", parse_table.FORMAT + 1)
    again = Lark(grammar, cache=path, _plugins=COMPACT, **OPTIONS)  # Lark rebuilds when a cache fails to load
    assert (tmp_path / "compact").read_bytes() != first  # and saves it again
    assert again.parse("funder DWP") == built.parse("funder DWP")
    loaded = Lark(grammar, cache=path, _plugins=COMPACT, **OPTIONS)
    _same_table(again, loaded)


def test_pbrlang_reads_its_table_from_a_file_of_its_own():
    assert parser._cache_file("grammar").endswith(f"-t{parse_table.FORMAT}")
    assert type(parser._lark().parser.parser) is CompactLALRParser
