"""Fault injection (issue 7): every fault ends in a clear error or a clean shutdown.

Faults: a ``for_each_p`` callback that raises on some Ps; goroutines that raise
at random; syscalls that raise; closing the runtime while a barrier, a
stop-the-world or a blocking channel operation is in progress on another
thread; a ``KeyboardInterrupt`` in ``ragged.run``.  Each test asserts the
outcome (which exception, where), that nothing hangs (every wait is bounded)
and that no runtime thread is left behind (the autouse fixture in conftest,
and explicit checks where the runtime is closed mid-test).  Where the runtime
survives the fault, a barrier and a spawn+join must still work afterwards.
"""

from __future__ import annotations

import _thread
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from _invariants import BarrierLog, check_p_statuses, check_quiescent
from conftest import ragged_threads, spin, wait_until

import ragged


class Boom(Exception):
    """The fault injected by these tests."""


class HardBoom(BaseException):
    """A fault that is not an ``Exception`` (like KeyboardInterrupt or SystemExit)."""


async def _double(x: int) -> int:
    await ragged.gosched()
    return 2 * x


def assert_still_works(rt: ragged.Runtime) -> None:
    """A barrier from a plain thread and a spawn+join both succeed; the scheduler is quiescent."""
    log = BarrierLog()
    rt.for_each_p(log, timeout=20)
    log.check(rt.procs, what="barrier after the fault")
    assert rt.go(_double, 21).result(timeout=20) == 42
    check_quiescent(rt)
    check_p_statuses(rt)


def no_runtime_threads_left(before: set[threading.Thread]) -> None:
    """Every runtime thread started since ``before`` has exited (within a grace period)."""
    wait_until(lambda: not (ragged_threads() - before), 5, "runtime threads to exit")


# ---------------------------------------------------------------- fn raises on some Ps


@pytest.mark.timeout(30)
def test_fn_raising_on_one_p_reaches_the_caller_after_every_p_ran() -> None:
    """One P's callback raises: the barrier still runs fn on every P, then raises that error itself."""
    with ragged.Runtime(procs=4) as rt:
        seen: list[int] = []

        def fn(p: ragged.P) -> None:
            seen.append(p.id)
            if p.id == 2:
                raise Boom("on P2")

        with pytest.raises(Boom) as info:
            rt.for_each_p(fn)
        assert type(info.value) is Boom
        assert sorted(seen) == [0, 1, 2, 3]
        assert any("P2" in note for note in getattr(info.value, "__notes__", []))
        assert rt.metrics()["barrier_fn_errors"] == 1
        assert_still_works(rt)


@pytest.mark.timeout(30)
def test_fn_raising_on_several_busy_ps_gives_an_exception_group() -> None:
    """fn raises on two Ps while compute goroutines keep every P busy: an ExceptionGroup of both."""
    with ragged.Runtime(procs=4) as rt:
        stop = threading.Event()

        async def busy() -> None:
            while not stop.is_set():
                spin(300)
                await ragged.checkpoint()

        gs = [rt.go(busy) for _ in range(4)]
        time.sleep(0.05)
        seen: list[int] = []

        def fn(p: ragged.P) -> None:
            seen.append(p.id)
            if p.id in (1, 3):
                raise Boom(f"on P{p.id}")

        try:
            with pytest.raises(ExceptionGroup) as info:
                rt.for_each_p(fn)
        finally:
            stop.set()
        assert sorted(seen) == [0, 1, 2, 3]
        errs = info.value.exceptions
        assert len(errs) == 2 and all(type(e) is Boom for e in errs)
        assert sorted(str(e) for e in errs) == ["on P1", "on P3"]
        for g in gs:
            g.result(timeout=10)
        assert_still_works(rt)


@pytest.mark.timeout(30)
def test_fn_raising_in_a_goroutine_barrier_including_the_callers_own_p() -> None:
    """From a goroutine: fn raising on the caller's own P and another arrives at the ``await``."""
    with ragged.Runtime(procs=3) as rt:

        async def coordinator() -> tuple[list[int], int, list[str]]:
            me = ragged.current_p().id
            other = (me + 1) % 3
            seen: list[int] = []

            def fn(p: ragged.P) -> None:
                seen.append(p.id)
                if p.id in (me, other):
                    raise Boom(f"P{p.id}")

            try:
                await ragged.for_each_p(fn)
            except ExceptionGroup as eg:
                return sorted(seen), len(eg.exceptions), sorted(str(e) for e in eg.exceptions)
            raise AssertionError("for_each_p did not raise")

        seen, n, msgs = rt.go(coordinator).result(timeout=20)
        assert seen == [0, 1, 2]
        assert n == 2 and len(msgs) == 2
        assert_still_works(rt)


