"""What every ``ragged.net`` object shares: the socket, its poll descriptor, turns, close and deadlines.

:class:`NetFD` is Go's ``netFD`` + ``poll.FD``: a non-blocking socket, its
:class:`~ragged._core.PollDesc` (made with the object, attached to the poller
of the runtime whose goroutine first waits on it) and an :class:`FdMutex`
that serialises reads, serialises writes and delays the real close until the
last call in progress has returned.  The deadlines live on the descriptor
only.  Locks, in order: ``FdMutex.lock``, then the poller's (``PollDesc.lock``...).
"""

from __future__ import annotations

import math
import socket
import types
from collections.abc import Generator
from typing import Any, Self

from .._core import (
    READ,
    WRITE,
    NetClosed,
    PollDesc,
    Rank,
    WaitQueue,
    check_deadline,
    current_g,
    lock_maker,
    netpoll_of,
    park_on,
    poll_close,
    poll_set_deadline,
    pollwait,
    ready,
)

CLOSED = "use of closed network connection"
_TURN_REASONS = ("net read lock", "net write lock")
_new_fd_lock = lock_maker(Rank.NETFD, "ragged.net FdMutex.lock")  # threading.Lock unless RAGGED_DEBUG


@types.coroutine
def _exhausted() -> Generator[Any, Any, None]:
    return
    yield  # pragma: no cover - makes this a generator


# What FdMutex.acquire returns when the turn was free: awaiting a finished
# generator-based coroutine returns at once, every time.
_DONE = _exhausted()
try:
    _DONE.send(None)
except StopIteration:
    pass


class FdMutex:
    """Go's ``fdMutex``: serialises reads and writes, and delays the real close.

    ``lock`` guards everything.  ``busy[d]``: a call in direction ``d``
    (``READ``: read or accept; ``WRITE``: write) is in progress; others queue
    on ``q[d]`` and are handed the turn in FIFO order.  ``refs``: calls in
    progress; after ``closed`` the last one out closes the fd.
    """

    __slots__ = ("lock", "closed", "refs", "busy", "q")

    def __init__(self) -> None:
        self.lock = _new_fd_lock()
        self.closed = False
        self.refs = 0
        self.busy = [False, False]
        self.q = (WaitQueue(), WaitQueue())

    def acquire(self, d: int) -> Any:
        """Take direction ``d``'s turn: ``await mu.acquire(d)``, parking behind the calls before us (FIFO).

        When the turn is free it is taken here and an exhausted awaitable is
        returned (awaiting it costs about nothing: no generator is made on the
        fast path).  Raises NetClosed once closed.
        """
        lock = self.lock
        lock.acquire()
        if self.closed:
            lock.release()
            raise NetClosed(CLOSED)
        if not self.busy[d]:
            self.busy[d] = True
            self.refs += 1
            lock.release()
            return _DONE
        return self._acquire_slow(d)

    @types.coroutine
    def _acquire_slow(self, d: int) -> Generator[Any, Any, None]:
        """Park for the turn (``lock`` held on entry, released by the park)."""
        yield from park_on(self.q[d], self.lock, _TURN_REASONS[d])
        # Handed the turn by release() (refs counted for us), or woken by close() with NetClosed.

    def try_acquire(self, d: int) -> bool:
        """Take direction ``d``'s turn if it is free, without waiting.  Raises NetClosed once closed."""
        with self.lock:
            if self.closed:
                raise NetClosed(CLOSED)
            if self.busy[d]:
                return False
            self.busy[d] = True
            self.refs += 1
            return True

    def release(self, d: int) -> bool:
        """Give the turn to the next caller; True if the caller must now close the fd."""
        with self.lock:
            self.refs -= 1
            s = None if self.closed else self.q[d].pop_claimed()
            if s is not None:
                self.refs += 1  # the turn passes straight on
            else:
                self.busy[d] = False
            last = self.closed and self.refs == 0
        if s is not None:
            ready(s)
        return last


