"""The runtime core: Gs, Ms and Ps, the scheduler, and what the layer above may use of it.

Everything below this line of the package is the runtime proper (trio's
``_core``): goroutines, threads and processors (``_g``, ``_m``, ``_p``), the
scheduler (``_sched``, ``_proc``, ``_syscall``, ``_sysmon``), asynchronous
preemption on CPython 3.12+ (``_preempt``, ``_lockedm``), the one module
that yields to the scheduler (``_traps``), the one waiter queue (``_park``,
``_handoff``), kernel waits (``_note``), timers, the network poller
(``_netpoll*``), the barrier and stop-the-world (``_barrier``, ``_stw``,
``_world``), the lock-rank table (``_lockrank``), ``procs`` changes, the
``Runtime`` object and how it ends (``_shutdown``: close, and the fatal
path), the rules for timeouts and deadlines (``_timeout``), diagnostics, the
tracer, settings, metrics and errors.  Nothing here imports the layer above.

The user layer (channels, select, sync, time, context, labels, ``ragged.net``,
the goroutine-side API) builds on the names this module exports and on
nothing else of the core; ``docs/design.md`` describes the contract.  Its
locks come from ``lock_maker`` with their :class:`Rank` in the one lock-order
table (``_lockrank``), and its waits on ``park_on``/``block_on`` and ``ready``.
"""

from __future__ import annotations

from ._atomics import SEQ_CST, bind_ops
from ._barrier import foreachp
from ._errors import (
    BarrierError,
    BarrierTimeout,
    Cancelled,
    ChanClosed,
    Deadlock,
    FdBusy,
    IllegalTransition,
    IOTimeout,
    LockOrderError,
    NetClosed,
    NetError,
    NotInGoroutine,
    NotInPlainThread,
    NotPollable,
    RaggedError,
    RuntimeClosed,
    RuntimeCrashed,
    TooManyOpenFiles,
    UnexpectedEOF,
)
from ._g import Goroutine, check_label
from ._handoff import caller_sched, committed, complete
from ._lockrank import Rank, lock_maker, new_claim
from ._m import tls
from ._netpoll import READ, REASONS, WRITE, NetPoll, PollDesc, poll_close, poll_release, poll_set_deadline, pollwait
from ._netpoll_sched import netpoll_of
from ._p import P
from ._park import (
    Sudog,
    WaitQueue,
    block_on,
    check_plain_thread,
    current_g,
    park_on,
    parkable_g,
    ready,
)
from ._platform import GILEnabledWarning, warn_if_gil_reenabled
from ._procresize import check_on_retire, hand_over
from ._runtime import Runtime, check_fn, check_procs_value, make_coro, run
from ._settings import Settings
from ._stw import StopTheWorld
from ._timeout import MAX_WAIT, check_deadline, check_seconds, check_timeout, clamp_wait
from ._timers import TimerEntry, Timers
from ._trace import trace
from ._traps import checkpoint, gopark, gosched, syscall_trap

__all__ = [
    "BarrierError",
    "BarrierTimeout",
    "Cancelled",
    "ChanClosed",
    "Deadlock",
    "FdBusy",
    "GILEnabledWarning",
    "Goroutine",
    "IOTimeout",
    "IllegalTransition",
    "LockOrderError",
    "MAX_WAIT",
    "NetClosed",
    "NetError",
    "NetPoll",
    "NotInGoroutine",
    "NotInPlainThread",
    "NotPollable",
    "P",
    "PollDesc",
    "READ",
    "REASONS",
    "SEQ_CST",
    "RaggedError",
    "Rank",
    "Runtime",
    "RuntimeClosed",
    "RuntimeCrashed",
    "Settings",
    "StopTheWorld",
    "Sudog",
    "TimerEntry",
    "Timers",
    "TooManyOpenFiles",
    "UnexpectedEOF",
    "WRITE",
    "WaitQueue",
    "bind_ops",
    "block_on",
    "caller_sched",
    "check_deadline",
    "check_fn",
    "check_label",
    "check_on_retire",
    "check_plain_thread",
    "check_procs_value",
    "check_seconds",
    "check_timeout",
    "checkpoint",
    "clamp_wait",
    "committed",
    "complete",
    "current_g",
    "foreachp",
    "gopark",
    "gosched",
    "hand_over",
    "lock_maker",
    "make_coro",
    "netpoll_of",
    "new_claim",
    "park_on",
    "parkable_g",
    "poll_close",
    "poll_release",
    "poll_set_deadline",
    "pollwait",
    "ready",
    "run",
    "syscall_trap",
    "tls",
    "trace",
    "warn_if_gil_reenabled",
]
