"""Hostile text in a contract or in its data is only ever text: nothing is executed.

pbrlang compiles a contract to Python functions (pbrlang/compiler.py) whose
source is made only of the compiler's own text: local names, numbers it
computed, operators. Every text, name and amount from the contract reaches the
code as a constant, never as source. These tests put hostile text (Python that would
create a marker file or kill the process, template syntax, quotes,
backslashes, newlines, NUL) into every place a contract has text and names:
the contract's name, enumeration values written as texts, texts in
expressions and reports, comments, every kind of name (where the grammar
allows only plain names, it must refuse the rest cleanly); and into the data:
CSV cells and headers, JSON Lines values and keys, and in-memory records,
values and keys. Each run must give a clean pbrlang error or an ordinary
statement that carries the hostile text back unchanged, and the marker file
must never appear. The code compiled for each hostile contract is checked to
hold no text at all and only names the compiler makes. Finally, the package
source is scanned: only the compiler's build step calls Python's compile and
exec (on that generated code), and nothing calls eval or __import__.
"""

from __future__ import annotations

import ast
import keyword
import tokenize
import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import pbrlang
from pbrlang import compiler, runtime
from conftest import ROOT

PACKAGE = ROOT / "pbrlang"
MARKER = Path("/tmp/pwned")

HOSTILE = [
    "__import__('os').system('touch /tmp/pwned')",
    '"); import os; os._exit(3) #',
    "'); import os; os._exit(3) #",
    "{{7*7}}",
    "${7*7}",
    "%(x)s %s %n",
    "{0.__class__.__mro__}",
    "\\",
    "\\\\n\\x00\\u0000",
    '"',
    "'",
    "`",
    "`count`",
    "# not a comment",
    "\n",
    "a\nlet x = 1",
    "\r\n",
    "\x00",
    "a\x00b",
    "=cmd|' /C calc'!A0",
    "$(touch /tmp/pwned)",
    "; rm -rf / ;",
    "<script>alert(1)</script>",
    "'; DROP TABLE participants; --",
    "lambda: __import__('os')._exit(3)",
    "exec(\"import os; os._exit(3)\")",
    "£1,000.00",
    "2014-02-30",
    "none",
    "é中🙂\u202e",
    " ",
    "",
]

# Names that mean something to Python (and to the compiler's closures), but are plain names here.
PYTHON_NAMES = ["__import__", "eval", "exec", "compile", "os", "__class__", "__builtins__", "__dict__", "self",
                "fr", "lambda", "None", "True", "print", "globals", "_", "__init__", "sys"]


@pytest.fixture(autouse=True)
def nothing_is_executed(tmp_path, monkeypatch):
    """Every test here runs in a scratch folder and ends with no marker file created."""
    monkeypatch.chdir(tmp_path)
    existed = MARKER.exists()
    yield
    assert existed or not MARKER.exists(), "a hostile payload was executed: /tmp/pwned was created"
    assert not (tmp_path / "pwned").exists()


def _id(value) -> str:
    return repr(value)[:40]


# ---- a contract with text in every place text goes -------------------------------------------------

CONTRACT = '''# COMMENT
contract "NAME"
funder DWP
enum kind: "KIND", plain
table people:
  id: text key
  note: text
  kind: kind
  joined_on: date
subject person: people
let label = "LABEL"
outcome joined:
  when kind = "KIND"
  when note != "LABEL" or note = "LABEL"
  achieved on joined_on
  pays £100.00
  reports label, note_seen = note, said = "LABEL"
'''


def contract_text(value: str, where: str) -> str:
    """The contract with the hostile value in one place (the others keep a plain word)."""
    slots = {"COMMENT": "comment", "NAME": "injection", "KIND": "special", "LABEL": "plain label"}
    slots[where] = value
    text = CONTRACT
    for slot, v in slots.items():
        text = text.replace(slot, v)
    return text


def load_or_error(text: str):
    try:
        return pbrlang.loads(text)
    except pbrlang.ContractError as err:
        assert all(d.span.line >= 1 and d.span.column >= 1 for d in err.diagnostics)
        err.render()
        return err


