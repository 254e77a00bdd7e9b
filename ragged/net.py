"""ragged.net: TCP listeners and connections whose waits park on the network poller (Go's ``net``).

A goroutine that reads, writes, accepts or connects tries the non-blocking
socket call first; when it would block, the goroutine parks on the runtime's
poller (``_netpoll``) and holds no thread until the fd is ready, its deadline
passes, it is cancelled or the connection is closed.  So 10,000 idle
connections cost 10,000 parked goroutines and no extra OS thread.

::

    ln = ragged.net.listen("127.0.0.1", 0)       # Listener: ln.addr, await ln.accept(), ln.close()
    c = await ragged.net.dial(*ln.addr)          # Conn
    await c.write(b"ping"); data = await c.read(4096)

Behaviour to rely on:

* ``read(n)`` returns what is there (at most ``n`` bytes), ``b""`` at end of
  stream; ``read_exactly(n)`` raises :class:`~ragged.UnexpectedEOF` (with
  ``partial``) if the stream ends first; ``write(data)`` writes everything.
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

import errno
import ipaddress
import os
import socket
import time
from typing import Any, Self

from ._core import (
    READ,
    WRITE,
    FdBusy,
    IOTimeout,
    NetClosed,
    NetError,
    NetPoll,
    NotPollable,
    PollDesc,
    Rank,
    Sudog,
    TooManyOpenFiles,
    UnexpectedEOF,
    WaitQueue,
    check_timeout,
    checkpoint,
    current_g,
    gosched,
    lock_maker,
    netpoll_of,
    park_on,
    pollwait,
    ready,
)

_monotonic = time.monotonic
_R, _W = 0, 1
_EMFILE = (errno.EMFILE, errno.ENFILE)
_CLOSED = "use of closed network connection"
# After this many reads in a row that found data without waiting, a read
# yields its P first (gosched): under load a connection whose peer answers at
# once would otherwise keep the P until preempted (10ms) while the other ready
# connections wait -- throughput at the cost of their latency.
HOT_READS = 4

_new_fd_lock = lock_maker(Rank.NETFD, "ragged.net _FdMutex.lock")  # threading.Lock unless RAGGED_DEBUG


class _FdMutex:
    """Go's ``fdMutex``: serialises reads and writes, and delays the real close.

    ``lock`` guards everything.  ``busy[i]``: a read (i=0) / write (i=1) is in
    progress; others queue on ``q[i]`` and are handed the turn in FIFO order.
    ``refs``: calls in progress; after ``closed`` the last one out closes the fd.
    """

    __slots__ = ("lock", "closed", "refs", "busy", "q")

    def __init__(self) -> None:
        self.lock = _new_fd_lock()
        self.closed = False
        self.refs = 0
        self.busy = [False, False]
        self.q = (WaitQueue(), WaitQueue())

    def try_acquire(self, i: int) -> bool:
        """Take the read (0) / write (1) turn if free.  Raises NetClosed once closed."""
        with self.lock:
            if self.closed:
                raise NetClosed(_CLOSED)
            if self.busy[i]:
                return False
            self.busy[i] = True
            self.refs += 1
            return True

    async def acquire(self, i: int) -> None:
        """Take the turn, parking behind the calls before us (FIFO)."""
        if self.try_acquire(i):
            return
        g = current_g("ragged.net")
        lock = self.lock
        lock.acquire()
        if self.closed:
            lock.release()
            raise NetClosed(_CLOSED)
        if not self.busy[i]:
            self.busy[i] = True
            self.refs += 1
            lock.release()
            return
        await park_on(self.q[i], lock, "net read lock" if i == _R else "net write lock", Sudog(g))
        # Handed the turn by release() (refs counted for us), or woken by close() with NetClosed.

    def release(self, i: int) -> bool:
        """Give the turn to the next caller; True if the caller must now close the fd."""
        with self.lock:
            self.refs -= 1
            s = None if self.closed else self.q[i].pop_claimed()
            if s is not None:
                self.refs += 1  # the turn passes straight on
            else:
                self.busy[i] = False
            last = self.closed and self.refs == 0
        if s is not None:
            ready(s)
        return last


class _NetFD:
    """What Conn and Listener share: the socket, its poll descriptor, close and deadlines."""

    __slots__ = ("_sock", "_fd", "_mu", "_pd", "_np", "_rd", "_wd", "__weakref__")

    def __init__(self, sock: socket.socket) -> None:
        if not isinstance(sock, socket.socket):
            raise TypeError(f"{type(self).__name__} wraps a socket.socket, not {type(sock).__name__}")
        fd = sock.fileno()
        if fd < 0:
            raise NetClosed(f"{type(self).__name__}: the socket is closed already")
        sock.setblocking(False)
        self._sock = sock
        self._fd = fd
        self._mu = _FdMutex()
        self._pd: PollDesc | None = None
        self._np: NetPoll | None = None
        self._rd = 0.0
        self._wd = 0.0

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called (anywhere)."""
        return self._mu.closed

    def fileno(self) -> int:
        """The fd (-1 once closed).

        :raises: nothing.
        :Called from: anywhere.
        """
        return -1 if self._mu.closed else self._fd

    def _poll_desc(self) -> PollDesc:
        """This fd's poll descriptor on the calling goroutine's runtime, made on first use."""
        pd = self._pd
        if pd is not None:
            return pd
        np = netpoll_of(current_g("ragged.net").sched)
        with self._mu.lock:
            if self._mu.closed:
                raise NetClosed(_CLOSED)
            pd = self._pd
            if pd is None:
                pd = np.open(self._fd, self)
                pd.deadline = [self._rd, self._wd]  # DIR[READ], DIR[WRITE]
                self._np = np
                self._pd = pd
        return pd

    async def _wait(self, bit: int, timeout: float | None = None) -> bool:
        """Park until the fd is ready for ``bit`` (see ``_netpoll.pollwait``); True if it parked."""
        pd = self._poll_desc()
        assert self._np is not None  # set together with _pd
        return await pollwait(self._np, pd, bit, timeout)

    def _release(self, i: int) -> None:
        if self._mu.release(i):
            self._sock.close()

    def close(self) -> None:
        """Close: every wait on it ends at once with NetClosed; the fd closes when the
        last call in progress returns.  Idempotent.

        :raises: nothing.
        :Called from: anywhere.
        """
        mu = self._mu
        err = NetClosed(_CLOSED)
        with mu.lock:
            if mu.closed:
                return
            mu.closed = True
            waiters = mu.q[_R].drain_claimed() + mu.q[_W].drain_claimed()
            pd = self._pd
            if pd is not None:
                assert self._np is not None  # set together with _pd
                self._np.evict(pd, err)  # before the fd can close: never a closed fd in the selector
            last = mu.refs == 0
        for s in waiters:
            ready(s, None, NetClosed(_CLOSED))
        if last:
            self._sock.close()

    def _shutdown(self) -> None:
        """Runtime close (no goroutine runs any more): close, and the fd now whatever is in flight."""
        self.close()
        self._sock.close()

    def set_deadline(self, t: float | None) -> None:
        """Reads and writes (and accepts) waiting past ``t`` raise IOTimeout.

        ``t`` is in ``time.monotonic()`` seconds (e.g. ``time.monotonic() + 5`` or
        ``ctx.deadline()``); None clears it.  Applies to waits already parked.

        :raises TypeError: if ``t`` is not a number or None.
        :raises NetClosed: if it is closed.
        :Called from: anywhere.
        """
        self._set_deadline(READ | WRITE, t, "set_deadline")

    def set_read_deadline(self, t: float | None) -> None:
        """Like :meth:`set_deadline`, for reads (and accepts) only.

        :raises TypeError: if ``t`` is not a number or None.
        :raises NetClosed: if it is closed.
        :Called from: anywhere.
        """
        self._set_deadline(READ, t, "set_read_deadline")

    def set_write_deadline(self, t: float | None) -> None:
        """Like :meth:`set_deadline`, for writes only.

        :raises TypeError: if ``t`` is not a number or None.
        :raises NetClosed: if it is closed.
        :Called from: anywhere.
        """
        self._set_deadline(WRITE, t, "set_write_deadline")

    def _set_deadline(self, bits: int, t: Any, what: str) -> None:
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or t != t):
            raise TypeError(f"{what}() takes a time.monotonic() deadline in seconds, or None; not {t!r}")
        d = 0.0 if t is None else max(float(t), 1e-9)
        with self._mu.lock:
            if self._mu.closed:
                raise NetClosed(_CLOSED)
            if bits & READ:
                self._rd = d
            if bits & WRITE:
                self._wd = d
            pd = self._pd
            if pd is not None:
                assert self._np is not None  # set together with _pd
                self._np.set_deadline(pd, bits, d)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class Conn(_NetFD):
    """A stream connection (Go's ``net.Conn``): from :func:`dial`, :meth:`Listener.accept`,
    or ``Conn(sock)`` around any connected stream socket (made non-blocking).

    ``local_addr`` and ``remote_addr`` are the socket's addresses;
    ``async with conn:`` closes it at the end.

    :raises TypeError: if ``sock`` is not a ``socket.socket``.
    :raises NetClosed: if the socket is closed already.
    :Called from: anywhere; its reads and writes are awaited in goroutines.
    """

    __slots__ = ("local_addr", "remote_addr", "_hot")

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock)
        self._hot = 0  # reads in a row that found data at once (a hint; written by the reader)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as Go does
        self.local_addr: Any = sock.getsockname()
        try:
            self.remote_addr: Any = sock.getpeername()
        except OSError:
            self.remote_addr = None  # not connected yet (dial fills it in)

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        return f"<ragged.net.Conn {self.local_addr} -> {self.remote_addr}{state}>"

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
        _check_n(n, "Conn.read()")
        if self._hot >= HOT_READS:
            self._hot = 0
            await gosched()  # fairness: let the other ready connections have a turn
        else:
            await checkpoint()  # a safe point even when data is there
        mu = self._mu
        if not mu.try_acquire(_R):
            await mu.acquire(_R)
        try:
            recv = self._sock.recv
            hot = True
            while True:
                try:
                    data = recv(n)
                except (BlockingIOError, InterruptedError):
                    hot = False
                    await self._wait(READ)
                    continue
                self._hot = self._hot + 1 if hot else 0
                return data
        finally:
            self._release(_R)

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
        _check_n(n, "Conn.read_exactly()")
        await checkpoint()
        mu = self._mu
        if not mu.try_acquire(_R):
            await mu.acquire(_R)
        try:
            buf = bytearray(n)
            view = memoryview(buf)
            got = 0
            recv_into = self._sock.recv_into
            while got < n:
                try:
                    k = recv_into(view[got:])
                except (BlockingIOError, InterruptedError):
                    await self._wait(READ)
                    continue
                if k == 0:
                    raise UnexpectedEOF(f"read_exactly({n}): end of stream after {got} bytes", bytes(buf[:got]))
                got += k
            return bytes(buf)
        finally:
            self._release(_R)

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
        try:
            view = memoryview(data).cast("B")
        except TypeError:
            raise TypeError(f"Conn.write() takes bytes-like data, not {type(data).__name__}") from None
        await checkpoint()
        mu = self._mu
        if not mu.try_acquire(_W):
            await mu.acquire(_W)
        try:
            send = self._sock.send
            total = len(view)
            off = 0
            while off < total:
                try:
                    off += send(view[off:] if off else view)
                except (BlockingIOError, InterruptedError):
                    await self._wait(WRITE)
            return total
        finally:
            self._release(_W)

    def close_write(self) -> None:
        """Half-close: the peer reads end of stream; this side can still read (Go's ``CloseWrite``).

        :raises NetClosed: if the connection is closed.
        :raises OSError: what the OS reports (``shutdown``).
        :Called from: anywhere.
        """
        with self._mu.lock:
            if self._mu.closed:
                raise NetClosed(_CLOSED)
            self._sock.shutdown(socket.SHUT_WR)


