"""Compute scaling: the same pure-Python chunks on ragged and on what Python offers.

Each contestant runs workers that do chunks of pure-Python work (``stress.work``,
calibrated to ~50µs) back to back, and counts the chunks it completes inside a
common measuring window:

* ragged procs=1 with one goroutine, procs=2 with two, and procs=2 with four
  ("4 goroutines" in the goals), each chunk followed by ``await
  ragged.checkpoint()``; a fresh ``ragged.Runtime`` per run; and, for more Ps
  than this machine may have cores, procs=4 and procs=8 with one goroutine
  per P;
* one plain ``threading.Thread``, started for the run (never the main thread);
* ``ThreadPoolExecutor(1)`` and ``(2)`` with one task per worker;
* ``ProcessPoolExecutor(2)`` ("spawn" start method, created and warmed once
  for the whole case: what GIL users pick for parallel compute);
* asyncio: one event loop (in its own thread), one task, each chunk followed
  by ``await asyncio.sleep(0)``.

How a run is timed: the contestant is set up (runtime, pool), then the window
opens ``warmup`` seconds later and lasts ``seconds``.  Workers start at once
and do chunks from the start; a chunk counts when it completes inside the
window (``perf_counter`` is the system-wide monotonic clock, so the window is
the same for the worker processes).  Startup, wake-up and join costs thus stay
out of the figure, which is the steady rate: chunks / window.  Beside it, the
CPU a chunk costs: ``process_time`` read by the workers at their first chunk
in the window and when they stop (the whole process, so a runtime's own
threads count; for the process pool, each worker process's own), per chunk.
On a machine shared with other work the rate tells how many cores the
contestant got; the CPU per chunk hardly moves with that.

Fairness on the free-threaded build: an object's reference count is cheap
only for the thread that created it (biased reference counting) and costs an
atomic operation from any other thread.  Every contestant runs the same worker
function on a thread that is not the main thread, and that function first
makes private copies of its arguments (the chunk size and the window bounds,
created by the main thread) so that everything touched per chunk -- the
range, the ints, the floats -- is created by the thread doing the chunk.  What
is left shared is the same for every contestant: the function and code
objects and the builtins, a few reference-count operations per chunk at
most (atomic ones where the object is neither owned nor immortal), against
~50µs of work.

Rounds interleave the contestants (the order reversed every other round) so
a noisy neighbour hits all alike; a contestant's figure is the median over
rounds with the min-max spread, and each ratio is computed per round (the two
sides of each ratio of the goals run one after the other), then
summarised the same way.
"""

from __future__ import annotations

import asyncio
import gc
import math
import multiprocessing
import os
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import ragged

from .stats import fmt_time, ratio, spread, table
from .stress import work

perf = time.perf_counter


@dataclass(frozen=True)
class ScalingConfig:
    """Sizes of the compute-scaling case."""

    rounds: int  # interleaved rounds; one run of every contestant per round
    seconds: float  # the measuring window of one run
    warmup: float  # from setup to the window opening (workers already computing)


FULL = ScalingConfig(rounds=7, seconds=0.4, warmup=0.1)
QUICK = ScalingConfig(rounds=2, seconds=0.03, warmup=0.02)


# ------------------------------------------------------------------ the workers


def own_int(n: int) -> int:
    """A copy of ``n`` (>= 0, < 2**64) created by the calling thread (see the module docstring)."""
    return int.from_bytes(n.to_bytes(8, "little"), "little")


def _private(n: int, start: float, deadline: float) -> tuple[int, float, float]:
    """Copies of the worker's arguments created by the calling thread (see the module docstring)."""
    return own_int(n), start + 0.0, deadline + 0.0


# What a worker reports: (chunks completed in the window, process CPU and time when its first one
# completed, process CPU and time when it stopped).  Between the two CPU readings lie exactly its
# counted chunks' work: the first counted chunk ran before the first reading, the uncounted one
# that crossed the deadline before the second.
Tally = tuple[int, float, float, float, float]
_NO_CHUNK: Tally = (0, math.nan, math.nan, math.nan, math.nan)


def count_chunks(n: int, start: float, deadline: float) -> Tally:
    """Do chunks of ``work(n)`` until ``deadline``; count those completed in ``[start, deadline)``.

    Module-level so that ProcessPoolExecutor can send it to its workers.
    """
    n, start, deadline = _private(n, start, deadline)
    w, clock, cpu = work, perf, time.process_time
    count, c0, t0 = 0, 0.0, 0.0
    while True:
        w(n)
        t = clock()
        if t >= deadline:
            return (count, c0, t0, cpu(), clock()) if count else _NO_CHUNK
        if t >= start:
            if not count:
                c0, t0 = cpu(), t
            count += 1