@pytest.mark.parametrize("value", HOSTILE, ids=_id)
@pytest.mark.parametrize("where", ["COMMENT", "NAME", "KIND", "LABEL"])
def test_hostile_text_in_the_contract(value, where):
    result = load_or_error(contract_text(value, where))
    if isinstance(result, pbrlang.ContractError):
        # Only a text that cannot be written there is refused: a quote or a line break in a
        # text, a line break in a comment, an empty or repeated enumeration value, ...
        assert any(c in value for c in '"\n\r\x00`') or value in ("", "plain") or where in ("KIND",), result.render()
        return
    kind = value if where == "KIND" else "special"
    rows = [{"id": "P1", "note": "n", "kind": kind, "joined_on": "2020-01-01"}]
    try:
        statement = result.evaluate({"people": rows}, as_of="2021-01-01", workers=1)
    except pbrlang.DataError as err:
        # An enumeration value no data can hold (an empty text: an empty value is a missing
        # one) is accepted by the checker; the data is refused, cleanly.
        assert where == "KIND" and value == "", str(err)
        return
    out = json.loads(statement.to_json())
    assert out["contract"] == (value if where == "NAME" else "injection")
    [payment] = out["payments"]
    assert payment["amount"] == "100.00"
    label = value if where == "LABEL" else "plain label"
    assert payment["label"] == label and payment["said"] == label
    statement.to_table()
    statement.to_csv()


NAME_PLACES = {
    "funder": ("funder DWP", "funder {}", "DWP"),
    "enum": ("enum kind:", "enum {}:", "kind"),
    "enum value": ('"special", plain', '"special", {}', None),
    "table": ("table people:", "table {}:", "people"),
    "field": ("  note: text", "  {}: text", "note"),
    "subject": ("subject person:", "subject {}:", "person"),
    "definition": ("let label =", "let {} =", "label"),
    "outcome": ("outcome joined:", "outcome {}:", "joined"),
    "report": ("note_seen = note", "{} = note", None),
}


def name_text(value: str, place: str) -> str:
    old, new, uses = NAME_PLACES[place]
    text = contract_text("special", "KIND").replace(old, new.format(value))
    if uses is not None:  # rename every use as well, so that only the name itself is new
        text = re.sub(rf"(?<![\w`]){uses}(?![\w`])", value.replace("\\", "\\\\"), text) if place != "enum" else text
    return text


CODE = HOSTILE[:3] + ["lambda: __import__('os')._exit(3)", "exec(\"import os; os._exit(3)\")"]


@pytest.mark.parametrize("value", [v for v in HOSTILE if v.strip()], ids=_id)
@pytest.mark.parametrize("place", list(NAME_PLACES))
def test_hostile_text_where_a_name_goes(value, place):
    """Refused (the grammar has no such name), or, where the text happens to read as contract
    syntax (`a` then a new line `let x = 1`), an ordinary contract."""
    result = load_or_error(name_text(value, place))
    if value in CODE:
        assert isinstance(result, pbrlang.ContractError), f"{place}: {value!r} was accepted"
    if isinstance(result, pbrlang.Contract):
        try:
            result.evaluate({"people": _rows("P1")}, as_of="2021-01-01", workers=1).to_json()
        except pbrlang.PbrError:
            pass


@pytest.mark.parametrize("value", PYTHON_NAMES)
@pytest.mark.parametrize("place", [p for p in NAME_PLACES if p not in ("enum", "enum value")])
def test_python_words_are_plain_names(value, place):
    text = name_text(value, place)
    contract = pbrlang.loads(text)
    rows = [{"id": "P1", "kind": "special", "joined_on": "2020-01-01",
             (value if place == "field" else "note"): "n"}]
    table = value if place == "table" else "people"
    statement = contract.evaluate({table: rows}, as_of="2021-01-01", workers=1)
    assert statement.total == 100
    out = json.loads(statement.to_json())
    if place == "funder":
        assert list(out["by_funder"]) == [value]
    if place == "outcome":
        assert out["payments"][0]["outcome"] == value
    if place == "report":
        assert out["payments"][0][value] == "n"


