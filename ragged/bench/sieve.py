"""Go's prime sieves (test/chan/sieve1.go, sieve2.go), and a stress run of them.

Both are programs whose ``main`` takes the first 25 primes and returns while
other goroutines are still running, parked, or spawning more goroutines.  As
in Go that must be a clean exit: what the teardown does to those goroutines
(``Cancelled`` at their await, ``RuntimeClosed`` from a ``go()`` made while
the runtime closes) is not an error of the program.

``python -m ragged.bench.sieve --runs 200`` runs each sieve that many times in
a row, each under a fresh ``ragged.run``, and prints the failures (the
interpreter, its build and GIL state are in the first line).  The exit status
is 1 if any run failed or took longer than ``--slow`` seconds to shut down.
"""

from __future__ import annotations

import argparse
import heapq
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any

import ragged
from ragged._core._platform import describe

from .cli import positive

PRIMES = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97]


# ---------------------------------------------------------------- sieve1.go


async def _generate(ch: ragged.Chan[int]) -> None:
    """Send 2, 3, 4, ... to ``ch``."""
    i = 2
    while True:
        await ch.send(i)
        i += 1


async def _filter(inp: ragged.Chan[int], out: ragged.Chan[int], prime: int) -> None:
    """Copy ``inp`` to ``out``, dropping the multiples of ``prime``."""
    async for i in inp:
        if i % prime:
            await out.send(i)


async def _sieve(primes: ragged.Chan[int]) -> None:
    """Daisy-chain a filter goroutine per prime found."""
    ch: ragged.Chan[int] = ragged.Chan()
    ragged.go(_generate, ch)
    while True:
        prime = await ch.recv()
        await primes.send(prime)
        ch1: ragged.Chan[int] = ragged.Chan()
        ragged.go(_filter, ch, ch1, prime)
        ch = ch1


async def sieve1() -> list[int]:
    """sieve1.go's main: take 25 primes and return, leaving the chain running."""
    primes: ragged.Chan[int] = ragged.Chan()
    ragged.go(_sieve, primes)
    return [await primes.recv() for _ in PRIMES]


# ---------------------------------------------------------------- sieve2.go


def _odds() -> ragged.Chan[int]:
    """A channel of the odd numbers from 5, fed by its own goroutine."""
    out: ragged.Chan[int] = ragged.Chan(50)

    async def feed() -> None:
        n = 5
        while True:
            await out.send(n)
            n += 2

    ragged.go(feed)
    return out


def _multiples(p: int) -> ragged.Chan[int]:
    """A channel of the odd multiples of ``p`` from ``p * p``, fed by its own goroutine."""
    out: ragged.Chan[int] = ragged.Chan(10)

    async def feed() -> None:
        n = p * p
        while True:
            await out.send(n)
            n += 2 * p

    ragged.go(feed)
    return out


def _sendproxy(out: ragged.Chan[int]) -> ragged.Chan[int]:
    """A channel whose sends never block: a goroutine buffers them (without bound) for ``out``."""
    proxy: ragged.Chan[int] = ragged.Chan(10)

    async def pump() -> None:
        buf: deque[int] = deque()
        while True:
            # An empty buffer disables the send case (Go's nil channel).
            send = out.send_case(buf[0]) if buf else None
            i, v = await ragged.select(proxy.recv_case(), send)
            if i == 0:
                buf.append(v)
            else:
                buf.popleft()

    ragged.go(pump)
    return proxy


def _sieve2() -> ragged.Chan[int]:
    """sieve2.go's Sieve: an Eratosthenes sieve of odd candidates with a feedback loop of primes."""
    out: ragged.Chan[int] = ragged.Chan(10)
    out.try_send(2)
    out.try_send(3)
    composites: ragged.Chan[int] = ragged.Chan(50)
    primes: ragged.Chan[int] = ragged.Chan(10)
    primes.try_send(3)

    async def merge() -> None:
        # Merge the multiples of every prime into ``composites``, in order.
        h: list[tuple[int, int, ragged.Chan[int]]] = []
        seq = 0
        low = 15
        while True:
            m = _multiples(await primes.recv())
            head = await m.recv()
            while low < head:
                await composites.send(low)
                low, _, ch = heapq.heappop(h)
                seq += 1
                heapq.heappush(h, (await ch.recv(), seq, ch))
            while low == head:
                low, _, ch = heapq.heappop(h)
                seq += 1
                heapq.heappush(h, (await ch.recv(), seq, ch))
            await composites.send(head)
            seq += 1
            heapq.heappush(h, (await m.recv(), seq, m))

    async def candidates_loop() -> None:
        fb = _sendproxy(primes)
        candidates = _odds()
        p = await candidates.recv()
        while True:
            c = await composites.recv()
            while p < c:
                await fb.send(p)
                await out.send(p)
                p = await candidates.recv()
            if p == c:
                p = await candidates.recv()

    ragged.go(merge)
    ragged.go(candidates_loop)
    return out


async def sieve2() -> list[int]:
    """sieve2.go's main: take 25 primes and return while the sieve's goroutines keep spawning."""
    primes = _sieve2()
    return [await primes.recv() for _ in PRIMES]


SIEVES: dict[str, Callable[[], Any]] = {"sieve1": sieve1, "sieve2": sieve2}


# ---------------------------------------------------------------- stress


def run_once(name: str, procs: int, **settings: Any) -> tuple[str | None, float]:
    """One ``ragged.run`` of sieve ``name``: (None or what went wrong, seconds it took)."""
    t = time.monotonic()
    try:
        got = ragged.run(SIEVES[name], procs=procs, **settings)
    except BaseException as err:  # noqa: BLE001 - a failure to report
        return "".join(traceback.format_exception(err)), time.monotonic() - t
    dt = time.monotonic() - t
    return (None if got == PRIMES else f"wrong primes: {got}"), dt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ragged.bench.sieve", description=__doc__)
    ap.add_argument("--runs", type=positive(int), default=200, help="runs of each sieve (default 200)")
    ap.add_argument("--procs", type=positive(int), default=4, help="Ps per run (default 4)")
    ap.add_argument("--slow", type=positive(float), default=2.0, help="a run longer than this fails (seconds)")
    ap.add_argument("--sieve", choices=sorted(SIEVES), action="append", help="which sieve (default: both)")
    args = ap.parse_args(argv)
    print(f"sieve stress: {describe()}; runs={args.runs} procs={args.procs}", flush=True)
    failed = 0
    for name in args.sieve or sorted(SIEVES):
        bad = 0
        times = []
        for i in range(args.runs):
            err, dt = run_once(name, args.procs)
            times.append(dt)
            if err is None and dt > args.slow:
                err = f"took {dt:.2f}s (over --slow {args.slow}s)"
            if err is not None:
                bad += 1
                if bad <= 3:
                    print(f"{name} run {i + 1}: FAILED: {err}", flush=True)
        times.sort()
        print(
            f"{name}: {args.runs - bad}/{args.runs} runs passed in a row"
            if not bad
            else f"{name}: {bad}/{args.runs} runs FAILED",
            f"(run time p50 {times[len(times) // 2] * 1e3:.0f}ms, max {times[-1] * 1e3:.0f}ms)",
            flush=True,
        )
        failed += bad
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
