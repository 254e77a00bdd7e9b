"""Per-P storage (``p.local``, ``ragged.PerP``) and the two uses the ragged barrier exists for.

(a) A per-P work cache: goroutines append to their P's buffer without locks; a
    barrier drains every P's buffer into a global result while the producers
    keep running.  Nothing may be lost or duplicated.
(b) The write-barrier switch: a global mode changes, a barrier makes every P
    observe it, and after the barrier returns no goroutine on any P acts on
    the old mode.

Both depend on the barrier's guarantee that ``fn(p)`` runs at a safe point of
``p``: never in the middle of a goroutine's code between two awaits.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any

import pytest
from conftest import spin, wait_until

import ragged

GUARD = 20.0
JOIN = 30.0


def noop() -> None:
    return None


# ---------------------------------------------------------------- the PerP API


@pytest.mark.timeout(30)
def test_perp_get_returns_this_ps_value_and_of_take_reach_any_p() -> None:
    procs = 4
    buf: ragged.PerP[list[int]] = ragged.PerP(list)

    async def worker(i: int) -> list[tuple[int, bool]]:
        out = []
        for _ in range(20):
            p = ragged.current_p()
            b = buf.get()
            out.append((p.id, b is buf.get() and b is buf.of(p) and p.local[buf] is b))
            b.append(p.id)
            await ragged.sleep(0)
        return out

    async def main() -> None:
        gs = [ragged.go(worker, i) for i in range(procs * 2)]
        results = [await g for g in gs]
        assert all(same for r in results for _, same in r)
        taken: dict[int, list[int]] = {}
        await ragged.for_each_p(lambda p: taken.__setitem__(p.id, buf.take(p)))
        # Each P's buffer holds only that P's id: appends went to the P the goroutine was on.
        for pid, items in taken.items():
            assert set(items) <= {pid}, (pid, items)
        assert sum(len(v) for v in taken.values()) == procs * 2 * 20
        # take() removed them: the next view is fresh and empty.
        after: dict[int, list[int]] = {}
        await ragged.for_each_p(lambda p: after.__setitem__(p.id, buf.of(p)))
        assert after == {i: [] for i in range(procs)}
        # take() on a P with nothing stored gives a fresh value, not None.
        fresh: list[Any] = []
        await ragged.for_each_p(lambda p: fresh.append(buf.take(p)))
        await ragged.for_each_p(lambda p: fresh.append(buf.take(p)))
        assert fresh == [[]] * (2 * procs)

    ragged.run(main, procs=procs)


@pytest.mark.timeout(30)
def test_two_perps_do_not_share_storage_and_coexist_with_p_local_keys() -> None:
    a: ragged.PerP[list[str]] = ragged.PerP(list)
    b: ragged.PerP[dict[str, int]] = ragged.PerP(dict)

    async def main() -> None:
        a.get().append("x")
        b.get()["k"] = 1
        ragged.current_p().local["plain"] = "y"
        p = ragged.current_p()
        assert a.get() == ["x"] and b.get() == {"k": 1} and p.local["plain"] == "y"

    ragged.run(main, procs=2)


@pytest.mark.timeout(30)
def test_perp_errors() -> None:
    with pytest.raises(TypeError):
        ragged.PerP(42)  # type: ignore[arg-type]
    buf: ragged.PerP[list[int]] = ragged.PerP(list)
    with pytest.raises(ragged.NotInGoroutine):
        buf.get()

    async def in_syscall() -> type:
        def call() -> type:
            try:
                buf.get()
            except ragged.NotInGoroutine as e:
                return type(e)
            return type(None)

        return await ragged.syscall(call)

    # Inside a syscall the goroutine holds no P: there is no "this P's value".
    assert ragged.run(in_syscall, procs=2) is ragged.NotInGoroutine


# ---------------------------------------------------------------- (a) per-P work cache


async def _producer(pid: int, n: int, buf: ragged.PerP[list[tuple[int, int]]], seed: int) -> int:
    r = random.Random(seed)
    for i in range(n):
        b = buf.get()
        # Work between fetching this P's buffer and appending to it: if fn ever
        # ran for this P in here (not at a safe point), the drain would take the
        # buffer and this item would be lost.
        spin(r.randrange(0, 200))
        b.append((pid, i))
        k = r.random()
        if k < 0.1:
            await ragged.sleep(0)
        elif k < 0.15:
            await ragged.syscall(noop)
        elif k < 0.17:
            await ragged.sleep(1e-4)
        else:
            await ragged.checkpoint()
    return n


@pytest.mark.timeout(60)
@pytest.mark.parametrize("procs", [2, 4])
def test_worked_example_per_p_work_cache_drained_by_barriers(procs: int) -> None:
    seed = random.randrange(1 << 30)
    r = random.Random(seed)
    n_producers, per_producer = 2 * procs, 3000
    buf: ragged.PerP[list[tuple[int, int]]] = ragged.PerP(list)
    out: list[tuple[int, int]] = []
    drains: list[int] = []

    def drain(p: Any) -> None:
        out.extend(buf.take(p))

    async def drainer(stop: threading.Event) -> int:
        n = 0
        while not stop.is_set():
            before = len(out)
            await ragged.for_each_p(drain)
            drains.append(len(out) - before)
            n += 1
            await ragged.sleep(r.choice((0, 1e-4, 5e-4)))
        return n

    with ragged.Runtime(procs=procs) as rt:
        stop = threading.Event()
        producers = [rt.go(_producer, i, per_producer, buf, r.randrange(1 << 30)) for i in range(n_producers)]
        gd = rt.go(drainer, stop)
        # A plain thread drains too, concurrently with the goroutine drainer.
        thread_rounds = 0
        while not all(g.done() for g in producers):
            rt.for_each_p(drain)
            thread_rounds += 1
            time.sleep(r.choice((0, 1e-4)))
        stop.set()
        goroutine_rounds = gd.result(timeout=JOIN)
        assert [g.result(timeout=JOIN) for g in producers] == [per_producer] * n_producers
        rt.for_each_p(drain)  # the remainder
    counts = Counter(out)
    dups = [k for k, c in counts.items() if c > 1]
    expected = {(pid, i) for pid in range(n_producers) for i in range(per_producer)}
    lost = expected - set(counts)
    assert not dups, f"seed={seed}: {len(dups)} items drained twice, e.g. {dups[:5]}"
    assert not lost, f"seed={seed}: {len(lost)} items lost, e.g. {sorted(lost)[:5]}"
    assert len(out) == len(expected)
    # The drains really overlapped with production (not all at the end).
    assert thread_rounds + goroutine_rounds >= 10, f"seed={seed}: only {thread_rounds}+{goroutine_rounds} drains"
    assert sum(1 for d in drains if d > 0) >= 1, f"seed={seed}: no goroutine drain found anything"


# ---------------------------------------------------------------- (b) the write-barrier switch


@pytest.mark.timeout(60)
@pytest.mark.parametrize("caller", ["thread", "goroutine"])
def test_worked_example_write_barrier_switch(caller: str) -> None:
    """Mode k is published before barrier k; fn makes each P observe it (``p.local["mode"]``).
    Mutators act only through their P's view, re-read after every safe point.  After
    barrier k has returned, no mutator on any P may act on a mode older than k."""
    procs = 4
    rounds = 150
    seed = random.randrange(1 << 30)
    MODE = [0]  # noqa: N806 - the global mode flag of the example
    returned = [0]  # the last k whose barrier has returned
    violations: list[str] = []
    shaded: Counter[int] = Counter()  # writes done with the barrier on, per mode
    acts: Counter[int] = Counter()
    ps: dict[int, Any] = {}

    def observe(p: Any) -> None:
        p.local["mode"] = MODE[0]
        ps[p.id] = p

    async def mutator(i: int, stop: threading.Event, mseed: int) -> int:
        r = random.Random(mseed)
        deadline = time.monotonic() + GUARD
        n = 0
        while not stop.is_set() and time.monotonic() < deadline:
            done = returned[0]  # read first: barrier `done` has returned
            mode = ragged.current_p().local.get("mode", 0)  # this P's view, at this safe point
            if mode < done:
                violations.append(f"seed={seed} mutator {i}: acted on mode {mode} after barrier {done} returned")
            # Act on the mode: odd modes are "write barrier on": shade the write.
            acts[mode] += 1
            if mode % 2:
                shaded[mode] += 1
            n += 1
            k = r.random()
            if k < 0.7:
                await ragged.checkpoint()
            elif k < 0.85:
                await ragged.sleep(0)
            elif k < 0.95:
                await ragged.syscall(noop)
            else:
                await ragged.sleep(1e-4)
        return n

    async def switcher() -> None:
        for k in range(1, rounds + 1):
            MODE[0] = k
            await ragged.for_each_p(observe)
            returned[0] = k
            await ragged.sleep(0)

    with ragged.Runtime(procs=procs) as rt:
        r = random.Random(seed)
        stop = threading.Event()
        mutators = [rt.go(mutator, i, stop, r.randrange(1 << 30)) for i in range(procs + 2)]
        try:
            wait_until(lambda: sum(acts.values()) > 0, what="mutators to start")
            if caller == "goroutine":
                rt.go(switcher).result(timeout=JOIN)
            else:
                for k in range(1, rounds + 1):
                    MODE[0] = k
                    rt.for_each_p(observe)
                    returned[0] = k
                    # Every P has observed mode k by the time the barrier returns.
                    views = {pid: p.local["mode"] for pid, p in ps.items()}
                    assert views == dict.fromkeys(range(procs), k), f"seed={seed}: after barrier {k}: {views}"
                    time.sleep(r.choice((0, 1e-4)))
            before = sum(acts.values())
            wait_until(lambda: sum(acts.values()) > before + procs, what="mutators to act after the last switch")
        finally:
            stop.set()
            counts = [g.result(timeout=JOIN) for g in mutators]
    assert violations == [], violations[:10]
    assert all(c > 0 for c in counts)
    # Mutators acted under many modes: the switches happened while they ran.
    assert len(acts) > rounds // 10, f"seed={seed}: mutators saw only modes {sorted(acts)}"
    assert shaded, f"seed={seed}: no write was ever done with the barrier on"
