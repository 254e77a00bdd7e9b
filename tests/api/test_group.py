"""ragged.Group: errgroup + TaskGroup semantics, limits, nesting, misuse, and a group under barriers."""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from _barrier_helpers import assert_once

import ragged
from ragged import AtomicInt, Cancelled, Chan, Group, RaggedError

PROMPTLY = 5.0  # seconds: "within milliseconds", asserted with room for a loaded 2-core machine


class Boom(Exception):
    pass


async def fail_after(seconds: float, what: str = "boom") -> None:
    await ragged.sleep(seconds)
    raise Boom(what)


async def sleeper() -> None:
    await ragged.sleep(600)


async def spinner(stop: AtomicInt) -> int:
    """Compute with checkpoints (never parks) until cancelled or told to stop."""
    n = 0
    while not stop.load():
        n += 1
        await ragged.checkpoint()
    return n


async def parked_on(ch: Chan[Any]) -> Any:
    return await ch.recv()


# ---------------------------------------------------------------- success


@pytest.mark.timeout(60)
def test_all_success_group_returns_every_members_result() -> None:
    async def square(i: int) -> int:
        await ragged.sleep(0.001 * (i % 3))
        return i * i

    async def main() -> tuple[list[int], list[int], BaseException | None]:
        async with Group() as g:
            hs = [g.go(square, i) for i in range(50)]
        after_block = [await h for h in hs]
        g2 = Group()
        hs2 = [g2.go(square, i) for i in range(10)]
        await g2.wait()
        return after_block, [await h for h in hs2], g.ctx.err()

    got, got2, ctx_err = ragged.run(main, procs=4)
    assert got == [i * i for i in range(50)]
    assert got2 == [i * i for i in range(10)]
    assert isinstance(ctx_err, Cancelled)  # as errgroup: the context ends once the group is done


@pytest.mark.timeout(60)
def test_members_run_on_different_ps() -> None:
    """Members that keep yielding until all have run are spread over the Ps by the scheduler."""
    n = 4

    async def member(arrived: AtomicInt, pids: set[int]) -> None:
        arrived.add(1)
        deadline = time.monotonic() + 20
        while arrived.load() < n or len(pids) < 2:
            pids.add(ragged.current_p().id)
            assert time.monotonic() < deadline, f"members saw only P{pids}"
            time.sleep(0.0002)  # hold the P a moment, so idle Ps steal the others
            await ragged.gosched()

    async def main() -> set[int]:
        pids: set[int] = set()
        arrived = AtomicInt()
        async with Group() as g:
            for _ in range(n):
                g.go(member, arrived, pids)
        return pids

    assert len(ragged.run(main, procs=4)) >= 2


# ---------------------------------------------------------------- failure


@pytest.mark.timeout(60)
@pytest.mark.parametrize("rep", range(3))
def test_a_failing_member_cancels_the_others_promptly_and_reaches_the_exit(rep: int) -> None:
    async def main() -> dict[str, Any]:
        stop = AtomicInt()
        ch: Chan[int] = Chan()
        t_fail = 0.0
        try:
            async with Group() as g:
                parked = [g.go(parked_on, ch) for _ in range(3)]
                sleeping = [g.go(sleeper) for _ in range(3)]
                spinning = [g.go(spinner, stop) for _ in range(2)]
                watcher = ragged.go(g.ctx.wait)  # not a member: the group does not cancel it
                t_fail = time.monotonic()
                g.go(fail_after, 0.01)
        except* Boom as eg:
            caught = eg
        took = time.monotonic() - t_fail - 0.01
        others = parked + sleeping + spinning
        outcomes = []
        for h in others:
            try:
                await h
                outcomes.append("returned")
            except Cancelled:
                outcomes.append("cancelled")
        return {
            "caught": caught,
            "took": took,
            "outcomes": outcomes,
            "watcher": await watcher,
            "ctx_err": g.ctx.err(),
        }

    r = ragged.run(main, procs=4)
    assert [str(e) for e in r["caught"].exceptions] == ["boom"]
    assert "a member of ragged.Group" in r["caught"].exceptions[0].__notes__[0]
    assert r["took"] < PROMPTLY, f"the block took {r['took']:.3f}s to exit after the failure"
    assert r["outcomes"] == ["cancelled"] * 8
    assert isinstance(r["watcher"], Cancelled)  # ctx.wait() returned the group context's error
    assert isinstance(r["ctx_err"], Cancelled)


