"""Microbenchmarks of ragged's hot paths, each beside its asyncio peer.

What it measures, every figure in the same process run as its peer, the
repetitions interleaved (rep 1: ragged then asyncio, rep 2: asyncio then
ragged, ...) so that a noisy neighbour hits both sides alike:

1. ``checkpoint`` fast path: ns per ``await ragged.checkpoint()`` in a tight
   loop inside a goroutine, beside ns per plain attribute read (``obj.attr``)
   and per empty loop iteration in the same goroutine.  docs/design.md's goal is
   checkpoint <= 3x the attribute read "in the same loop", i.e. both figures
   include the loop overhead; the same ratio with the empty loop subtracted
   is reported too, labelled "net".  asyncio has no cheap safe point: its peers
   are the same loops in an asyncio task, ``await`` of a trivial ``async def``
   (the cheapest await that does not yield) and ``await asyncio.sleep(0)``.
2. ``gosched`` switch rate: two goroutines each doing N ``await
   ragged.gosched()`` on procs=1 -> switches/s, beside two asyncio tasks each
   doing N ``await asyncio.sleep(0)``.  procs=2 and 4 for information.
3. spawn+join: a goroutine doing ``await ragged.go(noop)`` N times (one at a
   time) and, for information, spawning N then joining each; beside asyncio's
   ``await asyncio.create_task(noop())`` one at a time and ``create_task`` all
   then ``asyncio.gather``.  procs=1 is the headline; 2 and 4 for information.
4. atomics: ns per ``AtomicWords.load`` / ``store`` / ``cas`` (ragged's binding
   to the ``atomics`` op table), beside the ``atomics`` package's public API
   (``atomicview``: ``.load()``, ``.store()``, ``.cmpxchg_strong()``) and a plain
   ``memoryview`` read of the same word (``words.plain[i]``).  Measured on the
   main thread with no runtime running.  CAS figures are successful CASes
   (the loop alternates 0->1 and 1->0).

Every metric is repeated ``--runs`` times (7 by default); the table shows the
median and the worst run (largest ns, smallest rate; with 7 runs the p99 is
the worst run), and each ratio ours/peer is computed from the medians.

Run it (a full run takes well under a minute on a 2-core machine)::

    .venv/bin/python benchmarks/bench_micro.py                 # full run, table
    .venv/bin/python benchmarks/bench_micro.py --json out.json # also write JSON
    .venv/bin/python benchmarks/bench_micro.py --quick         # smoke run, a few seconds

The exit status is 0 whether or not the goals are met (this is a measurement,
not a test); the JSON has a ``pass`` field per goal.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import atomics

import ragged
from ragged._core._atomics import BINDING, AtomicWords
from ragged.bench.peer_cases import _noop, _Obj, _rg_spawn_all, _rg_spawn_one, _rg_switch

perf = time.perf_counter


@dataclass(frozen=True)
class Config:
    """Sizes of one benchmark run."""

    runs: int
    n_check: int  # iterations of the non-yielding checkpoint / attribute loops
    n_yield: int  # iterations of loops whose body yields (asyncio.sleep(0) alone)
    n_switch: int  # gosched / sleep(0) per goroutine / task (two of them)
    n_spawn: int  # goroutines / tasks spawned and joined per run
    n_atomic: int  # iterations for op-table atomics and memoryview reads
    n_public: int  # iterations for the atomics public API (microseconds each)
    procs: tuple[int, ...]


FULL = Config(
    runs=7,
    n_check=1_000_000,
    n_yield=20_000,
    n_switch=100_000,
    n_spawn=20_000,
    n_atomic=200_000,
    n_public=20_000,
    procs=(1, 2, 4),
)
QUICK = Config(
    runs=3,
    n_check=20_000,
    n_yield=1_000,
    n_switch=2_000,
    n_spawn=500,
    n_atomic=5_000,
    n_public=500,
    procs=(1, 2),
)

# --------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class Metric:
    """One measured quantity: ``unit`` is "ns" (lower is better) or "/s" (higher)."""

    key: str
    label: str
    unit: str
    group: str


class Samples:
    """Per-run samples of every metric, plus the metric descriptions in table order."""

    def __init__(self) -> None:
        self.metrics: dict[str, Metric] = {}
        self.values: dict[str, list[float]] = {}

    def add(self, key: str, label: str, unit: str, group: str, value: float) -> None:
        if key not in self.metrics:
            self.metrics[key] = Metric(key, label, unit, group)
            self.values[key] = []
        self.values[key].append(value)

    def median(self, key: str) -> float:
        return statistics.median(self.values[key])

    def worst(self, key: str) -> float:
        vals = self.values[key]
        return max(vals) if self.metrics[key].unit == "ns" else min(vals)


# ------------------------------------------------------------ shared workloads


def _ns(t0: float, t1: float, n: int) -> float:
    return (t1 - t0) * 1e9 / n


def _plain_loops(n: int) -> dict[str, float]:
    """ns per iteration of an empty loop and of an ``obj.attr`` read: the floor both sides are measured against."""
    obj = _Obj()
    r = range(n)
    out: dict[str, float] = {}

    t0 = perf()
    for _ in r:
        pass
    out["empty"] = _ns(t0, perf(), n)

    t0 = perf()
    for _ in r:
        obj.attr  # noqa: B018 - the attribute read is what is measured
    out["attr"] = _ns(t0, perf(), n)
    return out


# -------------------------------------------------------------- ragged side
#
# Switches and spawn+join are the peers benchmark's goroutines
# (ragged.bench.peer_cases); they return {"value": per second}.


async def _ragged_checkpoint_loops(n: int) -> dict[str, float]:
    """Empty loop, attribute read and checkpoint, same goroutine, ns per iteration."""
    r = range(n)
    out = _plain_loops(n)

    t0 = perf()
    for _ in r:
        await ragged.checkpoint()
    out["checkpoint"] = _ns(t0, perf(), n)

    cp = ragged.checkpoint
    t0 = perf()
    for _ in r:
        await cp()
    out["checkpoint_local"] = _ns(t0, perf(), n)
    return out


async def _ragged_checkpoint_slow(n: int) -> float:
    """ns per checkpoint while the hint is armed (it traps to the M, which finds nothing to do).

    Uses the private ``ragged._core._traps.arm``/``disarm`` pair: this is the cost every
    checkpoint in the process pays while a barrier or preemption is pending.
    """
    from ragged._core import _traps

    r = range(n)
    _traps.arm()
    try:
        t0 = perf()
        for _ in r:
            await ragged.checkpoint()
        t1 = perf()
    finally:
        _traps.disarm()
    return _ns(t0, t1, n)


async def _ragged_main(cfg: Config, procs: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if procs == 1:
        out["check"] = await _ragged_checkpoint_loops(cfg.n_check)
        out["check_slow"] = await _ragged_checkpoint_slow(cfg.n_yield)
    gc.collect()
    out["switch"] = (await _rg_switch(cfg.n_switch))["value"]
    gc.collect()
    out["spawn"] = (await _rg_spawn_one(cfg.n_spawn))["value"]
    gc.collect()
    out["spawn_all"] = (await _rg_spawn_all(cfg.n_spawn))["value"]
    return out


def _run_ragged(cfg: Config, procs: int) -> dict[str, Any]:
    with ragged.Runtime(procs=procs) as rt:
        return rt.go(_ragged_main, cfg, procs, name="bench").result()


# -------------------------------------------------------------- asyncio side


async def _asyncio_checkpoint_loops(n: int, n_yield: int) -> dict[str, float]:
    """The same loops in an asyncio task, with ``await noop()`` and ``await asyncio.sleep(0)`` as peers."""
    r = range(n)
    out = _plain_loops(n)

    t0 = perf()
    for _ in r:
        await _noop()
    out["await_noop"] = _ns(t0, perf(), n)

    t0 = perf()
    for _ in range(n_yield):
        await asyncio.sleep(0)
    out["sleep0"] = _ns(t0, perf(), n_yield)
    return out


async def _asyncio_yielder(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def _asyncio_switch(n: int) -> float:
    t0 = perf()
    a = asyncio.create_task(_asyncio_yielder(n))
    b = asyncio.create_task(_asyncio_yielder(n))
    await a
    await b
    return 2 * n / (perf() - t0)


async def _asyncio_spawn_join(n: int) -> float:
    t0 = perf()
    for _ in range(n):
        await asyncio.create_task(_noop())
    return n / (perf() - t0)


async def _asyncio_spawn_gather(n: int) -> float:
    t0 = perf()
    tasks = [asyncio.create_task(_noop()) for _ in range(n)]
    await asyncio.gather(*tasks)
    return n / (perf() - t0)


async def _asyncio_main(cfg: Config) -> dict[str, Any]:
    out: dict[str, Any] = {}
    out["check"] = await _asyncio_checkpoint_loops(cfg.n_check, cfg.n_yield)
    gc.collect()
    out["switch"] = await _asyncio_switch(cfg.n_switch)
    gc.collect()
    out["spawn"] = await _asyncio_spawn_join(cfg.n_spawn)
    gc.collect()
    out["gather"] = await _asyncio_spawn_gather(cfg.n_spawn)
    return out


# ------------------------------------------------------------------ atomics


def _time_loop(fn: Callable[[int], None], n: int) -> float:
    t0 = perf()
    fn(n)
    return _ns(t0, perf(), n)


def _atomics_round(n: int, n_public: int) -> dict[str, float]:
    """ns per operation, loop overhead included (``empty`` is the loop alone)."""
    words = AtomicWords(2)
    plain = words.plain
    load, store, cas = words.load, words.store, words.cas
    raw = bytearray(4)
    out: dict[str, float] = {}

    def empty(k: int) -> None:
        for _ in range(k):
            pass

    def mv_read(k: int) -> None:
        for _ in range(k):
            plain[1]  # noqa: B018 - the read is what is measured

    def ours_load(k: int) -> None:
        for _ in range(k):
            load(1)

    def ours_store(k: int) -> None:
        for _ in range(k):
            store(1, 0)

    def ours_cas(k: int) -> None:  # k successful CASes
        for _ in range(k // 2):
            cas(1, 0, 1)
            cas(1, 1, 0)

    out["empty"] = _time_loop(empty, n)
    out["mv_read"] = _time_loop(mv_read, n)
    out["ours_load"] = _time_loop(ours_load, n)
    out["ours_store"] = _time_loop(ours_store, n)
    out["ours_cas"] = _time_loop(ours_cas, n)
    assert words.load(1) == 0

    with atomics.atomicview(buffer=raw, atype=atomics.UINT) as view:
        vload, vstore, vcas = view.load, view.store, view.cmpxchg_strong

        def pub_load(k: int) -> None:
            for _ in range(k):
                vload()

        def pub_store(k: int) -> None:
            for _ in range(k):
                vstore(0)

        def pub_cas(k: int) -> None:
            for _ in range(k // 2):
                vcas(0, 1)
                vcas(1, 0)

        out["pub_load"] = _time_loop(pub_load, n_public)
        out["pub_store"] = _time_loop(pub_store, n_public)
        out["pub_cas"] = _time_loop(pub_cas, n_public)
    return out


# ------------------------------------------------------------------ driver


def _collect(cfg: Config, log: Callable[[str], None]) -> Samples:
    s = Samples()
    for rep in range(cfg.runs):
        log(f"run {rep + 1}/{cfg.runs}")
        # ragged (each procs setting in a fresh runtime) and its asyncio peer,
        # in alternating order so that neither side always goes first.
        rg: dict[int, dict[str, Any]] = {}
        aio: dict[str, Any] = {}
        sides = ["ragged", "asyncio"] if rep % 2 == 0 else ["asyncio", "ragged"]
        for side in sides:
            if side == "ragged":
                for procs in cfg.procs:
                    gc.collect()
                    rg[procs] = _run_ragged(cfg, procs)
            else:
                gc.collect()
                aio = asyncio.run(_asyncio_main(cfg))
        gc.collect()
        at = _atomics_round(cfg.n_atomic, cfg.n_public)

        c = rg[1]["check"]
        ac = aio["check"]
        g = "1 checkpoint fast path (ns per loop iteration, loop included)"
        s.add("check.empty", "ragged goroutine: empty loop", "ns", g, c["empty"])
        s.add("check.attr", "ragged goroutine: obj.attr", "ns", g, c["attr"])
        s.add("check.checkpoint", "ragged goroutine: await ragged.checkpoint()", "ns", g, c["checkpoint"])
        s.add("check.checkpoint_local", "ragged goroutine: await cp() (cp local)", "ns", g, c["checkpoint_local"])
        s.add("check.checkpoint_net", "net: checkpoint - empty loop", "ns", g, c["checkpoint"] - c["empty"])
        s.add("check.attr_net", "net: obj.attr - empty loop", "ns", g, c["attr"] - c["empty"])
        s.add("check.slow", "info: checkpoint with hint armed (traps to M)", "ns", g, rg[1]["check_slow"])
        s.add("check.aio_empty", "asyncio task: empty loop", "ns", g, ac["empty"])
        s.add("check.aio_attr", "asyncio task: obj.attr", "ns", g, ac["attr"])
        s.add("check.aio_await_noop", "asyncio task: await noop() (no yield)", "ns", g, ac["await_noop"])
        s.add("check.aio_sleep0", "asyncio task: await asyncio.sleep(0) (1 task)", "ns", g, ac["sleep0"])

        g = "2 switch rate (two goroutines/tasks yielding; switches/s)"
        s.add("switch.aio", "asyncio: 2 tasks, await asyncio.sleep(0)", "/s", g, aio["switch"])
        for procs in cfg.procs:
            s.add(f"switch.p{procs}", f"ragged procs={procs}: 2 goroutines, gosched", "/s", g, rg[procs]["switch"])

        g = "3 spawn+join (per second)"
        s.add("spawn.aio_await", "asyncio: await create_task(noop()) one at a time", "/s", g, aio["spawn"])
        s.add("spawn.aio_gather", "asyncio: create_task all, then gather", "/s", g, aio["gather"])
        for procs in cfg.procs:
            s.add(f"spawn.p{procs}", f"ragged procs={procs}: await go(noop) one at a time", "/s", g, rg[procs]["spawn"])
        for procs in cfg.procs:
            s.add(
                f"spawn_all.p{procs}",
                f"ragged procs={procs}: go() all, then await each",
                "/s",
                g,
                rg[procs]["spawn_all"],
            )

        g = "4 atomics (ns per op, loop included; main thread, no runtime)"
        s.add("atom.empty", "empty loop", "ns", g, at["empty"])
        s.add("atom.mv_read", "memoryview read words.plain[i]", "ns", g, at["mv_read"])
        s.add("atom.ours_load", f"AtomicWords.load ({BINDING})", "ns", g, at["ours_load"])
        s.add("atom.ours_store", f"AtomicWords.store ({BINDING})", "ns", g, at["ours_store"])
        s.add("atom.ours_cas", f"AtomicWords.cas ({BINDING})", "ns", g, at["ours_cas"])
        s.add("atom.pub_load", "atomics public atomicview.load()", "ns", g, at["pub_load"])
        s.add("atom.pub_store", "atomics public atomicview.store()", "ns", g, at["pub_store"])
        s.add("atom.pub_cas", "atomics public atomicview.cmpxchg_strong()", "ns", g, at["pub_cas"])
    return s


@dataclass(frozen=True)
class Ratio:
    """ours/peer from medians, with docs/design.md's goal when there is one."""

    key: str
    label: str
    value: float
    goal: str  # "<= 3", ">= 2", "" for information
    passed: bool | None


