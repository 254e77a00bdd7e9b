"""Goroutine.cancel: a sleeping, busy or not-yet-started goroutine is cancelled at its next
await (once), from a goroutine or a plain thread; its finally blocks run; cancelling is not
an error for ragged.run; every kind of wait can be cancelled.  (A goroutine cancelled by
close() cannot spawn: tests/api/test_errors.py.)"""

from __future__ import annotations

import threading
import time

import pytest
from conftest import run_threads, spin, wait_until

import ragged

# ---------------------------------------------------------------- cancellation


@pytest.mark.timeout(30)
def test_cancel_sleeping_goroutine() -> None:
    events: list[str] = []

    async def sleeper() -> None:
        try:
            await ragged.sleep(60)
            events.append("woke normally")
        except ragged.Cancelled:
            events.append("cancelled")
            raise
        finally:
            events.append("finally")

    with ragged.Runtime(procs=2) as rt:
        g = rt.go(sleeper)
        wait_until(lambda: g.status == "waiting", what="sleeper to park")
        t0 = time.monotonic()
        assert g.cancel() is True
        with pytest.raises(ragged.Cancelled):
            g.result(timeout=10)
        assert time.monotonic() - t0 < 30  # did not wait for the 60s sleep
        assert g.cancel() is False  # already finished
    assert events == ["cancelled", "finally"]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("procs", [1, 2])
def test_cancel_busy_goroutine_at_checkpoint_from_goroutine(procs: int) -> None:
    events: list[str] = []

    async def busy(started: list[bool]) -> int:
        n = 0
        try:
            while True:
                started.append(True)
                n += 1
                await ragged.checkpoint()
        except ragged.Cancelled:
            events.append(f"cancelled after {n > 0}")
            raise
        finally:
            events.append("finally")

    async def main() -> None:
        started: list[bool] = []
        g = ragged.go(busy, started)
        while not started:
            await ragged.gosched()
        g.cancel()
        with pytest.raises(ragged.Cancelled):
            await g

    ragged.run(main, procs=procs)
    assert events == ["cancelled after True", "finally"]


@pytest.mark.timeout(30)
def test_cancel_busy_goroutine_from_plain_thread() -> None:
    events: list[str] = []
    started = threading.Event()

    async def busy() -> None:
        try:
            while True:
                started.set()
                await ragged.checkpoint()
        finally:
            events.append("finally")

    with ragged.Runtime(procs=2) as rt:
        g = rt.go(busy)
        assert started.wait(10)
        g.cancel()
        with pytest.raises(ragged.Cancelled):
            g.result(timeout=10)
    assert events == ["finally"]


@pytest.mark.timeout(30)
def test_cancel_before_first_run_never_runs_the_body() -> None:
    ran: list[bool] = []

    async def body() -> None:
        ran.append(True)

    with ragged.Runtime(procs=2) as rt:
        with rt.stop_the_world("hold the goroutine before it starts"):
            g = rt.go(body)
            assert g.cancel() is True
        with pytest.raises(ragged.Cancelled):
            g.result(timeout=10)
    assert ran == []


@pytest.mark.timeout(30)
def test_cancelled_unjoined_goroutine_does_not_fail_run() -> None:
    async def sleeper() -> None:
        await ragged.sleep(60)

    async def main() -> str:
        g = ragged.go(sleeper)
        await ragged.sleep(0.01)
        g.cancel()
        await ragged.sleep(0.01)
        return "ok"

    assert ragged.run(main, procs=2) == "ok"


def _reset_checkpoint_hint() -> int:
    """Clear the process-wide checkpoint hint (after a failure, for the tests that follow); return
    how many arms were outstanding."""
    from ragged._core import _traps

    with _traps._pending_lock:
        n = _traps._pending
        _traps._pending = 0
        _traps._slot[0] = _traps._FAST
    return n


