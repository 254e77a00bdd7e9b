"""sysmon's blocking-call report (``block_report``): who is reported, how often, what it says."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from conftest import spin, wait_until

import ragged
from ragged._core._blockreport import ADVICE, running_stack

BLOCK = 0.1  # block_report used by these tests (preempt_after stays at its 10ms default)
# For tests that must see no report: a goroutine is reported only if its thread
# has not reached a checkpoint for ~block_report after sysmon first asked it to
# yield, which a thread starved by an overloaded machine could do for 100ms but
# hardly for 400ms.
QUIET_BLOCK = 0.4


def reports(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The blocking-call reports logged so far."""
    return [r.getMessage() for r in caplog.records if "without reaching a safe point" in r.getMessage()]


def blocking_helper(seconds: float) -> None:
    time.sleep(seconds)  # what the report's stack must show


@pytest.mark.timeout(30)
def test_blocking_goroutine_is_reported_with_id_name_labels_stack_and_advice(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A goroutine in time.sleep holding its P is logged once, with everything needed to find it."""

    async def blocker() -> None:
        ragged.set_labels(request=42)
        blocking_helper(0.35)

    async def queued() -> None:
        pass

    async def main() -> tuple[int, int]:
        g = ragged.go(blocker, name="blocker")
        await ragged.gosched()  # let it start and block this runtime's only P
        q = ragged.go(queued)
        await g
        await q
        return g.id, ragged.metrics()["blocking_reports"]

    caplog.set_level(logging.WARNING, logger="ragged")
    gid, counted = ragged.run(main, procs=1, block_report=BLOCK)
    got = reports(caplog)
    assert len(got) == 1, got
    text = got[0]
    assert f"goroutine {gid} 'blocker' labels={{'request': 42}} has held P0 for " in text
    assert "wait in that P's run queue" in text
    assert ADVICE in text
    assert "ragged.syscall" in text and "ragged.checkpoint()" in text
    assert "in blocking_helper" in text and "time.sleep(seconds)" in text
    assert "in blocker" in text
    assert "in schedule" not in text, "the M's scheduler frames should be left out of the stack"
    held = float(text.split("for ")[1].split("s ")[0])
    assert BLOCK <= held < 0.35, text
    assert counted == 1


@pytest.mark.timeout(30)
def test_reported_once_per_slice(caplog: pytest.LogCaptureFixture) -> None:
    """One long block is one report; two blocks separated by a safe point are two."""

    async def twice() -> None:
        time.sleep(0.35)  # longer than 3 x block_report: still one report
        await ragged.gosched()
        time.sleep(0.25)

    caplog.set_level(logging.WARNING, logger="ragged")
    with ragged.Runtime(procs=1, block_report=BLOCK) as rt:
        rt.go(twice).result(timeout=10)
        assert rt.metrics()["blocking_reports"] == 2
    assert len(reports(caplog)) == 2


@pytest.mark.timeout(60)
@pytest.mark.parametrize("attempt", range(3))
def test_checkpointing_and_syscalls_are_not_reported(caplog: pytest.LogCaptureFixture, attempt: int) -> None:
    """Long work that checkpoints, and blocking calls made through ragged.syscall, reach safe points."""

    async def spinner() -> int:
        end = time.monotonic() + 1.5 * QUIET_BLOCK
        n = 0
        while time.monotonic() < end:
            await ragged.checkpoint()
            n += 1
        return n

    async def sleeper() -> None:
        await ragged.syscall(time.sleep, 1.5 * QUIET_BLOCK)
        await ragged.syscall(time.sleep, 1.5 * QUIET_BLOCK)

    async def main() -> tuple[int, int]:
        a = ragged.go(spinner)
        b = ragged.go(sleeper)
        n = await a
        await b
        return n, ragged.metrics()["blocking_reports"]

    caplog.set_level(logging.WARNING, logger="ragged")
    n, counted = ragged.run(main, procs=1, block_report=QUIET_BLOCK)
    assert n > 0
    assert counted == 0, f"attempt {attempt}: {reports(caplog)}"
    assert reports(caplog) == []


@pytest.mark.timeout(30)
def test_barrier_coordinator_is_not_reported_but_the_straggler_is(caplog: pytest.LogCaptureFixture) -> None:
    """A goroutine waiting in for_each_p for a blocked P is not the culprit; the blocked goroutine is."""
    started: list[int] = []

    async def straggler() -> None:
        started.append(1)
        time.sleep(1.5 * QUIET_BLOCK)

    async def main() -> None:
        g = ragged.go(straggler, name="straggler")
        deadline = time.monotonic() + 10
        while not started and time.monotonic() < deadline:
            await ragged.gosched()
        await ragged.for_each_p(lambda p: None)  # waits ~0.6s for the straggler's P
        await g

    caplog.set_level(logging.WARNING, logger="ragged")
    ragged.run(main, procs=2, block_report=QUIET_BLOCK, straggler_timeout=10.0)
    got = reports(caplog)
    assert len(got) == 1, got
    assert "'straggler'" in got[0]


@pytest.mark.timeout(30)
def test_off_by_default_on_with_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    """Off unless asked; RAGGED_DEBUG=1 (or debug=True) turns it on at 100ms, longer than preempt_after."""
    monkeypatch.delenv("RAGGED_DEBUG", raising=False)
    with ragged.Runtime(procs=1) as rt:
        assert rt.settings.block_report is None
    with ragged.Runtime(procs=1, block_report=0) as rt:
        assert rt.settings.block_report is None  # 0 means off
    with ragged.Runtime(procs=1, block_report=0.25) as rt:
        assert rt.settings.block_report == 0.25
    with ragged.Runtime(procs=1, debug=True) as rt:
        assert rt.settings.block_report == pytest.approx(0.1)
    monkeypatch.setenv("RAGGED_DEBUG", "1")
    with ragged.Runtime(procs=1) as rt:
        assert rt.settings.block_report == pytest.approx(0.1)
    with ragged.Runtime(procs=1, preempt_after=0.08) as rt:
        assert rt.settings.block_report == pytest.approx(0.16)
    with ragged.Runtime(procs=1, block_report=None) as rt:
        assert rt.settings.block_report is None


def test_block_report_must_exceed_preempt_after() -> None:
    """A block_report a checkpointing goroutine could reach is refused, saying what to do."""
    with pytest.raises(ValueError, match="must exceed preempt_after.*lower preempt_after"):
        ragged.Runtime(procs=1, block_report=0.005)
    with pytest.raises(ValueError, match="must exceed preempt_after"):
        ragged.Runtime(procs=1, block_report=0.05, preempt_after=0.05)


def test_reported_only_after_ignoring_a_request_to_yield(monkeypatch: pytest.MonkeyPatch) -> None:
    """sysmon's rule, round by round: a long slice is reported only once the goroutine has left
    sysmon's request to yield unanswered for preempt_after, and only once per slice.

    Drives ``retake`` with chosen times on a scheduler stub, as if sysmon had been
    held up for 0.5s: coming back to a long slice it never asked to end, it asks first.
    """
    from types import SimpleNamespace

    from ragged._core import _sysmon
    from ragged._core._metrics import Metrics
    from ragged._core._p import RUNNING, W_STATUS, P
    from ragged._core._settings import Settings

    reported: list[tuple[int, float]] = []
    monkeypatch.setattr(_sysmon, "report_blocking", lambda sched, p, tick, ran: reported.append((p.id, ran)))
    asked: list[int] = []
    sched = SimpleNamespace(
        settings=Settings(block_report=BLOCK),
        gcwaiting=False,
        procs=1,
        chaos=None,
        debug=False,
        metrics=Metrics(),
        preemptone=lambda p: asked.append(p.id) or True,
    )
    p = P(0, sched)  # type: ignore[arg-type]  # a stub, not a Sched
    sched.allp = [p]
    p.words.store(W_STATUS, RUNNING)
    p.schedtick = 1
    t0 = 100.0
    _sysmon.retake(sched, t0)  # the slice begins
    _sysmon.retake(sched, t0 + 0.5)  # sysmon was held up: first request, no report yet
    assert (reported, asked) == ([], [0])
    _sysmon.retake(sched, t0 + 0.505)  # asked 5ms ago: too soon
    assert reported == []
    _sysmon.retake(sched, t0 + 0.511)  # ignored for 11ms > preempt_after
    assert reported == [(0, pytest.approx(0.511))]
    _sysmon.retake(sched, t0 + 0.9)  # the same slice: no second report
    assert len(reported) == 1 and asked == [0, 0, 0]
    p.nsyscall += 1  # a syscall ends the slice
    _sysmon.retake(sched, t0 + 1.0)
    _sysmon.retake(sched, t0 + 1.05)  # a request, 50ms into the slice
    _sysmon.retake(sched, t0 + 1.095)  # ignored for 45ms, but the slice is only 95ms long: asks again
    _sysmon.retake(sched, t0 + 1.101)  # a long slice, but asked only 6ms ago
    assert len(reported) == 1
    _sysmon.retake(sched, t0 + 1.106)
    assert reported[1] == (0, pytest.approx(0.106))


@pytest.mark.timeout(60)
def test_stack_of_a_running_goroutine_reaches_its_outermost_frame() -> None:
    """A goroutine's stack is read while it runs on: it calls a short function over and
    over, and a read that catches that function as it returns must not stop at it (on the
    free-threaded build the caller link read as None and the report showed one frame)."""
    stop = threading.Event()

    def inner_short_call() -> int:
        return spin(5)

    async def outermost_goroutine_frame() -> None:
        while not stop.is_set():
            inner_short_call()

    with ragged.Runtime(procs=1) as rt:
        g = rt.go(outermost_goroutine_frame)
        try:
            p = rt._sched.allp[0]
            wait_until(lambda: p.m is not None and p.m.curg is g, what="the goroutine to run")
            m = p.m
            assert m is not None and m.ident is not None
            short = 0
            for _ in range(400):
                stack = "".join(running_stack(g, m.ident))
                assert "outermost_goroutine_frame" in stack, f"stack cut short:\n{stack}"
                short += "inner_short_call" not in stack
        finally:
            stop.set()
        g.result(timeout=30)
    assert short < 400, "the stack never showed the inner call"
