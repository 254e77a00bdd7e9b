"""Committed wake-ups: how channels, select and sync hand a parked waiter its completed operation.

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

from typing import TYPE_CHECKING

from ._m import tls
from ._park import Sudog, ready

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


def caller_sched() -> Sched | None:
    """The scheduler of the runtime running this thread's goroutine, else None.

    Objects remember it the first time a goroutine uses them, so that plain
    threads blocked on them are visible to that runtime (``block_on``'s
    ``registry``: deadlock detection wakes them with ``Deadlock``).
    """
    m = getattr(tls, "m", None)
    return m.sched if m is not None else None


__all__ = ["caller_sched", "committed", "complete"]