def _ratio(s: Samples, key: str, label: str, num: str, den: str, op: str = "", bound: float = 0.0) -> Ratio:
    value = s.median(num) / s.median(den)
    if not op:
        return Ratio(key, label, value, "", None)
    passed = value <= bound if op == "<=" else value >= bound
    return Ratio(key, label, value, f"{op} {bound:g}", passed)


def _ratios(s: Samples, cfg: Config) -> list[Ratio]:
    more = cfg.procs[1:]  # procs settings beyond 1, for information
    rows: list[tuple[Any, ...]] = [
        ("checkpoint_vs_attr", "checkpoint / obj.attr, same loop", "check.checkpoint", "check.attr", "<=", 3),
        ("checkpoint_vs_attr_net", "same, empty loop subtracted from both", "check.checkpoint_net", "check.attr_net"),
        ("checkpoint_vs_aio_await", "checkpoint / asyncio await noop()", "check.checkpoint", "check.aio_await_noop"),
        ("checkpoint_vs_aio_sleep0", "checkpoint / asyncio sleep(0)", "check.checkpoint", "check.aio_sleep0"),
        ("switch_p1", "gosched procs=1 / asyncio sleep(0) switch", "switch.p1", "switch.aio", ">=", 2),
        *[(f"switch_p{p}", f"gosched procs={p} / asyncio", f"switch.p{p}", "switch.aio") for p in more],
        ("spawn_p1_vs_await", "spawn+join procs=1 / create_task+await", "spawn.p1", "spawn.aio_await", ">=", 1),
        ("spawn_p1_vs_gather", "spawn+join procs=1 / create_task+gather", "spawn.p1", "spawn.aio_gather", ">=", 0.5),
        ("spawn_all_p1_vs_gather", "go() all+join procs=1 / create_task+gather", "spawn_all.p1", "spawn.aio_gather"),
        *[
            (f"spawn_p{p}_vs_await", f"spawn+join procs={p} / create_task+await", f"spawn.p{p}", "spawn.aio_await")
            for p in more
        ],
        ("load_vs_mv", "AtomicWords.load / memoryview read", "atom.ours_load", "atom.mv_read"),
        ("cas_vs_mv", "AtomicWords.cas / memoryview read", "atom.ours_cas", "atom.mv_read"),
        ("pub_load_vs_ours", "public load / AtomicWords.load", "atom.pub_load", "atom.ours_load"),
        ("pub_cas_vs_ours", "public cmpxchg / AtomicWords.cas", "atom.pub_cas", "atom.ours_cas"),
    ]
    return [_ratio(s, *row) for row in rows]


