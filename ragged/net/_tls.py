"""TLS connections (Go's ``crypto/tls.Conn``) on a non-blocking ``ssl.SSLSocket``.

Why an ``SSLSocket`` and not an ``SSLObject`` over two ``MemoryBIO``\\ s
(trio's and asyncio's shape): measured with ``benchmarks/net_tls_choice.py``
(64-byte echo, server CPU per round trip, the same lock and wait around every
call), the ``SSLSocket`` costs 12.3µs against 14.0µs on CPython 3.11 (GIL)
and 12.9µs against 14.8µs on 3.13t: one C call reads the socket and decrypts,
where the BIO pump needs ``recv``, ``MemoryBIO.write``, ``SSLObject.read``
and, to send, ``SSLObject.write``, ``MemoryBIO.read`` and ``send``.  What the
BIO shape would add -- handing bytes already read on the plain connection to
TLS at a STARTTLS -- is refused instead (:meth:`Conn.starttls`).

The SSL object is not safe to call from two threads at once, and goroutines
of one connection may run on parallel Ms: every call into it is made under
``_ssl_lock``, held for that one non-blocking call and never across a park.
Reads and writes still take their turns (``FdMutex``), so TLS records go out
in order.  A call that wants the other direction (a TLS 1.2 renegotiation, a
write that must read first) waits for it if nobody is using that direction,
else retries after 1ms while the goroutine that is lets the SSL object progress.

The handshake runs once, holding both turns (read, then write: the order of
every caller), on ``dial(ssl=)`` and ``starttls`` before they return, and for
accepted connections on the first read or write (or ``await handshake()``),
as Go's ``tls.Conn`` does.  A failed handshake is kept and raised again by
every later call.
"""

from __future__ import annotations

import socket
import ssl as _ssl
import time
import types
from collections.abc import Generator
from ssl import SSLContext, SSLSocket
from typing import Any

from .._core import READ, WRITE, NetClosed, NetError, Rank, check_timeout, lock_maker, poll_close, pollwait, ready
from ._conn import Conn
from ._errors import TLSCertificateError, TLSError, TLSHandshakeError, TLSHostnameError, TLSTruncated
from ._fd import CLOSED

_new_ssl_lock = lock_maker(Rank.SSL, "TLSConn._ssl_lock")  # threading.Lock unless RAGGED_DEBUG

_monotonic = time.monotonic
_HOSTNAME_MISMATCH = 62  # X509_V_ERR_HOSTNAME_MISMATCH
_IP_MISMATCH = 64  # X509_V_ERR_IP_ADDRESS_MISMATCH
_PEER_GONE = (_ssl.SSLEOFError, _ssl.SSLZeroReturnError, ConnectionResetError, BrokenPipeError)


def _handshake_error(err: BaseException) -> TLSError:
    """The named error for a failed handshake."""
    if isinstance(err, _ssl.SSLCertVerificationError):
        code, msg = err.verify_code, err.verify_message
        cls = TLSHostnameError if code in (_HOSTNAME_MISMATCH, _IP_MISMATCH) else TLSCertificateError
        return cls(f"TLS handshake: the peer's certificate did not verify: {msg}", code, msg)
    if isinstance(err, _PEER_GONE):
        return TLSHandshakeError(f"TLS handshake: the peer closed the connection during the handshake ({err})")
    reason = getattr(err, "reason", None) or str(err)
    return TLSHandshakeError(f"TLS handshake failed: {reason}")


