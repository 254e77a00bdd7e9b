"""Listeners (Go's ``net.Listener``): TCP (:func:`listen`, optionally TLS) and Unix-domain (:func:`listen_unix`)."""

from __future__ import annotations

import errno
import os
import socket
import ssl as _ssl
import stat
from ssl import SSLContext
from typing import Any

from .._core import READ, TooManyOpenFiles, checkpoint
from ._conn import Conn
from ._fd import NetFD, check_addr

_EMFILE = (errno.EMFILE, errno.ENFILE)


class Listener(NetFD):
    """A listening socket (Go's ``net.Listener``), from :func:`listen` or :func:`listen_unix`.

    ``addr`` is the address it listens on; ``async with ln:`` closes it (and
    removes the socket file of a Unix-domain listener, as Go does).

    :raises TypeError: if ``sock`` is not a ``socket.socket``.
    :raises NetClosed: if the socket is closed already.
    :Called from: anywhere; ``accept`` is awaited in a goroutine.
    """

    __slots__ = ("addr", "ssl_context", "_unlink")

    def __init__(self, sock: socket.socket, ssl_context: SSLContext | None = None) -> None:
        super().__init__(sock)
        self.addr: Any = sock.getsockname()
        self.ssl_context = ssl_context  # accept() wraps each connection in TLS with it
        self._unlink: str | bytes | None = None  # a Unix socket file to remove on close

    def __repr__(self) -> str:
        tls = " tls" if self.ssl_context is not None else ""
        return f"<ragged.net.Listener {self.addr}{tls}{' closed' if self.closed else ''}>"

    async def accept(self) -> Conn:
        """Wait for the next connection and return it.

        On a TLS listener the connection is a :class:`TLSConn` whose handshake
        runs on its first read or write, or on ``await conn.handshake()`` (as in
        Go: a slow client never holds up the accept loop).

        :raises TooManyOpenFiles: when the process is out of descriptors (the
            connection stays queued; accept again once some are closed).
        :raises NetClosed: once the listener is closed.
        :raises IOTimeout: past the read deadline.
        :raises Cancelled: if the goroutine is cancelled while waiting.
        :raises NotInGoroutine: outside a goroutine, when it has to wait.
        :Called from: inside a goroutine.
        """
        await checkpoint()
        self._attach()  # from its first use the runtime owns it: its close() closes it
        await self._mu.acquire(READ)
        try:
            while True:
                try:
                    sock, _ = self._sock.accept()
                except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                    await self._wait(READ)
                    continue
                except OSError as err:
                    if err.errno in _EMFILE:
                        raise TooManyOpenFiles(
                            f"accept: out of file descriptors ({err.strerror}); the connection waits in the "
                            "backlog: close some descriptors (or raise RLIMIT_NOFILE) and accept again",
                            err.errno,
                        ) from err
                    raise
                break
        finally:
            self._release(READ)
        try:
            if self.ssl_context is None:
                conn = Conn(sock)
            else:
                from ._tls import TLSConn

                conn = TLSConn.wrap(sock, self.ssl_context, server_side=True)
        except BaseException:
            sock.close()
            raise
        try:
            conn._attach()  # the runtime owns it from here: its close() closes a connection nobody used
        except BaseException:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        """Close: a waiting ``accept`` ends at once with NetClosed; a Unix socket file is removed.

        :raises: nothing.
        :Called from: anywhere.
        """
        first = not self.closed
        super().close()
        path, self._unlink = self._unlink, None
        if first and path is not None:
            try:
                os.unlink(path)
            except OSError:
                pass  # removed by someone else already


def _check_backlog(backlog: Any, what: str) -> None:
    if isinstance(backlog, bool) or not isinstance(backlog, int) or backlog < 0:
        raise ValueError(f"{what}: backlog must be an int >= 0, not {backlog!r}")


def check_ssl(ssl: Any, what: str, server_side: bool) -> SSLContext | None:
    """An ``ssl=`` argument: None, an ``ssl.SSLContext``, or True (a default context; clients only)."""
    if ssl is None or ssl is False:
        return None
    if ssl is True and not server_side:
        return _ssl.create_default_context()
    if not isinstance(ssl, _ssl.SSLContext):
        need = "an ssl.SSLContext with a certificate loaded" if server_side else "an ssl.SSLContext or True"
        raise TypeError(f"{what}: ssl= takes {need}, not {type(ssl).__name__}")
    return ssl


def listen(host: str, port: int, backlog: int = 128, ssl: SSLContext | None = None) -> Listener:
    """Listen for TCP connections on ``host:port`` (port 0: any free port; see ``ln.addr``).

    With ``ssl=`` a server ``ssl.SSLContext`` (``ssl.create_default_context(
    ssl.Purpose.CLIENT_AUTH)`` with ``load_cert_chain`` done), ``accept()``
    returns :class:`TLSConn` connections.  The host is resolved here,
    synchronously (use an address or ``localhost``).

    :raises TypeError: if ``host`` is not a str, ``port`` not an int, or ``ssl`` not an SSLContext.
    :raises ValueError: for a port outside 0..65535 or a negative ``backlog``.
    :raises OSError: what binding reports (``OSError`` EADDRINUSE, ``socket.gaierror``).
    :Called from: anywhere; ``accept()`` is awaited in a goroutine.
    """
    check_addr(host, port, "listen()")
    _check_backlog(backlog, "listen()")
    ctx = check_ssl(ssl, "listen()", server_side=True)
    family, stype, proto, _, addr = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, stype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(backlog)
        return Listener(sock, ctx)
    except BaseException:
        sock.close()
        raise


def check_unix_path(path: Any, what: str) -> str | bytes:
    """Validate a Unix-domain socket path (str or bytes; a leading NUL is Linux's abstract namespace)."""
    if not hasattr(socket, "AF_UNIX"):  # pragma: no cover - Windows without AF_UNIX
        raise OSError(errno.EAFNOSUPPORT, f"{what}: Unix-domain sockets are not available on this platform")
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, (str, bytes)):
        raise TypeError(f"{what} takes a socket path (str, bytes or os.PathLike), not {type(path).__name__}")
    if not path:
        raise ValueError(f"{what} takes a non-empty socket path")
    return path


def listen_unix(path: str | bytes | os.PathLike[str], backlog: int = 128) -> Listener:
    """Listen on a Unix-domain stream socket at ``path`` (Go's ``net.Listen("unix", path)``).

    The socket file is made here and removed by ``close()``.  A leading NUL
    byte names a socket in Linux's abstract namespace (no file).  A path where
    a file exists already is refused, as in Go: remove a stale socket first.

    :raises TypeError: if ``path`` is not a str, bytes or path.
    :raises ValueError: for an empty path or a negative ``backlog``.
    :raises OSError: what binding reports (``EADDRINUSE`` when the file exists, ``ENOENT``...).
    :Called from: anywhere; ``accept()`` is awaited in a goroutine.
    """
    p = check_unix_path(path, "listen_unix()")
    _check_backlog(backlog, "listen_unix()")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(p)
        sock.listen(backlog)
        ln = Listener(sock)
    except BaseException:
        sock.close()
        raise
    abstract = p[:1] in ("\0", b"\0")
    if not abstract:
        try:
            if stat.S_ISSOCK(os.stat(p).st_mode):
                ln._unlink = p
        except OSError:
            pass
    return ln
