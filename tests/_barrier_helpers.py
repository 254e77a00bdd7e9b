"""Helpers shared by the barrier tests (``test_barrier*.py``) and the stop-the-world tests.

Workloads that put Ps into each state a barrier must handle (busy goroutines
passing safe points, goroutines blocked in a syscall, a straggler that never
reaches a safe point), a callback that records every call (``Calls``), one
barrier from either kind of caller (``barrier_from``, ``checked_barrier``) and
the exactly-once check.  Scheduler-state checks are in ``_invariants``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import spin, wait_until

import ragged

GUARD = 20.0  # seconds: helper goroutines stop by themselves after this
JOIN = 30.0  # seconds: the longest any join in these tests may wait
SYSCALL_CAP = GUARD  # a blocked syscall returns by itself after this long at most: a hang guard
CALLERS = ["thread", "goroutine"]


def noop() -> None:
    """A blocking call that returns at once (for ``ragged.syscall``)."""
    return None


def nothing(p: Any) -> None:
    """A barrier callback that does nothing."""


def once_each(procs: int) -> dict[int, int]:
    """The fn-call count per P id of a correct barrier over ``procs`` Ps."""
    return dict.fromkeys(range(procs), 1)


def assert_once(ids: list[int], procs: int, what: str = "barrier") -> None:
    """fn ran exactly once on each of P0..P{procs-1} (``ids``: the P id of every call)."""
    got = dict(Counter(ids))
    assert got == once_each(procs), f"{what}: fn calls per P id {got}; expected each of P0..P{procs - 1} exactly once"


def current_gid() -> int | None:
    """The goroutine running on this thread, or None (plain thread, or an M between goroutines)."""
    try:
        return ragged.current_goroutine().id
    except ragged.RaggedError:
        return None


@dataclass
class Call:
    pid: int
    thread: int
    thread_name: str
    gid: int | None
    p: Any


class Calls:
    """A barrier callback that records every call: which P, on which thread, inside which goroutine."""

    def __init__(self, extra: Callable[[Any], Any] | None = None) -> None:
        self.records: list[Call] = []
        self.extra = extra

    def __call__(self, p: Any) -> None:
        t = threading.current_thread()
        self.records.append(Call(p.id, t.ident, t.name, current_gid(), p))
        if self.extra is not None:
            self.extra(p)

    @property
    def ids(self) -> list[int]:
        return [c.pid for c in self.records]

    def by_pid(self) -> dict[int, Call]:
        return {c.pid: c for c in self.records}


async def busy(i: int, counts: list[int], stop: threading.Event) -> int:
    """Compute forever (bounded by GUARD), passing a safe point on every iteration."""
    deadline = time.monotonic() + GUARD
    while not stop.is_set() and time.monotonic() < deadline:
        counts[i] += 1
        spin(50)
        await ragged.checkpoint()
    return counts[i]


@contextmanager
def busy_goroutines(rt: ragged.Runtime, n: int) -> Iterator[list[int]]:
    """Keep ``n`` goroutines computing (and passing checkpoints) for the block; yield their counters."""
    counts = [0] * n
    stop = threading.Event()
    gs = [rt.go(busy, i, counts, stop, name=f"busy-{i}") for i in range(n)]
    try:
        wait_until(lambda: all(counts), what="every busy goroutine to start")
        yield counts
    finally:
        stop.set()
        for g in gs:
            g.result(timeout=JOIN)


def wait_for_progress(counts: list[int]) -> None:
    """Every busy goroutine runs again (the barrier did not stop anyone for good)."""
    before = list(counts)
    wait_until(lambda: all(c > b for c, b in zip(counts, before, strict=True)), what="busy goroutines to run again")


def _enter_and_block(entered: threading.Event, release: threading.Event) -> None:
    entered.set()
    release.wait(SYSCALL_CAP)


@contextmanager
def blocked_in_syscall(rt: ragged.Runtime, n: int) -> Iterator[SimpleNamespace]:
    """Put ``n`` goroutines into ``ragged.syscall``, blocked until the block exits; yield their Ps
    and 'returned' flags.

    The calls return only when the block exits (or after ``SYSCALL_CAP``, a
    hang guard), so "a barrier completed while the syscall was blocked" is an
    ordering fact a test can assert, whatever the machine's load.  ``pids[i]``
    is the P goroutine ``i`` held when it entered the syscall (no await in
    between, so it is the P that went into SYSCALL status).
    """
    entered = [threading.Event() for _ in range(n)]
    returned = [threading.Event() for _ in range(n)]
    release = threading.Event()
    pids: list[int | None] = [None] * n

    async def blocker(i: int) -> None:
        pids[i] = ragged.current_p().id
        await ragged.syscall(_enter_and_block, entered[i], release)
        returned[i].set()

    gs = [rt.go(blocker, i, name=f"syscall-{i}") for i in range(n)]
    try:
        for e in entered:
            assert e.wait(JOIN), "a goroutine never entered its syscall"
        yield SimpleNamespace(
            pids=pids,
            returned=returned,
            any_returned=lambda: any(e.is_set() for e in returned),
        )
    finally:
        release.set()
        for g in gs:
            g.result(timeout=JOIN)


def barrier_from(rt: ragged.Runtime, caller: str, fn: Callable[[Any], Any]) -> SimpleNamespace:
    """Run one barrier from a plain thread (this one) or from a fresh goroutine.

    Returns who called: its thread, and for a goroutine its id and the P it
    held when the await returned (the P whose ``fn`` it ran itself).
    """
    if caller == "thread":
        rt.for_each_p(fn)
        return SimpleNamespace(thread=threading.get_ident(), gid=None, pid=None)

    async def caller_g() -> SimpleNamespace:
        await ragged.for_each_p(fn)
        # The barrier ran at the end of the await (its start is a safe point, where the goroutine
        # may move), and nothing has yielded since: this is the thread and the P it ran on.
        me = threading.get_ident()
        return SimpleNamespace(thread=me, gid=ragged.current_goroutine().id, pid=ragged.current_p().id)

    return rt.go(caller_g, name="barrier-caller").result(timeout=JOIN)


def assert_caller_ran_its_own_p(calls: Calls, who: SimpleNamespace) -> None:
    """A goroutine caller runs fn for its own P itself, on its thread, inside its own await."""
    if who.gid is None:
        return
    mine = calls.by_pid()[who.pid]
    assert mine.thread == who.thread, f"fn for the caller's P{who.pid} ran on another thread ({mine.thread_name})"
    assert mine.gid == who.gid, (
        f"fn for the caller's P{who.pid} ran outside the caller goroutine {who.gid} (in goroutine {mine.gid})"
    )


def ragged_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Every error the runtime logged (logger "ragged", ERROR and above) during the test."""
    return [r.getMessage() for r in caplog.records if r.name == "ragged" and r.levelno >= logging.ERROR]


