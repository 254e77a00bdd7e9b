"""The network poller, its portable part: goroutines that wait on an fd park and hold no thread.

Go's shape (``runtime/netpoll.go``): this module is written once for every
platform; a *backend* talks to the OS.  Two backends, with the same small
interface, are chosen once when a runtime makes its poller
(``_netpoll_sched.TheBackend``):

* ``_netpoll_epoll.EpollBackend`` (Linux): ``select.epoll``, edge-triggered,
  as Go's ``netpoll_epoll.go``; each fd registered once for both directions
  on its first wait and never modified.
* ``_netpoll_selectors.SelectorsBackend`` (elsewhere: kqueue, poll, select):
  the standard library's ``selectors``, level-triggered; the interest of a
  direction is registered while a goroutine waits for it and kept after the
  wake-up (a connection read in a loop costs no system call per read), and
  the blocking poll drops the interest of a direction nobody waits for, so a
  ready fd never spins it.

A backend must define (Go's "a particular implementation must define the
following functions"):

``kind``                   ``"edge"`` or ``"level"`` (for dumps and tests; shared code never branches on it).
``__init__(brk_fd)``       make the OS poller, watching ``brk_fd`` for readability, level-triggered
                           (a non-blocking poll leaves a break unread for the M blocked in the poll).
``set_interest(pd, mask)`` make the OS's interest in ``pd.fd`` be ``mask`` (or what the backend keeps
                           instead: edge-triggered, both directions from the first wait on); store what
                           is registered in ``pd.events``, also on failure; raise :class:`NotPollable`
                           when the OS refuses.  Called with ``pd.lock`` and ``NetPoll.lock`` held.
``drop_idle(pd, mask)``    a blocking poll found ``mask``'s directions ready with nobody waiting: the
                           level-triggered backend drops their interest (``set_interest``), the
                           edge-triggered one keeps its one registration.  Same locks.
``poll(np, timeout, blocking, out)``  wait up to ``timeout`` (0: do not block; None: forever); for each
                           ready fd call ``np.netpollready(pd, mask, blocking, out)`` (Go's
                           ``netpollready``; ``mask`` may carry ``HUP``, which an edge-triggered
                           backend must report: the end of stream or an error stays readable
                           without a further edge), and for the break fd, if ``blocking``,
                           ``np.drain_brk()``.
                           Runs under ``NetPoll.poll_lock`` only; tolerates fds unregistered meanwhile
                           and a poller closed under it (returns nothing).
``close()``                close the OS poller.

The portable part:

* A **direction** is ``READ`` (0) or ``WRITE`` (1): an index into a
  :class:`PollDesc`'s per-direction lists; the interest mask of direction
  ``d`` is ``1 << d`` (the same bits as ``selectors.EVENT_READ``/``EVENT_WRITE``).
* A :class:`PollDesc` per fd (Go's ``pollDesc``) with, per direction, the
  waiting goroutine's :class:`~ragged._core._park.Sudog` (Go's ``rg``/``wg``),
  its timer, the **deadline** (the one place one is kept: a ``ragged.net``
  object makes its descriptor when it is made and sets deadlines on it before
  any runtime polls it) and a readiness a poll saw while nobody waited
  (``ready``, Go's ``pdReady``): the next wait consumes it and returns at once,
  so an edge between a failed read and the park is never lost.  Whoever wakes
  a waiter -- readiness seen by a poll, its timer, ``g.cancel()``, the close of
  the fd, the runtime's close -- first wins the sudog's claim, so each wait
  ends exactly once.
* A second goroutine waiting on the same fd in the same direction is refused
  with :class:`FdBusy` (in Go a fatal "double wait"); ``ragged.net``
  connections queue their readers and writers (Go's ``fdMutex``) so that never
  happens there.
* :func:`pollwait` (Go's ``poll_runtime_pollWait``), :func:`poll_set_deadline`
  (``poll_runtime_pollSetDeadline``), :func:`poll_close` (``pollUnblock`` +
  ``pollClose``) and :func:`poll_release` (a bare fd's wait is over) take the
  descriptor; it knows its poller once attached (``pd.np``).  Every fd leaves
  the poller by one path, :meth:`NetPoll.forget_locked`.
* The break fd (Go's ``netpollBreakRd``/``Wr``) is an
  :class:`~ragged._core._note.FdNote`: :meth:`NetPoll.brk` wakes it, the poll
  that sees it drains it.

Who polls, when, and how readied goroutines reach a P -- the scheduler's side
of the poller, and ``netpoll_of``, which makes it -- is in ``_netpoll_sched``.

Locks (their order is the rank table in ``_lockrank``): ``PollDesc.lock`` (the
waiter slots, deadlines, timers and interest of one fd), ``NetPoll.lock``
(the backend's registrations and the fd map: ``selectors`` is not
thread-safe by itself, and on the free-threaded build Ms really run in
parallel).  ``NetPoll.poll_lock`` is held
by whoever is inside the backend's ``poll``: one poller at a time.  The poll
itself runs under no other lock and tolerates fds unregistered meanwhile (a
stale event for a reused fd number is a spurious wake-up, which every caller
retries).
"""