@pytest.mark.timeout(60)
def test_the_body_is_cancelled_too_and_nothing_is_left_pending_after_the_block() -> None:
    async def main() -> tuple[list[str], str]:
        seen = []
        ch: Chan[int] = Chan()
        try:
            async with Group() as g:
                g.go(fail_after, 0.01)
                await ch.recv()  # only the group's cancel can end this
        except* Boom:
            seen.append("boom")
        # The body spins without awaiting while the member fails: the cancel
        # the group requested for it is taken at the block's exit.
        try:
            async with Group() as g:
                g.go(fail_after, 0.0)
                deadline = time.monotonic() + 20
                while g.ctx.err() is None and time.monotonic() < deadline:
                    time.sleep(0.001)
        except* Boom:
            seen.append("boom")
        await ragged.sleep(0.01)  # no stray Cancelled after the blocks
        await ragged.gosched()
        return seen, "ok"

    assert ragged.run(main, procs=2) == (["boom", "boom"], "ok")


@pytest.mark.timeout(60)
def test_several_failures_and_the_bodys_own_error_are_all_reported() -> None:
    async def main() -> list[str]:
        try:
            async with Group() as g:
                for i in range(3):
                    g.go(fail_after, 0, f"m{i}")
                await ragged.sleep(0.05)  # cancelled by the group
        except* Boom as eg:
            first = sorted(str(e) for e in eg.exceptions)
        try:
            async with Group() as g:
                g.go(sleeper)
                raise KeyError("body")
        except* KeyError as eg:
            body = [repr(e) for e in eg.exceptions]
        return first + body

    got = ragged.run(main, procs=2)
    assert got[0] in ("m0", "m1", "m2")  # at least the first failure; the others were probably cancelled first
    assert got[-1] == "KeyError('body')"


@pytest.mark.timeout(60)
def test_a_member_cancelled_by_someone_else_is_a_failure() -> None:
    async def main() -> list[type]:
        try:
            async with Group() as g:
                h = g.go(sleeper)
                other = g.go(sleeper)
                await ragged.sleep(0.01)
                h.cancel()
                await ragged.sleep(10)
        except* Cancelled as eg:
            kinds = [type(e) for e in eg.exceptions]
        with pytest.raises(Cancelled):
            await other  # cancelled by the group, not reported
        return kinds

    assert ragged.run(main, procs=2) == [Cancelled]


@pytest.mark.timeout(60)
def test_cancelling_the_owner_cancels_the_members_and_reraises_cancelled() -> None:
    async def owner(started: Chan[list[Any]]) -> None:
        async with Group() as g:
            hs = [g.go(sleeper) for _ in range(3)]
            await started.send(hs)
            await ragged.sleep(600)

    async def main() -> tuple[bool, list[bool]]:
        started: Chan[list[Any]] = Chan(1)
        o = ragged.go(owner, started)
        hs = await started.recv()
        o.cancel()
        try:
            await o
            raised = False
        except Cancelled:
            raised = True
        return raised, [h.done() for h in hs]

    raised, done = ragged.run(main, procs=2)
    assert raised
    assert done == [True, True, True]


# ---------------------------------------------------------------- limit


