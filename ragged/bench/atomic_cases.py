"""The ``atomic`` part of ``python -m ragged.bench --peers``: ``AtomicInt`` beside a lock-guarded int.

Two workers increment one shared counter ``n`` times each, at the same time:

* **ragged AtomicInt** (ours): two goroutines on ``procs=2``, ``a.add(1)``;
* **ragged Lock**: two goroutines on ``procs=2``, ``with lock: c.n += 1``
  (a ``threading.Lock``);
* **threading Lock**: two plain threads, the same locked increment.

The goroutines await ``checkpoint()`` every 1,024 increments (as long loops
should) and otherwise only increment.  The rate is ``2n`` over the time from
the first worker's start to the last one's end; every run checks that the
counter ends at exactly ``2n``.  On the GIL build two Ps cannot run Python at
the same time, so the figure says what an ``AtomicInt`` costs beside a lock;
on a free-threaded build the two workers really contend.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import ragged
from ragged import AtomicInt

perf = time.perf_counter
WORKERS = 2
CHUNK = 1024


class _Counter:
    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0


def _rate(n: int, spans: list[tuple[float, float]], got: int) -> dict[str, Any]:
    """Increments per second over the workers' common span; the count must be exact."""
    if got != WORKERS * n:
        raise AssertionError(f"lost increments: counter {got}, expected {WORKERS * n}")
    took = max(e for _, e in spans) - min(s for s, _ in spans)
    return {"value": WORKERS * n / took}


async def _atomic_worker(a: AtomicInt, n: int, spans: list[tuple[float, float]]) -> None:
    add, checkpoint = a.add, ragged.checkpoint
    t0 = perf()
    for _ in range(n // CHUNK):
        for _ in range(CHUNK):
            add(1)
        await checkpoint()
    spans.append((t0, perf()))


async def _lock_worker(lock: Any, c: _Counter, n: int, spans: list[tuple[float, float]]) -> None:
    checkpoint = ragged.checkpoint
    t0 = perf()
    for _ in range(n // CHUNK):
        for _ in range(CHUNK):
            with lock:
                c.n += 1
        await checkpoint()
    spans.append((t0, perf()))


Spans = list[tuple[float, float]]


def _on_ps(worker: Any, args: tuple[Any, ...], spans: Spans) -> None:
    """Run ``WORKERS`` goroutines ``worker(*args, spans)`` on a fresh runtime of ``WORKERS`` Ps."""
    with ragged.Runtime(procs=WORKERS) as rt:
        time.sleep(0.02)  # let the Ms start
        gs: list[ragged.Goroutine[None]] = [rt.go(worker, *args, spans, name=f"bench-{i}") for i in range(WORKERS)]
        for g in gs:
            g.result()


def ragged_atomic(n: int) -> dict[str, Any]:
    """Two goroutines on 2 Ps: ``AtomicInt.add(1)``."""
    n -= n % CHUNK
    a, spans = AtomicInt(), Spans()
    _on_ps(_atomic_worker, (a, n), spans)
    return _rate(n, spans, a.load())


def ragged_lock(n: int) -> dict[str, Any]:
    """Two goroutines on 2 Ps: ``with lock: c.n += 1``."""
    n -= n % CHUNK
    c, spans = _Counter(), Spans()
    _on_ps(_lock_worker, (threading.Lock(), c, n), spans)
    return _rate(n, spans, c.n)


def threads_lock(n: int) -> dict[str, Any]:
    """Two plain threads: ``with lock: c.n += 1``."""
    n -= n % CHUNK
    c, lock, spans = _Counter(), threading.Lock(), Spans()
    start = threading.Barrier(WORKERS)

    def work() -> None:
        start.wait()
        t0 = perf()
        for _ in range(n):
            with lock:
                c.n += 1
        spans.append((t0, perf()))

    threads = [threading.Thread(target=work) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return _rate(n, spans, c.n)
