"""The one waiter queue (``_core._park``): claims, ``WaitQueue``, ``park_on``/``ready`` and plain-thread waits.

A sudog's claim is the exactly-once rule of every wake-up: it is raced here by
many threads at once.  ``park_on`` and ``block_on`` are driven directly, with a
bare queue and lock, the way channels and sync build on them.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from conftest import wait_until

import ragged
from ragged import Chan
from ragged._core._park import Sudog, WaitQueue, block_on, park_on, ready, thread_note

ROUNDS = 200
RACERS = 6


class _G:
    """A stand-in goroutine for queue tests: nothing is woken, so only its id is read (repr)."""

    id = 0


def _sudog() -> Sudog:
    """A goroutine's sudog, for queue tests."""
    return Sudog(_G())  # type: ignore[arg-type]  # a non-None g: no thread note is made


# ---------------------------------------------------------------- claims


@pytest.mark.timeout(60)
@pytest.mark.parametrize("shared", [False, True], ids=["one sudog", "select's shared claim"])
def test_exactly_one_of_many_racing_wakers_wins_a_claim(shared: bool) -> None:
    """RACERS threads released together try to claim the same waiter, ROUNDS times; with
    ``shared`` each racer targets its own sudog of one select (one claim for all of them)."""
    start = threading.Barrier(RACERS + 1)
    wins = [[0] * RACERS for _ in range(ROUNDS)]
    rounds: list[list[Sudog]] = []
    for _ in range(ROUNDS):
        if shared:
            claim = threading.Lock()
            rounds.append([Sudog(_G(), claim) for _ in range(RACERS)])  # type: ignore[arg-type]
        else:
            s = _sudog()
            rounds.append([s] * RACERS)

    def racer(k: int) -> None:
        for r, sudogs in enumerate(rounds):
            start.wait()
            if sudogs[k].try_claim():
                wins[r][k] += 1

    ts = [threading.Thread(target=racer, args=(k,)) for k in range(RACERS)]
    for t in ts:
        t.start()
    for _ in rounds:
        start.wait()
    for t in ts:
        t.join(30)
    assert [sum(w) for w in wins] == [1] * ROUNDS, "a waiter was claimed twice or never"


# ---------------------------------------------------------------- WaitQueue


def test_wait_queue_is_fifo_and_skips_waiters_someone_else_claimed() -> None:
    q = WaitQueue()
    a, b, c, d = (_sudog() for _ in range(4))
    for s in (a, b, c, d):
        q.push(s)
    assert len(q) == 4 and list(q) == [a, b, c, d]
    assert b.try_claim()  # b was cancelled or woken elsewhere: stale
    assert q.pop_claimed() is a
    assert q.pop_claimed() is c, "the stale waiter b must be skipped and dropped"
    assert len(q) == 1
    assert not a.try_claim() and not c.try_claim(), "pop_claimed wins the claim of what it returns"
    assert q.pop_claimed() is d and q.pop_claimed() is None


def test_peek_live_drops_stale_heads_without_claiming() -> None:
    q = WaitQueue()
    a, b = _sudog(), _sudog()
    q.push(a)
    q.push(b)
    assert a.try_claim()
    assert q.peek_live() is b
    assert list(q) == [b]
    assert b.try_claim(), "peek_live must not claim"


def test_drain_claimed_returns_only_the_live_waiters_and_empties_the_queue() -> None:
    q = WaitQueue()
    ss = [_sudog() for _ in range(5)]
    for s in ss:
        q.push(s)
    assert ss[1].try_claim() and ss[3].try_claim()
    assert q.drain_claimed() == [ss[0], ss[2], ss[4]]
    assert not q and len(q) == 0


def test_discard_removes_one_waiter_and_ignores_one_that_is_gone() -> None:
    q = WaitQueue()
    a, b = _sudog(), _sudog()
    q.push(a)
    q.push(b)
    q.discard(a)
    q.discard(a)
    assert list(q) == [b]


# ---------------------------------------------------------------- park_on / ready


