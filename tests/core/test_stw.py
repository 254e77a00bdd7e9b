"""Stop-the-world: from a plain thread and from a goroutine, nothing else runs
inside the section, the world restarts, and concurrent callers take turns."""

from __future__ import annotations

import threading
import time

import pytest
from _barrier_helpers import busy_goroutines, wait_for_progress
from conftest import run_threads, wait_until

import ragged

# ---------------------------------------------------------------- from a plain thread


@pytest.mark.timeout(60)
@pytest.mark.parametrize("procs", [1, 2, 4])
def test_stw_from_plain_thread_stops_every_goroutine(procs: int) -> None:
    with ragged.Runtime(procs=procs) as rt:
        with busy_goroutines(rt, procs + 1) as counts:
            for _ in range(5):
                with rt.stop_the_world("test"):
                    frozen = list(counts)
                    time.sleep(0.02)
                    assert counts == frozen, "a goroutine ran inside the stop-the-world section"
                wait_for_progress(counts)
        assert rt.metrics()["stws"] == 5


@pytest.mark.timeout(30)
def test_goroutine_started_during_stw_runs_only_after_it() -> None:
    ran = threading.Event()

    async def mark() -> str:
        ran.set()
        return "ran"

    with ragged.Runtime(procs=2) as rt:
        with rt.stop_the_world("spawn inside"):
            g = rt.go(mark)
            time.sleep(0.02)
            assert not ran.is_set()
        assert g.result(timeout=10) == "ran"


@pytest.mark.timeout(30)
def test_syscall_returning_during_stw_does_not_run_user_code() -> None:
    in_syscall = threading.Event()
    syscall_returned = threading.Event()
    after = threading.Event()

    def blocking() -> None:
        in_syscall.set()
        time.sleep(0.03)
        syscall_returned.set()

    async def g_fn() -> None:
        await ragged.syscall(blocking)
        after.set()

    with ragged.Runtime(procs=2) as rt:
        g = rt.go(g_fn)
        assert in_syscall.wait(10)
        with rt.stop_the_world("syscall returns inside"):
            assert syscall_returned.wait(10)
            time.sleep(0.02)
            assert not after.is_set(), "code after the syscall ran inside the stop-the-world section"
        g.result(timeout=10)
        assert after.is_set()


@pytest.mark.timeout(30)
def test_timer_firing_during_stw_does_not_run_user_code() -> None:
    woke = threading.Event()

    async def sleeper() -> None:
        await ragged.sleep(0.01)
        woke.set()

    with ragged.Runtime(procs=2) as rt:
        g = rt.go(sleeper)
        wait_until(lambda: g.status == "waiting", what="sleeper to park")
        with rt.stop_the_world("timer fires inside"):
            time.sleep(0.05)
            assert not woke.is_set(), "a goroutine woken by a timer ran inside the stop-the-world section"
        g.result(timeout=10)
        assert woke.is_set()


@pytest.mark.timeout(30)
def test_exception_in_stw_body_propagates_and_world_restarts() -> None:
    with ragged.Runtime(procs=2) as rt:
        with busy_goroutines(rt, 2) as counts:
            with pytest.raises(KeyError):
                with rt.stop_the_world("raises"):
                    raise KeyError("inside")
            wait_for_progress(counts)
            with rt.stop_the_world("again"):  # worldsema was released
                pass


# ---------------------------------------------------------------- from a goroutine


@pytest.mark.timeout(60)
@pytest.mark.parametrize("procs", [1, 2, 4])
def test_stw_from_goroutine_stops_every_other_goroutine(procs: int) -> None:
    async def stopper(counts: list[int]) -> list[bool]:
        frozen_each_time = []
        for i in range(5):
            async with ragged.stop_the_world("from a goroutine"):
                frozen = list(counts)
                if i % 2:
                    time.sleep(0.02)  # blocking this M is fine: nothing else may run anyway
                else:
                    await ragged.syscall(time.sleep, 0.02)  # runs inline inside the section
                frozen_each_time.append(counts == frozen)
            before = sum(counts)
            deadline = time.monotonic() + 10
            while sum(counts) == before and time.monotonic() < deadline:
                await ragged.gosched()
        return frozen_each_time

    with ragged.Runtime(procs=procs) as rt:
        with busy_goroutines(rt, procs + 1) as counts:
            assert rt.go(stopper, counts).result(timeout=30) == [True] * 5


