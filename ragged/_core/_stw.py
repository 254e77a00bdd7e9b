"""Stop-the-world: the baseline the ragged barrier is measured against.

``stopworld(sched, callerp)`` sets ``gcwaiting``, preempts everyone, moves
idle and syscall Ps to GCSTOP and waits (the same 100µs re-preempt loop as the
barrier) until every P has stopped.  Running Ps stop at their next safe
point in ``gcstopm``: their M parks and releases the GIL at once.
``startworld`` restarts every P, starting an M for each P with work.

The caller holds ``worldsema``.  A goroutine caller keeps running on its M
while its own P sits in GCSTOP; it must not park or yield until the world
restarts (doing so raises, since nothing else could run to wake it).
"""

from __future__ import annotations

import time
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from ._errors import BarrierError, NotInPlainThread, RaggedError
from ._lockedm import take_locked
from ._m import tls
from ._netpoll_sched import wakem
from ._p import GCSTOP, IDLE, RUNNING, SYSCALL, W_STATUS
from ._park import current_g
from ._procresize import procresize
from ._traps import arm, disarm
from ._world import check_not_in_fn, wait_stopwait

if TYPE_CHECKING:  # pragma: no cover
    from ._g import Goroutine
    from ._m import M
    from ._p import P
    from ._runtime import Runtime
    from ._sched import Sched

_monotonic = time.monotonic


def stopworld(sched: Sched, callerp: P | None, reason: str) -> float:
    """Stop every P (Go's ``stopTheWorldWithSema``); return the request time.

    On return no goroutine other than the caller runs until :func:`startworld`.
    """
    t0 = _monotonic()
    sched.stw_trace = (reason, perf_counter_ns(), 0)
    with sched.lock:
        if sched.stopwait != 0:
            raise BarrierError(f"stop_the_world: sched.stopwait is {sched.stopwait}, not 0")
        procs = sched.procs
        allp = sched.allp[:procs]
        sched.stopwait = procs
        sched.gcwaiting = True
        arm()  # preemptall
        for p in allp:
            p.sp_requested = t0
        # The Ps stopped here are counted down together, as the barrier's idle
        # Ps are: stopwait counts every P, so it cannot reach 0 before that.
        stopped = 0
        if callerp is not None:
            callerp.setstatus(GCSTOP)
            stopped += 1
        tr = sched.trace
        for p in allp:
            if p.plain[W_STATUS] == SYSCALL and p.casstatus(SYSCALL, GCSTOP):
                p.syscalltick += 1
                stopped += 1
                if tr is not None:
                    tr.stopped(p)
        while True:
            idle = sched.pidleget()
            if idle is None:
                break
            idle.setstatus(GCSTOP)
            stopped += 1
            if tr is not None:
                tr.stopped(idle)
        wait = sched.stopwait_done(stopped, wake=False) > 0
    rounds = 0
    if wait:
        try:
            rounds, _ = wait_stopwait(
                sched,
                t0,
                None,
                lambda: [p for p in allp if p.plain[W_STATUS] != GCSTOP],
                f"stop_the_world({reason!r})",
            )
        except BaseException:
            # Interrupted while waiting (a KeyboardInterrupt): call the stop off.
            # Ps still running never stop (gcstopm re-checks gcwaiting under
            # the lock); those that stopped restart.
            with sched.lock:
                sched.stopwait = 0
            startworld(sched, callerp, t0)
            raise
    t_stopped = _monotonic()
    sched.stw_trace = (reason, sched.stw_trace[1], perf_counter_ns())
    with sched.lock:
        bad = [p.id for p in allp if p.plain[W_STATUS] != GCSTOP]
        if sched.stopwait != 0 or bad:
            raise BarrierError(f"stop_the_world: not stopped (stopwait={sched.stopwait}, Ps {bad})")
    metrics = sched.metrics
    with metrics.lock:
        metrics.counters["stws"] += 1
        metrics.hist["stw_latency"].record(t_stopped - t0)
        metrics.hist["stw_rounds"].record(rounds)
    return t0


