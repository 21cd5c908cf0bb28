"""Contracts kept between runs: `pbr` need not parse, check and compile an unchanged contract again.

Parsing and checking a contract in a new process (Lark and the checker imported, the grammar's
tables read, the text parsed, every rule checked) costs about 30 ms of a `pbr eval`. Two things
are kept in the user's cache folder, where Lark's analysis of the grammar is kept:

- the checked program (`checked`), for `pbr check` and `pbr explain`;
- the compiled contract (`compiled`), for evaluating: its generated code as bytecode, the
  constants that code reads, and the program without its expressions. It is read back without
  importing the syntax tree, the checker, the compiler or attrs (about 30 ms of imports).

Each is kept beside what it was made from: the contract's name and text, and a record of
pbrlang's own code (each module's and the grammar's size and time of change, as Python's own
bytecode cache records its sources) and of Python, Lark and attrs. It is used only when all of
these are the same, and they are compared before anything else is read. Otherwise the contract is
parsed, checked and compiled as usual, and kept again. A contract with errors is never kept: its
errors are found afresh each time.

Nothing here is needed: a folder that cannot be written, a file that cannot be read or was made by
other code, is passed over and the contract checked as if there were no cache.
"""

from __future__ import annotations

import functools
import os
import sys
import zlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

FORMAT = 2  # of the cache files: change it when what they hold changes
KEEP = 100  # files kept at most, checked and compiled (the oldest go first)
_PACKAGE = os.path.dirname(os.path.realpath(__file__))


def folder() -> str | None:
    """pbrlang's folder in the user's cache folder, made if need be; None where there is none
    that this user can write."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    where = os.path.join(base, "pbrlang")
    if not os.path.isabs(where):  # no home folder
        return None
    try:
        os.makedirs(where, mode=0o700, exist_ok=True)
    except OSError:
        return None
    if not os.access(where, os.W_OK):
        return None
    return where


def grammar_file() -> str | None:
    """The grammar's file: inside the package (a wheel), or grammar/pbr.lark in a checkout."""
    for path in (os.path.join(_PACKAGE, "grammar", "pbr.lark"),
                 os.path.join(os.path.dirname(_PACKAGE), "grammar", "pbr.lark")):
        if os.path.isfile(path):
            return path
    return None


def checked(text: str, name: str, check: Callable[[str, str], object]):
    """The checked program of contract `text` reported under `name`: from the cache when it was
    kept there by this same code, else `check(text, name)`, kept for next time."""
    return _kept("contract", text, name, check, _read, _write)


def compiled(text: str, name: str, make: Callable[[str, str], object]):
    """The compiled contract (pbrlang.runtime.CompiledContract) of contract `text` reported under
    `name`: from the cache when it was kept there by this same code, read back without the syntax
    tree, the checker or the compiler; else `make(text, name)`, kept for next time."""
    return _kept("compiled", text, name, make, _read_compiled, _write_compiled)


def _kept(kind: str, text: str, name: str, make, read, write):
    where = folder()
    key = _key(text, name) if where is not None else None
    if key is None:
        return make(text, name)
    # One file for each contract file's name and each pbrlang (two installs side by side, each
    # running the same file, would otherwise take turns replacing the other's and never find their own).
    path = os.path.join(where, f"{kind}-{_crc(name)}-{_crc(repr(key[1]))}.pickle")
    kept = read(path, key)
    if kept is None:
        kept = make(text, name)
        write(path, key, kept)
    return kept


def _crc(text: str) -> str:
    return f"{zlib.crc32(text.encode('utf-8', 'surrogatepass')):08x}"


def _key(text: str, name: str) -> tuple | None:
    code = _code()
    return None if code is None else (FORMAT, code, name, text)


