"""Go's ``sync`` package for goroutines: Mutex, RWMutex, WaitGroup, Once, Cond, Semaphore.

All of them are built the same way, on the one wait queue of ``_park``:
a ``threading.Lock`` guards the object's state and its ``WaitQueue``s; a
goroutine that must wait registers a sudog while holding that lock and parks
with ``park_on`` (the lock is released only once the goroutine is
suspended); whoever releases the resource wins the waiter's claim and
*hands the resource over* with ``_handoff.complete`` -- the woken waiter
already owns it and never competes again.  A waiting goroutine holds no P
and burns no CPU.

Hand-off makes the locks FIFO-fair (Go's mutex "starvation mode", always on):
a goroutine that arrives while others wait queues behind them.  Lock and
unlock need not happen on the same goroutine, nor on the same thread (Go
allows this too); unlocks, ``WaitGroup.add``/``done``, ``Cond.signal`` and
``broadcast`` are plain methods callable from any thread.

Misuse raises at once with Go's message: unlocking what is not locked is a
``RaggedError``, a negative WaitGroup counter a ``ValueError``.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol, Self

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

_new_lock = lock_maker(Rank.SYNC, "sync._lock")  # threading.Lock unless RAGGED_DEBUG
_new_cond_lock = lock_maker(Rank.COND, "Cond._lock")


class Locker(Protocol):
    """What :class:`~ragged.Cond` needs of its lock (Go's ``sync.Locker``): a
    :class:`~ragged.Mutex`, an :class:`~ragged.RWMutex`, or ``rw.rlocker()``.

    :raises: nothing (a protocol: a type to annotate with, not to construct).
    :Called from: anywhere.
    """

    async def lock(self) -> None:
        """Acquire, parking if need be.

        :raises Cancelled: if the goroutine is cancelled while waiting.
        :Called from: inside a goroutine.
        """
        ...

    def unlock(self) -> None:
        """Release; never blocks.

        :raises RaggedError: if it is not locked.
        :Called from: anywhere.
        """
        ...


def _check_count(n: Any, what: str, minimum: int) -> int:
    """``n`` if it is an int >= ``minimum``, else TypeError / ValueError naming ``what``."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{what} must be an int, not {type(n).__name__} {n!r}")
    if n < minimum:
        raise ValueError(f"{what} must be >= {minimum}, not {n!r}")
    return n


class _Sema:
    """A counting semaphore with FIFO hand-off: the core of Mutex and Semaphore.

    ``_value`` permits are free; ``_max`` is how many exist.  ``_lock``
    guards ``_value`` and ``_q``.  While anyone waits, ``_value`` is 0.
    Subclasses name their wait (``_what``, ``_reason``) and their misuse
    (``_over_release``).
    """

    __slots__ = ("_lock", "_value", "_max", "_q")
    _what = "acquire()"
    _reason = "sync.Semaphore.Acquire"

    def __init__(self, value: int) -> None:
        self._lock = _new_lock()
        self._value = value
        self._max = value
        self._q = WaitQueue()

    def _over_release(self) -> Exception:
        """The error for releasing a permit that is not held."""
        raise NotImplementedError

    def _try_acquire(self) -> bool:
        """Take a permit if one is free; never waits."""
        with self._lock:
            if self._value > 0:
                self._value -= 1
                return True
            return False

    async def _acquire(self) -> None:
        """Take a permit, parking in FIFO order until one is handed over.

        A safe point.  If cancelled while parked, no permit was taken.
        """
        g = current_g(self._what)
        await checkpoint()
        lock = self._lock
        lock.acquire()
        if self._value > 0:
            self._value -= 1
            lock.release()
            return
        await park_on(self._q, lock, self._reason, Sudog(g))

    def _release(self) -> None:
        """Give a permit back: straight to the first waiter, if any.

        Raises ``_over_release()`` (changing nothing) if every permit is free.
        """
        with self._lock:
            s = self._q.pop_claimed()
            if s is None:
                if self._value >= self._max:
                    raise self._over_release()
                self._value += 1
        if s is not None:
            complete(s)

    async def __aenter__(self) -> Self:
        await self._acquire()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._release()