def _fmt(v: float, unit: str) -> str:
    if unit == "ns":
        return f"{v:,.1f} ns" if v < 1000 else f"{v / 1000:,.2f} µs"
    return f"{v:,.0f}/s"


def _table(s: Samples, ratios: list[Ratio], cfg: Config, meta: dict[str, Any]) -> str:
    where = meta["git"] or meta["ragged_path"]
    if meta["git_dirty"]:
        where += " + uncommitted edits"
    lines = [
        f"ragged microbenchmarks: ragged at {where}; Python {meta['python']}, {meta['cpus']} CPUs, "
        f"atomics {meta['atomics']} (binding: {BINDING}); {cfg.runs} runs, median and worst run (max ns / min rate)",
    ]
    group = None
    for key, m in s.metrics.items():
        if m.group != group:
            group = m.group
            lines.append("")
            lines.append(f"{group}")
            lines.append(f"  {'':54} {'median':>14} {'worst':>14}")
        lines.append(f"  {m.label:54} {_fmt(s.median(key), m.unit):>14} {_fmt(s.worst(key), m.unit):>14}")
    lines.append("")
    lines.append("ratios ours/peer (from medians)")
    for r in ratios:
        verdict = "" if r.passed is None else ("PASS" if r.passed else "MISS")
        goal = f"goal {r.goal}" if r.goal else "info"
        lines.append(f"  {r.label:54} {r.value:>10.2f}x   {goal:10} {verdict}")
    return "\n".join(lines)


