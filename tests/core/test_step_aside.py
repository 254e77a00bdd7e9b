"""How an M that has run a barrier's fn makes room for the Ms the barrier waits for.

Under the GIL it parks until the barrier ends, within ``barrier_step_aside``
(20ms by default).  On a free-threaded build without the GIL it never parks
while the Ps can all run at once; with more Ps than usable CPUs it yields its
core at each safe point instead (``_barrier.yields_cores``), and at a
goroutine's checkpoint parks on its own note once the barrier has lasted
``YIELD_FIRST`` (``_barrier.park_aside``).  The choice is made per barrier, so it follows
``set_procs``; an explicit ``barrier_step_aside`` setting always wins.
"""

from __future__ import annotations

import pytest
from _barrier_helpers import Calls, busy_goroutines
from conftest import wait_until

import ragged
from ragged._core import _barrier
from ragged._core._barrier import STEP_ASIDE_WINDOW, step_aside_window, yields_cores


@pytest.mark.timeout(30)
@pytest.mark.parametrize("gil", [True, False], ids=["gil", "free-threaded"])
def test_automatic_choice_follows_the_interpreter_and_procs(monkeypatch: pytest.MonkeyPatch, gil: bool) -> None:
    monkeypatch.setattr(_barrier, "gil_enabled", lambda: gil)
    with ragged.Runtime(procs=2) as rt:
        sched = rt._sched
        sched.cpus = 2
        assert step_aside_window(sched) == (STEP_ASIDE_WINDOW if gil else 0.0)
        assert not yields_cores(sched)
        sched.cpus = 1  # more Ps than CPUs: the Ps cannot all run at once
        assert step_aside_window(sched) == (STEP_ASIDE_WINDOW if gil else 0.0)
        assert yields_cores(sched) is (not gil)
        sched.cpus = 4
        rt.set_procs(8)  # the choice follows procs
        assert yields_cores(sched) is (not gil)
        rt.set_procs(4)
        assert not yields_cores(sched)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("value", [0, 0.005])
def test_explicit_setting_wins(monkeypatch: pytest.MonkeyPatch, value: float) -> None:
    for gil in (True, False):
        monkeypatch.setattr(_barrier, "gil_enabled", lambda gil=gil: gil)
        with ragged.Runtime(procs=2, barrier_step_aside=value) as rt:
            rt._sched.cpus = 1
            assert step_aside_window(rt._sched) == value
            assert not yields_cores(rt._sched)
            assert rt.settings.barrier_step_aside == value


