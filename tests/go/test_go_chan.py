"""Go's own channel tests, ported: src/runtime/chan_test.go.

Each ``test_go_X`` is Go's ``TestX`` run as a ragged program (``ragged.run``),
the same steps in the same order.  What differs, and why, is said at each test:

* Sizes.  Go's loops are sized for compiled code; ragged's channel operations
  cost microseconds, so the big counts are cut to keep the suite's budget
  (each file stays within a few seconds on both builds).  Where Go has a
  ``-short`` size, that is usually the one used.
* Zero values.  A receive on a closed, drained Go channel yields the zero
  value; in ragged ``recv_ok()`` gives ``(None, False)`` and ``recv()`` raises
  ``ChanClosed``.  Both are checked where Go checks the zero.
* Go's ``time.Sleep`` in a goroutine is ``await ragged.sleep``; a nil channel in
  a ``select`` is a ``None`` case; ``atomic`` counters are guarded by a
  ``threading.Lock`` (goroutines run in parallel on a free-threaded build).
* Not ported: ``TestShrinkStackDuringBlockedSend``, ``TestNoShrinkStackWhileParking``
  and ``TestSelectStackAdjust`` test the GC shrinking goroutine stacks under a
  parked sudog; a ragged goroutine's frames are heap objects that nothing moves.
  Their channel steps are kept (with ``gc.collect()`` where Go calls
  ``runtime.GC()``), which is the part that carries over.  The benchmarks are
  not tests.
"""

from __future__ import annotations

import gc
import math
import threading
from typing import Any

import pytest

import ragged

RECEIVED = object()


def go_run(main, *args, procs: int = 4):  # noqa: ANN001, ANN201 - a thin wrapper for the ports
    """Run a port's ``main`` like a Go test binary: fresh runtime, ``procs`` Ps (GOMAXPROCS)."""
    return ragged.run(main, *args, procs=procs)


async def nothing_in(ch: ragged.Chan[Any]) -> bool:
    """Go's ``select { case <-ch: fail; default: }``: True if nothing can be received now."""
    k, _ = await ragged.select(ch.recv_case(), default=True)
    return k == -1


