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
from ._debug import deadlock_report, lost_error_line
from ._debug import dump as _dump
from ._errors import (
    BarrierTimeout,
    Deadlock,
    NotInPlainThread,
    RuntimeClosed,
    RuntimeCrashed,
    combine,
)
from ._g import Coro, Goroutine, check_labels
from ._lockrank import Rank, new_lock
from ._m import M, tls
from ._metrics import Metrics
from ._note import new_note
from ._park import check_plain_thread, check_timeout, ready
from ._procresize import check_on_retire, hand_over
from ._sched import Sched
from ._settings import DEBUG_BLOCK_REPORT, Settings, env_flag, env_int
from ._shutdown import closed_error, crash, crash_error_message, teardown
from ._stw import StopTheWorld
from ._sysmon import sysmon
from ._timeout import check_seconds
from ._trace import register as register_trace
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
        self._close_lock = new_lock(Rank.CLOSE, "Runtime._close_lock")  # guards _closing and _crash
        self._torn_down = threading.Event()  # set once the teardown (close or crash) has finished
        self._crash: tuple[str, BaseException] | None = None  # (thread, exception) of the first internal failure
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
    def crashed(self) -> RuntimeCrashed | None:
        """None, or (after an internal failure stopped the runtime) the :class:`RuntimeCrashed` error.

        A fresh error each time, chained to the original exception.  See
        :class:`RuntimeCrashed` for what a crash does.
        """
        return self._crash_error() if self._crash is not None else None

    @property
    def settings(self) -> Settings:
        """The validated settings (attributes named as the keyword settings above)."""
        return self._settings

    def __repr__(self) -> str:
        state = "closed" if self.closed else "running"
        return f"<ragged.Runtime procs={self.procs} {state} goroutines={len(self._sched.allgs)}>"

    def _check_open(self) -> None:
        if self._closed or self._closing:
            if self._crash is not None:
                raise self._crash_error()
            raise RuntimeClosed("this ragged Runtime is closed; create a new one")

    def _crash_error(self) -> RuntimeCrashed:
        """A fresh :class:`RuntimeCrashed` for this runtime's crash, chained to the original exception.

        One per recipient, so no two threads raise (and add tracebacks to) the
        same object.  Only valid once the runtime has crashed.
        """
        assert self._crash is not None  # only after a crash
        where, exc = self._crash
        err = RuntimeCrashed(crash_error_message(self), where)
        err.__cause__ = exc
        return err

    def _dead_error(self, what: str) -> RuntimeCrashed | RuntimeClosed:
        """What a plain thread whose wait this runtime can no longer complete gets (``what``: when)."""
        return self._crash_error() if self._crash is not None else closed_error(self, what)

    def _waiter_error(self) -> RuntimeCrashed | None:
        """For ``block_on``: the error a plain thread that starts waiting now gets at once, or None.

        After a crash: the waiters present then were released already, and
        nothing is certain to complete a new wait.  (Not after a plain close:
        a channel may go on being used by goroutines of another runtime.)
        """
        return self._crash_error() if self._crash is not None else None

    def _on_crash(self, where: str, exc: BaseException, m: M | None = None) -> None:
        """``where`` -- an M's loop (``m``), sysmon -- failed with ``exc``: stop loudly (``_shutdown.crash``)."""
        crash(self, where, exc, m)

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
        :raises ValueError: for a NaN ``timeout`` (a negative one is 0, ``inf`` is None).
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

    def _keep_unjoined(self, g: Goroutine) -> None:
        """``g`` is about to die with an exception: keep it for :meth:`unjoined_errors`, ``run`` and ``close``.

        Called by its M before the goroutine is seen done, so whoever sees it
        done finds it listed (the list shows only those whose error nobody has
        received by then).  Not for an error the teardown caused.
        """
        with self._unjoined_lock:
            if len(self._unjoined) < _UNJOINED_CAP:
                self._unjoined[g.id] = g

    def _forget_unjoined(self, g: Goroutine) -> None:
        """Drop ``g`` from the list :meth:`_keep_unjoined` added it to: a joiner took its error."""
        with self._unjoined_lock:
            self._unjoined.pop(g.id, None)

    def _note_unjoined(self, g: Goroutine, teardown: bool) -> None:
        """``g`` died with an exception and nobody had received it: log it now.

        Logged at once, with the goroutine's name, labels and traceback: an
        error nobody receives must not wait for the exit to be seen (the
        program may hang instead, and a deadlock report then lists it first).
        Not if the teardown had begun when it raised (``teardown``: the
        goroutine's M reads :meth:`tearing_down` before anyone can see it
        done); Go would not report it either.
        """
        if teardown:
            _log.debug("ragged: goroutine %d (%s) raised %r during shutdown; not reported", g.id, g.name, g._exc)
            return
        labels = f" labels={g.labels}" if g.labels else ""
        _log.error(
            "ragged: goroutine %d %r%s died with %r, which nobody has received yet "
            "(join it with `await g` or g.result() to take the error)",
            g.id,
            g.name,
            labels,
            g._exc,
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
        """sysmon found that no goroutine can ever run again.

        The report lists first the goroutines that died with an error nobody
        received (the usual cause: the goroutine that was to send died), then
        the dump.  It is raised in every plain thread blocked on the runtime
        (``ragged.run`` raises it); only when no thread is there to receive it
        is it logged, so it is printed once.
        """
        sched = self._sched
        lost = [g for g, _ in self.unjoined_errors()]
        err = Deadlock(deadlock_report(sched, lost))
        self._deadlock = err
        with sched._tw_lock:
            waiters = list(sched.thread_waiters)
        delivered = 0
        for s in waiters:
            if s.try_claim():
                ready(s, None, err)
                delivered += 1
        if delivered:
            _log.debug("ragged: deadlock reported to %d waiting thread(s)", delivered)
        else:
            _log.error("ragged: %s", err)

    # ------------------------------------------------------------ shutdown

    def close(self, timeout: float | None = None) -> None:
        """Cancel every goroutine, let them finish, stop every thread.  Idempotent.

        ``timeout``: how long cancelled goroutines may take to finish before
        their coroutines are closed where they wait; None (the default) is
        the ``shutdown_timeout`` setting, ``math.inf`` waits as long as they
        take, 0 or a negative value does not wait.  A ``close()`` made while
        another is under way (or while a crash stops the runtime) waits for
        it to end.

        Threads that cannot be stopped (a goroutine stuck in a blocking call or
        a loop with no safe point) are daemon threads: they do not keep the
        interpreter alive, and are named in a warning.  Goroutines that raised
        before ``close()`` began and were never joined (each was logged when it
        died) are listed again; what the teardown itself makes them raise is
        not (see :meth:`tearing_down`).  Plain threads still blocked on this
        runtime's objects get :class:`RuntimeClosed`.

        :raises TypeError: if ``timeout`` is not None or a number.
        :raises ValueError: for a NaN ``timeout``.
        :raises NotInPlainThread: inside a goroutine (it would wait for itself).
        :raises RaggedError: inside a ``for_each_p`` callback or a stop-the-world section.
        :Called from: a plain thread.
        """
        self._close(report=True, timeout=timeout)

    def _close(self, report: bool, timeout: float | None = None) -> None:
        wait = self._settings.shutdown_timeout if timeout is None else check_seconds(timeout, "Runtime.close()")
        check_plain_thread("Runtime.close()")
        with self._close_lock:
            owner = not self._closing
            self._closing = True
        if owner:
            teardown(self, wait)
        elif getattr(tls, "m", None) is None:
            # A close() under way on another thread, or a crash: wait until it has
            # stopped everything (bounded: the teardown's every wait is).  Not on
            # a runtime thread (a done callback), which the teardown may join.
            while not self._torn_down.wait(0.1):
                pass
        if report:
            for g, _ in self.unjoined_errors():
                _log.error("ragged: %s", lost_error_line(g))

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
    :raises RuntimeCrashed: when ragged itself failed (an internal error stopped the
        runtime), chained to the original exception; whatever else happened.
    :raises BaseException: what ``main`` raised, or the unjoined goroutines' errors.
    :raises NotInPlainThread: inside a goroutine (start a goroutine with :func:`go` instead).
    :Called from: a plain thread.
    """
    check_plain_thread("ragged.run()")  # before anything exists that would need closing
    settings.setdefault("detect_deadlock", True)
    rt = Runtime(procs, **settings)
    try:
        try:
            coro = make_coro(main, args, "ragged.run()")
            g = rt._sched.newproc(coro, "main", None, contextvars.copy_context(), main=True)
            result = g.result()
        finally:
            rt._close(report=not check_unjoined)
    except BaseException as err:
        if rt._crash is not None and not isinstance(err, RuntimeCrashed):
            raise rt._crash_error()  # noqa: B904 - chained to the crash; err is its __context__
        raise
    if rt._crash is not None:
        raise rt._crash_error()
    if check_unjoined:
        errs = rt.unjoined_errors()
        if errs:
            for gg, e in errs:
                gg._retrieved = True
                e.add_note(f"raised in goroutine {gg.id} ({gg.name}), which nobody joined")
            raise combine([e for _, e in errs], f"{len(errs)} goroutines raised and nobody joined them")
    return result
