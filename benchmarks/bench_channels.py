"""Channel benchmarks: ping-pong and a 1,000-goroutine token ring,, beside their peers.

What it measures, all in one process run, repetitions interleaved across
implementations (rep 1 in one order, rep 2 in the reverse, ...) so that a
noisy neighbour hits every side alike:

1. Ping-pong: two goroutines and two unbuffered channels; one sends a value,
   the other echoes it back: round trips per second, and the p99 latency of
   one round trip.  Peers: two asyncio tasks with two ``asyncio.Queue(1)``;
   two threads with two ``queue.Queue(1)``; two greenlets with two
   ``gevent.queue.Channel`` (unbuffered) if gevent is installed.  ragged on
   procs=1 is the like-for-like figure (asyncio and gevent are one thread);
   procs=2 shows the cost of waking a goroutine on another thread.
2. Ring: 1,000 goroutines in a ring of unbuffered channels pass a token 10
   times around (10,000 hops): hops per second, and the p99 of one lap's
   time.  Spawning the ring is not timed.  Same peers (1,000 tasks / threads
   / greenlets).  ragged on procs=4 (as the test does) and procs=1.

Every figure is the median over ``--runs`` repetitions; ratios are
ragged / peer on the medians, so > 1 means ragged is faster.

Run it::

    .venv/bin/python benchmarks/bench_channels.py            # full run (~1 minute on 2 cores)
    .venv/bin/python benchmarks/bench_channels.py --quick    # smoke run
    .venv/bin/python benchmarks/bench_channels.py --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import json
import platform
import queue
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ragged
from ragged import Chan
from ragged.bench.peer_cases import (
    _aio_pingpong,
    _gevent_pingpong,
    _rg_pingpong,
    _start_thread,
    _thread_pingpong,
)

try:
    import gevent
    import gevent.queue
except ImportError:  # pragma: no cover - gevent is optional (the `peers` extra)
    gevent = None

perf = time.perf_counter

# One measurement: (rate per second, list of per-unit latencies in seconds).
Result = tuple[float, list[float]]


def p99(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))]


# ---------------------------------------------------------------- ping-pong
#
# The workloads are the peers benchmark's (ragged.bench.peer_cases); they
# return {"value": round trips/s, "ops": [round-trip seconds]}.


def _result(out: dict[str, Any]) -> Result:
    return out["value"], out["ops"]


def ragged_pingpong(n: int, procs: int) -> Result:
    return _result(ragged.run(_rg_pingpong, n, procs=procs))


def asyncio_pingpong(n: int) -> Result:
    return _result(_aio_pingpong(n))


def thread_pingpong(n: int) -> Result:
    return _result(_thread_pingpong(n))


def gevent_pingpong(n: int) -> Result:
    return _result(_gevent_pingpong(n))


# ---------------------------------------------------------------- ring


async def _ragged_ring(size: int, laps: int) -> Result:
    chans: list[Chan[int]] = [Chan() for _ in range(size)]

    async def node(inp: Chan[int], out: Chan[int]) -> None:
        async for v in inp:
            await out.send(v + 1)

    for i in range(1, size):
        ragged.go(node, chans[i], chans[(i + 1) % size])
    lap_times = []
    t0 = perf()
    for _ in range(laps):
        t = perf()
        await chans[1].send(0)
        await chans[0].recv()
        lap_times.append(perf() - t)
    rate = size * laps / (perf() - t0)
    for ch in chans[1:]:
        ch.close()
    return rate, lap_times


def ragged_ring(size: int, laps: int, procs: int) -> Result:
    return ragged.run(_ragged_ring, size, laps, procs=procs)


def asyncio_ring(size: int, laps: int) -> Result:
    async def main() -> Result:
        qs: list[asyncio.Queue[int | None]] = [asyncio.Queue(1) for _ in range(size)]

        async def node(inp: asyncio.Queue[int | None], out: asyncio.Queue[int | None]) -> None:
            while (v := await inp.get()) is not None:
                await out.put(v + 1)

        tasks = [asyncio.create_task(node(qs[i], qs[(i + 1) % size])) for i in range(1, size)]
        lap_times = []
        t0 = perf()
        for _ in range(laps):
            t = perf()
            await qs[1].put(0)
            await qs[0].get()
            lap_times.append(perf() - t)
        rate = size * laps / (perf() - t0)
        for q in qs[1:]:
            await q.put(None)
        await asyncio.gather(*tasks)
        return rate, lap_times

    return asyncio.run(main())


def _blocking_ring(size: int, laps: int, make_q: Callable[[], Any], start: Callable[..., Any]) -> Result:
    """The ring for blocking queues: threads (queue.Queue) or greenlets (gevent Channel).

    ``start(fn)`` runs ``fn()`` on a new thread or greenlet and returns something to ``join()``.
    """
    qs = [make_q() for _ in range(size)]

    def node(inp: Any, out: Any) -> None:
        while (v := inp.get()) is not None:
            out.put(v + 1)

    workers = [start(functools.partial(node, qs[i], qs[(i + 1) % size])) for i in range(1, size)]
    lap_times = []
    t0 = perf()
    for _ in range(laps):
        t = perf()
        qs[1].put(0)
        qs[0].get()
        lap_times.append(perf() - t)
    rate = size * laps / (perf() - t0)
    for q in qs[1:]:
        q.put(None)
    for w in workers:
        w.join()
    return rate, lap_times


def thread_ring(size: int, laps: int) -> Result:
    return _blocking_ring(size, laps, lambda: queue.Queue(1), _start_thread)


def gevent_ring(size: int, laps: int) -> Result:
    return _blocking_ring(size, laps, gevent.queue.Channel, gevent.spawn)


# ---------------------------------------------------------------- driver


def measure(cases: dict[str, Callable[[], Result]], runs: int) -> dict[str, dict[str, float]]:
    """Run every case ``runs`` times, interleaved; median rate and p99 latency per case."""
    rates: dict[str, list[float]] = {k: [] for k in cases}
    lats: dict[str, list[float]] = {k: [] for k in cases}
    names = list(cases)
    for r in range(runs):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            gc.collect()
            rate, lat = cases[name]()
            rates[name].append(rate)
            lats[name].extend(lat)
    return {
        k: {"median": statistics.median(rates[k]), "worst": min(rates[k]), "p99_us": p99(lats[k]) * 1e6} for k in cases
    }


def table(title: str, unit: str, lat_label: str, res: dict[str, dict[str, float]], ours: list[str]) -> str:
    peers = [k for k in res if k not in ours]
    lines = [
        f"### {title}",
        "",
        f"| implementation | median {unit} | worst run {unit} | p99 {lat_label} (µs) |",
        "|---|---:|---:|---:|",
    ]
    for k, v in res.items():
        lines.append(f"| {k} | {v['median']:,.0f} | {v['worst']:,.0f} | {v['p99_us']:,.1f} |")
    lines += ["", "| ratio (median rate, > 1: ragged faster) | " + " | ".join(peers) + " |"]
    lines.append("|---|" + "---:|" * len(peers))
    for o in ours:
        cells = [f"{res[o]['median'] / res[p]['median']:.2f}x" for p in peers]
        lines.append(f"| {o} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, 3 runs (smoke test)")
    ap.add_argument("--runs", type=int, default=None, help="repetitions per case (default 7; 3 with --quick)")
    ap.add_argument("--json", type=str, default=None, help="also write the figures to this JSON file")
    args = ap.parse_args()
    runs = args.runs or (3 if args.quick else 7)
    n_pp = 2_000 if args.quick else 20_000
    size, laps = 1000, (2 if args.quick else 10)

    pp: dict[str, Callable[[], Result]] = {
        "ragged procs=1": lambda: ragged_pingpong(n_pp, 1),
        "ragged procs=2": lambda: ragged_pingpong(n_pp, 2),
        "asyncio.Queue": lambda: asyncio_pingpong(n_pp),
        "threading + queue.Queue": lambda: thread_pingpong(n_pp),
    }
    ring: dict[str, Callable[[], Result]] = {
        "ragged procs=4": lambda: ragged_ring(size, laps, 4),
        "ragged procs=1": lambda: ragged_ring(size, laps, 1),
        "asyncio.Queue": lambda: asyncio_ring(size, laps),
        "threading + queue.Queue": lambda: thread_ring(size, laps),
    }
    if gevent is not None:
        pp["gevent Channel"] = lambda: gevent_pingpong(n_pp)
        ring["gevent Channel"] = lambda: gevent_ring(size, laps)

    gv = f"gevent {gevent.__version__}" if gevent is not None else "gevent not installed (skipped)"
    print(f"# Python {platform.python_version()} on {platform.machine()}, {gv}; {runs} runs per case")
    print(f"# ragged imported from {Path(ragged.__file__).parent}\n")
    res_pp = measure(pp, runs)
    print(
        table(
            f"Ping-pong: {n_pp:,} round trips per run (unbuffered)",
            "round trips/s",
            "round trip",
            res_pp,
            ["ragged procs=1", "ragged procs=2"],
        )
    )
    print()
    res_ring = measure(ring, runs)
    print(
        table(
            f"Ring: {size:,} goroutines, token {laps} times around ({size * laps:,} hops per run)",
            "hops/s",
            "lap",
            res_ring,
            ["ragged procs=4", "ragged procs=1"],
        )
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"python": sys.version, "runs": runs, "pingpong": res_pp, "ring": res_ring}, f, indent=2)


if __name__ == "__main__":
    main()