class Counter:
    """Go's ``atomic.AddInt32`` for goroutines that run in parallel."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.n = 0

    def add(self, d: int) -> int:
        with self._lock:
            self.n += d
            return self.n


# ---------------------------------------------------------------- TestChan


async def _chan_blocks_and_orders(cap: int) -> None:
    """One capacity of TestChan: every block of Go's loop body, in order.

    Each block has its own channel variable, as each of Go's ``{ c := ... }``
    blocks does: a goroutine of one block that starts late must not see the
    next block's channel.
    """
    # Ensure that receive from empty chan blocks.
    empty: ragged.Chan[int] = ragged.Chan(cap)
    got: list[str] = []

    async def recv1() -> None:
        await empty.recv()
        got.append("recv1")

    async def recv2() -> None:
        await empty.recv_ok()
        got.append("recv2")

    ragged.go(recv1)
    ragged.go(recv2)
    await ragged.sleep(0.001)
    assert not got, f"chan[{cap}]: receive from empty chan"
    # Ensure that non-blocking receive does not block.
    assert await ragged.select(empty.recv_case(), default=True) == (-1, None), f"chan[{cap}]: receive from empty chan"
    assert await ragged.select(empty.recv_case(with_ok=True), default=True) == (-1, None)
    await empty.send(0)
    await empty.send(0)

    # Ensure that send to full chan blocks.
    full: ragged.Chan[int] = ragged.Chan(cap)
    for i in range(cap):
        await full.send(i)
    sent = threading.Event()

    async def sender() -> None:
        await full.send(0)
        sent.set()

    ragged.go(sender)
    await ragged.sleep(0.001)
    assert not sent.is_set(), f"chan[{cap}]: send to full chan"
    # Ensure that non-blocking send does not block.
    assert await ragged.select(full.send_case(0), default=True) == (-1, None), f"chan[{cap}]: send to full chan"
    await full.recv()

    # Ensure that we receive 0 from closed chan (ragged: (None, False), or ChanClosed from recv()).
    closed: ragged.Chan[int] = ragged.Chan(cap)
    for i in range(cap):
        await closed.send(i)
    closed.close()
    for i in range(cap):
        v = await closed.recv()
        assert v == i, f"chan[{cap}]: received {v}, expected {i}"
    with pytest.raises(ragged.ChanClosed):
        await closed.recv()
    assert await closed.recv_ok() == (None, False), f"chan[{cap}]: received a value from a closed chan"

    # Ensure that close unblocks receive.
    unblock: ragged.Chan[int] = ragged.Chan(cap)
    done: ragged.Chan[bool] = ragged.Chan()

    async def closed_recv() -> None:
        v, ok = await unblock.recv_ok()
        await done.send(v is None and ok is False)

    ragged.go(closed_recv)
    await ragged.sleep(0.001)
    unblock.close()
    assert await done.recv(), f"chan[{cap}]: received non zero from closed chan"

    # Send 100 integers, ensure that we receive them non-corrupted in FIFO order.
    c: ragged.Chan[int] = ragged.Chan(cap)

    async def send100() -> None:
        for i in range(100):
            await c.send(i)

    ragged.go(send100)
    for i in range(100):
        v = await c.recv()
        assert v == i, f"chan[{cap}]: received {v}, expected {i}"
    # Same, but using recv2.
    ragged.go(send100)
    for i in range(100):
        v, ok = await c.recv_ok()
        assert ok, f"chan[{cap}]: receive failed, expected {i}"
        assert v == i, f"chan[{cap}]: received {v}, expected {i}"

    # Send 1000 integers in 4 goroutines, ensure that we receive what we send.
    P, L = 4, 1000

    async def send_l() -> None:
        for i in range(L):
            await c.send(i)

    results: ragged.Chan[dict[int, int]] = ragged.Chan()

    async def recv_l() -> None:
        recv: dict[int, int] = {}
        for _ in range(L):
            v = await c.recv()
            recv[v] = recv.get(v, 0) + 1
        await results.send(recv)

    for _ in range(P):
        ragged.go(send_l)
    for _ in range(P):
        ragged.go(recv_l)
    recv: dict[int, int] = {}
    for _ in range(P):
        for k, v in (await results.recv()).items():
            recv[k] = recv.get(k, 0) + v
    assert len(recv) == L, f"chan[{cap}]: received {len(recv)} values, expected {L}"
    assert all(v == P for v in recv.values()), f"chan[{cap}]: some value not received {P} times: {recv}"

    # Test len/cap.
    lc: ragged.Chan[int] = ragged.Chan(cap)
    assert (len(lc), lc.cap) == (0, cap), f"chan[{cap}]: bad len/cap"
    for i in range(cap):
        await lc.send(i)
    assert (len(lc), lc.cap) == (cap, cap), f"chan[{cap}]: bad len/cap"


@pytest.mark.timeout(120)
def test_go_chan() -> None:
    """TestChan (GOMAXPROCS 4): blocking, non-blocking, closed, FIFO and len/cap behaviour for
    capacities 0..49 (Go: 0..199, -short 0..19)."""

    async def main() -> None:
        for cap in range(50):
            await _chan_blocks_and_orders(cap)

    go_run(main, procs=4)


# ---------------------------------------------------------------- non-blocking races


@pytest.mark.timeout(120)
def test_go_nonblock_recv_race() -> None:
    """TestNonblockRecvRace: a non-blocking receive on a channel that is ready (a value, or closed)
    never takes the default case, while main closes it and receives.  1000 rounds (Go: 10000)."""

    async def main() -> None:
        errs: list[int] = []
        for i in range(1000):
            c: ragged.Chan[int] = ragged.Chan(1)
            await c.send(1)

            async def probe(c: ragged.Chan[int] = c, i: int = i) -> None:
                k, _ = await ragged.select(c.recv_case(), default=True)
                if k == -1:
                    errs.append(i)

            g = ragged.go(probe)
            c.close()
            await c.recv_ok()
            await g
        assert not errs, f"chan is not ready in rounds {errs[:10]}"

    go_run(main)


async def _nonblock_select_race(close_c2: bool, n: int) -> None:
    """TestNonblockSelectRace(2): select acts on one moment's state, never a smeared window."""
    done: ragged.Chan[bool] = ragged.Chan(1)
    for i in range(n):
        c1: ragged.Chan[int] = ragged.Chan(1)
        c2: ragged.Chan[int] = ragged.Chan(0 if close_c2 else 1)
        await c1.send(1)

        async def probe(c1: ragged.Chan[int] = c1, c2: ragged.Chan[int] = c2) -> None:
            k, _ = await ragged.select(c1.recv_case(), c2.recv_case(), default=True)
            await done.send(k != -1)

        ragged.go(probe)
        if close_c2:
            c2.close()
        else:
            await c2.send(1)
        await ragged.select(c1.recv_case(), default=True)
        assert await done.recv(), f"no chan is ready (round {i})"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("close_c2", [False, True], ids=["NonblockSelectRace", "NonblockSelectRace2"])
