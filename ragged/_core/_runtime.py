"""``Runtime``: one scheduler with its Ms, Ps and sysmon; and ``ragged.run``.

A runtime is started by ``Runtime(procs=N)`` (or ``ragged.run``) and ended by
``close()``, which is idempotent: it cancels every goroutine (``Cancelled`` is
raised at its await so ``finally`` blocks run), lets them finish for up to
``shutdown_timeout`` seconds, closes the coroutines of any still parked, then
stops and joins every thread it started.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import inspect
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar, TypeVarTuple

from ._barrier import foreachp
from ._debug import dump as _dump
from ._errors import (
    BarrierTimeout,
    Cancelled,
    Deadlock,
    NotInPlainThread,
    RuntimeClosed,
    combine,
)
from ._g import DEAD, WAITING, Coro, Goroutine, check_labels
from ._lockrank import Rank, new_lock
from ._m import tls
from ._metrics import Metrics
from ._netpoll_sched import close as netpoll_close
from ._netpoll_sched import wakem
from ._note import new_note
from ._park import check_plain_thread, check_timeout, ready
from ._procresize import check_on_retire, hand_over
from ._sched import Sched
from ._settings import DEBUG_BLOCK_REPORT, Settings, env_flag, env_int
from ._stw import StopTheWorld
from ._sysmon import sysmon
from ._trace import register as register_trace
from ._trace import unregister as unregister_trace
from ._traps import disarm_g
from ._world import WorldSema, check_not_in_fn

T = TypeVar("T")
Ts = TypeVarTuple("Ts")
_log = logging.getLogger("ragged")
_CO_ITERABLE_COROUTINE = inspect.CO_ITERABLE_COROUTINE
_CO_COROUTINE = inspect.CO_COROUTINE
_UNJOINED_CAP = 1000


def check_procs_value(procs: Any) -> int:
    """Validate an explicit procs value (None not allowed)."""
    if procs is None:
        raise TypeError("procs must be a positive int, not None")
    return check_procs(procs)


def check_procs(procs: Any) -> int:
    """Validate a procs value (GOMAXPROCS); None means the CPU count."""
    if procs is None:
        return os.cpu_count() or 1
    if isinstance(procs, bool) or not isinstance(procs, int):
        raise TypeError(f"procs must be a positive int, not {type(procs).__name__} {procs!r}")
    if procs <= 0:
        raise ValueError(f"procs must be a positive int, not {procs!r}")
    return procs


def make_coro(fn: Any, args: tuple, what: str) -> Coro:
    """Turn ``go``'s arguments into a coroutine, or raise TypeError saying why not."""
    code = getattr(fn, "__code__", None)
    if code is not None and code.co_flags & _CO_COROUTINE:
        return fn(*args)  # the common case: a plain ``async def`` function
    if inspect.iscoroutine(fn):
        if args:
            fn.close()
            raise TypeError(f"{what}: pass either a coroutine object or an async function with its arguments")
        return fn
    call = vars(type(fn)).get("__call__") if not inspect.isroutine(fn) else None
    is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call)
    if not is_async and inspect.isgeneratorfunction(fn):
        is_async = bool(fn.__code__.co_flags & _CO_ITERABLE_COROUTINE)
    if not is_async:
        kind = "not callable" if not callable(fn) else "a plain function"
        raise TypeError(
            f"{what} needs an async function (async def) and its arguments; {fn!r} is {kind}. "
            "Run blocking plain functions with `await ragged.syscall(fn, *args)` instead"
        )
    coro = fn(*args)
    if not (inspect.iscoroutine(coro) or inspect.isgenerator(coro)):
        raise TypeError(f"{what}: {fn!r} did not return a coroutine")
    return coro