def _meta(cfg: Config) -> dict[str, Any]:
    ragged_dir = Path(ragged.__file__).resolve().parent

    def git(*cmd: str) -> str:
        try:
            return subprocess.run(
                ["git", *cmd], cwd=ragged_dir, capture_output=True, text=True, timeout=5
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    # The commit of the ragged package measured, and whether it had local edits.
    rev = git("rev-parse", "--short", "HEAD")
    dirty = bool(git("status", "--porcelain", "--", ".")) if rev else None
    try:
        from importlib.metadata import version

        atomics_version = version("atomics")
    except Exception:  # noqa: BLE001 - only for the report
        atomics_version = "?"
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "switchinterval": sys.getswitchinterval(),
        "atomics": atomics_version,
        "binding": BINDING,
        "ragged": ragged.__version__,
        "ragged_path": str(ragged_dir),
        "git": rev,
        "git_dirty": dirty,
        "config": cfg.__dict__,
    }


def run(cfg: Config, log: Callable[[str], None] = lambda _msg: None) -> dict[str, Any]:
    """Run every benchmark; return the report (what ``--json`` writes)."""
    t0 = perf()
    s = _collect(cfg, log)
    ratios = _ratios(s, cfg)
    meta = _meta(cfg)
    meta["seconds"] = perf() - t0
    return {
        "meta": meta,
        "metrics": {
            k: {
                "label": m.label,
                "group": m.group,
                "unit": m.unit,
                "median": s.median(k),
                "worst": s.worst(k),
                "samples": s.values[k],
            }
            for k, m in s.metrics.items()
        },
        "ratios": {r.key: {"label": r.label, "value": r.value, "goal": r.goal, "pass": r.passed} for r in ratios},
        "table": _table(s, ratios, cfg, meta),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, 3 runs: a smoke run of a few seconds")
    ap.add_argument("--runs", type=int, default=None, help="repetitions per metric (default 7, quick 3)")
    ap.add_argument("--json", metavar="PATH", help="also write the full report (all samples) as JSON")
    args = ap.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    if args.runs is not None:
        if args.runs < 1:
            ap.error("--runs must be >= 1")
        cfg = Config(**{**cfg.__dict__, "runs": args.runs})

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    report = run(cfg, log)
    print(report["table"])
    print(f"\n({report['meta']['seconds']:.1f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
