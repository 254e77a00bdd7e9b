"""Handles from another runtime: goroutines, channels and sync objects shared between runtimes.

They are not errors where the operation is well-defined: joining a goroutine
of runtime A from a goroutine of runtime B works (the joiner is woken through
its own scheduler), and so do channels and sync objects shared between
runtimes and ``rt_a.go`` from a goroutine of B.  Stopping A's world from a
goroutine of B is refused (``RaggedError``), and a blocking plain-thread call
on A from a goroutine of B is ``NotInPlainThread``.  After each, both
runtimes still work.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from _badinput import sync_fn
from _invariants import check_still_works
from conftest import wait_until

import ragged

# ---------------------------------------------------------------- handles from another runtime


async def _value(x: int) -> int:
    await ragged.sleep(0.01)
    return x


@pytest.mark.timeout(60)
def test_joining_a_goroutine_of_another_runtime_works() -> None:
    """``await g`` where g belongs to runtime A, from a goroutine of runtime B: returns its value
    (the joiner is woken through B's scheduler); errors propagate the same way."""
    with ragged.Runtime(procs=2) as a, ragged.Runtime(procs=2) as b:
        ga = a.go(_value, 7)

        async def bad() -> None:
            await ragged.sleep(0.01)
            raise ValueError("from A")

        gbad = a.go(bad)

        async def join_from_b() -> tuple[int, str]:
            v = await ga
            try:
                await gbad
            except ValueError as err:
                return v, str(err)
            return v, "no error"

        assert b.go(join_from_b).result(timeout=20) == (7, "from A")
        check_still_works(a, "cross-runtime join (A)")
        check_still_works(b, "cross-runtime join (B)")


@pytest.mark.timeout(60)
def test_a_channel_and_a_mutex_shared_between_runtimes_work() -> None:
    """A goroutine of A sends, one of B receives, over one channel; a Mutex serialises both."""
    with ragged.Runtime(procs=2) as a, ragged.Runtime(procs=2) as b:
        ch: ragged.Chan[int] = ragged.Chan()
        mu = ragged.Mutex()
        box = [0]

        async def producer() -> None:
            for i in range(200):
                await ch.send(i)
                async with mu:
                    box[0] += 1
            ch.close()

        async def consumer() -> int:
            total = 0
            async for v in ch:
                async with mu:
                    box[0] += 1
                total += v
            return total

        gp = a.go(producer)
        assert b.go(consumer).result(timeout=30) == sum(range(200))
        gp.result(timeout=30)
        assert box[0] == 400
        check_still_works(a, "shared channel (A)")
        check_still_works(b, "shared channel (B)")


@pytest.mark.timeout(60)
def test_spawning_and_cancelling_on_another_runtime_from_a_goroutine() -> None:
    """``rt_a.go`` and ``g_a.cancel()`` from a goroutine of B act on A."""
    with ragged.Runtime(procs=2) as a, ragged.Runtime(procs=2) as b:

        async def forever() -> None:
            await ragged.sleep(3600)

        async def from_b() -> tuple[int, bool]:
            g1 = a.go(_value, 3)
            g2 = a.go(forever)
            v = await g1
            g2.cancel()
            try:
                await g2
            except ragged.Cancelled:
                return v, True
            return v, False

        assert b.go(from_b).result(timeout=20) == (3, True)
        check_still_works(a, "cross-runtime spawn (A)")


CROSS_ROWS: list[tuple[str, Callable[[ragged.Runtime], Any], type[BaseException]]] = [
    ("stop-the-world-of-another-runtime", lambda a: _astw(a), ragged.RaggedError),
    ("for_each_p-of-another-runtime", lambda a: _call_in_g(lambda: a.for_each_p(sync_fn)), ragged.NotInPlainThread),
    ("set_procs-of-another-runtime", lambda a: _call_in_g(lambda: a.set_procs(1)), ragged.NotInPlainThread),
    (
        "result-of-another-runtimes-goroutine",
        lambda a: _call_in_g(lambda: a.go(_value, 1).result()),
        ragged.NotInPlainThread,
    ),
]


async def _astw(a: ragged.Runtime) -> None:
    async with a.stop_the_world("from another runtime"):
        pass


async def _call_in_g(fn: Callable[[], Any]) -> None:
    fn()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name,call,expected", CROSS_ROWS, ids=[r[0] for r in CROSS_ROWS])
def test_world_operations_on_another_runtime_from_a_goroutine_are_refused(
    name: str, call: Callable[[ragged.Runtime], Any], expected: type[BaseException]
) -> None:
    """Stopping or resizing runtime A from a goroutine of B, or blocking B's M on A, raises."""
    with ragged.Runtime(procs=2) as a, ragged.Runtime(procs=2) as b:

        async def body() -> BaseException | None:
            try:
                await call(a)
            except BaseException as err:  # noqa: BLE001 - examined below
                return err
            return None

        err = b.go(body).result(timeout=20)
        assert type(err) is expected, f"{name}: {err!r}"
        wait_until(lambda: not a._sched.allgs, 10, "A's goroutines to finish")
        check_still_works(a, name + " (A)")
        check_still_works(b, name + " (B)")
