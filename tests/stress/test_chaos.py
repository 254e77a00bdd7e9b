"""Chaos mode: ``RAGGED_CHAOS=<seed>`` / ``Runtime(chaos=seed)``.

Chaos mode injects seeded GIL releases and tiny sleeps at the scheduler's racy
points (``ragged/_chaos.py``).  These tests check the mode itself -- it is
announced with its seed, it is off by default, it injects at every named point,
a seed replays the same decisions -- and then run the *chaos suite*: one mixed
workload per seed (spawns, syscalls, sleeps, channel traffic, mutexes, barriers
from goroutines and from threads, stop-the-worlds, cancels) on
``Runtime(procs=4, chaos=seed, debug=True)``, asserting exactly-once per
barrier, every result, no lost goroutine and quiescence afterwards.

A failing seed is in the test id (``test_chaos_workload[seed=7]``) and in
every assertion message; replay it with ``pytest -k 'seed=7'`` or with
``RAGGED_CHAOS=7`` in your own program.  Threads interleave as the OS pleases,
so a replay repeats the injection decisions, not the exact schedule: re-run a
failing seed several times.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from _invariants import BarrierLog, check_accounted, check_p_statuses, check_quiescent, check_stopped
from conftest import spin, wait_until

import ragged
from ragged._core import _chaos
from ragged._core._chaos import POINTS, Chaos


def _seeds() -> list[int]:
    """Seeds 1..24 (at least 20 catch the races chaos mode was made for), or ``RAGGED_CHAOS_SEEDS=a-b`` for a hunt."""
    spec = os.environ.get("RAGGED_CHAOS_SEEDS", "").strip()
    if not spec:
        return list(range(1, 25))
    lo, _, hi = spec.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


SEEDS = _seeds()
PROCS = 4
ROUND_SECONDS = 2.0  # per seed: keep starting rounds of the mix for this long


# ---------------------------------------------------------------- the mode itself


@pytest.mark.timeout(30)
def test_chaos_is_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the setting or the variable no Chaos object exists: each hook is one ``is None`` check."""
    monkeypatch.delenv("RAGGED_CHAOS", raising=False)
    with ragged.Runtime(procs=2) as rt:
        assert rt._sched.chaos is None
        assert rt.settings.chaos is None


@pytest.mark.timeout(30)
def test_chaos_seed_is_logged_for_replay(caplog: pytest.LogCaptureFixture) -> None:
    """A chaos runtime announces its seed on the ``ragged`` logger at warning level."""
    with caplog.at_level(logging.WARNING, logger="ragged"):
        with ragged.Runtime(procs=2, chaos=4242) as rt:
            assert rt._sched.chaos is not None and rt._sched.chaos.seed == 4242
    msgs = [r.getMessage() for r in caplog.records if r.name == "ragged" and r.levelno == logging.WARNING]
    assert any("RAGGED_CHAOS=4242" in m for m in msgs), msgs


@pytest.mark.timeout(30)
def test_chaos_from_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """``RAGGED_CHAOS=<seed>`` turns chaos on; an explicit ``chaos=`` setting wins over it."""
    monkeypatch.setenv("RAGGED_CHAOS", "17")
    with ragged.Runtime(procs=2) as rt:
        assert rt._sched.chaos is not None and rt._sched.chaos.seed == 17
    with ragged.Runtime(procs=2, chaos=None) as rt:
        assert rt._sched.chaos is None
    with ragged.Runtime(procs=2, chaos=3) as rt:
        assert rt._sched.chaos.seed == 3


@pytest.mark.timeout(30)
def test_chaos_bad_seed_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    """A malformed variable is a ValueError naming it; a non-int setting is a TypeError."""
    monkeypatch.setenv("RAGGED_CHAOS", "not-a-seed")
    with pytest.raises(ValueError, match="RAGGED_CHAOS"):
        ragged.Runtime(procs=1)
    monkeypatch.delenv("RAGGED_CHAOS")
    for bad in ("7", 1.5, True):
        with pytest.raises(TypeError):
            ragged.Runtime(procs=1, chaos=bad)