@functools.cache
def _code() -> tuple | None:
    """What the checked program depends on besides the text: pbrlang's modules and grammar,
    Python, Lark and attrs (made once a process). None when one of them cannot be found
    (imported from a zip file)."""
    import importlib.util

    try:
        files = [os.path.join(_PACKAGE, entry) for entry in sorted(os.listdir(_PACKAGE)) if entry.endswith(".py")]
        files.append(grammar_file())
        for package in ("lark", "attr"):
            spec = importlib.util.find_spec(package)
            files.append(spec.origin if spec is not None else None)
        if None in files:
            return None
        stats = tuple((f, s.st_size, s.st_mtime_ns) for f in files for s in (os.stat(f),))
    except OSError:  # the package's folder cannot be read: no cache, rather than a failed run
        return None
    return sys.version, sys.implementation.cache_tag, stats


def _read(path: str, key: tuple, rest=None):
    """The program kept at `path` for `key`, or None. The key is read and compared first, so a
    program kept by other code is never unpickled; the file must be this user's own and writable
    by no one else (it is unpickled, as Lark's grammar cache is). `rest(file)` reads what follows
    the key (by default, one pickled value)."""
    import pickle

    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_mode & 0o022 or (hasattr(os, "getuid") and st.st_uid != os.getuid()):
                return None
            if pickle.load(f) != key:
                return None
            return pickle.load(f) if rest is None else rest(f)
    except Exception:  # missing, unreadable, cut short, or of another format: check the contract again
        return None


def _read_compiled(path: str, key: tuple):
    """The compiled contract kept at `path` for `key`, or None: its generated functions are defined
    again from their kept bytecode, among their constants, and the contract's references to them
    are to those (see _write_compiled)."""
    import marshal
    import pickle

    from . import runtime

    def rest(f):
        code, constants = pickle.load(f)
        namespace = dict(runtime.RUNTIME)
        namespace.update(constants)
        runtime.define(marshal.loads(code), namespace)
        contract = pickle.Unpickler(f)
        contract.persistent_load = namespace.__getitem__
        return contract.load()

    return _read(path, key, rest)


def _write(path: str, key: tuple, program, rest=None) -> None:
    """Keep the program, whole or not at all (written beside and renamed into place, so another
    process never reads half a file), and forget the oldest contracts beyond KEEP. `rest(file)`
    writes what follows the key (by default, the program pickled)."""
    import pickle
    import tempfile

    where = os.path.dirname(path)
    try:
        handle, partial = tempfile.mkstemp(prefix=".contract-", suffix=".partial", dir=where)
    except OSError:
        return
    try:
        with os.fdopen(handle, "wb") as out:
            pickle.dump(key, out, protocol=pickle.HIGHEST_PROTOCOL)
            if rest is None:
                pickle.dump(program, out, protocol=pickle.HIGHEST_PROTOCOL)
            else:
                rest(out)
        os.replace(partial, path)
    except Exception:  # a full disk, a program nested too deeply to pickle: go on without keeping it
        try:
            os.unlink(partial)
        except OSError:
            pass
        return
    _forget_oldest(where)


def _write_compiled(path: str, key: tuple, contract) -> None:
    """Keep a compiled contract: its generated code's bytecode with the constants it reads, then
    the contract, whose references to generated functions are kept as their names."""
    import marshal
    import pickle
    from types import FunctionType

    from . import runtime

    class Keeper(pickle.Pickler):
        def persistent_id(self, obj):
            if type(obj) is FunctionType and obj.__code__.co_filename == runtime.GENERATED:
                return obj.__name__
            return None

    def rest(out):
        pickle.dump((marshal.dumps(contract.code), contract.constants), out, protocol=pickle.HIGHEST_PROTOCOL)
        Keeper(out, protocol=pickle.HIGHEST_PROTOCOL).dump(contract.evolve(code=None, constants=None))

    if contract.code is not None and contract.constants is not None:
        _write(path, key, contract, rest)


def _forget_oldest(where: str) -> None:
    try:
        kept = [e for e in os.scandir(where) if e.name.endswith(".pickle")
                and (e.name.startswith("contract-") or e.name.startswith("compiled-"))]
        if len(kept) <= KEEP:
            return
        kept.sort(key=lambda e: e.stat().st_mtime_ns)
        for entry in kept[: len(kept) - KEEP]:
            os.unlink(entry.path)
    except OSError:
        pass
