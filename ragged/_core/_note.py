"""Notes: one-shot wakeups for threads (Go's ``note``), chosen by interpreter build.

A note is what an idle M parks on (``m.park``), what sysmon sleeps on between
rounds and what a barrier or stop-the-world coordinator waits on for the last
P (``sched.stopnote``).  ``sleep(timeout)`` blocks until ``wakeup()``; a
wakeup that arrives first is kept, so the next ``sleep`` returns at once.
Callers always re-check their condition after ``sleep`` returns: a wakeup may
be left over from an earlier round, and a timed-out sleep may race a wakeup.

Two implementations behind one interface, chosen when the note is made:

* :class:`LockNote` (GIL build): a ``threading.Lock`` used as a binary
  semaphore -- the cheapest blocking primitive there, and its timed acquire
  parks at once (the GIL build's lock does not spin).
* :class:`FdNote` (free-threaded build): a kernel wait on an eventfd (a pipe
  where there is no eventfd).  The free-threaded lock spins up to 40 times
  with ``sched_yield()`` before it parks, and every ``Condition.wait`` or
  first wait on a lock takes that path; with busy threads on every core each
  yield gives the core away for a scheduler slice.  Measured with 2 busy
  threads on 2 cores, a 100µs-sliced wait woken from another thread: lock
  note 22-48µs p50 but 111-167ms p99; eventfd note 13µs p50, 3.3ms p99
  (docs/design.md, "Free-threaded CPython").

The choice follows what the interpreter is (``sys._is_gil_enabled()``), never
a user flag: both are correct on either build, only their speed differs.
"""

from __future__ import annotations

import os
import select
import threading
from typing import Protocol

from ._platform import gil_enabled

__all__ = ["FdNote", "LockNote", "Note", "new_note"]

_FD_SETSIZE = 1024  # select.select() refuses fds at or above this


class Note(Protocol):
    """What every note offers; see the module docstring for the contract."""

    def sleep(self, timeout: float | None = None) -> bool:
        """Block until woken (True) or until ``timeout`` seconds pass (False)."""
        ...

    def wakeup(self) -> None:
        """Wake the sleeper, or the next sleep.  Waking twice is harmless."""
        ...

    def clear(self) -> None:
        """Drop a pending wakeup, if any."""
        ...


class LockNote:
    """A note on a ``threading.Lock`` held while no wakeup is pending (GIL build)."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()

    def sleep(self, timeout: float | None = None) -> bool:
        if timeout is None:
            return self._lock.acquire()
        return self._lock.acquire(timeout=max(timeout, 0.0))

    def wakeup(self) -> None:
        try:
            self._lock.release()
        except RuntimeError:
            pass  # already woken and not yet consumed

    def clear(self) -> None:
        self._lock.acquire(blocking=False)


_HAVE_EVENTFD = hasattr(os, "eventfd")


class FdNote:
    """A note on a non-blocking eventfd, or a pipe elsewhere (free-threaded build).

    ``sleep`` waits in ``select.select`` (microsecond timeouts) while the fd is
    below FD_SETSIZE, else in ``poll`` (millisecond timeouts, rounded up: only
    the timeout path gets coarser, a wakeup still ends the wait at once).  The
    fds are closed when the note is garbage: nobody can call ``wakeup`` then,
    so a closed descriptor number is never written to after reuse.
    """

    __slots__ = ("_rfd", "_wfd", "__weakref__")

    def __init__(self) -> None:
        if _HAVE_EVENTFD:
            self._rfd = self._wfd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        else:  # pragma: no cover - macOS and the BSDs
            self._rfd, self._wfd = os.pipe()
            os.set_blocking(self._rfd, False)
            os.set_blocking(self._wfd, False)

    def _consume(self) -> bool:
        """Take a pending wakeup without blocking; True if there was one."""
        try:
            if _HAVE_EVENTFD:
                os.eventfd_read(self._rfd)
            else:  # pragma: no cover
                os.read(self._rfd, 512)
        except BlockingIOError:
            return False
        return True

    def sleep(self, timeout: float | None = None) -> bool:
        if self._consume():
            return True
        fd = self._rfd
        if timeout is not None and timeout <= 0:
            return False
        if fd < _FD_SETSIZE:
            select.select([fd], [], [], timeout)
        else:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            poller.poll(None if timeout is None else timeout * 1e3)
        return self._consume()

    def wakeup(self) -> None:
        try:
            if _HAVE_EVENTFD:
                os.eventfd_write(self._wfd, 1)
            else:  # pragma: no cover
                os.write(self._wfd, b"\x01")
        except BlockingIOError:  # pragma: no cover - a full pipe already holds a wakeup
            pass

    def clear(self) -> None:
        self._consume()

    def fileno(self) -> int:
        """The descriptor that becomes readable on wakeup (for a poller to watch)."""
        return self._rfd

    def close(self) -> None:
        """Close the fds now, for an owner that knows nobody sleeps on or wakes the note any more
        (the network poller's break note at runtime close); later calls raise ``OSError``."""
        fds = {self._rfd, self._wfd}
        self._rfd = self._wfd = -1
        for fd in fds:
            if fd >= 0:
                os.close(fd)

    def __del__(self) -> None:
        for fd in {getattr(self, "_rfd", -1), getattr(self, "_wfd", -1)}:
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:  # pragma: no cover
                    pass


def new_note() -> Note:
    """A note of the kind that suits this interpreter (see the module docstring)."""
    return LockNote() if gil_enabled() else FdNote()
