"""Lark's LALR parser, with its parse table kept in the grammar cache in a form quick to read.

Lark stores the table in its cache file as a dict for each state of the parser, mapping each
terminal's number to an action, and rebuilds it entry by entry, in Python (9,000 entries for
pbrlang's grammar): about 10 ms of every `pbr check`. This parser (Lark's
`_plugins={"LALR_Parser": ...}`) stores, for each state, two tuples of small numbers (the
terminals, and the actions out of one list of the distinct actions), from which each state's
dict is made in one call: about 1 ms. Only numbers are stored, as Lark's own form stores them,
inside Lark's cache file. The parser is Lark's own; only what the cache holds differs.

A cache written by Lark's own parser is still read (the slow way), and a table of another
format makes Lark analyse the grammar again and write the cache again, as for any cache that
does not load.
"""

from __future__ import annotations

from lark.parsers.lalr_analysis import IntParseTable, Reduce, Shift
from lark.parsers.lalr_parser import LALR_Parser, _Parser

FORMAT = 1  # of "pbrlang_table": change it when what is stored changes


class CompactLALRParser(LALR_Parser):
    """LALR_Parser whose table is cached as numbers, each state's dict made in one call."""

    def serialize(self, memo=None):
        table = self._parse_table
        if memo is None or not isinstance(table, IntParseTable):
            return super().serialize(memo)
        tokens: dict[str, int] = {}
        actions: dict[tuple, int] = {}  # (0, state) to shift, (1, the rule's number in Lark's memo) to reduce
        states = {}
        for state, row in table.states.items():
            keys, values = [], []
            for token, (action, arg) in row.items():
                keys.append(tokens.setdefault(token, len(tokens)))
                key = (1, arg.serialize(memo)["@"]) if action is Reduce else (0, arg)
                values.append(actions.setdefault(key, len(actions)))
            states[state] = (tuple(keys), tuple(values))
        return {"pbrlang_table": FORMAT, "tokens": list(tokens), "actions": list(actions), "states": states,
                "start_states": table.start_states, "end_states": table.end_states}

    @classmethod
    def deserialize(cls, data, memo, callbacks, debug=False):
        if "pbrlang_table" not in data:
            return super().deserialize(data, memo, callbacks, debug)
        if data["pbrlang_table"] != FORMAT:
            raise ValueError("the cached parse table is of another format")
        tokens = data["tokens"].__getitem__
        actions = [(Reduce, memo[arg]) if kind else (Shift, arg) for kind, arg in data["actions"]].__getitem__
        states = {state: dict(zip(map(tokens, keys), map(actions, values)))
                  for state, (keys, values) in data["states"].items()}
        inst = cls.__new__(cls)
        inst._parse_table = IntParseTable(states, data["start_states"], data["end_states"])
        inst.parser = _Parser(inst._parse_table, callbacks, debug)
        return inst
