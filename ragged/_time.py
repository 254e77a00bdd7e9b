"""Go's ``time`` channels: ``after``, ``Timer`` and ``Ticker``.

Each delivers on a channel of capacity 1 from a callback on the runtime's
timer heap (``sched.timers``).  Timer callbacks run on scheduler threads and
must never block, so they use a non-blocking send (``Chan.try_send``), as Go
does: a ticker whose reader falls behind drops ticks instead of queueing them.

The value sent is ``time.monotonic()`` at the moment the timer fired.

Durations follow Go and asyncio: 0 or a negative duration fires at once (on
the next timer check), ``inf`` never fires (and keeps no timer), NaN and
non-numbers are refused.  A ticker's period must be above 0 (``inf``: it
never ticks).

``stop`` and ``reset`` follow Go 1.23: once they return, no value from
before the call will be received.  Each arming has a *generation*; a callback
of an older generation (one already popped off the heap but not yet run)
finds the generation changed and sends nothing, and a value already sitting
in the channel is drained.  ``_lock`` guards the generation and the heap
entry, and is held across the callback's send, so a stop cannot slip between
the generation check and the send.  Lock order: ``_lock``, then the channel
lock or ``Timers.lock`` (never both).  Whatever may take the sched lock --
waking the receiver the send hands its value to, poking the timer waiter
after an arming -- happens after ``_lock`` is released: the sched lock ranks
below ``_lock`` (a barrier callback, run under the sched lock, may stop or
reset a timer; see ``_core._lockrank``).

Inside a goroutine these use the current runtime; from a plain thread pass
``runtime=`` (a ``ragged.Runtime``).

``after_func`` (Go's ``time.AfterFunc``) is the same machinery with a
different delivery: instead of sending on ``c``, the firing starts a
goroutine.  Its coroutine exists only while the timer is armed (made when it
is armed, closed unstarted when it is stopped, handed to the new goroutine
when it fires), so a stopped timer leaves no coroutine that was never awaited.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextvars import copy_context
from typing import TYPE_CHECKING, Any, TypeVarTuple

from ._chan import Chan
from ._core import ChanClosed, NotInGoroutine, Rank, Sudog, check_seconds, complete, lock_maker, make_coro, tls

if TYPE_CHECKING:  # pragma: no cover
    from ._core import Runtime, TimerEntry, Timers

_monotonic = time.monotonic
_new_timer_lock = lock_maker(Rank.TIMER, "Timer._lock")  # threading.Lock unless RAGGED_DEBUG
Ts = TypeVarTuple("Ts")


def _timers_of(runtime: Runtime | None, what: str) -> Timers:
    """The timer heap to use: ``runtime``'s, else the calling goroutine's runtime's."""
    if runtime is not None:
        sched = getattr(runtime, "_sched", None)
        if sched is None:
            raise TypeError(f"{what}: runtime= must be a ragged.Runtime, not {type(runtime).__name__}")
        runtime._check_open()
        return sched.timers
    m = getattr(tls, "m", None)
    if m is None:
        raise NotInGoroutine(
            f"{what} needs a runtime: call it inside a goroutine, or pass runtime=rt from a plain thread"
        )
    return m.sched.timers


class _ChanTimer:
    """The shared machinery of Timer and Ticker: one heap entry feeding ``c``."""

    __slots__ = ("c", "_timers", "_lock", "_gen", "_entry", "_armed", "_period")

    def __init__(self, seconds: float, period: float, runtime: Runtime | None, what: str) -> None:
        self._timers = _timers_of(runtime, what)
        self.c: Chan[float] = Chan(1)
        self._lock = _new_timer_lock()
        self._gen = 0
        self._entry: TimerEntry | None = None
        self._armed = False  # a value of the current generation is still to be sent
        self._period = period
        with self._lock:
            e = self._arm_locked(seconds, period)
        self._timers.poke_if_earlier(e)

    def _arm_locked(self, seconds: float, period: float) -> TimerEntry:
        """Start a new generation firing after ``seconds`` (then every ``period``).  Requires ``_lock``.

        The caller pokes the timer waiter (``Timers.poke_if_earlier``) with the
        entry returned, after releasing ``_lock``: a poke may take the sched lock.
        """
        self._gen += 1
        self._armed = True
        self._period = period
        timers = self._timers
        with timers.lock:
            e = self._entry = timers.add_locked(_monotonic() + seconds, self._fire, self._gen, period)
        return e

    def _fire(self, gen: int) -> None:
        """Timer callback (scheduler thread): send the time, unless stopped or re-armed since.

        A waiting receiver has the value once ``_offer`` returns it; it is woken
        after ``_lock`` is released (see the module docstring).
        """
        r: Sudog | bool = False
        with self._lock:
            if gen == self._gen:
                self._armed = self._period > 0
                try:
                    r = self.c._offer(_monotonic())
                except ChanClosed:
                    pass  # someone closed t.c; a timer callback must never raise
        if r is not True and r is not False:
            complete(r)

    def _stop_locked(self) -> bool:
        """Disarm and drop any undelivered value.  Requires ``_lock``.

        True if that prevented a delivery: the timer had not sent yet (even
        if its callback was already on its way), or its value was still
        waiting in the channel.
        """
        self._gen += 1
        pending = self._armed
        self._armed = False
        e = self._entry
        self._entry = None
        if e is not None:
            self._timers.stop(e)
        _, drained = self.c.try_recv()
        return pending or drained

    def stop(self) -> bool:
        """Stop the timer.  True if a value was still to come (and now never will).

        A value already waiting in ``c`` is drained, so once this returns no
        value from before the call is received (Go 1.23).

        :raises: nothing.
        :Called from: anywhere.
        """
        with self._lock:
            return self._stop_locked()


