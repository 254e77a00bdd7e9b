"""The errors ``ragged.net`` adds to the poller's own (:class:`~ragged.NetError` and its subclasses).

Each says what happened and carries what the caller needs to go on: the bytes
read so far, the name that did not resolve, the size of a datagram that did
not fit.  The standard library's exception is kept as ``__cause__``.
"""

from __future__ import annotations

from typing import Any

from .._core import NetError


class LineTooLong(NetError):
    """``read_until`` read ``limit`` bytes without finding the separator.

    ``partial`` holds those ``limit`` bytes (taken from the stream); the rest
    of the stream stays buffered for the next read (Go's ``bufio.ErrBufferFull``).
    """

    def __init__(self, message: str, partial: bytes = b"") -> None:
        super().__init__(message)
        self.partial = partial


class NameNotFound(NetError, OSError):
    """``dial`` could not resolve the host name (Go's ``DNSError`` with ``IsNotFound``).

    ``host`` is the name; ``errno`` the resolver's error code (``socket.EAI_*``).
    """

    def __init__(self, message: str, host: str, errno: int | None = None) -> None:
        NetError.__init__(self, message, errno)
        self.host = host

    def __str__(self) -> str:
        return str(self.args[0])


class DatagramTooLarge(NetError):
    """``read_from(n)`` received a datagram longer than ``n`` bytes.

    The datagram is consumed (as by the OS); ``partial`` holds its first ``n``
    bytes, ``size`` its real length where the OS reports it (Linux), else None,
    and ``addr`` the sender.  Read with a larger ``n`` to get such datagrams whole.
    """

    def __init__(self, message: str, partial: bytes, size: int | None, addr: Any) -> None:
        super().__init__(message)
        self.partial = partial
        self.size = size
        self.addr = addr


class TLSError(NetError):
    """Base of the TLS errors of ``ragged.net``; the ``ssl`` module's exception is the ``__cause__``."""


class TLSHandshakeError(TLSError):
    """The TLS handshake failed: the peer closed the connection during it, or the two sides
    share no protocol version or cipher, or a message was malformed."""


class TLSCertificateError(TLSHandshakeError):
    """The peer's certificate did not verify (unknown issuer, expired, self-signed...).

    ``verify_code`` and ``verify_message`` are OpenSSL's (``ssl.SSLCertVerificationError``'s).
    """

    def __init__(self, message: str, verify_code: int | None = None, verify_message: str | None = None) -> None:
        super().__init__(message)
        self.verify_code = verify_code
        self.verify_message = verify_message


class TLSHostnameError(TLSCertificateError):
    """The peer's certificate is valid but not for the name dialled (``server_hostname``)."""


class TLSTruncated(TLSError, EOFError):
    """The peer ended the TCP stream without a TLS close-notify: what was sent may have been cut.

    A clean end (the peer's close-notify) reads as ``b""``, as on a plain connection.
    Many HTTP servers skip the close-notify once the body's length is known;
    read exactly that length and the truncation is never seen.
    """
