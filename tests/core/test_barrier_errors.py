"""The barrier when things go wrong: fn raising, stragglers and timeouts, re-entrant calls.

fn raising on some Ps still runs everywhere and the error reaches the caller
(one error with a note naming the P, or a group); a goroutine that never
reaches a safe point keeps the barrier waiting and is reported, and a
barrier's timeout names the missing Ps and leaves the runtime consistent; a
barrier, a stop-the-world or a blocking call made inside fn (or a barrier
inside a stop-the-world) raises ``BarrierError`` instead of deadlocking.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from _barrier_helpers import (
    CALLERS,
    JOIN,
    Boom,
    Calls,
    HardBoom,
    assert_caller_ran_its_own_p,
    assert_once,
    barrier_from,
    busy_goroutines,
    checked_barrier,
    current_gid,
    make_straggler,
    notes,
    nothing,
    ragged_errors,
    raising_on,
    wait_for_progress,
)
from _invariants import check_quiescent
from conftest import wait_until

import ragged

# ---------------------------------------------------------------- fn raising


@pytest.mark.timeout(60)
@pytest.mark.parametrize("caller", CALLERS)
def test_fn_raising_on_one_p_still_runs_everywhere_and_reraises_with_a_note(caller: str) -> None:
    procs = 4
    with ragged.Runtime(procs=procs) as rt:
        with busy_goroutines(rt, 2):
            for bad in range(procs):
                calls: list[int] = []
                with pytest.raises(Boom) as ei:
                    barrier_from(rt, caller, raising_on({bad}, calls))
                assert_once(calls, procs, f"raising on P{bad}")
                assert re.search(rf"\bP{bad}\b", notes(ei.value)), notes(ei.value)
                assert str(ei.value) == f"fn failed on P{bad}"
                check_quiescent(rt)
            checked_barrier(rt, "thread", procs, "barrier after the failures")
        assert rt.metrics()["barrier_fn_errors"] == procs


@pytest.mark.timeout(60)
@pytest.mark.parametrize("caller", CALLERS)
def test_fn_raising_on_several_ps_gives_an_exception_group(caller: str) -> None:
    procs = 4
    with ragged.Runtime(procs=procs) as rt:
        with busy_goroutines(rt, 2):
            for bad in ({0, 2}, {1, 2, 3}, set(range(procs))):
                calls: list[int] = []
                with pytest.raises(ExceptionGroup) as ei:
                    barrier_from(rt, caller, raising_on(bad, calls))
                assert_once(calls, procs, f"raising on {bad}")
                excs = ei.value.exceptions
                assert all(isinstance(e, Boom) for e in excs), excs
                assert sorted(str(e) for e in excs) == sorted(f"fn failed on P{i}" for i in bad)
                for e in excs:
                    pid = int(str(e).rsplit("P", 1)[1])
                    assert re.search(rf"\bP{pid}\b", notes(e)), notes(e)
                check_quiescent(rt)
            checked_barrier(rt, caller, procs, "barrier after the failures")


@pytest.mark.timeout(60)
def test_fn_raising_a_base_exception_on_running_ps_does_not_kill_their_ms(caplog: pytest.LogCaptureFixture) -> None:
    procs = 3
    with ragged.Runtime(procs=procs) as rt:
        with busy_goroutines(rt, procs + 1) as counts:
            calls: list[int] = []
            with pytest.raises(BaseExceptionGroup) as ei:
                rt.for_each_p(raising_on({0, 1, 2}, calls, HardBoom))
            assert_once(calls, procs)
            assert len(ei.value.exceptions) == procs
            assert all(isinstance(e, HardBoom) for e in ei.value.exceptions)
            wait_for_progress(counts)
            checked_barrier(rt, "thread", procs, "barrier after the failures")
        check_quiescent(rt)
    assert ragged_errors(caplog) == []
    assert rt._errors == []


# ---------------------------------------------------------------- stragglers and timeouts


@pytest.mark.timeout(60)
@pytest.mark.parametrize("caller", CALLERS)
def test_straggler_keeps_the_barrier_waiting_and_is_reported(caller: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="ragged")
    procs = 2
    with ragged.Runtime(procs=procs, straggler_timeout=0.2) as rt:
        st = make_straggler(rt)
        try:
            calls = Calls()
            finished = threading.Event()
            box: dict[str, Any] = {}

            def run_barrier() -> None:
                try:
                    box["who"] = barrier_from(rt, caller, calls)
                except BaseException as e:  # noqa: BLE001 - checked below
                    box["err"] = e
                finished.set()

            t = threading.Thread(target=run_barrier)
            t.start()

            def report() -> str | None:
                for r in caplog.records:
                    msg = r.getMessage()
                    # "has waited": the barrier's straggler report, not a block report
                    # (RAGGED_DEBUG turns those on) about the same goroutine.
                    if (
                        r.name == "ragged"
                        and r.levelno == logging.WARNING
                        and "straggler-g" in msg
                        and "has waited" in msg
                    ):
                        return msg
                return None

            wait_until(lambda: report() is not None, what="the straggler warning")
            msg = report()
            assert not finished.is_set(), "the barrier completed without the straggler's P"
            assert st.pid not in calls.ids, "fn ran for the straggler's P while it never reached a safe point"
        finally:
            st.release.set()
        t.join(JOIN)
        assert finished.is_set() and "err" not in box, box
        st.g.result(timeout=JOIN)
        assert_once(calls.ids, procs, "barrier that waited for a straggler")
        assert_caller_ran_its_own_p(calls, box["who"])
        check_quiescent(rt)
        assert rt.metrics()["stragglers_reported"] >= 1
    assert re.search(rf"\bP{st.pid}\b", msg), msg
    assert re.search(rf"\bgoroutine {st.gid}\b", msg), msg
    assert "spin_without_safe_point" in msg, f"no Python stack of the straggler in: {msg}"


@pytest.mark.timeout(60)
def test_barrier_timeout_names_missing_p_and_leaves_runtime_consistent() -> None:
    procs = 2
    with ragged.Runtime(procs=procs, straggler_timeout=0.2) as rt:
        st = make_straggler(rt)
        try:
            calls = Calls()
            with pytest.raises(ragged.BarrierTimeout) as ei:
                rt.for_each_p(calls, timeout=0.5)
            assert isinstance(ei.value, TimeoutError)
            assert ei.value.missing == [st.pid], ei.value.missing
            # Consistent right away, while the straggler still spins.
            check_quiescent(rt)
            assert Counter(calls.ids) == {i: 1 for i in range(procs) if i != st.pid}
        finally:
            st.release.set()
        # The skipped P passes many safe points now: it must not run the old fn late.
        st.g.result(timeout=JOIN)
        assert st.after == 20
        assert st.pid not in calls.ids, "the skipped P ran fn late, after the barrier gave up"
        check_quiescent(rt)
        for i in range(5):
            checked_barrier(rt, "thread", procs, f"barrier {i} after the timeout")
        with busy_goroutines(rt, procs):
            checked_barrier(rt, "thread", procs, "busy barrier after the timeout")
        assert st.pid not in calls.ids
        assert rt.metrics()["barrier_timeouts"] == 1


@pytest.mark.timeout(60)
def test_timeout_waits_for_a_p_already_inside_fn() -> None:
    """A barrier that gives up must not return while some P is still inside fn: that P
    would otherwise decrement the *next* barrier's stopwait."""
    procs = 3
    with ragged.Runtime(procs=procs, straggler_timeout=0.2) as rt:
        st = make_straggler(rt)
        try:
            with busy_goroutines(rt, 2):
                inside: dict[int, str] = {}
                slow_pid: list[int] = []

                def fn(p: Any) -> None:
                    if current_gid() is not None and not slow_pid:
                        # The first P to run fn at a goroutine's safe point: be slow.
                        slow_pid.append(p.id)
                        inside[p.id] = "in"
                        time.sleep(0.8)
                        inside[p.id] = "out"
                    else:
                        inside[p.id] = "out"

                with pytest.raises(ragged.BarrierTimeout) as ei:
                    rt.for_each_p(fn, timeout=0.3)
                assert ei.value.missing == [st.pid]
                assert slow_pid, "no P ran fn at a goroutine's safe point"
                assert inside.get(slow_pid[0]) == "out", "the barrier gave up while a P was inside fn"
                check_quiescent(rt)
        finally:
            st.release.set()
        st.g.result(timeout=JOIN)
        for i in range(5):
            checked_barrier(rt, "thread", procs, f"barrier {i} after the timeout")
        check_quiescent(rt)


