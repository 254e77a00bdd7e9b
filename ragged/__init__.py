"""ragged: a Go-style concurrency runtime for Python on real OS threads.

Goroutines are ``async def`` coroutines run by a pool of OS threads (Ms) that
hold ``procs`` processors (Ps), with Go's scheduler, and Go's ragged global
barrier ``for_each_p``: run a function once on every P at its next safe point
without stopping the world.  See README.md and docs/design.md.

The runtime proper is the ``ragged._core`` package; this module re-exports the
public names of both layers.
"""

from . import net  # noqa: E402 - ragged.net: listen/dial on the network poller
from ._api import (
    PerP,
    current_goroutine,
    current_p,
    current_runtime,
    dump,
    for_each_p,
    go,
    metrics,
    set_procs,
    sleep,
    stop_the_world,
    syscall,
)
from ._atomic import AtomicInt
from ._chan import Case, Chan
from ._context import (
    Context,
    DeadlineExceeded,
    background,
    with_cancel,
    with_deadline,
    with_timeout,
    with_value,
)
from ._core import (
    BarrierError,
    BarrierTimeout,
    Cancelled,
    ChanClosed,
    Deadlock,
    FdBusy,
    GILEnabledWarning,
    Goroutine,
    IllegalTransition,
    IOTimeout,
    LockOrderError,
    NetClosed,
    NetError,
    NotInGoroutine,
    NotInPlainThread,
    NotPollable,
    P,
    RaggedError,
    Runtime,
    RuntimeClosed,
    RuntimeCrashed,
    Settings,
    StopTheWorld,
    TooManyOpenFiles,
    UnexpectedEOF,
    checkpoint,
    gosched,
    run,
    trace,
    warn_if_gil_reenabled,
)
from ._group import Group
from ._labels import GoroutineLogFilter, labels, set_labels
from ._select import select
from ._sync import Locker, Mutex, RWMutex, Semaphore
from ._sync_wait import Cond, Once, WaitGroup
from ._time import Ticker, Timer, after, after_func
from .net import wait_readable, wait_writable

__version__ = "0.1.0"

# Last, after every import (atomics pulls in cffi, which may turn the GIL back on).
warn_if_gil_reenabled()

__all__ = [
    "AtomicInt",
    "BarrierError",
    "BarrierTimeout",
    "Cancelled",
    "Case",
    "Chan",
    "ChanClosed",
    "Cond",
    "Context",
    "DeadlineExceeded",
    "Deadlock",
    "FdBusy",
    "GILEnabledWarning",
    "Goroutine",
    "GoroutineLogFilter",
    "Group",
    "IOTimeout",
    "IllegalTransition",
    "Locker",
    "LockOrderError",
    "Mutex",
    "NetClosed",
    "NetError",
    "NotInGoroutine",
    "NotInPlainThread",
    "NotPollable",
    "Once",
    "P",
    "PerP",
    "RWMutex",
    "RaggedError",
    "Runtime",
    "RuntimeClosed",
    "RuntimeCrashed",
    "Semaphore",
    "Settings",
    "StopTheWorld",
    "Ticker",
    "Timer",
    "TooManyOpenFiles",
    "UnexpectedEOF",
    "WaitGroup",
    "after",
    "after_func",
    "background",
    "checkpoint",
    "current_goroutine",
    "current_p",
    "current_runtime",
    "dump",
    "for_each_p",
    "go",
    "gosched",
    "labels",
    "metrics",
    "net",
    "run",
    "select",
    "set_labels",
    "set_procs",
    "sleep",
    "stop_the_world",
    "syscall",
    "trace",
    "wait_readable",
    "wait_writable",
    "warn_if_gil_reenabled",
    "with_cancel",
    "with_deadline",
    "with_timeout",
    "with_value",
]
