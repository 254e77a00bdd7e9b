"""The network poller: goroutines that wait on an fd park and hold no thread (Go's netpoll).

Go's shape (``runtime/netpoll.go``, ``netpoll_epoll.go``): ``select.epoll``,
edge-triggered, on Linux; the standard library's ``selectors`` elsewhere
(kqueue on BSD and macOS); one poller per runtime, made on first use:

* A :class:`PollDesc` per fd (Go's ``pollDesc``) with one waiter slot per
  direction, ``waiter[DIR[READ]]`` and ``waiter[DIR[WRITE]]`` (Go's ``rg``
  and ``wg``): the :class:`~ragged._core._park.Sudog` of the goroutine parked for
  readability or writability ("IO wait read" / "IO wait write").  Whoever
  wakes it -- readiness seen by a poll, its timeout or deadline timer,
  ``g.cancel()``, the close of the fd, the runtime's close -- first wins the
  sudog's claim, so each wait ends exactly once.
* A second goroutine waiting on the same fd in the same direction is refused
  with :class:`FdBusy` (in Go it is a fatal "double wait"); a waiter whose
  claim someone already won is stale and simply replaced.  ``ragged.net``
  connections queue their readers and writers (Go's ``fdMutex``) so that never
  happens there.
* Readiness is edge-triggered on Linux, as in Go: ``select.epoll`` directly
  (``selectors`` cannot ask for ``EPOLLET``), each fd registered once for
  both directions on its first wait and never modified.  A poll that reports
  a direction nobody waits for records it in ``PollDesc.ready`` (Go's
  ``pdReady``); the next wait in that direction consumes it and returns at
  once, so an edge that came between a failed read and the park is never
  lost.  A poll reports each fd once per edge, so goroutines readied but not
  yet run are not reported again by every poll.
* Elsewhere (kqueue, poll, select through ``selectors``) readiness is
  level-triggered.  Interest is registered when a goroutine waits and kept
  after the wake-up, so a connection that is read in a loop costs no
  ``epoll_ctl`` per read; the blocking poll drops the interest of a
  direction nobody waits for, so a ready fd never spins it.  The same
  ``ready`` record serves there too.

Who polls, when, and how readied goroutines reach a P -- the scheduler's side
of the poller, and ``netpoll_of``, which makes it -- is in ``_netpoll_sched``.

Locks (their order is the table in ``_lockrank``): ``PollDesc.lock`` (the
waiter slots, deadlines, timers and interest of one fd), ``NetPoll.lock``
(the selector's registrations and the fd map: ``selectors`` is not
thread-safe by itself, and on the free-threaded build Ms really run in
parallel).  ``NetPoll.poll_lock`` is held
by whoever is inside ``select()``: one poller at a time.  ``select()``
itself runs under no other lock and tolerates fds unregistered meanwhile
(``selectors`` skips fds it no longer knows; a stale event for a reused fd
number is a spurious wake-up, which every caller retries).
"""

from __future__ import annotations

import errno as _errno
import logging
import os
import select
import selectors
import sys
import threading
import time
import types
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from ._errors import FdBusy, IOTimeout, NetClosed, NotPollable, RaggedError, RuntimeClosed
from ._lockrank import Rank, lock_maker, new_lock
from ._park import Sudog, parkable_g, ready
from ._traps import gopark

_new_pd_lock = lock_maker(Rank.POLLDESC, "PollDesc.lock")  # threading.Lock unless RAGGED_DEBUG

if TYPE_CHECKING:  # pragma: no cover
    from ._sched import Sched
    from ._timers import TimerEntry

_log = logging.getLogger("ragged")
_monotonic = time.monotonic

READ = selectors.EVENT_READ
WRITE = selectors.EVENT_WRITE
REASONS = {READ: "IO wait read", WRITE: "IO wait write"}
DIR = {READ: 0, WRITE: 1}  # a direction's index in PollDesc's pairs (waiter, timer, deadline)

_ONE = (1).to_bytes(8, sys.byteorder)  # what an eventfd write takes

