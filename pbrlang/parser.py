"""Parsing: contract text -> syntax tree (pbrlang.nodes). Nothing after this touches Lark."""

from __future__ import annotations

import datetime
import functools
import hashlib
import os
from decimal import Decimal
from fractions import Fraction
import re
import sys

from lark import Lark, Token, Transformer, Tree, v_args
from lark import __version__ as _LARK_VERSION
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from . import cache
from . import nodes as n
from .errors import ContractSyntaxError, Diagnostic, UsageError
from .lexer import FastContextualLexer
from .money import ANY_SIZE
from .limits import (
    MAX_CONTRACT_BYTES,
    MAX_DECLARATIONS,
    MAX_DIAGNOSTICS,
    MAX_EXPRESSION_DEPTH,
    MAX_LIST_ITEMS,
    MAX_NESTING,
    MAX_PARSE_STACK,
    MAX_PREFIX_RUN,
    MAX_TOKENS,
)
from .parse_table import FORMAT as _TABLE_FORMAT, CompactLALRParser
from .source import ContractSource, Source, Span


def grammar_text() -> str:
    """The grammar ships inside the package (wheel); a checkout reads grammar/pbr.lark."""
    path = cache.grammar_file()
    if path is not None:
        with open(path, encoding="utf-8") as f:
            return f.read()
    # Imported from a zip file: only importlib.resources can read inside it (it costs
    # milliseconds to import, so the plain files are tried first).
    from importlib import resources

    return resources.files("pbrlang").joinpath("grammar").joinpath("pbr.lark").read_text(encoding="utf-8")


# Rules that hold declarations and clauses rather than values: they add no
# level of nesting. Every other rule of the grammar is part of an expression
# and adds one level (a rule added to the grammar later counts, to be safe).
_CONTAINERS = frozenset({
    "start", "contract_decl", "currency_decl", "rounding_decl", "statement_decl", "funder_decl", "shares_decl",
    "share_list", "share", "share_percent", "share_fraction", "enum_decl", "table_decl", "field_decl",
    "field_type", "table_check", "subject_decl", "eligible_decl", "band_decl", "band_closed", "band_open",
    "tariff_decl", "grid_row", "cell_name", "let_decl", "let_of_decl", "outcome_decl", "when_clause",
    "achieved_clause", "recurring_clause", "pays_clause", "outcome_shares_clause", "instead_clause",
    "requires_clause", "reports_clause", "report_item", "cap_decl", "cap_per", "cap_outcomes", "ceiling_decl",
    "overflow_to", "unfunded", "cohorts_decl", "cohort_entry", "pool_entry", "entry_reports",
})
_CHAINS = frozenset({"add", "sub", "mul", "div", "and_", "or_"})
_PREFIXES = frozenset({"not_", "neg"})


class _TooLong(Exception):
    """Raised from inside the parser when a list (of declarations, values, ...) passes its limit."""

    def __init__(self, data: str, children: list):
        super().__init__(data)
        self.data = data
        self.children = children


class _TooDeep(Exception):
    """Raised from inside the parser when an expression nests past MAX_EXPRESSION_DEPTH."""

    def __init__(self, data: str, children: list):
        super().__init__(data)
        self.data = data
        self.children = children


class _Tree(Tree):
    """A syntax tree node that knows how deeply nested it is.

    The LALR parser builds nodes bottom up without recursion, so measuring
    here (each node from its children) costs nothing extra and stops the
    parse at the first node too deep for the recursive stages after it.
    """

    __slots__ = ("depth",)

    def __init__(self, data, children, meta=None):
        super().__init__(data, children, meta)
        if data[:2] == "__":
            # A list in the making (`declaration*`, `("," enum_value)*`, ...): Lark copies it
            # once an item, so a long one costs time in the square of its length. Its
            # items are measured when the rule that holds them is built.
            if len(children) > _LIST_LIMITS.get(data, MAX_LIST_ITEMS):
                raise _TooLong(data, children)
            self.depth = 0
            return
        depth = 0
        for c in children:
            if type(c) is _Tree and c.depth > depth:
                depth = c.depth
        if data not in _CONTAINERS:
            depth += 1
            if depth > MAX_EXPRESSION_DEPTH:
                raise _TooDeep(data, children)
        self.depth = depth


class _StackTooDeep(Exception):
    """Raised when the parser holds more than MAX_PARSE_STACK unfinished symbols (see limits)."""

    def __init__(self, token):
        super().__init__(str(token))
        self.token = token


# How many items each list of the grammar may hold, by the name Lark gives the
# rule that builds it. A list written `x ("," x)*` holds its first item apart,
# so the rule that builds the rest may hold one fewer.
_LIST_LIMITS: dict[str, int] = {}


