"""Durations, timeouts and deadlines: what every call that takes one accepts, and the bound on kernel waits.

One set of rules for the whole public surface, as asyncio and Go have them:

* A **duration** (``sleep``, ``after``, ``Timer``, ``with_timeout``, ...) is
  a real number of seconds.  0 and tiny values mean "now" (a yield, a timer
  due at once); a negative duration means already expired, exactly as 0 does
  (Go's ``time.After(-1)``, asyncio's ``sleep(-1)``); ``inf`` and huge values
  mean never -- ``sleep(inf)`` parks until cancelled.  NaN, bools and
  non-numbers are refused at the call (``ValueError`` / ``TypeError``).
* A **timeout** (``timeout=`` of a blocking call) is None (wait as long as it
  takes) or a duration: ``inf`` is the same as None, a negative one the same
  as 0 (give up unless it can complete at once).
* A **deadline** (``with_deadline``, ``Conn.set_deadline``) is an absolute
  ``time.monotonic()`` time.  One in the past has expired; ``inf`` (or any
  time centuries ahead) never comes.  A deadline that looks like wall-clock
  time -- more than a year ahead of ``time.monotonic()`` and within a year of
  ``time.time()`` -- is refused with a ``ValueError`` saying to use
  ``time.monotonic() + duration``: Go's ``SetDeadline`` takes a wall-clock
  time, so ported code passes ``time.time() + d``, which on a monotonic clock
  would silently mean "decades from now".

Kernel waits.  A thread's timed wait -- a note's ``select``/lock acquire,
``epoll.poll``, a thread join -- refuses timeouts past what the platform can
represent (``OverflowError``: epoll takes an int of milliseconds, a lock an
absolute ``time_t``).  Every such wait inside ragged goes through
:func:`clamp_wait`, which bounds it by :data:`MAX_WAIT` (about 11.6 days, as
Go clamps its epoll wait).  Each of those waits loops on its own condition
(a note's caller re-checks what it waits for, the timer waiter re-reads the
earliest timer), so a clamped wait that ends early simply waits again: a
sleep is never cut short by the clamp.
"""

from __future__ import annotations

import math
import numbers
import threading
import time
from typing import Any, overload

__all__ = [
    "MAX_WAIT",
    "check_deadline",
    "check_seconds",
    "check_timeout",
    "clamp_wait",
    "looks_like_wall_clock",
]

# The longest single kernel wait: Go's netpoll_epoll.go clamps to 1e9 ms (about
# 11.6 days); no platform's lock (``threading.TIMEOUT_MAX``) takes less than that
# except Windows' 49 days, so the min is there for exotic builds only.
MAX_WAIT = min(1e6, threading.TIMEOUT_MAX)
_YEAR = 365.25 * 86400.0
_INF = math.inf


@overload
def clamp_wait(timeout: float) -> float: ...
@overload
def clamp_wait(timeout: None) -> None: ...
def clamp_wait(timeout: float | None) -> float | None:
    """``timeout`` for one kernel wait: None stays None (forever); else within [0, MAX_WAIT].

    The caller must loop on its condition: a wait clamped to ``MAX_WAIT`` may
    return before the full ``timeout``.
    """
    if timeout is None:
        return None
    if timeout > MAX_WAIT:
        return MAX_WAIT
    return timeout if timeout > 0.0 else 0.0


def _seconds(x: Any, what: str, kind: str) -> float:
    """``x`` as a float of seconds: a real number (not bool, not NaN); ints too big for a float are +-inf."""
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise TypeError(f"{what} takes {kind}, not {type(x).__name__} {x!r}")
    try:
        v = float(x)
    except OverflowError:  # an int (or Fraction) beyond any float: effectively infinite
        v = _INF if x > 0 else -_INF
    if v != v:
        raise ValueError(f"{what} takes {kind}, not NaN")
    return v


def check_seconds(seconds: Any, what: str) -> float:
    """Validate a duration for ``what``: seconds >= 0 (negative means 0: already expired; inf: never).

    :raises TypeError: for a bool or anything that is not a real number.
    :raises ValueError: for NaN.
    """
    v = _seconds(seconds, what, "a number of seconds")
    return v if v > 0.0 else 0.0


def check_timeout(timeout: Any, what: str = "timeout=") -> float | None:
    """Validate a ``timeout=`` argument: None or ``inf`` (wait forever, returned as None), else seconds >= 0.

    A negative timeout means 0: the call gives up unless it can complete at once.

    :raises TypeError: for a bool or anything that is not None or a real number.
    :raises ValueError: for NaN.
    """
    if timeout is None:
        return None
    v = _seconds(timeout, what, "None or a number of seconds")
    if v == _INF:
        return None
    return v if v > 0.0 else 0.0


def looks_like_wall_clock(t: float, now: float | None = None) -> bool:
    """True if the absolute time ``t`` is more than a year ahead of ``time.monotonic()`` and
    within a year of ``time.time()``: a wall-clock deadline given where a monotonic one belongs."""
    mono = time.monotonic() if now is None else now
    return t - mono > _YEAR and abs(t - time.time()) < _YEAR


def check_deadline(t: Any, what: str) -> float:
    """Validate an absolute ``time.monotonic()`` deadline for ``what``; return it as a float.

    A deadline in the past (even ``-inf``) has expired; ``inf`` never comes.

    :raises TypeError: for a bool or anything that is not a real number.
    :raises ValueError: for NaN, or a deadline that looks like ``time.time()`` (see
        :func:`looks_like_wall_clock`): the message says to use ``time.monotonic()``.
    """
    v = _seconds(t, what, "a time.monotonic() deadline in seconds")
    if math.isfinite(v) and looks_like_wall_clock(v):
        raise ValueError(
            f"{what} got the deadline {v!r}, which looks like time.time() (wall-clock seconds): "
            "ragged's deadlines are time.monotonic() times; pass time.monotonic() + the duration"
        )
    return v
