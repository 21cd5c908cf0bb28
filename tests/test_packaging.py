"""The wheel carries the grammar: a non-editable install works from anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

from conftest import ROOT, example, sample


def test_wheel_ships_the_grammar_and_runs_outside_the_checkout(tmp_path):
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("pbrlang-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "pbrlang/grammar/pbr.lark" in names
    assert (ROOT / "grammar" / "pbr.lark").read_bytes() == zipfile.ZipFile(wheel).read("pbrlang/grammar/pbr.lark")

    target = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                              str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = dict(os.environ, PYTHONPATH=str(target))
    where = subprocess.run([sys.executable, "-c", "import pbrlang; print(pbrlang.__file__)"], cwd=elsewhere, env=env,
                           capture_output=True, text=True)
    assert where.stdout.startswith(str(target)), where.stdout + where.stderr
    run = subprocess.run([sys.executable, "-m", "pbrlang.cli", "eval", str(example("work-programme")), "--data",
                          str(sample("work-programme")), "--as-of", "2014-06-30", "--format", "json"],
                         cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert '"total": "41945.00"' in run.stdout
