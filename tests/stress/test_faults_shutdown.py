"""Fault injection: faults that end the runtime end in a clean shutdown.

Faults: closing the runtime while a barrier, a stop-the-world or a blocking
channel operation is in progress on another thread; a ``KeyboardInterrupt``
in ``ragged.run`` or while a plain thread joins a goroutine.  Each test
asserts the outcome (which exception, where), that nothing hangs (every wait
is bounded) and that no runtime thread is left behind (the autouse fixture in
conftest, and explicit checks where the runtime is closed mid-test).
"""

from __future__ import annotations

import _thread
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from _invariants import BarrierLog
from conftest import interrupt_after, no_runtime_threads_left, ragged_threads, spin, wait_until

import ragged

# ---------------------------------------------------------------- close mid-operation


def _runtime_with_straggler(seconds: float = 0.6) -> tuple[ragged.Runtime, ragged.Goroutine]:
    """A 2-P runtime and its goroutine that holds its P for ``seconds`` without reaching any safe point.

    It blocks in C (``time.sleep``), where not even an asynchronous preemption reaches it (a loop in
    Python would be reached on CPython 3.12+).  The goroutine has started when this returns; the
    caller closes the runtime.
    """
    rt = ragged.Runtime(procs=2, straggler_timeout=30)
    started = threading.Event()

    async def straggler() -> str:
        started.set()
        time.sleep(seconds)  # no ragged.syscall: the P stays held
        return "straggled"

    g = rt.go(straggler)
    started.wait(10)
    return rt, g


@contextmanager
def in_thread(fn: Callable[[], Any]) -> Iterator[list[Any]]:
    """Run ``fn`` on a daemon thread; yield a list that gets ("ok", value) or ("err", exception).

    On exit the thread must have ended within 20 s (no hang).
    """
    out: list[Any] = []

    def body() -> None:
        try:
            out.append(("ok", fn()))
        except BaseException as err:  # noqa: BLE001 - examined by the test
            out.append(("err", err))

    t = threading.Thread(target=body, daemon=True)
    t.start()
    try:
        yield out
    finally:
        t.join(20)
        assert not t.is_alive(), "the thread is still blocked (a hang)"


@pytest.mark.timeout(60)
def test_close_while_a_thread_barrier_waits_for_a_straggler() -> None:
    """close() from one thread while another's barrier waits for a goroutine with no safe point:
    the straggler ends, the barrier completes (exactly once per P), close returns, no thread remains."""
    before = ragged_threads()
    rt, g = _runtime_with_straggler()
    log = BarrierLog()
    with in_thread(lambda: rt.for_each_p(log)) as out:
        wait_until(lambda: rt._sched.safe_point_fn is log, 10, "the barrier to start")
        rt.close()
    assert out == [("ok", None)], out
    log.check(2)
    assert g.done() and g.result(timeout=1) == "straggled"
    no_runtime_threads_left(before)


@pytest.mark.timeout(60)
def test_close_while_a_goroutine_barrier_waits_for_a_straggler() -> None:
    """Same, with the barrier issued by a goroutine: it completes, then the goroutine finishes."""
    before = ragged_threads()
    rt, g = _runtime_with_straggler()
    log = BarrierLog()

    async def coordinator() -> str:
        await ragged.for_each_p(log)
        return "barrier done"

    c = rt.go(coordinator)
    wait_until(lambda: rt._sched.safe_point_fn is log, 10, "the barrier to start")
    rt.close()
    assert c.done() and g.done()
    assert c.result(timeout=1) == "barrier done"
    log.check(2)
    no_runtime_threads_left(before)


@pytest.mark.timeout(60)
def test_close_while_a_stop_the_world_waits_for_a_straggler() -> None:
    """close() while another thread's stop-the-world waits for a straggler: the world stops, the
    section runs, the world restarts, close returns; nothing hangs, no thread remains."""
    before = ragged_threads()
    rt, g = _runtime_with_straggler()

    def stw() -> str:
        with rt.stop_the_world("during close"):
            return "section ran"

    with in_thread(stw) as out:
        wait_until(lambda: rt._sched.gcwaiting, 10, "the stop-the-world to start")
        rt.close()
    assert out == [("ok", "section ran")], out
    assert g.done()
    no_runtime_threads_left(before)


