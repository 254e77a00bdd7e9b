"""Blocking calls without holding a P: ``entersyscall`` / ``exitsyscall``.

``await ragged.syscall(fn, *args)`` runs ``fn`` on the goroutine's M with its
P in SYSCALL status.  While ``fn`` blocks, sysmon (after ``syscall_retake``),
a barrier or a stop-the-world may take the P away by CAS and hand it to
another M, so the other goroutines keep running.  On return the M CASes its
old P back (fast path), else takes any idle P, else queues the goroutine
globally and parks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._barrier import run_safe_point_fn
from ._g import RUNNABLE, RUNNING, SYSCALL
from ._p import GCSTOP, IDLE, W_SAFEPOINT, W_STATUS
from ._p import RUNNING as RUNNING_P
from ._p import SYSCALL as P_SYSCALL

if TYPE_CHECKING:  # pragma: no cover
    from ._g import Goroutine
    from ._m import M
    from ._sched import Sched

_monotonic = time.monotonic


def entersyscall(sched: Sched, m: M, g: Goroutine) -> None:
    """Give up the P for a blocking call (Go's ``reentersyscall``).

    The P stays attached to ``m.oldp`` in SYSCALL status; from then on anyone
    may CAS it to IDLE (or GCSTOP) and hand it off.  After the status store we
    check the barrier flag and ``gcwaiting`` (the reference commit): a barrier
    or stop-the-world that saw the P running just before must not be missed.
    """
    p = m.p
    assert p is not None  # a goroutine enters a syscall from its P
    g.st = SYSCALL
    p.nsyscall += 1
    p.syscalltick += 1
    p.sysmon_syscalltick = p.syscalltick
    p.sysmon_syscallwhen = _monotonic()
    # Detach before publishing SYSCALL: from the store on, another M may take
    # the P by CAS and set p.m itself (Go's reentersyscall does the same).
    p.m = None
    m.oldp = p
    m.p = None
    p.setstatus(P_SYSCALL)
    if sched.chaos is not None:
        sched.chaos.point("entersyscall")
    if p.plain[W_SAFEPOINT]:
        run_safe_point_fn(sched, p)
    if sched.gcwaiting:
        entersyscall_gcwait(sched, p)
    elif (p.runq or sched.globrunq) and p.casstatus(P_SYSCALL, IDLE):
        # Goroutines are already waiting for this P, and ragged.syscall is for
        # calls that block: hand it off now rather than after sysmon's retake
        # delay (Go's entersyscallblock).  Our exitsyscall then takes the slow path.
        p.syscalltick += 1
        sched.metrics.incr("syscall_handoffs")
        sched.handoffp(p, "syscall")


def entersyscall_gcwait(sched: Sched, p: Any) -> None:
    """A stop-the-world is pending: stop our syscall P for it right away.

    ``gcwaiting`` was read without the lock: re-check it under the lock.  By
    now that stop-the-world may be over and a barrier may have set
    ``stopwait`` (and our P, retaken meanwhile, may be back in SYSCALL under
    another M, so the CAS alone proves nothing): stopping the P then would
    decrement the barrier's count and strand the P in GCSTOP.  Once the P is
    stopped that stop-the-world cannot end without our count-down, which is
    made after the lock is released (``gcstopm`` says why).
    """
    with sched.lock:
        stopped = sched.gcwaiting and sched.stopwait > 0 and p.casstatus(P_SYSCALL, GCSTOP)
        if stopped:
            p.syscalltick += 1
            p.sp_requested = _monotonic()
    if stopped:
        sched.stopwait_done()


def exitsyscall(sched: Sched, m: M, g: Goroutine) -> bool:
    """Get a P back after the blocking call.  True if ``g`` keeps running on ``m``.

    Fast path: CAS our old P from SYSCALL back to RUNNING.  Slow path: take an
    idle P.  Else ``g`` goes on the global queue and the M parks (then returns
    False with a new P, to schedule other work).
    """
    from ._proc import stopm

    oldp = m.oldp
    assert oldp is not None  # set by entersyscall
    m.oldp = None
    if sched.chaos is not None:
        sched.chaos.point("exitsyscall")
    tr = sched.trace
    if oldp.plain[W_STATUS] == P_SYSCALL and oldp.casstatus(P_SYSCALL, RUNNING_P):
        m.p = oldp
        oldp.m = m
        g.st = RUNNING
        if tr is not None:
            tr.syscall_exit(oldp, g, "fast")
        if oldp.plain[W_SAFEPOINT]:
            run_safe_point_fn(sched, oldp)
        return True
    sched.metrics.incr("syscall_slowpath")
    with sched.lock:
        p = None if sched.gcwaiting else sched.pidleget()
        if p is None:
            g.st = RUNNABLE
            m.curg = None
            sched.globrunq.append(g)
    if p is not None:
        sched.acquirep(m, p)
        g.st = RUNNING
        if tr is not None:
            tr.syscall_exit(p, g, "idle P")
        return True
    if tr is not None:
        tr.syscall_exit(None, g, "queued")
    stopm(sched, m)
    return False


def syscall(sched: Sched, m: M, g: Goroutine, fn: Callable[..., Any], args: tuple) -> bool:
    """Run ``fn(*args)`` for ``g`` with the P released.

    The outcome is left in ``g.resume_val`` / ``g.resume_exc``.  Returns True if
    ``g`` continues on this M, False if it was queued and the M moved on.
    """
    entersyscall(sched, m, g)
    try:
        g.resume_val = fn(*args)
    except BaseException as err:  # noqa: BLE001 - delivered to the goroutine
        g.resume_exc = err
    return exitsyscall(sched, m, g)