from __future__ import annotations

import errno as _errno
import logging
import os
import threading
import time
import types
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Protocol

from ._errors import FdBusy, IOTimeout, NetClosed, NotPollable, RaggedError, RuntimeClosed
from ._lockrank import Rank, lock_maker, new_lock
from ._note import FdNote
from ._park import Sudog, parkable_g, ready
from ._timeout import clamp_wait
from ._traps import gopark

_new_pd_lock = lock_maker(Rank.POLLDESC, "PollDesc.lock")  # threading.Lock unless RAGGED_DEBUG

if TYPE_CHECKING:  # pragma: no cover
    from ._sched import Sched
    from ._timers import TimerEntry

_log = logging.getLogger("ragged")
_monotonic = time.monotonic

READ = 0
WRITE = 1
DIRS = (READ, WRITE)
BOTH = (1 << READ) | (1 << WRITE)  # an interest mask: both directions
HUP = 1 << 2  # in a poll's report: the peer hung up or the fd has an error (readable for good)
REASONS = ("IO wait read", "IO wait write")  # a parked goroutine's wait reason, by direction
_DIRS_OF = ((), (READ,), (WRITE,), (READ, WRITE)) * 2  # the directions of a reported mask
_VERBS = ("read", "write")


class Backend(Protocol):
    """What a poller backend defines; see the module docstring for the contract."""

    kind: str

    def set_interest(self, pd: PollDesc, mask: int) -> None: ...

    def drop_idle(self, pd: PollDesc, mask: int) -> None: ...

    def poll(self, np: NetPoll, timeout: float | None, blocking: bool, out: list[Sudog]) -> None: ...

    def close(self) -> None: ...


class PollDesc:
    """One fd known to the poller (Go's ``pollDesc``).  Fields under ``lock``.

    Lists indexed by direction (``READ``, ``WRITE``): ``waiter``, the waiting
    reader's / writer's sudog or None (Go's ``rg``/``wg``); ``timer``, the
    timer of that wait (``rt``/``wt``); ``deadline``, the read / write
    deadline (``time.monotonic()``; 0.0 for none; ``rd``/``wd``); ``ready``,
    a readiness a poll saw while nobody waited, for the next wait to consume
    (Go's ``pdReady``).  ``hup``: a poll reported a hang-up or an error (never
    cleared: a reader must not count on a further edge).  ``events``: the interest mask the backend holds now
    (0: not registered).  ``np``: the poller it is attached to, or None until
    a goroutine first waits on it (written once, under ``NetPoll.lock``).
    ``owner``: the ``ragged.net`` object that owns the fd (its ``_shutdown()``
    runs at runtime close), or None for a bare fd waited on by
    ``wait_readable``/``wait_writable``, which lives while ``refs`` waits use it.
    """

    __slots__ = (
        "fd", "lock", "np", "waiter", "timer", "deadline", "ready", "hup", "events", "closing", "owner", "refs"
    )  # fmt: skip

    def __init__(self, fd: int, owner: Any) -> None:
        self.fd = fd
        self.lock = _new_pd_lock()
        self.np: NetPoll | None = None
        self.waiter: list[Sudog | None] = [None, None]
        self.timer: list[TimerEntry | None] = [None, None]
        self.deadline = [0.0, 0.0]
        self.ready = [False, False]
        self.hup = False
        self.events = 0
        self.closing = False
        self.owner = owner
        self.refs = 0

    def __repr__(self) -> str:
        return f"<PollDesc fd={self.fd} events={self.events}{' closing' if self.closing else ''}>"