class Timer(_ChanTimer):
    """Sends the time on ``t.c`` once, ``seconds`` from now (Go's ``time.NewTimer``).

    ``t.stop()`` cancels it; ``t.reset(seconds)`` re-arms it.  Both return
    True if the timer had been due to deliver (and no longer will from that
    arming).  ``t.c`` is a :class:`Chan` of capacity 1 receiving the
    ``time.monotonic()`` time it fired at.  Inside a goroutine it uses the
    current runtime; from a plain thread pass ``runtime=``.

    :raises TypeError: if ``seconds`` is not a number, or ``runtime`` not a Runtime.
    :raises ValueError: for NaN ``seconds`` (a negative one fires at once, ``inf`` never).
    :raises NotInGoroutine: on a plain thread without ``runtime=``.
    :raises RuntimeClosed: if the runtime is closed.
    :Called from: anywhere (with ``runtime=`` outside a goroutine).
    """

    __slots__ = ()

    def __init__(self, seconds: float, *, runtime: Runtime | None = None) -> None:
        super().__init__(check_seconds(seconds, "ragged.Timer()"), 0.0, runtime, "ragged.Timer()")

    def reset(self, seconds: float) -> bool:
        """Re-arm to fire ``seconds`` from now; returns what ``stop()`` would have.

        :raises TypeError: if ``seconds`` is not a number.
        :raises ValueError: for NaN ``seconds`` (a negative one fires at once, ``inf`` never).
        :Called from: anywhere.
        """
        seconds = check_seconds(seconds, "Timer.reset()")
        with self._lock:
            was = self._stop_locked()
            e = self._arm_locked(seconds, 0.0)
        self._timers.poke_if_earlier(e)
        return was


def _check_period(period: Any, what: str) -> float:
    """A ticker period: a number of seconds > 0 (``inf``: never ticks), else TypeError / ValueError."""
    seconds = check_seconds(period, what)
    if seconds <= 0:
        raise ValueError(f"{what} needs a period > 0 seconds, not {period!r}")
    return seconds


class Ticker(_ChanTimer):
    """Sends the time on ``t.c`` every ``period`` seconds (Go's ``time.NewTicker``).

    ``t.c`` is a :class:`Chan` of capacity 1 receiving the ``time.monotonic()``
    time of each tick.  A reader that falls behind misses ticks.  Call
    ``stop()`` when done: a running ticker keeps a timer alive.  Inside a
    goroutine it uses the current runtime; from a plain thread pass ``runtime=``.

    :raises TypeError: if ``period`` is not a number, or ``runtime`` not a Runtime.
    :raises ValueError: if ``period`` is not above 0.
    :raises NotInGoroutine: on a plain thread without ``runtime=``.
    :raises RuntimeClosed: if the runtime is closed.
    :Called from: anywhere (with ``runtime=`` outside a goroutine).
    """

    __slots__ = ()

    def __init__(self, period: float, *, runtime: Runtime | None = None) -> None:
        period = _check_period(period, "ragged.Ticker()")
        super().__init__(period, period, runtime, "ragged.Ticker()")

    def reset(self, period: float) -> None:
        """Stop, then tick every ``period`` seconds from now.

        :raises TypeError: if ``period`` is not a number.
        :raises ValueError: if ``period`` is not above 0.
        :Called from: anywhere.
        """
        period = _check_period(period, "Ticker.reset()")
        with self._lock:
            self._stop_locked()
            e = self._arm_locked(period, period)
        self._timers.poke_if_earlier(e)