def _cache_file(grammar: str) -> str | bool:
    """Where Lark keeps the analysed grammar between runs (analysing it again takes half a second).

    The user's own cache folder: Lark's default is a file of a predictable name in the
    shared temporary folder, which Lark unpickles, and which anyone could have written.
    Where that folder cannot be written (the cache would then miss on every run,
    silently), Lark's default is used instead.
    """
    folder = cache.folder()
    if folder is None:
        return True
    # One file for each grammar (checkouts and versions side by side do not take turns rewriting it);
    # Lark checks inside it that the grammar, its options and the versions are the same.
    key = hashlib.sha256(grammar.encode("utf-8")).hexdigest()[:16]
    # (The table's format is in the name too: a file of Lark's own format would be read, but slowly.)
    return os.path.join(folder, f"grammar-{key}-lark-{_LARK_VERSION}-py{sys.version_info[0]}.{sys.version_info[1]}"
                                f"-t{_TABLE_FORMAT}")


@functools.cache
def _lark() -> Lark:
    grammar = grammar_text()
    # Two of Lark's parts are replaced by pbrlang's (Lark's `_plugins`), to start quicker: the
    # contextual lexer (pbrlang/lexer.py: the same tokens and errors, without compiling a regular
    # expression for each state of the parser) and how the parse table is cached (parse_table.py).
    lark = Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=True,
                cache=_cache_file(grammar), tree_class=_Tree,
                _plugins={"ContextualLexer": FastContextualLexer, "LALR_Parser": CompactLALRParser})
    for rule in lark.rules:
        name = rule.origin.name
        if name.startswith("__") and not rule.expansion[0].name == name:  # the rule's first, base, case
            limit = MAX_DECLARATIONS if name.startswith("__start_") else MAX_LIST_ITEMS
            rest = rule.expansion[0].is_term  # `("," x)*`: it starts with the separator
            _LIST_LIMITS[name] = limit - 1 if rest else limit
    return lark


def _parse_tree(text: str) -> _Tree:
    """Lark's LALR parse, watching how deep its stack grows.

    This is Lark's own parser loop (lalr_parser.parse_from_state) with one
    check added after each token. A construct that nests to the right (`if
    ... else if ...`, `any x in t where any ...`) is only built once its end
    is reached; until then its parts wait on the parser's stack, so the stack
    says how deep the text nests long before the tree can.
    """
    state = _lark().parse_interactive(text).parser_state
    stack = state.state_stack
    token = None
    for token in state.lexer.lex(state):
        state.feed_token(token)
        if len(stack) > MAX_PARSE_STACK:
            raise _StackTooDeep(token)
    end = Token.new_borrow_pos("$END", "", token) if token else Token("$END", "", 0, 1, 1)
    return state.feed_token(end, True)


# Words for terminals, so a syntax error says what was expected in English.
_TERMINAL_WORDS = {
    "NAME": "a name",
    "QUOTED_NAME": "a name",
    "STRING": 'a quoted text like "work-programme"',
    "DATE": "a date like 2014-03-31",
    "MONEY": "an amount like £400.00",
    "PERCENT": "a percentage like 20%",
    "DECIMAL": "a number like 0.40",
    "INT": "a whole number",
    "UNIT": "a unit (days, weeks, months or years)",
    "COMPARE": "a comparison (<, <=, >, >=, !=)",
    "AGGREGATE": "earliest, latest, sum, mean, min or max",
    "ROUNDING_MODE": "a rounding rule (half_up, half_even, down or up)",
    "STATEMENT_PART": "outcome or funder",
    "KEY": "`key`",
    "OPTIONAL": "`optional`",
    "$END": "the end of the contract",
    "VBAR": "`|`",
    "COLON": "`:`",
    "COMMA": "`,`",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "LSQB": "`[`",
    "RSQB": "`]`",
    "EQUAL": "`=`",
    "DOT": "`.`",
    "PLUS": "`+`",
    "MINUS": "`-`",
    "STAR": "`*`",
    "SLASH": "`/`",
}


_EXPRESSION_START = {"NAME", "INT", "MONEY", "DATE"}
_OPERATORS = {"PLUS", "MINUS", "STAR", "SLASH", "COMPARE"}


def _describe_expected(names: set[str]) -> str:
    if _EXPRESSION_START <= names:
        return "a value: a name, a number, an amount like £400.00, a date like 2014-03-31, or an expression"
    words = []
    for name in names:
        if name in _TERMINAL_WORDS:
            words.append(_TERMINAL_WORDS[name])
        elif name.isupper() and name.replace("_", "").isalpha():
            words.append(f"`{name.lower()}`")
        else:
            words.append(name)
    words = sorted(set(words))
    if len(words) > 12:
        return ", ".join(words[:12]) + ", ..."
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]


