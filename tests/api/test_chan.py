"""Channels: rendezvous and buffered semantics, FIFO service, close, cancellation,
the classic pipelines (prime sieve, token ring) and races between them."""

from __future__ import annotations

import threading

import pytest
from conftest import wait_until

import ragged
from ragged import Chan, ChanClosed

# ---------------------------------------------------------------- construction


def test_capacity_is_validated() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        Chan(-1)
    for bad in (1.5, "2", None, True):
        with pytest.raises(TypeError, match="capacity"):
            Chan(bad)  # type: ignore[arg-type]
    ch: Chan[int] = Chan(3)
    assert ch.cap == 3 and len(ch) == 0
    assert Chan().cap == 0
    assert "cap=3" in repr(ch)


def test_goroutine_ops_outside_a_goroutine_raise() -> None:
    ch: Chan[int] = Chan(1)
    for coro in (ch.send(1), ch.recv()):
        with pytest.raises(ragged.NotInGoroutine):
            coro.send(None)
        coro.close()


@pytest.mark.timeout(30)
def test_blocking_ops_inside_a_goroutine_raise() -> None:
    ch: Chan[int] = Chan(1)

    async def main() -> None:
        with pytest.raises(ragged.NotInPlainThread, match="await"):
            ch.send_blocking(1)
        with pytest.raises(ragged.NotInPlainThread):
            ch.recv_blocking()

    ragged.run(main, procs=1)


def test_bad_timeouts_are_rejected() -> None:
    ch: Chan[int] = Chan(1)
    with pytest.raises(ValueError, match="NaN"):
        ch.send_blocking(1, timeout=float("nan"))
    with pytest.raises(TypeError):
        ch.recv_blocking(timeout="1")  # type: ignore[arg-type]
    assert len(ch) == 0


# ---------------------------------------------------------------- rendezvous


@pytest.mark.timeout(30)
def test_unbuffered_send_waits_for_a_receiver() -> None:
    ch: Chan[str] = Chan()

    async def sender() -> str:
        await ch.send("x")
        return "sent"

    async def main() -> None:
        g = ragged.go(sender)
        await ragged.sleep(0.05)
        assert not g.done() and g.status == "waiting"
        assert g.waitreason == "chan send"
        assert await ch.recv() == "x"
        assert await g == "sent"

    ragged.run(main, procs=2)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("procs", [1, 4])
def test_rendezvous_preserves_order(procs: int) -> None:
    ch: Chan[int] = Chan()
    n = 2000

    async def sender() -> None:
        for i in range(n):
            await ch.send(i)
        ch.close()

    async def main() -> list[int]:
        ragged.go(sender)
        return [v async for v in ch]

    assert ragged.run(main, procs=procs) == list(range(n))


async def _park_in_turn(make, n: int, reason: str) -> list[ragged.Goroutine]:
    """Start n goroutines one at a time, each parked (on ``reason``) before the next starts."""
    gs = []
    for i in range(n):
        g = ragged.go(make, i)
        while g.status != "waiting":
            await ragged.sleep(0.001)
        assert g.waitreason == reason
        gs.append(g)
    return gs


@pytest.mark.timeout(30)
def test_waiting_senders_are_served_first_in_first_out() -> None:
    ch: Chan[int] = Chan()

    async def sender(i: int) -> None:
        await ch.send(i)

    async def main() -> list[int]:
        gs = await _park_in_turn(sender, 20, "chan send")
        got = [await ch.recv() for _ in gs]
        for g in gs:
            await g
        return got

    assert ragged.run(main, procs=4) == list(range(20))


@pytest.mark.timeout(30)
def test_waiting_receivers_are_served_first_in_first_out() -> None:
    ch: Chan[int] = Chan()

    async def receiver(i: int) -> tuple[int, int]:
        return i, await ch.recv()

    async def main() -> list[tuple[int, int]]:
        gs = await _park_in_turn(receiver, 20, "chan receive")
        for v in range(20):
            await ch.send(100 + v)
        return [await g for g in gs]

    assert ragged.run(main, procs=4) == [(i, 100 + i) for i in range(20)]


# ---------------------------------------------------------------- buffered


