"""``worldsema`` and the wait that barriers and stop-the-world share.

``worldsema`` (Go's) serialises ragged barriers, stop-the-worlds and
``set_procs``: one holder at a time, the rest wait in FIFO order -- plain
threads block, goroutines *park* (a goroutine that blocked its M while holding
a P would stall a coordinator waiting for that P).

``wait_stopwait`` is the coordinator's wait from the reference commit: sleep
on ``stopnote`` for 100µs, re-preempt on every timeout, loop on the predicate
``stopwait == 0`` (a wakeup can be consumed by the timeout path, or be left
over from an earlier round), and log the stragglers -- P, goroutine and its
Python stack -- once the straggler timeout passes.  ``stopnote`` is a kernel
wait on the free-threaded build (see ``_note``): there a lock-based timed
wait spins and yields its core to busy Ms, and the coordinator took
milliseconds to notice the last P.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._blockreport import running_stack
from ._errors import BarrierError
from ._lockrank import Rank, new_lock
from ._m import tls
from ._park import WaitQueue, block_on, park_on, ready
from ._preempt import escalation
from ._traps import rearm

if TYPE_CHECKING:  # pragma: no cover
    from ._g import Goroutine
    from ._p import P
    from ._sched import Sched

_log = logging.getLogger("ragged")
_monotonic = time.monotonic

REPREEMPT_INTERVAL = 100e-6  # the reference commit's notetsleep(&sched.stopnote, 100*1000)


def check_not_in_fn(what: str) -> None:
    """Raise BarrierError if called from inside a ``for_each_p`` callback."""
    if getattr(tls, "in_fn", False):
        raise BarrierError(f"{what} called from inside a for_each_p callback; that would deadlock")


class WorldSema:
    """A FIFO binary semaphore for plain threads and goroutines alike."""

    def __init__(self, sched: Sched) -> None:
        self.sched = sched
        self.lock = new_lock(Rank.WORLDSEMA, "worldsema.lock")
        self.held = False
        self.owner: Any = None
        self.q = WaitQueue()

    def _check(self, me: Any, what: str) -> None:
        check_not_in_fn(what)
        if self.held and self.owner == me:  # a thread ident (int) or a Goroutine
            raise BarrierError(
                f"{what} called while this {'goroutine' if not isinstance(me, int) else 'thread'} "
                "already holds the world (a barrier or stop-the-world in progress); that would deadlock"
            )

    def acquire_thread(self, what: str, timeout: float | None = None) -> None:
        """Acquire from a plain thread (or an M with no P), blocking."""
        me = threading.get_ident()
        self.lock.acquire()
        try:
            self._check(me, what)
        except BaseException:
            self.lock.release()
            raise
        if not self.held:
            self.held = True
            self.owner = me
            self.lock.release()
            return
        block_on(self.q, self.lock, "worldsema", timeout, registry=self.sched)
        # Outside the lock, but ordered: release() cleared ``owner`` before it
        # woke us, and ``owner`` matters only to its own holder's re-entry check.
        self.owner = me

    async def acquire_g(self, g: Goroutine, what: str) -> None:
        """Acquire from goroutine ``g``, parking while someone else holds it."""
        self.lock.acquire()
        try:
            self._check(g, what)
        except BaseException:
            self.lock.release()
            raise
        if not self.held:
            self.held = True
            self.owner = g
            self.lock.release()
            return
        await park_on(self.q, self.lock, "worldsema")
        self.owner = g

    def release(self) -> None:
        """Release; ownership passes straight to the first live waiter."""
        with self.lock:
            s = self.q.pop_claimed()
            self.owner = None
            if s is None:
                self.held = False
        if s is not None:
            ready(s)


def wait_stopwait(
    sched: Sched,
    t0: float,
    deadline: float | None,
    pending: Callable[[], list[P]],
    what: str,
) -> tuple[int, bool]:
    """Wait until ``sched.stopwait == 0``; return (re-preempt rounds, timed out).

    Called without ``sched.lock``.  ``pending()`` lists the Ps still outstanding
    (for straggler reports, and for the asynchronous preemption of those whose
    goroutine does not reach a checkpoint: ``_preempt.Escalation``, on
    CPython 3.12+).  Returns with timed out = True when ``deadline`` passes
    first; the caller then cleans up under the lock.  Raises
    ``RuntimeCrashed`` if the runtime crashes meanwhile (the caller cleans up
    as for any exception).
    """
    rounds = 0
    reported = False
    straggler = sched.settings.straggler_timeout
    note = sched.stopnote
    rt = sched.runtime
    esc = escalation(sched)
    try:
        if esc is not None:
            esc.poll(pending())
        # stopwait only falls while we wait, and the P that brings it to 0 wakes
        # the note after its locked decrement: a plain read of 0 is final.
        while sched.stopwait != 0:
            if rt._crash is not None:
                raise rt._crash_error()  # ragged failed: the Ps still awaited may never come (a crash wakes the note)
            if note.sleep(REPREEMPT_INTERVAL):
                continue  # woken (perhaps by a wakeup left over from an earlier round): look again
            rounds += 1
            rearm()  # re-preempt: make sure every checkpoint traps
            if esc is not None:
                esc.poll(pending())
            now = _monotonic()
            if not reported and straggler > 0 and now - t0 >= straggler:
                reported = True
                report_stragglers(sched, pending(), what, now - t0)
            if deadline is not None and now >= deadline:
                return rounds, True
        return rounds, False
    finally:
        if esc is not None:
            esc.done()


def describe_p(p: P) -> str:
    """One P, the goroutine on it and that M's current Python stack, for reports."""
    m = p.m
    g = m.curg if m is not None else None
    head = f"P{p.id} ({p.status_name})"
    if g is not None:
        head += f" running goroutine {g.id} ({g.name!r})"
    if g is not None and m is not None and m.ident is not None:
        stack = "".join(running_stack(g, m.ident))
        if stack:
            head += f" on M{m.id}; its stack:\n{stack}"
    return head


def report_stragglers(sched: Sched, ps: list[P], what: str, elapsed: float) -> None:
    if not ps:
        return
    sched.metrics.incr("stragglers_reported", len(ps))
    body = "\n".join(describe_p(p) for p in ps)
    _log.warning(
        "ragged: %s has waited %.3fs for %d P(s) to reach a safe point "
        "(a goroutine cannot be stopped while it runs code that raises no Python events -- a loop in C, a "
        "blocking call, or on CPython 3.11 any code that never awaits the runtime; add "
        "`await ragged.checkpoint()` to loops and use `await ragged.syscall(fn)` for blocking calls):\n%s",
        what,
        elapsed,
        len(ps),
        body,
    )
