"""Fuzz the public surface with hypothesis: generated arguments from goroutines and plain threads.

Each example makes one to four calls, each with a generated argument -- a
number (0, tiny, negative, huge, ``inf``, ``-inf``, NaN, ints beyond any
float, fractions, any float), a value of a wrong type (str, bytes, None,
bool, complex, Decimal, list, object), or a closed object (closed channel,
connection, runtime; a finished goroutine) -- made inside a goroutine or on
a plain thread (a small pool of them), all against one runtime.  A call may
return, or raise a *named* error (``TypeError``, ``ValueError``,
``TimeoutError``, a ``RaggedError``, a ``ConnectionError``) with a message;
anything else (``OverflowError``, ``AttributeError``...) is a finding.
Calls that wait (a valid timeout of ``inf``, a deadline far ahead) are given
a moment, then released: the example closes its channels, cancels its
goroutines, stops its timers, closes its sockets.

After every example the runtime must be healthy: no runtime thread crashed
(no CRITICAL log record, ``rt._errors`` empty, not crashed), every P still
runs goroutines and reaches a barrier exactly once (``check_still_works``),
no goroutine is left (every one finished once released) and no fd leaked
(``/proc/self/fd`` is back to where it was).  Every call thread returned.

Every call kind gets its own derandomized hypothesis run (a fixed seed) of
``PER_KIND`` examples, each that call with a generated argument plus up to
three other generated calls: so every kind is fuzzed, and a failure replays
(``RAGGED_FUZZ_PER_KIND`` overrides the count).  The outcome of every call
is counted and printed (``-s`` shows it).
"""

from __future__ import annotations

import concurrent.futures
import gc
import logging
import math
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from _badinput import EDGE_NUMBERS, WRONG_TYPES
from _invariants import check_still_works
from conftest import wait_until
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ragged
from ragged import net
from ragged._core._park import thread_note

PER_KIND = 6  # examples per call kind: 6 x 40 kinds = 240 examples per build
GRACE = 0.03  # how long the calls get before the example releases whatever still waits
POOL = 6  # plain threads that make the thread-side calls (reused: their notes are made once)
OUTCOMES: Counter[str] = Counter()

# What a call may raise: a named error that says what went wrong.
ALLOWED = (TypeError, ValueError, TimeoutError, ragged.RaggedError, ConnectionError)

NUMBERS = st.one_of(
    st.sampled_from([*EDGE_NUMBERS, math.nan]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**20), 10**20),
)
WRONG = st.sampled_from(WRONG_TYPES)
ARGS = st.one_of(NUMBERS, NUMBERS, WRONG)


class Env:
    """What one example's calls use, made fresh for it, and how to release all of it."""

    def __init__(self, rt: ragged.Runtime, closed_rt: ragged.Runtime) -> None:
        self.rt = rt
        self.closed_rt = closed_rt
        self.never: ragged.Chan[None] = ragged.Chan()  # closed at cleanup: every select on it ends
        self.chan: ragged.Chan[int] = ragged.Chan()
        self.closed_chan: ragged.Chan[int] = ragged.Chan(1)
        self.closed_chan.close()
        self.wg = ragged.WaitGroup()
        self.wg.add(1)
        self.a, self.b = socket.socketpair()
        c1, c2 = socket.socketpair()
        self.conn = net.Conn(c1)
        self.peer = c2
        x, y = socket.socketpair()
        self.closed_conn = net.Conn(x)
        self.closed_conn.close()
        y.close()
        self.closed_sock = socket.socket()
        self.closed_sock.close()
        self.ln = net.listen("127.0.0.1", 0)
        self.parked = rt.go(_wait_on, self.never)
        self.finished = rt.go(_noop)
        self.finished.result(timeout=10)
        self.timers: list[Any] = []
        self.cancels: list[Callable[[], None]] = []
        self.conns: list[net.Conn] = []
        self.runtimes: list[ragged.Runtime] = []

    def release(self) -> None:
        """End every wait the calls may be in (the order matters: goroutines before their fds).

        Idempotent.  Called once after the grace period, and again once every call has
        returned: a call still under way the first time (a slow ``Runtime()`` on a busy
        machine) may have made a timer, a connection or a runtime since.
        """
        for ch in (self.never, self.chan):
            try:
                ch.close()
            except ragged.ChanClosed:
                pass  # closed by the first release
        for _ in range(3):
            try:
                self.wg.done()
            except ValueError:
                break
        for t in self.timers:
            t.stop()
        for cancel in self.cancels:
            cancel()
        for g in self.rt._sched.goroutines():
            g.cancel()
        wait_until(lambda: not self.rt._sched.allgs, 20, "every goroutine of the example to finish")
        for c in [*self.conns, self.conn, self.ln]:
            c.close()
        for s in (self.a, self.b, self.peer):
            s.close()
        for rt in self.runtimes:
            rt.close()
        self.runtimes.clear()  # the call's exceptions (their tracebacks) may keep this Env alive a while