class Mutex(_Sema):
    """A mutual-exclusion lock for goroutines (Go's ``sync.Mutex``).

    ``await mu.lock()`` / ``mu.unlock()``, or ``async with mu:``.  FIFO: the
    lock is handed to the longest waiter.  Not reentrant.

    :raises: nothing.
    :Called from: anywhere (construction); see each method.
    """

    __slots__ = ()
    _what = "Mutex.lock()"
    _reason = "sync.Mutex.Lock"

    def __init__(self) -> None:
        super().__init__(1)

    def _over_release(self) -> Exception:
        """Go's message for an unlock of an unlocked mutex."""
        return RaggedError("sync: unlock of unlocked mutex")

    async def lock(self) -> None:
        """Lock, parking until the mutex is handed over.  A safe point.

        :raises Cancelled: if the goroutine is cancelled while waiting (it then does not hold the lock).
        :raises RaggedError: inside a stop-the-world section, when it would have to wait.
        :raises NotInGoroutine: outside a goroutine.
        :Called from: inside a goroutine (plain threads can only :meth:`try_lock`).
        """
        await self._acquire()

    def try_lock(self) -> bool:
        """Lock if that needs no waiting; True if locked.  Never blocks.

        :raises: nothing.
        :Called from: anywhere.
        """
        return self._try_acquire()

    def unlock(self) -> None:
        """Unlock, handing the mutex to the longest waiter.  Never blocks.

        :raises RaggedError: if the mutex is not locked (Go's "unlock of unlocked mutex").
        :Called from: anywhere (any goroutine or thread may unlock, as in Go).
        """
        self._release()

    def locked(self) -> bool:
        """True while some goroutine holds the mutex (a snapshot).

        :raises: nothing.
        :Called from: anywhere.
        """
        return self._value == 0


class Semaphore(_Sema):
    """A counting semaphore of ``value`` permits for goroutines (FIFO).

    ``await sem.acquire()`` / ``sem.release()``, or ``async with sem:``.
    Releasing more permits than were acquired raises ``ValueError`` (like
    ``threading.BoundedSemaphore``; Go's ``semaphore.Weighted`` panics).

    :raises TypeError: if ``value`` is not an int.
    :raises ValueError: if ``value`` is negative.
    :Called from: anywhere (construction); see each method.
    """

    __slots__ = ()
    _what = "Semaphore.acquire()"

    def __init__(self, value: int = 1) -> None:
        super().__init__(_check_count(value, "Semaphore value", 0))

    def _over_release(self) -> Exception:
        """Like ``threading.BoundedSemaphore``: more releases than acquires."""
        return ValueError(f"Semaphore released more times than acquired (it has {self._max} permits)")

    @property
    def value(self) -> int:
        """Permits free right now (a snapshot)."""
        return self._value

    async def acquire(self) -> None:
        """Take one permit, parking until one is handed over.  A safe point.

        :raises Cancelled: if the goroutine is cancelled while waiting (no permit taken).
        :raises RaggedError: inside a stop-the-world section, when it would have to wait.
        :raises NotInGoroutine: outside a goroutine.
        :Called from: inside a goroutine (plain threads can only :meth:`try_acquire`).
        """
        await self._acquire()

    def try_acquire(self) -> bool:
        """Take a permit if one is free; True if taken.  Never blocks.

        :raises: nothing.
        :Called from: anywhere.
        """
        return self._try_acquire()

    def release(self) -> None:
        """Return one permit, straight to the longest waiter if any.  Never blocks.

        :raises ValueError: if every permit is already free.
        :Called from: anywhere.
        """
        self._release()


