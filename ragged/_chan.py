"""Channels: Go's ``chan`` for goroutines, with blocking forms for plain threads.

A :class:`Chan` is a FIFO buffer of ``cap`` values (none for an unbuffered,
rendezvous channel) and two wait queues, ``recvq`` and ``sendq``, all
guarded by the channel's one ``threading.Lock`` (Go's ``hchan``).  At most one
of the queues holds live waiters at a time, and a waiting sender means the
buffer is full.

Every operation follows Go's ``chansend`` / ``chanrecv``:

* a send first looks for a waiting receiver and hands the value straight to
  it (``sudog.elem``); else it appends to the buffer if there is room; else it
  parks on ``sendq`` with its value in its sudog;
* a receive first looks for a waiting sender -- unbuffered: take its value;
  buffered (so full): take the head of the buffer and move the sender's value
  to the tail -- else takes from the buffer; else, if the channel is closed,
  reports closed; else parks on ``recvq``;
* ``close`` marks the channel closed and wakes every waiter: receivers with
  "closed", senders to raise ``ChanClosed``.  Buffered values stay to be
  drained.

Waiters are woken only by whoever wins their sudog's claim, through
``_handoff.complete``; goroutines park with ``park_on`` and plain
threads block with ``_park.block_on``.  ``select`` (``_select``) uses the same
lock-held steps, :meth:`Chan._poll_recv` and :meth:`Chan._poll_send`.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._core import (
    ChanClosed,
    Rank,
    Sudog,
    WaitQueue,
    block_on,
    check_plain_thread,
    check_timeout,
    checkpoint,
    complete,
    current_g,
    lock_maker,
    park_on,
)

if TYPE_CHECKING:  # pragma: no cover
    from ._core import Goroutine

T = TypeVar("T")

_new_chan_lock = lock_maker(Rank.CHAN, "Chan._lock")  # threading.Lock unless RAGGED_DEBUG


class Case:
    """One case of :func:`ragged.select`: made by ``ch.recv_case()`` or ``ch.send_case(v)``.

    A receive case yields the value received, or ``None`` once the channel is
    closed and drained; with ``with_ok=True`` it yields ``(value, ok)`` as
    Go's ``v, ok := <-ch`` does.

    :raises: nothing (make cases with :meth:`Chan.recv_case` / :meth:`Chan.send_case`).
    :Called from: anywhere; a case is used by :func:`select`, inside a goroutine.
    """

    __slots__ = ("chan", "send", "value", "with_ok")

    def __init__(self, chan: Chan[Any], send: bool, value: Any = None, with_ok: bool = False) -> None:
        self.chan = chan
        self.send = send
        self.value = value
        self.with_ok = with_ok

    def __repr__(self) -> str:
        what = f"send {self.value!r}" if self.send else "recv"
        return f"<Case {what} on {self.chan!r}>"


class Chan(Generic[T]):
    """A Go channel.  ``Chan()`` is unbuffered (a rendezvous), ``Chan(n)`` buffers ``n`` values.

    Inside goroutines: ``await ch.send(v)``, ``await ch.recv()``,
    ``await ch.recv_ok()``, ``async for v in ch``.  From plain threads:
    ``ch.send_blocking(v, timeout)``, ``ch.recv_blocking(timeout)``.  From
    anywhere: ``ch.close()``, ``ch.try_send(v)``, ``ch.try_recv()``,
    ``len(ch)`` (values buffered now), ``ch.cap``.

    Waiting senders and receivers are served first-in first-out.  After
    ``close()``, receivers drain the buffer and then get ``ChanClosed``
    (``recv``) or ``(None, False)`` (``recv_ok``); sends and a second close
    raise ``ChanClosed``.  ``Chan[int]()`` types the values for type checkers.

    :raises TypeError: if ``cap`` is not an int.
    :raises ValueError: if ``cap`` is negative.
    :Called from: anywhere; a channel may be shared by goroutines of any
        runtime and plain threads.
    """

    __slots__ = ("_lock", "_buf", "_cap", "_closed", "_recvq", "_sendq", "_sched", "__weakref__")

    def __init__(self, cap: int = 0) -> None:
        if isinstance(cap, bool) or not isinstance(cap, int):
            raise TypeError(f"Chan capacity must be an int >= 0, not {type(cap).__name__} {cap!r}")
        if cap < 0:
            raise ValueError(f"Chan capacity must be >= 0, not {cap!r}")
        self._lock = _new_chan_lock()
        self._buf: deque[T] = deque()
        self._cap = cap
        self._closed = False
        self._recvq = WaitQueue()
        self._sendq = WaitQueue()
        self._sched: Any = None  # the runtime that first parked a goroutine here

    @property
    def cap(self) -> int:
        """The buffer capacity (0: unbuffered)."""
        return self._cap

    def __len__(self) -> int:
        """``len(ch)``: the number of values buffered right now.

        :raises: nothing.
        :Called from: anywhere.
        """
        return len(self._buf)

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<Chan cap={self._cap} len={len(self._buf)}{state}>"

    # ------------------------------------------------------------ lock-held steps

    def _poll_recv(self) -> tuple[Any, bool, Sudog | None] | None:
        """Receive without blocking: ``(value, ok, sender to complete)``, or None to wait.

        Requires ``_lock``, which it keeps.  ``ok`` is False when the channel
        is closed and drained.  The caller completes the returned sender (if
        any) after releasing the lock.
        """
        s = self._sendq.pop_claimed()
        if s is not None:
            if self._cap:
                buf = self._buf
                v = buf.popleft()
                buf.append(s.elem)
            else:
                v = s.elem
            s.elem = None
            return v, True, s
        if self._buf:
            return self._buf.popleft(), True, None
        if self._closed:
            return None, False, None
        return None

    def _poll_send(self, v: Any) -> Sudog | bool:
        """Send without blocking: the receiver to complete, True (buffered), or False to wait.

        Requires ``_lock``, which it keeps; the caller has checked ``_closed``.
        The caller completes the returned receiver after releasing the lock.
        """
        r = self._recvq.pop_claimed()
        if r is not None:
            r.elem = v
            r.ok = True
            return r
        if len(self._buf) < self._cap:
            self._buf.append(v)
            return True
        return False

    def _send_locked(self, v: Any) -> bool:
        """Complete a send at once if it can; True if done.  Requires ``_lock``.

        On True (or on ``ChanClosed``) the lock has been released; on False it
        is still held and the caller must wait.
        """
        if self._closed:
            self._lock.release()
            raise ChanClosed("send on closed channel")
        r = self._poll_send(v)
        if r is False:
            return False
        self._lock.release()
        if r is not True:
            complete(r)
        return True

    def _recv_locked(self) -> tuple[Any, bool] | None:
        """Complete a receive at once if it can: ``(value, ok)``; None to wait.

        Requires ``_lock``; released when it returns a result, held on None.
        """
        r = self._poll_recv()
        if r is None:
            return None
        self._lock.release()
        v, ok, s = r
        if s is not None:
            complete(s)
        return v, ok

    def _start_send(self, v: Any, g: Goroutine | None) -> Sudog | None:
        """Begin sending ``v`` for ``g`` (None: a plain thread).  Takes ``_lock``.

        Returns None if the send completed at once (lock released); else a
        sudog carrying ``v``, with ``_lock`` still held, for the caller to
        wait on ``sendq`` with.  Raises ``ChanClosed`` (lock released).
        """
        self._lock.acquire()
        if self._send_locked(v):
            return None
        s = Sudog(g)
        s.elem = v
        if g is not None and self._sched is None:
            self._sched = g.sched
        return s

    def _start_recv(self, g: Goroutine | None) -> tuple[Any, bool] | Sudog:
        """Begin a receive for ``g`` (None: a plain thread).  Takes ``_lock``.

        Returns ``(value, ok)`` if it completed at once (lock released); else
        a sudog, with ``_lock`` still held, to wait on ``recvq`` with.
        """
        self._lock.acquire()
        r = self._recv_locked()
        if r is not None:
            return r
        if g is not None and self._sched is None:
            self._sched = g.sched
        return Sudog(g)

    # ------------------------------------------------------------ goroutines

    async def send(self, v: T) -> None:
        """Send ``v``, parking until a receiver takes it (or the buffer has room).

        A safe point.  If cancelled while parked, the value was not sent.

        :raises ChanClosed: if the channel is closed, also while waiting.
        :raises Cancelled: if the goroutine is cancelled (the value was not sent).
        :raises NotInGoroutine: outside a goroutine.
        :Called from: inside a goroutine; from a plain thread use :meth:`send_blocking`
            (or :meth:`try_send` from anywhere).
        """
        g = current_g("Chan.send()")
        await checkpoint()
        s = self._start_send(v, g)
        if s is not None:
            await park_on(self._sendq, self._lock, "chan send", s)
            _check_sent(s)

    async def recv_ok(self) -> tuple[T | None, bool]:
        """Receive: ``(value, True)``, or ``(None, False)`` once closed and drained.

        Parks while the channel is empty and open.  A safe point.

        :raises Cancelled: if the goroutine is cancelled (nothing was received).
        :raises NotInGoroutine: outside a goroutine.
        :Called from: inside a goroutine; from a plain thread use :meth:`recv_blocking`
            (or :meth:`try_recv` from anywhere).
        """
        g = current_g("Chan.recv()")
        await checkpoint()
        r = self._start_recv(g)
        if isinstance(r, tuple):
            return r
        await park_on(self._recvq, self._lock, "chan receive", r)
        return r.elem, r.ok

    async def recv(self) -> T:
        """Receive a value, parking while the channel is empty.  A safe point.

        :raises ChanClosed: once the channel is closed and drained.
        :raises Cancelled: if the goroutine is cancelled (nothing was received).
        :raises NotInGoroutine: outside a goroutine.
        :Called from: inside a goroutine; from a plain thread use :meth:`recv_blocking`.
        """
        v, ok = await self.recv_ok()
        if not ok:
            raise ChanClosed("receive on closed channel")
        return v  # type: ignore[return-value]  # ok: v was sent on this channel, a T (not the None of closed)

    def __aiter__(self) -> Chan[T]:
        """``async for v in ch``: receive until the channel is closed and drained.

        Each step is a :meth:`recv_ok`; the loop ends when it reports closed.

        :raises Cancelled: if the goroutine is cancelled while waiting.
        :raises NotInGoroutine: outside a goroutine (at the first step).
        :Called from: inside a goroutine.
        """
        return self

    async def __anext__(self) -> T:
        """``async for v in ch``: receive until the channel is closed and drained."""
        v, ok = await self.recv_ok()
        if not ok:
            raise StopAsyncIteration
        return v  # type: ignore[return-value]  # ok: v was sent on this channel, a T (not the None of closed)

    def recv_case(self, with_ok: bool = False) -> Case:
        """A receive case for :func:`select` (it yields the value, or ``(value, ok)`` with ``with_ok``).

        :raises: nothing.
        :Called from: anywhere (the select itself runs inside a goroutine).
        """
        return Case(self, False, None, bool(with_ok))

    def send_case(self, v: T) -> Case:
        """A send case for :func:`select`: send ``v`` if this case is chosen.

        :raises: nothing (a closed channel raises when the select runs).
        :Called from: anywhere (the select itself runs inside a goroutine).
        """
        return Case(self, True, v)

    # ------------------------------------------------------------ anywhere

    def close(self) -> None:
        """Close the channel and wake every waiter.  A second close raises ``ChanClosed``.

        Waiting receivers get "closed" (after the buffer is drained there is
        nothing more to get), waiting senders raise ``ChanClosed``.  Never
        blocks.

        :raises ChanClosed: if the channel is already closed.
        :Called from: anywhere, timer and barrier callbacks included.
        """
        with self._lock:
            if self._closed:
                raise ChanClosed("close of closed channel")
            self._closed = True
            receivers = self._recvq.drain_claimed()
            senders = self._sendq.drain_claimed()
        for s in receivers:
            s.elem = None
            s.ok = False
            complete(s)
        for s in senders:
            s.ok = False
            complete(s)

    def try_send(self, v: T) -> bool:
        """Send ``v`` only if that needs no waiting; True if sent.  Never blocks.

        Go's ``select`` with ``default``.

        :raises ChanClosed: on a closed channel.
        :Called from: anywhere, timer and barrier callbacks included.
        """
        r = self._offer(v)
        if r is not True and r is not False:
            complete(r)
        return r is not False

    def _offer(self, v: Any) -> Sudog | bool:
        """``try_send`` without the wake-up: True (buffered), False (no room), or the
        receiver that now has ``v``, for the caller to :func:`complete` -- after
        releasing any lock of its own (waking may take the sched lock).  Takes ``_lock``.
        """
        with self._lock:
            if self._closed:
                raise ChanClosed("send on closed channel")
            return self._poll_send(v)

    def try_recv(self) -> tuple[T | None, bool]:
        """Receive only if a value is there now: ``(value, True)``, else ``(None, False)``.

        ``(None, False)`` means empty, or closed and drained; use ``select``
        with ``default=True`` and ``recv_case(with_ok=True)`` to tell which.
        Never blocks.

        :raises: nothing.
        :Called from: anywhere, timer and barrier callbacks included.
        """
        self._lock.acquire()
        r = self._recv_locked()
        if r is None:
            self._lock.release()
            return None, False
        return r

    # ------------------------------------------------------------ plain threads

    def send_blocking(self, v: T, timeout: float | None = None) -> None:
        """From a plain thread: send ``v``, blocking until it is taken or buffered.

        :raises TimeoutError: after ``timeout`` seconds (the value was then not sent).
        :raises ChanClosed: if the channel is or gets closed.
        :raises TypeError: if ``timeout`` is not None or a number.
        :raises ValueError: for a NaN ``timeout`` (a negative one is 0, ``inf`` is None).
        :raises Deadlock: if the runtime finds that nothing can ever take the value.
        :raises RuntimeClosed: if the runtime using the channel is closed while waiting.
        :raises NotInPlainThread: inside a goroutine.
        :Called from: a plain thread; inside a goroutine use ``await ch.send(v)``.
        """
        check_plain_thread("Chan.send_blocking()")
        timeout = check_timeout(timeout)
        s = self._start_send(v, None)
        if s is not None:
            block_on(self._sendq, self._lock, "chan send", timeout, s, registry=self._sched)
            _check_sent(s)

    def recv_blocking(self, timeout: float | None = None) -> T:
        """From a plain thread: receive a value, blocking while the channel is empty.

        :raises ChanClosed: once the channel is closed and drained.
        :raises TimeoutError: after ``timeout`` seconds (nothing was received).
        :raises TypeError: if ``timeout`` is not None or a number.
        :raises ValueError: for a NaN ``timeout`` (a negative one is 0, ``inf`` is None).
        :raises Deadlock: if the runtime finds that nothing can ever send.
        :raises RuntimeClosed: if the runtime using the channel is closed while waiting.
        :raises NotInPlainThread: inside a goroutine.
        :Called from: a plain thread; inside a goroutine use ``await ch.recv()``.
        """
        check_plain_thread("Chan.recv_blocking()")
        timeout = check_timeout(timeout)
        r = self._start_recv(None)
        if not isinstance(r, tuple):
            block_on(self._recvq, self._lock, "chan receive", timeout, r, registry=self._sched)
            r = r.elem, r.ok
        if not r[1]:
            raise ChanClosed("receive on closed channel")
        return r[0]


def _check_sent(s: Sudog) -> None:
    """After a sender's wait: raise if it ended because the channel was closed."""
    if not s.ok:
        raise ChanClosed("send on closed channel")


__all__ = ["Case", "Chan"]