def _shown(text: str, limit: int = 40) -> str:
    """A piece of the contract fit to quote in a message: short, and with no invisible characters."""
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return "".join(c if c.isprintable() else f"U+{ord(c):04X}" for c in text)


def _shift(span: Span, lines: int) -> Span:
    return span.evolve(line=span.line + lines, end_line=span.end_line + lines) if lines else span


def _syntax_error(source: Source, err: UnexpectedInput, offset: int = 0) -> Diagnostic:
    """The diagnostic for Lark's error; `offset` lines come before the text that was parsed."""
    line = (getattr(err, "line", None) or 1) + offset
    column = getattr(err, "column", None) or 1
    if isinstance(err, UnexpectedEOF) or (
        isinstance(err, UnexpectedToken) and err.token.type == "$END"
    ):
        line, column = source.last_position()
        expected = _describe_expected(set(err.expected))
        return Diagnostic(
            "E001",
            "the contract ends too early",
            Span.at(source, line, column),
            hint=f"expected {expected}" if expected else None,
        )
    if isinstance(err, UnexpectedCharacters):
        text_line = source.line(line)
        char = text_line[column - 1] if 0 < column <= len(text_line) else "?"
        hint = None
        if char == "$":
            hint = "write amounts in pounds as £400.00"
        elif char == "'":
            hint = 'texts are written in double quotes: "work-programme"'
        elif char == '"':
            hint = 'a text in double quotes ends on the line it starts on'
        return Diagnostic("E002", f"unexpected character `{_shown(char)}`", Span.at(source, line, column), hint=hint)
    token = err.token
    shown = _shown(str(token))
    if _OPERATORS & set(err.expected) and len(err.expected) > 8:
        return Diagnostic(
            "E003",
            f"unexpected `{shown}`",
            Span.at(source, line, column, len(shown)),
            hint="the expression before it is complete here: did an operator or a value go missing?",
        )
    expected = _describe_expected(set(err.expected))
    before = source.line(line)[: column - 1].split()
    if err.expected == {"NAME"} and before and before[-1] in _DECLARATION_WORDS and len(before) == 1:
        # `outcome: date` in a table: the field's name was read as the start of a declaration.
        word = before[-1]
        return Diagnostic(
            "E003",
            f"`{word}` starts a declaration, so it cannot name a field here",
            Span.at(source, line, source.line(line).rfind(word, 0, column - 1) + 1, len(word)),
            hint=f"write the name in backquotes: `{word}`",
        )
    if "NAME" in err.expected and str(token).isidentifier() and token.type != "NAME":
        # A keyword where a name was wanted, such as a field called `outcome`.
        return Diagnostic(
            "E003",
            f"`{shown}` is a word of the language, not a name here",
            Span.at(source, line, column, len(shown)),
            hint=f"to use it as a name, write it in backquotes: `{shown}`",
        )
    return Diagnostic(
        "E003",
        f"unexpected `{shown}`",
        Span.at(source, line, column, len(shown)),
        hint=f"expected {expected}" if expected else None,
    )


def _name(token) -> str:
    text = str(token)
    return text[1:-1] if text.startswith("`") else text


def _money(text: str) -> Decimal:
    return Decimal(text.lstrip("£").replace(",", ""))