@pytest.mark.timeout(60)
def test_close_while_another_thread_holds_the_world_stopped() -> None:
    """close() while a thread is inside its stop-the-world section: goroutines (parked, busy,
    sleeping) are cancelled once the section ends; close returns; no thread remains."""
    before = ragged_threads()
    rt = ragged.Runtime(procs=2, shutdown_timeout=10)
    ch: ragged.Chan[int] = ragged.Chan()

    async def parked() -> int:
        return await ch.recv()

    async def busy() -> None:
        while True:
            spin(200)
            await ragged.checkpoint()

    async def sleeper() -> None:
        await ragged.sleep(3600)

    gs = [rt.go(parked), rt.go(busy), rt.go(sleeper)]
    time.sleep(0.05)
    inside = threading.Event()
    release = threading.Event()

    def holder() -> str:
        with rt.stop_the_world("held during close"):
            inside.set()
            release.wait(20)
        return "left the section"

    with in_thread(holder) as out:
        inside.wait(10)
        threading.Timer(0.3, release.set).start()
        rt.close()
    assert out == [("ok", "left the section")], out
    for g in gs:
        assert g.done()
        with pytest.raises(ragged.Cancelled):
            g.result(timeout=1)
    no_runtime_threads_left(before)


def _used_channel(rt: ragged.Runtime, cap: int) -> ragged.Chan[int]:
    """A channel a goroutine of ``rt`` has parked on (so the runtime knows its plain-thread waiters)."""
    ch: ragged.Chan[int] = ragged.Chan(cap)

    async def use() -> int:
        return await ch.recv()

    g = rt.go(use)
    wait_until(lambda: g.status == "waiting", 10, "the goroutine to park on the channel")
    ch.send_blocking(5, timeout=10)
    assert g.result(timeout=10) == 5
    return ch


@pytest.mark.timeout(60)
@pytest.mark.parametrize("op", ["recv_blocking", "send_blocking"])
def test_close_while_a_plain_thread_is_blocked_on_a_channel_raises_runtime_closed(op: str) -> None:
    """A plain thread blocked (no timeout) on a channel the runtime's goroutines used, while
    close() runs: nothing will ever complete its operation, so it must not hang; it gets
    ``RuntimeClosed`` (as deadlock detection wakes such threads with ``Deadlock``)."""
    before = ragged_threads()
    rt = ragged.Runtime(procs=2)
    ch = _used_channel(rt, 0)
    call = ch.recv_blocking if op == "recv_blocking" else (lambda: ch.send_blocking(1))
    with in_thread(call) as out:
        try:
            wait_until(lambda: bool(rt._sched.thread_waiters), 10, "the thread to block")
            rt.close()
            deadline = time.monotonic() + 5
            while not out and time.monotonic() < deadline:
                time.sleep(0.005)
            returned = bool(out)
        finally:
            rt.close()
            if not ch._closed:
                ch.close()  # release the thread if the runtime did not, so the test ends
    assert returned, f"{op} was still blocked 5s after close() returned; closing the channel released it: {out}"
    assert len(out) == 1 and out[0][0] == "err", out
    assert type(out[0][1]) is ragged.RuntimeClosed, out
    no_runtime_threads_left(before)


@pytest.mark.timeout(60)
def test_close_while_a_goroutine_is_blocked_on_a_channel_with_a_thread_peer() -> None:
    """Goroutines blocked on a channel whose other end is a plain thread are cancelled by close();
    the thread's later operation on the channel does not hang (it times out: nobody is there)."""
    before = ragged_threads()
    rt = ragged.Runtime(procs=2)
    ch: ragged.Chan[int] = ragged.Chan()

    async def recv() -> int:
        return await ch.recv()

    gs = [rt.go(recv) for _ in range(3)]
    wait_until(lambda: all(g.status == "waiting" for g in gs), 10, "receivers to park")
    rt.close()
    for g in gs:
        with pytest.raises(ragged.Cancelled):
            g.result(timeout=1)
    with pytest.raises(TimeoutError):
        ch.send_blocking(1, timeout=0.05)
    no_runtime_threads_left(before)