class RWMutex:
    """A reader/writer lock (Go's ``sync.RWMutex``).

    Any number of readers (``await rw.rlock()`` / ``rw.runlock()``) or one
    writer (``await rw.lock()`` / ``rw.unlock()``, or ``async with rw:``).
    As in Go, a waiting writer keeps new readers out, so writers are not
    starved; when a writer unlocks, the readers that queued meanwhile go
    first, then the next writer.

    :raises: nothing.
    :Called from: anywhere (construction); see each method.
    """

    __slots__ = ("_lock", "_readers", "_writer", "_rq", "_wq")

    def __init__(self) -> None:
        self._lock = _new_lock()
        self._readers = 0
        self._writer = False
        self._rq = WaitQueue()
        self._wq = WaitQueue()

    async def rlock(self) -> None:
        """Lock for reading; parks while a writer holds or waits.  A safe point.

        :raises Cancelled: if the goroutine is cancelled while waiting (no lock taken).
        :raises RaggedError: inside a stop-the-world section, when it would have to wait.
        :raises NotInGoroutine: outside a goroutine.
        :Called from: inside a goroutine.
        """
        g = current_g("RWMutex.rlock()")
        await checkpoint()
        lock = self._lock
        lock.acquire()
        if not self._writer and self._wq.peek_live() is None:
            self._readers += 1
            lock.release()
            return
        await park_on(self._rq, lock, "sync.RWMutex.RLock", Sudog(g))

    def runlock(self) -> None:
        """Undo one ``rlock``; the last reader out hands the lock to a waiting writer.

        :raises RaggedError: if no read lock is held.
        :Called from: anywhere.
        """
        with self._lock:
            if self._readers <= 0:
                raise RaggedError("sync: RUnlock of unlocked RWMutex")
            self._readers -= 1
            wake = self._admit_locked(writer_first=True) if self._readers == 0 else []
        for s in wake:
            complete(s)

    async def lock(self) -> None:
        """Lock for writing; parks while anyone holds it.  A safe point.

        :raises Cancelled: if the goroutine is cancelled while waiting (no lock taken).
        :raises RaggedError: inside a stop-the-world section, when it would have to wait.
        :raises NotInGoroutine: outside a goroutine.
        :Called from: inside a goroutine.
        """
        g = current_g("RWMutex.lock()")
        await checkpoint()
        lock = self._lock
        lock.acquire()
        if not self._writer and self._readers == 0:
            self._writer = True
            lock.release()
            return
        await park_on(self._wq, lock, "sync.RWMutex.Lock", Sudog(g), on_cancel=self._writer_left)

    def unlock(self) -> None:
        """Undo ``lock``: admit the waiting readers, else the next writer.

        :raises RaggedError: if the write lock is not held.
        :Called from: anywhere.
        """
        with self._lock:
            if not self._writer:
                raise RaggedError("sync: Unlock of unlocked RWMutex")
            self._writer = False
            wake = self._admit_locked(writer_first=False)
        for s in wake:
            complete(s)

    def _admit_locked(self, writer_first: bool) -> list[Sudog]:
        """Hand the free lock on: every waiting reader, or one waiting writer.

        Requires ``_lock`` and no writer holding it.  A writer that unlocks
        lets the readers queued behind it go first; the last reader out lets
        the writer that held them back go first (Go's order).  Returns the
        waiters the caller must complete; their ownership is already recorded.
        """
        if writer_first:
            return self._admit_writer_locked() or self._admit_readers_locked()
        return self._admit_readers_locked() or self._admit_writer_locked()

    def _admit_readers_locked(self) -> list[Sudog]:
        """Let every waiting reader in.  Requires ``_lock`` and no writer."""
        readers = self._rq.drain_claimed()
        self._readers += len(readers)
        return readers

    def _admit_writer_locked(self) -> list[Sudog]:
        """Let the first waiting writer in if no reader holds the lock.  Requires ``_lock``, no writer."""
        if self._readers == 0:
            s = self._wq.pop_claimed()
            if s is not None:
                self._writer = True
                return [s]
        return []

    def _writer_left(self, s: Sudog) -> None:
        """A waiting writer was cancelled (under ``_lock``): let in the readers it held back."""
        if not self._writer and self._wq.peek_live() is None:
            for r in self._admit_readers_locked():
                complete(r)

    def rlocker(self) -> Locker:
        """A :class:`~ragged.Locker` whose ``lock``/``unlock`` are this RWMutex's ``rlock``/``runlock``.

        For a :class:`Cond` over the read side; ``async with rw.rlocker():`` holds a read lock.

        :raises: nothing.
        :Called from: anywhere.
        """
        return _ReadLocker(self)

    async def __aenter__(self) -> RWMutex:
        await self.lock()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.unlock()


class _ReadLocker:
    """``rw.rlocker()``: ``async with rw.rlocker():`` holds a read lock."""

    __slots__ = ("_rw",)

    def __init__(self, rw: RWMutex) -> None:
        self._rw = rw

    async def lock(self) -> None:
        """``rlock`` the RWMutex."""
        await self._rw.rlock()

    def unlock(self) -> None:
        """``runlock`` the RWMutex."""
        self._rw.runlock()

    async def __aenter__(self) -> _ReadLocker:
        await self._rw.rlock()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._rw.runlock()


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


__all__ = ["Cond", "Locker", "Mutex", "Once", "RWMutex", "Semaphore", "WaitGroup"]