@pytest.mark.timeout(60)
@pytest.mark.parametrize("rep", range(3))
def test_limit_2_never_runs_more_than_2_members_at_once(rep: int) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    delays = [rng.random() * 0.004 for _ in range(30)]

    async def member(i: int, running: AtomicInt, peak: AtomicInt) -> int:
        n = running.add(1)
        while True:
            p = peak.load()
            if n <= p or peak.compare_and_swap(p, n):
                break
        await ragged.sleep(delays[i])
        for _ in range(3):
            await ragged.gosched()
        running.add(-1)
        return i

    async def main() -> tuple[int, list[int], list[bool]]:
        running, peak = AtomicInt(), AtomicInt()
        async with Group(limit=2) as g:
            hs = [g.go(member, i, running, peak) for i in range(len(delays))]
            tries = [g.try_go(member, 0, running, peak) is not None for _ in range(3)]
            more = [await g.go_when_free(member, i, running, peak) for i in range(3)]
        return peak.load(), [await h for h in hs + more], tries

    peak, got, tries = ragged.run(main, procs=4)
    assert peak == 2, f"seed {seed}: peak {peak}"
    assert got == list(range(len(delays))) + [0, 1, 2]
    assert tries == [False, False, False]  # 30 members wait for the 2 slots: no slot is free


@pytest.mark.timeout(60)
def test_a_failure_cancels_members_still_waiting_for_a_slot() -> None:
    async def main() -> tuple[list[str], int]:
        ran = AtomicInt()

        async def member() -> None:
            ran.add(1)
            await ragged.sleep(600)

        try:
            async with Group(limit=1) as g:
                g.go(fail_after, 0.01)
                waiting = [g.go(member) for _ in range(5)]
        except* Boom:
            pass
        outcomes = []
        for h in waiting:
            try:
                await h
            except Cancelled:
                outcomes.append("cancelled")
        return outcomes, ran.load()

    outcomes, ran = ragged.run(main, procs=2)
    assert outcomes == ["cancelled"] * 5
    assert ran == 0  # none of them ever got the slot


# ---------------------------------------------------------------- nesting


@pytest.mark.timeout(60)
def test_nested_groups_fail_and_cancel_structurally() -> None:
    async def inner(fail: bool) -> str:
        async with Group() as g:
            g.go(sleeper)
            g.go(sleeper)
            if fail:
                g.go(fail_after, 0.01, "inner")
        return "inner done"  # never reached: either it fails or the outer group cancels it

    async def main() -> tuple[list[str], int]:
        try:
            async with Group() as outer:
                outer.go(inner, True)
                for _ in range(3):
                    outer.go(inner, False)
        except* Boom as eg:
            # The failing member's own ExceptionGroup is the outer group's one error.
            (nested,) = eg.exceptions
            leaves = [str(e) for e in nested.exceptions]  # type: ignore[attr-defined]
        await ragged.sleep(0.01)
        return leaves, ragged.metrics()["goroutines"]

    leaves, goroutines = ragged.run(main, procs=4)
    assert leaves == ["inner"]
    assert goroutines == 1  # only main: every member of every group has finished


@pytest.mark.timeout(60)
def test_an_outer_failure_reaches_an_owner_inside_an_inner_block() -> None:
    async def main() -> str:
        got = "not raised"
        try:
            async with Group() as outer:
                outer.go(fail_after, 0.01, "outer")
                async with Group() as inner:
                    inner.go(sleeper)
                    await ragged.sleep(600)  # the outer group's cancel arrives here
        except* Boom as eg:
            got = ",".join(str(e) for e in eg.exceptions)
        return got

    assert ragged.run(main, procs=2) == "outer"


# ---------------------------------------------------------------- misuse


