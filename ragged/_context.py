"""Go's ``context``: cancellation and deadlines passed explicitly down a call tree.

A :class:`Context` is made from a parent -- ultimately :func:`background` --
by :func:`with_cancel`, :func:`with_deadline`, :func:`with_timeout` or
:func:`with_value`.  ``ctx.done()`` is a channel closed when the context is
cancelled, so a goroutine can wait on it in a ``select`` beside its work;
``ctx.err()`` is ``None`` until then, and afterwards says why:
``Cancelled("context canceled")`` or :class:`DeadlineExceeded`.

Cancelling a context cancels its descendants, never its ancestors.  As in
Go, the tree is explicit: nothing here cancels goroutines by itself; they
watch ``done()``.  (``g.cancel()`` is the other, implicit mechanism.)

Locking: each cancellable context's ``_lock`` guards its ``_err``,
``_children`` and ``_timer``.  A context never holds its lock while taking
another context's, so a cancel running down the tree (perhaps from a timer
callback on a scheduler thread) and children registering or leaving cannot
deadlock.  Deadlines use the runtime's timer heap: inside a goroutine the
current runtime, from a plain thread pass ``runtime=``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._chan import Chan
from ._core import Cancelled, ChanClosed, Rank, check_deadline, check_seconds, lock_maker
from ._time import _timers_of

if TYPE_CHECKING:  # pragma: no cover
    from ._core import Runtime, TimerEntry, Timers

_monotonic = time.monotonic
_new_lock = lock_maker(Rank.CONTEXT, "Context._lock")  # threading.Lock unless RAGGED_DEBUG


class DeadlineExceeded(Cancelled, TimeoutError):
    """``ctx.err()`` of a context whose deadline passed (Go's ``context.DeadlineExceeded``)."""


class Context:
    """A node of the context tree.  Make them with the ``with_*`` functions.

    ``done()`` -- channel closed on cancellation; ``err()`` -- None, or the
    reason; ``deadline()`` -- the ``time.monotonic()`` deadline or None;
    ``value(key)`` -- the value stored by the nearest ``with_value``.

    :raises: nothing (make contexts with :func:`background` and the ``with_*`` functions).
    :Called from: anywhere; contexts may be shared by goroutines and threads.
    """

    __slots__ = ("_parent", "_src", "_lock", "_done", "_err", "_children", "_deadline", "_timer", "_key", "_val")

    def __init__(self, parent: Context | None, cancellable: bool, deadline: float | None = None) -> None:
        self._parent = parent
        self._key: Any = None
        self._val: Any = None
        self._timer: tuple[Timers, TimerEntry] | None = None
        if parent is None or cancellable:
            # A cancellation source: its own done channel, error and children.
            self._src = self
            self._lock = _new_lock()
            self._done: Chan[None] = Chan()
            self._err: BaseException | None = None
            self._children: set[Context] | None = set() if parent is not None else None
        else:
            self._src = parent._src  # a value node shares its parent's cancellation
        inherited = parent._deadline if parent is not None else None
        if deadline is None or (inherited is not None and inherited <= deadline):
            deadline = inherited
        self._deadline: float | None = deadline

    def done(self) -> Chan[None]:
        """A channel closed when this context is cancelled (never, for ``background()``).

        Receive from it, or use ``ctx.done().recv_case()`` in a ``select``.
        Do not close it yourself.

        :raises: nothing.
        :Called from: anywhere.
        """
        return self._src._done

    def err(self) -> BaseException | None:
        """None while not cancelled; then ``Cancelled`` or ``DeadlineExceeded`` (returned, not raised).

        :raises: nothing.
        :Called from: anywhere.
        """
        return self._src._err

    async def wait(self) -> BaseException:
        """Park until this context is done; return :meth:`err` (Go's ``<-ctx.Done()``).

        The port of a bare ``<-ctx.Done()``: ``await ctx.done().recv()`` would
        raise ``ChanClosed`` instead, as ``recv`` does on every closed channel.
        To wait for the context *or* something else, ``select`` on
        ``ctx.done().recv_case()``.  A safe point.  For :func:`background`
        (never done) it waits until the goroutine itself is cancelled.

        :raises Cancelled: if the waiting goroutine is cancelled (``g.cancel()``).
        :raises NotInGoroutine: outside a goroutine.
        :Called from: inside a goroutine; from a plain thread use :meth:`wait_blocking`.
        """
        src = self._src
        await src._done.recv_ok()
        err = src._err
        assert err is not None  # set before the done channel is closed
        return err

    def wait_blocking(self, timeout: float | None = None) -> BaseException:
        """From a plain thread: block until this context is done; return :meth:`err`.

        :raises TimeoutError: if ``timeout`` seconds pass first.
        :raises TypeError: if ``timeout`` is not None or a number.
        :raises ValueError: for a ``timeout`` that is not a valid duration.
        :raises NotInPlainThread: inside a goroutine.
        :Called from: a plain thread; inside a goroutine use ``await ctx.wait()``.
        """
        src = self._src
        try:
            src._done.recv_blocking(timeout)
        except ChanClosed:
            pass
        err = src._err
        assert err is not None  # nothing is ever sent on done: recv_blocking only ends by close (or raises)
        return err

    def deadline(self) -> float | None:
        """When this context will be cancelled by a deadline (``time.monotonic()`` seconds), or None.

        :raises: nothing.
        :Called from: anywhere.
        """
        return self._deadline

    def value(self, key: Any) -> Any:
        """The value for ``key`` from the nearest ``with_value`` ancestor, else None.

        :raises: nothing (but an exception from ``key.__eq__``).
        :Called from: anywhere.
        """
        ctx: Context | None = self
        while ctx is not None:
            if ctx._key is not None and ctx._key == key:
                return ctx._val
            ctx = ctx._parent
        return None

    def __repr__(self) -> str:
        err = self.err()
        state = f" {type(err).__name__}" if err is not None else ""
        return f"<Context{state} deadline={self._deadline}>"

    # ------------------------------------------------------------ the tree

    def _attach(self) -> None:
        """Register this new source with the nearest cancellable ancestor (or cancel it at once)."""
        assert self._parent is not None  # only a child attaches
        src = self._parent._src
        if src._children is None:
            return  # background: never cancelled
        with src._lock:
            err = src._err
            if err is None:
                src._children.add(self)
                return
        self._cancel(err, detach=False)

    def _cancel(self, err: BaseException, detach: bool = True) -> None:
        """Cancel this source and its descendants with ``err``; idempotent.

        Takes ``_lock`` briefly, then works with no lock held: close the done
        channel, cancel the children, stop the deadline timer, and (``detach``)
        leave the parent's child set.  Never blocks: safe in timer callbacks.
        """
        with self._lock:
            if self._err is not None:
                return
            self._err = err
            children = self._children or set()
            self._children = set()
            timer = self._timer
            self._timer = None
        self._done.close()
        for child in children:
            child._cancel(err, detach=False)
        if timer is not None:
            timers, entry = timer
            timers.stop(entry)
        if detach and self._parent is not None:  # background has no parent
            parent = self._parent._src
            if parent._children is not None:
                with parent._lock:
                    parent._children.discard(self)

    def _expire(self, _: Any = None) -> None:
        """Deadline timer callback (a scheduler thread)."""
        self._cancel(DeadlineExceeded("context deadline exceeded"))


_BACKGROUND = Context(None, cancellable=True)


def background() -> Context:
    """The root context: never cancelled, no deadline, no values (Go's ``context.Background``).

    :raises: nothing.
    :Called from: anywhere.
    """
    return _BACKGROUND


def _check_parent(parent: Any, what: str) -> Context:
    """``parent`` if it is a Context, else TypeError naming ``what``."""
    if not isinstance(parent, Context):
        raise TypeError(f"{what} needs a parent Context (e.g. ragged.background()), not {type(parent).__name__}")
    return parent


def _cancel_func(ctx: Context) -> Callable[[], None]:
    """The ``cancel`` function handed out with ``ctx`` (Go's ``CancelFunc``)."""

    def cancel() -> None:
        """Cancel the context (and its descendants).  Idempotent; callable from any thread."""
        ctx._cancel(Cancelled("context canceled"))

    return cancel


def with_cancel(parent: Context) -> tuple[Context, Callable[[], None]]:
    """A child of ``parent`` and the function that cancels it (Go's ``context.WithCancel``).

    The child is also cancelled when ``parent`` is.  Call ``cancel()`` when
    the work is done, so the parent stops tracking the child; ``cancel`` is
    idempotent, never blocks and may be called from anywhere.

    :raises TypeError: if ``parent`` is not a :class:`Context`.
    :Called from: anywhere.
    """
    parent = _check_parent(parent, "with_cancel()")
    ctx = Context(parent, cancellable=True)
    ctx._attach()
    return ctx, _cancel_func(ctx)


def with_deadline(
    parent: Context, deadline: float, *, runtime: Runtime | None = None
) -> tuple[Context, Callable[[], None]]:
    """Like :func:`with_cancel`, also cancelled with ``DeadlineExceeded`` at ``deadline``.

    ``deadline`` is in ``time.monotonic()`` seconds.  A parent deadline that
    comes first wins.  A deadline already past gives a context cancelled at
    once; ``math.inf`` means no deadline (``ctx.deadline()`` is then the
    parent's, or None).  A deadline that looks like wall-clock time (more than
    a year ahead of ``time.monotonic()`` and within a year of ``time.time()``,
    as ``time.time() + 1`` is) is refused: Go's ``WithDeadline`` takes a
    wall-clock time, but here it would silently never expire.  Inside a
    goroutine the timer uses the current runtime; from a plain thread pass
    ``runtime=``.

    :raises TypeError: if ``parent`` is not a :class:`Context`, ``deadline`` not a
        number, or ``runtime`` not a :class:`Runtime`.
    :raises ValueError: for a NaN ``deadline``, or one that looks like ``time.time()``
        (use ``time.monotonic() + seconds``).
    :raises NotInGoroutine: on a plain thread without ``runtime=`` (when a timer is needed).
    :raises RuntimeClosed: if the runtime is closed.
    :Called from: anywhere (with ``runtime=`` outside a goroutine).
    """
    parent = _check_parent(parent, "with_deadline()")
    return _with_deadline(parent, check_deadline(deadline, "with_deadline()"), runtime)


def _with_deadline(parent: Context, deadline: float, runtime: Runtime | None) -> tuple[Context, Callable[[], None]]:
    """``with_deadline`` once its arguments are checked (``deadline`` may be +-inf)."""
    inherited = parent._deadline
    delay = deadline - _monotonic()
    never = deadline == math.inf
    needs_timer = delay > 0 and not never and (inherited is None or deadline < inherited)
    timers = _timers_of(runtime, "with_deadline()") if needs_timer else None
    ctx = Context(parent, cancellable=True, deadline=None if never else deadline)
    ctx._attach()
    cancel = _cancel_func(ctx)
    if timers is None:
        if delay <= 0:
            ctx._expire()
        return ctx, cancel  # else the parent's earlier deadline will cancel it, or none ever will
    entry = timers.add(delay, ctx._expire, None)
    with ctx._lock:
        kept = ctx._err is None
        if kept:
            ctx._timer = (timers, entry)
    if not kept:
        timers.stop(entry)  # cancelled meanwhile
    return ctx, cancel


def with_timeout(
    parent: Context, seconds: float, *, runtime: Runtime | None = None
) -> tuple[Context, Callable[[], None]]:
    """``with_deadline(parent, time.monotonic() + seconds)`` (Go's ``context.WithTimeout``).

    As in Go, 0 or a negative ``seconds`` gives a context whose deadline has
    already passed (cancelled at once, no runtime needed); ``math.inf`` gives
    one with no deadline of its own.

    :raises TypeError: if ``seconds`` is not a number, or as :func:`with_deadline`.
    :raises ValueError: for NaN ``seconds``.
    :raises NotInGoroutine: on a plain thread without ``runtime=`` (when a timer is needed).
    :raises RuntimeClosed: if the runtime is closed.
    :Called from: anywhere (with ``runtime=`` outside a goroutine).
    """
    parent = _check_parent(parent, "with_timeout()")
    seconds = check_seconds(seconds, "with_timeout()")
    return _with_deadline(parent, _monotonic() + seconds, runtime)


def with_value(parent: Context, key: Any, value: Any) -> Context:
    """A child of ``parent`` carrying ``key`` -> ``value`` (Go's ``context.WithValue``).

    It shares the parent's cancellation.  ``key`` must not be None; use a
    private object or class as the key to avoid collisions.

    :raises TypeError: if ``parent`` is not a :class:`Context` or ``key`` is None.
    :Called from: anywhere.
    """
    parent = _check_parent(parent, "with_value()")
    if key is None:
        raise TypeError("with_value() needs a key that is not None")
    ctx = Context(parent, cancellable=False)
    ctx._key = key
    ctx._val = value
    return ctx


__all__ = ["Context", "DeadlineExceeded", "background", "with_cancel", "with_deadline", "with_timeout", "with_value"]
