"""Barrier vs stop-the-world on busy Ps: the mutators' rate while an operation is in flight.

On procs=2, 4 and 8 (more Ps than a 2-core machine has cores; the quick run
does 2 and 4), one mutator goroutine per P does chunks of
pure-Python work (``stress.work``, ~50µs) back to back, each followed by
``await ragged.checkpoint()``, and stores each chunk's completion time
(``perf_counter_ns``) in an array it preallocated (one store per chunk, no
allocation).  The main thread, a plain thread, is the coordinator: in slices
of ``slice_seconds`` it issues one operation every ``interval`` (start to
start; an operation that overruns is followed at once by the next, with no
catch-up burst), either ``rt.for_each_p(fn)`` (each checked to have run fn
exactly once on every P) or an empty ``with rt.stop_the_world(...)``, and
records each operation's ``[start, end)``.  Slices with no coordinator are the
baseline.  The three kinds of slice alternate, order rotated each round, so a
noisy neighbour hits all alike.

Per round, from the same completion times:

* rate in flight: chunks completed inside operations' intervals / the total
  time operations were in flight, against the rate of the round's
  no-coordinator slice (1.0: the operation costs the mutators nothing).  A
  chunk that completes while an operation is in flight counts, so a P that
  finishes its chunk and then stops (stop-the-world) counts once per
  operation: that is the "Ps are slow to stop" effect;
* rate between operations (the rest of the slice), and over the whole slice;
* operation latency (the coordinator's view) and, from the runtime's own
  histograms, the pause per operation (mutator time held off, summed over Ps);
* operations per second achieved (under the GIL the coordinator needs the GIL
  to wake and gets far fewer than one per ``interval``), the share of the
  slice with an operation in flight, and the cores the process kept busy
  (``process_time`` per second: how much of the machine the run got).

Each figure is reported as the median over rounds with the min-max; the
latency ratio for_each_p p50 / stop-the-world p50 is also computed per round.
"""

from __future__ import annotations

import gc
import math
import time
from array import array
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import ragged

from .scaling import own_int
from .stats import fmt_time, p_recorder, percentile, ratio, spread, summary, table
from .stress import work

MODES = ("none", "foreach", "stw")
OPS = ("foreach", "stw")
LABELS = {"foreach": "for_each_p", "stw": "stop-the-world", "none": "no coordinator"}


@dataclass(frozen=True)
class MutatorConfig:
    """Sizes of the mutator-rate case."""

    procs: tuple[int, ...]  # one runtime per value, one mutator per P
    reps: int  # rounds; each has one slice of every mode
    slice_seconds: float
    interval: float  # seconds between operations, start to start
    warmup: float  # seconds of mutators running before the first slice


FULL = MutatorConfig(procs=(2, 4, 8), reps=5, slice_seconds=0.4, interval=1e-3, warmup=0.2)
QUICK = MutatorConfig(procs=(2, 4), reps=2, slice_seconds=0.04, interval=1e-3, warmup=0.03)


class _Flag:
    """The stop request: written by the coordinator only, read by each mutator once per chunk."""

    stop = False


async def _mutator(n: int, cap: int, flag: _Flag) -> tuple[array, int, int]:
    """Chunks of ``work(n)`` until ``flag.stop``; return (completion times in ns, how many, how many not stored)."""
    n = own_int(n)  # created by this goroutine's thread (see scaling's docstring)
    times = array("q", bytes(8 * cap))  # preallocated: recording a completion is one store
    k = dropped = 0
    clock, w, cp = time.perf_counter_ns, work, ragged.checkpoint
    while not flag.stop:
        w(n)
        if k < cap:
            times[k] = clock()
            k += 1
        else:
            dropped += 1
        await cp()
    return times, k, dropped


@dataclass
class _Slice:
    mode: str
    t0: int
    t1: int
    ops: list[tuple[int, int]]  # [start, end) of each operation, ns
    pauses: list[float]  # seconds, from the runtime's histogram
    cpu: float = math.nan  # CPU seconds the whole process used over the slice (coordinator included)

    @property
    def cores(self) -> float:
        """CPU per second of the slice: how much of the machine this run got."""
        return self.cpu * 1e9 / (self.t1 - self.t0) if self.t1 > self.t0 else math.nan


def _pauses_since(rt: ragged.Runtime, name: str, n0: int) -> list[float]:
    m = rt._metrics
    with m.lock:
        return list(m.hist[name].recent)[n0:]


def _pause_count(rt: ragged.Runtime, name: str) -> int:
    m = rt._metrics
    with m.lock:
        return len(m.hist[name].recent)


