"""What the "Coming from Go" guide promises: ctx.wait(), receives on closed channels, loop variables."""

from __future__ import annotations

import threading
import time

import pytest

import ragged
from ragged import Chan, ChanClosed, background, select, with_cancel, with_timeout


@pytest.mark.timeout(30)
def test_ctx_wait_is_the_port_of_receiving_from_done() -> None:
    async def waiter(ctx: ragged.Context) -> BaseException:
        return await ctx.wait()

    async def main() -> tuple[str, str, str, bool]:
        ctx, cancel = with_cancel(background())
        g = ragged.go(waiter, ctx)
        await ragged.sleep(0.01)
        assert not g.done()
        cancel()
        cancelled = await g
        tctx, _ = with_timeout(background(), 0.01)
        expired = await tctx.wait()
        again = await ctx.wait()  # already done: returns at once
        with pytest.raises(ChanClosed):
            await ctx.done().recv()  # what ctx.wait() is for: recv() raises on a closed channel
        return type(cancelled).__name__, type(expired).__name__, type(again).__name__, cancelled is ctx.err()

    assert ragged.run(main, procs=2) == ("Cancelled", "DeadlineExceeded", "Cancelled", True)


@pytest.mark.timeout(30)
def test_ctx_wait_on_background_waits_until_the_goroutine_is_cancelled() -> None:
    async def main() -> str:
        g = ragged.go(background().wait)
        await ragged.sleep(0.01)
        g.cancel()
        try:
            await g
        except ragged.Cancelled:
            return "cancelled"
        return "returned"

    assert ragged.run(main, procs=1) == "cancelled"


@pytest.mark.timeout(30)
def test_ctx_wait_blocking_from_a_plain_thread() -> None:
    ctx, cancel = with_cancel(background())
    with pytest.raises(TimeoutError):
        ctx.wait_blocking(timeout=0.01)
    threading.Timer(0.02, cancel).start()
    t0 = time.monotonic()
    assert isinstance(ctx.wait_blocking(timeout=10), ragged.Cancelled)
    assert time.monotonic() - t0 < 9

    async def main() -> None:
        ctx.wait_blocking()

    with pytest.raises(ragged.NotInPlainThread):
        ragged.run(main, procs=1)


@pytest.mark.timeout(30)
def test_receiving_from_a_closed_channel_three_ways() -> None:
    async def main() -> tuple[tuple[object, bool], tuple[int, object], tuple[int, object], list[int]]:
        ch: Chan[int] = Chan(2)
        await ch.send(1)
        ch.close()
        got = [v async for v in ch]  # for v := range ch
        ok = await ch.recv_ok()  # v, ok := <-ch
        sel = await select(ch.recv_case(with_ok=True))  # case v, ok := <-ch:
        plain = await select(ch.recv_case())  # case v := <-ch: (the zero value is None)
        return ok, sel, plain, got

    ok, sel, plain, got = ragged.run(main, procs=1)
    assert got == [1]
    assert ok == (None, False)
    assert sel == (0, (None, False))
    assert plain == (0, None)


@pytest.mark.timeout(30)
def test_go_passes_loop_variables_by_value_where_a_closure_sees_the_last() -> None:
    async def show(i: int) -> int:
        await ragged.gosched()
        return i

    async def main() -> tuple[list[int], list[int]]:
        by_value = [ragged.go(show, i) for i in range(5)]
        closures = []
        for i in range(5):

            async def late() -> int:
                await ragged.gosched()
                return i  # noqa: B023 - the late binding is the point of this test

            closures.append(ragged.go(late))
        return [await g for g in by_value], [await g for g in closures]

    by_value, closures = ragged.run(main, procs=1)  # one P: none runs before main's loop is over
    assert by_value == [0, 1, 2, 3, 4]
    assert closures == [4, 4, 4, 4, 4]
