"""ragged.sleep: a sleeping goroutine holds no P and wakes on time (without busy-polling),
and sleep(0) yields.  (``checkpoint`` is tested with the other traps in tests/core/test_traps.py.)"""

from __future__ import annotations

import time

import pytest

import ragged

# ---------------------------------------------------------------- sleep


@pytest.mark.timeout(30)
@pytest.mark.parametrize("seconds", [0.01, 0.05])
def test_sleep_sleeps_at_least_the_time_asked_while_others_run(seconds: float) -> None:
    """On one P, a sleeping goroutine holds no P: another goroutine keeps running."""

    async def sleeper(done: list[bool]) -> float:
        t0 = time.monotonic()
        await ragged.sleep(seconds)
        elapsed = time.monotonic() - t0
        done.append(True)
        return elapsed

    async def counter(done: list[bool]) -> int:
        n = 0
        while not done:
            n += 1
            await ragged.gosched()
        return n

    async def main() -> tuple[float, int]:
        done: list[bool] = []
        s = ragged.go(sleeper, done)
        c = ragged.go(counter, done)
        return await s, await c

    elapsed, rounds = ragged.run(main, procs=1)
    assert elapsed >= seconds
    assert rounds > 0, "the other goroutine never ran while one slept"


@pytest.mark.timeout(30)
def test_sleep_does_not_busy_poll() -> None:
    """With every goroutine asleep, the runtime uses far less CPU than the wall time.

    A busy-polling M would burn a whole core; the bound is deliberately loose.
    """

    async def main() -> tuple[float, float]:
        c0, t0 = time.process_time(), time.monotonic()
        await ragged.sleep(0.3)
        return time.monotonic() - t0, time.process_time() - c0

    wall, cpu = ragged.run(main, procs=4)
    assert wall >= 0.3
    assert cpu < 0.5 * wall, f"used {cpu:.3f}s CPU while sleeping {wall:.3f}s"


@pytest.mark.timeout(30)
def test_many_sleepers_all_wake() -> None:
    async def sleeper(i: int) -> int:
        t0 = time.monotonic()
        await ragged.sleep(0.001 * (i % 20))
        assert time.monotonic() - t0 >= 0.001 * (i % 20)
        return i

    async def main() -> list[int]:
        gs = [ragged.go(sleeper, i) for i in range(500)]
        return [await g for g in gs]

    assert ragged.run(main, procs=4) == list(range(500))


@pytest.mark.timeout(30)
def test_sleep_zero_yields() -> None:
    order: list[str] = []

    async def a() -> None:
        order.append("a1")
        await ragged.sleep(0)
        order.append("a2")

    async def b() -> None:
        order.append("b1")

    async def main() -> None:
        ga, gb = ragged.go(a), ragged.go(b)
        await ga
        await gb

    ragged.run(main, procs=1)
    assert order.index("b1") < order.index("a2")