@v_args(meta=True, inline=True)
class _Builder(Transformer):
    """Builds nodes: one method per alias in the grammar."""

    def __init__(self, source: Source):
        super().__init__()
        self.source = source
        self.problems: list[Diagnostic] = []

    # positions
    def _s(self, meta) -> Span:
        return Span.from_meta(self.source, meta)

    def _t(self, token) -> Span:
        return Span.from_token(self.source, token)

    def _date(self, token) -> int:
        try:
            return datetime.date.fromisoformat(str(token)).toordinal()
        except ValueError:
            self.problems.append(
                Diagnostic("E010", f"`{token}` is not a real date", self._t(token), hint="dates are YYYY-MM-DD")
            )
            return datetime.date(2000, 1, 1).toordinal()

    # declarations
    def start(self, meta, *decls):
        return n.ContractTree(tuple(decls), span=self._s(meta))

    def contract_decl(self, meta, name):
        return n.ContractDecl(str(name)[1:-1], span=self._s(meta))

    def currency_decl(self, meta, code):
        return n.CurrencyDecl(_name(code), span=self._s(meta))

    def rounding_decl(self, meta, mode):
        return n.RoundingDecl(str(mode), span=self._s(meta))

    def statement_decl(self, meta, *parts):
        return n.StatementDecl(tuple(str(p) for p in parts), span=self._s(meta))

    def funder_decl(self, meta, name):
        return n.FunderDecl(_name(name), span=self._s(meta))

    def shares_decl(self, meta, shares):
        return n.SharesDecl(shares, span=self._s(meta))

    def share_list(self, meta, *shares):
        return tuple(shares)

    def share(self, meta, funder, amount):
        fraction, text = amount
        return n.Share(_name(funder), fraction, text, span=self._s(meta))

    def share_percent(self, meta, token):
        return Fraction(Decimal(str(token)[:-1])) / 100, str(token)

    def share_fraction(self, meta, top, bottom):
        if int(bottom) == 0:
            self.problems.append(Diagnostic("E011", "a share cannot divide by zero", self._t(bottom)))
            return Fraction(0), f"{top}/{bottom}"
        return Fraction(int(top), int(bottom)), f"{top}/{bottom}"

    def enum_decl(self, meta, name, *values):
        out = []
        for v in values:
            text = str(v)
            out.append(n.EnumValue(text[1:-1] if text.startswith('"') else _name(v), span=self._t(v)))
        return n.EnumDecl(_name(name), tuple(out), span=self._s(meta))

    def table_decl(self, meta, name, *items):
        fields = tuple(i for i in items if isinstance(i, n.FieldDecl))
        checks = tuple(i for i in items if not isinstance(i, n.FieldDecl))
        return n.TableDecl(_name(name), fields, checks, span=self._s(meta))

    def field_decl(self, meta, name, field_type, key):
        optional, type_name = field_type
        return n.FieldDecl(_name(name), type_name, optional, key is not None, span=self._s(meta))

    def field_type(self, meta, optional, name):
        return optional is not None, _name(name)

    def table_check(self, meta, expr):
        return expr

    def subject_decl(self, meta, name, table):
        return n.SubjectDecl(_name(name), _name(table), span=self._s(meta))

    def eligible_decl(self, meta, expr):
        return n.EligibleDecl(expr, span=self._s(meta))

    def band_decl(self, meta, name, *entries):
        return n.BandDecl(_name(name), tuple(entries), span=self._s(meta))

    def band_closed(self, meta, label, start, end):
        return n.BandEntry(_name(label), self._date(start), self._date(end), span=self._s(meta))

    def band_open(self, meta, label, start):
        return n.BandEntry(_name(label), self._date(start), None, span=self._s(meta))

    def tariff_decl(self, meta, name, key1, key2, *rows):
        keys = (_name(key1),) + ((_name(key2),) if key2 is not None else ())
        return n.TariffDecl(_name(name) if name is not None else None, keys, tuple(rows), span=self._s(meta))

    def grid_row(self, meta, *cells):
        return n.GridRow(tuple(cells), span=self._s(meta))

    def cell_name(self, meta, name):
        return n.CellName(_name(name), span=self._t(name))

    def let_decl(self, meta, name, expr):
        return n.LetDecl(_name(name), expr, span=self._s(meta))

    def let_of_decl(self, meta, name, binder, table, expr):
        return n.LetDecl(_name(name), expr, binder=_name(binder), table=_name(table), span=self._s(meta))

    def outcome_decl(self, meta, name, *clauses):
        fields = {"conditions": [], "achieved": None, "recurring": None, "pays": None, "shares": None,
                  "instead_of": (), "requires": (), "reports": ()}
        spans: dict = {}
        for kind, value, span in clauses:
            if kind == "conditions":
                fields["conditions"].append(value)
                continue
            if kind in spans:
                self.problems.append(
                    Diagnostic("E012", f"outcome `{_name(name)}` has a second `{_CLAUSE_WORDS[kind]}` clause", span,
                               hint="each outcome takes this clause once")
                )
                continue
            spans[kind] = span
            fields[kind] = value
        fields["conditions"] = tuple(fields["conditions"])
        return n.OutcomeDecl(_name(name), clause_spans=spans, span=self._s(meta), **fields)

    def when_clause(self, meta, expr):
        return ("conditions", expr, self._s(meta))

    def achieved_clause(self, meta, expr):
        return ("achieved", expr, self._s(meta))

    def recurring_clause(self, meta, every, after, spells, at_most):
        rec = n.Recurring(every, _name(after), spells, at_most, span=self._s(meta))
        return ("recurring", rec, self._s(meta))

    def pays_clause(self, meta, expr):
        return ("pays", expr, self._s(meta))

    def outcome_shares_clause(self, meta, shares):
        return ("shares", shares, self._s(meta))

    def instead_clause(self, meta, *names):
        return ("instead_of", tuple(n.Ref(_name(x), span=self._t(x)) for x in names), self._s(meta))

    def requires_clause(self, meta, *names):
        return ("requires", tuple(n.Ref(_name(x), span=self._t(x)) for x in names), self._s(meta))

    def reports_clause(self, meta, *items):
        return ("reports", tuple(items), self._s(meta))

    def report_item(self, meta, name, expr):
        return (_name(name), expr)

    def cohorts_decl(self, meta, binder, table, members, by, counting, *entries):
        return n.CohortsDecl(_name(binder), _name(table), members, by, counting, tuple(entries), span=self._s(meta))

    def cohort_entry(self, meta, name, start, end, comparison, assessed, reports):
        return n.CohortEntry(_name(name), self._date(start), self._date(end), Decimal(str(comparison)),
                             self._date(assessed), reports or (), span=self._s(meta))

    def pool_entry(self, meta, name, assessed, reports):
        return n.PoolEntry(_name(name), self._date(assessed), reports or (), span=self._s(meta))

    def entry_reports(self, meta, *names):
        return tuple(n.Ref(_name(x), span=self._t(x)) for x in names)

    def paid(self, meta, name):
        return n.Paid(_name(name), span=self._s(meta))

    def cap_decl(self, meta, name, limit, *rest):
        outcomes = rest[-1] if rest else None
        scopes = tuple(r for r in rest[:-1])
        return n.CapDecl(_name(name), limit, scopes, outcomes or (), span=self._s(meta))

    def cap_per(self, meta, name):
        return n.Scope(_name(name), span=self._s(meta))

    def cap_outcomes(self, meta, *names):
        return tuple(n.Ref(_name(x), span=self._t(x)) for x in names)

    def ceiling_decl(self, meta, name, limit, *rest):
        *scopes, funder, action = rest
        return n.CeilingDecl(_name(name), limit, tuple(scopes), _name(funder), action, span=self._s(meta))

    def overflow_to(self, meta, name):
        return _name(name)

    def unfunded(self, meta):
        return None

    # expressions
    def if_expr(self, meta, c, a, b):
        return n.If(c, a, b, span=self._s(meta))

    def or_(self, meta, a, b):
        return n.Binary("or", a, b, span=self._s(meta))

    def and_(self, meta, a, b):
        return n.Binary("and", a, b, span=self._s(meta))

    def not_(self, meta, a):
        return n.Unary("not", a, span=self._s(meta))

    def compare(self, meta, a, op, b):
        return n.Compare(str(op), a, b, span=self._s(meta))

    def compare_equal(self, meta, a, b):
        return n.Compare("=", a, b, span=self._s(meta))

    def is_none(self, meta, a):
        return n.IsNone(a, False, span=self._s(meta))

    def is_not_none(self, meta, a):
        return n.IsNone(a, True, span=self._s(meta))

    def within_after(self, meta, value, length, anchor):
        return n.Within(value, length, anchor, "of", span=self._s(meta))

    def within_before(self, meta, value, length, anchor):
        return n.Within(value, length, anchor, "before", span=self._s(meta))

    def in_band(self, meta, value, band):
        return n.InBand(value, _name(band), span=self._s(meta))

    def in_list(self, meta, value, *options):
        return n.InList(value, tuple(options), span=self._s(meta))

    def counted_from(self, meta, spells, arg):
        return n.SpellOp("counted_from", spells, arg, span=self._s(meta))

    def starting_from(self, meta, spells, arg):
        return n.SpellOp("starting_from", spells, arg, span=self._s(meta))

    def not_counting(self, meta, spells, arg):
        return n.SpellOp("not_counting", spells, arg, span=self._s(meta))

    def add(self, meta, a, b):
        return n.Binary("+", a, b, span=self._s(meta))

    def sub(self, meta, a, b):
        return n.Binary("-", a, b, span=self._s(meta))

    def mul(self, meta, a, b):
        return n.Binary("*", a, b, span=self._s(meta))

    def div(self, meta, a, b):
        return n.Binary("/", a, b, span=self._s(meta))

    def neg(self, meta, a):
        return n.Unary("-", a, span=self._s(meta))

    def field(self, meta, target, name):
        return n.Field(target, _name(name), span=self._s(meta))

    def lookup(self, meta, target, *keys):
        return n.Lookup(target, tuple(keys), span=self._s(meta))

    def duration(self, meta, amount, unit):
        word = str(unit)
        word = word if word.endswith("s") else word + "s"
        return n.Duration(amount, word, span=self._s(meta))

    def ref(self, meta, name):
        return n.Ref(_name(name), span=self._s(meta))

    def call(self, meta, name, *args):
        args = tuple(a for a in args if a is not None)
        return n.Call(_name(name), args, span=self._s(meta))

    def as_of(self, meta):
        return n.AsOf(span=self._s(meta))

    def first_day_lasting(self, meta, spells, length):
        return n.FirstDayLasting(spells, length, span=self._s(meta))

    def binding(self, meta, name, source, where):
        return n.Binding(_name(name), source, where, span=self._s(meta))

    def count(self, meta, binding):
        return n.Count(binding, span=self._s(meta))

    def count_distinct(self, meta, value, binding):
        return n.CountDistinct(value, binding, span=self._s(meta))

    def aggregate(self, meta, kind, value, binding):
        return n.Aggregate(str(kind), value, binding, span=self._s(meta))

    def any_(self, meta, binding, condition):
        return n.Quantifier("any", binding, condition, span=self._s(meta))

    def no_(self, meta, binding, condition):
        return n.Quantifier("no", binding, condition, span=self._s(meta))

    def every(self, meta, binding, condition):
        return n.Quantifier("every", binding, condition, span=self._s(meta))

    def each(self, meta, binding):
        return n.Each(binding, span=self._s(meta))

    def spells(self, meta, start, end, binding):
        return n.Spells(start, end, binding, span=self._s(meta))

    def first_run(self, meta, length, binding, order, condition):
        return n.FirstRun(length, binding, order, condition, span=self._s(meta))

    # literals
    def int_lit(self, meta, token):
        return n.Literal("integer", int(token), span=self._t(token))

    def decimal_lit(self, meta, token):
        return n.Literal("decimal", Decimal(str(token)), span=self._t(token))

    def money_lit(self, meta, token):
        return n.Literal("money", _money(str(token)), span=self._t(token))

    def percent_lit(self, meta, token):
        return n.Literal("decimal", Decimal(str(token)[:-1]).scaleb(-2, ANY_SIZE), span=self._t(token))

    def date_lit(self, meta, token):
        return n.Literal("date", self._date(token), span=self._t(token))

    def string_lit(self, meta, token):
        return n.Literal("text", str(token)[1:-1], span=self._t(token))

    def true_lit(self, meta):
        return n.Literal("boolean", True, span=self._s(meta))

    def false_lit(self, meta):
        return n.Literal("boolean", False, span=self._s(meta))

    def none_lit(self, meta):
        return n.Literal("none", None, span=self._s(meta))


