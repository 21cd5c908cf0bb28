"""Input data: CSV and JSON Lines files (or in-memory records) -> typed, validated tables.

Every value is converted by its field's declared type; anything that does not
fit is reported with its file, row (line) and field, and the run stops. A row
is never dropped silently.
"""

from __future__ import annotations

import csv
import datetime
import gc
import io
import json
import operator
import re
from collections.abc import Mapping
from decimal import Decimal
from itertools import compress
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: `typing` is not imported on the evaluator's path
    from typing import Any, Iterable

from .errors import DataError, DataProblem, UsageError
from .program import Program, TableInfo

MAX_PROBLEMS = 200

_INT = re.compile(r"-?[0-9]+\Z")
_DEC = re.compile(r"-?[0-9]+(\.[0-9]+)?\Z")
_MONEY = re.compile(r"-?[0-9]+(\.[0-9]{1,2})?\Z")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
# Amounts beyond this are certainly a broken export, not a payment-by-results figure.
MAX_ABS_NUMBER = Decimal("1e15")


class _Bad(Exception):
    pass


class Table:
    """One loaded table: rows are tuples of typed values, the row's line number last.

    `keys` (the key's distinct values) and `by_reference` (field index -> value -> the rows
    with that value, in order, for each field that refers to another table) are gathered while
    loading, when known; `set_rows` forgets them."""

    __slots__ = ("name", "info", "file", "rows", "keys", "by_reference")

    def __init__(self, name: str, info: TableInfo, file: str, rows: list[tuple], keys: set | None = None,
                 by_reference: dict[int, dict] | None = None) -> None:
        self.name, self.info, self.file, self.rows = name, info, file, rows
        self.keys = keys
        self.by_reference = {} if by_reference is None else by_reference

    def __repr__(self) -> str:
        return f"Table(name={self.name!r}, file={self.file!r}, rows={len(self.rows)} rows)"

    def set_rows(self, rows: list[tuple]) -> None:
        self.rows = rows
        self.keys = None
        self.by_reference = {}


class _Gathered:
    """A table's key values and its rows grouped by each reference, gathered a chunk of rows
    at a time while the chunk is in the processor's cache. Done afterwards over a whole table
    of millions of rows, each row is fetched from memory again (seconds at a million)."""

    def __init__(self, info: TableInfo):
        self.key = operator.itemgetter(info.field(info.key).index) if info.key else None
        self.keys: set | None = set() if info.key else None
        self.by_reference: dict[int, dict] = {f.index: {} for f in info.fields if f.references is not None}

    def add(self, rows: list[tuple]) -> list[tuple]:
        if self.keys is not None:
            self.keys.update(map(self.key, rows))
        for i, groups in self.by_reference.items():
            group_of = groups.get
            for row in rows:
                value = row[i]
                group = group_of(value)
                if group is None:
                    groups[value] = [row]
                else:
                    group.append(row)
        return rows


class Part:
    """The subjects whose ids fall in `low <= id < high` (None: no bound), and the rows that are
    theirs: each table's rows are chosen by the field holding the subject's id (`fields`: table
    -> that field's index; the subject table's key, or a reference to it). A row with no id there
    goes with the first part. Tables not in `fields` are loaded whole."""

    def __init__(self, low: str | None, high: str | None, fields: dict[str, int]):
        self.low, self.high, self.fields = low, high, fields

    def holds(self, value) -> bool:
        if value is None:
            return self.low is None
        return (self.low is None or self.low <= value) and (self.high is None or value < self.high)

    def chosen(self, cells: list[str]) -> list[bool]:
        """Which of a column's cells (text as read; empty: no id) are this part's."""
        if self.low is None:
            return list(map(self.high.__gt__, cells)) if self.high is not None else [True] * len(cells)
        if self.high is None:
            return list(map(self.low.__le__, cells))
        return [self.low <= c < self.high for c in cells]

    def rows(self, table: str, rows: list[tuple]) -> list[tuple]:
        i = self.fields.get(table)
        return rows if i is None else [r for r in rows if self.holds(r[i])]

    def chooses_whole_lines(self) -> bool:
        """Whether `chosen`, given CSV lines whose first cell is the id, chooses as it would given
        those cells: so lines can be chosen before they are split. It does when every character of
        the bounds sorts after the comma: a line is its first cell, then a comma and the rest;
        where the cell is a proper prefix of a bound the comma decides, as the cell's end would,
        and elsewhere the cell decides. (With no bound, every line is chosen anyway.)"""
        bounds = [b for b in (self.low, self.high) if b is not None]
        return bool(bounds) and all(ch > "," for b in bounds for ch in b)


