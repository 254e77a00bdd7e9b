"""Which TLS shape costs the server less CPU per echo round trip: a non-blocking ``ssl.SSLSocket``,
or an ``ssl.SSLObject`` over two ``MemoryBIO``s pumped by the socket's own reads and writes (trio's shape)?

A client thread (blocking ``SSLSocket``) sends ``SIZE``-byte messages and
reads each echo; the server thread does its non-blocking I/O the way
``ragged.net`` would (try the call; on "would block" wait in ``select``),
taking a lock around every call into the SSL object as a connection shared by
goroutines on parallel Ms must.  Reported: the server thread's own CPU time
(``time.thread_time``) per round trip, for each shape and for a plain socket.

    python benchmarks/net_tls_choice.py [ROUNDS]
"""

from __future__ import annotations

import select
import socket
import ssl
import sys
import tempfile
import threading
import time

from ragged.bench.netcerts import make_certs

SIZE = 64


def client(sock: socket.socket, ctx: ssl.SSLContext | None, rounds: int) -> None:
    s = ctx.wrap_socket(sock, server_hostname="localhost") if ctx else sock
    msg = b"x" * SIZE
    for _ in range(rounds + 1):
        s.sendall(msg)
        got = 0
        while got < SIZE:
            got += len(s.recv(SIZE - got))
    s.close()


def serve_plain(sock: socket.socket, rounds: int) -> None:
    lock = threading.Lock()
    for _ in range(rounds):
        while True:
            try:
                with lock:
                    data = sock.recv(4096)
                break
            except BlockingIOError:
                select.select([sock], [], [])
        with lock:
            sock.send(data)


def serve_sslsocket(s: ssl.SSLSocket, rounds: int) -> None:
    lock = threading.Lock()
    for _ in range(rounds):
        while True:
            try:
                with lock:
                    data = s.recv(4096)
                break
            except ssl.SSLWantReadError:
                select.select([s], [], [])
        with lock:
            s.send(data)


def serve_memorybio(
    sock: socket.socket, obj: ssl.SSLObject, inc: ssl.MemoryBIO, out: ssl.MemoryBIO, rounds: int
) -> None:
    lock = threading.Lock()
    for _ in range(rounds):
        while True:
            try:
                with lock:
                    data = obj.read(4096)
                break
            except ssl.SSLWantReadError:
                try:
                    raw = sock.recv(65536)
                except BlockingIOError:
                    select.select([sock], [], [])
                    continue
                with lock:
                    inc.write(raw)
        with lock:
            obj.write(data)
            pending = out.read()
        sock.send(pending)


def handshake_memorybio(sock: socket.socket, obj: ssl.SSLObject, inc: ssl.MemoryBIO, out: ssl.MemoryBIO) -> None:
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            if out.pending:
                sock.sendall(out.read())
            select.select([sock], [], [])
            inc.write(sock.recv(65536))
    if out.pending:
        sock.sendall(out.read())


def one(kind: str, rounds: int, certs) -> float:
    a, b = socket.socketpair()
    ctx_c = certs.client_context() if kind != "plain" else None
    t = threading.Thread(target=client, args=(b, ctx_c, rounds))
    t.start()
    a.setblocking(False)
    server_ctx = certs.server_context()
    if kind == "sslsocket":
        s = server_ctx.wrap_socket(a, server_side=True, do_handshake_on_connect=False)
        while True:
            try:
                s.do_handshake()
                break
            except ssl.SSLWantReadError:
                select.select([s], [], [])
            except ssl.SSLWantWriteError:
                select.select([], [s], [])
        serve_sslsocket(s, 1)
        c0 = time.thread_time()
        serve_sslsocket(s, rounds)
    elif kind == "memorybio":
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = server_ctx.wrap_bio(inc, out, server_side=True)
        handshake_memorybio(a, obj, inc, out)
        serve_memorybio(a, obj, inc, out, 1)
        c0 = time.thread_time()
        serve_memorybio(a, obj, inc, out, rounds)
    else:
        serve_plain(a, 1)
        c0 = time.thread_time()
        serve_plain(a, rounds)
    used = time.thread_time() - c0
    t.join()
    a.close()
    return used / rounds * 1e6


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    with tempfile.TemporaryDirectory() as d:
        certs = make_certs(d)
        print(
            f"Python {sys.version.split()[0]} {'GIL' if gil else 'free-threaded'}; {rounds} round trips of {SIZE} bytes"
        )
        for kind in ("plain", "sslsocket", "memorybio", "sslsocket", "memorybio"):
            print(f"  {kind:10s} server CPU {one(kind, rounds, certs):6.2f} µs per round trip")


if __name__ == "__main__":
    main()