_CLAUSE_WORDS = {
    "achieved": "achieved on",
    "recurring": "every ... after",
    "pays": "pays",
    "shares": "shares",
    "instead_of": "instead of",
    "requires": "requires",
    "reports": "reports",
}


# One match per token of the grammar, near enough to count them: comments are
# matched (and skipped) whole, and so are texts, so that a bracket, a `-` or a
# `not` inside either is not counted.
_SCAN = re.compile(
    r"""(?P<comment>\#[^\n]*)"""
    r"""|(?P<open>[(\[])|(?P<close>[)\]])"""
    r"""|(?P<token>"[^"\n]*"|`[^`\n]*`|[A-Za-z_][A-Za-z0-9_]*|£[0-9][0-9,]*(?:\.[0-9]+)?"""
    r"""|[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]+(?:\.[0-9]+)?%?|[<>!]=|\S)"""
)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _position(text: str, offset: int) -> tuple[int, int]:
    """The 1-based line and column of a character offset, counting lines as the parser does."""
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def _scan_problem(source: Source) -> Diagnostic | None:
    """Refuse, before parsing, what no contract needs and would make parsing slow or deep.

    One pass over the tokens (comments skipped): brackets nested more than
    MAX_NESTING deep, more than MAX_PREFIX_RUN `not`s and `-`s in a row, and
    more than MAX_TOKENS tokens. The first limit passed, in the order of the
    text, is reported where it is passed. The pass stops there, so it costs
    at most MAX_TOKENS steps whatever the size of the text.
    """
    text = source.text
    depth = run = count = 0
    for m in _SCAN.finditer(text):
        kind = m.lastgroup
        if kind == "comment":
            continue
        count += 1
        if count > MAX_TOKENS:
            return Diagnostic(
                "E005",
                f"the contract has more than {MAX_TOKENS:,} words, numbers and symbols",
                Span.at(source, *_position(text, m.start())),
                hint="comments are not counted; no schedule written by people comes near this",
            )
        if kind == "open":
            run = 0
            depth += 1
            if depth > MAX_NESTING:
                return Diagnostic(
                    "E004",
                    f"brackets are nested more than {MAX_NESTING} deep",
                    Span.at(source, *_position(text, m.start())),
                    hint="split the expression with `let` definitions",
                )
        elif kind == "close":
            run = 0
            depth = max(0, depth - 1)
        elif m.group() in ("-", "not"):
            run += 1
            if run > MAX_PREFIX_RUN:
                return _prefix_run(source, Span.at(source, *_position(text, m.start()), len(m.group())))
        else:
            run = 0
    return None


