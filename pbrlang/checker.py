"""Checking: syntax tree -> checked program (names resolved, types known, rules proven).

The checker keeps going after a problem and reports every one it finds,
sorted by position. It proves what can be proven before any data is read:
names exist, types fit, tariff tables are complete, funder shares add up to
exactly 100%, and no definition depends on itself (the language has no
recursion, so every contract terminates).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import attrs

from . import nodes as n
from . import types as t
from .errors import ContractCheckError, Diagnostic
from .limits import MAX_DEFINITION_CHAIN, MAX_DIAGNOSTICS, MAX_EXPRESSION_DEPTH
from .program import (
    COHORT_FIELDS,
    Band,
    Cap,
    Ceiling,
    Cohort,
    Cohorts,
    FieldInfo,
    Let,
    Outcome,
    Pool,
    Program,
    Subject,
    TableInfo,
    Tariff,
)
from .source import Span

BUILTINS = {"later", "earlier", "higher", "lower", "abs", "days_between"}
PERIOD_SCOPES = {"month", "financial_year"}


def _suggest(name: str, candidates) -> str | None:
    import difflib  # only a contract with a misspelt name needs it

    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None


# How many names, in all, suggestions may compare a misspelt name with (each
# comparison takes a few microseconds); a contract with thousands of names and
# a hundred misspellings gets suggestions for the first few only.
_SUGGESTION_BUDGET = 100_000


class _Stop(Exception):
    """Raised when MAX_DIAGNOSTICS errors have been found: checking stops there."""


# How deep checking may nest expressions, counting through definitions it has
# to check on the way. Definitions are checked after the ones they use, so this
# only grows past one expression's depth around a circle of definitions (E107).
_MAX_CHECK_NESTING = MAX_EXPRESSION_DEPTH + 20


class _Scope:
    """What bare names mean at one point: binders, and whether a subject is in view."""

    def __init__(self, binders=None, subject=True, table=None):
        self.binders: dict[str, t.Type] = dict(binders or {})
        self.subject = subject
        self.table = table  # in a table's `valid when`, that table's fields are bare names

    def bind(self, name: str, typ: t.Type) -> "_Scope":
        s = _Scope(self.binders, self.subject, self.table)
        s.binders[name] = typ
        return s


class Checker:
    def __init__(self, tree: n.ContractTree):
        self.tree = tree
        self.problems: list[Diagnostic] = []
        self.names: dict[str, tuple[str, Span | None]] = {}  # top-level name -> (kind, span)
        self.enums: dict[str, tuple[str, ...]] = {}
        self.tables: dict[str, TableInfo] = {}
        self.subject: Subject | None = None
        self.bands: dict[str, Band] = {}
        self.tariffs: dict[str, Tariff] = {}
        self.funders: list[str] = []
        self.let_decls: dict[str, n.LetDecl] = {}
        self.lets: dict[str, Let] = {}
        self.outcome_decls: dict[str, n.OutcomeDecl] = {}
        self._checking: list[str] = []  # definitions being checked, to find cycles
        self._paid_allowed = False  # `paid X` is allowed only in an outcome's pays and reports
        self._paid_used = False
        self._deps: list[set[str]] = []
        self._per_subject: list[bool] = []
        self._errors = 0  # errors reported (checking stops at MAX_DIAGNOSTICS)
        self._speculating = 0  # inside a look whose problems are thrown away (see _x_Ref_plain)
        self._nesting = 0  # expressions being checked, one inside another
        self._too_deep_said = False
        self._suggestions_left = _SUGGESTION_BUDGET
        self._table_names_cache = frozenset(d.name for d in tree.declarations if isinstance(d, n.TableDecl))

    # ---- reporting ---------------------------------------------------------------

    def _suggest(self, name: str, candidates) -> str | None:
        """`did you mean ...?` for a misspelt name, while the suggestion budget lasts."""
        candidates = set(candidates)
        if len(candidates) > self._suggestions_left:
            return None
        self._suggestions_left -= len(candidates)
        return _suggest(name, candidates)

    def error(self, code: str, message: str, span: Span | None, hint: str | None = None) -> None:
        d = Diagnostic(code, message, span, hint)
        if not self._speculating and d in self.problems[-8:]:
            return  # the same problem met again (a circle of definitions is met at each use)
        self.problems.append(d)
        if not self._speculating:
            self._errors += 1
            if self._errors > MAX_DIAGNOSTICS:
                self.problems.pop()
                raise _Stop()

    def warn(self, code: str, message: str, span: Span | None, hint: str | None = None) -> None:
        self.problems.append(Diagnostic(code, message, span, hint, severity="warning"))

    def declare(self, name: str, kind: str, span: Span | None) -> bool:
        if name in self.names:
            other_kind, other = self.names[name]
            where = f" (first defined as {other_kind} at {other.location})" if other else ""
            self.error("E103", f"`{name}` is defined twice{where}", span, hint="give each definition its own name")
            return False
        self.names[name] = (kind, span)
        return True

    # ---- the whole contract -----------------------------------------------------

    def run(self) -> Program:
        decls = self.tree.declarations
        header: dict[str, Any] = {}
        for d in decls:
            for cls, key in ((n.ContractDecl, "contract"), (n.CurrencyDecl, "currency"), (n.RoundingDecl, "rounding")):
                if isinstance(d, cls):
                    if key in header:
                        self.error("E103", f"the contract declares `{key}` twice", d.span)
                    header[key] = d
        if "contract" not in header:
            self.error("E108", "the contract has no name", self.tree.span, hint='start with: contract "name"')
        parts: set[str] = set()
        for d in decls:
            if isinstance(d, n.StatementDecl):
                parts.update(d.parts)

        for d in decls:
            if isinstance(d, n.EnumDecl):
                self._enum(d)
            elif isinstance(d, n.FunderDecl):
                if self.declare(d.name, "a funder", d.span):
                    self.funders.append(d.name)
            elif isinstance(d, n.BandDecl):
                self._band(d)
        for d in decls:
            if isinstance(d, n.TableDecl):
                self._table_fields(d)
        cohorts_decls = [d for d in decls if isinstance(d, n.CohortsDecl)]
        for d in cohorts_decls[1:]:
            self.error("E103", "the contract declares its cohorts twice", d.span)
        if cohorts_decls:
            self._cohort_table(cohorts_decls[0])
        for d in decls:
            if isinstance(d, n.SubjectDecl):
                self._subject(d)
        for d in decls:
            if isinstance(d, n.TableDecl):
                self._table_references(d)
        if self.subject is None:
            self.error("E108", "the contract does not say who its subject is", self.tree.span,
                       hint="add: subject participant: participants")
        for d in decls:
            if isinstance(d, n.TariffDecl):
                self._tariff(d)
        for d in decls:
            if isinstance(d, n.LetDecl):
                if self.declare(d.name, "a definition", d.span):
                    self.let_decls[d.name] = d
            elif isinstance(d, n.OutcomeDecl):
                if self.declare(d.name, "an outcome", d.span):
                    self.outcome_decls[d.name] = d
            elif isinstance(d, (n.CapDecl, n.CeilingDecl)):
                self.declare(d.name, "a cap", d.span)
        for d in decls:
            if isinstance(d, n.TableDecl):
                self._table_checks(d)

        default_shares = None
        for d in decls:
            if isinstance(d, n.SharesDecl):
                if default_shares is not None:
                    self.error("E103", "the contract declares its default shares twice", d.span)
                default_shares = self._shares(d.shares, d.span)
        if default_shares is None and len(self.funders) == 1:
            default_shares = ((self.funders[0], Fraction(1)),)
        if not self.funders:
            self.error("E108", "the contract names no funder", self.tree.span, hint="add: funder DWP")

        # Each definition after the ones it uses, so that checking one never has
        # to stop and check another first (which, down a long chain, would
        # recurse once a link); only around a circle does it still recurse.
        for name in self._let_check_order():
            self._let(name)

        eligible = None
        for d in decls:
            if isinstance(d, n.EligibleDecl):
                if eligible is not None:
                    self.error("E103", "the contract has two `eligible when` rules", d.span,
                               hint="join them with `and`")
                eligible = self._condition(d.condition, _Scope())

        outcomes = []
        for name, d in self.outcome_decls.items():
            outcomes.append(self._outcome(d, default_shares))
        order = {o.name: i for i, o in enumerate(outcomes)}
        outcomes = [o.evolve(index=order[o.name]) for o in outcomes]
        self._outcome_cycles(outcomes)
        if not any(p.severity == "error" for p in self.problems):
            self._chain_lengths(outcomes)

        cohorts = self._cohorts(cohorts_decls[0]) if cohorts_decls else None

        caps = [self._cap(d) for d in decls if isinstance(d, n.CapDecl)]
        ceilings = [self._ceiling(d) for d in decls if isinstance(d, n.CeilingDecl)]

        if self.problems and any(p.severity == "error" for p in self.problems):
            raise ContractCheckError(self.problems)
        self._likely_mistakes(outcomes, caps)
        lets_in_order = self._let_order()
        return Program(
            source=self.tree.span.source if self.tree.span else None,
            name=header["contract"].name,
            currency=header["currency"].code if "currency" in header else "GBP",
            rounding=header["rounding"].mode if "rounding" in header else "half_up",
            statement_parts=frozenset(parts),
            funders=tuple(self.funders),
            enums=self.enums,
            tables=self.tables,
            subject=self.subject,
            eligible=eligible,
            bands=self.bands,
            tariffs=self.tariffs,
            lets=tuple(lets_in_order),
            outcomes=tuple(outcomes),
            caps=tuple(caps),
            ceilings=tuple(ceilings),
            cohorts=cohorts,
            warnings=tuple(p for p in self.problems if p.severity == "warning"),
        )

    # ---- declarations --------------------------------------------------------------

    def _enum(self, d: n.EnumDecl) -> None:
        if not self.declare(d.name, "an enumeration", d.span):
            return
        seen: list[str] = []
        seen_set: set[str] = set()
        for v in d.values:
            if v.name in seen_set:
                self.error("E103", f"`{v.name}` appears twice in enumeration `{d.name}`", v.span)
            seen.append(v.name)
            seen_set.add(v.name)
        self.enums[d.name] = tuple(seen)

    def _band(self, d: n.BandDecl) -> None:
        if not self.declare(d.name, "a band", d.span):
            return
        labels: set[str] = set()
        entries = []
        first_span: dict[str, Span | None] = {}
        for e in d.entries:
            if e.label in labels:
                self.error("E103", f"band `{d.name}` names `{e.label}` twice", e.span)
            labels.add(e.label)
            first_span.setdefault(e.label, e.span)
            if e.end is not None and e.end < e.start:
                self.error("E120", f"band `{e.label}` ends before it starts", e.span)
            entries.append((e.label, e.start, e.end))
        ordered = sorted(entries, key=lambda x: x[1])
        for (la, sa, ea), (lb, sb, eb) in zip(ordered, ordered[1:]):
            if ea is None or ea >= sb:
                span = first_span[lb]
                self.error("E121", f"bands `{la}` and `{lb}` of `{d.name}` overlap", span,
                           hint="a date must fall in at most one band")
        self.bands[d.name] = Band(d.name, tuple(ordered), span=d.span)

    def _field_type(self, f: n.FieldDecl) -> tuple[t.Type, str | None]:
        if f.type_name in t.FIELD_TYPES:
            return t.FIELD_TYPES[f.type_name], None
        if f.type_name in self.enums:
            return t.enum(f.type_name), None
        if f.type_name in self._table_names:
            return t.TEXT, f.type_name  # a reference holds the other table's key
        known = list(t.FIELD_TYPES) + list(self.enums) + list(self._table_names)
        self.error("E100", f"unknown type `{f.type_name}` for field `{f.name}`", f.span, hint=self._suggest(f.type_name, known)
                   or "a field is text, integer, decimal, money, date, boolean, an enumeration or a table it refers to")
        return t.TEXT, None

    @property
    def _table_names(self) -> frozenset[str]:
        return self._table_names_cache

    def _table_fields(self, d: n.TableDecl) -> None:
        if not self.declare(d.name, "a table", d.span):
            return
        fields = []
        key = None
        names: set[str] = set()
        for i, f in enumerate(d.fields):
            if f.name in names:
                self.error("E103", f"table `{d.name}` has two fields named `{f.name}`", f.span)
            names.add(f.name)
            typ, ref = self._field_type(f)
            if f.key:
                if key is not None:
                    self.error("E122", f"table `{d.name}` has two keys", f.span, hint="a table has at most one key field")
                key = f.name
                if f.optional:
                    self.error("E122", f"key `{f.name}` cannot be optional", f.span)
                if typ != t.TEXT:
                    # A reference holds a key as text, and a subject's id is written as text in
                    # every statement: an id read as a number or a date would not match either.
                    self.error("E122", f"key `{f.name}` must be text", f.span,
                               hint=f"write it `{f.name}: text key`; an id made of digits is still text")
            values = self.enums.get(typ.name) if typ.kind == "enum" else None
            fields.append(FieldInfo(f.name, typ, f.optional, i, ref, values, span=f.span))
        self.tables[d.name] = TableInfo(d.name, tuple(fields), key, (), span=d.span)

    def _cohort_table(self, d: n.CohortsDecl) -> None:
        if not self.declare("cohorts", "the cohorts", d.span):
            return
        fields = tuple(FieldInfo(name, typ, False, i, None, None, span=d.span) for i, (name, typ) in enumerate(COHORT_FIELDS))
        self.tables["cohorts"] = TableInfo("cohorts", fields, "id", (), virtual=True, span=d.span)

    def _cohorts(self, d: n.CohortsDecl) -> Cohorts | None:
        if d.table not in self.tables or self.tables[d.table].virtual:
            self.error("E100", f"unknown table `{d.table}`", d.span, hint=self._suggest(d.table, self.tables))
            return None
        scope = _Scope(subject=False).bind(d.binder, t.record(d.table))
        self._per_subject.append(False)
        self._deps.append(set())
        members = self._condition(d.members, scope)
        by = self._typed(d.by, scope, {"date"}, "the date that places a member in a cohort")
        counting = self._typed(d.counting, scope, {"integer"}, "a whole number of events for each member")
        self._per_subject.pop()
        self._deps.pop()
        entries, pools, names = [], [], set()
        for e in d.entries:
            if e.name in names or (e.name in self.names and e.name != "cohorts"):
                self.error("E103", f"`{e.name}` is defined twice", e.span)
            names.add(e.name)
            if isinstance(e, n.CohortEntry):
                if e.end < e.start:
                    self.error("E120", f"cohort `{e.name}` ends before it starts", e.span)
                entries.append(e)
            else:
                pools.append(e)
        checked_entries = []
        for e in entries + pools:
            refs = []
            for ref in e.reports:
                if ref.name not in self.let_decls:
                    self.error("E100", f"`reports {ref.name}` names no definition", ref.span,
                               hint=self._suggest(ref.name, self.let_decls))
                else:
                    refs.append((ref.name, self.expr(ref, _Scope()).type))
            if isinstance(e, n.CohortEntry):
                checked_entries.append(Cohort(e.name, e.start, e.end, e.comparison, e.assessed, tuple(refs), span=e.span))
            else:
                checked_entries.append(Pool(e.name, e.assessed, tuple(refs), span=e.span))
        entries = [e for e in checked_entries if isinstance(e, Cohort)]
        pools = [e for e in checked_entries if isinstance(e, Pool)]
        ordered = sorted(entries, key=lambda e: e.start)
        for a, b in zip(ordered, ordered[1:]):
            if a.end >= b.start:
                self.error("E121", f"cohorts `{a.name}` and `{b.name}` overlap", b.span,
                           hint="a member belongs to at most one cohort")
        if not entries:
            self.error("E108", "no cohort is declared", d.span, hint="cohort cohort_1: 2010-09-09 to 2012-06-30, ...")
        return Cohorts(d.binder, d.table, members, by, counting, tuple(entries), tuple(pools), span=d.span)

    def _subject(self, d: n.SubjectDecl) -> None:
        if self.subject is not None:
            self.error("E103", "the contract declares its subject twice", d.span)
            return
        if d.table not in self.tables:
            self.error("E100", f"unknown table `{d.table}`", d.span, hint=self._suggest(d.table, self.tables))
            return
        if self.tables[d.table].key is None:
            self.error("E122", f"the subject table `{d.table}` needs a key field", d.span,
                       hint="mark its id field with `key`: id: text key")
        if not self.declare(d.name, "the subject", d.span):
            return
        self.subject = Subject(d.name, d.table, span=d.span)

    def _table_references(self, d: n.TableDecl) -> None:
        info = self.tables.get(d.name)
        if info is None:
            return
        for f in info.fields:
            if f.references and self.tables.get(f.references) and self.tables[f.references].key is None:
                self.error("E122", f"`{f.name}` refers to `{f.references}`, which has no key field", f.span)

    def _table_checks(self, d: n.TableDecl) -> None:
        info = self.tables.get(d.name)
        if info is None:
            return
        checks = tuple(self._condition(c, _Scope(subject=False, table=d.name)) for c in d.checks)
        self.tables[d.name] = info.evolve(checks=checks)

    def _shares(self, shares: tuple[n.Share, ...], span: Span | None) -> tuple[tuple[str, Fraction], ...]:
        out = []
        seen = set()
        for s in shares:
            if s.funder not in self.funders:
                self.error("E110", f"unknown funder `{s.funder}`", s.span, hint=self._suggest(s.funder, self.funders))
            if s.funder in seen:
                self.error("E103", f"funder `{s.funder}` has two shares", s.span)
            seen.add(s.funder)
            if s.fraction <= 0:
                self.error("E109", f"the share of `{s.funder}` must be more than zero", s.span,
                           hint="leave a funder out rather than give it 0%")
            out.append((s.funder, s.fraction))
        total = sum((f for _, f in out), Fraction(0))
        if total != 1:
            shown = _percent(total)
            self.error("E109", f"funder shares add up to {shown}, not 100%", span,
                       hint="the shares of one payment must add up to exactly 100%")
        # Declared funder order, so splits and statements never depend on how a line was written.
        order = {f: i for i, f in enumerate(self.funders)}
        return tuple(sorted(out, key=lambda x: order.get(x[0], len(order))))

    def _tariff(self, d: n.TariffDecl) -> None:
        keys = []
        for k in d.keys:
            if k in self.enums:
                keys.append(t.enum(k))
            elif k in self.bands:
                keys.append(t.band(k))
            else:
                self.error("E100", f"a tariff is keyed by an enumeration or a band; `{k}` is neither", d.span,
                           hint=self._suggest(k, list(self.enums) + list(self.bands)))
                return
        if not d.rows:
            return
        header, body = d.rows[0], d.rows[1:]
        for cell in header.cells:
            if not isinstance(cell, n.CellName):
                self.error("E106", "the first row of a tariff names its columns", cell.span,
                           hint=f"for example: | {d.keys[0]} | fee |")
                return
        head = [c.name for c in header.cells]
        if len(keys) == 1:
            if d.name is not None:
                columns = [d.name]
                if len(head) != 2:
                    self.error("E106", f"tariff `{d.name}` has one column of amounts; its header has {len(head)} cells",
                               header.span, hint=f"| {d.keys[0]} | {d.name} |")
                    return
            else:
                columns = head[1:]
            if head[0] != d.keys[0]:
                self.error("E106", f"the first header cell should name the key `{d.keys[0]}`", header.cells[0].span)
            row_values = self._key_values(keys[0])
            col_values = None
        else:
            if d.name is None:
                self.error("E106", "a tariff keyed by two things needs a name", d.span,
                           hint="tariff attachment_fee by payment_group and contract_year:")
                return
            columns = [d.name]
            row_values = self._key_values(keys[0])
            col_values = self._key_values(keys[1])
            col_set = set(col_values)
            for c in header.cells[1:]:
                if c.name not in col_set:
                    self.error("E104", f"`{c.name}` is not a value of `{d.keys[1]}`", c.span,
                               hint=self._suggest(c.name, col_values))
            header_set = set(head[1:])
            missing = [v for v in col_values if v not in header_set]
            if missing:
                self.error("E105", f"tariff `{d.name}` has no column for {_list(missing)} of `{d.keys[1]}`",
                           header.span, hint="every value needs a column (write `none` where nothing is paid)")
        for c in columns:
            if c in self.names:
                self.declare(c, "a tariff", header.span)
        cells: dict[str, dict] = {c: {} for c in columns}
        value_types: dict[str, t.Type] = {c: t.NONE for c in columns}
        seen_rows: set[str] = set()
        row_set = set(row_values)
        for row in body:
            first = row.cells[0]
            if not isinstance(first, n.CellName) or first.name not in row_set:
                shown = getattr(first, "name", getattr(first, "value", "?"))
                self.error("E104", f"`{shown}` is not a value of `{d.keys[0]}`", first.span,
                           hint=self._suggest(str(shown), row_values))
                continue
            if first.name in seen_rows:
                self.error("E103", f"tariff row `{first.name}` appears twice", first.span)
            seen_rows.add(first.name)
            if len(row.cells) != len(head):
                self.error("E106", f"this row has {len(row.cells)} cells; the header has {len(head)}", row.span)
                continue
            for j, cell in enumerate(row.cells[1:]):
                if not isinstance(cell, n.Literal):
                    self.error("E106", f"`{cell.name}` is not an amount or a number", cell.span,
                               hint="write amounts as £400.00, or `none` where nothing is paid")
                    continue
                column = columns[j] if col_values is None else columns[0]
                key = (first.name,) if col_values is None else (first.name, head[j + 1])
                typ = _literal_type(cell)
                joined = t.unify(value_types[column], typ)
                if joined is None:
                    self.error("E102", f"column `{column}` mixes {value_types[column]} and {typ}", cell.span)
                    continue
                value_types[column] = joined
                cells[column][key] = cell.value
        missing_rows = [v for v in row_values if v not in seen_rows]
        if missing_rows:
            self.error("E105", f"tariff {'`' + d.name + '` ' if d.name else ''}has no row for {_list(missing_rows)}",
                       d.span, hint="every value needs a row (write `none` where nothing is paid)")
        for c in columns:
            self.tariffs[c] = Tariff(c, tuple(keys), cells[c], value_types[c], span=d.span)

    def _key_values(self, typ: t.Type) -> tuple[str, ...]:
        if typ.kind == "enum":
            return self.enums[typ.name]
        return tuple(label for label, _, _ in self.bands[typ.name].entries)

    # ---- definitions ------------------------------------------------------------------

    def _let(self, name: str) -> Let | None:
        if name in self.lets:
            return self.lets[name]
        if name in self._checking:
            cycle = self._checking[self._checking.index(name):] + [name]
            d = self.let_decls[name]
            self.error("E107", f"`{name}` depends on itself: {' -> '.join(cycle)}", d.span,
                       hint="definitions cannot refer back to themselves (no recursion)")
            return None
        d = self.let_decls[name]
        saved_paid = self._paid_allowed
        self._paid_allowed = False
        self._checking.append(name)
        self._deps.append(set())
        self._per_subject.append(False)
        scope = _Scope()
        record_table = None
        if d.table is not None:
            if d.table not in self.tables:
                self.error("E100", f"unknown table `{d.table}`", d.span, hint=self._suggest(d.table, self.tables))
            else:
                record_table = d.table
                scope = scope.bind(d.binder, t.record(d.table))
        expr = self.expr(d.expr, scope)
        deps = self._deps.pop()
        per_subject = self._per_subject.pop() or record_table is not None
        self._checking.pop()
        if self._per_subject:
            self._per_subject[-1] = self._per_subject[-1] or per_subject
        if expr.type is not None and expr.type.kind == "records" and record_table is None and not per_subject:
            pass
        let = Let(name, expr, record_table, d.binder, frozenset(deps), per_subject, span=d.span)
        self.lets[name] = let
        self._paid_allowed = saved_paid
        return let

    def _let_order(self) -> list[Let]:
        """Definitions, each after those it uses (depth first, in declared order; no recursion)."""
        out: list[Let] = []
        done: set[str] = set()
        for root in self.let_decls:
            if root in done or root not in self.lets:
                continue
            done.add(root)
            stack = [(root, iter(sorted(self.lets[root].deps)))]
            while stack:
                name, deps = stack[-1]
                for dep in deps:
                    if dep not in done and dep in self.lets:
                        done.add(dep)
                        stack.append((dep, iter(sorted(self.lets[dep].deps))))
                        break
                else:
                    stack.pop()
                    out.append(self.lets[name])
        return out

    def _let_check_order(self) -> list[str]:
        """The order to check definitions in: each after the ones it names, circles together.

        What a definition uses is read from its text (names that are not bound
        by an aggregate around them, and `x.NAME` for definitions of records),
        which is all it can use and maybe more. Circles of definitions (each
        strongly connected group) come out together, in declared order, after
        what they use; checking them reports the circle (E107).
        """
        names = list(self.let_decls)
        derived = {name for name, d in self.let_decls.items() if d.table is not None}
        graph = {name: _names_used(d, self.let_decls, derived) for name, d in self.let_decls.items()}
        position = {name: i for i, name in enumerate(names)}
        # Tarjan's algorithm without recursion: groups come out after the groups they use.
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        on_stack: set[str] = set()
        stack: list[str] = []
        order: list[str] = []
        counter = 0
        for root in names:
            if root in index:
                continue
            work = [(root, iter(graph[root]))]
            index[root] = low[root] = counter
            counter += 1
            stack.append(root)
            on_stack.add(root)
            while work:
                name, deps = work[-1]
                for dep in deps:
                    if dep not in index:
                        index[dep] = low[dep] = counter
                        counter += 1
                        stack.append(dep)
                        on_stack.add(dep)
                        work.append((dep, iter(graph[dep])))
                        break
                    if dep in on_stack:
                        low[name] = min(low[name], index[dep])
                else:
                    work.pop()
                    if work:
                        parent = work[-1][0]
                        low[parent] = min(low[parent], low[name])
                    if low[name] == index[name]:
                        group = []
                        while True:
                            x = stack.pop()
                            on_stack.discard(x)
                            group.append(x)
                            if x == name:
                                break
                        order.extend(sorted(group, key=position.__getitem__))
        return order

    def _chain_lengths(self, outcomes: list[Outcome]) -> None:
        """Refuse a chain of more than MAX_DEFINITION_CHAIN definitions and outcomes, each using the next.

        The compiler orders definitions and outcomes by following these chains
        (one Python frame a link), so a chain of thousands would exhaust the stack.
        """
        deps: dict[str, frozenset[str]] = {name: let.deps for name, let in self.lets.items()}
        spans: dict[str, Span | None] = {name: let.span for name, let in self.lets.items()}
        for o in outcomes:
            deps[o.name] = o.deps
            spans[o.name] = o.span
        longest: dict[str, int] = {}
        for root in deps:
            if root in longest:
                continue
            active = {root}
            work = [(root, iter(sorted(deps[root])))]
            while work:
                name, it = work[-1]
                for dep in it:
                    if dep in deps and dep not in longest and dep not in active:
                        active.add(dep)
                        work.append((dep, iter(sorted(deps[dep]))))
                        break
                else:
                    work.pop()
                    active.discard(name)
                    longest[name] = 1 + max((longest.get(d, 0) for d in deps[name] if d in deps), default=0)
        position = {name: i for i, name in enumerate(deps)}
        worst = max(longest, key=lambda x: (longest[x], -position[x]), default=None)
        if worst is not None and longest[worst] > MAX_DEFINITION_CHAIN:
            chain = [worst]
            while len(chain) < 4:
                nxt = [d for d in deps[chain[-1]] if d in longest and longest[d] == longest[chain[-1]] - 1]
                if not nxt:
                    break
                chain.append(sorted(nxt)[0])
            self.error("E004", f"`{worst}` starts a chain of {longest[worst]} definitions and outcomes, "
                       f"each using the next: {' -> '.join(chain)} -> ...", spans[worst],
                       hint=f"no more than {MAX_DEFINITION_CHAIN} are allowed; no contract needs more than a few")

    def _outcome(self, d: n.OutcomeDecl, default_shares) -> Outcome:
        self._checking.append(d.name)
        self._deps.append(set())
        self._per_subject.append(True)
        scope = _Scope()
        conditions = tuple(self._condition(c, scope) for c in d.conditions)
        achieved = recurring = None
        if d.achieved is not None and d.recurring is not None:
            self.error("E123", f"outcome `{d.name}` is both `achieved on` a day and recurring",
                       d.clause_spans.get("recurring"), hint="a recurring outcome's days come from `every ... after`")
        if d.achieved is not None:
            achieved = self._typed(d.achieved, scope, {"date"}, "the day it is achieved (a date)")
        elif d.recurring is not None:
            r = d.recurring
            every = self._typed(r.every, scope, {"days", "months"}, "a duration such as `4 weeks`")
            if r.after not in self.outcome_decls:
                self.error("E111", f"unknown outcome `{r.after}`", r.span, hint=self._suggest(r.after, self.outcome_decls))
            elif r.after == d.name:
                self.error("E107", f"outcome `{d.name}` cannot recur after itself", r.span)
            else:
                self._deps[-1].add(r.after)
            spells = self._typed(r.spells, scope, {"spells"}, "spells (for example of employment)")
            at_most = self._typed(r.at_most, scope, {"integer"}, "a whole number of times")
            recurring = attrs.evolve(r, every=every, spells=spells, at_most=at_most)
        else:
            self.error("E123", f"outcome `{d.name}` never says when it is achieved", d.span,
                       hint="add `achieved on <date>` or `every <duration> after <outcome> while ...`")
        pays = None
        self._paid_used = False
        self._paid_allowed = True
        if d.pays is None:
            self.error("E123", f"outcome `{d.name}` does not say what it pays", d.span, hint="add `pays £...`")
        else:
            pays = self._typed(d.pays, scope, {"money"}, "an amount of money")
        reports = []
        for name, expr in d.reports:
            if expr is not None:
                checked = self.expr(expr, scope)
                if checked.type is not None and checked.type.kind in ("spells", "record", "records"):
                    self.error("E102", f"`reports {name}` would show {checked.type}; a statement shows amounts, "
                               "numbers, dates, text and true or false", expr.span)
                reports.append((name, checked))
            elif name == "due" or name in self.let_decls:
                reports.append((name, None if name == "due" else self.expr(n.Ref(name, span=d.span), scope)))
            else:
                self.error("E100", f"`reports {name}` names no definition", d.clause_spans.get("reports"),
                           hint="report `due` (the amount before caps), a definition, or `name = expression`")
        deferred = self._paid_used
        self._paid_allowed = False
        shares = self._shares(d.shares, d.clause_spans.get("shares")) if d.shares is not None else default_shares
        if shares is None:
            self.error("E110", f"outcome `{d.name}` does not say which funders pay it", d.span,
                       hint="add `shares LCF 20%, LA 80%`, or declare contract-wide `shares`")
        instead = []
        for ref in d.instead_of:
            if ref.name not in self.outcome_decls:
                self.error("E111", f"unknown outcome `{ref.name}` in `instead of`", ref.span,
                           hint=self._suggest(ref.name, self.outcome_decls))
            elif ref.name == d.name:
                self.error("E107", f"outcome `{d.name}` cannot be paid instead of itself", ref.span)
            else:
                instead.append(ref.name)
        requires = []
        for ref in d.requires:
            if ref.name not in self.outcome_decls:
                self.error("E111", f"unknown outcome `{ref.name}` in `requires`", ref.span,
                           hint=self._suggest(ref.name, self.outcome_decls))
            elif ref.name == d.name:
                self.error("E107", f"outcome `{d.name}` cannot require itself", ref.span)
            else:
                requires.append(ref.name)
                self._deps[-1].add(ref.name)
        deps = self._deps.pop()
        self._per_subject.pop()
        self._checking.pop()
        return Outcome(
            name=d.name,
            index=0,
            conditions=conditions,
            achieved=achieved,
            recurring=recurring,
            pays=pays,
            shares=shares or (),
            instead_of=tuple(instead),
            requires=tuple(requires),
            deps=frozenset(deps),
            reports=tuple(reports),
            deferred=deferred,
            span=d.span,
            clause_spans=d.clause_spans,
        )

    def _outcome_cycles(self, outcomes: list[Outcome]) -> None:
        by_name = {o.name: o for o in outcomes}

        def outcome_deps(o: Outcome) -> set[str]:
            # An outcome depends on the outcomes it names directly or through definitions.
            found: set[str] = set()
            stack = list(o.deps)
            seen: set[str] = set()
            while stack:
                x = stack.pop()
                if x in seen:
                    continue
                seen.add(x)
                if x in by_name:
                    found.add(x)
                elif x in self.lets:
                    stack.extend(self.lets[x].deps)
            return found

        graph = {o.name: outcome_deps(o) for o in outcomes}
        state: dict[str, int] = {}  # 1: on the current path, 2: done
        for root in graph:
            if state.get(root) is not None:
                continue
            # Depth first, without recursion: `path` is the path from root, `work` its unvisited deps.
            state[root] = 1
            path = [root]
            at = {root: 0}
            work = [iter(sorted(graph[root]))]
            while work:
                name = path[-1]
                for dep in work[-1]:
                    if state.get(dep) == 1:
                        cycle = path[at[dep]:] + [dep] if dep in at else [name, dep]
                        self.error("E107", f"outcome `{dep}` depends on itself: {' -> '.join(cycle)}",
                                   by_name[dep].span, hint="outcomes cannot depend on each other in a circle")
                    elif state.get(dep) is None:
                        state[dep] = 1
                        at[dep] = len(path)
                        path.append(dep)
                        work.append(iter(sorted(graph[dep])))
                        break
                else:
                    work.pop()
                    state[name] = 2
                    del at[name]
                    path.pop()

    def _scopes(self, scopes: tuple[n.Scope, ...]) -> tuple[str, ...]:
        out = []
        for s in scopes:
            ok = (
                (self.subject is not None and s.name == self.subject.name)
                or s.name in PERIOD_SCOPES
                or s.name == "outcome"
                or s.name in self.bands
            )
            if not ok:
                choices = ["outcome", *PERIOD_SCOPES, *self.bands] + ([self.subject.name] if self.subject else [])
                self.error("E100", f"`per {s.name}`: a cap is per the subject, outcome, month, financial_year or a band",
                           s.span, hint=self._suggest(s.name, choices))
            out.append("subject" if self.subject is not None and s.name == self.subject.name else s.name)
        return tuple(out)

    def _cap(self, d: n.CapDecl) -> Cap:
        scopes = self._scopes(d.scopes)
        self._per_subject.append(False)
        self._deps.append(set())
        limit = self._typed(d.limit, _Scope(), {"money"}, "an amount of money")
        per_subject = self._per_subject.pop()
        self._deps.pop()
        if per_subject and "subject" not in scopes:
            self.error("E124", f"cap `{d.name}` has a limit that depends on the subject but is not `per` subject",
                       d.limit.span, hint=f"add `per {self.subject.name if self.subject else 'participant'}`")
        outcomes = []
        for ref in d.outcomes:
            if ref.name not in self.outcome_decls:
                self.error("E111", f"unknown outcome `{ref.name}`", ref.span, hint=self._suggest(ref.name, self.outcome_decls))
            outcomes.append(ref.name)
        return Cap(d.name, limit, scopes, tuple(outcomes), per_subject, span=d.span)

    def _ceiling(self, d: n.CeilingDecl) -> Ceiling:
        scopes = self._scopes(d.scopes)
        if "subject" in scopes or "outcome" in scopes:
            self.error("E124", "a funder's ceiling is for the whole contract or per period", d.span)
        self._per_subject.append(False)
        self._deps.append(set())
        limit = self._typed(d.limit, _Scope(), {"money"}, "an amount of money")
        if self._per_subject.pop():
            self.error("E124", f"ceiling `{d.name}` cannot depend on a subject", d.limit.span)
        self._deps.pop()
        for f in (d.funder, d.overflow_to):
            if f is not None and f not in self.funders:
                self.error("E110", f"unknown funder `{f}`", d.span, hint=self._suggest(f, self.funders))
        if d.overflow_to == d.funder:
            self.error("E124", f"ceiling `{d.name}` overflows to the funder it limits", d.span)
        return Ceiling(d.name, limit, scopes, d.funder, d.overflow_to, span=d.span)

    # ---- warnings: legal, but probably not what was meant -----------------------------------

    def _likely_mistakes(self, outcomes: list[Outcome], caps: list[Cap]) -> None:
        roots: list[Any] = [self.tree]
        for o in outcomes:
            roots.extend([*o.conditions, o.achieved, o.recurring, o.pays, *[e for _, e in o.reports]])
        roots.extend(let.expr for let in self.lets.values())
        roots.extend(c.limit for c in caps)
        roots.extend(d.limit for d in self.tree.declarations if isinstance(d, n.CeilingDecl))
        every_node = [x for r in roots for x in n.walk(r)]
        used_names = {x.name for x in every_node if isinstance(x, (n.Ref, n.Field))}
        used_tariffs = {x.meaning[1] for x in every_node if isinstance(x, n.Lookup) and x.meaning}
        used_names |= {o.recurring.after for o in outcomes if o.recurring is not None}
        for o in outcomes:
            never = [c for c in o.conditions if isinstance(c, n.Literal) and c.value is False]
            if never:
                self.warn("W002", f"outcome `{o.name}` can never be achieved", never[0].span,
                          hint="its condition is always false")
            bound = self._most(o.pays)
            if bound is not None and bound == 0:
                self.warn("W001", f"outcome `{o.name}` never pays anything", o.pays.span,
                          hint="every amount it can pay is £0.00 or none")
        for name, tariff in self.tariffs.items():
            if name not in used_tariffs:
                self.warn("W003", f"tariff `{name}` is not used by any outcome", tariff.span)
        for name, let in self.lets.items():
            if name not in used_names:
                self.warn("W004", f"definition `{name}` is never used", let.span)
        for cap in caps:
            if cap.scopes != ("subject",) or not isinstance(cap.limit, n.Literal) or cap.limit.value is None:
                continue
            total = Decimal(0)
            for o in outcomes:
                if cap.outcomes and o.name not in cap.outcomes:
                    continue
                most = self._most(o.pays)
                times = self._most(o.recurring.at_most) if o.recurring is not None else 1
                if most is None or times is None:
                    break
                total += most * times
            else:
                if total <= cap.limit.value:
                    self.warn("W005", f"cap `{cap.name}` can never bind: its outcomes pay at most "
                              f"£{total:,.2f} a subject", cap.limit.span,
                              hint="check the limit, or say why the cap is there in a comment")

    def _most(self, e) -> Decimal | None:
        """The most an amount (or count) can be, where the contract alone tells."""
        if isinstance(e, n.Literal) and e.kind in ("money", "integer", "decimal"):
            return Decimal(e.value)
        if isinstance(e, n.Lookup) and e.meaning:
            values = [v for v in self.tariffs[e.meaning[1]].cells.values() if v is not None]
            return max((Decimal(v) for v in values), default=Decimal(0))
        return None

    # ---- expressions --------------------------------------------------------------------

    def _condition(self, e: n.Expr, scope: _Scope) -> n.Expr:
        return self._typed(e, scope, {"boolean"}, "a condition (true or false)")

    def _typed(self, e: n.Expr, scope: _Scope, kinds: set[str], wanted: str, expected: t.Type | None = None) -> n.Expr:
        out = self.expr(e, scope, expected)
        if out.type is not None and out.type.kind not in kinds and out.type != t.NONE:
            self.error("E102", f"expected {wanted}, found {out.type}", e.span)
        return out

    def _note_subject(self) -> None:
        if self._per_subject:
            self._per_subject[-1] = True

    def _note_dep(self, name: str) -> None:
        if self._deps:
            self._deps[-1].add(name)

    def expr(self, e: n.Expr, scope: _Scope, expected: t.Type | None = None) -> n.Expr:
        method = getattr(self, "_x_" + type(e).__name__)
        if self._nesting >= _MAX_CHECK_NESTING:
            # Only around a circle of definitions (see _let_check_order): say so once, and go no deeper.
            if not self._too_deep_said or self._speculating:
                chain = " -> ".join(self._checking[-6:])
                self.error("E004", f"definitions use each other too deeply to check: ... {chain}", e.span,
                           hint="a definition cannot depend on itself, directly or through others")
                self._too_deep_said = self._too_deep_said or not self._speculating
            return self._bad(e)
        self._nesting += 1
        try:
            return method(e, scope, expected)
        finally:
            self._nesting -= 1

    def _bad(self, e: n.Expr) -> n.Expr:
        return attrs.evolve(e, type=None)

    def _x_Literal(self, e: n.Literal, scope, expected):
        if e.kind == "text" and expected is not None and expected.kind == "enum":
            values = self.enums[expected.name]
            if e.value not in values:
                self.error("E104", f'"{e.value}" is not a value of `{expected.name}`', e.span,
                           hint=self._suggest(e.value, values) or f"the values are {_list(values)}")
                return self._bad(e)
            return attrs.evolve(e, type=expected, meaning=("enum", e.value))
        return attrs.evolve(e, type=_literal_type(e))

    def _x_AsOf(self, e, scope, expected):
        return attrs.evolve(e, type=t.DATE)

    def _x_Paid(self, e: n.Paid, scope, expected):
        if e.outcome not in self.outcome_decls:
            self.error("E111", f"unknown outcome `{e.outcome}`", e.span, hint=self._suggest(e.outcome, self.outcome_decls))
            return self._bad(e)
        if not getattr(self, "_paid_allowed", False):
            self.error("E125", f"`paid {e.outcome}` can only be used in an outcome's `pays` or `reports`", e.span,
                       hint="what has been paid is known only as payments are taken in order")
            return self._bad(e)
        self._paid_used = True
        return attrs.evolve(e, type=t.MONEY)

    def _x_Ref(self, e: n.Ref, scope: _Scope, expected):
        name = e.name
        if expected is not None and expected.kind in ("enum", "band") and name in self._key_values(expected):
            # Where a value of an enumeration is expected, its values win over
            # other things of the same name (an outcome `housing_secured` and
            # an event kind `housing_secured`), unless that thing is of the
            # same enumeration.
            other = self._x_Ref_plain(e, scope, None, report=False)
            if other is None or other.type != expected:
                return attrs.evolve(e, type=expected, meaning=("enum", name))
            return other
        return self._x_Ref_plain(e, scope, expected)

    def _x_Ref_plain(self, e: n.Ref, scope: _Scope, expected, report: bool = True):
        name = e.name
        if not report:
            saved = (list(self.problems), [set(d) for d in self._deps], list(self._per_subject))
            self._speculating += 1
            try:
                out = self._x_Ref_plain(e, scope, expected)
            finally:
                self._speculating -= 1
                failed = len(self.problems) > len(saved[0])
                self.problems[:] = saved[0]
                self._deps[:] = saved[1]
                self._per_subject[:] = saved[2]
            return None if failed else out
        if name in scope.binders:
            return attrs.evolve(e, type=scope.binders[name], meaning=("binder", name))
        if scope.table is not None:
            info = self.tables[scope.table]
            f = info.field(name)
            if f is not None:
                return attrs.evolve(e, type=f.type, meaning=("row_field", f.index))
        if name in self.let_decls and scope.table is not None:
            self.error("E100", f"`{name}` is a definition; a table's `valid when` rule sees only that table's fields",
                       e.span, hint="write the condition on the fields themselves")
            return self._bad(e)
        if name in self.let_decls and scope.table is None:
            let = self._let(name)
            if let is None:
                return self._bad(e)
            if let.record_table is not None:
                self.error("E102", f"`{name}` is defined for each `{let.record_table}` record",
                           e.span, hint=f"write `x.{name}` for a record x of `{let.record_table}`")
                return self._bad(e)
            self._note_dep(name)
            if let.per_subject:
                self._note_subject()
            return attrs.evolve(e, type=let.expr.type, meaning=("let", name))
        if scope.subject and self.subject is not None:
            info = self.tables.get(self.subject.table)
            f = info.field(name) if info else None
            if f is not None:
                self._note_subject()
                return attrs.evolve(e, type=f.type, meaning=("subject_field", f.index))
            if name == self.subject.name:
                self._note_subject()
                return attrs.evolve(e, type=t.record(self.subject.table), meaning=("subject",))
            if name in self.outcome_decls:
                self._note_subject()
                self._note_dep(name)
                return attrs.evolve(e, type=t.DATE, meaning=("outcome", name))
        if name in self.tables and scope.table is None:
            return self._table_ref(e, scope)
        if expected is not None and expected.kind == "enum" and name in self.enums[expected.name]:
            return attrs.evolve(e, type=expected, meaning=("enum", name))
        if expected is not None and expected.kind == "band" and name in self._key_values(expected):
            return attrs.evolve(e, type=expected, meaning=("enum", name))
        return self._unknown(e, scope, expected)

    def _unknown(self, e: n.Ref, scope: _Scope, expected):
        name = e.name
        candidates = list(scope.binders) + list(self.let_decls) + list(self.tables) + list(self.outcome_decls)
        if scope.table is not None:
            candidates += [f.name for f in self.tables[scope.table].fields]
        if self.subject and scope.subject and self.subject.table in self.tables:
            candidates += [f.name for f in self.tables[self.subject.table].fields]
        if expected is not None and expected.kind == "enum":
            values = self.enums[expected.name]
            hint = self._suggest(name, values) or f"`{expected.name}` has {_list(values)}"
            self.error("E104", f"`{name}` is not a value of `{expected.name}`", e.span, hint=hint)
        else:
            all_values = [v for vs in self.enums.values() for v in vs]
            if name in all_values:
                self.error("E100", f"`{name}` is an enumeration value, but nothing here says which enumeration",
                           e.span, hint="compare it with a field of that enumeration, e.g. `kind = " + name + "`")
            else:
                self.error("E100", f"unknown name `{name}`", e.span, hint=self._suggest(name, candidates))
        return self._bad(e)

    def _table_ref(self, e: n.Ref, scope: _Scope):
        """A table named in an expression: the subject's records of it, or all of a calendar table."""
        table = e.name
        if self.subject is not None and scope.subject:
            links = self.tables[table].links_to(self.subject.table)
            if len(links) == 1:
                self._note_subject()
                return attrs.evolve(e, type=t.records(table), meaning=("related", table, links[0].index))
            if len(links) > 1:
                self.error("E112", f"`{table}` refers to `{self.subject.table}` through more than one field", e.span)
                return self._bad(e)
            if table == self.subject.table:
                self.error("E102", f"`{table}` is the subject's own table", e.span,
                           hint=f"use `{self.subject.name}` for the subject, or its fields by name")
                return self._bad(e)
            path = self._path_to_subject(table)
            if path:
                self.error("E112", f"`{table}` belongs to the subject through `{path[0]}`", e.span,
                           hint=f"write `{path[0]}.{table}`")
                return self._bad(e)
        return attrs.evolve(e, type=t.records(table), meaning=("table", table))

    def _path_to_subject(self, table: str) -> list[str]:
        # Only used for a hint: the first table on the way from `table` up to the subject.
        if self.subject is None:
            return []
        for f in self.tables[table].fields:
            if f.references and f.references != table:
                if self.tables[f.references].links_to(self.subject.table) or f.references == self.subject.table:
                    return [f.references]
        return []

    def _x_Field(self, e: n.Field, scope, expected):
        target = self.expr(e.target, scope)
        typ = target.type
        if typ is None:
            return attrs.evolve(e, target=target, type=None)
        if typ.kind == "record":
            info = self.tables[typ.name]
            f = info.field(e.name)
            if f is not None:
                return attrs.evolve(e, target=target, type=f.type, meaning=("field", f.index))
            if e.name in self.tables:
                links = self.tables[e.name].links_to(typ.name)
                if len(links) == 1:
                    return attrs.evolve(e, target=target, type=t.records(e.name),
                                        meaning=("children", e.name, links[0].index))
            let = self.let_decls.get(e.name)
            if let is not None and let.table == typ.name:
                checked = self._let(e.name)
                if checked is None:
                    return self._bad(e)
                self._note_dep(e.name)
                self._note_subject()
                return attrs.evolve(e, target=target, type=checked.expr.type, meaning=("derived", e.name))
            candidates = [f.name for f in info.fields] + [
                name for name, d in self.tables.items() if d.links_to(typ.name)
            ] + [name for name, d in self.let_decls.items() if d.table == typ.name]
            self.error("E101", f"`{typ.name}` has no field `{e.name}`", e.span, hint=self._suggest(e.name, candidates))
            return self._bad(e)
        if typ.kind == "records":
            if e.name in self.tables:
                links = self.tables[e.name].links_to(typ.name)
                if len(links) == 1:
                    return attrs.evolve(e, target=target, type=t.records(e.name),
                                        meaning=("children_of_all", e.name, links[0].index))
            self.error("E101", f"`{e.name}` of many `{typ.name}` records: pick one with an aggregate",
                       e.span, hint=f"for example: earliest x.{e.name} for x in ...")
            return self._bad(e)
        self.error("E102", f"{typ} has no fields", e.span)
        return self._bad(e)

    def _x_Lookup(self, e: n.Lookup, scope, expected):
        if not isinstance(e.target, n.Ref) or e.target.name not in self.tariffs:
            name = getattr(e.target, "name", "")
            self.error("E100", f"`{name}` is not a tariff", e.target.span, hint=self._suggest(name, self.tariffs))
            return self._bad(e)
        tariff = self.tariffs[e.target.name]
        if len(e.keys) != len(tariff.keys):
            self.error("E102", f"tariff `{tariff.name}` takes {len(tariff.keys)} key(s), found {len(e.keys)}", e.span,
                       hint=f"{tariff.name}[{', '.join(k.name for k in tariff.keys)}]")
            return self._bad(e)
        keys = []
        for k, kt in zip(e.keys, tariff.keys):
            ck = self.expr(k, scope, kt)
            if ck.type is not None and ck.type != kt:
                self.error("E102", f"tariff `{tariff.name}` is keyed by {kt}, found {ck.type}", k.span)
            keys.append(ck)
        return attrs.evolve(e, keys=tuple(keys), type=tariff.value_type, meaning=("tariff", tariff.name))

    def _x_Duration(self, e: n.Duration, scope, expected):
        amount = self._typed(e.amount, scope, {"integer"}, "a whole number")
        typ = t.MONTHS if e.unit in ("months", "years") else t.DAYS
        return attrs.evolve(e, amount=amount, type=typ)

    def _x_Call(self, e: n.Call, scope, expected):
        if e.name in self.bands:
            if len(e.args) != 1:
                self.error("E102", f"band `{e.name}` takes one date", e.span)
                return self._bad(e)
            arg = self._typed(e.args[0], scope, {"date"}, "a date")
            return attrs.evolve(e, args=(arg,), type=t.band(e.name), meaning=("band", e.name))
        if e.name not in BUILTINS:
            self.error("E100", f"unknown function `{e.name}`", e.span,
                       hint=self._suggest(e.name, list(BUILTINS) + list(self.bands)))
            return self._bad(e)
        args = tuple(self.expr(a, scope) for a in e.args)
        types_ = [a.type for a in args]
        if any(x is None for x in types_):
            return attrs.evolve(e, args=args, type=None)
        if e.name == "days_between":
            if len(args) != 2 or any(x != t.DATE for x in types_):
                self.error("E102", "days_between takes two dates", e.span)
            return attrs.evolve(e, args=args, type=t.INTEGER, meaning=("builtin", e.name))
        if e.name == "abs":
            if len(args) != 1 or types_[0].kind not in ("integer", "decimal", "money"):
                self.error("E102", "abs takes one number or amount", e.span)
                return self._bad(e)
            return attrs.evolve(e, args=args, type=types_[0], meaning=("builtin", e.name))
        if not args:
            self.error("E102", f"{e.name} needs at least one value", e.span)
            return self._bad(e)
        joined = types_[0]
        for x in types_[1:]:
            joined = t.unify(joined, x) if joined is not None else None
        if joined is None or joined.kind not in t.ORDERED:
            self.error("E102", f"{e.name} compares values of one type; found {_list([str(x) for x in types_])}", e.span)
            return self._bad(e)
        if e.name in ("later", "earlier") and joined.kind != "date":
            self.error("E102", f"{e.name} takes dates; use higher or lower for numbers and amounts", e.span)
        return attrs.evolve(e, args=args, type=joined, meaning=("builtin", e.name))

    def _x_Unary(self, e: n.Unary, scope, expected):
        if e.op == "not":
            operand = self._condition(e.operand, scope)
            return attrs.evolve(e, operand=operand, type=t.BOOLEAN)
        operand = self._typed(e.operand, scope, {"integer", "decimal", "money", "days", "months"}, "a number")
        return attrs.evolve(e, operand=operand, type=operand.type)

    def _x_Binary(self, e: n.Binary, scope, expected):
        if e.op in ("and", "or"):
            left = self._condition(e.left, scope)
            right = self._condition(e.right, scope)
            return attrs.evolve(e, left=left, right=right, type=t.BOOLEAN)
        left = self.expr(e.left, scope)
        right = self.expr(e.right, scope)
        lt, rt = left.type, right.type
        if lt is None or rt is None:
            return attrs.evolve(e, left=left, right=right, type=None)
        result = _arithmetic(e.op, lt, rt)
        if result is None:
            hint = None
            if {lt.kind, rt.kind} == {"date", "money"}:
                hint = "money and dates do not mix"
            elif lt.kind == "date" and rt.kind == "integer":
                hint = "say the unit: `+ 7 days`, `+ 26 weeks`, `+ 12 months`"
            self.error("E102", f"cannot use `{e.op}` on {lt} and {rt}", e.span, hint=hint)
            return attrs.evolve(e, left=left, right=right, type=None)
        return attrs.evolve(e, left=left, right=right, type=result)

    def _pair(self, a: n.Expr, b: n.Expr, scope: _Scope):
        """Type two sides that must agree; a bare name on one side may be a value of the other's enumeration."""
        a_free = isinstance(a, n.Ref) and self._is_free(a.name, scope)
        b_free = isinstance(b, n.Ref) and self._is_free(b.name, scope)
        if a_free and not b_free:
            right = self.expr(b, scope)
            if right.type is None and self._is_enum_word(a.name):
                return self._bad(a), right  # the other side was reported; do not guess
            return self.expr(a, scope, right.type), right
        left = self.expr(a, scope)
        if left.type is None and b_free and self._is_enum_word(b.name):
            return left, self._bad(b)
        return left, self.expr(b, scope, left.type)

    def _is_enum_word(self, name: str) -> bool:
        return any(name in values for values in self.enums.values()) or any(
            name == label for band in self.bands.values() for label, _, _ in band.entries
        )

    def _is_free(self, name: str, scope: _Scope) -> bool:
        if name in scope.binders or name in self.let_decls or name in self.tables or name in self.outcome_decls:
            return False
        if scope.table is not None and self.tables[scope.table].field(name):
            return False
        if self.subject and self.subject.table in self.tables and self.tables[self.subject.table].field(name):
            return False
        return True

    def _x_Compare(self, e: n.Compare, scope, expected):
        for side in (e.left, e.right):
            if isinstance(side, n.Literal) and side.kind == "none":
                self.error("E102", f"`{e.op} none` is never true: nothing equals a missing value", e.span,
                           hint="write `is none` or `is not none`")
                return attrs.evolve(e, type=t.BOOLEAN)
        left, right = self._pair(e.left, e.right, scope)
        lt, rt = left.type, right.type
        if lt is not None and rt is not None:
            joined = t.unify(lt, rt)
            if joined is None:
                self.error("E102", f"cannot compare {lt} with {rt}", e.span)
            elif e.op not in ("=", "!=") and joined.kind not in t.ORDERED and joined != t.NONE:
                self.error("E102", f"{joined}s have no order; only `=` and `!=` apply", e.span)
        return attrs.evolve(e, left=left, right=right, type=t.BOOLEAN)

    def _x_IsNone(self, e: n.IsNone, scope, expected):
        operand = self.expr(e.operand, scope)
        return attrs.evolve(e, operand=operand, type=t.BOOLEAN)

    def _x_Within(self, e: n.Within, scope, expected):
        value = self._typed(e.value, scope, {"date"}, "a date")
        length = self._typed(e.length, scope, {"days", "months"}, "a duration such as `12 months`")
        anchor = self._typed(e.anchor, scope, {"date"}, "a date")
        return attrs.evolve(e, value=value, length=length, anchor=anchor, type=t.BOOLEAN)

    def _x_InBand(self, e: n.InBand, scope, expected):
        value = self._typed(e.value, scope, {"date"}, "a date")
        if e.band not in self.bands:
            self.error("E100", f"unknown band `{e.band}`", e.span, hint=self._suggest(e.band, self.bands))
        return attrs.evolve(e, value=value, type=t.BOOLEAN)

    def _x_InList(self, e: n.InList, scope, expected):
        value = self.expr(e.value, scope)
        options = []
        for o in e.options:
            co = self.expr(o, scope, value.type)
            if value.type is not None and co.type is not None and t.unify(value.type, co.type) is None:
                self.error("E102", f"cannot compare {value.type} with {co.type}", o.span)
            options.append(co)
        return attrs.evolve(e, value=value, options=tuple(options), type=t.BOOLEAN)

    def _x_If(self, e: n.If, scope, expected):
        cond = self._condition(e.condition, scope)
        then = self.expr(e.then, scope, expected)
        other = self.expr(e.otherwise, scope, expected or then.type)
        typ = None
        if then.type is not None and other.type is not None:
            typ = t.unify(then.type, other.type)
            if typ is None:
                self.error("E102", f"the two branches give {then.type} and {other.type}", e.span)
        return attrs.evolve(e, condition=cond, then=then, otherwise=other, type=typ)

    def _x_SpellOp(self, e: n.SpellOp, scope, expected):
        spells = self._typed(e.spells, scope, {"spells"}, "spells")
        if e.op == "not_counting":
            arg = self._typed(e.arg, scope, {"spells"}, "spells of days not to count (for example holidays)")
        else:
            arg = self._typed(e.arg, scope, {"date"}, "a date")
        return attrs.evolve(e, spells=spells, arg=arg, type=t.SPELLS)

    def _x_FirstDayLasting(self, e: n.FirstDayLasting, scope, expected):
        spells = self._typed(e.spells, scope, {"spells"}, "spells")
        length = self._typed(e.length, scope, {"days", "months"}, "a duration such as `26 weeks`")
        return attrs.evolve(e, spells=spells, length=length, type=t.DATE)

    def _binding(self, b: n.Binding, scope: _Scope):
        source = self.expr(b.source, scope)
        inner = scope
        if source.type is not None and source.type.kind != "records":
            self.error("E102", f"expected records to go through, found {source.type}", b.source.span)
            source = attrs.evolve(source, type=None)
        if b.name in scope.binders:
            self.error("E103", f"`{b.name}` is already in use here", b.span, hint="pick another name")
        record_type = t.record(source.type.name) if source.type is not None else None
        inner = scope.bind(b.name, record_type)
        where = self._condition(b.where, inner) if b.where is not None else None
        return attrs.evolve(b, source=source, where=where), inner

    def _x_Count(self, e: n.Count, scope, expected):
        binding, _ = self._binding(e.binding, scope)
        return attrs.evolve(e, binding=binding, type=t.INTEGER)

    def _x_CountDistinct(self, e: n.CountDistinct, scope, expected):
        binding, inner = self._binding(e.binding, scope)
        value = self.expr(e.value, inner)
        return attrs.evolve(e, binding=binding, value=value, type=t.INTEGER)

    def _x_Aggregate(self, e: n.Aggregate, scope, expected):
        binding, inner = self._binding(e.binding, scope)
        value = self.expr(e.value, inner)
        typ = value.type
        if typ is not None:
            if e.kind in ("sum", "mean") and typ.kind not in ("integer", "decimal", "money", "days"):
                self.error("E102", f"cannot add up {typ}s", e.value.span)
            elif e.kind == "mean":
                typ = t.MONEY if typ.kind == "money" else t.DECIMAL
            elif e.kind in ("earliest", "latest") and typ.kind != "date":
                self.error("E102", f"{e.kind} takes dates; use min or max for {typ}", e.value.span)
            elif typ.kind not in t.ORDERED:
                self.error("E102", f"{typ}s have no order", e.value.span)
        return attrs.evolve(e, binding=binding, value=value, type=typ)

    def _x_Quantifier(self, e: n.Quantifier, scope, expected):
        binding, inner = self._binding(e.binding, scope)
        cond = self._condition(e.condition, inner) if e.condition is not None else None
        return attrs.evolve(e, binding=binding, condition=cond, type=t.BOOLEAN)

    def _x_Each(self, e: n.Each, scope, expected):
        binding, _ = self._binding(e.binding, scope)
        typ = binding.source.type
        return attrs.evolve(e, binding=binding, type=typ)

    def _x_Spells(self, e: n.Spells, scope, expected):
        binding, inner = self._binding(e.binding, scope)
        start = self._typed(e.start, inner, {"date"}, "the first day of each spell (a date)")
        end = self._typed(e.end, inner, {"date"}, "the last day of each spell (a date, or empty for ongoing)")
        return attrs.evolve(e, binding=binding, start=start, end=end, type=t.SPELLS)

    def _x_FirstRun(self, e: n.FirstRun, scope, expected):
        length = self._typed(e.length, scope, {"integer"}, "a whole number")
        binding, inner = self._binding(e.binding, scope)
        order = self.expr(e.order, inner)
        if order.type is not None and order.type.kind not in t.ORDERED:
            self.error("E102", f"cannot order records by {order.type}s", e.order.span)
        cond = self._condition(e.condition, inner)
        typ = t.record(binding.source.type.name) if binding.source.type is not None else None
        return attrs.evolve(e, length=length, binding=binding, order=order, condition=cond, type=typ)


