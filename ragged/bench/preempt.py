"""``python -m ragged.bench --preempt``: reaching goroutines that never await (asynchronous preemption).

Three cases, each on loops that never await (``while not flag.stop: n += 1``,
the loop a user writes), in one process:

1. **Barrier and stop-the-world over busy Ps.**  ``procs=2``, one tight loop
   per P.  A plain thread issues ``ops`` operations alternating
   ``rt.for_each_p(fn)`` (each checked to run ``fn`` exactly once per P) and
   an empty ``with rt.stop_the_world()``, ``interval`` apart (the monitoring
   events go off a linger after each operation; the linger grows while
   operations keep coming, so with the default 5ms interval only the first
   few pay switching them on); latency is the caller's view of the call (p50,
   p99).  Go's anchor: ``runtime.ReadMemStats`` (a stop-the-world) over
   GOMAXPROCS=2 tight loops, Go 1.19 on these machines: 30µs p50, 62µs p99.
   Beside it, the same runtime with ``async_preempt=False`` (Go's
   ``GODEBUG=asyncpreemptoff=1``): a barrier there never completes (it is
   given up after a timeout), nor does a stop-the-world in Go.
2. **A sleeper beside tight loops.**  ``procs=2``, a tight loop per P, and
   a goroutine that sleeps 1ms ``sleeps`` times: how late each sleep wakes
   (p50, p99).  Go's anchor: 19ms p50, 39ms p99 (sysmon's 10ms slice plus
   its own sleep, which grows to 10ms while idle).
3. **A tight loop's speed with nothing pending**, against a plain thread: the
   same ``async def`` loop (counting to ``k`` in local variables only) driven
   by ``coro.send`` on a ``threading.Thread`` and run as a goroutine on
   ``procs=1`` with nothing else; rounds interleaved, the ratio of the rates
   per round (median and range).  Run last, after the other cases have
   switched the events on and off many times.

On CPython 3.11 (no ``sys.monitoring``) cases 1 and 2 cannot complete and are
reported as not available; case 3 still runs.  The targets: for_each_p and
stop-the-world p50 <= 500µs and p99 <= 10ms on a free-threaded build, within
two switch intervals on a GIL build; the sleeper <= 20ms late p50, <= 40ms
p99; the loop >= 0.98 of the plain thread.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import ragged
from ragged._core import _preempt

from .cli import positive, run_meta
from .stats import fmt_time, p_recorder, summary, table
from .targets import Target
from .targets import render as render_table

perf = time.perf_counter


@dataclass(frozen=True)
class PreemptConfig:
    """Sizes of the preemption benchmark."""

    runs: int  # rounds of the speed case
    ops: int  # world operations in case 1 (half barriers, half stop-the-worlds)
    interval: float  # seconds between two operations
    sleeps: int  # 1ms sleeps in case 2
    speed_seconds: float  # how long one speed measurement lasts


FULL = PreemptConfig(runs=7, ops=400, interval=5e-3, sleeps=300, speed_seconds=0.3)
QUICK = PreemptConfig(runs=2, ops=40, interval=5e-3, sleeps=30, speed_seconds=0.05)
GO_ANCHOR = {"stw_p50": 30e-6, "stw_p99": 62e-6, "sleeper_p50": 19e-3, "sleeper_p99": 39e-3}


class _Flag:
    """What the tight loops poll: written by the benchmark's thread only."""

    stop = False


async def _tight(flag: _Flag) -> int:
    n = 0
    while not flag.stop:
        n += 1
    return n


def _start_loops(rt: ragged.Runtime, n: int) -> tuple[_Flag, list[ragged.Goroutine]]:
    flag = _Flag()
    gs = [rt.go(_tight, flag, name=f"tight-{i}") for i in range(n)]
    deadline = perf() + 10
    while rt.metrics()["context_switches"] < n and perf() < deadline:
        time.sleep(0.001)
    time.sleep(0.02)  # every loop is running
    return flag, gs


def _stop_loops(flag: _Flag, gs: list[ragged.Goroutine]) -> None:
    flag.stop = True
    for g in gs:
        g.result(timeout=60)


# ------------------------------------------------------------------ case 1