# ---------------------------------------------------------------- KeyboardInterrupt in ragged.run


@pytest.mark.timeout(30)
def test_keyboard_interrupt_raised_inside_main_propagates_and_shuts_down() -> None:
    """main raises KeyboardInterrupt: run() raises it, the runtime is shut down, no thread remains."""
    before = ragged_threads()
    cleaned = threading.Event()

    async def child() -> None:
        try:
            await ragged.sleep(3600)
        finally:
            cleaned.set()

    async def main() -> None:
        ragged.go(child)
        await ragged.sleep(0.01)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ragged.run(main, procs=2)
    assert cleaned.is_set(), "the other goroutine's finally block did not run at shutdown"
    no_runtime_threads_left(before)


@pytest.mark.timeout(30)
def test_keyboard_interrupt_in_a_joined_goroutine_reaches_run() -> None:
    """A goroutine raising KeyboardInterrupt, joined by main, ends run() with it."""
    before = ragged_threads()

    async def child() -> None:
        await ragged.syscall(time.sleep, 0.001)
        raise KeyboardInterrupt

    async def main() -> None:
        await ragged.go(child)

    with pytest.raises(KeyboardInterrupt):
        ragged.run(main, procs=2)
    no_runtime_threads_left(before)


@pytest.mark.timeout(30)
def test_sigint_while_run_waits_interrupts_it() -> None:
    """A real SIGINT to the main thread while run() waits for main: run raises KeyboardInterrupt
    promptly, main is cancelled (its finally runs), and no runtime thread remains."""
    assert threading.current_thread() is threading.main_thread()
    before = ragged_threads()
    finished = threading.Event()
    cleaned = threading.Event()

    async def main() -> None:
        try:
            await ragged.sleep(20)
            finished.set()
        finally:
            cleaned.set()

    def fire() -> None:
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    with pytest.raises(KeyboardInterrupt), interrupt_after(0.3, fire):
        ragged.run(main, procs=2)
    assert not finished.is_set(), "run() only returned after main finished"
    assert cleaned.is_set(), "main's finally block did not run"
    no_runtime_threads_left(before)


@pytest.mark.timeout(30)
def test_interrupt_main_while_run_waits_interrupts_it() -> None:
    """``_thread.interrupt_main()`` (how a program or a test harness simulates Ctrl-C) while
    run() waits for main: run must raise KeyboardInterrupt before main finishes on its own,
    as ``asyncio.run`` does, and shut down cleanly."""
    assert threading.current_thread() is threading.main_thread()
    before = ragged_threads()
    finished = threading.Event()

    async def main() -> None:
        await ragged.sleep(3)  # bounded: a run that is never interrupted still ends
        finished.set()

    with pytest.raises(KeyboardInterrupt), interrupt_after(0.3, _thread.interrupt_main):
        ragged.run(main, procs=2)
    assert not finished.is_set(), "run() was not interrupted: it only noticed the interrupt after main finished"
    no_runtime_threads_left(before)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("wait", ["result", "exception"])
def test_keyboard_interrupt_while_a_plain_thread_joins_a_goroutine_propagates(wait: str) -> None:
    """Ctrl-C while the main thread waits in ``g.result()`` / ``g.exception()``: the wait raises
    KeyboardInterrupt; it must not be swallowed (``exception()`` returning None would claim the
    still-running goroutine finished without error)."""
    assert threading.current_thread() is threading.main_thread()
    with ragged.Runtime(procs=2) as rt:

        async def slow() -> str:
            await ragged.sleep(3)  # bounded: an uninterrupted wait still ends
            return "finished"

        g = rt.go(slow)
        outcome: list[Any] = []
        try:
            with interrupt_after(0.3, _thread.interrupt_main):
                outcome.append(("returned", getattr(g, wait)(), g.done()))
        except KeyboardInterrupt:
            outcome.append(("KeyboardInterrupt", None, g.done()))
        assert outcome == [("KeyboardInterrupt", None, False)], (
            f"g.{wait}() gave {outcome} (what, value, goroutine done) instead of raising KeyboardInterrupt "
            "while the goroutine still ran"
        )
        g.cancel()
