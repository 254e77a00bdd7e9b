"""The scheduler's side of the network poller: who polls, when, and what becomes of the goroutines it readies.

Go keeps this half in ``runtime/proc.go``, beside its callers:
``findRunnable``'s poll, the M blocked in ``netpoll``, ``injectglist``,
``wakeNetPoller``, sysmon's poll, and in ``netpoll.go`` the two hooks the rest
of the runtime calls (``netpollGenericInit``, ``netpollAnyWaiters``).
ragged's ``proc.go`` is spread over ``_proc``, ``_sched``, ``_sysmon`` and
``_runtime``, so the hooks they share live here, named as the poller
(``_netpoll``: ``PollDesc``, ``NetPoll``, ``pollwait``, deadlines) seen from
the scheduler (``_sched``).  The import order is one way: ``_netpoll`` needs
only the park/ready pair (``_park``, ``_traps``) at import time, this module
imports ``_netpoll``, and the scheduler modules import this one at module
level; neither poller module imports ``_sched``, ``_proc``, ``_sysmon`` or
``_runtime`` except for type hints.

Polling, in the scheduler (hooks in ``_proc``, ``_sched``, ``_sysmon``,
``_runtime``): ``findrunnable`` polls without blocking before its P goes idle
and runs one ready goroutine, queueing the rest; when no P has work, the
timer-waiter M (``_proc.stopm``) blocks in the poll with a timeout at the next
timer (:func:`block`); anything that makes work breaks that poll at once
through an eventfd (a pipe elsewhere) registered in the selector
(:meth:`NetPoll.brk`, Go's ``netpollBreak``); sysmon polls when nobody has for
10ms and a P is idle to run what it finds, and a busy P polls itself at its
61st schedule when nobody has for 10ms (:func:`schedtick_poll`).  A P whose
goroutines all wait on the network is idle, so barriers and stop-the-world
serve it at once.

Locks.  ``sched.netpoll_init_lock`` (one per runtime) makes its poller once,
and ``close`` reads ``sched.netpoll`` under it: ``netpoll_of`` refuses once the
runtime is closing (``sched.shutdown`` is set before ``close`` runs), so a
poller is either made before ``close`` looks for it or never.  Only
the M in :func:`block` waits for ``NetPoll.poll_lock``; every other poll
(:func:`poll_ready`) tries it and skips when some M is polling already (Go
skips its non-blocking polls while an M blocks in netpoll).
Readied goroutines go onto the global queue under the sched lock when the
poller holds no P (:func:`injectglist`); an M that polls with a P runs one and
puts the rest on its own P's queue (:func:`findrunnable_poll`).
"""

from __future__ import annotations

import select
import time
from typing import TYPE_CHECKING, Any

from ._errors import RuntimeClosed
from ._netpoll import REASONS, NetPoll

if TYPE_CHECKING:  # pragma: no cover
    from ._g import Goroutine
    from ._m import M
    from ._p import P
    from ._park import Sudog
    from ._sched import Sched

_monotonic = time.monotonic

SYSMON_POLL = 10e-3  # sysmon or a busy P polls when nobody has polled for this long (Go's 10ms)
SYSMON_BACKSTOP = 0.1  # sysmon polls after this long without a poll even when no P is idle
_IO_REASONS = frozenset(REASONS)


def _the_backend() -> Any:
    """The poller backend of this platform, chosen once (trio's ``TheIOManager``): edge-triggered
    epoll where ``select.epoll`` exists, the standard library's ``selectors`` elsewhere."""
    if hasattr(select, "epoll"):
        from ._netpoll_epoll import EpollBackend

        return EpollBackend
    from ._netpoll_selectors import SelectorsBackend

    return SelectorsBackend


# Tests and ``bench --net --servers ragged-level`` replace it with the selectors
# backend to run the level-triggered poller on Linux too.
TheBackend = _the_backend()


def netpoll_of(sched: Sched) -> NetPoll:
    """``sched``'s poller, made on first use (Go's ``netpollGenericInit``)."""
    np = sched.netpoll
    if np is not None:
        return np
    with sched.netpoll_init_lock:
        np = sched.netpoll
        if np is None:
            if sched.shutdown or sched.runtime.closed:
                raise RuntimeClosed("the ragged Runtime is closed; no network waits on it any more")
            np = sched.netpoll = NetPoll(sched, TheBackend)
            # A timer waiter asleep on its note must move into the poll.
            w = sched.timer_waiter
            if w is not None:
                w.park.wakeup()
    return np


def wakem(sched: Sched, m: M) -> None:
    """Wake the idle M ``m`` (``startm``, a new earliest timer, shutdown).

    Its note, and, if it is the timer waiter while a poller exists (so it
    may be blocked in the poll), the poll itself.  ``m.timer_waiter`` is set
    under the sched lock in the same section where ``m`` last looked for a P,
    so a caller that set ``m.nextp`` under that lock cannot miss it.
    """
    m.park.wakeup()
    np = sched.netpoll
    if np is not None and m.timer_waiter:
        np.brk()


def mark_ready(sched: Sched, sudogs: list[Sudog]) -> list[Goroutine]:
    """The goroutines of claimed netpoll sudogs, marked runnable (not queued yet)."""
    gs = []
    for s in sudogs:
        g = s.g
        assert g is not None  # only goroutines wait on the poller
        sched.markready(g, None, None)
        gs.append(g)
    return gs