def checked_barrier(
    rt: ragged.Runtime, caller: str, procs: int, what: str = "barrier", extra: Callable[[Any], Any] | None = None
) -> tuple[Calls, SimpleNamespace]:
    """One barrier from ``caller`` (see ``barrier_from``) with a recording callback.

    Asserts that fn ran exactly once on each of the ``procs`` Ps and that a
    goroutine caller ran fn for its own P itself; returns the calls and the caller.
    """
    calls = Calls(extra)
    who = barrier_from(rt, caller, calls)
    assert_once(calls.ids, procs, what)
    assert_caller_ran_its_own_p(calls, who)
    return calls, who


# ---------------------------------------------------------------- faults


class Boom(Exception):
    """The fault injected by the tests: fn (or a goroutine) raising."""


class HardBoom(BaseException):
    """Not an Exception (like KeyboardInterrupt or SystemExit): the M that runs fn must survive it too."""


def raising_on(
    pids: set[int], calls: list[int], exc: type[BaseException] = Boom, message: str = "fn failed on P{}"
) -> Callable[[Any], None]:
    """A barrier callback that records each P id in ``calls`` and raises ``exc(message.format(id))`` on ``pids``."""

    def fn(p: Any) -> None:
        calls.append(p.id)
        if p.id in pids:
            raise exc(message.format(p.id))

    return fn


def notes(e: BaseException) -> str:
    """The notes added to ``e`` (``add_note``), one per line."""
    return "\n".join(getattr(e, "__notes__", []))


# ---------------------------------------------------------------- stragglers


def make_straggler(rt: ragged.Runtime, name: str = "straggler-g") -> SimpleNamespace:
    """A goroutine that holds its P without any await until released (or ~GUARD), then passes safe points.

    It waits in C (``Event.wait`` blocks in a lock acquire), where nothing reaches it: a loop in Python
    would be reached by an asynchronous preemption on CPython 3.12+.
    """
    st = SimpleNamespace(release=threading.Event(), started=threading.Event(), pid=None, gid=None, after=0)

    async def spin_without_safe_point() -> None:
        st.pid = ragged.current_p().id
        st.gid = ragged.current_goroutine().id
        st.started.set()
        st.release.wait(GUARD)
        # Released: now pass plenty of safe points on whatever P.
        for _ in range(20):
            await ragged.checkpoint()
            st.after += 1
        await ragged.sleep(0.01)
        await ragged.syscall(noop)

    st.g = rt.go(spin_without_safe_point, name=name)
    assert st.started.wait(JOIN)
    return st