def startworld(sched: Sched, callerp: P | None, t0: float) -> None:
    """Restart every P after :func:`stopworld` (Go's ``startTheWorldWithSema``)."""
    now = _monotonic()
    pause = 0.0
    waits = []
    to_start: list[P] = []  # Ps with work and no idle M to take them: startm makes one
    to_wake: list[M] = []  # idle Ms already given a P
    to_resume: list[M] = []  # Ms waiting for a P for their goroutine, given one
    with sched.lock:
        for p in sched.allp[: sched.procs]:
            stopped_at = p.sp_requested or t0
            waits.append(stopped_at - t0)
            p_pause = max(now - stopped_at, 0.0)
            pause += p_pause
            p.pause_ns += int(p_pause * 1e9)
            p.sp_requested = 0.0
            if p is callerp or p.plain[W_STATUS] != GCSTOP:
                continue  # (not stopped: only when a stop was called off)
            p.setstatus(IDLE)
            lm = take_locked(p)
            if lm is not None:  # stopped mid-frame (asynchronously): its own M resumes it
                lm.nextp = p
                to_resume.append(lm)
                continue
            if not p.runq:
                sched.pidleput(p)
                continue
            # Hand the P to an idle M now, and wake it once the lock is free:
            # a woken M must not find us still holding it (Go's procresize
            # pairs Ps with Ms under the lock the same way).
            m = None if sched.shutdown else sched.mget()
            if m is None:
                to_start.append(p)
            else:
                m.nextp = p
                m.spinning = False
                to_wake.append(m)
        if callerp is not None and callerp.plain[W_STATUS] == GCSTOP:
            callerp.setstatus(RUNNING)
        sched.gcwaiting = False
    disarm()
    for m in to_resume:
        m.park.wakeup()
    for m in to_wake:
        wakem(sched, m)  # its note, or the network poll it may be blocked in
    for p in to_start:
        sched.startm(p, False)
    if sched.globrunq or sched.timers.timer0:
        sched.wakep()
    if sched.trace is not None:
        reason, t_start, t_stopped = sched.stw_trace
        sched.trace.stw(sched, reason, t_start, t_stopped)
    metrics = sched.metrics
    with metrics.lock:
        metrics.hist["stw_pause"].record(pause)
        metrics.hist["stw_p_wait"].extend(waits)


class StopTheWorld:
    """The context manager returned by ``stop_the_world(reason)``.

    ``with rt.stop_the_world(...)`` from a plain thread, ``async with
    ragged.stop_the_world(...)`` inside a goroutine.  While the body runs no
    other goroutine runs anywhere in the runtime.

    :raises: see :meth:`ragged.Runtime.stop_the_world` and :func:`ragged.stop_the_world`.
    :Called from: ``with`` on a plain thread, ``async with`` inside a goroutine.
    """

    def __init__(self, rt: Runtime, reason: str) -> None:
        if not isinstance(reason, str):
            raise TypeError(f"stop_the_world reason must be a str, not {type(reason).__name__}")
        self.rt = rt
        self.reason = reason
        self._callerp: Any = None
        self._g: Goroutine | None = None
        self._t0 = 0.0
        self.retired: list[tuple[int, dict[Any, Any]]] = []

    def resize(self, n: int, detach: bool) -> int:
        """Inside the section: make ``n`` Ps live (Go's procresize); return the old count."""
        sched = self.rt._sched
        old = sched.procs
        if n != old:
            self._callerp, self.retired = procresize(sched, n, self._callerp, detach)
        return old

    def __enter__(self) -> StopTheWorld:
        rt = self.rt
        rt._check_open()
        check_not_in_fn("stop_the_world")
        m = getattr(tls, "m", None)
        if m is not None and m.curg is not None and m.p is not None:
            raise NotInPlainThread("inside a goroutine use `async with ragged.stop_the_world(...)`")
        sched = rt._sched
        sched.worldsema.acquire_thread("stop_the_world")
        try:
            self._t0 = stopworld(sched, None, self.reason)
        except BaseException:
            sched.worldsema.release()
            raise
        tls.holds_world = True
        return self

    def __exit__(self, *exc: Any) -> None:
        sched = self.rt._sched
        tls.holds_world = False
        try:
            startworld(sched, None, self._t0)
        finally:
            sched.worldsema.release()

    async def __aenter__(self) -> StopTheWorld:
        g = current_g("ragged.stop_the_world()")
        sched = self.rt._sched
        if g.sched is not sched:
            raise RaggedError("stop_the_world: this goroutine belongs to another runtime")
        await sched.worldsema.acquire_g(g, "stop_the_world")
        m = tls.m  # we may have resumed on another M
        try:
            self._callerp = m.p
            self._t0 = stopworld(sched, m.p, self.reason)
        except BaseException:
            sched.worldsema.release()
            raise
        self._g = g
        g.holds_world = True
        return self

    async def __aexit__(self, *exc: Any) -> None:
        sched = self.rt._sched
        g = self._g
        assert g is not None  # set by __aenter__
        g.holds_world = False
        try:
            startworld(sched, self._callerp, self._t0)
        finally:
            sched.worldsema.release()