def world_ops(cfg: PreemptConfig) -> dict[str, Any]:
    """Barrier and stop-the-world latency over two Ps in tight loops (case 1)."""
    procs = 2
    barrier: list[float] = []
    stw: list[float] = []
    errors = 0
    with ragged.Runtime(procs=procs) as rt:
        flag, gs = _start_loops(rt, procs)
        try:
            for i in range(cfg.ops):
                seen: list[int] = []
                t = perf()
                if i % 2 == 0:
                    rt.for_each_p(p_recorder(seen), timeout=30)
                    barrier.append(perf() - t)
                    errors += sorted(seen) != list(range(procs))
                else:
                    with rt.stop_the_world("bench"):
                        pass
                    stw.append(perf() - t)
                time.sleep(cfg.interval)
        finally:
            _stop_loops(flag, gs)
        m = rt.metrics()
    return {
        "for_each_p": summary(barrier),
        "stop_the_world": summary(stw),
        "errors": errors,
        "async_preemptions": m["async_preemptions"],
        "arms": m["async_preempt_arms"],
    }


def asyncpreemptoff(timeout: float = 0.5) -> str:
    """With ``async_preempt=False``, a barrier over a P in a tight loop: how it ends."""
    with ragged.Runtime(procs=2, async_preempt=False) as rt:
        flag, gs = _start_loops(rt, 1)
        try:
            rt.for_each_p(lambda p: None, timeout=timeout)
            out = "completed"
        except ragged.BarrierTimeout:
            out = f"never completes (given up after {timeout:g}s)"
        finally:
            _stop_loops(flag, gs)
    return out


# ------------------------------------------------------------------ case 2


async def _sleeper(n: int) -> list[float]:
    late = []
    for _ in range(n):
        t = perf()
        await ragged.sleep(0.001)
        late.append(perf() - t - 0.001)
    return late


def sleeper(cfg: PreemptConfig) -> dict[str, Any]:
    """How late a 1ms sleep wakes beside a tight loop on each of two Ps (case 2)."""
    with ragged.Runtime(procs=2) as rt:
        flag, gs = _start_loops(rt, 2)
        try:
            late = rt.go(_sleeper, cfg.sleeps).result(timeout=600)
        finally:
            _stop_loops(flag, gs)
    return {"late": summary(late)}


# ------------------------------------------------------------------ case 3


async def _count(k: int) -> float:
    """Count to ``k`` in local variables only; return the seconds it took."""
    t = perf()
    i = 0
    while i < k:
        i += 1
    return perf() - t


def _on_thread(k: int) -> float:
    out: list[float] = []

    def body() -> None:
        coro = _count(k)
        try:
            coro.send(None)
        except StopIteration as stop:
            out.append(stop.value)

    th = threading.Thread(target=body)
    th.start()
    th.join()
    return out[0]


def _as_goroutine(k: int) -> float:
    with ragged.Runtime(procs=1) as rt:
        return rt.go(_count, k).result(timeout=600)


def speed(cfg: PreemptConfig) -> dict[str, Any]:
    """A goroutine's tight loop with nothing pending against a plain thread's (case 3)."""
    deadline = perf() + 10
    while _preempt.armed() and perf() < deadline:  # measured with the events off, as they are when idle
        time.sleep(0.01)
    k = 200_000
    k = int(k * cfg.speed_seconds / max(_on_thread(k), 1e-6))
    thread, goroutine, ratios = [], [], []
    for rnd in range(cfg.runs):
        if rnd % 2:
            g = _as_goroutine(k)
            t = _on_thread(k)
        else:
            t = _on_thread(k)
            g = _as_goroutine(k)
        thread.append(k / t)
        goroutine.append(k / g)
        ratios.append(t / g)
    return {
        "k": k,
        "thread_per_s": statistics.median(thread),
        "goroutine_per_s": statistics.median(goroutine),
        "ratio": {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios), "samples": ratios},
    }


# ------------------------------------------------------------------ run, targets, report


def run(cfg: PreemptConfig, log: Any = None) -> dict[str, Any]:
    """All three cases; a JSON-ready dict (see :func:`render`)."""
    say = log or (lambda _msg: None)
    meta = run_meta(cfg)
    t0 = perf()
    out: dict[str, Any] = {"meta": meta, "available": _preempt.AVAILABLE}
    if _preempt.AVAILABLE:
        say("case 1: for_each_p and stop-the-world over 2 Ps in tight loops")
        out["world"] = world_ops(cfg)
        say("case 1: the same with async_preempt=False")
        out["asyncpreemptoff"] = asyncpreemptoff()
        say("case 2: a 1ms sleeper beside 2 tight loops")
        out["sleeper"] = sleeper(cfg)
    say("case 3: a tight loop's speed, goroutine vs plain thread")
    out["speed"] = speed(cfg)
    meta["seconds"] = perf() - t0
    out["targets"] = [t.as_dict() for t in targets(out)]
    return out


