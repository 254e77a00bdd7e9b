"""What chaos mode costs: off, it should cost nothing measurable.

A runtime built before chaos existed cannot be run beside this one, so the
off-path cost is measured directly: every racy point is guarded by one
``if sched.chaos is not None:`` check, so off costs one attribute load and an
identity comparison per hook passed.  This script measures

1. the per-hook check: ns per ``sched.chaos is not None`` in a loop, minus the
   empty loop, on a real ``Sched`` with chaos off;
2. hooks per operation: how many racy points one ``gosched`` switch and one
   ``ragged.syscall`` round trip pass (a counting stand-in replaces
   ``sched.chaos`` for one run);
3. the operations themselves with chaos off and on (seed 1), repetitions
   interleaved (off, on, on, off, ...): ``gosched`` switch rate of two
   goroutines on procs=1, and ``syscall`` round trips of one goroutine on
   procs=1 and procs=4.

From 1 and 2: the off-path cost per operation as a fraction of the operation's
time -- the figure "off, it costs nothing measurable" is about.

    .venv/bin/python benchmarks/bench_chaos.py            # about a minute
    .venv/bin/python benchmarks/bench_chaos.py --quick    # a few seconds
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections import Counter
from typing import Any

import ragged

perf = time.perf_counter


class CountingChaos:
    """Stands in for ``sched.chaos``: counts each hook passed, injects nothing."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def point(self, where: str) -> None:
        self.calls[where] += 1


async def _yielder(n: int) -> None:
    for _ in range(n):
        await ragged.gosched()


async def _switch(n: int) -> float:
    """Two goroutines each yielding ``n`` times on one P: switches per second."""
    t0 = perf()
    a = ragged.go(_yielder, n)
    b = ragged.go(_yielder, n)
    await a
    await b
    return 2 * n / (perf() - t0)


def _noop() -> None:
    return None


async def _syscalls(n: int) -> float:
    """One goroutine making ``n`` trivial blocking calls: round trips per second."""
    call = ragged.syscall
    t0 = perf()
    for _ in range(n):
        await call(_noop)
    return n / (perf() - t0)


def run_op(op: str, n: int, procs: int, chaos: int | None) -> float:
    """One measurement of ``op`` on a fresh runtime."""
    with ragged.Runtime(procs=procs, chaos=chaos) as rt:
        fn = _switch if op == "switch" else _syscalls
        rt.go(fn, 200).result()  # warm up: start the Ms
        return rt.go(fn, n).result()


def hooks_per_op(op: str, n: int, procs: int) -> tuple[float, dict[str, int]]:
    """Racy points passed per operation, counted with a stand-in for ``sched.chaos``."""
    with ragged.Runtime(procs=procs) as rt:
        fn = _switch if op == "switch" else _syscalls
        rt.go(fn, 200).result()
        counter = CountingChaos()
        rt._sched.chaos = counter
        try:
            rt.go(fn, n).result()
        finally:
            rt._sched.chaos = None
    ops = 2 * n if op == "switch" else n
    return sum(counter.calls.values()) / ops, dict(counter.calls)


def _loop_check(sched: Any, n: int) -> float:
    rng = range(n)
    t0 = perf()
    for _ in rng:
        if sched.chaos is not None:
            pass
    return perf() - t0


def _loop_empty(sched: Any, n: int) -> float:
    rng = range(n)
    t0 = perf()
    for _ in rng:
        pass
    return perf() - t0


def check_cost(n: int, rounds: int = 5) -> tuple[float, float]:
    """ns per loop iteration with the ``sched.chaos is not None`` check, and empty.

    The two loops alternate ``rounds`` times and the fastest of each is kept
    (the least disturbed run: the usual estimator for a loop this small).
    """
    with ragged.Runtime(procs=1) as rt:
        sched = rt._sched
        assert sched.chaos is None
        check = empty = float("inf")
        for _ in range(rounds):
            empty = min(empty, _loop_empty(sched, n))
            check = min(check, _loop_check(sched, n))
    return check / n * 1e9, empty / n * 1e9


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    p.add_argument("--reps", type=int, default=None, help="repetitions per figure (default 7, quick 2)")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = p.parse_args(argv)
    reps = args.reps or (2 if args.quick else 7)
    n_switch = 5000 if args.quick else 50000
    n_sys = 2000 if args.quick else 20000
    n_check = 200_000 if args.quick else 2_000_000

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    # 1. the check itself
    checks = [check_cost(n_check) for _ in range(reps)]
    loop_check = min(c for c, _ in checks)
    loop_empty = min(e for _, e in checks)
    per_check = loop_check - loop_empty

    # 2. hooks per operation
    cases = [("switch", 1, n_switch), ("syscall", 1, n_sys), ("syscall", 4, n_sys)]
    hooks = {f"{op}.p{procs}": hooks_per_op(op, min(n, 5000), procs) for op, procs, n in cases}

    # 3. off vs on, interleaved
    rates: dict[str, dict[str, list[float]]] = {f"{op}.p{procs}": {"off": [], "on": []} for op, procs, _ in cases}
    for r in range(reps):
        order = ("off", "on") if r % 2 == 0 else ("on", "off")
        for op, procs, n in cases:
            for mode in order:
                log(f"rep {r + 1}/{reps} {op} procs={procs} chaos {mode}")
                rates[f"{op}.p{procs}"][mode].append(run_op(op, n, procs, 1 if mode == "on" else None))

    rows = []
    for key, by in rates.items():
        off, on = statistics.median(by["off"]), statistics.median(by["on"])
        per_op, where = hooks[key]
        op_ns = 1e9 / off
        cost_ns = per_op * per_check
        rows.append(
            {
                "op": key,
                "off_per_s": off,
                "off_worst_per_s": min(by["off"]),
                "on_per_s": on,
                "on_worst_per_s": min(by["on"]),
                "on_over_off": on / off,
                "hooks_per_op": per_op,
                "hooks": where,
                "off_cost_ns_per_op": cost_ns,
                "off_cost_fraction": cost_ns / op_ns,
            }
        )

    meta = {
        "python": sys.version.split()[0],
        "machine": f"{platform.system()} {platform.machine()}",
        "reps": reps,
        "n_switch": n_switch,
        "n_syscall": n_sys,
        "n_check": n_check,
    }
    print(f"chaos mode cost -- Python {meta['python']}, {meta['machine']}, {reps} reps (rates: median (worst))")
    print(
        f"per-hook check `sched.chaos is not None` with chaos off: {per_check:.1f} ns "
        f"(fastest loop iteration with the check {loop_check:.1f} ns, empty {loop_empty:.1f} ns)"
    )
    print()
    print(
        f"{'operation':<12} {'chaos off /s':>16} {'chaos on /s':>16} {'on/off':>7} {'hooks/op':>9} "
        f"{'off cost/op':>12} {'of op time':>10}"
    )
    for row in rows:
        print(
            f"{row['op']:<12} {row['off_per_s']:>9.0f} ({row['off_worst_per_s']:>5.0f}) "
            f"{row['on_per_s']:>9.0f} ({row['on_worst_per_s']:>5.0f}) {row['on_over_off']:>7.2f} "
            f"{row['hooks_per_op']:>9.2f} {row['off_cost_ns_per_op']:>9.1f} ns {100 * row['off_cost_fraction']:>9.2f}%"
        )
    for row in rows:
        print(f"  hooks passed by {row['op']}: {row['hooks']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "per_check_ns": per_check, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
