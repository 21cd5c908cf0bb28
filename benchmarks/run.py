"""Benchmark pbrlang against the hand-written Work Programme baseline, side by side in one run.

    python benchmarks/run.py                      # 10k, 100k and 1M participants, 3 runs each
    python benchmarks/run.py --sizes 10000 100000 --runs 5

For each size it generates the data once (deterministic, benchmarks/data/), then
measures, as the median of several runs:
  - end to end: `pbr eval ... --format json --output FILE` and `baseline_wp.py
    ... --output FILE` as separate processes, from a folder outside the repository
    (wall time, and peak memory: the largest total resident memory of the process
    and its children, sampled);
  - phases, one after the other in one script: load (read and check the tables), evaluate
    (pbrlang: both cores from 20,000 subjects), write
    the JSON; for the baseline: read its CSV files, evaluate, write;
and, once, the contract's load time: cold `pbr check` (a new process; with the contract
kept checked in the cache, as it is for the runs above, and with nothing of it kept) and warm
parse + check + compile (in a process that has loaded a contract before).
It checks that both statements agree, then prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONTRACT = ROOT / "examples" / "work-programme" / "contract.pbr"
AS_OF = "2014-06-30"

PHASES = r"""
import io, json, sys, time, datetime
import pbrlang
# What loading and evaluating need, imported before the clock starts, as the baseline's modules
# are (pbrlang imports each part when first used; a contract kept checked needs no parser or checker).
from pbrlang import cache, contract, data as _, evaluator, parallel
data, out = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
contract = pbrlang.load(sys.argv[3])
dataset = contract.load_data([data])
t1 = time.perf_counter()
statement = contract.evaluate(dataset, datetime.date.fromisoformat(sys.argv[4]))
t2 = time.perf_counter()
with open(out, "w") as f:
    statement.write_json(f)
