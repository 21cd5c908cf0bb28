"""The `pbr` command: check, evaluate and explain contracts from a terminal."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import os
import stat
import sys
import tempfile

from .errors import ContractError, PbrError, UsageError


def _date(text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pbr", description="Check and evaluate payment-by-results contracts.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("check", help="check a contract; exit 0 when it is valid")
    c.add_argument("contract", help="the contract file (.pbr)")

    e = sub.add_parser("eval", help="evaluate a contract against data at an as-of date")
    e.add_argument("contract", help="the contract file (.pbr)")
    e.add_argument("--data", action="append", required=True, metavar="PATH",
                   help="a .csv or .jsonl file, or a folder of them (table name = file stem); repeatable")
    e.add_argument("--as-of", required=True, type=_date, metavar="YYYY-MM-DD", help="the evaluation date")
    e.add_argument("--format", choices=("table", "json", "csv"), default="table", help="output form (default table)")
    e.add_argument("--output", metavar="FILE", help="write to FILE instead of standard output")
    e.add_argument("--paid", metavar="STATEMENT",
                   help="the previous run's statement (json): add what each payment paid before and what is due "
                        "now, and list clawbacks")
    e.add_argument("--exclude-invalid", action="store_true",
                   help="leave out subjects whose rows are broken (listed in the statement) instead of stopping")
    e.add_argument("--workers", type=int, metavar="N",
                   help="processes to evaluate with (default: 2 on a 2-core machine when there are 20,000+ subjects, "
                        "or 5,000+ for a json statement read from csv files)")
    e.add_argument("--explain", action="store_true",
                   help="add to each payment its reason: the rule's location and the evidence rows (json)")

    x = sub.add_parser("explain", help="explain one subject's outcomes: paid, cut, pending or not achieved, and why")
    x.add_argument("contract", help="the contract file (.pbr)")
    x.add_argument("--data", action="append", required=True, metavar="PATH",
                   help="a .csv or .jsonl file, or a folder of them; repeatable")
    x.add_argument("--as-of", required=True, type=_date, metavar="YYYY-MM-DD", help="the evaluation date")
    x.add_argument("--subject", required=True, metavar="ID", help="the subject's id (e.g. a participant id)")
    x.add_argument("--format", choices=("text", "json"), default="text", help="output form (default text)")
    x.add_argument("--output", metavar="FILE", help="write to FILE instead of standard output")
    return p


def _write(text: str, output: str | None) -> None:
    with _opened(output) as out:
        out.write(text)


def _stream(write, output: str | None) -> None:
    with _opened(output) as out:
        write(out)


@contextlib.contextmanager
def _opened(output: str | None):
    """The output as a text stream: standard output, or the file.

    A regular file is written under a temporary name beside it and put in its place only when
    complete, so that an error (an evaluation error, a full disk, Ctrl-C) leaves no half-written
    statement and an earlier file as it was. When the folder takes no new file but the file
    there may be written, the statement is made in the system's temporary folder and copied over
    the file once complete (an error before then still leaves the file as it was). A device or a
    pipe (`/dev/stdout`) is written as it is."""
    if not output:
        yield sys.stdout
        return
    try:
        existing = os.stat(output)
    except OSError:
        existing = None
    if existing is not None and not stat.S_ISREG(existing.st_mode):  # a device or a pipe
        try:
            out = open(output, "w", encoding="utf-8", newline="")
        except OSError as err:
            raise _unwritable(output, err) from None
        with out:
            yield out
        return
    target = os.path.realpath(output)  # a link is followed, not replaced by a file
    folder, name = os.path.split(target)
    copied = False  # made elsewhere, then copied over the file
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".partial", dir=folder)
    except OSError as err:
        if existing is None or not os.access(target, os.W_OK):
            raise _unwritable(output, err) from None
        try:
            handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".partial")
        except OSError:
            raise _unwritable(output, err) from None
        copied = True
    try:
        # The permissions `open` would have given the file (or that it had).
        os.fchmod(handle, stat.S_IMODE(existing.st_mode) if existing is not None else 0o666 & ~_umask())
        with open(handle, "w", encoding="utf-8", newline="") as out:
            yield out
        if copied:
            import shutil

            try:
                with open(temporary, "rb") as made, open(target, "wb") as place:
                    shutil.copyfileobj(made, place)
            except OSError as err:
                raise _unwritable(output, err) from None
            os.unlink(temporary)
        else:
            os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _unwritable(output: str, err: OSError) -> UsageError:
    return UsageError(f"{output}: cannot be written ({err.strerror})")


def _umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it
    os.umask(mask)
    return mask


def _warnings(contract) -> None:
    for w in contract.warnings:
        print(w.render(), file=sys.stderr)


def run(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        from .contract import as_of_date, check_file, load

        if args.command == "check":
            # Parse and check only: compiling (and the evaluator's modules) would only slow the answer.
            program = check_file(args.contract)
            _warnings(program)
            outcomes = ", ".join(o.name for o in program.outcomes)
            print(f"{args.contract}: ok ({program.name}: {len(program.outcomes)} outcomes: {outcomes})")
            return 0
        contract = load(args.contract)
        _warnings(contract)
        if getattr(args, "explain", False) and args.format != "json":
            raise UsageError("--explain adds a reason to each payment of the json statement: use --format json")
        exclude = getattr(args, "exclude_invalid", False)
        # The JSON statement as it is made, not held in memory: nothing to add to it afterwards.
        streamed = args.command == "eval" and args.format == "json" and not args.explain and not args.paid \
            and not exclude
        if streamed:
            # Large data: each process loads and evaluates its own range of subjects.
            from . import parallel

            warnings = parallel.write_json_split(contract.compiled, args.data, as_of_date(args.as_of),
                                                 lambda: _opened(args.output), args.workers)
            if warnings is not None:
                for w in warnings:
                    print(f"warning: {w}", file=sys.stderr)
                return 0
        dataset = contract.load_data(args.data, exclude)
        for w in dataset.warnings:
            print(f"warning: {w}", file=sys.stderr)
        if args.command == "explain":
            from . import explain

            found = explain.explain(contract, dataset, args.as_of, args.subject)
            _write(found.to_json() if args.format == "json" else found.to_text(), args.output)
            return 0
        if streamed:
            _stream(lambda out: contract.write_json(dataset, args.as_of, out, args.workers), args.output)
            return 0
        statement = contract.evaluate(dataset, args.as_of, args.workers, exclude)
        if args.paid:
            from . import ledger

            previous = ledger.read(args.paid)
            if previous.contract != contract.name:
                raise UsageError(f"{args.paid}: is a statement for `{previous.contract}`, not `{contract.name}`")
            statement = statement.evolve(ledger=previous)
        if args.explain:
            from . import explain

            statement = explain.reasons(contract, dataset, args.as_of, statement)
        if args.format == "table":
            _write(statement.to_table(), args.output)
            return 0
        _stream(statement.write_json if args.format == "json" else statement.write_csv, args.output)
        return 0
    except ContractError as err:
        print(err.render(), file=sys.stderr)
        return 1
    except PbrError as err:
        print(str(err), file=sys.stderr)
        return 1
    except RecursionError:
        print("error: the contract or data is nested too deeply to evaluate", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except OSError as err:
        where = f"{err.filename}: " if err.filename else ""
        print(f"error: {where}{err.strerror or err}", file=sys.stderr)
        return 1
    except MemoryError:
        print("error: out of memory", file=sys.stderr)
        return 1
    except Exception as err:  # a bug in pbrlang: say so plainly (PBR_DEBUG=1 shows the traceback)
        if os.environ.get("PBR_DEBUG") == "1":
            raise
        print(f"internal error in pbrlang (please report it): {type(err).__name__}: {err}", file=sys.stderr)
        return 1


def main() -> None:
    # A command is one batch run that makes many small objects and no garbage cycles to speak of
    # (the pipeline's classes and tables hold none): the cycle collector would only walk them,
    # again and again as they grow (about 10 ms of a 10,000-participant `pbr eval`, mostly while
    # the modules' classes are made). An embedding program keeps its collector: run() leaves it.
    gc.disable()
    code = run()
    # The process ends here, its statement written and its files closed. Python's finalization
    # would walk every object left with the cycle collector and free them one by one (the modules,
    # Lark's grammar, the syntax tree): 4-5 ms of a 10,000-participant `pbr eval`, 20-30 ms of a
    # `pbr check`. The kernel frees them at once. pbr leaves no threads, atexit handlers or
    # temporary files behind, so only the standard streams need flushing, and a failure to flush
    # is reported as any other. A profiler or a coverage tool watching pbr writes what it found
    # as Python ends: then Python ends as usual.
    if sys.gettrace() is not None or sys.getprofile() is not None:
        sys.exit(code)
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except OSError as err:  # a closed pipe (`pbr ... | head`), a full disk
        code = 1
        with contextlib.suppress(OSError):
            print(f"error: {err.strerror or err}", file=sys.stderr)
    try:
        if sys.stderr is not None:
            sys.stderr.flush()
    except OSError:
        code = code or 1
    os._exit(code)


if __name__ == "__main__":
    main()
