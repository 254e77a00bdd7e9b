"""select: readiness, fairness, default, after, parked selects, close and cancel."""

from __future__ import annotations

import os
import random
import time

import pytest

import ragged
from ragged import Chan, ChanClosed, select
from ragged._select import _rng

# chi-square critical value, 1 degree of freedom, alpha = 0.001
CHI2_1DF_999 = 10.828


def _seed() -> int:
    """A fresh seed for select's random source (RAGGED_SEED replays one)."""
    seed = int(os.environ.get("RAGGED_SEED", random.randrange(2**32)))
    _rng.seed(seed)
    print(f"select seed: {seed} (replay with RAGGED_SEED={seed})")
    return seed


def test_bad_cases_are_rejected() -> None:
    async def main() -> None:
        with pytest.raises(ValueError, match="at least one case"):
            await select()
        with pytest.raises(TypeError, match="case 1 is Chan"):
            await select(Chan().recv_case(), Chan())  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="default"):
            await select(Chan().recv_case(), default=1)  # type: ignore[arg-type]

    ragged.run(main, procs=1)
    coro = select(default=True)
    with pytest.raises(ragged.NotInGoroutine):
        coro.send(None)
    coro.close()


@pytest.mark.timeout(30)
def test_ready_cases_complete_at_once() -> None:
    async def main() -> None:
        a: Chan[int] = Chan(1)
        b: Chan[int] = Chan(1)
        await a.send(1)
        assert await select(b.recv_case(), a.recv_case()) == (1, 1)
        assert await select(a.recv_case(), b.send_case(9)) == (1, None)
        assert await b.recv() == 9
        b.close()
        assert await select(a.recv_case(), b.recv_case()) == (1, None)  # closed: ready, no value
        assert await select(b.recv_case(with_ok=True)) == (0, (None, False))
        with pytest.raises(ChanClosed, match="send on closed channel"):
            await select(b.send_case(1))

    ragged.run(main, procs=1)


@pytest.mark.timeout(30)
def test_default_returns_at_once_when_nothing_is_ready() -> None:
    async def main() -> None:
        a: Chan[int] = Chan()
        b: Chan[int] = Chan(1)
        await b.send(5)
        assert await select(a.recv_case(), a.send_case(1), default=True) == (-1, None)
        assert await select(default=True) == (-1, None)
        assert await select(None, default=True) == (-1, None)
        assert await select(a.recv_case(), b.recv_case(), default=True) == (1, 5)
        assert len(a._recvq) == len(a._sendq) == 0  # default never enqueues

    ragged.run(main, procs=1)


@pytest.mark.timeout(60)
def test_fairness_between_two_always_ready_channels() -> None:
    """10,000 selects on two ready channels: each chosen 50% (chi-square test)."""
    n = 10_000
    seed = _seed()

    async def main() -> list[int]:
        a: Chan[int] = Chan(1)
        b: Chan[int] = Chan(1)
        counts = [0, 0]
        for _ in range(n):
            a.try_send(0)
            b.try_send(1)
            i, v = await select(a.recv_case(), b.recv_case())
            assert v == i
            counts[i] += 1
        return counts

    counts = ragged.run(main, procs=2)
    chi2 = sum((c - n / 2) ** 2 / (n / 2) for c in counts)
    assert chi2 < CHI2_1DF_999, f"counts {counts}, chi2 {chi2:.2f}, seed {seed}"


@pytest.mark.timeout(60)
def test_fairness_is_uniform_over_the_ready_cases_only() -> None:
    """Of four cases two are ready; a rotating start would favour one of them."""
    n = 6000
    seed = _seed()

    async def main() -> list[int]:
        chans: list[Chan[int]] = [Chan(1) for _ in range(4)]
        for ch in (chans[0], chans[1]):
            ch.close()  # always ready
        counts = [0] * 4
        for _ in range(n):
            i, _v = await select(*(ch.recv_case() for ch in chans))
            counts[i] += 1
        return counts

    counts = ragged.run(main, procs=1)
    assert counts[2] == counts[3] == 0
    chi2 = sum((c - n / 2) ** 2 / (n / 2) for c in counts[:2])
    assert chi2 < CHI2_1DF_999, f"counts {counts}, chi2 {chi2:.2f}, seed {seed}"


@pytest.mark.timeout(30)
def test_parked_select_is_woken_by_either_side() -> None:
    async def main() -> None:
        a: Chan[str] = Chan()
        b: Chan[str] = Chan()
        out: Chan[str] = Chan()

        async def selector() -> tuple[int, object]:
            return await select(a.recv_case(), b.recv_case(), out.send_case("s"))

        for which in range(3):
            g = ragged.go(selector)
            while g.status != "waiting":
                await ragged.sleep(0.001)
            assert g.waitreason == "select"
            if which == 0:
                await a.send("A")
            elif which == 1:
                await b.send("B")
            else:
                assert await out.recv() == "s"
            assert await g == (which, ["A", "B", None][which])
            # the losing cases left no stale waiters behind
            assert len(a._recvq) == len(b._recvq) == len(out._sendq) == 0

    ragged.run(main, procs=2)


