"""When an M that has run a barrier's fn steps aside (``_barrier.step_aside_window``).

Stepping aside gives the M's core (or the GIL) to the Ms a barrier still waits
for.  It helps only when the Ps cannot all run at once: under the GIL, or with
more Ps than usable CPUs.  The decision is made per barrier, so it follows
``set_procs``; an explicit ``barrier_step_aside`` setting always wins.
"""

from __future__ import annotations

import pytest

import ragged
from ragged import _barrier
from ragged._barrier import STEP_ASIDE_WINDOW, step_aside_window


@pytest.mark.timeout(30)
@pytest.mark.parametrize("gil", [True, False], ids=["gil", "free-threaded"])
def test_automatic_window_steps_aside_only_when_ps_cannot_all_run(monkeypatch: pytest.MonkeyPatch, gil: bool) -> None:
    monkeypatch.setattr(_barrier, "gil_enabled", lambda: gil)
    with ragged.Runtime(procs=2) as rt:
        sched = rt._sched
        sched.cpus = 2
        assert step_aside_window(sched) == (STEP_ASIDE_WINDOW if gil else 0.0)
        sched.cpus = 1  # more Ps than CPUs: the Ps cannot all run at once
        assert step_aside_window(sched) == STEP_ASIDE_WINDOW
        sched.cpus = 4
        rt.set_procs(8)  # the decision follows procs
        assert step_aside_window(sched) == STEP_ASIDE_WINDOW
        rt.set_procs(4)
        assert step_aside_window(sched) == (STEP_ASIDE_WINDOW if gil else 0.0)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("value", [0, 0.005])
def test_explicit_setting_wins(monkeypatch: pytest.MonkeyPatch, value: float) -> None:
    for gil in (True, False):
        monkeypatch.setattr(_barrier, "gil_enabled", lambda gil=gil: gil)
        with ragged.Runtime(procs=2, barrier_step_aside=value) as rt:
            rt._sched.cpus = 1
            assert step_aside_window(rt._sched) == value
            assert rt.settings.barrier_step_aside == value


@pytest.mark.parametrize(
    ("value", "error"), [(-1, ValueError), (float("nan"), ValueError), ("20ms", TypeError), (True, TypeError)]
)
def test_bad_setting_is_refused_with_a_named_error(value: object, error: type) -> None:
    with pytest.raises(error, match="barrier_step_aside"):
        ragged.Runtime(procs=1, barrier_step_aside=value)


def test_default_setting_is_automatic() -> None:
    with ragged.Runtime(procs=1) as rt:
        assert rt.settings.barrier_step_aside is None
