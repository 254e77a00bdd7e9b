"""``python -m ragged.bench --peers``: ragged beside asyncio, threading and gevent (issue 6).

Everything is measured in one process run, side by side: each section runs
its cases ``runs`` times (5 by default), the cases of one repetition in
alternating order (forward, then reversed, ...) so that a noisy neighbour
hits every side alike.  Each ragged case gets a fresh ``ragged.Runtime``
(startup and shutdown are not timed).  A rate is reported as the median over
the runs and the worst run; where single operations are timed (a ping-pong
round trip, one barrier) their p99 and max over all runs are reported too.
Ratios are ragged / peer on the medians of the rates, so > 1 means ragged is
faster.

What each case does:

1. **spawn+join** (procs=1): a goroutine awaits ``ragged.go(noop)`` one at a
   time; and spawns N with ``ragged.go`` then awaits each.  Peers:
   ``await asyncio.create_task(noop())`` one at a time; ``create_task`` N then
   ``asyncio.gather``; ``threading.Thread(target=noop)`` ``start()`` +
   ``join()`` one at a time (fewer of them: a thread costs ~100x more);
   ``gevent.spawn(noop).join()`` one at a time; ``gevent.spawn`` N then
   ``gevent.joinall``.
2. **context switch** (procs=1): two goroutines each doing N ``await
   ragged.gosched()``; 2N switches.  Peers: two asyncio tasks each doing N
   ``await asyncio.sleep(0)``; two threads handing a turn back and forth with
   two ``threading.Event`` (set / wait / clear; 2 hand-offs per round); two
   greenlets each doing N ``gevent.sleep(0)``.
3. **channel ping-pong**: two goroutines, two unbuffered ``ragged.Chan``; one
   sends, the other echoes back (procs=1, and procs=2 for information).
   Peers: two tasks with two ``asyncio.Queue(1)``; two threads with two
   ``queue.Queue(1)``; two greenlets with two ``gevent.queue.Channel``
   (unbuffered).
4. **syscall-heavy**: 1,000 goroutines, each making ten ``await
   ragged.syscall(time.sleep, 0.001)`` in a row (10,000 blocking calls; the
   runtime releases the P and sysmon hands it on, starting Ms as needed), on
   procs=1 and procs=4.  Peers: 1,000 asyncio tasks each awaiting ten
   ``asyncio.to_thread(time.sleep, 0.001)`` (the loop's default executor,
   ``min(32, cpus + 4)`` threads); a ``ThreadPoolExecutor()`` with the default
   ``max_workers`` (the same formula) running 1,000 submitted tasks of ten
   sequential ``time.sleep(0.001)`` each, and the same with
   ``max_workers=64`` for context; gevent without monkey-patching, two ways:
   1,000 greenlets each doing ten ``gevent.sleep(0.001)`` (a timer on the hub,
   *not* a blocking call: what a monkey-patched ``time.sleep`` becomes), and
   1,000 greenlets each doing ten ``pool.spawn(time.sleep, 0.001).get()`` on a
   ``gevent.threadpool.ThreadPool(10)`` (the hub's default pool size: real
   blocking calls on real threads).  Thread-pool creation and shutdown are
   timed; the lower bound for W threads is 10,000 ms / W.
5. **checkpoint** (the issue-6 target): ns per iteration of a loop doing
   ``await ragged.checkpoint()`` with nothing pending, beside the same loop
   doing a plain attribute read ``obj.attr`` and an empty loop, all in one
   goroutine on procs=1 (loop overhead included on both sides, as the
   target says "in the same loop").  Each loop is cut into 100 chunks,
   interleaved, and the median chunk counts (robust against a loaded
   machine).  For information: the same loop calling an empty Python
   function, the floor under any safe point written as a Python call.
6. **for_each_p with all Ps idle** (procs=4, nothing else running):
   ``rt.for_each_p(lambda p: None)`` N times from a plain thread, and ``await
   ragged.for_each_p(...)`` N times from a goroutine (which holds one of the
   4 Ps); median, p99 and max of single barriers.

The targets (issue 6, and DESIGN.md's "Performance goals" where it asks for
more) are checked on the figures of the same run and reported PASS/MISS
with the margin.  gevent is optional (the ``peers`` extra); when it cannot be
imported its cases are reported as "not installed".  gevent is never
monkey-patched here: only its own APIs are used, so ragged's threads are
real threads.
"""

from __future__ import annotations

import asyncio
import gc
import math
import os
import platform
import queue
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import ragged

from .stats import fmt_time, percentile, table

try:  # gevent is optional: the `peers` extra
    import gevent
    import gevent.queue
    import gevent.threadpool
except ImportError:  # pragma: no cover - depends on the environment
    gevent = None  # type: ignore[assignment]

