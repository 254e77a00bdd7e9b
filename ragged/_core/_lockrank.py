"""Every lock of the runtime and the one order they are taken in (Go's ``runtime/lockrank.go``).

The rule.  Each lock has a :class:`Rank`; a thread may wait for a lock only
while every lock it holds ranks *below* it.  Two locks of the same rank may be
held together only where the rank has a rule for it (:data:`SAME_RANK`):
channel locks are taken in address order (``select``).  A cycle in "holds A,
waits for B" is what a deadlock is; a total order on ranks rules every cycle
out.  ``acquire(False)`` never waits, so it is not checked (what it takes is
then held, and later waits are checked against it).

The table is :class:`Rank`, lowest first, one line per rank saying which
locks it covers and what they guard.  Its shape follows from three facts:

* ``for_each_p`` runs the barrier callback for idle Ps under the sched lock
  (as Go's ``forEachP`` does), and a callback may wake goroutines: send on a
  channel, unlock a Mutex, signal a Cond, stop a Timer, cancel a context or
  a goroutine, start one.  So ``SCHED`` ranks below every lock those take,
  and none of them is ever held while the sched lock is taken: a waker takes
  what it needs under the object's lock and readies goroutines (which may
  take the sched lock) after releasing it.  The exception is a Group, which
  starts and cancels its members under its lock: it ranks below the sched
  lock, and a barrier callback may not start group members.
* The network poller's locks are taken outside the sched lock (a poll readies
  goroutines onto the global queue under it), inside a ``ragged.net`` object's
  (closing a connection evicts its fd and readies its waiters under the
  object's lock); the poll's own lock comes before the fd's and the selector's.
* Leaves last: the timer heap, the goroutine table, the thread-waiter set, the
  checkpoint hint, metrics, the tracer and chaos hold nothing while held.

Not in the table, because they are not mutexes and nobody ever waits on them
while holding them: a sudog's claim and ``select``'s shared claim (a one-shot
test-and-set, only ever ``acquire(False)`` and never released); the lock of a
:class:`~ragged._core._note.LockNote` (a binary semaphore that the waking
thread releases); the poller's break signal (test-and-set, released by the
poller).  Under the check a claim refuses a waiting ``acquire``.

Checking.  With ``RAGGED_DEBUG`` set (to anything but 0/false/no/off) when
ragged is imported, every ranked lock is a :class:`RankedLock`: each waiting
acquire compares its rank with the locks this thread holds and raises
:class:`~ragged._core._errors.LockOrderError` at once, naming both, before it
waits.  Without it the lock classes below are ``threading.Lock`` itself: the
choice is made once, when a module binds its lock maker at import, and no
acquire pays for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from enum import IntEnum
from functools import partial
from typing import Any

from ._errors import LockOrderError
from ._settings import env_flag

__all__ = [
    "CHECKING",
    "SAME_RANK",
    "ClaimLock",
    "RankedLock",
    "Rank",
    "held_ranks",
    "lock_maker",
    "new_lock",
]


class Rank(IntEnum):
    """The rank of every runtime lock, lowest (taken first) first."""

    # Group._lock: a Group's member count, members, errors and waiters; held while it starts or
    # cancels a member (which may take the sched lock), so a barrier callback must not start members.
    GROUP = 1
    # ragged.net's _FdMutex.lock: a connection's closed flag, calls in flight, read/write turns and turn queues.
    NETFD = 2
    # WorldSema.lock: whether worldsema is held, its owner and its FIFO of waiters.
    WORLDSEMA = 3
    # sched.netpoll_init_lock: the runtime's poller is made once, under it.
    NETPOLL_INIT = 4
    # NetPoll.poll_lock: held by the one M inside the poll, and while it records what it found
    # (each fd's PollDesc.lock, the selector's NetPoll.lock) and readies those goroutines.
    POLL = 5
    # PollDesc.lock: one fd's waiter slots, deadlines, deadline timers, interest and ready record.
    POLLDESC = 6
    # NetPoll.lock: the selector's registrations, the fd map, nregistered, closed.
    NETPOLL = 7
    # sched.lock: idle P and M lists, nmspinning, gcwaiting, safe_point_fn, the global queue's
    # producers without a P; barrier callbacks for idle Ps run under it.
    SCHED = 8
    # Cond._lock: a Cond's waiter queue; held while Cond.wait unlocks the Cond's Mutex.
    COND = 9
    # Timer/Ticker _lock: the arming generation and heap entry; held across the non-blocking send.
    TIMER = 10
    # Context._lock: a cancellable context's error, children and deadline timer.
    CONTEXT = 11
    # Mutex, Semaphore, RWMutex, WaitGroup, Once _lock: the object's state and its wait queues.
    SYNC = 12
    # Chan._lock (Go's hchan.lock): buffer, closed flag, sendq and recvq.  Same rank: address order.
    CHAN = 13
    # Goroutine._lock: done, outcome, joiner queue, done callbacks, cancel_pending.
    G = 14
    # Timers.lock: a runtime's timer heap and timer0; held by ragged.sleep until its goroutine is parked.
    TIMERS = 15
    # Runtime._close_lock: the closing and closed flags, set once.
    CLOSE = 16
    # Runtime._unjoined_lock: goroutines that raised and that nobody joined.
    UNJOINED = 17
    # _sched._allglock: allgs, goroutine ids, ngcreated (with the runtime's closing flag read under it).
    ALLG = 18
    # sched._tw_lock: the plain threads blocked on this runtime's objects.
    THREAD_WAITERS = 19
    # _traps._pending_lock: the count of pending checkpoint requests and the checkpoint slot.
    CHECKPOINT = 20
    # Metrics.lock: counters and histograms.
    METRICS = 21
    # _trace._live_lock: the tracer in use and the runtimes it records.
    TRACE_LIVE = 22
    # Tracer._lock: a tracer's event buffer.
    TRACE = 23
    # Chaos._lock: the chaos injector's random generator.
    CHAOS = 24
    # TLSConn._ssl_lock: held for one non-blocking call into a TLS connection's SSL object.
    SSL = 25
    # _preempt._lock: whether the async-preemption events are on, and the monitoring tool id.
    PREEMPT = 26


# Ranks whose locks may be held several at once, and the order that makes it safe.  The key is
# what the order is taken on: ``select`` locks its channels sorted by ``id`` of their locks.
SAME_RANK: dict[Rank, str] = {Rank.CHAN: "address order (select takes channel locks sorted by id of the lock)"}

CHECKING = env_flag("RAGGED_DEBUG")

_held = threading.local()


def held_ranks() -> list[Rank]:
    """The ranks of the ranked locks this thread holds, in the order taken (for tests)."""
    return [lk.rank for lk in getattr(_held, "locks", ())]


def _violation(held: RankedLock, lock: RankedLock) -> LockOrderError:
    """The error for waiting for ``lock`` while holding ``held``."""
    rule = SAME_RANK.get(lock.rank)
    if held.rank == lock.rank:
        why = f"both rank {lock.rank.name}, taken against its rule: {rule}" if rule else f"both rank {lock.rank.name}"
    else:
        why = f"rank {held.rank.name} ({held.rank:d}) is above {lock.rank.name} ({lock.rank:d})"
    return LockOrderError(
        f"lock order: waiting for {lock.name} while holding {held.name} ({why}); "
        "a thread takes locks only in rising rank (ragged._core._lockrank.Rank)",
        held.name,
        lock.name,
    )


class RankedLock:
    """A ``threading.Lock`` that checks the rank order on every waiting acquire (``RAGGED_DEBUG``).

    ``name`` says which lock it is in errors.  The locks a thread holds are
    kept in a per-thread list; a lock released by another thread than the
    one that took it (a lock handed on, as ``park_on`` does) leaves the
    taker's list.
    """

    __slots__ = ("_lock", "rank", "name", "_owner")

    def __init__(self, rank: Rank, name: str | None = None) -> None:
        self._lock = threading.Lock()
        self.rank = rank
        self.name = name or rank.name.lower()
        self._owner: list[RankedLock] | None = None

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        held = getattr(_held, "locks", None)
        if held is None:
            held = _held.locks = []
        if blocking:
            for h in held:
                if h.rank > self.rank or (h.rank == self.rank and (self.rank not in SAME_RANK or id(h) >= id(self))):
                    raise _violation(h, self)
        if not self._lock.acquire(blocking, timeout):
            return False
        held.append(self)
        self._owner = held
        return True

    def release(self) -> None:
        owner = self._owner
        if owner is not None and self._lock.locked():
            self._owner = None
            try:
                owner.remove(self)
            except ValueError:  # pragma: no cover - released twice concurrently
                pass
        self._lock.release()  # raises RuntimeError if not held, as threading.Lock does

    def locked(self) -> bool:
        return self._lock.locked()

    __enter__ = acquire

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<RankedLock {self.name} rank={self.rank.name} {'locked' if self.locked() else 'unlocked'}>"


class ClaimLock:
    """A sudog's claim under the check: a one-shot test-and-set that refuses a waiting acquire."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if blocking:
            raise LockOrderError(
                "a sudog's claim is a test-and-set: take it with acquire(False); nobody may wait on it",
                "claim",
                "claim",
            )
        return self._lock.acquire(False)

    def locked(self) -> bool:
        return self._lock.locked()

    def release(self) -> None:
        self._lock.release()


def lock_maker(rank: Rank, name: str | None = None) -> Callable[[], Any]:
    """What makes the locks of ``rank``: ``threading.Lock`` itself, or a ranked lock maker.

    Bind it once at import (``_new_lock = lock_maker(Rank.CHAN, "Chan._lock")``)
    and call it per object: unchecked, that call is ``threading.Lock()``.
    """
    return partial(RankedLock, rank, name) if CHECKING else threading.Lock


def new_lock(rank: Rank, name: str | None = None) -> Any:
    """One lock of ``rank`` (for locks made once per runtime; per-object locks use :func:`lock_maker`)."""
    return RankedLock(rank, name) if CHECKING else threading.Lock()


new_claim: Callable[[], Any] = ClaimLock if CHECKING else threading.Lock
"""What makes a sudog's claim: ``threading.Lock``, or a :class:`ClaimLock` under the check."""
