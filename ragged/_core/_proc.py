"""The M's scheduler loop: ``mstart``, ``schedule``, ``findrunnable``, ``execute``.

Follow one goroutine: ``newproc`` queues it; some M's ``schedule()`` takes
it (local queue, global queue every 61st tick or when local is empty, then
``findrunnable``: steal, or park the P and the M); ``execute()`` drives its
coroutine with ``send`` until it yields a request from ``_traps`` (yield,
safe point, park, syscall) or returns; then back to ``schedule()``.  A
goroutine preempted asynchronously (``_preempt``) waits in a queue with its
frames still on its own M: ``schedule()`` hands that M the P instead.

Every place that checks ``gcwaiting`` also checks the P's ``runSafePointFn``
flag (the reference commit's rule): the top of ``schedule()``, the top of
``findrunnable()``, and again under the sched lock just before the P goes idle.
``handoffp`` and ``entersyscall`` check it too.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

from ._barrier import run_safe_point_fn, step_aside
from ._errors import Cancelled, RaggedError
from ._g import DEAD, RUNNABLE, RUNNING, WAITING, Goroutine
from ._lockedm import startlockedm
from ._m import M, tls
from ._netpoll_sched import block as netpoll_block
from ._netpoll_sched import findrunnable_poll, schedtick_poll
from ._p import GCSTOP, W_SAFEPOINT, P
from ._sched import Sched, _MExit
from ._syscall import syscall
from ._traps import CHECK, PARK, SYSCALL, YIELD, arm_g, disarm_g

_log = logging.getLogger("ragged")
_monotonic = time.monotonic


def mstart(sched: Sched, m: M) -> None:
    """Thread entry of an M: take the P it was started with and schedule forever.

    An exception that escapes the loop (from the scheduler, the poller or a
    timer callback: a bug in ragged) stops the runtime (``_shutdown.crash``),
    then the thread exits.
    """
    tls.m = m
    m.ident = m.thread.ident if m.thread is not None else None
    try:
        p = m.nextp
        assert p is not None  # startm hands every new M its P
        m.nextp = None
        sched.acquirep(m, p)
        schedule(sched, m)
    except _MExit:
        pass
    except BaseException as err:  # noqa: BLE001 - a bug in ragged: stop the runtime loudly
        sched.runtime._on_crash(f"M{m.id}", err, m)
    finally:
        m.exiting = True


def schedule(sched: Sched, m: M) -> None:
    """Find a runnable goroutine and execute it, forever (Go's ``schedule``).

    Runs with ``m.p`` set and no locks held.  Returns only by raising _MExit.
    This loop runs once per goroutine switch: it reads each field once and
    calls ``safe_point`` only when something is pending there (a
    stop-the-world, this P's barrier flag, a timer).
    """
    timers = sched.timers
    while True:
        p = m.p
        assert p is not None  # the scheduler runs with m.p set
        if sched.gcwaiting or p.plain[W_SAFEPOINT] or timers.timer0:
            p = safe_point(sched, m)
        g = None
        runq = p.runq
        if p.schedtick % 61 == 0:
            if sched.netpoll is not None:
                schedtick_poll(sched, p)  # nor the network, when this P never runs dry
            if sched.globrunq:
                g = sched.globrunqget(p, 1)  # so the global queue cannot starve
        if g is None and runq:
            try:
                g = runq.popleft()
            except IndexError:  # a thief took it
                pass
        if g is None:
            g = findrunnable(sched, m)  # global queue, stealing, or park
        if m.spinning:
            resetspinning(sched, m)
        if g.lockedm is not None:
            startlockedm(sched, m, g)  # preempted asynchronously: its own M resumes it
            continue
        execute(sched, m, g)


def safe_point(sched: Sched, m: M) -> P:
    """The scheduler's own safe point; returns the P to schedule on.

    Stops for a pending stop-the-world (``gcwaiting``), runs a pending barrier
    function for this P (the reference commit checks its flag everywhere
    ``gcwaiting`` is checked) and fires due timers.
    """
    while sched.gcwaiting:
        gcstopm(sched, m)
    p = m.p
    assert p is not None  # the scheduler runs with m.p set
    if p.plain[W_SAFEPOINT]:
        run_safe_point_fn(sched, p)
    t0 = sched.timers.timer0
    if t0 and t0 <= _monotonic():
        sched.timers.run()
    return p


def findrunnable(sched: Sched, m: M) -> Goroutine:
    """Find a goroutine to run, parking the P and the M when there is none.

    Returns with ``m.p`` set (possibly a different P than on entry).
    """
    while True:
        p = safe_point(sched, m)
        q = p.runq
        if q:
            try:
                return q.popleft()
            except IndexError:
                pass
        if sched.globrunq:
            g = sched.globrunqget(p, 0)
            if g is not None:
                return g
        if sched.netpoll is not None:
            g = findrunnable_poll(sched, m)  # the network, without blocking (Go polls before stealing)
            if g is not None:
                return g

        # Steal.  Go limits spinning Ms to half the busy Ps to save CPU.
        procs = sched.procs
        if procs > 1 and (m.spinning or 2 * sched.nmspinning < procs - len(sched.pidle)):
            if not m.spinning:
                with sched.lock:
                    sched.nmspinning += 1
                m.spinning = True
            allp = sched.allp
            for _ in range(2):
                start = random.randrange(procs)
                for i in range(procs):
                    victim = allp[(start + i) % procs]
                    if victim is not p and victim.runq:
                        g = sched.runqsteal(p, victim)
                        if g is not None:
                            return g

        # Nothing to do: give up the P.  Re-check under the lock everything
        # that could have arrived, and the barrier flag (reference commit).
        if sched.chaos is not None:
            sched.chaos.point("findrunnable-idle")
        with sched.lock:
            if sched.gcwaiting or p.plain[W_SAFEPOINT]:
                continue
            if sched.globrunq:
                g = sched.globrunqget(p, 0)
                if g is not None:
                    return g
            if p.runq:
                continue
            sched.releasep(m)
            sched.pidleput(p)
            was_spinning = m.spinning
            if was_spinning:
                m.spinning = False
                sched.nmspinning -= 1
            # The M goes on the idle list in the same critical section as
            # its P.  Were it queued later (stopm's first step), a wakep in
            # between would find an idle P and no idle M, and start a new
            # thread for work this M is about to wait for.
            queued = not sched.shutdown
            if queued:
                sched.mput(m)

        # A spinning M that stops must look once more at every queue: work
        # readied after its steal pass saw nmspinning > 0 and woke nobody.
        # If a startm has claimed it meanwhile (``nextp`` set), stopm takes
        # that P instead; else it leaves the idle list with an idle P.
        if queued and was_spinning and sched.any_local_work():
            with sched.lock:
                if m.nextp is None and not sched.shutdown:
                    p2 = sched.pidleget()
                    if p2 is not None:
                        sched.midle.remove(m)  # unclaimed, so still listed
                        sched.acquirep(m, p2)
                        sched.nmspinning += 1
                        m.spinning = True
            if m.p is not None:
                continue
        stopm(sched, m, queued=queued)


def resetspinning(sched: Sched, m: M) -> None:
    """The spinning M found work: stop spinning, and wake another spinner if needed."""
    m.spinning = False
    with sched.lock:
        sched.nmspinning -= 1
        more = sched.nmspinning == 0 and bool(sched.pidle)
    if more:
        sched.wakep()


def stopm(sched: Sched, m: M, queued: bool = False) -> None:
    """Park an M that has no P until ``startm`` hands it one (Go's ``stopm``).

    If timers are pending (or the runtime has a network poller) and no other M
    waits for them, this M becomes the timer waiter: it sleeps until the
    earliest deadline and fires due timers; with a poller it sleeps *in the
    poll* (Go's M blocked in netpoll), readying the goroutines whose fds
    became ready, and whoever wakes it breaks the poll (``_netpoll_sched.wakem``).
    ``queued``: the caller already put ``m`` on the idle list under the lock.
    Returns with ``m.p`` set; raises _MExit at shutdown.

    The lock is taken only where there is something to decide under it (timer
    duty, shutdown): ``startm`` sets ``m.nextp`` under the lock *before* it
    wakes the note, so a woken M reads it plainly, as Go's ``stopm`` does.  On
    the free-threaded build every avoided acquisition matters: a contended
    lock spins and yields the core away (``_note``).
    """
    timers = sched.timers
    if not queued:
        with sched.lock:
            if sched.shutdown:
                raise _MExit
            sched.mput(m)
    while True:
        p = m.nextp
        if not m.timer_waiter:
            if p is not None:
                m.nextp = None  # only this M consumes it
                heir = None
                break
            if not timers.timer0 and not sched.shutdown and (sched.netpoll is None or sched.timer_waiter is not None):
                # Nothing to claim: sleep until startm (or close) wakes us.  A
                # timer added meanwhile finds no waiter and wakes an idle P.
                # (With a network poller and no M in the poll, take the duty.)
                m.park.sleep(None)
                continue
        with sched.lock:
            p = m.nextp
            if p is not None:
                m.nextp = None
                heir = None
                if m.timer_waiter:
                    # Leaving timer duty: pass it to another idle M, if any.
                    m.timer_waiter = False
                    sched.timer_waiter = None
                    if (timers.timer0 or sched.netpoll is not None) and sched.midle:
                        heir = sched.midle[-1]
                break
            if sched.shutdown:
                if m in sched.midle:
                    sched.midle.remove(m)
                if m.timer_waiter:
                    m.timer_waiter = False
                    sched.timer_waiter = None
                raise _MExit
            waits = timers.timer0 or sched.netpoll is not None
            if not m.timer_waiter and waits and sched.timer_waiter is None:
                m.timer_waiter = True
                sched.timer_waiter = m
        timeout = None
        if m.timer_waiter:
            t0 = timers.timer0
            if t0:
                timeout = t0 - _monotonic()
                if timeout <= 0:
                    timers.run()
                    continue
        if m.timer_waiter and sched.netpoll is not None:
            netpoll_block(sched, m, timeout)  # may hand this M a P (m.nextp) for what it readied
        else:
            m.park.sleep(timeout)
        if m.timer_waiter:
            t0 = timers.timer0
            if t0 and t0 <= _monotonic():
                timers.run()
    if heir is not None:
        heir.park.wakeup()  # it finds no P, sees no timer waiter, and takes the duty
    sched.acquirep(m, p)


def gcstopm(sched: Sched, m: M) -> None:
    """Stop the current M for a stop-the-world; resume when the world restarts.

    The caller saw ``gcwaiting`` without the lock; it is re-checked under the
    lock together with the P's stop, so a stale read can never count against
    a later barrier.  The count-down comes after the lock is released (the
    stop-the-world cannot end without it, so it is still the same one): the
    coordinator it wakes must not find the lock held.
    """
    with sched.lock:
        if not sched.gcwaiting:
            return
        if m.spinning:
            m.spinning = False
            sched.nmspinning -= 1
        p = m.p
        assert p is not None  # only an M holding a P stops for the world
        p.sp_requested = _monotonic()  # reused as "stopped at" for pause accounting
        sched.releasep(m, GCSTOP)
        queued = not sched.shutdown
        if queued:
            sched.mput(m)  # park in the same critical section (stopm's first step)
    sched.stopwait_done()
    if sched.trace is not None:
        sched.trace.stopped(p)
    if not queued:
        raise _MExit
    stopm(sched, m, queued=True)


HOLD_AT_CHECKPOINT = 2e-3


def serve_barriers(sched: Sched, p: P) -> None:
    """At a goroutine's checkpoint: run the pending barrier function, make room.

    A barrier is in flight.  If this P has yet to run ``fn``, run it; either
    way step aside (``_barrier.step_aside``: off the GIL until the barrier
    ends, or a yield of the core) so the Ms still to reach a safe point, and
    the coordinator, get to run.  The next barrier
    may begin while this M waits; it is still at a safe point, so it serves
    that one too -- for at most ``HOLD_AT_CHECKPOINT`` in all, then the last
    ``fn`` runs without stepping aside and the goroutine resumes: barriers
    issued back to back must not starve it.
    """
    t0 = _monotonic()
    aside = True
    while True:
        if p.plain[W_SAFEPOINT]:
            run_safe_point_fn(sched, p, aside=False)
        if aside and sched.barrier_done is not None:
            step_aside(sched, p, at_checkpoint=True)
        if not aside or not p.plain[W_SAFEPOINT]:
            return
        aside = _monotonic() - t0 < HOLD_AT_CHECKPOINT


def _deschedule(g: Goroutine) -> None:
    """``g`` leaves its M: drop any preemption request and its checkpoint arm."""
    g.preempt = False
    if g.armed:
        disarm_g(g)


def _stop_runnable(m: M, p: P, g: Goroutine, tr: Any, why: str) -> None:
    """``g`` stops running on ``m`` but stays runnable; the caller queues it."""
    if tr is not None:
        tr.go_stop(p, g, why)
    g.st = RUNNABLE
    m.curg = None
    if g.armed or g.preempt:
        _deschedule(g)


def execute(sched: Sched, m: M, g: Goroutine) -> None:
    """Run ``g`` on this M until it stops: yields, parks, exits or loses its P.

    Interprets the requests from ``_traps``.  Runs with ``m.p`` set.
    """
    p = m.p
    assert p is not None  # execute runs with m.p set
    m.curg = g
    g.m = m
    g.st = RUNNING
    p.schedtick += 1
    if g.armed:
        _deschedule(g)  # a request made while it was queued is stale now
    val = g.resume_val
    exc = g.resume_exc
    g.resume_val = g.resume_exc = None
    if g.cancel_pending and exc is None:
        if g.woken:
            # A waker completed its wait (handed it a value, a lock, the
            # world): that must not be undone.  Deliver the cancel at the
            # goroutine's next await instead.
            arm_g(g)
        else:
            g.cancel_pending = False
            exc = Cancelled(f"goroutine {g.id} ({g.name}) was cancelled")
    g.woken = False
    send = g.send
    run = g.run
    tr = sched.trace
    if tr is not None:
        tr.go_start(p, g)
    while True:
        try:
            if exc is None:
                req = run(send, val)
            else:
                e, exc = exc, None
                req = run(g.coro.throw, e)
        except StopIteration as stop:
            if tr is not None:
                tr.go_stop(p, g, "exit")
            goexit(sched, m, g, stop.value, None)
            return
        except BaseException as err:  # noqa: BLE001 - the goroutine's outcome
            if tr is not None:
                tr.go_stop(p, g, "exit: " + type(err).__name__)
            goexit(sched, m, g, None, err)
            return
        val = None
        # The goroutine may have moved this M to another P (set_procs retiring
        # its P), so never trust a P read before it ran.
        p = m.p
        assert p is not None  # the goroutine ran on this M, which holds a P
        try:
            kind = req[0]
        except (TypeError, IndexError, KeyError):
            kind = 0  # not one of ours: rejected below

        if kind == CHECK:
            g.noncoop = False  # it answers requests at checkpoints: no need to reach it asynchronously
            if p.plain[W_SAFEPOINT] or sched.barrier_done is not None:
                serve_barriers(sched, p)
            if g.holds_world:
                _deschedule(g)
                continue
            if g.cancel_pending:
                g.cancel_pending = False
                _deschedule(g)
                exc = Cancelled(f"goroutine {g.id} ({g.name}) was cancelled")
                continue
            if sched.gcwaiting:
                _stop_runnable(m, p, g, tr, "stop the world")
                sched.runqput(p, g)  # this P runs it again once the world restarts
                return
            if g.preempt:
                _stop_runnable(m, p, g, tr, "preempted")
                sched.metrics.incr("preemptions")
                sched.globrunqput(g)  # as Go: a preempted goroutine goes to the global queue
                return
            if g.armed:
                _deschedule(g)  # a stale request
            continue

        if g.cancel_pending and kind != PARK:
            g.cancel_pending = False
            exc = Cancelled(f"goroutine {g.id} ({g.name}) was cancelled")
            continue

        if kind == YIELD:
            if g.holds_world:
                exc = RaggedError("cannot gosched inside a stop-the-world section: no other goroutine may run")
                continue
            _stop_runnable(m, p, g, tr, "gosched")
            # Go puts a yielding goroutine on the global queue; the tail of the
            # local queue is cheaper and just as fair (other Ps steal from it).
            sched.runqput(p, g)
            return

        if kind == PARK:
            _, unlockf, reason, s = req
            if tr is not None:
                tr.go_stop(p, g, reason)
            g.waitreason = reason
            g.waiting = s
            g.st = WAITING
            m.curg = None
            if g.armed:
                _deschedule(g)
            if unlockf is not None:
                unlockf()
            # From here on another M may already be running g: touch it only
            # through the sudog's claim.
            if g.cancel_pending and s is not None and s.try_claim():
                g.cancel_pending = False
                sched.goready(g, None, Cancelled(f"goroutine {g.id} ({g.name}) was cancelled"))
            return

        if kind == SYSCALL:
            _, fn, args = req
            if g.holds_world:
                try:
                    val = fn(*args)
                except BaseException as err:  # noqa: BLE001
                    exc = err
                continue
            if tr is not None:
                tr.go_stop(p, g, "syscall")
                tr.syscall(p, g)
            if not syscall(sched, m, g, fn, args):
                return  # g was queued; this M parked and now has another P
            p = m.p
            if tr is not None:
                tr = sched.trace
                if tr is not None:
                    tr.go_start(p, g)
            val = g.resume_val
            exc = g.resume_exc
            g.resume_val = g.resume_exc = None
            continue

        exc = RaggedError(
            f"goroutine {g.id} ({g.name}) awaited {req!r}, which is not a ragged operation; "
            "goroutines can await only ragged's own awaitables (asyncio futures and tasks do not work here)"
        )


def goexit(sched: Sched, m: M, g: Goroutine, result: Any, exc: BaseException | None) -> None:
    """Finish ``g``: record its outcome, wake joiners, run done callbacks.

    A goroutine that ends with ``Cancelled`` after the runtime crashed ends
    with ``RuntimeCrashed`` instead (the reason it was cancelled).  One that
    raised while nobody waited for it is listed before it is seen done
    (``Runtime._keep_unjoined``) and logged now (``Runtime._note_unjoined``).
    """
    m.curg = None
    g.m = None
    g.st = DEAD
    # Whether the teardown caused an error is decided now, before anyone can
    # see g done: main may return the moment it does (Runtime.tearing_down).
    teardown = exc is not None and sched.runtime.tearing_down()
    if teardown and isinstance(exc, Cancelled) and sched.runtime._crash is not None:
        exc = sched.runtime._crash_error()  # cancelled because ragged failed: joiners learn why
    kept = exc is not None and not teardown and not isinstance(exc, Cancelled)
    if kept:
        sched.runtime._keep_unjoined(g)  # before anyone can see g done (Runtime.unjoined_errors)
    callbacks = g._finish(result, exc)
    if kept and g._retrieved:  # a joiner was waiting: it has the error
        sched.runtime._forget_unjoined(g)
    # After _finish: a cancel() arms only a goroutine not yet done (see
    # Goroutine.cancel), so no request can be armed after this drop.
    _deschedule(g)
    sched.gfree(g)
    for cb in callbacks:
        try:
            cb(g)
        except Exception:  # noqa: BLE001
            _log.exception("ragged: done callback of goroutine %d (%s) raised", g.id, g.name)
    if exc is not None and not g._retrieved and not isinstance(exc, Cancelled):
        sched.runtime._note_unjoined(g, teardown)
