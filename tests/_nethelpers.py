"""Helpers shared by the ragged.net tests: run a goroutine on a fresh runtime and check nothing is left behind."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import ragged
from ragged import net


def open_sockets() -> int:
    """Sockets this process has open (the runtime's own eventfds are closed when collected)."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return n


def run_clean(main: Callable[..., Any], *args: Any, procs: int = 2) -> Any:
    """Run ``main(*args)`` as a goroutine on a fresh runtime; every goroutine it started must end
    within 5s of it (none left parked on the network)."""
    with ragged.Runtime(procs=procs) as rt:
        g = rt.go(main, *args)
        out = g.result(timeout=40)
        deadline = time.monotonic() + 5
        while any(not x.done() for x in list(rt._sched.allgs.values())):
            assert time.monotonic() < deadline, f"goroutines left behind:\n{rt.dump()}"
            time.sleep(0.01)
        return out


async def echo(c: net.Conn) -> None:
    """Echo what ``c`` reads until end of stream, then close it."""
    async with c:
        while True:
            data = await c.read(4096)
            if not data:
                return
            await c.write(data)


async def serve(ln: net.Listener, handler: Callable[[net.Conn], Any] = echo) -> None:
    """Accept connections on ``ln`` until it is closed, each served by ``handler`` in its own goroutine."""
    while True:
        try:
            c = await ln.accept()
        except ragged.NetClosed:
            return
        ragged.go(handler, c)
