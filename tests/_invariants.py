"""Invariant checks shared by the reliability tests (chaos, stateful, faults, bad input, soak test).

Each check reads scheduler internals that docs/design.md names (``stopwait``,
``safePointFn``, each P's ``status`` and ``runSafePointFn`` flag, each
goroutine's status and wait reason) and raises ``AssertionError`` with a
message that says what broke and, when given, which seed to replay.

``check_quiescent`` may only be called when no barrier or stop-the-world can be
in flight (the caller has joined every goroutine and thread that starts them):
it asserts the state a finished barrier must leave behind.  ``check_still_works``
adds a barrier and a spawn+join to that, for a runtime that survived a fault.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import ragged
from ragged._core._g import DEAD as G_DEAD
from ragged._core._g import G_STATUS_NAMES
from ragged._core._g import RUNNABLE as G_RUNNABLE
from ragged._core._g import RUNNING as G_RUNNING
from ragged._core._g import SYSCALL as G_SYSCALL
from ragged._core._g import WAITING as G_WAITING
from ragged._core._p import DEAD, GCSTOP, IDLE, RUNNING, STATUS_NAMES, SYSCALL

LIVE_P_STATUSES = frozenset({IDLE, RUNNING, SYSCALL, GCSTOP})

# Every wait reason the runtime gives a parked goroutine (``gopark``'s reason).
KNOWN_WAIT_REASONS = frozenset(
    {
        "sleep",
        "select",
        "chan send",
        "chan receive",
        "join goroutine",
        "worldsema",
        "sync.Mutex.Lock",
        "sync.RWMutex.Lock",
        "sync.RWMutex.RLock",
        "sync.WaitGroup.Wait",
        "sync.Once.Do",
        "sync.Cond.Wait",
        "sync.Semaphore.Acquire",
    }
)


def _tag(seed: Any) -> str:
    return f" [replay: seed={seed}]" if seed is not None else ""


def check_quiescent(rt: ragged.Runtime, seed: Any = None) -> None:
    """No barrier or stop-the-world is in flight: ``stopwait`` is 0, no P has its flag set.

    Also checks that ``safePointFn`` was cleared and the world is not stopped.
    Reads under the sched lock so the snapshot is consistent.
    """
    sched = rt._sched
    with sched.lock:
        stopwait = sched.stopwait
        fn = sched.safe_point_fn
        gcwaiting = sched.gcwaiting
        flags = {p.id: p.run_safe_point_fn for p in sched.allp[: sched.procs]}
    assert stopwait == 0, f"stopwait is {stopwait} between barriers{_tag(seed)}"
    assert fn is None, f"safePointFn still set to {fn!r} between barriers{_tag(seed)}"
    assert not gcwaiting, f"gcwaiting still set after every stop-the-world ended{_tag(seed)}"
    set_flags = [pid for pid, f in flags.items() if f]
    assert not set_flags, f"P(s) {set_flags} still have runSafePointFn set between barriers{_tag(seed)}"


def check_p_statuses(rt: ragged.Runtime, seed: Any = None) -> None:
    """Every live P is idle, running, syscall or gcstop; every retired P is dead."""
    sched = rt._sched
    procs = sched.procs
    allp = list(sched.allp)
    bad = [(p.id, STATUS_NAMES[p.status]) for p in allp[:procs] if p.status not in LIVE_P_STATUSES]
    assert not bad, f"live P(s) in an illegal status: {bad}{_tag(seed)}"
    retired = [(p.id, STATUS_NAMES[p.status]) for p in allp[procs:] if p.status != DEAD]
    assert not retired, f"retired P(s) not dead: {retired}{_tag(seed)}"


def check_stopped(rt: ragged.Runtime, seed: Any = None) -> None:
    """Inside a stop-the-world section: every live P is in GCSTOP and none is waited for."""
    sched = rt._sched
    statuses = [(p.id, STATUS_NAMES[p.status]) for p in sched.allp[: sched.procs]]
    assert all(s == "gcstop" for _, s in statuses), f"world not stopped: {statuses}{_tag(seed)}"
    assert sched.stopwait == 0, f"stopwait is {sched.stopwait} inside a stop-the-world section{_tag(seed)}"
    flags = [p.id for p in sched.allp[: sched.procs] if p.run_safe_point_fn]
    assert not flags, f"P(s) {flags} have runSafePointFn set inside a stop-the-world section{_tag(seed)}"


def check_accounted(gs: Iterable[ragged.Goroutine], rt: ragged.Runtime, seed: Any = None) -> None:
    """No goroutine is lost: each is done, or runnable/running/in a syscall, or parked on something known.

    A goroutine that is not done must still be known to its scheduler (in
    ``allgs``); a parked one must carry a wait reason from ``KNOWN_WAIT_REASONS``.
    """
    allgs = rt._sched.allgs
    for g in gs:
        st = g.st
        if g.done():
            continue
        if st == G_DEAD:
            # goexit marks it dead just before recording the outcome: allow that moment.
            deadline = time.monotonic() + 1.0
            while not g.done() and time.monotonic() < deadline:
                time.sleep(0.001)
            assert g.done(), f"goroutine {g.id} ({g.name}) is dead but never finished{_tag(seed)}"
            continue
        assert st in (G_RUNNABLE, G_RUNNING, G_WAITING, G_SYSCALL), (
            f"goroutine {g.id} ({g.name}) is not done but its status is {G_STATUS_NAMES[st]}{_tag(seed)}"
        )
        assert g.id in allgs or g.done(), f"goroutine {g.id} ({g.name}) is not done but not in allgs{_tag(seed)}"
        if st == G_WAITING:
            reason = g.waitreason
            assert reason in KNOWN_WAIT_REASONS or g.st != G_WAITING, (
                f"goroutine {g.id} ({g.name}) waits on an unknown reason {reason!r}{_tag(seed)}"
            )


class BarrierLog:
    """A ``for_each_p`` callback that records which Ps ran it, for the exactly-once check."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def __call__(self, p: ragged.P) -> None:
        self.seen.append(p.id)

    def check(self, procs: int, seed: Any = None, what: str = "barrier") -> None:
        """Assert ``fn`` ran exactly once on each of the ``procs`` Ps."""
        assert sorted(self.seen) == list(range(procs)), (
            f"{what} ran fn on Ps {sorted(self.seen)}, expected each of 0..{procs - 1} exactly once{_tag(seed)}"
        )


async def _double(x: int) -> int:
    await ragged.gosched()
    return 2 * x


def check_still_works(rt: ragged.Runtime, what: str = "the fault", seed: Any = None) -> None:
    """After ``what`` (a fault, a bad call): the runtime still works and nothing is left pending.

    A barrier from this (plain) thread runs fn exactly once per P, a spawn+join
    returns, the scheduler is quiescent and every P's status is legal.  Same
    precondition as ``check_quiescent``.
    """
    log = BarrierLog()
    rt.for_each_p(log, timeout=20)
    log.check(rt.procs, seed, what=f"barrier after {what}")
    assert rt.go(_double, 21).result(timeout=20) == 42, f"spawn+join after {what}{_tag(seed)}"
    check_quiescent(rt, seed)
    check_p_statuses(rt, seed)
