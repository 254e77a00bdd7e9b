"""The ragged global barrier ``for_each_p`` (Go commit 57afa764): its contract.

``fn(p)`` runs exactly once on every P per barrier -- whether the P is idle,
running goroutines that pass safe points, blocked in a syscall, or any mix of
these -- whether the barrier is called from a plain thread (``rt.for_each_p``)
or from a goroutine (``await ragged.for_each_p``).  Also: what fn gets (each
P, its local storage), what it may do (spawn goroutines), the argument checks,
the visibility of a value written before a barrier, and the metrics a barrier
records.  Elsewhere: ``test_barrier_errors.py`` (fn raising, stragglers,
timeouts, re-entrant calls), ``test_barrier_turns.py`` (exclusion with
stop-the-world), ``test_barrier_race.py`` (the reference commit's race,
stress).

The machine is small and noisy: nothing here asserts a duration.  "Long
before the syscall returns" is checked as an ordering fact (the barrier
returned while the syscall had not).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
from _barrier_helpers import (
    CALLERS,
    GUARD,
    JOIN,
    SYSCALL_CAP,
    Calls,
    assert_caller_ran_its_own_p,
    assert_once,
    barrier_from,
    blocked_in_syscall,
    busy_goroutines,
    checked_barrier,
    current_gid,
    noop,
    nothing,
    once_each,
    wait_for_progress,
)
from _invariants import check_quiescent
from conftest import wait_until

import ragged

# ---------------------------------------------------------------- exactly once: idle Ps


@pytest.mark.timeout(30)
@pytest.mark.parametrize("procs", [1, 2, 4, 8])
def test_idle_ps_from_plain_thread_run_fn_on_the_caller_without_waking_any_m(procs: int) -> None:
    """Idle Ps are at a continuous safe point: the coordinator runs fn for them itself."""
    with ragged.Runtime(procs=procs) as rt:
        for i in range(50):
            calls, _ = checked_barrier(rt, "thread", procs, f"barrier {i}")
            assert {c.thread for c in calls.records} == {threading.get_ident()}
            assert all(isinstance(c.p, ragged.P) for c in calls.records)
        assert rt.metrics()["threads"] == 0, "a barrier over idle Ps started an M"
        check_quiescent(rt)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("procs", [1, 2, 4, 8])
def test_idle_ps_from_goroutine_caller_runs_its_own_p_synchronously(procs: int) -> None:
    with ragged.Runtime(procs=procs) as rt:
        for i in range(30):
            checked_barrier(rt, "goroutine", procs, f"barrier {i}")
        check_quiescent(rt)


@pytest.mark.timeout(30)
def test_caller_p_runs_fn_inside_the_await_before_it_returns() -> None:
    """'Synchronously': fn for the caller's P ran inside the caller's await, on its thread."""
    log: list[tuple[str, int | None, int | None, int | None]] = []  # (event, P id, goroutine, thread)

    async def main() -> tuple[int, int]:
        me = ragged.current_goroutine().id
        log.append(("before", None, me, threading.get_ident()))
        await ragged.for_each_p(lambda p: log.append(("fn", p.id, current_gid(), threading.get_ident())))
        # No await since the barrier ran (only its start is a safe point): its P and thread.
        log.append(("after", ragged.current_p().id, me, threading.get_ident()))
        return me, threading.get_ident()

    me, thread = ragged.run(main, procs=3)
    assert log[0][0] == "before" and log[-1][0] == "after", log
    assert sorted(e[1] for e in log[1:-1]) == [0, 1, 2], log
    mine = [e for e in log[1:-1] if e[1] == log[-1][1]]
    assert mine == [("fn", log[-1][1], me, thread)], f"fn for the caller's P: {mine}; log {log}"


# ---------------------------------------------------------------- exactly once: running Ps


@pytest.mark.timeout(60)
@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("procs", [2, 4])
def test_running_ps_run_fn_exactly_once_at_their_safe_point(procs: int, caller: str) -> None:
    with ragged.Runtime(procs=procs) as rt:
        with busy_goroutines(rt, procs + 1) as counts:
            on_m = total = 0
            for i in range(40):
                calls, who = checked_barrier(rt, caller, procs, f"barrier {i}")
                for c in calls.records:
                    if c.pid != who.pid:
                        total += 1
                        on_m += c.thread != who.thread and c.thread_name.startswith("ragged-M")
            wait_for_progress(counts)
        check_quiescent(rt)
    # With every P busy the barrier is ragged: the running Ps ran fn on their own
    # Ms.  (A P may be briefly idle between two goroutines, so not every call.)
    assert on_m >= total // 2, f"only {on_m} of {total} fn calls ran on the P's own M"


@pytest.mark.timeout(60)
def test_busy_goroutines_keep_running_and_see_each_barrier_at_their_next_safe_point() -> None:
    """fn runs at the safe point of the goroutine running on the P, on its thread, between two of its steps."""
    procs = 4
    with ragged.Runtime(procs=procs) as rt:
        with busy_goroutines(rt, procs) as counts:
            for i in range(30):
                calls, _ = checked_barrier(rt, "thread", procs, f"barrier {i}")
                for c in calls.records:
                    if c.gid is not None:
                        # fn ran in the middle of a goroutine's life, at its checkpoint.
                        assert c.thread_name.startswith("ragged-M"), c
            wait_for_progress(counts)


# ---------------------------------------------------------------- exactly once: syscall Ps


@pytest.mark.timeout(60)
@pytest.mark.parametrize("caller", CALLERS)
def test_p_in_syscall_runs_fn_through_the_handoff_long_before_the_call_returns(caller: str) -> None:
    procs = 2
    with ragged.Runtime(procs=procs) as rt:
        with blocked_in_syscall(rt, 1) as sc:
            pid = sc.pids[0]
            p = rt._sched.allp[pid]
            seen_returned: list[tuple[int, bool]] = []
            calls = Calls(extra=lambda q: seen_returned.append((q.id, sc.any_returned())))
            who = barrier_from(rt, caller, calls)
            # Ordering facts, not timings: the barrier returned, and every fn
            # ran, while the syscall was still blocked.
            returned_first = sc.any_returned()
            status_after = p.status_name
        assert not returned_first, "the barrier only completed after the syscall returned"
        assert seen_returned and not any(r for _, r in seen_returned), seen_returned
        assert_once(calls.ids, procs)
        assert_caller_ran_its_own_p(calls, who)
        # Forced out of SYSCALL by CAS (to idle, then handed off), not waited for.
        assert status_after != "syscall", f"P{pid} is still in syscall status after the barrier"
        check_quiescent(rt)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("caller", CALLERS)
def test_several_ps_in_syscalls_each_run_fn_once(caller: str) -> None:
    procs = 4
    with ragged.Runtime(procs=procs) as rt:
        with blocked_in_syscall(rt, 3) as sc:
            for i in range(20):
                checked_barrier(rt, caller, procs, f"barrier {i}")
                assert not sc.any_returned(), f"barrier {i} completed only after the syscall it waited beside returned"
        check_quiescent(rt)


async def _block_until(entered: threading.Event, release: threading.Event, returned: threading.Event) -> None:
    await ragged.syscall(lambda: (entered.set(), release.wait(SYSCALL_CAP)))
    returned.set()


@pytest.mark.timeout(60)
def test_syscall_p_is_pinned_in_syscall_at_barrier_start_many_times() -> None:
    """Repeat the syscall case with the barrier issued the moment the syscall is entered.

    The event is set inside the blocking call, i.e. after entersyscall stored
    SYSCALL status: the barrier finds the P in SYSCALL (not yet retaken by
    sysmon) in most rounds.  Each round the syscall is released by the test
    right after the checks, so many rounds fit in little time.
    """
    procs = 2
    rounds = 40
    in_syscall_at_start = 0
    with ragged.Runtime(procs=procs) as rt:
        for i in range(rounds):
            entered = threading.Event()
            release = threading.Event()
            returned = threading.Event()

            g = rt.go(_block_until, entered, release, returned)
            assert entered.wait(JOIN)
            in_syscall_at_start += any(p.status_name == "syscall" for p in rt._sched.allp)
            calls = Calls()
            rt.for_each_p(calls)
            assert not returned.is_set(), f"round {i}: barrier waited for the syscall"
            assert_once(calls.ids, procs, f"round {i}")
            release.set()
            g.result(timeout=JOIN)
        check_quiescent(rt)
    assert in_syscall_at_start > 0, "the syscall path was never exercised"


# ---------------------------------------------------------------- exactly once: mixed


@pytest.mark.timeout(60)
@pytest.mark.parametrize("caller", CALLERS)
def test_mixed_idle_running_and_syscall_ps(caller: str) -> None:
    procs = 4
    with ragged.Runtime(procs=procs) as rt:
        with busy_goroutines(rt, 1) as counts, blocked_in_syscall(rt, 1) as sc:
            for i in range(20):
                checked_barrier(rt, caller, procs, f"barrier {i}")
                assert not sc.any_returned(), f"barrier {i} completed only after the syscall it waited beside returned"
            wait_for_progress(counts)
        check_quiescent(rt)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("procs", [2, 4, 8])
def test_mixed_with_sleepers_and_joins_from_threads_and_goroutines_together(procs: int) -> None:
    """Barriers from a thread and from a goroutine, at once, over Ps in every state."""
    rounds = 25
    failures: list[str] = []

    async def sleeper(stop: threading.Event) -> None:
        while not stop.is_set():
            await ragged.sleep(0.002)

    async def g_caller() -> None:
        for i in range(rounds):
            calls = Calls()
            await ragged.for_each_p(calls)
            if Counter(calls.ids) != once_each(procs):
                failures.append(f"goroutine barrier {i}: {dict(Counter(calls.ids))}")
            await ragged.sleep(0)

    with ragged.Runtime(procs=procs) as rt:
        stop = threading.Event()
        sl = rt.go(sleeper, stop)
        try:
            with busy_goroutines(rt, max(procs // 2, 1)), blocked_in_syscall(rt, max(procs // 4, 1)):
                g = rt.go(g_caller)
                for i in range(rounds):
                    calls = Calls()
                    rt.for_each_p(calls)
                    if Counter(calls.ids) != once_each(procs):
                        failures.append(f"thread barrier {i}: {dict(Counter(calls.ids))}")
                g.result(timeout=JOIN)
        finally:
            stop.set()
            sl.result(timeout=JOIN)
        check_quiescent(rt)
    assert failures == []


# ---------------------------------------------------------------- what fn gets


@pytest.mark.timeout(30)
def test_fn_gets_each_p_with_its_id_and_persistent_local_storage() -> None:
    procs = 4
    with ragged.Runtime(procs=procs) as rt:
        ps: dict[int, Any] = {}

        def first(p: Any) -> None:
            ps[p.id] = p
            p.local["visits"] = 1

        def again(p: Any) -> None:
            assert ps[p.id] is p, "a P is a different object in the next barrier"
            p.local["visits"] += 1

        rt.for_each_p(first)
        with busy_goroutines(rt, procs):
            for _ in range(9):
                rt.for_each_p(again)
        assert sorted(ps) == list(range(procs))
        assert {i: p.local["visits"] for i, p in ps.items()} == dict.fromkeys(range(procs), 10)
        assert all(isinstance(p.local, dict) for p in ps.values())


@pytest.mark.timeout(30)
def test_goroutine_sees_its_p_local_storage_written_by_fn() -> None:
    """``p.local`` written by fn is what a goroutine on that P reads through ``current_p()``."""

    async def main() -> list[bool]:
        await ragged.for_each_p(lambda p: p.local.__setitem__("tag", ("P", p.id)))
        out = []
        for _ in range(50):
            p = ragged.current_p()
            out.append(p.local["tag"] == ("P", p.id))
            await ragged.sleep(0)
        return out

    assert all(ragged.run(main, procs=4))


# A hang is the failure here (the callback re-taking the sched lock): short timeout.
@pytest.mark.timeout(15)
@pytest.mark.parametrize("caller", CALLERS)
def test_fn_may_spawn_goroutines_and_they_run_afterwards(caller: str) -> None:
    """fn may start goroutines (wakeups are deferred until the sched lock is released) -- on
    idle Ps fn runs *under* the sched lock -- even one that itself starts a barrier: that
    one waits its turn instead of deadlocking."""
    procs = 4
    ran: list[int] = []
    inner = Calls()

    async def child(pid: int) -> None:
        ran.append(pid)

    async def nested_barrier() -> None:
        await ragged.for_each_p(inner)

    nested: list[ragged.Goroutine] = []

    def fn(p: Any) -> None:
        rt.go(child, p.id)
        if p.id == 0:
            nested.append(rt.go(nested_barrier))

    with ragged.Runtime(procs=procs) as rt:
        outer = Calls(extra=fn)
        barrier_from(rt, caller, outer)
        assert_once(outer.ids, procs)
        wait_until(lambda: len(ran) == procs, what="goroutines spawned by fn")
        assert len(nested) == 1
        nested[0].result(timeout=JOIN)
        check_quiescent(rt)
    assert sorted(ran) == list(range(procs))
    assert_once(inner.ids, procs, "nested barrier")


@pytest.mark.timeout(30)
def test_work_readied_by_fn_on_the_callers_own_p_gets_a_p_at_once() -> None:
    """A goroutine's barrier whose ``fn``, on the caller's own P, wakes a parked goroutine: the
    wakeup it had to defer is issued before ``for_each_p`` returns, so an idle P starts on it
    while the caller goes on computing (it used to wait for sysmon, up to 10ms)."""

    async def main() -> list[bool]:
        out = []
        for _ in range(20):
            ch: ragged.Chan[int] = ragged.Chan()
            receiver = ragged.go(ch.recv)
            while receiver.status != "waiting":
                await ragged.sleep(0.001)
            me = ragged.current_p()
            sched = ragged.current_runtime()._sched

            def fn(p: Any, me: Any = me, ch: ragged.Chan[int] = ch, sched: Any = sched) -> None:
                if p is me:
                    end = time.monotonic() + 1
                    while sched.nmspinning and time.monotonic() < end:
                        pass  # no spinning M that would find the work anyway
                    ch.try_send(1)

            await ragged.for_each_p(fn)
            out.append(sched.wakep_deferred)  # before any await
            await receiver
        return out

    assert not any(ragged.run(main, procs=4)), "a deferred wakeup was left for sysmon"


@pytest.mark.timeout(30)
def test_argument_errors() -> None:
    async def async_fn(p: Any) -> None:
        pass

    with ragged.Runtime(procs=2) as rt:
        with pytest.raises(TypeError):
            rt.for_each_p(42)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            rt.for_each_p(async_fn)
        with pytest.raises(ValueError):
            rt.for_each_p(nothing, timeout=-1)
        with pytest.raises(TypeError):
            rt.for_each_p(nothing, timeout="1")  # type: ignore[arg-type]
        check_quiescent(rt)
        checked_barrier(rt, "thread", 2)
    with pytest.raises(ragged.RuntimeClosed):
        rt.for_each_p(nothing)


@pytest.mark.timeout(30)
def test_plain_thread_form_inside_a_goroutine_and_goroutine_form_outside_raise() -> None:
    async def main() -> type:
        try:
            ragged.current_runtime().for_each_p(nothing)
        except ragged.NotInPlainThread as e:
            return type(e)
        return type(None)

    assert ragged.run(main, procs=2) is ragged.NotInPlainThread

    coro = ragged.for_each_p(nothing)
    with pytest.raises(ragged.NotInGoroutine):
        coro.send(None)
    coro.close()


# ---------------------------------------------------------------- value visibility


@pytest.mark.timeout(60)
def test_value_written_before_the_barrier_is_seen_by_every_p_afterwards() -> None:
    """Write, barrier, then: every fn saw the write, every P's view was updated, and every
    goroutine at its next safe point on any P reads the new value through its P."""
    procs = 4
    rounds = 60
    shared = SimpleNamespace(value=0)
    done = [0]  # the last round whose barrier has returned
    stale: list[str] = []
    stop = threading.Event()

    async def reader(i: int) -> None:
        deadline = time.monotonic() + GUARD
        n = 0
        while not stop.is_set() and time.monotonic() < deadline:
            seen_done = done[0]  # read before the P's view
            view = ragged.current_p().local.get("view", 0)
            if view < seen_done:
                stale.append(f"reader {i}: P view {view} after barrier {seen_done} returned")
            n += 1
            if n % 5 == 0:
                await ragged.sleep(0)
            elif n % 11 == 0:
                await ragged.syscall(noop)
            else:
                await ragged.checkpoint()

    with ragged.Runtime(procs=procs) as rt:
        readers = [rt.go(reader, i) for i in range(procs + 2)]
        ps: dict[int, Any] = {}
        for k in range(1, rounds + 1):
            shared.value = k
            seen: dict[int, int] = {}

            def fn(p: Any, seen: dict[int, int] = seen) -> None:
                seen[p.id] = shared.value
                p.local["view"] = shared.value
                ps[p.id] = p

            rt.for_each_p(fn)
            done[0] = k
            assert seen == dict.fromkeys(range(procs), k), f"round {k}: fn saw {seen}"
            assert {i: p.local["view"] for i, p in ps.items()} == dict.fromkeys(range(procs), k)
        stop.set()
        for g in readers:
            g.result(timeout=JOIN)
    assert stale == []


# ---------------------------------------------------------------- metrics


@pytest.mark.timeout(60)
def test_metrics_count_barriers_and_stws_with_sensible_histograms() -> None:
    procs = 3
    n_thread, n_goroutine, n_stw = 12, 8, 5

    async def g_barriers() -> None:
        for _ in range(n_goroutine):
            await ragged.for_each_p(nothing)

    with ragged.Runtime(procs=procs) as rt:
        t0 = time.monotonic()
        with busy_goroutines(rt, procs):
            for _ in range(n_thread):
                rt.for_each_p(nothing)
            rt.go(g_barriers).result(timeout=JOIN)
            for _ in range(n_stw):
                with rt.stop_the_world("metrics"):
                    pass
        wall = time.monotonic() - t0
        m = rt.metrics()
    n = n_thread + n_goroutine
    assert m["barriers"] == n
    assert m["stws"] == n_stw
    assert m["procs"] == procs
    for name, count in (
        ("barrier_latency", n),
        ("barrier_pause", n),
        ("barrier_rounds", n),
        ("barrier_p_wait", n * procs),
        ("stw_latency", n_stw),
        ("stw_pause", n_stw),
    ):
        h = m[name]
        assert h["count"] == count, f"{name}: count {h['count']}, expected {count}"
        assert 0 <= h["min"] <= h["p50"] <= h["p99"] <= h["max"], (name, h)
        assert h["sum"] >= 0 and sum(h["buckets_ns"].values()) == count, (name, h)
    for name in ("barrier_latency", "barrier_p_wait", "stw_latency"):
        assert m[name]["max"] <= wall, f"{name} max {m[name]['max']} exceeds the test's wall time {wall}"
    # A P's wait is part of its barrier: no single P waited longer than the slowest barrier.
    assert m["barrier_p_wait"]["max"] <= m["barrier_latency"]["max"] + 1e-3
    assert m["barrier_rounds"]["min"] >= 0
    assert all(v >= 0 for v in m["per_p_pause_seconds"].values())
    assert sorted(m["per_p_pause_seconds"]) == list(range(procs))
    assert m["barrier_timeouts"] == 0 and m["barrier_fn_errors"] == 0


@pytest.mark.timeout(30)
def test_a_goroutine_looping_on_barriers_does_not_starve_its_p() -> None:
    """An uncontended barrier never parks its caller: on its way out it is a safe point, so sysmon's
    request to yield (after preempt_after) reaches a goroutine that does nothing but barriers."""
    done = threading.Event()

    async def looper() -> int:
        n = 0
        while not done.is_set():
            await ragged.for_each_p(lambda p: None)
            n += 1
        return n

    async def other() -> None:
        done.set()

    async def main() -> int:
        g = ragged.go(looper)
        await ragged.gosched()  # the looper now runs; `other` queues behind it on the only P
        ragged.go(other)
        return await g

    assert ragged.run(main, procs=1) > 0