@pytest.mark.timeout(120)
def test_cancel_racing_the_goroutines_exit_leaves_no_checkpoint_arm_behind() -> None:
    """Threads cancel goroutines over and over while they finish: once they are all done, no
    cancellation request is left armed.  A request armed for a goroutine that had already left
    its M was never dropped: the process-wide checkpoint hint stayed armed, so every checkpoint of
    every runtime trapped to its M from then on (on 3.13t in 31 rounds of 40)."""
    from ragged._core import _traps

    async def quick(n: int) -> int:
        return spin(n)

    leaked = []
    for rnd in range(25):
        with ragged.Runtime(procs=4) as rt:
            gs = [rt.go(quick, (i % 7) * 30) for i in range(200)]

            def hammer(k: int, gs: list[ragged.Goroutine] = gs) -> None:
                while not all(g.done() for g in gs):
                    for g in gs:
                        g.cancel()

            assert not run_threads(hammer, 2, 60)
        if _traps._pending:
            leaked.append((rnd, _reset_checkpoint_hint()))
    assert not leaked, f"(round, arms left armed): {leaked}"
    assert not _traps.pending()


@pytest.mark.timeout(30)
def test_cancel_raises_at_the_current_await() -> None:
    async def sleeper() -> None:
        await ragged.sleep(30)

    async def main() -> float:
        g = ragged.go(sleeper)
        while g.status != "waiting":
            await ragged.sleep(0.001)
        t0 = time.monotonic()
        assert g.cancel() is True
        with pytest.raises(ragged.Cancelled):
            await g
        return time.monotonic() - t0

    assert ragged.run(main, procs=2) < 5


@pytest.mark.timeout(30)
def test_cancel_raises_at_the_next_await_of_a_running_goroutine() -> None:
    started = threading.Event()
    stop = threading.Event()

    async def busy() -> int:
        n = 0
        started.set()
        while not stop.is_set():  # no await: cannot be interrupted here
            n += 1
        await ragged.checkpoint()  # the cancel lands here
        return n

    with ragged.Runtime(procs=2) as rt:
        g = rt.go(busy)
        started.wait(5)
        g.cancel()
        time.sleep(0.01)
        assert not g.done()
        stop.set()
        with pytest.raises(ragged.Cancelled):
            g.result(timeout=10)


@pytest.mark.timeout(30)
def test_cancel_is_delivered_once_and_may_be_caught() -> None:
    async def stubborn() -> str:
        try:
            await ragged.sleep(30)
        except ragged.Cancelled:
            pass
        await ragged.sleep(0.01)  # not cancelled again
        return "survived"

    async def main() -> tuple[str, bool]:
        g = ragged.go(stubborn)
        while g.status != "waiting":
            await ragged.sleep(0.001)
        g.cancel()
        r = await g
        return r, g.cancel()  # finished: cancel() returns False

    assert ragged.run(main, procs=2) == ("survived", False)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("where", ["chan", "select", "mutex", "waitgroup"])
def test_cancel_interrupts_every_kind_of_wait(where: str) -> None:
    ch: ragged.Chan[int] = ragged.Chan()
    full: ragged.Chan[int] = ragged.Chan()
    mu = ragged.Mutex()
    wg = ragged.WaitGroup()

    async def waiter() -> None:
        if where == "chan":
            await ch.recv()
        elif where == "select":
            await ragged.select(ch.recv_case(), full.send_case(1))
        elif where == "mutex":
            await mu.lock()
        else:
            await wg.wait()

    async def main() -> None:
        await mu.lock()
        wg.add(1)
        gs = [ragged.go(waiter) for _ in range(50)]
        while not all(g.status == "waiting" for g in gs):
            await ragged.sleep(0.001)
        for g in gs:
            g.cancel()
        for g in gs:
            with pytest.raises(ragged.Cancelled):
                await g
        assert len(ch._recvq) == len(full._sendq) == len(mu._q) == len(wg._q) == 0

    ragged.run(main, procs=4)