def _prefix_run(source: Source, span: Span) -> Diagnostic:
    return Diagnostic(
        "E004",
        f"more than {MAX_PREFIX_RUN} `not`s or `-`s in a row",
        span,
        hint="two `not`s in a row cancel out, and so do two `-`s",
    )


def _node_span(source: Source, children: list) -> Span:
    """Where the node made of these children stands (the parser has not placed it yet)."""
    first = last = None
    for c in children:
        if isinstance(c, Token) and c.line is not None:
            first = first or Span.from_token(source, c)
            last = Span.from_token(source, c)
        elif isinstance(c, Tree) and not c.meta.empty:
            first = first or Span.from_meta(source, c.meta)
            last = Span.from_meta(source, c.meta)
    if first is None:
        return Span.at(source, 1, 1)
    return first.join(last)


_LIST_WORDS = (
    ("__start_", "declarations", "the contract has"),
    ("__enum_decl_", "values", "this enumeration has"),
    ("__table_decl_plus", "fields", "this table has"),
    ("__table_decl_star", "`valid when` rules", "this table has"),
    ("__band_decl_", "periods", "this band has"),
    ("__tariff_decl_", "rows", "this tariff has"),
    ("__grid_row_", "cells", "this row has"),
    ("__outcome_decl_", "clauses", "this outcome has"),
    ("__cohorts_decl_", "cohorts", "this declaration has"),
)


