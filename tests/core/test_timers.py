"""The timer heap (``_core._timers``): ordering, ``timer0``, stop, periodic timers, clear.

Unit tests on a ``Timers`` with a stand-in scheduler (it only needs
``poke_timer_waiter``) and explicit ``now`` values, so nothing here depends on
how fast the machine is.  What goroutines see of it (``ragged.sleep``,
``Timer``, ``Ticker``) is tested in tests/api.
"""

from __future__ import annotations

from typing import Any

import pytest

from ragged._core._timers import Timers


class _Sched:
    """What Timers uses of a scheduler: a count of pokes to the timer waiter."""

    def __init__(self) -> None:
        self.pokes = 0

    def poke_timer_waiter(self) -> None:
        self.pokes += 1


def _timers() -> tuple[Timers, _Sched]:
    sched = _Sched()
    return Timers(sched), sched  # type: ignore[arg-type]  # a stand-in for Sched


def _add_at(t: Timers, when: float, fired: list[Any], tag: Any, period: float = 0.0) -> Any:
    with t.lock:
        return t.add_locked(when, fired.append, tag, period)


def test_timers_fire_in_deadline_order_and_ties_in_insertion_order() -> None:
    t, _ = _timers()
    fired: list[Any] = []
    for when, tag in [(5.0, "e"), (1.0, "a"), (3.0, "c1"), (2.0, "b"), (3.0, "c2"), (4.0, "d")]:
        _add_at(t, when, fired, tag)
    assert t.run(now=3.0) == 4
    assert fired == ["a", "b", "c1", "c2"]
    assert t.run(now=10.0) == 2
    assert fired == ["a", "b", "c1", "c2", "d", "e"]
    assert len(t) == 0


def test_timer0_is_the_earliest_live_deadline_or_zero() -> None:
    t, _ = _timers()
    fired: list[Any] = []
    assert t.timer0 == 0.0
    late = _add_at(t, 9.0, fired, "late")
    assert t.timer0 == 9.0
    early = _add_at(t, 2.0, fired, "early")
    assert t.timer0 == 2.0
    assert t.stop(early) is True
    assert t.timer0 == 9.0, "stopping the earliest timer must move timer0 to the next live one"
    t.run(now=9.0)
    assert fired == ["late"]
    assert t.timer0 == 0.0
    assert t.stop(late) is False


def test_stop_is_true_once_and_never_after_firing() -> None:
    t, _ = _timers()
    fired: list[Any] = []
    a = _add_at(t, 1.0, fired, "a")
    b = _add_at(t, 2.0, fired, "b")
    assert len(t) == 2
    assert t.stop(a) is True
    assert t.stop(a) is False
    assert len(t) == 1
    t.run(now=5.0)
    assert fired == ["b"], "a stopped timer fired"
    assert t.stop(b) is False, "stop after firing must say the timer had fired"


def test_a_periodic_timer_rearms_on_its_grid_and_drops_the_ticks_it_missed() -> None:
    t, _ = _timers()
    fired: list[Any] = []
    e = _add_at(t, 1.0, fired, "tick", period=1.0)
    assert t.run(now=1.0) == 1
    assert e.when == 2.0
    # A run 3.5 periods late fires once, not four times, and the next tick is on the grid.
    assert t.run(now=5.5) == 1
    assert fired == ["tick", "tick"]
    assert e.when == 6.0
    assert t.timer0 == 6.0
    assert len(t) == 1, "a periodic timer stays live until stopped"
    assert t.stop(e) is True
    assert t.run(now=100.0) == 0


def test_a_callback_that_raises_goes_up_after_the_others_fired() -> None:
    """Every callback is ragged's own: one that raises is a bug, and its exception goes up the
    thread that fired it (which stops the runtime), once the others due have fired."""
    t, _ = _timers()
    fired: list[Any] = []

    def boom(_: Any) -> None:
        raise ValueError("boom")

    with t.lock:
        t.add_locked(1.0, boom, None)
    _add_at(t, 2.0, fired, "after")
    with pytest.raises(ValueError, match="boom") as info:
        t.run(now=3.0)
    assert fired == ["after"]
    assert any("timer callback" in n for n in info.value.__notes__)
    assert len(t) == 0 and t.run(now=4.0) == 0


def test_a_timer_due_at_inf_never_fires_and_keeps_no_heap_entry() -> None:
    t, sched = _timers()
    fired: list[Any] = []
    e = _add_at(t, float("inf"), fired, "never")
    assert not e.alive and len(t) == 0 and t.timer0 == 0.0 and sched.pokes == 0
    assert t.run(now=1e300) == 0 and fired == []
    assert t.stop(e) is False


def test_a_ticker_below_the_clock_resolution_moves_past_now() -> None:
    """``now + 1e-300 == now``: the next tick must still be after ``now``, or run() loops forever."""
    t, _ = _timers()
    fired: list[Any] = []
    with t.lock:
        e = t.add_locked(1.0, fired.append, "tick", period=1e-300)
    assert t.run(now=100.0) == 1
    assert 100.0 < e.when < 100.0 + 1e-9
    assert t.run(now=100.0) == 0, "one tick per timer check"


def test_clear_drops_every_timer() -> None:
    t, _ = _timers()
    fired: list[Any] = []
    entries = [_add_at(t, float(i), fired, i) for i in range(1, 5)]
    t.clear()
    assert t.timer0 == 0.0
    assert len(t) == 0
    assert not any(e.alive for e in entries)
    assert t.run(now=100.0) == 0
    assert fired == []


def test_add_pokes_the_timer_waiter_only_for_a_new_earliest_timer() -> None:
    t, sched = _timers()
    t.add(10.0, lambda _: None)
    assert sched.pokes == 1, "the first timer is the earliest"
    t.add(20.0, lambda _: None)
    assert sched.pokes == 1, "a later timer needs no poke: the waiter wakes for the earlier one first"
    t.add(1.0, lambda _: None)
    assert sched.pokes == 2


def test_callbacks_run_outside_the_heap_lock() -> None:
    """A callback may add or stop timers (Timer.reset from its own fire does): it must not
    find the heap lock held."""
    t, _ = _timers()
    seen: list[bool] = []

    def fire(_: Any) -> None:
        seen.append(t.lock.locked())
        t.add(5.0, lambda _: None)

    with t.lock:
        t.add_locked(1.0, fire, None)
    t.run(now=1.0)
    assert seen == [False]
    assert len(t) == 1


@pytest.mark.parametrize("now", [None, 0.0])
def test_run_with_nothing_due_fires_nothing(now: float | None) -> None:
    t, _ = _timers()
    fired: list[Any] = []
    t.add(3600.0, fired.append, "later")
    assert t.run(now=now) == 0
    assert fired == []
    assert len(t) == 1