async def count_chunks_async(n: int, start: float, deadline: float, yield_: Callable[[], Awaitable[Any]]) -> Tally:
    """:func:`count_chunks` with ``await yield_()`` after each chunk (a goroutine's or a task's safe point).

    A twin of :func:`count_chunks` on purpose: the plain contestants run the
    bare loop, so the one difference measured is this ``await``.
    """
    n, start, deadline = _private(n, start, deadline)
    w, clock, cpu = work, perf, time.process_time
    count, c0, t0 = 0, 0.0, 0.0
    while True:
        w(n)
        t = clock()
        if t >= deadline:
            return (count, c0, t0, cpu(), clock()) if count else _NO_CHUNK
        if t >= start:
            if not count:
                c0, t0 = cpu(), t
            count += 1
        await yield_()


def _aio_yield() -> Awaitable[None]:
    return asyncio.sleep(0)


def _pid_after(seconds: float) -> int:
    """A warm-up task for the process pool: proves a worker process is up."""
    time.sleep(seconds)
    return os.getpid()


# ------------------------------------------------------------------ the contestants

# A contestant's runner: (n, cfg) -> one Tally per worker.
Runner = Callable[[int, ScalingConfig], list[Tally]]


def _window(cfg: ScalingConfig) -> tuple[float, float]:
    start = perf() + cfg.warmup
    return start, start + cfg.seconds


def _timeout(cfg: ScalingConfig) -> float:
    return cfg.warmup + cfg.seconds + 60.0


def _ragged(procs: int, goroutines: int) -> Runner:
    def run(n: int, cfg: ScalingConfig) -> list[Tally]:
        with ragged.Runtime(procs=procs) as rt:
            start, deadline = _window(cfg)
            gs = [
                rt.go(count_chunks_async, n, start, deadline, ragged.checkpoint, name=f"chunks-{i}")
                for i in range(goroutines)
            ]
            return [g.result(_timeout(cfg)) for g in gs]

    return run


def _in_thread(target: Callable[[float, float], Tally], cfg: ScalingConfig) -> list[Tally]:
    """Run ``target(start, deadline)`` on a new plain thread; return ``[its tally]``."""
    out: list[Tally] = []  # appended by the worker thread only, read after join
    start, deadline = _window(cfg)
    th = threading.Thread(target=lambda: out.append(target(start, deadline)), name="bench-chunks", daemon=True)
    th.start()
    th.join(_timeout(cfg))
    if not out:
        raise RuntimeError("the compute thread did not finish (see its traceback above)")
    return out


def _thread(n: int, cfg: ScalingConfig) -> list[Tally]:
    return _in_thread(lambda start, deadline: count_chunks(n, start, deadline), cfg)


def _asyncio(n: int, cfg: ScalingConfig) -> list[Tally]:
    return _in_thread(lambda start, deadline: asyncio.run(count_chunks_async(n, start, deadline, _aio_yield)), cfg)


def _submit_all(ex: Executor, workers: int, n: int, cfg: ScalingConfig) -> list[Tally]:
    start, deadline = _window(cfg)
    futs = [ex.submit(count_chunks, n, start, deadline) for _ in range(workers)]
    return [f.result(_timeout(cfg)) for f in futs]


def _tpe(workers: int) -> Runner:
    def run(n: int, cfg: ScalingConfig) -> list[Tally]:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bench-tpe") as ex:
            return _submit_all(ex, workers, n, cfg)

    return run


def cpu_and_cores(tallies: list[Tally], one_process: bool) -> tuple[float, float]:
    """(CPU seconds per chunk, cores busy) of one run from its workers' tallies.

    ``one_process``: the workers share one process, so its CPU clock already
    sums them (runtime threads included): take it from the first reading to
    the last.  Otherwise (a process pool) add up each worker process's own.
    """
    live = [t for t in tallies if t[0]]
    chunks = sum(t[0] for t in live)
    if not live:
        return math.nan, math.nan
    span = max(t[4] for t in live) - min(t[2] for t in live)
    if one_process:
        cpu = max(t[3] for t in live) - min(t[1] for t in live)
    else:
        cpu = sum(t[3] - t[1] for t in live)
    return cpu / chunks, (cpu / span if span > 0 else math.nan)


