"""Structured groups of goroutines: Go's ``errgroup.WithContext`` and Python's ``TaskGroup`` in one.

A :class:`Group` owns its members: it starts them (``g.go``), counts them,
collects their exceptions, and on the first failure cancels its context and
every other member (and the body of its ``async with`` block, as
``TaskGroup`` does).  Leaving the block, or ``await g.wait()``, waits until
no member is left and raises the failures as one ``ExceptionGroup``.

State and locking.  ``_lock`` guards ``_n`` (members started and not yet
finished), ``_members``, ``_errors``, ``_cancelling``, ``_closed``,
``_in_body``, ``_owner_cancelled`` and the ``_waiters`` queue.  A member's end
is seen by its done callback, which runs on whichever thread finishes it,
with no lock held.  Some calls into the runtime are made with ``_lock`` held:
spawning a member (``Runtime.go``), and cancelling the owner or a member
started while the group cancels (``Goroutine.cancel``, which takes that
goroutine's lock and may ready it).  Nothing in the runtime takes a group's
lock, and done callbacks run after the goroutine's lock is released, so the
order ``_lock`` -> goroutine lock -> scheduler locks cannot deadlock (the
rank table in ``_core._lockrank`` puts ``_lock`` below the sched lock, so a
barrier callback, which runs under the sched lock, must not start members).
Waiters park on ``_waiters`` with the one park/ready pair (``park_on`` /
``complete``) and are woken when ``_n`` reaches zero.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Self, TypeVar, TypeVarTuple

from ._atomic import AtomicInt
from ._context import Context, _check_parent, background, with_cancel
from ._core import (
    Cancelled,
    Goroutine,
    NotInGoroutine,
    RaggedError,
    Rank,
    Runtime,
    Sudog,
    WaitQueue,
    checkpoint,
    complete,
    current_g,
    gosched,
    lock_maker,
    make_coro,
    park_on,
    tls,
)
from ._sync import Semaphore

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

_group_ids = AtomicInt()
_new_lock = lock_maker(Rank.GROUP, "Group._lock")  # threading.Lock unless RAGGED_DEBUG


class _Slots(Semaphore):
    """The permits of a group with a ``limit``: one per running member."""

    __slots__ = ()
    _what = "a ragged.Group slot"
    _reason = "ragged.Group slot"


class _Slot:
    """Whether one member holds a permit; written by the member, read by its done callback."""

    __slots__ = ("held",)

    def __init__(self, held: bool) -> None:
        self.held = held


async def _in_slot(slots: _Slots, slot: _Slot, coro: Coroutine[Any, Any, T]) -> T:
    """A limited member: wait for a permit (unless it came with one), then run ``coro``.

    The permit goes back in the group's done callback, not in a ``finally``
    here: a member cancelled before it first ran never enters this frame.
    """
    if not slot.held:
        await slots.acquire()
        slot.held = True
        # A failure cancels the members before it gives its slot back: a member that took
        # that slot without parking (it came free between acquire's safe point and its lock)
        # has the group's cancel pending, and must not start its body.
        await checkpoint()
    return await coro


def _check_limit(limit: Any) -> int | None:
    """None, or an int >= 1; else TypeError / ValueError."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"ragged.Group(limit=) takes None or an int >= 1, not {type(limit).__name__} {limit!r}")
    if limit < 1:
        raise ValueError(f"ragged.Group(limit=) takes None or an int >= 1, not {limit!r}")
    return limit