class _Waits:
    """One wait queue and its owner's lock, as a channel or a Mutex has them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.q = WaitQueue()
        self.cancelled: list[tuple[Sudog, bool]] = []

    async def park(self) -> Any:
        self.lock.acquire()
        return await park_on(self.q, self.lock, "test wait", on_cancel=self._on_cancel)

    def _on_cancel(self, s: Sudog) -> None:
        self.cancelled.append((s, self.lock.locked()))

    def wake(self, value: Any = None, exc: BaseException | None = None) -> None:
        with self.lock:
            s = self.q.pop_claimed()
        assert s is not None, "nobody waits"
        ready(s, value, exc)


@pytest.mark.timeout(30)
def test_a_parked_goroutine_holds_no_p_and_gets_what_ready_passes() -> None:
    w = _Waits()

    async def main() -> list[Any]:
        g1 = ragged.go(w.park)
        g2 = ragged.go(w.park)
        while len(w.q) < 2:
            await ragged.gosched()  # procs=1: the parked goroutines left the P to us
        assert {g1.status, g2.status} == {"waiting"}
        assert not w.lock.locked(), "park_on must release the lock once the goroutine is parked"
        w.wake(42)
        w.wake(exc=KeyError("handed an error"))
        out = [await g1]
        try:
            await g2
        except KeyError as err:
            out.append(err.args[0])
        return out

    assert ragged.run(main, procs=1) == [42, "handed an error"]


@pytest.mark.timeout(30)
def test_cancel_while_parked_leaves_the_queue_and_runs_on_cancel_under_the_lock() -> None:
    w = _Waits()
    with ragged.Runtime(procs=2) as rt:
        g = rt.go(w.park)
        wait_until(lambda: len(w.q) == 1 and g.status == "waiting", 10, "the goroutine to park")
        g.cancel()
        with pytest.raises(ragged.Cancelled):
            g.result(timeout=10)
    assert len(w.q) == 0, "a cancelled waiter stayed queued"
    assert len(w.cancelled) == 1 and w.cancelled[0][1], "on_cancel did not run, or not under the lock"


def test_park_on_outside_a_goroutine_raises_and_releases_the_lock() -> None:
    w = _Waits()
    w.lock.acquire()
    with pytest.raises(ragged.NotInGoroutine):
        park_on(w.q, w.lock, "test wait").send(None)
    assert not w.lock.locked()
    assert len(w.q) == 0


# ---------------------------------------------------------------- plain threads


class _Registry:
    """What block_on needs of a runtime to make its waiters findable (close, deadlock)."""

    def __init__(self) -> None:
        self.waiters: set[Sudog] = set()
        self.seen = 0

    def thread_waiter_add(self, s: Sudog) -> None:
        self.waiters.add(s)
        self.seen += 1

    def thread_waiter_remove(self, s: Sudog) -> None:
        self.waiters.discard(s)


@pytest.mark.timeout(30)
def test_a_blocked_thread_gets_the_value_and_is_registered_while_it_waits() -> None:
    w = _Waits()
    reg = _Registry()
    out: list[Any] = []

    def waiter() -> None:
        w.lock.acquire()
        out.append(block_on(w.q, w.lock, "test wait", None, registry=reg))

    t = threading.Thread(target=waiter)
    t.start()
    wait_until(lambda: len(w.q) == 1, 10, "the thread to wait")
    assert len(reg.waiters) == 1
    w.wake("hello")
    t.join(10)
    assert out == ["hello"]
    assert reg.seen == 1 and not reg.waiters, "the waiter stayed registered"


@pytest.mark.timeout(30)
def test_a_timed_out_thread_leaves_the_queue() -> None:
    w = _Waits()
    w.lock.acquire()
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match="test wait"):
        block_on(w.q, w.lock, "test wait", 0.05)
    assert time.monotonic() - t0 >= 0.045
    assert len(w.q) == 0 and not w.lock.locked()


@pytest.mark.timeout(30)
def test_a_waker_that_won_the_claim_first_beats_the_timeout() -> None:
    """The waker claims, then is slow to call ready: the wait's timeout passes meanwhile.
    The thread must not report a timeout for an operation that happened; it waits for
    the wake that is on its way and returns its value."""
    w = _Waits()
    out: list[Any] = []

    def waiter() -> None:
        w.lock.acquire()
        out.append(block_on(w.q, w.lock, "test wait", 0.05))

    t = threading.Thread(target=waiter)
    t.start()
    wait_until(lambda: len(w.q) == 1, 10, "the thread to wait")
    with w.lock:
        s = w.q.pop_claimed()
    assert s is not None
    time.sleep(0.2)  # well past the waiter's timeout
    ready(s, "late but won")
    t.join(10)
    assert out == ["late but won"]


@pytest.mark.timeout(30)
def test_a_thread_sleeps_on_one_note_and_a_stale_wakeup_cannot_end_a_later_wait() -> None:
    """Plain-thread waits share the thread's note (``_park.thread_note``).  A wakeup
    left in it -- as an abandoned wait (a Ctrl-C mid-wait) leaves one when its waker
    comes later -- must not end the next wait early: waits loop on their sudog."""

    assert Sudog(None).note is thread_note() is Sudog(None).note
    ch: Chan[int] = Chan()
    with ragged.Runtime(procs=1):
        thread_note().wakeup()  # a stale wakeup
        t = time.monotonic()
        with pytest.raises(TimeoutError):
            ch.recv_blocking(timeout=0.05)
        assert time.monotonic() - t >= 0.045, "a stale wakeup ended the wait early"

        # And a real hand-off still reaches the thread right after.
        done: list[int] = []
        waiter = threading.Thread(target=lambda: done.append(ch.recv_blocking(timeout=10)))
        waiter.start()
        wait_until(lambda: len(ch._recvq) == 1, 10, "the thread to wait")
        ch.send_blocking(7, timeout=10)
        waiter.join(10)
        assert done == [7]
