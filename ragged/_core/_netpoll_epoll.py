"""The network poller's edge-triggered backend on Linux (Go's ``netpoll_epoll.go``).

``select.epoll`` directly (``selectors`` cannot ask for ``EPOLLET``).  Each fd
is registered once, for both directions, on its first wait and never
modified; it leaves the epoll set when the poller forgets it.  A poll reports
each fd once per edge, so goroutines readied but not yet run are not reported
again by every poll; an edge nobody waits for is kept by the portable part
(``PollDesc.ready``).  The contract is in ``_netpoll``'s module docstring.
"""

from __future__ import annotations

import select
from typing import TYPE_CHECKING

from ._netpoll import BOTH, HUP, READ, WRITE, not_pollable

if TYPE_CHECKING:  # pragma: no cover
    from ._netpoll import NetPoll, PollDesc
    from ._park import Sudog

_ET_MASK = select.EPOLLIN | select.EPOLLOUT | select.EPOLLRDHUP | select.EPOLLET
# What readies a reader / a writer: an error or a hang-up ends both waits (the I/O then reports it).
_R_MASK = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR
_W_MASK = select.EPOLLOUT | select.EPOLLHUP | select.EPOLLERR
_HUP_MASK = select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR
_R_BIT = 1 << READ
_W_BIT = 1 << WRITE


class EpollBackend:
    """An edge-triggered epoll set.  ``ep`` is used under ``NetPoll.lock`` (registrations)
    and ``NetPoll.poll_lock`` (the poll); the kernel makes the two safe together."""

    kind = "edge"

    def __init__(self, brk_fd: int) -> None:
        self.ep = select.epoll()
        self.brk = brk_fd
        self.ep.register(brk_fd, select.EPOLLIN)  # level-triggered: see the contract

    def set_interest(self, pd: PollDesc, mask: int) -> None:
        """Register ``pd.fd`` for both directions on its first wait; unregister it for ``mask`` 0."""
        old = pd.events
        try:
            if old == 0 and mask:
                self.ep.register(pd.fd, _ET_MASK)
                pd.events = BOTH
            elif mask == 0 and old:
                pd.events = 0  # whatever the kernel says, it is not registered afterwards
                self.ep.unregister(pd.fd)
        except OSError as err:
            raise not_pollable(pd.fd, err) from None

    def drop_idle(self, pd: PollDesc, mask: int) -> None:
        """Edge-triggered: the one registration stays (an idle direction reports no further edges)."""

    def poll(self, np: NetPoll, timeout: float | None, blocking: bool, out: list[Sudog]) -> None:
        """Wait in ``epoll_wait``; hand each ready fd to ``np.netpollready``."""
        try:
            evs = self.ep.poll(-1.0 if timeout is None else timeout)
        except (OSError, ValueError):  # closed under us at shutdown
            return
        pds = np.pds
        brk = self.brk
        netpollready = np.netpollready
        for fd, m in evs:
            if fd == brk:
                if blocking:
                    np.drain_brk()
                continue
            # pds[fd], not pds.get(fd): on 3.13t, dict.get with int keys
            # takes the dict's lock when the value belongs to another
            # thread, as every PollDesc made by another M does (about 6µs
            # a call, measured; a subscript stays lock-free).
            try:
                pd = pds[fd]
            except KeyError:
                continue  # evicted since the poll returned
            mask = (_R_BIT if m & _R_MASK else 0) | (_W_BIT if m & _W_MASK else 0) | (HUP if m & _HUP_MASK else 0)
            netpollready(pd, mask, blocking, out)

    def close(self) -> None:
        """Close the epoll fd."""
        self.ep.close()