async def _wait_on(ch: ragged.Chan[None]) -> None:
    await ch.recv_ok()


async def _noop() -> int:
    return 1


def _plus_now(x: Any) -> Any:
    """``time.monotonic() + x`` where that is a number (a relative deadline), else ``x`` itself."""
    try:
        return time.monotonic() + x
    except (TypeError, OverflowError):
        return x


# ---------------------------------------------------------------- goroutine-side calls


async def g_sleep(e: Env, x: Any) -> None:
    await ragged.sleep(x)


async def g_after(e: Env, x: Any) -> None:
    await ragged.select(ragged.after(x).recv_case(), e.never.recv_case())


_NO_RESET = object()


async def _fires(e: Env, t: Any, reset_to: Any = _NO_RESET) -> None:
    """Keep ``t`` (a Timer or Ticker) for the release to stop, reset it to ``reset_to`` if given,
    and wait for its first value (or the release)."""
    e.timers.append(t)
    if reset_to is not _NO_RESET:
        t.reset(reset_to)
    await ragged.select(t.c.recv_case(), e.never.recv_case())


async def g_timer(e: Env, x: Any) -> None:
    await _fires(e, ragged.Timer(x))


async def g_timer_reset(e: Env, x: Any) -> None:
    await _fires(e, ragged.Timer(3600), x)


async def g_ticker(e: Env, x: Any) -> None:
    await _fires(e, ragged.Ticker(x))


async def g_ticker_reset(e: Env, x: Any) -> None:
    await _fires(e, ragged.Ticker(3600), x)


async def g_with_timeout(e: Env, x: Any) -> None:
    ctx, cancel = ragged.with_timeout(ragged.background(), x)
    e.cancels.append(cancel)
    await ragged.select(ctx.done().recv_case(), e.never.recv_case())


async def g_with_deadline(e: Env, x: Any) -> None:
    ctx, cancel = ragged.with_deadline(ragged.background(), _plus_now(x))
    e.cancels.append(cancel)
    await ragged.select(ctx.done().recv_case(), e.never.recv_case())


async def g_with_deadline_abs(e: Env, x: Any) -> None:
    ctx, cancel = ragged.with_deadline(ragged.background(), x)
    e.cancels.append(cancel)
    await ragged.select(ctx.done().recv_case(), e.never.recv_case())


async def g_wait_readable(e: Env, x: Any) -> None:
    await ragged.wait_readable(e.a, timeout=x)


async def g_wait_writable(e: Env, x: Any) -> None:
    await ragged.wait_writable(e.b, timeout=x)


async def g_wait_readable_obj(e: Env, x: Any) -> None:
    # x as the fd: a wrong type, a negative number, or (when it is a number >= 0) a closed socket
    target = e.closed_sock if isinstance(x, int) and not isinstance(x, bool) and x >= 0 else x
    await ragged.wait_readable(target, timeout=0.01)


async def g_conn_deadline_read(e: Env, x: Any) -> None:
    e.conn.set_read_deadline(_plus_now(x))
    await e.conn.read(1)


async def g_conn_deadline_write(e: Env, x: Any) -> None:
    e.conn.set_write_deadline(_plus_now(x))
    await e.conn.write(b"x")


async def g_closed_conn_read(e: Env, x: Any) -> None:
    e.closed_conn.set_deadline(x)
    await e.closed_conn.read(1)


async def g_dial(e: Env, x: Any) -> None:
    c = await net.dial(*e.ln.addr, timeout=x)
    e.conns.append(c)


async def g_closed_chan_send(e: Env, x: Any) -> None:
    await e.closed_chan.send(x)


async def g_go(e: Env, x: Any) -> None:
    ragged.go(x)


async def g_for_each_p(e: Env, x: Any) -> None:
    await ragged.for_each_p(x)


async def g_join_finished(e: Env, x: Any) -> None:
    await e.finished
    await ragged.sleep(x)


# ---------------------------------------------------------------- thread-side calls


def t_result(e: Env, x: Any) -> None:
    e.parked.result(timeout=x)


def t_exception(e: Env, x: Any) -> None:
    e.finished.exception(timeout=x)


def t_recv_blocking(e: Env, x: Any) -> None:
    e.chan.recv_blocking(timeout=x)


