"""ragged.sleep and ragged.checkpoint: a sleeping goroutine holds no P and wakes on time
(without busy-polling), sleep(0) yields, and a checkpoint with nothing pending stays put."""

from __future__ import annotations

import time

import pytest

import ragged

# ---------------------------------------------------------------- sleep and checkpoint


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


@pytest.mark.timeout(30)
def test_checkpoint_is_a_noop_when_nothing_is_pending() -> None:
    def switches_and_preemptions() -> tuple[int, int]:
        m = ragged.metrics()
        return m["context_switches"], m["preemptions"]

    async def main() -> tuple[list[None], int, int]:
        s0, p0 = switches_and_preemptions()
        out = [await ragged.checkpoint() for _ in range(1000)]
        s1, p1 = switches_and_preemptions()
        return out, s1 - s0, p1 - p0

    out, switches, preemptions = ragged.run(main, procs=1)
    assert out == [None] * 1000
    # Only a sysmon preemption request (on a slow machine) may make it leave the P.
    assert switches == preemptions, "checkpoint() left the goroutine although nothing was pending"


def test_checkpoint_looks_like_the_function_it_documents() -> None:
    """``ragged.checkpoint`` is a C-level call for speed; to users it is a function of no arguments."""
    import inspect

    cp = ragged.checkpoint
    assert cp.__name__ == "checkpoint"
    assert "cheap safe point" in (cp.__doc__ or "")
    assert not inspect.signature(cp).parameters
    with pytest.raises(TypeError):
        cp(1)  # type: ignore[call-arg]

    # It returns whatever the process-wide slot holds now (fast, or trapping
    # while some runtime has a request pending); the fast value is a no-op
    # awaitable: awaiting it finishes at once.
    from ragged._core import _traps

    assert cp() is _traps._slot[0]

    async def await_fast() -> None:
        await _traps._FAST

    with pytest.raises(StopIteration):
        await_fast().send(None)