def test_backquoted_python_words_and_keywords():
    text = contract_text("special", "KIND").replace("  note: text", "  note: text\n  `lambda`: text\n  `count`: integer").replace(
        "note_seen = note", "note_seen = `lambda`, counted = `count`").replace(
        'when note != "LABEL" or note = "LABEL"', "when `count` >= 0")
    contract = pbrlang.loads(text)
    rows = [{"id": "P1", "note": "n", "kind": "special", "joined_on": "2020-01-01", "lambda": "__import__('os')",
             "count": 3}]
    out = json.loads(contract.evaluate({"people": rows}, as_of="2021-01-01", workers=1).to_json())
    assert out["payments"][0]["note_seen"] == "__import__('os')" and out["payments"][0]["counted"] == 3


# ---- hostile data --------------------------------------------------------------------------------

DATA_CONTRACT = contract_text("special", "KIND")


def _rows(value: str) -> list[dict]:
    return [
        {"id": value, "note": value, "kind": "special", "joined_on": "2020-01-01"},
        {"id": "P2", "note": value, "kind": "plain", "joined_on": "2020-02-01"},
    ]


def _statement_carries(statement, value: str) -> None:
    out = json.loads(statement.to_json())
    [payment] = out["payments"]
    assert payment["subject"] == value and payment["note_seen"] == value
    [row] = list(csv.DictReader(io.StringIO(statement.to_csv())))
    # The CSV form guards a cell a spreadsheet would run as a formula with a leading quote.
    assert row["subject"] == ("'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value)
    statement.to_table()


@pytest.mark.parametrize("value", [v for v in HOSTILE if v], ids=_id)
def test_hostile_values_in_memory(value):
    contract = pbrlang.loads(DATA_CONTRACT)
    statement = contract.evaluate({"people": _rows(value)}, as_of="2021-01-01", workers=1)
    _statement_carries(statement, value)


@pytest.mark.parametrize("value", [v for v in HOSTILE if v], ids=_id)
def test_hostile_values_in_csv(value, tmp_path):
    out = io.StringIO()
    writer = csv.DictWriter(out, ["id", "note", "kind", "joined_on"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(_rows(value))
    (tmp_path / "people.csv").write_text(out.getvalue(), encoding="utf-8", newline="")
    contract = pbrlang.loads(DATA_CONTRACT)
    try:
        statement = contract.evaluate([tmp_path], as_of="2021-01-01", workers=1)
    except pbrlang.DataError as err:
        # A cell the CSV reader cannot take back as written (a lone carriage return, a
        # space-only key ...) is a located data error, never a wrong value.
        assert "people.csv" in str(err)
        return
    _statement_carries(statement, value)


@pytest.mark.parametrize("value", [v for v in HOSTILE if v], ids=_id)
def test_hostile_values_in_json_lines(value, tmp_path):
    lines = "\n".join(json.dumps(r) for r in _rows(value)) + "\n"
    (tmp_path / "people.jsonl").write_text(lines, encoding="utf-8")
    statement = pbrlang.loads(DATA_CONTRACT).evaluate([tmp_path], as_of="2021-01-01", workers=1)
    _statement_carries(statement, value)


@pytest.mark.parametrize("value", [v for v in HOSTILE if v], ids=_id)
def test_hostile_keys_and_enumeration_values_in_data(value, tmp_path):
    contract = pbrlang.loads(DATA_CONTRACT)
    # As keys: extra fields, ignored with a warning that names them.
    rows = [dict(r, **{value: value, "__class__": value}) for r in _rows("P1")]
    statement = contract.evaluate({"people": rows}, as_of="2021-01-01", workers=1)
    assert statement.total == 100
    (tmp_path / "people.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    assert contract.evaluate([tmp_path], as_of="2021-01-01", workers=1).total == 100
    # As an enumeration value: not a value of `kind`, so a located data error.
    bad = [dict(_rows("P1")[0], kind=value)]
    with pytest.raises(pbrlang.DataError) as info:
        contract.evaluate({"people": bad}, as_of="2021-01-01", workers=1)
    assert info.value.problems[0].field == "kind"
    # As a date or a key that is not text.
    for field in ("joined_on",):
        with pytest.raises(pbrlang.DataError):
            contract.evaluate({"people": [dict(_rows("P1")[0], **{field: value})]}, as_of="2021-01-01", workers=1)


def test_hostile_csv_header(tmp_path):
    header = ["id", "note", "kind", "joined_on", "__import__('os').system('touch /tmp/pwned')", "=1+1", "\x00"]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, ["P1", "n", "special", "2020-01-01", "x", "y", "z"]])
    (tmp_path / "people.csv").write_text(out.getvalue(), encoding="utf-8")
    statement = pbrlang.loads(DATA_CONTRACT).evaluate([tmp_path], as_of="2021-01-01", workers=1)
    assert statement.total == 100


def test_hostile_in_memory_keys_that_are_not_text():
    rows = [dict(r) for r in _rows("P1")]
    rows[0][1] = "x"
    rows[0][("a", "b")] = "y"
    rows[0][None] = "z"
    statement = pbrlang.loads(DATA_CONTRACT).evaluate({"people": rows}, as_of="2021-01-01", workers=1)
    assert statement.total == 100


def test_objects_as_values_are_refused_not_guessed():
    for value in (object(), b"2020-01-01", ["2020-01-01"], {"date": "2020-01-01"}, 2020.0):
        rows = [dict(_rows("P1")[0], joined_on=value)]
        with pytest.raises(pbrlang.DataError):
            pbrlang.loads(DATA_CONTRACT).evaluate({"people": rows}, as_of="2021-01-01", workers=1)


# ---- the command line ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["__import__('os').system('touch /tmp/pwned')", '"); import os; os._exit(3) #',
                                   "{{7*7}}", "\\", "$(touch /tmp/pwned)"], ids=_id)