@dataclass
class Contestant:
    """One way of running the chunks, and its chunks/s per round."""

    key: str
    label: str
    workers: int
    run: Runner | None  # None: not available here (``why`` says why)
    why: str = ""
    one_process: bool = True  # False: the workers are other processes (see cpu_and_cores)
    samples: list[float] | None = None  # chunks/s, one per round
    cpu: list[float] | None = None  # CPU seconds per chunk (whole process), one per round
    cores: list[float] | None = None  # CPU seconds per second of the window, one per round


# The ratios the parallel goals name (numerator, denominator), and context.
RATIOS = (
    ("p2_tpe2", "ragged procs=2 / ThreadPoolExecutor(2)", "ragged_p2", "tpe2"),
    ("p2g4_tpe2", "ragged procs=2, 4 goroutines / ThreadPoolExecutor(2)", "ragged_p2g4", "tpe2"),
    ("p1_thread", "ragged procs=1 / one plain thread", "ragged_p1", "thread"),
    ("p2_p1", "ragged procs=2 / ragged procs=1", "ragged_p2", "ragged_p1"),
    ("p4_p2", "more Ps than cores: ragged procs=4 / procs=2", "ragged_p4", "ragged_p2"),
    ("p8_p2", "more Ps than cores: ragged procs=8 / procs=2", "ragged_p8", "ragged_p2"),
    ("tpe2_tpe1", "ThreadPoolExecutor(2) / (1): what the machine gives", "tpe2", "tpe1"),
    ("p2_ppe2", "ragged procs=2 / ProcessPoolExecutor(2)", "ragged_p2", "ppe2"),
    ("p1_asyncio", "ragged procs=1 / asyncio", "ragged_p1", "asyncio"),
)
# CPU per chunk (whole process, so the runtime's own threads count): 1.0 = a chunk costs the same.
CPU_RATIOS = (
    ("cpu_p1_thread", "CPU per chunk: ragged procs=1 / one plain thread", "ragged_p1", "thread"),
    ("cpu_p2_tpe2", "CPU per chunk: ragged procs=2 / ThreadPoolExecutor(2)", "ragged_p2", "tpe2"),
    ("cpu_p2g4_tpe2", "CPU per chunk: ragged procs=2, 4 goroutines / ThreadPoolExecutor(2)", "ragged_p2g4", "tpe2"),
)


def _process_pool() -> tuple[ProcessPoolExecutor | None, str]:
    """A warmed ProcessPoolExecutor(2), or (None, why not)."""
    try:
        pool = ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn"))
        list(pool.map(_pid_after, [0.05, 0.05]))
    except (OSError, ImportError, RuntimeError) as err:  # no processes in this sandbox
        return None, f"ProcessPoolExecutor unavailable: {err}"
    return pool, ""


def contestants(pool: ProcessPoolExecutor | None, why: str) -> list[Contestant]:
    """Every contestant; the process pool one runs on ``pool`` (None: unavailable, ``why``)."""
    ppe: Runner | None = None
    if pool is not None:
        ppe = lambda n, cfg: _submit_all(pool, 2, n, cfg)  # noqa: E731 - a one-line Runner
    # In this order (and reversed every other round) the two sides of each ratio of the goals run
    # next to each other: thread | p1 | p2 | tpe2 | p2g4.
    return [
        Contestant("tpe1", "ThreadPoolExecutor(1), 1 task", 1, _tpe(1)),
        Contestant("thread", "one plain threading.Thread", 1, _thread),
        Contestant("ragged_p1", "ragged procs=1, 1 goroutine", 1, _ragged(1, 1)),
        Contestant("ragged_p2", "ragged procs=2, 2 goroutines", 2, _ragged(2, 2)),
        Contestant("tpe2", "ThreadPoolExecutor(2), 2 tasks", 2, _tpe(2)),
        Contestant("ragged_p2g4", "ragged procs=2, 4 goroutines", 4, _ragged(2, 4)),
        Contestant("ragged_p4", "ragged procs=4, 4 goroutines", 4, _ragged(4, 4)),
        Contestant("ragged_p8", "ragged procs=8, 8 goroutines", 8, _ragged(8, 8)),
        Contestant("ppe2", "ProcessPoolExecutor(2), 2 tasks (spawn)", 2, ppe, why, one_process=False),
        Contestant("asyncio", "asyncio: one loop, 1 task, sleep(0) per chunk", 1, _asyncio),
    ]


