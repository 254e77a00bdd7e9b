"""Diagnostics: the goroutine dump, deadlock detection, and RAGGED_DEBUG's P
status-transition checks."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import wait_until

import ragged
from ragged._core import _p
from ragged._core._p import GCSTOP, IDLE, RUNNING, SYSCALL, P

# ---------------------------------------------------------------- dump


@pytest.mark.timeout(30)
def test_dump_from_goroutine_shows_ids_names_statuses_reasons_and_ps() -> None:
    async def sleeper_fn() -> None:
        await ragged.sleep(60)

    async def joiner_fn(g: ragged.Goroutine) -> None:
        await g

    async def main() -> tuple[str, int, int, int]:
        s = ragged.go(sleeper_fn, name="sleeper-g")
        j = ragged.go(joiner_fn, s, name="joiner-g", labels={"role": "join"})
        while s.status != "waiting" or j.status != "waiting":
            await ragged.sleep(0.001)
        text = ragged.dump()
        s.cancel()
        for g in (s, j):
            try:
                await g
            except ragged.Cancelled:
                pass
        return text, s.id, j.id, ragged.current_goroutine().id

    text, sid, jid, mid = ragged.run(main, procs=2)
    assert text.startswith("ragged runtime: procs=2 goroutines=3")
    assert f"goroutine {sid} [waiting, sleep]: 'sleeper-g'" in text
    # Go's reasons name the kind of wait; naming the joined goroutine is optional.
    joiner_line = rf"^goroutine {jid} \[waiting, join goroutine( {sid})?\]: 'joiner-g' labels=\{{'role': 'join'\}}$"
    assert re.search(joiner_line, text, re.MULTILINE), text
    assert f"goroutine {mid} [running]: 'main'" in text
    assert "in sleeper_fn" in text and "in joiner_fn" in text and "in main" in text  # coroutine stacks
    p_lines = re.findall(r"^P(\d): (\w+) runq=\d+ ", text, re.MULTILINE)
    assert sorted(pid for pid, _ in p_lines) == ["0", "1"]
    assert "running" in {status for _, status in p_lines}
    assert re.search(r"^M\d+: busy ", text, re.MULTILINE)


@pytest.mark.timeout(30)
def test_rt_dump_from_plain_thread_shows_runnable_syscall_and_stopped_ps() -> None:
    release = threading.Event()
    in_syscall = threading.Event()

    def blocking() -> None:
        in_syscall.set()
        assert release.wait(10)

    async def in_sys() -> None:
        await ragged.syscall(blocking)

    async def later() -> None:
        pass

    with ragged.Runtime(procs=2) as rt:
        sys_g = rt.go(in_sys, name="blocked-in-syscall")
        assert in_syscall.wait(10)
        with rt.stop_the_world("dump"):
            queued = rt.go(later, name="queued-g")
            text = rt.dump()
        release.set()
        sys_g.result(timeout=10)
        queued.result(timeout=10)
    assert f"goroutine {sys_g.id} [syscall]: 'blocked-in-syscall'" in text
    assert f"goroutine {queued.id} [runnable]: 'queued-g'" in text
    assert re.findall(r"^P\d: (\w+)", text, re.MULTILINE) == ["gcstop", "gcstop"]


@pytest.mark.timeout(30)
def test_dump_outside_goroutine_raises() -> None:
    with pytest.raises(ragged.NotInGoroutine):
        ragged.dump()


# ---------------------------------------------------------------- deadlock


@pytest.mark.timeout(30)
@pytest.mark.parametrize("procs", [1, 4])
def test_deadlock_is_reported_not_hung(procs: int) -> None:
    async def wait_for(g: ragged.Goroutine) -> None:
        await g

    async def main() -> None:
        # main waits for the child, the child waits for main: nothing can ever run.
        await ragged.go(wait_for, ragged.current_goroutine(), name="cyclic-child")

    t0 = time.monotonic()
    with pytest.raises(ragged.Deadlock) as info:
        ragged.run(main, procs=procs)
    assert time.monotonic() - t0 < 20
    msg = str(info.value)
    assert msg.startswith("all goroutines are asleep - deadlock!")
    assert "'main'" in msg and "'cyclic-child'" in msg  # the dump is attached
    assert "join goroutine" in msg


@pytest.mark.timeout(30)
def test_deadlock_reaches_plain_thread_joiner_of_embedded_runtime() -> None:
    async def forever(box: list) -> None:
        while not box:
            await ragged.sleep(0.001)
        await box[0]  # waits for itself

    with ragged.Runtime(procs=2, detect_deadlock=True) as rt:
        box: list = []
        box.append(rt.go(forever, box))
        # No timeout: a plain thread waiting with a timeout could still act, so
        # it rules a deadlock out; pytest's timeout guards against a hang.
        with pytest.raises(ragged.Deadlock, match="all goroutines are asleep - deadlock!"):
            box[0].result()


@pytest.mark.timeout(30)
def test_embedded_runtime_does_not_detect_deadlock_by_default() -> None:
    async def forever(box: list) -> None:
        while not box:
            await ragged.sleep(0.001)
        await box[0]  # waits for itself

    with ragged.Runtime(procs=1) as rt:
        assert rt.settings.detect_deadlock is False
        box: list = []
        box.append(rt.go(forever, box))
        with pytest.raises(TimeoutError):
            box[0].result(timeout=0.2)


@pytest.mark.timeout(30)
def test_sleeping_or_syscall_goroutines_are_not_a_deadlock() -> None:
    async def in_syscall() -> str:
        await ragged.syscall(time.sleep, 0.1)
        return "syscall"

    async def sleeper() -> str:
        await ragged.sleep(0.1)
        return "sleep"

    async def main() -> list[str]:
        a, b = ragged.go(in_syscall), ragged.go(sleeper)
        return [await a, await b]

    assert ragged.run(main, procs=2) == ["syscall", "sleep"]


# ---------------------------------------------------------------- errors nobody received


async def _boom() -> None:
    raise ValueError("boom")


@pytest.mark.timeout(30)
def test_a_goroutine_that_dies_unreceived_is_logged_when_it_dies(caplog: pytest.LogCaptureFixture) -> None:
    """Logged at its death, with its id, name, labels and traceback, while the program runs on."""
    caplog.set_level(logging.ERROR, logger="ragged")
    with ragged.Runtime(procs=2) as rt:
        g = rt.go(_boom, name="worker", labels={"job": "j7"})
        wait_until(g.done)

        def logged() -> list[logging.LogRecord]:
            return [r for r in caplog.records if "died with ValueError('boom')" in r.getMessage()]

        wait_until(logged, what="the death to be logged")  # before close(): not only at exit
        (rec,) = logged()
        msg = rec.getMessage()
        assert f"goroutine {g.id} 'worker'" in msg and "'job': 'j7'" in msg
        assert rec.exc_info is not None and rec.exc_info[1] is g.exception(timeout=1)
    # The exit report only lists it (its traceback is in the log once already).
    assert caplog.text.count("ValueError: boom") == 1


@pytest.mark.timeout(30)
def test_the_deadlock_report_lists_goroutines_that_died_unreceived_first() -> None:
    async def main() -> None:
        ch: ragged.Chan[int] = ragged.Chan()
        ragged.go(_boom, name="worker")
        await ch.recv()  # the worker was to send: it died instead

    with pytest.raises(ragged.Deadlock) as info:
        ragged.run(main, procs=2)
    msg = str(info.value)
    lines = msg.splitlines()
    assert lines[0] == "all goroutines are asleep - deadlock!"
    lost = [i for i, line in enumerate(lines) if "'worker' died with ValueError('boom'), which nobody received" in line]
    dump = [i for i, line in enumerate(lines) if re.match(r"goroutine \d+ \[waiting, chan receive\]: 'main'", line)]
    assert lost and dump and lost[0] < dump[0], msg


_LOST_PROGRAM = """
import ragged

