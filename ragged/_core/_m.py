"""M: an OS thread that runs the scheduler loop (Go's ``m``).

Each M is a daemon ``threading.Thread`` running ``_proc.mstart``.  An M with
nothing to do parks on its own note (Go's ``m.park``, see ``_note``) and is
woken by ``startm`` with a P in ``nextp``.  ``tls.m`` is the M running on the current
thread (absent on plain threads): everything that needs "the current
goroutine" or "the current P" starts there.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from ._note import new_note

if TYPE_CHECKING:  # pragma: no cover
    from ._g import Goroutine
    from ._p import P
    from ._sched import Sched

tls = threading.local()


class M:
    """One scheduler thread.

    Fields are written by the M itself, except ``nextp``/``spinning`` which
    ``startm`` sets (under the sched lock) on an M it took off the idle list,
    and ``nextp`` of an M waiting for a P for its locked goroutine, which the
    M that dequeued that goroutine sets (``_preempt.startlockedm``).
    ``cpuclock`` (its thread's CPU clock id) is cached by whoever reads it first.
    ``asyncwant`` mirrors this M's entry in ``_preempt._want`` (written there,
    read by this M's own thread at each monitoring event).
    """

    __slots__ = (
        "id",
        "sched",
        "thread",
        "ident",
        "p",
        "nextp",
        "oldp",
        "spinning",
        "curg",
        "park",
        "timer_waiter",
        "exiting",
        "lockedg",
        "cpuclock",
        "asyncwant",
        "__weakref__",
    )

    def __init__(self, mid: int, sched: Sched) -> None:
        self.id = mid
        self.sched = sched
        self.thread: threading.Thread | None = None
        self.ident: int | None = None
        self.p: P | None = None
        self.nextp: P | None = None
        self.oldp: P | None = None
        self.spinning = False
        self.curg: Goroutine | None = None
        self.park = new_note()
        self.timer_waiter = False
        self.exiting = False
        self.lockedg: Goroutine | None = None  # preempted asynchronously mid-frame; this M waits for a P for it
        self.cpuclock: int | None = None  # this thread's CPU clock (time.pthread_getcpuclockid), once known
        self.asyncwant = False  # an async safe point is wanted on this M's thread (_preempt.want / unwant)

    def __repr__(self) -> str:
        p = self.p.id if self.p is not None else None
        g = self.curg.id if self.curg is not None else None
        return f"<M{self.id} p={p} g={g}{' spinning' if self.spinning else ''}>"