WHOLE = Part(None, None, {})  # every subject: every row of every table


class Dataset:
    """The loaded tables, with what loading them noticed."""

    __slots__ = ("tables", "warnings", "excluded", "rules_checked")

    def __init__(self, tables: dict[str, Table], warnings: list[str] | None = None,
                 excluded: dict[str, list[str]] | None = None, rules_checked=None) -> None:
        self.tables = tables
        self.warnings = [] if warnings is None else warnings
        # Subjects left out because their data is broken (only when asked for): subject -> problems.
        self.excluded = {} if excluded is None else excluded
        # The compiled contract whose `valid when` rules that do not read as_of were applied as
        # the data was loaded (evaluator.check_rows), or None.
        self.rules_checked = rules_checked

    def __repr__(self) -> str:
        return f"Dataset(tables={self.tables!r}, warnings={self.warnings!r}, excluded={self.excluded!r})"


def _converter(field, table: str):
    kind = field.type.kind
    optional = field.optional

    if kind == "date":
        cache: dict[str, int] = {}

        def conv(raw: Any):
            if isinstance(raw, datetime.date) and not isinstance(raw, datetime.datetime):
                return raw.toordinal()
            if not isinstance(raw, str):
                raise _Bad(f"expected a date YYYY-MM-DD, found {_show(raw)}")
            hit = cache.get(raw)
            if hit is not None:
                return hit
            if not _DATE.match(raw):
                raise _Bad(f"expected a date YYYY-MM-DD, found {_show(raw)}")
            try:
                value = datetime.date.fromisoformat(raw).toordinal()
            except ValueError:
                raise _Bad(f"{_show(raw)} is not a real date") from None
            cache[raw] = value
            return value

    elif kind == "integer":

        def conv(raw: Any):
            if isinstance(raw, bool):
                raise _Bad(f"expected a whole number, found {_show(raw)}")
            if isinstance(raw, int):
                value = raw
            elif isinstance(raw, str) and _INT.match(raw):
                value = int(raw)
            else:
                raise _Bad(f"expected a whole number, found {_show(raw)}")
            if abs(value) > MAX_ABS_NUMBER:
                raise _Bad(f"{value} is too large to be a real figure")
            return value

    elif kind in ("decimal", "money"):
        pattern = _MONEY if kind == "money" else _DEC
        what = "an amount in pounds like 1200.00" if kind == "money" else "a decimal number like 14.5"

        def conv(raw: Any):
            if isinstance(raw, float):
                raise _Bad(f"expected {what}; binary floating point is not accepted, pass a string or Decimal")
            if isinstance(raw, bool):
                raise _Bad(f"expected {what}, found {_show(raw)}")
            if isinstance(raw, int):
                value = Decimal(raw)
            elif isinstance(raw, Decimal):
                if not raw.is_finite():
                    raise _Bad(f"expected {what}, found {raw}")
                value = raw
            elif isinstance(raw, str) and pattern.match(raw):
                value = Decimal(raw)
            else:
                raise _Bad(f"expected {what}, found {_show(raw)}")
            if kind == "money" and value.as_tuple().exponent < -2:
                raise _Bad(f"an amount has at most two decimals (pence), found {_show(raw)}")
            if abs(value) > MAX_ABS_NUMBER:
                raise _Bad(f"{_show(raw)} is too large to be a real figure")
            return value

    elif kind == "boolean":

        def conv(raw: Any):
            if raw is True or raw == "true":
                return True
            if raw is False or raw == "false":
                return False
            raise _Bad(f"expected true or false, found {_show(raw)}")

    elif kind == "enum":
        values = frozenset(field.values or ())
        listed = ", ".join(field.values or ())

        def conv(raw: Any):
            if isinstance(raw, str) and raw in values:
                return raw
            import difflib

            close = difflib.get_close_matches(str(raw), sorted(values), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise _Bad(f"{_show(raw)} is not one of {listed}{hint}")

    else:  # text and references

        def conv(raw: Any):
            if isinstance(raw, str):
                return raw
            if isinstance(raw, int) and not isinstance(raw, bool):
                return str(raw)
            raise _Bad(f"expected text, found {_show(raw)}")

    def convert(raw: Any):
        if raw is None or raw == "":
            if optional:
                return None
            raise _Bad("is empty, but a value is required")
        return conv(raw)

    return convert


def _show(raw: Any) -> str:
    text = repr(raw) if not isinstance(raw, str) else f'"{raw}"'
    return text if len(text) <= 60 else text[:57] + '..."'


class _Collector:
    def __init__(self, limit: int = MAX_PROBLEMS):
        self.problems: list[DataProblem] = []
        self.table: str | None = None  # the table being read
        self.limit = limit

    def add(self, file: str, row: int | None, field: str | None, message: str) -> None:
        if len(self.problems) < self.limit:
            self.problems.append(DataProblem(file, row, field, message, table=self.table))

    def full(self) -> bool:
        return len(self.problems) >= self.limit


def _decode(path: Path, problems: _Collector) -> str | None:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        problems.add(str(path), line, None, f"is not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start})")
        return None


# Rows converted at a time: the text cells of one chunk are freed before the next is
# read, so the memory they took is reused, not left in pieces around the rows that stay.
CSV_CHUNK = 50_000


def _rows_from_csv(text: str, file: str, info: TableInfo, problems: _Collector, warnings: list[str],
                   gathered: _Gathered, part: Part = WHOLE):
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        problems.add(file, 1, None, "is empty: expected a header row naming the columns "
                     + ", ".join(f.name for f in info.fields))
        return []
    except csv.Error as err:
        problems.add(file, 1, None, f"cannot be read as CSV: {err}")
        return []
    plan = _columns(header, file, info, problems, warnings, 1)
    if plan is None:
        return []
    body = text.split("\n", 1)[1] if "\n" in text else ""
    if '"' not in text and "\n\n" not in body and "\r\n\r\n" not in body and not body.startswith(("\n", "\r")):
        # No quoted cell (so none spans lines) and no blank line: row n is on line n + 1.
        if "\r" not in body:
            return _split_rows(body, "\n", plan, file, problems, gathered, part)
        if body.count("\r") == body.count("\n") == body.count("\r\n"):
            return _split_rows(body, "\r\n", plan, file, problems, gathered, part)
        # Line ends of more than one kind: the csv module reads it, as any other file.
    numbered = [(reader.line_num, r) for r in _safe_csv(reader, file, problems)]
    # A blank line is not a row.
    width = len(header)
    numbered = [(n, r) for n, r in numbered if r and not (len(r) == 1 and r[0] == "" and width > 1)]
    rows = _typed_rows(plan, [r for _, r in numbered], [n for n, _ in numbered], file, problems)
    return gathered.add(part.rows(info.name, rows))


def _split_rows(body: str, newline: str, plan, file: str, problems: _Collector, gathered: _Gathered,
                part: Part = WHOLE) -> list[tuple]:
    """The rows of a CSV body with no quote and no blank line, split by C-level string methods.

    With no quoted cell, a row is the text between line ends and a cell the text between
    commas, exactly as the csv module reads them; splitting a piece of the text at once
    and taking each column as a slice of its cells costs a third of reading it row by row.
    A piece with a row of the wrong width, or a line longer than the csv module's field
    limit, is read by the csv module, to report exactly what it reports."""
    info, converters, width = plan
    commas = operator.methodcaller("count", ",")
    # Only a part of the subjects: the rows of the others are left before their cells are converted,
    # and, when the id is the first cell, before they are split into cells.
    chosen_at = converters[part.fields[info.name]][1] if info.name in part.fields else None
    by_lines = chosen_at == 0 and part.chooses_whole_lines()
    size = CSV_CHUNK * 40  # characters: about CSV_CHUNK rows of a narrow table
    rows: list[tuple] = []
    line = 2  # of the piece's first row
    start = 0
    while start < len(body) and not problems.full():
        end = body.find(newline, start + size)
        end = len(body) if end < 0 else end + len(newline)
        lines = body[start:end].split(newline)
        start = end
        if lines[-1] == "":
            lines.pop()  # the end of the last line
        numbers = range(line, line + len(lines))
        line += len(lines)
        if by_lines:
            chosen = part.chosen(lines)
            if not all(chosen):
                lines = list(compress(lines, chosen))
                numbers = list(compress(numbers, chosen))
        if set(map(commas, lines)) == {width - 1} and max(map(len, lines)) <= csv.field_size_limit():
            cells = ",".join(lines).split(",")
            columns, kept = [cells[p::width] for p in range(width)], numbers
            if chosen_at is not None and not by_lines:
                chosen = part.chosen(columns[chosen_at])
                if not all(chosen):
                    columns = [list(compress(c, chosen)) for c in columns]
                    kept = list(compress(numbers, chosen))
            typed = _typed_columns(columns, kept, info, converters)
            if typed is not None:
                rows.extend(gathered.add(typed))
                continue
        reader = csv.reader(lines, strict=True)
        raw: list[list[str]] = []
        error = None
        try:
            raw.extend(reader)
        except csv.Error as err:
            error = f"cannot be read as CSV: {err}"
        typed = _typed_rows(plan, raw, numbers[:len(raw)], file, problems)
        rows.extend(gathered.add(part.rows(info.name, typed)))
        if error is not None:
            problems.add(file, numbers[reader.line_num - 1], None, error)
            return rows  # as the csv module stops reading a file there
    return rows


def _safe_csv(reader, file: str, problems: _Collector):
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            problems.add(file, reader.line_num, None, f"cannot be read as CSV: {err}")
            return
        yield row


def _columns(header, file, info: TableInfo, problems: _Collector, warnings, line_of_header):
    """Where each declared field is in the header, and its converter; None when a column is missing."""
    header = [h.strip() for h in header]
    positions = {}
    for i, name in enumerate(header):
        if name in positions:
            problems.add(file, line_of_header, name, "appears twice in the header")
        positions[name] = i
    missing = [f.name for f in info.fields if f.name not in positions]
    for name in missing:
        problems.add(file, line_of_header, name, f"column is missing (the header has {', '.join(header) or 'nothing'})")
    if missing:
        return None
    extra = [h for h in header if info.field(h) is None]
    if extra:
        warnings.append(f"{file}: ignored column{'s' if len(extra) > 1 else ''} {', '.join(extra)} "
                        f"(not declared in table `{info.name}`)")
    converters = [(f.name, positions[f.name], _converter(f, info.name)) for f in info.fields]
    return info, converters, len(header)


def _typed_rows(plan, raw_rows, lines, file, problems: _Collector):
    info, converters, width = plan
    if raw_rows and set(map(len, raw_rows)) == {width}:
        rows = _typed_columns(list(zip(*raw_rows)), lines, info, converters)
        if rows is not None:
            return rows
    # Some row or cell is wrong: go row by row, to report each and keep every good row.
    rows = []
    for line, raw in zip(lines, raw_rows):
        if len(raw) != width:
            problems.add(file, line, None, f"has {len(raw)} cells; the header has {width}")
            continue
        values = []
        ok = True
        for name, pos, conv in converters:
            try:
                values.append(conv(raw[pos]))
            except _Bad as err:
                problems.add(file, line, name, str(err))
                ok = False
        if ok:
            values.append(line)
            rows.append(tuple(values))
        elif problems.full():
            break
    return rows


def _typed_columns(raw_columns, lines, info: TableInfo, converters) -> list[tuple] | None:
    """Convert rows a column at a time (`raw_columns`: the cells of each column of the file,
    in the file's order): each distinct cell once, then a C-level map.

    Columns repeat values (dates, groups, kinds), so this does a small part of
    the per-cell work. None when some cell is wrong: the caller then goes row by
    row, to say where."""
    columns = []
    for f, (name, pos, conv) in zip(info.fields, converters):
        raw = raw_columns[pos]
        if f.type.kind == "text":
            if "" in raw:
                if not f.optional:
                    return None
                raw = tuple(None if c == "" else c for c in raw)
            columns.append(raw)
            continue
        values: dict = {}
        for cell in set(raw):
            try:
                values[cell] = conv(cell)
            except _Bad:
                return None
        columns.append(tuple(map(values.__getitem__, raw)))
    columns.append(lines)
    return list(zip(*columns))


def _rows_from_jsonl(text: str, file: str, info: TableInfo, problems: _Collector, warnings: list[str]):
    def reject_constant(name):
        raise ValueError(f"{name} is not a number")

    objects = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line, parse_float=Decimal, parse_constant=reject_constant)
        except (ValueError, RecursionError) as err:
            problems.add(file, line_no, None, f"is not valid JSON: {err}")
            continue
        if not isinstance(obj, dict):
            problems.add(file, line_no, None, f"expected a JSON object, found {type(obj).__name__}")
            continue
        objects.append((line_no, obj))
    names = [f.name for f in info.fields]
    rows = []
    extra_seen: set[str] = set()
    converters = [(f.name, _converter(f, info.name)) for f in info.fields]
    # A JSON object may leave out an optional field: that is the same as null.
    optional_names = {f.name: f.optional for f in info.fields}
    for line_no, obj in objects:
        values = []
        ok = True
        for name, conv in converters:
            raw = obj.get(name)
            if name not in obj and not optional_names.get(name):
                problems.add(file, line_no, name, "is missing from this object")
                ok = False
                continue
            if isinstance(raw, (dict, list)):
                problems.add(file, line_no, name, f"expected a single value, found {type(raw).__name__}")
                ok = False
                continue
            try:
                values.append(conv(raw))
            except _Bad as err:
                problems.add(file, line_no, name, str(err))
                ok = False
        extra_seen.update(k for k in obj if k not in names)
        if ok:
            values.append(line_no)
            rows.append(tuple(values))
        elif problems.full():
            break
    if extra_seen:
        warnings.append(f"{file}: ignored field{'s' if len(extra_seen) > 1 else ''} {', '.join(sorted(extra_seen))} "
                        f"(not declared in table `{info.name}`)")
    return rows


