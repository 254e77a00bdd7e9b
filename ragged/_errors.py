"""Every exception ragged raises on its own account.

All of them derive from :class:`RaggedError`, which is a ``RuntimeError``:
where Go's runtime would ``throw``, ragged raises one of these and leaves the
runtime usable.  Bad arguments get the built-in ``TypeError`` / ``ValueError``
with a message saying what to pass instead.
"""

from __future__ import annotations


class RaggedError(RuntimeError):
    """Base class of every error that is ragged's own."""


class RuntimeClosed(RaggedError):
    """The runtime was closed; nothing more can be started on it."""


class NotInGoroutine(RaggedError):
    """A goroutine-only call (``await ragged.x()``) was made outside a goroutine."""


class NotInPlainThread(RaggedError):
    """A blocking plain-thread call was made from inside a goroutine.

    Blocking the M's thread would stall every goroutine queued on its P; the
    message names the ``await`` form to use instead.
    """


class ChanClosed(RaggedError):
    """Send on a closed channel, a second close, or receive on a drained closed channel."""


class Cancelled(RaggedError):
    """Raised inside a goroutine at its current or next await after ``g.cancel()``."""


class BarrierTimeout(RaggedError, TimeoutError):
    """``for_each_p(fn, timeout=...)`` gave up before every P ran ``fn``.

    ``missing`` lists the ids of the Ps that never ran ``fn`` for this barrier.
    """

    def __init__(self, message: str, missing: list[int] | None = None) -> None:
        super().__init__(message)
        self.missing: list[int] = list(missing or [])


class BarrierError(RaggedError):
    """A barrier or stop-the-world was started where it would deadlock.

    For example from inside a ``for_each_p`` callback, or while the same thread
    or goroutine already holds the world (a barrier or stop-the-world section).
    """


class Deadlock(RaggedError):
    """All goroutines are asleep and nothing can ever wake them."""


class IllegalTransition(RaggedError):
    """``RAGGED_DEBUG=1``: a P status change broke the table in DESIGN.md."""


def combine(excs: list[BaseException], message: str) -> BaseException:
    """One exception for several: itself when alone, else an (Base)ExceptionGroup."""
    if len(excs) == 1:
        return excs[0]
    errs = [e for e in excs if isinstance(e, Exception)]
    if len(errs) == len(excs):
        return ExceptionGroup(message, errs)
    return BaseExceptionGroup(message, excs)
