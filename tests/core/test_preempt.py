"""Asynchronous preemption (``_preempt``): goroutines in loops that never await are still reached.

On CPython 3.12+ (``sys.monitoring``) a barrier, a stop-the-world and sysmon's
time slice reach a goroutine that never awaits, at an async safe point inside
its running Python code; on 3.11 the feature is absent and these tests either
say so (skip) or check that preemption there is still cooperative.  Loops in
C raise no Python events and stay unreachable on every build.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import pdb
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _barrier_helpers import assert_once
from conftest import wait_until

import ragged
from ragged._core import _preempt

ASYNC = _preempt.AVAILABLE
needs_async = pytest.mark.skipif(not ASYNC, reason="async preemption needs sys.monitoring (CPython 3.12+)")
GUARD = 20.0  # seconds: every tight loop here ends by itself after this (a hang guard)


class Stop:
    """The flag the tight loops poll: written by the test, read by the loops (a plain attribute)."""

    def __init__(self) -> None:
        self.stop = False
        self.deadline = time.monotonic() + GUARD


# ---------------------------------------------------------------- tight loops (user code, no await)


async def loop_in_goroutine(st: Stop, counts: list[int], i: int) -> int:
    """Counts in ``counts[i]`` without ever awaiting, until told to stop."""
    n = 0
    while not st.stop:
        n += 1
        counts[i] = n
        if n & 0xFFFF == 0 and time.monotonic() > st.deadline:
            break
    return n


def helper_loop(st: Stop, counts: list[int], i: int) -> int:
    n = 0
    while not st.stop:
        n += 1
        counts[i] = n
        if n & 0xFFFF == 0 and time.monotonic() > st.deadline:
            break
    return n


async def loop_in_helper(st: Stop, counts: list[int], i: int) -> int:
    """The loop lives in a plain function the goroutine calls."""
    return helper_loop(st, counts, i)


def numbers(st: Stop, counts: list[int], i: int) -> Iterator[int]:
    n = 0
    while not st.stop:
        n += 1
        counts[i] = n
        if n & 0xFFFF == 0 and time.monotonic() > st.deadline:
            break
        yield 1


async def loop_in_generator(st: Stop, counts: list[int], i: int) -> int:
    """The loop lives in a generator that C code (``sum``) drives."""
    return sum(numbers(st, counts, i))


LOOPS: dict[str, Callable[..., Any]] = {
    "goroutine": loop_in_goroutine,
    "helper": loop_in_helper,
    "generator": loop_in_generator,
}


@contextlib.contextmanager
def loops(rt: ragged.Runtime, n: int, kind: str = "goroutine") -> Iterator[list[int]]:
    """``n`` tight loops of ``kind`` on ``rt`` while the block runs; yields their counts."""
    st, counts, gs = start_loops(rt, n, kind)
    try:
        yield counts
    finally:
        stop_loops(st, gs)


def start_loops(rt: ragged.Runtime, n: int, kind: str = "goroutine") -> tuple[Stop, list[int], list[ragged.Goroutine]]:
    """``n`` tight loops of ``kind`` on ``rt``, running when this returns."""
    st = Stop()
    counts = [0] * n
    gs = [rt.go(LOOPS[kind], st, counts, i, name=f"tight-{kind}-{i}") for i in range(n)]
    wait_until(lambda: all(counts), what="every tight loop to start")
    return st, counts, gs


def wait_all_move(counts: list[int], what: str = "every loop to go on") -> None:
    """Wait until every loop has counted further than it had when called."""
    before = list(counts)
    wait_until(lambda: all(c > b for c, b in zip(counts, before, strict=True)), what=what)


def stop_loops(st: Stop, gs: list[ragged.Goroutine]) -> None:
    st.stop = True
    for g in gs:
        g.result(timeout=GUARD + 10)


# ---------------------------------------------------------------- time slices


@pytest.mark.timeout(60)
def test_tight_loop_does_not_starve_another_goroutine_on_one_p() -> None:
    """procs=1: a goroutine sleeping 1ms beside a loop that never awaits wakes every time (3.12+);
    on 3.11 it wakes only once the loop has ended (preemption is cooperative there)."""
    loop_for = 0.3 if not ASYNC else GUARD

    async def main() -> tuple[int, float]:
        st = Stop()
        st.deadline = time.monotonic() + loop_for
        g = ragged.go(loop_in_goroutine, st, [0], 0)
        await ragged.sleep(0.01)
        t0 = time.monotonic()
        woke = 0
        for _ in range(20):
            await ragged.sleep(0.001)
            woke += 1
        elapsed = time.monotonic() - t0
        st.stop = True
        await g
        return woke, elapsed

    with ragged.Runtime(procs=1) as rt:
        woke, elapsed = rt.go(main).result(timeout=GUARD + 20)
        m = rt.metrics()
    assert woke == 20
    if ASYNC:
        assert m["async_preemptions"] > 0
        assert elapsed < GUARD / 2, "the sleeper ran only when the loop gave up by itself"
    else:
        assert m["async_preemptions"] == 0


@needs_async
@pytest.mark.timeout(60)
def test_ticker_keeps_ticking_beside_two_tight_loops() -> None:
    """procs=2, a tight loop on each P: a Ticker in a third goroutine still ticks, again and again."""

    async def ticks(n: int) -> int:
        t = ragged.Ticker(0.005)
        got = 0
        try:
            while got < n:
                await t.c.recv()
                got += 1
        finally:
            t.stop()
        return got

    with ragged.Runtime(procs=2) as rt:
        with loops(rt, 2):
            assert rt.go(ticks, 20).result(timeout=30) == 20
        assert rt.metrics()["async_preemptions"] > 0


@needs_async
@pytest.mark.timeout(60)
def test_time_slice_keeps_the_goroutine_on_its_m_and_its_result() -> None:
    """A loop preempted at its time slice waits in the run queue holding its thread, then goes on where
    it stopped: with three finite loops on one P each finishes with its own exact count."""

    async def finite(n: int) -> int:
        total = 0
        for i in range(n):
            total += i
        return total

    n = 3_000_000
    with ragged.Runtime(procs=1) as rt:
        gs = [rt.go(finite, n + k) for k in range(3)]
        results = [g.result(timeout=GUARD) for g in gs]
        m = rt.metrics()
    assert results == [sum(range(n + k)) for k in range(3)]
    assert m["async_preemptions"] > 0
    assert m["threads_started"] <= 1 + 3 + 1, "more threads than one per preempted goroutine"


# ---------------------------------------------------------------- barrier and stop-the-world


@needs_async
@pytest.mark.timeout(90)
@pytest.mark.parametrize("kind", sorted(LOOPS))
def test_barrier_runs_fn_exactly_once_on_every_p_running_a_tight_loop(kind: str) -> None:
    """Each P runs a loop that never awaits (in the goroutine, in a helper, in a generator): every
    barrier still runs fn once on every P, and the loops keep going between barriers."""
    procs = 2
    with ragged.Runtime(procs=procs) as rt:
        with loops(rt, procs, kind) as counts:
            for _ in range(15):
                ids: list[int] = []
                rt.for_each_p(lambda p, ids=ids: ids.append(p.id), timeout=20)
                assert_once(ids, procs)
            wait_all_move(counts)
        assert rt.metrics()["async_preemptions"] >= procs


@needs_async
@pytest.mark.timeout(90)
def test_barrier_from_a_goroutine_reaches_tight_loops() -> None:
    """A goroutine calling for_each_p is served too (its own P runs fn directly)."""
    procs = 3
    with ragged.Runtime(procs=procs) as rt:
        st, _, gs = start_loops(rt, procs - 1)

        async def coordinator() -> list[list[int]]:
            out = []
            for _ in range(10):
                ids: list[int] = []
                await ragged.for_each_p(lambda p, ids=ids: ids.append(p.id))
                out.append(ids)
            return out

        try:
            for ids in rt.go(coordinator).result(timeout=60):
                assert_once(ids, procs)
        finally:
            stop_loops(st, gs)


@needs_async
@pytest.mark.timeout(90)
def test_stop_the_world_reaches_tight_loops_and_nothing_runs_while_it_holds() -> None:
    """Stop-the-world stops Ps whose goroutines never await; no loop moves while the world is stopped,
    and every loop runs again after the restart."""
    procs = 2
    with ragged.Runtime(procs=procs) as rt:
        with loops(rt, procs) as counts:
            for _ in range(10):
                with rt.stop_the_world("test"):
                    held = list(counts)
                    time.sleep(0.02)
                    assert counts == held, "a goroutine ran while the world was stopped"
                wait_all_move(counts, "loops to resume")
        assert rt.metrics()["async_preemptions"] >= procs


@needs_async
@pytest.mark.timeout(90)
def test_set_procs_with_tight_loops_waiting_on_their_own_ms() -> None:
    """Shrinking and growing procs (a stop-the-world that moves run queues) while loops that never await
    are stopped mid-frame: each keeps its exact count and finishes."""
    with ragged.Runtime(procs=3) as rt:
        st, counts, gs = start_loops(rt, 3)
        try:
            for n in (1, 2, 3, 1, 3):
                rt.set_procs(n)
                before = list(counts)
                wait_until(lambda b=before: sum(counts) > sum(b), what="loops to run on the new Ps")
        finally:
            st.stop = True
            results = [g.result(timeout=GUARD + 10) for g in gs]
    assert results == counts


@pytest.mark.timeout(60)
def test_on_311_a_tight_loop_is_a_straggler() -> None:
    """Without sys.monitoring (or with async_preempt=False) a loop that never awaits is never
    reached: the barrier gives up on its P, as before."""
    settings = {} if not ASYNC else {"async_preempt": False}
    with ragged.Runtime(procs=2, **settings) as rt:
        with loops(rt, 1):
            with pytest.raises(ragged.BarrierTimeout):
                rt.for_each_p(lambda p: None, timeout=0.2)
        assert rt.metrics()["async_preemptions"] == 0


# ---------------------------------------------------------------- never inside the runtime


def _fake_goroutine(coro: Any) -> Any:
    return type("G", (), {"coro": coro})()


@needs_async
def test_async_safe_point_is_only_user_code_of_the_goroutine() -> None:
    """Go's isAsyncSafePoint: the frames from the event out to the goroutine's outermost coroutine frame
    must all be user code; a chain through ragged's own code (holding its locks) or one that never
    reaches the goroutine (a callback the scheduler runs) is refused."""
    from ragged._core._barrier import call_safe_point_fn

    seen: dict[str, bool] = {}

    async def body() -> None:
        g = _fake_goroutine(coro)
        seen["user"] = _preempt._user_code(sys._getframe(), g)

        def fn(p: Any) -> None:
            seen["through ragged"] = _preempt._user_code(sys._getframe(), g)

        sched = type("S", (), {"safe_point_fn": staticmethod(fn), "trace": None})()
        call_safe_point_fn(sched, type("P", (), {"sp_requested": 0.0, "pause_ns": 0, "sp_err": None})())
        seen["other goroutine"] = _preempt._user_code(sys._getframe(), _fake_goroutine(other))

    other = body()
    coro = body()
    with pytest.raises(StopIteration):
        coro.send(None)
    other.close()
    assert seen == {"user": True, "through ragged": False, "other goroutine": False}


@needs_async
@pytest.mark.timeout(60)
def test_cancellation_stays_at_await_points_and_nothing_is_raised_asynchronously() -> None:
    """A cancelled loop that is preempted again and again is never interrupted by an exception: it
    finishes its work, and Cancelled arrives at its next await."""
    seen: list[str] = []

    async def worker(n: int) -> int:
        total = 0
        try:
            for i in range(n):
                total += i
        except BaseException as e:  # noqa: BLE001 - the test: nothing may be raised here
            seen.append(f"raised in the loop: {e!r}")
            raise
        seen.append(f"loop done: {total}")
        await ragged.sleep(0)
        seen.append("not cancelled")
        return total

    n = 4_000_000
    with ragged.Runtime(procs=2) as rt:
        g = rt.go(worker, n)
        wait_until(lambda: rt.metrics()["context_switches"] > 0, what="the worker to start")
        g.cancel()
        for _ in range(5):
            rt.for_each_p(lambda p: None, timeout=20)
            with rt.stop_the_world("test"):
                pass
        with pytest.raises(ragged.Cancelled):
            g.result(timeout=GUARD)
    assert seen == [f"loop done: {sum(range(n))}"]


# ---------------------------------------------------------------- loops in C


@pytest.mark.timeout(60)
def test_loop_in_c_is_not_preempted_and_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    """A goroutine inside one long C computation (hashing a big buffer) raises no Python events: it
    keeps its P (the sleeper beside it on procs=1 waits), it is reported, and the report says why.
    (The hash releases the GIL, as zlib or numpy do, so sysmon can run meanwhile; a C loop that keeps
    the GIL, ``sum(range(...))`` on a GIL build, stops sysmon too until it returns.)"""
    data = _hash_input(0.6)

    async def c_loop() -> bytes:
        return hashlib.sha256(data).digest()

    async def main() -> float:
        g = ragged.go(c_loop, name="c-loop")
        t0 = time.monotonic()  # our sleep parks us, and the C loop takes the only P
        await ragged.sleep(0.001)
        late = time.monotonic() - t0
        await g
        return late

    caplog.set_level(logging.WARNING, logger="ragged")
    with ragged.Runtime(procs=1, block_report=0.1) as rt:
        late = rt.go(main).result(timeout=GUARD)
        m = rt.metrics()
    assert late > 0.15, "the C loop was preempted"
    assert m["async_preemptions"] == 0
    msgs = [r.getMessage() for r in caplog.records if "'c-loop'" in r.getMessage()]
    assert msgs, "the C loop was not reported"
    if ASYNC:
        assert "raises no Python events" in msgs[0]
    else:
        assert "preempted only at await points" in msgs[0]


def _hash_input(seconds: float) -> bytes:
    """A buffer that ``hashlib.sha256`` takes about ``seconds`` to hash here (in C, without the GIL)."""
    probe = bytes(4 << 20)
    best = float("inf")
    for _ in range(3):  # the fastest of three: a loaded machine makes the buffer longer, never shorter
        t = time.perf_counter()
        hashlib.sha256(probe).digest()
        best = min(best, time.perf_counter() - t)
    return bytes(int(seconds * len(probe) / max(best, 1e-6)))


@pytest.mark.timeout(60)
def test_report_counts_what_waits_anywhere(caplog: pytest.LogCaptureFixture) -> None:
    """The report counts what waits for the P: here main, whose sleep's timer fired while a blocking
    call held the only P (it waits in the global queue, or as an overdue timer), not "0 goroutines"."""

    async def blocker() -> None:
        time.sleep(0.35)  # holds the P: the point of the test

    async def main() -> None:
        g = ragged.go(blocker, name="blocker")
        await ragged.sleep(0.001)
        await g

    caplog.set_level(logging.WARNING, logger="ragged")
    ragged.run(main, procs=1, block_report=0.1)
    msgs = [r.getMessage() for r in caplog.records if "'blocker'" in r.getMessage()]
    assert msgs
    assert "1 goroutine(s) or timer(s) wait to run meanwhile" in msgs[0], msgs[0]


@needs_async
@pytest.mark.timeout(60)
def test_report_says_a_goroutine_was_preempted_asynchronously(caplog: pytest.LogCaptureFixture) -> None:
    """A loop that is preempted asynchronously and then blocks in C is reported with how often it was
    preempted, and the advice that a checkpoint is cheaper."""
    data = _hash_input(0.6)

    async def mixed(st: Stop) -> int:
        k = 0
        while not st.stop:
            k += 1
        return len(hashlib.sha256(data).digest()) + k

    async def main() -> None:
        st = Stop()
        g = ragged.go(mixed, st, name="mixed")
        for _ in range(5):
            await ragged.sleep(0.002)  # each wake-up needs the P: the loop is preempted
        st.stop = True
        await g

    caplog.set_level(logging.WARNING, logger="ragged")
    with ragged.Runtime(procs=1, block_report=0.15) as rt:
        rt.go(main).result(timeout=GUARD)
    msgs = [r.getMessage() for r in caplog.records if "'mixed'" in r.getMessage()]
    assert msgs
    assert "preempted asynchronously" in msgs[0] and "checkpoint" in msgs[0], msgs[0]


# ---------------------------------------------------------------- visible


@needs_async
@pytest.mark.timeout(60)
def test_trace_and_metrics_show_async_preemptions(tmp_path: Any) -> None:
    """The trace has an "async preempt" event per reach (barrier, stop the world); metrics count them."""
    import json

    path = tmp_path / "t.json"
    wait_until(lambda: not _preempt.armed(), what="events left on by an earlier test to go off")
    with ragged.trace(path):
        with ragged.Runtime(procs=2) as rt:
            with loops(rt, 2):
                rt.for_each_p(lambda p: None, timeout=20)
                with rt.stop_the_world("t"):
                    pass
            m = rt.metrics()
    names = [e["name"] for e in json.loads(path.read_text())["traceEvents"]]
    assert "async preempt (barrier)" in names
    assert "async preempt (stop the world)" in names
    assert m["async_preemptions"] >= 4
    assert m["async_preempt_arms"] >= 1


@needs_async
@pytest.mark.timeout(60)
def test_events_are_switched_off_once_nothing_needs_them() -> None:
    """After the last request the events go off again (sysmon, ``LINGER`` later)."""
    wait_until(lambda: not _preempt.armed(), what="events left on by an earlier test to go off")
    with ragged.Runtime(procs=2) as rt:
        with loops(rt, 2):
            rt.for_each_p(lambda p: None, timeout=20)
            assert rt.metrics()["async_preempt_arms"] >= 1
        wait_until(lambda: not _preempt.armed(), what="the events to be switched off")


@needs_async
@pytest.mark.timeout(60)
def test_the_linger_grows_while_requests_keep_coming_and_resets_after_a_quiet_spell() -> None:
    """Barriers a few ms apart over tight loops keep the events on (the linger doubles, to at most
    ``LINGER_MAX``); after a quiet spell the first switch starts again from ``LINGER``."""
    wait_until(lambda: not _preempt.armed(), what="events left on by an earlier test to go off")
    with ragged.Runtime(procs=2) as rt:
        with loops(rt, 2):
            grew = False
            for _ in range(200):
                rt.for_each_p(lambda p: None, timeout=20)
                grew = grew or _preempt._linger > _preempt.LINGER
                assert _preempt._linger <= _preempt.LINGER_MAX
                time.sleep(0.004)  # longer than LINGER, shorter than REARM_SOON
                if grew:
                    break
            assert grew, "the linger never grew with barriers 4ms apart"
            wait_until(lambda: not _preempt.armed(), what="the events to be switched off")
            time.sleep(_preempt.REARM_SOON * 2)
            rt.for_each_p(lambda p: None, timeout=20)
            assert _preempt._linger == _preempt.LINGER


# ---------------------------------------------------------------- other sys.monitoring users


@needs_async
@pytest.mark.timeout(90)
def test_a_coverage_tool_keeps_its_events_during_async_preemption() -> None:
    """A tool on the coverage id (1) watching LINE events of the loop's code still gets them while
    barriers reach the loop asynchronously, and ragged never takes its id."""
    mon = sys.monitoring
    cov = mon.COVERAGE_ID
    if mon.get_tool(cov) is not None:
        pytest.skip(f"a coverage tool ({mon.get_tool(cov)}) already holds the coverage id")
    lines = [0]

    def on_line(code: Any, line: int) -> None:
        lines[0] += 1

    mon.use_tool_id(cov, "test coverage")
    try:
        mon.register_callback(cov, mon.events.LINE, on_line)
        mon.set_local_events(cov, helper_loop.__code__, mon.events.LINE)
        with ragged.Runtime(procs=2) as rt:
            with loops(rt, 2, "helper"):
                for _ in range(5):
                    ids: list[int] = []
                    rt.for_each_p(lambda p, ids=ids: ids.append(p.id), timeout=20)
                    assert_once(ids, 2)
                seen = lines[0]
                wait_until(lambda: lines[0] > seen, what="coverage events after the barriers")
            assert rt.metrics()["async_preemptions"] > 0
        assert _preempt._tool != cov
    finally:
        mon.set_local_events(cov, helper_loop.__code__, 0)
        mon.register_callback(cov, mon.events.LINE, None)
        mon.free_tool_id(cov)


@pytest.mark.timeout(90)
def test_breakpoint_in_a_goroutine_while_barriers_preempt_loops() -> None:
    """pdb stops at a breakpoint inside a goroutine (its commands run, the value prints) while other
    Ps run tight loops that barriers reach asynchronously."""
    out = io.StringIO()

    async def debugged() -> int:
        total = 21
        debugger = pdb.Pdb(stdin=io.StringIO("p total * 2\ncontinue\n"), stdout=out, nosigint=True)
        debugger.set_trace()
        total *= 2
        return total

    procs = 2
    with ragged.Runtime(procs=procs + 1) as rt:
        st, _, gs = start_loops(rt, procs) if ASYNC else (Stop(), [], [])
        try:
            g = rt.go(debugged)
            for _ in range(5):
                rt.for_each_p(lambda p: None, timeout=20)
            assert g.result(timeout=30) == 42
        finally:
            sys.settrace(None)
            stop_loops(st, gs)
    assert "42" in out.getvalue()


@needs_async
@pytest.mark.timeout(60)
def test_no_free_tool_id_degrades_to_cooperative_preemption(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When every tool id ragged may use is taken, preemption stays cooperative: a tight loop is a
    straggler again, and one warning says why."""
    mon = sys.monitoring
    ours = _preempt._tool
    if ours is not None:  # give ours back for the test; ragged claims one again when it next needs it
        with _preempt._lock:
            mon.set_events(ours, 0)
            mon.free_tool_id(ours)
            _preempt._tool = None
            _preempt._armed = False
    monkeypatch.setattr(_preempt, "_warned", False)
    taken = [t for t in _preempt.TOOL_IDS if mon.get_tool(t) is None]
    for t in taken:
        mon.use_tool_id(t, "someone else")
    caplog.set_level(logging.WARNING, logger="ragged")
    try:
        with ragged.Runtime(procs=2) as rt:
            with loops(rt, 1):
                for _ in range(2):
                    with pytest.raises(ragged.BarrierTimeout):
                        rt.for_each_p(lambda p: None, timeout=0.2)
                assert _preempt.state(rt._sched) == "no tool id"
    finally:
        for t in taken:
            mon.free_tool_id(t)
    warnings = [r.getMessage() for r in caplog.records if "tool ids" in r.getMessage()]
    assert len(warnings) == 1, warnings
