"""The ragged global barrier: ``for_each_p`` (Go commit 57afa764).

``foreachp(sched, fn, callerp)`` runs ``fn(p)`` once on every P at that P's
next safe point without stopping the world.  Idle Ps are at a continuous safe
point and run it under the sched lock (they cannot leave the idle list while
it is held); Ps in syscalls are forced idle by CAS and handed off, which runs
``fn`` for them; running Ps get the ``runSafePointFn`` flag and a preemption
request and run ``fn`` themselves at their next safe point.  Meanwhile their
goroutines keep running: that is the point.

Exactly-once.  Each of the ``stopwait`` Ps has its flag set to 1; whoever
CASes it back to 0 -- the coordinator for an idle P, ``handoffp`` for a
syscall P, the P's own M in ``run_safe_point_fn``, or a timed-out coordinator
giving up -- runs ``fn`` for it (or, on give-up, records that it did not) and
decrements ``stopwait`` exactly once.

Callbacks.  ``fn`` runs on a scheduler thread, for idle Ps while the sched
lock is held.  It must be short and must not block: blocking calls and
barriers started from inside it raise :class:`BarrierError`.  It may spawn or
wake goroutines (those wakeups are deferred until the lock is released).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from ._errors import BarrierError, BarrierTimeout, combine
from ._m import tls
from ._p import IDLE, SYSCALL, W_SAFEPOINT, W_STATUS
from ._platform import gil_enabled
from ._traps import arm, disarm
from ._world import wait_stopwait

if TYPE_CHECKING:  # pragma: no cover
    from ._m import M
    from ._p import P
    from ._sched import Sched

_monotonic = time.monotonic


class BarrierDone:
    """``sched.barrier_done``: the Ms stepping aside for the barrier in flight, and its end.

    One per barrier that has Ms step aside (:func:`step_aside`).  An M that
    has run ``fn`` lists itself in ``parked`` and sleeps on its own note
    (``m.park``) until ``ended``; the coordinator's last act
    (:func:`_finish_done`) sets ``ended`` and ``at`` and then wakes every
    listed M.  An M lists itself *before* it looks at ``ended`` and the
    coordinator sets ``ended`` *before* it reads the list, so an M either
    sees the end or is woken (a wakeup it did not wait for is left on its
    note, which every sleeper on it tolerates).  ``parked`` is appended to by
    Ms (one ``list.append`` each, atomic on both builds) and read once by
    the coordinator.
    """

    __slots__ = ("parked", "ended", "at")

    def __init__(self) -> None:
        self.parked: list[M] = []
        self.ended = False
        self.at = math.inf  # when the barrier ended


def call_safe_point_fn(sched: Sched, p: P) -> None:
    """Call ``sched.safe_point_fn(p)``; record its error and its timing on ``p``.

    The caller has won ``p``'s flag CAS, so it alone writes ``p.sp_err`` and
    ``p.sp_wait`` for this barrier; the coordinator collects them at the end.
    Nothing here is shared between Ms.  May be called with ``sched.lock`` held.
    """
    fn = sched.safe_point_fn
    assert fn is not None  # the caller won p's flag: a barrier is in flight
    prev = getattr(tls, "in_fn", False)
    tls.in_fn = True
    tr = sched.trace
    t_ns = perf_counter_ns() if tr is not None else 0
    t = _monotonic()
    try:
        fn(p)
    except BaseException as err:  # noqa: BLE001 - handed to the barrier's caller
        p.sp_err = err
    finally:
        tls.in_fn = prev
    done = _monotonic()
    if tr is not None:
        tr.fn_ran(p, t_ns, sched.barrier_seq)
    p.pause_ns += int((done - t) * 1e9)
    if p.sp_requested:
        p.sp_wait = done - p.sp_requested
        p.sp_requested = 0.0


def run_safe_point_fn(sched: Sched, p: P, aside: bool = True) -> None:
    """Run the pending safe-point function for ``p`` from ``p``'s own M.

    Call as ``if p.plain[W_SAFEPOINT]: run_safe_point_fn(sched, p)`` on every
    transition into idle or syscall and at every safe point: otherwise a
    barrier that saw the P running just before it went idle would miss it.
    Losing the CAS means the coordinator or a handoff already ran it.
    Afterwards the M steps aside for the rest of the barrier unless ``aside``
    is False.  Must not hold ``sched.lock``.
    """
    if not p.words.cas(W_SAFEPOINT, 1, 0):
        return
    call_safe_point_fn(sched, p)
    sched.stopwait_done()
    sched.run_deferred_wakep()
    if aside:
        step_aside(sched, p)


STEP_ASIDE_WINDOW = 20e-3  # the automatic barrier_step_aside under the GIL


def step_aside_window(sched: Sched) -> float:
    """How long into a barrier an M that has run ``fn`` parks (see ``step_aside``).

    The ``barrier_step_aside`` setting when given; else ``STEP_ASIDE_WINDOW``
    where the GIL is on, and 0 on a free-threaded interpreter running without
    it: there an M that has run ``fn`` goes back to its goroutine, which keeps
    running in parallel; with more Ps than CPUs it yields its core instead,
    then parks (``yields_cores``).
    """
    window = sched.settings.barrier_step_aside
    if window is not None:
        return window
    return STEP_ASIDE_WINDOW if gil_enabled() else 0.0


def yields_cores(sched: Sched) -> bool:
    """Whether Ms that have run a barrier's ``fn`` yield their core (``os.sched_yield``).

    Only by default on a free-threaded interpreter without the GIL, and only
    when the Ps cannot all run at once (more Ps than CPUs this process may
    use): the Ms the barrier waits for are then queued behind busy ones for a
    scheduler slice each.  A yielding M stays runnable and its goroutine goes
    on after the yield while the core goes to a waiting M, so the Ms take
    turns a chunk at a time until every P has run ``fn``.  That is not always
    enough: with 8 busy Ps on 2 cores the barrier still took 70ms at p50
    (3.13t), so a barrier that lasts ``YIELD_FIRST`` (1ms) has its Ms park at
    their checkpoints until it ends (``park_aside``).  Parking costs no
    parallelism there: every core is busy with the other Ms.  Measured
    (``benchmarks/bench_barrier.py``, 3.13t, 2 cores), for_each_p p50 / p99
    and the compute kept while barriers run: procs 8, yield only 67-71ms /
    85ms, 0.87; yield then park 174-185µs / 17-20ms, 0.82-0.83; procs 4,
    yield only 136-144µs / 18-19ms, 0.85-0.89; yield then park 170-176µs /
    3.4-6.5ms, 0.88.
    """
    return sched.settings.barrier_step_aside is None and not gil_enabled() and sched.procs > sched.cpus


def step_aside(sched: Sched, p: P, at_checkpoint: bool = False) -> None:
    """Make room for the Ms a barrier still waits for: park until it ends, or yield the core.

    Called on an M whose P has run ``fn`` while the barrier is in flight,
    when the Ps cannot all run at once.  Under the GIL a compute-bound M keeps
    the GIL for a whole switch interval (5ms), so if it simply went back to
    its goroutine, the Ms still to reach their safe point -- and the
    coordinator, which must wake up to finish -- would queue behind it: the
    barrier would take about procs x 5ms (docs/design.md).  So it sleeps until
    the barrier ends, off the GIL (:func:`park_aside`), but only within the
    step-aside window: a barrier held up by a straggler that never reaches a
    safe point must not stall everyone else, so after that window the M goes
    straight back to its goroutine (pure ragged behaviour).  The wait counts
    as this P's pause.  On a free-threaded build with more Ps than CPUs the M
    yields its core (``yields_cores``) at each safe point; at a goroutine's
    checkpoint (``at_checkpoint``, where it would go back to the goroutine) it
    parks instead once the barrier has lasted ``YIELD_FIRST``.
    Elsewhere -- entering a syscall, going idle -- the M is about to block
    or sleep anyway, and must not hold its P asleep.
    """
    done = sched.barrier_done
    if done is None:
        return
    if sched.barrier_yield:
        if not at_checkpoint or _monotonic() - sched.barrier_t0 < YIELD_FIRST:
            os.sched_yield()
            return
    park_aside(sched, p, done)


YIELD_FIRST = 1e-3  # oversubscribed free-threaded build: yield this long into a barrier, then park


def park_aside(sched: Sched, p: P, done: BarrierDone) -> None:
    """Sleep on this M's note until the barrier in flight ends, at most to its step-aside window.

    The one way an M waits for a barrier's end: on its own note (a kernel
    wait on the free-threaded build, where a lock-based wait such as a
    ``threading.Event`` wakes tens of milliseconds late with busy Ms), listed
    in ``done.parked``, which the coordinator wakes as its last act
    (``_finish_done``).  An M that lists itself after that sweep sees
    ``done.ended`` and does not sleep; one whose P has a new barrier's flag
    set goes to serve it.  On a free-threaded build with more Ps than CPUs
    (once a barrier has lasted ``YIELD_FIRST``): yielding hands the core to
    whichever thread the kernel picks next, and with 8 busy Ps on 2 cores the
    Ms still to reach their safe point got it so rarely that the barrier took
    70ms at p50 (105ms with neither yield nor park); asleep, the M leaves the
    core to them.  The sleep counts as this P's pause: under the GIL up to
    the barrier's end (waiting for the GIL after the wakeup is ordinary GIL
    sharing), when yielding cores up to the wakeup.
    """
    m = getattr(tls, "m", None)  # p's own M; p.m is None once it entered a syscall
    if m is None:  # pragma: no cover - step_aside runs on Ms only
        return
    t = _monotonic()
    until = sched.barrier_aside_until
    if until <= t:
        return
    yielding = sched.barrier_yield
    done.parked.append(m)
    t_ns = perf_counter_ns()
    note = m.park
    while not done.ended and not p.plain[W_SAFEPOINT]:
        left = until - _monotonic()
        if left <= 0:
            break
        note.sleep(left)  # a wakeup left over from the M's idle days only costs a loop
    now = _monotonic()
    end = now if yielding else min(now, until, max(done.at, t))
    p.pause_ns += int((end - t) * 1e9)
    if sched.trace is not None:
        sched.trace.step_aside(p, t_ns, t_ns + int((end - t) * 1e9))


def foreachp(sched: Sched, fn: Callable[[P], Any], callerp: P | None, timeout: float | None) -> None:
    """Run ``fn(p)`` for every P at its next safe point (Go's ``forEachP``).

    The caller holds ``worldsema``.  ``callerp`` is the caller's own P (a
    goroutine caller), run directly; a plain-thread caller passes None.

    With ``timeout`` (seconds), gives up once it passes: Ps that have not run
    ``fn`` by then never run it for this barrier (their flags are cleared and
    they keep running their goroutines), any P already inside ``fn`` is waited
    for, and :class:`BarrierTimeout` lists the Ps that were skipped.  If ``fn``
    raised on some Ps the barrier still completes everywhere and the error (an
    ExceptionGroup when several) is raised here.
    """
    metrics = sched.metrics
    pause0 = sum(p.pause_ns for p in sched.allp)
    tr = sched.trace
    seq, t_ns = tr.barrier_begin() if tr is not None else (0, 0)
    t0 = _monotonic()
    deadline = None if timeout is None else t0 + timeout
    armed = published = False
    missing: list[int] = []
    try:
        # Step 1: publish the function and ask every other P for a safe point.
        with sched.lock:
            if sched.stopwait != 0:
                raise BarrierError(f"for_each_p: sched.stopwait is {sched.stopwait}, not 0")
            procs = sched.procs
            allp = sched.allp[:procs]
            sched.stopwait = procs - 1 if callerp is not None else procs
            sched.barrier_seq = seq
            sched.safe_point_fn = fn
            for p in allp:
                p.sp_err = None
                p.sp_wait = -1.0
                if p is not callerp:
                    p.sp_requested = t0
                    p.words.store(W_SAFEPOINT, 1)
            if sched.chaos is not None:
                sched.chaos.point("barrier-flags-set")
            arm()  # preemptall: every checkpoint now traps to its M
            armed = True
            # Any P entering idle or syscall from now on sees its flag set.
            # Step 2: idle Ps cannot leave the idle list while we hold the lock.
            # They are counted down together: stopwait counts every P, so it
            # cannot reach 0 before this one atomic add.
            served = 0
            for p in sched.pidle:
                if p.words.cas(W_SAFEPOINT, 1, 0):
                    call_safe_point_fn(sched, p)
                    served += 1
            wait = sched.stopwait_done(served, wake=False) > 0
            if wait:
                # Some P is running or in a syscall: Ms that finish may make room.
                window = step_aside_window(sched)
                if window > 0:
                    sched.barrier_aside_until = t0 + window
                    sched.barrier_done = BarrierDone()
                elif yields_cores(sched):
                    sched.barrier_t0 = t0
                    sched.barrier_aside_until = t0 + STEP_ASIDE_WINDOW
                    sched.barrier_yield = True
                    sched.barrier_done = BarrierDone()
        published = True
        sched.run_deferred_wakep()

        # Step 3: our own P.  Issue the wakeups fn deferred here too: nothing
        # else would before sysmon's next round.
        if callerp is not None:
            callerp.sp_requested = t0
            call_safe_point_fn(sched, callerp)
            sched.run_deferred_wakep()

        # Step 4: force Ps in syscalls idle and hand them off, which runs fn.
        for p in allp:
            if p.plain[W_STATUS] == SYSCALL and p.plain[W_SAFEPOINT] and p.casstatus(SYSCALL, IDLE):
                p.syscalltick += 1
                sched.handoffp(p, "barrier")

        # Step 5: wait for the running Ps, re-preempting every 100µs.
        rounds = 0
        if wait:
            rounds, timed_out = wait_stopwait(
                sched, t0, deadline, lambda: [p for p in allp if p.plain[W_SAFEPOINT]], "for_each_p"
            )
            if timed_out:
                missing = _give_up(sched, allp)

        # Step 6: check, and clear the function.
        with sched.lock:
            if sched.stopwait != 0:
                raise BarrierError(f"for_each_p: not stopped (stopwait={sched.stopwait})")
            for p in allp:
                if p.plain[W_SAFEPOINT]:
                    raise BarrierError(f"for_each_p: P{p.id} did not run fn")
            sched.safe_point_fn = None
        errs = [(p.id, p.sp_err) for p in allp if p.sp_err is not None]
        waits = [p.sp_wait for p in allp if p.sp_wait >= 0]
    except BaseException:
        # Interrupted (say a KeyboardInterrupt while waiting) or an invariant
        # broke: leave the runtime usable, as a timeout does -- no P may run
        # fn late, none may still be inside it, and the next barrier starts clean.
        if published:
            _give_up(sched, allp)
            with sched.lock:
                sched.safe_point_fn = None
        _finish_done(sched)
        raise
    finally:
        if armed:
            disarm()

    latency = _monotonic() - t0
    pause = (sum(p.pause_ns for p in sched.allp) - pause0) / 1e9
    with metrics.lock:
        metrics.counters["barriers"] += 1
        metrics.hist["barrier_latency"].record(latency)
        metrics.hist["barrier_pause"].record(pause)
        metrics.hist["barrier_rounds"].record(rounds)
        metrics.hist["barrier_p_wait"].extend(waits)
        if missing:
            metrics.counters["barrier_timeouts"] += 1
        if errs:
            metrics.counters["barrier_fn_errors"] += len(errs)
    if tr is not None:
        tr.barrier_end(sched, seq, t_ns)
    # Last: the Ms stepping aside now compete with us for the GIL.
    _finish_done(sched)
    if missing:
        raise BarrierTimeout(
            f"for_each_p gave up after {timeout}s: P(s) {missing} never reached a safe point "
            "and did not run fn for this barrier",
            missing,
        )
    if errs:
        raise _combine(errs)


def _finish_done(sched: Sched) -> None:
    """Wake the Ms stepping aside for the barrier (the coordinator's last act).

    ``ended`` is set before the list is read: an M that lists itself later
    sees it and does not sleep (see :class:`BarrierDone`).
    """
    done = sched.barrier_done
    if done is None:
        return
    sched.barrier_yield = False
    sched.barrier_done = None
    done.at = _monotonic()
    done.ended = True
    for m in done.parked:
        m.park.wakeup()


def _give_up(sched: Sched, allp: list[P]) -> list[int]:
    """Timed out: claim every outstanding flag so no P runs fn late, then drain.

    A P that won its CAS before us is inside ``fn``; wait for it, or it would
    decrement the *next* barrier's ``stopwait``.
    """
    missing = []
    with sched.lock:
        for p in allp:
            if p.plain[W_SAFEPOINT] and p.words.cas(W_SAFEPOINT, 1, 0):
                missing.append(p.id)
                p.sp_requested = 0.0
                sched.stopwait_done()
    # Each P inside fn counts itself down; the last wakes the note.  After a crash
    # (which wakes the note too) an M that failed inside fn never will.
    while sched.stopwait > 0 and sched.runtime._crash is None:
        sched.stopnote.sleep()
    return missing


def _combine(errs: list[tuple[int, BaseException]]) -> BaseException:
    for pid, err in errs:
        err.add_note(f"raised by the for_each_p callback on P{pid}")
    return combine([e for _, e in errs], f"for_each_p callback raised on {len(errs)} Ps")
