"""Using both cores: the first pass split between processes by subject, merged in payment order.

Subjects are cut into contiguous ranges of their sorted ids, one per process
(forked, so each inherits the loaded tables without copying them). When a
contract's payments can be finished subject by subject (every cap per
subject, no ceilings, no `paid`), each process also writes its payments' JSON
lines, in chunks of subjects, each chunk grouped by day; the statement then
holds the chunks day by day, first process first (into a regular file, the
kernel copies each part's chunks to their places, a thread per part; otherwise
the parent writes them in order). Because every subject of the first range
sorts before every subject of the second, this is exactly the single-process
order, byte for byte.
For the statement in memory, such a contract's other processes send their
finished payment rows back, grouped by day, and the days are joined first
range first (`statement`). Otherwise each process returns its subjects'
claims and the parent takes them through the caps and ceilings in one
ordered pass.
"""

from __future__ import annotations

import decimal
import marshal
import operator
import os
import stat
import tempfile
from typing import TextIO

from .data import Part, find_files, load, no_cycle_collection
from .errors import DataError, EvaluationError, EvaluationErrors, UsageError
from .evaluator import Evaluation, SubjectResult, check_rows, decomposable, in_payment_order
from .money import exact_context
from .statement import FIRST_PAYMENT, PAYMENT_SEPARATOR, LineFormatter, Statement, head_json
from .statement import EMPTY_PAYMENTS_END, PAYMENTS_END

# Below this many subjects a second process costs more than it saves.
PARALLEL_FROM = 20_000
CHUNK = 25_000  # subjects a worker formats before writing them out
# This process's share of the subjects when the others send their payment rows back to it:
# reading them back costs it about as much as their writing costs the others.
FIRST_SHARE = 0.55

# Workers are forked (they inherit the loaded tables); where there is no fork, one process runs.
CAN_FORK = hasattr(os, "fork")

_RUN: Evaluation | None = None  # inherited by forked workers
_RANGES: list[list[tuple]] = []  # likewise: a worker is sent a range's number, never its rows


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


