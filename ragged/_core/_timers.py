"""The timer heap: sleeps, ``after``, ``Timer`` and ``Ticker`` all end up here.

One heap per runtime under ``Timers.lock`` (Go keeps one per P; one is plenty
at Python speeds).  ``timer0`` is the earliest deadline, or 0.0 when empty:
a plain read that ``schedule()`` makes on every pass, so busy Ms fire due
timers without taking a lock.  When every M is idle, one of them -- the
*timer waiter* -- parks with a timeout at ``timer0`` (Go's M blocked in
netpoll); adding an earlier timer pokes it.

Timer callbacks run on whichever thread fires them, outside ``lock``; they
must be quick and must not block (they ready a goroutine or do a
non-blocking channel send).  Every callback is ragged's own (a sleeper's
wakeup, a channel timer, a context or poller deadline): one that raises is a
bug in ragged, and the exception goes on up the thread that fired it, which
stops the runtime (``_shutdown.crash``) -- logging and dropping it would leave the
goroutine it was to wake asleep for good.

A timer due at ``inf`` (``sleep(inf)``, ``after(inf)``, a deadline of
``inf``) never fires: it is never put on the heap, so it costs nothing and
keeps no M waiting; stopping it is a no-op.  Finite deadlines of any size
are kept; the M waiting for one clamps each wait (``_timeout.clamp_wait``).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._lockrank import Rank, new_lock

if TYPE_CHECKING:  # pragma: no cover
    from ._sched import Sched

_log = logging.getLogger("ragged")
_monotonic = time.monotonic
_INF = float("inf")


def next_tick(when: float, period: float, now: float) -> float:
    """A ticker's next deadline after firing at ``now``: the next tick of its grid after ``now``.

    Go's ticker: the ticks a late run missed are dropped, never fired back to
    back.  Always strictly after ``now`` and finite: with a period below the
    float resolution of ``now`` (``Ticker(1e-300)``) the grid would not move
    (``now + period == now``), and the heap would fire the same tick forever
    under its lock, every M spinning there; such a ticker ticks at most once
    per timer check instead.  A period that overflows the grid arithmetic
    (``Ticker(5e-324)``) is handled the same way.
    """
    nxt = when + period * (1 + (now - when) // period)
    if now < nxt < _INF:
        return nxt
    return max(now + period, math.nextafter(now, _INF))


class TimerEntry:
    """One pending timer.  ``alive`` is cleared (under the heap lock) to stop it."""

    __slots__ = ("when", "fn", "arg", "period", "alive", "seq")

    def __init__(self, when: float, fn: Callable[[Any], Any], arg: Any, period: float) -> None:
        self.when = when
        self.fn = fn
        self.arg = arg
        self.period = period
        self.alive = True
        self.seq = 0


class Timers:
    """A runtime's timer heap."""

    def __init__(self, sched: Sched) -> None:
        self.sched = sched
        self.lock = new_lock(Rank.TIMERS, "Timers.lock")
        self._heap: list[tuple[float, int, TimerEntry]] = []
        self._seq = itertools.count()
        self.timer0 = 0.0
        self.live = 0

    def __len__(self) -> int:
        return self.live

    def add_locked(self, when: float, fn: Callable[[Any], Any], arg: Any = None, period: float = 0.0) -> TimerEntry:
        """Add a timer firing at ``when`` (monotonic seconds).  Requires ``lock``.

        The caller must call :meth:`poke_if_earlier` with the result after
        releasing the lock, so that a sleeping timer waiter re-arms.
        """
        e = TimerEntry(when, fn, arg, period)
        if when == _INF:
            e.alive = False  # never due: not on the heap
            return e
        self._push(e)
        return e

    def _push(self, e: TimerEntry) -> None:
        e.seq = next(self._seq)
        heapq.heappush(self._heap, (e.when, e.seq, e))
        self.live += 1
        self.timer0 = self._heap[0][0]

    def add(self, delay: float, fn: Callable[[Any], Any], arg: Any = None, period: float = 0.0) -> TimerEntry:
        """Add a timer ``delay`` seconds from now.  Takes ``lock`` itself."""
        with self.lock:
            e = self.add_locked(_monotonic() + delay, fn, arg, period)
        self.poke_if_earlier(e)
        return e

    def poke_if_earlier(self, e: TimerEntry) -> None:
        """If ``e`` is now the earliest timer, make sure some M will fire it."""
        if self.timer0 >= e.when:
            self.sched.poke_timer_waiter()

    def stop(self, e: TimerEntry) -> bool:
        """Stop a timer; True if it had not fired yet.  Takes ``lock``."""
        with self.lock:
            return self.stop_locked(e)

    def stop_locked(self, e: TimerEntry) -> bool:
        if not e.alive:
            return False
        e.alive = False
        self.live -= 1
        heap = self._heap
        while heap and not heap[0][2].alive:
            heapq.heappop(heap)
        self.timer0 = heap[0][0] if heap else 0.0
        return True

    def run(self, now: float | None = None) -> int:
        """Fire every timer due by ``now``; return how many fired.  Call without ``lock``.

        If a callback raises (a bug in ragged: see the module docstring), the
        others due still fire, then the first such exception is raised, with a
        note naming the callback.
        """
        if now is None:
            now = _monotonic()
        fired: list[TimerEntry] = []
        with self.lock:
            heap = self._heap
            while heap and heap[0][0] <= now:
                e = heapq.heappop(heap)[2]
                if not e.alive:
                    continue
                fired.append(e)
                if e.period > 0:
                    e.when = next_tick(e.when, e.period, now)
                    heapq.heappush(heap, (e.when, next(self._seq), e))
                else:
                    e.alive = False
                    self.live -= 1
            while heap and not heap[0][2].alive:
                heapq.heappop(heap)
            self.timer0 = heap[0][0] if heap else 0.0
        failed: BaseException | None = None
        for e in fired:
            try:
                e.fn(e.arg)
            except BaseException as err:  # noqa: BLE001 - raised below, once the others have fired
                err.add_note(f"raised by the ragged timer callback {e.fn!r}")
                if failed is None:
                    failed = err
                else:
                    _log.critical("ragged: timer callback %r raised too", e.fn, exc_info=err)
        if failed is not None:
            raise failed
        return len(fired)

    def overdue(self, now: float) -> int:
        """How many live timers are due by ``now`` and not yet fired (reports; takes ``lock``)."""
        with self.lock:
            return sum(1 for when, _, e in self._heap if when <= now and e.alive)

    def clear(self) -> None:
        """Drop every timer (shutdown)."""
        with self.lock:
            for _, _, e in self._heap:
                e.alive = False
            self._heap.clear()
            self.live = 0
            self.timer0 = 0.0