def _too_long(source: Source, err: _TooLong, offset: int = 0) -> Diagnostic:
    limit = MAX_DECLARATIONS if err.data.startswith("__start_") else MAX_LIST_ITEMS
    what, who = next(((w, h) for prefix, w, h in _LIST_WORDS if err.data.startswith(prefix)), ("items", "this list has"))
    held = _LIST_LIMITS.get(err.data, limit)
    span = _shift(_node_span(source, err.children[held:held + 1]), offset)
    return Diagnostic(
        "E005",
        f"{who} more than {limit:,} {what}",
        Span.at(source, span.line, span.column),
        hint="no schedule written by people comes near this",
    )


def _too_deep(source: Source, err: _TooDeep | _StackTooDeep | _TooLong, offset: int = 0) -> Diagnostic:
    """The diagnostic for a node past MAX_EXPRESSION_DEPTH, in words for what made it deep."""
    if isinstance(err, _TooLong):
        return _too_long(source, err, offset)
    if isinstance(err, _StackTooDeep):
        return Diagnostic(
            "E004",
            f"this expression is nested more than {MAX_EXPRESSION_DEPTH} levels deep",
            _shift(Span.from_token(source, err.token), offset),
            hint="split the expression with `let` definitions",
        )
    span = _shift(_node_span(source, err.children), offset)
    # Follow the deepest path down from the node and see what it is mostly made of.
    chains = prefixes = others = 0
    data, children = err.data, err.children
    for _ in range(MAX_EXPRESSION_DEPTH + 1):
        if data in _CHAINS:
            chains += 1
        elif data in _PREFIXES:
            prefixes += 1
        elif data not in _CONTAINERS:
            others += 1
        deeper = [c for c in children if type(c) is _Tree]
        if not deeper:
            break
        below = max(deeper, key=lambda c: c.depth)
        data, children = below.data, below.children
    if prefixes > chains + others:
        hint = "each `not` or `-` nests one level (and two in a row cancel out)"
    elif chains > prefixes + others:
        hint = "each operator of a chain nests one level: split the chain into parts with `let` definitions"
    else:
        hint = "split the expression with `let` definitions"
    return Diagnostic("E004", f"this expression is nested more than {MAX_EXPRESSION_DEPTH} levels deep", span, hint=hint)


def _too_many(source: ContractSource) -> Diagnostic:
    """Said once, at the end, when a list of problems stops at MAX_DIAGNOSTICS."""
    return Diagnostic(
        "E005",
        f"too many problems: only the first {MAX_DIAGNOSTICS} found are listed",
        Span.at(source, *source.last_position()),
        hint="put these right and check again",
    )


_DECLARATION_WORDS = (
    "contract", "currency", "rounding", "statement", "funder", "shares", "enum", "table", "subject",
    "eligible", "band", "tariff", "let", "outcome", "cap", "ceiling", "cohorts",
)


