"""The machinery of the bad-input table (``test_badinput.py``): rows, where they run, row builders.

A ``Row`` is one bad call, made on the test's plain thread (``T``) or inside
a goroutine (``G``: the row is an ``async`` function and the goroutine returns
what it raised); ``run_row`` makes the call and returns what it raised.  The
builders below are shared by many rows: functions of the wrong kind
(``sync_fn``, ``async_gen``), closed channels and runtimes, goroutine handles
(``parked``, ``finished``), a connection (``conn``), and wrappers that turn a call into a row
(``drive``, ``in_asyncio``, ``g_go``, ``g_call``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from types import SimpleNamespace
from typing import Any

import ragged

T, G = "thread", "goroutine"
NAN = math.nan

# Numbers every duration, timeout and deadline must take (none is bad input: see
# ragged/_core/_timeout.py): the edges, and what the fuzz test (tests/stress/
# test_fuzz_api.py) found -- a period below the clock's resolution livelocked the
# timer heap (1e-300, 5e-324), an int beyond any float overflowed a setting (10**400).
EDGE_NUMBERS: list[Any] = [
    0,
    -0.0,
    5e-324,
    1e-300,
    1e-6,
    0.01,
    -1,
    -1e-9,
    -1e300,
    1e10,
    1e300,
    10**400,
    -(10**400),
    math.inf,
    -math.inf,
    Fraction(1, 3),
    Fraction(10**500, 7),
]
# Values of the wrong type for any of them (a TypeError; NaN is the ValueError).
WRONG_TYPES: list[Any] = ["1", b"1", None, True, False, 1j, Decimal("0.1"), [1], object()]


def sync_fn(*args: Any) -> int:
    """A plain function: wrong wherever a coroutine function belongs."""
    return 1


async def async_fn(*args: Any) -> int:
    """A well-formed goroutine body."""
    return 1


async def async_gen() -> Any:
    """An async generator function: not a coroutine function either."""
    yield 1


class Env(SimpleNamespace):
    """What a row may use: ``rt`` (the runtime under test), ``closed_rt`` (a closed runtime,
    made on the test's thread) and ``cleanup`` (callables run after the row)."""

    rt: ragged.Runtime
    closed_rt: ragged.Runtime
    cleanup: list[Callable[[], Any]]


@dataclass
class Row:
    """One bad call: where it runs, the call, the exception it must raise."""

    id: str
    where: str
    call: Callable[[Env], Any]
    expected: type[BaseException]
    sub: type[BaseException] | None = None  # for an ExceptionGroup: the exact type of every member


def closed_chan() -> ragged.Chan[int]:
    """A closed channel with capacity 1."""
    ch: ragged.Chan[int] = ragged.Chan(1)
    ch.close()
    return ch


def closed_runtime() -> ragged.Runtime:
    """A runtime that was started and closed."""
    rt = ragged.Runtime(procs=1)
    rt.close()
    return rt


def in_asyncio(fn: Callable[[], Any]) -> None:
    """``await fn()`` inside an asyncio task (a coroutine that is not a goroutine)."""
    import asyncio

    async def main() -> None:
        await fn()

    asyncio.run(main())


def drive(coro: Any) -> None:
    """Run an ``await``-only API outside any goroutine: its first step must raise."""
    try:
        coro.send(None)
    finally:
        coro.close()


def g_go(fn: Any, *args: Any, **kw: Any) -> Any:
    """``ragged.go`` as an awaitable row (the call itself is synchronous)."""

    async def call() -> None:
        ragged.go(fn, *args, **kw)

    return call()


def g_call(fn: Any, *args: Any) -> Any:
    """Make a synchronous goroutine-side call (after/Timer/Ticker) into an awaitable row."""

    async def call() -> None:
        fn(*args)

    return call()


def parked(e: Env) -> ragged.Goroutine:
    """A goroutine of ``e.rt`` parked on a channel; the row's cleanup cancels it."""
    ch: ragged.Chan[int] = ragged.Chan()

    async def wait() -> None:
        await ch.recv()

    g = e.rt.go(wait)
    e.cleanup.append(g.cancel)
    return g


def conn(e: Env) -> ragged.net.Conn:
    """A ``ragged.net.Conn`` over one end of a socket pair; the row's cleanup closes both ends."""
    import socket

    a, b = socket.socketpair()
    c = ragged.net.Conn(a)
    e.cleanup.extend([c.close, b.close])
    return c


def finished(e: Env) -> ragged.Goroutine:
    """A goroutine of ``e.rt`` that has already returned."""
    g = e.rt.go(async_fn)
    g.result(timeout=10)
    return g


def run_row(row: Row, rt: ragged.Runtime, e: Env) -> BaseException | None:
    """Make the row's call where it belongs; return what it raised (None if nothing)."""
    if row.where == T:
        try:
            row.call(e)
        except BaseException as err:  # noqa: BLE001 - examined by the caller
            return err
        return None

    async def body() -> BaseException | None:
        try:
            await row.call(e)
        except BaseException as err:  # noqa: BLE001 - examined by the caller
            return err
        return None

    return rt.go(body, name=row.id).result(timeout=20)