class Group:
    """A group of goroutines that succeed or fail together (``errgroup`` + ``TaskGroup``).

    ::

        async with ragged.Group() as g:
            for url in urls:
                g.go(fetch, g.ctx, url)      # returns the member's Goroutine
        # here every member has finished; if any failed, an ExceptionGroup was raised

    * ``g.ctx`` is a child of ``ctx`` (default :func:`background`), cancelled
      when a member fails, when the block exits with an error, and in any
      case once the group is done (as errgroup's context is once ``Wait``
      returns).  Members that should stop early watch it
      (``await g.ctx.wait()``, or ``g.ctx.done().recv_case()`` in a ``select``).
    * When a member raises, the group cancels ``g.ctx``, every other member
      (``Cancelled`` at its next await) and the block's body if the owner is
      still in it, as ``TaskGroup`` does.  ``Cancelled`` from a member the
      group itself cancelled is not an error; a member that ends with
      ``Cancelled`` for another reason (someone else cancelled it, or it
      raised ``ctx.err()``) counts as failed, as a non-nil error in Go would.
      The parent ``ctx`` being cancelled does not by itself cancel members:
      they see it through ``g.ctx``, as in Go.
    * Leaving the block waits for every member, also members started
      meanwhile by members.  Then, if any failed, it raises an
      ``ExceptionGroup`` of their exceptions (first failure first, each noted
      with its goroutine), plus the body's own exception if it raised one,
      so ``except*`` works; if the body's goroutine was cancelled from
      outside, it cancels the members, waits for them and re-raises
      ``Cancelled``.  Member results stay on their handles: ``await h``.
    * Without the block, ``g.go(...)`` then ``await g.wait()`` is errgroup's
      ``Go`` / ``Wait``.  A group is used once: after the block exits or
      ``wait()`` returns, ``go()`` raises.

    ``limit`` bounds how many members run at once (errgroup's ``SetLimit``).
    ``g.go()`` never blocks, even at the limit: the new member takes a free
    slot at once, or is started anyway and waits for one itself (shown as
    ``ragged.Group slot`` in dumps; waiting members get slots first come,
    first served).  It cannot block the
    way Go's ``g.Go`` does: ``go`` is a plain function (so it can be called
    anywhere, as ``TaskGroup.create_task`` and trio's ``start_soon`` can), and
    a plain function that blocked would stall its P's thread.  Where Go code
    relies on ``g.Go`` blocking to slow a producer down, use ``await
    g.go_when_free(...)``, which parks the caller until a slot is free; or
    ``g.try_go(...)`` (errgroup's ``TryGo``), which starts a member only if a
    slot is free now.

    Members are named ``name`` (default ``g<id>``) and carry the label
    ``group=<the group's name>`` (plus any ``labels=`` given) in dumps,
    traces and log records; the group's ``name`` defaults to ``group<n>``.

    :raises TypeError: if ``ctx`` is not a Context, ``limit`` not an int or ``name`` not a str.
    :raises ValueError: if ``limit`` is below 1.
    :Called from: anywhere (construction); ``async with`` and :meth:`wait` inside a goroutine.
    """

    __slots__ = (
        "ctx",
        "name",
        "_cancel_ctx",
        "_slots",
        "_lock",
        "_rt",
        "_n",
        "_members",
        "_errors",
        "_cancelling",
        "_closed",
        "_owner",
        "_in_body",
        "_owner_cancelled",
        "_waiters",
    )

    def __init__(self, ctx: Context | None = None, limit: int | None = None, *, name: str | None = None) -> None:
        parent = background() if ctx is None else _check_parent(ctx, "ragged.Group()")
        limit = _check_limit(limit)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"ragged.Group(name=) takes a str, not {type(name).__name__}")
        self.name: str = name if name is not None else f"group{_group_ids.add(1)}"
        self.ctx: Context
        self.ctx, self._cancel_ctx = with_cancel(parent)
        self._slots = _Slots(limit) if limit is not None else None
        self._lock = _new_lock()
        self._rt: Runtime | None = None
        self._n = 0
        self._members: set[Goroutine[Any]] = set()
        self._errors: list[BaseException] = []
        self._cancelling = False
        self._closed = False
        self._owner: Goroutine[Any] | None = None
        self._in_body = False
        self._owner_cancelled = False
        self._waiters = WaitQueue()

    def __repr__(self) -> str:
        state = "done" if self._closed else "cancelling" if self._cancelling else "running"
        return f"<ragged.Group {self.name!r} {state} members={self._n} errors={len(self._errors)}>"

    # ------------------------------------------------------------ starting members

    def go(
        self,
        fn: Callable[[*Ts], Awaitable[T]] | Coroutine[Any, Any, T],
        *args: *Ts,
        name: str | None = None,
        labels: dict[str, Any] | None = None,
    ) -> Goroutine[T]:
        """Start ``fn(*args)`` as a member; return its :class:`Goroutine` at once.

        Never blocks.  With a ``limit``, the member waits for a slot before
        ``fn`` runs.  Once the group is cancelling (a member failed), the
        member is started already cancelled: ``Cancelled`` at its first await.
        ``fn(i)`` receives ``i``'s value now (unlike a closure over a loop
        variable, which sees its last value).

        :raises TypeError: if ``fn`` is not an async function, or for a bad ``name`` / ``labels``.
        :raises RaggedError: if the group is done (its block exited or ``wait()`` returned).
        :raises NotInGoroutine: from a plain thread before any goroutine used the group.
        :raises RuntimeClosed: if the runtime is closed.
        :Called from: anywhere: the block's body, members, other goroutines, and
            plain threads once a goroutine has used the group.
        """
        coro = make_coro(fn, args, "Group.go()")
        slots = self._slots
        return self._start(coro, _Slot(slots is not None and slots.try_acquire()), name, labels)

    def try_go(
        self,
        fn: Callable[[*Ts], Awaitable[T]] | Coroutine[Any, Any, T],
        *args: *Ts,
        name: str | None = None,
        labels: dict[str, Any] | None = None,
    ) -> Goroutine[T] | None:
        """Start a member only if a slot is free now (errgroup's ``TryGo``); else return None.

        Without a ``limit`` it always starts one.  Never blocks.

        :raises TypeError: if ``fn`` is not an async function, or for a bad ``name`` / ``labels``.
        :raises RaggedError: if the group is done.
        :raises NotInGoroutine: from a plain thread before any goroutine used the group.
        :raises RuntimeClosed: if the runtime is closed.
        :Called from: anywhere, as :meth:`go`.
        """
        if self._slots is None:
            return self.go(fn, *args, name=name, labels=labels)
        self._check_open("Group.try_go()")
        coro = make_coro(fn, args, "Group.try_go()")
        if not self._slots.try_acquire():
            coro.close()
            return None
        return self._start(coro, _Slot(True), name, labels)

    async def go_when_free(
        self,
        fn: Callable[[*Ts], Awaitable[T]] | Coroutine[Any, Any, T],
        *args: *Ts,
        name: str | None = None,
        labels: dict[str, Any] | None = None,
    ) -> Goroutine[T]:
        """Park until a slot is free, then start a member in it (Go's ``g.Go`` under ``SetLimit``).

        What slows a producer down to the pace of the members.  Without a
        ``limit`` it is :meth:`go`.  A safe point.

        :raises TypeError: if ``fn`` is not an async function, or for a bad ``name`` / ``labels``.
        :raises RaggedError: if the group is done.
        :raises Cancelled: if the caller is cancelled while waiting (nothing was started).
        :raises RuntimeClosed: if the runtime is closed.
        :raises NotInGoroutine: outside a goroutine.
        :Called from: inside a goroutine (a member too, but a member waiting for a
            slot that only its own end frees would wait for ever).
        """
        current_g("Group.go_when_free()")
        if self._slots is None:
            await checkpoint()
            return self.go(fn, *args, name=name, labels=labels)
        self._check_open("Group.go_when_free()")
        coro = make_coro(fn, args, "Group.go_when_free()")
        try:
            await self._slots.acquire()
        except BaseException:
            coro.close()
            raise
        return self._start(coro, _Slot(True), name, labels)

    def _check_open(self, what: str) -> None:
        if self._closed:
            raise RaggedError(
                f"{what}: ragged.Group {self.name!r} is done (its block exited or wait() returned); "
                "start members while it is open, or make a new Group"
            )

    def _runtime(self, what: str) -> Runtime:
        """The runtime members start on: the group's, bound by the first goroutine that used it."""
        rt = self._rt
        if rt is None:
            m = getattr(tls, "m", None)
            if m is None:
                raise NotInGoroutine(
                    f"{what} from a plain thread needs a group that a goroutine has already used "
                    "(entered it, or started a member); start the group inside a goroutine first"
                )
            rt = self._rt = m.sched.runtime
        return rt

    def _start(self, coro: Any, slot: _Slot, name: str | None, labels: dict[str, Any] | None) -> Goroutine[Any]:
        """Spawn, count and register one member.  ``coro`` is closed (and the slot freed) if it cannot start.

        The spawn happens under ``_lock``, so the member is counted and in
        ``_members`` before it can run: a waiter never sees zero while it
        starts, ``wait()`` from the member itself is recognised, and a group
        already cancelling cancels it before anyone else can see it.  (The
        lock order ``_lock`` -> the scheduler's locks is the only one: no
        scheduler path takes a group's lock.)
        """
        slots = self._slots
        body = _in_slot(slots, slot, coro) if slots is not None else coro
        try:
            if labels is not None and not isinstance(labels, Mapping):
                raise TypeError(f"labels must be a dict, not {type(labels).__name__}")
            member_labels = {"group": self.name, **(labels or {})}
            rt = self._runtime("Group.go()")
            with self._lock:
                self._check_open("Group.go()")
                h = rt.go(body, name=name, labels=member_labels)
                self._n += 1
                self._members.add(h)
                if self._cancelling:
                    h.cancel()  # started after _abort's snapshot
        except BaseException:
            if body is not coro:
                body.close()
            coro.close()
            if slot.held and slots is not None:
                slots.release()
            raise
        h.add_done_callback(lambda h: self._member_done(h, coro, slot))
        return h

    # ------------------------------------------------------------ members ending

    def _member_done(self, h: Goroutine[Any], coro: Any, slot: _Slot) -> None:
        """Done callback of a member (any thread): record its failure, give back its slot, count it out.

        A failure aborts the group before the slot goes back, so the slot is
        not handed to a waiting member that the abort is about to cancel.
        """
        coro.close()  # a no-op if it ran; a member cancelled before it first ran never started it
        exc = h._exc  # the outcome, read once the goroutine is done (Runtime.submit does the same)
        if exc is not None:
            with self._lock:
                ours = isinstance(exc, Cancelled) and self._cancelling
                if not ours:
                    self._errors.append(exc)
            if not ours:
                exc.add_note(f"raised in goroutine {h.id} ({h.name}), a member of ragged.Group {self.name!r}")
                self._abort()
        if slot.held and self._slots is not None:
            slot.held = False
            self._slots.release()
        self._left(h)

    def _left(self, h: Goroutine[Any]) -> None:
        """Member ``h`` is gone: count it out; at zero, wake the waiters."""
        with self._lock:
            self._members.discard(h)
            self._n -= 1
            waiters = self._waiters.drain_claimed() if self._n == 0 else []
        for s in waiters:
            complete(s)

    def _abort(self) -> None:
        """Start cancelling, once: the context, every member, and the owner if it is in the block.

        The owner's cancel is requested under ``_lock``, in the same section
        that records it: once ``__aexit__`` has taken the lock and left the
        body, it knows whether a cancel was requested, and that it already
        was.  Members are cancelled outside the lock, from a snapshot; one
        started after the snapshot is cancelled by ``_start``, under the lock.
        """
        with self._lock:
            if self._cancelling:
                return
            self._cancelling = True
            members = list(self._members)
            if self._in_body and self._owner is not None:
                self._owner_cancelled = True
                self._owner.cancel()
        self._cancel_ctx()
        for m in members:
            m.cancel()

    # ------------------------------------------------------------ waiting

    async def _wait_members(self, own_pending: bool) -> tuple[Cancelled | None, bool]:
        """Park until no member is left, then mark the group done.

        If the waiting goroutine is cancelled meanwhile, the group aborts (its
        members are part of the waiter's work) and the wait goes on; that
        ``Cancelled`` is returned for the caller to re-raise.  ``own_pending``:
        a cancel the group requested for this goroutine (the owner) may still
        arrive; the first ``Cancelled`` is taken to be that one and dropped.
        Returns the ``Cancelled`` to re-raise (or None) and whether the group's
        own cancel is still pending.
        """
        g = current_g("Group.wait()")
        cancelled: Cancelled | None = None
        lock = self._lock
        while True:
            lock.acquire()
            if self._n == 0:
                self._closed = True
                lock.release()
                return cancelled, own_pending
            try:
                await park_on(self._waiters, lock, "ragged.Group.wait", Sudog(g))
            except Cancelled as err:
                if own_pending:
                    own_pending = False
                else:
                    cancelled = err
                    self._abort()

    def _outcome(self, extra: BaseException | None = None) -> BaseExceptionGroup[Any] | None:
        """The exception the group ends with: its members' failures (and ``extra``), or None."""
        with self._lock:
            errors = list(self._errors)
        if extra is not None:
            errors.append(extra)
        if not errors:
            return None
        return BaseExceptionGroup(f"unhandled errors in ragged.Group {self.name!r}", errors)

    async def wait(self) -> None:
        """Wait for every member; raise an ``ExceptionGroup`` of their failures (errgroup's ``Wait``).

        For groups used without ``async with`` (inside the block, its exit
        waits).  Cancels ``g.ctx`` once the members are done.  If the caller
        is cancelled while waiting, the members are cancelled too and waited
        for, then ``Cancelled`` is raised (unless members failed: then the
        ``ExceptionGroup``).  Calling it again returns (or raises) the same.
        A safe point.

        :raises ExceptionGroup: the members' exceptions, if any failed.
        :raises Cancelled: if the caller was cancelled and no member failed.
        :raises RaggedError: inside the group's own block, or from one of its members
            (it would wait for itself).
        :raises NotInGoroutine: outside a goroutine.
        :Called from: inside a goroutine that is not a member.
        """
        g = current_g("Group.wait()")
        with self._lock:
            if self._in_body:
                raise RaggedError("Group.wait() inside the group's own `async with` block: leaving the block waits")
            if g in self._members:
                raise RaggedError("Group.wait() from a member of the same group would wait for itself")
        self._runtime("Group.wait()")
        cancelled, _ = await self._wait_members(False)
        self._cancel_ctx()
        err = self._outcome()
        if err is not None:
            raise err from None
        if cancelled is not None:
            raise cancelled

    # ------------------------------------------------------------ the block

    async def __aenter__(self) -> Self:
        """Enter the block: the calling goroutine owns it.

        :raises RaggedError: if the group was entered before or is done.
        :raises NotInGoroutine: outside a goroutine.
        :Called from: the ``async with`` statement, inside a goroutine.
        """
        g = current_g("async with ragged.Group()")
        self._runtime("async with ragged.Group()")
        with self._lock:
            self._check_open("async with ragged.Group()")
            if self._owner is not None:
                raise RaggedError(f"ragged.Group {self.name!r} was already entered: use a new Group for each block")
            self._owner = g
            self._in_body = True
        return self

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        """Leave the block: wait for every member, then raise their failures (see the class).

        A ``KeyboardInterrupt`` or ``SystemExit`` from the body cancels the
        members, waits for them and goes on unchanged (as ``TaskGroup``'s
        does); a ``GeneratorExit`` (the goroutine's coroutine is being closed,
        at shutdown) cancels them and goes on at once: it must not await.

        :raises ExceptionGroup: the members' failures and the body's exception.
        :raises Cancelled: if the owner was cancelled from outside and no member failed.
        :Called from: the ``async with`` statement, in the goroutine that entered the block.
        """
        g = current_g("ragged.Group.__aexit__")
        with self._lock:
            self._in_body = False
            own = self._owner_cancelled  # a cancel of the owner requested by the group itself
        if isinstance(exc, GeneratorExit):
            self._abort()
            return False
        consumed = own and isinstance(exc, Cancelled)  # the body ended with the group's own cancel
        body_exc = None if consumed else exc
        if body_exc is not None:
            self._abort()
        if body_exc is not None and not isinstance(body_exc, Exception):
            await self._wait_members(False)  # a Cancelled meanwhile cannot outrank KeyboardInterrupt
            self._cancel_ctx()
            return False
        cancelled, own_pending = await self._wait_members(own and not consumed)
        if own_pending and g.cancel_pending:
            # Requested while the body ran but not delivered yet: take it here,
            # or it would hit the owner's next await after the block.
            try:
                await gosched()
            except Cancelled:
                pass
        self._cancel_ctx()
        if isinstance(body_exc, Cancelled):
            cancelled, body_exc = body_exc, None  # cancelled from outside: re-raised unless members failed
        err = self._outcome(body_exc)
        if err is not None:
            raise err from None
        if cancelled is not None:
            if cancelled is exc:
                return False
            raise cancelled
        return consumed  # swallow the group's own Cancelled (it only comes with member errors, raised above)


__all__ = ["Group"]
