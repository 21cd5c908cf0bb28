"""Lark's contextual lexer, without building a regular expression for each parser state.

Lark's ContextualLexer (lark/lexer.py) gives each state of the LALR parser a scanner of
its own: one regular expression, the alternation of every terminal the state accepts, in
Lark's order (priority, then longest possible match, then longest pattern, then name).
Compiling those alternations, one for each set of terminals the text reaches, was the
largest part of `pbr check`'s time (about 50 ms for a contract of 500 tokens).

This lexer tokenizes exactly as that one does, from one regular expression for the whole
grammar. Its alternation holds every terminal in Lark's order, so where it matches, its
terminal is the first in that order that matches here, with the text it matches. A state's
alternation holds some of the same terminals in the same order, so:

- when the first terminal to match is one the state accepts, the state's scanner would
  have chosen it too (every terminal before it failed), with the same text;
- when it is not, the terminals the state accepts that come after it are tried one by one,
  in order, each compiled once, and the first to match is the state's; none of them
  matching is an error, as it is for the state's scanner;
- when nothing matches, no terminal can start here, so neither can the state's.

What else the scanner of a state does is done here the same way, worked out once for each
set of terminals: a keyword that a pattern of the same priority also matches (`count` and
NAME) is taken out of the state's alternation and a match of the pattern that is exactly
the keyword is given the keyword's type (Lark's `_create_unless`); the terminals an error
lists as expected are the ones left in the alternation. After an unexpected character the
whole grammar is tried as Lark's root lexer would, to report the token found there.

tests/test_lexer.py compares the tokens and errors with Lark's own lexer's.
"""

from __future__ import annotations

import bisect

from lark.exceptions import UnexpectedCharacters, UnexpectedToken
from lark.lexer import ContextualLexer, PatternStr, Token
from lark.lexer import _regexp_has_newline  # which terminals may hold a line break, as BasicLexer decides


def _order(terminal):
    """Lark's order of terminals in a scanner (BasicLexer.__init__)."""
    return (-terminal.priority, -terminal.pattern.max_width, -len(terminal.pattern.value), terminal.name)


class _Scanner:
    """What Lark's BasicLexer for one set of terminals knows, without its regular expression."""

    __slots__ = ("names", "order", "unless", "allowed_types")

    def __init__(self, names: frozenset, order: list, unless: dict, allowed_types: set):
        self.names = names  # the terminals left in the alternation
        self.order = order  # their places in the whole grammar's order
        self.unless = unless  # pattern -> keywords its match may be (`_create_unless`)
        self.allowed_types = allowed_types  # as Lark's Scanner.allowed_types


