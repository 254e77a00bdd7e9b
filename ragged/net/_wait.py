"""Waits on bare fds: :func:`wait_readable` and :func:`wait_writable` (for code that does its own non-blocking I/O)."""

from __future__ import annotations

from typing import Any

from .._core import READ, WRITE, NotPollable, check_timeout, current_g, netpoll_of, poll_release, pollwait


async def wait_readable(fileobj: Any, timeout: float | None = None) -> None:
    """Park the goroutine until ``fileobj`` (an fd or an object with ``fileno()``) is readable.

    For non-blocking fds: try the operation, and on ``BlockingIOError`` wait
    here and try again (a wake-up may be spurious).  Holds no thread while
    waiting.  Close the fd only once nobody waits on it.

    :raises IOTimeout: after ``timeout`` seconds.
    :raises NotPollable: for a closed fd or a regular file.
    :raises FdBusy: if another goroutine already waits to read the same fd.
    :raises TypeError: if ``fileobj`` is neither an int nor has ``fileno()``, or for a bad ``timeout``.
    :raises ValueError: for a negative fd, or a negative or NaN ``timeout``.
    :raises Cancelled: if the goroutine is cancelled while waiting.
    :raises NotInGoroutine: outside a goroutine.
    :Called from: inside a goroutine.
    """
    await _wait_fd(fileobj, READ, timeout, "ragged.wait_readable()")


async def wait_writable(fileobj: Any, timeout: float | None = None) -> None:
    """Park the goroutine until ``fileobj`` is writable; see :func:`wait_readable`.

    :raises IOTimeout: after ``timeout`` seconds.
    :raises NotPollable: for a closed fd or a regular file.
    :raises FdBusy: if another goroutine already waits to write the same fd.
    :raises TypeError: if ``fileobj`` is neither an int nor has ``fileno()``, or for a bad ``timeout``.
    :raises ValueError: for a negative fd, or a negative or NaN ``timeout``.
    :raises Cancelled: if the goroutine is cancelled while waiting.
    :raises NotInGoroutine: outside a goroutine.
    :Called from: inside a goroutine.
    """
    await _wait_fd(fileobj, WRITE, timeout, "ragged.wait_writable()")


async def _wait_fd(fileobj: Any, d: int, timeout: Any, what: str) -> None:
    fd = _fileno(fileobj, what)
    timeout = check_timeout(timeout)
    np = netpoll_of(current_g(what).sched)
    pd = np.open_fd(fd)
    try:
        await pollwait(pd, d, timeout)
    finally:
        poll_release(pd)


def _fileno(obj: Any, what: str) -> int:
    """The fd of ``obj`` (an int or anything with ``fileno()``), validated."""
    if isinstance(obj, bool):
        raise TypeError(f"{what} takes an fd or an object with fileno(), not bool")
    if isinstance(obj, int):
        if obj < 0:
            raise ValueError(f"{what} takes an fd >= 0, not {obj!r}")
        return obj
    fileno = getattr(obj, "fileno", None)
    if not callable(fileno):
        raise TypeError(f"{what} takes an fd or an object with fileno(), not {type(obj).__name__}")
    try:
        fd = fileno()
    except (OSError, ValueError) as err:
        raise NotPollable(f"{what}: {obj!r} has no usable fd ({err})") from None
    if not isinstance(fd, int) or fd < 0:
        raise NotPollable(f"{what}: {obj!r} is closed (fileno() returned {fd!r})")
    return fd
