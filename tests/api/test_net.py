"""ragged.net: listeners and connections on the poller, and their faults.

Faults: peer reset, half-close, close of a connection while another goroutine
reads or writes it, EMFILE at accept, deadlines and Context deadlines, cancel
and select racing a read, two goroutines on one connection, refused and
timed-out dials, use from another runtime.
"""

from __future__ import annotations

import resource
import socket
import struct
import time

import pytest
from _nethelpers import serve, wait_parked

import ragged
from ragged import net
from ragged._core._netpoll import READ

# Every test runs on each kind of poller (``poller_kind``: edge- and level-triggered).
pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("poller_kind")]


def run(main, *args, procs: int = 2):
    """Run ``main(*args)`` as a goroutine on a fresh runtime (no deadlock detection: peers are threads)."""
    with ragged.Runtime(procs=procs) as rt:
        return rt.go(main, *args).result(timeout=30)


def test_echo_round_trips_addresses_and_async_with() -> None:
    async def main() -> list[bytes]:
        ln = net.listen("127.0.0.1", 0)
        srv = ragged.go(serve, ln)
        out = []
        async with await net.dial(*ln.addr, timeout=5) as c:
            assert c.remote_addr == ln.addr and c.local_addr[0] == "127.0.0.1"
            for i in range(200):
                msg = struct.pack("!Q", i) * 8
                assert await c.write(msg) == 64
                out.append(await c.read_exactly(64))
        assert c.closed and c.fileno() == -1
        ln.close()
        await srv
        return out

    out = run(main)
    assert out == [struct.pack("!Q", i) * 8 for i in range(200)]


def test_large_write_parks_for_writability_and_arrives_whole() -> None:
    blob = bytes(range(256)) * 40000  # 10 MB: fills every socket buffer

    async def main() -> bytes:
        ln = net.listen("127.0.0.1", 0)
        srv = ragged.go(serve, ln)
        c = await net.dial(*ln.addr)

        async def send() -> None:
            await c.write(blob)
            c.close_write()

        w = ragged.go(send)
        got = bytearray()
        while True:
            d = await c.read(1 << 16)
            if not d:
                break
            got += d
        await w
        c.close()
        ln.close()
        await srv
        return bytes(got)

    assert run(main) == blob


def test_peer_reset_is_connection_reset_error() -> None:
    async def main() -> type:
        ln = net.listen("127.0.0.1", 0)
        c = await net.dial(*ln.addr)
        s = await ln.accept()
        raw = c._sock
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()  # RST
        try:
            await s.read(10)
        except ConnectionResetError as e:
            return type(e)
        finally:
            s.close()
            ln.close()
        return type(None)

    assert run(main) is ConnectionResetError


def test_half_close_peer_reads_eof_and_can_still_answer() -> None:
    async def main() -> bytes:
        ln = net.listen("127.0.0.1", 0)

        async def server() -> None:
            s = await ln.accept()
            async with s:
                data = b""
                while chunk := await s.read(100):
                    data += chunk
                await s.write(b"got " + data)

        g = ragged.go(server)
        c = await net.dial(*ln.addr)
        await c.write(b"question")
        c.close_write()
        with pytest.raises(BrokenPipeError):
            await c.write(b"more")
        reply = await c.read_exactly(12)
        assert await c.read(10) == b""
        with pytest.raises(ragged.UnexpectedEOF) as info:
            await c.read_exactly(5)
        assert info.value.partial == b""
        c.close()
        await g
        ln.close()
        return reply

    assert run(main) == b"got question"


@pytest.mark.parametrize("direction", ["read", "write", "accept"])
def test_close_while_another_goroutine_waits_ends_its_wait_at_once(direction: str) -> None:
    async def once() -> None:
        ln = net.listen("127.0.0.1", 0)
        c = await net.dial(*ln.addr)
        s = await ln.accept()

        async def reader() -> None:
            await c.read(10)

        async def writer() -> None:
            while True:
                await c.write(b"x" * 65536)  # nobody reads: parks for writability

        async def acceptor() -> None:
            await ln.accept()

        body = {"read": reader, "write": writer, "accept": acceptor}[direction]
        target = ln if direction == "accept" else c
        fd = target.fileno()
        g = ragged.go(body)
        await wait_parked(g)
        t0 = time.monotonic()
        target.close()
        with pytest.raises(ragged.NetClosed, match="use of closed network connection"):
            await g
        assert time.monotonic() - t0 < 5
        with pytest.raises(ragged.NetClosed):
            await body()  # every later call fails the same way
        assert target.fileno() == -1 and target._sock.fileno() == -1  # the fd itself is closed
        np = ragged.current_runtime()._sched.netpoll
        assert np.pds.get(fd) is None or np.pds[fd].owner is not target
        for x in (s, c, ln):
            x.close()

    async def main() -> None:
        for _ in range(5):
            await once()

    run(main)