@pytest.mark.timeout(30)
def test_fn_raising_a_base_exception_still_completes_the_barrier() -> None:
    """A BaseException (not an Exception) from fn is delivered as is; the barrier still completed."""
    with ragged.Runtime(procs=2) as rt:
        seen: list[int] = []

        def fn(p: ragged.P) -> None:
            seen.append(p.id)
            if p.id == 0:
                raise HardBoom()

        with pytest.raises(HardBoom):
            rt.for_each_p(fn)
        assert sorted(seen) == [0, 1]

        def fn_all(p: ragged.P) -> None:
            raise HardBoom()

        with pytest.raises(BaseExceptionGroup) as info:
            rt.for_each_p(fn_all)
        assert not isinstance(info.value, ExceptionGroup)
        assert len(info.value.exceptions) == 2
        assert_still_works(rt)


@pytest.mark.timeout(60)
def test_fn_raising_at_random_across_many_barriers_under_load() -> None:
    """Many barriers, each raising on a random subset of Ps, under syscall and sleep churn."""
    seed = 7
    rng = random.Random(seed)
    with ragged.Runtime(procs=4) as rt:
        stop = threading.Event()

        async def churn(k: int) -> int:
            n = 0
            while not stop.is_set():
                if k % 2:
                    await ragged.syscall(time.sleep, 0.0002)
                else:
                    await ragged.sleep(0.0002)
                n += 1
            return n

        gs = [rt.go(churn, k) for k in range(6)]
        try:
            for i in range(150):
                bad = {p for p in range(4) if rng.random() < 0.3}
                seen: list[int] = []

                def fn(p: ragged.P, bad: set[int] = bad, seen: list[int] = seen) -> None:
                    seen.append(p.id)
                    if p.id in bad:
                        raise Boom(p.id)

                try:
                    rt.for_each_p(fn, timeout=20)
                except Boom as err:
                    assert len(bad) == 1 and err.args == (next(iter(bad)),), f"barrier {i} seed={seed}"
                except ExceptionGroup as eg:
                    assert sorted(e.args[0] for e in eg.exceptions) == sorted(bad), f"barrier {i} seed={seed}"
                else:
                    assert not bad, f"barrier {i}: fn raised on {bad} but the caller saw nothing (seed={seed})"
                assert sorted(seen) == [0, 1, 2, 3], f"barrier {i} seed={seed}"
        finally:
            stop.set()
        for g in gs:
            g.result(timeout=10)
        assert_still_works(rt)


# ---------------------------------------------------------------- goroutines raise


@pytest.mark.timeout(60)
def test_goroutines_raising_at_random_reach_their_joiners() -> None:
    """Goroutines raise at random points (after sleeps, syscalls, channel ops); every joiner,
    in a goroutine or a plain thread, gets exactly the right outcome; the unjoined ones are reported."""
    seed = 12
    rng = random.Random(seed)
    n = 200
    plan = [(rng.random() < 0.4, rng.randrange(4), rng.randrange(3)) for _ in range(n)]
    with ragged.Runtime(procs=4) as rt:
        ch: ragged.Chan[int] = ragged.Chan(8)

        async def worker(i: int, fails: bool, where: int, steps: int) -> int:
            for _ in range(steps):
                if where == 0:
                    await ragged.sleep(0.0005)
                elif where == 1:
                    await ragged.syscall(time.sleep, 0.0002)
                elif where == 2:
                    await ch.send(i)
                    await ch.recv()
                else:
                    await ragged.gosched()
            if fails:
                raise Boom(i)
            return i

        gs = [rt.go(worker, i, *plan[i]) for i in range(n)]
        # Join the first half from a goroutine, the rest (but the last 20) from this thread.
        half = n // 2

        async def join_some() -> list[tuple[str, Any]]:
            out = []
            for g in gs[:half]:
                try:
                    out.append(("ok", await g))
                except Boom as err:
                    out.append(("boom", err.args[0]))
            return out

        from_goroutine = rt.go(join_some).result(timeout=30)
        from_thread = []
        for g in gs[half:-20]:
            try:
                from_thread.append(("ok", g.result(timeout=30)))
            except Boom as err:
                from_thread.append(("boom", err.args[0]))
        for i, got in enumerate(from_goroutine + from_thread):
            want = ("boom", i) if plan[i][0] else ("ok", i)
            assert got == want, f"goroutine {i}: got {got}, want {want} (seed={seed})"
        for g in gs[-20:]:
            wait_until(g.done, 30, "the unjoined goroutines to finish")
        unjoined = {g.id for g, err in rt.unjoined_errors()}
        expect = {g.id for i, g in enumerate(gs) if plan[i][0] and i >= n - 20}
        assert unjoined == expect, f"seed={seed}"
        assert_still_works(rt)


@pytest.mark.timeout(30)
def test_run_fails_with_the_error_of_an_unjoined_goroutine_that_raised_at_random() -> None:
    """``ragged.run``: a goroutine nobody joins raises; run returns nothing and raises it after main."""

    async def bad() -> None:
        await ragged.sleep(0.001)
        raise Boom("lost")

    async def main() -> str:
        ragged.go(bad)
        await ragged.sleep(0.05)
        return "main done"

    before = ragged_threads()
    with pytest.raises(Boom, match="lost"):
        ragged.run(main, procs=2)
    no_runtime_threads_left(before)