class NetPoll:
    """A runtime's poller: its backend, the fd map and the break note."""

    def __init__(self, sched: Sched, backend_class: Any) -> None:
        self.sched = sched
        self.lock = new_lock(Rank.NETPOLL, "NetPoll.lock")  # backend registrations, pds, nregistered, closed
        self.poll_lock = new_lock(Rank.POLL, "NetPoll.poll_lock")  # held by whoever is inside the backend's poll
        self.pds: dict[int, PollDesc] = {}
        self.nregistered = 0  # fds with interest now (a hint read without the lock)
        self.lastpoll = _monotonic()  # when a poll last ended; 0.0 while an M blocks in one
        self.closed = False
        self.brk_note = FdNote()
        self.backend: Backend = backend_class(self.brk_note.fileno())
        # Go's netpollWakeSig: set while a break is written and not yet read,
        # so that a burst of wake-ups costs one write.  Test-and-set = acquire(False).
        self._wake_sig = threading.Lock()

    def __repr__(self) -> str:
        return f"<NetPoll {self.backend.kind} fds={len(self.pds)} registered={self.nregistered}>"

    # ------------------------------------------------------------ break

    def brk(self) -> None:
        """Wake the M blocked in the poll, if any (Go's ``netpollBreak``).  Any thread, any lock."""
        if not self._wake_sig.acquire(False):
            return  # a break is already on its way
        try:
            self.brk_note.wakeup()
        except OSError:  # closed at shutdown: nobody polls any more
            pass

    def drain_brk(self) -> None:
        """The blocking poll saw the break fd readable: consume it, then allow the next break."""
        try:
            self.brk_note.clear()
        except OSError:
            pass
        try:
            self._wake_sig.release()
        except RuntimeError:
            pass

    # ------------------------------------------------------------ registration

    def open(self, pd: PollDesc) -> None:
        """Attach ``pd`` (owned by a ``ragged.net`` object) to this poller (Go's ``poll_runtime_pollOpen``).

        :raises FdBusy: if the fd is already known to this poller.
        :raises RuntimeClosed: once the poller is closed.
        """
        with self.lock:
            if self.closed:
                raise RuntimeClosed("the ragged Runtime was closed; its network poller is gone")
            if pd.fd in self.pds:
                raise FdBusy(
                    f"fd {pd.fd} is already in use by the network poller (another connection or a waiter); "
                    "wrap each socket once"
                )
            self.pds[pd.fd] = pd
            pd.np = self
            pd.refs += 1

    def open_fd(self, fd: int) -> PollDesc:
        """The descriptor of a bare ``fd`` for one more wait: the one the poller knows, or a new one.

        Pair with :func:`poll_release`.  :raises RuntimeClosed: once the poller is closed.
        """
        with self.lock:
            if self.closed:
                raise RuntimeClosed("the ragged Runtime was closed; its network poller is gone")
            pd = self.pds.get(fd)
            if pd is None:
                pd = self.pds[fd] = PollDesc(fd, None)
                pd.np = self
            pd.refs += 1
            return pd

    def set_interest_locked(self, pd: PollDesc, mask: int) -> None:
        """Make the backend's interest in ``pd.fd`` be ``mask``.  Requires ``pd.lock``.

        :raises NotPollable: when the OS refuses the fd (closed, or a regular
            file); ``pd.events`` then still says what the backend holds.
        :raises RuntimeClosed: once the poller is closed.
        """
        with self.lock:
            if self.closed:
                raise RuntimeClosed("the ragged Runtime was closed; its network poller is gone")
            self._set_interest_both_locked(pd, mask)

    def _set_interest_both_locked(self, pd: PollDesc, mask: int) -> None:
        """``set_interest_locked`` with ``NetPoll.lock`` held too: keeps ``nregistered`` right."""
        old = pd.events
        try:
            self.backend.set_interest(pd, mask)
        finally:
            self.nregistered += (pd.events != 0) - (old != 0)

    def forget_locked(self, pd: PollDesc) -> None:
        """The one way an fd leaves the poller: out of the fd map and the backend.
        Requires ``pd.lock`` and ``NetPoll.lock``.  Idempotent."""
        if self.pds.get(pd.fd) is pd:
            del self.pds[pd.fd]
        if pd.events and not self.closed:
            try:
                self._set_interest_both_locked(pd, 0)
            except NotPollable:
                pass  # closed under us: the kernel dropped it already
        pd.events = 0

    # ------------------------------------------------------------ waiter slots

    def arm_locked(self, pd: PollDesc, d: int, s: Sudog, when: float) -> None:
        """Start the timer of ``s``'s wait in direction ``d``, firing at ``when``.  Requires ``pd.lock``."""
        timers = self.sched.timers
        with timers.lock:
            e = timers.add_locked(when, self._deadline_impl, (pd, d, s))
        pd.timer[d] = e
        timers.poke_if_earlier(e)

    def _deadline_impl(self, arg: tuple[PollDesc, int, Sudog]) -> None:
        """Timer callback (Go's ``netpolldeadlineimpl``): the timeout or deadline of
        ``s``'s wait passed.  Wins the claim or does nothing.  Must not hold ``pd.lock``."""
        pd, d, s = arg
        with pd.lock:
            if pd.waiter[d] is not s or not s.try_claim():
                return
            self.clear_waiter_locked(pd, d)
        ready(s, None, IOTimeout("i/o timeout"))

    @staticmethod
    def take_locked(pd: PollDesc, d: int) -> TimerEntry | None:
        """Empty direction ``d``'s waiter slot; return its timer.  Requires ``pd.lock``."""
        e = pd.timer[d]
        pd.waiter[d] = pd.timer[d] = None
        return e

    def clear_waiter_locked(self, pd: PollDesc, d: int) -> TimerEntry | None:
        """Empty ``d``'s waiter slot and let the backend drop its interest; return its timer.
        Requires ``pd.lock``."""
        e = self.take_locked(pd, d)
        self._drop_idle_locked(pd, 1 << d)
        return e

    def _drop_idle_locked(self, pd: PollDesc, mask: int) -> None:
        """Nobody waits for ``mask``'s directions: the backend may drop their interest.  Requires ``pd.lock``."""
        if pd.events & mask and not pd.closing:
            with self.lock:
                if self.closed:
                    return
                old = pd.events
                try:
                    self.backend.drop_idle(pd, mask)
                except NotPollable:
                    pass  # the fd went away under us: nothing is registered to drop
                finally:
                    self.nregistered += (pd.events != 0) - (old != 0)

    def stop_timers(self, entries: list[TimerEntry]) -> None:
        """Stop the timers of waits that ended some other way."""
        for e in entries:
            self.sched.timers.stop(e)

    # ------------------------------------------------------------ polling

    def netpoll(self, timeout: float | None) -> list[Sudog]:
        """Poll once (``timeout`` 0: do not block; None: forever); claim and return the
        waiters of the fds found ready.  Requires ``poll_lock``.

        A ``timeout`` beyond ``MAX_WAIT`` (about 11.6 days) is clamped to it:
        the caller (the timer waiter in ``stopm``) loops and polls again.

        The caller readies them (``mark_ready`` then queue).  A direction that
        is ready with no live waiter is recorded in ``PollDesc.ready``: usually
        its goroutine was woken by an earlier poll and has not run yet, or has
        not got to its wait.  A non-blocking poll keeps the interest (dropping
        it would cost a system call to drop and one to add it back, per round
        trip, whenever sysmon or another M polls while a batch is still
        queued); only the blocking poll, which would otherwise spin on a
        level-triggered fd, empties a stale slot and lets the backend drop it.
        """
        out: list[Sudog] = []
        # A backend's wait takes at most what the kernel does (epoll: an int of ms): a huge
        # timeout overflows there, so clamp it as Go does; the caller (stopm) polls again.
        self.backend.poll(self, clamp_wait(timeout), timeout != 0, out)
        return out

    def netpollready(self, pd: PollDesc, mask: int, blocking: bool, out: list[Sudog]) -> None:
        """A poll found ``pd`` ready for ``mask``'s directions: claim its waiters into ``out``
        (Go's ``netpollready``), or record the readiness for the next wait.  Takes ``pd.lock``.
        """
        drop = 0
        timers = None
        with pd.lock:
            if pd.closing:
                return
            if mask & HUP:
                pd.hup = True
            for d in _DIRS_OF[mask]:
                s = pd.waiter[d]
                if s is not None and s.try_claim():
                    e = pd.timer[d]
                    pd.waiter[d] = pd.timer[d] = None
                    out.append(s)  # interest stays: the reader will most likely wait again
                else:
                    pd.ready[d] = True  # for the next wait to consume
                    if not blocking:
                        continue
                    e = self.take_locked(pd, d)  # a stale waiter's timer, if any
                    drop |= 1 << d
                if e is not None:
                    if timers is None:
                        timers = [e]
                    else:
                        timers.append(e)
            if drop:
                self._drop_idle_locked(pd, drop)
        if timers:
            self.stop_timers(timers)

    # ------------------------------------------------------------ shutdown

    def close(self) -> None:
        """Runtime close: evict every fd, close the ``ragged.net`` objects' fds, close the backend.

        Call once no M can be inside a poll any more (after the Ms stopped).
        """
        with self.lock:
            pds = list(self.pds.values())
        err = NetClosed("use of closed network connection (the ragged Runtime was closed)")
        for pd in pds:
            poll_close(pd, err)
            owner = pd.owner
            if owner is not None:
                try:
                    owner._shutdown()
                except Exception:  # noqa: BLE001 - close() must go on
                    _log.warning("ragged: closing %r at runtime close failed", owner, exc_info=True)
        with self.lock:
            self.closed = True
            self.backend.close()
            self.brk_note.close()