def _operate(rt: ragged.Runtime, mode: str, errors: list[str]) -> tuple[int, int]:
    """One ``mode`` operation from the calling plain thread; returns its [start, end) in ns."""
    clock = time.perf_counter_ns
    if mode == "foreach":
        seen: list[int] = []  # list.append is atomic on both builds (a per-object lock when free-threaded)
        s = clock()
        rt.for_each_p(p_recorder(seen))
        e = clock()
        if sorted(seen) != list(range(rt.procs)):
            errors.append(
                f"procs={rt.procs}: a barrier ran fn on Ps {sorted(seen)}, expected each of 0..{rt.procs - 1}"
            )
        return s, e
    s = clock()
    with rt.stop_the_world("bench"):
        pass
    return s, clock()


def _run_slice(rt: ragged.Runtime, mode: str, cfg: MutatorConfig, errors: list[str]) -> _Slice:
    """One slice of ``mode`` coordinated from the calling (plain) thread."""
    clock = time.perf_counter_ns
    hist = {"foreach": "barrier_pause", "stw": "stw_pause"}.get(mode, "")
    n0 = _pause_count(rt, hist) if hist else 0
    ops: list[tuple[int, int]] = []
    c0, t0 = time.process_time(), clock()
    nxt = t0
    if mode == "none":
        time.sleep(cfg.slice_seconds)
    else:
        step, end = int(cfg.interval * 1e9), t0 + int(cfg.slice_seconds * 1e9)
        while (now := clock()) < end:
            if now < nxt:
                time.sleep((nxt - now) / 1e9)
            ops.append(_operate(rt, mode, errors))
            nxt = max(nxt + step, ops[-1][1])  # an overrun is followed at once, with no catch-up burst
    c1, t1 = time.process_time(), clock()
    return _Slice(mode, t0, t1, ops, _pauses_since(rt, hist, n0) if hist else [], c1 - c0)


class _Completions:
    """Every mutator's completion times; counts completions inside intervals."""

    def __init__(self, results: list[tuple[array, int, int]]) -> None:
        self.arrays = [(times, k) for times, k, _ in results]
        self.mutators = len(results)

    def count(self, s: int, e: int) -> int:
        """Chunks completed in ``[s, e)`` (ns), over all mutators."""
        return sum(bisect_left(t, e, 0, k) - bisect_left(t, s, 0, k) for t, k in self.arrays)

    def rate(self, chunks: int, ns: int) -> float:
        """Chunks per second per mutator."""
        return chunks * 1e9 / ns / self.mutators if ns > 0 else float("nan")


def _analyse(procs: int, slices: list[_Slice], done: _Completions, errors: list[str]) -> dict[str, Any]:
    """Per-round rates and ratios, and per-mode latency and pause, for one procs value."""
    by_mode: dict[str, list[_Slice]] = {m: [sl for sl in slices if sl.mode == m] for m in MODES}
    base = [done.rate(done.count(sl.t0, sl.t1), sl.t1 - sl.t0) for sl in by_mode["none"]]
    modes: dict[str, Any] = {
        "none": {"ops": 0, "rate": spread(base), "cores": spread([sl.cores for sl in by_mode["none"]])}
    }
    p50s: dict[str, list[float]] = {}
    for m in OPS:
        rin, rbetween, rslice, share = [], [], [], []
        lat: list[float] = []
        pauses: list[float] = []
        p50s[m] = []
        for sl in by_mode[m]:
            inside = sum(done.count(s, e) for s, e in sl.ops)
            busy = sum(e - s for s, e in sl.ops)
            total = done.count(sl.t0, sl.t1)
            rin.append(done.rate(inside, busy))
            rbetween.append(done.rate(total - inside, sl.t1 - sl.t0 - busy))
            rslice.append(done.rate(total, sl.t1 - sl.t0))
            share.append(busy / (sl.t1 - sl.t0))
            ls = [(e - s) / 1e9 for s, e in sl.ops]
            lat += ls
            pauses += sl.pauses
            p50s[m].append(percentile(ls, 50) if ls else float("nan"))
        seconds = sum(sl.t1 - sl.t0 for sl in by_mode[m]) / 1e9
        modes[m] = {
            "ops": len(lat),
            "ops_per_s": len(lat) / seconds if seconds else float("nan"),
            "cores": spread([sl.cores for sl in by_mode[m]]),
            "latency": summary(lat),
            "latency_p50_rounds": spread(p50s[m]),
            "pause": summary(pauses),
            "in_flight_share": spread(share),
            "rate_in_flight": spread(rin),
            "vs_none_in_flight": spread([ratio(a, b) for a, b in zip(rin, base, strict=True)]),
            "vs_none_between": spread([ratio(a, b) for a, b in zip(rbetween, base, strict=True)]),
            "vs_none_slice": spread([ratio(a, b) for a, b in zip(rslice, base, strict=True)]),
        }
    lat_ratio = [ratio(a, b) for a, b in zip(p50s["foreach"], p50s["stw"], strict=True)]
    overall = ratio(modes["foreach"]["latency"]["p50"], modes["stw"]["latency"]["p50"])
    return {
        "procs": procs,
        "mutators": done.mutators,
        "modes": modes,
        "latency_p50_ratio": spread(lat_ratio),
        "latency_p50_ratio_all_ops": overall,
        "errors": errors,
    }


