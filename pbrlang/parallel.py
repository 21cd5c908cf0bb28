"""Using both cores: the first pass split between processes by subject, merged in payment order.

Workers are forked, so each inherits the loaded tables without copying them.
When a contract's payments can be finished subject by subject (every cap per
subject, no ceilings, no `paid`), each process finishes its own subjects.

- For the statement in memory (`statement`), the subjects in id order are cut
  into chunks; this process takes chunks from the front and the others from the
  back until they meet (`_Helpers`), so none waits for another however fast each
  goes. The others send each chunk's payment rows back, grouped by day, and the
  days are joined chunk after chunk.
- For the JSON statement (`write_json`, `write_json_split`), the subjects are cut
  into contiguous ranges, one per process; each process writes its payments' JSON
  lines, in chunks of subjects, each chunk grouped by day, and the statement holds
  the chunks day by day, first process first (into a regular file, this process
  writes a small statement's pieces in order, many to a kernel call, and for a
  large one the kernel copies each part's chunks to their places, a thread per
  part; otherwise the parent writes them in order).

Because every subject of one chunk or range sorts before every subject of the
next, either way gives exactly the single-process order, byte for byte.
Otherwise the chunks are shared out the same way, each process returns its
subjects' claims, and the parent takes them through the caps and ceilings in one
ordered pass. All of these fork their helpers directly (`_Helpers`): no pool.
"""

from __future__ import annotations

import decimal
import marshal
import operator
import os
import signal
import stat
import struct
import tempfile

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: `typing` is not imported on the evaluator's path
    from typing import TextIO

from .data import Part, find_files, load, no_cycle_collection
from .errors import DataError, EvaluationError, EvaluationErrors, UsageError
from .source import Source, Span
from .evaluator import Evaluation, SubjectResult, check_rows, decomposable, in_payment_order
from .money import exact_context
from .statement import FIRST_PAYMENT, PAYMENT_SEPARATOR, LineFormatter, Statement, Totals, head_json
from .statement import EMPTY_PAYMENTS_END, PAYMENTS_END

# Below this many subjects a second process costs more than it saves: sharing the evaluation of
# loaded tables (the statement in memory, or JSON from tables given as values) ...
PARALLEL_FROM = 20_000
# ... and loading, evaluating and writing JSON from CSV files in ranges, which shares the loading too.
SPLIT_FROM = 5_000
# The JSON statement's payment lines up to this many bytes are written by this process, the
# parts' pieces in order, hundreds to a kernel call: at 10,000 subjects (8 MB in some 2,000 pieces,
# a day's lines of one part each) 9 ms, where a kernel copy of each piece to its place took 20.
# Beyond, each part is copied by the kernel in a thread of its own (86 MB: 58 ms against 64).
WRITTEN_AT_ONCE = 64 << 20
CHUNK = 25_000  # subjects a worker formats before writing them out
# Subjects in a chunk of the in-memory statement's first pass, shared between processes: at most
# SHARE, and fewer for fewer subjects (down to a fifth of it), so that there are about 16 chunks
# at the least, and the processes finish close together.
SHARE = 5_000

# Workers are forked (they inherit the loaded tables); where there is no fork, one process runs.
CAN_FORK = hasattr(os, "fork")
if CAN_FORK:
    import fcntl  # where there is fork, there is fcntl

def workers_for(run: Evaluation, requested: int | None) -> int:
    """How many processes to use. By default more than one only when they can finish their own
    subjects' payments (caps all per subject, no ceilings, no `paid`) and the data is large:
    sending every subject's claims back to one process costs more than evaluating them there."""
    if run.keeps_frames or not CAN_FORK:
        return 1  # claims that carry a subject's frame stay in this process
    if requested is not None:
        return max(1, requested)
    if not finishes_in_parts(run) or len(run.subject_rows) < PARALLEL_FROM:
        return 1
    return max(1, min(2, os.cpu_count() or 1))


def finishes_in_parts(run: Evaluation) -> bool:
    """Whether each process can finish its own subjects' payments (and the statement needs
    nothing else of them: cohorts' figures need every subject's days)."""
    return run.decomposable and run.program.cohorts is None


