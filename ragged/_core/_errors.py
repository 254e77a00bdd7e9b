"""Every exception ragged raises on its own account.

All of them derive from :class:`RaggedError`, which is a ``RuntimeError``:
where Go's runtime would ``throw`` over a misuse, ragged raises one of these
and leaves the runtime usable.  Bad arguments get the built-in ``TypeError`` /
``ValueError`` with a message saying what to pass instead.  Where Go has a
fatal error because the runtime itself broke, ragged stops that runtime and
raises :class:`RuntimeCrashed`.
"""

from __future__ import annotations


class RaggedError(RuntimeError):
    """Base class of every error that is ragged's own."""


class RuntimeClosed(RaggedError):
    """The runtime was closed; nothing more can be started on it."""


class RuntimeCrashed(RuntimeClosed):
    """ragged itself failed, and the runtime was stopped (Go's "fatal error").

    An exception escaped an M's scheduler loop, sysmon, the network poller or
    a timer callback: a bug in ragged.  The runtime does not limp on with a
    thread fewer (whatever that thread held would be lost, and a program could
    hang with nothing said): it logs the traceback and the goroutine dump,
    cancels every goroutine and stops every thread it started.  This error
    then reaches everyone who depends on it: ``ragged.run`` raises it, plain
    threads blocked in ``result()``, on a ``submit()`` future, in
    ``for_each_p`` or on a channel get it, and ``go()`` raises it afterwards;
    a goroutine that ended by that cancellation has it as its outcome.
    ``__cause__`` is the original exception; ``thread`` names the thread that
    failed (``"M3"``, ``"sysmon"``).  A subclass of :class:`RuntimeClosed`: the
    runtime is closed.
    """

    def __init__(self, message: str, thread: str = "") -> None:
        super().__init__(message)
        self.thread = thread


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


class NetError(RaggedError):
    """Base of the network poller's own errors (``wait_readable``, ``ragged.net``).

    ``errno`` is the OS error number behind it where there is one, else None.
    Errors the OS reports about the connection itself (``ConnectionResetError``,
    ``BrokenPipeError``, ``ConnectionRefusedError``) are passed on unchanged.
    """

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class NetClosed(NetError):
    """Use of a closed connection or listener (Go's ``net.ErrClosed``).

    Also what a goroutine waiting on a connection gets when another goroutine
    closes it: the wait ends at once.
    """


class IOTimeout(NetError, TimeoutError):
    """A network wait passed its ``timeout=`` or the connection's deadline (Go's "i/o timeout")."""


class NotPollable(NetError):
    """The fd cannot be waited on: closed (EBADF), or a kind epoll/kqueue refuses (a regular file)."""


class FdBusy(NetError):
    """Another goroutine already waits on this fd in the same direction.

    One waiter per fd and direction, as in Go's poller (where a second one is a
    fatal "double wait"); ``ragged.net`` connections queue their readers and
    writers instead, so this only concerns direct ``wait_readable``/``wait_writable``.
    """


class TooManyOpenFiles(NetError):
    """``accept`` found the process out of file descriptors (EMFILE/ENFILE).

    The listener stays usable: the connection waits in the backlog, and the
    next ``accept`` takes it once some descriptors have been closed.
    """


class UnexpectedEOF(NetError, EOFError):
    """``read_exactly(n)`` met end of stream first; ``partial`` holds the bytes it did read."""

    def __init__(self, message: str, partial: bytes = b"") -> None:
        super().__init__(message)
        self.partial = partial


class IllegalTransition(RaggedError):
    """``RAGGED_DEBUG=1``: a P status change broke the table in docs/design.md."""


class LockOrderError(RaggedError):
    """``RAGGED_DEBUG=1``: a thread was about to wait for a runtime lock out of rank order.

    Raised before the wait, so the deadlock it could lead to never happens.
    ``held`` names the lock the thread holds, ``wanted`` the one it asked for;
    the message says which ranks they have.  This is a bug in ragged, or in a
    callback that takes locks where it must not (a barrier callback runs
    under the scheduler's lock for idle Ps).
    """

    def __init__(self, message: str, held: str = "", wanted: str = "") -> None:
        super().__init__(message)
        self.held = held
        self.wanted = wanted


def combine(excs: list[BaseException], message: str) -> BaseException:
    """One exception for several: itself when alone, else an (Base)ExceptionGroup."""
    if len(excs) == 1:
        return excs[0]
    errs = [e for e in excs if isinstance(e, Exception)]
    if len(errs) == len(excs):
        return ExceptionGroup(message, errs)
    return BaseExceptionGroup(message, excs)
