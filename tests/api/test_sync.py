"""sync primitives: Mutex, RWMutex, WaitGroup, Once, Cond, Semaphore.

Each one parks waiters (status "waiting", no P held) and hands the resource
over in FIFO order; misuse raises at once.
"""

from __future__ import annotations

import threading
import time

import pytest
from conftest import wait_until

import ragged
from ragged import Cond, Mutex, Once, RWMutex, Semaphore, WaitGroup

# ---------------------------------------------------------------- Mutex


@pytest.mark.timeout(60)
@pytest.mark.parametrize("rep", range(2))
def test_mutex_protects_a_read_modify_write_that_awaits(rep: int) -> None:
    """8 Ps, 1,000 goroutines, each increments with an await between read and write."""
    n = 1000
    mu = Mutex()
    box = {"count": 0}

    async def worker() -> None:
        async with mu:
            v = box["count"]
            await ragged.gosched()
            box["count"] = v + 1

    async def main() -> int:
        gs = [ragged.go(worker) for _ in range(n)]
        for g in gs:
            await g
        return box["count"]

    assert ragged.run(main, procs=8) == n
    assert not mu.locked()


@pytest.mark.timeout(30)
def test_mutex_without_the_lock_loses_updates() -> None:
    """The control for the test above: the same workload unprotected is not exact."""
    box = {"count": 0}

    async def worker() -> None:
        v = box["count"]
        await ragged.gosched()
        box["count"] = v + 1

    async def main() -> int:
        for g in [ragged.go(worker) for _ in range(200)]:
            await g
        return box["count"]

    assert ragged.run(main, procs=2) < 200


@pytest.mark.timeout(30)
def test_mutex_waiters_park_and_are_served_in_order() -> None:
    mu = Mutex()
    order: list[int] = []

    async def waiter(i: int) -> None:
        await mu.lock()
        order.append(i)
        mu.unlock()

    async def main() -> None:
        await mu.lock()
        gs = []
        for i in range(10):
            g = ragged.go(waiter, i)
            while g.status != "waiting":
                await ragged.sleep(0.001)
            assert g.waitreason == "sync.Mutex.Lock"
            gs.append(g)
        assert not mu.try_lock()
        mu.unlock()
        for g in gs:
            await g

    ragged.run(main, procs=4)
    assert order == list(range(10))


def test_mutex_misuse() -> None:
    mu = Mutex()
    with pytest.raises(ragged.RaggedError, match="unlock of unlocked mutex"):
        mu.unlock()
    assert mu.try_lock() and mu.locked()
    mu.unlock()  # from a plain thread: allowed, as in Go
    assert not mu.locked()


@pytest.mark.timeout(30)
def test_cancelled_mutex_waiter_does_not_take_the_lock() -> None:
    mu = Mutex()

    async def main() -> None:
        await mu.lock()
        a = ragged.go(mu.lock)
        b = ragged.go(mu.lock)
        while not (a.status == b.status == "waiting"):
            await ragged.sleep(0.001)
        a.cancel()
        with pytest.raises(ragged.Cancelled):
            await a
        mu.unlock()
        await b  # b got it, a never did
        assert mu.locked()
        mu.unlock()

    ragged.run(main, procs=2)


@pytest.mark.timeout(60)
def test_handed_off_mutex_survives_a_racing_cancel() -> None:
    """An unlock that handed the mutex to a parked waiter is never undone by a late cancel."""
    mu = Mutex()
    owned: list[int] = []

    async def waiter(i: int) -> None:
        await mu.lock()
        owned.append(i)
        try:
            await ragged.sleep(10)  # the re-posted cancel lands here
        finally:
            mu.unlock()

    with ragged.Runtime(procs=1) as rt:
        for i in range(100):
            assert mu.try_lock()
            g = rt.go(waiter, i)
            wait_until(lambda g=g: g.status == "waiting", what="waiter parked")
            mu.unlock()  # hands the lock to g
            g.cancel()
            with pytest.raises(ragged.Cancelled):
                g.result(timeout=10)
            assert not mu.locked()
    assert owned == list(range(100))