def _rows_from_records(records: Iterable[Mapping], name: str, info: TableInfo, problems: _Collector, warnings):
    file = f"<{name}>"
    converters = [(f.name, _converter(f, info.name)) for f in info.fields]
    rows = []
    names = {f.name for f in info.fields}
    extra_seen: set[str] = set()
    for number, obj in enumerate(records, start=1):
        if not isinstance(obj, Mapping):
            problems.add(file, number, None, f"expected a mapping of field names to values, found {type(obj).__name__}")
            continue
        values = []
        ok = True
        for fname, conv in converters:
            if fname not in obj and not info.field(fname).optional:
                problems.add(file, number, fname, "is missing from this record")
                ok = False
                continue
            try:
                values.append(conv(obj.get(fname)))
            except _Bad as err:
                problems.add(file, number, fname, str(err))
                ok = False
        extra_seen.update(str(k) for k in obj if k not in names)
        if ok:
            values.append(number)
            rows.append(tuple(values))
    if extra_seen:
        warnings.append(f"{file}: ignored field(s) {', '.join(sorted(extra_seen))}")
    return rows


def find_files(paths: Iterable[str | Path]) -> dict[str, Path]:
    """Map table names to files: each path is a .csv/.jsonl file or a folder of them."""
    found: dict[str, Path] = {}
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files = sorted(x for x in p.iterdir() if x.suffix in (".csv", ".jsonl") and x.is_file())
        elif p.is_file():
            if p.suffix not in (".csv", ".jsonl"):
                raise UsageError(f"{p}: data files are .csv or .jsonl")
            files = [p]
        else:
            raise UsageError(f"{p}: no such file or folder")
        for f in files:
            if f.stem in found and found[f.stem] != f:
                raise UsageError(f"table `{f.stem}` is given twice: {found[f.stem]} and {f}")
            found[f.stem] = f
    return found


