"""Runtime lifecycle and the goroutine handle: run, Runtime, go, submit, join,
exceptions, contextvars and shutdown.  Cancellation is in test_cancel.py,
sleep and checkpoint in test_sleep.py."""

from __future__ import annotations

import concurrent.futures
import contextvars
import logging
import threading
import time

import pytest
from conftest import ragged_threads, run_threads, wait_until

import ragged

# ---------------------------------------------------------------- ragged.run


@pytest.mark.timeout(30)
def test_run_returns_mains_result() -> None:
    async def main(a: int, b: int) -> tuple[int, str]:
        return a + b, ragged.current_goroutine().name

    assert ragged.run(main, 2, 3, procs=2) == (5, "main")


@pytest.mark.timeout(30)
def test_run_reraises_mains_exception() -> None:
    async def main() -> None:
        raise KeyError("from main")

    with pytest.raises(KeyError, match="from main"):
        ragged.run(main, procs=1)


@pytest.mark.timeout(30)
def test_run_reraises_unjoined_goroutine_exception_after_main_returns() -> None:
    main_returned = threading.Event()

    async def bad() -> None:
        raise ValueError("nobody joined me")

    async def main() -> str:
        ragged.go(bad, name="bad-child")
        await ragged.sleep(0.02)
        main_returned.set()
        return "main result"

    with pytest.raises(ValueError, match="nobody joined me") as info:
        ragged.run(main, procs=2)
    assert main_returned.is_set()
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "bad-child" in notes


@pytest.mark.timeout(30)
def test_run_with_several_unjoined_exceptions_raises_a_group() -> None:
    async def bad(i: int) -> None:
        raise ValueError(f"child {i}")

    async def main() -> None:
        for i in range(3):
            ragged.go(bad, i)
        await ragged.sleep(0.02)

    with pytest.raises(ExceptionGroup) as info:
        ragged.run(main, procs=2)
    assert sorted(str(e) for e in info.value.exceptions) == ["child 0", "child 1", "child 2"]


@pytest.mark.timeout(30)
def test_run_check_unjoined_false_returns_mains_result_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    async def bad() -> None:
        raise ValueError("ignored")

    async def main() -> tuple[int, int]:
        g = ragged.go(bad, name="logged-child")
        await ragged.sleep(0.02)
        return 7, g.id

    caplog.set_level(logging.ERROR, logger="ragged")
    result, gid = ragged.run(main, procs=2, check_unjoined=False)
    assert result == 7
    # Not raised, but still reported, with the goroutine's id and name.
    assert any(str(gid) in r.getMessage() and "logged-child" in r.getMessage() for r in caplog.records), caplog.text


@pytest.mark.timeout(30)
def test_run_does_not_reraise_joined_exception() -> None:
    async def bad() -> None:
        raise ValueError("joined")

    async def main() -> str:
        g = ragged.go(bad)
        try:
            await g
        except ValueError as e:
            return f"caught {e}"
        return "not raised"

    assert ragged.run(main, procs=2) == "caught joined"


# ---------------------------------------------------------------- exceptions reach the joiner


@pytest.mark.timeout(30)
@pytest.mark.parametrize("procs", [1, 4])
def test_exception_reaches_goroutine_joiner(procs: int) -> None:
    class Boom(Exception):
        pass

    async def bad(i: int) -> None:
        await ragged.gosched()
        raise Boom(i)

    async def main() -> list[int]:
        gs = [ragged.go(bad, i) for i in range(50)]
        seen = []
        for g in gs:
            with pytest.raises(Boom) as info:
                await g
            seen.append(info.value.args[0])
        return seen

    assert ragged.run(main, procs=procs) == list(range(50))


@pytest.mark.timeout(30)
def test_exception_reaches_plain_thread_joiner_and_is_kept() -> None:
    async def bad() -> None:
        raise ZeroDivisionError("kept on the handle")

    with ragged.Runtime(procs=2) as rt:
        g = rt.go(bad)
        with pytest.raises(ZeroDivisionError, match="kept on the handle"):
            g.result(timeout=10)
        # Joining again raises the same exception again.
        with pytest.raises(ZeroDivisionError):
            g.result(timeout=10)
        assert isinstance(g.exception(timeout=10), ZeroDivisionError)
        assert g.done()