def test_pbr_eval_with_hostile_contract_and_data(value, tmp_path):
    contract = tmp_path / "contract.pbr"
    safe = value.replace('"', "'")  # a text cannot hold a double quote
    contract.write_text(contract_text(safe, "NAME").replace("# comment", "# " + value), encoding="utf-8")
    data = tmp_path / "data"
    data.mkdir()
    out = io.StringIO()
    writer = csv.DictWriter(out, ["id", "note", "kind", "joined_on"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(_rows(value))
    (data / "people.csv").write_text(out.getvalue(), encoding="utf-8")
    for fmt in ("json", "csv", "table"):
        run = subprocess.run([sys.executable, "-m", "pbrlang.cli", "eval", str(contract), "--data", str(data),
                              "--as-of", "2021-01-01", "--format", fmt], capture_output=True, text=True,
                             cwd=tmp_path, timeout=120)
        assert run.returncode == 0, run.stderr
        assert "Traceback" not in run.stderr
        if fmt == "json":
            assert json.loads(run.stdout)["payments"][0]["subject"] == value


# ---- the package never runs text as code ---------------------------------------------------------

# Calls of Python's own eval, exec, compile and __import__; `re.compile`, `self.compile`,
# `compile_program` and `def compile(` are other things that share the word.
_CALL = re.compile(r"(?<![\w.])(?<!def )(eval|exec|compile|__import__)\s*\(")


def _sources():
    return sorted(PACKAGE.rglob("*.py"))


# The one place code is compiled: the compiler's build step, on the source it generated; and the
# one place it is run: runtime.define, defining the generated functions (the compiler's own, or the
# same bytecode kept by the cache, in a file only this user can write).
_ALLOWED = {("pbrlang/compiler.py", 'self.code = compile(source, GENERATED, "exec")'),
            ("pbrlang/runtime.py", "exec(code, namespace)")}


def _allowed(path, line: str) -> bool:
    code = line.split("#", 1)[0].strip()
    return (str(path.relative_to(ROOT)), code) in _ALLOWED


# The two readers of a serialised format, never of a file a user gives: the parallel statement
# reads back, with marshal, the payment rows its own child process wrote into a temporary folder
# only this user can open (what multiprocessing does with pickle for every result); and the cache
# reads back, with pickle, a checked contract pbrlang kept in the user's own cache folder, from a
# file this user owns and no one else may write, as Lark does with its grammar in the same folder
# (and, with marshal, a compiled contract's bytecode from such a file: pickle can run code anyway).
_SERIALISED = {("pbrlang/parallel.py", "marshal"), ("pbrlang/cache.py", "pickle"), ("pbrlang/cache.py", "marshal")}


def test_the_package_source_never_calls_eval_exec_or_compile():
    found, allowed = [], []
    for path in _sources():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            code = line.split("#", 1)[0]
            if _CALL.search(code):
                (allowed if _allowed(path, line) else found).append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)
    assert len(allowed) == 2, allowed


def test_the_scan_would_find_them():
    assert _CALL.search("x = eval(text)") and _CALL.search("exec (code)") and _CALL.search("f(compile(s, 'f', 'exec'))")
    assert _CALL.search("__import__('os')")
    assert not _CALL.search("re.compile(r'x')") and not _CALL.search("compile_program(p)")
    assert not _CALL.search("def compile(self):") and not _CALL.search("self.compile()")
    assert not _CALL.search("evaluate(x)") and not _CALL.search("executor(x)")


_FORBIDDEN = {"eval", "exec", "compile", "__import__", "execfile", "breakpoint"}


def test_no_name_of_eval_exec_or_compile_is_even_referred_to():
    """The same, on the syntax tree: no use of the builtins at all (not only calls), no reaching
    them through `builtins`, `__builtins__` or getattr, and no module that runs or loads code."""
    found = []
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Name) and node.id in _FORBIDDEN:
                line = path.read_text(encoding="utf-8").splitlines()[node.lineno - 1]
                if not (node.id in ("compile", "exec") and _allowed(path, line)):
                    found.append(f"{where}: {node.id}")
            elif isinstance(node, ast.Attribute) and node.attr in _FORBIDDEN and isinstance(node.value, ast.Name) \
                    and node.value.id in ("builtins", "__builtins__"):
                found.append(f"{where}: {node.value.id}.{node.attr}")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr" \
                    and len(node.args) > 1 and isinstance(node.args[1], ast.Constant) and node.args[1].value in _FORBIDDEN:
                found.append(f"{where}: getattr(..., {node.args[1].value!r})")
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if any(n in ("builtins", "code", "codeop", "pickle", "marshal", "subprocess") for n in names) \
                        and not (len(names) == 2 and (str(path.relative_to(ROOT)), names[0]) in _SERIALISED):
                    found.append(f"{where}: imports {names}")
    assert not found, "\n".join(found)