class Listener(_NetFD):
    """A listening TCP socket (Go's ``net.Listener``), from :func:`listen`.

    ``addr`` is the address it listens on; ``async with ln:`` closes it.

    :raises TypeError: if ``sock`` is not a ``socket.socket``.
    :raises NetClosed: if the socket is closed already.
    :Called from: anywhere; ``accept`` is awaited in a goroutine.
    """

    __slots__ = ("addr",)

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock)
        self.addr: Any = sock.getsockname()

    def __repr__(self) -> str:
        return f"<ragged.net.Listener {self.addr}{' closed' if self.closed else ''}>"

    async def accept(self) -> Conn:
        """Wait for the next connection and return it.

        :raises TooManyOpenFiles: when the process is out of descriptors (the
            connection stays queued; accept again once some are closed).
        :raises NetClosed: once the listener is closed.
        :raises IOTimeout: past the read deadline.
        :raises Cancelled: if the goroutine is cancelled while waiting.
        :raises NotInGoroutine: outside a goroutine, when it has to wait.
        :Called from: inside a goroutine.
        """
        await checkpoint()
        mu = self._mu
        if not mu.try_acquire(_R):
            await mu.acquire(_R)
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
                return Conn(sock)
        finally:
            self._release(_R)


def _check_n(n: Any, what: str) -> None:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{what} takes a byte count (int), not {type(n).__name__}")
    if n <= 0:
        raise ValueError(f"{what} takes a byte count > 0, not {n!r}")