def not_pollable(fd: int, err: OSError) -> NotPollable:
    """The named error for an fd the OS refused to poll (for the backends)."""
    if err.errno == _errno.EBADF:
        why = "it is not an open file descriptor (closed already?)"
    elif err.errno == _errno.EPERM:
        why = "this kind of file cannot be polled (a regular file or directory is always ready; just read it)"
    else:
        why = os.strerror(err.errno or 0)
    return NotPollable(f"fd {fd} cannot be waited on: {why}", err.errno)


# ---------------------------------------------------------------- the descriptor's operations


def poll_close(pd: PollDesc, err: BaseException) -> None:
    """Close ``pd``: wake its waiters with ``err``, drop its interest and timers, forget it.

    Go's ``pollUnblock`` + ``pollClose``.  Idempotent; ``pd`` need not be
    attached yet.  After it, waits on ``pd`` raise ``NetClosed`` at once; the
    owner closes the fd afterwards.  Takes ``pd.lock``, then ``NetPoll.lock``.
    """
    woken: list[Sudog] = []
    with pd.lock:
        if pd.closing:
            return
        pd.closing = True
        np = pd.np
        if np is None:
            return  # never waited on: nothing to wake or forget
        for s in pd.waiter:
            if s is not None and s.try_claim():
                woken.append(s)
        timers = [e for e in pd.timer if e is not None]
        pd.waiter = [None, None]
        pd.timer = [None, None]
        with np.lock:
            np.forget_locked(pd)
    np.stop_timers(timers)
    for s in woken:
        ready(s, None, err)