def load(program: Program, sources: Mapping[str, Any] | Iterable[str | Path], exclude_invalid: bool = False,
         part: Part = WHOLE) -> Dataset:
    """Load every table the contract declares, from paths or in-memory records, and validate it.

    By default any broken row rejects the run. With `exclude_invalid`, a broken row
    that belongs to a subject leaves that subject (and all its rows) out, and the
    dataset lists every excluded subject with its problems; a problem that belongs
    to no subject (a missing column, a calendar row, a reference to a subject that
    does not exist) still rejects the run. With `part`, only those subjects' rows are
    loaded (see Part)."""
    with no_cycle_collection():
        return _load(program, sources, exclude_invalid, part)


class no_cycle_collection:
    """Pause Python's cycle collector while millions of small acyclic tuples are made.

    Tables and statements hold no reference cycles, and a full collection
    walks every object made so far, again and again as they grow. On the way
    out, when that was a great many objects, they are moved out of the
    collector's sight (gc.freeze): left in its youngest generation, they would
    all be walked by the very next collection, and again as they age (0.6 s at
    100k participants). Fewer, but still many, are moved straight to the oldest
    generation (frozen and at once unfrozen), so that they wait for its next
    collection instead of being walked by the next young one (4-6 ms after a
    10,000-participant evaluation); nothing is left frozen, and this is done
    only when nothing else is (a program that froze its own objects keeps them
    so). Small runs are left to the collector as usual."""

    FREEZE_FROM = 200_000  # objects made while paused
    PROMOTE_FROM = 20_000

    def __enter__(self):
        self.was_enabled = gc.isenabled()
        gc.disable()
        self.count = gc.get_count()[0]

    def __exit__(self, *exc):
        if self.was_enabled:
            made = gc.get_count()[0] - self.count
            if made >= self.FREEZE_FROM:
                gc.freeze()
            elif made >= self.PROMOTE_FROM and gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def _load(program: Program, sources: Mapping[str, Any] | Iterable[str | Path], exclude_invalid: bool,
          part: Part = WHOLE) -> Dataset:
    problems = _Collector(limit=10**9 if exclude_invalid else MAX_PROBLEMS)
    warnings: list[str] = []
    if isinstance(sources, Mapping):
        given = dict(sources)
    else:
        given = dict(find_files(sources))
    tables: dict[str, Table] = {}
    for name, info in program.tables.items():
        if info.virtual:
            continue
        problems.table = name
        if name not in given:
            problems.add(f"{name}.csv", None, None,
                         f"no data for table `{name}` (expected a file {name}.csv or {name}.jsonl)")
            continue
        src = given[name]
        if isinstance(src, (str, Path)):
            path = Path(src)
            if not path.is_file():
                problems.add(str(path), None, None, "no such file")
                continue
            text = _decode(path, problems)
            if text is None:
                continue
            file = str(path)
            gathered = _Gathered(info)
            if path.suffix == ".jsonl":
                rows = gathered.add(part.rows(name, _rows_from_jsonl(text, file, info, problems, warnings)))
            else:
                rows = _rows_from_csv(text, file, info, problems, warnings, gathered, part)
        else:
            file = f"<{name}>"
            gathered = _Gathered(info)
            try:
                if exclude_invalid:
                    src = given[name] = list(src)  # kept, to find a broken record's subject
                rows = gathered.add(part.rows(name, _rows_from_records(src, name, info, problems, warnings)))
            except TypeError:
                problems.add(file, None, None, "expected an iterable of records (mappings)")
                continue
        tables[name] = Table(name, info, file, rows, gathered.keys, gathered.by_reference)
    for name in sorted(set(given) - set(program.tables)):
        warnings.append(f"{given[name]}: ignored (the contract declares no table `{name}`)")
    dataset = Dataset(tables, warnings)
    if problems.problems:
        if not exclude_invalid:
            raise DataError(problems.problems)
        _exclude(program, dataset, problems.problems, _RawRows(given))
        problems.problems = []
    problems.table = None
    _validate_keys_and_references(tables, problems)
    if problems.problems:
        if not exclude_invalid:
            raise DataError(problems.problems)
        _exclude(program, dataset, problems.problems, _RawRows(given))
    return dataset


