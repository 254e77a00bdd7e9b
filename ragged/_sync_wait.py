"""Go's ``sync`` waits for goroutines: WaitGroup, Once, Cond.

Where ``_sync``'s locks hand a resource over, these wait for an event: a
counter reaching zero, a function having run, a signal.  They are built the
same way, on the one wait queue of ``_park``: the object's lock guards its
state and its ``WaitQueue``; a waiter registers a sudog under that lock and
parks with ``park_on``; whoever makes the event happen claims the waiters and
wakes them with ``_handoff.complete``.  ``WaitGroup.add``/``done``,
``Cond.signal`` and ``broadcast`` are plain methods callable from any thread.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ._core import (
    Cancelled,
    RaggedError,
    Rank,
    Sudog,
    WaitQueue,
    block_on,
    caller_sched,
    check_plain_thread,
    check_timeout,
    checkpoint,
    complete,
    current_g,
    gopark,
    lock_maker,
    park_on,
    parkable_g,
)
from ._sync import Locker, Mutex, _new_lock

_new_cond_lock = lock_maker(Rank.COND, "Cond._lock")


class WaitGroup:
    """Wait for a collection of goroutines to finish (Go's ``sync.WaitGroup``).

    ``wg.add(n)`` before starting work, ``wg.done()`` as each piece ends,
    ``await wg.wait()`` (goroutines) or ``wg.wait_blocking(timeout)`` (plain
    threads) until the counter is back to zero.  A counter that would go
    negative raises ``ValueError`` and is left unchanged.

    :raises: nothing.
    :Called from: anywhere (construction); see each method.
    """

    __slots__ = ("_lock", "_n", "_q", "_sched")

    def __init__(self) -> None:
        self._lock = _new_lock()
        self._n = 0
        self._q = WaitQueue()
        self._sched: Any = None  # for plain-thread waiters: the runtime whose goroutines use it

    def add(self, delta: int = 1) -> None:
        """Add ``delta`` (may be negative) to the counter; at zero, wake every waiter.

        :raises TypeError: if ``delta`` is not an int.
        :raises ValueError: if the counter would go negative (it is left unchanged).
        :Called from: anywhere.
        """
        if isinstance(delta, bool) or not isinstance(delta, int):
            raise TypeError(f"WaitGroup.add() takes an int, not {type(delta).__name__} {delta!r}")
        with self._lock:
            n = self._n + delta
            if n < 0:
                raise ValueError(f"sync: negative WaitGroup counter ({self._n} {delta:+d})")
            self._n = n
            if self._sched is None:
                self._sched = caller_sched()
            waiters = self._q.drain_claimed() if n == 0 else []
        for s in waiters:
            complete(s)

    def done(self) -> None:
        """``add(-1)``: one piece of work is done.

        :raises ValueError: if the counter would go negative.
        :Called from: anywhere.
        """
        self.add(-1)

    async def wait(self) -> None:
        """Park until the counter is zero.  A safe point.

        :raises Cancelled: if the goroutine is cancelled while waiting.
        :raises RaggedError: inside a stop-the-world section, when it would have to wait.
        :raises NotInGoroutine: outside a goroutine.
        :Called from: inside a goroutine; from a plain thread use :meth:`wait_blocking`.
        """
        g = current_g("WaitGroup.wait()")
        await checkpoint()
        lock = self._lock
        lock.acquire()
        if self._n == 0:
            lock.release()
            return
        await park_on(self._q, lock, "sync.WaitGroup.Wait", Sudog(g))

    def wait_blocking(self, timeout: float | None = None) -> None:
        """From a plain thread: block until the counter is zero.

        :raises TimeoutError: after ``timeout`` seconds.
        :raises TypeError: if ``timeout`` is not None or a number.
        :raises ValueError: for a NaN ``timeout`` (a negative one is 0, ``inf`` is None).
        :raises Deadlock: if the runtime finds that nothing can ever finish the work.
        :raises RuntimeClosed: if the runtime is closed while waiting.
        :raises NotInPlainThread: inside a goroutine.
        :Called from: a plain thread; inside a goroutine use ``await wg.wait()``.
        """
        check_plain_thread("WaitGroup.wait_blocking()")
        timeout = check_timeout(timeout)
        lock = self._lock
        lock.acquire()
        if self._n == 0:
            lock.release()
            return
        block_on(self._q, lock, "sync.WaitGroup.Wait", timeout, registry=self._sched)

    def __repr__(self) -> str:
        return f"<WaitGroup counter={self._n}>"


class Once:
    """Run a function exactly once (Go's ``sync.Once``).

    ``await once.do(fn, *args)``: the first caller runs ``fn`` (a plain or an
    async function); every other caller parks until that call has finished,
    then returns.  If ``fn`` raises, the first caller gets the exception and
    ``fn`` still counts as done (as in Go).  Calling ``do`` from inside ``fn``
    raises ``RaggedError`` (in Go it deadlocks).

    :raises: nothing.
    :Called from: anywhere (construction); see each method.
    """

    __slots__ = ("_lock", "_done", "_runner", "_q")

    def __init__(self) -> None:
        self._lock = _new_lock()
        self._done = False
        self._runner: Any = None  # the goroutine running fn, while it runs
        self._q = WaitQueue()

    def done(self) -> bool:
        """True once ``fn`` has run to completion (or raised).

        :raises: nothing.
        :Called from: anywhere.
        """
        return self._done

    async def do(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` if no call has yet; else wait for that call to finish.

        ``fn`` may be a plain or an async function.

        :raises TypeError: if ``fn`` is not callable.
        :raises BaseException: what ``fn`` raised (to the first caller only).
        :raises RaggedError: if called from inside ``fn`` itself.
        :raises Cancelled: if the goroutine is cancelled while waiting.
        :raises NotInGoroutine: outside a goroutine.
        :Called from: inside a goroutine.
        """
        if not callable(fn):
            raise TypeError(f"Once.do() needs a callable, not {type(fn).__name__}")
        g = current_g("Once.do()")
        await checkpoint()
        lock = self._lock
        lock.acquire()
        if self._done:
            lock.release()
            return
        if self._runner is not None:
            if self._runner is g:
                lock.release()
                raise RaggedError("sync: Once.do() called from inside its own function; it would deadlock")
            await park_on(self._q, lock, "sync.Once.Do", Sudog(g))
            return
        self._runner = g
        lock.release()
        try:
            r = fn(*args)
            if inspect.isawaitable(r):
                await r
        finally:
            with lock:
                self._done = True
                self._runner = None
                waiters = self._q.drain_claimed()
            for s in waiters:
                complete(s)


class Cond:
    """A condition variable (Go's ``sync.Cond``) over a Mutex ``L``.

    Hold ``L`` and ``await cond.wait()`` in a loop on your predicate;
    ``cond.signal()`` wakes one waiter, ``cond.broadcast()`` all (callable
    from anywhere, with or without ``L``).  ``async with cond:`` holds ``L``.
    ``L`` defaults to a new :class:`Mutex`.

    :raises TypeError: if ``L`` has no ``lock()`` and ``unlock()``.
    :Called from: anywhere (construction); see each method.
    """

    # Waiters hold tickets, as Go's notifyList does: wait() takes the next
    # ticket before it unlocks L, so a signal sent after that is never missed,
    # and parks only afterwards.  _lock guards _next (the next ticket) and
    # _waiting, which maps each ticket not yet signalled, oldest first, to its
    # waiter's sudog (None while the waiter is between unlocking L and parking:
    # a signal then just drops the ticket, and the waiter, seeing that, does not
    # park).  Nothing else is taken under _lock: L.unlock() (which may wake a
    # goroutine, and so take the sched lock) runs outside it.
    __slots__ = ("L", "_lock", "_next", "_waiting")

    def __init__(self, L: Locker | None = None) -> None:
        if L is not None and not (callable(getattr(L, "lock", None)) and callable(getattr(L, "unlock", None))):
            raise TypeError(f"Cond needs a Mutex-like locker with lock() and unlock(), not {type(L).__name__}")
        self.L: Locker = L if L is not None else Mutex()
        self._lock = _new_cond_lock()
        self._next = 0
        self._waiting: OrderedDict[int, Sudog | None] = OrderedDict()

    async def wait(self) -> None:
        """Unlock ``L``, park until signalled, lock ``L`` again before returning.

        The caller must hold ``L``.  Unlocking and queueing are atomic with
        respect to ``signal``/``broadcast``: a signal sent after ``wait`` has
        released ``L`` is never missed.  ``L`` is held again when this
        returns or raises (also on ``Cancelled``).  Wake-ups may be spurious
        in the sense that the predicate may be false again: loop on it.

        :raises RaggedError: if ``L`` is not held (from its ``unlock``).
        :raises Cancelled: if the goroutine is cancelled while waiting (``L`` is held again).
        :raises NotInGoroutine: outside a goroutine.
        :Called from: inside a goroutine.
        """
        g = current_g("Cond.wait()")
        await checkpoint()
        lock = self._lock
        with lock:
            t = self._next
            self._next += 1
            self._waiting[t] = None
        try:
            self.L.unlock()
        except BaseException:  # L was not held: this wait never began
            with lock:
                signalled = t not in self._waiting
                self._waiting.pop(t, None)
            if signalled:
                self.signal()  # a signal took our ticket meanwhile: it was meant for a waiter
            raise
        try:
            lock.acquire()
            if t not in self._waiting:
                lock.release()  # signalled while it unlocked L: no need to park
                return
            try:
                parkable_g("sync.Cond.Wait")
            except BaseException:
                del self._waiting[t]
                lock.release()
                raise
            s = self._waiting[t] = Sudog(g)
            s.reason = "sync.Cond.Wait"
            try:
                await gopark(lock.release, "sync.Cond.Wait", s)
            except BaseException:  # cancelled before a signal claimed it
                with lock:
                    if self._waiting.get(t) is s:
                        del self._waiting[t]
                raise
        finally:
            await _relock(self.L)

    def _claim_locked(self, n: int | None) -> list[Sudog]:
        """Signal the ``n`` oldest waiters (all if None); return the parked ones to complete.

        Requires ``_lock``.  A waiter not parked yet is signalled by dropping
        its ticket (it sees that and does not park); a parked one whose claim
        a canceller won is not waiting any more and does not count.
        """
        out: list[Sudog] = []
        waiting = self._waiting
        while waiting and (n is None or n > 0):
            s = waiting.popitem(last=False)[1]
            if s is None or s.try_claim():
                if s is not None:
                    out.append(s)
                if n is not None:
                    n -= 1
        return out

    def signal(self) -> None:
        """Wake the longest-waiting goroutine, if any.  Never blocks.

        :raises: nothing.
        :Called from: anywhere, with or without ``L``.
        """
        with self._lock:
            wake = self._claim_locked(1)
        for s in wake:
            complete(s)

    def broadcast(self) -> None:
        """Wake every waiting goroutine.  Never blocks.

        :raises: nothing.
        :Called from: anywhere, with or without ``L``.
        """
        with self._lock:
            wake = self._claim_locked(None)
        for s in wake:
            complete(s)

    async def __aenter__(self) -> Cond:
        await self.L.lock()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.L.unlock()


async def _relock(lk: Locker) -> None:
    """Lock ``lk`` even if cancelled meanwhile; a swallowed cancel is re-posted."""
    cancelled = False
    while True:
        try:
            await lk.lock()
            break
        except Cancelled:
            cancelled = True
    if cancelled:
        current_g("Cond.wait()").cancel()  # delivered at the caller's next await


__all__ = ["Cond", "Once", "WaitGroup"]