def poll_release(pd: PollDesc) -> None:
    """A bare wait on ``pd`` is over: forget a bare fd nobody else waits on.

    A bare fd belongs to the caller, who may close it as soon as the wait
    returns, so it leaves the poller now (an owned fd keeps its interest).
    """
    np = pd.np
    assert np is not None  # open_fd attached it
    with pd.lock, np.lock:
        pd.refs -= 1
        if pd.refs == 0 and pd.owner is None and not np.closed:
            np.forget_locked(pd)


def poll_set_deadline(pd: PollDesc, dirs: tuple[int, ...], deadline: float) -> None:
    """Set ``pd``'s deadline (``time.monotonic()``; 0.0 clears) for the directions ``dirs``.

    Go's ``poll_runtime_pollSetDeadline``.  A waiter already parked gets its
    timer moved; a deadline in the past wakes it at once with
    :class:`IOTimeout`.  ``pd`` need not be attached yet (nobody waits then).
    """
    woken: list[Sudog] = []
    old: list[TimerEntry] = []
    now = _monotonic()
    with pd.lock:
        if pd.closing:
            return
        np = pd.np
        for d in dirs:
            pd.deadline[d] = deadline
            s, e = pd.waiter[d], pd.timer[d]
            pd.timer[d] = None
            if e is not None:
                old.append(e)
            if s is None or s.claim.locked():
                continue
            assert np is not None  # a waiter means an attached descriptor
            if deadline and deadline <= now:
                if s.try_claim():
                    np.clear_waiter_locked(pd, d)
                    woken.append(s)
            elif deadline:
                np.arm_locked(pd, d, s, deadline)
    if np is not None:
        np.stop_timers(old)
    for s in woken:
        ready(s, None, IOTimeout("i/o timeout (deadline passed)"))


