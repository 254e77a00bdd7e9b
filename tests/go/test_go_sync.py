"""Go's own sync tests, ported: src/sync/{waitgroup,mutex,rwmutex,once}_test.go.

The Cond tests are in ``test_go_cond.py``.

Each ``test_go_X`` is Go's ``TestX`` run as a ragged program, the same steps in
the same order; see ``test_go_chan.py`` for the general rules of the port
(sizes cut to the suite's budget, ``await ragged.sleep`` for ``time.Sleep``,
``threading.Lock``-guarded counters for ``atomic``).  Go's misuse panics are
fatal throws tested in a subprocess; ragged raises at the call instead, so
those are plain ``pytest.raises``.

Not ported, and why:

* ``TestWaitGroupMisuse2`` / ``Misuse3``: Go *opportunistically* detects
  ``Add`` racing ``Wait`` and a reuse before ``Wait`` returned, from its packed
  atomic state word.  ragged's WaitGroup keeps its counter and waiters under
  one lock: both sequences are well defined there (``Wait`` returns when the
  counter reaches zero; a new ``Add`` starts a new round), so there is no
  misuse to detect.
* The benchmarks, ``TestMutexMisuse``'s subprocess harness (the misuse cases
  themselves are ported).
"""

from __future__ import annotations

import inspect
import threading
from typing import Any

import pytest
from test_go_chan import Counter, go_run, nothing_in

import ragged

# ---------------------------------------------------------------- WaitGroup


async def _test_waitgroup(wg1: ragged.WaitGroup, wg2: ragged.WaitGroup) -> None:
    n = 16
    wg1.add(n)
    wg2.add(n)
    exited: ragged.Chan[bool] = ragged.Chan(n)

    async def member() -> None:
        wg1.done()
        await wg2.wait()
        await exited.send(True)

    for _ in range(n):
        ragged.go(member)
    await wg1.wait()
    for _ in range(n):
        assert await nothing_in(exited), "WaitGroup released group too soon"
        wg2.done()
    for _ in range(n):
        await exited.recv()  # will block if the barrier fails to unlock someone


@pytest.mark.timeout(60)
def test_go_waitgroup() -> None:
    """TestWaitGroup: 16 goroutines pass wg1 and block on wg2 until main counts it down; run 8
    times on the same two WaitGroups to show each is reusable."""

    async def main() -> None:
        wg1, wg2 = ragged.WaitGroup(), ragged.WaitGroup()
        for _ in range(8):
            await _test_waitgroup(wg1, wg2)

    go_run(main)


def test_go_waitgroup_misuse() -> None:
    """TestWaitGroupMisuse: Done below zero is Go's "negative WaitGroup counter" (a ValueError)."""
    wg = ragged.WaitGroup()
    wg.add(1)
    wg.done()
    with pytest.raises(ValueError, match="sync: negative WaitGroup counter"):
        wg.done()


@pytest.mark.timeout(60)
def test_go_waitgroup_race() -> None:
    """TestWaitGroupRace: Wait returns only after both goroutines' increments (no spurious
    wakeup).  1000 rounds (Go: "about 1ms" of them)."""

    async def main() -> None:
        for i in range(1000):
            wg = ragged.WaitGroup()
            n = Counter()

            async def inc(n: Counter = n, wg: ragged.WaitGroup = wg) -> None:
                n.add(1)
                wg.done()

            wg.add(1)
            ragged.go(inc)
            wg.add(1)
            ragged.go(inc)
            await wg.wait()
            assert n.n == 2, f"spurious wakeup from Wait (round {i})"

    go_run(main)


@pytest.mark.timeout(60)
def test_go_waitgroup_align() -> None:
    """TestWaitGroupAlign: a WaitGroup inside another object, done by another goroutine."""

    class X:
        def __init__(self) -> None:
            self.x = b"\0"
            self.wg = ragged.WaitGroup()

    async def main() -> None:
        x = X()
        x.wg.add(1)

        async def done(x: X) -> None:
            x.wg.done()

        ragged.go(done, x)
        await x.wg.wait()

    go_run(main)