# Edge-triggered epoll where the platform has it; tests set this False to run
# the level-triggered ``selectors`` poller on Linux too.
EDGE_TRIGGERED = hasattr(select, "epoll")
if EDGE_TRIGGERED:
    _ET_MASK = select.EPOLLIN | select.EPOLLOUT | select.EPOLLRDHUP | select.EPOLLET
    # What readies a reader / a writer: an error or a hang-up ends both waits (the I/O then reports it).
    _R_MASK = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR
    _W_MASK = select.EPOLLOUT | select.EPOLLHUP | select.EPOLLERR


class PollDesc:
    """One fd known to the poller (Go's ``pollDesc``).  Fields under ``lock``.

    Pairs indexed by direction (``DIR[READ]``, ``DIR[WRITE]``): ``waiter``,
    the waiting reader's / writer's sudog or None (Go's ``rg``/``wg``);
    ``timer``, the timer of the current reader's / writer's wait
    (``rt``/``wt``); ``deadline``, the read / write deadline
    (``time.monotonic()``; 0.0 for none; ``rd``/``wd``); ``ready``, a
    readiness a poll saw while nobody waited, for the next wait to consume
    (Go's ``pdReady``).  ``events``: the interest registered with the
    selector now (0: not registered; edge-triggered, READ|WRITE once registered).
    ``owner``: the ``ragged.net`` object that owns the fd (its ``_shutdown()``
    runs at runtime close), or None for a bare fd waited on by
    ``wait_readable``/``wait_writable``, which lives while ``refs`` waits use it.
    """

    __slots__ = ("fd", "lock", "waiter", "timer", "deadline", "ready", "events", "closing", "owner", "refs")

    def __init__(self, fd: int, owner: Any) -> None:
        self.fd = fd
        self.lock = _new_pd_lock()
        self.waiter: list[Sudog | None] = [None, None]
        self.timer: list[TimerEntry | None] = [None, None]
        self.deadline = [0.0, 0.0]
        self.ready = [False, False]
        self.events = 0
        self.closing = False
        self.owner = owner
        self.refs = 0

    def __repr__(self) -> str:
        return f"<PollDesc fd={self.fd} events={self.events}{' closing' if self.closing else ''}>"


