"""The Go-style Context tree: cancel, values and deadlines (``g.cancel()`` itself is in core/test_cancel.py)."""

from __future__ import annotations

import time

import pytest

import ragged
from ragged import (
    Cancelled,
    Chan,
    DeadlineExceeded,
    background,
    select,
    with_cancel,
    with_deadline,
    with_timeout,
    with_value,
)

# ---------------------------------------------------------------- Context


def test_background_is_never_done() -> None:
    ctx = background()
    assert ctx is background()
    assert ctx.err() is None and ctx.deadline() is None and ctx.value("k") is None
    assert ctx.done().try_recv() == (None, False) and len(ctx.done()) == 0


def test_with_cancel_cancels_the_subtree_only() -> None:
    root, cancel_root = with_cancel(background())
    a, cancel_a = with_cancel(root)
    b, _ = with_cancel(root)
    a1, _ = with_cancel(with_value(a, "k", 1))
    cancel_a()
    assert isinstance(a.err(), Cancelled) and "context canceled" in str(a.err())
    assert a1.err() is a.err()
    assert a.done().try_recv() == (None, False) and a.done()._closed
    assert b.err() is None and root.err() is None
    assert a not in root._children  # a cancelled child leaves its parent
    cancel_a()  # idempotent
    cancel_root()
    assert isinstance(b.err(), Cancelled) and root._children == set()
    late, _ = with_cancel(root)  # a child of a cancelled parent starts cancelled
    assert late.err() is root.err()


def test_with_value_looks_up_the_chain() -> None:
    key = object()
    ctx = with_value(with_value(background(), key, "outer"), "name", "inner")
    child, cancel = with_cancel(ctx)
    assert child.value(key) == "outer" and child.value("name") == "inner" and child.value("x") is None
    shadow = with_value(child, key, "shadow")
    assert shadow.value(key) == "shadow"
    cancel()
    assert isinstance(shadow.err(), Cancelled)  # values share their parent's cancellation
    with pytest.raises(TypeError, match="not None"):
        with_value(ctx, None, 1)
    with pytest.raises(TypeError, match="parent Context"):
        with_cancel(None)  # type: ignore[arg-type]


@pytest.mark.timeout(30)
def test_deadline_cancels_with_deadline_exceeded() -> None:
    async def main() -> tuple[float, BaseException | None]:
        ctx, cancel = with_timeout(background(), 0.03)
        assert ctx.deadline() is not None and ctx.err() is None
        t0 = time.monotonic()
        await ctx.done().recv_ok()
        cancel()  # after the fact: harmless, the error stays
        return time.monotonic() - t0, ctx.err()

    waited, err = ragged.run(main, procs=2)
    assert 0.02 <= waited < 5
    assert isinstance(err, DeadlineExceeded) and isinstance(err, TimeoutError) and isinstance(err, Cancelled)


@pytest.mark.timeout(30)
def test_earlier_parent_deadline_wins_and_past_deadlines_fire_at_once() -> None:
    async def main() -> None:
        parent, _ = with_timeout(background(), 0.02)
        child, _ = with_timeout(parent, 60)
        assert child.deadline() == parent.deadline()
        await child.done().recv_ok()
        assert isinstance(child.err(), DeadlineExceeded)
        past, _ = with_deadline(background(), time.monotonic() - 1)
        assert isinstance(past.err(), DeadlineExceeded)

    ragged.run(main, procs=1)


@pytest.mark.timeout(30)
def test_cancel_stops_the_deadline_timer() -> None:
    async def main() -> tuple[int, int]:
        timers = ragged.current_runtime()._sched.timers
        before = len(timers)
        ctx, cancel = with_timeout(background(), 60)
        during = len(timers)
        cancel()
        return during - before, len(timers) - before

    assert ragged.run(main, procs=1) == (1, 0)


def test_deadline_from_a_plain_thread_needs_a_runtime() -> None:
    with pytest.raises(ragged.NotInGoroutine, match="runtime="):
        with_timeout(background(), 1)
    with pytest.raises(ValueError):
        with_timeout(background(), float("nan"))
    expired, _ = with_timeout(background(), -1)  # already expired: no timer, so no runtime needed
    assert isinstance(expired.err(), ragged.DeadlineExceeded)
    with ragged.Runtime(procs=1) as rt:
        ctx, _ = with_timeout(background(), 0.01, runtime=rt)
        assert ctx.err() is None
        with pytest.raises(ragged.ChanClosed):  # a plain thread waits for done() to close
            ctx.done().recv_blocking(timeout=5)
        assert isinstance(ctx.err(), DeadlineExceeded)


@pytest.mark.timeout(60)
def test_workers_stop_when_their_context_is_cancelled() -> None:
    """The Go pattern: workers select on ctx.done() beside their work channel."""

    async def worker(ctx: ragged.Context, jobs: Chan[int], results: Chan[int]) -> str:
        while True:
            i, v = await select(ctx.done().recv_case(), jobs.recv_case())
            if i == 0:
                return "stopped: " + type(ctx.err()).__name__
            await results.send(v * v)

    async def main() -> tuple[list[int], list[str]]:
        ctx, cancel = with_cancel(background())
        jobs: Chan[int] = Chan()
        results: Chan[int] = Chan(100)
        gs = [ragged.go(worker, ctx, jobs, results) for _ in range(20)]
        for v in range(100):
            await jobs.send(v)
        cancel()
        outs = [await g for g in gs]
        return sorted([await results.recv() for _ in range(100)]), outs

    squares, outs = ragged.run(main, procs=4)
    assert squares == sorted(v * v for v in range(100))
    assert outs == ["stopped: Cancelled"] * 20


@pytest.mark.timeout(60)
def test_deadline_bounds_a_slow_operation() -> None:
    async def slow(out: Chan[str]) -> None:
        await ragged.sleep(5)
        await out.send("late")

    async def main() -> tuple[int, str]:
        ctx, cancel = with_timeout(background(), 0.03)
        out: Chan[str] = Chan(1)
        g = ragged.go(slow, out)
        i, _ = await select(out.recv_case(), ctx.done().recv_case())
        g.cancel()
        cancel()
        return i, type(ctx.err()).__name__

    assert ragged.run(main, procs=2) == (1, "DeadlineExceeded")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("rep", range(3))
def test_concurrent_cancels_and_children_race_cleanly(rep: int) -> None:
    """Children register while the parent is cancelled from another thread: each child ends up cancelled."""
    with ragged.Runtime(procs=4) as rt:
        parent, cancel = with_cancel(background())

        async def spawn_children(out: list[ragged.Context]) -> None:
            for _ in range(300):
                c, _ = with_cancel(parent)
                out.append(c)
                await ragged.checkpoint()

        lists: list[list[ragged.Context]] = [[] for _ in range(4)]
        gs = [rt.go(spawn_children, lst) for lst in lists]
        time.sleep(0.001)
        cancel()
        for g in gs:
            g.result(timeout=10)
        kids = [c for lst in lists for c in lst]
        assert all(isinstance(c.err(), Cancelled) for c in kids)
        assert parent._children == set()
