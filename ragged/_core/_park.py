"""The one waiter queue under every blocking operation (Go's ``sudog`` + waitq).

A :class:`Sudog` is one waiter: a parked goroutine, or a plain thread blocked
on its own note.  Every wake goes through :func:`ready`.  Whoever wants to
wake a waiter -- a sender, an unlocker, a timer, a canceller, a timeout --
must first win the sudog's *claim* (a one-shot test-and-set: a non-blocking
``Lock.acquire``), so a waiter is woken exactly once even when several
parties race for it (``select`` registers one claim on several channels).

:class:`WaitQueue` is a FIFO of sudogs guarded by its owner's lock.
:func:`park_on` (goroutines) and :func:`block_on` (plain threads) are the two
ways to wait on one; channels, Mutex, RWMutex, Cond, Semaphore, WaitGroup,
joining a goroutine and ``worldsema`` are all built on them.
"""

from __future__ import annotations

import threading
import time
import types
from collections import deque
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any

from ._errors import NotInGoroutine, NotInPlainThread, RaggedError
from ._lockrank import new_claim
from ._m import tls
from ._note import Note, new_note
from ._timeout import check_timeout
from ._traps import gopark

if TYPE_CHECKING:  # pragma: no cover
    from ._g import Goroutine

_new_claim = new_claim  # threading.Lock unless RAGGED_DEBUG (then a ClaimLock)
_main_thread = threading.main_thread()
_MAIN_SLICE = 0.1


_thread_notes = threading.local()


def thread_note() -> Note:
    """The note this plain thread sleeps on when it waits for the runtime, made once.

    One per thread, reused by every wait: a kernel note costs a descriptor
    (``_note``), and a thread waits for one thing at a time.  A wakeup left
    over from an abandoned wait (a KeyboardInterrupt mid-wait) cannot end a
    later one: waits loop on their sudog's ``done``, not on the note.
    """
    note = getattr(_thread_notes, "note", None)
    if note is None:
        note = _thread_notes.note = new_note()
    return note


class Sudog:
    """One waiter.  ``g`` is None for a plain thread (which sleeps on ``note``).

    ``elem``/``ok``/``case`` carry channel data; ``value``/``exc`` carry what a
    plain thread is woken with, and ``done`` says it was (set before the note
    is woken, by the waker that won the claim).
    """

    __slots__ = ("g", "claim", "note", "done", "elem", "ok", "case", "c", "value", "exc", "reason", "timed")

    def __init__(self, g: Goroutine | None, claim: threading.Lock | None = None) -> None:
        self.g = g
        self.claim = claim if claim is not None else _new_claim()
        self.note: Note | None = thread_note() if g is None else None
        self.done = False
        self.elem: Any = None
        self.ok = True
        self.case = -1
        self.c: Any = None
        self.value: Any = None
        self.exc: BaseException | None = None
        self.reason = ""
        self.timed = False

    def try_claim(self) -> bool:
        """Win the right to wake this waiter.  Exactly one caller ever wins."""
        return self.claim.acquire(False)

    def __repr__(self) -> str:
        who = f"G{self.g.id}" if self.g is not None else "thread"
        return f"<Sudog {who} {self.reason}>"


def ready(s: Sudog, value: Any = None, exc: BaseException | None = None) -> None:
    """Wake the waiter ``s`` with ``value`` (or ``exc``).  Caller has won ``s``'s claim."""
    g = s.g
    if g is None:
        assert s.note is not None  # a thread's sudog always has its note
        s.value = value
        s.exc = exc
        s.done = True
        s.note.wakeup()
    else:
        g.sched.goready(g, value, exc)


class WaitQueue:
    """FIFO of sudogs.  Every method requires the owner's lock."""

    __slots__ = ("_q",)

    def __init__(self) -> None:
        self._q: deque[Sudog] = deque()

    def __len__(self) -> int:
        return len(self._q)

    def __bool__(self) -> bool:
        return bool(self._q)

    def __iter__(self) -> Iterator[Sudog]:
        return iter(self._q)

    def push(self, s: Sudog) -> None:
        self._q.append(s)

    def pop_claimed(self) -> Sudog | None:
        """Dequeue the first waiter whose claim this caller wins (skipping stale ones)."""
        q = self._q
        while q:
            s = q.popleft()
            if s.claim.acquire(False):
                return s
        return None

    def peek_live(self) -> Sudog | None:
        """The first waiter not yet claimed by someone else (stale heads are dropped)."""
        q = self._q
        while q:
            s = q[0]
            if not s.claim.locked():
                return s
            q.popleft()
        return None

    def discard(self, s: Sudog) -> None:
        try:
            self._q.remove(s)
        except ValueError:
            pass

    def drain_claimed(self) -> list[Sudog]:
        """Dequeue every waiter, returning those whose claims this caller won."""
        out = [s for s in self._q if s.claim.acquire(False)]
        self._q.clear()
        return out


