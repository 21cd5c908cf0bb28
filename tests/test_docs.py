"""The documentation stays true: its examples run, its contracts check, its lists are complete.

- Every ```python block in docs/python-api.md runs without error, with the repository root as
  the working directory (each block is a complete program).
- Every ```text block in docs/cli.md that starts with a command (`$ pbr ...`) is a real excerpt:
  run from the repository root, the command's output (standard output and standard error, as a
  terminal shows them) contains the block's other lines, in order; a line `...` stands for lines
  left out.
- Every ```pbr block in docs/language.md checks with pbrlang.loads. A block whose first line
  starts with `contract` is a complete contract; any other block is a fragment, checked by being
  appended to the guide's standard header: the first ```pbr block in the file. (The same
  convention is written at the top of docs/language.md.)
- Every ```pbr block in docs/diagnostics.md is a contract with a problem: loaded under the
  name `demo.pbr`, it must fail (or load with warnings), and the ```text block right after it
  must be exactly the report: the errors, or else the warnings.
- Every diagnostic code that pbrlang/checker.py or pbrlang/parser.py can report (a string
  "E" or "W" and three digits, so every code matching "E[0-9]{3}" among them) has a section in
  docs/diagnostics.md, and every section is for a code still in use.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest

import pbrlang
from conftest import ROOT

DOCS = ROOT / "docs"
FENCE = re.compile(r"^```([A-Za-z0-9_-]*)[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def blocks(path):
    """(language, text, line) for each fenced block of a Markdown file, in order."""
    text = path.read_text(encoding="utf-8")
    return [(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(text)]


def _ids(items):
    return [f"line-{line}" for _, line in items]


# ---- docs/python-api.md -------------------------------------------------------------------

PYTHON = [(code, line) for lang, code, line in blocks(DOCS / "python-api.md") if lang == "python"]


def test_python_api_has_examples():
    assert PYTHON, "docs/python-api.md should have at least one ```python block"


@pytest.mark.parametrize("code,line", PYTHON, ids=_ids(PYTHON))
def test_python_api_block_runs(code, line):
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"docs/python-api.md:{line} failed:\n{out.stderr}"


# ---- docs/cli.md ------------------------------------------------------------------------

COMMANDS = [(code, line) for lang, code, line in blocks(DOCS / "cli.md") if lang == "text" and code.startswith("$ pbr ")]


def test_cli_has_command_examples():
    assert COMMANDS, "docs/cli.md should show commands with their output"


@pytest.mark.parametrize("code,line", COMMANDS, ids=_ids(COMMANDS))
def test_cli_excerpt_is_real_output(code, line):
    command, *shown = code.rstrip("\n").split("\n")
    args = shlex.split(command[len("$ pbr "):])
    # Unbuffered, with standard error merged in, so that lines come in the order a terminal shows.
    out = subprocess.run([sys.executable, "-u", "-m", "pbrlang.cli", *args], cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=300)
    actual = [x.rstrip() for x in out.stdout.split("\n")]
    position = 0
    for expected in (x.rstrip() for x in shown):
        if expected.strip() == "...":
            continue
        try:
            position = actual.index(expected, position) + 1
        except ValueError:
            pytest.fail(f"docs/cli.md:{line}: `{command}` no longer prints (in this order):\n{expected}")


# ---- docs/language.md ---------------------------------------------------------------------

PBR = [(code, line) for lang, code, line in blocks(DOCS / "language.md") if lang == "pbr"]


def _is_contract(code: str) -> bool:
    return code.lstrip().startswith("contract")


def test_language_guide_starts_with_the_standard_header():
    assert PBR, "docs/language.md should have ```pbr blocks"
    assert _is_contract(PBR[0][0]), "the first ```pbr block of docs/language.md is the standard header"


@pytest.mark.parametrize("code,line", PBR, ids=_ids(PBR))
def test_language_guide_block_checks(code, line):
    if _is_contract(code):
        text = code
    else:
        header = PBR[0][0]
        text = header + "\n" + code
    try:
        pbrlang.loads(text, f"<docs/language.md, block at line {line}>")
    except pbrlang.ContractError as err:
        kind = "contract" if _is_contract(code) else "fragment (after the standard header)"
        pytest.fail(f"the {kind} at docs/language.md:{line} does not check:\n{err.render()}")


# ---- docs/diagnostics.md ------------------------------------------------------------------

DIAGNOSTICS = DOCS / "diagnostics.md"


def _broken_examples():
    found = []
    items = blocks(DIAGNOSTICS)
    for i, (lang, code, line) in enumerate(items):
        if lang != "pbr":
            continue
        following = items[i + 1] if i + 1 < len(items) else None
        message = following[1] if following and following[0] == "text" else None
        found.append((code, message, line))
    return found


BROKEN = _broken_examples()


def _report(code: str) -> str:
    """What `pbr check demo.pbr` reports: every error, or else every warning."""
    try:
        contract = pbrlang.loads(code, "demo.pbr")
    except pbrlang.ContractError as err:
        return err.render()
    return "\n".join(w.render() for w in contract.warnings)


@pytest.mark.parametrize("code,message,line", BROKEN, ids=[f"line-{x[2]}" for x in BROKEN])
def test_diagnostics_example_gives_the_message_shown(code, message, line):
    assert message is not None, f"docs/diagnostics.md:{line}: a ```pbr example needs a ```text message after it"
    report = _report(code)
    assert report, f"docs/diagnostics.md:{line}: this contract gives no error or warning"
    assert report.strip() == message.strip(), (
        f"docs/diagnostics.md:{line}: the message has changed; it is now:\n{report}"
    )


def _codes_in_source() -> set[str]:
    codes: set[str] = set()
    for module in ("checker.py", "parser.py"):
        codes.update(c.strip('"') for c in re.findall(r'"[EW][0-9]{3}"', (ROOT / "pbrlang" / module).read_text()))
    return codes


def test_every_diagnostic_code_is_documented():
    codes = _codes_in_source()
    assert codes, "no diagnostic codes found in pbrlang/checker.py or pbrlang/parser.py"
    text = DIAGNOSTICS.read_text(encoding="utf-8")
    headed = set(re.findall(r"^#+ ([EW][0-9]{3})\b", text, re.MULTILINE))
    missing = sorted(codes - headed)
    assert not missing, f"docs/diagnostics.md has no section for {', '.join(missing)}"


def test_every_documented_code_is_still_used():
    text = DIAGNOSTICS.read_text(encoding="utf-8")
    headed = set(re.findall(r"^#+ ([EW][0-9]{3})\b", text, re.MULTILINE))
    stale = sorted(headed - _codes_in_source())
    assert not stale, f"docs/diagnostics.md documents {', '.join(stale)}, which the code no longer reports"
