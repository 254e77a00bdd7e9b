"""The echo servers of ``python -m ragged.bench --net``, one per process, and a Python load generator.

``python -m ragged.bench.net_servers serve KIND [PROCS]`` starts one server on
127.0.0.1 and prints its port; it serves until killed.  KIND is one of
``ragged`` (the network poller), ``ragged-syscall`` (blocking sockets through
``ragged.syscall``: a thread per waiting connection), ``asyncio`` (streams),
``uvloop`` (the same on uvloop), ``gevent`` and ``threads``
(``socketserver.ThreadingTCPServer``).  Every server echoes what it reads.

``ragged-tls`` and ``asyncio-tls`` serve over TLS with the certificate named by
``RAGGED_BENCH_CERT`` and ``RAGGED_BENCH_KEY``.

``python -m ragged.bench.net_servers load ADDR CONNS WARMUP SECONDS SIZE [CAFILE]``
is the load generator used when no Go toolchain is installed, and for the TLS
servers (over TLS, trusting CAFILE); the Go one, ``netecho.go``, is preferred
for plain TCP: a Python client saturates a core before a good server does.
Both print the same JSON.
"""

from __future__ import annotations

import json
import resource
import socket
import sys
import time
from typing import Any

BUF = 4096


def raise_nofile(n: int) -> None:
    """Raise RLIMIT_NOFILE to ``n`` descriptors if allowed (the soft limit to the hard one, else)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= n:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, max(hard, n)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _listener() -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(4096)
    return s


def _ready(port: int) -> None:
    print(port, flush=True)


def _server_ssl() -> Any:
    """The server TLS context of a ``*-tls`` server: the certificate and key named by
    ``RAGGED_BENCH_CERT`` / ``RAGGED_BENCH_KEY`` (the driver makes them)."""
    import os
    import ssl

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(os.environ["RAGGED_BENCH_CERT"], os.environ["RAGGED_BENCH_KEY"])
    return ctx


def serve_ragged(procs: int, edge: bool = True, tls: bool = False) -> None:
    """ragged on its poller: edge-triggered epoll (Linux's default), or with
    ``edge=False`` the level-triggered ``selectors`` one other platforms use;
    ``tls``: every connection over TLS."""
    import ragged
    from ragged._core import _netpoll_sched
    from ragged._core._netpoll_selectors import SelectorsBackend

    if not edge:
        _netpoll_sched.TheBackend = SelectorsBackend

    async def handle(c: ragged.net.Conn) -> None:
        async with c:
            while True:
                data = await c.read(BUF)
                if not data:
                    return
                await c.write(data)

    async def main() -> None:
        ln = ragged.net.listen("127.0.0.1", 0, backlog=4096, ssl=_server_ssl() if tls else None)
        _ready(ln.addr[1])
        while True:
            c = await ln.accept()
            ragged.go(handle, c)

    ragged.run(main, procs=procs)


def serve_ragged_syscall(procs: int) -> None:
    import ragged

    async def handle(s: socket.socket) -> None:
        with s:
            while True:
                data = await ragged.syscall(s.recv, BUF)
                if not data:
                    return
                await ragged.syscall(s.sendall, data)

    async def main() -> None:
        ln = _listener()
        _ready(ln.getsockname()[1])
        while True:
            s, _ = await ragged.syscall(ln.accept)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            ragged.go(handle, s)

    ragged.run(main, procs=procs, max_threads=20000)


def serve_asyncio(use_uvloop: bool, tls: bool = False) -> None:
    import asyncio

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(BUF)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def main() -> None:
        ctx = _server_ssl() if tls else None
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096, ssl=ctx)
        _ready(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    if use_uvloop:
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


def echo_blocking(s: Any, _addr: Any = None) -> None:
    """The echo loop of the servers with blocking sockets (gevent's cooperative ones, and threads)."""
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        data = s.recv(BUF)
        if not data:
            return
        s.sendall(data)


def serve_gevent() -> None:
    from gevent.server import StreamServer

    server = StreamServer(("127.0.0.1", 0), echo_blocking, backlog=4096)
    server.start()
    _ready(server.server_port)
    server.serve_forever()


def serve_threads() -> None:
    import socketserver
    import threading

    threading.stack_size(256 * 1024)  # 10,000 threads with the default 8MB stacks would reserve 80GB

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            echo_blocking(self.request)

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 4096

    with Server(("127.0.0.1", 0), Handler) as server:
        _ready(server.server_address[1])
        server.serve_forever()


def load(addr: str, conns: int, warmup: float, seconds: float, size: int, cafile: str | None = None) -> dict[str, Any]:
    """The Python load generator (asyncio): ``conns`` connections, one request in flight each;
    over TLS, trusting ``cafile``, when it is given."""
    import asyncio
    import ssl

    host, port = addr.rsplit(":", 1)
    if not host.startswith("127."):
        raise SystemExit("load: loopback addresses only")
    samples: list[float] = []
    state = {"measuring": False, "stop": False, "rts": 0, "errors": 0, "connected": 0}

    async def client(sem: asyncio.Semaphore, start: asyncio.Event) -> None:
        async with sem:
            try:
                ctx = ssl.create_default_context(cafile=cafile) if cafile else None
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, int(port), ssl=ctx, server_hostname="localhost" if ctx else None), 30
                )
            except (TimeoutError, OSError):
                state["errors"] += 1
                return
        msg = b"x" * size
        try:  # one round trip first: the server has accepted the connection (see netecho.go)
            writer.write(msg)
            await asyncio.wait_for(reader.readexactly(size), 30)
        except (TimeoutError, OSError, asyncio.IncompleteReadError):
            state["errors"] += 1
            writer.close()
            return
        state["connected"] += 1
        await start.wait()
        try:
            while not state["stop"]:
                t0 = time.perf_counter()
                writer.write(msg)
                await reader.readexactly(size)
                if state["measuring"]:
                    state["rts"] += 1
                    if len(samples) < 200_000:
                        samples.append(time.perf_counter() - t0)
        except (OSError, asyncio.IncompleteReadError):
            state["errors"] += 1
        finally:
            writer.close()

    async def main() -> dict[str, Any]:
        sem = asyncio.Semaphore(256)
        start = asyncio.Event()
        tasks = [asyncio.ensure_future(client(sem, start)) for _ in range(conns)]
        while state["connected"] + state["errors"] < conns:
            await asyncio.sleep(0.01)
        print("connected", state["connected"], file=sys.stderr, flush=True)
        start.set()
        await asyncio.sleep(warmup)
        state["measuring"] = True
        print("measuring", file=sys.stderr, flush=True)  # the driver samples the server now
        t0 = time.perf_counter()
        await asyncio.sleep(seconds)
        state["measuring"] = False
        elapsed = time.perf_counter() - t0
        state["stop"] = True
        await asyncio.wait(tasks, timeout=15)
        samples.sort()
        pick = (lambda q: samples[min(len(samples) - 1, int(q * len(samples)))] * 1e6) if samples else (lambda q: 0.0)
        return {
            "roundtrips": state["rts"],
            "seconds": elapsed,
            "p50_us": pick(0.50),
            "p99_us": pick(0.99),
            "errors": state["errors"],
            "connected": state["connected"],
            "client": f"python {sys.version.split()[0]} asyncio",
        }

    return asyncio.run(main())


