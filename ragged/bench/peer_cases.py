"""The workloads of ``python -m ragged.bench --peers``: ragged and each peer, case by case.

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
5. **checkpoint**: ns per iteration of a loop doing
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
7. **atomic** (2 Ps): two goroutines incrementing one ``AtomicInt`` beside
   the same with a ``threading.Lock``-guarded int, and two plain threads with
   the lock (``atomic_cases`` says exactly how).

The floors and goals (``targets``; the goals are docs/design.md's
"Performance goals") are checked on the figures of the same run and reported PASS/MISS
with the margin.  gevent is optional (the ``peers`` extra); when it cannot be
imported its cases are reported as "not installed".  gevent is never
monkey-patched here: only its own APIs are used, so ragged's threads are
real threads.
"""

from __future__ import annotations

import asyncio
import os
import queue
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import ragged

try:  # gevent is optional: the `peers` extra
    import gevent
    import gevent.queue
    import gevent.threadpool
except ImportError:  # pragma: no cover - depends on the environment
    gevent = None

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
    n_atomic: int  # increments per worker (two workers) in the atomic part (atomic_cases)


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
    n_atomic=200_000,
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
    n_atomic=10_240,
)


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
