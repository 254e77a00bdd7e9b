"""Compute scaling (issue 12): the same pure-Python chunks on ragged and on what Python offers.

Each contestant runs workers that do chunks of pure-Python work (``stress.work``,
calibrated to ~50µs) back to back, and counts the chunks it completes inside a
common measuring window:

* ragged procs=1 with one goroutine, procs=2 with two, and procs=2 with four
  (the issue's "4 goroutines"), each chunk followed by ``await
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
out of the figure, which is the steady rate: chunks / window.

Fairness on the free-threaded build: an object's reference count is cheap
only for the thread that created it (biased reference counting) and costs an
atomic operation from any other thread.  Every contestant runs the same worker
function on a thread that is not the main thread, and that function first
makes private copies of its arguments (the chunk size and the window bounds,
created by the main thread) so that everything touched per chunk -- the
range, the ints, the floats -- is created by the thread doing the chunk.  What
is left shared is the same for all: the function and code objects (deferred
reference counts) and immortal builtins.

Rounds interleave the contestants (the order reversed every other round) so
a noisy neighbour hits all alike; a contestant's figure is the median over
rounds with the min-max spread, and each ratio is computed per round (the two
sides of each ratio the issue names run one after the other), then
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


def count_chunks(n: int, start: float, deadline: float) -> int:
    """Do chunks of ``work(n)`` until ``deadline``; return how many completed in ``[start, deadline)``.

    Module-level so that ProcessPoolExecutor can send it to its workers.
    """
    n, start, deadline = _private(n, start, deadline)
    w, clock = work, perf
    count = 0
    while True:
        w(n)
        t = clock()
        if t >= deadline:
            return count
        if t >= start:
            count += 1


async def count_chunks_async(n: int, start: float, deadline: float, yield_: Callable[[], Awaitable[Any]]) -> int:
    """:func:`count_chunks` with ``await yield_()`` after each chunk (a goroutine's or a task's safe point).

    A twin of :func:`count_chunks` on purpose: the plain contestants run the
    bare loop, so the one difference measured is this ``await``.
    """
    n, start, deadline = _private(n, start, deadline)
    w, clock = work, perf
    count = 0
    while True:
        w(n)
        t = clock()
        if t >= deadline:
            return count
        if t >= start:
            count += 1
        await yield_()


def _aio_yield() -> Awaitable[None]:
    return asyncio.sleep(0)


def _pid_after(seconds: float) -> int:
    """A warm-up task for the process pool: proves a worker process is up."""
    time.sleep(seconds)
    return os.getpid()


# ------------------------------------------------------------------ the contestants

# A contestant's runner: (n, cfg) -> (chunk counts, one per worker; CPU seconds the process used in the window).
Runner = Callable[[int, ScalingConfig], tuple[list[int], float]]


def _window(cfg: ScalingConfig) -> tuple[float, float]:
    start = perf() + cfg.warmup
    return start, start + cfg.seconds


def _timeout(cfg: ScalingConfig) -> float:
    return cfg.warmup + cfg.seconds + 60.0


def _sleep_until(t: float) -> None:
    d = t - perf()
    if d > 0:
        time.sleep(d)


def _cpu_in(start: float, deadline: float) -> float:
    """CPU seconds this whole process used over the window ``[start, deadline)``.

    Called by the contestant's main thread once its workers are launched; it
    sleeps meanwhile (using no CPU itself) and samples ``process_time`` when
    each sleep ends, so the figure is scaled from the span actually covered
    to the window.  It includes the runtime's own threads (sysmon, spinning
    Ms): what a chunk really costs in CPU, a figure other processes' load
    hardly moves.
    """
    _sleep_until(start)
    c0, w0 = time.process_time(), perf()
    _sleep_until(deadline)
    c1, w1 = time.process_time(), perf()
    return (c1 - c0) * (deadline - start) / (w1 - w0) if w1 > w0 else math.nan


def _ragged(procs: int, goroutines: int) -> Runner:
    def run(n: int, cfg: ScalingConfig) -> tuple[list[int], float]:
        with ragged.Runtime(procs=procs) as rt:
            start, deadline = _window(cfg)
            gs = [
                rt.go(count_chunks_async, n, start, deadline, ragged.checkpoint, name=f"chunks-{i}")
                for i in range(goroutines)
            ]
            cpu = _cpu_in(start, deadline)
            return [g.result(_timeout(cfg)) for g in gs], cpu

    return run


def _in_thread(target: Callable[[float, float], int], cfg: ScalingConfig) -> tuple[list[int], float]:
    """Run ``target(start, deadline)`` on a new plain thread; return ``([its result], CPU in the window)``."""
    out: list[int] = []  # appended by the worker thread only, read after join
    start, deadline = _window(cfg)
    th = threading.Thread(target=lambda: out.append(target(start, deadline)), name="bench-chunks", daemon=True)
    th.start()
    cpu = _cpu_in(start, deadline)
    th.join(_timeout(cfg))
    if not out:
        raise RuntimeError("the compute thread did not finish (see its traceback above)")
    return out, cpu


def _thread(n: int, cfg: ScalingConfig) -> tuple[list[int], float]:
    return _in_thread(lambda start, deadline: count_chunks(n, start, deadline), cfg)


def _asyncio(n: int, cfg: ScalingConfig) -> tuple[list[int], float]:
    return _in_thread(lambda start, deadline: asyncio.run(count_chunks_async(n, start, deadline, _aio_yield)), cfg)


def _submit_all(ex: Executor, workers: int, n: int, cfg: ScalingConfig) -> tuple[list[int], float]:
    """Submit one task per worker; the CPU figure is nan for a process pool (its workers' CPU is not ours)."""
    start, deadline = _window(cfg)
    futs = [ex.submit(count_chunks, n, start, deadline) for _ in range(workers)]
    cpu = _cpu_in(start, deadline) if isinstance(ex, ThreadPoolExecutor) else math.nan
    return [f.result(_timeout(cfg)) for f in futs], cpu


def _tpe(workers: int) -> Runner:
    def run(n: int, cfg: ScalingConfig) -> tuple[list[int], float]:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bench-tpe") as ex:
            return _submit_all(ex, workers, n, cfg)

    return run


@dataclass
class Contestant:
    """One way of running the chunks, and its chunks/s per round."""

    key: str
    label: str
    workers: int
    run: Runner | None  # None: not available here (``why`` says why)
    why: str = ""
    samples: list[float] | None = None  # chunks/s, one per round
    cpu: list[float] | None = None  # CPU seconds per chunk (whole process), one per round


# The ratios the table names (numerator, denominator), and context.
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
    # In this order (and reversed every other round) the two sides of each ratio the issue names run
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
        Contestant("ppe2", "ProcessPoolExecutor(2), 2 tasks (spawn)", 2, ppe, why),
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
            c.samples, c.cpu = [], []
        for r in range(cfg.rounds):
            show(f"compute scaling: round {r + 1}/{cfg.rounds}")
            for c in live if r % 2 == 0 else live[::-1]:
                assert c.run is not None and c.samples is not None and c.cpu is not None
                gc.collect()
                counts, cpu = c.run(n, cfg)
                c.samples.append(sum(counts) / cfg.seconds)
                c.cpu.append(cpu / sum(counts) if sum(counts) else math.nan)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    by_key = {c.key: c for c in cs}
    out_cs: dict[str, Any] = {}
    for c in cs:
        d: dict[str, Any] = {"label": c.label, "workers": c.workers, "installed": c.run is not None}
        if c.samples is not None and c.cpu is not None:
            d.update(spread(c.samples))
            d["cpu_per_chunk"] = spread(c.cpu)
            d["cores"] = spread([x * y for x, y in zip(c.cpu, c.samples, strict=True)])
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
        "CPU/chunk: CPU time of the whole process (runtime threads included; not for the process pool) per chunk; "
        "cores busy: that CPU per second of the window",
        "",
        "ratios, computed per round (median, min-max, each round)",
        "",
        table(["ratio", "median", "min-max", "rounds"], ratio_rows),
    ]
