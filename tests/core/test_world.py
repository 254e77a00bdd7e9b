"""``worldsema`` and the coordinator's wait (``_core._world``).

``WorldSema`` on its own: FIFO turns for plain threads and goroutines (a
goroutine waiting for it parks and leaves its P to others), re-entry refused,
timeouts that leave nothing queued; ``check_not_in_fn``; ``wait_stopwait``.
Then what it is for: the barrier and stop-the-world exclude each other --
a barrier waits for a stop-the-world section and never runs fn inside it, a
stop-the-world waits for a barrier in progress, and barriers and sections from
many goroutines and threads at once never interleave.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from _barrier_helpers import JOIN, Calls, assert_once, busy_goroutines, make_straggler
from _invariants import check_quiescent
from conftest import wait_until

import ragged
from ragged._core import _world
from ragged._core._m import tls
from ragged._core._world import check_not_in_fn, wait_stopwait

# ---------------------------------------------------------------- WorldSema


@pytest.mark.timeout(30)
def test_worldsema_hands_turns_to_plain_threads_in_arrival_order() -> None:
    with ragged.Runtime(procs=1) as rt:
        ws = rt._sched.worldsema
        ws.acquire_thread("test")
        order: list[int] = []

        def turn(k: int) -> None:
            ws.acquire_thread("test")
            order.append(k)
            ws.release()

        ts = []
        for k in range(4):
            t = threading.Thread(target=turn, args=(k,))
            t.start()
            wait_until(lambda k=k: len(ws.q) == k + 1, 10, f"thread {k} to queue")
            ts.append(t)
        ws.release()
        for t in ts:
            t.join(JOIN)
        assert order == [0, 1, 2, 3]
        assert not ws.held and ws.owner is None and len(ws.q) == 0


@pytest.mark.timeout(30)
def test_a_goroutine_waiting_for_worldsema_parks_and_leaves_its_p_to_others() -> None:
    """procs=1: while one goroutine waits for the world, another still runs on the one P."""
    with ragged.Runtime(procs=1) as rt:
        ws = rt._sched.worldsema
        ws.acquire_thread("test")

        async def waiter() -> str:
            await ws.acquire_g(ragged.current_goroutine(), "test")
            ws.release()
            return "got it"

        async def other() -> str:
            return "ran meanwhile"

        w = rt.go(waiter)
        wait_until(lambda: len(ws.q) == 1 and w.status == "waiting", 10, "the goroutine to park on worldsema")
        assert rt.go(other).result(timeout=10) == "ran meanwhile"
        ws.release()
        assert w.result(timeout=10) == "got it"


def test_worldsema_refuses_its_own_holder_and_times_out_cleanly() -> None:
    with ragged.Runtime(procs=1) as rt:
        ws = rt._sched.worldsema
        ws.acquire_thread("first")
        try:
            with pytest.raises(ragged.BarrierError, match="second.*already holds the world"):
                ws.acquire_thread("second")
            out: list[BaseException] = []

            def other() -> None:
                try:
                    ws.acquire_thread("other", timeout=0.05)
                except BaseException as err:  # noqa: BLE001 - checked below
                    out.append(err)

            t = threading.Thread(target=other)
            t.start()
            t.join(JOIN)
            assert len(out) == 1 and isinstance(out[0], TimeoutError)
            assert len(ws.q) == 0, "a timed-out waiter stayed queued"
        finally:
            ws.release()
        assert not ws.held


def test_check_not_in_fn_raises_only_inside_a_barrier_callback() -> None:
    check_not_in_fn("for_each_p")
    tls.in_fn = True
    try:
        with pytest.raises(ragged.BarrierError, match="stop_the_world called from inside a for_each_p callback"):
            check_not_in_fn("stop_the_world")
    finally:
        tls.in_fn = False


@pytest.mark.timeout(30)
def test_wait_stopwait_repreempts_until_the_last_p_counts_down_and_gives_up_at_its_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rearms: list[int] = []
    monkeypatch.setattr(_world, "rearm", lambda: rearms.append(1))
    with ragged.Runtime(procs=1) as rt:
        s = rt._sched
        t0 = time.monotonic()
        assert wait_stopwait(s, t0, None, list, "test") == (0, False)
        s.stopwait = 1

        def last_p() -> None:
            wait_until(lambda: len(rearms) >= 3, 10, "the coordinator to re-preempt")
            s.stopwait_done()

        t = threading.Thread(target=last_p)
        t.start()
        rounds, timed_out = wait_stopwait(s, t0, None, list, "test")
        t.join(10)
        assert not timed_out and s.stopwait == 0
        assert rounds == len(rearms) >= 3, "one re-preempt per timed-out wait"
        s.stopwait = 1
        try:
            rounds, timed_out = wait_stopwait(s, time.monotonic(), time.monotonic() + 0.02, list, "test")
            assert timed_out
        finally:
            s.stopwait_done()


# ---------------------------------------------------------------- exclusion and turns


@pytest.mark.timeout(60)
def test_barrier_waits_for_a_stop_the_world_and_never_runs_fn_inside_it() -> None:
    procs = 3
    with ragged.Runtime(procs=procs) as rt:
        with busy_goroutines(rt, procs):
            in_stw = threading.Event()
            left_stw = threading.Event()
            bad: list[int] = []
            calls = Calls(extra=lambda p: bad.append(p.id) if in_stw.is_set() else None)
            finished = threading.Event()

            def barrier() -> None:
                rt.for_each_p(calls)
                finished.set()

            with rt.stop_the_world("exclusion"):
                in_stw.set()
                t = threading.Thread(target=barrier)
                t.start()
                time.sleep(0.1)
                assert not finished.is_set(), "a barrier completed inside a stop-the-world"
                in_stw.clear()
                left_stw.set()
            t.join(JOIN)
            assert finished.is_set()
            assert bad == [], f"fn ran on {bad} while the world was stopped"
            assert_once(calls.ids, procs)


@pytest.mark.timeout(60)
def test_stop_the_world_waits_for_a_barrier_in_progress() -> None:
    """A stop-the-world requested while a barrier waits for a straggler starts only after it:
    its section sees every fn call of the barrier done.  (Not the barrier caller's return:
    the section may begin before that thread runs again.)"""
    procs = 2
    with ragged.Runtime(procs=procs, straggler_timeout=5.0) as rt:
        st = make_straggler(rt)
        calls = Calls()
        seen_in_stw: list[list[int]] = []
        try:
            tb = threading.Thread(target=rt.for_each_p, args=(calls,))
            tb.start()
            wait_until(lambda: rt._sched.safe_point_fn is not None, what="the barrier to start")

            def stw() -> None:
                with rt.stop_the_world("after barrier"):
                    seen_in_stw.append(list(calls.ids))

            ts = threading.Thread(target=stw)
            ts.start()
            time.sleep(0.1)
            assert seen_in_stw == [], "the stop-the-world began while the barrier waited for the straggler"
            assert st.pid not in calls.ids
        finally:
            st.release.set()
        tb.join(JOIN)
        ts.join(JOIN)
        st.g.result(timeout=JOIN)
        assert len(seen_in_stw) == 1
        assert_once(seen_in_stw[0], procs, "the barrier, as the stop-the-world section saw it")


@pytest.mark.timeout(90)
def test_barriers_and_stws_from_many_goroutines_and_threads_take_turns() -> None:
    """Concurrent callers take turns on worldsema: one barrier's fn calls (and one
    stop-the-world section) never interleave with another's."""
    procs = 4
    seq: list[tuple[str, int, int]] = []  # (kind, id, P id or -1)
    ids = iter(range(1_000_000))
    ids_lock = threading.Lock()

    def new_id() -> int:
        with ids_lock:
            return next(ids)

    def barrier_fn(bid: int) -> Callable[[Any], None]:
        return lambda p: seq.append(("B", bid, p.id))

    async def g_worker(rounds: int, stws: int) -> int:
        for i in range(rounds):
            await ragged.for_each_p(barrier_fn(new_id()))
            if i < stws:
                sid = new_id()
                async with ragged.stop_the_world("turns"):
                    seq.append(("S<", sid, -1))
                    await ragged.syscall(time.sleep, 0.0002)
                    seq.append(("S>", sid, -1))
            await ragged.sleep(0)
        return rounds

    def t_worker(rounds: int, stws: int) -> None:
        for i in range(rounds):
            rt.for_each_p(barrier_fn(new_id()))
            if i < stws:
                sid = new_id()
                with rt.stop_the_world("turns"):
                    seq.append(("S<", sid, -1))
                    time.sleep(0.0002)
                    seq.append(("S>", sid, -1))

    with ragged.Runtime(procs=procs) as rt:
        with busy_goroutines(rt, 2):
            gs = [rt.go(g_worker, 25, 5) for _ in range(4)]
            ts = [threading.Thread(target=t_worker, args=(25, 5)) for _ in range(3)]
            for t in ts:
                t.start()
            assert [g.result(timeout=60) for g in gs] == [25] * 4
            for t in ts:
                t.join(60)
            assert not any(t.is_alive() for t in ts)
        check_quiescent(rt)
        m = rt.metrics()
    n_barriers, n_stws = 7 * 25, 7 * 5
    assert m["barriers"] == n_barriers and m["stws"] == n_stws, (m["barriers"], m["stws"])

    # Split the global sequence into runs of one barrier / one section.
    runs: list[tuple[str, int, list[int]]] = []
    for kind, ident, pid in seq:
        key = "B" if kind == "B" else "S"
        if runs and runs[-1][0] == key and runs[-1][1] == ident:
            runs[-1][2].append(pid)
        else:
            runs.append((key, ident, [pid]))
    barriers = [r for r in runs if r[0] == "B"]
    sections = [r for r in runs if r[0] == "S"]
    assert len(barriers) == n_barriers, "some barrier's fn calls were interleaved with another's"
    for _, bid, pids in barriers:
        assert_once(pids, procs, f"barrier {bid}")
    assert len(sections) == n_stws, "a stop-the-world section was interleaved with something"
