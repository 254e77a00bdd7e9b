"""A hypothesis state machine over the runtime.

Rules spawn goroutines (computing, parked on a channel, joining another,
sleeping, blocked in a syscall), wake them, cancel them, run barriers and
stop-the-worlds from goroutines and from the test's plain thread, and change
``procs``.  After every step the invariants hold:

* every barrier ran ``fn`` exactly once per P (checked by the barrier rules);
* ``stopwait`` is 0 between barriers, no P still has its ``runSafePointFn``
  flag set, ``safePointFn`` is cleared and the world is not stopped;
* every live P is idle, running, syscall or gcstop, every retired P is dead;
* no goroutine is lost: each one spawned is finished, or runnable, running,
  in a syscall, or parked on something the runtime knows (a known wait reason).

At teardown everything blocked is released and every goroutine must finish
(with its expected result, or ``Cancelled`` if it was cancelled), then the
runtime is closed -- always, also when a step failed.

Each example gets a fresh runtime whose ``procs`` and chaos seed hypothesis
draws in ``start``; they appear in the falsifying example hypothesis prints.
The run is derandomized (a fixed hypothesis seed), so a failure replays
with the same steps; threads still interleave as the OS pleases.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from _invariants import BarrierLog, check_accounted, check_p_statuses, check_quiescent, check_stopped
from conftest import spin
from hypothesis import HealthCheck, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import FlakyFailure
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import ragged
from ragged._core._platform import FREE_THREADED_BUILD, gil_enabled

JOIN_TIMEOUT = 20.0
RULES_RUN: Counter[str] = Counter()  # how often each rule ran, over the whole test
MAX_SPAWNED = 40  # goroutines per example, to keep each one small


@dataclass(eq=False)
class Spawned:
    """A goroutine the machine started and what it must end with."""

    g: ragged.Goroutine
    kind: str
    expected: Any = None
    cancelled: bool = False
    release: Any = None  # how to unblock it at teardown
    extra: dict[str, Any] = field(default_factory=dict)


async def compute(n: int, chunks: int) -> int:
    total = 0
    for _ in range(chunks):
        total += spin(n)
        await ragged.checkpoint()
    return total


async def parker(ch: ragged.Chan[int]) -> int:
    return await ch.recv()


async def joiner(g: ragged.Goroutine) -> str:
    try:
        await g
    except ragged.Cancelled:
        return "joined (cancelled)"
    return "joined"


async def sleeper(seconds: float, value: int) -> int:
    await ragged.sleep(seconds)
    return value


async def syscaller(ev: threading.Event, value: int) -> int:
    await ragged.syscall(ev.wait, JOIN_TIMEOUT)
    return value


class RaggedMachine(RuleBasedStateMachine):
    """The state machine; ``self.spawned`` is the model: every goroutine and its fate."""

    parked = Bundle("parked")
    blocked = Bundle("blocked")
    any_g = Bundle("any_g")

    def __init__(self) -> None:
        super().__init__()
        self.rt: ragged.Runtime | None = None
        self.seed: int | None = None
        self.spawned: list[Spawned] = []
        self.barriers = 0
        self.stws = 0

    # ------------------------------------------------------------ setup / teardown

    @initialize(procs=st.integers(1, 4), chaos=st.one_of(st.none(), st.integers(0, 2**16)))
    def start(self, procs: int, chaos: int | None) -> None:
        """A fresh runtime for this example (``debug=True`` checks every P status transition)."""
        RULES_RUN["start"] += 1
        self.seed = chaos
        self.rt = ragged.Runtime(procs=procs, chaos=chaos, debug=True, straggler_timeout=5.0)

    def teardown(self) -> None:
        """Release every blocked goroutine, check each one finishes as expected, close the runtime."""
        rt = self.rt
        if rt is None:
            return
        try:
            for s in self.spawned:
                if s.release is not None:
                    s.release()
            for s in self.spawned:
                try:
                    got = s.g.result(timeout=JOIN_TIMEOUT)
                except ragged.Cancelled:
                    assert s.cancelled, f"{s.kind} goroutine {s.g.id} was cancelled by nobody{self.tag()}"
                    continue
                except TimeoutError:
                    raise AssertionError(
                        f"{s.kind} goroutine {s.g.id} never finished: lost{self.tag()}\n{rt.dump()}"
                    ) from None
                if s.expected is not None:
                    assert got == s.expected, f"{s.kind} goroutine {s.g.id}: {got!r} != {s.expected!r}{self.tag()}"
            check_quiescent(rt, self.seed)
            check_p_statuses(rt, self.seed)
            assert not rt._errors, f"an M crashed: {rt._errors}{self.tag()}"
        finally:
            rt.close()

    def tag(self) -> str:
        return f" [chaos seed={self.seed}]"

    def room(self) -> bool:
        """Preconditions must depend on the model only (never on timing): count spawns, not live ones."""
        return len(self.spawned) < MAX_SPAWNED

    def track(self, s: Spawned) -> Spawned:
        self.spawned.append(s)
        return s

    # ------------------------------------------------------------ spawning

    @precondition(lambda self: self.room())
    @rule(target=any_g, n=st.integers(1, 3000), chunks=st.integers(1, 6))
    def spawn_compute(self, n: int, chunks: int) -> Spawned:
        RULES_RUN["spawn_compute"] += 1
        return self.track(Spawned(self.rt.go(compute, n, chunks), "compute", spin(n) * chunks))

    @precondition(lambda self: self.room())
    @rule(target=parked, value=st.integers(0, 1000))
    def spawn_parker(self, value: int) -> Spawned:
        RULES_RUN["spawn_parker"] += 1
        ch: ragged.Chan[int] = ragged.Chan(1)
        s = self.track(Spawned(self.rt.go(parker, ch), "parker", value))
        s.extra["ch"] = ch
        s.release = lambda: ch.try_send(value) if not ch._buf else None
        return s

    @precondition(lambda self: self.room())
    @rule(target=any_g, seconds=st.sampled_from([0.0, 0.0005, 0.002, 0.01]), value=st.integers(0, 1000))
    def spawn_sleeper(self, seconds: float, value: int) -> Spawned:
        RULES_RUN["spawn_sleeper"] += 1
        return self.track(Spawned(self.rt.go(sleeper, seconds, value), "sleeper", value))

    @precondition(lambda self: self.room())
    @rule(target=blocked, value=st.integers(0, 1000))
    def spawn_syscaller(self, value: int) -> Spawned:
        RULES_RUN["spawn_syscaller"] += 1
        ev = threading.Event()
        s = self.track(Spawned(self.rt.go(syscaller, ev, value), "syscaller", value, release=ev.set))
        s.extra["ev"] = ev
        return s

    @precondition(lambda self: self.room())
    @rule(target=any_g, target_g=parked)
    def spawn_joiner(self, target_g: Spawned) -> Spawned:
        RULES_RUN["spawn_joiner"] += 1
        s = Spawned(self.rt.go(joiner, target_g.g), "joiner")
        s.extra["joins"] = target_g
        return self.track(s)

    # ------------------------------------------------------------ waking and cancelling

    @rule(s=consumes(parked))
    def wake_parker(self, s: Spawned) -> None:
        RULES_RUN["wake_parker"] += 1
        ch = s.extra["ch"]
        if not ch._buf:
            ch.try_send(s.expected)

    @rule(s=consumes(blocked))
    def release_syscall(self, s: Spawned) -> None:
        RULES_RUN["release_syscall"] += 1
        s.extra["ev"].set()

    @rule(s=st.one_of(any_g, parked, blocked))
    def cancel(self, s: Spawned) -> None:
        RULES_RUN["cancel"] += 1
        if s.g.cancel():
            s.cancelled = True

    # ------------------------------------------------------------ barriers and stop-the-world

    @rule()
    def barrier_from_thread(self) -> None:
        RULES_RUN["barrier_from_thread"] += 1
        log = BarrierLog()
        self.rt.for_each_p(log, timeout=JOIN_TIMEOUT)
        log.check(self.rt.procs, self.seed, "thread-side barrier")
        self.barriers += 1

    @rule()
    def barrier_from_goroutine(self) -> None:
        RULES_RUN["barrier_from_goroutine"] += 1
        log = BarrierLog()

        async def body() -> None:
            await ragged.for_each_p(log)

        self.rt.go(body).result(timeout=JOIN_TIMEOUT)
        log.check(self.rt.procs, self.seed, "goroutine-side barrier")
        self.barriers += 1

    @rule()
    def stw_from_thread(self) -> None:
        RULES_RUN["stw_from_thread"] += 1
        with self.rt.stop_the_world("stateful"):
            check_stopped(self.rt, self.seed)
        self.stws += 1

    @rule()
    def stw_from_goroutine(self) -> None:
        RULES_RUN["stw_from_goroutine"] += 1
        rt = self.rt

        async def body() -> None:
            async with ragged.stop_the_world("stateful goroutine"):
                check_stopped(rt, self.seed)

        rt.go(body).result(timeout=JOIN_TIMEOUT)
        self.stws += 1

    @rule(n=st.integers(1, 4))
    def set_procs(self, n: int) -> None:
        RULES_RUN["set_procs"] += 1
        old = self.rt.set_procs(n)
        assert self.rt.procs == n and old >= 1

    # ------------------------------------------------------------ invariants

    @invariant()
    def quiescent_between_steps(self) -> None:
        if self.rt is not None:
            check_quiescent(self.rt, self.seed)

    @invariant()
    def p_statuses_legal(self) -> None:
        if self.rt is not None:
            check_p_statuses(self.rt, self.seed)

    @invariant()
    def no_goroutine_lost(self) -> None:
        if self.rt is not None:
            check_accounted([s.g for s in self.spawned], self.rt, self.seed)


def _examples() -> int:
    """1000 examples; 1500 where Ps really run in parallel (a free-threaded build with the GIL off),
    where interleavings the GIL build never produces show up; ``RAGGED_STATEFUL_EXAMPLES`` overrides."""
    env = os.environ.get("RAGGED_STATEFUL_EXAMPLES")
    if env:
        return int(env)
    return 1500 if FREE_THREADED_BUILD and not gil_enabled() else 1000


def _seed() -> int | None:
    """``RAGGED_STATEFUL_SEED=n``: a different (still reproducible) run of the machine, for race hunts."""
    env = os.environ.get("RAGGED_STATEFUL_SEED")
    return int(env) if env else None


@pytest.mark.timeout(400)
def test_runtime_state_machine() -> None:
    """Run the machine (about 40 s on a 2-core machine under the GIL, 90 s free-threaded); every
    rule must have run."""
    RULES_RUN.clear()
    seed = _seed()
    run = run_state_machine_as_test if seed is None else hypothesis_seed(seed)(run_state_machine_as_test)
    try:
        run(
            RaggedMachine,
            settings=settings(
                max_examples=_examples(),
                stateful_step_count=50,
                deadline=None,
                derandomize=seed is None,
                database=None,
                print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
    except FlakyFailure as flaky:
        # A race: the example failed once and passed when hypothesis replayed
        # it.  Fail with the error itself, so that its message is what the
        # test summary shows (hypothesis printed the steps above).
        first = flaky.exceptions[0]
        raise AssertionError(f"a race (the example passed on replay): {type(first).__name__}: {first}") from first
    rules = [name for name, v in vars(RaggedMachine).items() if callable(v) and hasattr(v, "hypothesis_stateful_rule")]
    never = [name for name in rules if not RULES_RUN[name]]
    assert not never, f"rules that never ran: {never}; ran: {dict(RULES_RUN)}"
    print(f"stateful: {dict(RULES_RUN)}")
