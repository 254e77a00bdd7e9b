"""Every call that takes a duration, a timeout or a deadline, at the edges: 0, tiny, negative, huge, inf.

The rules (``ragged/_core/_timeout.py``), as asyncio and Go have them: a
negative duration is already expired (as 0); ``inf`` and huge values mean
never, and park without a kernel wait the platform would refuse (each such
wait is clamped, then repeated); NaN and non-numbers are refused at the call
(those rows are in the bad-input table).  A deadline that looks like
wall-clock time on a monotonic API is refused with a ``ValueError`` that says
to use ``time.monotonic()``; a genuinely far monotonic deadline is accepted.

Every test also asserts that no runtime thread crashed: no CRITICAL record in
the log, nothing in ``rt._errors``.  No test measures time.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import pytest
from _invariants import check_still_works
from _nethelpers import wait_parked
from conftest import wait_until

import ragged
from ragged import net

INF = math.inf
HUGE = (1e10, 1e300, 10**400, Fraction(10**30, 3))  # 10**400 is beyond any float
pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def no_crash(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """No runtime thread may crash in these tests: no CRITICAL log record from ragged."""
    with caplog.at_level(logging.WARNING, logger="ragged"):
        yield
    crit = [r.getMessage() for r in caplog.records if r.name == "ragged" and r.levelno >= logging.CRITICAL]
    assert not crit, f"a runtime thread crashed: {crit}"


def healthy(rt: ragged.Runtime, what: str) -> None:
    assert not rt._errors, f"after {what}: {rt._errors}"
    assert rt.crashed is None
    check_still_works(rt, what)


# ---------------------------------------------------------------- negative and zero: already expired


def test_negative_and_zero_durations_are_already_expired_in_goroutines() -> None:
    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for d in (-1, -1e300, -INF, 0, 1e-300):
            await ragged.sleep(d)  # returns (a yield)
        # Each timer is due at once: its value arrives without any other wake-up.
        out["after"] = await ragged.after(-1).recv()
        out["Timer"] = await ragged.Timer(-5).c.recv()
        t = ragged.Timer(3600)
        assert t.reset(-INF) is True
        out["reset"] = await t.c.recv()
        ctx, cancel = ragged.with_timeout(ragged.background(), -1)
        out["ctx"] = type(ctx.err())
        ctx2, cancel2 = ragged.with_deadline(ragged.background(), -INF)
        out["ctx2"] = type(ctx2.err())
        cancel()
        cancel2()
        a, b = socket.socketpair()
        try:
            with pytest.raises(ragged.IOTimeout):
                await ragged.wait_readable(a, timeout=-1)
        finally:
            a.close()
            b.close()
        return out

    with ragged.Runtime(procs=2) as rt:
        out = rt.go(main).result(timeout=30)
        assert all(isinstance(out[k], float) for k in ("after", "Timer", "reset"))
        assert out["ctx"] is ragged.DeadlineExceeded and out["ctx2"] is ragged.DeadlineExceeded
        healthy(rt, "negative durations")


def test_negative_timeouts_give_up_unless_the_call_completes_at_once() -> None:
    with ragged.Runtime(procs=2) as rt:
        ch: ragged.Chan[int] = ragged.Chan(1)
        with pytest.raises(TimeoutError):
            ch.recv_blocking(timeout=-1)
        ch.send_blocking(7, timeout=-1)  # room in the buffer: completes at once
        assert ch.recv_blocking(timeout=-INF) == 7
        wg = ragged.WaitGroup()
        wg.wait_blocking(timeout=-1)  # counter 0: nothing to wait for
        wg.add(1)
        with pytest.raises(TimeoutError):
            wg.wait_blocking(timeout=-1)
        wg.done()
        stop: ragged.Chan[None] = ragged.Chan()

        async def waiter() -> int:
            await stop.recv_ok()
            return 1

        g = rt.go(waiter)
        with pytest.raises(TimeoutError):
            g.result(timeout=-1)
        with pytest.raises(TimeoutError):
            g.exception(timeout=0)
        stop.close()
        assert g.result(timeout=INF) == 1
        assert g.result(timeout=-1) == 1  # done: no wait needed
        rt.for_each_p(lambda p: None, timeout=-1)  # idle Ps are served at once
        ctx, _ = ragged.with_timeout(ragged.background(), -1)  # expired: no timer, so no runtime= needed
        assert isinstance(ctx.err(), ragged.DeadlineExceeded)
        healthy(rt, "negative timeouts")


# ---------------------------------------------------------------- inf and huge: never


def test_sleep_inf_parks_with_no_timer_until_cancelled() -> None:
    async def main() -> str:
        timers = ragged.current_runtime()._sched.timers
        before = len(timers)
        g = ragged.go(ragged.sleep, INF)
        big = ragged.go(ragged.sleep, 10**400)  # beyond any float: inf too
        await wait_parked(g, "sleep")
        await wait_parked(big, "sleep")
        assert len(timers) == before, "an infinite sleep must keep no timer"
        g.cancel()
        big.cancel()
        for x in (g, big):
            with pytest.raises(ragged.Cancelled):
                await x
        return "ok"

    with ragged.Runtime(procs=2) as rt:
        assert rt.go(main).result(timeout=30) == "ok"
        healthy(rt, "sleep(inf)")


@pytest.mark.parametrize("seconds", HUGE, ids=["1e10", "1e300", "10**400", "Fraction"])
def test_huge_sleep_parks_and_the_timer_waiter_survives_its_wait(seconds: Any) -> None:
    """The idle M that waits for the earliest timer gets a timeout the kernel would refuse:
    the wait is clamped (and with a poller, the poll too), and nothing crashes."""
    a, b = socket.socketpair()

    async def main() -> str:
        g = ragged.go(ragged.sleep, seconds)
        reader = ragged.go(ragged.wait_readable, a)  # a poller exists: the timer waiter polls
        await wait_parked(g, "sleep")
        await wait_parked(reader, "IO wait")
        sched = ragged.current_runtime()._sched
        await ragged.syscall(wait_until, lambda: sched.timer_waiter is not None, 10, "a timer waiter")
        await ragged.syscall(time.sleep, 0.05)  # let it block in its (clamped) wait
        b.send(b"x")
        await reader
        g.cancel()
        with pytest.raises(ragged.Cancelled):
            await g
        return "ok"

    try:
        with ragged.Runtime(procs=2) as rt:
            assert rt.go(main).result(timeout=30) == "ok"
            healthy(rt, f"sleep({seconds!r})")
    finally:
        a.close()
        b.close()


def test_infinite_and_huge_timeouts_wait_as_long_as_it_takes() -> None:
    with ragged.Runtime(procs=2) as rt:
        ch: ragged.Chan[int] = ragged.Chan()

        async def sender() -> int:
            await ragged.sleep(0.01)
            await ch.send(5)
            return 9

        for timeout in (INF, 1e300, 10**400):
            g = rt.go(sender)
            assert ch.recv_blocking(timeout=timeout) == 5
            assert g.result(timeout=timeout) == 9
        wg = ragged.WaitGroup()
        wg.add(1)

        async def done() -> None:
            wg.done()

        rt.go(done)
        wg.wait_blocking(timeout=INF)
        rt.for_each_p(lambda p: None, timeout=INF)
        rt.for_each_p(lambda p: None, timeout=1e300)
        healthy(rt, "infinite timeouts")


def test_timers_and_contexts_that_never_fire() -> None:
    async def main() -> str:
        sched = ragged.current_runtime()._sched
        before = len(sched.timers)
        ch = ragged.after(INF)
        t = ragged.Timer(INF)
        tick = ragged.Ticker(INF)
        ctx, cancel = ragged.with_timeout(ragged.background(), INF)
        ctx2, cancel2 = ragged.with_deadline(ragged.background(), INF)
        assert len(sched.timers) == before, "a timer due at inf must not be on the heap"
        assert ctx.deadline() is None and ctx2.deadline() is None  # inf is "no deadline"
        far, cancel3 = ragged.with_deadline(ragged.background(), time.monotonic() + 1e10)
        assert far.deadline() is not None and far.err() is None
        huge = ragged.Timer(1e300)
        await ragged.sleep(0.02)
        assert ch.try_recv() == (None, False) and t.c.try_recv() == (None, False)
        assert tick.c.try_recv() == (None, False) and huge.c.try_recv() == (None, False)
        assert ctx.err() is None and ctx2.err() is None and far.err() is None
        assert t.reset(-1) is True  # a timer that was never to fire still counts as pending
        await t.c.recv()
        for x in (tick, huge):
            x.stop()
        for c in (cancel, cancel2, cancel3):
            c()
        return "ok"

    with ragged.Runtime(procs=2) as rt:
        assert rt.go(main).result(timeout=30) == "ok"
        healthy(rt, "never-firing timers")
    with ragged.Runtime(procs=1) as rt:  # the same from a plain thread, with runtime=
        ragged.after(INF, runtime=rt)
        ragged.Timer(10**400, runtime=rt).stop()
        ragged.Ticker(1e300, runtime=rt).stop()
        ragged.with_timeout(ragged.background(), 1e300, runtime=rt)[1]()
        healthy(rt, "never-firing timers from a plain thread")


@pytest.mark.parametrize("period", [1e-300, 5e-324, 1e-9])
def test_a_ticker_with_a_period_below_the_clock_resolution_ticks_and_the_runtime_lives(period: float) -> None:
    """Found by the fuzz test: with ``Ticker(1e-300)`` the next tick (``now + period``) was ``now``
    again, so the heap fired it forever under its lock and every M spun there."""

    async def main() -> int:
        tk = ragged.Ticker(period)
        got = [await tk.c.recv() for _ in range(3)]
        tk.stop()
        return len(got)

    with ragged.Runtime(procs=2) as rt:
        assert rt.go(main).result(timeout=30) == 3
        healthy(rt, f"Ticker({period!r})")


def test_settings_and_close_accept_infinite_times() -> None:
    with ragged.Runtime(
        procs=2, shutdown_timeout=INF, straggler_timeout=INF, barrier_step_aside=INF, syscall_retake=1e300
    ) as rt:
        stop = threading.Event()

        async def busy() -> None:
            while not stop.is_set():
                await ragged.checkpoint()

        gs = [rt.go(busy) for _ in range(2)]
        for _ in range(3):
            rt.for_each_p(lambda p: None)
        stop.set()
        for g in gs:
            g.result(timeout=30)
        healthy(rt, "infinite settings")
        rt.close(timeout=INF)
    with ragged.Runtime(procs=1) as rt:
        rt.go(ragged.sleep, INF)
        rt.close(timeout=-1)  # do not wait: the sleeper is abandoned at once
    assert rt.closed
    # Found by the fuzz test: an int beyond any float overflowed the settings' NaN check.
    with ragged.Runtime(procs=1, shutdown_timeout=10**400, straggler_timeout=10**400, block_report=10**400) as rt:
        assert rt.settings.shutdown_timeout == INF and rt.settings.block_report == INF
        healthy(rt, "settings of 10**400")


# ---------------------------------------------------------------- deadlines: monotonic, far, and wall-clock


def test_a_wall_clock_deadline_is_refused_and_says_to_use_monotonic() -> None:
    wall = time.time() + 1
    with pytest.raises(ValueError, match=r"time\.time\(\).*time\.monotonic\(\)"):
        ragged.with_deadline(ragged.background(), wall)
    a, b = socket.socketpair()
    c = net.Conn(a)
    try:
        for setter in (c.set_deadline, c.set_read_deadline, c.set_write_deadline):
            with pytest.raises(ValueError, match=r"time\.monotonic\(\)"):
                setter(time.time() + 0.2)
            setter(time.monotonic() + 1e10)  # genuinely far: accepted
            setter(INF)  # no deadline
            setter(None)
    finally:
        c.close()
        b.close()


def test_far_and_infinite_connection_deadlines_never_fire_and_reads_work() -> None:
    async def main() -> list[bytes]:
        ln = net.listen("127.0.0.1", 0)
        c = await net.dial(*ln.addr, timeout=INF)
        s = await ln.accept()
        out = []
        for d in (time.monotonic() + 1e10, time.monotonic() + 1e300, INF):
            c.set_deadline(d)
            g = ragged.go(c.read, 10)
            await wait_parked(g, "IO wait")
            await ragged.sleep(0.02)  # the timer waiter waits on (clamps) the far deadline meanwhile
            await s.write(b"hi")
            out.append(await g)
        c.set_deadline(-INF)  # past: every wait times out at once
        with pytest.raises(ragged.IOTimeout):
            await c.read(1)
        for x in (c, s, ln):
            x.close()
        return out

    with ragged.Runtime(procs=2) as rt:
        assert rt.go(main).result(timeout=30) == [b"hi"] * 3
        healthy(rt, "far deadlines")


def test_timeouts_from_many_threads_at_once() -> None:
    """Plain threads using edge timeouts on one runtime at the same time: nothing crashes or hangs."""
    with ragged.Runtime(procs=2) as rt:
        ch: ragged.Chan[int] = ragged.Chan(4)
        empty: ragged.Chan[int] = ragged.Chan()
        errors: list[BaseException] = []

        def worker(k: int) -> None:
            try:
                for d in (-1, 0, 1e-9, 1e300, INF):
                    ragged.Timer(d, runtime=rt).stop()
                    ragged.after(d, runtime=rt)
                    with pytest.raises(TimeoutError):
                        empty.recv_blocking(timeout=-d if d > 1 else d)  # huge negative: expired too
                ch.send_blocking(k, timeout=INF)
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not errors and not any(t.is_alive() for t in threads)
        assert sorted(ch.recv_blocking(timeout=1) for _ in range(4)) == [0, 1, 2, 3]
        healthy(rt, "timeouts from many threads")