def test_go_nonblock_select_race(close_c2: bool) -> None:
    """TestNonblockSelectRace / TestNonblockSelectRace2: from the probe's creation on, c1 or c2 is
    always ready, so its non-blocking select never takes default.  1000 rounds (Go's -short)."""
    go_run(_nonblock_select_race, close_c2, 1000)


# ---------------------------------------------------------------- select


@pytest.mark.timeout(120)
def test_go_self_select() -> None:
    """TestSelfSelect (GOMAXPROCS 2): two goroutines select send and receive on the same channel;
    on an unbuffered one a goroutine never receives its own value; nothing deadlocks."""

    async def main() -> None:
        for cap in (0, 10):
            wg = ragged.WaitGroup()
            wg.add(2)
            c: ragged.Chan[int] = ragged.Chan(cap)
            bad: list[int] = []

            async def worker(
                p: int, c: ragged.Chan[int] = c, cap: int = cap, wg: ragged.WaitGroup = wg, bad: list[int] = bad
            ) -> None:
                try:
                    for i in range(1000):
                        if p == 0 or i % 2 == 0:
                            k, v = await ragged.select(c.send_case(p), c.recv_case())
                            recv = k == 1
                        else:
                            k, v = await ragged.select(c.recv_case(), c.send_case(p))
                            recv = k == 0
                        if recv and cap == 0 and v == p:
                            bad.append(p)
                finally:
                    wg.done()

            for p in range(2):
                ragged.go(worker, p)
            await wg.wait()
            assert not bad, f"self receive (cap {cap})"

    go_run(main, procs=2)


@pytest.mark.timeout(120)
def test_go_select_stress() -> None:
    """TestSelectStress (GOMAXPROCS 10): per channel (cap 0, 0, 2, 3) a sender and a receiver of N
    values, plus one goroutine sending N on each in a single select and one receiving N from each
    in a single select, a finished channel's case switched off (nil).  Must not deadlock, and every
    value is accounted for.  N = 1000 (Go: 1e5, -short 1e4)."""
    N = 1000

    async def main() -> None:
        c = [ragged.Chan(0), ragged.Chan(0), ragged.Chan(2), ragged.Chan(3)]
        wg = ragged.WaitGroup()
        wg.add(10)

        async def send_n(k: int) -> None:
            for _ in range(N):
                await c[k].send(0)
            wg.done()

        async def recv_n(k: int) -> None:
            for _ in range(N):
                await c[k].recv()
            wg.done()

        async def select_send() -> None:
            n = [0] * 4
            on = list(c)
            for _ in range(4 * N):
                # Go's case order: 3, 2, 0, 1.
                order = (3, 2, 0, 1)
                k, _ = await ragged.select(*(on[j].send_case(0) if on[j] is not None else None for j in order))
                j = order[k]
                n[j] += 1
                if n[j] == N:
                    on[j] = None
            wg.done()

        async def select_recv() -> None:
            n = [0] * 4
            on = list(c)
            for _ in range(4 * N):
                k, _ = await ragged.select(*(ch.recv_case() if ch is not None else None for ch in on))
                n[k] += 1
                if n[k] == N:
                    on[k] = None
            wg.done()

        for k in range(4):
            ragged.go(send_n, k)
            ragged.go(recv_n, k)
        ragged.go(select_send)
        ragged.go(select_recv)
        await wg.wait()
        assert all(len(ch) == 0 for ch in c)

    go_run(main, procs=10)