def test_two_readers_on_one_conn_take_turns() -> None:
    async def main() -> list[bytes]:
        ln = net.listen("127.0.0.1", 0)
        c = await net.dial(*ln.addr)
        s = await ln.accept()
        out = ragged.Chan(10)

        async def reader() -> None:
            await out.send(await c.read_exactly(4))

        gs = [ragged.go(reader) for _ in range(4)]
        await ragged.sleep(0.02)
        for i in range(4):
            await s.write(b"%04d" % i)
        for g in gs:
            await g
        got = sorted([await out.recv() for _ in range(4)])
        for x in (c, s, ln):
            x.close()
        return got

    assert run(main) == [b"0000", b"0001", b"0002", b"0003"]


def test_deadlines_past_future_moved_and_cleared() -> None:
    async def main() -> None:
        ln = net.listen("127.0.0.1", 0)
        c = await net.dial(*ln.addr)
        s = await ln.accept()
        c.set_deadline(time.monotonic() - 1)
        with pytest.raises(ragged.IOTimeout):
            await c.read(1)
        c.set_read_deadline(time.monotonic() + 0.05)
        with pytest.raises(ragged.IOTimeout):
            await c.read(1)
        # A parked reader whose deadline is moved into the past wakes at once.
        c.set_deadline(None)
        g = ragged.go(c.read, 1)
        await wait_parked(g)
        c.set_read_deadline(time.monotonic() - 1)
        with pytest.raises(ragged.IOTimeout):
            await g
        # ...and one whose deadline is cleared keeps waiting, then reads.
        c.set_read_deadline(time.monotonic() + 0.05)
        g = ragged.go(c.read, 1)
        await wait_parked(g)
        c.set_read_deadline(None)
        await ragged.sleep(0.1)
        assert not g.done()
        await s.write(b"z")
        assert await g == b"z"
        # A Context deadline, Go style.
        ctx, cancel = ragged.with_timeout(ragged.background(), 0.05)
        c.set_deadline(ctx.deadline())
        with pytest.raises(TimeoutError):
            await c.read(1)
        cancel()
        with pytest.raises(TypeError):
            c.set_deadline("soon")
        for x in (c, s, ln):
            x.close()
        with pytest.raises(ragged.NetClosed):
            c.set_deadline(None)

    run(main)


def test_cancel_and_select_racing_a_read_unregister_at_once() -> None:
    async def main() -> None:
        ln = net.listen("127.0.0.1", 0)
        c = await net.dial(*ln.addr)
        s = await ln.accept()
        np = ragged.current_runtime()._sched.netpoll
        results = ragged.Chan(1)

        async def reader() -> None:
            await results.send(await c.read(10))

        for _ in range(10):
            g = ragged.go(reader)
            i, _ = await ragged.select(results.recv_case(), ragged.after(0.01).recv_case())
            assert i == 1  # the timer won: give up on the read
            g.cancel()
            with pytest.raises(ragged.Cancelled):
                await g
            pd = np.pds[c.fileno()]
            assert pd.waiter[0] is None  # the wait is gone at once
            if np.backend.kind == "level":
                assert not pd.events & (1 << READ)  # level-triggered: so is its interest
        # Context cancellation: a watcher cancels the reader.
        ctx, cancel = ragged.with_cancel(ragged.background())
        g = ragged.go(reader)

        async def watch() -> None:
            await ctx.done().recv_ok()
            g.cancel()

        ragged.go(watch)
        await wait_parked(g)
        cancel()
        with pytest.raises(ragged.Cancelled):
            await g
        await s.write(b"after")
        assert await c.read(10) == b"after"  # the connection is fine afterwards
        for x in (c, s, ln):
            x.close()

    run(main)


def test_dial_refused_and_timeout_and_bad_arguments() -> None:
    async def main() -> None:
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()  # nobody listens there now
        with pytest.raises(ConnectionRefusedError):
            await net.dial("127.0.0.1", port, timeout=5)
        with pytest.raises(TypeError):
            await net.dial(("127.0.0.1", port))  # type: ignore[call-arg]
        with pytest.raises(ValueError):
            await net.dial("127.0.0.1", 70000)
        with pytest.raises(ValueError):
            await net.dial("127.0.0.1", 1, timeout=float("nan"))
        with pytest.raises(ragged.IOTimeout):
            await net.dial("127.0.0.1", 1, timeout=-1)  # already expired, as 0
        with pytest.raises(ragged.IOTimeout):
            await net.dial("127.0.0.1", 1, timeout=0)
        c = await net.dial("localhost", _listener_port())  # resolved through ragged.syscall
        c.close()

    run(main)


