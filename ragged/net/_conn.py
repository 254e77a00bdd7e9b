"""Stream connections (Go's ``net.Conn``): reads, buffered line reads, writes, half-close.

A :class:`Conn` reads and writes through two generator-based primitives,
``_recv(n)`` and ``_send(view)``, that try the non-blocking socket call and
park on the poller when it would block; a TLS connection
(``_tls.TLSConn``) replaces only those two.  Bytes a buffered read took past
its separator stay in ``_rbuf`` for the next read; ``_rbuf`` is touched only
by the goroutine that holds the read turn.
"""

from __future__ import annotations

import socket
import ssl as _ssl
import time
import types
from collections.abc import Generator
from ssl import SSLContext
from typing import TYPE_CHECKING, Any

from .._core import READ, WRITE, NetClosed, UnexpectedEOF, check_timeout, checkpoint, gosched, pollwait
from ._errors import LineTooLong
from ._fd import CLOSED, NetFD, check_n

if TYPE_CHECKING:  # pragma: no cover
    from ._tls import TLSConn

# After this many reads in a row that found data without waiting, a read
# yields its P first (gosched): under load a connection whose peer answers at
# once would otherwise keep the P until preempted (10ms) while the other ready
# connections wait -- throughput at the cost of their latency.
HOT_READS = 4
_CHUNK = 65536  # what read_until asks the socket for at a time