perf = time.perf_counter


@dataclass(frozen=True)
class Config:
    """Sizes of one peers run."""

    runs: int
    n_spawn: int  # goroutines / tasks / greenlets spawned and joined per run
    n_thread_spawn: int  # threads started and joined per run
    n_switch: int  # yields per goroutine / task / greenlet (two of them)
    n_thread_switch: int  # turns per thread (two threads)
    n_pingpong: int  # round trips per run (threads do the same number)
    sys_tasks: int  # goroutines / tasks making blocking calls
    sys_calls: int  # blocking calls each
    sys_seconds: float  # how long each blocking call sleeps
    n_check: int  # iterations of the checkpoint / attribute loops
    n_barrier: int  # for_each_p calls per run and caller


FULL = Config(
    runs=5,
    n_spawn=10_000,
    n_thread_spawn=1_000,
    n_switch=50_000,
    n_thread_switch=5_000,
    n_pingpong=10_000,
    sys_tasks=1_000,
    sys_calls=10,
    sys_seconds=0.001,
    n_check=1_000_000,
    n_barrier=1_000,
)
QUICK = Config(
    runs=2,
    n_spawn=500,
    n_thread_spawn=50,
    n_switch=1_000,
    n_thread_switch=200,
    n_pingpong=300,
    sys_tasks=50,
    sys_calls=3,
    sys_seconds=0.001,
    n_check=20_000,
    n_barrier=50,
)

SECTIONS = ("spawn", "switch", "pingpong", "syscall", "checkpoint", "barrier")


@dataclass
class Case:
    """One implementation of one section: what it does and how to run it once."""

    key: str
    label: str
    fn: Callable[[], dict[str, Any]] | None  # None: not installed
    ours: bool = False
    samples: list[float] = field(default_factory=list)  # the headline value, one per run
    extra: dict[str, list[float]] = field(default_factory=dict)  # other per-run values
    ops: list[float] = field(default_factory=list)  # single-operation times (seconds), all runs


def _default_workers() -> int:
    """``ThreadPoolExecutor``'s (and asyncio's default executor's) default ``max_workers``."""
    return min(32, (os.cpu_count() or 1) + 4)


async def _noop() -> None:
    return None


def _gnoop() -> None:
    return None


class _Obj:
    def __init__(self) -> None:
        self.attr = 1


def _rt_call(procs: int, fn: Callable[..., Any], *args: Any) -> dict[str, Any]:
    """Run ``fn(*args)`` as a goroutine on a fresh runtime (startup and shutdown untimed)."""
    with ragged.Runtime(procs=procs) as rt:
        return rt.go(fn, *args, name="bench").result()


# ------------------------------------------------------------------ 1 spawn+join


async def _rg_spawn_one(n: int) -> dict[str, Any]:
    go = ragged.go
    t0 = perf()
    for _ in range(n):
        await go(_noop)
    return {"value": n / (perf() - t0)}


async def _rg_spawn_all(n: int) -> dict[str, Any]:
    go = ragged.go
    t0 = perf()
    gs = [go(_noop) for _ in range(n)]
    for g in gs:
        await g
    return {"value": n / (perf() - t0)}


def _aio_spawn_one(n: int) -> dict[str, Any]:
    async def main() -> float:
        t0 = perf()
        for _ in range(n):
            await asyncio.create_task(_noop())
        return n / (perf() - t0)

    return {"value": asyncio.run(main())}


def _aio_spawn_gather(n: int) -> dict[str, Any]:
    async def main() -> float:
        t0 = perf()
        tasks = [asyncio.create_task(_noop()) for _ in range(n)]
        await asyncio.gather(*tasks)
        return n / (perf() - t0)

    return {"value": asyncio.run(main())}


def _thread_spawn(n: int) -> dict[str, Any]:
    t0 = perf()
    for _ in range(n):
        th = threading.Thread(target=_gnoop)
        th.start()
        th.join()
    return {"value": n / (perf() - t0)}


def _gevent_spawn_one(n: int) -> dict[str, Any]:
    spawn = gevent.spawn
    t0 = perf()
    for _ in range(n):
        spawn(_gnoop).join()
    return {"value": n / (perf() - t0)}


def _gevent_spawn_all(n: int) -> dict[str, Any]:
    t0 = perf()
    gs = [gevent.spawn(_gnoop) for _ in range(n)]
    gevent.joinall(gs)
    return {"value": n / (perf() - t0)}


# ------------------------------------------------------------------ 2 switch


async def _rg_yielder(n: int) -> None:
    gosched = ragged.gosched
    for _ in range(n):
        await gosched()


