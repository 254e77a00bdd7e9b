"""P: a processor, the right to run goroutines (Go's ``p``).

A P's ``status`` and ``runSafePointFn`` flag live in an :class:`AtomicWords`
buffer so that other threads can CAS them; ``plain`` reads of the same words
answer the cheap "is anything pending?" questions.

Status transitions (docs/design.md).  The rule the ragged barrier depends on:
**only the P's own M may change a P out of RUNNING.**

====================  ==========================================================
IDLE -> RUNNING        an M takes the P off the idle list (sched lock held)
RUNNING -> IDLE        own M: nothing to run (findrunnable) or it hands the P off
RUNNING -> SYSCALL     own M: entersyscall
RUNNING -> GCSTOP      own M: stops for the world (gcstopm), or the stop-the-world
                       caller parks its own P
SYSCALL -> RUNNING     the M returning from its syscall, by CAS (exitsyscall)
SYSCALL -> IDLE        anyone else, by CAS only (retake, for_each_p), then handoffp
SYSCALL -> GCSTOP      stop-the-world, by CAS
IDLE -> GCSTOP         stop-the-world takes idle Ps (sched lock held)
GCSTOP -> IDLE/RUNNING start-the-world
* -> DEAD              shutdown, or set_procs shrinking
DEAD -> GCSTOP         set_procs growing again (the P is re-initialised)
====================  ==========================================================

With ``RAGGED_DEBUG=1`` every transition is checked against this table (and the
own-M rule) and an illegal one raises :class:`IllegalTransition`.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from ._atomics import AtomicWords
from ._errors import IllegalTransition
from ._m import tls as _tls

if TYPE_CHECKING:  # pragma: no cover
    from ._m import M
    from ._sched import Sched

IDLE, RUNNING, SYSCALL, GCSTOP, DEAD = range(5)
STATUS_NAMES = ("idle", "running", "syscall", "gcstop", "dead")

# Word indexes inside P.words.
W_STATUS = 0
W_SAFEPOINT = 1

_LEGAL = {
    (IDLE, RUNNING),
    (RUNNING, IDLE),
    (RUNNING, SYSCALL),
    (RUNNING, GCSTOP),
    (SYSCALL, RUNNING),
    (SYSCALL, IDLE),
    (SYSCALL, GCSTOP),
    (IDLE, GCSTOP),
    (GCSTOP, IDLE),
    (GCSTOP, RUNNING),
    (IDLE, DEAD),
    (RUNNING, DEAD),
    (SYSCALL, DEAD),
    (GCSTOP, DEAD),
    (DEAD, GCSTOP),
}
_CAS_ONLY = {(SYSCALL, RUNNING), (SYSCALL, IDLE), (SYSCALL, GCSTOP)}


class P:
    """A processor.  ``p.id`` and ``p.local`` are public; the rest is the scheduler's.

    ``local`` is a plain dict of per-P storage: a ``for_each_p`` callback and
    the goroutines running on this P may use it without locks, because only
    one of them runs on a P at a time (see :class:`ragged.PerP`).  ``id`` is
    the P's number, from 0 to ``procs - 1``.

    Who writes what (no field relies on the GIL; docs/design.md).  ``words`` are
    atomic.  ``runq`` is a deque whose single appends and pops are atomic on
    both builds (own M pushes; own M and thieves pop).  Every other field has
    one writer at a time: *whoever owns the P now* -- its M while it holds it,
    the sched lock's holder while it sits on the idle list, the winner of the
    status CAS that took it out of SYSCALL (sysmon, a barrier, a
    stop-the-world, the M coming back), the stop-the-world coordinator while it
    is stopped.  That covers ``m``, ``schedtick``, ``syscalltick``,
    ``nsyscall`` and ``pause_ns`` (a barrier's ``fn`` runs for the P on
    exactly one thread: the winner of the flag CAS).  ``sp_requested`` is set
    by the coordinator before it publishes the flag and cleared by the flag's
    winner.  ``sysmon_*`` belong to sysmon.  Other threads read all of these
    as hints (metrics, dumps, sysmon) and decide nothing on them.

    :raises: nothing (Ps are made by the runtime; :func:`current_p` and
        ``for_each_p`` callbacks hand them out).
    :Called from: anywhere, but ``local`` only from the P's own goroutine or a
        callback running for the P.
    """

    __slots__ = (
        "id",
        "sched",
        "words",
        "plain",
        "runq",
        "schedtick",
        "syscalltick",
        "m",
        "local",
        "sysmon_schedtick",
        "sysmon_schedwhen",
        "sysmon_blockdue",
        "sysmon_syscalltick",
        "sysmon_syscallwhen",
        "sysmon_preempt_tick",
        "sysmon_preempt_cpu",
        "sp_requested",
        "sp_wait",
        "sp_err",
        "pause_ns",
        "nsyscall",
        "__weakref__",
    )

    def __init__(self, pid: int, sched: Sched) -> None:
        self.id = pid
        self.sched = sched
        self.words = AtomicWords(2)
        self.plain = self.words.plain
        self.words.store(W_STATUS, GCSTOP)
        self.runq: deque[Any] = deque()
        self.schedtick = 0
        self.syscalltick = 0
        self.m: M | None = None
        self.local: dict[Any, Any] = {}
        self.sysmon_schedtick = 0
        self.sysmon_schedwhen = 0.0
        self.sysmon_blockdue = float("inf")  # sysmon: when this slice is due a block report
        self.sysmon_syscalltick = 0
        self.sysmon_syscallwhen = 0.0
        self.sysmon_preempt_tick = -1  # the slice sysmon asked to end, while the request is open (_preempt)
        self.sysmon_preempt_cpu = 0.0  # its M's thread CPU time when asked
        self.sp_requested = 0.0  # when the current barrier asked this P (metrics)
        self.sp_wait = -1.0  # request to fn done, for the barrier in flight (-1: not yet)
        self.sp_err: BaseException | None = None  # what fn raised on this P, if anything
        self.pause_ns = 0  # mutator time this P lost to barriers / stop-the-world
        self.nsyscall = 0  # syscalls entered from this P (written by its own M)

    # ------------------------------------------------------------- status

    @property
    def status(self) -> int:
        """Plain (possibly stale) read of the status word."""
        return self.plain[W_STATUS]

    @property
    def status_name(self) -> str:
        """``"idle"``, ``"running"``, ``"syscall"``, ``"gcstop"`` or ``"dead"`` (a snapshot)."""
        return STATUS_NAMES[self.plain[W_STATUS]]

    def setstatus(self, new: int) -> None:
        """Store a new status.  Caller owns the P (its M, or the sched lock for idle Ps)."""
        sched = self.sched
        if sched.chaos is not None:
            sched.chaos.point("setstatus")
        if sched.debug:
            self._check(self.words.load(W_STATUS), new, cas=False)
        self.words.store(W_STATUS, new)

    def casstatus(self, old: int, new: int) -> bool:
        """CAS the status from ``old`` to ``new``; True if this caller won."""
        sched = self.sched
        if sched.chaos is not None:
            sched.chaos.point("casstatus")
        if sched.debug and (old, new) not in _LEGAL:
            raise IllegalTransition(f"P{self.id}: illegal status CAS {STATUS_NAMES[old]} -> {STATUS_NAMES[new]}")
        return self.words.cas(W_STATUS, old, new)

    def _check(self, old: int, new: int, cas: bool) -> None:
        name = f"P{self.id}: {STATUS_NAMES[old]} -> {STATUS_NAMES[new]}"
        if old == new:
            return
        if (old, new) not in _LEGAL:
            raise IllegalTransition(f"{name} is not a legal transition")
        if not cas and (old, new) in _CAS_ONLY:
            raise IllegalTransition(f"{name} must be made by CAS, not a plain store")
        if old == RUNNING and new != DEAD:
            me = getattr(_tls, "m", None)
            if self.m is not None and me is not self.m:
                raise IllegalTransition(f"{name}: only the P's own M may change it out of running")

    # ------------------------------------------------------------- barrier flag

    @property
    def run_safe_point_fn(self) -> int:
        """Plain read of the ``runSafePointFn`` flag."""
        return self.plain[W_SAFEPOINT]

    def __repr__(self) -> str:
        return f"<P{self.id} {self.status_name} runq={len(self.runq)}>"