t3 = time.perf_counter()
print(json.dumps({"load": t1 - t0, "evaluate": t2 - t1, "write": t3 - t2}))
"""


def _tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and all its descendants, in KB (Linux /proc)."""
    total = 0
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    stack.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def timed(cmd: list[str], cwd: str | None = None, env: dict | None = None) -> tuple[float, int, str, str]:
    """Wall time, peak memory of the process tree (KB), standard output and standard error.

    Each run starts once the files written by the run before are on disk (several hundred MB at
    1M participants): otherwise it pays for its predecessor's writing."""
    os.sync()
    time.sleep(1)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd, env=env)
    peak = 0
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss_kb(proc.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    elapsed = time.perf_counter() - start
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{err}")
    return elapsed, peak, out, err


def median(xs):
    return statistics.median(xs)


def generate(size: int) -> Path:
    folder = HERE / "data" / f"wp-{size}"
    if not (folder / "participants.csv").exists():
        subprocess.run([sys.executable, str(HERE / "generate_wp.py"), str(folder), str(size), "--seed", "1"],
                       check=True, stdout=subprocess.DEVNULL)
    return folder


def same_statement(a: Path, b: Path) -> bool:
    x, y = json.loads(a.read_text()), json.loads(b.read_text())
    keys = ("total", "by_outcome", "by_funder", "by_period")
    if any(x[k] != y[k] for k in keys):
        return False
    row = lambda p: (p["subject"], p["outcome"], p["date"], p["amount"])  # noqa: E731
    return [row(p) for p in x["payments"]] == [row(p) for p in y["payments"]]


def pbr_command() -> tuple[list[str], str, str]:
    """How `pbr` is run: the command, the folder it is run from, and what it imports.

    The installed `pbr` script beside this Python when there is one, run from a folder outside
    the repository, so that it imports the installed package with the compiled files the install
    wrote, as a user's `pbr` does; otherwise `python -m pbrlang.cli` from the repository (its
    source tree, compiled again at every start when PYTHONDONTWRITEBYTECODE is set: about 0.1 s
    of each run on this machine)."""
    script = Path(sys.executable).parent / "pbr"
    if script.exists():
        cmd, folder = [str(script)], tempfile.gettempdir()
    else:
        cmd, folder = [sys.executable, "-m", "pbrlang.cli"], str(ROOT)
    # Which package that imports (an editable install imports the source tree).
    package = subprocess.run([sys.executable, "-c", "import os, pbrlang; print(os.path.dirname(pbrlang.__file__))"],
                             cwd=folder, capture_output=True, text=True).stdout.strip() or "?"
    return cmd, folder, f"{cmd[0] if script.exists() else 'python -m pbrlang.cli'}, importing {package}"


def contract_load_times(runs: int) -> tuple[float, float, float]:
    """Cold `pbr check` (median of `runs` new processes), with the contract kept checked in the
    cache from the run before (as when a contract is run again) and with nothing of it kept (a
    contract new or changed: parsed and checked), and warm parse + check + compile.

    One run first, untimed: the first start after an install writes the grammar cache."""
    pbr, folder, _ = pbr_command()
    cmd = pbr + ["check", str(CONTRACT)]
    timed(cmd, folder)
    kept = median([timed(cmd, folder)[0] for _ in range(runs)])
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, XDG_CACHE_HOME=home)
        timed(cmd, folder, env)  # the grammar's analysis, kept as for the runs above
        not_kept = []
        for _ in range(runs):
            for path in Path(home, "pbrlang").glob("contract-*"):
                path.unlink()
            not_kept.append(timed(cmd, folder, env)[0])
    warm_script = (
        "import time, pbrlang, statistics; text = open(%r).read(); pbrlang.loads(text)\n"
        "ts = []\n"
        "for _ in range(20):\n"
        "    t = time.perf_counter(); pbrlang.loads(text, 'c.pbr'); ts.append(time.perf_counter() - t)\n"
        "print(statistics.median(ts))" % str(CONTRACT)
    )
    warm = float(timed([sys.executable, "-c", warm_script])[2])
    return kept, median(not_kept), warm


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    pbr, folder, which = pbr_command()
    print(f"pbr: {which}, run from {folder}")
    kept, not_kept, warm = contract_load_times(11)
    print(f"contract load: cold `pbr check` {kept * 1000:.0f} ms with the contract kept checked, "
          f"{not_kept * 1000:.0f} ms with nothing kept (medians of 11); "
          f"warm parse+check+compile {warm * 1000:.1f} ms")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out_p, out_b = Path(tmp) / "pbr.json", Path(tmp) / "baseline.json"
        for size in args.sizes:
            data = generate(size)
            e2e_p, mem_p, e2e_b, mem_b, phases_p, phases_b = [], [], [], [], [], []
            if size == args.sizes[0]:  # untimed: the first `pbr eval` after an install keeps the contract compiled
                timed(pbr + ["eval", str(CONTRACT), "--data", str(data), "--as-of", AS_OF, "--format", "json",
                             "--output", str(out_p)], folder)
            for _ in range(args.runs):
                t, m, _, _ = timed(pbr + ["eval", str(CONTRACT), "--data", str(data), "--as-of", AS_OF,
                                          "--format", "json", "--output", str(out_p)], folder)
                e2e_p.append(t), mem_p.append(m)
                t, m, _, _ = timed([sys.executable, str(HERE / "baseline_wp.py"), str(data), "--as-of", AS_OF,
                                    "--output", str(out_b)], folder)
                e2e_b.append(t), mem_b.append(m)
                # From the folder `pbr` runs from: the same package, with the compiled files its install wrote.
                phases_p.append(json.loads(timed([sys.executable, "-c", PHASES, str(data), str(out_p) + ".2",
                                                  str(CONTRACT), AS_OF], folder)[2]))
                err = timed([sys.executable, str(HERE / "baseline_wp.py"), str(data), "--as-of", AS_OF,
                             "--output", str(out_b) + ".2", "--timing"])[3]
                phases_b.append(json.loads(err.strip().splitlines()[-1]))
            agree = same_statement(out_p, out_b)
            phase = {k: median([x[k] for x in phases_p]) for k in ("load", "evaluate", "write")}
            base = {k: median([x[k] for x in phases_b]) for k in ("read", "evaluate", "write")}
            rows.append((size, median(e2e_p), median(e2e_b), max(mem_p), max(mem_b), phase, base, agree))
            print(f"{size}: done", file=sys.stderr)
    print()
    print("End to end (`pbr eval ... --format json --output FILE` against `baseline_wp.py ... --output FILE`):")
    print()
    print("| participants | pbrlang | baseline | ratio | pbrlang peak memory | baseline peak memory | statements agree |")
    print("|---:|---:|---:|---:|---:|---:|---|")
    for size, ep, eb, mp, mb, phase, base, agree in rows:
        print(f"| {size:,} | {ep:.2f} s | {eb:.2f} s | {ep / eb:.2f} | {mp / 1024:.0f} MB | {mb / 1024:.0f} MB | "
              f"{'yes' if agree else 'NO'} |")
    print()
    print("Phases, one after the other in one script (pbrlang: load and check the tables, evaluate (both cores "
          "from 20,000 subjects), write the JSON; baseline: read "
          "the CSV files, evaluate, write):")
    print()
    print("| participants | pbrlang load | baseline read | pbrlang evaluate | baseline evaluate | ratio | "
          "pbrlang write | baseline write | pbrlang all three | baseline all three | ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size, ep, eb, mp, mb, phase, base, agree in rows:
        pt, bt = sum(phase.values()), sum(base.values())
        print(f"| {size:,} | {phase['load']:.2f} s | {base['read']:.2f} s | {phase['evaluate']:.2f} s | "
              f"{base['evaluate']:.2f} s | {phase['evaluate'] / base['evaluate']:.2f} | {phase['write']:.2f} s | "
              f"{base['write']:.2f} s | {pt:.2f} s | {bt:.2f} s | {pt / bt:.2f} |")


if __name__ == "__main__":
    main()
