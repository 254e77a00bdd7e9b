"""ragged.net: names (every address tried in order within one timeout, an unknown name named at once)
and buffered line reads (``read_until``: the rest kept, EOF and over-long lines named with what was read)."""

from __future__ import annotations

import socket
import time

import pytest
from _nethelpers import run_clean

import ragged
from ragged import net
from ragged.net import _dial

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("poller_kind", "no_socket_leak")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unknown_name_is_named_at_once() -> None:
    async def main() -> None:
        t0 = time.monotonic()
        with pytest.raises(net.NameNotFound) as info:
            await net.dial("no-such-host.invalid", 80, timeout=30)
        assert info.value.host == "no-such-host.invalid" and isinstance(info.value, OSError)
        assert isinstance(info.value.__cause__, socket.gaierror)
        assert time.monotonic() - t0 < 25  # the resolver's answer, not the dial timeout

    run_clean(main)


def test_dial_tries_every_address_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first addresses refuse; the last one listens: dial connects there (Go's dialSerial)."""

    async def main() -> None:
        ln = net.listen("127.0.0.1", 0)
        refused = [free_port(), free_port()]
        tried: list[int] = []
        real = _dial._connect

        async def fake_resolve(host: str, port: int) -> list:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", p)) for p in [*refused, ln.addr[1]]]

        async def connect(conn, addr, deadline):
            tried.append(addr[1])
            await real(conn, addr, deadline)

        monkeypatch.setattr(_dial, "resolve", fake_resolve)
        monkeypatch.setattr(_dial, "_connect", connect)
        c = await net.dial("service.example", 1234, timeout=10)
        assert c.remote_addr == ln.addr and tried == [*refused, ln.addr[1]]
        c.close()
        # None listens: the first error is raised (as Go does).
        monkeypatch.setattr(_dial, "resolve", lambda h, p: fake_resolve(h, p))
        ln.close()
        tried.clear()
        with pytest.raises(ConnectionRefusedError, match=str(refused[0])):
            await net.dial("service.example", 1234, timeout=10)
        assert len(tried) == 3

    run_clean(main)


def test_partial_deadlines_share_the_timeout_as_go_does() -> None:
    now = 100.0
    assert _dial.partial_deadline(None, now, 3) is None
    assert _dial.partial_deadline(now + 30, now, 3) == pytest.approx(now + 10)  # an equal share
    assert _dial.partial_deadline(now + 3, now, 3) == pytest.approx(now + 2)  # at least 2s
    assert _dial.partial_deadline(now + 1, now, 3) == pytest.approx(now + 1)  # never past the whole


async def pair() -> tuple[net.Conn, net.Conn, net.Listener]:
    ln = net.listen("127.0.0.1", 0)
    c = await net.dial(*ln.addr)
    return c, await ln.accept(), ln


def test_read_until_keeps_what_it_read_beyond_the_separator() -> None:
    async def main() -> None:
        c, s, ln = await pair()
        await s.write(b"one\ntwo\r\nthr")
        assert await c.read_until() == b"one\n"
        assert await c.read_until(b"\r\n") == b"two\r\n"

        async def later() -> None:
            await ragged.sleep(0.02)
            await s.write(b"ee\nfour 4444")

        g = ragged.go(later)
        assert await c.read_until(b"\n") == b"three\n"  # the line spans two writes
        await g
        assert await c.read_exactly(5) == b"four "  # other reads see the kept bytes first
        assert await c.read(2) == b"44"
        await s.write(b"|end|")
        assert await c.read_until(b"|end|") == b"44|end|"
        # A separator that arrives split across reads.
        await s.write(b"abc\r")
        g = ragged.go(c.read_until, b"\r\n")
        await ragged.sleep(0.02)
        await s.write(b"\nrest")
        assert await g == b"abc\r\n"
        assert await c.read(10) == b"rest"
        for x in (c, s, ln):
            x.close()

    run_clean(main)


def test_read_until_eof_and_too_long_lines_carry_what_was_read() -> None:
    async def main() -> None:
        c, s, ln = await pair()
        await s.write(b"x" * 10 + b"\nshort\n")
        with pytest.raises(net.LineTooLong) as info:
            await c.read_until(b"\n", limit=8)
        assert info.value.partial == b"x" * 8
        assert await c.read_until(b"\n", limit=8) == b"xx\n"  # the stream goes on after them
        assert await c.read_until(b"\n", limit=6) == b"short\n"  # exactly the limit is fine
        await s.write(b"no newline")
        s.close_write()
        with pytest.raises(ragged.UnexpectedEOF) as eof:
            await c.read_until(b"\n")
        assert eof.value.partial == b"no newline"
        assert await c.read(10) == b""
        # A deadline while waiting for the rest of a line: what was read is kept.
        c2, s2, ln2 = await pair()
        await s2.write(b"par")
        c2.set_read_deadline(time.monotonic() + 0.05)
        with pytest.raises(ragged.IOTimeout):
            await c2.read_until(b"\n")
        c2.set_read_deadline(None)
        await s2.write(b"tial\n")
        assert await c2.read_until(b"\n") == b"partial\n"
        for x in (c, s, ln, c2, s2, ln2):
            x.close()

    run_clean(main)


def test_read_until_bad_arguments() -> None:
    async def main() -> None:
        c, s, ln = await pair()
        with pytest.raises(TypeError):
            await c.read_until("\n")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            await c.read_until(b"")
        with pytest.raises(ValueError):
            await c.read_until(b"\r\n", limit=1)
        with pytest.raises(TypeError):
            await c.read_until(b"\n", limit=2.5)  # type: ignore[arg-type]
        for x in (c, s, ln):
            x.close()

    run_clean(main)