# ------------------------------------------------------------------ running


def run(n: int, cfg: ScalingConfig, show: Callable[[str], None]) -> dict[str, Any]:
    """The whole case for chunk size ``n``; returns a JSON-ready dict (see :func:`render`).

    ``show`` is called once per round with a progress line.
    """
    pool, why = _process_pool()
    try:
        cs = contestants(pool, why)
        live = [c for c in cs if c.run is not None]
        for c in live:
            c.samples, c.cpu, c.cores = [], [], []
        for r in range(cfg.rounds):
            show(f"compute scaling: round {r + 1}/{cfg.rounds}")
            for c in live if r % 2 == 0 else live[::-1]:
                assert c.run is not None and c.samples is not None and c.cpu is not None and c.cores is not None
                gc.collect()
                tallies = c.run(n, cfg)
                c.samples.append(sum(t[0] for t in tallies) / cfg.seconds)
                cpu, cores = cpu_and_cores(tallies, c.one_process)
                c.cpu.append(cpu)
                c.cores.append(cores)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    by_key = {c.key: c for c in cs}
    out_cs: dict[str, Any] = {}
    for c in cs:
        d: dict[str, Any] = {"label": c.label, "workers": c.workers, "installed": c.run is not None}
        if c.samples is not None and c.cpu is not None and c.cores is not None:
            d.update(spread(c.samples))
            d["cpu_per_chunk"] = spread(c.cpu)
            d["cores"] = spread(c.cores)
        else:
            d["why"] = c.why
        out_cs[c.key] = d
    ratios: dict[str, Any] = {}
    for key, label, num, den in RATIOS:
        a, b = by_key[num].samples, by_key[den].samples
        if a is not None and b is not None:
            ratios[key] = {"label": label, **spread([ratio(x, y) for x, y in zip(a, b, strict=True)])}
    for key, label, num, den in CPU_RATIOS:
        a, b = by_key[num].cpu, by_key[den].cpu
        if a is not None and b is not None:
            ratios[key] = {"label": label, **spread([ratio(x, y) for x, y in zip(a, b, strict=True)])}
    return {
        "title": "compute scaling: pure-Python chunks of ~50µs, chunks completed per second of the window",
        "chunk_iterations": n,
        "config": asdict(cfg),
        "contestants": out_cs,
        "ratios": ratios,
    }


# ------------------------------------------------------------------ rendering


def render(sec: dict[str, Any]) -> list[str]:
    """The case's text: one table of contestants, one of ratios."""
    cfg = sec["config"]
    cs = sec["contestants"]
    one = cs.get("thread", {}).get("median")
    rows: list[list[object]] = []
    for c in cs.values():
        if not c["installed"]:
            rows.append([c["label"], c["workers"], "not available", "-", "-", "-", "-"])
            continue
        cpu, cores = c["cpu_per_chunk"]["median"], c["cores"]["median"]
        rows.append(
            [
                c["label"],
                c["workers"],
                f"{c['median']:,.0f}/s",
                f"{c['min']:,.0f}-{c['max']:,.0f}",
                f"{c['median'] / one:.2f}x" if one else "n/a",
                fmt_time(cpu) if cpu == cpu else "n/a",
                f"{cores:.2f}" if cores == cores else "n/a",
            ]
        )
    ratio_rows = [
        [r["label"], f"{r['median']:.2f}", f"{r['min']:.2f}-{r['max']:.2f}", " ".join(f"{x:.2f}" for x in r["samples"])]
        for r in sec["ratios"].values()
    ]
    return [
        f"{sec['title']}; work({sec['chunk_iterations']}) per chunk; {cfg['rounds']} interleaved rounds, "
        f"{cfg['seconds']}s window per run after {cfg['warmup']}s warm-up",
        "",
        table(["contestant", "workers", "chunks/s", "min-max", "vs 1 thread", "CPU/chunk", "cores busy"], rows),
        "",
        "CPU/chunk: CPU time of the whole process (runtime threads included; for the process pool, of its workers) "
        "per chunk, from the workers' first chunk in the window to their last; cores busy: that CPU per second",
        "",
        "ratios, computed per round (median, min-max, each round)",
        "",
        table(["ratio", "median", "min-max", "rounds"], ratio_rows),
    ]