class NetPoll:
    """A runtime's poller: the selector (an edge-triggered epoll, or ``selectors``), the fd map
    and the break fd.  ``edge``: edge-triggered (default: where ``select.epoll`` exists)."""

    def __init__(self, sched: Sched, edge: bool | None = None) -> None:
        self.sched = sched
        self.lock = new_lock(Rank.NETPOLL, "NetPoll.lock")  # selector registrations, pds, nregistered, closed
        self.poll_lock = new_lock(Rank.POLL, "NetPoll.poll_lock")  # held by whoever is inside select()
        self.edge = EDGE_TRIGGERED if edge is None else edge
        # Exactly one of the two: an edge-triggered epoll, or a level-triggered selector.
        self.ep: Any = None
        self.sel: Any = None
        self.pds: dict[int, PollDesc] = {}
        self.nregistered = 0  # fds with interest now (a hint read without the lock)
        self.lastpoll = _monotonic()  # when a poll last ended; 0.0 while an M blocks in one
        self.closed = False
        if hasattr(os, "eventfd"):
            self._brk_r = self._brk_w = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        else:  # pragma: no cover - BSD and macOS
            self._brk_r, self._brk_w = os.pipe()
            os.set_blocking(self._brk_r, False)
            os.set_blocking(self._brk_w, False)
        # The break fd is level-triggered in both kinds: a non-blocking poll
        # leaves it unread for the M blocked in the poll, which must still see it.
        if self.edge:
            self.ep = select.epoll()
            self.ep.register(self._brk_r, select.EPOLLIN)
        else:
            self.sel = selectors.DefaultSelector()
            self.sel.register(self._brk_r, READ, None)
        # Go's netpollWakeSig: set while a break is written and not yet read,
        # so that a burst of wake-ups costs one write.  Test-and-set = acquire(False).
        self._wake_sig = threading.Lock()

    # ------------------------------------------------------------ break

    def brk(self) -> None:
        """Wake the M blocked in the poll, if any (Go's ``netpollBreak``).  Any thread, any lock."""
        if not self._wake_sig.acquire(False):
            return  # a break is already on its way
        try:
            os.write(self._brk_w, _ONE)
        except OSError:  # closed at shutdown, or a pipe that is full: a break is pending anyway
            pass

    def _drain_brk(self) -> None:
        """The poller saw the break fd readable: consume it, then allow the next break."""
        try:
            os.read(self._brk_r, 64)
        except OSError:
            pass
        try:
            self._wake_sig.release()
        except RuntimeError:
            pass

    # ------------------------------------------------------------ registration

    def set_events_locked(self, pd: PollDesc, events: int) -> None:
        """Make the selector's interest in ``pd.fd`` be ``events``.  Requires ``pd.lock``.

        Raises :class:`NotPollable` when the OS refuses the fd (closed, or a
        regular file); ``pd.events`` then still says what the selector holds.
        """
        if events != pd.events:
            with self.lock:
                self._set_events_sel_locked(pd, events)

    def _set_events_sel_locked(self, pd: PollDesc, events: int) -> None:
        """``set_events_locked`` under the selector's lock: requires ``pd.lock`` and
        ``NetPoll.lock``, and ``events`` != ``pd.events``.

        Edge-triggered, an fd is registered for both directions or not at all.
        """
        old = pd.events
        if self.closed:
            raise RuntimeClosed("the ragged Runtime was closed; its network poller is gone")
        if self.edge:
            try:
                if old == 0:
                    self.ep.register(pd.fd, _ET_MASK)
                    self.nregistered += 1
                    events = READ | WRITE
                elif events == 0:
                    self.ep.unregister(pd.fd)
                    self.nregistered -= 1
                else:
                    return
            except OSError as err:
                if old != 0:  # the fd went away (closed): it is not registered any more
                    self.nregistered -= 1
                    pd.events = 0
                raise _not_pollable(pd.fd, err) from None
            pd.events = events
            return
        try:
            if old == 0:
                self.sel.register(pd.fd, events, pd)
                self.nregistered += 1
            elif events == 0:
                self.sel.unregister(pd.fd)
                self.nregistered -= 1
            else:
                self.sel.modify(pd.fd, events, pd)
        except OSError as err:
            # pd.events is written only after a successful call, so it is
            # still ``old`` -- unless a refused modify made selectors drop
            # the fd's key (it does; a refused register never added it):
            # then the fd is no longer registered, and the count and
            # pd.events must say so.
            if old != 0 and pd.fd not in self.sel.get_map():
                self.nregistered -= 1
                pd.events = 0
            raise _not_pollable(pd.fd, err) from None
        except (KeyError, ValueError) as err:  # selectors refused before changing anything
            raise NotPollable(f"fd {pd.fd} cannot be polled: {err}") from None
        pd.events = events

    def open(self, fd: int, owner: Any) -> PollDesc:
        """The poll descriptor of ``fd``: a new one for ``owner`` (a ``ragged.net`` object), or,
        with ``owner`` None, the existing one (counted in ``refs``) or a new bare one.

        Raises :class:`FdBusy` if ``owner`` is given and the fd is already known.
        """
        with self.lock:
            if self.closed:
                raise RuntimeClosed("the ragged Runtime was closed; its network poller is gone")
            pd = self.pds.get(fd)
            if pd is not None and owner is not None:
                raise FdBusy(
                    f"fd {fd} is already in use by the network poller (another connection or a waiter); "
                    "wrap each socket once"
                )
            if pd is None:
                pd = self.pds[fd] = PollDesc(fd, owner)
            pd.refs += 1
            return pd

    def release(self, pd: PollDesc) -> None:
        """A bare wait on ``pd`` is over: forget a bare fd nobody else waits on.

        A bare fd belongs to the caller, who may close it as soon as the wait
        returns, so it leaves the selector now (an owned fd keeps its interest).
        """
        with pd.lock, self.lock:
            pd.refs -= 1
            if pd.refs > 0 or pd.owner is not None or self.closed:
                return
            if self.pds.get(pd.fd) is pd:
                del self.pds[pd.fd]
            if pd.events:
                try:
                    self._set_events_sel_locked(pd, 0)
                except NotPollable:
                    pass

    def evict(self, pd: PollDesc, err: BaseException) -> None:
        """Close ``pd``: wake its waiters with ``err``, drop its interest and timers, forget it.

        Go's ``pollUnblock`` + ``pollClose``.  Idempotent.  After it, waits on
        ``pd`` raise ``NetClosed`` at once; the owner closes the fd afterwards.
        """
        woken: list[Sudog] = []
        timers: list[TimerEntry] = []
        with pd.lock:
            if pd.closing:
                return
            pd.closing = True
            for s in pd.waiter:
                if s is not None and s.try_claim():
                    woken.append(s)
            timers = [e for e in pd.timer if e is not None]
            pd.waiter = [None, None]
            pd.timer = [None, None]
            with self.lock:
                if self.pds.get(pd.fd) is pd:
                    del self.pds[pd.fd]
                if pd.events and not self.closed:
                    try:
                        if self.ep is not None:
                            self.ep.unregister(pd.fd)
                        else:
                            self.sel.unregister(pd.fd)
                    except (OSError, KeyError, ValueError):
                        pass  # closed under us: the kernel dropped it already
                    self.nregistered -= 1
                pd.events = 0
        stop_timers(self.sched, timers)
        for s in woken:
            ready(s, None, err)

    # ------------------------------------------------------------ deadlines

    def set_deadline(self, pd: PollDesc, mode: int, deadline: float) -> None:
        """Set ``pd``'s read and/or write deadline (``mode`` READ|WRITE bits; 0.0 clears).

        A waiter already parked gets its timer moved; a deadline in the past
        wakes it at once with :class:`IOTimeout` (Go's ``pollSetDeadline``).
        """
        woken: list[Sudog] = []
        old: list[TimerEntry] = []
        now = _monotonic()
        with pd.lock:
            if pd.closing:
                return
            for bit in (READ, WRITE):
                if not mode & bit:
                    continue
                i = DIR[bit]
                pd.deadline[i] = deadline
                s, e = pd.waiter[i], pd.timer[i]
                pd.timer[i] = None
                if e is not None:
                    old.append(e)
                if s is None or s.claim.locked():
                    continue
                if deadline and deadline <= now:
                    if s.try_claim():
                        self._clear_waiter_locked(pd, bit)
                        woken.append(s)
                elif deadline:
                    self._arm_locked(pd, bit, s, deadline)
        stop_timers(self.sched, old)
        for s in woken:
            ready(s, None, IOTimeout("i/o timeout (deadline passed)"))

    def _arm_locked(self, pd: PollDesc, bit: int, s: Sudog, when: float) -> None:
        """Start the timer of ``s``'s wait, firing at ``when``.  Requires ``pd.lock``."""
        timers = self.sched.timers
        with timers.lock:
            e = timers.add_locked(when, self._deadline_impl, (pd, bit, s))
        pd.timer[DIR[bit]] = e
        timers.poke_if_earlier(e)

    def _deadline_impl(self, arg: tuple[PollDesc, int, Sudog]) -> None:
        """Timer callback (Go's ``netpolldeadlineimpl``): the timeout or deadline of
        ``s``'s wait passed.  Wins the claim or does nothing.  Must not hold ``pd.lock``."""
        pd, bit, s = arg
        with pd.lock:
            if pd.waiter[DIR[bit]] is not s or not s.try_claim():
                return
            self._clear_waiter_locked(pd, bit)
        ready(s, None, IOTimeout("i/o timeout"))

    def _take_locked(self, pd: PollDesc, bit: int) -> tuple[Sudog | None, TimerEntry | None]:
        """Empty ``bit``'s waiter slot; return what was in it and its timer.  Requires ``pd.lock``."""
        i = DIR[bit]
        s, e = pd.waiter[i], pd.timer[i]
        pd.waiter[i] = pd.timer[i] = None
        return s, e

    def _drop_locked(self, pd: PollDesc, bits: int) -> None:
        """Drop the interest in ``bits`` (nobody waits for them).  Requires ``pd.lock``.

        Level-triggered only: an edge-triggered fd keeps its one registration.
        """
        if pd.events & bits and not pd.closing and not self.edge:
            try:
                self.set_events_locked(pd, pd.events & ~bits)
            except (NotPollable, RuntimeClosed):
                pass  # the fd went away under us: nothing is registered to drop

    def _clear_waiter_locked(self, pd: PollDesc, bit: int) -> TimerEntry | None:
        """Empty ``bit``'s waiter slot and drop its interest; return its timer.  Requires ``pd.lock``."""
        e = self._take_locked(pd, bit)[1]
        self._drop_locked(pd, bit)
        return e

    # ------------------------------------------------------------ polling

    def netpoll(self, timeout: float | None) -> list[Sudog]:
        """Poll once (``timeout`` 0: do not block; None: forever); claim and return the
        waiters of the fds found ready.  Requires ``poll_lock``.

        The caller readies them (``mark_ready`` then queue).  A direction that
        is ready with no live waiter is recorded in ``PollDesc.ready``: usually
        its goroutine was woken by an earlier poll and has not run yet, or has
        not got to its wait.  Level-triggered, the interest stays for a
        non-blocking poll (dropping it would cost an ``epoll_ctl`` to drop and
        one to add it back, per round trip, whenever sysmon or another M polls
        while a batch is still queued); only the blocking poll, which would
        otherwise spin on it, drops it and empties a stale slot.
        """
        blocking = timeout != 0
        out: list[Sudog] = []
        if self.ep is not None:
            try:
                evs = self.ep.poll(-1.0 if timeout is None else timeout)
            except (OSError, ValueError):  # closed under us at shutdown
                return []
            pds = self.pds
            brk = self._brk_r
            for fd, m in evs:
                if fd == brk:
                    if blocking:
                        self._drain_brk()
                    continue
                # pds[fd], not pds.get(fd): on 3.13t, dict.get with int keys
                # takes the dict's lock when the value belongs to another
                # thread, as every PollDesc made by another M does (about 6µs
                # a call, measured; a subscript stays lock-free).
                try:
                    pd = pds[fd]
                except KeyError:
                    continue  # evicted since the poll returned
                ev = (READ if m & _R_MASK else 0) | (WRITE if m & _W_MASK else 0)
                self._netpollready(pd, ev, blocking, out)
        else:
            try:
                events = self.sel.select(timeout)
            except (OSError, ValueError):  # closed under us at shutdown
                return []
            for key, ev in events:
                pd = key.data
                if pd is None:
                    # A break is for the M blocked in the poll: a non-blocking
                    # poll must leave it for that M, or the M sleeps on (Go too).
                    if blocking:
                        self._drain_brk()
                    continue
                self._netpollready(pd, ev, blocking, out)
        return out

    def _netpollready(self, pd: PollDesc, ev: int, blocking: bool, out: list[Sudog]) -> None:
        """A poll found ``pd`` ready for ``ev`` (READ|WRITE bits): claim its waiters into ``out``
        (Go's ``netpollready``), or record the readiness for the next wait.  Takes ``pd.lock``.
        """
        drop = 0
        timers = []
        with pd.lock:
            if pd.closing:
                return
            for bit in (READ, WRITE):
                if not ev & bit:
                    continue
                i = DIR[bit]
                s = pd.waiter[i]
                if s is not None and s.try_claim():
                    e = self._take_locked(pd, bit)[1]
                    out.append(s)  # interest stays: the reader will most likely wait again
                else:
                    pd.ready[i] = True  # for the next wait to consume
                    if not blocking or self.edge:
                        continue
                    e = self._take_locked(pd, bit)[1]  # a stale waiter's timer, if any
                    drop |= bit  # level-triggered: nobody (live) waits, stop reporting it
                if e is not None:
                    timers.append(e)
            if drop:
                self._drop_locked(pd, drop)
        if timers:
            stop_timers(self.sched, timers)

    # ------------------------------------------------------------ shutdown

    def close(self) -> None:
        """Runtime close: evict every fd, close the ``ragged.net`` objects' fds, close the selector.

        Call once no M can be inside a poll any more (after the Ms stopped).
        """
        with self.lock:
            pds = list(self.pds.values())
        err = NetClosed("use of closed network connection (the ragged Runtime was closed)")
        for pd in pds:
            self.evict(pd, err)
            owner = pd.owner
            if owner is not None:
                try:
                    owner._shutdown()
                except Exception:  # noqa: BLE001 - close() must go on
                    _log.warning("ragged: closing %r at runtime close failed", owner, exc_info=True)
        with self.lock:
            self.closed = True
            (self.ep if self.ep is not None else self.sel).close()
            for fd in {self._brk_r, self._brk_w}:
                try:
                    os.close(fd)
                except OSError:
                    pass


