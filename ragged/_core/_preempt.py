"""Asynchronous preemption: reaching a goroutine that never awaits (Go's ``asyncPreempt``), CPython 3.12+.

A preemption request -- a barrier's, a stop-the-world's, sysmon's 10ms time
slice -- is first a flag that the goroutine's next checkpoint honours.  A
goroutine in a pure-Python loop that never awaits never reaches one.  Go
reaches such a goroutine by signalling its thread (``preemptM``) and
injecting a call to ``asyncPreempt`` at an async safe point.  Python has no
per-thread signals, but ``sys.monitoring`` (PEP 669) lets one thread switch
on events that another thread's running code then raises.  So:

* **Escalation.**  A requester whose request is not honoured at a checkpoint
  within ``GRACE`` of the target thread's *CPU time* (read from the thread's
  CPU clock: a thread the OS has not scheduled, or one waiting for the GIL,
  is not ignoring anything) registers the target M in ``_want`` and switches
  this module's events on (:func:`want`).  A goroutine that needed an async
  safe point before (``g.noncoop``) is escalated at once.  The events are
  ``JUMP``, ``BRANCH`` and ``PY_START``, *global* (``set_events``), not
  per code object: every backward jump, branch and Python call raises one,
  in every thread.  Arming per code object needs the target's stack
  (``sys._current_frames()``) and one instrumentation change per code
  object, and on the free-threaded build each of those pauses the whole
  interpreter: measured on 3.13t under load, 26ms p50 to arm a helper's
  stack against 0.4ms for one global change (which instruments the code
  objects running on every thread at once; others as they are entered).
* **The callback** runs on whatever thread raised the event.  While any
  request is pending it reads the calling thread's M and that M's
  ``asyncwant`` flag (the cost every other thread pays while events are on;
  no lookup in the shared ``_want``, see :func:`_on_jump`) and, on the target, checks that this is an async
  safe point (:func:`_user_code`, Go's ``isAsyncSafePoint``): the M runs a
  goroutine on a running P, and no frame between the event and that
  goroutine's outermost coroutine frame is ragged's own code.  ragged holds
  its locks (channels, sync, the poller, the scheduler, the barrier) only in
  its own frames, so outside them the thread holds none; a barrier's ``fn``,
  a timer or done callback run from ragged's frames and are never entered.
  There it does what a checkpoint would for the request (:func:`_serve`):
  runs the P's safe-point function (a barrier), stops the M until the world
  restarts (stop-the-world), or for a time slice gives the P away as a
  blocking call does (``handoffp``) and waits for a P to come back.  The
  goroutine cannot be suspended mid-frame, so it keeps its M: it waits in
  the run queue as a *locked* goroutine (``_lockedm``, Go's
  ``LockOSThread`` machinery), and the M that takes it off a queue hands
  its P to the waiting M instead of running it.  **Each goroutine
  preempted this way holds an M (an OS thread) while it waits.**  A time
  slice is escalated only while something waits for the P.  The callback
  never raises: cancellation stays at await points.
* **Disarm.**  Events slow every thread while on (a callback per jump, and
  each switch re-instruments code), so once no request wants them sysmon
  switches them off, a *linger* after the last one ended.  The linger
  adapts: ``LINGER`` (1ms) at first, doubled (up to ``LINGER_MAX``) each
  time the events are wanted again within ``REARM_SOON`` of going off, back
  to ``LINGER`` after a longer quiet spell.  A switch is not cheap: on
  3.13t with 2 busy threads on 2 cores, switching the events on took about
  4ms at p50 (the interpreter stops every thread to instrument), so with a
  barrier every 5ms and a fixed 1ms linger every barrier paid it (p50 3-4ms
  over 2 Ps in tight loops); with the events kept on between them, 0.3-0.6ms.

Not reachable: loops in C (``sum(range(10**10))``, a regex, ``time.sleep``,
a blocking socket call) raise no Python events; they keep their P and stay
reported by the blocking report.  Before 3.12 there is no ``sys.monitoring``:
preemption is cooperative only (``AVAILABLE``).  The tool id is the first
free one of ``TOOL_IDS`` (0-2 and 5 are the conventional debugger,
coverage, profiler and optimizer ids); when none is free preemption stays
cooperative and a warning says so once.  A barrier's ``fn`` run from a
callback runs with the thread's tracing off (CPython does not raise events
or trace inside a monitoring callback): coverage and debuggers do not see
that run.

Shared state (nothing relies on the GIL): ``_want`` is a dict whose single
reads, stores and pops are atomic on both builds (the callbacks never read
it: they read ``_pending.n`` and their own M's ``asyncwant``); ``_armed`` and ``_tool``
change under ``_lock``, a leaf lock (taken with no other ragged lock held,
and nothing else is taken under it); ``_idle_since`` is a hint.  ``g.lockedm`` is set by the M that
owns the goroutine's frames before it queues the goroutine and cleared by the
M that takes it off the queue; ``m.lockedg`` belongs to its M.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from ._lockedm import asyncstop, asyncyield, count, waits_for_p
from ._lockrank import Rank, new_lock
from ._m import tls
from ._p import RUNNING as P_RUNNING
from ._p import W_SAFEPOINT, W_STATUS
from ._traps import disarm_g

if TYPE_CHECKING:  # pragma: no cover
    from ._g import Goroutine
    from ._m import M
    from ._p import P
    from ._sched import Sched

_log = logging.getLogger("ragged")
_monotonic = time.monotonic
_get_ident = threading.get_ident
_mon: Any = getattr(sys, "monitoring", None)  # PEP 669, CPython 3.12+

AVAILABLE: bool = _mon is not None
"""Whether this interpreter can preempt asynchronously (``sys.monitoring``, CPython 3.12+)."""

TOOL_IDS = (3, 4)  # 0 debugger, 1 coverage, 2 profiler, 5 optimizer: taken by convention
TOOL_NAME = "ragged async preemption"
GRACE = 200e-6  # CPU seconds a goroutine may run past a request before it is reached asynchronously
LINGER = 1e-3  # events stay on at least this long after the last request (sysmon switches them off)
LINGER_MAX = 20e-3  # ... and at most this long, when requests keep coming (the linger adapts)
REARM_SOON = 20e-3  # wanted again within this long of going off: the linger doubles
SLICE_POLL = 0.5e-3  # sysmon's longest sleep while a time-slice request waits for its grace

_lock = new_lock(Rank.PREEMPT, "_preempt._lock")
_want: dict[int, M] = {}  # thread ident -> the M there that owes a safe point


class _Pending:
    """How many entries ``_want`` has: the one word every callback reads (see :func:`_on_jump`).

    Written after each change to ``_want`` without a lock, so two concurrent
    changes may leave it stale for a moment; a stale 0 delays a request only
    until its requester asks again (each re-preempt round; each sysmon round),
    a stale non-zero costs the callbacks a flag read.
    """

    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0


_pending = _Pending()
_armed = False
_tool: int | None = None
_warned = False
_idle_since = 0.0  # when _want last became empty
_linger = LINGER  # the current linger (changed under _lock)
_disarmed_at = float("-inf")  # when the events last went off


# ---------------------------------------------------------------- arming


def enabled(sched: Sched) -> bool:
    """Whether requests of ``sched`` may be escalated to async safe points."""
    return AVAILABLE and sched.settings.async_preempt


def state(sched: Sched) -> str:
    """Why async preemption does or does not work for ``sched``: for reports and tests.

    ``"on"``, ``"unsupported"`` (no ``sys.monitoring``), ``"off"`` (the
    ``async_preempt`` setting) or ``"no tool id"`` (every id of ``TOOL_IDS`` is taken).
    """
    if not AVAILABLE:
        return "unsupported"
    if not sched.settings.async_preempt:
        return "off"
    if _tool is None and _warned:
        return "no tool id"
    return "on"


def _acquire_tool() -> int | None:
    """Claim a free tool id and register the callbacks.  Requires ``_lock``."""
    global _tool, _warned
    if _tool is not None:
        return _tool
    mon = _mon
    ev = mon.events
    for tool in TOOL_IDS:
        if mon.get_tool(tool) is not None:
            continue
        try:
            mon.use_tool_id(tool, TOOL_NAME)
        except ValueError:  # taken meanwhile
            continue
        for e in _JUMP_EVENTS:
            mon.register_callback(tool, e, _on_jump)
        mon.register_callback(tool, ev.PY_START, _on_start)
        _tool = tool
        return tool
    if not _warned:
        _warned = True
        _log.warning(
            "ragged: sys.monitoring tool ids %s are all in use by other tools; goroutines that never "
            "await cannot be preempted (only at await points, as on Python 3.11)",
            ", ".join(map(str, TOOL_IDS)),
        )
    return None


def want(sched: Sched, m: M) -> None:
    """Ask for an async safe point on ``m``'s thread: register it and switch the events on.

    Idempotent; safe from any thread.  The callback drops the entry when it
    has served it (or found it stale); requesters that still wait ask again.
    """
    ident = m.ident
    if ident is None:
        return
    _want[ident] = m
    m.asyncwant = True
    _pending.n = len(_want)
    if not _armed:
        _arm(sched)


def unwant(m: M) -> None:
    """Withdraw the request on ``m``'s thread, if it is still registered."""
    global _idle_since
    m.asyncwant = False
    ident = m.ident
    if ident is not None and _want.get(ident) is m:
        _want.pop(ident, None)
        _pending.n = len(_want)
        if not _want:
            _idle_since = _monotonic()