@types.coroutine
def pollwait(pd: PollDesc, d: int, timeout: float | None) -> Generator[Any, Any, bool]:
    """Park the current goroutine until ``pd.fd`` is ready in direction ``d`` (Go's ``pollWait``).

    ``pd`` is attached to a poller.  Ends with readiness (returns; it may be
    spurious, so retry the I/O), or raises :class:`IOTimeout` (``timeout``
    seconds or the fd's deadline), :class:`NetClosed` (the fd was closed
    meanwhile), ``Cancelled``, or :class:`FdBusy` (another goroutine waits on
    it in direction ``d`` already).  A readiness some poll recorded while
    nobody waited (``PollDesc.ready``) is consumed and returns at once,
    without parking: the result is True if the goroutine parked, False if not.
    """
    reason = REASONS[d]
    g = parkable_g(reason)
    np = pd.np
    assert np is not None  # attached by the caller
    if g.sched is not np.sched:
        raise RaggedError(
            "this connection belongs to another ragged Runtime's poller; use it from goroutines of the "
            "runtime that created it"
        )
    lock = pd.lock
    lock.acquire()
    try:
        if pd.closing:
            raise NetClosed("use of closed network connection")
        cur = pd.waiter[d]
        if cur is not None and not cur.claim.locked():
            raise FdBusy(
                f"fd {pd.fd}: another goroutine already waits to {_VERBS[d]}; one waiter per fd and "
                "direction (serialise the waits, or use ragged.net, which queues them)"
            )
        deadline = pd.deadline[d]
        if timeout is not None or deadline:
            now = _monotonic()
            if timeout is not None and (not deadline or now + timeout < deadline):
                deadline = now + timeout
            if deadline <= now:
                raise IOTimeout("i/o timeout")
        if pd.ready[d]:
            pd.ready[d] = False  # a readiness nobody was waiting for: no need to park
            lock.release()
            return False
        if not pd.events & (1 << d):
            np.set_interest_locked(pd, pd.events | (1 << d))
        s = Sudog(g)
        s.reason = reason
        if cur is not None:
            stale = np.take_locked(pd, d)
            if stale is not None:
                np.sched.timers.stop(stale)  # the timer of a waiter someone else already woke
        pd.waiter[d] = s
        if deadline:
            np.arm_locked(pd, d, s, deadline)
    except BaseException:
        lock.release()
        raise
    try:
        yield from gopark(lock.release, reason, s)
        return True
    except BaseException:
        # Cancelled (the canceller won the claim without pd.lock), or woken
        # with an error by a claimer that already cleared the slot: either
        # way make sure the slot, its timer and its interest are gone now.
        with lock:
            e = np.clear_waiter_locked(pd, d) if pd.waiter[d] is s else None
        if e is not None:
            np.sched.timers.stop(e)
        raise