@pytest.mark.timeout(30)
def test_base_exception_reaches_joiner() -> None:
    async def bad() -> None:
        raise KeyboardInterrupt

    with ragged.Runtime(procs=1) as rt:
        with pytest.raises(KeyboardInterrupt):
            rt.go(bad).result(timeout=10)


# ---------------------------------------------------------------- Runtime as a context manager


@pytest.mark.timeout(30)
def test_runtime_context_manager_and_idempotent_close() -> None:
    async def f(x: int) -> int:
        return x * 3

    with ragged.Runtime(procs=2) as rt:
        assert not rt.closed
        assert rt.procs == 2
        assert rt.go(f, 5).result(timeout=10) == 15
    assert rt.closed
    rt.close()
    rt.close()
    assert rt.closed
    assert "closed" in repr(rt)


@pytest.mark.timeout(30)
def test_default_procs_is_cpu_count() -> None:
    import os

    with ragged.Runtime() as rt:
        assert rt.procs == (os.cpu_count() or 1)


@pytest.mark.timeout(30)
def test_close_cancels_blocked_goroutines_and_runs_their_finally() -> None:
    finals: list[str] = []
    caught: list[type] = []
    lock = threading.Lock()

    async def sleeper() -> None:
        try:
            await ragged.sleep(60)
        except BaseException as e:
            caught.append(type(e))
            raise
        finally:
            with lock:
                finals.append("sleeper")

    async def joiner(g: ragged.Goroutine) -> None:
        try:
            await g
        finally:
            with lock:
                finals.append("joiner")

    busy_started = threading.Event()

    async def busy() -> None:
        try:
            busy_started.set()
            while True:
                await ragged.checkpoint()
        finally:
            with lock:
                finals.append("busy")

    rt = ragged.Runtime(procs=2)
    with rt:
        s = rt.go(sleeper)
        j = rt.go(joiner, s)
        b = rt.go(busy)
        # busy must be inside its try: a goroutine cancelled before it first
        # runs never enters its body (seen on 3.13t, where the other two can
        # park before busy's P gets to it).
        wait_until(
            lambda: s.status == "waiting" and j.status == "waiting" and busy_started.is_set(),
            what="goroutines to park and busy to start",
        )
    assert sorted(finals) == ["busy", "joiner", "sleeper"]
    assert caught == [ragged.Cancelled]
    for g in (s, j, b):
        assert g.done()
        with pytest.raises(ragged.Cancelled):
            g.result(timeout=1)


@pytest.mark.timeout(30)
def test_close_waits_for_goroutine_in_syscall_and_stops_every_thread() -> None:
    before = ragged_threads()
    finally_ran = threading.Event()
    in_syscall = threading.Event()

    def blocking() -> str:
        in_syscall.set()
        time.sleep(0.2)
        return "back"

    async def g_fn() -> None:
        try:
            await ragged.syscall(blocking)
            await ragged.sleep(60)  # the cancel is delivered at this await at the latest
        finally:
            finally_ran.set()

    rt = ragged.Runtime(procs=2)
    started: set[threading.Thread] = set()
    try:
        rt.go(g_fn)
        assert in_syscall.wait(10)
        started = ragged_threads() - before
    finally:
        rt.close()
    assert finally_ran.is_set()
    assert started, "the runtime started no threads?"
    assert [t.name for t in started if t.is_alive()] == []


@pytest.mark.timeout(30)
def test_close_while_a_new_m_thread_is_still_starting(monkeypatch: pytest.MonkeyPatch) -> None:
    """close() racing with startm(): an M whose thread is created but not yet started.

    Under CPU load ``Thread.start()`` can take a long time to return; slowing it
    down here makes the window deterministic.  close() must neither raise nor
    leave the thread behind (the autouse fixture checks it exits).
    """
    real_start = threading.Thread.start
    m_starting = threading.Event()

    def slow_start(self: threading.Thread) -> None:
        if self.name.startswith("ragged-M"):
            m_starting.set()
            time.sleep(0.3)
        real_start(self)

    async def noop() -> None:
        pass

    rt = ragged.Runtime(procs=2, shutdown_timeout=0)
    try:
        monkeypatch.setattr(threading.Thread, "start", slow_start)
        spawner = threading.Thread(target=rt.go, args=(noop,))
        spawner.start()
        assert m_starting.wait(10)
    finally:
        rt.close()
    spawner.join(10)
    assert rt.closed


