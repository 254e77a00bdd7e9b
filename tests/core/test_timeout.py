"""``_timeout``: the one set of rules for durations, timeouts and deadlines, and the clamp on kernel waits.

The checks are tables (value -> result or error).  The clamp is tested where
it matters: a note asleep with a timeout the kernel would refuse (``inf``,
``1e10``, beyond ``time_t``) and an ``epoll.poll`` with one, each woken from
another thread.  (The timer heap's ``inf`` and sub-resolution cases are in
``test_timers.py``.)
"""

from __future__ import annotations

import math
import threading
import time
from fractions import Fraction
from typing import Any

import pytest

import ragged
from ragged._core._note import FdNote, LockNote
from ragged._core._timeout import (
    MAX_WAIT,
    check_deadline,
    check_seconds,
    check_timeout,
    clamp_wait,
    looks_like_wall_clock,
)

INF = math.inf


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0.0),
        (1e-300, 1e-300),
        (2, 2.0),
        (-1, 0.0),
        (-INF, 0.0),
        (INF, INF),
        (1e300, 1e300),
        (10**400, INF),
        (-(10**400), 0.0),
        (Fraction(1, 4), 0.25),
    ],
)
def test_check_seconds(value: Any, expected: float) -> None:
    assert check_seconds(value, "f()") == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), (INF, None), (10**400, None), (0, 0.0), (-5, 0.0), (-INF, 0.0), (1.5, 1.5), (1e300, 1e300)],
)
def test_check_timeout(value: Any, expected: float | None) -> None:
    assert check_timeout(value) == expected


@pytest.mark.parametrize(
    ("value", "error"), [(math.nan, ValueError), ("1", TypeError), (True, TypeError), (1j, TypeError)]
)
def test_bad_durations_are_named_errors(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="f\\(\\)"):
        check_seconds(value, "f()")
    if value is not None:  # None is a timeout's "forever"
        with pytest.raises(error):
            check_timeout(value)
    with pytest.raises(error, match="g\\(\\)"):
        check_deadline(value, "g()")


def test_deadlines_far_past_and_wall_clock() -> None:
    now = time.monotonic()
    for t in (now, now - 5, -INF, INF, now + 1e10, now + 1e300, 10**400):
        check_deadline(t, "g()")  # accepted: expired, or effectively never
    assert check_deadline(10**400, "g()") == INF
    wall = time.time() + 0.2
    assert looks_like_wall_clock(wall) and not looks_like_wall_clock(now + 3600)
    with pytest.raises(ValueError, match=r"looks like time\.time\(\).*time\.monotonic\(\) \+ the duration"):
        check_deadline(wall, "g()")
    with pytest.raises(ValueError):
        check_deadline(time.time() - 3600, "g()")  # an hour ago on the wall clock: still wall-clock


def test_clamp_wait() -> None:
    assert clamp_wait(None) is None
    assert clamp_wait(INF) == MAX_WAIT and clamp_wait(1e300) == MAX_WAIT
    assert clamp_wait(-1) == 0.0 and clamp_wait(0.5) == 0.5
    assert 0 < MAX_WAIT <= threading.TIMEOUT_MAX


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", [LockNote, FdNote])
@pytest.mark.parametrize("timeout", [INF, 1e10, 1e300, MAX_WAIT * 10])
def test_a_note_sleeps_with_any_timeout_and_wakes(kind: type, timeout: float) -> None:
    """A timeout the kernel would refuse (``OverflowError`` unclamped) just sleeps until the wakeup."""
    note = kind()
    note.wakeup()
    assert note.sleep(timeout) is True  # a pending wakeup
    t = threading.Timer(0.02, note.wakeup)
    t.start()
    try:
        assert note.sleep(timeout) is True
    finally:
        t.join()
    assert note.sleep(-INF) is False


@pytest.mark.timeout(30)
def test_the_poller_blocks_with_any_timeout_and_breaks() -> None:
    """``NetPoll.netpoll`` with a timeout beyond epoll's int of milliseconds: clamped, broken at once."""
    from ragged._core._netpoll_sched import netpoll_of

    with ragged.Runtime(procs=1) as rt:
        np = netpoll_of(rt._sched)
        for timeout in (INF, 1e10, 1e300):
            t = threading.Timer(0.02, np.brk)
            t.start()
            try:
                with np.poll_lock:
                    assert np.netpoll(timeout) == []
            finally:
                t.join()