def targets(data: dict[str, Any]) -> list[Target]:
    """The issue's targets on the figures of ``data``."""
    nan = float("nan")
    gil = data["meta"]["gil"]
    two = 2 * data["meta"]["switchinterval"]
    src = "preemption"
    w = data.get("world", {})
    rows = []
    for key, label in (("for_each_p", "for_each_p"), ("stop_the_world", "stop-the-world")):
        d = w.get(key, {})
        p50, p99 = d.get("p50", nan), d.get("p99", nan)
        rows.append(
            Target(f"{key}_p50", f"{label} p50, 2 Ps in tight loops", src, p50, "<=", two if gil else 500e-6, "s")
        )
        rows.append(
            Target(f"{key}_p99", f"{label} p99, 2 Ps in tight loops", src, p99, "<=", two if gil else 10e-3, "s")
        )
    late = data.get("sleeper", {}).get("late", {})
    rows.append(
        Target("sleeper_p50", "1ms sleeper beside 2 tight loops: late p50", src, late.get("p50", nan), "<=", 20e-3, "s")
    )
    rows.append(
        Target("sleeper_p99", "1ms sleeper beside 2 tight loops: late p99", src, late.get("p99", nan), "<=", 40e-3, "s")
    )
    r = data["speed"]["ratio"]
    spread = f"{r['min']:.2f}-{r['max']:.2f}"
    rows.append(
        Target(
            "speed", "tight loop, nothing pending: goroutine / plain thread", src, r["median"], ">=", 0.98, "x", spread
        )
    )
    return rows


def render(data: dict[str, Any]) -> str:
    """The report: the cases' figures with Go's anchor, then the targets."""
    meta = data["meta"]
    build = "GIL" if meta["gil"] else "free-threaded"
    lines = [f"Asynchronous preemption: Python {meta['python']} ({build}), {meta['cpus']} CPUs", ""]
    if not data["available"]:
        lines += [
            "cases 1-2: not available here (no sys.monitoring before CPython 3.12: preemption is cooperative)",
            "",
        ]
    else:
        w = data["world"]
        rows = []
        for key, label, anchor in (("for_each_p", "for_each_p", None), ("stop_the_world", "stop-the-world", "stw")):
            d = w[key]
            go = f"{fmt_time(GO_ANCHOR['stw_p50'])} / {fmt_time(GO_ANCHOR['stw_p99'])}" if anchor else "-"
            rows.append([label, d["count"], fmt_time(d["p50"]), fmt_time(d["p99"]), fmt_time(d["max"]), go])
        s = data["sleeper"]["late"]
        go = f"{fmt_time(GO_ANCHOR['sleeper_p50'])} / {fmt_time(GO_ANCHOR['sleeper_p99'])}"
        rows.append(["1ms sleeper: late", s["count"], fmt_time(s["p50"]), fmt_time(s["p99"]), fmt_time(s["max"]), go])
        lines.append(table(["2 Ps in tight loops", "n", "p50", "p99", "max", "Go 1.19 p50 / p99"], rows))
        lines += [
            "",
            f"barrier errors (fn not exactly once per P): {w['errors']}; async preemptions {w['async_preemptions']}, "
            f"events switched on {w['arms']} times; with async_preempt=False a barrier {data['asyncpreemptoff']}",
            "",
        ]
    sp = data["speed"]
    lines.append(
        f"tight loop, nothing pending: plain thread {sp['thread_per_s'] / 1e6:.1f}M/s, goroutine "
        f"{sp['goroutine_per_s'] / 1e6:.1f}M/s (median of {meta['config']['runs']} rounds)"
    )
    lines += [""] + render_table("targets", data["targets"]) + ["", f"{meta['seconds']:.1f}s"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ragged.bench --preempt", description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run of a few seconds")
    ap.add_argument("--ops", type=positive(int), help=f"world operations in case 1 (default {FULL.ops})")
    ap.add_argument(
        "--interval", type=positive(float), help=f"seconds between two operations (default {FULL.interval:g})"
    )
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    args = ap.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    if args.ops or args.interval:
        cfg = replace(cfg, ops=args.ops or cfg.ops, interval=args.interval or cfg.interval)
    data = run(cfg, None if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True)))
    print(render(data))
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=1, default=str) + "\n")
    return 1 if data.get("world", {}).get("errors") else 0