@pytest.mark.timeout(30)
def test_timeout_zero_over_idle_ps_completes() -> None:
    with ragged.Runtime(procs=4) as rt:
        calls = Calls()
        rt.for_each_p(calls, timeout=0)
        assert_once(calls.ids, 4)


@pytest.mark.timeout(30)
def test_timeout_while_the_world_is_held_elsewhere_runs_fn_nowhere() -> None:
    procs = 3
    with ragged.Runtime(procs=procs) as rt:
        holding = threading.Event()
        release = threading.Event()

        def hold() -> None:
            with rt.stop_the_world("held"):
                holding.set()
                release.wait(JOIN)

        t = threading.Thread(target=hold)
        t.start()
        try:
            assert holding.wait(JOIN)
            calls = Calls()
            with pytest.raises(ragged.BarrierTimeout) as ei:
                rt.for_each_p(calls, timeout=0.2)
            assert sorted(ei.value.missing) == list(range(procs))
        finally:
            release.set()
            t.join(JOIN)
        assert calls.ids == []
        checked_barrier(rt, "thread", procs)
        assert calls.ids == [], "fn of the barrier that never started ran later"
        check_quiescent(rt)


# ---------------------------------------------------------------- re-entrance: BarrierError, never a deadlock


def outcome_per_p(rt: ragged.Runtime, call: Callable[[], Any]) -> dict[int, BaseException | None]:
    """One barrier from this thread whose fn makes ``call()`` on every P: what it raised, per P id (None: nothing)."""
    got: dict[int, BaseException | None] = {}

    def fn(p: Any) -> None:
        try:
            call()
            got[p.id] = None
        except BaseException as e:  # noqa: BLE001 - recorded and checked by the caller
            got[p.id] = e

    rt.for_each_p(fn)
    return got


