"""Committed wake-ups: the park that channels, select and sync share.

Channels and locks *hand off*: a sender gives its value straight to a parked
receiver, an unlocker gives the lock straight to the first waiter.  Once the
waker has won the waiter's claim and called :func:`complete`, the operation
has happened -- the value has left the sender, the lock has a new owner --
and the waiter sees it complete: a ``g.cancel()`` arriving later cannot win
the claim, and the scheduler delivers it at the goroutine's *next* await
(``execute`` never turns a completed wake-up into ``Cancelled``).  So a wait
either completes or is cancelled before any waker took it, never both.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._m import tls
from ._park import Sudog, WaitQueue, park_on, ready

if TYPE_CHECKING:  # pragma: no cover
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


async def park_op(
    q: WaitQueue,
    lock: threading.Lock,
    reason: str,
    s: Sudog,
    on_cancel: Callable[[Sudog], None] | None = None,
) -> Sudog:
    """Park the current goroutine on ``q`` until a waker completes ``s``; return ``s``.

    ``lock`` (the owner's lock) is held on entry and released on return.  The
    waiter reads its results (``elem``, ``ok``) from ``s``.  If the goroutine
    is cancelled first, the sudog leaves the queue, ``on_cancel(s)`` runs
    under ``lock`` and ``Cancelled`` propagates.
    """
    await park_on(q, lock, reason, s, on_cancel)
    return s


def caller_sched() -> Sched | None:
    """The scheduler of the runtime running this thread's goroutine, else None.

    Objects remember it the first time a goroutine uses them, so that plain
    threads blocked on them are visible to that runtime (``block_on``'s
    ``registry``: deadlock detection wakes them with ``Deadlock``).
    """
    m = getattr(tls, "m", None)
    return m.sched if m is not None else None


__all__ = ["caller_sched", "committed", "complete", "park_op"]