def _not_pollable(fd: int, err: OSError) -> NotPollable:
    """The named error for an fd the OS refused to poll."""
    if err.errno == _errno.EBADF:
        why = "it is not an open file descriptor (closed already?)"
    elif err.errno == _errno.EPERM:
        why = "this kind of file cannot be polled (a regular file or directory is always ready; just read it)"
    else:
        why = os.strerror(err.errno or 0)
    return NotPollable(f"fd {fd} cannot be waited on: {why}", err.errno)


def stop_timers(sched: Sched, entries: list[TimerEntry]) -> None:
    """Stop the timers of waits that ended some other way."""
    for e in entries:
        sched.timers.stop(e)


# ---------------------------------------------------------------- the wait


@types.coroutine
def pollwait(np: NetPoll, pd: PollDesc, bit: int, timeout: float | None) -> Generator[Any, Any, bool]:
    """Park the current goroutine until ``pd.fd`` is ready for ``bit`` (Go's ``pollWait``).

    Ends with readiness (returns; it may be spurious, so retry the I/O), or
    raises :class:`IOTimeout` (``timeout`` seconds or the fd's deadline),
    :class:`NetClosed` (the fd was closed meanwhile), ``Cancelled``, or
    :class:`FdBusy` (another goroutine waits on it for ``bit`` already).
    A readiness some poll recorded while nobody waited (``PollDesc.ready``)
    is consumed and returns at once, without parking: the result is True if
    the goroutine parked, False if it did not.
    """
    reason = REASONS[bit]
    g = parkable_g(reason)
    if g.sched is not np.sched:
        raise RaggedError(
            "this connection belongs to another ragged Runtime's poller; use it from goroutines of the "
            "runtime that created it"
        )
    i = DIR[bit]
    lock = pd.lock
    lock.acquire()
    try:
        if pd.closing:
            raise NetClosed("use of closed network connection")
        cur = pd.waiter[i]
        if cur is not None and not cur.claim.locked():
            raise FdBusy(
                f"fd {pd.fd}: another goroutine already waits to {'read' if bit == READ else 'write'}; "
                "one waiter per fd and direction (serialise the waits, or use ragged.net, which queues them)"
            )
        deadline = pd.deadline[i]
        if timeout is not None:
            t = _monotonic() + timeout
            if not deadline or t < deadline:
                deadline = t
        if deadline and deadline <= _monotonic():
            raise IOTimeout("i/o timeout")
        if pd.ready[i]:
            pd.ready[i] = False  # a readiness nobody was waiting for: no need to park
            lock.release()
            return False
        if not pd.events & bit:
            np.set_events_locked(pd, pd.events | bit)
        s = Sudog(g)
        s.reason = reason
        stale = np._take_locked(pd, bit)[1] if cur is not None else None
        if stale is not None:
            np.sched.timers.stop(stale)  # the timer of a waiter someone else already woke
        pd.waiter[i] = s
        if deadline:
            np._arm_locked(pd, bit, s, deadline)
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
            e = np._clear_waiter_locked(pd, bit) if pd.waiter[i] is s else None
        if e is not None:
            np.sched.timers.stop(e)
        raise