@pytest.mark.timeout(60)
def test_misuse_raises_clear_errors() -> None:
    async def noop() -> None:
        return None

    async def main() -> list[str]:
        out = []
        async with Group() as g:
            g.go(noop)
            with pytest.raises(RaggedError, match="leaving the block waits"):
                await g.wait()
            with pytest.raises(TypeError, match="async function"):
                g.go(time.sleep, 1)  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="labels"):
                g.go(noop, labels=["x"])  # type: ignore[arg-type]
            with pytest.raises(RaggedError, match="already entered"):
                async with g:
                    pass
        with pytest.raises(RaggedError, match="is done"):
            g.go(noop)
        with pytest.raises(RaggedError, match="is done"):
            async with g:
                pass

        g2 = Group()

        async def self_waiter() -> None:
            await g2.wait()

        h = g2.go(self_waiter)
        try:
            await g2.wait()
        except* RaggedError as eg:
            out.append(str(eg.exceptions[0]))
        assert h.done()
        return out

    assert "would wait for itself" in ragged.run(main, procs=2)[0]
    with pytest.raises(ValueError, match="int >= 1"):
        Group(limit=0)
    with pytest.raises(TypeError, match="int >= 1"):
        Group(limit=2.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Context"):
        Group(ctx=object())  # type: ignore[arg-type]
    with pytest.raises(ragged.NotInGoroutine, match="plain thread"):
        Group().go(sleeper)


@pytest.mark.timeout(60)
def test_go_from_a_plain_thread_joins_a_group_in_use() -> None:
    async def add_one(box: list[int]) -> None:
        box.append(1)

    async def main() -> list[int]:
        box: list[int] = []
        async with Group() as g:
            t = threading.Thread(target=lambda: g.go(add_one, box))
            await ragged.syscall(lambda: (t.start(), t.join()))
        return box

    assert ragged.run(main, procs=2) == [1]


# ---------------------------------------------------------------- dumps and traces


@pytest.mark.timeout(60)
def test_member_names_and_labels_show_in_dumps_and_traces(tmp_path: Path) -> None:
    async def main() -> str:
        ch: Chan[int] = Chan()
        async with Group(name="fetchers", limit=1) as g:
            g.go(parked_on, ch, name="fetch-0", labels={"url": "a"})
            g.go(parked_on, ch, name="fetch-1", labels={"url": "b"})
            await ragged.sleep(0.02)
            dump = ragged.dump()
            await ch.send(1)
            await ch.send(2)
        return dump

    path = tmp_path / "t.json"
    with ragged.trace(path):
        dump = ragged.run(main, procs=2)
    assert "'fetch-0' labels={'group': 'fetchers', 'url': 'a'}" in dump
    assert "'fetch-1' labels={'group': 'fetchers', 'url': 'b'}" in dump
    assert "ragged.Group slot" in dump  # fetch-1 waits for the one slot
    doc = json.loads(path.read_text())
    slices = [e for e in doc["traceEvents"] if e.get("cat") == "goroutine"]
    names = {e["args"]["name"]: e["args"]["labels"] for e in slices}
    assert names["fetch-0"] == {"group": "fetchers", "url": "a"}
    assert names["fetch-1"] == {"group": "fetchers", "url": "b"}


# ---------------------------------------------------------------- races, barriers


@pytest.mark.timeout(120)
def test_groups_under_a_barrier_heavy_program_keep_exactly_once() -> None:
    """Groups start, fail and cancel members across 4 Ps while barriers run back to back."""
    procs = 4

    async def barriers(stop: AtomicInt) -> int:
        n = 0
        while not stop.load():
            ids: list[int] = []
            lock = threading.Lock()

            def fn(p: Any, ids: list[int] = ids, lock: threading.Lock = lock) -> None:
                with lock:
                    ids.append(p.id)

            await ragged.for_each_p(fn)
            assert_once(ids, procs, f"barrier {n}")
            n += 1
            await ragged.gosched()
        return n

    async def pinger(ch: Chan[int], n: int) -> int:
        for i in range(n):
            await ch.send(i)
        return n

    async def ponger(ch: Chan[int], n: int) -> int:
        total = 0
        for _ in range(n):
            total += await ch.recv()
        return total

    async def main(seed: int) -> tuple[int, int]:
        rng = random.Random(seed)
        stop, stop_spin = AtomicInt(), AtomicInt()
        b = ragged.go(barriers, stop, name="barriers")
        failed = 0
        for round_ in range(20):
            limit = rng.choice([None, 2, 3])
            try:
                async with Group(limit=limit) as g:
                    for _ in range(3):
                        if limit is None:  # a pair needs both ends running: not under a limit
                            ch: Chan[int] = Chan(rng.choice([0, 1]))
                            g.go(pinger, ch, 50)
                            g.go(ponger, ch, 50)
                        else:
                            g.go(ragged.sleep, rng.random() * 0.002)
                    g.go(spinner, stop_spin)
                    if round_ % 2:
                        g.go(fail_after, rng.random() * 0.005)
                    else:
                        g.go(ragged.sleep, 0.002)
                    await ragged.sleep(0.003)
                    if not round_ % 2:
                        stop_spin.store(1)  # a healthy round: the spinner stops by itself
            except* Boom:
                failed += 1
            stop_spin.store(0)
        stop.store(1)
        return failed, await b

    seed = random.randrange(2**32)
    failed, nbarriers = ragged.run(main, seed, procs=procs)
    assert failed == 10, f"seed {seed}"
    assert nbarriers > 0, f"seed {seed}"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("rep", range(4))
def test_racing_failures_spawns_and_cancels_leave_nothing_behind(rep: int) -> None:
    """Members spawn siblings while others fail: every member ends, every failure is a Boom."""
    seed = random.randrange(2**32)

    async def member(g: Group, rng: random.Random, depth: int) -> None:
        for _ in range(rng.randrange(3)):
            if depth < 3:
                g.go(member, g, random.Random(rng.random()), depth + 1)
            await ragged.gosched()
        if rng.random() < 0.1:
            raise Boom("member")

    async def main() -> tuple[list[str], int]:
        rng = random.Random(seed)
        kinds: list[str] = []
        for _ in range(10):
            try:
                async with Group(limit=rng.choice([None, 3])) as g:
                    for _ in range(10):
                        g.go(member, g, random.Random(rng.random()), 0)
            except* Boom as eg:
                kinds += [type(e).__name__ for e in eg.exceptions]
        await ragged.sleep(0.01)
        return kinds, ragged.metrics()["goroutines"]

    kinds, goroutines = ragged.run(main, procs=4)
    assert set(kinds) <= {"Boom"}, f"seed {seed}: {kinds}"
    assert goroutines == 1, f"seed {seed}"


@pytest.mark.timeout(60)
def test_closing_the_runtime_during_a_group_ends_everything(caplog: pytest.LogCaptureFixture) -> None:
    """close() cancels the owner and the members (the owner may be waiting at the block's exit): no hang, no leak."""

    async def owner(started: AtomicInt, in_exit: bool) -> None:
        async with Group() as g:
            for _ in range(4):
                g.go(sleeper)
            g.go(spinner, AtomicInt())
            started.add(1)
            if not in_exit:
                await ragged.sleep(600)

    for in_exit in (False, True):
        started = AtomicInt()
        with ragged.Runtime(procs=2) as rt:
            o = rt.go(owner, started, in_exit)
            deadline = time.monotonic() + 20
            while not started.load() and time.monotonic() < deadline:
                time.sleep(0.001)
            time.sleep(0.01)
        assert o.done()
        assert rt.metrics()["goroutines"] == 0
    assert "did not close cleanly" not in caplog.text and "still" not in caplog.text


@pytest.mark.timeout(60)
def test_a_keyboard_interrupt_in_the_body_waits_for_the_cancelled_members_and_goes_on() -> None:
    async def main() -> tuple[str, list[bool]]:
        hs: list[Any] = []
        try:
            async with Group() as g:
                hs = [g.go(sleeper) for _ in range(3)]
                await ragged.sleep(0.01)
                raise KeyboardInterrupt
        except KeyboardInterrupt:
            return "KeyboardInterrupt", [h.done() for h in hs]
        return "not raised", []

    assert ragged.run(main, procs=2) == ("KeyboardInterrupt", [True, True, True])