@pytest.mark.timeout(30)
def test_goroutine_cannot_wait_inside_its_stw() -> None:
    async def other() -> None:
        await ragged.sleep(0.001)

    async def main() -> list[str]:
        errors = []
        g = ragged.go(other)
        async with ragged.stop_the_world("no waiting inside"):
            for attempt in (ragged.gosched, lambda: ragged.sleep(0.01), lambda: g):
                try:
                    await attempt()
                    errors.append("no error")
                except ragged.RaggedError as e:
                    errors.append(type(e).__name__)
        await g
        return errors

    assert ragged.run(main, procs=2) == ["RaggedError"] * 3


# ---------------------------------------------------------------- exclusion


# A hang here is the failure (a thread waiting for the world it holds), so the
# timeout is short.
@pytest.mark.timeout(10)
def test_nested_stw_from_same_thread_raises_barrier_error() -> None:
    with ragged.Runtime(procs=2) as rt:
        with rt.stop_the_world("outer"):
            with pytest.raises(ragged.BarrierError):
                with rt.stop_the_world("inner"):
                    pass
        # The failed inner attempt left the runtime usable.
        with rt.stop_the_world("after"):
            pass


@pytest.mark.timeout(10)
def test_for_each_p_inside_stw_from_same_thread_raises_barrier_error() -> None:
    with ragged.Runtime(procs=2) as rt:
        with rt.stop_the_world("outer"):
            # The timeout only bounds a wrong wait: the right answer is an immediate BarrierError.
            with pytest.raises(ragged.BarrierError):
                rt.for_each_p(lambda p: None, timeout=2.0)
        with rt.stop_the_world("after"):
            pass


@pytest.mark.timeout(30)
def test_nested_stw_from_same_goroutine_raises_barrier_error() -> None:
    async def main() -> str:
        async with ragged.stop_the_world("outer"):
            try:
                async with ragged.stop_the_world("inner"):
                    return "nested section entered"
            except ragged.BarrierError:
                pass
        async with ragged.stop_the_world("after"):
            pass
        return "ok"

    assert ragged.run(main, procs=2) == "ok"


@pytest.mark.timeout(60)
def test_stw_from_many_threads_at_once_all_complete_one_at_a_time() -> None:
    n_threads, rounds = 8, 5
    inside = 0
    overlap: list[int] = []
    lock = threading.Lock()

    with ragged.Runtime(procs=4) as rt:
        with busy_goroutines(rt, 4) as counts:
            start = threading.Barrier(n_threads)

            def stopper(_: int) -> None:
                nonlocal inside
                start.wait()
                for _ in range(rounds):
                    with rt.stop_the_world("many threads"):
                        with lock:
                            inside += 1
                            if inside != 1:
                                overlap.append(inside)
                        frozen = list(counts)
                        time.sleep(0.001)
                        if counts != frozen:
                            overlap.append(-1)
                        with lock:
                            inside -= 1

            errors = run_threads(stopper, n_threads, 40)  # fails if some stop_the_world never completed
            assert not errors, errors
            assert overlap == [], "two sections overlapped (>1) or a goroutine ran inside one (-1)"
            wait_for_progress(counts)
        assert rt.metrics()["stws"] == n_threads * rounds


@pytest.mark.timeout(60)
def test_stw_from_many_goroutines_and_threads_at_once() -> None:
    inside = [0]
    overlap: list[int] = []

    def enter() -> None:
        inside[0] += 1
        if inside[0] != 1:
            overlap.append(inside[0])

    def leave() -> None:
        inside[0] -= 1

    async def g_stopper(rounds: int) -> int:
        for _ in range(rounds):
            async with ragged.stop_the_world("goroutine"):
                enter()
                await ragged.syscall(time.sleep, 0.0005)
                leave()
            await ragged.gosched()
        return rounds

    def t_stopper(rt: ragged.Runtime, rounds: int) -> None:
        for _ in range(rounds):
            with rt.stop_the_world("thread"):
                enter()
                time.sleep(0.0005)
                leave()

    with ragged.Runtime(procs=4) as rt:
        gs = [rt.go(g_stopper, 10) for _ in range(6)]
        threads = [threading.Thread(target=t_stopper, args=(rt, 10)) for _ in range(3)]
        for t in threads:
            t.start()
        assert [g.result(timeout=40) for g in gs] == [10] * 6
        for t in threads:
            t.join(40)
        assert not any(t.is_alive() for t in threads)
        assert overlap == []
        assert rt.metrics()["stws"] == 90


@pytest.mark.timeout(30)
def test_stw_metrics_are_recorded() -> None:
    with ragged.Runtime(procs=2) as rt:
        with busy_goroutines(rt, 2):
            for _ in range(3):
                with rt.stop_the_world("metrics"):
                    pass
        m = rt.metrics()
    assert m["stws"] == 3
    assert m["stw_latency"]["count"] == 3
    assert m["stw_pause"]["count"] == 3
