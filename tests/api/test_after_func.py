"""ragged.after_func: fires once in its own goroutine; stop() and reset() as Go's AfterFunc timer."""

from __future__ import annotations

import contextvars
import gc
import time
import warnings

import pytest

import ragged
from ragged import AtomicInt, Chan, after_func

REQUEST = contextvars.ContextVar("REQUEST", default="none")


async def record(ch: Chan[tuple[int, str, float]]) -> None:
    await ch.send((ragged.current_goroutine().id, REQUEST.get(), time.monotonic()))


@pytest.mark.timeout(30)
def test_fires_once_after_the_delay_in_its_own_goroutine_with_the_callers_context() -> None:
    async def main() -> tuple[float, int, str, int, bool, bool]:
        REQUEST.set("r42")
        ch: Chan[tuple[int, str, float]] = Chan(4)
        t0 = time.monotonic()
        t = after_func(0.03, record, ch, name="late")
        gid, req, at = await ch.recv()
        await ragged.sleep(0.05)
        return at - t0, gid, req, len(ch), gid != ragged.current_goroutine().id, t.stop()

    waited, gid, req, left, own, stopped = ragged.run(main, procs=2)
    assert waited >= 0.029
    assert req == "r42"  # a copy of the caller's contextvars, as ragged.go gives
    assert own
    assert left == 0  # once, ever
    assert stopped is False  # fn had started: stop() reports it did not prevent it


@pytest.mark.timeout(30)
def test_stop_before_it_fires_prevents_it_and_says_so() -> None:
    async def main() -> tuple[bool, bool, int]:
        ran = AtomicInt()

        async def fn() -> None:
            ran.add(1)

        t = after_func(0.02, fn)
        first = t.stop()
        second = t.stop()
        await ragged.sleep(0.06)
        return first, second, ran.load()

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the stopped timer's coroutine is closed, not left unawaited
        assert ragged.run(main, procs=2) == (True, False, 0)
        gc.collect()


@pytest.mark.timeout(30)
def test_reset_reschedules_a_pending_call_or_schedules_another() -> None:
    async def main() -> tuple[bool, float, bool, int, bool, int]:
        ran = AtomicInt()
        ch: Chan[float] = Chan(4)

        async def fn() -> None:
            ran.add(1)
            await ch.send(time.monotonic())

        t0 = time.monotonic()
        t = after_func(0.01, fn)
        pending = t.reset(0.05)  # before it fired: rescheduled
        at = await ch.recv()
        again = t.reset(0.0)  # after it fired: schedules fn to run again
        await ch.recv()
        await ragged.sleep(0.03)
        stopped = t.reset(0.02)
        assert t.stop()  # reset-then-stop: it never ran a third time
        await ragged.sleep(0.04)
        return pending, at - t0, again, ran.load(), stopped, len(ch)

    pending, waited, again, ran, stopped, left = ragged.run(main, procs=2)
    assert pending is True and waited >= 0.049
    assert again is False
    assert ran == 2 and left == 0
    assert stopped is False


@pytest.mark.timeout(120)
@pytest.mark.parametrize("rep", range(3))
def test_stop_racing_the_firing_has_exactly_one_winner(rep: int) -> None:
    """Either stop() returns True and fn never runs, or it returns False and fn runs: never both, never neither."""

    async def main() -> list[tuple[bool, int]]:
        out = []
        for i in range(200):
            ran = AtomicInt()

            async def fn(ran: AtomicInt = ran) -> None:
                ran.add(1)

            t = after_func(0.0002 * (i % 5), fn)
            if i % 3:
                time.sleep(0.0002 * (i % 4))  # holds the P: another M fires the timer
            stopped = t.stop()
            await ragged.sleep(0.002 if stopped else 0)
            deadline = time.monotonic() + 10
            while not stopped and not ran.load() and time.monotonic() < deadline:
                await ragged.sleep(0.001)
            out.append((stopped, ran.load()))
        return out

    got = ragged.run(main, procs=2)
    assert set(got) <= {(True, 0), (False, 1)}
    assert (True, 0) in got  # the zero-delay rounds aside, most stops come first


@pytest.mark.timeout(30)
def test_from_a_plain_thread_with_runtime_and_errors_are_reported() -> None:
    ch: Chan[int] = Chan(1)

    async def fn(v: int) -> None:
        await ch.send(v)

    async def bad() -> None:
        raise KeyError("in after_func")

    with pytest.raises(ragged.NotInGoroutine, match="runtime=rt"):
        after_func(0.01, fn, 1)
    with ragged.Runtime(procs=2) as rt:
        after_func(0.01, fn, 7, runtime=rt)
        assert ch.recv_blocking(timeout=10) == 7
        with pytest.raises(TypeError, match="async function"):
            after_func(0.01, time.sleep, 1, runtime=rt)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="name must be a str"):
            after_func(0.01, fn, 1, name=3, runtime=rt)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            after_func("soon", fn, 1, runtime=rt)  # type: ignore[arg-type]

    async def main() -> None:
        after_func(0, bad)
        await ragged.sleep(0.05)

    with pytest.raises(KeyError, match="in after_func"):
        ragged.run(main, procs=2)  # nobody joins it: reported as Go reports a panic