def _literal_type(e: n.Literal) -> t.Type:
    return {
        "integer": t.INTEGER,
        "decimal": t.DECIMAL,
        "money": t.MONEY,
        "date": t.DATE,
        "text": t.TEXT,
        "boolean": t.BOOLEAN,
        "none": t.NONE,
    }[e.kind]


def _arithmetic(op: str, a: t.Type, b: t.Type) -> t.Type | None:
    ka, kb = a.kind, b.kind
    if ka == "none" or kb == "none":
        return t.NONE if ka == kb else (b if ka == "none" else a)
    if op == "+":
        if ka == "date" and kb in ("days", "months"):
            return t.DATE
        if kb == "date" and ka in ("days", "months"):
            return t.DATE
        if ka == kb and ka in ("integer", "decimal", "money", "days", "months"):
            return a
        if {ka, kb} == {"integer", "decimal"}:
            return t.DECIMAL
        return None
    if op == "-":
        if ka == "date" and kb in ("days", "months"):
            return t.DATE
        if ka == "date" and kb == "date":
            return t.INTEGER
        if ka == kb and ka in ("integer", "decimal", "money", "days", "months"):
            return a
        if {ka, kb} == {"integer", "decimal"}:
            return t.DECIMAL
        return None
    if op == "*":
        if ka in t.NUMBERS and kb in t.NUMBERS:
            return t.INTEGER if ka == kb == "integer" else t.DECIMAL
        if ka == "money" and kb in t.NUMBERS:
            return t.MONEY
        if kb == "money" and ka in t.NUMBERS:
            return t.MONEY
        if {ka, kb} == {"integer", "days"}:
            return t.DAYS
        if {ka, kb} == {"integer", "months"}:
            return t.MONTHS
        return None
    if op == "/":
        if ka in t.NUMBERS and kb in t.NUMBERS:
            return t.DECIMAL
        if ka == "money" and kb in t.NUMBERS:
            return t.MONEY
        if ka == "money" and kb == "money":
            return t.DECIMAL
        return None
    return None


