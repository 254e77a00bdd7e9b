"""sysmon: forced preemption of long-running goroutines and syscall retake."""

from __future__ import annotations

import threading
import time

import pytest

import ragged

GUARD = 10.0  # seconds: a spinner gives up after this, so a failure cannot hang


@pytest.mark.timeout(30)
@pytest.mark.parametrize("attempt", range(3))
def test_spinning_goroutine_is_preempted_on_one_p(attempt: int) -> None:
    """procs=1: a goroutine that only awaits checkpoint() still lets another run."""

    async def spinner(flag: list[str]) -> tuple[bool, int]:
        deadline = time.monotonic() + GUARD
        n = 0
        while not flag and time.monotonic() < deadline:
            await ragged.checkpoint()
            n += 1
        return bool(flag), n

    async def setter(flag: list[str]) -> None:
        flag.append("set")

    async def main() -> tuple[tuple[bool, int], int]:
        flag: list[str] = []
        s = ragged.go(spinner, flag)  # runs first and never gosched-es
        t = ragged.go(setter, flag)
        result = await s
        await t
        return result, ragged.metrics()["preemptions"]

    (saw_flag, spins), preemptions = ragged.run(main, procs=1)
    assert saw_flag, f"the other goroutine never ran while the spinner spun ({spins} checkpoints)"
    assert spins > 0
    assert preemptions > 0


@pytest.mark.timeout(30)
def test_two_spinners_time_slice_on_one_p() -> None:
    """Two goroutines that each wait for the other's progress both finish: sysmon keeps switching them."""

    async def spinner(me: int, counts: list[int], seen: list[int]) -> int:
        other = 1 - me
        deadline = time.monotonic() + GUARD
        last = counts[other]
        while seen[me] < 3 and time.monotonic() < deadline:
            counts[me] += 1
            if counts[other] != last:
                last = counts[other]
                seen[me] += 1
            await ragged.checkpoint()
        return seen[me]

    async def main() -> tuple[list[int], int]:
        counts, seen = [0, 0], [0, 0]
        a = ragged.go(spinner, 0, counts, seen)
        b = ragged.go(spinner, 1, counts, seen)
        return [await a, await b], ragged.metrics()["preemptions"]

    seen, preemptions = ragged.run(main, procs=1)
    assert seen == [3, 3], f"spinners did not alternate: {seen}"
    assert preemptions >= 3


@pytest.mark.timeout(30)
def test_preempt_after_setting_is_honoured() -> None:
    """With a long preempt_after, a short spin is not preempted; the default slice is 10ms."""
    with ragged.Runtime(procs=1) as rt:
        assert rt.settings.preempt_after == pytest.approx(10e-3)

    async def short_spin() -> int:
        for _ in range(100):
            await ragged.checkpoint()
        return ragged.metrics()["preemptions"]

    with ragged.Runtime(procs=1, preempt_after=60.0) as rt:
        assert rt.go(short_spin).result(timeout=10) == 0


@pytest.mark.timeout(30)
def test_cpu_bound_goroutines_on_one_p_all_progress() -> None:
    """Several goroutines that spin with checkpoint() all make progress within a shared window."""
    n = 4

    async def spinner(i: int, progress: list[int], stop: threading.Event) -> None:
        deadline = time.monotonic() + GUARD
        while not stop.is_set() and time.monotonic() < deadline:
            progress[i] += 1
            await ragged.checkpoint()

    async def watcher(progress: list[int], stop: threading.Event) -> list[int]:
        deadline = time.monotonic() + GUARD
        while not all(progress) and time.monotonic() < deadline:
            await ragged.checkpoint()
        stop.set()
        return list(progress)

    async def main() -> list[int]:
        progress = [0] * n
        stop = threading.Event()
        gs = [ragged.go(spinner, i, progress, stop) for i in range(n)]
        w = ragged.go(watcher, progress, stop)
        snapshot = await w
        for g in gs:
            await g
        return snapshot

    snapshot = ragged.run(main, procs=1)
    assert all(snapshot), f"some spinner never ran: {snapshot}"


@pytest.mark.timeout(30)
def test_sysmon_retakes_p_from_long_syscall_when_work_is_queued() -> None:
    """procs=1: the only P, held in a syscall, is handed to another M to run queued goroutines.

    The syscall waits until all the other goroutines have run, so it returns
    True only if they ran while it was blocked.
    """
    n = 10
    in_syscall = threading.Event()
    all_ran = threading.Event()
    ran: list[int] = []

    def blocking() -> bool:
        in_syscall.set()
        return all_ran.wait(GUARD)

    async def quick(i: int) -> None:
        ran.append(i)
        if len(ran) == n:
            all_ran.set()

    async def main() -> tuple[bool, int]:
        b = ragged.go(blocker)
        while not in_syscall.is_set():
            await ragged.gosched()
        gs = [ragged.go(quick, i) for i in range(n)]
        for g in gs:
            await g
        return await b, ragged.metrics()["syscall_handoffs"]

    async def blocker() -> bool:
        return await ragged.syscall(blocking)

    others_ran_during_syscall, handoffs = ragged.run(main, procs=1)
    assert others_ran_during_syscall
    assert sorted(ran) == list(range(n))
    assert handoffs >= 1


@pytest.mark.timeout(30)
def test_sysmon_thread_is_named_and_stops_at_close() -> None:
    rt = ragged.Runtime(procs=1)
    try:
        names = [t.name for t in threading.enumerate()]
        assert "ragged-sysmon" in names
        sysmon = rt._sysmon
        assert sysmon.is_alive()
    finally:
        rt.close()
    assert not sysmon.is_alive()
