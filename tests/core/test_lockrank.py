"""The lock-rank table (``_core._lockrank``) and its check.

``RankedLock`` is tested directly: rising ranks pass, a wait out of order
raises ``LockOrderError`` naming both locks before it waits, the channel rank's
address order, try-locks, a lock released by another thread.  Which kind of
lock the runtime really uses follows ``RAGGED_DEBUG`` at import: this file
checks whichever mode the suite runs in (CI runs it in both), and one
subprocess checks the debug mode end to end.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
from conftest import wait_until

import ragged
from ragged._core import _lockrank
from ragged._core._lockrank import CHECKING, ClaimLock, Rank, RankedLock, held_ranks, lock_maker, new_lock

_LOCK_TYPE = type(threading.Lock())


def test_locks_taken_in_rising_rank_pass_and_are_tracked() -> None:
    a, b, c = RankedLock(Rank.SCHED), RankedLock(Rank.CHAN), RankedLock(Rank.METRICS)
    with a, b:
        with c:
            assert held_ranks() == [Rank.SCHED, Rank.CHAN, Rank.METRICS]
        assert held_ranks() == [Rank.SCHED, Rank.CHAN]
    assert held_ranks() == []
    assert not (a.locked() or b.locked() or c.locked())


@pytest.mark.timeout(30)
def test_waiting_out_of_order_raises_at_once_naming_both_locks() -> None:
    """The wanted lock is held by another thread, so a wait would block: the check must
    raise before waiting, not after."""
    sched = RankedLock(Rank.SCHED, "sched.lock")
    timers = RankedLock(Rank.TIMERS, "Timers.lock")
    taken = threading.Event()
    done = threading.Event()

    def holder() -> None:
        with sched:
            taken.set()
            done.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    taken.wait(10)
    try:
        with timers:
            t0 = time.monotonic()
            with pytest.raises(ragged.LockOrderError) as info:
                sched.acquire()
            assert time.monotonic() - t0 < 5.0, "it waited: the holder keeps the lock for 10s"
        err = info.value
        assert isinstance(err, ragged.RaggedError)
        assert (err.held, err.wanted) == ("Timers.lock", "sched.lock")
        assert "waiting for sched.lock while holding Timers.lock" in str(err)
        assert "TIMERS" in str(err) and "SCHED" in str(err)
        assert held_ranks() == []
    finally:
        done.set()
        t.join(10)


def test_a_rank_without_a_same_rank_rule_refuses_a_second_lock_of_its_rank() -> None:
    a, b = RankedLock(Rank.SYNC, "first"), RankedLock(Rank.SYNC, "second")
    with a:
        with pytest.raises(ragged.LockOrderError, match="both rank SYNC"):
            b.acquire()
    assert not b.locked()


def test_channel_locks_may_be_held_together_only_in_address_order() -> None:
    assert Rank.CHAN in _lockrank.SAME_RANK
    locks = sorted((RankedLock(Rank.CHAN, f"chan{i}") for i in range(3)), key=id)
    with locks[0], locks[1], locks[2]:
        pass
    with locks[1]:
        with pytest.raises(ragged.LockOrderError, match="address order"):
            locks[0].acquire()


def test_a_try_lock_is_not_checked_but_counts_as_held() -> None:
    low, high = RankedLock(Rank.SCHED), RankedLock(Rank.TIMERS)
    with high:
        assert low.acquire(False), "acquire(False) never waits, so it may be taken in any order"
        assert held_ranks() == [Rank.TIMERS, Rank.SCHED]
        low.release()
    assert high.acquire(False)
    try:
        with pytest.raises(ragged.LockOrderError):
            RankedLock(Rank.CHAN).acquire()  # CHAN ranks below the try-locked TIMERS
    finally:
        high.release()


def test_timed_acquire_is_checked_and_a_failed_one_holds_nothing() -> None:
    lk = RankedLock(Rank.CHAN)
    lk.acquire()
    got: list[bool] = []
    t = threading.Thread(target=lambda: got.append(lk.acquire(timeout=0.01)))
    t.start()
    t.join(10)
    assert got == [False]
    lk.release()
    with RankedLock(Rank.METRICS), pytest.raises(ragged.LockOrderError):
        lk.acquire(timeout=0.01)


@pytest.mark.timeout(30)
def test_a_lock_released_by_another_thread_leaves_its_takers_list() -> None:
    """park_on's lock is released by the M after the goroutine is suspended; a lock
    handed over like that must not stay on the taker's list."""
    lk = RankedLock(Rank.SYNC)
    lk.acquire()
    t = threading.Thread(target=lk.release)
    t.start()
    t.join(10)
    assert held_ranks() == []
    with RankedLock(Rank.SCHED):  # would raise if SYNC were still recorded as held
        pass
    with pytest.raises(RuntimeError):
        lk.release()  # not held: as threading.Lock


