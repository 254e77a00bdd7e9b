"""What sysmon's blocking-call report (``block_report``) costs,, off and on.

The detector is a few comparisons in sysmon's ``retake`` per running P and
round, plus a report when one fires (at most once per slice of
``block_report`` seconds).  It runs on sysmon's thread, so what goroutines can
lose is GIL time to a busier sysmon.  Measured, each condition in the same
process, the repetitions interleaved (rep 1: off, on; rep 2: on, off; ...):

* ``retake``: ns per call of ``_sysmon.retake`` on 4 RUNNING Ps whose slices
  go on (the steady state: nothing moved, nothing due) and on 4 Ps whose
  slice moved since the last round (the branch that starts a slice).  Called
  directly on a scheduler stub, no threads;
* switch: two goroutines each doing N ``await ragged.gosched()`` on procs=1
  -> ns per switch;
* syscalls: 64 goroutines each making K ``ragged.syscall(time.sleep, 1ms)``
  on procs=2, which keeps sysmon at its fastest round (20µs: it retakes
  syscall Ps) -> total ms;
* compute: 2 goroutines each spinning ``await ragged.checkpoint()`` for a
  fixed count on procs=2, preempted by sysmon every 10ms -> ms.

``off`` is ``block_report=None`` (the default), ``on`` is ``block_report=0.1``
(the ``RAGGED_DEBUG=1`` default); no goroutine here blocks, so nothing is
reported and "on" measures the watching.  Separately: the time one report
takes to write (``report_blocking`` on a goroutine blocked in ``time.sleep``,
logged to a handler that drops it), which sysmon spends once per blocked
slice.

Run it (a full run takes about 10 s on a 2-core machine)::

    .venv/bin/python benchmarks/bench_blockreport.py                 # table
    .venv/bin/python benchmarks/bench_blockreport.py --json out.json # also JSON
    .venv/bin/python benchmarks/bench_blockreport.py --quick         # smoke run
"""

from __future__ import annotations

import gc
import logging
import statistics
import sys
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import ragged
from ragged._core._blockreport import report_blocking, slice_tick
from ragged._core._metrics import Metrics
from ragged._core._p import RUNNING, W_STATUS, P
from ragged._core._settings import Settings
from ragged._core._sysmon import retake
from ragged.bench.cli import conditions_main, interleaved, meta_line, run_meta

perf = time.perf_counter
CONDITIONS = ("off", "on")
SETTING = {"off": None, "on": 0.1}
METRICS = (
    ("retake_steady_ns", "retake, 4 Ps, slices go on", "ns"),
    ("retake_moved_ns", "retake, 4 Ps, slices moved", "ns"),
    ("switch_ns", "gosched switch, procs=1", "ns"),
    ("syscalls_ms", "64 g x syscalls, procs=2", "ms"),
    ("compute_ms", "2 checkpoint spinners, procs=2", "ms"),
)


@dataclass(frozen=True)
class Config:
    """Sizes of one benchmark run."""

    runs: int
    n_retake: int  # retake calls per figure
    n_switch: int  # gosched per goroutine (two of them)
    n_syscall: int  # 1ms syscalls per goroutine (64 of them)
    n_spin: int  # checkpoints per spinner (two of them)
    n_report: int  # reports written


FULL = Config(runs=7, n_retake=100_000, n_switch=30_000, n_syscall=20, n_spin=2_000_000, n_report=200)
QUICK = Config(runs=2, n_retake=5_000, n_switch=1_000, n_syscall=2, n_spin=50_000, n_report=10)


def _stub(block: float | None) -> Any:
    """A scheduler with 4 RUNNING Ps and no goroutines, enough for ``retake``."""
    sched = SimpleNamespace(
        settings=Settings(block_report=block, preempt_after=1e6 if block is None else block / 2),
        gcwaiting=False,
        procs=4,
        chaos=None,
        debug=False,
        metrics=Metrics(),
        preemptone=lambda p: False,
    )
    sched.allp = [P(i, sched) for i in range(4)]  # type: ignore[arg-type]  # a stub, not a Sched
    for p in sched.allp:
        p.words.store(W_STATUS, RUNNING)
    return sched


def _retake_ns(block: float | None, n: int, move: bool) -> float:
    """ns per ``retake`` call; with ``move``, every P's slice moves between calls."""
    sched = _stub(1e7 if block is not None else None)  # long enough that nothing is ever due
    allp = sched.allp
    now = 1000.0
    retake(sched, now)
    gc.collect()
    t0 = perf()
    if move:
        for _ in range(n):
            for p in allp:
                p.schedtick += 1
            retake(sched, now)
    else:
        for _ in range(n):
            retake(sched, now)
    el = perf() - t0
    if move:  # subtract the tick bumps
        t1 = perf()
        for _ in range(n):
            for p in allp:
                p.schedtick += 1
        el -= perf() - t1
    return el * 1e9 / n


