"""The network poller's level-triggered backend: the standard library's ``selectors``.

What every platform without ``select.epoll`` gets (kqueue on BSD and macOS,
else poll or select); tests and ``bench --net --servers ragged-level`` run it
on Linux too.  Interest in a direction is registered when a goroutine waits
for it and kept after the wake-up, so a connection read in a loop costs no
registration change per read; the blocking poll drops the interest of a
direction nobody waits for (``drop_idle``), so a ready fd never spins it.
The contract is in ``_netpoll``'s module docstring.
"""

from __future__ import annotations

import selectors
from typing import TYPE_CHECKING

from ._errors import NotPollable
from ._netpoll import READ, WRITE, not_pollable

if TYPE_CHECKING:  # pragma: no cover
    from ._netpoll import NetPoll, PollDesc
    from ._park import Sudog

# The portable part's interest mask is the selectors' event mask.
assert selectors.EVENT_READ == 1 << READ and selectors.EVENT_WRITE == 1 << WRITE


class SelectorsBackend:
    """A ``selectors.DefaultSelector``, used under ``NetPoll.lock`` (registrations) and
    ``NetPoll.poll_lock`` (the poll): ``select()`` skips fds unregistered meanwhile."""

    kind = "level"

    def __init__(self, brk_fd: int) -> None:
        self.sel = selectors.DefaultSelector()
        self.sel.register(brk_fd, selectors.EVENT_READ, None)

    def set_interest(self, pd: PollDesc, mask: int) -> None:
        """Register, modify or unregister ``pd.fd`` so that exactly ``mask`` is reported."""
        old = pd.events
        if mask == old:
            return
        try:
            if old == 0:
                self.sel.register(pd.fd, mask, pd)
            elif mask == 0:
                self.sel.unregister(pd.fd)
            else:
                self.sel.modify(pd.fd, mask, pd)
        except OSError as err:
            # A refused modify or unregister made selectors drop the fd's key
            # (a refused register never added it): then it is not registered.
            if old != 0 and pd.fd not in self.sel.get_map():
                pd.events = 0
            raise not_pollable(pd.fd, err) from None
        except (KeyError, ValueError) as err:  # selectors refused before changing anything
            raise NotPollable(f"fd {pd.fd} cannot be polled: {err}") from None
        pd.events = mask

    def drop_idle(self, pd: PollDesc, mask: int) -> None:
        """Drop the interest in ``mask``'s directions: level-triggered, they would be reported on every poll."""
        self.set_interest(pd, pd.events & ~mask)

    def poll(self, np: NetPoll, timeout: float | None, blocking: bool, out: list[Sudog]) -> None:
        """Wait in ``select()``; hand each ready fd to ``np.netpollready``."""
        try:
            events = self.sel.select(timeout)
        except (OSError, ValueError):  # closed under us at shutdown
            return
        netpollready = np.netpollready
        for key, ev in events:
            pd = key.data
            if pd is None:
                # A break is for the M blocked in the poll: a non-blocking
                # poll must leave it for that M, or the M sleeps on (Go too).
                if blocking:
                    np.drain_brk()
                continue
            netpollready(pd, ev, blocking, out)

    def close(self) -> None:
        """Close the selector."""
        self.sel.close()