class NetFD:
    """What every ``ragged.net`` object shares: the socket, its poll descriptor, close and deadlines."""

    __slots__ = ("_sock", "_fd", "_mu", "_pd", "__weakref__")

    def __init__(self, sock: socket.socket) -> None:
        if not isinstance(sock, socket.socket):
            raise TypeError(f"{type(self).__name__} wraps a socket.socket, not {type(sock).__name__}")
        fd = sock.fileno()
        if fd < 0:
            raise NetClosed(f"{type(self).__name__}: the socket is closed already")
        sock.setblocking(False)
        self._sock = sock
        self._fd = fd
        self._mu = FdMutex()
        self._pd = PollDesc(fd, self)

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called (anywhere)."""
        return self._mu.closed

    def fileno(self) -> int:
        """The fd (-1 once closed).

        :raises: nothing.
        :Called from: anywhere.
        """
        return -1 if self._mu.closed else self._fd

    def _attach(self) -> PollDesc:
        """Attach the poll descriptor to the calling goroutine's runtime's poller, on first use."""
        pd = self._pd
        if pd.np is None:
            np = netpoll_of(current_g("ragged.net").sched)
            with self._mu.lock:
                if self._mu.closed:
                    raise NetClosed(CLOSED)
                if pd.np is None:
                    np.open(pd)
        return pd

    async def _wait(self, d: int, timeout: float | None = None) -> bool:
        """Park until the fd is ready in direction ``d`` (see ``pollwait``); True if it parked."""
        return await pollwait(self._attach(), d, timeout)

    def _release(self, d: int) -> None:
        if self._mu.release(d):
            self._sock.close()

    def close(self) -> None:
        """Close: every wait on it ends at once with NetClosed; the fd closes when the
        last call in progress returns.  Idempotent.

        :raises: nothing.
        :Called from: anywhere.
        """
        mu = self._mu
        with mu.lock:
            if mu.closed:
                return
            mu.closed = True
            waiters = mu.q[READ].drain_claimed() + mu.q[WRITE].drain_claimed()
            poll_close(self._pd, NetClosed(CLOSED))  # before the fd can close: never a closed fd in the poller
            last = mu.refs == 0
        for s in waiters:
            ready(s, None, NetClosed(CLOSED))
        if last:
            self._sock.close()

    def _shutdown(self) -> None:
        """Runtime close (no goroutine runs any more): close, and the fd now whatever is in flight."""
        self.close()
        self._sock.close()

    def set_deadline(self, t: float | None) -> None:
        """Reads and writes (and accepts) waiting past ``t`` raise IOTimeout.

        ``t`` is in ``time.monotonic()`` seconds (e.g. ``time.monotonic() + 5`` or
        ``ctx.deadline()``); None or ``math.inf`` clears it, a time already past
        makes every wait time out at once.  Applies to waits already parked.

        :raises TypeError: if ``t`` is not a number or None.
        :raises ValueError: for NaN, or a ``t`` that looks like ``time.time()`` (a
            wall-clock time: use ``time.monotonic() + seconds``).
        :raises NetClosed: if it is closed.
        :Called from: anywhere.
        """
        self._set_deadline((READ, WRITE), t, "set_deadline")

    def set_read_deadline(self, t: float | None) -> None:
        """Like :meth:`set_deadline`, for reads (and accepts) only.

        :raises TypeError: if ``t`` is not a number or None.
        :raises ValueError: for NaN, or a ``t`` that looks like ``time.time()``.
        :raises NetClosed: if it is closed.
        :Called from: anywhere.
        """
        self._set_deadline((READ,), t, "set_read_deadline")

    def set_write_deadline(self, t: float | None) -> None:
        """Like :meth:`set_deadline`, for writes only.

        :raises TypeError: if ``t`` is not a number or None.
        :raises ValueError: for NaN, or a ``t`` that looks like ``time.time()``.
        :raises NetClosed: if it is closed.
        :Called from: anywhere.
        """
        self._set_deadline((WRITE,), t, "set_write_deadline")

    def _set_deadline(self, dirs: tuple[int, ...], t: Any, what: str) -> None:
        # 0.0 is "no deadline" in the poller: None and inf clear it; a past deadline is kept as a tiny one.
        d = 0.0
        if t is not None:
            d = check_deadline(t, f"{type(self).__name__}.{what}()")
            d = 0.0 if d == math.inf else max(d, 1e-9)
        with self._mu.lock:
            if self._mu.closed:
                raise NetClosed(CLOSED)
            poll_set_deadline(self._pd, dirs, d)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


def check_n(n: Any, what: str) -> None:
    """Validate a byte count (an int > 0)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{what} takes a byte count (int), not {type(n).__name__}")
    if n <= 0:
        raise ValueError(f"{what} takes a byte count > 0, not {n!r}")


def check_addr(host: Any, port: Any, what: str) -> None:
    """Validate a (host, port) pair."""
    if not isinstance(host, str):
        raise TypeError(f"{what} takes a host name or address (str), not {type(host).__name__}")
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"{what} takes a port number (int), not {type(port).__name__}")
    if not 0 <= port <= 65535:
        raise ValueError(f"{what}: port must be in 0..65535, not {port!r}")