# ---- the code compiled for a contract holds none of its text -------------------------------------

_GENERATED_NAME = re.compile(r"(v|r|k|f|g|a|d|s|t|x|p|w|j)[0-9]*|fr|s_|asof|ix|rows")
_RUNTIME_NAMES = set(runtime.RUNTIME) | {"len", "bool", "max", "min", "abs", "set", "None", "True",
                                          "False", "sort", "append", "extend", "add", "get", "of",
                                          "first_day_lasting_days", "first_day_lasting_months", "key", "default",
                                          "counted_from", "starting_from", "not_counting", "run_containing", "range"}


def _generated_names_only(source: str) -> list[str]:
    """Tokens of generated code that are neither the compiler's own names nor numbers and operators."""
    odd = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.STRING:
            odd.append(tok.string)
        elif tok.type == tokenize.NAME and not (keyword.iskeyword(tok.string) or tok.string in _RUNTIME_NAMES
                                                or _GENERATED_NAME.fullmatch(tok.string)):
            odd.append(tok.string)
        elif tok.type in (tokenize.ERRORTOKEN, tokenize.COMMENT):
            odd.append(tok.string)
    return odd


def _contracts_with_hostile_text():
    for value in HOSTILE:
        for where in ("COMMENT", "NAME", "KIND", "LABEL"):
            yield contract_text(value, where)
        for place in NAME_PLACES:
            if value.strip():
                yield name_text(value, place)


def test_generated_code_holds_no_contract_text():
    compiled = 0
    for text in _contracts_with_hostile_text():
        result = load_or_error(text)
        if isinstance(result, pbrlang.ContractError):
            continue
        for build in (result.compiled, compiler.compile_program(result.program, trace=True)):
            assert build.source
            assert _generated_names_only(build.source) == [], build.source
        compiled += 1
    assert compiled > 20  # most hostile texts are ordinary texts and names, and compile


def test_the_generated_code_check_would_find_text():
    assert _generated_names_only("def f0(fr):\n    return 'x'\n") == ["'x'"]
    assert _generated_names_only("def f0(fr):\n    return os\n") == ["os"]
    assert _generated_names_only("def f0(fr):\n    v1 = fr[0]\n    return v1\n") == []
