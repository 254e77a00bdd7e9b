"""ragged.net over TLS: real clients and servers on both sides, STARTTLS, what was negotiated, and the faults.

Certificates are made per session with the ``openssl`` command (skipped with
the reason where it is missing).  Real peers: ``curl`` fetching a page from a
ragged HTTPS server, and the standard library's ``ssl`` serving in a plain
thread for a ragged client.  Faults: an untrusted certificate, a wrong host
name, a peer that closes mid-handshake, a read deadline during the
handshake, close and cancel from another goroutine during the handshake, a
close-notify against a plain EOF; each a named error, and no fd left open.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest
from _nethelpers import echo, run_clean, serve

import ragged
from ragged import net
from ragged.bench.netcerts import Certs, have_openssl, make_certs

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        not have_openssl(), reason="the openssl command is not installed (it makes the test certificates)"
    ),
]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """Certificates from a second CA, which the clients of these tests do not trust."""
    return make_certs(tmp_path_factory.mktemp("tls-other"))


def test_tls_echo_and_what_was_negotiated(certs: Certs, no_socket_leak: None) -> None:
    sctx = certs.server_context()
    sctx.set_alpn_protocols(["echo/1"])
    cctx = certs.client_context()
    cctx.set_alpn_protocols(["other", "echo/1"])

    async def main() -> None:
        ln = net.listen("127.0.0.1", 0, ssl=sctx)
        srv = ragged.go(serve, ln)
        for host in ("127.0.0.1", "localhost"):
            async with await net.dial(host, ln.addr[1], timeout=10, ssl=cctx) as c:
                assert isinstance(c, net.TLSConn)
                assert c.version in ("TLSv1.3", "TLSv1.2")
                assert c.cipher is not None and c.cipher[2] >= 128
                assert c.alpn_protocol == "echo/1"
                cert = c.peer_certificate()
                assert ("commonName", "localhost") in [kv for rdn in cert["subject"] for kv in rdn]
                assert isinstance(c.peer_certificate(binary=True), bytes)
                for i in range(50):
                    msg = b"%05d" % i * 13
                    await c.write(msg)
                    assert await c.read_exactly(len(msg)) == msg
                await c.write(b"line one\nline two\n")
                assert await c.read_until(b"\n") == b"line one\n"
                assert await c.read(100) == b"line two\n"
        ln.close()
        await srv

    run_clean(main)


def test_large_tls_writes_park_and_arrive_whole(certs: Certs, no_socket_leak: None) -> None:
    blob = os.urandom(1 << 20) * 3

    async def main() -> None:
        ln = net.listen("127.0.0.1", 0, ssl=certs.server_context())
        srv = ragged.go(serve, ln)
        c = await net.dial("localhost", ln.addr[1], ssl=certs.client_context())

        async def send() -> None:
            await c.write(blob)

        w = ragged.go(send)  # a writer and a reader on one TLS connection, on parallel Ms
        got = await c.read_exactly(len(blob))
        await w
        assert got == blob
        c.close()
        ln.close()
        await srv

    run_clean(main)


def test_curl_fetches_a_page_from_a_ragged_https_server(certs: Certs, no_socket_leak: None) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    body = b"hello from ragged.net over TLS\n"
    rt = ragged.Runtime(procs=2)
    try:
        ln = net.listen("127.0.0.1", 0, ssl=certs.server_context())

        async def handle(c: net.Conn) -> None:
            async with c:
                request = await c.read_until(b"\r\n\r\n", limit=16384)
                assert request.startswith(b"GET /hello HTTP/1.1\r\n")
                head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                await c.write(head % len(body) + body)

        g = rt.go(serve, ln, handle)
        for _ in range(3):
            out = subprocess.run(
                [curl, "-sS", "--max-time", "20", "--cacert", str(certs.ca), f"https://localhost:{ln.addr[1]}/hello"],
                capture_output=True,
                timeout=30,
            )
            assert out.returncode == 0, out.stderr
            assert out.stdout == body
        bad = subprocess.run(  # curl without the CA: its verification fails; the server goes on
            [curl, "-sS", "--max-time", "20", f"https://localhost:{ln.addr[1]}/hello"], capture_output=True, timeout=30
        )
        assert bad.returncode != 0
        ln.close()
        g.result(timeout=10)
    finally:
        rt.close()


def _stdlib_tls_server(certs: Certs, script: list[str]) -> tuple[int, threading.Thread, list[BaseException]]:
    """A TLS server on the standard library's ssl in a plain thread: one connection per step of
    ``script``; "echo-notify" echoes a line and closes with a close-notify, "echo-eof" echoes a line
    and closes the TCP stream without one."""
    ctx = certs.server_context()
    ls = socket.create_server(("127.0.0.1", 0))
    errors: list[BaseException] = []

    def body() -> None:
        with ls:
            for step in script:
                raw, _ = ls.accept()
                try:
                    with ctx.wrap_socket(raw, server_side=True) as s:
                        f = s.makefile("rb")
                        line = f.readline()
                        f.close()
                        s.sendall(b"stdlib: " + line)
                        if step == "echo-notify":
                            s.unwrap().close()
                        else:
                            os.close(s.detach())  # no close-notify
                except (OSError, ssl.SSLError) as err:
                    errors.append(err)

    t = threading.Thread(target=body)
    t.start()
    return ls.getsockname()[1], t, errors


def test_ragged_client_against_a_stdlib_tls_server_close_notify_versus_plain_eof(
    certs: Certs, no_socket_leak: None
) -> None:
    port, t, errors = _stdlib_tls_server(certs, ["echo-notify", "echo-eof"])

    async def main() -> None:
        c = await net.dial("localhost", port, timeout=10, ssl=certs.client_context())
        await c.write(b"hi\n")
        assert await c.read_until(b"\n") == b"stdlib: hi\n"
        assert await c.read(10) == b""  # the close-notify: a clean end of stream
        c.close()
        c = await net.dial("localhost", port, timeout=10, ssl=certs.client_context())
        await c.write(b"again\n")
        assert await c.read_until(b"\n") == b"stdlib: again\n"
        with pytest.raises(net.TLSTruncated):
            await c.read(10)  # TCP ended without a close-notify
        c.close()

    run_clean(main)
    t.join(10)
    assert not errors


def test_openssl_s_server_peer(certs: Certs, no_socket_leak: None) -> None:
    """A ragged client against ``openssl s_server`` (not Python at all)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    srv = subprocess.Popen(
        ["openssl", "s_server", "-quiet", "-accept", f"127.0.0.1:{port}", "-cert", str(certs.cert),
         "-key", str(certs.key), "-naccept", "1"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip

    async def main() -> bytes:
        for _ in range(200):
            try:
                c = await net.dial("localhost", port, timeout=10, ssl=certs.client_context())
                break
            except ConnectionRefusedError:
                await ragged.sleep(0.05)  # s_server is still starting
        async with c:
            assert c.version is not None
            await c.write(b"to openssl\n")
            return b""

    try:
        run_clean(main)
        line = srv.stdout.readline()  # s_server -quiet prints what the client sent
        assert line == b"to openssl\n"
    finally:
        srv.kill()
        srv.communicate(timeout=10)


def test_starttls_upgrades_an_open_connection(certs: Certs, no_socket_leak: None) -> None:
    async def main() -> None:
        ln = net.listen("127.0.0.1", 0)

        async def server() -> None:
            c = await ln.accept()
            assert await c.read_until(b"\n") == b"STARTTLS\n"
            await c.write(b"GO\n")
            t = await c.starttls(certs.server_context(), server_side=True, timeout=10)
            with pytest.raises(ragged.NetClosed):
                await c.read(1)  # the plain object is done with
            await echo(t)

        g = ragged.go(server)
        c = await net.dial("127.0.0.1", ln.addr[1])
        c.set_read_deadline(time.monotonic() + 30)
        await c.write(b"STARTTLS\n")
        assert await c.read_until(b"\n") == b"GO\n"
        t = await c.starttls(certs.client_context(), server_hostname="localhost", timeout=10)
        assert t.version is not None
        await t.write(b"secret")
        assert await t.read_exactly(6) == b"secret"
        t.close()
        await g
        ln.close()

    run_clean(main)


def test_untrusted_certificate_and_wrong_host_name_are_named_at_dial(
    certs: Certs, other_ca: Certs, no_socket_leak: None
) -> None:
    async def main() -> None:
        ln = net.listen("127.0.0.1", 0, ssl=certs.server_context())
        server_errors: list[BaseException] = []

        async def server() -> None:
            while True:
                try:
                    c = await ln.accept()
                except ragged.NetClosed:
                    return
                async with c:
                    try:
                        await c.handshake(timeout=10)
                    except net.TLSHandshakeError as err:
                        server_errors.append(err)

        g = ragged.go(server)
        with pytest.raises(net.TLSCertificateError) as info:
            await net.dial("localhost", ln.addr[1], timeout=10, ssl=other_ca.client_context())
        assert not isinstance(info.value, net.TLSHostnameError) and info.value.verify_code
        assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
        with pytest.raises(net.TLSHostnameError):
            await net.dial(
                "127.0.0.1", ln.addr[1], timeout=10, ssl=certs.client_context(), server_hostname="example.com"
            )
        with pytest.raises(net.TLSHostnameError):
            await net.dial("127.0.0.1", ln.addr[1], ssl=certs.client_context(), server_hostname="127.0.0.2")
        while len(server_errors) < 3:
            await ragged.sleep(0.01)  # the server saw each client's alert as a failed handshake
        ln.close()
        await g

    run_clean(main)


def test_peer_closing_mid_handshake_is_a_handshake_error_on_both_sides(certs: Certs, no_socket_leak: None) -> None:
    async def main() -> None:
        # A server that accepts TCP and closes at once: the client's handshake meets EOF.
        plain = net.listen("127.0.0.1", 0)

        async def slam() -> None:
            while True:
                try:
                    c = await plain.accept()
                except ragged.NetClosed:
                    return
                c.close()

        g = ragged.go(slam)
        with pytest.raises(net.TLSHandshakeError, match="closed the connection during the handshake"):
            await net.dial("127.0.0.1", plain.addr[1], timeout=10, ssl=certs.client_context())
        plain.close()
        await g
        # A client that sends half a ClientHello and closes: the server's handshake meets EOF.
        ln = net.listen("127.0.0.1", 0, ssl=certs.server_context())
        raw = await net.dial("127.0.0.1", ln.addr[1])
        await raw.write(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        raw.close()
        c = await ln.accept()
        with pytest.raises(net.TLSHandshakeError):
            await c.read(10)
        with pytest.raises(net.TLSHandshakeError):
            await c.write(b"x")  # the failure is kept
        c.close()
        ln.close()

    run_clean(main)


@pytest.mark.parametrize("how", ["deadline", "close", "cancel", "dial-timeout"])
def test_deadline_close_and_cancel_during_the_handshake(certs: Certs, how: str, no_socket_leak: None) -> None:
    """The peer never answers the handshake: a deadline, a close from another goroutine, a cancel
    or dial's own timeout ends it with a named error at once."""

    async def main() -> None:
        if how == "dial-timeout":
            silent = net.listen("127.0.0.1", 0)  # accepts TCP (backlog), never speaks TLS
            t0 = time.monotonic()
            with pytest.raises(ragged.IOTimeout):
                await net.dial("127.0.0.1", silent.addr[1], timeout=0.2, ssl=certs.client_context())
            assert time.monotonic() - t0 < 5
            silent.close()
            return
        ln = net.listen("127.0.0.1", 0, ssl=certs.server_context())
        raw = await net.dial("127.0.0.1", ln.addr[1])  # a client that never sends its ClientHello
        c = await ln.accept()
        if how == "deadline":
            c.set_read_deadline(time.monotonic() + 0.1)
            with pytest.raises(ragged.IOTimeout):
                await c.handshake()
        else:
            g = ragged.go(c.handshake)
            for _ in range(5000):
                if g.status == "waiting" and "IO wait read" in repr(g):
                    break
                await ragged.sleep(0.001)
            if how == "close":
                c.close()
                with pytest.raises(ragged.NetClosed):
                    await g
            else:
                g.cancel()
                with pytest.raises(ragged.Cancelled):
                    await g
        for x in (c, raw, ln):
            x.close()

    run_clean(main)


def test_close_from_another_goroutine_during_tls_reads_and_writes(certs: Certs, no_socket_leak: None) -> None:
    async def main() -> None:
        ln = net.listen("127.0.0.1", 0, ssl=certs.server_context())
        pairs = []

        async def accept_one() -> net.Conn:
            s = await ln.accept()
            await s.handshake()  # type: ignore[attr-defined]
            return s

        for _ in range(2):
            ga = ragged.go(accept_one)  # the server's handshake runs while dial waits for it
            c = await net.dial("127.0.0.1", ln.addr[1], ssl=certs.client_context())
            pairs.append((c, await ga))
        (c1, s1), (c2, s2) = pairs

        async def reader() -> None:
            await c1.read(10)  # s1 never writes

        async def writer() -> None:
            while True:
                await c2.write(b"x" * 65536)  # s2 never reads: parks for writability

        gr, gw = ragged.go(reader), ragged.go(writer)
        for _ in range(5000):
            if all(g.status == "waiting" and "IO wait" in repr(g) for g in (gr, gw)):
                break
            await ragged.sleep(0.001)
        assert "IO wait read" in repr(gr) and "IO wait write" in repr(gw)
        c1.close()
        c2.close()
        for g in (gr, gw):
            with pytest.raises(ragged.NetClosed):
                await g
        for x in (s1, s2, ln):
            x.close()

    run_clean(main)


def test_bad_tls_arguments(certs: Certs) -> None:
    with pytest.raises(TypeError):
        net.listen("127.0.0.1", 0, ssl="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        net.listen("127.0.0.1", 0, ssl=True)  # type: ignore[arg-type]  # a server needs its certificate

    async def main() -> None:
        ln = net.listen("127.0.0.1", 0)
        with pytest.raises(TypeError):
            await net.dial("127.0.0.1", ln.addr[1], ssl=object())  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await net.dial("127.0.0.1", ln.addr[1], ssl=True, server_hostname=5)  # type: ignore[arg-type]
        c = await net.dial("127.0.0.1", ln.addr[1])
        with pytest.raises(TypeError):
            await c.starttls("ctx")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            await c.starttls(certs.client_context(), timeout=-1)
        tls = net.TLSConn.wrap(socket.socket(), certs.server_context(), server_side=True)
        with pytest.raises(ValueError):
            await tls.handshake(timeout=float("nan"))
        tls.close()
        c.close()
        ln.close()

    run_clean(main)
