"""A coordinator interrupted while it waits (Ctrl-C) leaves the runtime usable.

A plain-thread ``rt.for_each_p`` or ``rt.stop_the_world`` waiting for a
straggler that never reaches a safe point is interrupted with SIGINT.  The
call raises KeyboardInterrupt, and afterwards no P has its barrier flag set,
``stopwait`` is 0, the world is running (goroutines progress) and the next
barrier and stop-the-world complete.
"""

from __future__ import annotations

import signal
import threading
import time

import pytest
from conftest import interrupt_after

import ragged


def sigint_main() -> None:
    signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)


def assert_usable(rt: ragged.Runtime, progress: list[int]) -> None:
    sched = rt._sched
    assert sched.stopwait == 0 and not sched.gcwaiting and sched.safe_point_fn is None
    assert all(p.run_safe_point_fn == 0 for p in sched.allp)
    before = progress[0]
    deadline = time.monotonic() + 5
    while progress[0] == before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert progress[0] > before, "goroutines stopped making progress"


def run_with_straggler(procs: int, what: str) -> None:
    stop = threading.Event()
    running = threading.Event()
    progress = [0]

    async def straggler() -> None:
        running.set()
        # Never a safe point: blocked in C (a lock acquire), where not even an asynchronous
        # preemption reaches it (a loop in Python would be reached on CPython 3.12+).
        stop.wait()

    async def worker() -> None:
        while not stop.is_set():
            progress[0] += 1
            await ragged.gosched()

    with ragged.Runtime(procs=procs, straggler_timeout=0) as rt:
        gs = [rt.go(straggler), rt.go(worker)]
        try:
            # The straggler must hold its P before the coordinator starts, or
            # the coordinator would find that P idle and serve it itself.
            assert running.wait(10), "the straggler never started"
            with pytest.raises(KeyboardInterrupt), interrupt_after(0.2, sigint_main):
                if what == "barrier":
                    rt.for_each_p(lambda p: None)
                else:
                    with rt.stop_the_world("interrupted"):
                        pass
            time.sleep(0.01)  # a late signal would land here, not in the checks
            assert_usable(rt, progress)
        finally:
            stop.set()  # never leave the straggler spinning, whatever failed
        for g in gs:
            g.result(5)
        seen: list[int] = []
        rt.for_each_p(lambda p: seen.append(p.id))
        assert sorted(seen) == list(range(procs))
        with rt.stop_the_world("after"):
            pass


@pytest.mark.timeout(30)
@pytest.mark.parametrize("procs", [2, 3])
@pytest.mark.parametrize("what", ["barrier", "stw"])
def test_interrupted_coordinator_leaves_the_runtime_usable(what: str, procs: int) -> None:
    for _ in range(3):
        run_with_straggler(procs, what)
