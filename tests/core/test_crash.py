"""An internal failure stops the runtime loudly (``_shutdown.crash``): Go's fatal error, as a library can have it.

Each test injects the failure by monkeypatching an internal function to
raise -- on an M (its scheduler loop), in sysmon, in the network poller and
in a timer callback -- and checks the whole contract: the failure and the
goroutine dump are logged at CRITICAL; ``ragged.run`` raises
:class:`ragged.RuntimeCrashed` chained to the injected exception and naming
the thread; plain threads blocked in ``result()``, on a ``submit()`` future,
on a channel and in ``for_each_p`` get it too; ``go()`` raises it afterwards;
every goroutine is cancelled (its ``finally`` runs); every thread the runtime
started exits.  Every wait in the tests is bounded: nothing may hang.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import no_runtime_threads_left, ragged_threads, wait_until

import ragged
from ragged import _api
from ragged._core import _proc, _sysmon
from ragged._core._netpoll import NetPoll

pytestmark = pytest.mark.timeout(60)


class Injected(Exception):
    """The failure the tests plant inside ragged."""


def _raise_when(armed: threading.Event, real: Callable[..., Any], where: str) -> Callable[..., Any]:
    """``real``, raising :class:`Injected` instead once ``armed`` is set."""

    def fake(*args: Any) -> Any:
        if armed.is_set():
            raise Injected(where)
        return real(*args)

    return fake


class Fault:
    """Where to plant the failure: ``arm(rt)`` makes the runtime hit it (once the victims are in place)."""

    def __init__(self, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.name = name
        self.armed = threading.Event()
        self.sock = socket.socketpair()
        mp = monkeypatch
        armed = self.armed
        if name == "M":
            real_execute = _proc.execute

            def execute(sched: Any, m: Any, g: Any) -> None:
                if g.name == "trigger":
                    raise Injected("in an M's scheduler loop")
                real_execute(sched, m, g)

            mp.setattr(_proc, "execute", execute)
        elif name == "M-running-goroutine":
            real_stop = _proc._stop_runnable

            def stop_runnable(m: Any, p: Any, g: Any, tr: Any, why: str) -> None:
                if g.name == "trigger":
                    raise Injected("on an M while its goroutine yields")
                real_stop(m, p, g, tr, why)

            mp.setattr(_proc, "_stop_runnable", stop_runnable)
        elif name == "sysmon":
            mp.setattr(_sysmon, "retake", _raise_when(armed, _sysmon.retake, "in sysmon"))
        elif name == "poller":
            mp.setattr(NetPoll, "netpoll", _raise_when(armed, NetPoll.netpoll, "in the network poller"))
        elif name == "timer":
            mp.setattr(_api, "_wake_sleeper", _raise_when(armed, _api._wake_sleeper, "in a timer callback"))
        else:  # pragma: no cover
            raise AssertionError(name)

    def victims(self, rt: ragged.Runtime, unwound: list[str]) -> None:
        """Extra goroutines the fault needs: a network waiter (so a poller exists and is polled)."""
        if self.name == "poller":
            rt.go(_wait_readable, self.sock[0], unwound, name="net-waiter")

    def arm(self, rt: ragged.Runtime) -> None:
        self.armed.set()
        if self.name in ("M", "M-running-goroutine"):
            rt.go(_trigger, name="trigger")
        elif self.name == "poller":
            np = rt._sched.netpoll
            assert np is not None
            np.brk()  # the M blocked in the poll polls again at once
        elif self.name == "timer":
            rt.go(ragged.sleep, 0.001, name="timer-trigger")

    def close(self) -> None:
        for s in self.sock:
            s.close()


FAULTS = ["M", "M-running-goroutine", "sysmon", "poller", "timer"]


@pytest.fixture(params=FAULTS)
def fault(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fault]:
    f = Fault(request.param, monkeypatch)
    try:
        yield f
    finally:
        f.close()


async def _trigger() -> None:
    await ragged.gosched()  # the M-running-goroutine fault fires here; the M fault before it runs


async def _wait_readable(sock: socket.socket, unwound: list[str]) -> None:
    try:
        await ragged.wait_readable(sock)
    finally:
        unwound.append("net-waiter")


async def _parked(ch: ragged.Chan[int], unwound: list[str], name: str) -> int:
    try:
        return await ch.recv()
    finally:
        unwound.append(name)


def _crash_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "ragged" and r.levelno >= logging.CRITICAL and "crashed; this is a bug in ragged" in r.getMessage()
    ]


def _check_crash_error(err: BaseException, fault: Fault) -> None:
    assert type(err) is ragged.RuntimeCrashed, f"{type(err).__name__}: {err}"
    assert isinstance(err.__cause__, Injected), repr(err.__cause__)
    assert err.thread and err.thread in str(err)
    if fault.name.startswith("M"):
        assert err.thread.startswith("M"), err.thread
    elif fault.name == "sysmon":
        assert err.thread == "sysmon"
    if fault.name == "timer":
        assert any("timer callback" in n for n in getattr(err.__cause__, "__notes__", [])), err.__cause__


def _blocked(fn: Callable[[], Any], out: dict[str, BaseException | None], key: str) -> threading.Thread:
    """Run ``fn`` on a plain thread; record what it raised under ``key``."""

    def body() -> None:
        try:
            fn()
            out[key] = None
        except BaseException as e:  # noqa: BLE001 - examined by the test
            out[key] = e

    t = threading.Thread(target=body, name=f"blocked-{key}", daemon=True)
    t.start()
    return t


def test_a_crash_reaches_every_waiter_cancels_every_goroutine_and_stops_every_thread(
    fault: Fault, caplog: pytest.LogCaptureFixture
) -> None:
    before = ragged_threads()
    caplog.set_level(logging.CRITICAL, logger="ragged")
    unwound: list[str] = []
    out: dict[str, BaseException | None] = {}
    rt = ragged.Runtime(procs=2, shutdown_timeout=10)
    try:
        ch: ragged.Chan[int] = ragged.Chan()
        waited = rt.go(_parked, ch, unwound, "joined")
        fut = rt.submit(_parked, ch, unwound, "submitted")
        fault.victims(rt, unwound)
        gs = rt._sched.goroutines
        wait_until(lambda: len(gs()) >= 2 and all(g.status == "waiting" for g in gs()), what="the victims to park")
        threads = [
            _blocked(lambda: waited.result(timeout=30), out, "result"),
            _blocked(lambda: fut.result(timeout=30), out, "submit"),
            _blocked(lambda: ch.recv_blocking(timeout=30), out, "recv_blocking"),
        ]
        wait_until(lambda: len(rt._sched.thread_waiters) >= 2, what="the plain threads to block")
        fault.arm(rt)
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads), "a plain thread still waits after the crash"
        for key in ("result", "submit", "recv_blocking"):
            err = out[key]
            assert err is not None, f"{key} returned after the crash"
            _check_crash_error(err, fault)
        with pytest.raises(ragged.RuntimeCrashed):
            rt.go(_trigger)
        with pytest.raises(ragged.RuntimeCrashed):
            rt.for_each_p(lambda p: None)
        crashed = rt.crashed
        assert crashed is not None
        _check_crash_error(crashed, fault)
        wait_until(rt._torn_down.is_set, 30, "the teardown to end")
        assert sorted(unwound) == sorted(["joined", "submitted"] + (["net-waiter"] if fault.name == "poller" else []))
        assert rt.closed and not rt._sched.allgs
    finally:
        rt.close()  # waits for the teardown the crash started; idempotent
    no_runtime_threads_left(before)
    logged = _crash_logged(caplog)
    assert len(logged) == 1, logged
    assert "goroutine" in logged[0] and "P0:" in logged[0], "the goroutine dump is logged with the crash"
    assert rt._errors and "crashed" in rt._errors[0]


def test_run_raises_runtime_crashed_chained_to_the_failure(fault: Fault, caplog: pytest.LogCaptureFixture) -> None:
    before = ragged_threads()
    caplog.set_level(logging.CRITICAL, logger="ragged")
    unwound: list[str] = []

    async def main() -> None:
        rt = ragged.current_runtime()
        ch: ragged.Chan[int] = ragged.Chan()
        ragged.go(_parked, ch, unwound, "child")
        fault.victims(rt, unwound)
        await ragged.sleep(0.02)
        fault.arm(rt)
        try:
            await ch.recv()
        finally:
            unwound.append("main")

    with pytest.raises(ragged.RuntimeCrashed) as info:
        ragged.run(main, procs=2)
    _check_crash_error(info.value, fault)
    assert "main" in unwound and "child" in unwound
    no_runtime_threads_left(before)
    assert len(_crash_logged(caplog)) == 1


@pytest.mark.timeout(60)
def test_a_barrier_waiting_for_a_straggler_gets_the_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    """``for_each_p`` from a plain thread waits for a P whose goroutine never reaches a safe point;
    sysmon then fails: the barrier raises RuntimeCrashed instead of waiting on."""
    before = ragged_threads()
    f = Fault("sysmon", monkeypatch)
    stop = threading.Event()
    try:
        with ragged.Runtime(procs=2, straggler_timeout=30) as rt:
            started = threading.Event()

            async def straggler() -> None:
                started.set()
                # Blocked in C with no await: at no safe point, not even an asynchronous
                # one (CPython 3.12+ reaches a goroutine in a Python loop).
                stop.wait(30)

            rt.go(straggler)
            assert started.wait(10)
            out: dict[str, BaseException | None] = {}
            t = _blocked(lambda: rt.for_each_p(lambda p: None), out, "for_each_p")
            wait_until(lambda: rt._sched.safe_point_fn is not None, what="the barrier to start")
            f.arm(rt)
            t.join(30)
            assert not t.is_alive(), "for_each_p still waits after the crash"
            err = out["for_each_p"]
            assert err is not None
            _check_crash_error(err, f)
            stop.set()  # the straggler returns; its M exits with the teardown
    finally:
        stop.set()
        f.close()
    no_runtime_threads_left(before)


def test_a_submit_future_of_a_goroutine_lost_with_the_failed_m_completes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The goroutine the failed M had in hand (off every queue) is abandoned with RuntimeCrashed:
    its joiners and its ``submit()`` future do not wait for good."""
    before = ragged_threads()
    f = Fault("M", monkeypatch)
    try:
        with ragged.Runtime(procs=1) as rt:
            fut = rt.submit(_trigger, name="trigger")
            with pytest.raises(ragged.RuntimeCrashed):
                fut.result(timeout=30)
            assert isinstance(fut.exception(timeout=1), ragged.RuntimeCrashed)
    finally:
        f.close()
    no_runtime_threads_left(before)
