"""Global scheduler state and the operations on it (Go's ``schedt`` and friends).

``Sched`` holds what Go keeps in ``sched`` and ``allp``: the global run queue,
the idle P and idle M lists, ``nmspinning``, ``stopwait``/``stopnote``,
``safePointFn`` and ``gcwaiting``.  This module has the operations every other
part of the scheduler shares -- run queues, idle lists, ``startm``,
``wakep``, ``handoffp``, ``goready``, ``newproc``, preemption.  The M loop
(``schedule``/``findrunnable``/``execute``) is in ``_proc``; syscalls in
``_syscall``; the barrier and stop-the-world in ``_barrier`` and ``_stw``.

Locking.  ``lock`` (Go's ``sched.lock``) guards the idle lists, ``nmspinning``,
``gcwaiting`` and ``safe_point_fn``; ``stopwait`` is an atomic word (set under
``lock``, counted down without it).  Run queues are
``collections.deque``s, whose appends and pops are thread-safe one at a time:
a P's own M pushes and pops its local queue, thieves pop from the same end.
A goroutine is put on the *global* queue under ``lock`` whenever the caller
holds no P, so an M deciding to go idle (which checks the global queue and
parks its P under ``lock``) cannot miss it.  ``lock`` has its rank in the one
lock-order table (``_lockrank``): a barrier callback runs under it for idle
Ps, so it ranks below the locks of channels, sync objects and goroutines,
which are never held while it is taken.

Fields outside ``lock`` (nothing relies on the GIL for atomicity):
``allgs``/``ngcreated`` change under the module's ``_allglock``
(:meth:`Sched.goroutines` copies under it); ``barrier_seq``, ``barrier_t0``,
``barrier_done`` and ``stw_trace`` belong to the holder of ``worldsema``;
``safe_point_errs``/``sp_waits`` are swapped by that holder under ``lock``
while ``stopwait`` is 0 and appended to by whoever runs ``fn`` for a P (one
``list.append`` each, atomic on both builds); ``timer_waiter`` is set under
``lock`` and read as a hint.  ``wakep_deferred`` is a hint set by a barrier
callback after it queued work, and cleared by ``run_deferred_wakep`` *before*
it looks at the queues, so a set that races the clear is either seen there
or left set for the next caller: no wakeup is lost.  Plain reads of
``pidle``, ``nmspinning``, ``gcwaiting`` and the queues outside ``lock`` are
hints; every decision that matters re-checks under ``lock``.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import deque
from collections.abc import Callable
from contextvars import Context
from typing import TYPE_CHECKING, Any

from ._atomics import AtomicWords
from ._barrier import BarrierDone, call_safe_point_fn
from ._chaos import from_setting
from ._g import RUNNABLE, RUNNING, Coro, Goroutine
from ._lockrank import Rank, new_lock
from ._m import M, tls
from ._netpoll_sched import wakem
from ._note import new_note
from ._p import GCSTOP, IDLE, W_SAFEPOINT, P
from ._p import RUNNING as P_RUNNING
from ._platform import usable_cpus
from ._timers import Timers
from ._traps import arm_g, disarm_g

if TYPE_CHECKING:  # pragma: no cover
    from ._metrics import Metrics
    from ._netpoll import NetPoll
    from ._park import Sudog
    from ._settings import Settings
    from ._world import WorldSema

_log = logging.getLogger("ragged")

# The local run queue's capacity before half of it spills to the global queue.
# Go's is 256, the size of its fixed ring.  Ours is a deque: a bigger cap costs
# nothing, and every spill moves the oldest half of the queue behind the global
# queue, so goroutines readied later run first.  With 256, an echo server on
# one P at 1,000 connections (most readied at once by each poll) had a p99
# latency 2.5-4x asyncio's at the same throughput; with 4096, 1.5x.  Idle Ps
# still get work by stealing half of a busy P's queue.
RUNQ_SIZE = 4096

_allglock = new_lock(Rank.ALLG, "_allglock")
_gids = itertools.count(1)


class _MExit(BaseException):
    """Raised inside an M's loop to make its thread return (runtime shutdown)."""


def _signed32(v: int) -> int:
    """An unsigned 32-bit word read as signed, so that a count gone below 0 (a bug) shows as < 0."""
    return v - 0x100000000 if v & 0x80000000 else v