@pytest.mark.timeout(60)
def test_yielding_ms_serve_every_barrier_exactly_once_and_keep_running(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forced into the yield mode (free-threaded, more Ps than CPUs) on whatever build
    runs the suite: 50 barriers over 4 busy Ps each run fn exactly once per P, no P
    parks (no step-aside pause is recorded), and the goroutines keep computing."""
    monkeypatch.setattr(_barrier, "gil_enabled", lambda: False)
    yielded = []
    real_yield = _barrier.os.sched_yield
    monkeypatch.setattr(_barrier.os, "sched_yield", lambda: (yielded.append(1), real_yield())[1])
    windows: list[float] = []  # a parking step-aside needs a window > 0
    real_window = _barrier.step_aside_window
    monkeypatch.setattr(_barrier, "step_aside_window", lambda sched: windows.append(real_window(sched)) or windows[-1])
    with ragged.Runtime(procs=4) as rt:
        rt._sched.cpus = 1
        with busy_goroutines(rt, 4) as counts:
            for i in range(50):
                calls = Calls()
                rt.for_each_p(calls)
                assert sorted(calls.ids) == [0, 1, 2, 3], f"barrier {i}: fn ran on {sorted(calls.ids)}"
                assert not rt._sched.barrier_yield, "the yield mode outlived its barrier"
            before = sum(counts)
            wait_until(lambda: sum(counts) > before, 10, "the goroutines to keep computing")
    assert yielded, "no M yielded its core although the Ps could not all run at once"
    assert windows and not any(windows), f"Ms were allowed to park for barriers: windows {set(windows)}"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("procs", [3, 4, 8])
def test_ms_parked_aside_at_checkpoints_are_all_woken_when_the_barrier_ends(
    monkeypatch: pytest.MonkeyPatch, procs: int
) -> None:
    """Forced into the yield mode with ``YIELD_FIRST`` at 0, so every M that has run fn
    parks on its note at its goroutine's checkpoint, and with a step-aside window of 10
    minutes, so that a lost wake-up would leave that M asleep with its P and the next
    barrier would never finish (the test times out).  200 barriers over busy Ps: each
    runs fn exactly once per P, Ms did park, and the goroutines keep computing."""
    monkeypatch.setattr(_barrier, "gil_enabled", lambda: False)
    monkeypatch.setattr(_barrier, "YIELD_FIRST", 0.0)
    monkeypatch.setattr(_barrier, "STEP_ASIDE_WINDOW", 600.0)
    parked: list[int] = []
    real_park = _barrier.park_aside
    monkeypatch.setattr(
        _barrier, "park_aside", lambda sched, p, done: (parked.append(p.id), real_park(sched, p, done))[1]
    )
    with ragged.Runtime(procs=procs) as rt:
        rt._sched.cpus = 1
        with busy_goroutines(rt, procs) as counts:
            for i in range(200):
                calls = Calls()
                rt.for_each_p(calls)
                assert sorted(calls.ids) == list(range(procs)), f"barrier {i}: fn ran on {sorted(calls.ids)}"
            before = sum(counts)
            wait_until(lambda: sum(counts) > before, 10, "the goroutines to keep computing")
        assert not rt._sched.barrier_yield, "the yield mode outlived its barrier"
    assert parked, "no M parked aside although YIELD_FIRST was 0"


@pytest.mark.parametrize(
    ("value", "error"), [(-1, ValueError), (float("nan"), ValueError), ("20ms", TypeError), (True, TypeError)]
)
def test_bad_setting_is_refused_with_a_named_error(value: object, error: type) -> None:
    with pytest.raises(error, match="barrier_step_aside"):
        ragged.Runtime(procs=1, barrier_step_aside=value)


def test_default_setting_is_automatic() -> None:
    with ragged.Runtime(procs=1) as rt:
        assert rt.settings.barrier_step_aside is None


def test_a_barrier_over_idle_ps_never_makes_room(monkeypatch: pytest.MonkeyPatch) -> None:
    """With every P idle the coordinator serves them all itself: nothing to wait for."""
    made = []
    monkeypatch.setattr(_barrier, "step_aside_window", lambda sched: made.append("park") or 0.0)
    monkeypatch.setattr(_barrier, "yields_cores", lambda sched: made.append("yield") or False)
    with ragged.Runtime(procs=3) as rt:
        rt._sched.cpus = 1
        rt.for_each_p(lambda p: None)
    assert not made


@pytest.mark.timeout(60)
def test_an_m_entering_a_syscall_steps_aside_on_its_own_note(caplog: pytest.LogCaptureFixture) -> None:
    """A P whose goroutine enters a syscall runs a pending fn there and steps aside after
    it, when its P is already detached (``p.m`` is None): the M sleeps on its own note.
    Goroutines that make syscalls back to back meet barriers there many times; every
    barrier runs fn once per P and no M crashes."""
    procs = 2

    async def syscaller() -> int:
        n = 0
        for _ in range(1000):
            await ragged.syscall(int)
            n += 1
        return n

    with ragged.Runtime(procs=procs, barrier_step_aside=0.005) as rt:
        gs = [rt.go(syscaller) for _ in range(procs)]
        for i in range(100):
            calls = Calls()
            rt.for_each_p(calls)
            assert sorted(calls.ids) == list(range(procs)), f"barrier {i}: fn ran on {sorted(calls.ids)}"
        assert [g.result(timeout=30) for g in gs] == [1000] * procs
    assert "crashed" not in caplog.text