# ---------------------------------------------------------------- RWMutex


@pytest.mark.timeout(60)
def test_rwmutex_readers_share_writers_exclude() -> None:
    rw = RWMutex()
    state = {"readers": 0, "writers": 0, "max_readers": 0, "value": 0}
    # Readers hold the read lock together and may run in parallel (free-threaded
    # build): their own count needs a lock of its own.
    count = threading.Lock()

    async def reader() -> None:
        for _ in range(20):
            async with rw.rlocker():
                with count:
                    state["readers"] += 1
                    assert state["writers"] == 0
                    state["max_readers"] = max(state["max_readers"], state["readers"])
                await ragged.gosched()
                with count:
                    state["readers"] -= 1

    async def writer() -> None:
        for _ in range(20):
            async with rw:
                assert state["readers"] == 0 and state["writers"] == 0
                state["writers"] += 1
                v = state["value"]
                await ragged.gosched()
                state["value"] = v + 1
                state["writers"] -= 1

    async def main() -> None:
        gs = [ragged.go(reader) for _ in range(20)] + [ragged.go(writer) for _ in range(5)]
        for g in gs:
            await g

    ragged.run(main, procs=4)
    assert state["value"] == 100
    assert state["max_readers"] > 1


@pytest.mark.timeout(30)
def test_waiting_writer_holds_back_new_readers() -> None:
    rw = RWMutex()
    events: list[str] = []

    async def writer() -> None:
        await rw.lock()
        events.append("writer")
        rw.unlock()

    async def late_reader() -> None:
        await rw.rlock()
        events.append("reader")
        rw.runlock()

    async def main() -> None:
        await rw.rlock()
        w = ragged.go(writer)
        while w.status != "waiting":
            await ragged.sleep(0.001)
        assert w.waitreason == "sync.RWMutex.Lock"
        r = ragged.go(late_reader)
        while r.status != "waiting":
            await ragged.sleep(0.001)
        assert r.waitreason == "sync.RWMutex.RLock"
        rw.runlock()
        await w
        await r

    ragged.run(main, procs=2)
    assert events == ["writer", "reader"]


@pytest.mark.timeout(30)
def test_cancelled_waiting_writer_lets_readers_in() -> None:
    rw = RWMutex()

    async def main() -> None:
        await rw.rlock()
        w = ragged.go(rw.lock)
        while w.status != "waiting":
            await ragged.sleep(0.001)
        r = ragged.go(rw.rlock)
        while r.status != "waiting":
            await ragged.sleep(0.001)
        w.cancel()
        with pytest.raises(ragged.Cancelled):
            await w
        await r  # admitted once the writer left
        rw.runlock()
        rw.runlock()

    ragged.run(main, procs=2)


def test_rwmutex_misuse() -> None:
    rw = RWMutex()
    with pytest.raises(ragged.RaggedError, match="RUnlock of unlocked RWMutex"):
        rw.runlock()
    with pytest.raises(ragged.RaggedError, match="Unlock of unlocked RWMutex"):
        rw.unlock()


# ---------------------------------------------------------------- WaitGroup


@pytest.mark.timeout(30)
def test_waitgroup_waits_for_every_goroutine() -> None:
    wg = WaitGroup()
    done: list[int] = []

    async def work(i: int) -> None:
        await ragged.sleep(0.001 * (i % 5))
        done.append(i)
        wg.done()

    async def main() -> int:
        wg.add(100)
        for i in range(100):
            ragged.go(work, i)
        await wg.wait()
        await wg.wait()  # at zero: returns at once
        return len(done)

    assert ragged.run(main, procs=4) == 100


