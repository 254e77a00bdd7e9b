"""Diagnostics: the goroutine dump and deadlock detection.

``dump(sched)`` is Go's SIGQUIT traceback: every goroutine with id, name,
labels, status, what it waits on and its coroutine stack (for a running
goroutine, the stack of the M thread running it), then every P and M.

Deadlock: when every goroutine is parked, no P runs, no queue holds work, no
timer is pending, no goroutine is in a syscall or waits on the network poller,
and no plain thread is blocked with a timeout, nothing can ever run again.  sysmon checks this (cheap reads
first), and declares a deadlock only after seeing the same state, with no
scheduling progress, on two checks at least 10ms apart.  This assumes that
plain threads which are *not* blocked in ragged will not wake anyone, so it
is on for ``ragged.run`` and off by default for an embedded ``Runtime``.
"""

from __future__ import annotations

import sys
import traceback
from typing import TYPE_CHECKING

from ._g import G_STATUS_NAMES, RUNNING, SYSCALL, WAITING
from ._netpoll_sched import waits_on_network
from ._p import STATUS_NAMES

if TYPE_CHECKING:  # pragma: no cover
    from ._sched import Sched

CHECK_INTERVAL = 10e-3


def dump(sched: Sched) -> str:
    """Every goroutine, P and M of ``sched`` as text.  Takes no scheduler lock."""
    frames = sys._current_frames()
    out = [f"ragged runtime: procs={sched.procs} goroutines={len(sched.allgs)} Ms={len(sched.allm)}"]
    out.append(f"global run queue: {len(sched.globrunq)}; idle Ps: {len(sched.pidle)}; spinning Ms: {sched.nmspinning}")
    out.append("")
    for g in sorted(sched.goroutines(), key=lambda g: g.id):
        st = G_STATUS_NAMES[g.st]
        what = f", {g.waitreason}" if g.st == WAITING else ""
        lm = g.lockedm
        if lm is not None:
            what = f", preempted asynchronously, waiting for a P on M{lm.id}"
        labels = f" labels={g.labels}" if g.labels else ""
        out.append(f"goroutine {g.id} [{st}{what}]: {g.name!r}{labels}")
        m = g.m
        if g.st in (RUNNING, SYSCALL) and m is not None and m.ident in frames:
            stack = traceback.format_stack(frames[m.ident])
            out.append(f"  (on M{m.id})")
        else:
            stack = g.stack()
        out.extend("  " + line.rstrip("\n").replace("\n", "\n  ") for line in stack)
        out.append("")
    for p in sched.allp:
        m = p.m
        cur = m.curg if m is not None else None
        out.append(
            f"P{p.id}: {STATUS_NAMES[p.status]} runq={len(p.runq)} schedtick={p.schedtick} "
            f"syscalltick={p.syscalltick} M={m.id if m else None} G={cur.id if cur else None} "
            f"runSafePointFn={p.run_safe_point_fn}"
        )
    for m in list(sched.allm):
        state = "exited" if m.exiting else ("idle" if m in sched.midle else "busy")
        lg = m.lockedg
        if lg is not None:
            state = f"waiting for a P to resume goroutine {lg.id}"
        out.append(f"M{m.id}: {state} p={m.p.id if m.p else None} curg={m.curg.id if m.curg else None}")
    return "\n".join(out)


class DeadlockDetector:
    """Sysmon's deadlock check (Go's ``checkdead``), with a two-look confirmation."""

    def __init__(self, sched: Sched) -> None:
        self.sched = sched
        self.last_check = 0.0
        self.suspect: tuple | None = None
        self.reported = False

    def _snapshot(self) -> tuple | None:
        """A progress fingerprint if everything looks asleep, else None."""
        sched = self.sched
        if sched.gcwaiting or sched.safe_point_fn is not None or sched.shutdown:
            return None
        if sched.runtime.tearing_down():
            return None  # main returned: Go has exited, parked goroutines and all
        if len(sched.pidle) != sched.procs or sched.globrunq or sched.timers.live:
            return None
        if sched.any_local_work():
            return None
        gs = sched.goroutines()
        if not gs or any(g.st != WAITING for g in gs):
            return None
        if waits_on_network(sched):
            return None  # a peer may still make its fd ready
        with sched._tw_lock:
            waiters = list(sched.thread_waiters)
        if any(getattr(s, "timed", False) for s in waiters):
            return None
        ticks = sum(p.schedtick for p in sched.allp)
        return (ticks, sched.ngcreated, len(gs))

    def check(self, now: float) -> None:
        if self.reported or now - self.last_check < CHECK_INTERVAL:
            return
        self.last_check = now
        snap = self._snapshot()
        if snap is None:
            self.suspect = None
            return
        if self.suspect != snap:
            self.suspect = snap
            return
        with self.sched.lock:
            confirmed = len(self.sched.pidle) == self.sched.procs and not self.sched.globrunq
        if confirmed and self._snapshot() == snap:
            self.reported = True
            self.sched.runtime._on_deadlock()
