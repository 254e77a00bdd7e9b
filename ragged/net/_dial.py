"""Dialling (Go's ``net.Dial``, ``dialSerial``): names resolved off the P, every address tried in turn
within one timeout; TCP (optionally TLS) and Unix-domain."""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import time
from ssl import SSLContext
from typing import Any

from .._core import WRITE, IOTimeout, check_timeout, current_g
from ._conn import Conn
from ._errors import NameNotFound
from ._fd import check_addr
from ._listen import check_ssl, check_unix_path

_monotonic = time.monotonic
_IN_PROGRESS = (errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR)
# Go's dialSerial gives each address an equal share of what is left of the
# timeout, but never less than this (or what is left, if less).
SANE_MINIMUM = 2.0


def _numeric(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def resolve(host: str, port: int) -> list[tuple[Any, ...]]:
    """The stream addresses of ``host:port``, in the resolver's order; a name off the P (``syscall``).

    :raises NameNotFound: if the name does not resolve.
    """
    if _numeric(host):
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    from .._api import syscall

    try:
        infos = await syscall(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise NameNotFound(f"dial: lookup {host!r}: {err.strerror}", host, err.errno) from err
    if not infos:  # pragma: no cover - getaddrinfo raises instead
        raise NameNotFound(f"dial: lookup {host!r}: no address", host)
    return infos


def partial_deadline(deadline: float | None, now: float, left: int) -> float | None:
    """Go's ``partialDeadline``: the deadline of one of ``left`` addresses still to try."""
    if deadline is None:
        return None
    remaining = deadline - now
    share = remaining / left
    if share < SANE_MINIMUM:
        share = min(remaining, SANE_MINIMUM)
    return now + share


async def dial(
    host: str,
    port: int,
    timeout: float | None = None,
    ssl: SSLContext | bool | None = None,
    server_hostname: str | None = None,
) -> Conn:
    """Connect to ``host:port`` over TCP (Go's ``net.Dial``, or ``tls.Dial`` with ``ssl=``).

    A host name that is not an address is resolved with ``ragged.syscall``
    (the P is released meanwhile); every address it resolves to is tried in
    order, each with its share of what is left of ``timeout`` (Go's
    ``dialSerial``), and the first error is raised if none connects.  With
    ``ssl=`` (an ``ssl.SSLContext``, or True for ``ssl.create_default_context()``)
    the TLS handshake is done before ``dial`` returns a :class:`TLSConn`;
    ``server_hostname`` (default: ``host``) is the name the certificate must
    carry.  ``timeout`` bounds the whole dial, the handshake included.

    :raises NameNotFound: at once, if ``host`` does not resolve.
    :raises TypeError: if ``host`` is not a str or ``port`` not an int, or for a bad ``timeout`` or ``ssl``.
    :raises ValueError: for a port outside 0..65535, or a NaN ``timeout``.
    :raises IOTimeout: when ``timeout`` passes first.
    :raises OSError: the first connection error (``ConnectionRefusedError``...).
    :raises TLSCertificateError: the server's certificate does not verify (:class:`TLSHostnameError`:
        not for ``server_hostname``).
    :raises TLSHandshakeError: the TLS handshake failed otherwise (the server closed, no common protocol).
    :raises Cancelled: if the goroutine is cancelled while waiting.
    :raises NotInGoroutine: outside a goroutine.
    :Called from: inside a goroutine.
    """
    check_addr(host, port, "dial()")
    timeout = check_timeout(timeout)
    ctx = check_ssl(ssl, "dial()", server_side=False)
    if server_hostname is not None and not isinstance(server_hostname, str):
        raise TypeError(f"dial(): server_hostname takes a str, not {type(server_hostname).__name__}")
    current_g("ragged.net.dial()")
    deadline = None if timeout is None else _monotonic() + timeout
    infos = await resolve(host, port)
    first: BaseException | None = None
    for i, (family, stype, proto, _, addr) in enumerate(infos):
        now = _monotonic()
        if deadline is not None and now >= deadline:
            break
        conn = Conn(socket.socket(family, stype, proto))
        try:
            await _connect(conn, addr, partial_deadline(deadline, now, len(infos) - i))
        except OSError as err:
            conn.close()
            if first is None:
                first = err
            continue
        except BaseException:
            conn.close()
            raise
        if ctx is None:
            return conn
        from ._tls import starttls

        return await starttls(conn, ctx, server_hostname=host if server_hostname is None else server_hostname,
                              deadline=deadline)  # fmt: skip
    if deadline is not None and _monotonic() >= deadline and (first is None or isinstance(first, IOTimeout)):
        raise IOTimeout(f"dial {host}:{port}: i/o timeout")
    assert first is not None  # at least one address was tried
    raise first


async def dial_unix(path: str | bytes | os.PathLike[str], timeout: float | None = None) -> Conn:
    """Connect to the Unix-domain stream socket at ``path`` (Go's ``net.Dial("unix", path)``).

    :raises TypeError: if ``path`` is not a str, bytes or path, or for a bad ``timeout``.
    :raises ValueError: for an empty path, or a NaN ``timeout``.
    :raises IOTimeout: when ``timeout`` passes first.
    :raises OSError: what connecting reports (``FileNotFoundError``, ``ConnectionRefusedError``...).
    :raises Cancelled: if the goroutine is cancelled while waiting.
    :raises NotInGoroutine: outside a goroutine.
    :Called from: inside a goroutine.
    """
    p = check_unix_path(path, "dial_unix()")
    timeout = check_timeout(timeout)
    current_g("ragged.net.dial_unix()")
    deadline = None if timeout is None else _monotonic() + timeout
    conn = Conn(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
    try:
        await _connect(conn, p, deadline)
    except BaseException:
        conn.close()
        raise
    return conn


async def _connect(conn: Conn, addr: Any, deadline: float | None) -> None:
    """Start a non-blocking connect and wait for it on the poller."""
    sock = conn._sock
    conn._attach()  # the runtime owns it from here: its close() closes the connection
    err = sock.connect_ex(addr)
    if err in _IN_PROGRESS:
        left = None if deadline is None else max(deadline - _monotonic(), 0.0)
        try:
            await conn._wait(WRITE, left)
        except IOTimeout:
            raise IOTimeout(f"dial {addr}: i/o timeout") from None
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        raise OSError(err, f"dial {addr}: {os.strerror(err)}")  # OSError picks the subclass (ConnectionRefusedError...)
    conn.remote_addr = sock.getpeername()
    conn.local_addr = sock.getsockname()