class _RawRows:
    """A broken row as it was written (column -> text), to find whose it is."""

    def __init__(self, given: dict):
        self.given = given
        self.files: dict[str, dict[int, dict]] = {}

    def get(self, table: str | None, line: int | None) -> dict | None:
        if table is None or line is None or table not in self.given:
            return None
        src = self.given[table]
        if not isinstance(src, (str, Path)):
            return src[line - 1] if 0 < line <= len(src) and isinstance(src[line - 1], Mapping) else None
        key = str(src)
        if key not in self.files:
            rows: dict[int, dict] = {}
            try:
                text = Path(src).read_bytes().decode("utf-8-sig", errors="replace")
                if str(src).endswith(".jsonl"):
                    for n, line_text in enumerate(text.splitlines(), start=1):
                        try:
                            obj = json.loads(line_text)
                        except ValueError:
                            continue
                        if isinstance(obj, dict):
                            rows[n] = obj
                else:
                    reader = csv.reader(io.StringIO(text, newline=""))
                    header = [h.strip() for h in next(reader, [])]
                    for raw in _safe_csv(reader, key, _Collector()):
                        rows[reader.line_num] = dict(zip(header, raw))
            except OSError:
                pass
            self.files[key] = rows
        return self.files[key].get(line)


def owners(program: Program, dataset: Dataset) -> dict[str, Any]:
    """For each table, how to find the subject a loaded row belongs to (None: a calendar table)."""
    subject_table = program.subject.table if program.subject else None
    found: dict[str, Any] = {}

    def owner(name: str, depth: int = 0):
        if name in found:
            return found[name]
        info = program.tables[name]
        result = None
        if name == subject_table:
            i = info.field(info.key).index
            result = lambda row: row[i]  # noqa: E731
        elif depth < 8:
            for f in info.fields:
                if f.references is None or f.references == name:
                    continue
                parent = owner(f.references, depth + 1)
                if parent is None:
                    continue
                if f.references == subject_table:
                    i = f.index
                    result = lambda row, i=i: row[i]  # noqa: E731
                else:
                    ptable = dataset.tables.get(f.references)
                    pinfo = program.tables[f.references]
                    k = pinfo.field(pinfo.key).index
                    by_key = {r[k]: parent(r) for r in ptable.rows} if ptable else {}
                    result = lambda row, i=f.index, by_key=by_key: by_key.get(row[i])  # noqa: E731
                break
        found[name] = result
        return result

    return {name: owner(name) for name in program.tables if not program.tables[name].virtual}


