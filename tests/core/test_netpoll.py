"""The network poller (_netpoll, _netpoll_sched): waits that hold no thread, their faults, and the scheduler hooks.

``ragged.wait_readable`` / ``wait_writable`` on bare fds; the poller's
interplay with timers, plain-thread wake-ups, barriers, stop-the-world and
deadlock detection.  Connections (``ragged.net``) are in test_net.py.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time

import pytest

import ragged
from ragged._core._netpoll import READ

# Every test runs on each kind of poller (``poller_kind``: edge- and level-triggered).
pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("poller_kind")]


def pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


def later(seconds: float, fn) -> threading.Thread:
    """Call ``fn()`` from a plain thread ``seconds`` from now."""

    def body() -> None:
        time.sleep(seconds)
        fn()

    t = threading.Thread(target=body)
    t.start()
    return t


def unused_fd() -> int:
    """An fd number nothing has open (a just-closed one may be reused at once by the runtime's own fds)."""
    return max(int(x) for x in os.listdir("/proc/self/fd")) + 500


def poller(rt: ragged.Runtime):
    return rt._sched.netpoll


def test_wait_readable_parks_without_a_thread_and_wakes_on_data() -> None:
    a, b = pair()
    with a, b, ragged.Runtime(procs=2) as rt:

        async def reader() -> bytes:
            await ragged.wait_readable(a)
            return a.recv(16)

        gs = [rt.go(reader)]
        time.sleep(0.1)
        assert gs[0].status == "waiting"
        assert "IO wait read" in rt.dump()
        threads = len(rt._sched.allm)
        t = later(0.05, lambda: b.send(b"hello"))
        assert gs[0].result(timeout=10) == b"hello"
        t.join()
        assert len(rt._sched.allm) == threads  # no M was started for the wait
        assert threads <= rt.procs + 1


def test_wait_writable_returns_when_writable_and_on_fd_ints() -> None:
    a, b = pair()
    with a, b, ragged.Runtime(procs=1) as rt:

        async def main() -> str:
            await ragged.wait_writable(a.fileno(), timeout=5)
            await ragged.wait_writable(a)
            return "ok"

        assert rt.go(main).result(timeout=10) == "ok"


def test_timeout_raises_named_error_and_unregisters() -> None:
    a, b = pair()
    with a, b, ragged.Runtime(procs=1) as rt:

        async def main() -> BaseException:
            try:
                await ragged.wait_readable(a, timeout=0.05)
            except ragged.IOTimeout as e:
                return e
            raise AssertionError("no timeout")

        e = rt.go(main).result(timeout=10)
        assert isinstance(e, TimeoutError) and isinstance(e, ragged.RaggedError)
        np = poller(rt)
        assert not np.pds and np.nregistered == 0, (np.pds, np.nregistered)


@pytest.mark.parametrize("what", ["closed-int", "closed-socket", "regular-file", "not-an-fd", "negative"])
def test_bad_fds_get_named_errors(what: str) -> None:
    expect: type[BaseException]
    with tempfile.TemporaryFile() as f, ragged.Runtime(procs=1) as rt:
        if what == "closed-int":
            arg, expect = unused_fd(), ragged.NotPollable
        elif what == "closed-socket":
            s = socket.socket()
            s.close()
            arg, expect = s, ragged.NotPollable
        elif what == "regular-file":
            arg, expect = f, ragged.NotPollable
        elif what == "not-an-fd":
            arg, expect = "stdin", TypeError
        else:
            arg, expect = -3, ValueError

        async def main() -> None:
            await ragged.wait_readable(arg, timeout=1)

        with pytest.raises(expect):
            rt.go(main).result(timeout=10)
        np = poller(rt)
        assert np is None or (not np.pds and np.nregistered == 0)
        assert rt.go(_noop).result(timeout=5) is None  # the runtime is fine


async def _noop() -> None:
    return None


def test_outside_a_goroutine_is_refused() -> None:
    a, b = pair()
    with a, b:
        coro = ragged.wait_readable(a)
        with pytest.raises(ragged.NotInGoroutine):
            coro.send(None)
        coro.close()


def test_second_waiter_same_direction_gets_fdbusy_other_direction_is_fine() -> None:
    a, b = pair()
    with a, b, ragged.Runtime(procs=2) as rt:

        async def reader() -> bytes:
            await ragged.wait_readable(a)
            return a.recv(16)

        async def second() -> str:
            try:
                await ragged.wait_readable(a, timeout=5)
            except ragged.FdBusy:
                return "busy"
            return "woke"

        async def writer() -> str:
            await ragged.wait_writable(a, timeout=5)
            return "writable"

        g1 = rt.go(reader)
        time.sleep(0.1)
        assert rt.go(second).result(timeout=10) == "busy"
        assert rt.go(writer).result(timeout=10) == "writable"
        b.send(b"x")
        assert g1.result(timeout=10) == b"x"


def test_cancel_wakes_at_once_and_drops_interest() -> None:
    a, b = pair()
    with a, b, ragged.Runtime(procs=2) as rt:

        async def reader() -> None:
            await ragged.wait_readable(a)

        for _ in range(20):
            g = rt.go(reader)
            while g.status != "waiting":
                time.sleep(0.001)
            t0 = time.monotonic()
            g.cancel()
            with pytest.raises(ragged.Cancelled):
                g.result(timeout=10)
            assert time.monotonic() - t0 < 5
        np = poller(rt)
        assert not np.pds and np.nregistered == 0


def test_a_ready_fd_nobody_waits_for_does_not_spin_the_poller(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ready fd nobody waits for: the M in the poll blocks rather than spin on it.

    Edge-triggered, the fd is reported once per edge; level-triggered, the
    blocking poll drops the interest of a direction nobody waits for.
    """
    a, b = pair()
    with a, b, ragged.Runtime(procs=1) as rt:
        conn = ragged.net.Conn(a)

        async def once() -> bytes:
            return await conn.read(1)

        b.send(b"xy")
        time.sleep(0.01)
        assert rt.go(once).result(timeout=10) == b"x"  # no wait needed; now a is readable, nobody waits

        async def reg() -> None:
            await conn._wait(READ)  # registers READ interest, woken at once (b"y" is there)

        rt.go(reg).result(timeout=10)
        np = poller(rt)
        polls = [0]
        netpoll = np.netpoll

        def counted(timeout: float | None) -> list:
            polls[0] += 1
            return netpoll(timeout)

        monkeypatch.setattr(np, "netpoll", counted)
        time.sleep(0.2)  # polls happen: sysmon's every 10ms at most, and the blocked M's
        assert polls[0] < 60, f"{polls[0]} polls in 0.2s: the poller spins on a ready fd nobody waits for"
        pd = np.pds[a.fileno()]
        assert pd.waiter == [None, None]
        if np.backend.kind == "level":
            assert pd.events == 0  # level-triggered: the interest was dropped
        conn.close()


def test_edge_triggered_readiness_with_no_waiter_is_kept_for_the_next_wait(poller_kind: str) -> None:
    """An edge seen while nobody waits ends the next wait at once (Go's pdReady): never lost.

    Level-triggered, the same record serves too, and the level itself wakes the wait.
    """
    a, b = pair()
    with a, b, ragged.Runtime(procs=1) as rt:
        conn = ragged.net.Conn(a)

        async def reg() -> bool:
            return await conn._wait(READ)

        g = rt.go(reg)
        while g.status != "waiting":
            time.sleep(0.001)
        b.send(b"1")
        assert g.result(timeout=10) is True  # parked, then woken by the poll
        np = poller(rt)
        pd = np.pds[a.fileno()]
        # Data comes while nobody waits: a poll records it.
        b.send(b"2")
        deadline = time.monotonic() + 10
        while not pd.ready[0]:
            assert time.monotonic() < deadline, "no poll recorded the readiness"
            time.sleep(0.005)
        assert rt.go(reg).result(timeout=10) is False  # consumed without parking
        assert not pd.ready[0]
        assert a.recv(10) == b"12"
        conn.close()


def test_plain_thread_work_and_timers_break_the_blocked_poll() -> None:
    """The timer waiter blocks in the poll with no timeout; new work must break it."""
    a, b = pair()
    with a, b, ragged.Runtime(procs=1) as rt:

        async def parked() -> None:
            await ragged.wait_readable(a)

        g = rt.go(parked)
        time.sleep(0.1)  # every M idle, one blocked in the poll
        for _ in range(50):
            assert rt.go(_noop).result(timeout=5) is None

        async def sleeper() -> str:
            await ragged.sleep(0.02)
            return "slept"

        for _ in range(10):
            time.sleep(0.02)
            assert rt.go(sleeper).result(timeout=5) == "slept"
        g.cancel()


def test_goroutines_parked_on_the_network_are_not_a_deadlock() -> None:
    a, b = pair()
    with a, b:
        t = later(0.3, lambda: b.send(b"late"))

        async def main() -> bytes:
            await ragged.wait_readable(a)
            return a.recv(8)

        assert ragged.run(main, procs=2) == b"late"  # detect_deadlock is on in ragged.run
        t.join()


@pytest.mark.parametrize("procs", [1, 2, 4])
def test_barrier_and_stw_serve_ps_whose_goroutines_wait_on_the_network(procs: int) -> None:
    socks = [pair() for _ in range(8)]
    with ragged.Runtime(procs=procs) as rt:

        async def parked(s: socket.socket) -> None:
            await ragged.wait_readable(s)

        gs = [rt.go(parked, a) for a, _ in socks]
        time.sleep(0.1)
        for _ in range(20):
            seen: list[int] = []
            rt.for_each_p(seen_append(seen), timeout=10)
            assert sorted(seen) == list(range(procs))
            with rt.stop_the_world("net"):
                pass
        for _, b in socks:
            b.send(b"!")
        for g in gs:
            g.result(timeout=10)
    for a, b in socks:
        a.close()
        b.close()


def seen_append(seen: list[int]):
    return lambda p: seen.append(p.id)


def test_close_releases_goroutines_parked_on_bare_fds() -> None:
    a, b = pair()
    with a, b:
        rt = ragged.Runtime(procs=2)

        async def parked() -> None:
            await ragged.wait_readable(a)

        gs = [rt.go(parked)]
        time.sleep(0.05)
        rt.close()
        assert all(g.done() for g in gs)
        with pytest.raises(ragged.Cancelled):
            gs[0].result()
        assert a.fileno() >= 0  # a bare fd is the caller's: not closed by the runtime


@pytest.mark.parametrize("procs", [1, 2])
def test_network_goroutines_are_served_while_every_p_stays_busy(procs: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every P always has queued work, so no M reaches the poll in findrunnable and no P
    is idle for sysmon's poll: a busy P polls itself at its 61st schedule once nobody
    has polled for 10ms (Go's sysmon poll does it there), and the reader is served
    while the spinners run.  sysmon's backstop poll is moved out of the way."""
    monkeypatch.setattr(ragged._core._netpoll_sched, "SYSMON_BACKSTOP", 3600.0)
    a, b = pair()
    stop = threading.Event()
    with a, b, ragged.Runtime(procs=procs) as rt:

        async def spinner() -> int:
            n = 0
            while not stop.is_set():
                sum(range(200))
                n += 1
                await ragged.gosched()  # the other spinners are queued: the run queue never empties
            return n

        async def reader() -> float:
            await ragged.wait_readable(a)
            return time.monotonic()

        spinners = [rt.go(spinner) for _ in range(3 * procs)]
        r = rt.go(reader)
        try:
            time.sleep(0.2)
            assert r.status == "waiting"
            sent = time.monotonic()
            b.send(b"x")
            woke = r.result(timeout=20)
        finally:
            stop.set()
        assert all(g.result(timeout=20) > 0 for g in spinners)
        assert r.done()
    # Not a timing assertion on a noisy machine: the reader woke while the spinners ran
    # (result() above returned before stop was set); record how long it took.
    print(f"procs={procs}: reader served {1e3 * (woke - sent):.1f}ms after the data arrived")


@pytest.mark.parametrize("queued", [False, True], ids=["global-empty", "global-holds-work"])
def test_a_busy_ps_poll_does_not_put_its_batch_ahead_of_the_global_queue(
    monkeypatch: pytest.MonkeyPatch, queued: bool
) -> None:
    """The 61st-tick poll of a P that never runs dry: its batch goes on the local queue only while
    the global queue is empty; else behind the goroutines there, which were readied first (at
    10,000 connections, putting it ahead starved them: a p99 of seconds)."""
    from collections import deque
    from types import SimpleNamespace

    from ragged._core import _netpoll_sched

    older, new = ["older"], ["new-1", "new-2"]
    local: list[str] = []
    sched = SimpleNamespace(
        netpoll=SimpleNamespace(nregistered=1, lastpoll=time.monotonic() - 1.0),
        globrunq=deque(older if queued else []),
        runqputbatch=lambda p, gs: local.extend(gs),
        pidle=[],
        nmspinning=0,
    )
    monkeypatch.setattr(_netpoll_sched, "poll_ready", lambda s, np: list(new))
    _netpoll_sched.schedtick_poll(sched, SimpleNamespace())  # type: ignore[arg-type]
    if queued:
        assert list(sched.globrunq) == older + new and local == []
    else:
        assert list(sched.globrunq) == [] and local == new
