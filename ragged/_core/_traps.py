"""The only code that ever yields to an M's scheduler loop.

A goroutine is an ``async def`` coroutine driven by ``coro.send`` on some M.
It gives the M control back by yielding one of the requests below from a
generator-based coroutine (``@types.coroutine``).  Everything else in ragged
awaits these; ``_proc.execute`` is the one place that interprets them.

Requests (the first element of the yielded tuple):

``YIELD``      put the goroutine back on a run queue and schedule (gosched).
``CHECK``      a safe point: the M runs any pending safe-point function, stops
               for the world, honours a preemption or cancellation request,
               else resumes the goroutine at once.
``PARK``       ``(PARK, unlockf, reason, sudog)``: the goroutine is parked
               (status waiting) and ``unlockf()`` is called *after* its frame
               is suspended, so a waker that needs the lock it releases can
               never resume a goroutine that is still running.
``SYSCALL``    ``(SYSCALL, fn, args)``: run a blocking call with the P released.

The checkpoint hint.  ``await checkpoint()`` must cost about as much as an
attribute read when nothing is pending.  ``checkpoint()`` returns whatever
sits in a process-wide slot: normally an *exhausted* generator-based
coroutine, which ``await`` finishes without suspending anything; while any
runtime in the process has a request pending (a barrier, a stop-the-world, a
preempted goroutine) it holds an awaitable that yields ``CHECK`` so the M can
look precisely.  :func:`arm` / :func:`disarm` count the pending requests; the
slot is only a hint, so a stale read costs at most one extra trip to the M.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Generator
from typing import Any

from ._errors import NotInGoroutine
from ._lockrank import Rank, new_lock
from ._m import tls

YIELD = 1
CHECK = 2
PARK = 3
SYSCALL = 4

_YIELD_REQ = (YIELD,)
_CHECK_REQ = (CHECK,)


@types.coroutine
def gosched() -> Generator[Any, Any, None]:
    """Yield the P: the goroutine goes to the back of the run queue and others run.

    A safe point.  Like Go's ``runtime.Gosched``.

    :raises NotInGoroutine: outside a goroutine.
    :raises Cancelled: if the goroutine was cancelled.
    :raises RaggedError: inside a stop-the-world section (no other goroutine may run).
    :Called from: inside a goroutine.
    """
    m = getattr(tls, "m", None)
    if m is None or m.curg is None:
        raise NotInGoroutine("ragged.gosched() must be awaited inside a goroutine")
    yield _YIELD_REQ


def _check_gen() -> Generator[Any, Any, None]:
    # A plain generator: ``__await__`` must not return a coroutine.
    yield _CHECK_REQ


@types.coroutine
def gopark(unlockf: Callable[[], Any] | None, reason: str, sudog: Any) -> Generator[Any, Any, Any]:
    """Park the current goroutine until ``goready`` (or a cancel) resumes it.

    The caller has registered ``sudog`` as a waiter, usually while holding a
    lock that ``unlockf`` releases; the M marks the goroutine waiting and only
    then calls ``unlockf``.  Returns the value the waker passed, or raises the
    exception it passed (``Cancelled`` on cancellation).
    """
    return (yield (PARK, unlockf, reason, sudog))


@types.coroutine
def syscall_trap(fn: Callable[..., Any], args: tuple) -> Generator[Any, Any, Any]:
    """Ask the M to run ``fn(*args)`` in a syscall (P released); return its result."""
    return (yield (SYSCALL, fn, args))


# ---------------------------------------------------------------- checkpoint


@types.coroutine
def _exhausted() -> Generator[Any, Any, None]:
    return
    yield  # pragma: no cover - makes this a generator


_FAST = _exhausted()
try:
    _FAST.send(None)
except StopIteration:
    pass


class _SlowCheckpoint:
    """The slot's value while something is pending: awaiting it traps to the M."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, Any, None]:
        return _check_gen()

    # ``yield from checkpoint()`` inside generator-based code works either way.
    __iter__ = __await__


_SLOW = _SlowCheckpoint()
_slot: list[Any] = [_FAST]
_pending_lock = new_lock(Rank.CHECKPOINT, "_traps._pending_lock")
_pending = 0


def checkpoint() -> Any:
    """A cheap safe point: ``await ragged.checkpoint()``.

    With nothing pending this costs about an attribute read and never leaves
    the goroutine.  When a barrier, a stop-the-world, a preemption request or
    a cancellation is pending, it traps to the M, which honours the request.
    Call it every so often in long computations.  A goroutine that never
    awaits the runtime is preempted on CPython 3.12+ all the same, from inside
    its running code (``sys.monitoring``), but that costs far more than a
    checkpoint, keeps an OS thread per goroutine preempted at a time slice,
    and cannot reach code that raises no Python events (a loop in C, a
    blocking call); on 3.11 such a goroutine is not preempted at all (and
    ``block_report`` reports it).

    :raises Cancelled: when the goroutine has been cancelled (delivered here).
    :Called from: inside a goroutine.  Elsewhere it does nothing while nothing
        is pending (and an event loop other than ragged's refuses it while
        something is).
    """
    return _slot[0]


# What ``ragged.checkpoint`` really is: the same read, as a C-level call.  A
# Python function call pushes a frame, and that frame was most of a
# checkpoint's cost (2.2-2.5x an attribute read under the GIL, more on
# free-threaded 3.13, which does not specialize calls); a partial of the list's
# own ``__getitem__`` makes none (1.7-1.8x).  ``update_wrapper`` keeps the
# function above as its name, docstring and signature.
checkpoint = functools.update_wrapper(functools.partial(_slot.__getitem__, 0), checkpoint)


def pending() -> bool:
    """True while the checkpoint slot makes every checkpoint trap (for tests)."""
    return _slot[0] is _SLOW


def arm() -> None:
    """Register one pending request: every checkpoint traps until disarmed.

    Callers must pair each ``arm`` with one ``disarm``.  Safe from any thread.
    """
    global _pending
    with _pending_lock:
        _pending += 1
        _slot[0] = _SLOW


def rearm() -> None:
    """Make sure the slot is slow while requests are pending (re-preempt)."""
    with _pending_lock:
        if _pending:
            _slot[0] = _SLOW


def arm_g(g: Any) -> None:
    """Arm the hint for a request aimed at goroutine ``g`` (preempt or cancel).

    At most one arm is outstanding per goroutine (``g.armed``); the M drops it
    with :func:`disarm_g` when the goroutine next stops running.  A goroutine
    that has finished is never armed: nothing would drop its arm.
    """
    global _pending
    with _pending_lock:
        if not g.armed and not g._done:
            g.armed = True
            _pending += 1
            _slot[0] = _SLOW


def disarm_g(g: Any) -> None:
    """Drop goroutine ``g``'s outstanding arm, if any."""
    global _pending
    with _pending_lock:
        if g.armed:
            g.armed = False
            _pending -= 1
            if _pending == 0:
                _slot[0] = _FAST


def disarm() -> None:
    """Drop one pending request; with none left, checkpoints go fast again."""
    global _pending
    with _pending_lock:
        if _pending <= 0:
            raise AssertionError("ragged: checkpoint hint disarmed more often than armed")
        _pending -= 1
        if _pending == 0:
            _slot[0] = _FAST