SERVERS = (
    "ragged",
    "ragged-level",
    "ragged-syscall",
    "ragged-tls",
    "asyncio",
    "asyncio-tls",
    "uvloop",
    "gevent",
    "threads",
)


def exit_with_parent() -> None:
    """A server must not outlive the benchmark that started it (killed on a timeout, say).

    Linux's ``PR_SET_PDEATHSIG``: no thread of our own, so the server's thread
    count stays what it is.  Elsewhere a no-op.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


def main(argv: list[str]) -> None:
    raise_nofile(25_000)
    if len(argv) >= 2 and argv[0] == "serve" and argv[1] in SERVERS:
        exit_with_parent()
        kind = argv[1]
        procs = int(argv[2]) if len(argv) > 2 else 1
        if kind in ("ragged", "ragged-level", "ragged-tls"):
            serve_ragged(procs, edge=kind != "ragged-level", tls=kind == "ragged-tls")
        elif kind == "ragged-syscall":
            serve_ragged_syscall(procs)
        elif kind in ("asyncio", "uvloop", "asyncio-tls"):
            serve_asyncio(kind == "uvloop", tls=kind == "asyncio-tls")
        elif kind == "gevent":
            serve_gevent()
        else:
            serve_threads()
    elif len(argv) in (6, 7) and argv[0] == "load":
        cafile = argv[6] if len(argv) == 7 else None
        print(json.dumps(load(argv[1], int(argv[2]), float(argv[3]), float(argv[4]), int(argv[5]), cafile)))
    else:
        raise SystemExit(f"usage: serve {{{','.join(SERVERS)}}} [PROCS] | load ADDR CONNS WARMUP SECONDS SIZE [CAFILE]")


if __name__ == "__main__":
    main(sys.argv[1:])