async def _rg_switch(n: int) -> dict[str, Any]:
    t0 = perf()
    a = ragged.go(_rg_yielder, n)
    b = ragged.go(_rg_yielder, n)
    await a
    await b
    return {"value": 2 * n / (perf() - t0)}


def _aio_switch(n: int) -> dict[str, Any]:
    async def yielder() -> None:
        for _ in range(n):
            await asyncio.sleep(0)

    async def main() -> float:
        t0 = perf()
        a = asyncio.create_task(yielder())
        b = asyncio.create_task(yielder())
        await a
        await b
        return 2 * n / (perf() - t0)

    return {"value": asyncio.run(main())}


def _thread_switch(n: int) -> dict[str, Any]:
    """Two threads handing a turn back and forth: 2 hand-offs per round."""
    mine, theirs = threading.Event(), threading.Event()

    def other() -> None:
        for _ in range(n):
            theirs.wait()
            theirs.clear()
            mine.set()

    th = threading.Thread(target=other)
    th.start()
    t0 = perf()
    for _ in range(n):
        theirs.set()
        mine.wait()
        mine.clear()
    dt = perf() - t0
    th.join()
    return {"value": 2 * n / dt}


def _gevent_switch(n: int) -> dict[str, Any]:
    def yielder() -> None:
        sleep = gevent.sleep
        for _ in range(n):
            sleep(0)

    t0 = perf()
    gevent.joinall([gevent.spawn(yielder), gevent.spawn(yielder)])
    return {"value": 2 * n / (perf() - t0)}


# ------------------------------------------------------------------ 3 ping-pong


async def _rg_pingpong(n: int) -> dict[str, Any]:
    a: ragged.Chan[int] = ragged.Chan()
    b: ragged.Chan[int] = ragged.Chan()

    async def echo() -> None:
        async for v in a:
            await b.send(v)

    g = ragged.go(echo)
    await a.send(-1)  # warm up: the echo goroutine is running and parked
    await b.recv()
    lat = []
    t0 = perf()
    for i in range(n):
        t = perf()
        await a.send(i)
        await b.recv()
        lat.append(perf() - t)
    rate = n / (perf() - t0)
    a.close()
    await g
    return {"value": rate, "ops": lat}


def _aio_pingpong(n: int) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        a: asyncio.Queue[int | None] = asyncio.Queue(1)
        b: asyncio.Queue[int | None] = asyncio.Queue(1)

        async def echo() -> None:
            while (v := await a.get()) is not None:
                await b.put(v)

        task = asyncio.create_task(echo())
        await a.put(-1)
        await b.get()
        lat = []
        t0 = perf()
        for i in range(n):
            t = perf()
            await a.put(i)
            await b.get()
            lat.append(perf() - t)
        rate = n / (perf() - t0)
        await a.put(None)
        await task
        return {"value": rate, "ops": lat}

    return asyncio.run(main())


def _blocking_pingpong(n: int, make_q: Callable[[], Any], start: Callable[..., Any]) -> dict[str, Any]:
    """Ping-pong for blocking queues: threads (queue.Queue) or greenlets (gevent Channel)."""
    a = make_q()
    b = make_q()

    def echo() -> None:
        while (v := a.get()) is not None:
            b.put(v)

    worker = start(echo)
    a.put(-1)
    b.get()
    lat = []
    t0 = perf()
    for i in range(n):
        t = perf()
        a.put(i)
        b.get()
        lat.append(perf() - t)
    rate = n / (perf() - t0)
    a.put(None)
    worker.join()
    return {"value": rate, "ops": lat}


def _start_thread(fn: Callable[[], None]) -> threading.Thread:
    th = threading.Thread(target=fn)
    th.start()
    return th


def _thread_pingpong(n: int) -> dict[str, Any]:
    return _blocking_pingpong(n, lambda: queue.Queue(1), _start_thread)


def _gevent_pingpong(n: int) -> dict[str, Any]:
    return _blocking_pingpong(n, gevent.queue.Channel, gevent.spawn)


# ------------------------------------------------------------------ 4 syscall-heavy


async def _rg_sys_worker(k: int, s: float) -> None:
    syscall = ragged.syscall
    sleep = time.sleep
    for _ in range(k):
        await syscall(sleep, s)


async def _rg_syscalls(n: int, k: int, s: float) -> dict[str, Any]:
    t0 = perf()
    gs = [ragged.go(_rg_sys_worker, k, s) for _ in range(n)]
    for g in gs:
        await g
    rate = n * k / (perf() - t0)
    return {"value": rate, "threads": ragged.metrics()["threads"]}


def _aio_syscalls(n: int, k: int, s: float) -> dict[str, Any]:
    async def task() -> None:
        for _ in range(k):
            await asyncio.to_thread(time.sleep, s)

    async def main() -> float:
        t0 = perf()
        await asyncio.gather(*(task() for _ in range(n)))
        return n * k / (perf() - t0)

    return {"value": asyncio.run(main()), "threads": _default_workers()}