def _check_addr(host: Any, port: Any, what: str) -> None:
    if not isinstance(host, str):
        raise TypeError(f"{what} takes a host name or address (str), not {type(host).__name__}")
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"{what} takes a port number (int), not {type(port).__name__}")
    if not 0 <= port <= 65535:
        raise ValueError(f"{what}: port must be in 0..65535, not {port!r}")


def _numeric(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def listen(host: str, port: int, backlog: int = 128) -> Listener:
    """Listen for TCP connections on ``host:port`` (port 0: any free port; see ``ln.addr``).

    The host is resolved here, synchronously (use an address or ``localhost``).

    :raises TypeError: if ``host`` is not a str or ``port`` not an int.
    :raises ValueError: for a port outside 0..65535 or a negative ``backlog``.
    :raises OSError: what binding reports (``OSError`` EADDRINUSE, ``socket.gaierror``).
    :Called from: anywhere; ``accept()`` is awaited in a goroutine.
    """
    _check_addr(host, port, "listen()")
    if isinstance(backlog, bool) or not isinstance(backlog, int) or backlog < 0:
        raise ValueError(f"listen(): backlog must be an int >= 0, not {backlog!r}")
    family, stype, proto, _, addr = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, stype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(backlog)
        return Listener(sock)
    except BaseException:
        sock.close()
        raise


async def dial(host: str, port: int, timeout: float | None = None) -> Conn:
    """Connect to ``host:port`` over TCP (Go's ``net.Dial``); the connect waits on the poller.

    ``timeout`` bounds the whole dial (:class:`~ragged.IOTimeout`).  A host name that
    is not an address is resolved with ``ragged.syscall`` (the P is released
    meanwhile).  Each address is tried in turn; the last error is raised
    (``ConnectionRefusedError`` and friends).

    :raises TypeError: if ``host`` is not a str or ``port`` not an int, or for a bad ``timeout``.
    :raises ValueError: for a port outside 0..65535, or a negative or NaN ``timeout``.
    :raises IOTimeout: when ``timeout`` passes first.
    :raises OSError: the last connection error (``ConnectionRefusedError``...), or a resolver error.
    :raises Cancelled: if the goroutine is cancelled while waiting.
    :raises NotInGoroutine: outside a goroutine.
    :Called from: inside a goroutine.
    """
    _check_addr(host, port, "dial()")
    timeout = check_timeout(timeout)
    current_g("ragged.net.dial()")
    deadline = None if timeout is None else _monotonic() + timeout
    if _numeric(host):
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    else:
        from ._api import syscall

        infos = await syscall(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
    last: BaseException | None = None
    for family, stype, proto, _, addr in infos:
        conn = Conn(socket.socket(family, stype, proto))
        try:
            await _connect(conn, addr, deadline)
            return conn
        except OSError as err:
            conn.close()
            if isinstance(err, (IOTimeout, TimeoutError)):
                raise
            last = err
        except BaseException:
            conn.close()
            raise
    raise last if last is not None else OSError(f"dial(): no address found for {host!r}")


async def _connect(conn: Conn, addr: Any, deadline: float | None) -> None:
    """Start a non-blocking connect and wait for it on the poller."""
    sock = conn._sock
    err = sock.connect_ex(addr)
    if err in (errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
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


async def wait_readable(fileobj: Any, timeout: float | None = None) -> None:
    """Park the goroutine until ``fileobj`` (an fd or an object with ``fileno()``) is readable.

    For non-blocking fds: try the operation, and on ``BlockingIOError`` wait
    here and try again (a wake-up may be spurious).  Holds no thread while
    waiting.  Close the fd only once nobody waits on it.

    :raises IOTimeout: after ``timeout`` seconds.
    :raises NotPollable: for a closed fd or a regular file.
    :raises FdBusy: if another goroutine already waits to read the same fd.
    :raises TypeError: if ``fileobj`` is neither an int nor has ``fileno()``, or for a bad ``timeout``.
    :raises ValueError: for a negative fd, or a negative or NaN ``timeout``.
    :raises Cancelled: if the goroutine is cancelled while waiting.
    :raises NotInGoroutine: outside a goroutine.
    :Called from: inside a goroutine.
    """
    await _wait_fd(fileobj, READ, timeout, "ragged.wait_readable()")


async def wait_writable(fileobj: Any, timeout: float | None = None) -> None:
    """Park the goroutine until ``fileobj`` is writable; see :func:`wait_readable`.

    :raises IOTimeout: after ``timeout`` seconds.
    :raises NotPollable: for a closed fd or a regular file.
    :raises FdBusy: if another goroutine already waits to write the same fd.
    :raises TypeError: if ``fileobj`` is neither an int nor has ``fileno()``, or for a bad ``timeout``.
    :raises ValueError: for a negative fd, or a negative or NaN ``timeout``.
    :raises Cancelled: if the goroutine is cancelled while waiting.
    :raises NotInGoroutine: outside a goroutine.
    :Called from: inside a goroutine.
    """
    await _wait_fd(fileobj, WRITE, timeout, "ragged.wait_writable()")


async def _wait_fd(fileobj: Any, bit: int, timeout: Any, what: str) -> None:
    fd = _fileno(fileobj, what)
    timeout = check_timeout(timeout)
    np = netpoll_of(current_g(what).sched)
    pd = np.open(fd, None)
    try:
        await pollwait(np, pd, bit, timeout)
    finally:
        np.release(pd)


def _fileno(obj: Any, what: str) -> int:
    """The fd of ``obj`` (an int or anything with ``fileno()``), validated."""
    if isinstance(obj, bool):
        raise TypeError(f"{what} takes an fd or an object with fileno(), not bool")
    if isinstance(obj, int):
        if obj < 0:
            raise ValueError(f"{what} takes an fd >= 0, not {obj!r}")
        return obj
    fileno = getattr(obj, "fileno", None)
    if not callable(fileno):
        raise TypeError(f"{what} takes an fd or an object with fileno(), not {type(obj).__name__}")
    try:
        fd = fileno()
    except (OSError, ValueError) as err:
        raise NotPollable(f"{what}: {obj!r} has no usable fd ({err})") from None
    if not isinstance(fd, int) or fd < 0:
        raise NotPollable(f"{what}: {obj!r} is closed (fileno() returned {fd!r})")
    return fd


__all__ = [
    "Conn",
    "FdBusy",
    "IOTimeout",
    "Listener",
    "NetClosed",
    "NetError",
    "NotPollable",
    "TooManyOpenFiles",
    "UnexpectedEOF",
    "dial",
    "listen",
    "wait_readable",
    "wait_writable",
]
