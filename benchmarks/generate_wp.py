#!/usr/bin/env python3
"""Generate Work Programme benchmark data: N participants plus their employment spells.

    python benchmarks/generate_wp.py OUT_DIR N [--seed S]

A thin wrapper over tests/oracles/generate.py's work-programme generator
(deterministic for a seed).  The mix is realistic rather than adversarial:
about 15% of participants have no employment rows, the rest 1-3 spells (some
ongoing, some touching, overlapping, duplicated, starting before attachment or
ending after the as-of date), and a few percent are attached after the as-of
date.  Evaluate it as of 2014-06-30.  A million participants take a few seconds.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.oracles.generate import default_as_of, generate  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Generate Work Programme benchmark data")
    parser.add_argument("out_dir")
    parser.add_argument("n", type=int, help="number of participants")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    out = generate("work-programme", args.out_dir, args.n, args.seed)
    elapsed = time.perf_counter() - start
    print(
        f"wrote {args.n} participants to {out} in {elapsed:.1f}s "
        f"(evaluate with --as-of {default_as_of('work-programme').isoformat()})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