@pytest.mark.timeout(60)
@pytest.mark.parametrize("procs", [1, 4, 8])
def test_no_runtime_thread_alive_after_close(procs: int) -> None:
    """Every M and sysmon the runtime started has exited when close() returns."""
    before = set(threading.enumerate())

    def blocking(i: int) -> int:
        time.sleep(0.001)
        return i

    async def worker(i: int) -> int:
        await ragged.gosched()
        v = await ragged.syscall(blocking, i)
        await ragged.sleep(0.001)
        return v

    async def main() -> int:
        gs = [ragged.go(worker, i) for i in range(100)]
        return sum([await g for g in gs])

    rt = ragged.Runtime(procs=procs)
    with rt:
        assert rt.go(main).result(timeout=30) == sum(range(100))
        runtime_threads = set(threading.enumerate()) - before
        assert len([t for t in runtime_threads if t.name.startswith("ragged-M")]) >= 1
        assert any(t.name == "ragged-sysmon" for t in runtime_threads)
    alive = [t.name for t in set(threading.enumerate()) - before]
    assert alive == [], f"threads alive right after close(): {alive}"


# ---------------------------------------------------------------- go / submit / result / done


@pytest.mark.timeout(60)
def test_go_from_several_plain_threads_at_once() -> None:
    n_threads, per_thread = 8, 250

    async def square(x: int) -> tuple[int, bool]:
        await ragged.gosched()
        return x * x, threading.current_thread().name.startswith("ragged-M")

    with ragged.Runtime(procs=4) as rt:
        start = threading.Barrier(n_threads)
        handles: list[list[ragged.Goroutine]] = [[] for _ in range(n_threads)]

        def spawner(t: int) -> None:
            start.wait()
            for i in range(per_thread):
                handles[t].append(rt.go(square, t * per_thread + i))

        errors = run_threads(spawner, n_threads, 30)
        assert not errors
        results = [g.result(timeout=30) for hs in handles for g in hs]
    assert [r[0] for r in results] == [x * x for x in range(n_threads * per_thread)]
    assert all(on_m for _, on_m in results), "a goroutine ran on a thread that is not an M"
    ids = [g.id for hs in handles for g in hs]
    assert len(set(ids)) == len(ids), "goroutine ids are not unique"


@pytest.mark.timeout(30)
def test_result_timeout_and_done() -> None:
    gate = threading.Event()

    def wait_gate() -> None:
        assert gate.wait(10)

    async def slow() -> str:
        await ragged.syscall(wait_gate)
        return "finished"

    with ragged.Runtime(procs=2) as rt:
        g = rt.go(slow)
        assert not g.done()
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            g.result(timeout=0.05)
        assert time.monotonic() - t0 >= 0.05
        with pytest.raises(TimeoutError):
            g.result(timeout=0)
        with pytest.raises(TimeoutError):
            g.exception(timeout=0.01)
        assert not g.done()
        gate.set()
        assert g.result(timeout=10) == "finished"
        assert g.done()
        assert g.status == "dead"
        assert g.exception() is None


@pytest.mark.timeout(30)
def test_submit_returns_a_concurrent_future() -> None:
    async def add(a: int, b: int) -> int:
        await ragged.sleep(0.001)
        return a + b

    async def bad() -> None:
        raise LookupError("via future")

    with ragged.Runtime(procs=2) as rt:
        fut = rt.submit(add, 2, 40)
        assert isinstance(fut, concurrent.futures.Future)
        assert fut.result(timeout=10) == 42
        futs = [rt.submit(add, i, i) for i in range(100)]
        done, _ = concurrent.futures.wait(futs, timeout=20)
        assert len(done) == 100
        assert [f.result() for f in futs] == [2 * i for i in range(100)]
        bad_fut = rt.submit(bad)
        assert isinstance(bad_fut.exception(timeout=10), LookupError)
        with pytest.raises(LookupError, match="via future"):
            bad_fut.result()
    # A future's exception counts as retrieved: close() has nothing to report.
    assert rt.unjoined_errors() == []


