"""Stress: many goroutines reading, writing, cancelling, timing out and closing at random.

No lost wake-up: every goroutine that parks on the poller is readied (data,
deadline, close) or cancelled, so every actor finishes; afterwards the poller
holds nothing but what is still open.  Each run prints its seed on failure;
replay with ``RAGGED_NET_STRESS_SEED=<seed>``.
"""

from __future__ import annotations

import os
import random
import socket
import time

import pytest
from conftest import wait_until

import ragged
from ragged import net

# Every test runs on each kind of poller (``poller_kind``: edge- and level-triggered).
pytestmark = pytest.mark.usefixtures("poller_kind")

ROUNDS = 3
ACTORS = 24
OPS = 40


async def wait_parked(g: ragged.Goroutine) -> None:
    while not (g.done() or (g.status == "waiting" and "IO wait" in repr(g))):
        await ragged.sleep(0.0005)


def new_pair() -> tuple[net.Conn, net.Conn]:
    a, b = socket.socketpair()
    return net.Conn(a), net.Conn(b)


async def actor(seed: int) -> dict[str, int]:
    """One socketpair and a random sequence of operations on it, each checked."""
    rng = random.Random(seed)
    counts: dict[str, int] = {}  # this actor's own: the actors run in parallel on free-threaded builds
    a, b = new_pair()
    for _ in range(OPS):
        op = rng.choice(("echo", "echo", "cancel", "deadline", "close", "move-deadline"))
        if op == "echo":
            msg = rng.randbytes(rng.randint(1, 3000))

            async def bounce(b: net.Conn, n: int) -> None:
                await b.write(await b.read_exactly(n))

            g = ragged.go(bounce, b, len(msg))
            await a.write(msg)
            assert await a.read_exactly(len(msg)) == msg
            await g
        elif op == "cancel":
            g = ragged.go(a.read, 10)
            if rng.random() < 0.5:
                await wait_parked(g)
            else:
                await ragged.gosched()
            g.cancel()
            try:
                await g
                raise AssertionError("a read with no data returned")
            except ragged.Cancelled:
                pass
        elif op == "deadline":
            a.set_read_deadline(time.monotonic() + rng.random() * 0.003)
            try:
                await a.read(10)
                raise AssertionError("a read with no data returned")
            except ragged.IOTimeout:
                pass
            a.set_read_deadline(None)
        elif op == "move-deadline":
            g = ragged.go(a.read, 10)
            await wait_parked(g)
            a.set_read_deadline(time.monotonic() - 1)
            try:
                await g
            except ragged.IOTimeout:
                pass
            a.set_read_deadline(None)
        else:  # close while a reader (and maybe a writer) waits
            r = ragged.go(a.read, 10)
            w = ragged.go(b.read, 10)
            if rng.random() < 0.7:
                await wait_parked(r)
            a.close()
            b.close()
            for g in (r, w):
                try:
                    got = await g
                except ragged.NetClosed:
                    continue
                # A read already past its turn when the close came may finish: it sees
                # the other end's close as end of stream (in Go too).
                assert got == b"", f"a read on a closed pair returned {got!r}"
            a, b = new_pair()
        counts[op] = counts.get(op, 0) + 1
    a.close()
    b.close()
    return counts


@pytest.mark.timeout(300)
@pytest.mark.parametrize("procs", [1, 2, 4])
def test_random_reads_writes_cancels_and_closes_lose_no_wakeup(procs: int) -> None:
    base = int(os.environ.get("RAGGED_NET_STRESS_SEED", "0")) or random.randrange(1 << 30)
    for r in range(ROUNDS):
        seed = base + r
        done = 0
        with ragged.Runtime(procs=procs) as rt:
            gs = [rt.go(actor, seed * 1000 + i, name=f"actor{i}") for i in range(ACTORS)]
            for g in gs:
                try:
                    done += sum(g.result(timeout=30).values())
                except BaseException as e:
                    raise AssertionError(f"actor failed (seed {seed}, procs {procs}): {e!r}\n{rt.dump()}") from e
            np = rt._sched.netpoll
            leftover = [pd for pd in np.pds.values() if not pd.owner.closed]
            assert not leftover, f"seed {seed}: open poll descriptors left: {leftover}"
            assert not np.pds, f"seed {seed}: closed connections still known to the poller: {np.pds}"
            assert np.nregistered == 0, f"seed {seed}: {np.nregistered} fds still registered"
            wait_until(lambda: not rt._sched.allgs, 5, f"seed {seed}: every goroutine to exit")
        assert done == ACTORS * OPS, (seed, done)
