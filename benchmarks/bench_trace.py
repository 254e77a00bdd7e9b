"""What the execution tracer costs, off and on, beside no tracer.

One process run measures the same workload under four conditions, the
repetitions interleaved in rotating order (rep 1: none, off, on, full; rep 2:
off, on, full, none; ...) so that a noisy neighbour hits all alike:

``none``  runtimes that never had a tracer attached;
``off``   runtimes that were traced (a ``ragged.trace`` block ran and
          attached them) and then detached: "tracing code present but off".
          Both run the same code -- each hook is ``if sched.trace is not
          None`` -- so none/off is the noise floor and says that the hooks
          cost nothing measurable when off;
``on``    inside ``with ragged.trace(path):`` with the default buffer bound;
``full``  inside ``ragged.trace(path, limit=1)``: every buffer is full at once,
          so every event takes the drop path (a length check and a count).

The workload, per condition and repetition:

* switch: two goroutines each doing N ``await ragged.gosched()`` on procs=1
  -> ns per switch (each switch records a stop and a start when on);
* spawn+join: N times ``await ragged.go(noop)`` on procs=1 -> ns per
  spawn+join (two slices and three events when on);
* barrier: K ``await ragged.for_each_p(noop)`` from a goroutine on procs=4,
  the other Ps idle -> µs per barrier (a request, a barrier and 4 fn events).

The table gives the median and the best (fastest) of the runs of each
condition, and the ratios of each to ``none``: on a machine shared with other
work the best runs are the steadier comparison, the medians the more typical.

Writing the JSON at the end of the block is timed separately (per event),
since it happens once, after the traced code.  Also measured: the net cost of
one hook check with tracing off (``tr = obj.trace; if tr is not None``, the
empty loop subtracted), to compare with the switch.

Run it (a full run takes about 45 s on a 2-core machine)::

    .venv/bin/python benchmarks/bench_trace.py                 # table
    .venv/bin/python benchmarks/bench_trace.py --json out.json # also JSON
    .venv/bin/python benchmarks/bench_trace.py --quick         # smoke run
"""

from __future__ import annotations

import gc
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ragged
from ragged._core._trace import DEFAULT_LIMIT
from ragged.bench.cli import conditions_main, interleaved, meta_line, run_meta

perf = time.perf_counter
CONDITIONS = ("none", "off", "on", "full")
METRICS = (
    ("switch_ns", "gosched switch, procs=1", "ns"),
    ("spawn_ns", "spawn+join, procs=1", "ns"),
    ("barrier_us", "for_each_p, 4 idle Ps", "µs"),
)


@dataclass(frozen=True)
class Config:
    """Sizes of one benchmark run."""

    runs: int
    n_switch: int  # gosched per goroutine (two of them)
    n_spawn: int  # spawn+join, one at a time
    n_barrier: int  # barriers
    n_check: int  # iterations of the hook-check loop


FULL = Config(runs=9, n_switch=50_000, n_spawn=10_000, n_barrier=1_000, n_check=2_000_000)
QUICK = Config(runs=3, n_switch=2_000, n_spawn=500, n_barrier=50, n_check=100_000)


async def _noop() -> None:
    pass


async def _yielder(n: int) -> None:
    for _ in range(n):
        await ragged.gosched()


async def _small(cfg: Config) -> dict[str, float]:
    """On procs=1: ns per switch and per spawn+join."""
    gc.collect()
    t0 = perf()
    a, b = ragged.go(_yielder, cfg.n_switch), ragged.go(_yielder, cfg.n_switch)
    await a
    await b
    switch = (perf() - t0) * 1e9 / (2 * cfg.n_switch)
    gc.collect()
    t0 = perf()
    for _ in range(cfg.n_spawn):
        await ragged.go(_noop)
    spawn = (perf() - t0) * 1e9 / cfg.n_spawn
    return {"switch_ns": switch, "spawn_ns": spawn}


async def _barriers(n: int) -> float:
    """On procs=4: µs per barrier, median of ``n`` (a barrier is short; the median resists GIL hiccups)."""
    gc.collect()
    times = []
    for _ in range(n):
        t0 = perf()
        await ragged.for_each_p(lambda p: None)
        times.append(perf() - t0)
    return statistics.median(times) * 1e6


def _measure(cfg: Config, rt1: ragged.Runtime, rt4: ragged.Runtime) -> dict[str, float]:
    out = rt1.go(_small, cfg).result()
    out["barrier_us"] = rt4.go(_barriers, cfg.n_barrier).result()
    return out