def _arm(sched: Sched) -> None:
    global _armed, _linger
    with _lock:
        if _armed or not _want:
            return
        tool = _acquire_tool()
        if tool is None:
            _clear_wants()
            return
        soon = _monotonic() - _disarmed_at < REARM_SOON
        _linger = min(2 * _linger, LINGER_MAX) if soon else LINGER
        try:
            _mon.set_events(tool, _EVENTS)
        except ValueError:  # someone freed our tool id: claim one again next time
            _forget_tool()
            return
        _armed = True
    sched.metrics.incr("async_preempt_arms")


def _forget_tool() -> None:
    global _tool
    _tool = None
    _clear_wants()


def _clear_wants() -> None:
    for m in list(_want.values()):
        m.asyncwant = False
    _want.clear()
    _pending.n = 0


def disarm(now: float, force: bool = False) -> bool:
    """Switch the events off if no request has wanted them for the linger; True if they are off.

    Called by sysmon every round while they are on (``force``: at its exit).
    """
    global _armed, _disarmed_at
    if not _armed:
        return True
    if _want or (not force and now - _idle_since < _linger):
        return False
    with _lock:
        if not _armed or _want:
            return not _armed
        tool = _tool
        _armed = False
        _disarmed_at = now
        if tool is not None:
            try:
                _mon.set_events(tool, 0)
            except ValueError:
                _forget_tool()
    return True


