"""sysmon's blocking-call report: a goroutine that holds its P too long.

A goroutine that calls ``time.sleep``, a blocking socket call or a long
computation without awaiting the runtime keeps its P, and every goroutine
queued on that P waits behind it, silently.  With the ``block_report`` setting
on, sysmon logs such a goroutine once per slice (asyncio's debug mode does the
same: "Executing <Task ...> took 0.2 seconds"), with its id, name, labels,
its current Python stack, what waits to run meanwhile (its P's queue, the
global queue, overdue timers), whether it was preempted asynchronously
(CPython 3.12+: see ``_preempt``; a loop in C, a regex or ``time.sleep``
raises no Python events and cannot be) and what to do about it, and counts
it in ``metrics()["blocking_reports"]``.

What "reaching a safe point" means here.  sysmon already follows each running
P's *slice*: the time since the P's ``schedtick`` (bumped each time a
goroutine starts running on it) or its syscall count last moved.  A slice ends
whenever the goroutine gives its P back -- it parks (channel, lock, sleep,
join), yields (``gosched``), enters ``ragged.syscall``, exits -- or honours a
preemption request at a checkpoint.  ``await ragged.checkpoint()`` with
nothing pending does not reach the scheduler, so it does not end the slice by
itself; but sysmon asks every goroutine that has run ``preempt_after`` (10ms)
to yield, and the goroutine's next checkpoint then traps and ends the slice.
So a goroutine is reported when its slice has lasted ``block_report`` seconds
*and* it has left sysmon's last request to yield unanswered for
``preempt_after``: a goroutine that checkpoints often is never reported, not
even when sysmon itself was held up (starved of the CPU or the GIL) and
comes back to a long slice it had not yet asked to end.  Hence
``block_report`` must exceed ``preempt_after``.  A goroutine coordinating a
barrier or a stop-the-world (it waits for the other Ps at a safe point of
its own) is not reported; while the world is stopped nothing is.  On an
overloaded machine a goroutine whose thread gets no CPU (or, with the GIL, no
GIL) for about ``block_report`` is reported too: its stack then shows it in
ordinary code between two checkpoints.

The report reads the goroutine's state without locks (as the goroutine dump
does) and drops it if the slice ended while it was being written.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from types import FrameType
from typing import TYPE_CHECKING, Any

from ._preempt import report_note

if TYPE_CHECKING:  # pragma: no cover
    from ._g import Goroutine
    from ._p import P
    from ._sched import Sched

_log = logging.getLogger("ragged")

ADVICE = (
    "A blocking call belongs in `await ragged.syscall(fn, *args)`, which hands the P to other "
    "goroutines while it blocks; a long computation should `await ragged.checkpoint()` in its loop "
    "so that sysmon can preempt it."
)


def slice_tick(p: P) -> int:
    """The P's slice fingerprint: moves when a goroutine starts running on it or enters a syscall."""
    return p.schedtick + p.nsyscall


def _outer_frame(g: Goroutine) -> FrameType | None:
    outer: Any = g.coro
    return getattr(outer, "cr_frame", None) or getattr(outer, "gi_frame", None)


def _frame_chain(frame: FrameType | None, outer_frame: FrameType | None) -> list[FrameType]:
    """``frame`` and its callers out to ``outer_frame`` (a goroutine's outermost), innermost first.

    The M's scheduler frames below the goroutine are left out (all frames are
    kept if the goroutine's frame is not found, e.g. when it moved meanwhile).
    """
    chain: list[FrameType] = []
    f = frame
    while f is not None:
        chain.append(f)
        if f is outer_frame:
            break
        f = f.f_back
    return chain


_STACK_TRIES = 20


def running_stack(g: Goroutine, ident: int) -> list[str]:
    """The current Python stack of ``g``, running on the thread ``ident``, innermost last.

    The thread runs on while its frames are read.  When the innermost frame
    returns just then, its link to its caller can read as None for an instant
    (the frame hands the link from the thread's stack over to its frame
    object), and the walk would stop at that one frame: seen on the
    free-threaded build, where the goroutine keeps running in parallel.  So a
    walk that falls short of the goroutine's outermost coroutine frame is
    taken again from a new snapshot, a few times; the last one is used (the
    goroutine may have moved to another M meanwhile).
    """
    outer_frame = _outer_frame(g)
    chain: list[FrameType] = []
    for _ in range(_STACK_TRIES):
        chain = _frame_chain(sys._current_frames().get(ident), outer_frame)
        if not chain or chain[-1] is outer_frame:
            break
    return traceback.StackSummary.extract((fr, fr.f_lineno) for fr in reversed(chain)).format()


def report_blocking(sched: Sched, p: P, tick: int, ran: float) -> bool:
    """Log the goroutine that has held ``p`` for ``ran`` seconds in the slice ``tick``.

    Called by sysmon without locks.  Returns False, logging nothing, when there
    is nobody to blame: no goroutine on the P, the world's coordinator, or a
    slice that ended meanwhile.
    """
    m = p.m
    g = m.curg if m is not None else None
    if m is None or g is None or m.ident is None or sched.worldsema.owner is g:
        return False
    stack = running_stack(g, m.ident)
    if slice_tick(p) != tick or m.curg is not g:
        return False
    labels = f" labels={g.labels}" if g.labels else ""
    note = report_note(sched, m, g)
    sched.metrics.incr("blocking_reports")
    _log.warning(
        "ragged: goroutine %d %r%s has held P%d for %.3fs without reaching a safe point; %s.\n%s%s\n"
        "Its stack on M%d, innermost last:\n%s",
        g.id,
        g.name,
        labels,
        p.id,
        ran,
        waiting(sched, p),
        ADVICE,
        "\n" + note if note else "",
        m.id,
        "".join(stack).rstrip("\n"),
    )
    return True


def waiting(sched: Sched, p: P) -> str:
    """What waits to run while ``p`` is held: its run queue, the global queue, overdue timers."""
    local = len(p.runq)
    glob = len(sched.globrunq)
    timers = sched.timers.overdue(time.monotonic())
    return (
        f"{local + glob + timers} goroutine(s) or timer(s) wait to run meanwhile: {local} wait in that P's "
        f"run queue, {glob} in the global queue, {timers} timer(s) are overdue"
    )
