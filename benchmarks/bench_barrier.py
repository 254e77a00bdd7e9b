"""The ragged barrier against stop-the-world on busy Ps.

On procs = 1, 2, 4, 8, every P runs a goroutine that does ~50µs of pure-Python
work between ``await ragged.checkpoint()`` calls.  A plain-thread coordinator
issues one operation every 1ms -- ``rt.for_each_p`` (each checked to run fn
exactly once per P) or a stop-the-world -- in slices alternating with
no-coordinator slices, all in one run.  Reported per procs value: latency
p50/p99/max, mutator pause per operation summed over Ps, and throughput with
one operation every 1ms against none, each as a ratio for_each_p / STW.

    .venv/bin/python benchmarks/bench_barrier.py [--reps 5] [--duration 1.0] [--json out.json]

Any flag of ``python -m ragged.bench`` may be passed; this script only changes
the defaults (compute-only mix, 5 reps of 1s slices).
"""

from __future__ import annotations

import sys

from ragged.bench.__main__ import main

DEFAULTS = ["--mix", "compute=1", "--procs", "1,2,4,8", "--reps", "5", "--duration", "1.0", "--interval", "0.001"]

if __name__ == "__main__":
    sys.exit(main(DEFAULTS + sys.argv[1:]))