async def _yielder(n: int) -> None:
    for _ in range(n):
        await ragged.gosched()


async def _switch(n: int) -> float:
    gc.collect()
    t0 = perf()
    a, b = ragged.go(_yielder, n), ragged.go(_yielder, n)
    await a
    await b
    return (perf() - t0) * 1e9 / (2 * n)


async def _syscaller(k: int) -> None:
    for _ in range(k):
        await ragged.syscall(time.sleep, 0.001)


async def _syscalls(k: int) -> float:
    t0 = perf()
    gs = [ragged.go(_syscaller, k) for _ in range(64)]
    for g in gs:
        await g
    return (perf() - t0) * 1e3


async def _spinner(n: int) -> None:
    for _ in range(n):
        await ragged.checkpoint()


async def _compute(n: int) -> float:
    t0 = perf()
    a, b = ragged.go(_spinner, n), ragged.go(_spinner, n)
    await a
    await b
    return (perf() - t0) * 1e3


def _condition(cond: str, cfg: Config) -> dict[str, float]:
    block = SETTING[cond]
    out = {
        "retake_steady_ns": _retake_ns(block, cfg.n_retake, move=False),
        "retake_moved_ns": _retake_ns(block, cfg.n_retake, move=True),
    }
    with ragged.Runtime(procs=1, block_report=block) as rt:
        out["switch_ns"] = rt.go(_switch, cfg.n_switch).result()
    with ragged.Runtime(procs=2, block_report=block) as rt:
        out["syscalls_ms"] = rt.go(_syscalls, cfg.n_syscall).result()
        out["compute_ms"] = rt.go(_compute, cfg.n_spin).result()
        out["reports"] = rt.metrics()["blocking_reports"]
    return out


def _report_us(n: int) -> float:
    """µs to write one report on a goroutine blocked in time.sleep (the log record dropped)."""
    log = logging.getLogger("ragged")
    old = log.handlers[:], log.propagate
    log.handlers[:] = [logging.NullHandler()]
    log.propagate = False
    started: list[int] = []

    async def blocked() -> None:
        started.append(1)
        time.sleep(0.5 + n * 0.002)

    try:
        with ragged.Runtime(procs=1) as rt:
            g = rt.go(blocked)
            while not started:
                time.sleep(0.001)
            p = rt._sched.allp[0]
            times = []
            for _ in range(n):
                t0 = perf()
                assert report_blocking(rt._sched, p, slice_tick(p), 0.1)
                times.append(perf() - t0)
            g.result()
    finally:
        log.handlers[:], log.propagate = old
    return statistics.median(times) * 1e6


def run(cfg: Config, log: Any = lambda _msg: None) -> dict[str, Any]:
    """Every condition ``cfg.runs`` times, interleaved; return the report."""
    t_start = perf()
    samples = interleaved(CONDITIONS, cfg.runs, lambda cond: _condition(cond, cfg), log)
    med = {c: {k: statistics.median(s[k] for s in samples[c]) for k, _, _ in METRICS} for c in CONDITIONS}
    worst = {c: {k: max(s[k] for s in samples[c]) for k, _, _ in METRICS} for c in CONDITIONS}
    report = {
        "meta": run_meta(cfg),
        "median": med,
        "worst": worst,
        "ratio": {k: med["on"][k] / med["off"][k] for k, _, _ in METRICS},
        "reports_while_measuring": sum(s["reports"] for c in CONDITIONS for s in samples[c]),
        "report_us": _report_us(cfg.n_report),
        "samples": samples,
    }
    report["meta"]["seconds"] = perf() - t_start
    return report


def table(rep: dict[str, Any]) -> str:
    """The report as text: medians (worst run in brackets) off and on, and on/off."""
    lines = [f"{'median [worst run]':34}{'off':>20}{'on':>20}{'on/off':>10}"]
    for key, label, unit in METRICS:
        cells = "".join(
            f"{rep['median'][c][key]:>10.1f}{unit} [{rep['worst'][c][key]:>5.0f}]".rjust(20) for c in CONDITIONS
        )
        lines.append(f"  {label:32}{cells}{rep['ratio'][key]:>9.3f}x")
    lines += [
        "",
        f"one report (stack + format + log call, record dropped): {rep['report_us']:.0f} µs of sysmon time",
        f"reports while measuring (must be 0): {rep['reports_while_measuring']}",
        meta_line(rep["meta"]),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return conditions_main(argv, __doc__, FULL, QUICK, run, table)


if __name__ == "__main__":
    sys.exit(main())
