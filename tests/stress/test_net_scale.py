"""10,000 idle connections, plain and TLS: the server holds at most procs + 4 threads, and close() frees everything.

The clients live in a child process (as a real load would), so this process
holds only the server's 10,000 descriptors; RLIMIT_NOFILE is raised to what
is needed in both processes (``resource.setrlimit``).  Over TLS each idle
connection has done its handshake (the server's runs in the goroutine's
first read) and parks in the read that follows.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import ragged
from ragged import net
from ragged.bench.netcerts import have_openssl, make_certs

N = 10_000

CLIENTS = textwrap.dedent(
    """
    import resource, socket, ssl, sys
    n, port, ca = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, n + 100)), hard))
    ctx = ssl.create_default_context(cafile=ca) if ca else None
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        socks.append(ctx.wrap_socket(s, server_hostname="localhost") if ctx else s)
    print("connected", flush=True)
    sys.stdin.readline()  # hold them open (idle) until told
    """
)


def raise_nofile(n: int) -> tuple[int, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 200
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return soft, hard


def fds_but_notes() -> int:
    """Open fds other than eventfds.  The runtime's notes are eventfds on the free-threaded build,
    closed when the runtime is collected, not by close(); the poller's own are checked by name."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}") != "anon_inode:[eventfd]"
        except OSError:
            pass
    return n


def server_threads() -> int:
    """Threads of this process, both as Python sees them and as the kernel does."""
    return max(threading.active_count(), len(os.listdir("/proc/self/task")))


@pytest.mark.timeout(300)
@pytest.mark.parametrize("procs", [2])
@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
def test_10k_idle_connections_few_threads_and_close_frees_everything(procs: int, tls: bool, tmp_path) -> None:
    ctx, ca = None, ""
    if tls:
        if not have_openssl():
            pytest.skip("the openssl command is not installed (it makes the test certificates)")
        certs = make_certs(tmp_path)
        ctx, ca = certs.server_context(), str(certs.ca)
    old = raise_nofile(N)
    fds_before = fds_but_notes()
    threads_before = server_threads()
    rt = ragged.Runtime(procs=procs)
    child = None
    try:
        ln = net.listen("127.0.0.1", 0, backlog=4096, ssl=ctx)
        conns: list[net.Conn] = []

        async def idle(c: net.Conn) -> None:
            async with c:
                await c.read(1)  # parks: the client never writes

        async def acceptor() -> None:
            while True:
                c = await ln.accept()
                conns.append(c)
                ragged.go(idle, c, name="conn")

        rt.go(acceptor, name="acceptor")
        child = subprocess.Popen(
            [sys.executable, "-c", CLIENTS, str(N), str(ln.addr[1]), ca],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout.readline().strip() == "connected"
        deadline = time.monotonic() + 120
        while sum(1 for g in list(rt._sched.allgs.values()) if g.waitreason == "IO wait read") < N + 1:
            assert time.monotonic() < deadline, "the connections never all parked"
            time.sleep(0.05)
        threads = server_threads()
        assert threads - threads_before <= procs + 3, (threads, threads_before, rt.dump()[:2000])
        # An idle M goes on the idle list together with its P (findrunnable),
        # so no wakep starts a thread for work an M is about to wait for.
        m = rt.metrics()
        why = {k: m[k] for k in ("threads_started", "syscall_handoffs", "async_preemptions")}
        assert len(rt._sched.allm) <= procs + 1, why
        gs = list(rt._sched.allgs.values())
        np = rt._sched.netpoll
    finally:
        rt.close()
        if child is not None:
            child.stdin.close()
            child.stdout.close()
            child.wait(timeout=30)
    assert len(gs) == N + 1 and all(g.done() for g in gs)  # all released
    assert all(c.closed and c._sock.fileno() == -1 for c in conns)
    assert ln.closed  # closed by the runtime's close
    assert np.closed and np.brk_note.fileno() == -1  # the poller's break note is closed
    assert fds_but_notes() <= fds_before  # every other fd closed: sockets, the epoll fd
    assert server_threads() <= threads_before + 1  # (conftest also checks no ragged- thread is left)
    resource.setrlimit(resource.RLIMIT_NOFILE, old)