def _raw_owner(program: Program, dataset: Dataset, table: str, raw: dict, depth: int = 0) -> str | None:
    subject_table = program.subject.table
    info = program.tables[table]
    if table == subject_table:
        value = raw.get(info.key)
        return str(value) if value not in (None, "") else None
    for f in info.fields:
        if f.references is None or f.references == table or depth > 8:
            continue
        value = raw.get(f.name)
        if value in (None, ""):
            continue
        if f.references == subject_table:
            return str(value)
        parent = dataset.tables.get(f.references)
        if parent is None:
            continue
        pinfo = program.tables[f.references]
        k = pinfo.field(pinfo.key).index
        for row in parent.rows:
            if row[k] == value:
                return _raw_owner(program, dataset, f.references,
                                  {g.name: row[g.index] for g in pinfo.fields}, depth + 1)
    return None


def _exclude(program: Program, dataset: Dataset, problems: list[DataProblem], raw_rows: _RawRows) -> None:
    """Leave out the subjects that broken rows belong to; a problem that belongs to none is fatal."""
    subject_table = dataset.tables.get(program.subject.table)
    info = program.tables[program.subject.table]
    known = {r[info.field(info.key).index] for r in subject_table.rows} if subject_table and info.key else set()
    owned = []
    for p in problems:
        raw = raw_rows.get(p.table, p.row)
        subject = _raw_owner(program, dataset, p.table, raw) if raw is not None and p.table else None
        if subject is not None and subject not in known and p.table != program.subject.table:
            subject = None  # a row of a subject that does not exist belongs to no one: the run stops
        if p.table not in dataset.tables or subject_table is None:
            subject = None  # a file that could not be read at all
        owned.append((subject, p))
    exclude(program, dataset, owned)