@pytest.mark.timeout(120)
def test_go_select_fairness() -> None:
    """TestSelectFairness: a select over two always-ready channels (and two never-ready ones)
    picks each about half the time: within 10 sigma of 5000 in 10000 trials (Go's numbers)."""
    trials = 10000

    async def main() -> tuple[int, int]:
        c1: ragged.Chan[int] = ragged.Chan(trials + 1)
        c2: ragged.Chan[int] = ragged.Chan(trials + 1)
        for _ in range(trials + 1):
            c1.try_send(1)
            c2.try_send(2)
        c3: ragged.Chan[int] = ragged.Chan()
        c4: ragged.Chan[int] = ragged.Chan()
        out: ragged.Chan[int] = ragged.Chan()
        done: ragged.Chan[int] = ragged.Chan()
        wg = ragged.WaitGroup()
        wg.add(1)

        async def chooser() -> None:
            try:
                while True:
                    _, b = await ragged.select(c3.recv_case(), c4.recv_case(), c1.recv_case(), c2.recv_case())
                    k, _ = await ragged.select(out.send_case(b), done.recv_case())
                    if k == 1:
                        return
            finally:
                wg.done()

        ragged.go(chooser)
        cnt1 = cnt2 = 0
        for _ in range(trials):
            b = await out.recv()
            if b == 1:
                cnt1 += 1
            elif b == 2:
                cnt2 += 1
            else:
                raise AssertionError(f"unexpected value {b} on channel")
        done.close()
        await wg.wait()
        return cnt1, cnt2

    cnt1, cnt2 = go_run(main)
    mean = trials * 0.5
    stddev = math.sqrt(trials * 0.5 * (1 - 0.5))
    assert abs(cnt1 - mean) <= 10 * stddev, f"unfair select: in {trials} trials, results were {cnt1}, {cnt2}"


@pytest.mark.timeout(60)
def test_go_chan_send_interface() -> None:
    """TestChanSendInterface: non-blocking sends of objects to a full channel, one case or two."""

    async def main() -> None:
        m = object()
        c: ragged.Chan[object] = ragged.Chan(1)
        await c.send(m)
        assert await ragged.select(c.send_case(m), default=True) == (-1, None)
        assert await ragged.select(c.send_case(m), c.send_case(object()), default=True) == (-1, None)

    go_run(main)


@pytest.mark.timeout(60)
def test_go_pseudo_random_send() -> None:
    """TestPseudoRandomSend: a select between two sends of 1 and 0 on the same channel picks
    both, more than n/10 times each in n = 100 (cap 0 and cap n).  Go's Mutex locked by main and
    unlocked by the receiver is kept (ragged allows it, as Go does)."""

    async def main() -> None:
        n = 100
        for cap in (0, n):
            c: ragged.Chan[int] = ragged.Chan(cap)
            lst = [0] * n
            mu = ragged.Mutex()
            await mu.lock()

            async def reader(c: ragged.Chan[int] = c, lst: list[int] = lst, mu: ragged.Mutex = mu) -> None:
                for i in range(n):
                    await ragged.gosched()
                    lst[i] = await c.recv()
                mu.unlock()

            ragged.go(reader)
            for _ in range(n):
                await ragged.select(c.send_case(1), c.send_case(0))
            await mu.lock()  # wait
            n0 = sum((i + 1) % 2 for i in lst)
            n1 = sum(lst)
            assert n0 > n // 10 and n1 > n // 10, f"want pseudorandom, got {n0} zeros and {n1} ones (chan cap {cap})"

    go_run(main)


@pytest.mark.timeout(120)
def test_go_multi_consumer() -> None:
    """TestMultiConsumer: 23 workers range over one queue (some yielding now and then), a feeder
    fills and closes it, waits for the workers and closes the results; every value arrives
    once.  27183 items (Go: 271828)."""
    nwork, niter = 23, 27183
    pn = [2, 3, 7, 11, 13, 17, 19, 23, 27, 31]

    async def main() -> tuple[int, int, int]:
        q: ragged.Chan[int] = ragged.Chan(nwork * 3)
        r: ragged.Chan[int] = ragged.Chan(nwork * 3)
        wg = ragged.WaitGroup()

        async def worker(w: int) -> None:
            async for v in q:
                if pn[w % len(pn)] == v:
                    await ragged.gosched()  # mess with the fifo-ish nature of range
                await r.send(v)
            wg.done()

        for i in range(nwork):
            wg.add(1)
            ragged.go(worker, i)
        expect = [0]

        async def feeder() -> None:
            for i in range(niter):
                v = pn[i % len(pn)]
                expect[0] += v
                await q.send(v)
            q.close()  # no more work
            await wg.wait()  # workers done
            r.close()  # ... so there can be no more results

        ragged.go(feeder)
        n = s = 0
        async for v in r:
            n += 1
            s += v
        return n, s, expect[0]

    n, s, expect = go_run(main)
    assert (n, s) == (niter, expect), f"expected sum {expect} (got {s}) from {niter} iter (saw {n})"