class Sched:
    """The scheduler of one runtime.  See the module docstring for locking."""

    worldsema: WorldSema  # set by Runtime right after construction

    def __init__(self, runtime: Any, procs: int, settings: Settings, metrics: Metrics) -> None:
        self.runtime = runtime
        self.settings = settings
        self.metrics = metrics
        self.debug = settings.debug
        self.chaos = from_setting(settings.chaos)
        self.trace: Any = None  # the active _trace.Tracer, if any
        self.trace_owned: Any = None  # a RAGGED_TRACE tracer this runtime writes at close
        self.barrier_seq = 0
        self.stw_trace: tuple[str, int, int] = ("", 0, 0)
        self.lock = new_lock(Rank.SCHED, "sched.lock")
        self.stopnote = new_note()  # the coordinator sleeps here until stopwait reaches 0
        # close() sleeps here: until the last goroutine is freed (gfree), and
        # while an M's thread is still starting (startm wakes it once
        # Thread.start() has returned).
        self.closenote = new_note()
        self.procs = procs
        self.allp: list[P] = []
        self.pidle: list[P] = []
        self.midle: list[M] = []
        self.allm: list[M] = []
        self._mids = itertools.count()
        self.nmspinning = 0
        self.globrunq: deque[Goroutine] = deque()
        self.gcwaiting = False
        self._stopwait = AtomicWords(1)  # see the stopwait property
        self.safe_point_fn: Callable[[P], Any] | None = None
        self.barrier_done: BarrierDone | None = None  # the Ms stepping aside for the barrier in flight
        self.barrier_yield = False  # Ms that ran fn yield their core (see _barrier.yields_cores)
        self.barrier_aside_until = 0.0  # Ms that ran fn step aside until then (see _barrier.step_aside)
        self.barrier_t0 = 0.0  # when the barrier in flight began
        self.cpus = usable_cpus()  # CPUs this process may use, read once at start
        self.wakep_deferred = False
        self.timers = Timers(self)
        self.timer_waiter: M | None = None
        self.netpoll: NetPoll | None = None  # the network poller, made on first use (_netpoll_sched.netpoll_of)
        # Go's netpollInitLock: netpoll is made once, under it.
        self.netpoll_init_lock = new_lock(Rank.NETPOLL_INIT, "sched.netpoll_init_lock")
        self.allgs: dict[int, Goroutine] = {}
        self.ngcreated = 0
        self.shutdown = False
        self.thread_waiters: set[Sudog] = set()
        self._tw_lock = new_lock(Rank.THREAD_WAITERS, "sched._tw_lock")
        with self.lock:
            for i in range(procs):
                p = P(i, self)
                p.setstatus(IDLE)
                self.allp.append(p)
                self.pidle.append(p)
            self.pidle.reverse()  # pidle is a stack: P0 comes off first

    # ----------------------------------------------------------------- queues

    def runqput(self, p: P, g: Goroutine) -> None:
        """Put ``g`` on ``p``'s local run queue.  Only ``p``'s own M may call this.

        When the queue is full, half of it moves to the global queue (Go's
        ``runqputslow``) so that other Ps can pick it up.
        """
        q = p.runq
        if len(q) < RUNQ_SIZE:
            q.append(g)
            return
        batch = []
        for _ in range(RUNQ_SIZE // 2):
            try:
                batch.append(q.popleft())
            except IndexError:
                break
        batch.append(g)  # after the older half, as Go's runqputslow: queued work keeps its order
        self.globrunq.extend(batch)

    def runqputbatch(self, p: P, gs: list[Goroutine]) -> None:
        """Queue ``gs``, in order, on ``p``'s local run queue as far as it has room, the rest on the global queue.

        Only ``p``'s own M may call this (Go's ``runqputbatch`` with
        ``globrunqputbatch``).  For a poll's batch: one at a time, ``runqput``
        would move the oldest half of the queue to the global queue at each
        overflow, so goroutines readied later would run before ones readied
        earlier.  No lock for the global part, as ``globrunqput``.
        """
        q = p.runq
        room = max(0, RUNQ_SIZE - len(q))
        q.extend(gs[:room])
        if len(gs) > room:
            self.globrunq.extend(gs[room:])

    def globrunqput(self, g: Goroutine) -> None:
        """Put ``g`` on the global queue from an M that holds a P (gosched, preempt).

        No lock: the caller's own M goes back to ``schedule()`` and will find it.
        """
        self.globrunq.append(g)

    def inject(self, g: Goroutine) -> None:
        """Put ``g`` on the global queue from a context with no P, and wake a P for it.

        Takes ``lock`` so that an M parking its P (which checks the global queue
        under ``lock``) cannot miss the new work (Go's ``injectglist``).  Inside
        a ``for_each_p`` callback the caller may already hold ``lock`` (idle Ps
        run it under the lock): append without it and leave the wakeup to the
        barrier, which issues deferred wakeups once the lock is released.
        """
        if getattr(tls, "in_fn", False):
            self.globrunq.append(g)
            self.wakep_deferred = True
            return
        with self.lock:
            self.globrunq.append(g)
        if self.pidle and not self.nmspinning:
            self.wakep()

    def globrunqget(self, p: P, maxn: int) -> Goroutine | None:
        """Take a fair share of the global queue: return one, move the rest to ``p``'s queue."""
        gq = self.globrunq
        size = len(gq)
        n = size // self.procs + 1  # Go's share: len/gomaxprocs + 1, capped below
        if n > size:
            n = size
        if 0 < maxn < n:
            n = maxn
        if n > RUNQ_SIZE // 2:
            n = RUNQ_SIZE // 2
        try:
            g = gq.popleft()
        except IndexError:
            return None
        if n > 1:
            put, take = p.runq.append, gq.popleft
            try:
                for _ in range(n - 1):
                    put(take())
            except IndexError:  # another M drained it meanwhile
                pass
        return g

    def runqsteal(self, p: P, victim: P) -> Goroutine | None:
        """Steal half of ``victim``'s local queue into ``p``'s; return one stolen goroutine."""
        vq = victim.runq
        n = len(vq) - len(vq) // 2
        if n <= 0:
            return None
        try:
            g = vq.popleft()
        except IndexError:
            return None
        q = p.runq
        for _ in range(n - 1):
            try:
                q.append(vq.popleft())
            except IndexError:
                break
        return g

    def any_local_work(self) -> bool:
        return any(p.runq for p in self.allp)

    @property
    def stopwait(self) -> int:
        """How many Ps the barrier or stop-the-world in flight still waits for.

        An atomic word: the coordinator stores it (under ``lock``, when no
        operation is in flight) and every P that is done counts itself down
        with :meth:`stopwait_done`, which needs no lock.  Reading it is a plain
        load: it only falls while an operation is in flight, so a 0 is final.
        """
        return _signed32(self._stopwait.plain[0])

    @stopwait.setter
    def stopwait(self, n: int) -> None:
        self._stopwait.store(0, n)

    def stopwait_done(self, n: int = 1, wake: bool = True) -> int:
        """Count ``n`` Ps as done for the barrier or stop-the-world in flight; return what is left.

        No lock needed: an M that has just run a barrier's ``fn`` must not queue
        on ``lock`` (on the free-threaded build a contended lock spins and yields
        the core away; see ``_note``).  Whoever brings ``stopwait`` to 0 wakes
        the coordinator, which loops on ``stopwait == 0``
        (``_world.wait_stopwait``), so an early or left-over wakeup is harmless.
        The coordinator counts the Ps it serves itself with ``wake=False``: it
        reads the result instead.
        """
        left = _signed32(self._stopwait.add(0, -n))
        if left == 0 and wake:
            self.stopnote.wakeup()
        return left

    # ------------------------------------------------------------- idle lists

    def pidleput(self, p: P) -> None:
        """Put an idle P on the idle list.  Requires ``lock``; ``p`` has no M."""
        self.pidle.append(p)

    def pidleget(self) -> P | None:
        """Take a P off the idle list.  Requires ``lock``; caller then owns it."""
        return self.pidle.pop() if self.pidle else None

    def mput(self, m: M) -> None:
        """Put an M on the idle list.  Requires ``lock``."""
        self.midle.append(m)

    def mget(self) -> M | None:
        """Take an M off the idle list.  Requires ``lock``."""
        return self.midle.pop() if self.midle else None

    # ------------------------------------------------------------- P ownership

    def acquirep(self, m: M, p: P) -> None:
        """Associate ``p`` (just taken off the idle list or stopped) with ``m`` and run it."""
        m.p = p
        p.m = m
        p.setstatus(P_RUNNING)

    def releasep(self, m: M, status: int = IDLE) -> P:
        """Disassociate ``m`` from its P, leaving the P in ``status``.  Own M only."""
        p = m.p
        assert p is not None  # only an M that holds a P releases it
        p.setstatus(status)
        p.m = None
        m.p = None
        return p

    # ------------------------------------------------------------- Ms

    def startm(self, p: P | None, spinning: bool) -> None:
        """Run some M with ``p`` (an idle P if None), creating an M if none is idle.

        Must not hold ``lock``.  With ``spinning``, the caller has already
        counted the M in ``nmspinning``; if no P can be found that count is
        dropped again.
        """
        newm = None
        with self.lock:
            if p is None:
                p = self.pidleget()
                if p is None:
                    if spinning:
                        self.nmspinning -= 1
                    return
            if self.shutdown:
                self.pidleput(p)
                if spinning:
                    self.nmspinning -= 1
                return
            m = self.mget()
            if m is None:
                if len(self.allm) >= self.settings.max_threads:
                    self.pidleput(p)
                    if spinning:
                        self.nmspinning -= 1
                    _log.error("ragged: thread limit (%d Ms) reached; work waits", self.settings.max_threads)
                    return
                newm = m = M(next(self._mids), self)
                self.allm.append(m)
            m.nextp = p
            m.spinning = spinning
        if newm is not None:
            from ._proc import mstart

            t = threading.Thread(target=mstart, args=(self, newm), name=f"ragged-M{newm.id}", daemon=True)
            newm.thread = t
            try:
                t.start()
            finally:
                self.closenote.wakeup()  # a close() waiting to join this M may retry now
            self.metrics.incr("threads_started")
        else:
            wakem(self, m)  # its note, or the poll it may be blocked in (netpollBreak)

    def wakep(self) -> None:
        """Start a spinning M on an idle P, unless one is already spinning.

        Called when new work appears.  Inside a ``for_each_p`` callback (which
        may run under ``lock``) the wakeup is deferred until the barrier
        releases the lock.
        """
        if getattr(tls, "in_fn", False):
            self.wakep_deferred = True
            return
        with self.lock:
            if self.nmspinning or not self.pidle or self.shutdown:
                return
            self.nmspinning += 1
        self.startm(None, True)

    def run_deferred_wakep(self) -> None:
        """Issue a wakeup deferred by a ``for_each_p`` callback.  Must not hold ``lock``."""
        if self.wakep_deferred:
            self.wakep_deferred = False
            if self.globrunq or self.any_local_work():
                self.wakep()

    def handoffp(self, p: P, why: str = "") -> None:
        """Give away a P that its M cannot use (syscall retake, barrier, exitsyscall).

        ``p`` is IDLE and owned by the caller (on no list).  Starts an M for it
        if there is work, stops it for a pending stop-the-world, runs a pending
        safe-point function for it, else puts it on the idle list.  Must not
        hold ``lock``.
        """
        if self.chaos is not None:
            self.chaos.point("handoffp")
        if self.trace is not None:
            self.trace.handoff(p, why)
        if p.runq or self.globrunq:
            self.startm(p, False)
            return
        with self.lock:
            if not self.nmspinning and not self.pidle and not self.gcwaiting:
                self.nmspinning += 1
                spin = True
            else:
                spin = False
        if spin:
            self.startm(p, True)
            return
        # Stopping the P for the world, or running the barrier's fn for it,
        # counts it down -- after the lock is released, as in ``gcstopm``.
        start = False
        with self.lock:
            if self.gcwaiting:
                p.setstatus(GCSTOP)
                done = True
            else:
                done = bool(p.plain[W_SAFEPOINT]) and p.words.cas(W_SAFEPOINT, 1, 0)
                if done:
                    call_safe_point_fn(self, p)
                # Keep some M waiting for timers and, once there is a poller, the network.
                waits = self.timers.timer0 or self.netpoll is not None
                start = bool(self.globrunq) or bool(waits and self.timer_waiter is None)
                if not start:
                    self.pidleput(p)
        if done:
            self.stopwait_done()
        if start:
            self.startm(p, False)
        self.run_deferred_wakep()

    def poke_timer_waiter(self) -> None:
        """A new earliest timer was added: make sure some M will wait for it."""
        w = self.timer_waiter
        if w is not None:
            wakem(self, w)  # it may be blocked in the network poll
        elif self.pidle and not self.nmspinning:
            self.wakep()

    # ------------------------------------------------------------- goroutines

    def newproc(self, coro: Coro, name: str | None, labels: dict | None, ctx: Context, main: bool = False) -> Goroutine:
        """Create a goroutine for ``coro`` and queue it (Go's ``newproc``).

        Registration in ``allgs`` and the runtime's closing flag are read under
        ``_allglock``, the lock ``close()`` takes its snapshot under after setting
        that flag: a goroutine either is in the snapshot (and is cancelled), or
        is born cancelled -- it never runs its body, as nothing starts in Go
        once ``main`` has returned.  ``main`` marks ``ragged.run``'s main
        goroutine, recorded before it can run (and so before it can return).
        """
        g: Goroutine[Any] = Goroutine(0, self, coro, ctx, name, labels)
        rt = self.runtime
        with _allglock:
            g.id = gid = next(_gids)
            self.allgs[gid] = g
            self.ngcreated += 1
            if rt._closing:
                g.cancel_pending = True
        if main:
            rt._main = g
        self.ready(g)
        return g

    def goroutines(self) -> list[Goroutine]:
        """A snapshot of every live goroutine (taken under ``_allglock``)."""
        with _allglock:
            return list(self.allgs.values())

    def gfree(self, g: Goroutine) -> None:
        """Forget a finished goroutine; the last one to go while the runtime closes wakes ``close()``.

        ``_closing`` is read under ``_allglock``, under which ``close()`` took its
        snapshot after setting it: either close() sees ``allgs`` empty or the
        last ``gfree`` sees it closing.
        """
        with _allglock:
            self.allgs.pop(g.id, None)
            last = not self.allgs and self.runtime._closing
        if last:
            self.closenote.wakeup()

    def goready(self, g: Goroutine, value: Any = None, exc: BaseException | None = None) -> None:
        """Make a parked goroutine runnable, resuming it with ``value`` or ``exc``.

        The caller must have won the goroutine's sudog claim, so each park is
        readied exactly once.
        """
        self.markready(g, value, exc)
        self.ready(g)

    def markready(self, g: Goroutine, value: Any = None, exc: BaseException | None = None) -> None:
        """``goready`` without the queueing: for callers that queue a batch (the poller)."""
        g.resume_val = value
        g.resume_exc = exc
        g.woken = True
        g.waiting = None
        g.st = RUNNABLE

    def ready(self, g: Goroutine) -> None:
        """Queue the runnable ``g``: on the caller's P if it holds one of ours, else globally.

        Then wake an idle P if no M is spinning (Go's ``ready`` + ``wakep``).
        """
        m = getattr(tls, "m", None)
        if m is not None and m.sched is self and m.p is not None:
            self.runqput(m.p, g)
            if self.pidle and not self.nmspinning:
                self.wakep()
        else:
            self.inject(g)

    # ------------------------------------------------------------- preemption

    def preemptone(self, p: P) -> bool:
        """Ask the goroutine running on ``p`` to yield at its next safe point."""
        m = p.m
        g = m.curg if m is not None else None
        if m is None or g is None:
            return False
        g.preempt = True
        arm_g(g)
        if g.st != RUNNING or m.curg is not g:
            # It stopped running meanwhile; its M may have missed the arm.
            g.preempt = False
            disarm_g(g)
            return False
        return True

    # ------------------------------------------------------------- plain threads

    def thread_waiter_add(self, s: Sudog) -> BaseException | None:
        """Register a blocked plain thread (close, a crash and deadlock detection release it).

        Returns the error it must get at once instead of waiting, if any: after
        a crash nothing is certain to complete a new wait, and the waiters the
        crash released are gone (``Runtime._waiter_error``).
        """
        with self._tw_lock:
            self.thread_waiters.add(s)
        return self.runtime._waiter_error()

    def thread_waiter_remove(self, s: Sudog) -> None:
        with self._tw_lock:
            self.thread_waiters.discard(s)

    # ------------------------------------------------------------- stats

    @property
    def npidle(self) -> int:
        return len(self.pidle)
