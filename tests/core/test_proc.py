"""The scheduler: spawning and joining many goroutines, running them on several
OS threads, work stealing, gosched, and the global-queue fairness check."""

from __future__ import annotations

import itertools
import random
import threading
import time

import pytest
from conftest import spin, wait_until

import ragged

# ---------------------------------------------------------------- many goroutines


@pytest.mark.timeout(120)
@pytest.mark.parametrize("procs", [1, 2, 4, 8])
def test_spawn_and_join_10000_goroutines(procs: int) -> None:
    n = 10_000

    async def child(i: int) -> int:
        if i % 7 == 0:
            await ragged.gosched()
        return i * i + 1

    async def main() -> tuple[list[int], int]:
        gs = [ragged.go(child, i) for i in range(n)]
        results = [await g for g in gs]
        return results, ragged.metrics()["goroutines_created"]

    results, created = ragged.run(main, procs=procs)
    assert results == [i * i + 1 for i in range(n)]
    assert created == n + 1


@pytest.mark.timeout(120)
@pytest.mark.parametrize("procs", [1, 4])
def test_spawn_10000_from_plain_thread_and_join_with_result(procs: int) -> None:
    n = 10_000

    async def child(i: int) -> int:
        return -i

    with ragged.Runtime(procs=procs) as rt:
        gs = [rt.go(child, i) for i in range(n)]
        assert [g.result(timeout=60) for g in gs] == [-i for i in range(n)]
        # A joiner may wake a moment before the exiting M forgets the goroutine.
        wait_until(lambda: rt.metrics()["goroutines"] == 0, what="finished goroutines to be forgotten")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("seed", [1, 3, 4, 6, 10])
@pytest.mark.parametrize("procs", [1, 3, 8])
def test_random_spawn_trees_compute_exact_results(procs: int, seed: int) -> None:
    """Goroutines spawn random subtrees and await at random points; the tree sum is exact."""

    def make_tree(rng: random.Random, depth: int) -> tuple[int, int, list]:
        # (size, action, children), built up front so the expected value does
        # not depend on scheduling.
        action = rng.randrange(4)
        if depth == 0:
            return 1, action, []
        kids = [make_tree(rng, depth - 1) for _ in range(rng.choice([0, 1, 2, 3, 3]))]
        return 1 + sum(k[0] for k in kids), action, kids

    async def node(shape: tuple[int, int, list]) -> int:
        _, action, kids = shape
        if action == 0:
            await ragged.gosched()
        elif action == 1:
            await ragged.sleep(0)
        elif action == 2:
            await ragged.checkpoint()
        gs = [ragged.go(node, k) for k in kids]
        total = 1
        for g in gs:
            total += await g
        return total

    rng = random.Random(seed)
    shape = make_tree(rng, 8)
    assert shape[0] > 100, f"seed={seed} makes a trivial tree; pick another"
    assert ragged.run(node, shape, procs=procs) == shape[0], f"seed={seed} procs={procs}"


# ---------------------------------------------------------------- OS threads


@pytest.mark.timeout(60)
@pytest.mark.parametrize("procs", [2, 4, 8])
def test_goroutines_run_on_at_least_two_os_threads(procs: int) -> None:
    async def worker() -> tuple[int, str]:
        spin(5000)
        await ragged.gosched()
        spin(5000)
        t = threading.current_thread()
        return t.ident, t.name

    async def main() -> list[tuple[int, str]]:
        gs = [ragged.go(worker) for _ in range(200)]
        return [await g for g in gs]

    results = ragged.run(main, procs=procs)
    idents = {ident for ident, _ in results}
    assert len(idents) >= 2, f"all 200 goroutines ran on one OS thread with procs={procs}"
    assert threading.get_ident() not in idents
    assert all(name.startswith("ragged-M") for _, name in results)


# ---------------------------------------------------------------- work stealing


@pytest.mark.timeout(60)
@pytest.mark.parametrize("procs", [2, 4, 8])
def test_work_stealing_children_first_run_on_other_ps(procs: int) -> None:
    """Children spawned onto one P's local queue start running on other Ps.

    The spawner does not await while spawning, so every child sits on its P's
    local queue; fewer than 256 of them, so none overflows to the global queue.
    Only a thief can take a child from there: a child that first runs on
    another P was stolen.
    """

    async def child(spawner_p: int) -> bool:
        stolen = ragged.current_p().id != spawner_p
        spin(5000)
        return stolen

    async def main() -> list[int]:
        per_round = []
        for _ in range(3):
            home = ragged.current_p().id
            gs = [ragged.go(child, home) for _ in range(200)]
            per_round.append(sum([await g for g in gs]))
        return per_round

    stolen_per_round = ragged.run(main, procs=procs)
    assert sum(stolen_per_round) > 0, f"no child was ever stolen: {stolen_per_round}"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["gosched", "sleep"])
