"""Datagram sockets (Go's ``net.PacketConn``): UDP with :func:`listen_packet`.

A datagram longer than the buffer a read offers is not cut silently: the read
asks the OS with ``recvmsg`` and looks at ``MSG_TRUNC`` in the flags it
returns (on Linux it also passes ``MSG_TRUNC`` in, so the OS reports the
datagram's real length), and raises :class:`DatagramTooLarge` with what fit.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

from .._core import READ, WRITE, checkpoint, pollwait
from ._errors import DatagramTooLarge
from ._fd import NetFD, check_addr, check_n

# Linux reports a truncated datagram's real length when MSG_TRUNC is passed in (socket(7), udp(7)).
_TRUNC_IN = socket.MSG_TRUNC if sys.platform.startswith("linux") else 0


class PacketConn(NetFD):
    """A datagram socket (Go's ``net.PacketConn``), from :func:`listen_packet`.

    ``local_addr`` is its address; ``async with pc:`` closes it; deadlines as
    on a :class:`Conn`.  Reads take turns and so do writes.

    :raises TypeError: if ``sock`` is not a ``socket.socket``.
    :raises NetClosed: if the socket is closed already.
    :Called from: anywhere; its reads and writes are awaited in goroutines.
    """

    __slots__ = ("local_addr",)

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock)
        self.local_addr: Any = sock.getsockname()

    def __repr__(self) -> str:
        return f"<ragged.net.PacketConn {self.local_addr}{' closed' if self.closed else ''}>"

    async def read_from(self, n: int = 65536) -> tuple[bytes, Any]:
        """Receive one datagram of at most ``n`` bytes: ``(data, sender address)``.

        :raises DatagramTooLarge: the datagram was longer than ``n`` (it is consumed; the
            error carries its first ``n`` bytes, its real size on Linux, and the sender).
        :raises TypeError: if ``n`` is not an int.
        :raises ValueError: if ``n`` is not positive.
        :raises NetClosed: if it is or gets closed.
        :raises IOTimeout: past the read deadline.
        :raises Cancelled: if the goroutine is cancelled while waiting.
        :raises OSError: what the OS reports (``ConnectionRefusedError`` after an ICMP port unreachable...).
        :raises NotInGoroutine: outside a goroutine, when it has to wait.
        :Called from: inside a goroutine.
        """
        check_n(n, "PacketConn.read_from()")
        await checkpoint()
        pd = self._attach()  # from its first use the runtime owns it: its close() closes it
        await self._mu.acquire(READ)
        try:
            buf = bytearray(n)
            recvmsg_into = self._sock.recvmsg_into
            while True:
                try:
                    size, _, flags, addr = recvmsg_into([buf], 0, _TRUNC_IN)
                except (BlockingIOError, InterruptedError):
                    await pollwait(pd, READ, None)
                    continue
                if flags & socket.MSG_TRUNC:
                    real = size if _TRUNC_IN and size > n else None
                    raise DatagramTooLarge(
                        f"read_from({n}): the datagram from {addr} was "
                        f"{f'{real} bytes' if real else 'longer'}; read with a larger n",
                        bytes(buf),
                        real,
                        addr,
                    )
                return bytes(buf[:size]), addr
        finally:
            self._release(READ)

    async def write_to(self, data: bytes | bytearray | memoryview, addr: Any) -> int:
        """Send ``data`` as one datagram to ``addr``; returns ``len(data)``.

        :raises TypeError: if ``data`` is not bytes-like.
        :raises NetClosed: if it is or gets closed.
        :raises IOTimeout: past the write deadline.
        :raises Cancelled: if the goroutine is cancelled while waiting.
        :raises OSError: what the OS reports (``EMSGSIZE`` for a datagram too long to send...).
        :raises NotInGoroutine: outside a goroutine, when it has to wait.
        :Called from: inside a goroutine.
        """
        try:
            view = memoryview(data).cast("B")
        except TypeError:
            raise TypeError(f"PacketConn.write_to() takes bytes-like data, not {type(data).__name__}") from None
        await checkpoint()
        pd = self._attach()  # from its first use the runtime owns it: its close() closes it
        await self._mu.acquire(WRITE)
        try:
            sendto = self._sock.sendto
            while True:
                try:
                    return sendto(view, addr)
                except (BlockingIOError, InterruptedError):
                    await pollwait(pd, WRITE, None)
        finally:
            self._release(WRITE)


def listen_packet(host: str, port: int) -> PacketConn:
    """A UDP socket bound to ``host:port`` (port 0: any free port; see ``pc.local_addr``).

    Go's ``net.ListenPacket("udp", ...)``.  The host is resolved here, synchronously.

    :raises TypeError: if ``host`` is not a str or ``port`` not an int.
    :raises ValueError: for a port outside 0..65535.
    :raises OSError: what binding reports (``OSError`` EADDRINUSE, ``socket.gaierror``).
    :Called from: anywhere; reads and writes are awaited in goroutines.
    """
    check_addr(host, port, "listen_packet()")
    family, stype, proto, _, addr = socket.getaddrinfo(host or None, port, type=socket.SOCK_DGRAM)[0]
    sock = socket.socket(family, stype, proto)
    try:
        sock.bind(addr)
        return PacketConn(sock)
    except BaseException:
        sock.close()
        raise