@pytest.mark.timeout(30)
@pytest.mark.parametrize("busy_ps", [0, 3], ids=["idle", "running"])
def test_barrier_inside_fn_raises_barrier_error(busy_ps: int) -> None:
    """On every P -- run by the coordinator (idle) or at a goroutine's safe point on its own M."""
    procs = 3
    with ragged.Runtime(procs=procs) as rt:
        with busy_goroutines(rt, busy_ps):
            got = outcome_per_p(rt, lambda: rt.for_each_p(nothing))
            assert sorted(got) == list(range(procs))
            for pid, e in got.items():
                assert isinstance(e, ragged.BarrierError), f"P{pid}: {e!r}"
                assert "for_each_p" in str(e) and "callback" in str(e), str(e)
        check_quiescent(rt)
        checked_barrier(rt, "thread", procs)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("busy_ps", [0, 3], ids=["idle", "running"])
def test_stop_the_world_inside_fn_raises_barrier_error(busy_ps: int) -> None:
    procs = 3
    with ragged.Runtime(procs=procs) as rt:
        with busy_goroutines(rt, busy_ps):

            def stop_the_world() -> None:
                with rt.stop_the_world("inside fn"):
                    pass

            got = outcome_per_p(rt, stop_the_world)
            assert sorted(got) == list(range(procs))
            for pid, e in got.items():
                assert isinstance(e, ragged.BarrierError), f"P{pid}: {e!r}"
        check_quiescent(rt)
        with rt.stop_the_world("after"):
            pass


@pytest.mark.timeout(30)
def test_goroutine_barrier_inside_fn_from_goroutine_raises() -> None:
    """fn run by a goroutine caller (its own P and the idle ones): a nested barrier fails fast."""
    got: list[BaseException | None] = []

    async def main() -> None:
        rt = ragged.current_runtime()

        def fn(p: Any) -> None:
            try:
                rt.for_each_p(nothing)
                got.append(None)
            except BaseException as e:  # noqa: BLE001 - recorded and checked below
                got.append(e)

        await ragged.for_each_p(fn)

    ragged.run(main, procs=3)
    assert len(got) == 3
    assert all(isinstance(e, ragged.BarrierError) for e in got), got


@pytest.mark.timeout(30)
def test_barrier_inside_stop_the_world_on_the_same_thread_raises_without_timeout() -> None:
    """(test_stw.py checks this with a timeout; here with none, so a wrong wait would hang.)"""
    with ragged.Runtime(procs=2) as rt:
        with rt.stop_the_world("outer"):
            with pytest.raises(ragged.BarrierError) as ei:
                rt.for_each_p(nothing)
        assert "already holds the world" in str(ei.value) or "stop-the-world" in str(ei.value), str(ei.value)
        checked_barrier(rt, "thread", 2)
        check_quiescent(rt)


@pytest.mark.timeout(30)
def test_goroutine_barrier_inside_its_own_stop_the_world_raises() -> None:
    async def main() -> str:
        calls = Calls()
        async with ragged.stop_the_world("outer"):
            try:
                await ragged.for_each_p(calls)
            except ragged.BarrierError:
                pass
            else:
                return "nested barrier ran"
        assert calls.ids == []
        after = Calls()
        await ragged.for_each_p(after)
        assert_once(after.ids, 2, "barrier after the section")
        return "ok"

    assert ragged.run(main, procs=2) == "ok"


@pytest.mark.timeout(30)
@pytest.mark.parametrize("busy_ps", [0, 3], ids=["idle", "running"])
def test_blocking_calls_inside_fn_raise(busy_ps: int) -> None:
    procs = 3
    with ragged.Runtime(procs=procs) as rt:
        release = threading.Event()

        async def waiter() -> str:
            await ragged.syscall(release.wait, JOIN)
            return "done"

        g = rt.go(waiter)
        try:
            with busy_goroutines(rt, busy_ps):
                got = outcome_per_p(rt, lambda: g.result(timeout=5))
                assert sorted(got) == list(range(procs))
                for pid, e in got.items():
                    assert isinstance(e, ragged.RaggedError), f"P{pid}: {e!r}"
                    assert not isinstance(e, TimeoutError), f"P{pid} blocked inside fn: {e!r}"
        finally:
            release.set()
        assert g.result(timeout=JOIN) == "done"
        check_quiescent(rt)
