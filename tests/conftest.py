"""Shared test helpers: where the examples and the reference schemes are."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SHARED_SCHEMES = ROOT.parent / "shared" / "schemes"
SCHEMES = ["work-programme", "innovation-fund", "troubled-families", "recovery-partnership", "peterborough-sib"]

# The tests keep checked and compiled contracts and Lark's analysis of the grammar in a cache folder of their
# own (pbrlang.cache), not the user's; the processes they start inherit it.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="pbr-tests-cache-")
atexit.register(shutil.rmtree, os.environ["XDG_CACHE_HOME"], True)

# Set PBR_REGOLD=1 to rewrite golden files from the current output (then review with git diff).
REGOLD = os.environ.get("PBR_REGOLD") == "1"


def example(scheme: str) -> Path:
    return EXAMPLES / scheme / "contract.pbr"


def sample(scheme: str) -> Path:
    return EXAMPLES / scheme / "sample"


def expected(scheme: str) -> dict:
    return json.loads((sample(scheme) / "expected.json").read_text())


def pbr(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the `pbr` command as a user would (the installed console script's module)."""
    return subprocess.run(
        [sys.executable, "-m", "pbrlang.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        timeout=120,
    )


def golden(path: Path, actual: str) -> None:
    if REGOLD or not path.exists():
        path.write_text(actual)
    assert actual == path.read_text(), f"{path} differs (PBR_REGOLD=1 rewrites it)"


@pytest.fixture(scope="session")
def contracts():
    import pbrlang

    return {s: pbrlang.load(example(s)) for s in SCHEMES if example(s).exists()}