class Conn(NetFD):
    """A stream connection (Go's ``net.Conn``): from :func:`dial`, :func:`dial_unix`,
    :meth:`Listener.accept`, or ``Conn(sock)`` around any connected stream socket
    (made non-blocking).

    ``local_addr`` and ``remote_addr`` are the socket's addresses;
    ``async with conn:`` closes it at the end.

    :raises TypeError: if ``sock`` is not a ``socket.socket``.
    :raises NetClosed: if the socket is closed already.
    :Called from: anywhere; its reads and writes are awaited in goroutines.
    """

    __slots__ = ("local_addr", "remote_addr", "_hot", "_rbuf", "_drained", "_hs_pending")

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock)
        self._hot = 0  # reads in a row that found data at once (a hint; written by the reader)
        self._rbuf = b""  # read past a separator, for the next read (the reader's)
        self._drained = False  # the last recv emptied the socket (the reader's)
        self._hs_pending = False  # a TLS handshake must run before the next read or write
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as Go does
        self.local_addr: Any = sock.getsockname()
        try:
            self.remote_addr: Any = sock.getpeername()
        except OSError:
            self.remote_addr = None  # not connected yet (dial fills it in)

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        return f"<ragged.net.{type(self).__name__} {self.local_addr} -> {self.remote_addr}{state}>"

    # ------------------------------------------------------------ the I/O primitives

    @types.coroutine
    def _recv(self, n: int) -> Generator[Any, Any, bytes]:
        """Up to ``n`` bytes from the socket, parking until there are some; b"" at end of stream.
        The caller holds the read turn.

        A read that returned less than it asked for drained the socket, so the
        next one parks first instead of making a ``recv`` that fails with
        EAGAIN (1.6µs with its exception on 3.13t): the poller reports any
        data that came since (an edge, or the level), and a readiness it saw
        while nobody waited ends the park at once (``PollDesc.ready``).  Not
        once the poller saw a hang-up (``PollDesc.hup``): an end of stream
        that came with the data read stays readable without a further edge.
        """
        recv = self._sock.recv
        hot = True
        if self._drained and not self._pd.hup:
            hot = (yield from pollwait(self._attach(), READ, None)) is False
        while True:
            try:
                data = recv(n)
            except (BlockingIOError, InterruptedError):
                hot = False
                yield from pollwait(self._attach(), READ, None)
                continue
            self._drained = 0 < len(data) < n
            self._hot = self._hot + 1 if hot else 0
            return data

    @types.coroutine
    def _send(self, data: bytes | memoryview) -> Generator[Any, Any, None]:
        """Write all of ``data``, parking while the socket buffer is full.  The caller holds the write turn."""
        send = self._sock.send
        total = len(data)
        off = 0
        while off < total:
            try:
                off += send(data[off:] if off else data)
            except (BlockingIOError, InterruptedError):
                yield from pollwait(self._attach(), WRITE, None)
                continue
            if off < total and not isinstance(data, memoryview):
                data = memoryview(data)  # slices of the rest without copies

    async def _handshake(self) -> None:
        """The TLS handshake, run by the first read or write of a TLS connection (``_tls``)."""
        raise AssertionError("only a TLS connection has a handshake pending")  # pragma: no cover

    # ------------------------------------------------------------ reads

    async def read(self, n: int = 65536) -> bytes:
        """Read what is there, up to ``n`` bytes, parking until something is; ``b""`` at end of stream.

        A safe point; reads of one connection take turns.

        :raises TypeError: if ``n`` is not an int.
        :raises ValueError: if ``n`` is not positive.
        :raises NetClosed: if the connection is or gets closed.
        :raises IOTimeout: past the read deadline.
        :raises Cancelled: if the goroutine is cancelled while waiting.
        :raises OSError: what the OS reports about the connection (``ConnectionResetError``...).
        :raises NotInGoroutine: outside a goroutine, when it has to wait.
        :Called from: inside a goroutine.
        """
        if type(n) is not int or n <= 0:
            check_n(n, "Conn.read()")
        if self._hs_pending:
            await self._handshake()
        if self._hot >= HOT_READS:
            self._hot = 0
            await gosched()  # fairness: let the other ready connections have a turn
        else:
            await checkpoint()  # a safe point even when data is there
        await self._mu.acquire(READ)
        try:
            if self._rbuf:
                return self._take(n)
            return await self._recv(n)
        finally:
            self._release(READ)

    def _take(self, n: int) -> bytes:
        """Up to ``n`` bytes from the read buffer (the caller holds the read turn)."""
        buf = self._rbuf
        self._rbuf = buf[n:]
        return buf[:n]

    async def read_exactly(self, n: int) -> bytes:
        """Read exactly ``n`` bytes, parking as needed.

        :raises UnexpectedEOF: if the stream ends first (``partial`` holds what was read).
        :raises TypeError: if ``n`` is not an int.
        :raises ValueError: if ``n`` is not positive.
        :raises NetClosed: if the connection is or gets closed.
        :raises IOTimeout: past the read deadline.
        :raises Cancelled: if the goroutine is cancelled while waiting.
        :raises OSError: what the OS reports about the connection.
        :raises NotInGoroutine: outside a goroutine, when it has to wait.
        :Called from: inside a goroutine.
        """
        check_n(n, "Conn.read_exactly()")
        if self._hs_pending:
            await self._handshake()
        await checkpoint()
        await self._mu.acquire(READ)
        try:
            got = self._take(n)
            if len(got) == n:
                return got
            parts = [got]
            have = len(got)
            while have < n:
                data = await self._recv(n - have)
                if not data:
                    partial = b"".join(parts)
                    raise UnexpectedEOF(f"read_exactly({n}): end of stream after {have} bytes", partial)
                parts.append(data)
                have += len(data)
            return b"".join(parts)
        finally:
            self._release(READ)

    async def read_until(self, sep: bytes = b"\n", limit: int = 65536) -> bytes:
        """Read up to and including ``sep``, parking as needed (asyncio's ``readuntil``, Go's
        ``bufio.Reader.ReadSlice``); what was read beyond ``sep`` is kept for the next read.

        ``limit`` bounds the line, ``sep`` included.

        :raises UnexpectedEOF: if the stream ends before ``sep`` (``partial`` holds what was read).
        :raises LineTooLong: when ``limit`` bytes came without ``sep``; ``partial`` holds them,
            and the stream goes on after them.
        :raises TypeError: if ``sep`` is not bytes or ``limit`` not an int.
        :raises ValueError: if ``sep`` is empty or ``limit`` < ``len(sep)``.
        :raises NetClosed: if the connection is or gets closed.
        :raises IOTimeout: past the read deadline.
        :raises Cancelled: if the goroutine is cancelled while waiting (what was read stays buffered).
        :raises OSError: what the OS reports about the connection.
        :raises NotInGoroutine: outside a goroutine, when it has to wait.
        :Called from: inside a goroutine.
        """
        if not isinstance(sep, (bytes, bytearray)):
            raise TypeError(f"Conn.read_until() takes a bytes separator, not {type(sep).__name__}")
        if not sep:
            raise ValueError("Conn.read_until() takes a non-empty separator")
        check_n(limit, "Conn.read_until() limit")
        if limit < len(sep):
            raise ValueError(f"Conn.read_until(): limit {limit} is shorter than the separator")
        sep = bytes(sep)
        if self._hs_pending:
            await self._handshake()
        await checkpoint()
        await self._mu.acquire(READ)
        try:
            buf = self._rbuf
            start = 0
            while True:
                i = buf.find(sep, start)
                if i >= 0 and i + len(sep) <= limit:
                    end = i + len(sep)
                    self._rbuf = buf[end:]
                    return buf[:end]
                if i >= 0 or len(buf) >= limit:
                    self._rbuf = buf[limit:]
                    raise LineTooLong(f"read_until(): no {sep!r} in the first {limit} bytes", buf[:limit])
                start = max(0, len(buf) - len(sep) + 1)
                try:
                    data = await self._recv(_CHUNK)
                except BaseException:
                    self._rbuf = buf  # nothing read is lost: a later read sees it
                    raise
                if not data:
                    self._rbuf = b""
                    raise UnexpectedEOF(f"read_until(): end of stream after {len(buf)} bytes without {sep!r}", buf)
                buf += data
        finally:
            self._release(READ)

    # ------------------------------------------------------------ writes

    async def write(self, data: bytes | bytearray | memoryview) -> int:
        """Write all of ``data``, parking while the socket buffer is full; returns ``len(data)``.

        A safe point; writes of one connection take turns.

        :raises TypeError: if ``data`` is not bytes-like.
        :raises NetClosed: if the connection is or gets closed.
        :raises IOTimeout: past the write deadline.
        :raises Cancelled: if the goroutine is cancelled while waiting.
        :raises OSError: what the OS reports about the connection (``BrokenPipeError``...).
        :raises NotInGoroutine: outside a goroutine, when it has to wait.
        :Called from: inside a goroutine.
        """
        if type(data) is not bytes:
            try:
                data = memoryview(data).cast("B")
            except TypeError:
                raise TypeError(f"Conn.write() takes bytes-like data, not {type(data).__name__}") from None
        if self._hs_pending:
            await self._handshake()
        await checkpoint()
        await self._mu.acquire(WRITE)
        try:
            await self._send(data)
            return len(data)
        finally:
            self._release(WRITE)

    async def starttls(
        self,
        ssl: SSLContext,
        server_side: bool = False,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> TLSConn:
        """Upgrade this connection to TLS (STARTTLS) and return the TLS connection, handshake done.

        Waits for the reads and writes in progress; afterwards this object is
        closed for use (its calls raise NetClosed) and the socket lives on in
        the returned :class:`TLSConn`, with the same deadlines.  The peer must
        wait for this side's go-ahead before it starts its handshake: bytes
        already read past a line (``read_until``) cannot be handed to TLS and
        are refused.  ``server_hostname`` (clients) is the name the peer's
        certificate must carry.

        :raises TLSCertificateError: the peer's certificate does not verify.
        :raises TLSHandshakeError: the handshake failed otherwise (the socket is closed then).
        :raises NetError: bytes were read past the last line.
        :raises TypeError: if ``ssl`` is not an ``ssl.SSLContext``, or for a bad ``timeout``.
        :raises ValueError: for a negative or NaN ``timeout``.
        :raises IOTimeout: after ``timeout`` seconds.
        :raises NetClosed: if the connection is or gets closed.
        :raises Cancelled: if the goroutine is cancelled while waiting.
        :raises NotInGoroutine: outside a goroutine.
        :Called from: inside a goroutine.
        """
        from ._tls import starttls

        if not isinstance(ssl, _ssl.SSLContext):
            raise TypeError(f"starttls() takes an ssl.SSLContext, not {type(ssl).__name__}")
        timeout = check_timeout(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        return await starttls(self, ssl, bool(server_side), server_hostname, deadline)

    def close_write(self) -> None:
        """Half-close: the peer reads end of stream; this side can still read (Go's ``CloseWrite``).

        :raises NetClosed: if the connection is closed.
        :raises OSError: what the OS reports (``shutdown``).
        :Called from: anywhere.
        """
        with self._mu.lock:
            if self._mu.closed:
                raise NetClosed(CLOSED)
            self._sock.shutdown(socket.SHUT_WR)
