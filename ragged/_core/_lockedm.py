"""Goroutines that wait for a P with their frames still on their M (asynchronous preemption).

An async safe point (``_preempt``) is inside a goroutine's running Python
code: the coroutine cannot be suspended there, so when the goroutine must
stop -- for a stop-the-world, or at the end of a time slice -- it keeps its M
(its OS thread) and waits for a P, as a goroutine in a blocking call does.
Go's machinery for goroutines locked to their thread (``LockOSThread``)
does the rest: the goroutine sits in a run queue *locked* to its M
(``g.lockedm``), the M sleeps on its note (:func:`stoplockedm`), and the M
that takes the goroutine off a queue hands it its own P instead of running it
(:func:`startlockedm`; ``startworld`` hands a stopped P straight to it,
:func:`take_locked`).  Each goroutine waiting this way holds an M.

Ownership: ``g.lockedm`` is set by the M that holds the goroutine's frames
before it queues the goroutine and cleared by the one M that takes it off a
queue; ``m.lockedg`` belongs to its M; ``m.nextp`` of a waiting M is set by
that dequeuer before it wakes the note.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ._g import RUNNABLE, RUNNING
from ._p import GCSTOP
from ._traps import disarm_g

if TYPE_CHECKING:  # pragma: no cover
    from ._g import Goroutine
    from ._m import M
    from ._p import P
    from ._sched import Sched

_monotonic = time.monotonic


def count(sched: Sched, g: Goroutine) -> None:
    """``g`` was reached asynchronously: count it, and escalate its next requests at once."""
    g.noncoop = True
    g.async_preempts += 1
    sched.metrics.incr("async_preemptions")


def asyncstop(sched: Sched, m: M, g: Goroutine, p: P) -> bool:
    """Stop this M for the world, mid-frame; return once it runs again (False: no stop pending).

    ``gcstopm`` of its own: the goroutine cannot go back to the scheduler, so
    it goes on ``p``'s run queue as a locked goroutine (this P runs it again
    once the world restarts) and the M waits for a P (:func:`stoplockedm`)
    instead of joining the idle Ms.  The count-down comes after the lock is
    released, as in ``gcstopm``.
    """
    tr = sched.trace
    with sched.lock:
        if not sched.gcwaiting:
            return False
        if tr is not None:
            tr.async_preempt(p, g, "stop the world")
            tr.go_stop(p, g, "stop the world (async)")
            tr.stopped(p)
        park_locked(m, g)
        sched.runqput(p, g)
        p.sp_requested = _monotonic()  # reused as "stopped at" for pause accounting
        sched.releasep(m, GCSTOP)
    sched.stopwait_done()
    count(sched, g)
    stoplockedm(sched, m, g)
    return True


def asyncyield(sched: Sched, m: M, g: Goroutine, p: P) -> bool:
    """A time slice is over: give the P away as a blocking call does and wait for one.

    Only when something waits for the P (its queue, the global queue, an
    overdue timer); otherwise returns False and the goroutine goes on.
    """
    if not waits_for_p(sched, p, _monotonic()):
        return False
    tr = sched.trace
    if tr is not None:
        tr.go_stop(p, g, "preempted (async)")
        tr.async_preempt(p, g, "time slice")
    count(sched, g)
    park_locked(m, g)
    g.preempt = False
    if g.armed:
        disarm_g(g)
    sched.releasep(m)  # RUNNING -> IDLE: this M owns it until handoffp
    with sched.lock:
        sched.globrunq.append(g)  # as Go: a preempted goroutine goes to the global queue
    sched.handoffp(p, "async preempt")
    stoplockedm(sched, m, g)
    return True


def waits_for_p(sched: Sched, p: P, now: float) -> bool:
    """Whether anything waits for ``p`` to be given up: its queue, the global queue, an overdue timer.

    Plain reads (hints): what a time slice ends for.
    """
    t0 = sched.timers.timer0
    return bool(p.runq or sched.globrunq or (t0 and t0 <= now))


def park_locked(m: M, g: Goroutine) -> None:
    """``g`` stops running on ``m`` but stays inside its thread: mark it locked to ``m``."""
    g.st = RUNNABLE
    g.lockedm = m
    m.lockedg = g
    m.curg = None


def stoplockedm(sched: Sched, m: M, g: Goroutine) -> None:
    """Wait on this M's note until some M hands it a P for ``g`` (Go's ``stoplockedm``).

    ``g`` is queued, locked to ``m``; :func:`startlockedm` sets ``m.nextp``
    before it wakes the note (left-over wakeups are re-checked).  Returns
    with ``m.p`` set and ``g`` running on ``m`` again.  The M holds no P and
    no lock while it waits, and releases the GIL.
    """
    while True:
        p = m.nextp
        if p is not None:
            break
        m.park.sleep(None)
    m.nextp = None
    sched.acquirep(m, p)
    p.schedtick += 1
    m.lockedg = None
    m.curg = g
    g.m = m
    g.st = RUNNING
    if sched.trace is not None:
        sched.trace.go_start(p, g)


def take_locked(p: P) -> M | None:
    """If the goroutine at the head of ``p``'s run queue waits inside its own M, dequeue it; return that M.

    For ``startworld``, which owns ``p`` (stopped) and then hands it straight
    to that M rather than to an idle M that would only pass it on.
    """
    q = p.runq
    if not q:
        return None
    g = q[0]
    lm = g.lockedm
    if lm is None:
        return None
    q.popleft()
    g.lockedm = None
    return lm


def startlockedm(sched: Sched, m: M, g: Goroutine) -> None:
    """``m`` took ``g`` off a run queue, but ``g`` waits inside another M: hand that M our P, park.

    Go's ``startlockedm``.  Runs with ``m.p`` set and no locks held; returns
    with ``m.p`` set again (``stopm``), to schedule anew.
    """
    from ._proc import stopm

    lm = g.lockedm
    assert lm is not None  # the caller saw it set; only we, its dequeuer, clear it
    g.lockedm = None
    if sched.trace is not None and m.p is not None:
        sched.trace.handoff(m.p, f"to goroutine {g.id} (preempted asynchronously)")
    p = sched.releasep(m)  # RUNNING -> IDLE, on no list: lm takes it
    lm.nextp = p
    lm.park.wakeup()
    stopm(sched, m)