async def worker(ch):
    raise ValueError("boom")

async def main():
    ch = ragged.Chan()
    ragged.go(worker, ch, name="worker")
    await ch.recv()

ragged.run(main, procs=2)
"""


@pytest.mark.timeout(60)
def test_a_lost_exception_program_prints_it_once_before_a_single_deadlock_report() -> None:
    """The program of the issue: before, the deadlock dump twice and "boom" nowhere; now the
    traceback once, when the worker dies, then the deadlock (raised by run) once."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _LOST_PROGRAM], capture_output=True, text=True, timeout=50)
    err = proc.stderr
    assert proc.returncode == 1, err
    assert err.count("ValueError: boom") == 1, err
    assert err.count("all goroutines are asleep - deadlock!") == 1, err
    assert err.index("ValueError: boom") < err.index("all goroutines are asleep"), err
    assert "died with ValueError('boom'), which nobody received" in err


@pytest.mark.timeout(30)
def test_a_deadlock_nobody_waits_for_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """An embedded runtime with detection on and no plain thread waiting: the log is the only place."""
    caplog.set_level(logging.ERROR, logger="ragged")

    async def stuck() -> None:
        await ragged.Chan[int]().recv()

    with ragged.Runtime(procs=1, detect_deadlock=True) as rt:
        rt.go(stuck)
        wait_until(lambda: rt._deadlock is not None, what="the deadlock to be found")
    assert caplog.text.count("all goroutines are asleep - deadlock!") == 1


