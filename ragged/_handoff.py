"""Committed wake-ups: the park that channels, select and sync share.

Channels and locks *hand off*: a sender gives its value straight to a parked
receiver, an unlocker gives the lock straight to the first waiter.  Once the
waker has won the waiter's claim and called :func:`complete`, the operation
has happened -- the value has left the sender, the lock has a new owner --
and the waiter must see it complete, whatever else happens.

The scheduler can still throw ``Cancelled`` into a goroutine whose wait was
already completed: when ``g.cancel()`` lands after the waker's ``goready`` but
before the goroutine runs again, ``execute`` replaces the resume value with
``Cancelled`` (see the closing report of issue 5).  A handed-off value would be
lost and a handed-off lock would have no owner.  :func:`park_op` closes that
window here: a wait that ends in ``Cancelled`` although the sudog was
completed returns normally, and the cancellation is re-posted so that it is
raised at the goroutine's next await instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._errors import Cancelled
from ._m import tls
from ._park import Sudog, WaitQueue, park_on, ready

if TYPE_CHECKING:  # pragma: no cover
    from ._g import Goroutine
    from ._sched import Sched


_COMMITTED = object()  # a completed sudog's ``value`` (no reference cycle through the sudog)


def complete(s: Sudog) -> None:
    """Wake ``s`` with its operation done.  The caller has won ``s``'s claim.

    Marks the sudog committed before readying it; the waiter reads its
    results (``elem``, ``ok``) from the sudog.  Call it with no lock held, or
    only locks the waiter does not need to run.
    """
    s.value = _COMMITTED
    ready(s, _COMMITTED)


def committed(s: Sudog) -> bool:
    """True once a waker has called :func:`complete` on ``s``."""
    return s.value is _COMMITTED


def repost_cancel(g: Goroutine) -> None:
    """Re-issue a cancellation that arrived too late to abort a completed wait.

    ``g`` is the running goroutine; ``Cancelled`` is raised at its next await.
    """
    g.cancel()


async def park_op(
    q: WaitQueue,
    lock: threading.Lock,
    reason: str,
    s: Sudog,
    on_cancel: Callable[[Sudog], None] | None = None,
) -> Sudog:
    """Park the current goroutine on ``q`` until a waker completes ``s``.

    ``lock`` (the owner's lock) is held on entry and released on return.
    Returns ``s``.  If the goroutine is cancelled before any waker won the
    claim, the sudog leaves the queue, ``on_cancel(s)`` runs under ``lock``
    and ``Cancelled`` propagates.  If a waker had already completed ``s``,
    the wait returns normally and the cancel is delivered at the next await.
    """
    try:
        await park_on(q, lock, reason, s)
    except Cancelled:
        if committed(s):
            repost_cancel(s.g)
            return s
        if on_cancel is not None:
            with lock:
                on_cancel(s)
        raise
    return s


def caller_sched() -> Sched | None:
    """The scheduler of the runtime running this thread's goroutine, else None.

    Objects remember it the first time a goroutine uses them, so that plain
    threads blocked on them are visible to that runtime (``block_on``'s
    ``registry``: deadlock detection wakes them with ``Deadlock``).
    """
    m = getattr(tls, "m", None)
    return m.sched if m is not None else None


__all__ = ["caller_sched", "committed", "complete", "park_op", "repost_cancel"]
