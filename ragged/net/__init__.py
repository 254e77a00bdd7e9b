"""ragged.net: network I/O whose waits park on the network poller (Go's ``net`` and ``crypto/tls``).

A goroutine that reads, writes, accepts or connects tries the non-blocking
socket call first; when it would block, the goroutine parks on the runtime's
poller and holds no thread until the fd is ready, its deadline passes, it is
cancelled or the connection is closed.  So 10,000 idle connections cost
10,000 parked goroutines and no extra OS thread.

::

    ln = ragged.net.listen("127.0.0.1", 0)       # Listener: ln.addr, await ln.accept(), ln.close()
    c = await ragged.net.dial(*ln.addr)          # Conn
    await c.write(b"ping"); data = await c.read(4096)

What there is: TCP (:func:`listen`, :func:`dial`), TLS on the same calls
(``ssl=``; :class:`TLSConn`, :meth:`Conn.starttls`), Unix-domain stream
sockets (:func:`listen_unix`, :func:`dial_unix`), UDP (:func:`listen_packet`,
:class:`PacketConn`), and waits on bare fds (:func:`~ragged.wait_readable`,
:func:`~ragged.wait_writable`).  Modules: ``_fd`` (what every object shares: the
socket, its poll descriptor, turns, close, deadlines), ``_conn``
(:class:`Conn`), ``_listen`` (listeners), ``_dial`` (names and dialling),
``_tls``, ``_packet``, ``_wait``, ``_errors``.

Behaviour to rely on:

* ``read(n)`` returns what is there (at most ``n`` bytes), ``b""`` at end of
  stream; ``read_exactly(n)`` raises :class:`~ragged.UnexpectedEOF` (with
  ``partial``) if the stream ends first; ``read_until(sep, limit)`` returns a
  line and keeps what it read beyond it for the next read; ``write(data)``
  writes everything.
* Reads are served one at a time and so are writes (Go's ``fdMutex``): two
  goroutines reading one connection take turns instead of failing.  Every
  call is a safe point (``checkpoint``), and a read that found data at once
  ``HOT_READS`` times in a row yields its P, so one busy connection cannot
  starve the others.
* ``close()`` from anywhere ends every wait on the connection at once with
  :class:`~ragged.NetClosed` ("use of closed network connection", as in Go); the fd
  itself is closed when the last call in progress on it has returned.
* ``set_deadline(t)`` (``time.monotonic()`` seconds, None to clear), and the
  read / write variants: a wait past it raises :class:`~ragged.IOTimeout`, also a wait
  already parked when the deadline is moved into the past.  For a
  ``ragged.Context`` use ``c.set_deadline(ctx.deadline())``.
* ``g.cancel()`` of a waiting goroutine raises ``Cancelled`` in it at once and
  drops the fd's interest.  Errors the OS reports about the connection
  (``ConnectionResetError``, ``BrokenPipeError``, ``ConnectionRefusedError``)
  pass through unchanged; ``accept`` out of descriptors raises
  :class:`~ragged.TooManyOpenFiles` and keeps working once some are free.
* A connection belongs to the runtime whose goroutine first waits on it;
  closing that runtime closes every connection and listener still open on it.
"""

from __future__ import annotations

from .._core import FdBusy, IOTimeout, NetClosed, NetError, NotPollable, TooManyOpenFiles, UnexpectedEOF
from ._conn import HOT_READS, Conn
from ._dial import dial, dial_unix
from ._errors import (
    DatagramTooLarge,
    LineTooLong,
    NameNotFound,
    TLSCertificateError,
    TLSError,
    TLSHandshakeError,
    TLSHostnameError,
    TLSTruncated,
)
from ._listen import Listener, listen, listen_unix
from ._packet import PacketConn, listen_packet
from ._tls import TLSConn
from ._wait import wait_readable, wait_writable

__all__ = [
    "HOT_READS",
    "Conn",
    "DatagramTooLarge",
    "FdBusy",
    "IOTimeout",
    "LineTooLong",
    "Listener",
    "NameNotFound",
    "NetClosed",
    "NetError",
    "NotPollable",
    "PacketConn",
    "TLSCertificateError",
    "TLSConn",
    "TLSError",
    "TLSHandshakeError",
    "TLSHostnameError",
    "TLSTruncated",
    "TooManyOpenFiles",
    "UnexpectedEOF",
    "dial",
    "dial_unix",
    "listen",
    "listen_packet",
    "listen_unix",
    "wait_readable",
    "wait_writable",
]