def _decisions(seed: int, calls: int, monkeypatch: pytest.MonkeyPatch) -> tuple[list[tuple[str, float]], dict]:
    """Drive one Chaos on a fresh thread; return (what each call did, counts).

    ``time.sleep`` inside ``_chaos`` is replaced by a recorder, so the test sees
    the decisions (yield, or sleep how long) without spending the time.
    """
    record: list[tuple[str, float]] = []
    fake_time = SimpleNamespace(sleep=lambda s: record.append(("sleep", s)))
    monkeypatch.setattr(_chaos, "time", fake_time)
    chaos = Chaos(seed)

    def body() -> None:
        for i in range(calls):
            before = len(record)
            chaos.point(POINTS[i % len(POINTS)])
            if len(record) == before:
                record.append(("none", 0.0))

    t = threading.Thread(target=body)
    t.start()
    t.join()
    return record, dict(chaos.counts)


@pytest.mark.timeout(30)
def test_same_seed_makes_the_same_injection_decisions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Per thread, a seed fixes every decision: whether to inject, yield or sleep, and how long."""
    a, counts_a = _decisions(11, 500, monkeypatch)
    b, counts_b = _decisions(11, 500, monkeypatch)
    c, _ = _decisions(12, 500, monkeypatch)
    assert a == b
    assert counts_a == counts_b
    assert a != c
    kinds = {k for k, _ in a}
    assert kinds == {"none", "sleep"}
    sleeps = [s for k, s in a if k == "sleep"]
    assert any(s == 0 for s in sleeps) and any(s > 0 for s in sleeps), "both GIL yields and tiny sleeps happen"
    assert all(0 <= s <= 50e-6 for s in sleeps)
    injected = sum(counts_a.values())
    assert 0.3 * 500 < injected < 0.7 * 500, f"rate 0.5 expected, got {injected}/500"


@pytest.mark.timeout(30)
def test_each_thread_gets_its_own_seeded_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    """The k-th thread to reach a point draws from stream k of the seed, whatever the others do."""
    record: list[tuple[int, str, float]] = []
    local = threading.local()
    fake_time = SimpleNamespace(sleep=lambda s: record.append((local.k, "sleep", s)))
    monkeypatch.setattr(_chaos, "time", fake_time)

    def run(seed: int, order: list[int], calls: list[int]) -> dict[int, list[tuple[str, float]]]:
        record.clear()
        chaos = Chaos(seed)
        for k in order:  # threads reach chaos one after another: stream k is theirs
            local_calls = calls[k]

            def body(k: int = k, n: int = local_calls) -> None:
                local.k = k
                for _ in range(n):
                    chaos.point("setstatus")

            t = threading.Thread(target=body)
            t.start()
            t.join()
        out: dict[int, list[tuple[str, float]]] = {}
        for k, kind, s in record:
            out.setdefault(k, []).append((kind, s))
        return out

    first = run(5, [0, 1, 2], [100, 200, 50])
    again = run(5, [0, 1, 2], [100, 200, 50])
    assert first == again
    assert first[0] != first[1]


def _point_workload(rt: ragged.Runtime) -> None:
    """Drive every racy point: syscalls (entry, exit, handoff), idling, barriers, stop-the-worlds."""

    async def syscaller() -> None:
        for _ in range(30):
            await ragged.syscall(time.sleep, 0.0005)

    async def idler() -> None:
        for _ in range(30):
            await ragged.sleep(0.0005)

    gs = [rt.go(syscaller) for _ in range(3)] + [rt.go(idler) for _ in range(2)]
    for _ in range(20):
        rt.for_each_p(lambda p: None)
        with rt.stop_the_world("chaos points"):
            pass
    for g in gs:
        g.result(timeout=30)


@pytest.mark.timeout(60)
def test_chaos_injects_at_every_named_point() -> None:
    """Over a small workload, chaos injects at each racy point docs/design.md names."""
    with ragged.Runtime(procs=PROCS, chaos=99) as rt:
        _point_workload(rt)
        counts = dict(rt._sched.chaos.counts)
    missing = [p for p in POINTS if counts.get(p, 0) == 0]
    assert not missing, f"no injection at {missing}; counts={counts} [replay: seed=99]"


# ---------------------------------------------------------------- the chaos suite


class Workload:
    """One seed's mixed workload, with everything it must check afterwards.

    The seed picks the sizes and timings (``random.Random(seed)``) and is the
    chaos seed of the runtime, so a failing id replays both.
    """

    def __init__(self, rt: ragged.Runtime, seed: int) -> None:
        self.rt = rt
        self.seed = seed
        self.rng = random.Random(seed)
        self.procs = rt.procs
        self.barriers = 0  # barriers issued (thread and goroutine side) and completed
        self.stws = 0
        self.lock = threading.Lock()
        self.handles: list[ragged.Goroutine] = []
        self.stop = threading.Event()
        self.errors: list[str] = []

    def tag(self) -> str:
        return f" [replay: seed={self.seed}]"

    def track(self, g: ragged.Goroutine) -> ragged.Goroutine:
        with self.lock:
            self.handles.append(g)
        return g

    def count(self, what: str) -> None:
        with self.lock:
            setattr(self, what, getattr(self, what) + 1)

    # -- goroutine parts ---------------------------------------------------

    async def compute(self, n: int, chunks: int) -> int:
        total = 0
        for _ in range(chunks):
            total += spin(n)
            await ragged.checkpoint()
        return total

    async def syscaller(self, k: int, calls: int) -> int:
        acc = 0
        for i in range(calls):
            if i % 3 == 0:
                await ragged.syscall(time.sleep, 0.0002)
            acc += await ragged.syscall(lambda x: x + 1, i)
        return acc + k

    async def sleeper(self, k: int, seconds: float) -> int:
        await ragged.sleep(seconds)
        return k

    async def pipeline(self, n: int, cap1: int, cap2: int) -> int:
        a: ragged.Chan[int] = ragged.Chan(cap1)
        b: ragged.Chan[int] = ragged.Chan(cap2)

        async def producer() -> None:
            for i in range(n):
                await a.send(i)
            a.close()

        async def stage() -> None:
            async for v in a:
                await b.send(v * 2)
            b.close()

        gp = self.track(ragged.go(producer, name="producer"))
        gs = self.track(ragged.go(stage, name="stage"))
        total = 0
        async for v in b:
            total += v
        await gp
        await gs
        return total

    async def mutex_counter(self, workers: int, rounds: int) -> int:
        mu = ragged.Mutex()
        box = [0]

        async def worker() -> None:
            for _ in range(rounds):
                async with mu:
                    v = box[0]
                    await ragged.gosched()
                    box[0] = v + 1

        gs = [self.track(ragged.go(worker)) for _ in range(workers)]
        for g in gs:
            await g
        return box[0]

    async def goroutine_barriers(self, count: int) -> None:
        rng = random.Random(self.seed * 31 + 3)
        for _ in range(count):
            log = BarrierLog()
            await ragged.for_each_p(log)
            log.check(self.procs, self.seed, "goroutine-side barrier")
            self.count("barriers")
            await ragged.sleep(rng.random() * 0.002)

    async def goroutine_stws(self, count: int) -> None:
        rng = random.Random(self.seed * 31 + 4)
        for _ in range(count):
            async with ragged.stop_the_world("chaos goroutine stw"):
                check_stopped(self.rt, self.seed)
            self.count("stws")
            await ragged.sleep(rng.random() * 0.002)

    async def victims(self, n: int) -> None:
        """Spawn goroutines that would never finish on their own, cancel them, join them."""
        never: ragged.Chan[int] = ragged.Chan()

        async def wait_forever() -> None:
            await never.recv()

        async def sleep_forever() -> None:
            await ragged.sleep(3600)

        async def spin_forever() -> None:
            while True:
                spin(200)
                await ragged.checkpoint()

        async def syscall_then_park() -> None:
            await ragged.syscall(time.sleep, 0.001)
            await never.recv()

        kinds = [wait_forever, sleep_forever, spin_forever, syscall_then_park]
        gs = [self.track(ragged.go(kinds[i % len(kinds)], name=f"victim-{i}")) for i in range(n)]
        await ragged.sleep(0.005)
        for g in gs:
            assert g.cancel(), f"victim {g.name} finished on its own{self.tag()}"
        for g in gs:
            try:
                await g
            except ragged.Cancelled:
                continue
            raise AssertionError(f"victim {g.name} was not cancelled{self.tag()}")

    async def main(self) -> dict[str, Any]:
        """Start every part, join them all, return the results to check."""
        rng = self.rng
        compute_n = [rng.randrange(200, 2000) for _ in range(2 * self.procs)]
        chunks = rng.randrange(5, 20)
        expected: dict[str, Any] = {}
        parts: dict[str, ragged.Goroutine] = {}
        for i, n in enumerate(compute_n):
            parts[f"compute-{i}"] = self.track(ragged.go(self.compute, n, chunks, name=f"compute-{i}"))
            expected[f"compute-{i}"] = spin(n) * chunks
        for k in range(3):
            calls = rng.randrange(5, 15)
            parts[f"syscall-{k}"] = self.track(ragged.go(self.syscaller, k, calls, name=f"syscall-{k}"))
            expected[f"syscall-{k}"] = sum(i + 1 for i in range(calls)) + k
        for k in range(4):
            parts[f"sleep-{k}"] = self.track(ragged.go(self.sleeper, k, rng.random() * 0.01, name=f"sleep-{k}"))
            expected[f"sleep-{k}"] = k
        for k in range(2):
            n = rng.randrange(50, 300)
            caps = (rng.choice([0, 1, 4]), rng.choice([0, 2, 16]))
            parts[f"pipeline-{k}"] = self.track(ragged.go(self.pipeline, n, *caps, name=f"pipeline-{k}"))
            expected[f"pipeline-{k}"] = n * (n - 1)
        parts["mutex"] = self.track(ragged.go(self.mutex_counter, 4, 10, name="mutex"))
        expected["mutex"] = 40
        parts["g-barriers"] = self.track(ragged.go(self.goroutine_barriers, 8, name="g-barriers"))
        expected["g-barriers"] = None
        parts["g-stws"] = self.track(ragged.go(self.goroutine_stws, 4, name="g-stws"))
        expected["g-stws"] = None
        parts["victims"] = self.track(ragged.go(self.victims, 8, name="victims"))
        expected["victims"] = None
        got = {}
        for name, g in parts.items():
            got[name] = await g
        return {"got": got, "expected": expected}

    # -- plain-thread parts ------------------------------------------------

    def thread_barriers(self) -> None:
        rng = random.Random(self.seed * 31 + 1)
        while not self.stop.is_set():
            log = BarrierLog()
            self.rt.for_each_p(log)
            log.check(self.procs, self.seed, "thread-side barrier")
            self.count("barriers")
            time.sleep(rng.random() * 0.002)

    def thread_stws(self) -> None:
        rng = random.Random(self.seed * 31 + 2)
        while not self.stop.is_set():
            with self.rt.stop_the_world("chaos thread stw"):
                check_stopped(self.rt, self.seed)
            self.count("stws")
            time.sleep(rng.random() * 0.004)

    def thread_channel(self) -> None:
        """A plain thread feeding a goroutine over a channel (the blocking forms)."""
        ch: ragged.Chan[int] = ragged.Chan(random.Random(self.seed * 31 + 5).choice([0, 3]))
        n = 100

        async def consume() -> int:
            return sum([v async for v in ch])

        g = self.track(self.rt.go(consume, name="thread-fed"))
        for i in range(n):
            ch.send_blocking(i, timeout=30)
        ch.close()
        got = g.result(timeout=30)
        if got != n * (n - 1) // 2:
            self.errors.append(f"thread-fed consumer got {got}")


def _run_guarded(fn: Callable[[], None], errors: list[BaseException]) -> threading.Thread:
    def body() -> None:
        try:
            fn()
        except BaseException as err:  # noqa: BLE001 - reported by the test
            errors.append(err)

    t = threading.Thread(target=body, daemon=True)
    t.start()
    return t


def _result_or_dump(rt: ragged.Runtime, g: ragged.Goroutine, timeout: float, seed: int) -> Any:
    """``g.result(timeout)``; on a timeout fail with the scheduler state and the goroutine dump."""
    try:
        return g.result(timeout=timeout)
    except TimeoutError:
        raise AssertionError(f"{g.name} did not finish in {timeout}s [replay: seed={seed}]\n{state(rt)}") from None


def state(rt: ragged.Runtime) -> str:
    """The scheduler words a hang report needs, then the goroutine dump."""
    sched = rt._sched
    ps = ", ".join(f"P{p.id}={p.status_name}/flag={p.run_safe_point_fn}" for p in sched.allp)
    head = (
        f"stopwait={sched.stopwait} gcwaiting={sched.gcwaiting} safe_point_fn={sched.safe_point_fn!r} "
        f"pidle={[p.id for p in sched.pidle]} globrunq={len(sched.globrunq)} nmspinning={sched.nmspinning}\n{ps}"
    )
    return head + "\n" + rt.dump()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed={s}" for s in SEEDS])
def test_chaos_workload(seed: int) -> None:
    """The mixed workload under chaos: every barrier exactly once per P, every result right,
    no goroutine lost, and the scheduler quiescent afterwards."""
    with ragged.Runtime(procs=PROCS, chaos=seed, debug=True) as rt:
        w = Workload(rt, seed)
        errors: list[BaseException] = []
        threads = [
            _run_guarded(w.thread_barriers, errors),
            _run_guarded(w.thread_stws, errors),
            _run_guarded(w.thread_channel, errors),
        ]
        outs = []
        t0 = time.monotonic()
        try:
            # Rounds of the whole mix, for at least ROUND_SECONDS, while the threads keep going.
            while len(outs) < 2 or time.monotonic() - t0 < ROUND_SECONDS:
                main = w.track(rt.go(w.main, name=f"main-{len(outs)}"))
                outs.append(_result_or_dump(rt, main, 20, seed))
        finally:
            w.stop.set()
            for t in threads:
                t.join(15)
        assert not any(t.is_alive() for t in threads), f"a coordinator thread hung{w.tag()}"
        assert not errors, f"plain-thread part failed: {errors!r}{w.tag()}"
        assert not w.errors, f"{w.errors}{w.tag()}"
        for r, out in enumerate(outs):
            for name, want in out["expected"].items():
                got = out["got"][name]
                assert got == want, f"round {r}, {name}: got {got!r}, want {want!r}{w.tag()}"

        # No goroutine lost: each one spawned has finished, and the scheduler forgot it.
        check_accounted(w.handles, rt, seed)
        not_done = [g for g in w.handles if not g.done()]
        assert not not_done, f"goroutines never finished: {not_done}{w.tag()}"
        wait_until(lambda: not rt._sched.allgs, 10, f"allgs to empty{w.tag()}")

        check_quiescent(rt, seed)
        check_p_statuses(rt, seed)
        m = rt.metrics()
        assert m["barriers"] == w.barriers, f"metrics count {m['barriers']} barriers, issued {w.barriers}{w.tag()}"
        assert m["stws"] == w.stws, f"metrics count {m['stws']} stop-the-worlds, issued {w.stws}{w.tag()}"
        assert m["barrier_timeouts"] == 0 and m["barrier_fn_errors"] == 0, w.tag()
        assert sum(rt._sched.chaos.counts.values()) > 0, f"chaos never injected{w.tag()}"
        assert not rt._errors, f"an M crashed: {rt._errors}{w.tag()}"
        assert w.barriers >= 16 and w.stws >= 8, w.tag()