# ---------------------------------------------------------------- Mutex and semaphore


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["Semaphore", "Mutex"])
def test_go_semaphore_and_mutex(kind: str) -> None:
    """TestSemaphore / TestMutex: 10 goroutines lock and unlock 1000 times each; nothing is lost
    (the guarded counter ends at 10000) and nothing deadlocks."""

    async def main() -> int:
        if kind == "Mutex":
            m = ragged.Mutex()
            acquire, release = m.lock, m.unlock
        else:
            s = ragged.Semaphore(1)
            acquire, release = s.acquire, s.release
        c: ragged.Chan[bool] = ragged.Chan()
        count = [0]

        async def locked_incr() -> None:
            await acquire()
            count[0] += 1  # guarded by the lock itself: a lost update shows below

        async def hammer() -> None:
            for _ in range(1000):
                await locked_incr()
                release()
            await c.send(True)

        for _ in range(10):
            ragged.go(hammer)
        for _ in range(10):
            await c.recv()
        return count[0]

    assert go_run(main) == 10000


# Go's misuseTests: the lock, then the calls made on it; the last one must fail.
MISUSE = [
    ("Mutex.Unlock", ragged.Mutex, ["unlock"]),
    ("Mutex.Unlock2", ragged.Mutex, ["lock", "unlock", "unlock"]),
    ("RWMutex.Unlock", ragged.RWMutex, ["unlock"]),
    ("RWMutex.Unlock2", ragged.RWMutex, ["rlock", "unlock"]),
    ("RWMutex.Unlock3", ragged.RWMutex, ["lock", "unlock", "unlock"]),
    ("RWMutex.RUnlock", ragged.RWMutex, ["runlock"]),
    ("RWMutex.RUnlock2", ragged.RWMutex, ["lock", "runlock"]),
    ("RWMutex.RUnlock3", ragged.RWMutex, ["rlock", "runlock", "runlock"]),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("name", "kind", "calls"), MISUSE, ids=[m[0] for m in MISUSE])
def test_go_mutex_misuse(name: str, kind: type, calls: list[str]) -> None:
    """TestMutexMisuse: every unlock of what is not locked fails, naming an unlocked lock."""

    async def main() -> None:
        mu = kind()
        for call in calls:
            r = getattr(mu, call)()
            if inspect.isawaitable(r):
                await r

    with pytest.raises(ragged.RaggedError, match="unlocked"):
        go_run(main)


async def _mutex_fairness(hog_pause: float, n: int, waiter_pause: float) -> tuple[bool, int]:
    """A hog relocks a Mutex forever (holding it ``hog_pause`` each time); can a second goroutine
    take it ``n`` times (pausing ``waiter_pause`` before each) within 10 seconds?"""
    mu = ragged.Mutex()
    stop = threading.Event()
    rounds = [0]

    async def hog() -> None:
        while not stop.is_set():
            await mu.lock()
            rounds[0] += 1
            if hog_pause:
                await ragged.sleep(hog_pause)
            mu.unlock()

    ragged.go(hog)
    done: ragged.Chan[bool] = ragged.Chan()

    async def other() -> None:
        for _ in range(n):
            if waiter_pause:
                await ragged.sleep(waiter_pause)
            await mu.lock()
            mu.unlock()
        await done.send(True)

    ragged.go(other)
    k, _ = await ragged.select(done.recv_case(), ragged.after(10).recv_case())
    stop.set()
    return k == 0, rounds[0]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("hog_pause", "n", "waiter_pause"), [(100e-6, 10, 100e-6), (0.0, 20, 0.0)], ids=["Fairness", "Starvation"]
)
def test_go_mutex_fairness(hog_pause: float, n: int, waiter_pause: float) -> None:
    """TestMutexFairness: a goroutine that holds the mutex 100µs at a time, relocking at once,
    cannot keep a second goroutine from taking it 10 times within 10 seconds.  "Starvation" is
    the same with a hog that never pauses at all (Go's starvation mode, sync/mutex.go: a waiter
    blocked over 1ms gets the mutex handed over; ragged hands it over on every unlock) -- not one
    of Go's tests, which cover starvation with TestMutexFairness."""
    ok, rounds = go_run(_mutex_fairness, hog_pause, n, waiter_pause, procs=2)
    assert ok, f"can't acquire Mutex {n} times in 10 seconds (the hog took it {rounds} times)"