@pytest.mark.timeout(30)
def test_buffered_capacity() -> None:
    ch: Chan[int] = Chan(3)

    async def main() -> None:
        for i in range(3):
            await ch.send(i)  # never parks
        assert len(ch) == 3
        g = ragged.go(ch.send, 3)
        await ragged.sleep(0.05)
        assert g.status == "waiting" and g.waitreason == "chan send"
        assert len(ch) == 3
        assert await ch.recv() == 0  # makes room: the parked sender's value joins the tail
        await g
        assert len(ch) == 3
        assert [await ch.recv() for _ in range(3)] == [1, 2, 3]
        assert len(ch) == 0

    ragged.run(main, procs=2)


def test_try_send_and_try_recv_never_block() -> None:
    ch: Chan[int] = Chan(1)
    assert ch.try_recv() == (None, False)
    assert ch.try_send(7) is True
    assert ch.try_send(8) is False
    assert ch.try_recv() == (7, True)
    assert Chan().try_send(1) is False  # unbuffered, nobody waiting
    ch.close()
    with pytest.raises(ChanClosed):
        ch.try_send(1)
    assert ch.try_recv() == (None, False)


# ---------------------------------------------------------------- close


@pytest.mark.timeout(30)
def test_close_drains_buffer_then_reports_closed() -> None:
    ch: Chan[int] = Chan(4)

    async def main() -> None:
        await ch.send(1)
        await ch.send(2)
        ch.close()
        with pytest.raises(ChanClosed, match="send on closed channel"):
            await ch.send(3)
        with pytest.raises(ChanClosed, match="close of closed channel"):
            ch.close()
        assert await ch.recv() == 1
        assert await ch.recv_ok() == (2, True)
        assert await ch.recv_ok() == (None, False)
        with pytest.raises(ChanClosed, match="receive on closed channel"):
            await ch.recv()
        assert [v async for v in ch] == []

    ragged.run(main, procs=1)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("rep", range(3))
def test_close_wakes_every_blocked_receiver_and_sender(rep: int) -> None:
    recv_ch: Chan[int] = Chan()
    send_ch: Chan[int] = Chan(2)
    n = 50

    async def receiver() -> tuple[int | None, bool]:
        return await recv_ch.recv_ok()

    async def sender(i: int) -> str:
        try:
            await send_ch.send(i)
        except ChanClosed:
            return "closed"
        return "sent"

    async def main() -> None:
        await send_ch.send(-1)
        await send_ch.send(-2)
        rs = [ragged.go(receiver) for _ in range(n)]
        ss = [ragged.go(sender, i) for i in range(n)]
        while not all(g.status == "waiting" for g in rs + ss):
            await ragged.sleep(0.001)
        recv_ch.close()
        send_ch.close()
        assert [await g for g in rs] == [(None, False)] * n
        assert [await g for g in ss] == ["closed"] * n
        assert [v async for v in send_ch] == [-1, -2]  # the buffer survives close

    ragged.run(main, procs=4)


@pytest.mark.timeout(30)
def test_close_wakes_blocked_plain_threads() -> None:
    recv_ch: Chan[int] = Chan()
    send_ch: Chan[int] = Chan()
    errors: list[BaseException] = []

    def call(fn, *args) -> None:
        try:
            fn(*args)
        except BaseException as e:  # noqa: BLE001 - the test inspects it
            errors.append(e)

    ts = [threading.Thread(target=call, args=(recv_ch.recv_blocking,)) for _ in range(3)]
    ts += [threading.Thread(target=call, args=(send_ch.send_blocking, i)) for i in range(3)]
    for t in ts:
        t.start()
    wait_until(lambda: len(recv_ch._recvq) == 3 and len(send_ch._sendq) == 3, what="blocked threads")
    recv_ch.close()
    send_ch.close()
    for t in ts:
        t.join(5)
    assert [type(e) for e in errors] == [ChanClosed] * 6


# ---------------------------------------------------------------- cancellation


@pytest.mark.timeout(30)
def test_cancelled_receiver_consumes_nothing() -> None:
    ch: Chan[int] = Chan()

    async def main() -> list:
        a = ragged.go(ch.recv)
        b = ragged.go(ch.recv)
        while not (a.status == b.status == "waiting"):
            await ragged.sleep(0.001)
        a.cancel()
        with pytest.raises(ragged.Cancelled):
            await a
        await ch.send(5)
        return [await b, len(ch._recvq)]

    assert ragged.run(main, procs=2) == [5, 0]