def armed() -> bool:
    """True while the events are on (for tests and benchmarks)."""
    return _armed


# ---------------------------------------------------------------- CPU clocks


def thread_cpu(m: M) -> float | None:
    """CPU seconds ``m``'s thread has used, or None when unknown (thread gone, no CPU clocks).

    Where the OS has no per-thread CPU clock this is the wall clock: the grace
    is then wall time.
    """
    clk = m.cpuclock
    if clk is None:
        ident = m.ident
        if ident is None:
            return None
        try:
            clk = time.pthread_getcpuclockid(ident)
        except (AttributeError, OSError):  # pragma: no cover - no per-thread CPU clocks here
            clk = -1
        m.cpuclock = clk
    if clk == -1:  # pragma: no cover
        return _monotonic()
    try:
        return time.clock_gettime(clk)
    except OSError:  # the thread has exited
        return None


class Escalation:
    """One barrier's or stop-the-world's requests that may need async safe points.

    The coordinator calls :meth:`poll` with the Ps it still waits for before
    its first wait and at every re-preempt round, and :meth:`done` at the end.
    It alone uses this object.
    """

    __slots__ = ("sched", "cpu0", "wanted")

    def __init__(self, sched: Sched) -> None:
        self.sched = sched
        self.cpu0: dict[M, float] = {}  # CPU time of the target's thread when first seen
        self.wanted: set[M] = set()

    def poll(self, ps: list[P]) -> None:
        """Escalate each P in ``ps`` whose goroutine has run ``GRACE`` of CPU since we first looked."""
        for p in ps:
            m = p.m
            if m is None or p.plain[W_STATUS] != P_RUNNING:
                continue
            g = m.curg
            if g is None:
                continue  # in the scheduler: it reaches its own safe point
            if not g.noncoop:
                c = thread_cpu(m)
                if c is None:
                    continue
                c0 = self.cpu0.setdefault(m, c)
                if c - c0 < GRACE:
                    continue
            self.wanted.add(m)
            want(self.sched, m)

    def done(self) -> None:
        """The operation is over: withdraw what it asked for."""
        for m in self.wanted:
            unwant(m)
        self.wanted.clear()


def escalation(sched: Sched) -> Escalation | None:
    """An :class:`Escalation` for a barrier or stop-the-world, or None where preemption is cooperative only."""
    return Escalation(sched) if enabled(sched) else None


# ---------------------------------------------------------------- sysmon


