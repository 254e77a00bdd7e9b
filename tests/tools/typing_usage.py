"""What a user's type checker sees of ragged: ``tests/tools/test_typing.py`` runs mypy on this file.

Each ``assert_type`` fails mypy unless the expression has exactly that type
(``Any`` does not pass), and each line in :func:`misuses` carries a targeted
``# type: ignore[code]`` that mypy must find needed (``--warn-unused-ignores``):
if ragged's annotations got looser, the ignore would become unused and mypy
would fail.  The file is also run as a program (``main_thread()``), so every
claim here is true at run time as well.  It is not collected by pytest.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any, assert_type

import ragged


async def square(x: int) -> int:
    return x * x


async def repeat(text: str, times: int) -> str:
    return text * times


async def nothing() -> None:
    pass


def encode(text: str) -> bytes:
    return text.encode()


async def in_goroutine() -> int:
    g = ragged.go(square, 3)
    assert_type(g, ragged.Goroutine[int])
    n: int = await g
    assert_type(await ragged.go(repeat, "ab", 2, name="rep"), str)
    assert_type(await ragged.go(square(5)), int)  # a coroutine object
    assert_type(await ragged.go(nothing), None)
    assert_type(await ragged.syscall(encode, "x"), bytes)
    await ragged.checkpoint()
    await ragged.gosched()

    ch: ragged.Chan[int] = ragged.Chan(2)
    await ch.send(7)
    assert_type(await ch.recv(), int)
    ch.close()
    assert_type(await ch.recv_ok(), tuple[int | None, bool])
    async for v in ch:
        assert_type(v, int)
    assert_type(ch.try_recv(), tuple[int | None, bool])

    i, got = await ragged.select(ragged.after(0).recv_case(), default=False)
    assert_type(i, int)
    assert_type(ragged.after(0), ragged.Chan[float])

    per_p = ragged.PerP(lambda: [0])
    assert_type(per_p.get(), list[int])
    assert_type(ragged.current_p(), ragged.P)
    assert_type(ragged.current_goroutine(), ragged.Goroutine[Any])
    await ragged.for_each_p(lambda p: per_p.of(p).append(p.id))
    assert_type(await ragged.set_procs(2), int)
    return n


def main_thread() -> int:
    """The plain-thread side, then ``ragged.run``; returns what ``in_goroutine`` returned."""
    with ragged.Runtime(procs=2) as rt:
        g = rt.go(square, 4)
        assert_type(g.result(timeout=10), int)
        fut = rt.submit(repeat, "b", 3)
        assert_type(fut, concurrent.futures.Future[str])
        assert_type(fut.result(timeout=10), str)
        ch: ragged.Chan[str] = ragged.Chan(1)
        ch.send_blocking("x", timeout=10)
        assert_type(ch.recv_blocking(timeout=10), str)
        assert_type(rt.metrics(), dict[str, Any])
    return assert_type(ragged.run(in_goroutine, procs=2), int)


async def misuses(g: ragged.Goroutine[int], ch: ragged.Chan[int], rt: ragged.Runtime) -> None:
    """Wrong uses a type checker must flag.  Never called."""
    s: str = await g  # type: ignore[assignment]
    t: str = g.result()  # type: ignore[assignment]
    await ch.send("x")  # type: ignore[arg-type]
    u: str = await ch.recv()  # type: ignore[assignment]
    ragged.go(square, "3")  # type: ignore[arg-type]
    ragged.go(square)  # type: ignore[arg-type]
    rt.go(repeat, "a")  # type: ignore[arg-type]
    await ragged.syscall(encode, 1)  # type: ignore[arg-type]
    f: concurrent.futures.Future[int] = rt.submit(repeat, "a", 1)  # type: ignore[arg-type]
    w: str = ragged.run(square, 1)  # type: ignore[assignment]
    del s, t, u, f, w


if __name__ == "__main__":
    print(main_thread())
