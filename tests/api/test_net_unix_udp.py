"""ragged.net's other socket kinds: Unix-domain streams (listen_unix, dial_unix) and UDP (listen_packet, PacketConn).

Unix: echo, the socket file removed at close, a path already taken refused,
a missing path, deadlines and close during accept.  UDP: datagrams both ways
with the sender's address, an oversized datagram reported with what fit and
its real size, a read deadline, close during a read, bad arguments.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
import time

import pytest
from _nethelpers import run_clean

import ragged
from ragged import net

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("poller_kind", "no_socket_leak")]

unix_only = pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no Unix-domain sockets on this platform")


async def echo(c: net.Conn) -> None:
    async with c:
        while data := await c.read(4096):
            await c.write(data)


async def wait_parked(g: ragged.Goroutine) -> None:
    for _ in range(5000):
        if g.status == "waiting" and "IO wait" in repr(g):
            return
        await ragged.sleep(0.001)
    raise AssertionError(f"{g!r} never parked")


@unix_only
def test_unix_echo_and_the_socket_file_goes_with_the_listener(tmp_path) -> None:
    path = str(tmp_path / "echo.sock")

    async def main() -> None:
        ln = net.listen_unix(path)
        assert os.path.exists(path) and ln.addr == path

        async def server() -> None:
            while True:
                try:
                    ragged.go(echo, await ln.accept())
                except ragged.NetClosed:
                    return

        g = ragged.go(server)
        for i in range(3):
            async with await net.dial_unix(path, timeout=5) as c:
                assert c.remote_addr == path
                await c.write(b"unix %d\n" % i)
                assert await c.read_until(b"\n") == b"unix %d\n" % i
        with pytest.raises(OSError) as info:
            net.listen_unix(path)  # taken, as in Go
        assert info.value.errno == errno.EADDRINUSE
        ln.close()
        await g
        assert not os.path.exists(path)
        with pytest.raises((FileNotFoundError, ConnectionRefusedError)):
            await net.dial_unix(path, timeout=5)

    run_clean(main)


@unix_only
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the abstract namespace is Linux's")
def test_unix_abstract_namespace_and_accept_deadline() -> None:
    name = f"\0ragged-test-{os.getpid()}-{time.monotonic_ns()}"

    async def main() -> None:
        async with net.listen_unix(name) as ln:
            ln.set_deadline(time.monotonic() + 0.05)
            with pytest.raises(ragged.IOTimeout):
                await ln.accept()
            ln.set_deadline(None)
            c = await net.dial_unix(name)
            s = await ln.accept()
            await c.write(b"abstract")
            assert await s.read_exactly(8) == b"abstract"
            c.close()
            s.close()

    run_clean(main)


def test_unix_bad_arguments() -> None:
    with pytest.raises(TypeError):
        net.listen_unix(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        net.listen_unix("")
    with pytest.raises(ValueError):
        net.listen_unix("/tmp/x.sock", backlog=-1)

    async def main() -> None:
        with pytest.raises(TypeError):
            await net.dial_unix(None)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            await net.dial_unix("/nonexistent/x.sock", timeout=-1)

    run_clean(main)


def test_udp_datagrams_both_ways_with_addresses() -> None:
    async def main() -> None:
        async with net.listen_packet("127.0.0.1", 0) as a, net.listen_packet("127.0.0.1", 0) as b:

            async def responder() -> None:
                for _ in range(20):
                    data, addr = await b.read_from()
                    await b.write_to(data.upper(), addr)

            g = ragged.go(responder)
            for i in range(20):
                msg = b"ping %d" % i
                assert await a.write_to(msg, b.local_addr) == len(msg)
                data, addr = await a.read_from(100)
                assert (data, addr) == (msg.upper(), b.local_addr)
            await g

    run_clean(main)


def test_udp_oversized_datagram_is_reported_not_cut_silently() -> None:
    async def main() -> None:
        async with net.listen_packet("127.0.0.1", 0) as pc:
            sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sender.bind(("127.0.0.1", 0))
            with sender:
                sender.sendto(b"x" * 1000, pc.local_addr)
                sender.sendto(b"small", pc.local_addr)
                with pytest.raises(net.DatagramTooLarge) as info:
                    await pc.read_from(100)
                err = info.value
                assert err.partial == b"x" * 100 and err.addr == sender.getsockname()
                if sys.platform.startswith("linux"):
                    assert err.size == 1000
                assert await pc.read_from(100) == (b"small", sender.getsockname())  # the next one is fine
                sender.sendto(b"y" * 100, pc.local_addr)
                assert (await pc.read_from(100))[0] == b"y" * 100  # exactly n bytes: not too large

    run_clean(main)


def test_udp_deadline_close_and_bad_arguments() -> None:
    async def main() -> None:
        pc = net.listen_packet("127.0.0.1", 0)
        pc.set_read_deadline(time.monotonic() + 0.05)
        with pytest.raises(ragged.IOTimeout):
            await pc.read_from()
        pc.set_read_deadline(None)
        g = ragged.go(pc.read_from)
        await wait_parked(g)
        pc.close()
        with pytest.raises(ragged.NetClosed):
            await g
        with pytest.raises(ragged.NetClosed):
            await pc.write_to(b"x", ("127.0.0.1", 9))
        pc2 = net.listen_packet("127.0.0.1", 0)
        with pytest.raises(ValueError):
            await pc2.read_from(0)
        with pytest.raises(TypeError):
            await pc2.write_to("text", pc2.local_addr)  # type: ignore[arg-type]
        pc2.close()
        with pytest.raises(TypeError):
            net.listen_packet(None, 0)  # type: ignore[arg-type]

    run_clean(main)