def test_a_claim_refuses_a_waiting_acquire() -> None:
    claim = ClaimLock()
    assert claim.acquire(False)
    assert not claim.acquire(False)
    assert claim.locked()
    with pytest.raises(ragged.LockOrderError, match="test-and-set"):
        claim.acquire()


def test_the_table_is_one_total_order_with_a_name_per_rank() -> None:
    ranks = list(Rank)
    assert [int(r) for r in ranks] == list(range(1, len(ranks) + 1))
    # The facts the docstring gives for the shape of the table.
    assert Rank.POLL < Rank.SCHED < min(Rank.COND, Rank.TIMER, Rank.CONTEXT, Rank.SYNC, Rank.CHAN, Rank.G)
    assert Rank.NETFD < Rank.POLL < Rank.POLLDESC < Rank.NETPOLL
    assert Rank.COND < Rank.SYNC, "Cond.wait unlocks its Mutex under the Cond's lock"
    assert Rank.TIMER < Rank.CHAN and Rank.TIMER < Rank.TIMERS, "a Timer sends and re-arms under its lock"


def test_the_lock_makers_follow_the_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_lockrank, "CHECKING", False)
    assert lock_maker(Rank.CHAN) is threading.Lock
    assert type(new_lock(Rank.SCHED)) is _LOCK_TYPE
    monkeypatch.setattr(_lockrank, "CHECKING", True)
    made = lock_maker(Rank.CHAN, "Chan._lock")()
    assert isinstance(made, RankedLock) and made.rank is Rank.CHAN and made.name == "Chan._lock"
    assert isinstance(new_lock(Rank.SCHED), RankedLock)


@pytest.mark.timeout(30)
def test_a_runtimes_locks_are_plain_locks_or_ranked_ones_as_the_mode_says() -> None:
    """Unchecked, the runtime's locks are ``threading.Lock`` itself (no wrapper, no cost);
    checked, each has its rank from the table."""
    ch: ragged.Chan[int] = ragged.Chan()
    with ragged.Runtime(procs=1) as rt:
        s = rt._sched
        g = rt.go(ch.recv)
        locks = {
            Rank.SCHED: s.lock,
            Rank.TIMERS: s.timers.lock,
            Rank.WORLDSEMA: s.worldsema.lock,
            Rank.ALLG: ragged._core._sched._allglock,
            Rank.THREAD_WAITERS: s._tw_lock,
            Rank.CHAN: ch._lock,
            Rank.G: g._lock,
            Rank.SYNC: ragged.Mutex()._lock,
            Rank.COND: ragged.Cond()._lock,
            Rank.METRICS: rt._metrics.lock,
        }
        ch.send_blocking(1, timeout=10)
        g.result(timeout=10)
    for rank, lk in locks.items():
        if CHECKING:
            assert isinstance(lk, RankedLock) and lk.rank is rank, (rank, lk)
        else:
            assert type(lk) is _LOCK_TYPE, (rank, type(lk))


_DEBUG_SCRIPT = """
import ragged
from ragged._core._lockrank import CHECKING, RankedLock
assert CHECKING
with ragged.Runtime(procs=2) as rt:
    assert isinstance(rt._sched.lock, RankedLock)
    with rt._sched.lock:
        with rt._sched.timers.lock:
            pass
    try:
        with rt._sched.timers.lock:
            rt._sched.lock.acquire()
    except ragged.LockOrderError as err:
        print("refused:", err.held, "->", err.wanted)
"""


