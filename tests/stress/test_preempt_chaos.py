"""Asynchronous preemption under chaos: tight loops mixed with everything else, seeded.

Per seed, on ``Runtime(procs=P, chaos=seed, debug=True)``: goroutines that
never await (loops in the goroutine, in a helper, in a generator, finite, each
with a result to check, and one that spins for as long as the coordinators
run) run beside channel pipelines, goroutines contending
for a ``Mutex`` and sleepers, while coordinators -- a plain thread and a
goroutine -- issue barriers and stop-the-worlds at random (and a ``set_procs``
now and then).  Every barrier must run ``fn`` exactly once per P, nothing may
run while the world is stopped, every goroutine must finish with its exact
result (no deadlock, nothing lost, nothing run twice), and afterwards the
scheduler must be quiescent and the events switched off.

The seed is in the test id and in every assertion message; replay with
``pytest -k 'seed=3'`` (the OS interleaves threads as it pleases, so re-run a
failing seed several times).  Skipped where the interpreter has no
``sys.monitoring`` (CPython 3.11): there a loop that never awaits would
starve the run, by design.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from _invariants import BarrierLog, check_accounted, check_p_statuses, check_quiescent
from conftest import wait_until

import ragged
from ragged._core import _preempt

pytestmark = pytest.mark.skipif(not _preempt.AVAILABLE, reason="async preemption needs sys.monitoring (CPython 3.12+)")


def _seeds() -> list[int]:
    """Seeds 1..4, or ``RAGGED_PREEMPT_SEEDS=a-b`` for a longer hunt."""
    spec = os.environ.get("RAGGED_PREEMPT_SEEDS", "").strip()
    if not spec:
        return [1, 2, 3, 4]
    lo, _, hi = spec.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


SECONDS = 1.5  # per seed: how long the coordinators keep going


async def tight(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


def _helper(n: int) -> int:
    total = 0
    i = 0
    while i < n:
        total += i
        i += 1
    return total


async def tight_helper(n: int) -> int:
    return _helper(n)


def _gen(n: int) -> Iterator[int]:
    i = 0
    while i < n:  # a loop in Python (``yield from range(n)`` would be one in C)
        yield i
        i += 1


async def tight_generator(n: int) -> int:
    return sum(_gen(n))


async def spinner(until: float) -> int:
    """A loop that never awaits for as long as the coordinators run: every barrier must reach it."""
    n = 0
    while time.monotonic() < until:
        n += 1
    return n


async def pipeline(n: int) -> int:
    ch: ragged.Chan[int] = ragged.Chan(2)

    async def producer() -> None:
        for i in range(n):
            await ch.send(i)
        ch.close()

    g = ragged.go(producer)
    total = 0
    async for v in ch:
        total += v
    await g
    return total


async def contender(mu: ragged.Mutex, box: list[int], n: int) -> int:
    for _ in range(n):
        async with mu:
            v = box[0]
            for _ in range(50):  # a critical section long enough to be preempted in
                pass
            box[0] = v + 1
    return n


async def sleeper(n: int) -> int:
    for _ in range(n):
        await ragged.sleep(0.001)
    return n


def _workload(rt: ragged.Runtime, r: random.Random) -> tuple[list[ragged.Goroutine], list[Any], list[int]]:
    """Start the mix; return the goroutines, their expected results, and the mutex box."""
    gs: list[ragged.Goroutine] = []
    want: list[Any] = []
    kinds = (tight, tight_helper, tight_generator)
    for _ in range(r.randint(2, 4)):
        n = r.randrange(300_000, 1_500_000)
        gs.append(rt.go(r.choice(kinds), n, name="tight"))
        want.append(sum(range(n)))
    for _ in range(2):
        n = r.randrange(200, 800)
        gs.append(rt.go(pipeline, n, name="pipeline"))
        want.append(sum(range(n)))
    mu = ragged.Mutex()
    box = [0]
    for _ in range(3):
        n = r.randrange(50, 200)
        gs.append(rt.go(contender, mu, box, n, name="contender"))
        want.append(n)
    n = r.randrange(20, 60)
    gs.append(rt.go(sleeper, n, name="sleeper"))
    want.append(n)
    return gs, want, box


def _coordinate(rt: ragged.Runtime, r: random.Random, seed: int, until: float, errors: list[str]) -> None:
    """From a plain thread: barriers (exactly once per P) and stop-the-worlds (nothing moves) at random."""
    sched = rt._sched
    while time.monotonic() < until:
        x = r.random()
        if x < 0.5:
            log = BarrierLog()
            rt.for_each_p(log, timeout=30)
            log.check(rt.procs, seed)
        elif x < 0.9:
            with rt.stop_the_world("chaos"):
                ticks = [p.schedtick for p in sched.allp]
                running = [p.id for p in sched.allp[: sched.procs] if p.status_name != "gcstop"]
                if running:
                    errors.append(f"P(s) {running} not stopped inside a stop-the-world [seed={seed}]")
                time.sleep(r.random() * 0.002)
                if [p.schedtick for p in sched.allp] != ticks:
                    errors.append(f"a goroutine started while the world was stopped [seed={seed}]")
        else:
            rt.set_procs(r.randint(2, 4))
        time.sleep(r.random() * 0.003)


async def _goroutine_coordinator(seed: int, until: float) -> int:
    """The same from a goroutine: barriers that must each run fn once per P."""
    n = 0
    while time.monotonic() < until:
        log = BarrierLog()
        await ragged.for_each_p(log)
        log.check(len(log.seen), seed, "goroutine barrier")  # procs may change between barriers
        n += 1
        await ragged.sleep(0.002)
    return n


@pytest.mark.timeout(120)
@pytest.mark.parametrize("seed", _seeds(), ids=lambda s: f"seed={s}")
def test_tight_loops_with_channels_locks_barriers_and_stop_the_world(seed: int) -> None:
    r = random.Random(seed)
    errors: list[str] = []
    with ragged.Runtime(procs=r.randint(2, 4), chaos=seed, debug=True, straggler_timeout=10) as rt:
        gs, want, box = _workload(rt, r)
        until = time.monotonic() + SECONDS
        spin = rt.go(spinner, until, name="spinner")
        gc = rt.go(_goroutine_coordinator, seed, until, name="coordinator")
        t = threading.Thread(target=_coordinate, args=(rt, random.Random(seed + 1000), seed, until, errors))
        t.start()
        t.join(60)
        assert not t.is_alive(), f"the coordinator thread hung [seed={seed}]"
        assert not errors, errors
        got = [g.result(timeout=60) for g in gs]
        assert got == want, f"results differ [seed={seed}]"
        assert box[0] == sum(want[-4:-1]), f"the mutex lost an increment [seed={seed}]"
        assert gc.result(timeout=30) > 0
        assert spin.result(timeout=30) > 0
        check_accounted(gs, rt, seed)
        check_quiescent(rt, seed)
        check_p_statuses(rt, seed)
        assert rt.metrics()["async_preemptions"] > 0, f"no goroutine was preempted asynchronously [seed={seed}]"
        wait_until(lambda: not _preempt.armed(), what=f"the events to go off [seed={seed}]")
