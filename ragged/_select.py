"""``select``: wait on several channel operations, complete exactly one (Go's ``selectgo``).

The steps are Go's:

1. *lockorder*: lock every channel involved once, in one global order
   (by ``id`` of the channel's lock: the rule of the channel locks' rank in
   ``_core._lockrank``), so two selects -- or a select and a plain channel
   op, which takes a single lock -- can never deadlock on each other.
2. *pollorder*: visit the cases in a uniformly random order and complete the
   first one that is ready.  The first ready case of a uniformly shuffled
   order is uniformly distributed over the ready cases: that is select's
   fairness.  With ``default=True`` and nothing ready, return ``(-1, None)``.
3. Otherwise enqueue one sudog per case, all sharing *one* claim lock, and
   park with an unlock function that releases every channel lock after the
   goroutine is suspended.  A waker on any channel must win that shared claim
   to complete its sudog, so exactly one case fires; wakers that lose skip
   the sudog (``WaitQueue.pop_claimed``).
4. After waking, relock and dequeue the other sudogs, which are stale.

A case is ``ch.recv_case()`` / ``ch.send_case(v)``, or ``None``: a case that
is never ready (Go's nil channel), handy for switching cases off in a loop.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

from ._chan import Case, Chan
from ._core import ChanClosed, Sudog, checkpoint, committed, complete, current_g, gopark, new_claim, parkable_g

# select's own random source.  Tests seed it (``_rng.seed(n)``) to replay a run.
_rng = random.Random()


def _lock_all(chans: list[Chan[Any]]) -> None:
    """Take every channel lock, in the order given (``_lockorder``)."""
    for ch in chans:
        ch._lock.acquire()


def _unlock_all(chans: list[Chan[Any]]) -> None:
    """Release every channel lock, in reverse order."""
    for ch in reversed(chans):
        ch._lock.release()


def _lockorder(cases: Iterable[Case | None]) -> list[Chan[Any]]:
    """The distinct channels of ``cases`` in the lock order: by ``id`` of the channel's lock."""
    seen = {id(c.chan._lock): c.chan for c in cases if c is not None}
    return [seen[k] for k in sorted(seen)]


def _check_cases(cases: tuple[Any, ...], default: bool) -> None:
    """Raise TypeError / ValueError for arguments that are not a valid select."""
    if not isinstance(default, bool):
        raise TypeError(f"select(default=...) takes True or False, not {default!r}")
    if not cases and not default:
        raise ValueError("select() needs at least one case (ch.recv_case() / ch.send_case(v)) or default=True")
    for i, c in enumerate(cases):
        if c is not None and not isinstance(c, Case):
            raise TypeError(
                f"select() case {i} is {type(c).__name__}; pass ch.recv_case() or ch.send_case(v) (or None)"
            )


def _pollorder(n: int) -> list[int]:
    """The case indexes ``0..n-1`` in a uniformly random order (Go's ``pollorder``)."""
    order = list(range(n))
    if n > 1:
        _rng.shuffle(order)
    return order


def _poll(cases: tuple[Case | None, ...], order: list[int]) -> tuple[int, Any, Sudog | None] | None:
    """Complete the first ready case in ``order``: ``(index, value, waiter to complete)``.

    Requires every involved channel lock; keeps them.  None if no case is
    ready.  Raises ``ChanClosed`` for a send case on a closed channel.
    """
    for i in order:
        c = cases[i]
        if c is None:
            continue
        ch = c.chan
        if c.send:
            if ch._closed:
                raise ChanClosed("send on closed channel (in select)")
            r = ch._poll_send(c.value)
            if r is False:
                continue
            return i, None, (None if r is True else r)
        got = ch._poll_recv()
        if got is not None:
            v, ok, s = got
            return i, ((v, ok) if c.with_ok else v), s
    return None


def _enqueue(g: Any, cases: tuple[Case | None, ...], order: list[int]) -> list[Sudog]:
    """Register one sudog per case, all under one claim.  Requires every channel lock.

    Enqueued in the random poll ``order``: several cases on one channel then
    sit in its queue in random order, so the waker picks among them uniformly
    (Go enqueues in lock order, which is random for cases of one channel).
    """
    claim = new_claim()
    sudogs: list[Sudog] = []
    for i in order:
        c = cases[i]
        if c is None:
            continue
        ch = c.chan
        s = Sudog(g, claim)
        s.case = i
        s.c = ch
        s.reason = "select"
        if ch._sched is None:
            ch._sched = g.sched
        if c.send:
            s.elem = c.value
            ch._sendq.push(s)
        else:
            ch._recvq.push(s)
        sudogs.append(s)
    return sudogs


def _dequeue(chans: list[Chan[Any]], cases: tuple[Case | None, ...], sudogs: list[Sudog]) -> None:
    """Remove a finished select's sudogs from every queue.  Takes the channel locks."""
    _lock_all(chans)
    try:
        for s in sudogs:
            ch = s.c
            c = cases[s.case]
            assert c is not None  # sudogs are made for real cases only
            (ch._sendq if c.send else ch._recvq).discard(s)
    finally:
        _unlock_all(chans)


async def select(*cases: Case | None, default: bool = False) -> tuple[int, Any]:
    """Wait until one of ``cases`` can proceed, complete it, return ``(index, value)``.

    ``index`` is the position of the case among the arguments; ``value`` is
    what a receive case got (``None`` for a send case, and for a receive on a
    closed, drained channel; ``(value, ok)`` with ``recv_case(with_ok=True)``).
    Among ready cases one is picked uniformly at random.  With
    ``default=True`` it returns ``(-1, None)`` at once if none is ready.
    A safe point.  A ``None`` case is never ready (Go's nil channel).

    :raises ChanClosed: if a chosen send case's channel is closed.
    :raises TypeError: if a case is not a :class:`Case` or None, or ``default`` not a bool.
    :raises ValueError: with no cases and ``default=False`` (it would wait forever).
    :raises Cancelled: if the goroutine is cancelled while parked (no case happened).
    :raises RaggedError: inside a stop-the-world section, when it would have to wait.
    :raises NotInGoroutine: outside a goroutine.
    :Called from: inside a goroutine; a plain thread can poll with
        :meth:`Chan.try_recv` / :meth:`Chan.try_send`.
    """
    g = current_g("ragged.select()")
    _check_cases(cases, default)
    await checkpoint()
    chans = _lockorder(cases)
    _lock_all(chans)
    try:
        order = _pollorder(len(cases))
        hit = _poll(cases, order)
    except BaseException:
        _unlock_all(chans)
        raise
    if hit is not None or default:
        _unlock_all(chans)
        if hit is None:
            return -1, None
        i, v, s = hit
        if s is not None:
            complete(s)
        return i, v

    if g.holds_world:
        _unlock_all(chans)
        parkable_g("ragged.select()")  # raises: nothing could wake us
    sudogs = _enqueue(g, cases, order)
    park_s = sudogs[0] if sudogs else Sudog(g)

    def unlockf() -> None:
        # Called by the M once this goroutine is suspended (gopark's contract).
        _unlock_all(chans)

    try:
        await gopark(unlockf, "select", park_s)
    except BaseException:  # cancelled before any case completed
        _dequeue(chans, cases, sudogs)
        raise
    w = next(s for s in sudogs if committed(s))
    _dequeue(chans, cases, sudogs)
    i = w.case
    c = cases[i]
    assert c is not None  # sudogs are made for real cases only
    if c.send:
        if not w.ok:
            raise ChanClosed("send on closed channel (in select)")
        return i, None
    return i, ((w.elem, w.ok) if c.with_ok else w.elem)


__all__ = ["select"]