@pytest.mark.timeout(60)
def test_go_shrink_stack_during_blocked_send() -> None:
    """TestShrinkStackDuringBlockedSend, its channel part: a sender that recurses deeply between
    sends and blocks on an unbuffered channel while the collector runs; every value arrives in
    order.  (No goroutine stack shrinks in ragged: see the module docstring.)"""

    def recurse(n: int) -> int:
        return 0 if n == 0 else 1 + recurse(n - 1)

    async def main() -> None:
        n = 10
        c: ragged.Chan[int] = ragged.Chan()
        done: ragged.Chan[None] = ragged.Chan()

        async def sender() -> None:
            for i in range(n):
                await c.send(i)
                recurse(20)
            await done.send(None)

        ragged.go(sender)
        for i in range(n):
            x = await c.recv()
            assert x == i, f"bad channel read: want {i}, got {x}"
            await ragged.sleep(0.001)
            gc.collect()
        await done.recv()

    go_run(main)


@pytest.mark.timeout(60)
def test_go_select_duplicate_channel() -> None:
    """TestSelectDuplicateChannel: a goroutine queued twice on the same channel by one select,
    woken through another channel, dequeues both entries; the next waiter on that channel is
    the one woken by the next send (it used to corrupt c.recvq in Go)."""

    async def main() -> None:
        c: ragged.Chan[int] = ragged.Chan()
        d: ragged.Chan[int] = ragged.Chan()
        e: ragged.Chan[int] = ragged.Chan()

        async def a() -> None:
            await ragged.select(c.recv_case(), c.recv_case(), d.recv_case())
            await e.send(9)

        ragged.go(a)
        await ragged.sleep(0.001)  # make sure goroutine A gets queued first on c
        got: list[int] = []

        async def b() -> None:
            got.append(await c.recv())

        gb = ragged.go(b)
        await ragged.sleep(0.001)  # make sure goroutine B gets queued on c before continuing
        await d.send(7)  # wake up A, it dequeues itself from c
        assert await e.recv() == 9  # A tells us it's done
        await c.send(8)  # wake up B
        await gb
        assert got == [8]

    go_run(main)


@pytest.mark.timeout(60)
def test_go_select_stack_adjust() -> None:
    """TestSelectStackAdjust, its select part: two goroutines in a 4-case select (one with c and d
    twice), the collector runs, close(d) wakes both through d; each leaves its own state intact.
    (The stack-pointer adjustment it tests has no counterpart in ragged.)"""

    async def main() -> None:
        c: ragged.Chan[list[int]] = ragged.Chan()
        d: ragged.Chan[list[int]] = ragged.Chan()
        ready = [ragged.Chan(), ragged.Chan()]

        async def f(ready: ragged.Chan[bool], dup: bool) -> None:
            await ready.send(True)
            val = [42]
            cx = val
            c2 = c if dup else None
            d2 = d if dup else None
            k, v = await ragged.select(
                c.recv_case(),
                c2.recv_case() if c2 is not None else None,
                d.recv_case(),
                d2.recv_case() if d2 is not None else None,
            )
            if k == 0:
                cx = v
            assert k in (2, 3) and v is None, (k, v)  # woken by close(d)
            assert cx is val and val == [42]
            cx[0] = 43
            assert val == [43]
            await ready.send(True)

        ragged.go(f, ready[0], False)
        ragged.go(f, ready[1], True)
        await ready[0].recv()
        await ready[1].recv()
        await ragged.sleep(0.01)
        gc.collect()
        d.close()
        await ready[0].recv()
        await ready[1].recv()

    go_run(main)
