"""Go's ``sync`` locks for goroutines: Mutex, RWMutex, Semaphore (WaitGroup, Once and Cond: ``_sync_wait``).

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

from typing import Any, Protocol, Self

from ._core import (
    RaggedError,
    Rank,
    Sudog,
    WaitQueue,
    checkpoint,
    complete,
    current_g,
    lock_maker,
    park_on,
)

_new_lock = lock_maker(Rank.SYNC, "sync._lock")  # threading.Lock unless RAGGED_DEBUG


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


__all__ = ["Locker", "Mutex", "RWMutex", "Semaphore"]
