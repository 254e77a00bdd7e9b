"""Go's own sync.Cond tests, ported: src/sync/cond_test.go.

See ``test_go_chan.py`` and ``test_go_sync.py`` for the rules of the port.
Not ported: ``TestCondCopy``, which detects a ``sync.Cond`` copied by value;
a Python object is never copied by assignment.
"""

from __future__ import annotations

import pytest
from test_go_chan import go_run, nothing_in

import ragged


def _cond_setup(n: int) -> tuple[ragged.Mutex, ragged.Cond, ragged.Chan[bool], ragged.Chan[int]]:
    """A Mutex, a Cond over it, and the running/awake channels of n waiters."""
    m = ragged.Mutex()
    return m, ragged.Cond(m), ragged.Chan(n), ragged.Chan(n)


async def _cond_waiter(c: ragged.Cond, running: ragged.Chan[bool], awake: ragged.Chan[int], i: int) -> None:
    """The waiter of TestCondSignal and TestCondSignalGenerations: lock, say so, wait, say who woke."""
    await c.L.lock()
    await running.send(True)
    await c.wait()
    await awake.send(i)
    c.L.unlock()


@pytest.mark.timeout(60)
def test_go_cond_signal() -> None:
    """TestCondSignal: each Signal wakes exactly one of the waiters; a last Signal with nobody
    waiting is harmless."""

    async def main() -> None:
        n = 2
        m, c, running, awake = _cond_setup(n)
        for i in range(n):
            ragged.go(_cond_waiter, c, running, awake, i)
        for _ in range(n):
            await running.recv()  # wait for everyone to run
        while n > 0:
            assert await nothing_in(awake), "goroutine not asleep"
            await m.lock()
            c.signal()
            m.unlock()
            await awake.recv()  # will deadlock if no goroutine wakes up
            assert await nothing_in(awake), "too many goroutines awake"
            n -= 1
        c.signal()

    go_run(main)


@pytest.mark.timeout(60)
def test_go_cond_signal_generations() -> None:
    """TestCondSignalGenerations: 100 waiters, one signalled per step, wake in the order they
    waited."""

    async def main() -> None:
        n = 100
        m, c, running, awake = _cond_setup(n)
        for i in range(n):
            ragged.go(_cond_waiter, c, running, awake, i)
            if i > 0:
                a = await awake.recv()
                assert a == i - 1, f"wrong goroutine woke up: want {i - 1}, got {a}"
            await running.recv()
            await m.lock()
            c.signal()
            m.unlock()

    go_run(main)


@pytest.mark.timeout(120)
def test_go_cond_broadcast() -> None:
    """TestCondBroadcast: every Broadcast wakes every waiter exactly once, n rounds of n waiters,
    then they all exit.  n = 40 (Go: 200; it is n^2 wake-ups)."""

    async def main() -> None:
        m = ragged.Mutex()
        c = ragged.Cond(m)
        n = 40
        running: ragged.Chan[int] = ragged.Chan(n)
        awake: ragged.Chan[int] = ragged.Chan(n)
        exit_ = [False]

        async def waiter(g: int) -> None:
            await m.lock()
            while not exit_[0]:
                await running.send(g)
                await c.wait()
                await awake.send(g)
            m.unlock()

        for i in range(n):
            ragged.go(waiter, i)
        for i in range(n):
            for _ in range(n):
                await running.recv()  # will deadlock unless n are running
            if i == n - 1:
                await m.lock()
                exit_[0] = True
                m.unlock()
            assert await nothing_in(awake), "goroutine not asleep"
            await m.lock()
            c.broadcast()
            m.unlock()
            seen = [False] * n
            for _ in range(n):
                g = await awake.recv()
                assert not seen[g], "goroutine woke up twice"
                seen[g] = True
        assert await nothing_in(running), "goroutine did not exit"
        c.broadcast()

    go_run(main)


@pytest.mark.timeout(60)
def test_go_cond_race() -> None:
    """TestRace (cond_test.go): three goroutines hand a value 1 -> 2 -> 3 around through Wait and
    Signal under the Cond's lock; each sees the value the protocol promises."""

    async def main() -> None:
        x = [0]
        c = ragged.Cond(ragged.Mutex())
        done: ragged.Chan[bool] = ragged.Chan()
        errs: list[str] = []

        async def yield_lock() -> None:
            # Go's c.L.Unlock(); runtime.Gosched(); c.L.Lock()
            c.L.unlock()
            await ragged.gosched()
            await c.L.lock()

        async def first() -> None:
            await c.L.lock()
            x[0] = 1
            await c.wait()
            if x[0] != 2:
                errs.append("want 2")
            x[0] = 3
            c.signal()
            c.L.unlock()
            await done.send(True)

        async def second() -> None:
            await c.L.lock()
            while True:
                if x[0] == 1:
                    x[0] = 2
                    c.signal()
                    break
                await yield_lock()
            c.L.unlock()
            await done.send(True)

        async def third() -> None:
            await c.L.lock()
            while True:
                if x[0] == 2:
                    await c.wait()
                    if x[0] != 3:
                        errs.append("want 3")
                    break
                if x[0] == 3:
                    break
                await yield_lock()
            c.L.unlock()
            await done.send(True)

        for f in (first, second, third):
            ragged.go(f)
        for _ in range(3):
            await done.recv()
        assert not errs, errs

    go_run(main)


@pytest.mark.timeout(120)
def test_go_cond_signal_stealing() -> None:
    """TestCondSignalStealing: a Broadcast racing a new waiter must still wake the waiter that
    was already in Wait (within 2s).  200 rounds (Go: 1000)."""

    async def main() -> None:
        for it in range(200):
            m = ragged.Mutex()
            cond = ragged.Cond(m)
            ch: ragged.Chan[None] = ragged.Chan()

            async def first(m: ragged.Mutex = m, cond: ragged.Cond = cond, ch: ragged.Chan[None] = ch) -> None:
                await m.lock()
                await ch.send(None)
                await cond.wait()
                m.unlock()
                await ch.send(None)

            ragged.go(first)
            await ch.recv()
            await m.lock()
            m.unlock()
            # The waiter is in cond.wait() now.  Race a Broadcast against a new waiter.
            done = [False]

            async def broadcaster(cond: ragged.Cond = cond) -> None:
                cond.broadcast()

            async def second(m: ragged.Mutex = m, cond: ragged.Cond = cond, done: list[bool] = done) -> None:
                await m.lock()
                while not done[0]:
                    await cond.wait()
                m.unlock()

            ragged.go(broadcaster)
            ragged.go(second)
            k, _ = await ragged.select(ch.recv_case(), ragged.after(2).recv_case())
            assert k == 0, f"first waiter didn't get broadcast (round {it})"
            await m.lock()
            done[0] = True
            m.unlock()
            cond.broadcast()

    go_run(main)