def after(seconds: float, *, runtime: Runtime | None = None) -> Chan[float]:
    """A channel that receives the time once, ``seconds`` from now (Go's ``time.After``).

    Typical use: ``await ragged.select(ch.recv_case(), ragged.after(1.0).recv_case())``.
    Inside a goroutine it uses the current runtime; from a plain thread pass ``runtime=``.

    :raises TypeError: if ``seconds`` is not a number, or ``runtime`` not a Runtime.
    :raises ValueError: for NaN ``seconds`` (a negative one fires at once, ``inf`` never).
    :raises NotInGoroutine: on a plain thread without ``runtime=``.
    :raises RuntimeClosed: if the runtime is closed.
    :Called from: anywhere (with ``runtime=`` outside a goroutine).
    """
    return Timer(check_seconds(seconds, "ragged.after()"), runtime=runtime).c


class _FuncTimer(Timer):
    """The :class:`Timer` that :func:`after_func` returns: firing starts a goroutine.

    ``_coro`` (under ``_lock``) is the coroutine of the next firing: made by
    ``_arm_locked``, closed by ``_stop_locked``, taken by ``_fire``.  ``c``
    exists (it is a Timer) but never receives anything.
    """

    __slots__ = ("_fn", "_args", "_name", "_ctx", "_coro")

    def __init__(
        self, seconds: float, fn: Callable[..., Any], args: tuple, name: str | None, runtime: Runtime | None
    ) -> None:
        self._fn = fn
        self._args = args
        self._name = name
        self._ctx = copy_context()  # the caller's: each firing runs in a copy of it, as ragged.go would
        self._coro: Any = None
        _ChanTimer.__init__(self, seconds, 0.0, runtime, "ragged.after_func()")

    def _arm_locked(self, seconds: float, period: float) -> TimerEntry:
        """Make the coroutine of the next firing (if need be), then arm.  Requires ``_lock``."""
        if self._coro is None:
            self._coro = make_coro(self._fn, self._args, "ragged.after_func()")
        return super()._arm_locked(seconds, period)

    def _stop_locked(self) -> bool:
        """Disarm, and close the coroutine that will now never run.  Requires ``_lock``."""
        was = super()._stop_locked()
        coro, self._coro = self._coro, None
        if coro is not None:
            coro.close()
        return was

    def _fire(self, gen: int) -> None:
        """Timer callback (a scheduler thread): start the goroutine, unless stopped or re-armed since.

        Never blocks: starting a goroutine only queues it.  Once ``_armed`` is
        cleared here, ``stop()`` returns False: ``fn`` has been started.
        """
        with self._lock:
            if gen != self._gen:
                return
            self._armed = False
            coro, self._coro = self._coro, None
        if coro is not None:
            self._timers.sched.newproc(coro, self._name, None, self._ctx.copy())


def after_func(
    seconds: float,
    fn: Callable[[*Ts], Awaitable[Any]],
    *args: *Ts,
    name: str | None = None,
    runtime: Runtime | None = None,
) -> Timer:
    """Start ``fn(*args)`` in its own goroutine ``seconds`` from now (Go's ``time.AfterFunc``).

    ``fn`` is an async function; it runs in a copy of the caller's
    ``contextvars`` context, named ``name`` in dumps and traces.  Returns a
    :class:`Timer` (its ``c`` never receives anything, as Go's is nil):

    * ``t.stop()`` returns True if it stopped the timer before ``fn`` was
      started (then ``fn`` never runs), False if ``fn`` has been started
      already (or the timer was stopped before); it does not wait for ``fn``.
    * ``t.reset(seconds)`` arms it again for ``seconds`` from now: it returns
      True if that rescheduled a pending call, False if it schedules ``fn``
      to run again (after it fired or was stopped).

    Nobody joins the goroutine: if ``fn`` raises, the error is reported as
    any unjoined goroutine's is (and fails ``ragged.run``), as a panic in a Go
    ``AfterFunc`` would end the program.  Inside a goroutine it uses the
    current runtime; from a plain thread pass ``runtime=``.

    :raises TypeError: if ``fn`` is not an async function, ``seconds`` not a number,
        ``name`` not a str or ``runtime`` not a Runtime.
    :raises ValueError: for a ``seconds`` that is not a valid duration (as :class:`Timer`).
    :raises NotInGoroutine: on a plain thread without ``runtime=``.
    :raises RuntimeClosed: if the runtime is closed.
    :Called from: anywhere (with ``runtime=`` outside a goroutine).
    """
    seconds = check_seconds(seconds, "ragged.after_func()")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"ragged.after_func(): name must be a str, not {type(name).__name__}")
    return _FuncTimer(seconds, fn, args, name, runtime)


__all__ = ["Ticker", "Timer", "after", "after_func"]