_LN: list[net.Listener] = []


def _listener_port() -> int:
    ln = net.listen("127.0.0.1", 0)
    _LN.append(ln)
    return ln.addr[1]


def teardown_module() -> None:
    for ln in _LN:
        ln.close()


def test_bad_arguments_to_listen_read_write() -> None:
    with pytest.raises(TypeError):
        net.listen(8080, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        net.listen("127.0.0.1", -1)
    with pytest.raises(TypeError):
        net.Conn("not a socket")  # type: ignore[arg-type]
    s = socket.socket()
    s.close()
    with pytest.raises(ragged.NetClosed):
        net.Conn(s)

    async def main() -> None:
        a, b = socket.socketpair()
        c = net.Conn(a)
        with pytest.raises(ValueError):
            await c.read(0)
        with pytest.raises(TypeError):
            await c.read("10")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await c.write("text")  # type: ignore[arg-type]
        c._attach()
        with pytest.raises(ragged.FdBusy):
            net.Conn(a)._attach()  # the same fd wrapped twice, both used
        c.close()
        b.close()

    run(main)


def test_a_conn_belongs_to_the_runtime_that_first_waited_on_it() -> None:
    a, b = socket.socketpair()
    c = net.Conn(a)
    with ragged.Runtime(procs=1) as rt1, ragged.Runtime(procs=1) as rt2:

        async def read() -> bytes:
            return await c.read(1)

        g = rt1.go(read)
        time.sleep(0.05)
        with pytest.raises(ragged.RaggedError, match="another ragged Runtime"):
            rt2.go(c._wait, READ).result(timeout=10)
        b.send(b"k")
        assert g.result(timeout=10) == b"k"
    assert c.closed  # rt1's close closed it
    b.close()


def test_emfile_at_accept_is_named_and_accept_recovers() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    async def main() -> int:
        ln = net.listen("127.0.0.1", 0)
        clients = [socket.create_connection(ln.addr) for _ in range(3)]  # queued in the backlog
        first = await ln.accept()  # the poller and its fds exist now
        import os

        resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 4, hard))
        hog = []
        try:
            while True:
                hog.append(os.dup(0))
        except OSError:
            pass
        try:
            with pytest.raises(ragged.TooManyOpenFiles) as info:
                await ln.accept()
            assert info.value.errno in (24, 23)
            with pytest.raises(ragged.TooManyOpenFiles):
                await ln.accept()  # still out: the same clear error, no hang, no spin
            for fd in hog[:4]:
                os.close(fd)
            conns = [await ln.accept(), await ln.accept()]  # working again
        finally:
            for fd in hog[4:]:
                os.close(fd)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        for x in [first, *conns, ln]:
            x.close()
        for c in clients:
            c.close()
        return len(conns)

    assert run(main) == 2


def test_data_and_end_of_stream_in_one_edge_are_both_read() -> None:
    """The peer writes and closes at once: one edge reports both.  The read after the data must
    not park waiting for a further edge (the end of stream stays readable without one)."""

    async def main() -> None:
        for i in range(30):
            a, b = socket.socketpair()
            c = net.Conn(a)
            g = ragged.go(c.read, 4096)
            await wait_parked(g)  # registered and parked: the next edge wakes it
            b.send(b"last words %d" % i)
            b.close()
            assert await g == b"last words %d" % i
            c.set_read_deadline(time.monotonic() + 10)
            assert await c.read(4096) == b""  # not an IOTimeout: no edge was missed
            c.close()

    run(main)


def test_both_backends_define_the_interface() -> None:
    """The portable poller calls only these on a backend (see ragged._core._netpoll's docstring)."""
    from ragged._core._netpoll_selectors import SelectorsBackend

    backends: list[type] = [SelectorsBackend]
    if hasattr(__import__("select"), "epoll"):
        from ragged._core._netpoll_epoll import EpollBackend

        backends.append(EpollBackend)
    for cls in backends:
        assert cls.kind in ("edge", "level")
        for name in ("set_interest", "drop_idle", "poll", "close"):
            assert callable(getattr(cls, name)), (cls, name)


def test_runtime_close_closes_connections_accepted_or_dialed_but_never_used() -> None:
    """A Conn from accept() or dial() that nobody read or wrote is the runtime's, as is a listener that never
    had to wait: the runtime's close() closes them."""
    keep: list[net.Conn] = []

    async def main() -> None:
        ln = net.listen("127.0.0.1", 0)
        keep.append(ln)
        c = await net.dial(*ln.addr, timeout=5)
        s = await ln.accept()
        keep.extend([c, s])

    with ragged.Runtime(procs=2) as rt:
        rt.go(main).result(timeout=30)
    assert len(keep) == 3 and all(x.closed and x.fileno() == -1 for x in keep)