def current_g(what: str = "this call") -> Goroutine:
    """The goroutine running on this thread, or NotInGoroutine naming ``what``."""
    m = getattr(tls, "m", None)
    g = m.curg if m is not None else None
    if g is None:
        raise NotInGoroutine(
            f"{what} must be awaited inside a goroutine; from a plain thread use "
            "Runtime.go()/submit() or the *_blocking methods"
        )
    return g


def parkable_g(what: str) -> Goroutine:
    g = current_g(what)
    if g.holds_world:
        raise RaggedError(
            f"{what} would park the goroutine that holds a stop-the-world: nothing could wake it; "
            "leave the stop_the_world section first"
        )
    return g


@types.coroutine
def park_on(
    q: WaitQueue,
    lock: threading.Lock,
    reason: str,
    sudog: Sudog | None = None,
    on_cancel: Callable[[Sudog], None] | None = None,
) -> Generator[Any, Any, Any]:
    """Park the current goroutine on ``q``.  ``lock`` is held on entry, released on return.

    ``await park_on(...)`` returns what the waker passed to :func:`ready`, or
    raises what it passed.  If the wait ends with an exception (a
    cancellation), the sudog is removed from ``q`` and ``on_cancel`` (if given)
    runs under ``lock``.  (A generator-based coroutine: one frame less per park.)
    """
    try:
        g = parkable_g(reason)
    except BaseException:
        lock.release()
        raise
    s = sudog if sudog is not None else Sudog(g)
    s.reason = reason
    q.push(s)
    try:
        return (yield from gopark(lock.release, reason, s))
    except BaseException:
        with lock:
            q.discard(s)
            if on_cancel is not None:
                on_cancel(s)
        raise


def check_plain_thread(what: str) -> None:
    """Raise if a plain-thread blocking call is made where it would deadlock."""
    m = getattr(tls, "m", None)
    if m is not None and m.curg is not None and m.p is not None:
        raise NotInPlainThread(f"{what} blocks the OS thread; inside a goroutine use the awaitable form instead")
    if getattr(tls, "in_fn", False):
        raise RaggedError(f"{what} may block, which is not allowed inside a for_each_p callback")
    if getattr(tls, "holds_world", False):
        raise RaggedError(
            f"{what} would wait for goroutines while this thread has stopped the world; leave the "
            "stop_the_world section first"
        )


def block_on(
    q: WaitQueue,
    lock: threading.Lock,
    reason: str,
    timeout: float | None,
    sudog: Sudog | None = None,
    registry: Any = None,
) -> Any:
    """Block this plain thread on ``q``.  ``lock`` is held on entry, released on return.

    Returns the value it was woken with or raises the exception; on timeout
    removes itself from ``q`` and raises ``TimeoutError``.  ``registry`` (a
    runtime's sched) lets ``close()``, a crash and deadlock detection find the
    waiter; registering returns an error to raise at once instead (after a
    crash: ``Sched.thread_waiter_add``), so a waiter that arrives after the
    crash released the others does not wait for good.
    """
    try:
        check_plain_thread(reason)
        timeout = check_timeout(timeout)
    except BaseException:
        lock.release()
        raise
    s = sudog if sudog is not None else Sudog(None)
    s.reason = reason
    s.timed = timeout is not None
    q.push(s)
    if registry is not None:
        dead = registry.thread_waiter_add(s)
        if dead is not None and s.try_claim():
            q.discard(s)
            lock.release()
            registry.thread_waiter_remove(s)
            raise dead
    lock.release()
    try:
        return wait_note(s, timeout, lambda: _unqueue(q, lock, s))
    finally:
        if registry is not None:
            registry.thread_waiter_remove(s)


def _unqueue(q: WaitQueue, lock: threading.Lock, s: Sudog) -> None:
    with lock:
        q.discard(s)


def _sleep_until_done(s: Sudog, timeout: float | None) -> bool:
    """Sleep on a thread sudog's note until a waker marks it done; False if ``timeout`` passes.

    On the main thread the sleep is cut into 100ms slices: a blocked wait is
    not always woken by ``_thread.interrupt_main()`` (nor, on some platforms,
    by Ctrl-C), and waking lets the interpreter deliver a pending
    KeyboardInterrupt, as asyncio's event loop does.
    """
    note = s.note
    assert note is not None  # a thread's sudog always has its note
    main = threading.current_thread() is _main_thread
    end = None if timeout is None else time.monotonic() + timeout
    while not s.done:
        left = None if end is None else end - time.monotonic()
        if left is not None and left <= 0:
            return False
        if main:
            left = _MAIN_SLICE if left is None else min(left, _MAIN_SLICE)
        note.sleep(left)
    return True


def wait_note(s: Sudog, timeout: float | None, on_timeout: Callable[[], None]) -> Any:
    """Sleep on a thread sudog's note; resolve a timeout against a racing waker."""
    if not _sleep_until_done(s, timeout):
        if s.claim.acquire(False):
            on_timeout()
            raise TimeoutError(f"timed out after {timeout}s waiting for {s.reason}")
        _sleep_until_done(s, None)  # a waker won the claim first: its wake is on the way
    if s.exc is not None:
        raise s.exc
    return s.value