def _tpe_syscalls(n: int, k: int, s: float, workers: int | None) -> dict[str, Any]:
    def task() -> None:
        for _ in range(k):
            time.sleep(s)

    t0 = perf()
    with ThreadPoolExecutor(max_workers=workers) as ex:
        futs = [ex.submit(task) for _ in range(n)]
        for f in futs:
            f.result()
        threads = ex._max_workers
    return {"value": n * k / (perf() - t0), "threads": threads}


def _gevent_sleeps(n: int, k: int, s: float) -> dict[str, Any]:
    def task() -> None:
        sleep = gevent.sleep
        for _ in range(k):
            sleep(s)

    t0 = perf()
    gevent.joinall([gevent.spawn(task) for _ in range(n)])
    return {"value": n * k / (perf() - t0), "threads": 0}


GEVENT_POOL = 10  # gevent's default hub threadpool size


def _gevent_threadpool(n: int, k: int, s: float) -> dict[str, Any]:
    t0 = perf()
    pool = gevent.threadpool.ThreadPool(GEVENT_POOL)

    def task() -> None:
        for _ in range(k):
            pool.spawn(time.sleep, s).get()

    try:
        gevent.joinall([gevent.spawn(task) for _ in range(n)], raise_error=True)
    finally:
        pool.kill()
    return {"value": n * k / (perf() - t0), "threads": GEVENT_POOL}


# ------------------------------------------------------------------ 5 checkpoint


CHECK_CHUNKS = 100