def slice_requested(sched: Sched, p: P, tick: int) -> None:
    """sysmon asked ``p``'s goroutine to yield in slice ``tick``: start its grace (sysmon only)."""
    if not enabled(sched):
        return
    m = p.m
    if m is None:
        return
    p.sysmon_preempt_tick = tick
    c = thread_cpu(m)
    p.sysmon_preempt_cpu = c if c is not None else 0.0


def sysmon_round(sched: Sched, now: float) -> float:
    """sysmon's share: escalate overdue time-slice requests, switch idle events off.

    A time slice is escalated only while something waits for the P (its
    queue, the global queue, an overdue timer): a loop that blocks nobody
    keeps running at full speed, events off, as it would between two
    checkpoints with nothing pending.  Returns the longest sysmon may sleep
    before its next round (``inf``: no limit): short while a request waits
    for its grace or the events are on.
    """
    cap = float("inf")
    if _want:
        _sweep(sched, False)
    if enabled(sched):
        for p in sched.allp[: sched.procs]:
            tick = p.sysmon_preempt_tick
            if tick < 0:
                continue
            m = p.m
            g = m.curg if m is not None else None
            if g is None or not g.preempt or p.schedtick + p.nsyscall != tick or p.plain[W_STATUS] != P_RUNNING:
                p.sysmon_preempt_tick = -1  # honoured, or the slice ended
                continue
            assert m is not None  # g was read from it
            if not g.noncoop:
                c = thread_cpu(m)
                if c is None or c - p.sysmon_preempt_cpu < GRACE:
                    cap = SLICE_POLL
                    continue
            if waits_for_p(sched, p, now):
                want(sched, m)
                cap = SLICE_POLL
    if _armed and not disarm(now):
        cap = min(cap, _linger)
    return cap


def _sweep(sched: Sched, all_of_them: bool) -> None:
    """Withdraw ``sched``'s requests that nothing needs any more (``all_of_them``: every one, at exit).

    A time-slice request ends when the goroutine yields or exits; the M then
    runs other code, maybe nothing that raises events, and its entry would
    keep the events on.  Barrier and stop-the-world requests are withdrawn by
    their coordinators.
    """
    for m in list(_want.values()):
        if m.sched is not sched:
            continue
        if not all_of_them:
            p = m.p
            g = m.curg
            if p is not None and (sched.gcwaiting or p.plain[W_SAFEPOINT] or (g is not None and g.preempt)):
                continue
        unwant(m)


def sysmon_exit(sched: Sched) -> None:
    """sysmon stops (the runtime closes): withdraw its requests, switch the events off if nothing else wants them."""
    _sweep(sched, True)
    disarm(_monotonic(), force=True)


# ---------------------------------------------------------------- the callback


def _on_jump(code: Any, offset: int, dest: int) -> None:
    """``JUMP`` / ``BRANCH`` callback: the cheap test, then the async safe point on a target thread.

    The test reads two plain attributes, ``_pending.n`` and then the calling
    M's own ``asyncwant``, and never the shared ``_want``: on the
    free-threaded build ``dict.get`` takes the dict's lock, and with every
    busy M doing one at each jump while a request was pending, the
    coordinator's insert or pop waited behind them -- barriers over 2 Ps in
    tight loops took 58ms at p90 (3.13t, 2 cores) against 0.25ms without.
    """
    if _pending.n:
        m = getattr(tls, "m", None)
        if m is not None and m.asyncwant:
            _async_safe_point(m, sys._getframe(1))


def _on_start(code: Any, offset: int) -> None:
    """``PY_START`` callback (a C loop calling a Python function raises only these)."""
    if _pending.n:
        m = getattr(tls, "m", None)
        if m is not None and m.asyncwant:
            _async_safe_point(m, sys._getframe(1))


_RAGGED_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_NOT_OURS = (_RAGGED_DIR + "bench" + os.sep,)  # the benchmarks' goroutines are user code
_ours: dict[str, bool] = {}


def _is_ours(filename: str) -> bool:
    r = _ours.get(filename)
    if r is None:
        r = _ours[filename] = filename.startswith(_RAGGED_DIR) and not filename.startswith(_NOT_OURS)
    return r


def _user_code(frame: Any, g: Goroutine) -> bool:
    """True if ``frame`` and its callers out to ``g``'s outermost coroutine frame are all user code.

    Go's ``isAsyncSafePoint``: a frame of ragged's own may hold a runtime lock
    or be half-way through changing scheduler state; a chain that never
    reaches ``g``'s frame is not the goroutine's code at all (a callback run
    by the scheduler).
    """
    coro: Any = g.coro
    outer = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
    f = frame
    while f is not None:
        if _is_ours(f.f_code.co_filename):
            return False
        if f is outer:
            return True
        f = f.f_back
    return False