def injectglist(sched: Sched, gs: list[Goroutine], m: M | None = None) -> None:
    """Queue goroutines readied by a poll from a thread that holds no P (Go's ``injectglist``).

    Onto the global queue under the sched lock, then start an M for each idle
    P that can run one.  ``m``: the idle M that polled (it is on the idle M
    list in ``stopm``); it takes the first idle P itself, with no wake-up.
    """
    start = 0
    with sched.lock:
        sched.globrunq.extend(gs)
        if sched.gcwaiting or sched.shutdown:
            return  # start-the-world will find them
        n = len(gs)
        if m is not None and m.nextp is None and sched.pidle and m in sched.midle:
            sched.midle.remove(m)
            m.nextp = sched.pidleget()
            n -= 1
        start = min(n, len(sched.pidle))
    for _ in range(start):
        sched.startm(None, False)


def block(sched: Sched, m: M, timeout: float | None) -> None:
    """The timer waiter ``m`` (idle, no P) blocks in the poll until ready fds, ``timeout``
    (the next timer) or a break; readies what it found.  From ``_proc.stopm``.
    """
    np = sched.netpoll
    assert np is not None  # stopm blocks here only once a poller exists
    with np.poll_lock:
        np.lastpoll = 0.0
        try:
            found = np.netpoll(timeout)
        finally:
            np.lastpoll = _monotonic()
    if found:
        injectglist(sched, mark_ready(sched, found), m)


def poll_ready(sched: Sched, np: NetPoll) -> list[Goroutine]:
    """A non-blocking poll unless some M is polling already; the goroutines it readied."""
    if not np.lastpoll or not np.poll_lock.acquire(False):
        return []
    try:
        found = np.netpoll(0)
        np.lastpoll = _monotonic()
    finally:
        np.poll_lock.release()
    return mark_ready(sched, found) if found else []


def findrunnable_poll(sched: Sched, m: M) -> Goroutine | None:
    """``findrunnable`` found no queued work: poll without blocking (Go does it before stealing).

    Returns one ready goroutine to run and puts the rest on the M's P.
    """
    np = sched.netpoll
    if np is None or not np.nregistered:
        return None
    gs = poll_ready(sched, np)
    if not gs:
        return None
    p = m.p
    assert p is not None  # findrunnable runs with m.p set
    sched.runqputbatch(p, gs[1:])
    if len(gs) > 1 and sched.pidle and not sched.nmspinning:
        sched.wakep()
    return gs[0]


def schedtick_poll(sched: Sched, p: P) -> None:
    """A busy P, at every 61st schedule: poll if nobody has for ``SYSMON_POLL``; queue what is ready on ``p``.

    Go's sysmon polls for this case -- every P busy, so no M reaches the poll
    in ``findrunnable`` -- and injects onto the global queue.  Here that poll
    would run on the sysmon thread: under the GIL it takes the GIL from the
    running M for the whole poll, and the goroutines it readies wait on the
    global queue for a P to look there.  The busy M polls itself instead and
    queues them on its own P behind the work already queued (Go's
    ``injectglist`` called with a P).  Called by ``_proc.schedule`` with
    ``m.p`` set to ``p`` and no locks held.

    While the global queue holds goroutines (an earlier batch that did not
    fit, or one that sysmon or an idle M injected), the batch goes behind
    them: they were readied first, and this P, which never runs dry, takes
    only one of them per 61 schedules, so a batch put ahead of them on the
    local queue at every such poll would starve them (seconds of p99 at
    10,000 connections).
    """
    np = sched.netpoll
    if np is None or not np.nregistered:
        return
    last = np.lastpoll
    if not last or _monotonic() - last < SYSMON_POLL:
        return
    gs = poll_ready(sched, np)
    if sched.globrunq:
        sched.globrunq.extend(gs)  # no lock, as globrunqput: this M's own schedule() looks there
    else:
        sched.runqputbatch(p, gs)
    if gs and sched.pidle and not sched.nmspinning:
        sched.wakep()


def sysmon_poll(sched: Sched, now: float) -> int:
    """sysmon: poll if nobody has for ``SYSMON_POLL`` and a P is idle to run what it finds.

    With every P busy, their Ms poll themselves (:func:`schedtick_poll`);
    sysmon still polls after ``SYSMON_BACKSTOP`` without any poll, whatever
    the Ps do.
    """
    np = sched.netpoll
    if np is None or not np.nregistered:
        return 0
    last = np.lastpoll
    if not last or now - last < SYSMON_POLL or (not sched.pidle and now - last < SYSMON_BACKSTOP):
        return 0
    gs = poll_ready(sched, np)
    if gs:
        injectglist(sched, gs)
    return len(gs)


def waits_on_network(sched: Sched) -> bool:
    """True if some goroutine is parked on the poller: a peer may still wake it (deadlock check)."""
    if sched.netpoll is None:
        return False
    return any(g.waitreason in _IO_REASONS for g in sched.goroutines() if g.waiting is not None)


def close(sched: Sched) -> None:
    """Runtime close, once the Ms have stopped: close the poller and every fd ``ragged.net`` owns."""
    with sched.netpoll_init_lock:
        np = sched.netpoll
    if np is not None:
        np.close()