@pytest.mark.timeout(30)
def test_waitgroup_from_a_plain_thread() -> None:
    wg = WaitGroup()

    async def work() -> None:
        await ragged.sleep(0.01)
        wg.done()

    with ragged.Runtime(procs=2) as rt:
        wg.add(10)
        for _ in range(10):
            rt.go(work)
        wg.wait_blocking(timeout=10)
        wg.add(1)
        with pytest.raises(TimeoutError):
            wg.wait_blocking(timeout=0.02)
        wg.done()
        wg.wait_blocking()


def test_waitgroup_misuse() -> None:
    wg = WaitGroup()
    with pytest.raises(ValueError, match="negative WaitGroup counter"):
        wg.done()
    wg.add(2)
    with pytest.raises(ValueError, match="negative"):
        wg.add(-3)
    assert "counter=2" in repr(wg)  # unchanged by the failed add
    with pytest.raises(TypeError):
        wg.add(1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="NaN"):
        wg.wait_blocking(timeout=float("nan"))
    with pytest.raises(TimeoutError):
        wg.wait_blocking(timeout=-1)  # already expired, as a timeout of 0


@pytest.mark.timeout(30)
def test_waiters_hold_no_p_and_burn_no_cpu() -> None:
    """1,000 goroutines parked on a WaitGroup leave every P idle and the CPU quiet."""
    wg = WaitGroup()
    wg.add(1)
    with ragged.Runtime(procs=4) as rt:
        gs = [rt.go(wg.wait) for _ in range(1000)]
        wait_until(lambda: all(g.status == "waiting" for g in gs), what="all parked")
        assert {g.waitreason for g in gs} == {"sync.WaitGroup.Wait"}
        wait_until(lambda: rt._sched.npidle == rt.procs, what="every P idle")
        wall, cpu = time.monotonic(), time.process_time()
        time.sleep(0.3)
        wall, cpu = time.monotonic() - wall, time.process_time() - cpu
        assert rt._sched.npidle == rt.procs
        assert cpu < wall / 2, f"parked goroutines used {cpu:.3f}s CPU in {wall:.3f}s"
        wg.done()
        for g in gs:
            g.result(timeout=10)


# ---------------------------------------------------------------- Once


@pytest.mark.timeout(60)
@pytest.mark.parametrize("asynchronous", [False, True])
def test_once_runs_once_among_1000_goroutines(asynchronous: bool) -> None:
    once = Once()
    calls: list[int] = []

    def plain() -> None:
        calls.append(1)

    async def slow() -> None:
        await ragged.sleep(0.01)
        calls.append(1)

    async def worker() -> int:
        await once.do(slow if asynchronous else plain)
        return len(calls)  # the call has finished before anyone returns

    async def main() -> list[int]:
        gs = [ragged.go(worker) for _ in range(1000)]
        return [await g for g in gs]

    assert ragged.run(main, procs=8) == [1] * 1000
    assert calls == [1] and once.done()


@pytest.mark.timeout(30)
def test_once_counts_a_raising_call_as_done() -> None:
    once = Once()

    def boom() -> None:
        raise KeyError("once")

    async def main() -> None:
        with pytest.raises(KeyError):
            await once.do(boom)
        await once.do(boom)  # not called again

        async def recurse() -> None:
            await inner.do(recurse)

        inner = Once()
        with pytest.raises(ragged.RaggedError, match="deadlock"):
            await inner.do(recurse)

    ragged.run(main, procs=1)


# ---------------------------------------------------------------- Cond


@pytest.mark.timeout(30)
def test_cond_signal_and_broadcast() -> None:
    cond = Cond()
    state = {"ready": 0, "woken": 0}

    async def waiter() -> None:
        async with cond:
            while state["ready"] == 0:
                await cond.wait()
            state["woken"] += 1

    async def main() -> None:
        gs = [ragged.go(waiter) for _ in range(10)]
        while not all(g.status == "waiting" for g in gs):
            await ragged.sleep(0.001)
        assert {g.waitreason for g in gs} == {"sync.Cond.Wait"}
        async with cond:
            state["ready"] = 1
            cond.signal()
        while state["woken"] < 1:
            await ragged.sleep(0.001)
        await ragged.sleep(0.01)
        assert state["woken"] == 1
        cond.broadcast()
        for g in gs:
            await g
        assert state["woken"] == 10

    ragged.run(main, procs=4)