@pytest.mark.timeout(30)
def test_a_done_callback_added_after_the_goroutine_failed_still_takes_its_error() -> None:
    """With Ps in parallel a goroutine may fail before its spawner adds the callback
    (``submit`` does exactly that): the callback still retrieves the error, and
    nothing is left to report as unjoined."""

    async def bad() -> None:
        raise LookupError("early")

    seen: list[BaseException | None] = []
    with ragged.Runtime(procs=2) as rt:
        g = rt.go(bad)
        wait_until(g.done, 10, "the goroutine to fail")
        g.add_done_callback(lambda g: seen.append(g._exc))
        assert isinstance(seen[0], LookupError)
        assert rt.unjoined_errors() == []


@pytest.mark.timeout(30)
def test_goroutine_names_and_ids() -> None:
    async def me() -> tuple[int, str]:
        g = ragged.current_goroutine()
        return g.id, g.name

    with ragged.Runtime(procs=1) as rt:
        named = rt.go(me, name="worker-7")
        anon = rt.go(me)
        assert named.result(timeout=10) == (named.id, "worker-7")
        assert anon.result(timeout=10) == (anon.id, f"g{anon.id}")
        assert named.id != anon.id


@pytest.mark.timeout(30)
def test_go_accepts_a_coroutine_object() -> None:
    async def f(x: int) -> int:
        return x + 1

    with ragged.Runtime(procs=1) as rt:
        assert rt.go(f(1)).result(timeout=10) == 2


@pytest.mark.timeout(30)
def test_ragged_go_inside_goroutine_and_current_runtime() -> None:
    async def child() -> ragged.Runtime:
        return ragged.current_runtime()

    async def main() -> tuple[ragged.Runtime, ragged.Runtime]:
        return ragged.current_runtime(), await ragged.go(child)

    with ragged.Runtime(procs=2) as rt:
        a, b = rt.go(main).result(timeout=10)
        assert a is rt and b is rt


# ---------------------------------------------------------------- contextvars


VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


@pytest.mark.timeout(30)
def test_goroutine_runs_in_a_copy_of_the_spawners_context() -> None:
    async def child(seen: list[str]) -> None:
        seen.append(VAR.get())
        VAR.set("set in child")
        await ragged.gosched()  # may resume on another P/thread: context follows the goroutine
        seen.append(VAR.get())

    async def main() -> list[str]:
        seen: list[str] = []
        VAR.set("set in parent")
        await ragged.go(child, seen)
        seen.append(VAR.get())
        return seen

    for procs in (1, 4):
        assert ragged.run(main, procs=procs) == ["set in parent", "set in child", "set in parent"]


@pytest.mark.timeout(30)
def test_context_is_copied_at_spawn_time() -> None:
    async def child(gate: ragged.Goroutine) -> str:
        await gate
        return VAR.get()

    async def gate_fn() -> None:
        await ragged.sleep(0.01)

    async def main() -> str:
        VAR.set("before spawn")
        gate = ragged.go(gate_fn)
        g = ragged.go(child, gate)
        VAR.set("after spawn")
        return await g

    assert ragged.run(main, procs=2) == "before spawn"


@pytest.mark.timeout(30)
def test_plain_thread_context_is_copied_into_goroutine() -> None:
    async def read() -> str:
        v = VAR.get()
        VAR.set("changed by goroutine")
        return v

    with ragged.Runtime(procs=2) as rt:
        token = VAR.set("from plain thread")
        try:
            assert rt.go(read).result(timeout=10) == "from plain thread"
            assert VAR.get() == "from plain thread"
        finally:
            VAR.reset(token)