class FastContextualLexer(ContextualLexer):
    """A drop-in ContextualLexer (Lark's `_plugins={"ContextualLexer": ...}`): same tokens, same errors."""

    def __init__(self, conf, states, always_accept=()):
        # Not ContextualLexer.__init__: it makes a BasicLexer (and sorts the terminals) for
        # every distinct set of terminals of the parse table, most of which a text never reaches.
        if conf.use_bytes or conf.callbacks or conf.postlex is not None:
            raise NotImplementedError("FastContextualLexer: bytes, lexer callbacks and postlex are not supported")
        self.re = conf.re_module
        self.g_regex_flags = conf.g_regex_flags
        self.terminals_by_name = conf.terminals_by_name
        self.ignore_types = frozenset(conf.ignore)
        self.always_accept = frozenset(always_accept)
        terminals = sorted(conf.terminals, key=_order)
        self.terminals = terminals
        self.index = {t.name: i for i, t in enumerate(terminals)}
        self.newline_types = frozenset(t.name for t in terminals if _regexp_has_newline(t.pattern.to_regexp()))
        # A keyword without flags is matched as the plain string it is (what re.escape(value) matches).
        self.literals = [t.pattern.value if type(t.pattern) is PatternStr and not t.pattern.flags
                         and not self.g_regex_flags else None for t in terminals]
        # One alternation of the whole grammar, in Lark's order: the root lexer's, keywords included.
        # Keywords next to each other in that order share one group, `(?P<keywords3>when|where|...)`, in
        # the same order (the text matched tells which): Python tries the alternatives of a group
        # of plain strings far quicker than as many groups (nearly three times, on a contract's tokens).
        # (Its name is in lower case, which no terminal's name is.)
        parts, self.keyword_groups, group = [], {}, None
        for i, t in enumerate(terminals):
            if self.literals[i] is None:
                parts.append("(?P<%s>%s)" % (t.name, t.pattern.to_regexp()))
                group = None
                continue
            if group is None:
                group = "keywords%d" % len(self.keyword_groups)
                self.keyword_groups[group] = {}
                parts.append([group])
            self.keyword_groups[group].setdefault(self.literals[i], t.name)  # a repeated string never matches
            parts[-1].append(t.pattern.to_regexp())
        self.master = self.re.compile("|".join(
            p if isinstance(p, str) else "(?P<%s>%s)" % (p[0], "|".join(p[1:])) for p in parts
        ), self.g_regex_flags).match
        groups = {t.name for i, t in enumerate(terminals) if self.literals[i] is None} | set(self.keyword_groups)
        if set(self.master.__self__.groupindex) != groups:
            raise NotImplementedError("FastContextualLexer: a terminal's pattern has named groups of its own")
        self._compiled: dict[int, object] = {}
        self._embedded: dict[str, list] = {}
        self.states = states
        self._by_state: dict[int, _Scanner] = {}
        self._by_accepts: dict[frozenset, _Scanner] = {}
        self._root: _Scanner | None = None

    # ---- one terminal at a time -------------------------------------------------------

    def _matcher(self, i: int):
        """The match function of the terminal at place i, compiled on first use."""
        m = self._compiled.get(i)
        if m is None:
            m = self._compiled[i] = self.re.compile(self.terminals[i].pattern.to_regexp(), self.g_regex_flags).match
        return m

    def _keywords_of(self, name: str) -> list:
        """The keywords (string terminals) a pattern terminal matches exactly, with Lark's test."""
        found = self._embedded.get(name)
        if found is None:
            priority = self.terminals_by_name[name].priority
            match = self._matcher(self.index[name])
            found = []
            for t in self.terminals:
                if type(t.pattern) is PatternStr and t.priority == priority:
                    m = match(t.pattern.value)
                    if m and m.group(0) == t.pattern.value:
                        found.append(t)
            self._embedded[name] = found
        return found

    def _scanner(self, accepts) -> _Scanner:
        """What BasicLexer and _create_unless make of a set of terminal names."""
        names = {n for n in accepts if n in self.terminals_by_name}
        by_type = {n for n in names if type(self.terminals_by_name[n].pattern) is not PatternStr}
        unless = {}
        removed = set()
        strings = [self.terminals_by_name[n] for n in names - by_type]
        for name in sorted(by_type, key=self.index.__getitem__):
            terminal = self.terminals_by_name[name]
            pattern = terminal.pattern
            if not any(t.priority == terminal.priority for t in strings):
                continue  # no keyword of its priority here (its own expression need not be compiled)
            keywords = [t for t in self._keywords_of(name) if t.name in names]
            if keywords:
                unless[name] = keywords
                removed.update(t.name for t in keywords if t.pattern.flags <= pattern.flags)
        order = sorted(self.index[n] for n in names - removed)
        # Built as Scanner.allowed_types is, so that even the order of its set is the same
        # (Lark's messages list the expected terminals in that order).
        allowed_types = {self.terminals[i].name for i in order}
        return _Scanner(frozenset(allowed_types), order, unless, allowed_types)

    def _for_state(self, state: int) -> _Scanner:
        scanner = self._by_state.get(state)
        if scanner is None:
            accepts = self.states[state]
            key = frozenset(accepts)
            scanner = self._by_accepts.get(key)
            if scanner is None:
                scanner = self._by_accepts[key] = self._scanner(set(accepts) | self.ignore_types | self.always_accept)
            self._by_state[state] = scanner
        return scanner

    @property
    def root(self) -> _Scanner:
        if self._root is None:
            self._root = self._scanner(self.terminals_by_name)
        return self._root

    # ---- lexing ---------------------------------------------------------------------

    def _retype(self, value: str, keywords: list):
        """The type an UnlessCallback gives a match: the first keyword that it is, whole."""
        for t in keywords:
            literal = self.literals[self.index[t.name]]
            if literal is not None:
                if value == literal:
                    return t.name
            elif self._matcher(self.index[t.name]).__self__.fullmatch(value):
                return t.name
        return None

    def _after(self, scanner: _Scanner, first: int, text: str, pos: int, end: int):
        """The state's match when the grammar's first terminal to match here (place `first`) is not
        one the state's alternation holds: the first of those after it, in order, that matches."""
        order = scanner.order
        literals = self.literals
        for i in order[bisect.bisect_right(order, first):]:
            literal = literals[i]
            if literal is not None:
                if text.startswith(literal, pos, end):
                    return self.terminals[i].name, literal
            else:
                found = self._matcher(i)(text, pos, end)
                if found is not None:
                    return self.terminals[i].name, found.group(0)
        return None, None

    def next_token(self, lex_state, parser_state, scanner: _Scanner) -> Token:
        """BasicLexer.next_token, for the scanner of a set of terminals."""
        text = lex_state.text
        if isinstance(text, str):  # Lark before TextSlice
            whole, end = text, len(text)
        else:
            whole, end = text.text, text.end
        line_ctr = lex_state.line_ctr
        master = self.master
        keyword_groups = self.keyword_groups
        names = scanner.names
        while line_ctr.char_pos < end:
            pos = line_ctr.char_pos
            m = master(whole, pos, end)
            if m is None:
                type_ = None  # no terminal of the grammar starts here
            else:
                type_, value = m.lastgroup, m.group(0)
                if type_ in keyword_groups:
                    type_ = keyword_groups[type_][value]
                if type_ not in names:
                    type_, value = self._after(scanner, self.index[type_], whole, pos, end)
            if type_ is None:
                allowed = scanner.allowed_types - self.ignore_types
                if not allowed:
                    allowed = {"<END-OF-FILE>"}
                raise UnexpectedCharacters(whole, pos, line_ctr.line, line_ctr.column, allowed=allowed,
                                           token_history=lex_state.last_token and [lex_state.last_token],
                                           state=parser_state, terminals_by_name=self.terminals_by_name)
            ignored = type_ in self.ignore_types
            keywords = scanner.unless.get(type_)
            if ignored and not keywords:
                line_ctr.feed(value, type_ in self.newline_types)
                continue
            t = Token(type_, value, pos, line_ctr.line, line_ctr.column)
            line_ctr.feed(value, type_ in self.newline_types)
            t.end_line = line_ctr.line
            t.end_column = line_ctr.column
            t.end_pos = line_ctr.char_pos
            if keywords:
                retyped = self._retype(value, keywords)
                if retyped is not None:
                    t.type = retyped
            if not ignored:
                lex_state.last_token = t
                return t
        raise EOFError(self)

    def lex(self, lexer_state, parser_state):
        """ContextualLexer.lex: each token with the scanner of the parser's state at that point."""
        try:
            while True:
                yield self.next_token(lexer_state, parser_state, self._for_state(parser_state.position))
        except EOFError:
            pass
        except UnexpectedCharacters as e:
            # As Lark does: try the whole grammar here, to say which token came where it could not.
            try:
                last_token = lexer_state.last_token
                token = self.next_token(lexer_state, parser_state, self.root)
                raise UnexpectedToken(token, e.allowed, state=parser_state, token_history=[last_token],
                                      terminals_by_name=self.terminals_by_name)
            except UnexpectedCharacters:
                raise e