def _ranges(run: Evaluation, parts: int, first_share: float | None = None) -> list[list[tuple]]:
    """Contiguous ranges of the subjects in id order: equal, or the first `first_share` of them
    and the rest in equal parts."""
    key = run.key_index
    ordered = sorted(run.subject_rows, key=operator.itemgetter(key))
    if first_share is None or parts < 2:
        size = -(-len(ordered) // parts)
        return [ordered[i: i + size] for i in range(0, len(ordered), size)] or [[]]
    first = round(len(ordered) * first_share)
    size = -(-(len(ordered) - first) // (parts - 1)) or 1
    return [ordered[:first]] + [ordered[i: i + size] for i in range(first, len(ordered), size)]


def _pool(processes: int):
    """A pool of `processes` forked workers. multiprocessing is imported here, not with this
    module: a run small enough for one process never needs it (10-15 ms of every start)."""
    import multiprocessing

    return multiprocessing.get_context("fork").Pool(processes)


def _errors_of(errors: list[EvaluationError]) -> list[tuple]:
    """Evaluation errors as they cross to another process: what each was built from."""
    return [(e.message, e.subject, e.span) for e in errors]


def _raise_errors(parts_errors) -> None:
    errors = [EvaluationError(message, subject, span) for errs in parts_errors for message, subject, span in errs]
    if errors:
        raise EvaluationErrors(errors)


def _first_pass(number: int):
    results, errors = _RUN.first_pass(_RANGES[number])
    return [(r.subject, r.eligible, r.days, r.excluded, r.claims) for r in results], _errors_of(errors)


def first_pass(run: Evaluation, workers: int) -> list[SubjectResult]:
    """The first pass over every subject, split between `workers` processes."""
    global _RUN, _RANGES
    if workers <= 1:
        results, errors = run.first_pass()
        if errors:
            raise EvaluationErrors(errors)
        return results
    _RUN, _RANGES = run, _ranges(run, workers)
    try:
        with _pool(workers) as pool:
            parts = pool.map(_first_pass, range(len(_RANGES)))
    finally:
        _RUN, _RANGES = None, []
    _raise_errors(errs for _, errs in parts)
    return [SubjectResult(*r) for results, _ in parts for r in results]


def statement(run: Evaluation, workers: int) -> Statement:
    """The statement, its first pass split between `workers` processes.

    A contract whose payments finish subject by subject is finished in the processes
    too. This process evaluates the first range of subjects; the others evaluate the
    rest a chunk at a time, summing each chunk's days and writing its payment rows,
    grouped by day, to a file in marshal's format (quick to read back, and nothing
    for this process to receive while it evaluates). Having done its own range, this
    process reads the chunks in order as they are done, each day's rows after the
    earlier ones': the single-process order."""
    global _RUN, _RANGES
    if not finishes_in_parts(run):
        return run.statement(first_pass(run, workers))
    if workers <= 1:
        by_day, totals, evaluated, eligible, errors = _finish(run, run.subject_rows)
        _raise_errors([errors])
        return run.assemble(in_payment_order(by_day), totals, evaluated, eligible)
    with tempfile.TemporaryDirectory(prefix="pbr-") as folder:
        _RUN, _RANGES = run, _ranges(run, workers, FIRST_SHARE)
        jobs = [(i, start, folder) for i in range(1, len(_RANGES)) for start in range(0, len(_RANGES[i]), CHUNK)]
        try:
            with _pool(workers - 1) as pool:
                done = pool.imap(_finish_chunk, jobs)  # in order, each as soon as it is finished
                by_day, totals, evaluated, eligible, errors = _finish(run, _RANGES[0])
                errors = [errors]
                for path, chunk_totals, chunk_evaluated, chunk_eligible, chunk_errors in done:
                    with open(path, "rb") as handle:
                        days = marshal.loads(handle.read())
                    os.remove(path)
                    for day, rows in days.items():
                        same_day = by_day.get(day)
                        if same_day is None:
                            by_day[day] = rows
                        else:
                            same_day.extend(rows)  # this chunk's subjects sort after the earlier ones'
                    totals.merge(chunk_totals)
                    evaluated += chunk_evaluated
                    eligible += chunk_eligible
                    errors.append(chunk_errors)
        finally:
            _RUN, _RANGES = None, []
    _raise_errors(errors)
    return run.assemble(in_payment_order(by_day), totals, evaluated, eligible)


def _finish(run: Evaluation, rows: list[tuple]) -> tuple:
    """Subjects' payment rows grouped by day, their totals, and the subjects counted."""
    by_day: dict[int, list] = {}
    totals = run.new_totals()
    evaluated, eligible, errors = run.finish(rows, by_day, totals)
    return by_day, totals, evaluated, eligible, _errors_of(errors)


def _finish_chunk(job: tuple) -> tuple:
    number, start, folder = job
    by_day, totals, evaluated, eligible, errors = _finish(_RUN, _RANGES[number][start: start + CHUNK])
    path = os.path.join(folder, f"rows-{number}-{start}")
    with open(path, "wb") as out:
        out.write(marshal.dumps(by_day))  # rows of whole numbers, texts (keys are text), tuples and none
    return path, totals, evaluated, eligible, errors


class _Message(Exception):
    def __str__(self) -> str:
        return self.args[0]


def _format_part(job: tuple) -> tuple:
    number, folder = job
    return _format(_RUN, _RANGES[number], number, folder)


def _format(run: Evaluation, rows: list[tuple], number: int, folder: str) -> tuple:
    """Evaluate subjects (in id order) a chunk at a time, and write their payments' JSON lines to
    this part's file, each chunk's grouped by day; where each day's lines are, and the totals."""
    formatter = LineFormatter(tuple(o.name for o in run.program.outcomes), run.program.funders, False)
    totals = run.new_totals()
    path = os.path.join(folder, f"part-{number}.json")
    segments: list[tuple[int, int, int, int]] = []  # (day, chunk, offset, length)
    eligible = 0
    errors: list[tuple] = []
    with open(path, "wb") as out:
        offset = 0
        for chunk_number, start in enumerate(range(0, len(rows), CHUNK)):
            by_day, chunk_totals, _, chunk_eligible, chunk_errors = _finish(run, rows[start: start + CHUNK])
            totals.merge(chunk_totals)
            eligible += chunk_eligible
            errors.extend(chunk_errors)
            for day in sorted(by_day):
                data = formatter.text(by_day[day]).encode("utf-8")
                out.write(data)
                segments.append((day, chunk_number, offset, len(data)))
                offset += len(data)
    return path, segments, totals, len(rows), eligible, errors


def write_json(run: Evaluation, out: TextIO, workers: int) -> None:
    """Evaluate and write the JSON statement, formatting payments in `workers` processes.

    Only for contracts whose payments finish subject by subject (`finishes_in_parts`)."""
    global _RUN, _RANGES
    assert finishes_in_parts(run)
    with tempfile.TemporaryDirectory(prefix="pbr-") as folder:
        _RUN, _RANGES = run, _ranges(run, workers)
        try:
            jobs = [(i, folder) for i in range(len(_RANGES))]
            # This process takes the first range itself: one process fewer holding a copy of the tables.
            with _pool(len(jobs) - 1) as pool:
                pending = pool.map_async(_format_part, jobs[1:])
                first = _format_part(jobs[0])
                parts = [first] + pending.get()
            _merge(run, parts, out)
        finally:
            _RUN, _RANGES = None, []


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
    samples = 10_000  # the cut within about half a percent of the middle
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


_SPLIT: tuple = ()  # (compiled, files, as_of, parts, folder): inherited by forked workers


def write_json_split(compiled, sources, as_of, opener, workers: int | None = None) -> list[str] | None:
    """The JSON statement straight from CSV files, each process loading, checking and evaluating
    only its own range of subjects (and their rows), so that reading the data is shared too.

    The ranges are cut by ids, so every subject of one range sorts before every subject of the
    next, and the parts are merged as `write_json` merges them: the same bytes. `opener()` gives
    the output (a context manager), opened only once every part has loaded. Returns the data's
    warnings; None, having written nothing, when this does not apply (a contract or data of
    another shape, one process, fewer than PARALLEL_FROM subjects) or some part's data is
    wrong, so that loading it whole reports the problems as usual."""
    global _SPLIT
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
        if text.count("\n") < PARALLEL_FROM:
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
        _SPLIT = (compiled, files, as_of, parts, folder)
        try:
            with _pool(workers - 1) as pool:
                pending = pool.map_async(_load_and_format, range(1, workers))
                first = _load_and_format(0, keep_run=True)
                others = pending.get()
                if first is None or any(part is None for part in others):
                    return None  # some data is wrong: loaded whole, it is reported as usual
            run, warnings, formatted = first
            with opener() as out:
                _merge(run, [formatted] + [part[2] for part in others], out)
        finally:
            _SPLIT = ()
    return warnings


def _load_and_format(number: int, keep_run: bool = False):
    """Load, check and evaluate one range of subjects and write its part of the statement;
    None when its data is wrong."""
    compiled, files, as_of, parts, folder = _SPLIT
    try:
        dataset = load(compiled.program, files, part=parts[number])
        check_rows(compiled, dataset, as_of.toordinal())
        run = Evaluation(compiled, dataset, as_of)
    except (DataError, EvaluationError):
        return None
    rows = sorted(run.subject_rows, key=operator.itemgetter(run.key_index))
    formatted = _format(run, rows, number, folder)
    return (run if keep_run else None), list(dataset.warnings), formatted


def _merge(run: Evaluation, parts: list[tuple], out: TextIO) -> None:
    """Write the statement's head, then the parts' payments day by day, first part first."""
    program = run.program
    _raise_errors(part[5] for part in parts)
    totals = run.new_totals()
    for part in parts:
        totals.merge(part[2])
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
    write = raw.write if raw is not None else (lambda data: out.write(data.decode("utf-8")))
    i, offset, length = order[0]
    with open(parts[i][0], "rb") as handle:  # the first line has no separator before it
        handle.seek(offset)
        write(FIRST_PAYMENT.encode("utf-8") + handle.read(length)[len(PAYMENT_SEPARATOR):])
    target = _regular_file(raw)
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
    handles = [open(part[0], "rb") for part in parts]
    try:
        for i, offset, length in order[1:]:
            handles[i].seek(offset)
            write(handles[i].read(length))
    finally:
        for handle in handles:
            handle.close()
    if raw is not None:
        raw.flush()
    out.write(PAYMENTS_END)


def _place(job: tuple) -> bool:
    """Copy a part's segments to their places in the output: (offset in the part, length, place).
    False, having copied nothing, when the kernel cannot copy between these two files."""
    path, target, placed = job
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
        import fcntl  # where there is copy_file_range, there is fcntl

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