def exclude(program: Program, dataset: Dataset, owned: list[tuple[str | None, DataProblem]]) -> None:
    """Leave out each problem's subject, listing the problem; one that belongs to no subject stops the run."""
    fatal = [p for subject, p in owned if subject is None]
    if fatal:
        raise DataError(fatal)
    for subject, p in owned:
        dataset.excluded.setdefault(subject, []).append(p.render().removeprefix("data error: "))
    drop(program, dataset, set(dataset.excluded))


def drop(program: Program, dataset: Dataset, subjects: set[str]) -> None:
    """Remove every row that belongs to one of `subjects`, from every table."""
    if not subjects:
        return
    find = owners(program, dataset)
    for name, table in dataset.tables.items():
        owner = find.get(name)
        if owner is not None:
            table.set_rows([r for r in table.rows if owner(r) not in subjects])


def _validate_keys_and_references(tables: dict[str, Table], problems: _Collector) -> None:
    keys: dict[str, set] = {}
    for name, table in tables.items():
        info = table.info
        problems.table = name
        if info.key is None:
            continue
        idx = info.field(info.key).index
        unique = table.keys if table.keys is not None else {row[idx] for row in table.rows}
        if len(unique) != len(table.rows):  # only then look for where
            seen: dict[Any, int] = {}
            for row in table.rows:
                k = row[idx]
                if k in seen:
                    problems.add(table.file, row[-1], info.key, f'duplicate key "{k}" (first on row {seen[k]})')
                else:
                    seen[k] = row[-1]
        keys[name] = unique
    for name, table in tables.items():
        problems.table = name
        for f in table.info.fields:
            if f.references is None or f.references not in keys:
                continue
            targets = keys[f.references]
            i = f.index
            grouped = table.by_reference.get(i)
            if not (set(grouped if grouped is not None else (row[i] for row in table.rows)) - targets - {None}):
                continue  # every reference resolves
            for row in table.rows:
                v = row[f.index]
                if v is not None and v not in targets:
                    problems.add(table.file, row[-1], f.name, f'refers to {f.references} "{v}", which does not exist')
                    if problems.full():
                        return
