"""Fault injection: faults that raise end in a clear error, and the runtime survives.

Faults: a ``for_each_p`` callback that raises on some Ps; goroutines that raise
at random; syscalls that raise.  Each test asserts the outcome (which
exception, where) and that nothing hangs (every wait is bounded); then a
barrier and a spawn+join must still work (``check_still_works``).  Faults that
end the runtime (close mid-operation, Ctrl-C) are in ``test_faults_shutdown.py``.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest
from _barrier_helpers import Boom, HardBoom, raising_on
from _invariants import BarrierLog, check_still_works
from conftest import no_runtime_threads_left, ragged_threads, spin, wait_until

import ragged

# ---------------------------------------------------------------- fn raises on some Ps


@pytest.mark.timeout(30)
def test_fn_raising_on_one_p_reaches_the_caller_after_every_p_ran() -> None:
    """One P's callback raises: the barrier still runs fn on every P, then raises that error itself."""
    with ragged.Runtime(procs=4) as rt:
        seen: list[int] = []
        with pytest.raises(Boom) as info:
            rt.for_each_p(raising_on({2}, seen, message="on P{}"))
        assert type(info.value) is Boom
        assert sorted(seen) == [0, 1, 2, 3]
        assert any("P2" in note for note in getattr(info.value, "__notes__", []))
        assert rt.metrics()["barrier_fn_errors"] == 1
        check_still_works(rt)


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
        try:
            with pytest.raises(ExceptionGroup) as info:
                rt.for_each_p(raising_on({1, 3}, seen, message="on P{}"))
        finally:
            stop.set()
        assert sorted(seen) == [0, 1, 2, 3]
        errs = info.value.exceptions
        assert len(errs) == 2 and all(type(e) is Boom for e in errs)
        assert sorted(str(e) for e in errs) == ["on P1", "on P3"]
        for g in gs:
            g.result(timeout=10)
        check_still_works(rt)


@pytest.mark.timeout(30)
def test_fn_raising_in_a_goroutine_barrier_including_the_callers_own_p() -> None:
    """From a goroutine: fn raising on the caller's own P and another arrives at the ``await``."""
    with ragged.Runtime(procs=3) as rt:

        async def coordinator() -> tuple[list[int], int, list[str]]:
            me = ragged.current_p().id
            other = (me + 1) % 3
            seen: list[int] = []
            try:
                await ragged.for_each_p(raising_on({me, other}, seen, message="P{}"))
            except ExceptionGroup as eg:
                return sorted(seen), len(eg.exceptions), sorted(str(e) for e in eg.exceptions)
            raise AssertionError("for_each_p did not raise")

        seen, n, msgs = rt.go(coordinator).result(timeout=20)
        assert seen == [0, 1, 2]
        assert n == 2 and len(msgs) == 2
        check_still_works(rt)


@pytest.mark.timeout(30)
def test_fn_raising_a_base_exception_still_completes_the_barrier() -> None:
    """A BaseException (not an Exception) from fn is delivered as is; the barrier still completed."""
    with ragged.Runtime(procs=2) as rt:
        seen: list[int] = []
        with pytest.raises(HardBoom):
            rt.for_each_p(raising_on({0}, seen, HardBoom))
        assert sorted(seen) == [0, 1]

        with pytest.raises(BaseExceptionGroup) as info:
            rt.for_each_p(raising_on({0, 1}, [], HardBoom))
        assert not isinstance(info.value, ExceptionGroup)
        assert len(info.value.exceptions) == 2
        check_still_works(rt)


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
        check_still_works(rt)


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
        check_still_works(rt)


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
        check_still_works(rt)


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
        check_still_works(rt)