@pytest.mark.timeout(30)
def test_select_with_after_times_out() -> None:
    async def main() -> tuple[int, float]:
        never: Chan[int] = Chan()
        t0 = time.monotonic()
        i, v = await select(never.recv_case(), ragged.after(0.05).recv_case())
        assert isinstance(v, float) and v >= t0
        return i, time.monotonic() - t0

    i, waited = ragged.run(main, procs=2)
    assert i == 1 and waited >= 0.045


@pytest.mark.timeout(30)
def test_select_prefers_nothing_but_readiness_over_after() -> None:
    async def main() -> tuple[int, object]:
        ch: Chan[int] = Chan(1)
        ragged.go(ch.send, 3)
        return await select(ch.recv_case(), ragged.after(5).recv_case())

    assert ragged.run(main, procs=2) == (0, 3)


@pytest.mark.timeout(30)
def test_parked_send_case_raises_when_the_channel_closes() -> None:
    async def main() -> None:
        ch: Chan[int] = Chan()
        other: Chan[int] = Chan()
        g = ragged.go(select, other.recv_case(), ch.send_case(1))
        while g.status != "waiting":
            await ragged.sleep(0.001)
        ch.close()
        with pytest.raises(ChanClosed):
            await g
        assert len(other._recvq) == 0

    ragged.run(main, procs=2)


@pytest.mark.timeout(30)
def test_cancelled_select_completes_no_case() -> None:
    async def main() -> None:
        a: Chan[int] = Chan()
        b: Chan[int] = Chan()
        g = ragged.go(select, a.recv_case(), b.send_case(1))
        while g.status != "waiting":
            await ragged.sleep(0.001)
        g.cancel()
        with pytest.raises(ragged.Cancelled):
            await g
        assert len(a._recvq) == len(b._sendq) == 0
        assert await select(b.recv_case(), default=True) == (-1, None)

    ragged.run(main, procs=2)


@pytest.mark.timeout(30)
def test_select_of_only_nil_cases_parks_until_cancelled() -> None:
    async def main() -> None:
        g = ragged.go(select, None, None)
        await ragged.sleep(0.02)
        assert g.status == "waiting"
        g.cancel()
        with pytest.raises(ragged.Cancelled):
            await g

    ragged.run(main, procs=1)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("rep", range(3))
def test_racing_selects_each_value_goes_to_exactly_one(rep: int) -> None:
    """Senders race selects that wait on two channels at once: nothing lost or doubled."""
    seed = _seed()
    per, selectors = 400, 6

    async def selector(a: Chan[int], b: Chan[int], done: Chan[None]) -> list[int]:
        got = []
        while True:
            i, v = await select(a.recv_case(), b.recv_case(), done.recv_case())
            if i == 2:
                return got
            got.append(v)

    async def produce(ch: Chan[int], base: int) -> None:
        for k in range(per):
            await ch.send(base + k)

    async def main() -> list[int]:
        a: Chan[int] = Chan()
        b: Chan[int] = Chan(2)
        done: Chan[None] = Chan()
        ss = [ragged.go(selector, a, b, done) for _ in range(selectors)]
        ps = [ragged.go(produce, a, 0), ragged.go(produce, b, per), ragged.go(produce, a, 2 * per)]
        for p in ps:
            await p
        while len(b):  # buffered values not yet taken
            await ragged.sleep(0.001)
        done.close()
        out: list[int] = []
        for s in ss:
            out.extend(await s)
        return out

    got = ragged.run(main, procs=4)
    assert sorted(got) == list(range(3 * per)), f"seed {seed}"


@pytest.mark.timeout(60)
def test_parked_cases_on_the_same_channel_are_woken_in_random_order() -> None:
    """A select parked with several cases on one channel (two sends of different values) is
    woken through a uniformly random one of them, as in Go, whose enqueue order for one channel
    follows the random poll order (TestPseudoRandomSend).  It used to be always the first."""
    seed = random.randrange(1 << 30)
    _rng.seed(seed)
    n = 400

    async def main() -> list[int]:
        c: Chan[int] = Chan()
        got: list[int] = []

        async def reader() -> None:
            for _ in range(n):
                await ragged.sleep(0)  # let the select below park first
                got.append(await c.recv())

        g = ragged.go(reader)
        for _ in range(n):
            await select(c.send_case(1), c.send_case(0))
        await g
        return got

    got = ragged.run(main, procs=2)
    ones = sum(got)
    assert n / 4 < ones < 3 * n / 4, f"{ones} of {n} wake-ups went to the first case [replay: _rng.seed({seed})]"