@pytest.mark.timeout(30)
def test_cond_wait_relocks_even_when_cancelled() -> None:
    cond = Cond(Mutex())

    async def waiter() -> bool:
        async with cond:
            try:
                await cond.wait()
            except ragged.Cancelled:
                return cond.L.locked()
        return False

    async def main() -> bool:
        g = ragged.go(waiter)
        while g.status != "waiting":
            await ragged.sleep(0.001)
        g.cancel()
        held = await g
        assert not cond.L.locked()
        return held

    assert ragged.run(main, procs=2) is True


@pytest.mark.timeout(60)
def test_cond_producer_consumer_queue() -> None:
    """A bounded queue on one Mutex and two Conds, the queue.Queue pattern."""
    mu = Mutex()
    not_empty, not_full = Cond(mu), Cond(mu)
    items: list[int] = []
    cap, n, producers = 4, 300, 4

    async def put(v: int) -> None:
        async with mu:
            while len(items) >= cap:
                await not_full.wait()
            items.append(v)
            not_empty.signal()

    async def get() -> int:
        async with mu:
            while not items:
                await not_empty.wait()
            v = items.pop(0)
            not_full.signal()
            return v

    async def produce(base: int) -> None:
        for i in range(n):
            await put(base + i)

    async def consume(k: int) -> list[int]:
        return [await get() for _ in range(k)]

    async def main() -> list[int]:
        ps = [ragged.go(produce, p * n) for p in range(producers)]
        cs = [ragged.go(consume, n) for _ in range(producers)]
        out: list[int] = []
        for g in ps + cs:
            r = await g
            out.extend(r or [])
        return out

    assert sorted(ragged.run(main, procs=4)) == list(range(producers * n))


# ---------------------------------------------------------------- Semaphore


@pytest.mark.timeout(60)
def test_semaphore_bounds_concurrency() -> None:
    sem = Semaphore(3)
    state = {"in": 0, "max": 0}
    # The holders run in parallel on a free-threaded build: their count needs
    # a lock of its own (unlocked, a lost decrement made it read 4 on 3.13t).
    count = threading.Lock()

    async def worker() -> None:
        async with sem:
            with count:
                state["in"] += 1
                state["max"] = max(state["max"], state["in"])
            await ragged.sleep(0.001)
            with count:
                state["in"] -= 1

    async def main() -> None:
        for g in [ragged.go(worker) for _ in range(60)]:
            await g

    ragged.run(main, procs=4)
    assert state["max"] == 3 and state["in"] == 0 and sem.value == 3


def test_semaphore_misuse() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        Semaphore(-1)
    with pytest.raises(TypeError):
        Semaphore(1.5)  # type: ignore[arg-type]
    sem = Semaphore(1)
    with pytest.raises(ValueError, match="released more times"):
        sem.release()
    assert sem.try_acquire() and not sem.try_acquire()
    sem.release()
    assert Semaphore(0).value == 0


@pytest.mark.timeout(30)
def test_unlock_from_a_plain_thread_wakes_a_goroutine() -> None:
    mu = Mutex()
    with ragged.Runtime(procs=2) as rt:
        assert mu.try_lock()
        g = rt.go(mu.lock)
        wait_until(lambda: g.status == "waiting", what="goroutine parked on the mutex")
        t0 = time.monotonic()
        threading.Thread(target=mu.unlock).start()
        g.result(timeout=10)
        assert time.monotonic() - t0 < 5
        assert mu.locked()
        mu.unlock()
