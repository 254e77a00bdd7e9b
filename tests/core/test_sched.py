"""The scheduler's shared operations (``_core._sched``): run queues, the global queue, idle lists,
``handoffp``, ``wakep`` and ``stopwait``.

Most tests use a ``Sched`` of its own with no runtime around it (no thread is
started: nothing here calls ``startm`` unless the test says so), and plain
values in the queues, so each operation is checked on exactly the state it is
given.  The M loop that uses these (``schedule``, ``findrunnable``) is tested
in test_proc.py.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from conftest import wait_until

import ragged
from ragged._core import _sched
from ragged._core._metrics import Metrics
from ragged._core._p import GCSTOP, IDLE
from ragged._core._sched import Sched
from ragged._core._settings import Settings


def _sched_of(procs: int = 2) -> Sched:
    """A scheduler with ``procs`` idle Ps and no runtime: no M, no sysmon."""
    return Sched(SimpleNamespace(_closing=False), procs, Settings(), Metrics())


@pytest.fixture
def small_runq(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(_sched, "RUNQ_SIZE", 8)
    return 8


# ---------------------------------------------------------------- run queues


def test_runqput_is_fifo_and_a_full_queue_moves_its_older_half_to_the_global_queue(small_runq: int) -> None:
    s = _sched_of()
    p = s.allp[0]
    for g in range(1, small_runq + 1):
        s.runqput(p, g)  # type: ignore[arg-type]  # plain values stand in for goroutines
    assert list(p.runq) == list(range(1, 9))
    assert not s.globrunq
    s.runqput(p, 9)  # type: ignore[arg-type]
    assert list(p.runq) == [5, 6, 7, 8], "the newer half stays local, in order"
    assert list(s.globrunq) == [1, 2, 3, 4, 9], "the older half, in order, then the new one (Go's runqputslow)"


def test_runqputbatch_fills_the_local_queue_and_spills_the_rest_in_order(small_runq: int) -> None:
    s = _sched_of()
    p = s.allp[0]
    for g in range(6):
        s.runqput(p, g)  # type: ignore[arg-type]
    s.runqputbatch(p, [10, 11, 12, 13, 14])  # type: ignore[list-item]
    assert list(p.runq) == [0, 1, 2, 3, 4, 5, 10, 11]
    assert list(s.globrunq) == [12, 13, 14]


def test_globrunqget_takes_a_fair_share_and_moves_it_to_the_local_queue() -> None:
    s = _sched_of(procs=2)
    p = s.allp[0]
    s.globrunq.extend(range(10))
    assert s.globrunqget(p, 0) == 0
    assert list(p.runq) == [1, 2, 3, 4, 5], "10 // procs + 1 = 6 taken: one returned, five queued"
    assert list(s.globrunq) == [6, 7, 8, 9]
    p.runq.clear()
    assert s.globrunqget(p, 1) == 6
    assert not p.runq, "maxn=1 takes exactly one"
    s.globrunq.clear()
    assert s.globrunqget(p, 0) is None


def test_globrunqget_takes_at_most_half_a_local_queue(small_runq: int) -> None:
    s = _sched_of(procs=1)
    p = s.allp[0]
    s.globrunq.extend(range(20))
    assert s.globrunqget(p, 0) == 0
    assert len(p.runq) == small_runq // 2 - 1
    assert len(s.globrunq) == 20 - small_runq // 2


@pytest.mark.parametrize(("have", "stolen"), [(5, 3), (4, 2), (1, 1), (0, 0)])
def test_runqsteal_takes_the_older_half_rounded_up(have: int, stolen: int) -> None:
    s = _sched_of()
    thief, victim = s.allp
    victim.runq.extend(range(have))
    g = s.runqsteal(thief, victim)
    if not stolen:
        assert g is None
        return
    assert g == 0, "the thief runs the oldest stolen goroutine"
    assert list(thief.runq) == list(range(1, stolen))
    assert list(victim.runq) == list(range(stolen, have))


# ---------------------------------------------------------------- idle lists


def test_idle_ps_are_a_stack_with_p0_on_top_and_idle_ms_a_stack_too() -> None:
    s = _sched_of(procs=3)
    assert s.npidle == 3
    with s.lock:
        first, second = s.pidleget(), s.pidleget()
        assert (first.id, second.id) == (0, 1)  # type: ignore[union-attr]
        s.pidleput(first)  # type: ignore[arg-type]
        assert s.pidleget() is first
        assert s.mget() is None
        a, b = SimpleNamespace(id="a"), SimpleNamespace(id="b")
        s.mput(a)  # type: ignore[arg-type]
        s.mput(b)  # type: ignore[arg-type]
        assert s.mget() is b and s.mget() is a and s.mget() is None


def test_handoffp_of_a_p_with_nothing_to_do_puts_it_back_on_the_idle_list() -> None:
    s = _sched_of()
    s.nmspinning = 1  # some M already looks for work: handoffp must not start another
    with s.lock:
        p = s.pidleget()
    assert p is not None
    s.handoffp(p, "test")
    assert p in s.pidle and p.status == IDLE
    assert not s.allm, "no M was needed"


def test_handoffp_during_a_stop_the_world_stops_the_p_and_counts_it_down() -> None:
    s = _sched_of()
    s.nmspinning = 1
    with s.lock:
        p = s.pidleget()
        s.stopwait = 1
        s.gcwaiting = True
    assert p is not None
    s.handoffp(p, "test")
    assert p.status == GCSTOP
    assert p not in s.pidle
    assert s.stopwait == 0
    assert s.stopnote.sleep(0), "the last P counted down must wake the coordinator"


@pytest.mark.parametrize("why", ["an M spins", "no idle P", "shutdown"])
def test_wakep_starts_no_m_when_none_is_needed(why: str) -> None:
    s = _sched_of()
    with s.lock:
        if why == "an M spins":
            s.nmspinning = 1
        elif why == "no idle P":
            s.pidle.clear()
        else:
            s.shutdown = True
    s.wakep()
    assert not s.allm
    assert s.nmspinning == (1 if why == "an M spins" else 0)


@pytest.mark.timeout(30)
def test_wakep_starts_a_spinning_m_that_parks_again_when_it_finds_nothing() -> None:
    with ragged.Runtime(procs=2) as rt:
        s = rt._sched
        started = rt.metrics()["threads_started"]
        s.wakep()
        wait_until(lambda: rt.metrics()["threads_started"] == started + 1, 10, "wakep to start an M")
        wait_until(
            lambda: s.nmspinning == 0 and s.npidle == 2 and len(s.midle) == len(s.allm),
            10,
            "the spinning M to give its P back and park",
        )


def test_ready_from_a_plain_thread_puts_the_goroutine_on_the_global_queue() -> None:
    s = _sched_of()
    s.nmspinning = 1  # no wakeup needed: keep it thread-free
    g: Any = SimpleNamespace(id=1)
    s.ready(g)
    assert list(s.globrunq) == [g]


# ---------------------------------------------------------------- stopwait


def test_stopwait_counts_down_and_the_last_wakes_the_coordinator() -> None:
    s = _sched_of()
    note = s.stopnote
    note.clear()
    s.stopwait = 3
    assert s.stopwait_done() == 2
    assert not note.sleep(0), "only the count-down to 0 wakes the coordinator"
    assert s.stopwait_done(2, wake=False) == 0
    assert not note.sleep(0), "wake=False: the coordinator counting itself reads the result instead"
    s.stopwait = 1
    assert s.stopwait_done() == 0
    assert note.sleep(0)


def test_stopwait_below_zero_reads_negative_so_a_double_count_shows() -> None:
    s = _sched_of()
    s.stopwait = 0
    s.stopwait_done(wake=False)
    assert s.stopwait == -1


def test_preemptone_of_a_p_without_an_m_asks_nothing() -> None:
    s = _sched_of()
    assert s.preemptone(s.allp[0]) is False