class Runtime:
    """A ragged runtime: ``procs`` Ps, a pool of Ms (OS threads) and sysmon.

    Use as a context manager (``with ragged.Runtime(procs=4) as rt:``), or
    call :meth:`close`.  ``procs`` defaults to the CPU count.  The keyword
    settings (``preempt_after``, ``block_report``, ``straggler_timeout``,
    ``detect_deadlock``, ...) are described in :class:`~ragged.Settings`.

    :raises TypeError: for an unknown setting or a value of the wrong type.
    :raises ValueError: for a value out of range (``procs`` <= 0, negative or NaN
        times, ``block_report`` not above ``preempt_after``).
    :Called from: anywhere; its methods say where each may be called.
    """

    def __init__(self, procs: int | None = None, **settings: Any) -> None:
        procs = check_procs(procs)
        if "debug" not in settings:
            settings["debug"] = env_flag("RAGGED_DEBUG")
        if "chaos" not in settings:
            settings["chaos"] = env_int("RAGGED_CHAOS")
        try:
            self._settings = Settings(**settings)
        except TypeError as err:
            if "unexpected keyword" in str(err):
                raise TypeError(f"Runtime(): {err}") from None
            raise
        if "block_report" not in settings and self._settings.debug:
            self._settings.block_report = max(DEBUG_BLOCK_REPORT, 2 * self._settings.preempt_after)
        self._metrics = Metrics()
        self._sched = Sched(self, procs, self._settings, self._metrics)
        self._sched.worldsema = WorldSema(self._sched)
        self._closed = False
        self._closing = False
        self._close_lock = new_lock(Rank.CLOSE, "Runtime._close_lock")
        self._unjoined: dict[int, Goroutine] = {}
        self._unjoined_lock = new_lock(Rank.UNJOINED, "Runtime._unjoined_lock")
        self._deadlock: Deadlock | None = None
        self._main: Goroutine | None = None  # ragged.run's main goroutine (set before it runs)
        self._errors: list[str] = []
        register_trace(self._sched)
        self._sysmon_note = new_note()
        self._sysmon = threading.Thread(
            target=sysmon, args=(self._sched, self._sysmon_note), name="ragged-sysmon", daemon=True
        )
        self._sysmon.start()

    # ------------------------------------------------------------ properties

    @property
    def procs(self) -> int:
        """The number of Ps (GOMAXPROCS) now."""
        return self._sched.procs

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has begun."""
        return self._closed or self._closing

    @property
    def settings(self) -> Settings:
        """The validated settings (attributes named as the keyword settings above)."""
        return self._settings

    def __repr__(self) -> str:
        state = "closed" if self.closed else "running"
        return f"<ragged.Runtime procs={self.procs} {state} goroutines={len(self._sched.allgs)}>"

    def _check_open(self) -> None:
        if self._closed or self._closing:
            raise RuntimeClosed("this ragged Runtime is closed; create a new one")

    # ------------------------------------------------------------ goroutines

    def go(
        self,
        fn: Callable[[*Ts], Awaitable[T]] | Coroutine[Any, Any, T],
        *args: *Ts,
        name: str | None = None,
        labels: dict[str, Any] | None = None,
    ) -> Goroutine[T]:
        """Start ``fn(*args)`` as a goroutine; return its :class:`Goroutine` handle.

        ``fn`` is an async function (or a coroutine object with no args).  The
        goroutine runs in a copy of the caller's ``contextvars`` context.
        ``name`` and ``labels`` show in dumps, traces and logs.

        :raises TypeError: if ``fn`` is not an async function, or ``name`` /
            ``labels`` are not a str / a dict of str keys to str, int, float or bool.
        :raises ValueError: for an empty label key.
        :raises RuntimeClosed: if the runtime is closed.
        :Called from: anywhere: plain threads, goroutines of this or another
            runtime, callbacks.
        """
        if self._closing:
            self._check_open()
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        if labels is not None:
            check_labels(labels)
        coro = make_coro(fn, args, "go()")
        return self._sched.newproc(coro, name, labels, contextvars.copy_context())

    def submit(
        self, fn: Callable[[*Ts], Awaitable[T]], *args: *Ts, name: str | None = None
    ) -> concurrent.futures.Future[T]:
        """Like :meth:`go`, but return a ``concurrent.futures.Future`` of the result.

        The future completes with the goroutine's result or exception; it is
        already running, so ``cancel()`` on it does nothing (cancel the
        goroutine through :meth:`go` instead).

        :raises TypeError: as :meth:`go`.
        :raises RuntimeClosed: if the runtime is closed.
        :Called from: anywhere; wait on the future from a plain thread (or an
            asyncio loop with ``asyncio.wrap_future``).
        """
        g = self.go(fn, *args, name=name)
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()
        fut.set_running_or_notify_cancel()

        def _done(g: Goroutine[T]) -> None:
            if g._exc is not None:
                fut.set_exception(g._exc)
            else:
                fut.set_result(g._result)

        g.add_done_callback(_done)
        return fut

    # ------------------------------------------------------------ the world

    def for_each_p(self, fn: Callable[[Any], Any], timeout: float | None = None) -> None:
        """Run ``fn(p)`` once on every P at its next safe point (ragged barrier).

        Call from a plain thread (one that holds no P); inside a goroutine use
        ``await ragged.for_each_p(fn)``.  Blocks until every P has run ``fn``.
        With ``timeout`` seconds, raises :class:`BarrierTimeout` instead once it
        passes; the Ps that had not run ``fn`` then never run it for this
        barrier, and no P is still inside ``fn`` when it is raised.  Errors raised by ``fn`` are
        re-raised here after the barrier completes (an ExceptionGroup when
        several Ps raised).

        :raises TypeError: if ``fn`` is not a plain callable, or ``timeout`` not a number.
        :raises ValueError: for a negative or NaN ``timeout``.
        :raises BarrierTimeout: when ``timeout`` passes first (``missing`` lists the Ps).
        :raises BaseException: what ``fn`` raised.
        :raises BarrierError: from inside a ``for_each_p`` callback, or while this
            thread holds the world.
        :raises RuntimeClosed: if the runtime is closed.
        :raises NotInPlainThread: inside a goroutine.
        :Called from: a plain thread; inside a goroutine use ``await ragged.for_each_p(fn)``.
        """
        self._check_open()
        check_fn(fn)
        timeout = check_timeout(timeout)
        check_not_in_fn("for_each_p")
        m = getattr(tls, "m", None)
        if m is not None and m.curg is not None and m.p is not None:
            raise NotInPlainThread("inside a goroutine use `await ragged.for_each_p(fn)`")
        sched = self._sched
        t0 = time.monotonic()
        try:
            sched.worldsema.acquire_thread("for_each_p", timeout)
        except TimeoutError:
            raise BarrierTimeout(
                f"for_each_p could not start within {timeout}s: another barrier or stop-the-world held the world",
                [p.id for p in sched.allp[: sched.procs]],
            ) from None
        try:
            left = None if timeout is None else max(timeout - (time.monotonic() - t0), 0.0)
            foreachp(sched, fn, None, left)
        finally:
            sched.worldsema.release()

    def stop_the_world(self, reason: str = "user") -> StopTheWorld:
        """Stop every P; use as ``with rt.stop_the_world("why"):`` from a plain thread.

        Returns a :class:`~ragged.StopTheWorld`; entering it waits until
        every P has stopped (no goroutine runs until the block ends).

        :raises TypeError: if ``reason`` is not a str.
        :raises RuntimeClosed: on entry, if the runtime is closed.
        :raises BarrierError: on entry, from inside a ``for_each_p`` callback or
            while this thread already holds the world.
        :raises NotInPlainThread: on entry, inside a goroutine.
        :Called from: a plain thread; inside a goroutine use
            ``async with ragged.stop_the_world(reason)``.
        """
        return StopTheWorld(self, reason)

    def set_procs(self, n: int, on_retire: Callable[[int, dict[Any, Any]], Any] | None = None) -> int:
        """Change the number of Ps (GOMAXPROCS) under stop-the-world; return the old number.

        Goroutines queued on retired Ps move to the global queue.  Each retired
        P's per-P storage (``p.local``) is handed to ``on_retire(p_id, local)``
        after the world restarts; without a callback it stays with the dead P
        and returns if ``procs`` grows again.

        :raises TypeError: if ``n`` is not an int or ``on_retire`` is not callable.
        :raises ValueError: if ``n`` is not positive.
        :raises RuntimeClosed: if the runtime is closed.
        :raises NotInPlainThread: inside a goroutine.
        :Called from: a plain thread; inside a goroutine use ``await ragged.set_procs(n)``.
        """
        n = check_procs_value(n)
        check_on_retire(on_retire)
        with self.stop_the_world("set_procs") as stw:
            old = stw.resize(n, on_retire is not None)
        hand_over(stw.retired, on_retire)
        return old

    # ------------------------------------------------------------ diagnostics

    def dump(self) -> str:
        """Every goroutine (id, name, labels, status, wait reason, stack) and every P and M, as text.

        Go's SIGQUIT dump.  Takes no scheduler lock, so it works on a wedged
        runtime too; the picture may be slightly inconsistent.

        :raises: nothing.
        :Called from: anywhere.
        """
        return _dump(self._sched)

    def metrics(self) -> dict[str, Any]:
        """A snapshot of counters and latency histograms, as a dict.

        Counters: ``barriers``, ``barrier_timeouts``, ``barrier_fn_errors``,
        ``stws``, ``preemptions``, ``syscall_handoffs``, ``syscall_slowpath``,
        ``stragglers_reported``, ``blocking_reports``, ``async_preemptions``
        (goroutines reached inside running code, CPython 3.12+),
        ``async_preempt_arms`` (times the events for that were switched on),
        ``threads_started``,
        ``goroutines_created``, ``context_switches``, ``syscalls``; gauges
        ``procs``, ``goroutines``, ``threads``; ``per_p_pause_seconds``.
        Histograms (dicts of count, sum, min, max, mean, p50, p90, p99 and
        ``buckets_ns``): ``barrier_latency``, ``barrier_p_wait``,
        ``barrier_pause``, ``barrier_rounds``, ``stw_latency``, ``stw_pause``,
        ``stw_p_wait``, ``stw_rounds``.

        :raises: nothing.
        :Called from: anywhere.
        """
        sched = self._sched
        out = self._metrics.snapshot()
        out["procs"] = sched.procs
        out["goroutines"] = len(sched.allgs)
        out["goroutines_created"] = sched.ngcreated
        out["context_switches"] = sum(p.schedtick for p in sched.allp)
        out["syscalls"] = sum(p.nsyscall for p in sched.allp)
        out["threads"] = len(sched.allm)
        out["per_p_pause_seconds"] = {p.id: p.pause_ns / 1e9 for p in sched.allp}
        return out

    # ------------------------------------------------------------ errors

    def tearing_down(self) -> bool:
        """True once ``main`` has returned (``ragged.run``) or ``close()`` has begun.

        From then on, as in Go, where the process exits when ``main`` returns,
        what goroutines raise -- ``Cancelled`` from the teardown,
        ``RuntimeClosed`` from a ``go()`` during it, anything they raise while
        unwinding or in the moment before they are stopped -- is not an error of
        the program: it is neither reported nor fails ``run``.

        :raises: nothing.
        :Called from: anywhere.
        """
        main = self._main
        return self._closing or (main is not None and main._done)

    def _note_unjoined(self, g: Goroutine, teardown: bool) -> None:
        """``g`` raised and nobody joined it: keep it for ``run`` / ``close`` to report.

        Not if the teardown had begun when it raised (``teardown``: the
        goroutine's M reads :meth:`tearing_down` before anyone can see it
        done); Go would not report it either.
        """
        if teardown:
            _log.debug("ragged: goroutine %d (%s) raised %r during shutdown; not reported", g.id, g.name, g._exc)
            return
        with self._unjoined_lock:
            if len(self._unjoined) < _UNJOINED_CAP:
                self._unjoined[g.id] = g
                return
        self._report(g)

    def _report(self, g: Goroutine) -> None:
        _log.error(
            "ragged: goroutine %d (%s) raised and nobody joined it",
            g.id,
            g.name,
            exc_info=g._exc,
        )

    def unjoined_errors(self) -> list[tuple[Goroutine, BaseException]]:
        """Goroutines that raised and that nobody has joined yet, with their exceptions.

        :raises: nothing.
        :Called from: anywhere.
        """
        with self._unjoined_lock:
            gs = [g for g in self._unjoined.values() if not g._retrieved]
        return [(g, g._exc) for g in gs if g._exc is not None]

    def _on_deadlock(self) -> None:
        """sysmon found that no goroutine can ever run again."""
        sched = self._sched
        err = Deadlock("all goroutines are asleep - deadlock!\n\n" + self.dump())
        self._deadlock = err
        _log.error("ragged: %s", err)
        with sched._tw_lock:
            waiters = list(sched.thread_waiters)
        for s in waiters:
            if s.try_claim():
                ready(s, None, err)

    def _internal_error(self, m: Any) -> None:  # pragma: no cover - scheduler bugs
        self._errors.append(f"M{m.id} crashed")

    # ------------------------------------------------------------ shutdown

    def close(self) -> None:
        """Cancel every goroutine, let them finish, stop every thread.  Idempotent.

        Threads that cannot be stopped (a goroutine stuck in a blocking call or
        a loop with no safe point) are daemon threads: they do not keep the
        interpreter alive, and are named in a warning.  Goroutines that raised
        before ``close()`` began and were never joined are logged; what the
        teardown itself makes them raise is not (see :meth:`tearing_down`).
        Plain threads still blocked on this runtime's objects get
        :class:`RuntimeClosed`.

        :raises NotInPlainThread: inside a goroutine (it would wait for itself).
        :raises RaggedError: inside a ``for_each_p`` callback or a stop-the-world section.
        :Called from: a plain thread.
        """
        self._close(report=True)

    def _close(self, report: bool) -> None:
        check_plain_thread("Runtime.close()")
        with self._close_lock:
            if self._closed or self._closing:
                return
            self._closing = True
        sched = self._sched
        deadline = time.monotonic() + self._settings.shutdown_timeout
        try:
            # A scheduler thread that deadlocked holding the sched lock (a bug,
            # or a barrier callback that blocked) must not hang close() too.
            if not sched.lock.acquire(timeout=max(self._settings.shutdown_timeout, 1.0)):
                _log.error("ragged: the scheduler is wedged (its lock is held); abandoning it:\n%s", self.dump())
                return
            sched.lock.release()
            # After _closing is set: a goroutine missing from this snapshot is born
            # cancelled (Sched.newproc).
            for g in sched.goroutines():
                g.cancel()
            while sched.allgs and (left := deadline - time.monotonic()) > 0:
                sched.closenote.sleep(left)  # the last gfree wakes it
            for g in sched.goroutines():
                self._abandon(g)
        finally:
            self._stop_threads(deadline)
            self._closed = True
            unregister_trace(sched)
            self._release_thread_waiters()
        if report:
            for g, _ in self.unjoined_errors():
                self._report(g)

    def _release_thread_waiters(self) -> None:
        """Plain threads still blocked on this runtime's objects: nothing can complete
        their operations any more, so they get RuntimeClosed."""
        sched = self._sched
        with sched._tw_lock:
            waiters = list(sched.thread_waiters)
        for s in waiters:
            if s.try_claim():
                ready(s, None, RuntimeClosed(f"the ragged Runtime was closed while this thread waited for {s.reason}"))

    def _abandon(self, g: Goroutine) -> None:
        """Close the coroutine of a goroutine that did not finish after cancel."""
        s = g.waiting
        if g.st == WAITING and s is not None and s.try_claim():
            try:
                g.coro.close()
            except BaseException:  # noqa: BLE001
                _log.warning("ragged: goroutine %d (%s) did not close cleanly", g.id, g.name, exc_info=True)
            g.st = DEAD
            g._finish(None, Cancelled(f"goroutine {g.id} ({g.name}) was abandoned at shutdown"))
            if g.armed:
                disarm_g(g)  # close()'s cancel armed it; no M will ever drop that arm
            self._sched.gfree(g)
        else:
            _log.warning("ragged: goroutine %d (%s) is still %s at shutdown", g.id, g.name, g.status)

    def _stop_threads(self, deadline: float) -> None:
        sched = self._sched
        locked = sched.lock.acquire(timeout=1.0)
        sched.shutdown = True  # without the lock only if the scheduler is wedged
        idle = list(sched.midle)
        if locked:
            sched.lock.release()
        for m in idle:
            wakem(sched, m)  # the timer waiter may be blocked in the network poll
        self._sysmon_note.wakeup()
        sched.timers.clear()
        stuck = []
        for m in list(sched.allm):
            if not _join_m(m, max(deadline - time.monotonic(), 0.5)):
                stuck.append(m)
        self._sysmon.join(1.0)
        netpoll_close(sched)  # no M polls any more: close the poller and the fds ragged.net owns
        if stuck:
            _log.warning(
                "ragged: %d thread(s) still busy at close (left running as daemon threads): %s",
                len(stuck),
                ", ".join(f"M{m.id} running {m.curg!r}" for m in stuck),
            )

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        if not getattr(self, "_closed", True):
            try:
                self._sched.shutdown = True
                self._sysmon_note.wakeup()
            except Exception:  # noqa: BLE001
                pass


def _join_m(m: Any, timeout: float) -> bool:
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
                t.join(max(end - time.monotonic(), 0.0))
            except RuntimeError:
                pass  # "cannot join thread before it is started": start() is still under way
            else:
                return not t.is_alive()
        left = end - time.monotonic()
        if left <= 0:
            return False
        m.sched.closenote.sleep(left)


def check_fn(fn: Any) -> None:
    """A barrier callback must be a plain callable taking the P."""
    if not callable(fn):
        raise TypeError(f"for_each_p needs a callable fn(p), not {type(fn).__name__}")
    code = getattr(fn, "__code__", None)
    if code is not None and not code.co_flags & _CO_COROUTINE:
        return  # the common case: a plain function or lambda
    if inspect.iscoroutinefunction(fn):
        raise TypeError("for_each_p runs fn(p) synchronously at each P's safe point; fn must not be async")


def run(
    main: Callable[[*Ts], Awaitable[T]],
    *args: *Ts,
    procs: int | None = None,
    check_unjoined: bool = True,
    **settings: Any,
) -> T:
    """Start a runtime, run ``main(*args)`` as a goroutine, return its result, shut down.

    Like ``asyncio.run``.  ``procs`` and the keyword settings are
    :class:`Runtime`'s.  Deadlock detection is on (pass
    ``detect_deadlock=False`` to turn it off).  If some goroutine raised and
    nobody joined it, ``run`` raises that error after ``main`` returns (an
    ExceptionGroup when several) unless ``check_unjoined=False``.  As in Go,
    where the program exits when ``main`` returns, only errors raised before
    that count: the teardown's ``Cancelled``, a ``RuntimeClosed`` from a
    ``go()`` made during it, or anything else raised after ``main`` returned
    is not an error of the program.

    :raises TypeError: if ``main`` is not an async function, or for a bad setting.
    :raises ValueError: for a setting out of range.
    :raises Deadlock: when every goroutine is asleep and none can wake (with the dump).
    :raises BaseException: what ``main`` raised, or the unjoined goroutines' errors.
    :raises NotInPlainThread: inside a goroutine (start a goroutine with :func:`go` instead).
    :Called from: a plain thread.
    """
    check_plain_thread("ragged.run()")  # before anything exists that would need closing
    settings.setdefault("detect_deadlock", True)
    rt = Runtime(procs, **settings)
    try:
        coro = make_coro(main, args, "ragged.run()")
        g = rt._sched.newproc(coro, "main", None, contextvars.copy_context(), main=True)
        result = g.result()
    finally:
        rt._close(report=not check_unjoined)
    if check_unjoined:
        errs = rt.unjoined_errors()
        if errs:
            for gg, e in errs:
                gg._retrieved = True
                e.add_note(f"raised in goroutine {gg.id} ({gg.name}), which nobody joined")
            raise combine([e for _, e in errs], f"{len(errs)} goroutines raised and nobody joined them")
    return result
