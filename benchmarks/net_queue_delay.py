"""Where an echo round trip waits in the server: the run-queue delay of ragged's poller.

Runs ragged's echo server in this process (``--procs``) under the Go load
generator of ``python -m ragged.bench --net`` (``ragged/bench/netecho.go``;
needs a Go toolchain) and measures, for every wait that parked, the time from
the poll that readied the goroutine to the goroutine resuming.  Prints its
quantiles beside the client's round trips and latencies, and how many
connections the server accepted only once the measured window had begun
(before ``ccb5e01`` the load generator did not wait for that: the
10,000-connection p99 of seconds in RESULTS.md).

    .venv/bin/python benchmarks/net_queue_delay.py --procs 1 --conns 10000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

import ragged
from ragged import _netpoll_sched, net
from ragged._core._park import current_g
from ragged.bench.net_servers import raise_nofile
from ragged.bench.netbench import go_binary


class Probe:
    """Timestamps from the poll's ``mark_ready`` to the resumed ``_NetFD._wait``."""

    def __init__(self) -> None:
        self.readied: dict[int, float] = {}
        self.delays: list[float] = []
        self.accepts: list[float] = []
        self.measuring = False
        self.window_start = 0.0

    def install(self) -> None:
        """Wrap the poll's ``mark_ready`` and ``_NetFD._wait`` in this process (for good)."""
        mark_ready = _netpoll_sched.mark_ready
        wait = net._NetFD._wait
        probe = self

        def stamped_mark_ready(sched: Any, sudogs: list[Any]) -> list[Any]:
            gs = mark_ready(sched, sudogs)
            now = time.monotonic()
            for g in gs:
                probe.readied[id(g)] = now
            return gs

        async def timed_wait(fd: Any, bit: int, timeout: float | None = None) -> bool:
            parked = await wait(fd, bit, timeout)
            t = probe.readied.pop(id(current_g()), None)
            if parked and t is not None and probe.measuring:
                probe.delays.append(time.monotonic() - t)
            return parked

        _netpoll_sched.mark_ready = stamped_mark_ready  # type: ignore[assignment]
        net._NetFD._wait = timed_wait  # type: ignore[method-assign]


def drive(gobin: str, port: int, conns: int, seconds: float, probe: Probe, out: dict[str, Any]) -> None:
    """Run the load generator against ``port``; flip ``probe.measuring`` with its window."""
    cmd = [gobin, "load", f"127.0.0.1:{port}", str(conns), "1", str(seconds), "64"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stderr is not None
    for line in p.stderr:
        if line.startswith("measuring"):
            probe.window_start = time.monotonic()
            probe.measuring = True
            break
    stdout, _ = p.communicate(timeout=seconds + 120)
    probe.measuring = False
    out.update(json.loads(stdout))


def main() -> None:
    """Serve, drive, print the figures; exits the process (the server never returns)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--procs", type=int, default=1)
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    gobin = go_binary(quiet=False)
    if gobin is None:
        raise SystemExit("net_queue_delay: needs a Go toolchain for the load generator (apt-get install golang-go)")
    raise_nofile(25_000)
    probe = Probe()
    probe.install()
    out: dict[str, Any] = {}

    async def handle(c: net.Conn) -> None:
        async with c:
            while data := await c.read(65536):
                await c.write(data)

    async def serve() -> None:
        ln = net.listen("127.0.0.1", 0, backlog=4096)
        threading.Thread(target=drive, args=(gobin, ln.addr[1], args.conns, args.seconds, probe, out)).start()
        while True:
            c = await ln.accept()
            probe.accepts.append(time.monotonic())
            ragged.go(handle, c)

    rt = ragged.Runtime(procs=args.procs)
    rt.go(serve)
    while not out:
        time.sleep(0.1)
    d = sorted(probe.delays)

    def q(f: float) -> float:
        return d[min(len(d) - 1, int(f * len(d)))] * 1e3 if d else 0.0

    late = [t for t in probe.accepts if probe.window_start and t >= probe.window_start]
    build = "GIL" if getattr(sys, "_is_gil_enabled", lambda: True)() else "free-threaded, GIL off"
    print(
        f"Python {sys.version.split()[0]} ({build}), procs={args.procs}, conns={args.conns}: "
        f"{out['roundtrips'] / out['seconds']:.0f} round trips/s, client p50 {out['p50_us'] / 1e3:.0f}ms "
        f"p99 {out['p99_us'] / 1e3:.0f}ms\n"
        f"run-queue delay over {len(d)} waits: p50 {q(0.5):.1f}ms p90 {q(0.9):.1f}ms p99 {q(0.99):.1f}ms "
        f"max {d[-1] * 1e3 if d else 0.0:.1f}ms\n"
        f"accepted {len(probe.accepts)} connections, {len(late)} of them inside the measured window",
        flush=True,
    )
    os._exit(0)  # the server's goroutines are parked on their sockets: nothing to wait for


if __name__ == "__main__":
    main()
