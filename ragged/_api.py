"""The goroutine-side API: what code running inside a goroutine calls.

Everything here finds "the current runtime / goroutine / P" through the M
running on this thread (``tls.m``).  Calls that only make sense inside a
goroutine raise :class:`NotInGoroutine` elsewhere, naming what to use instead.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable, Coroutine
from contextvars import copy_context
from typing import Any, Generic, TypeVar, TypeVarTuple

from ._core import (
    Goroutine,
    NotInGoroutine,
    P,
    Runtime,
    StopTheWorld,
    Sudog,
    check_fn,
    check_seconds,
    checkpoint,
    current_g,
    foreachp,
    gopark,
    gosched,
    make_coro,
    ready,
    syscall_trap,
    tls,
)

T = TypeVar("T")
Ts = TypeVarTuple("Ts")
_monotonic = time.monotonic


def _runtime(what: str) -> Runtime:
    m = getattr(tls, "m", None)
    if m is None:
        raise NotInGoroutine(f"{what} must be called inside a goroutine; from a plain thread use the Runtime's method")
    return m.sched.runtime


def current_runtime() -> Runtime:
    """The :class:`Runtime` running the calling goroutine.

    :raises NotInGoroutine: on a plain thread.
    :Called from: inside a goroutine (also from its ``ragged.syscall`` calls).
    """
    return _runtime("ragged.current_runtime()")


def current_goroutine() -> Goroutine[Any]:
    """The :class:`Goroutine` handle of the calling goroutine.

    :raises NotInGoroutine: outside a goroutine.
    :Called from: inside a goroutine.
    """
    return current_g("ragged.current_goroutine()")


def current_p() -> P:
    """The :class:`P` running this goroutine now: valid until the goroutine's next await.

    :raises NotInGoroutine: outside a goroutine, and inside ``ragged.syscall`` (no P is held there).
    :Called from: inside a goroutine.
    """
    m = getattr(tls, "m", None)
    if m is None or m.curg is None or m.p is None:
        raise NotInGoroutine("ragged.current_p() must be called inside a goroutine (and not inside a syscall)")
    return m.p


def go(
    fn: Callable[[*Ts], Awaitable[T]] | Coroutine[Any, Any, T],
    *args: *Ts,
    name: str | None = None,
    labels: dict[str, Any] | None = None,
) -> Goroutine[T]:
    """Spawn ``fn(*args)`` as a goroutine on the current runtime (Go's ``go`` statement).

    ``fn`` is an async function (or a coroutine object, with no ``args``); the
    new goroutine runs in a copy of the caller's ``contextvars`` context.
    ``name`` and ``labels`` show in dumps, traces and logs.  Returns its
    :class:`Goroutine` handle at once; ``await`` it to join.

    :raises TypeError: if ``fn`` is not an async function, or ``name`` /
        ``labels`` are not a str / a dict of str keys to str, int, float or bool.
    :raises ValueError: for an empty label key.
    :raises RuntimeClosed: while the runtime is shutting down.
    :raises NotInGoroutine: outside a goroutine.
    :Called from: inside a goroutine; from a plain thread use :meth:`Runtime.go`.
    """
    m = getattr(tls, "m", None)
    if m is None:
        raise NotInGoroutine("ragged.go() must be called inside a goroutine; from a plain thread use Runtime.go()")
    if name is None and labels is None and not m.sched.runtime._closing:
        return m.sched.newproc(make_coro(fn, args, "go()"), None, None, copy_context())
    return m.sched.runtime.go(fn, *args, name=name, labels=labels)


def _wake_sleeper(s: Sudog) -> None:
    if s.try_claim():
        ready(s)


async def sleep(seconds: float) -> None:
    """Park the goroutine for ``seconds`` (it holds no P meanwhile).  ``sleep(0)`` yields.

    A safe point.

    :raises TypeError: if ``seconds`` is not a number.
    :raises ValueError: if ``seconds`` is negative or NaN.
    :raises Cancelled: if the goroutine is cancelled while it sleeps.
    :raises RaggedError: inside a stop-the-world section (nothing could wake it).
    :raises NotInGoroutine: outside a goroutine.
    :Called from: inside a goroutine; a plain thread uses ``time.sleep``.
    """
    seconds = check_seconds(seconds, "ragged.sleep()")
    if seconds == 0:
        await gosched()
        return
    g = current_g("ragged.sleep()")
    if g.holds_world:
        from ._core import RaggedError

        raise RaggedError("ragged.sleep() inside a stop-the-world section would never wake; leave the section first")
    timers = g.sched.timers
    s = Sudog(g)
    s.reason = "sleep"
    timers.lock.acquire()
    e = timers.add_locked(_monotonic() + seconds, _wake_sleeper, s)

    def unlock() -> None:
        timers.lock.release()
        timers.poke_if_earlier(e)

    try:
        await gopark(unlock, "sleep", s)
    except BaseException:
        timers.stop(e)
        raise


async def syscall(fn: Callable[[*Ts], T], *args: *Ts) -> T:
    """Run the blocking call ``fn(*args)`` with this goroutine's P released.

    Other goroutines keep running on other threads while it blocks (the P is
    handed to another M if they need it).  Returns ``fn``'s result or raises
    its exception.  Use it for every call that may block: file and socket
    I/O, ``time.sleep``, locks of other libraries, long C computations that
    release the GIL.

    :raises TypeError: if ``fn`` is not callable or is an async function.
    :raises NotInGoroutine: outside a goroutine.
    :raises BaseException: whatever ``fn`` raises.
    :Called from: inside a goroutine; a plain thread just calls ``fn``.
    """
    if not callable(fn):
        raise TypeError(f"ragged.syscall() needs a callable, not {type(fn).__name__}")
    if inspect.iscoroutinefunction(fn):
        raise TypeError("ragged.syscall() runs a blocking plain function; await coroutines directly")
    current_g("ragged.syscall()")
    return await syscall_trap(fn, args)


async def for_each_p(fn: Callable[[P], Any]) -> None:
    """Run ``fn(p)`` once on every P at its next safe point: the ragged barrier.

    This goroutine's own P runs ``fn`` right here; the others run it at their
    next safe point while their goroutines keep running.  Returns when every
    P has run it.  ``fn`` runs on scheduler threads, some of them while the
    scheduler's lock is held: it must be short and must not block or start
    another barrier.  Barriers and stop-the-worlds take turns (this goroutine
    parks while another holds the world).

    :raises TypeError: if ``fn`` is not a plain callable (an async function is refused).
    :raises BaseException: what ``fn`` raised, after the barrier completed on every P
        (an ``ExceptionGroup`` when several Ps raised).
    :raises BarrierError: from inside a ``for_each_p`` callback, or while this
        goroutine holds the world.
    :raises RuntimeClosed: if the runtime is closed.
    :raises NotInGoroutine: outside a goroutine.
    :Called from: inside a goroutine; from a plain thread use :meth:`Runtime.for_each_p`.
    """
    check_fn(fn)
    g = current_g("ragged.for_each_p()")
    sched = g.sched
    rt = sched.runtime
    rt._check_open()
    # An uncontended barrier never leaves the M: be a safe point on the way in, so that a
    # goroutine looping on barriers still honours sysmon's request to yield its P.  (On the
    # way in, not out: once the barrier has run, its caller returns on the P it ran on.)
    await checkpoint()
    await sched.worldsema.acquire_g(g, "for_each_p")
    try:
        foreachp(sched, fn, tls.m.p, None)
    finally:
        sched.worldsema.release()


def stop_the_world(reason: str = "user") -> StopTheWorld:
    """``async with ragged.stop_the_world("why"):`` stops every other goroutine.

    Returns a :class:`~ragged.StopTheWorld`; entering it waits until
    every other P has stopped, and leaving it restarts them.  Inside the
    section this goroutine must not park or yield (nothing else could run to
    wake it): ``sleep``, channel waits and ``gosched`` raise there.

    :raises TypeError: if ``reason`` is not a str.
    :raises NotInGoroutine: outside a goroutine.
    :raises BarrierError: on entry, from inside a ``for_each_p`` callback or while
        this goroutine already holds the world.
    :raises RuntimeClosed: on entry, if the runtime is closed.
    :Called from: inside a goroutine (``async with``); from a plain thread use
        :meth:`Runtime.stop_the_world` (``with``).
    """
    return StopTheWorld(_runtime("ragged.stop_the_world()"), reason)


async def set_procs(n: int, on_retire: Callable[[int, dict[Any, Any]], Any] | None = None) -> int:
    """Change the number of Ps (GOMAXPROCS) from inside a goroutine; return the old number.

    Works as :meth:`Runtime.set_procs` does, under a stop-the-world.

    :raises TypeError: if ``n`` is not an int or ``on_retire`` is not callable.
    :raises ValueError: if ``n`` is not positive.
    :raises NotInGoroutine: outside a goroutine.
    :raises BarrierError: while this goroutine holds the world.
    :Called from: inside a goroutine; from a plain thread use :meth:`Runtime.set_procs`.
    """
    from ._core import check_on_retire, check_procs_value, hand_over

    n = check_procs_value(n)
    check_on_retire(on_retire)
    async with stop_the_world("set_procs") as stw:
        old = stw.resize(n, on_retire is not None)
    hand_over(stw.retired, on_retire)
    return old


def dump() -> str:
    """The current runtime's goroutine dump (see :meth:`Runtime.dump`).

    :raises NotInGoroutine: on a plain thread (use ``rt.dump()`` there).
    :Called from: inside a goroutine.
    """
    return _runtime("ragged.dump()").dump()


def metrics() -> dict[str, Any]:
    """The current runtime's metrics (see :meth:`Runtime.metrics`).

    :raises NotInGoroutine: on a plain thread (use ``rt.metrics()`` there).
    :Called from: inside a goroutine.
    """
    return _runtime("ragged.metrics()").metrics()


class PerP(Generic[T]):
    """Per-P storage for goroutines: one value per P, used without locks.

    ``get()`` returns the value of the P running the caller, creating it with
    ``factory()`` on first use.  Only one goroutine runs on a P at a time, so
    the value may be used without locks **between two safe points**: after
    any ``await`` on the runtime the goroutine may be on another P, so fetch
    it again.  A ``for_each_p`` callback gets each P in turn and can read or
    swap its value with :meth:`of` / :meth:`take` -- the classic use is a per-P
    buffer drained by a barrier::

        buf = ragged.PerP(list)
        ...  # in goroutines:
        buf.get().append(item)
        ...  # collect everything appended so far, on every P:
        await ragged.for_each_p(lambda p: out.extend(buf.take(p)))

    :raises TypeError: if ``factory`` is not callable.
    :Called from: anywhere (construction); see each method.
    """

    __slots__ = ("factory", "__weakref__")

    def __init__(self, factory: Callable[[], T]) -> None:
        if not callable(factory):
            raise TypeError(f"PerP needs a factory callable, not {type(factory).__name__}")
        self.factory = factory

    def get(self) -> T:
        """The value of the P running the caller, made with ``factory()`` on first use.

        :raises NotInGoroutine: outside a goroutine, and inside ``ragged.syscall``.
        :raises BaseException: what ``factory()`` raises.
        :Called from: inside a goroutine.
        """
        local = current_p().local
        try:
            return local[self]
        except KeyError:
            v = local[self] = self.factory()
            return v

    def of(self, p: P) -> T:
        """``p``'s value, made with ``factory()`` if it has none (for barrier callbacks).

        :raises BaseException: what ``factory()`` raises.
        :Called from: a ``for_each_p`` callback or a stop-the-world section (where
            ``p``'s goroutines are not running), or the goroutine running on ``p``.
        """
        local = p.local
        try:
            return local[self]
        except KeyError:
            v = local[self] = self.factory()
            return v

    def take(self, p: P) -> T:
        """Remove and return ``p``'s value; the next ``get`` on ``p`` makes a fresh one.

        :raises BaseException: what ``factory()`` raises (when ``p`` had no value).
        :Called from: a ``for_each_p`` callback or a stop-the-world section, like :meth:`of`.
        """
        v = p.local.pop(self, None)
        return v if v is not None else self.factory()


__all__ = [
    "PerP",
    "current_goroutine",
    "current_p",
    "current_runtime",
    "dump",
    "for_each_p",
    "go",
    "make_coro",
    "metrics",
    "set_procs",
    "sleep",
    "stop_the_world",
    "syscall",
]
