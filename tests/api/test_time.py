"""after, Timer and Ticker: delivery, stop/reset (Go 1.23 semantics), plain-thread use."""

from __future__ import annotations

import random
import time

import pytest

import ragged
from ragged import Chan, Ticker, Timer, after, select


@pytest.mark.timeout(30)
def test_after_delivers_once_after_the_delay() -> None:
    async def main() -> tuple[float, float, int]:
        t0 = time.monotonic()
        ch = after(0.03)
        assert ch.cap == 1
        fired = await ch.recv()
        waited = time.monotonic() - t0
        await ragged.sleep(0.03)
        return waited, fired - t0, len(ch)

    waited, fired_at, left = ragged.run(main, procs=2)
    assert waited >= 0.029 and fired_at >= 0.029
    assert left == 0  # only one value, ever


@pytest.mark.timeout(30)
def test_after_zero_fires_promptly() -> None:
    async def main() -> int:
        i, _ = await select(Chan().recv_case(), after(0).recv_case())
        return i

    assert ragged.run(main, procs=1) == 1


def test_arguments_are_validated() -> None:
    with pytest.raises(ragged.NotInGoroutine, match="runtime=rt"):
        after(1)
    with pytest.raises(TypeError, match="ragged.Runtime"):
        Timer(1, runtime=object())  # type: ignore[arg-type]
    with ragged.Runtime(procs=1) as rt:
        with pytest.raises(ValueError, match="NaN"):
            Timer(float("nan"), runtime=rt)
        with pytest.raises(TypeError):
            after("1", runtime=rt)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="period > 0"):
            Ticker(0, runtime=rt)
        t = Ticker(1, runtime=rt)
        with pytest.raises(ValueError, match="period > 0"):
            t.reset(0)
        t.stop()
    with pytest.raises(ragged.RuntimeClosed):
        Timer(1, runtime=rt)


@pytest.mark.timeout(30)
def test_timer_stop_before_firing() -> None:
    async def main() -> tuple[bool, bool, int]:
        t = Timer(0.02)
        stopped = t.stop()
        await ragged.sleep(0.05)
        return stopped, t.stop(), len(t.c)

    assert ragged.run(main, procs=1) == (True, False, 0)


@pytest.mark.timeout(30)
def test_timer_stop_drops_an_unreceived_value() -> None:
    """Go 1.23: after stop() returns, no value from before it is received."""

    async def main() -> tuple[bool, tuple[object, bool]]:
        t = Timer(0.001)
        await ragged.sleep(0.03)  # fired; value sits in t.c
        return t.stop(), t.c.try_recv()

    assert ragged.run(main, procs=1) == (True, (None, False))


@pytest.mark.timeout(30)
def test_timer_reset_rearms() -> None:
    async def main() -> tuple[bool, float, bool]:
        t = Timer(10)
        t0 = time.monotonic()
        was = t.reset(0.02)
        await t.c.recv()
        elapsed = time.monotonic() - t0
        again = t.reset(0.01)  # already received: nothing was pending
        await t.c.recv()
        return was, elapsed, again

    was, elapsed, again = ragged.run(main, procs=1)
    assert was is True and again is False
    assert 0.019 <= elapsed < 5


@pytest.mark.timeout(30)
def test_ticker_ticks_until_stopped() -> None:
    async def main() -> tuple[list[float], int]:
        tk = Ticker(0.01)
        ticks = [await tk.c.recv() for _ in range(5)]
        tk.stop()
        await ragged.sleep(0.05)
        return ticks, len(tk.c)

    ticks, left = ragged.run(main, procs=2)
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    assert all(g > 0.005 for g in gaps), gaps
    assert left == 0


@pytest.mark.timeout(30)
def test_slow_ticker_reader_misses_ticks_instead_of_queueing() -> None:
    async def main() -> tuple[int, int]:
        tk = Ticker(0.005)
        await ragged.sleep(0.06)  # ~12 ticks due; the channel holds one
        n = len(tk.c)
        await tk.c.recv()
        tk.reset(10)
        return n, len(tk.c)

    assert ragged.run(main, procs=1) == (1, 0)


@pytest.mark.timeout(30)
def test_timer_from_a_plain_thread_with_runtime() -> None:
    with ragged.Runtime(procs=1) as rt:
        t0 = time.monotonic()
        fired = Timer(0.02, runtime=rt).c.recv_blocking(timeout=5)
        assert fired - t0 >= 0.019
        assert after(0.01, runtime=rt).recv_blocking(timeout=5) > t0


@pytest.mark.timeout(30)
def test_closed_timer_channel_does_not_break_the_runtime() -> None:
    async def main() -> str:
        t = Timer(0.005)
        t.c.close()  # misuse: the timer's callback must still not raise
        await ragged.sleep(0.03)
        return "alive"

    assert ragged.run(main, procs=1) == "alive"


@pytest.mark.timeout(60)
def test_stop_racing_the_timer_never_leaks_a_stale_value() -> None:
    """Stop timers right around their deadline: with nobody receiving, every stop()
    returns True and no value ever shows up afterwards (Go 1.23's guarantee)."""
    seed = random.randrange(2**32)
    rnd = random.Random(seed)

    async def main() -> list[tuple[int, bool, int]]:
        bad = []
        timers = []
        for i in range(300):
            t = Timer(rnd.uniform(0, 0.002))
            await ragged.sleep(rnd.uniform(0, 0.002))
            timers.append((i, t, t.stop()))
        await ragged.sleep(0.01)
        for i, t, stopped in timers:
            if not stopped or len(t.c):
                bad.append((i, stopped, len(t.c)))
        return bad

    assert ragged.run(main, procs=2) == [], f"seed {seed}"


def test_a_late_ticker_skips_the_ticks_it_missed_instead_of_firing_twice() -> None:
    """A periodic timer fired more than a period late fires once and moves to the next tick of its
    grid, as Go's ticker does; it used to be re-armed at "now" and fire again at once (two ticks
    a few µs apart: what test_ticker_ticks_until_stopped saw on 3.13t, where timer waits run late)."""
    from types import SimpleNamespace

    from ragged._core._timers import Timers

    timers = Timers(SimpleNamespace(poke_timer_waiter=lambda: None))  # type: ignore[arg-type]
    fired: list[float] = []
    now = 1000.0
    with timers.lock:
        e = timers.add_locked(now - 0.035, fired.append, 1.0, period=0.01)  # 3.5 periods late
    assert timers.run(now) == 1
    ticks = (e.when - (now - 0.035)) / 0.01
    assert now < e.when <= now + 0.01 and abs(ticks - round(ticks)) < 1e-6, f"{e.when} is off the grid"
    assert timers.run(now + 1e-6) == 0, "fired again right away"
    assert timers.run(e.when) == 1 and len(fired) == 2