# ---------------------------------------------------------------- RAGGED_DEBUG


@pytest.mark.timeout(30)
def test_ragged_debug_env_turns_on_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    for value, expected in [("1", True), ("yes", True), ("0", False), ("", False)]:
        monkeypatch.setenv("RAGGED_DEBUG", value)
        with ragged.Runtime(procs=1) as rt:
            assert rt.settings.debug is expected, f"RAGGED_DEBUG={value!r}"
    monkeypatch.delenv("RAGGED_DEBUG")
    with ragged.Runtime(procs=1) as rt:
        assert rt.settings.debug is False
    with ragged.Runtime(procs=1, debug=True) as rt:
        assert rt.settings.debug is True


def _mixed_workload(rt: ragged.Runtime) -> None:
    """Spawns, syscalls, sleeps, barriers, stop-the-worlds and cancels, checked for exact results."""

    def blocking(i: int) -> int:
        time.sleep(0.0005 * (i % 3))
        return i

    async def leaf(i: int) -> int:
        await ragged.gosched()
        return i

    async def worker(i: int) -> int:
        total = 0
        for j in range(4):
            total += await ragged.syscall(blocking, i + j)
            await ragged.sleep(0.0005)
            total += await ragged.go(leaf, j)
            await ragged.checkpoint()
        if i % 10 == 0:
            await ragged.for_each_p(lambda p: None)
        if i % 15 == 0:
            async with ragged.stop_the_world("debug workload"):
                pass
        return total

    async def victim() -> None:
        await ragged.sleep(60)

    gs = [rt.go(worker, i) for i in range(60)]
    victims = [rt.go(victim) for _ in range(5)]
    seen: list[int] = []
    for k in range(5):
        rt.for_each_p(lambda p: seen.append(p.id))
        with rt.stop_the_world("debug workload, thread"):
            pass
        victims[k].cancel()
    results = [g.result(timeout=60) for g in gs]
    assert results == [sum(i + j + j for j in range(4)) for i in range(60)]
    assert sorted(seen) == sorted(list(range(rt.procs)) * 5)
    for v in victims:
        with pytest.raises(ragged.Cancelled):
            v.result(timeout=10)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["env", "kwarg"])