# ---------------------------------------------------------------- syscalls raise


@pytest.mark.timeout(60)
def test_syscalls_that_raise_under_barriers_and_stop_the_world() -> None:
    """Blocking calls that raise (some after their P was retaken) deliver their error to the
    goroutine, on whatever P it resumes, while barriers and stop-the-worlds run from a thread."""
    seed = 3
    with ragged.Runtime(procs=4) as rt:

        def call(i: int, fails: bool, nap: float) -> int:
            time.sleep(nap)  # long enough for sysmon to retake the P now and then
            if fails:
                raise OSError(i, "injected")
            return i

        async def caller(k: int) -> tuple[int, int]:
            rng = random.Random(seed * 100 + k)
            ok = bad = 0
            for j in range(40):
                fails = rng.random() < 0.5
                try:
                    v = await ragged.syscall(call, j, fails, rng.choice([0.0, 0.0001, 0.001]))
                except OSError as err:
                    assert fails and err.args == (j, "injected"), f"caller {k} call {j} seed={seed}"
                    bad += 1
                else:
                    assert not fails and v == j, f"caller {k} call {j} seed={seed}"
                    ok += 1
            return ok, bad

        stop = threading.Event()
        counts = {"barriers": 0, "stws": 0}

        def coordinator() -> None:
            while not stop.is_set():
                log = BarrierLog()
                rt.for_each_p(log, timeout=20)
                log.check(rt.procs, seed)
                counts["barriers"] += 1
                with rt.stop_the_world("faults"):
                    counts["stws"] += 1

        t = threading.Thread(target=coordinator, daemon=True)
        t.start()
        try:
            gs = [rt.go(caller, k) for k in range(6)]
            results = [g.result(timeout=40) for g in gs]
        finally:
            stop.set()
            t.join(20)
        assert not t.is_alive()
        assert all(ok + bad == 40 for ok, bad in results)
        assert sum(bad for _, bad in results) > 0
        assert counts["barriers"] > 0
        assert_still_works(rt)


@pytest.mark.timeout(30)
def test_syscall_raising_base_exception_reaches_the_goroutine_and_joiner() -> None:
    """A syscall raising a BaseException ends that goroutine with it; the runtime goes on."""
    with ragged.Runtime(procs=2) as rt:

        def hard() -> None:
            raise HardBoom()

        async def g() -> None:
            await ragged.syscall(hard)

        with pytest.raises(HardBoom):
            rt.go(g).result(timeout=10)
        assert_still_works(rt)


# ---------------------------------------------------------------- close mid-operation


def _straggler(started: threading.Event, seconds: float) -> Callable[[], Any]:
    """A goroutine that computes for ``seconds`` without reaching any safe point."""

    async def straggler() -> str:
        started.set()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            spin(500)
        return "straggled"

    return straggler


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
    rt = ragged.Runtime(procs=2, straggler_timeout=30)
    started = threading.Event()
    g = rt.go(_straggler(started, 0.6))
    started.wait(10)
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
    rt = ragged.Runtime(procs=2, straggler_timeout=30)
    started = threading.Event()
    g = rt.go(_straggler(started, 0.6))
    started.wait(10)
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
    rt = ragged.Runtime(procs=2, straggler_timeout=30)
    started = threading.Event()
    g = rt.go(_straggler(started, 0.6))
    started.wait(10)

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


@contextmanager
def sigint_default() -> Iterator[None]:
    """Make sure SIGINT raises KeyboardInterrupt in the main thread for the duration."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


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

    with sigint_default():
        timer = threading.Timer(0.3, fire)
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            try:
                ragged.run(main, procs=2)
            finally:
                timer.cancel()  # never deliver it once we are out of pytest.raises
                timer.join()
                time.sleep(0.01)
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

    with sigint_default():
        timer = threading.Timer(0.3, _thread.interrupt_main)
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            try:
                ragged.run(main, procs=2)
            finally:
                timer.cancel()  # never deliver it once we are out of pytest.raises
                timer.join()
                time.sleep(0.01)  # a pending interrupt lands here at the latest
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
        with sigint_default():
            timer = threading.Timer(0.3, _thread.interrupt_main)
            timer.start()
            try:
                try:
                    outcome.append(("returned", getattr(g, wait)(), g.done()))
                finally:
                    timer.cancel()  # never deliver it once we are out of this block
                    timer.join()
                    time.sleep(0.01)  # a pending interrupt lands here at the latest
            except KeyboardInterrupt:
                outcome.append(("KeyboardInterrupt", None, g.done()))
        assert outcome == [("KeyboardInterrupt", None, False)], (
            f"g.{wait}() gave {outcome} (what, value, goroutine done) instead of raising KeyboardInterrupt "
            "while the goroutine still ran"
        )
        g.cancel()