def run_procs(procs: int, n: int, cfg: MutatorConfig, show: Callable[[str], None]) -> dict[str, Any]:
    """Every slice on one runtime of ``procs`` busy Ps; returns the analysed figures."""
    total = cfg.warmup + cfg.reps * len(MODES) * (cfg.slice_seconds + 0.05) + 5.0
    cap = int(total / 20e-6)  # room for chunks 2.5x faster than the 50µs calibrated
    flag = _Flag()
    errors: list[str] = []
    slices: list[_Slice] = []
    gc.collect()
    with ragged.Runtime(procs=procs) as rt:
        gs = [rt.go(_mutator, n, cap, flag, name=f"mutator-{i}") for i in range(procs)]
        try:
            time.sleep(cfg.warmup)
            order = list(MODES)
            for r in range(cfg.reps):
                for mode in order:
                    show(f"mutator rate: procs={procs} round {r + 1}/{cfg.reps} {mode}")
                    slices.append(_run_slice(rt, mode, cfg, errors))
                order = order[1:] + order[:1]
        finally:
            flag.stop = True
            results = [g.result(60.0) for g in gs]
    dropped = sum(d for _, _, d in results)
    if dropped:
        errors.append(f"procs={procs}: {dropped} chunk completions not recorded (the arrays of {cap} filled up)")
    return _analyse(procs, slices, _Completions(results), errors)


def steps(cfg: MutatorConfig) -> int:
    """How many progress lines :func:`run` shows."""
    return len(cfg.procs) * cfg.reps * len(MODES)


def run(n: int, cfg: MutatorConfig, show: Callable[[str], None]) -> dict[str, Any]:
    """The whole case for chunk size ``n``; returns a JSON-ready dict (see :func:`render`)."""
    return {
        "title": "barrier vs stop-the-world on busy Ps: mutators' chunk rate while an operation is in flight",
        "chunk_iterations": n,
        "config": asdict(cfg),
        "results": [run_procs(p, n, cfg, show) for p in cfg.procs],
    }


# ------------------------------------------------------------------ rendering


def _fmt_spread(d: dict[str, Any], fmt: str = ".2f") -> str:
    if d["median"] != d["median"]:
        return "n/a"
    return f"{d['median']:{fmt}} ({d['min']:{fmt}}-{d['max']:{fmt}})"


def _fmt_cores(d: dict[str, Any]) -> str:
    return "n/a" if d["median"] != d["median"] else f"{d['median']:.2f}"


def render(sec: dict[str, Any]) -> list[str]:
    """The case's text: one row per procs value and operation, then the checks."""
    cfg = sec["config"]
    rows: list[list[object]] = []
    lines: list[str] = []
    for r in sec["results"]:
        base = r["modes"]["none"]["rate"]
        cores = _fmt_cores(r["modes"]["none"]["cores"])
        rows.append([r["procs"], LABELS["none"], "-", "-", cores, *"----", f"{base['median']:,.0f}/s per P", "-", "-"])
        for m in OPS:
            d = r["modes"][m]
            lat, pause = d["latency"], d["pause"]
            rows.append(
                [
                    r["procs"],
                    LABELS[m],
                    f"{d['ops_per_s']:,.0f}",
                    f"{d['in_flight_share']['median'] * 100:.0f}%",
                    _fmt_cores(d["cores"]),
                    fmt_time(lat["p50"]),
                    fmt_time(lat["p99"]),
                    fmt_time(lat["max"]),
                    fmt_time(pause["p50"]),
                    _fmt_spread(d["vs_none_in_flight"]),
                    _fmt_spread(d["vs_none_between"]),
                    _fmt_spread(d["vs_none_slice"]),
                ]
            )
        lines.append(
            f"procs={r['procs']}: for_each_p p50 / stop-the-world p50: {_fmt_spread(r['latency_p50_ratio'])} "
            f"per round, {r['latency_p50_ratio_all_ops']:.2f} over all operations"
        )
    errors = [e for r in sec["results"] for e in r["errors"]]
    check = "FAILED: " + "; ".join(errors[:5]) if errors else "every barrier ran fn exactly once on every P"
    headers = [
        "procs",
        "operation",
        "ops/s",
        "in flight",
        "cores",
        "lat p50",
        "lat p99",
        "lat max",
        "pause p50",
        "rate in flight / none",
        "between ops / none",
        "whole slice / none",
    ]
    return [
        f"{sec['title']}; one mutator per P doing work({sec['chunk_iterations']}) chunks; one operation every "
        f"{cfg['interval'] * 1e3:g}ms from a plain thread; {cfg['reps']} rounds of {cfg['slice_seconds']}s slices "
        "per mode, interleaved; ops/s: operations achieved; in flight: share of the slice with an operation in "
        "flight; cores: CPU the process used per second (how much of the machine the run got); rates: median over "
        "rounds (min-max)",
        "",
        table(headers, rows),
        "",
        *lines,
        f"exactly-once check: {check}",
    ]