def _pieces(run: Evaluation, size: int) -> list[list[tuple]]:
    """The subjects in id order, cut into pieces of `size` (at least one piece, if empty)."""
    ordered = sorted(run.subject_rows, key=operator.itemgetter(run.key_index))
    return [ordered[i: i + size] for i in range(0, len(ordered), max(size, 1))] or [[]]


def _ranges(run: Evaluation, parts: int) -> list[list[tuple]]:
    """Contiguous ranges of the subjects in id order, of equal size."""
    return _pieces(run, -(-len(run.subject_rows) // parts))


def _chunks(run: Evaluation) -> list[list[tuple]]:
    """The subjects in id order, cut into chunks to share out as each process is ready: at most
    SHARE subjects each, and fewer for fewer subjects, so that there are about 16 at the least."""
    return _pieces(run, min(SHARE, max(SHARE // 5, len(run.subject_rows) // 16)))


def _in_parts(workers: int, parts: int, work, folder: str) -> list:
    """Each part's result, `work(n)` (plain values only: they cross between processes), in part
    order, worked out by this process and `workers - 1` forked helpers (`_Helpers`), this process
    taking the first part itself."""
    with _Helpers(workers - 1, parts, work, folder, first_is_mine=True) as helpers:
        results = {n: work(n) for n in helpers.own_chunks()}
        results.update(helpers.results())
    return [results[n] for n in range(parts)]


def _errors_of(errors: list[EvaluationError], contract: Source | None) -> list[tuple]:
    """Evaluation errors as they cross to another process, in plain values (marshal's format):
    what each was built from, its span as its place in its source (its text too, unless it is
    the `contract`'s own, which both processes hold)."""
    return [(e.message, e.subject, None if e.span is None else
             (e.span.source.name, None if e.span.source is contract else e.span.source.text,
              e.span.line, e.span.column, e.span.end_line, e.span.end_column)) for e in errors]


def _errors_from(crossed: list[tuple], contract: Source | None) -> list[EvaluationError]:
    """Evaluation errors that crossed from another process (`_errors_of`), made again."""
    return [EvaluationError(message, subject, None if span is None else Span(
        contract if span[1] is None else Source(span[0], span[1]), *span[2:])) for message, subject, span in crossed]


def _raise_errors(parts_errors, contract: Source | None) -> None:
    errors = [e for crossed in parts_errors for e in _errors_from(crossed, contract)]
    if errors:
        raise EvaluationErrors(errors)


def first_pass(run: Evaluation, workers: int) -> list[SubjectResult]:
    """The first pass over every subject, its chunks shared out between `workers` processes."""
    if workers <= 1:
        results, errors = run.first_pass()
        if errors:
            raise EvaluationErrors(errors)
        return results
    chunks = _chunks(run)

    def first_pass_of(number: int) -> tuple:
        results, errors = run.first_pass(chunks[number])
        return [tuple(r) for r in results], _errors_of(errors, run.program.source)

    with tempfile.TemporaryDirectory(prefix="pbr-") as folder:
        parts = _in_parts(workers, len(chunks), first_pass_of, folder)
    _raise_errors((errs for _, errs in parts), run.program.source)
    return [SubjectResult(*r) for results, _ in parts for r in results]


def statement(run: Evaluation, workers: int) -> Statement:
    """The statement, its first pass split between `workers` processes.

    A contract whose payments finish subject by subject is finished in the processes
    too, the subjects (in id order) cut into chunks: this process takes chunks from the
    front, the others from the back, until they meet (`_Helpers`), so however fast each
    goes, none waits for another. The others write each chunk's payment rows, grouped by
    day, to a file in marshal's format (quick to read back), which this process reads
    between its own chunks. The days are then joined chunk after chunk: the
    single-process order."""
    if not finishes_in_parts(run):
        return run.statement(first_pass(run, workers))
    if workers <= 1:
        part = run.payments()
        part.add(run.subject_rows)
        if part.errors:
            raise EvaluationErrors(part.errors)
        return run.assemble(in_payment_order(part.by_day), part.totals(), part.evaluated, part.eligible)
    chunks = _chunks(run)

    def finish_chunk(number: int) -> tuple:
        part = run.payments()
        part.add(chunks[number], ordered=True)
        errors = _errors_of(part.errors, run.program.source)
        return part.by_day, (part.totals().__dict__, part.evaluated, part.eligible, errors)

    own = run.payments()
    with tempfile.TemporaryDirectory(prefix="pbr-") as folder:
        with _Helpers(workers - 1, len(chunks), finish_chunk, folder) as helpers:
            for number in helpers.own_chunks():
                own.add(chunks[number], ordered=True)
            others = helpers.results()
    by_day, totals = own.by_day, own.totals()
    evaluated, eligible, errors = own.evaluated, own.eligible, own.errors
    for number in sorted(others):  # the chunks after this process's own, in order
        days, (chunk_totals, chunk_evaluated, chunk_eligible, chunk_errors) = others[number]
        for day, rows in days.items():
            same_day = by_day.get(day)
            if same_day is None:
                by_day[day] = rows
            else:
                same_day.extend(rows)  # this chunk's subjects sort after the earlier ones'
        totals.merge(Totals.from_dict(chunk_totals))
        evaluated += chunk_evaluated
        eligible += chunk_eligible
        errors += _errors_from(chunk_errors, run.program.source)
    if errors:
        raise EvaluationErrors(errors)
    return run.assemble(in_payment_order(by_day), totals, evaluated, eligible)


class _Helpers:
    """Forked processes sharing a list of chunks of work with this one: this process takes
    chunks from the front (`own_chunks`), the helpers from the back, until they meet, so neither
    waits for the other however fast each goes. A helper writes each chunk's result (`work(n)`,
    plain values only) to a file in `folder`, in marshal's format (quick both ways), and says
    down a pipe which chunk it finished; this process reads the results as they come, between
    its own chunks. Who takes which chunk is settled under a POSIX record lock, which the kernel
    releases if its holder dies; a helper that dies leaves its chunk unreported, and the run
    fails with what it said, never waits for ever. No multiprocessing: forking directly costs
    less than starting a pool."""

    _CLAIMS = struct.Struct("<qq")  # the next chunk from the front, the next from the back
    _NUMBER = struct.Struct("<q")  # a chunk's number: one end of the claims, or a report down the pipe

    def __init__(self, count: int, chunks: int, work, folder: str, first_is_mine: bool = False):
        self.chunks = chunks
        self.folder = folder
        self.mine = 0
        self.first_is_mine = first_is_mine  # chunk 0 is this process's, whoever is quicker
        self.got: dict[int, object] = {}
        self.pids: list[int] = []
        self.pending = b""
        self.claims = os.open(os.path.join(folder, "claims"), os.O_RDWR | os.O_CREAT, 0o600)
        os.pwrite(self.claims, self._CLAIMS.pack(1 if first_is_mine else 0, chunks - 1), 0)
        self.reports, write = os.pipe()
        try:
            for _ in range(count):
                pid = os.fork()
                if pid == 0:  # a helper: it never returns from here
                    self._help(work, write)
                self.pids.append(pid)
        except BaseException:
            self._stop()
            raise
        finally:
            os.close(write)

    def __enter__(self) -> "_Helpers":
        return self

    def __exit__(self, *exc) -> None:
        self._stop()

    def _claim(self, from_back: bool) -> int | None:
        fcntl.lockf(self.claims, fcntl.LOCK_EX)
        try:
            front, back = self._CLAIMS.unpack(os.pread(self.claims, self._CLAIMS.size, 0))
            if front > back:
                return None
            if from_back:
                os.pwrite(self.claims, self._NUMBER.pack(back - 1), 8)
                return back
            os.pwrite(self.claims, self._NUMBER.pack(front + 1), 0)
            return front
        finally:
            fcntl.lockf(self.claims, fcntl.LOCK_UN)

    def _help(self, work, reports: int) -> None:
        status = 1
        try:
            os.close(self.reports)
            while (number := self._claim(from_back=True)) is not None:
                data = marshal.dumps(work(number))
                with open(os.path.join(self.folder, f"chunk-{number}"), "wb") as out:
                    out.write(data)
                os.write(reports, self._NUMBER.pack(number))
            status = 0
        except BaseException as err:  # said to this process, which fails the run
            try:
                with open(os.path.join(self.folder, f"failed-{os.getpid()}"), "w", encoding="utf-8") as out:
                    out.write(f"{type(err).__name__}: {err}")
            except BaseException:
                pass
        finally:
            os._exit(status)  # never this process's clean-up, buffers or exit handlers

    def own_chunks(self):
        """The chunks this process takes, from the front, reading the helpers' results between them."""
        if self.first_is_mine:
            self.mine += 1
            yield 0
        while True:
            self._read(wait=False)
            number = self._claim(from_back=False)
            if number is None:
                return
            self.mine += 1
            yield number

    def results(self) -> dict[int, object]:
        """Every helper's result by chunk, once all are in."""
        while len(self.got) < self.chunks - self.mine:
            if not self._read(wait=True):
                self._failed()
        return self.got

    def _read(self, wait: bool) -> bool:
        """Take the results reported so far (with `wait`, at least one report); False when every
        helper has gone."""
        os.set_blocking(self.reports, wait)
        while True:
            try:
                data = os.read(self.reports, 4096)
            except BlockingIOError:
                return True
            if not data:
                return False
            self.pending += data
            size = self._NUMBER.size
            while len(self.pending) >= size:
                number = self._NUMBER.unpack(self.pending[:size])[0]
                self.pending = self.pending[size:]
                path = os.path.join(self.folder, f"chunk-{number}")
                with open(path, "rb") as handle:
                    self.got[number] = marshal.loads(handle.read())
                os.remove(path)
            if wait:
                return True

    def _failed(self) -> None:
        statuses = self._stop()
        said = []
        for name in sorted(os.listdir(self.folder)):
            if name.startswith("failed-"):
                with open(os.path.join(self.folder, name), encoding="utf-8") as f:
                    said.append(f.read())
        why = "; ".join(said) or ", ".join(statuses) or "no reason given"
        raise EvaluationError(f"a process evaluating part of the subjects stopped before it had finished ({why})")

    def _stop(self) -> list[str]:
        """Wait for the helpers (stopping any still at work: this process is failing) and close
        the pipe; how each ended, when not well."""
        statuses = []
        for pid in self.pids:
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done == 0:
                    if self.mine + len(self.got) < self.chunks:
                        os.kill(pid, signal.SIGKILL)
                    _, status = os.waitpid(pid, 0)
            except ChildProcessError:
                continue
            code = os.waitstatus_to_exitcode(status)
            if code:
                statuses.append(f"exit status {code}" if code > 0 else f"signal {-code}")
        self.pids = []
        for fd in ("reports", "claims"):
            if getattr(self, fd, None) is not None:
                os.close(getattr(self, fd))
                setattr(self, fd, None)
        return statuses


class _Message(Exception):
    def __str__(self) -> str:
        return self.args[0]


def _format(run: Evaluation, rows: list[tuple], number: int, folder: str) -> tuple:
    """Evaluate subjects (in id order) a chunk at a time, and write their payments' JSON lines to
    this part's file, each chunk's grouped by day; where each day's lines are, and the totals
    (their `__dict__`). Part 0 is always this process's own (see _in_parts): when it is at most
    one chunk of subjects (some megabytes of lines), its lines are kept in memory, as bytes in
    place of the file's path, not written to a file, read back and removed."""
    formatter = LineFormatter(tuple(o.name for o in run.program.outcomes), run.program.funders, False)
    totals = run.new_totals()
    path = os.path.join(folder, f"part-{number}.json")
    segments: list[tuple[int, int, int, int]] = []  # (day, chunk, offset, length)
    eligible = 0
    errors: list[tuple] = []
    lines: list[bytes] = []
    offset = 0
    held = number == 0 and len(rows) <= CHUNK
    with open(os.devnull if held else path, "wb") as out:
        write = lines.append if held else out.write
        for chunk_number, start in enumerate(range(0, len(rows), CHUNK)):
            part = run.payments()
            part.add(rows[start: start + CHUNK], ordered=True)
            by_day = part.by_day
            totals.merge(part.totals())
            eligible += part.eligible
            errors.extend(_errors_of(part.errors, run.program.source))
            for day in sorted(by_day):
                data = formatter.text(by_day[day]).encode("utf-8")
                write(data)
                segments.append((day, chunk_number, offset, len(data)))
                offset += len(data)
    lines_or_path = b"".join(lines) if held else path
    return lines_or_path, segments, totals.__dict__, len(rows), eligible, errors  # plain values: see _in_parts


def write_json(run: Evaluation, out: TextIO, workers: int) -> None:
    """Evaluate and write the JSON statement, formatting payments in `workers` processes, one
    range of subjects each.

    Only for contracts whose payments finish subject by subject (`finishes_in_parts`)."""
    assert finishes_in_parts(run)
    ranges = _ranges(run, workers)
    with tempfile.TemporaryDirectory(prefix="pbr-") as folder:
        parts = _in_parts(workers, len(ranges), lambda number: _format(run, ranges[number], number, folder), folder)
        _merge(run, parts, out)


def id_fields(compiled) -> dict[str, int] | None:
    """Where each table holds the subject's id (table -> field index: the subject table's key, or
    a table's one reference to it), when a range of subjects can be loaded and evaluated on its
    own: no definition over every subject, no table reaching subjects through another table, and
    nothing read of those tables but a subject's own records. Otherwise None."""
    program = compiled.program
    if program.subject is None or program.cohorts is not None or compiled.global_lets \
            or any(o.reports for o in compiled.outcomes) or not decomposable(program):
        return None
    subject = program.subject.table
    info = program.tables[subject]
    fields = {subject: info.field(info.key).index}
    for name, table in program.tables.items():
        if table.virtual:
            return None
        refs = [f.index for f in table.fields if f.references == subject]
        if name != subject and len(refs) > 1:
            return None
        if name != subject and refs:
            fields[name] = refs[0]
    for name, table in program.tables.items():
        if any(f.references in fields and f.references != subject for f in table.fields):
            return None  # its rows belong to subjects through another table's rows
    for spec in compiled.indexes:
        if spec[1] in fields and not (spec[0] == "children" and spec[1] != subject and spec[2] == fields[spec[1]]):
            return None  # all of a table's rows, or its rows grouped by something else than the subject
    return fields


def _boundaries(text: str, key: str, parts: int) -> list[str] | None:
    """Ids that cut the subjects into `parts` ranges of about the same size, from a sample of the
    subject table's key column (the lines after evenly spaced places in the text: no need to
    split a million lines to choose one cut); None when the file is not plain (quotes,
    carriage returns)."""
    if '"' in text or "\r" in text:
        return None
    body = text.find("\n") + 1
    header = text[:body - 1].split(",")
    if body == 0 or key not in header or len(text) <= body:
        return None
    at = header.index(key)
    # The cut within about half a percent of the middle; for a small file, an eighth of its
    # lines (a few milliseconds saved, a percent or two further from the middle).
    samples = min(10_000, max(1_000, text.count("\n", body) // 8))
    sample = set()
    for k in range(samples):
        start = body if k == 0 else text.find("\n", body + (len(text) - body) * k // samples) + 1
        if start <= 0 or start >= len(text):
            continue
        end = text.find("\n", start)
        cells = text[start: end if end >= 0 else len(text)].split(",")
        if len(cells) == len(header):
            sample.add((cells[at], start))  # a line met twice (short files) counts once
    ordered = sorted(cell for cell, _ in sample)
    if len(ordered) < 2:
        return None
    cuts = [ordered[len(ordered) * k // parts] for k in range(1, parts)]
    if "" in cuts or len(set(cuts)) < len(cuts):
        return None
    return cuts


def write_json_split(compiled, sources, as_of, opener, workers: int | None = None) -> list[str] | None:
    """The JSON statement straight from CSV files, each process loading, checking and evaluating
    only its own range of subjects (and their rows), so that reading the data is shared too.

    The ranges are cut by ids, so every subject of one range sorts before every subject of the
    next, and the parts are merged as `write_json` merges them: the same bytes. `opener()` gives
    the output (a context manager), opened only once every part has loaded. Returns the data's
    warnings; None, having written nothing, when this does not apply (a contract or data of
    another shape, one process, fewer than SPLIT_FROM subjects) or some part's data is
    wrong, so that loading it whole reports the problems as usual."""
    if not CAN_FORK or workers == 1:
        return None
    fields = id_fields(compiled)
    if fields is None:
        return None
    try:
        files = find_files(sources)
    except UsageError:
        return None
    program = compiled.program
    if set(files) != set(program.tables) or any(files[name].suffix != ".csv" for name in files):
        return None
    try:
        text = files[program.subject.table].read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None
    if workers is None:
        if text.count("\n") < SPLIT_FROM:
            return None
        workers = max(1, min(2, os.cpu_count() or 1))
    cuts = _boundaries(text, program.tables[program.subject.table].key, workers) if workers > 1 else None
    del text
    if cuts is None:
        return None
    bounds = [None] + cuts + [None]
    parts = [Part(bounds[i], bounds[i + 1], fields) for i in range(workers)]
    with decimal.localcontext(exact_context()), no_cycle_collection(), \
            tempfile.TemporaryDirectory(prefix="pbr-") as folder:
        first_run = []  # this process's own evaluation (of the first range), for the statement's head

        def load_and_format(number: int):
            """Load, check and evaluate one range of subjects and write its part of the statement;
            its warnings and where its lines are, or None when its data is wrong."""
            try:
                dataset = load(compiled.program, files, part=parts[number])
                check_rows(compiled, dataset, as_of.toordinal())
                run = Evaluation(compiled, dataset, as_of)
            except (DataError, EvaluationError):
                return None
            if number == 0:
                first_run.append(run)
            rows = sorted(run.subject_rows, key=operator.itemgetter(run.key_index))
            return list(dataset.warnings), _format(run, rows, number, folder)

        loaded = _in_parts(workers, workers, load_and_format, folder)
        if any(part is None for part in loaded):
            return None  # some data is wrong: loaded whole, it is reported as usual
        with opener() as out:
            _merge(first_run[0], [formatted for _, formatted in loaded], out)
    return loaded[0][0]


def _merge(run: Evaluation, parts: list[tuple], out: TextIO) -> None:
    """Write the statement's head, then the parts' payments day by day, first part first."""
    program = run.program
    _raise_errors((part[5] for part in parts), program.source)
    totals = run.new_totals()
    for part in parts:
        totals.merge(Totals.from_dict(part[2]))
    head = Statement(
        contract=program.name,
        as_of=run.as_of_date,
        currency=program.currency,
        rows=(),
        outcomes=tuple(o.name for o in program.outcomes),
        funders=program.funders,
        every_outcome="outcome" in program.statement_parts,
        every_funder="funder" in program.statement_parts,
        show_unfunded=False,
        caps=tuple(run.ordered.cap_uses()),
        subjects_evaluated=sum(part[3] for part in parts),
        subjects_eligible=sum(part[4] for part in parts),
    )
    head.__dict__["totals"] = totals
    out.write(head_json(head._head()))
    out.flush()
    # Every segment (a chunk's lines for one day) in the statement's order: day, then part, then chunk.
    index: list[dict[int, list]] = [{} for _ in parts]
    for i, part in enumerate(parts):
        for day, chunk, offset, length in part[1]:
            index[i].setdefault(day, []).append((offset, length))
    order = [(i, offset, length) for day in sorted({seg[0] for part in parts for seg in part[1]})
             for i in range(len(parts)) for offset, length in index[i].get(day, ())]
    if not order:
        out.write(EMPTY_PAYMENTS_END)
        return
    # The parts are UTF-8 already: copied as bytes when the output is a UTF-8 file with no
    # line-ending translation, so hundreds of megabytes are not decoded only to be encoded again.
    raw = _bytes_of(out)
    write = raw.write if raw is not None else (lambda data: out.write(str(data, "utf-8")))
    views = [_bytes_held(part[0]) for part in parts]
    i, offset, length = order[0]
    # The first line has no separator before it.
    write(FIRST_PAYMENT.encode("utf-8") + bytes(views[i][offset + len(PAYMENT_SEPARATOR): offset + length]))
    target = _regular_file(raw)
    if target is not None and sum(len(view) for view in views) <= WRITTEN_AT_ONCE:
        raw.flush()
        _write_pieces(target, [views[i][offset: offset + length] for i, offset, length in order[1:]])
        out.write(PAYMENTS_END)
        return
    if target is not None:
        raw.flush()
        # Into a regular file, the kernel copies each part's bytes to their places in the
        # statement, one thread per part, side by side (no trip through Python; a thread, not
        # a worker process: the workers were forked before the output was opened).
        at = raw.tell()
        placed: list[list[tuple]] = [[] for _ in parts]
        for i, offset, length in order[1:]:
            placed[i].append((offset, length, at))
            at += length
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(parts)) as threads:
            done = list(threads.map(_place, [(part[0], target, placed[i]) for i, part in enumerate(parts)]))
        if all(done):
            raw.seek(at)
            out.write(PAYMENTS_END)
            return
    # Not a regular file, or one the kernel cannot copy into: the bytes go through this process, in order.
    for i, offset, length in order[1:]:
        write(views[i][offset: offset + length])
    if raw is not None:
        raw.flush()
    out.write(PAYMENTS_END)


def _bytes_held(held) -> memoryview:
    """A part's lines: the bytes this process kept, or the part's file, mapped, not read."""
    if isinstance(held, bytes):
        return memoryview(held)
    import mmap

    with open(held, "rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:  # a file with no lines cannot be mapped
            return memoryview(b"")
        return memoryview(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))


def _write_pieces(fd: int, pieces: list[memoryview]) -> None:
    """Write the pieces to the file in order, as many to a kernel call as it takes."""
    batch = max(16, os.sysconf("SC_IOV_MAX"))
    for start in range(0, len(pieces), batch):
        group = pieces[start: start + batch]
        written = os.writev(fd, group)
        for piece in group:  # what a short write left
            if written >= len(piece):
                written -= len(piece)
                continue
            rest, written = piece[written:], 0
            while rest:
                rest = rest[os.write(fd, rest):]


def _place(job: tuple) -> bool:
    """Copy a part's segments to their places in the output: (offset in the part, length, place).
    False, having copied nothing, when the kernel cannot copy between these two files."""
    path, target, placed = job
    if isinstance(path, bytes):  # this process's own part, in memory
        held = memoryview(path)
        for offset, length, at in placed:
            while length:
                written = os.pwrite(target, held[offset: offset + length], at)
                offset, length, at = offset + written, length - written, at + written
        return True
    with open(path, "rb") as handle:
        source = handle.fileno()
        for n, (offset, length, at) in enumerate(placed):
            done = 0
            while done < length:
                try:
                    copied = os.copy_file_range(source, target, length - done, offset + done, at + done)
                except OSError:
                    if n or done:
                        raise
                    return False
                if copied == 0:
                    if n or done:
                        raise OSError("a part file ended early")
                    return False
                done += copied
    return True


def _regular_file(raw) -> int | None:
    """The file descriptor under a byte stream, when it is a regular file the kernel can copy into."""
    if raw is None or not hasattr(os, "copy_file_range"):
        return None
    try:
        fd = raw.fileno()
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND:
            return None  # appending: a place in the file cannot be chosen
        return fd if stat.S_ISREG(os.fstat(fd).st_mode) else None
    except (OSError, ValueError, AttributeError):
        return None


def _bytes_of(out: TextIO):
    """The byte stream under a UTF-8 text file that writes "\n" as it is, or None."""
    raw = getattr(out, "buffer", None)
    encoding = (getattr(out, "encoding", None) or "").lower().replace("-", "").replace("_", "")
    if raw is None or encoding != "utf8" or os.linesep != "\n":
        return None
    return raw