class TLSConn(Conn):
    """A TLS connection (Go's ``tls.Conn``): from ``dial(..., ssl=)``, from the ``accept()`` of a
    ``listen(..., ssl=)`` listener, or from :meth:`Conn.starttls`.

    The same methods as :class:`Conn` (``read``, ``read_exactly``,
    ``read_until``, ``write``, ``close``, deadlines, ``async with``); ``read``
    returns ``b""`` once the peer sent its close-notify, and raises
    :class:`TLSTruncated` if the TCP stream ends without one.  ``close()``
    sends a close-notify first when no read or write is in progress.  After
    the handshake: ``version``, ``cipher``, ``alpn_protocol``,
    :meth:`peer_certificate`.  Reads and writes also raise what TLS adds:
    :class:`TLSHandshakeError` (and :class:`TLSCertificateError`) from the
    handshake they run when it has not run, :class:`TLSTruncated`, and
    :class:`TLSError` for any other protocol error.

    :raises TypeError: if ``sock`` is not an ``ssl.SSLSocket``.
    :raises NetClosed: if the socket is closed already.
    :Called from: anywhere; its reads and writes are awaited in goroutines.
    """

    __slots__ = ("_ssl_lock", "_ssl", "_hs_done", "_hs_err", "server_side", "server_hostname")

    def __init__(self, sock: SSLSocket) -> None:
        if not isinstance(sock, _ssl.SSLSocket):
            raise TypeError(f"TLSConn wraps an ssl.SSLSocket, not {type(sock).__name__}")
        super().__init__(sock)
        self._ssl_lock = _new_ssl_lock()  # every call into the SSL object
        # The C-level SSL object where the ssl module exposes it: SSLSocket.recv
        # and send are Python wrappers around its read and write (two and one
        # frames more per call, and an exception raised through them on every
        # "want read").  Its read/write behave the same (no ragged-EOF suppression).
        self._ssl: Any = getattr(sock, "_sslobj", None) or sock
        self._hs_done = False  # written once, holding both turns
        self._hs_pending = True  # the first read or write runs the handshake
        self._hs_err: TLSError | None = None
        self.server_side: bool = sock.server_side
        self.server_hostname: str | None = sock.server_hostname

    @classmethod
    def wrap(
        cls, sock: socket.socket, ctx: SSLContext, server_side: bool, server_hostname: str | None = None
    ) -> TLSConn:
        """A TLS connection over the connected socket ``sock`` (taken over), handshake not yet done."""
        try:
            ssock = ctx.wrap_socket(
                sock,
                server_side=server_side,
                do_handshake_on_connect=False,
                suppress_ragged_eofs=False,
                server_hostname=None if server_side else server_hostname,
            )
        except ValueError as err:  # e.g. check_hostname without server_hostname
            raise TLSError(f"cannot start TLS: {err}") from err
        return cls(ssock)

    # ------------------------------------------------------------ handshake

    async def handshake(self, timeout: float | None = None) -> None:
        """Run the TLS handshake now if it has not run (else the first read or write runs it).

        :raises TLSCertificateError: the peer's certificate does not verify (:class:`TLSHostnameError`:
            not for ``server_hostname``).
        :raises TLSHandshakeError: the peer closed during the handshake, or no common protocol or cipher.
        :raises IOTimeout: after ``timeout`` seconds or past a deadline.
        :raises TypeError: for a ``timeout`` that is not a number or None.
        :raises ValueError: for a NaN ``timeout``.
        :raises NetClosed: if the connection is or gets closed.
        :raises Cancelled: if the goroutine is cancelled while waiting.
        :raises NotInGoroutine: outside a goroutine.
        :Called from: inside a goroutine.
        """
        timeout = check_timeout(timeout)
        if not self._hs_done:
            await self._handshake_until(None if timeout is None else _monotonic() + timeout)

    async def _handshake_until(self, deadline: float | None) -> None:
        """Take both turns (read, then write) and run the handshake unless it ran, by ``deadline``."""
        mu = self._mu
        await mu.acquire(READ)
        try:
            await mu.acquire(WRITE)
            try:
                if self._hs_err is not None:
                    raise self._hs_err
                if not self._hs_done:
                    await self._do_handshake(deadline)
                    self._hs_pending = False
            finally:
                self._release(WRITE)
        finally:
            self._release(READ)

    async def _do_handshake(self, deadline: float | None) -> None:
        """The handshake loop.  Holds both turns."""
        sock, lock = self._sock, self._ssl_lock
        while True:
            try:
                with lock:
                    sock.do_handshake()  # type: ignore[attr-defined]
                break
            except _ssl.SSLWantReadError:
                d = READ
            except _ssl.SSLWantWriteError:
                d = WRITE
            except (_ssl.SSLError, *_PEER_GONE) as err:
                self._hs_err = _handshake_error(err)
                raise self._hs_err from err
            left = None if deadline is None else max(deadline - _monotonic(), 0.0)
            await pollwait(self._attach(), d, left)
        self._hs_done = True

    async def _handshake(self) -> None:
        """The first read or write runs the handshake (Go's ``tls.Conn`` does the same)."""
        await self._handshake_until(None)

    # ------------------------------------------------------------ the I/O primitives

    @types.coroutine
    def _recv(self, n: int) -> Generator[Any, Any, bytes]:
        """Up to ``n`` bytes of plaintext; b"" after the peer's close-notify.  Holds the read turn."""
        obj, lock = self._ssl, self._ssl_lock
        hot = True
        while True:
            try:
                with lock:
                    data = obj.read(n)
            except _ssl.SSLWantReadError:
                hot = False
                yield from pollwait(self._attach(), READ, None)
                continue
            except _ssl.SSLWantWriteError:
                yield from self._wait_other(WRITE)
                continue
            except _ssl.SSLEOFError as err:
                raise TLSTruncated("the peer ended the TCP stream without a TLS close-notify") from err
            except _ssl.SSLError as err:
                raise TLSError(f"TLS read: {getattr(err, 'reason', None) or err}") from err
            self._hot = self._hot + 1 if hot else 0
            return data

    @types.coroutine
    def _send(self, view: bytes | memoryview) -> Generator[Any, Any, None]:
        """Write all of ``view`` as TLS records.  Holds the write turn.

        After a "want write" OpenSSL needs the same bytes again: ``off`` only
        moves on a call that succeeded.
        """
        obj, lock = self._ssl, self._ssl_lock
        total = len(view)
        off = 0
        while off < total:
            try:
                with lock:
                    off += obj.write(view[off:] if off else view)
            except _ssl.SSLWantWriteError:
                yield from pollwait(self._attach(), WRITE, None)
            except _ssl.SSLWantReadError:
                yield from self._wait_other(READ)
            except _ssl.SSLError as err:
                raise TLSError(f"TLS write: {getattr(err, 'reason', None) or err}") from err

    @types.coroutine
    def _wait_other(self, d: int) -> Generator[Any, Any, None]:
        """The SSL object wants direction ``d``, which another call may be using (see the module docstring)."""
        if self._mu.try_acquire(d):
            try:
                yield from pollwait(self._attach(), d, None)
            finally:
                self._release(d)
        else:
            from .._api import sleep

            yield from sleep(0.001).__await__()

    # ------------------------------------------------------------ close

    def _close_notify(self) -> None:
        """Send a close-notify, best effort, without waiting.  The caller holds both turns."""
        try:
            with self._ssl_lock:
                self._sock.unwrap()  # type: ignore[attr-defined]
        except (_ssl.SSLError, OSError, ValueError):
            pass  # sent (the peer's own close-notify is not awaited), or the connection is gone

    def close(self) -> None:
        """Close: a close-notify goes out first if the handshake is done and no read or write is in
        progress (as Go's ``tls.Conn.Close``, which skips it during a write); then as :meth:`Conn.close`.

        :raises: nothing.
        :Called from: anywhere.
        """
        mu = self._mu
        if self._hs_done and not mu.closed:
            try:
                got = mu.try_acquire(READ)
            except NetClosed:
                return
            if got:
                try:
                    if mu.try_acquire(WRITE):
                        self._close_notify()
                        self._release(WRITE)
                except NetClosed:
                    pass
                finally:
                    self._release(READ)
        super().close()

    def close_write(self) -> None:
        """Send a close-notify: the peer reads end of stream; this side can still read (Go's ``CloseWrite``).

        :raises NetError: before the handshake, or while a write is in progress.
        :raises NetClosed: if the connection is closed.
        :Called from: anywhere.
        """
        if not self._hs_done:
            raise NetError("close_write() before the TLS handshake is done")
        mu = self._mu
        if not mu.try_acquire(WRITE):
            raise NetError("close_write() while a write is in progress: wait for it first")
        try:
            self._close_notify()
        finally:
            self._release(WRITE)

    # ------------------------------------------------------------ what was negotiated

    def _info(self, what: str, *args: Any) -> Any:
        if not self._hs_done or self._mu.closed:
            return None
        with self._ssl_lock:
            try:
                return getattr(self._sock, what)(*args)
            except (ValueError, OSError):
                return None

    @property
    def version(self) -> str | None:
        """The negotiated protocol (``"TLSv1.3"``...), or None before the handshake."""
        return self._info("version")

    @property
    def cipher(self) -> tuple[str, str, int] | None:
        """``(name, protocol, secret bits)`` of the negotiated cipher, or None before the handshake."""
        return self._info("cipher")

    @property
    def alpn_protocol(self) -> str | None:
        """The protocol chosen by ALPN (``ssl_context.set_alpn_protocols``), or None."""
        return self._info("selected_alpn_protocol")

    def peer_certificate(self, binary: bool = False) -> Any:
        """The peer's certificate: a dict as ``ssl.SSLSocket.getpeercert()`` gives (empty if it was not
        verified), or its DER bytes with ``binary=True``; None before the handshake or without one.

        :raises: nothing.
        :Called from: anywhere.
        """
        return self._info("getpeercert", binary)