@pytest.mark.parametrize("procs", [1, 4])
def test_debug_mode_mixed_workload_has_no_illegal_transition(
    how: str, procs: int, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    checked: list[tuple[int, int]] = []
    illegal: list[BaseException] = []
    original = P._check

    def recording_check(self: P, old: int, new: int, cas: bool) -> None:
        checked.append((old, new))
        try:
            original(self, old, new, cas)
        except ragged.IllegalTransition as e:
            illegal.append(e)
            raise

    monkeypatch.setattr(P, "_check", recording_check)
    if how == "env":
        monkeypatch.setenv("RAGGED_DEBUG", "1")
        kwargs: dict[str, Any] = {}
    else:
        monkeypatch.delenv("RAGGED_DEBUG", raising=False)
        kwargs = {"debug": True}
    caplog.set_level(logging.WARNING, logger="ragged")
    with ragged.Runtime(procs=procs, **kwargs) as rt:
        assert rt.settings.debug
        _mixed_workload(rt)
    assert illegal == []
    assert rt._errors == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    transitions = set(checked)
    # The checks really ran, over the transitions the workload must make.
    assert (IDLE, RUNNING) in transitions
    assert (RUNNING, SYSCALL) in transitions
    assert (RUNNING, GCSTOP) in transitions or (IDLE, GCSTOP) in transitions


# ---------------------------------------------------------------- IllegalTransition unit tests


@contextmanager
def lone_p(debug: bool) -> Iterator[P]:
    """A fresh P attached to a real runtime's scheduler but not one of its Ps.

    It starts, as every P does, in GCSTOP; no M ever runs it, so the test
    drives its status by hand.
    """
    with ragged.Runtime(procs=1, debug=debug) as rt:
        p = P(99, rt._sched)
        assert p.status == GCSTOP
        yield p


@pytest.mark.timeout(30)
def test_illegal_transition_raises_in_debug_mode() -> None:
    assert issubclass(ragged.IllegalTransition, ragged.RaggedError)
    with lone_p(debug=True) as p:
        p.setstatus(IDLE)  # legal
        with pytest.raises(ragged.IllegalTransition, match="idle -> syscall"):
            p.setstatus(SYSCALL)
        assert p.status == IDLE, "an illegal transition must not be stored"
        with pytest.raises(ragged.IllegalTransition):
            p.casstatus(IDLE, SYSCALL)
        assert p.status == IDLE


@pytest.mark.timeout(30)
def test_syscall_to_idle_must_be_a_cas() -> None:
    with lone_p(debug=True) as p:
        p.setstatus(IDLE)
        p.setstatus(RUNNING)
        p.setstatus(SYSCALL)  # p.m is None: no owner to check
        with pytest.raises(ragged.IllegalTransition, match="CAS"):
            p.setstatus(IDLE)
        assert p.status == SYSCALL
        assert p.casstatus(SYSCALL, IDLE)
        assert p.status == IDLE
        assert not p.casstatus(SYSCALL, RUNNING)  # lost CAS: status is not SYSCALL


@pytest.mark.timeout(30)
def test_only_own_m_may_change_p_out_of_running() -> None:
    with lone_p(debug=True) as p:
        p.setstatus(IDLE)
        p.setstatus(RUNNING)
        p.m = SimpleNamespace(id=99)  # type: ignore[assignment]  # some other thread's M
        try:
            with pytest.raises(ragged.IllegalTransition, match="own M"):
                p.setstatus(IDLE)
            with pytest.raises(ragged.IllegalTransition, match="own M"):
                p.setstatus(SYSCALL)
            assert p.status == RUNNING
            p.setstatus(_p.DEAD)  # shutdown may kill a running P
        finally:
            p.m = None


@pytest.mark.timeout(30)
def test_no_transition_checks_without_debug() -> None:
    with lone_p(debug=False) as p:
        p.setstatus(IDLE)
        p.setstatus(SYSCALL)  # illegal, but unchecked
        assert p.status == SYSCALL


@pytest.mark.timeout(30)
def test_illegal_transition_on_live_runtime_p() -> None:
    with ragged.Runtime(procs=2, debug=True) as rt:
        sched = rt._sched
        wait_until(lambda: len(sched.pidle) == 2, what="both Ps idle")
        with sched.lock:  # holds the idle P still: no M can take it meanwhile
            p = sched.pidle[0]
            with pytest.raises(ragged.IllegalTransition):
                p.setstatus(SYSCALL)
            assert p.status == IDLE

        async def ok() -> str:
            return "still usable"

        assert rt.go(ok).result(timeout=10) == "still usable"