def t_send_blocking(e: Env, x: Any) -> None:
    e.chan.send_blocking(1, timeout=x)


def t_closed_chan_recv(e: Env, x: Any) -> None:
    e.closed_chan.recv_blocking(timeout=x)


def t_wait_blocking(e: Env, x: Any) -> None:
    e.wg.wait_blocking(timeout=x)


def t_for_each_p(e: Env, x: Any) -> None:
    e.rt.for_each_p(lambda p: None, timeout=x)


def t_after(e: Env, x: Any) -> None:
    ragged.after(x, runtime=e.rt)


def t_timer(e: Env, x: Any) -> None:
    e.timers.append(ragged.Timer(x, runtime=e.rt))


def t_ticker(e: Env, x: Any) -> None:
    e.timers.append(ragged.Ticker(x, runtime=e.rt))


def t_with_timeout(e: Env, x: Any) -> None:
    e.cancels.append(ragged.with_timeout(ragged.background(), x, runtime=e.rt)[1])


def t_with_deadline(e: Env, x: Any) -> None:
    e.cancels.append(ragged.with_deadline(ragged.background(), _plus_now(x), runtime=e.rt)[1])


def t_conn_set_deadline(e: Env, x: Any) -> None:
    e.conn.set_deadline(x)


def t_closed_conn_set_deadline(e: Env, x: Any) -> None:
    e.closed_conn.set_write_deadline(x)


def t_chan(e: Env, x: Any) -> None:
    ragged.Chan(x)


def t_semaphore(e: Env, x: Any) -> None:
    ragged.Semaphore(x)


def t_waitgroup_add(e: Env, x: Any) -> None:
    ragged.WaitGroup().add(x)


def t_closed_rt(e: Env, x: Any) -> None:
    e.closed_rt.close(timeout=x)  # idempotent, but the argument is still checked
    e.closed_rt.go(_noop)


def t_runtime_close(e: Env, x: Any) -> None:
    rt = ragged.Runtime(procs=1)
    e.runtimes.append(rt)
    rt.go(ragged.sleep, math.inf)
    rt.close(timeout=x)


def t_runtime_settings(e: Env, x: Any) -> None:
    rt = ragged.Runtime(procs=1, straggler_timeout=x, shutdown_timeout=x, barrier_step_aside=x)
    e.runtimes.append(rt)
    rt.for_each_p(lambda p: None)
    rt.close()


G_CALLS = [v for k, v in dict(globals()).items() if k.startswith("g_")]
T_CALLS = [v for k, v in dict(globals()).items() if k.startswith("t_")]
CALLS = st.tuples(st.sampled_from(G_CALLS + T_CALLS), ARGS)


def _fd_count(rt: ragged.Runtime) -> int:
    """The process's open fds, less those of ``rt``'s Ms' notes: Ms are pooled for good (as in Go),
    and a new one (made when every M was busy) brings its note (an eventfd on the free-threaded build)."""
    gc.collect()  # notes and sockets of dropped objects close their fds when collected
    listed = {int(f) for f in os.listdir("/proc/self/fd")}
    ms = {fd for m in list(rt._sched.allm) for fd in (getattr(m.park, "_rfd", -1), getattr(m.park, "_wfd", -1))}
    return len(listed - ms)


def _outcome(fn: Callable[..., Any], err: BaseException | None) -> str:
    kind = "ok" if err is None else type(err).__name__
    OUTCOMES[f"{fn.__name__}: {kind}"] += 1
    return kind


class CrashLog(logging.Handler):
    """Collects CRITICAL records of the ``ragged`` logger (a crashed runtime thread)."""

    def __init__(self) -> None:
        super().__init__(logging.CRITICAL)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage())


async def _in_goroutine(fn: Callable[..., Any], e: Env, x: Any) -> BaseException | None:
    try:
        await fn(e, x)
    except BaseException as err:  # noqa: BLE001 - examined by the test (caught here: it must not be logged)
        return err
    return None


def _in_thread(fn: Callable[..., Any], e: Env, x: Any) -> BaseException | None:
    try:
        fn(e, x)
    except BaseException as err:  # noqa: BLE001 - examined by the test
        return err
    return None


def _per_kind() -> int:
    env = os.environ.get("RAGGED_FUZZ_PER_KIND")
    return int(env) if env else PER_KIND