def _percent(f: Fraction) -> str:
    value = Decimal(f.numerator) / Decimal(f.denominator) * 100
    return f"{value.normalize():f}%"


def _list(items) -> str:
    items = [f"`{i}`" for i in items]
    if len(items) > 6:
        items = items[:6] + [f"{len(items) - 6} more"]
    return ", ".join(items)


def _names_used(d: n.LetDecl, lets, derived: set[str]) -> list[str]:
    """The definitions a definition's text names: bare names not bound around them, and `x.NAME`.

    Walks the tree with a stack (no recursion), keeping the names bound by the
    aggregates around each node, as the checker's scopes do.
    """
    found: dict[str, None] = {}
    start = frozenset({d.binder}) if d.binder else frozenset()
    stack: list[tuple[Any, frozenset]] = [(d.expr, start)]
    while stack:
        node, bound = stack.pop()
        if isinstance(node, tuple):
            stack.extend((x, bound) for x in node)
            continue
        if not isinstance(node, n.Node):
            continue
        if isinstance(node, n.Ref):
            if node.name in lets and node.name not in bound:
                found[node.name] = None
            continue
        if isinstance(node, n.Field) and node.name in derived:
            found[node.name] = None
        binding = getattr(node, "binding", None)
        for a in attrs.fields(type(node)):
            if a.name in ("span", "type", "meaning", "slot"):
                continue
            value = getattr(node, a.name)
            if isinstance(binding, n.Binding) and a.name != "binding" and not (
                isinstance(node, n.FirstRun) and a.name == "length"
            ):
                stack.append((value, bound | {binding.name}))
            elif isinstance(value, n.Binding):
                stack.append((value.source, bound))
                if value.where is not None:
                    stack.append((value.where, bound | {value.name}))
            else:
                stack.append((value, bound))
    return list(found)


def check(tree: n.ContractTree) -> Program:
    """Check a parsed contract; raise ContractCheckError with every problem found.

    Past MAX_DIAGNOSTICS errors, checking stops and says so.
    """
    checker = Checker(tree)
    try:
        return checker.run()
    except _Stop:
        source = tree.span.source if tree.span else None
        problems = list(checker.problems)
        if source is None:
            span = None
        elif hasattr(source, "last_position"):  # the parser's source: where the text ends
            span = Span.at(source, *source.last_position())
        else:
            lines = source.text.split("\n")
            span = Span.at(source, len(lines), len(lines[-1]) + 1)
        problems.append(Diagnostic("E005", f"too many problems: only the first {MAX_DIAGNOSTICS} found are listed",
                                   span, hint="put these right and check again"))
        raise ContractCheckError(problems) from None
