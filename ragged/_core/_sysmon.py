"""sysmon: the daemon thread that watches the scheduler (Go's ``sysmon``).

Each round it:

* retakes Ps that have sat in SYSCALL longer than ``syscall_retake`` when
  other work could use them, and hands them to another M (``retake``);
* asks a goroutine that has run longer than ``preempt_after`` without
  passing through the scheduler to yield at its next checkpoint (on CPython
  3.12+, one that does not reach a checkpoint is then preempted
  asynchronously, and sysmon switches the events for that off again once
  nothing needs them: ``_preempt.sysmon_round``), and, with
  ``block_report`` on, logs one that has held its P longer than that
  (``_blockreport``; once per slice);
* fires overdue timers nobody else fired, and wakes an idle P for queued work
  if a wakeup was lost;
* polls the network if nobody has for 10ms, and queues what is ready;
* runs deadlock detection when enabled.

Adaptive sleep as in Go: 20µs while it finds something to do, doubling after
50 idle rounds up to 10ms.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ._blockreport import report_blocking
from ._netpoll_sched import sysmon_poll
from ._note import Note
from ._p import IDLE, RUNNING, SYSCALL, W_STATUS
from ._preempt import slice_requested, sysmon_exit, sysmon_round

if TYPE_CHECKING:  # pragma: no cover
    from ._sched import Sched

_log = logging.getLogger("ragged")
_monotonic = time.monotonic

MIN_DELAY = 20e-6
MAX_DELAY = 10e-3
FORCE_RETAKE = 10e-3  # Go retakes any P in a syscall this long, work or not
_INF = float("inf")


def sysmon(sched: Sched, note: Note) -> None:
    """Thread entry.  Runs until ``sched.shutdown``; ``note`` wakes it early."""
    from ._debug import DeadlockDetector

    detector = DeadlockDetector(sched)
    delay = MIN_DELAY
    idle = 0
    cap = _INF  # the longest the next sleep may be (asynchronous preemption's pace)
    try:
        while not sched.shutdown:
            note.sleep(min(delay, cap))
            if sched.shutdown:
                break
            now = _monotonic()
            n = retake(sched, now)
            cap = sysmon_round(sched, now)
            t0 = sched.timers.timer0
            if t0 and now - t0 > 1e-3:
                n += sched.timers.run(now)
            if sched.netpoll is not None:
                n += sysmon_poll(sched, now)
            if (sched.globrunq or sched.any_local_work()) and sched.pidle and not sched.nmspinning:
                sched.wakep()
            if sched.settings.detect_deadlock:
                detector.check(now)
            if n:
                idle = 0
                delay = MIN_DELAY
            else:
                idle += 1
                if idle > 50:
                    delay = min(delay * 2, MAX_DELAY)
    except BaseException:  # noqa: BLE001  # pragma: no cover - a bug in ragged
        _log.critical("ragged: sysmon crashed; this is a bug in ragged", exc_info=True)
    finally:
        sysmon_exit(sched)  # no other sysmon may be left to switch the events off


def retake(sched: Sched, now: float) -> int:
    """Preempt long-running goroutines and retake syscall Ps; return Ps retaken.

    Reads P state without the sched lock; every change is made by CAS (syscall
    Ps) or is a request the P's own M honours (preemption).
    """
    settings = sched.settings
    block = settings.block_report
    n = 0
    stw = sched.gcwaiting
    for p in sched.allp[: sched.procs]:
        s = p.plain[W_STATUS]
        if s == RUNNING and not stw:
            # The slice (_blockreport.slice_tick, inlined): a syscall ends it too.
            t = p.schedtick + p.nsyscall
            if p.sysmon_schedtick != t:
                p.sysmon_schedtick = t
                p.sysmon_schedwhen = now
                p.sysmon_blockdue = now + block if block else _INF
            elif now - p.sysmon_schedwhen >= settings.preempt_after:
                # Blocking: its slice is due a report, and it has ignored our
                # last request to yield (made after the slice began) this long.
                asked = p.sysmon_schedwhen
                if block is not None and now >= p.sysmon_blockdue and asked > p.sysmon_blockdue - block:
                    ran = now - p.sysmon_blockdue + block
                    p.sysmon_blockdue = _INF  # once per slice
                    report_blocking(sched, p, t, ran)
                if sched.preemptone(p):
                    p.sysmon_schedwhen = now  # ask again only after another slice
                    slice_requested(sched, p, t)
        elif s == SYSCALL:
            t = p.syscalltick
            if p.sysmon_syscalltick != t:
                p.sysmon_syscalltick = t
                p.sysmon_syscallwhen = now
                continue
            elapsed = now - p.sysmon_syscallwhen
            if elapsed < settings.syscall_retake:
                continue
            # Leave it alone if nobody needs it: no local or global work and
            # another M is already spinning or a P is idle (Go's rule).
            if not p.runq and not sched.globrunq and (sched.nmspinning or sched.pidle) and elapsed < FORCE_RETAKE:
                continue
            if p.casstatus(SYSCALL, IDLE):
                p.syscalltick += 1
                n += 1
                sched.metrics.incr("syscall_handoffs")
                sched.handoffp(p, "retake")
    return n