# ---------------------------------------------------------------- RWMutex


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("readers", "procs"), [(1, 4), (3, 4), (4, 2)])
def test_go_parallel_readers(readers: int, procs: int) -> None:
    """TestParallelReaders: n readers all hold the read lock at once, then all release it."""

    async def main() -> None:
        m = ragged.RWMutex()
        clocked: ragged.Chan[bool] = ragged.Chan()
        cunlock: ragged.Chan[bool] = ragged.Chan()
        cdone: ragged.Chan[bool] = ragged.Chan()

        async def parallel_reader() -> None:
            await m.rlock()
            await clocked.send(True)
            await cunlock.recv()
            m.runlock()
            await cdone.send(True)

        for _ in range(readers):
            ragged.go(parallel_reader)
        for _ in range(readers):  # wait for all parallel rlocks to succeed
            await clocked.recv()
        for _ in range(readers):
            await cunlock.send(True)
        for _ in range(readers):
            await cdone.recv()

    go_run(main, procs=procs)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("procs", "readers"),
    [(1, 1), (1, 3), (1, 10), (4, 1), (4, 3), (4, 10), (10, 1), (10, 3), (10, 10), (10, 5)],
)
def test_go_rwmutex(procs: int, readers: int) -> None:
    """TestRWMutex (HammerRWMutex): 2 writers and n readers, 100 iterations each (Go: 1000,
    -short 5); ``activity`` = active readers + 10000 x active writers is always legal."""
    iterations = 100

    async def main() -> None:
        activity = Counter()
        rwm = ragged.RWMutex()
        cdone: ragged.Chan[bool] = ragged.Chan()

        async def hammer(lock: Any, unlock: Any, delta: int, legal: Any) -> None:
            # Go's reader (delta 1) and writer (delta 10000) in one body.
            for _ in range(iterations):
                await lock()
                n = activity.add(delta)
                if not legal(n):
                    unlock()
                    raise AssertionError(f"wlock({n})")
                for _ in range(100):
                    pass
                activity.add(-delta)
                unlock()
            await cdone.send(True)

        def reader() -> Any:
            return hammer(rwm.rlock, rwm.runlock, 1, lambda n: 1 <= n < 10000)

        def writer() -> Any:
            return hammer(rwm.lock, rwm.unlock, 10000, lambda n: n == 10000)

        ragged.go(writer())
        i = 0
        while i < readers // 2:
            ragged.go(reader())
            i += 1
        ragged.go(writer())
        while i < readers:
            ragged.go(reader())
            i += 1
        for _ in range(2 + readers):  # wait for the 2 writers and all readers to finish
            await cdone.recv()

    go_run(main, procs=procs)


@pytest.mark.timeout(60)
def test_go_rlocker() -> None:
    """TestRLocker: ``rlocker()`` read-locks (twice), and respects the write lock."""

    async def main() -> None:
        wl = ragged.RWMutex()
        rl = wl.rlocker()
        wlocked: ragged.Chan[bool] = ragged.Chan(1)
        rlocked: ragged.Chan[bool] = ragged.Chan(1)
        n = 10

        async def body() -> None:
            for _ in range(n):
                await rl.lock()
                await rl.lock()
                await rlocked.send(True)
                await wl.lock()
                await wlocked.send(True)

        ragged.go(body)
        for _ in range(n):
            await rlocked.recv()
            rl.unlock()
            assert await nothing_in(wlocked), "RLocker() didn't read-lock it"
            rl.unlock()
            await wlocked.recv()
            assert await nothing_in(rlocked), "RLocker() didn't respect the write lock"
            wl.unlock()

    go_run(main)


# ---------------------------------------------------------------- Once


@pytest.mark.timeout(60)
def test_go_once() -> None:
    """TestOnce: 10 goroutines call ``once.do(increment)``; each sees 1 after its call returns."""

    async def main() -> int:
        o = [0]
        once = ragged.Once()
        c: ragged.Chan[bool] = ragged.Chan()
        bad: list[int] = []

        def increment() -> None:
            o[0] += 1

        async def run() -> None:
            await once.do(increment)
            if o[0] != 1:
                bad.append(o[0])
            await c.send(True)

        for _ in range(10):
            ragged.go(run)
        for _ in range(10):
            await c.recv()
        assert not bad, f"once failed inside run: {bad} is not 1"
        return o[0]

    assert go_run(main) == 1, "once failed outside run"


@pytest.mark.timeout(60)
def test_go_once_panic() -> None:
    """TestOncePanic: the first ``do`` raises; ``fn`` still counts as done, so no later ``do``
    calls its function."""

    async def main() -> None:
        once = ragged.Once()

        def fail() -> None:
            raise RuntimeError("failed")

        for i in range(2):
            try:
                await once.do(fail)
            except RuntimeError:
                assert i == 0, "Once.do() has raised on the second iteration"
            else:
                assert i == 1, "Once.do() has not raised on the first iteration"
        await once.do(lambda: None)

        def twice() -> None:
            raise AssertionError("Once called twice")

        await once.do(twice)

    go_run(main)