async def _rg_checkpoint(n: int) -> dict[str, Any]:
    """ns per iteration (loop included) of: empty loop, obj.attr, checkpoint, checkpoint held in a local.

    Also, for information, a call of an empty Python function (no await): the
    floor under any safe point written as a Python-level call.

    The ``n`` iterations of each loop are split into :data:`CHECK_CHUNKS`
    chunks (10,000 iterations each at full size, well under an OS time slice),
    the loops' chunks interleaved, and each loop's figure is the median of its
    chunks: a neighbour's burst then spoils a few chunks of every loop alike
    instead of the whole of one loop.
    """
    obj = _Obj()
    r = range(max(1, n // CHECK_CHUNKS))
    m = len(r)
    cp = ragged.checkpoint
    times: dict[str, list[float]] = {"empty": [], "attr": [], "call": [], "value": [], "local": []}
    for _ in range(CHECK_CHUNKS):
        t0 = perf()
        for _ in r:
            pass
        times["empty"].append((perf() - t0) / m)

        t0 = perf()
        for _ in r:
            obj.attr  # noqa: B018 - the attribute read is what is measured
        times["attr"].append((perf() - t0) / m)

        t0 = perf()
        for _ in r:
            _gnoop()
        times["call"].append((perf() - t0) / m)

        t0 = perf()
        for _ in r:
            await ragged.checkpoint()
        times["value"].append((perf() - t0) / m)

        t0 = perf()
        for _ in r:
            await cp()
        times["local"].append((perf() - t0) / m)
    return {k: statistics.median(v) for k, v in times.items()}


# ------------------------------------------------------------------ 6 barrier


def _noop_fn(_p: Any) -> None:
    return None


def _barrier_thread(n: int, procs: int) -> dict[str, Any]:
    with ragged.Runtime(procs=procs) as rt:
        time.sleep(0.05)  # let the Ms start and park
        rt.for_each_p(_noop_fn)  # warm up
        lat = []
        for _ in range(n):
            t = perf()
            rt.for_each_p(_noop_fn)
            lat.append(perf() - t)
    return {"value": statistics.median(lat), "ops": lat}


async def _rg_barrier(n: int) -> dict[str, Any]:
    for_each_p = ragged.for_each_p
    await for_each_p(_noop_fn)  # warm up
    lat = []
    for _ in range(n):
        t = perf()
        await for_each_p(_noop_fn)
        lat.append(perf() - t)
    return {"value": statistics.median(lat), "ops": lat}


def _barrier_goroutine(n: int, procs: int) -> dict[str, Any]:
    with ragged.Runtime(procs=procs) as rt:
        time.sleep(0.05)
        return rt.go(_rg_barrier, n, name="bench").result()


# ------------------------------------------------------------------ the sections


@dataclass
class Section:
    """A group of cases measured together, and how to show them."""

    key: str
    title: str
    unit: str  # "/s": a rate (higher is better); "s": a time (lower is better)
    what: str  # the unit in words
    cases: list[Case]
    ops_label: str = ""  # what one entry of Case.ops is, if any


BARRIER_PROCS = 4


def build(cfg: Config) -> list[Section]:
    """Every section and case for ``cfg``; gevent cases have ``fn=None`` when gevent is missing."""
    gv = gevent is not None
    c = cfg
    n, k, s = c.sys_tasks, c.sys_calls, c.sys_seconds
    dw = _default_workers()

    def gev(fn: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]] | None:
        return fn if gv else None

    return [
        Section(
            "spawn",
            "spawn+join (procs=1)",
            "/s",
            "spawn+join per second",
            [
                Case(
                    "ragged_one",
                    "ragged: await go(noop), one at a time",
                    lambda: _rt_call(1, _rg_spawn_one, c.n_spawn),
                    True,
                ),
                Case(
                    "ragged_all",
                    "ragged: go() all, then await each",
                    lambda: _rt_call(1, _rg_spawn_all, c.n_spawn),
                    True,
                ),
                Case(
                    "asyncio_one",
                    "asyncio: await create_task(noop()), one at a time",
                    lambda: _aio_spawn_one(c.n_spawn),
                ),
                Case("asyncio_gather", "asyncio: create_task all, then gather", lambda: _aio_spawn_gather(c.n_spawn)),
                Case(
                    "threading",
                    f"threading: Thread start()+join(), one at a time ({c.n_thread_spawn:,})",
                    lambda: _thread_spawn(c.n_thread_spawn),
                ),
                Case(
                    "gevent_one", "gevent: spawn(noop).join(), one at a time", gev(lambda: _gevent_spawn_one(c.n_spawn))
                ),
                Case("gevent_all", "gevent: spawn all, then joinall", gev(lambda: _gevent_spawn_all(c.n_spawn))),
            ],
        ),
        Section(
            "switch",
            "context switch (procs=1; two goroutines / tasks / threads / greenlets)",
            "/s",
            "switches per second",
            [
                Case(
                    "ragged", "ragged: 2 goroutines, await gosched()", lambda: _rt_call(1, _rg_switch, c.n_switch), True
                ),
                Case("asyncio", "asyncio: 2 tasks, await asyncio.sleep(0)", lambda: _aio_switch(c.n_switch)),
                Case(
                    "threading",
                    "threading: 2 threads handing a turn via 2 Events",
                    lambda: _thread_switch(c.n_thread_switch),
                ),
                Case("gevent", "gevent: 2 greenlets, gevent.sleep(0)", gev(lambda: _gevent_switch(c.n_switch))),
            ],
        ),
        Section(
            "pingpong",
            "channel ping-pong (unbuffered; one round trip = send + echo back)",
            "/s",
            "round trips per second",
            [
                Case(
                    "ragged_p1",
                    "ragged procs=1: 2 goroutines, 2 Chan()",
                    lambda: _rt_call(1, _rg_pingpong, c.n_pingpong),
                    True,
                ),
                Case(
                    "ragged_p2",
                    "ragged procs=2: 2 goroutines, 2 Chan()",
                    lambda: _rt_call(2, _rg_pingpong, c.n_pingpong),
                    True,
                ),
                Case("asyncio", "asyncio: 2 tasks, 2 asyncio.Queue(1)", lambda: _aio_pingpong(c.n_pingpong)),
                Case("threading", "threading: 2 threads, 2 queue.Queue(1)", lambda: _thread_pingpong(c.n_pingpong)),
                Case(
                    "gevent", "gevent: 2 greenlets, 2 gevent.queue.Channel", gev(lambda: _gevent_pingpong(c.n_pingpong))
                ),
            ],
            ops_label="round trip",
        ),
        Section(
            "syscall",
            f"syscall-heavy ({n:,} goroutines x {k} blocking sleeps of {s * 1e3:g}ms = {n * k:,} calls)",
            "/s",
            "blocking calls completed per second",
            [
                Case(
                    "ragged_p1",
                    "ragged procs=1: await ragged.syscall(time.sleep)",
                    lambda: _rt_call(1, _rg_syscalls, n, k, s),
                    True,
                ),
                Case(
                    "ragged_p4",
                    "ragged procs=4: await ragged.syscall(time.sleep)",
                    lambda: _rt_call(4, _rg_syscalls, n, k, s),
                    True,
                ),
                Case(
                    "asyncio",
                    f"asyncio: await asyncio.to_thread(time.sleep), default executor ({dw} threads)",
                    lambda: _aio_syscalls(n, k, s),
                ),
                Case(
                    "tpe",
                    f"ThreadPoolExecutor() default max_workers={dw}: {n:,} tasks of {k} sleeps",
                    lambda: _tpe_syscalls(n, k, s, None),
                ),
                Case(
                    "tpe64",
                    f"ThreadPoolExecutor(max_workers=64): {n:,} tasks of {k} sleeps",
                    lambda: _tpe_syscalls(n, k, s, 64),
                ),
                Case(
                    "gevent_sleep",
                    "gevent: greenlets, gevent.sleep (hub timer, not a blocking call)",
                    gev(lambda: _gevent_sleeps(n, k, s)),
                ),
                Case(
                    "gevent_pool",
                    f"gevent: greenlets, ThreadPool({GEVENT_POOL}).spawn(time.sleep).get()",
                    gev(lambda: _gevent_threadpool(n, k, s)),
                ),
            ],
        ),
        Section(
            "checkpoint",
            "checkpoint with nothing pending (one goroutine, procs=1; loop overhead included)",
            "s",
            "time per loop iteration",
            [
                Case("ragged", "await ragged.checkpoint()", lambda: _rt_call(1, _rg_checkpoint, c.n_check), True),
            ],
        ),
        Section(
            "barrier",
            f"for_each_p(lambda p: None) with all {BARRIER_PROCS} Ps idle (nothing else running)",
            "s",
            "median time of one barrier",
            [
                Case(
                    "thread",
                    "from a plain thread: rt.for_each_p",
                    lambda: _barrier_thread(c.n_barrier, BARRIER_PROCS),
                    True,
                ),
                Case(
                    "goroutine",
                    "from a goroutine: await ragged.for_each_p",
                    lambda: _barrier_goroutine(c.n_barrier, BARRIER_PROCS),
                    True,
                ),
            ],
            ops_label="barrier",
        ),
    ]


# ------------------------------------------------------------------ running


def _measure(sec: Section, runs: int, show: Callable[[str], None]) -> None:
    """Run every installed case of ``sec`` ``runs`` times, in alternating order."""
    cases = [c for c in sec.cases if c.fn is not None]
    for r in range(runs):
        show(f"{sec.key}: run {r + 1}/{runs}")
        order = cases if r % 2 == 0 else cases[::-1]
        for case in order:
            gc.collect()
            assert case.fn is not None
            out = case.fn()
            case.samples.append(out.pop("value"))
            case.ops.extend(out.pop("ops", ()))
            for name, v in out.items():
                case.extra.setdefault(name, []).append(float(v))


# Column headers for the ratio columns (ragged's cases).
SHORT = {
    "ragged_one": "ragged 1-by-1",
    "ragged_all": "ragged batch",
    "ragged": "ragged",
    "ragged_p1": "ragged p1",
    "ragged_p2": "ragged p2",
    "ragged_p4": "ragged p4",
}


def _case_dict(case: Case, unit: str) -> dict[str, Any]:
    if case.fn is None:
        return {"label": case.label, "ours": case.ours, "installed": False}
    xs = case.samples
    worst = min(xs) if unit == "/s" else max(xs)
    d: dict[str, Any] = {
        "label": case.label,
        "ours": case.ours,
        "installed": True,
        "median": statistics.median(xs),
        "worst": worst,
        "samples": xs,
    }
    for name, vs in case.extra.items():
        d[name] = statistics.median(vs)
    if case.ops:
        d["ops"] = {
            "count": len(case.ops),
            "p50": percentile(case.ops, 50),
            "p99": percentile(case.ops, 99),
            "max": max(case.ops),
        }
    return d


def _ratio(a: float | None, b: float | None) -> float:
    if a is None or b is None or not b:
        return math.nan
    return a / b


@dataclass(frozen=True)
class Target:
    """One goal checked in the run: ``value op bound``."""

    key: str
    label: str
    source: str  # "issue 6" or "DESIGN.md"
    value: float
    op: str  # "<=", ">=" or "<"
    bound: float
    unit: str  # "x" for ratios, "s" for times

    @property
    def passed(self) -> bool | None:
        if math.isnan(self.value):
            return None
        if self.op == "<=":
            return self.value <= self.bound
        if self.op == "<":
            return self.value < self.bound
        return self.value >= self.bound

    @property
    def margin(self) -> str:
        """How far from the bound, in words: 'x0.83 of the bound' style."""
        if self.passed is None:
            return "not measured"
        f = self.value / self.bound
        if self.op == ">=":
            return f"{f:.2f}x the minimum" + ("" if self.passed else f" ({(1 - f) * 100:.0f}% short)")
        return f"{f:.2f}x the maximum" + ("" if self.passed else f" ({(f - 1) * 100:.0f}% over)")


def _targets(secs: dict[str, dict[str, Any]]) -> list[Target]:
    def med(section: str, case: str) -> float | None:
        return secs[section]["cases"][case].get("median")

    chk = secs["checkpoint"]["cases"]["ragged"]
    ratio_check = _ratio(chk.get("median"), chk.get("attr"))
    sw = _ratio(med("switch", "ragged"), med("switch", "asyncio"))
    spawn_gather = _ratio(med("spawn", "ragged_all"), med("spawn", "asyncio_gather"))
    spawn_await = _ratio(med("spawn", "ragged_one"), med("spawn", "asyncio_one"))
    bar = med("barrier", "thread")
    bar_g = med("barrier", "goroutine")
    sys1 = _ratio(med("syscall", "ragged_p1"), med("syscall", "tpe"))
    sys4 = _ratio(med("syscall", "ragged_p4"), med("syscall", "tpe"))
    nan = math.nan
    return [
        Target("checkpoint", "checkpoint / obj.attr, same loop", "issue 6", ratio_check, "<=", 3, "x"),
        Target("switch_half", "gosched / asyncio sleep(0) switch rate, procs=1", "issue 6", sw, ">=", 0.5, "x"),
        Target("switch_design", "gosched / asyncio sleep(0) switch rate, procs=1", "DESIGN.md", sw, ">=", 2, "x"),
        Target(
            "spawn_gather",
            "spawn+join (go all, await each) / create_task+gather",
            "issue 6",
            spawn_gather,
            ">=",
            0.5,
            "x",
        ),
        Target("spawn_await", "spawn+join (one at a time) / create_task+await", "DESIGN.md", spawn_await, ">=", 1, "x"),
        Target(
            "barrier",
            f"for_each_p, {BARRIER_PROCS} idle Ps, plain thread: median",
            "issue 6",
            bar if bar else nan,
            "<",
            100e-6,
            "s",
        ),
        Target(
            "barrier_design",
            f"for_each_p, {BARRIER_PROCS} idle Ps, plain thread: median",
            "DESIGN.md",
            bar if bar else nan,
            "<=",
            20e-6,
            "s",
        ),
        Target(
            "barrier_g",
            f"for_each_p, {BARRIER_PROCS} idle Ps, from a goroutine: median",
            "issue 6",
            bar_g if bar_g else nan,
            "<",
            100e-6,
            "s",
        ),
        Target(
            "barrier_g_design",
            f"for_each_p, {BARRIER_PROCS} idle Ps, from a goroutine: median",
            "DESIGN.md",
            bar_g if bar_g else nan,
            "<=",
            20e-6,
            "s",
        ),
        Target("syscall_p1", "syscall-heavy procs=1 / ThreadPoolExecutor() rate", "issue 6", sys1, ">=", 1, "x"),
        Target("syscall_p4", "syscall-heavy procs=4 / ThreadPoolExecutor() rate", "issue 6", sys4, ">=", 1, "x"),
    ]


def _git_rev() -> str:
    """The commit of the ragged package measured (best effort), '+dirty' with local edits."""
    where = Path(ragged.__file__).resolve().parent

    def git(*cmd: str) -> str:
        try:
            return subprocess.run(["git", *cmd], cwd=where, capture_output=True, text=True, timeout=5).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    rev = git("rev-parse", "--short", "HEAD")
    if rev and git("status", "--porcelain", "--untracked-files=no", "--", "."):
        rev += "+dirty"
    return rev


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on every platform
        return None


def run(quiet: bool = False, quick: bool = False) -> dict[str, Any]:
    """The whole peer comparison; returns a JSON-ready dict (see :func:`render`).

    ``quick`` shrinks every size and does 2 runs (a smoke run of a few seconds).
    Progress lines go to stderr unless ``quiet``.
    """
    from .stress import progress_printer

    cfg = QUICK if quick else FULL
    t0 = perf()
    load0 = _loadavg()
    sections = build(cfg)
    show = progress_printer(len(sections) * cfg.runs) if not quiet else (lambda _what: None)
    for sec in sections:
        _measure(sec, cfg.runs, show)
    secs: dict[str, dict[str, Any]] = {}
    for sec in sections:
        secs[sec.key] = {
            "title": sec.title,
            "unit": sec.unit,
            "what": sec.what,
            "ops_label": sec.ops_label,
            "cases": {c.key: _case_dict(c, sec.unit) for c in sec.cases},
        }
    targets = _targets(secs)
    return {
        "kind": "peers",
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "switchinterval": sys.getswitchinterval(),
        "gevent": getattr(gevent, "__version__", None) if gevent is not None else None,
        "ragged": ragged.__version__,
        "git": _git_rev(),
        "loadavg_start": load0,
        "loadavg_end": _loadavg(),
        "quick": quick,
        "config": asdict(cfg),
        "seconds": perf() - t0,
        "sections": secs,
        "targets": [
            {
                "key": t.key,
                "label": t.label,
                "source": t.source,
                "value": t.value,
                "goal": f"{t.op} {_fmt_bound(t)}",
                "pass": t.passed,
                "margin": t.margin,
            }
            for t in targets
        ],
    }


# ------------------------------------------------------------------ rendering


def _fmt_bound(t: Target) -> str:
    return f"{t.bound:g}x" if t.unit == "x" else fmt_time(t.bound)


def _fmt(v: float | None, unit: str) -> str:
    if v is None or v != v:
        return "n/a"
    if unit == "/s":
        return f"{v:,.0f}/s"
    return fmt_time(v)


def _fmt_ratio(v: float) -> str:
    return "n/a" if v != v else f"{v:.2f}x"


def _section_text(sec: dict[str, Any]) -> list[str]:
    unit = sec["unit"]
    cases = sec["cases"]
    ours = [k for k, c in cases.items() if c["ours"] and c["installed"]]
    has_ops = any("ops" in c for c in cases.values())
    has_threads = any("threads" in c for c in cases.values())
    headers = ["implementation", "median", "worst run"]
    if has_ops:
        headers += [f"p99 {sec['ops_label']}", f"max {sec['ops_label']}"]
    if has_threads:
        headers.append("threads")
    for k in ours:
        headers.append(f"{SHORT.get(k, k)} / this")
    rows: list[list[object]] = []
    for key, c in cases.items():
        if not c["installed"]:
            row: list[object] = [c["label"], "not installed", "-"]
            row += ["-", "-"] if has_ops else []
            row += ["-"] if has_threads else []
            row += ["-"] * len(ours)
            rows.append(row)
            continue
        row = [c["label"], _fmt(c["median"], unit), _fmt(c["worst"], unit)]
        if has_ops:
            ops = c.get("ops")
            row += [fmt_time(ops["p99"]), fmt_time(ops["max"])] if ops else ["-", "-"]
        if has_threads:
            row.append(f"{c['threads']:.0f}" if "threads" in c else "-")
        for k in ours:
            if key == k or unit != "/s":
                row.append("-")
            else:
                row.append(_fmt_ratio(_ratio(cases[k]["median"], c["median"])))
        rows.append(row)
    return [f"{sec['title']}: {sec['what']}", "", table(headers, rows)]


def _checkpoint_text(sec: dict[str, Any]) -> list[str]:
    c = sec["cases"]["ragged"]
    rows = [
        ["empty loop", fmt_time(c["empty"])],
        ["obj.attr", fmt_time(c["attr"])],
        ["info: f() (an empty Python function, no await)", fmt_time(c["call"])],
        ["await ragged.checkpoint()", fmt_time(c["median"])],
        ["await cp()  (cp = ragged.checkpoint held in a local)", fmt_time(c["local"])],
    ]
    return [
        f"{sec['title']}: ns per iteration, median over runs of the median of {CHECK_CHUNKS} interleaved chunks",
        "",
        table(["loop body", "median"], rows),
        "",
        f"checkpoint / obj.attr = {_fmt_ratio(_ratio(c['median'], c['attr']))}; "
        f"with cp held in a local {_fmt_ratio(_ratio(c['local'], c['attr']))}; "
        f"empty loop subtracted from both {_fmt_ratio(_ratio(c['median'] - c['empty'], c['attr'] - c['empty']))}",
    ]


def render(data: dict[str, Any]) -> str:
    """The text report: one table per section, then the targets with PASS/MISS."""
    cfg = data["config"]
    gv = f"gevent {data['gevent']}" if data["gevent"] else "gevent not installed"
    la = data.get("loadavg_start")
    load = f"load average {la[0]:.2f} at start, {data['loadavg_end'][0]:.2f} at end" if la else ""
    out = [
        f"ragged {data['ragged']} ({data['git'] or 'no git'}) beside its peers: Python {data['python']}, "
        f"{data['cpus']} CPUs, {gv}; {load}",
        f"{cfg['runs']} runs per case, order alternated; median and worst run; ratios ragged/peer on the medians "
        f"(> 1: ragged faster); {data['seconds']:.0f}s in all" + (" (quick mode)" if data.get("quick") else ""),
    ]
    for key, sec in data["sections"].items():
        out.append("")
        out += _checkpoint_text(sec) if key == "checkpoint" else _section_text(sec)
    rows = []
    for t in data["targets"]:
        v = t["value"]
        shown = "n/a" if v != v else (f"{v:.2f}x" if t["goal"].endswith("x") else fmt_time(v))
        verdict = {True: "PASS", False: "MISS", None: "n/a"}[t["pass"]]
        rows.append([t["label"], t["source"], t["goal"], shown, verdict, t["margin"]])
    out += ["", "targets", "", table(["target", "from", "goal", "measured", "", "margin"], rows)]
    return "\n".join(out)