def _make_calls(
    rt: ragged.Runtime, closed_rt: ragged.Runtime, pool: concurrent.futures.Executor, calls: list[tuple[Any, Any]]
) -> list[str]:
    """Make ``calls`` against a fresh :class:`Env`, give them ``GRACE``, release them; check and
    return what each raised.  Nothing of the example outlives this frame (the exceptions'
    tracebacks hold the calls' frames, which hold the Env and whatever it made)."""
    e = Env(rt, closed_rt)
    gs: list[tuple[Callable[..., Any], ragged.Goroutine]] = []
    fs: list[tuple[Callable[..., Any], concurrent.futures.Future[BaseException | None]]] = []
    try:
        for fn, x in calls:
            if fn in G_CALLS:
                gs.append((fn, rt.go(_in_goroutine, fn, e, x, name=fn.__name__)))
            else:
                fs.append((fn, pool.submit(_in_thread, fn, e, x)))
        end = time.monotonic() + GRACE
        while time.monotonic() < end and not (all(g.done() for _, g in gs) and all(f.done() for _, f in fs)):
            time.sleep(0.002)
    finally:
        e.release()
    outcomes: list[tuple[Callable[..., Any], BaseException | None]] = []
    for fn, g in gs:
        try:
            outcomes.append((fn, g.result(timeout=20)))
        except ragged.Cancelled as err:  # released by the cancel: the call itself was waiting
            outcomes.append((fn, err))
    for fn, f in fs:
        outcomes.append((fn, f.result(timeout=20)))
    e.release()  # what calls that were still under way at the first release made since
    kinds = []
    for fn, err in outcomes:
        kind = _outcome(fn, err)
        assert err is None or isinstance(err, ALLOWED), f"{fn.__name__}: {kind}: {err!r}"
        assert err is None or str(err), f"{fn.__name__}: {kind} has no message"
        kinds.append(kind)
    return kinds


def _warm_up(rt: ragged.Runtime, closed_rt: ragged.Runtime, pool: concurrent.futures.Executor) -> None:
    """Make what lives as long as the runtime and the pool: the poller, the note each thread
    (this one and the pool's) sleeps on when it first waits for the runtime (made once, kept)."""
    thread_note()
    warm = Env(rt, closed_rt)
    rt.go(_in_goroutine, g_wait_readable, warm, 0).result(timeout=10)
    gate = threading.Barrier(POOL)
    for f in [pool.submit(lambda: (gate.wait(10), t_recv_blocking(warm, 0))) for _ in range(POOL)]:
        assert isinstance(f.exception(timeout=10), TimeoutError)
    warm.release()
    check_still_works(rt, "warm-up")


@pytest.mark.timeout(300)
# The Ms draw from the global ``random`` (work stealing) while hypothesis generates on this thread.
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
def test_fuzz_the_public_surface() -> None:
    OUTCOMES.clear()
    crashes = CrashLog()
    log = logging.getLogger("ragged")
    log.addHandler(crashes)
    closed_rt = ragged.Runtime(procs=1)
    closed_rt.close()
    pool = concurrent.futures.ThreadPoolExecutor(POOL, thread_name_prefix="fuzz")
    examples = 0
    try:
        with ragged.Runtime(procs=2) as rt:
            _warm_up(rt, closed_rt, pool)
            fds = _fd_count(rt)

            @settings(
                max_examples=_per_kind(),
                derandomize=True,
                deadline=None,
                database=None,
                print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            )
            @given(x=ARGS, more=st.lists(CALLS, max_size=3))
            def example(kind: Callable[..., Any], x: Any, more: list[tuple[Callable[..., Any], Any]]) -> None:
                nonlocal examples
                examples += 1
                calls = [(kind, x), *more]
                _make_calls(rt, closed_rt, pool, calls)
                assert not crashes.records, f"a runtime thread crashed: {crashes.records}"
                assert not rt._errors and rt.crashed is None, rt._errors
                check_still_works(rt, f"calls {[(fn.__name__, x) for fn, x in calls]!r}")
                # (a goroutine is forgotten just after its joiner is woken: allow that moment)
                wait_until(lambda: not rt._sched.allgs, 10, "no goroutine left")
                # (an M made meanwhile brings its note a moment before it is listed: a leak is for good)
                wait_until(lambda: _fd_count(rt) == fds, 5, f"the fds to be back to {fds} (an fd leaked)")

            for kind in G_CALLS + T_CALLS:
                example(kind)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        log.removeHandler(crashes)
    print(f"fuzz: {examples} examples; outcomes: {dict(sorted(OUTCOMES.items()))}")
    called = {k.split(":")[0] for k in OUTCOMES}
    never = [fn.__name__ for fn in G_CALLS + T_CALLS if fn.__name__ not in called]
    assert not never, f"call kinds never made: {never}"
