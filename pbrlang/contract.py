"""The facade: load a contract once, evaluate it against tables as often as needed."""

from __future__ import annotations

import datetime
from pathlib import Path

from .errors import ContractSyntaxError, Diagnostic, UsageError
from .source import Source, Span

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: `typing` is not imported on the evaluator's path
    from typing import Any, Iterable, Mapping

    from . import data
    from .program import Program
    from .runtime import CompiledContract
    from .statement import Statement


class Contract:
    """A checked, compiled contract."""

    def __init__(self, program: Program):
        from . import compiler  # here, so that `pbr check` (which never compiles) need not import it

        self._program = program
        self._text: tuple[str, str] | None = None
        self.compiled = compiler.compile_program(program)

    @classmethod
    def _read_back(cls, compiled: CompiledContract, text: str, name: str) -> "Contract":
        """A contract from its compiled form as the cache kept it; its checked program is read
        only if asked for (`program`)."""
        contract = cls.__new__(cls)
        contract._program = None
        contract._text = (text, name)
        contract.compiled = compiled
        return contract

    @property
    def program(self) -> Program:
        """The checked program, with its expressions (the compiled contract keeps none)."""
        if self._program is None:
            from . import cache

            self._program = cache.checked(*self._text, _checked)
        return self._program

    @property
    def name(self) -> str:
        return self.compiled.program.name

    @property
    def warnings(self):
        return self.compiled.program.warnings

    def load_data(self, tables: Mapping[str, Any] | Iterable[str | Path] | str | Path,
                  exclude_invalid: bool = False) -> "data.Dataset":
        """Read and check tables, by their types and the contract's `valid when` rules (those
        that read as_of are applied when it is known, by `evaluate`). With `exclude_invalid`, a
        broken row leaves its subject out (listed in the statement) instead of rejecting the run."""
        from . import data, evaluator  # the evaluator's half is imported only when data is read

        if isinstance(tables, (str, Path)):
            tables = [tables]
        dataset = data.load(self.compiled.program, tables, exclude_invalid)
        evaluator.check_rows(self.compiled, dataset, None, exclude_invalid)
        return dataset

    def evaluate(self, tables, as_of: datetime.date | str, workers: int | None = None,
                 exclude_invalid: bool = False) -> Statement:
        """Evaluate against tables: paths (files or folders) or {table name: iterable of dicts}.

        `workers` processes share the first pass (default: both cores for large data).
        With `exclude_invalid`, subjects whose rows are broken or cannot be evaluated are
        left out and listed in the statement, instead of rejecting the run."""
        from . import data, evaluator

        as_of = as_of_date(as_of)
        dataset = tables if isinstance(tables, data.Dataset) else self.load_data(tables, exclude_invalid)
        return evaluator.evaluate(self.compiled, dataset, as_of, workers, exclude_invalid)

    def write_json(self, tables, as_of: datetime.date | str, out, workers: int | None = None) -> None:
        """Evaluate and write the statement's JSON to `out`, streaming; same bytes as evaluate().to_json()."""
        from . import data, evaluator

        as_of = as_of_date(as_of)
        dataset = tables if isinstance(tables, data.Dataset) else self.load_data(tables)
        evaluator.write_json(self.compiled, dataset, as_of, out, workers)


def as_of_date(value: datetime.date | str) -> datetime.date:
    """An as-of date given as a date or as text YYYY-MM-DD (as the command line gives it)."""
    if isinstance(value, datetime.datetime):
        raise UsageError("as_of is a date, not a date and time")
    if isinstance(value, datetime.date):
        return value
    try:
        return datetime.date.fromisoformat(str(value))
    except ValueError:
        raise UsageError(f"as-of date {value!r} is not a date YYYY-MM-DD") from None


def loads(text: str, name: str = "<contract>") -> Contract:
    """Parse, check and compile contract text."""
    return Contract(_checked(text, name))


def load(path: str | Path) -> Contract:
    """Read, parse, check and compile a contract file. A contract compiled before, unchanged, by
    this same pbrlang is read back compiled from the user's cache folder (see pbrlang.cache)."""
    from . import cache

    made: list[Contract] = []

    def compiled(text: str, name: str) -> CompiledContract:
        made.append(Contract(cache.checked(text, name, _checked)))
        return made[0].compiled

    text, name = _read(path), str(Path(path))
    kept = cache.compiled(text, name, compiled)
    return made[0] if made else Contract._read_back(kept, text, name)


def check_file(path: str | Path) -> Program:
    """Read, parse and check a contract file, without compiling it: all `pbr check` needs. A
    contract checked before, unchanged, by this same pbrlang is read back from the user's
    cache folder instead (pbrlang.cache)."""
    from . import cache

    return cache.checked(_read(path), str(Path(path)), _checked)


def _checked(text: str, name: str) -> Program:
    from . import checker, parser

    return checker.check(parser.parse(text, name))


def _read(path: str | Path) -> str:
    from .limits import MAX_CONTRACT_BYTES

    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONTRACT_BYTES + 1)  # never more: the file may never end (/dev/zero)
        if len(raw) > MAX_CONTRACT_BYTES:
            source = Source(str(path), "")
            raise ContractSyntaxError([Diagnostic("E005", f"the contract is larger than {MAX_CONTRACT_BYTES:,} bytes",
                                                  Span.at(source, 1, 1), hint="a contract is far smaller: is "
                                                  "this the right file?")])
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such contract file") from None
    except UnicodeDecodeError as err:
        raise UsageError(f"{path}: is not UTF-8 text ({err.reason} at byte {err.start})") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a folder, not a contract file") from None
    except OSError as err:
        raise UsageError(f"{path}: cannot be read ({err.strerror})") from None
    return text