@pytest.mark.timeout(30)
def test_cancelled_sender_sends_nothing() -> None:
    ch: Chan[int] = Chan()

    async def main() -> tuple[int, int]:
        a = ragged.go(ch.send, 1)
        b = ragged.go(ch.send, 2)
        while not (a.status == b.status == "waiting"):
            await ragged.sleep(0.001)
        a.cancel()
        with pytest.raises(ragged.Cancelled):
            await a
        v = await ch.recv()
        await b
        return v, len(ch._sendq)

    assert ragged.run(main, procs=2) == (2, 0)


@pytest.mark.timeout(60)
def test_value_handed_to_a_receiver_survives_a_racing_cancel() -> None:
    """A send that completed to a parked receiver is never undone by a late cancel.

    The cancel lands after the sender's wake-up but before the receiver runs
    again; the receiver must still return the value, and see ``Cancelled`` at
    its next await.
    """
    got: list[int] = []

    async def receiver(ch: Chan[int]) -> None:
        got.append(await ch.recv())
        await ragged.sleep(10)  # the re-posted cancel lands here

    with ragged.Runtime(procs=1) as rt:
        for i in range(100):
            ch: Chan[int] = Chan()
            g = rt.go(receiver, ch)
            wait_until(lambda g=g: g.status == "waiting", what="receiver parked")
            ch.send_blocking(i)
            g.cancel()
            with pytest.raises(ragged.Cancelled):
                g.result(timeout=10)
    assert got == list(range(100))


# ---------------------------------------------------------------- pipelines


async def _generate(ch: Chan[int]) -> None:
    i = 2
    while True:
        await ch.send(i)
        i += 1


async def _filter(src: Chan[int], dst: Chan[int], prime: int) -> None:
    while True:
        v = await src.recv()
        if v % prime:
            await dst.send(v)


@pytest.mark.timeout(60)
def test_prime_sieve_yields_the_first_100_primes() -> None:
    """Go's concurrent prime sieve: one filter goroutine per prime found."""

    async def main() -> list[int]:
        ch: Chan[int] = Chan()
        gs = [ragged.go(_generate, ch)]
        primes = []
        for _ in range(100):
            p = await ch.recv()
            primes.append(p)
            nxt: Chan[int] = Chan()
            gs.append(ragged.go(_filter, ch, nxt, p))
            ch = nxt
        for g in gs:
            g.cancel()
        return primes

    primes = ragged.run(main, procs=4)
    expect = [n for n in range(2, 542) if all(n % d for d in range(2, int(n**0.5) + 1))]
    assert primes == expect and len(primes) == 100 and primes[-1] == 541


@pytest.mark.timeout(60)
def test_ring_of_1000_goroutines_passes_a_token_10_times_around() -> None:
    n, laps = 1000, 10

    async def node(inp: Chan[int], out: Chan[int]) -> int:
        seen = 0
        async for token in inp:
            seen += 1
            await out.send(token + 1)
        return seen

    async def main() -> tuple[int, list[int]]:
        chans: list[Chan[int]] = [Chan() for _ in range(n)]
        gs = [ragged.go(node, chans[i], chans[(i + 1) % n]) for i in range(1, n)]
        token = 0
        for _ in range(laps):
            await chans[1].send(token)
            token = await chans[0].recv()
        for ch in chans[1:]:
            ch.close()
        return token, [await g for g in gs]

    token, seen = ragged.run(main, procs=4)
    assert token == laps * (n - 1)
    assert seen == [laps] * (n - 1)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("cap", [0, 1, 16])
def test_many_producers_and_consumers_lose_and_duplicate_nothing(cap: int) -> None:
    producers, consumers, per = 8, 8, 500

    async def produce(ch: Chan[int], base: int) -> None:
        for i in range(per):
            await ch.send(base + i)

    async def consume(ch: Chan[int]) -> list[int]:
        return [v async for v in ch]

    async def main() -> list[int]:
        ch: Chan[int] = Chan(cap)
        cs = [ragged.go(consume, ch) for _ in range(consumers)]
        ps = [ragged.go(produce, ch, k * per) for k in range(producers)]
        for p in ps:
            await p
        ch.close()
        out: list[int] = []
        for c in cs:
            got = await c
            for k in range(producers):
                mine = [v for v in got if v // per == k]
                assert mine == sorted(mine), f"producer {k}'s values reached one consumer out of order"
            out.extend(got)
        return out

    for _ in range(3):
        assert sorted(ragged.run(main, procs=4)) == list(range(producers * per))