def _all_syntax_errors(source: ContractSource, first: UnexpectedInput) -> list[Diagnostic]:
    """Report a syntax error in each top-level declaration, not only the first.

    Each declaration starts with its keyword at the start of a line; every one
    is parsed on its own (its errors moved down to its lines), which finds
    independent mistakes without guessing how to repair any of them. At most
    MAX_DECLARATIONS declarations are read again, and MAX_DIAGNOSTICS reported.

    The error of the whole parse is dropped when a declaration before it has
    an error of its own: that declaration ended too early (or the whole parse
    would have stopped inside it), so the whole parse read on into the next
    declaration, and its error there is a knock-on of the first.
    """
    whole = _syntax_error(source, first)
    lines = source.text.split("\n")
    starts = [i for i, line in enumerate(lines) if line.split(" ", 1)[0].rstrip(":") in _DECLARATION_WORDS]
    if len(starts) < 2:
        return [whole]
    bounds = list(zip(starts, starts[1:] + [len(lines)]))[:MAX_DECLARATIONS]
    found: list[Diagnostic] = []
    seen: set[tuple[int, int]] = set()
    knock_on = False
    for begin, end in bounds:
        chunk = "\n".join(lines[begin:end])
        try:
            _parse_tree(chunk)
            continue
        except (_TooDeep, _StackTooDeep, _TooLong) as err:
            d = _too_deep(source, err, begin)
        except UnexpectedInput as err:
            d = _syntax_error(source, err, begin)
            if isinstance(err, UnexpectedEOF) or getattr(getattr(err, "token", None), "type", "") == "$END":
                # The declaration stops short: point at its last line, not at the end of the file.
                last = end - 1
                while last > begin and not lines[last].strip():
                    last -= 1
                d = d.evolve(message="this declaration ends too early",
                             span=Span.at(source, last + 1, len(source.line(last + 1)) + 1))
        if end < whole.span.line:
            knock_on = True
        if (d.span.line, d.span.column) not in seen and d.span.line > begin:
            seen.add((d.span.line, d.span.column))
            found.append(d)
            if len(found) > MAX_DIAGNOSTICS:
                break
    if not knock_on:
        at = (whole.span.line, whole.span.column)
        found = [whole] + [d for d in found if (d.span.line, d.span.column) != at]
    if len(found) > MAX_DIAGNOSTICS:
        found = found[:MAX_DIAGNOSTICS] + [_too_many(source)]
    return found


def parse(text: str, name: str = "<contract>") -> n.ContractTree:
    """Parse contract text into a syntax tree, or raise ContractSyntaxError.

    Every limit in pbrlang.limits that concerns the text is enforced here, so
    that the stages after it (which recurse over the tree) only ever see trees
    they can handle.
    """
    if not isinstance(text, str):
        raise UsageError(f"a contract is text (str), not {type(text).__name__}")
    if text.startswith("\ufeff"):
        # A byte order mark, as some editors write at the start of a UTF-8 file (data files
        # may have one too): not part of the text, and invisible, so columns count without it.
        text = text[1:]
    source = ContractSource(name, text)
    if len(text.encode("utf-8", "surrogatepass")) > MAX_CONTRACT_BYTES:
        raise ContractSyntaxError(
            [Diagnostic("E005", f"the contract is larger than {MAX_CONTRACT_BYTES} bytes", Span.at(source, 1, 1))]
        )
    half = _SURROGATE.search(text)
    if half:
        # Only a str built in Python can hold one (a file is read as UTF-8); it cannot be written out again.
        raise ContractSyntaxError([Diagnostic(
            "E002", f"unexpected character `{_shown(half.group())}`",
            Span.at(source, *_position(text, half.start())),
            hint="this is half of a character (an unpaired surrogate), not text",
        )])
    problem = _scan_problem(source)
    if problem:
        raise ContractSyntaxError([problem])
    try:
        tree = _parse_tree(text)
    except UnexpectedInput as err:
        raise ContractSyntaxError(_all_syntax_errors(source, err)) from None
    except (_TooDeep, _StackTooDeep, _TooLong) as err:
        raise ContractSyntaxError([_too_deep(source, err)]) from None
    except RecursionError:  # not expected: the limits above keep every stage shallow
        raise ContractSyntaxError(
            [Diagnostic("E004", "the contract is nested too deeply to read", Span.at(source, 1, 1))]
        ) from None
    builder = _Builder(source)
    try:
        result = builder.transform(tree)
    except VisitError as err:  # a bug in the builder, never the user's fault
        raise err.orig_exc from None
    if builder.problems:
        raise ContractSyntaxError(builder.problems[:MAX_DIAGNOSTICS]
                                  + ([_too_many(source)] if len(builder.problems) > MAX_DIAGNOSTICS else []))
    return result