def _condition(cond: str, cfg: Config, tmp: Path) -> dict[str, float]:
    """Measure the workload once under ``cond``; for "on", also time the write."""
    with ragged.Runtime(procs=1) as rt1, ragged.Runtime(procs=4) as rt4:
        if cond == "none":
            return _measure(cfg, rt1, rt4)
        if cond == "off":
            with ragged.trace(tmp / "off.json"):  # attach both, record a little, detach
                rt1.go(_noop).result()
                rt4.for_each_p(lambda p: None)
            assert rt1._sched.trace is None and rt4._sched.trace is None
            return _measure(cfg, rt1, rt4)
        path = tmp / f"{cond}.json"
        with ragged.trace(path, limit=1 if cond == "full" else DEFAULT_LIMIT) as tracer:
            out = _measure(cfg, rt1, rt4)
            t0 = perf()  # leaving the block writes the file
        t_write = perf() - t0
        if cond == "on":
            n_events = len(json.loads(path.read_text())["traceEvents"])
            out["write_ns_per_event"] = t_write * 1e9 / n_events
            out["events"] = n_events
        else:
            out["dropped"] = tracer.dropped
        path.unlink()
        return out


def _hook_check_ns(n: int) -> float:
    """Net ns of one tracing-off hook check: ``tr = obj.trace; if tr is not None``."""

    class Obj:
        trace = None

    obj = Obj()
    r = range(n)
    best_empty = best_check = float("inf")
    for _ in range(5):
        t0 = perf()
        for _ in r:
            pass
        best_empty = min(best_empty, perf() - t0)
        t0 = perf()
        for _ in r:
            tr = obj.trace
            if tr is not None:
                pass
        best_check = min(best_check, perf() - t0)
    return (best_check - best_empty) * 1e9 / n


def run(cfg: Config, log: Any = lambda _msg: None) -> dict[str, Any]:
    """Every condition ``cfg.runs`` times, interleaved; return the report."""
    t_start = perf()
    with tempfile.TemporaryDirectory(prefix="ragged-bench-trace-") as d:
        samples = interleaved(CONDITIONS, cfg.runs, lambda cond: _condition(cond, cfg, Path(d)), log)
    med = {c: {k: statistics.median(s[k] for s in samples[c]) for k, _, _ in METRICS} for c in CONDITIONS}
    best = {c: {k: min(s[k] for s in samples[c]) for k, _, _ in METRICS} for c in CONDITIONS}
    on = samples["on"]
    report = {
        "meta": run_meta(cfg),
        "median": med,
        "best": best,
        "ratios": {c: {k: med[c][k] / med["none"][k] for k, _, _ in METRICS} for c in ("off", "on", "full")},
        "ratios_best": {c: {k: best[c][k] / best["none"][k] for k, _, _ in METRICS} for c in ("off", "on", "full")},
        "write_ns_per_event": statistics.median(s["write_ns_per_event"] for s in on),
        "events_per_run": statistics.median(s["events"] for s in on),
        "hook_check_ns": _hook_check_ns(cfg.n_check),
        "samples": samples,
    }
    report["meta"]["seconds"] = perf() - t_start
    return report


def table(rep: dict[str, Any]) -> str:
    """The report as text: medians and best runs per condition, then ratios to ``none``."""
    lines = []
    for what, vals, ratios in (
        ("median", rep["median"], rep["ratios"]),
        ("best run", rep["best"], rep["ratios_best"]),
    ):
        lines.append(f"{what:28}" + "".join(f"{c:>12}" for c in CONDITIONS) + "   on/none  off/none  full/none")
        for key, label, unit in METRICS:
            cells = "".join(
                f"{vals[c][key]:>10.1f}{unit}" if unit == "µs" else f"{vals[c][key]:>10.0f}{unit}" for c in CONDITIONS
            )
            r = ratios
            lines.append(f"  {label:26}{cells}   {r['on'][key]:7.2f}x {r['off'][key]:8.2f}x {r['full'][key]:9.2f}x")
        lines.append("")
    med = rep["median"]
    lines += [
        f"writing the JSON: {rep['write_ns_per_event']:.0f} ns per event "
        f"({rep['events_per_run']:.0f} events per traced run), once, when the trace block ends",
        f"one hook check with tracing off: {rep['hook_check_ns']:.1f} ns net "
        f"({100 * rep['hook_check_ns'] / med['none']['switch_ns']:.1f}% of a median switch)",
        meta_line(rep["meta"]),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return conditions_main(argv, __doc__, FULL, QUICK, run, table)


if __name__ == "__main__":
    sys.exit(main())