def _async_safe_point(m: M, frame: Any) -> None:
    """On a target thread: take the async safe point if this is one.  Never raises."""
    try:
        g = m.curg
        p = m.p
        if p is None:  # in a syscall, or waiting for a P: it owes nothing now
            unwant(m)
            return
        if g is None or p.plain[W_STATUS] != P_RUNNING or not _user_code(frame, g):
            return  # not now: the scheduler, ragged's own code; the next event retries
        sched = m.sched
        if sched.chaos is not None:
            sched.chaos.point("async-preempt")
        unwant(m)  # requesters that still wait ask again
        _serve(sched, m, g)
    except BaseException:  # noqa: BLE001  # pragma: no cover - a bug in ragged; never into user code
        _log.critical("ragged: async preemption failed; this is a bug in ragged", exc_info=True)


def _serve(sched: Sched, m: M, g: Goroutine) -> None:
    """Do for every pending request what a checkpoint would: stop, run fn, or give the P away.

    Loops: the P this M gets back after a stop or a hand-off may owe a safe
    point of its own (a stop-the-world that began while the P travelled to
    us, say).  A barrier is served once per call, so back-to-back barriers
    cannot hold the goroutine here.
    """
    from ._barrier import run_safe_point_fn  # _barrier -> _world -> _blockreport -> here

    served = False
    while True:
        p = m.p
        assert p is not None  # checked by the caller; asyncstop and asyncyield return with a P
        if sched.gcwaiting and asyncstop(sched, m, g, p):
            continue
        if p.plain[W_SAFEPOINT] and not served:
            served = True
            if sched.trace is not None:
                sched.trace.async_preempt(p, g, "barrier")
            count(sched, g)
            # Then step aside as at any safe point but a goroutine's
            # checkpoint: under the GIL this M hands the GIL on until the
            # barrier ends (or its step-aside window closes), so the Ms still
            # to reach their safe point, and the coordinator, are not held off
            # for a switch interval.
            run_safe_point_fn(sched, p)
            continue
        if g.preempt:
            if asyncyield(sched, m, g, p):
                continue
            g.preempt = False  # nothing waits for the P: the request is moot
            if g.armed:
                disarm_g(g)
        return


# ---------------------------------------------------------------- reports


def report_note(sched: Sched, m: M, g: Goroutine) -> str:
    """What the blocking report says about async preemption of ``g`` (running on ``m``)."""
    st = state(sched)
    if st == "unsupported":
        return (
            "This Python has no sys.monitoring (CPython 3.12+ has it): goroutines are preempted only at await points."
        )
    if st == "off":
        return "Asynchronous preemption is off (async_preempt=False): goroutines are preempted only at await points."
    if st == "no tool id":
        return "Asynchronous preemption is unavailable: every sys.monitoring tool id it may use is taken."
    notes = []
    if g.async_preempts:
        notes.append(
            f"It was preempted asynchronously {g.async_preempts} time(s): a loop without awaits does not hold "
            "its P for good, but each such preemption keeps an OS thread and costs thread switches; "
            "`await ragged.checkpoint()` in its loop is cheaper."
        )
    ident = m.ident
    if ident is not None and _want.get(ident) is m:
        notes.append(
            "It has been asked to stop asynchronously but runs code that raises no Python events (a loop in C "
            "such as sum(range(...)), a regular expression, a hash of a big buffer), where it cannot be."
        )
    elif g.preempt:
        notes.append(
            "It is in a call that raises no Python events (a blocking call such as time.sleep, or a loop in C): "
            "asynchronous preemption cannot reach it there."
        )
    return " ".join(notes)


if AVAILABLE:
    _ev = _mon.events
    _JUMP_EVENTS: tuple[int, ...] = tuple(
        getattr(_ev, name) for name in ("JUMP", "BRANCH_LEFT", "BRANCH_RIGHT") if hasattr(_ev, name)
    )
    if not hasattr(_ev, "BRANCH_LEFT"):  # 3.12, 3.13: one BRANCH event
        _JUMP_EVENTS += (_ev.BRANCH,)
    _EVENTS = _ev.PY_START
    for _e in _JUMP_EVENTS:
        _EVENTS |= _e
else:  # pragma: no cover - 3.11
    _JUMP_EVENTS = ()
    _EVENTS = 0