async def starttls(
    conn: Conn,
    ssl: SSLContext,
    server_side: bool = False,
    server_hostname: str | None = None,
    deadline: float | None = None,
) -> TLSConn:
    """Upgrade ``conn`` to TLS: wait for its calls in progress, take its socket over, handshake.

    ``conn`` is closed for use afterwards (its calls raise NetClosed); the
    socket lives on in the returned :class:`TLSConn`, which keeps ``conn``'s
    deadlines.  Closes the socket if the handshake fails.
    """
    mu = conn._mu
    await mu.acquire(READ)
    try:
        await mu.acquire(WRITE)
    except BaseException:
        conn._release(READ)
        raise
    if conn._rbuf:  # stable: we hold the read turn
        conn._release(WRITE)
        conn._release(READ)
        raise NetError(
            f"starttls(): {len(conn._rbuf)} bytes were already read past the last line; a TLS upgrade "
            "needs the peer to wait for this side's go-ahead before it starts the handshake"
        )
    with mu.lock:
        mu.closed = True  # the turns stay held: nothing closes the socket through conn
        waiters = mu.q[READ].drain_claimed() + mu.q[WRITE].drain_claimed()
        poll_close(conn._pd, NetClosed(f"{CLOSED} (upgraded to TLS)"))
        deadlines = list(conn._pd.deadline)
        sock = conn._sock
    for s in waiters:
        ready(s, None, NetClosed(f"{CLOSED} (upgraded to TLS)"))
    try:
        tls = TLSConn.wrap(sock, ssl, server_side, server_hostname)
    except BaseException:
        sock.close()
        raise
    tls._pd.deadline = deadlines
    try:
        await tls._handshake_until(deadline)
    except BaseException:
        tls.close()
        raise
    return tls
