"""Plain threads and goroutines through channels: send_blocking / recv_blocking,
timeouts that race hand-offs, deadlock reporting to blocked threads, and the
100,000-item threads -> goroutines -> thread pipeline."""

from __future__ import annotations

import random
import threading
import time

import pytest
from conftest import wait_until

import ragged
from ragged import Chan, ChanClosed


@pytest.mark.timeout(120)
def test_100k_items_threads_to_goroutines_and_back() -> None:
    """4 producer threads -> goroutine workers -> one consumer thread; nothing lost or doubled."""
    producers, per, workers = 4, 25_000, 8
    inbox: Chan[int] = Chan(256)
    outbox: Chan[tuple[int, int]] = Chan(256)
    received: list[tuple[int, int]] = []

    def produce(k: int) -> None:
        for i in range(k * per, (k + 1) * per):
            inbox.send_blocking(i)

    def consume() -> None:
        while True:
            try:
                received.append(outbox.recv_blocking())
            except ChanClosed:
                return

    async def worker(wid: int, wg: ragged.WaitGroup) -> None:
        try:
            async for v in inbox:
                await outbox.send((v, wid))
        finally:
            wg.done()

    async def closer(wg: ragged.WaitGroup) -> None:
        await wg.wait()
        outbox.close()

    with ragged.Runtime(procs=4) as rt:
        wg = ragged.WaitGroup()
        wg.add(workers)
        gs = [rt.go(worker, w, wg) for w in range(workers)]
        rt.go(closer, wg)
        consumer = threading.Thread(target=consume)
        consumer.start()
        ts = [threading.Thread(target=produce, args=(k,)) for k in range(producers)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        inbox.close()
        consumer.join(60)
        assert not consumer.is_alive()
        for g in gs:
            g.result(timeout=10)
    values = sorted(v for v, _ in received)
    assert len(values) == producers * per
    assert values == list(range(producers * per)), "items were lost or duplicated"
    assert len({w for _, w in received}) > 1  # the work was spread over goroutines


@pytest.mark.timeout(30)
def test_blocking_timeouts_leave_nothing_behind() -> None:
    ch: Chan[int] = Chan()
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match="chan receive"):
        ch.recv_blocking(timeout=0.02)
    with pytest.raises(TimeoutError, match="chan send"):
        ch.send_blocking(1, timeout=0.02)
    assert time.monotonic() - t0 >= 0.039
    assert len(ch._recvq) == len(ch._sendq) == 0
    assert ch.try_recv() == (None, False)  # the timed-out send did not happen
    buf: Chan[int] = Chan(1)
    buf.send_blocking(1, timeout=0)  # room: never waits
    with pytest.raises(TimeoutError):
        buf.send_blocking(2, timeout=0)
    assert buf.recv_blocking(timeout=0) == 1


@pytest.mark.timeout(60)
@pytest.mark.parametrize("rep", range(3))
def test_timeouts_racing_hand_offs_are_exact(rep: int) -> None:
    """Threads send with tiny timeouts while goroutines receive: a send either
    returned (the value arrived exactly once) or timed out (it never arrived)."""
    seed = random.randrange(2**32)
    ch: Chan[int] = Chan()
    sent: list[list[int]] = [[] for _ in range(3)]

    def produce(k: int) -> None:
        rnd = random.Random(seed + k)
        for i in range(k * 1000, k * 1000 + 400):
            try:
                ch.send_blocking(i, timeout=rnd.choice((0, 1e-5, 1e-4, 1e-3)))
                sent[k].append(i)
            except TimeoutError:
                pass

    async def receive(out: list[int]) -> None:
        while True:
            i, v = await ragged.select(ch.recv_case(with_ok=True), ragged.after(0.0002).recv_case())
            if i == 0:
                if not v[1]:
                    return
                out.append(v[0])

    with ragged.Runtime(procs=2) as rt:
        outs: list[list[int]] = [[] for _ in range(3)]
        gs = [rt.go(receive, out) for out in outs]
        ts = [threading.Thread(target=produce, args=(k,)) for k in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        ch.close()
        for g in gs:
            g.result(timeout=10)
    got = sorted(v for out in outs for v in out)
    assert got == sorted(v for s in sent for v in s), f"seed {seed}"


@pytest.mark.timeout(30)
def test_deadlock_wakes_a_blocked_thread() -> None:
    """A thread blocked on a channel the runtime knows about is told about a deadlock."""
    ch: Chan[int] = Chan()
    with ragged.Runtime(procs=1, detect_deadlock=True) as rt:
        g = rt.go(ch.recv)  # parks, and binds ch to rt
        wait_until(lambda: g.status == "waiting", what="goroutine parked")
        other: Chan[int] = Chan()
        sender = rt.go(other.send, 1)
        wait_until(lambda: sender.status == "waiting", what="second goroutine parked")
        with pytest.raises(ragged.Deadlock, match="all goroutines are asleep"):
            other.send_blocking(2)  # nobody will ever receive
        g.cancel()
        sender.cancel()


@pytest.mark.timeout(30)
def test_thread_feeds_a_goroutine_and_collects_its_answer() -> None:
    requests: Chan[int] = Chan()
    replies: Chan[int] = Chan()

    async def server() -> None:
        async for v in requests:
            await replies.send(v * 2)
        replies.close()

    with ragged.Runtime(procs=2) as rt:
        g = rt.go(server)
        answers = []
        for i in range(200):
            requests.send_blocking(i, timeout=10)
            answers.append(replies.recv_blocking(timeout=10))
        requests.close()
        with pytest.raises(ChanClosed):
            replies.recv_blocking(timeout=10)
        g.result(timeout=10)
    assert answers == [2 * i for i in range(200)]