@pytest.mark.timeout(60)
def test_ragged_debug_turns_the_check_on_for_the_whole_process() -> None:
    env = dict(os.environ, RAGGED_DEBUG="1")
    out = subprocess.run(
        [sys.executable, "-c", _DEBUG_SCRIPT], env=env, capture_output=True, text=True, timeout=50, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "refused: Timers.lock -> sched.lock"


@pytest.mark.timeout(60)
def test_a_barrier_callback_may_signal_a_cond_and_reset_a_timer_that_goroutines_use() -> None:
    """A barrier callback runs under the sched lock for idle Ps, so nothing may take the
    sched lock while holding a Cond's or a Timer's lock: Cond.wait unlocks its Mutex (which
    may wake a goroutine) outside its own lock, and a Timer arms and delivers outside its
    lock.  Here goroutines wait on a Cond and read a Timer while 100 barriers signal the
    Cond and reset the Timer from their callbacks; under RAGGED_DEBUG any wait out of rank
    order raises at once, without it a violation could deadlock (the timeout)."""
    procs = 3
    mu = ragged.Mutex()
    cond = ragged.Cond(mu)
    state = {"ticks": 0, "stop": False}

    async def waiter() -> int:
        woken = 0
        while True:
            async with cond:
                while state["ticks"] == woken and not state["stop"]:
                    await cond.wait()
                if state["stop"]:
                    return woken
                woken = state["ticks"]
            await ragged.sleep(0)

    async def timer_reader(t: ragged.Timer) -> int:
        got = 0
        while not state["stop"]:
            i, _ = await ragged.select(t.c.recv_case(), ragged.after(0.005).recv_case())
            got += i == 0
        return got

    with ragged.Runtime(procs=procs) as rt:
        timer = ragged.Timer(0.001, runtime=rt)

        def fn(p: object) -> None:
            state["ticks"] += 1
            cond.broadcast() if state["ticks"] % 2 else cond.signal()
            timer.reset(0.0005)

        gs = [rt.go(waiter) for _ in range(4)] + [rt.go(timer_reader, timer)]
        for _ in range(100):
            rt.for_each_p(fn)

        async def stop() -> None:
            async with cond:  # under the Cond's Mutex: no waiter can miss it
                state["stop"] = True
                cond.broadcast()

        rt.go(stop).result(timeout=30)
        for g in gs:
            g.result(timeout=30)
        timer.stop()


@pytest.fixture
def ranked_sched_locks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runtimes made in the test get a ranked sched lock, checked in either mode."""
    from ragged._core import _sched

    monkeypatch.setattr(_sched, "new_lock", lambda rank, name=None: RankedLock(rank, name))


def _counting(sched: object, name: str) -> list[int]:
    """Count the calls of ``sched.<name>`` (an instance attribute shadows the method)."""
    calls: list[int] = []
    real = getattr(sched, name)

    def counted(*args: object) -> object:
        calls.append(1)
        return real(*args)

    setattr(sched, name, counted)
    return calls


@pytest.mark.timeout(30)
def test_cond_wait_hands_its_mutex_on_outside_the_conds_lock(ranked_sched_locks: None) -> None:
    """Cond.wait unlocks its Mutex, which hands it to a parked goroutine and, with a P idle,
    wakes an M: that takes the sched lock, so the Cond's lock must not be held then."""
    with ragged.Runtime(procs=2) as rt:
        s = rt._sched
        mu = ragged.Mutex()
        cond = ragged.Cond(mu)
        cond._lock = RankedLock(Rank.COND, "Cond._lock")
        wakeps = _counting(s, "wakep")

        async def b() -> str:
            await mu.lock()
            mu.unlock()
            return "b ran"

        async def a() -> str:
            await mu.lock()
            gb = ragged.go(b)
            while not (len(mu._q) == 1 and s.npidle == 1 and s.nmspinning == 0):
                await ragged.gosched()  # until b waits for mu and its P is idle
            n = len(wakeps)
            await cond.wait()  # hands mu to b and readies it: wakep, with P1 idle
            assert len(wakeps) > n, "the hand-off woke no M: the path under test did not run"
            mu.unlock()
            return await gb

        ga = rt.go(a)
        wait_until(lambda: ga.status == "waiting" and ga.waitreason == "sync.Cond.Wait", 10, "a to wait on the Cond")
        cond.signal()
        assert ga.result(timeout=10) == "b ran"


@pytest.mark.timeout(30)
def test_a_timer_wakes_its_receiver_outside_the_timers_lock(ranked_sched_locks: None) -> None:
    """A firing Timer hands the time to a parked receiver; readying it may take the sched lock
    (from an M without a P it always does), so the Timer's lock must be released by then."""
    with ragged.Runtime(procs=2) as rt:
        t = ragged.Timer(3600, runtime=rt)
        t._lock = RankedLock(Rank.TIMER, "Timer._lock")
        g = rt.go(t.c.recv)
        wait_until(lambda: len(t.c._recvq) == 1, 10, "the receiver to park")
        t.reset(0.01)
        assert isinstance(g.result(timeout=10), float)
