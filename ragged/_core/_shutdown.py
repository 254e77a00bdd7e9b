"""How a runtime ends: ``close()``, and the fatal path when ragged itself fails (Go's ``fatal error``).

Both end in one :func:`teardown`: cancel every goroutine (``Cancelled`` is
raised at its await, so ``finally`` blocks run), let them finish for up to
the shutdown timeout (after a crash, only while some goroutine can still
run), close the coroutines of any still parked, stop and join
every thread the runtime started, close the poller, and release every plain
thread still blocked on the runtime's objects with an error.

A crash.  An exception that escapes an M's scheduler loop, sysmon, the
network poller or a timer callback is a bug in ragged.  Go treats such a
failure as a fatal error that ends the program with every goroutine's stack;
a library cannot end the program, so :func:`crash` stops the runtime loudly
instead, on the failing thread, which then exits:

* the runtime is marked crashed (the first failure wins; a later one is only
  logged) and closing, so ``go()``, ``for_each_p`` and ``stop_the_world``
  raise :class:`RuntimeCrashed` from then on;
* the failure is logged at CRITICAL with its traceback and the goroutine dump;
* every plain thread blocked on the runtime (``result()``, blocking channel
  ops, ``WaitGroup.wait_blocking``, worldsema) gets :class:`RuntimeCrashed`
  at once, and a barrier or stop-the-world coordinator gets it at its next
  re-preempt round (``_world.wait_stopwait``);
* the failed M's goroutine and P are salvaged (:func:`salvage_m`) so the
  other Ms can run what was queued there;
* :func:`teardown` runs; every goroutine that ends by its cancellation (or is
  abandoned) ends with :class:`RuntimeCrashed` as its outcome, so joiners
  and ``submit()`` futures get it too; ``ragged.run`` raises it.

``RuntimeCrashed`` is made afresh for each recipient (:meth:`Runtime._crash_error`),
chained (``__cause__``) to the original exception, and names the thread.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from ._debug import dump
from ._errors import Cancelled, RuntimeClosed
from ._g import DEAD, RUNNABLE, RUNNING, SYSCALL, WAITING, Goroutine
from ._netpoll_sched import close as netpoll_close
from ._netpoll_sched import wakem
from ._park import ready
from ._timeout import clamp_wait
from ._trace import unregister as unregister_trace
from ._traps import disarm_g

if TYPE_CHECKING:  # pragma: no cover
    from ._m import M
    from ._runtime import Runtime
    from ._sched import Sched

_log = logging.getLogger("ragged")


def teardown(rt: Runtime, timeout: float) -> None:
    """Stop ``rt``: cancel, wait up to ``timeout`` seconds, abandon, stop threads, release waiters.

    Called by exactly one thread per runtime (the one that set ``_closing``:
    ``close()`` or :func:`crash`); sets ``rt._torn_down`` when done, whatever
    happens, so a concurrent ``close()`` waiting for it never hangs.
    """
    sched = rt._sched
    deadline = time.monotonic() + timeout
    try:
        # A scheduler thread that deadlocked holding the sched lock (a bug,
        # or a barrier callback that blocked) must not hang close() too.
        if not sched.lock.acquire(timeout=clamp_wait(max(timeout, 1.0))):
            _log.error("ragged: the scheduler is wedged (its lock is held); abandoning it:\n%s", dump(sched))
            return
        sched.lock.release()
        # After _closing is set: a goroutine missing from this snapshot is born
        # cancelled (Sched.newproc).
        for g in sched.goroutines():
            g.cancel()
        crashed = rt._crash is not None
        still = 0.0  # after a crash: since when nothing could run
        while sched.allgs and (left := deadline - time.monotonic()) > 0:
            if not crashed:
                sched.closenote.sleep(left)  # the last gfree wakes it
                continue
            now = time.monotonic()
            if not _can_progress(sched):
                still = still or now
                if now - still >= CRASH_QUIET:
                    break  # what is left was lost with the failed thread, or waits for good
            else:
                still = 0.0
            sched.closenote.sleep(min(left, 0.005))
        for g in sched.goroutines():
            abandon(rt, g)
    finally:
        try:
            stop_threads(rt, deadline)
        finally:
            rt._closed = True
            unregister_trace(sched)
            release_thread_waiters(rt)
            rt._torn_down.set()


CRASH_QUIET = 0.05  # after a crash, stop waiting for goroutines once nothing could run for this long


def _can_progress(sched: Sched) -> bool:
    """Whether some goroutine of ``sched`` may still run: a P not idle, queued work, a timer, a syscall.

    After a crash the goroutine a failed M had in hand (taken off a run
    queue, not yet running) is on no queue and never runs; without this the
    teardown would wait the whole shutdown timeout for it.
    """
    if len(sched.pidle) != sched.procs or sched.globrunq or sched.any_local_work() or sched.timers.live:
        return True
    return any(g.st in (RUNNING, SYSCALL) for g in sched.goroutines())


def release_thread_waiters(rt: Runtime) -> None:
    """Plain threads still blocked on ``rt``'s objects: nothing can complete their operations
    any more, so they get ``RuntimeCrashed`` (after a crash) or ``RuntimeClosed``."""
    sched = rt._sched
    with sched._tw_lock:
        waiters = list(sched.thread_waiters)
    for s in waiters:
        if s.try_claim():
            err = rt._dead_error(f"while this thread waited for {s.reason}")
            ready(s, None, err)


def abandon(rt: Runtime, g: Goroutine) -> None:
    """Close the coroutine of a goroutine that did not finish after cancel; its outcome is
    ``Cancelled`` (``RuntimeCrashed`` after a crash), delivered to joiners and done callbacks.

    A parked one is taken by winning its sudog's claim.  After a crash, a
    runnable one too: the teardown waited until no P ran (``_can_progress``),
    so one still runnable is on no queue -- the failed M had it in hand.
    """
    if g.done():
        return  # it finished meanwhile (its M has yet to forget it)
    s = g.waiting
    parked = g.st == WAITING and s is not None and s.try_claim()
    if parked or (rt._crash is not None and g.st == RUNNABLE and not g.done()):
        try:
            g.coro.close()
        except BaseException:  # noqa: BLE001
            _log.warning("ragged: goroutine %d (%s) did not close cleanly", g.id, g.name, exc_info=True)
        g.st = DEAD
        err = rt._crash_error() if rt._crash is not None else None
        callbacks = g._finish(None, err or Cancelled(f"goroutine {g.id} ({g.name}) was abandoned at shutdown"))
        if g.armed:
            disarm_g(g)  # close()'s cancel armed it; no M will ever drop that arm
        rt._sched.gfree(g)
        for cb in callbacks:  # submit()'s future among them
            try:
                cb(g)
            except Exception:  # noqa: BLE001
                _log.exception("ragged: done callback of goroutine %d (%s) raised", g.id, g.name)
    else:
        _log.warning("ragged: goroutine %d (%s) is still %s at shutdown", g.id, g.name, g.status)


def stop_threads(rt: Runtime, deadline: float) -> None:
    """Set ``shutdown``, wake and join every M and sysmon, close the poller (the last step of a teardown)."""
    sched = rt._sched
    locked = sched.lock.acquire(timeout=1.0)
    sched.shutdown = True  # without the lock only if the scheduler is wedged
    idle = list(sched.midle)
    if locked:
        sched.lock.release()
    for m in idle:
        wakem(sched, m)  # the timer waiter may be blocked in the network poll
    rt._sysmon_note.wakeup()
    sched.timers.clear()
    stuck = []
    for m in list(sched.allm):
        if not join_m(m, max(deadline - time.monotonic(), 0.5)):
            stuck.append(m)
    if rt._sysmon is not threading.current_thread():  # sysmon may be the thread tearing down after a crash
        rt._sysmon.join(1.0)
    netpoll_close(sched)  # no M polls any more: close the poller and the fds ragged.net owns
    if stuck:
        _log.warning(
            "ragged: %d thread(s) still busy at close (left running as daemon threads): %s",
            len(stuck),
            ", ".join(f"M{m.id} running {m.curg!r}" for m in stuck),
        )


def join_m(m: Any, timeout: float) -> bool:
    """Join an M's thread; False if it is still running after ``timeout``.

    ``startm`` creates the thread outside the sched lock, so at shutdown an M
    may exist whose ``Thread.start()`` has not returned yet: wait for that too.
    A thread's ``ident`` is no sign that it has started: CPython sets it in the
    new thread before it marks the thread started, and ``join()`` in between
    raises ``RuntimeError``; so the join itself is what is retried, each time
    ``startm`` wakes ``sched.closenote`` after a ``Thread.start()`` returns.
    """
    end = time.monotonic() + timeout
    while True:
        t = m.thread
        if t is threading.current_thread():
            return True
        if t is not None:
            try:
                t.join(clamp_wait(end - time.monotonic()))
            except RuntimeError:
                pass  # "cannot join thread before it is started": start() is still under way
            else:
                return not t.is_alive()
        left = end - time.monotonic()
        if left <= 0:
            return False
        m.sched.closenote.sleep(left)


# ---------------------------------------------------------------- the fatal path


def crash(rt: Runtime, where: str, exc: BaseException, m: M | None = None) -> None:
    """``where`` (``"M3"``, ``"sysmon"``) failed with ``exc``: stop the runtime loudly (see the module docstring).

    Called on the failing thread, from its outermost handler, with no lock
    held; ``m`` is the failing M, if it was one.  Never raises: whatever goes
    wrong while stopping is logged, and the thread then exits.
    """
    owner = False
    try:
        with rt._close_lock:
            first = rt._crash is None
            if first:
                rt._crash = (where, exc)
                rt._errors.append(f"{where} crashed: {exc!r}")
            owner = first and not rt._closing  # else a close() in progress finishes the teardown
            rt._closing = True
        sched = rt._sched
        if not first:
            _log.critical("ragged: %s failed too while the runtime was stopping", where, exc_info=exc)
            if m is not None:
                salvage_m(sched, m)  # its P, or the teardown would wait for it to the end
            return
        _log.critical(
            "ragged: %s crashed; this is a bug in ragged. The runtime is stopping: every goroutine is "
            "cancelled and every caller waiting on it gets RuntimeCrashed. Goroutines at the crash:\n%s",
            where,
            dump(sched),
            exc_info=exc,
        )
        release_thread_waiters(rt)  # at once: nothing they wait for is certain to happen now
        sched.stopnote.wakeup()  # a barrier or stop-the-world coordinator: it checks the crash
        if m is not None:
            salvage_m(sched, m)
    except BaseException:  # noqa: BLE001 - the failing thread's last act: never raise from here
        _log.critical("ragged: stopping the runtime after %s crashed failed as well", where, exc_info=True)
    finally:
        if owner:  # whatever failed above: a close() waits for this teardown
            try:
                teardown(rt, rt._settings.shutdown_timeout)
            except BaseException:  # noqa: BLE001
                _log.critical("ragged: the teardown after %s crashed failed", where, exc_info=True)


def salvage_m(sched: Sched, m: M) -> None:
    """Undo what the failed M ``m`` held, so the other Ms can go on until the teardown ends.

    Its goroutine (if it was not yet parked, or if this wins its wakeup) goes
    back on a run queue with ``Cancelled``, to unwind on another M; it leaves
    the idle M list and timer duty; its P, and a P handed to it, are handed
    off (``handoffp``: to another M if there is work, counted down for a
    barrier or stop-the-world in flight).  Best effort: each step that fails
    is logged.
    """
    try:
        with sched.lock:
            if m in sched.midle:
                sched.midle.remove(m)
            nextp, m.nextp = m.nextp, None
            if m.spinning:
                m.spinning = False
                sched.nmspinning -= 1
            if sched.timer_waiter is m:
                sched.timer_waiter = None
            m.timer_waiter = False
        g, m.curg = m.curg, None
        if g is not None and not g.done():
            s = g.waiting
            if s is None or s.try_claim():  # else a waker owns its wakeup and will ready it
                g.cancel_pending = False
                sched.goready(g, None, Cancelled(f"goroutine {g.id} ({g.name}) was cancelled: the runtime crashed"))
        for p in (m.p, nextp):
            if p is None:
                continue
            if p is m.p:
                sched.releasep(m)
            sched.handoffp(p, "crash")
        sched.poke_timer_waiter()
    except BaseException:  # noqa: BLE001 - best effort; the teardown goes on
        _log.critical("ragged: could not hand over what the crashed M%d held", m.id, exc_info=True)


def crash_error_message(rt: Runtime) -> str:
    """The text of ``RuntimeCrashed`` for ``rt``'s crash (``rt._crash`` is set)."""
    assert rt._crash is not None  # only after a crash
    where, exc = rt._crash
    return (
        f"the ragged runtime crashed: {where} raised {exc!r}; this is a bug in ragged "
        "(the log has the traceback and the goroutine dump). The runtime was stopped and its goroutines cancelled"
    )


def closed_error(rt: Runtime, what: str) -> RuntimeClosed:
    """The error of a wait that a (non-crash) close ended."""
    return RuntimeClosed(f"the ragged Runtime was closed {what}")