def test_goroutine_resumes_on_a_different_p(how: str) -> None:
    """A goroutine may resume on another P (and OS thread) after an await.

    The movers run for different lengths, so Ps whose goroutines are done run
    out of work and steal from the others -- a gosched'ed goroutine waits on
    its own P's queue otherwise, and with Ps in parallel equally busy Ps may
    never steal.
    """

    async def mover(i: int) -> list[tuple[bool, bool]]:
        moves = []
        for _ in range(2 + i % 9):
            p_before, t_before = ragged.current_p().id, threading.get_ident()
            spin(3000)
            if how == "gosched":
                await ragged.gosched()
            else:
                await ragged.sleep(0.001)
            moves.append((ragged.current_p().id != p_before, threading.get_ident() != t_before))
        return moves

    async def main() -> list[tuple[bool, bool]]:
        gs = [ragged.go(mover, i) for i in range(200)]
        return [move for g in gs for move in await g]

    moves = ragged.run(main, procs=4)
    assert any(p_moved for p_moved, _ in moves), "no goroutine ever resumed on a different P"
    assert any(t_moved for _, t_moved in moves), "no goroutine ever resumed on a different thread"


@pytest.mark.timeout(60)
def test_current_p_is_one_of_the_runtimes_ps() -> None:
    async def where() -> tuple[int, bool]:
        p = ragged.current_p()
        return p.id, isinstance(p, ragged.P) and isinstance(p.local, dict)

    async def main() -> list[tuple[int, bool]]:
        gs = [ragged.go(where) for _ in range(100)]
        return [await g for g in gs]

    results = ragged.run(main, procs=3)
    assert all(ok for _, ok in results)
    assert {pid for pid, _ in results} <= {0, 1, 2}


# ---------------------------------------------------------------- gosched and fairness


@pytest.mark.timeout(30)
def test_gosched_interleaves_two_goroutines_on_one_p() -> None:
    order: list[str] = []

    async def loop(name: str) -> None:
        for _ in range(100):
            order.append(name)
            await ragged.gosched()

    async def main() -> None:
        a, b = ragged.go(loop, "a"), ragged.go(loop, "b")
        await a
        await b

    ragged.run(main, procs=1)
    assert order.count("a") == order.count("b") == 100
    longest_run = max(len(list(run)) for _, run in itertools.groupby(order))
    # A sysmon preemption can at most reorder one pair; without gosched switching
    # goroutines we would see a run of 100.
    assert longest_run <= 3, f"gosched did not let the other goroutine run: longest run {longest_run}"


@pytest.mark.timeout(30)
def test_gosched_lets_goroutines_finish_100_rounds_each() -> None:
    async def rounds(n: int) -> int:
        for _ in range(n):
            await ragged.gosched()
        return n

    async def main() -> list[int]:
        gs = [ragged.go(rounds, 100) for _ in range(20)]
        return [await g for g in gs]

    for procs in (1, 2):
        assert ragged.run(main, procs=procs) == [100] * 20


@pytest.mark.timeout(30)
def test_global_queue_is_checked_every_61st_tick() -> None:
    """A goroutine on the global queue runs even while the local queue never empties.

    On one P, a chain of goroutines each spawning the next onto the local queue
    keeps it non-empty forever; ``target`` sits on the global queue (gosched
    puts it there).  Only Go's "every 61st schedtick, look at the global queue
    first" rule lets it run before the chain ends.
    """
    chain_limit = 5000

    async def link(state: dict, depth: int) -> None:
        if state["target_ran_at"] is not None or depth >= chain_limit:
            state["chain_end"] = depth
            return
        ragged.go(link, state, depth + 1)
        state["depth"] = depth

    async def target(state: dict) -> None:
        await ragged.gosched()
        state["target_ran_at"] = state["depth"]

    async def main() -> dict:
        state: dict = {"depth": 0, "target_ran_at": None, "chain_end": None}
        ragged.go(link, state, 0)
        await ragged.go(target, state)
        while state["chain_end"] is None:
            await ragged.sleep(0.001)
        return state

    for _ in range(3):
        state = ragged.run(main, procs=1)
        assert state["target_ran_at"] is not None
        assert state["target_ran_at"] < 3 * 61, f"global queue starved for {state['target_ran_at']} links"
        assert state["chain_end"] < chain_limit


@pytest.mark.timeout(60)
def test_idle_runtime_parks_its_threads() -> None:
    """After a burst of work, idle Ms park: the runtime's CPU use drops to ~nothing."""
    with ragged.Runtime(procs=4) as rt:

        async def burst(i: int) -> int:
            spin(1000)
            return i

        assert [g.result(timeout=30) for g in [rt.go(burst, i) for i in range(200)]] == list(range(200))
        time.sleep(0.05)  # let spinning Ms give up
        c0, t0 = time.process_time(), time.monotonic()
        time.sleep(0.3)
        cpu, wall = time.process_time() - c0, time.monotonic() - t0
    assert cpu < 0.5 * wall, f"idle runtime used {cpu:.3f}s CPU in {wall:.3f}s"
