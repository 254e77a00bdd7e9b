"""Goroutine: one ``async def`` coroutine and its state (Go's ``g``).

The handle users hold.  From a goroutine ``await g`` joins it; from a plain
thread ``g.result(timeout)`` does.  ``g.cancel()`` works from anywhere.

Status is written only by the M that runs the goroutine, by the waker that won
its sudog's claim (waiting -> runnable), or under the goroutine's ``_lock`` at
exit.  ``_lock`` also guards the joiner queue and the done callbacks.

The other fields that more than one thread writes (nothing relies on the GIL):

* ``resume_val``/``resume_exc``/``woken``/``waiting``: the waker that won the
  claim, before it queues the goroutine; then the M that runs it (the run
  queue hands them over).
* ``cancel_pending``: set by ``cancel()`` under ``_lock`` (so a request never
  lands on a goroutine that has finished), cleared by whoever delivers it --
  the M running the goroutine, or the ``cancel()`` that won a parked
  goroutine's claim.  A request is delivered once.
* ``preempt``: a request from sysmon (or a barrier); the goroutine's M clears
  it.  Losing one to a race costs one more sysmon round, never correctness.
* ``armed``: only under ``_traps._pending_lock`` (``arm_g``/``disarm_g``).
* ``lockedm``: the M whose thread holds the goroutine's frames while it waits
  in a run queue after an async preemption (``_preempt``); set by that M
  before it queues the goroutine, cleared by the M that takes it off the queue.
  ``noncoop`` and ``async_preempts`` are written by the M running it.
* ``_retrieved``: set (never cleared) by whoever takes the outcome.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Coroutine, Generator, Mapping
from contextvars import Context
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._errors import Cancelled
from ._lockrank import Rank, lock_maker
from ._park import WaitQueue, block_on, check_plain_thread, check_timeout, park_on, ready
from ._traps import arm_g, checkpoint

_new_g_lock = lock_maker(Rank.G, "Goroutine._lock")  # threading.Lock unless RAGGED_DEBUG

if TYPE_CHECKING:  # pragma: no cover
    from ._m import M
    from ._park import Sudog
    from ._sched import Sched

RUNNABLE, RUNNING, WAITING, SYSCALL, DEAD = range(5)

# What an M drives with send/throw/close: a coroutine, or a generator-based one.
Coro = Coroutine[Any, Any, Any] | Generator[Any, Any, Any]
T_co = TypeVar("T_co", covariant=True)  # what the goroutine returns
G_STATUS_NAMES = ("runnable", "running", "waiting", "syscall", "dead")


class Goroutine(Generic[T_co]):
    """A goroutine handle, returned by :func:`go`, :meth:`Runtime.go` and :func:`current_goroutine`.

    Attributes: ``id`` (an int, unique per process), :attr:`name`, ``labels``
    (a dict shown in dumps, traces and logs; change them from inside with
    :func:`set_labels`) and :attr:`status`.  Join with ``await g`` inside a
    goroutine or :meth:`result` from a plain thread.

    :raises: nothing (handles are made by the runtime, not by users).
    :Called from: anywhere; each method says where it may be called.
    """

    __slots__ = (
        "id",
        "_name",
        "labels",
        "sched",
        "coro",
        "ctx",
        "send",
        "run",
        "st",
        "m",
        "resume_val",
        "resume_exc",
        "preempt",
        "cancel_pending",
        "armed",
        "waitreason",
        "waiting",
        "holds_world",
        "woken",
        "lockedm",
        "noncoop",
        "async_preempts",
        "_lock",
        "_done",
        "_result",
        "_exc",
        "_joiners",
        "_callbacks",
        "_retrieved",
        "__weakref__",
    )

    def __init__(self, gid: int, sched: Sched, coro: Coro, ctx: Context, name: str | None, labels: dict | None) -> None:
        self.id = gid
        self._name = name
        self.labels: dict[str, Any] = dict(labels) if labels else {}
        self.sched = sched
        self.coro = coro
        self.ctx = ctx
        self.send = coro.send  # bound once: execute() uses them on every run
        self.run = ctx.run
        self.st = RUNNABLE
        self.m: M | None = None
        self.resume_val: Any = None
        self.resume_exc: BaseException | None = None
        self.preempt = False
        self.cancel_pending = False
        self.armed = False
        self.waitreason = ""
        self.waiting: Sudog | None = None
        self.holds_world = False
        self.woken = False  # readied by a waker since it last ran
        self.lockedm: M | None = None  # async-preempted: queued, its frames still on this M (_preempt)
        self.noncoop = False  # last reached by an async safe point: escalate its requests at once
        self.async_preempts = 0  # async safe points it has been stopped at (reports)
        self._lock = _new_g_lock()
        self._done = False
        self._result: Any = None
        self._exc: BaseException | None = None
        self._joiners: WaitQueue | None = None  # made by the first joiner
        self._callbacks: list[Callable[[Goroutine[T_co]], Any]] | None = None
        self._retrieved = False

    # ------------------------------------------------------------ inspection

    @property
    def name(self) -> str:
        """The name given at spawn, or ``g<id>``.  Assigning a non-str raises ``TypeError``."""
        return self._name or f"g{self.id}"

    @name.setter
    def name(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"a goroutine name must be a str, not {type(value).__name__}")
        self._name = value

    @property
    def status(self) -> str:
        """``"runnable"``, ``"running"``, ``"waiting"``, ``"syscall"`` or ``"dead"`` (a snapshot)."""
        return G_STATUS_NAMES[self.st]

    def done(self) -> bool:
        """True once the goroutine has returned or raised.

        :raises: nothing.
        :Called from: anywhere.
        """
        return self._done

    def __repr__(self) -> str:
        extra = f" [{self.waitreason}]" if self.st == WAITING else ""
        return f"<Goroutine {self.id} {self.name!r} {self.status}{extra}>"

    def stack(self) -> list[str]:
        """The coroutine stack, innermost last, as formatted lines (for dumps).

        Only meaningful while the goroutine is suspended (runnable or waiting);
        a running goroutine's frames belong to the M executing it (see
        :meth:`Runtime.dump`).

        :raises: nothing.
        :Called from: anywhere.
        """
        lines: list[str] = []
        coro: Any = self.coro
        while coro is not None:
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
            if frame is None:
                break
            lines.extend(traceback.format_stack(frame, limit=1))
            coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        return lines

    # ------------------------------------------------------------ outcome

    def _outcome(self) -> T_co:
        self._retrieved = True
        if self._exc is not None:
            raise self._exc
        return self._result

    def result(self, timeout: float | None = None) -> T_co:
        """From a plain thread: wait for the goroutine, return its result or raise its exception.

        :raises TimeoutError: if ``timeout`` seconds pass first.
        :raises TypeError: if ``timeout`` is not None or a number.
        :raises ValueError: for a NaN ``timeout`` (a negative one is 0, ``inf`` is None).
        :raises BaseException: what the goroutine raised (:class:`Cancelled` if it was cancelled).
        :raises Deadlock: if the runtime finds that nothing can ever finish it.
        :raises RuntimeClosed: if the runtime is closed while waiting.
        :raises NotInPlainThread: inside a goroutine.
        :Called from: a plain thread; inside a goroutine use ``await g``.
        """
        self._wait(timeout)
        return self._outcome()

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """From a plain thread: wait, then return the goroutine's exception (or None).

        The goroutine's own exception is returned, not raised.

        :raises TimeoutError: if ``timeout`` seconds pass first.
        :raises TypeError: if ``timeout`` is not None or a number.
        :raises ValueError: for a NaN ``timeout`` (a negative one is 0, ``inf`` is None).
        :raises Deadlock: if the runtime finds that nothing can ever finish it.
        :raises RuntimeClosed: if the runtime is closed while waiting.
        :raises NotInPlainThread: inside a goroutine.
        :Called from: a plain thread; inside a goroutine use ``await g`` in a ``try``.
        """
        self._wait(timeout)
        self._retrieved = True
        return self._exc

    def _wait(self, timeout: float | None) -> None:
        """Block this plain thread until the goroutine is done (or ``timeout`` passes).

        Misuse from inside a goroutine is refused whether or not the goroutine
        has finished: with Ps running in parallel it often has, and an error
        that depends on that race would come and go.
        """
        check_plain_thread(f"Goroutine.result() / exception() of goroutine {self.id}")
        timeout = check_timeout(timeout)
        if not self._done:
            self._lock.acquire()
            if not self._done:
                block_on(self._joinq(), self._lock, f"join goroutine {self.id}", timeout, registry=self.sched)
            else:
                self._lock.release()

    def __await__(self) -> Generator[Any, Any, T_co]:
        """``await g``: wait for the goroutine to finish; return its result or raise its exception.

        A safe point; the waiting goroutine parks (holds no P).

        :raises BaseException: what the goroutine raised (:class:`Cancelled` if it was cancelled).
        :raises Cancelled: if the *waiting* goroutine is cancelled meanwhile.
        :raises NotInGoroutine: outside a goroutine (when it has to wait).
        :raises RaggedError: inside a stop-the-world section (when it has to wait).
        :Called from: inside a goroutine; from a plain thread use :meth:`result`.
        """
        if self._done:
            yield from checkpoint()
            return self._outcome()
        self._lock.acquire()
        if not self._done:
            yield from park_on(self._joinq(), self._lock, "join goroutine")
        else:
            self._lock.release()
        return self._outcome()

    def _joinq(self) -> WaitQueue:
        """The joiner queue, made on first use.  Requires ``_lock``."""
        q = self._joiners
        if q is None:
            q = self._joiners = WaitQueue()
        return q

    def add_done_callback(self, fn: Callable[[Goroutine[T_co]], Any]) -> None:
        """Call ``fn(g)`` when the goroutine finishes (at once if it has).

        The callback runs on whichever thread finishes the goroutine; keep it
        short and non-blocking.  A callback counts as retrieving the outcome.
        An exception it raises is logged, not propagated.

        :raises: nothing.
        :Called from: anywhere.
        """
        with self._lock:
            if not self._done:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(fn)
                return
            # Done already (with Ps in parallel, often before the spawner got
            # here): the callback still takes the outcome, as it would have.
            self._retrieved = True
        fn(self)

    # ------------------------------------------------------------ cancel

    def cancel(self) -> bool:
        """Ask the goroutine to stop: ``Cancelled`` is raised at its current or next await.

        Returns False if it has already finished.  A goroutine may catch
        ``Cancelled``; the request is delivered once.  A wait that a waker
        completed just before (a value received, a lock handed over) is not
        undone: the cancel then arrives at the goroutine's next await.

        :raises: nothing.
        :Called from: anywhere.
        """
        # Under _lock, which _finish takes to mark the goroutine done: a request
        # is either armed before the exiting M drops the goroutine's arm (goexit
        # does that after _finish), or sees it done and arms nothing.  Without
        # the lock an arm could land after the drop and stay armed for good.
        with self._lock:
            if self._done:
                return False
            self.cancel_pending = True
            s = self.waiting
            claimed = self.st == WAITING and s is not None and s.try_claim()
            if claimed:
                self.cancel_pending = False
            else:
                arm_g(self)
        if claimed:
            self.sched.goready(self, None, Cancelled(f"goroutine {self.id} ({self.name}) was cancelled"))
        return True

    # ------------------------------------------------------------ exit

    def _finish(self, result: Any, exc: BaseException | None) -> list[Callable[[Goroutine[T_co]], Any]]:
        """Record the outcome and wake joiners.  Called once, by the M that ran it."""
        with self._lock:
            self._result = result
            self._exc = exc
            self.st = DEAD
            self._done = True
            joiners = self._joiners.drain_claimed() if self._joiners is not None else ()
            callbacks = self._callbacks or []
            self._callbacks = None
            if joiners or callbacks:
                self._retrieved = True
        for s in joiners:
            ready(s)
        return callbacks


# A label value must survive JSON (traces) and read well in a log line.
_VALUE_TYPES = (str, int, float, bool)


def check_label(key: Any, value: Any) -> None:
    """Validate one label: a non-empty str key; a str, int, float or bool value (None removes it)."""
    if not isinstance(key, str):
        raise TypeError(f"goroutine label keys must be str, not {type(key).__name__} {key!r}")
    if not key:
        raise ValueError("goroutine label keys must be non-empty strings")
    if value is not None and not isinstance(value, _VALUE_TYPES):
        raise TypeError(
            f"goroutine label {key!r}: values must be str, int, float or bool (None removes the label), "
            f"not {type(value).__name__}"
        )


def check_labels(labels: Any) -> None:
    """Validate a whole labels mapping (``go(..., labels=...)``)."""
    if not isinstance(labels, Mapping):
        raise TypeError(f"labels must be a dict, not {type(labels).__name__}")
    for key, value in labels.items():
        if value is None:
            raise TypeError(f"goroutine label {key!r}: None is not a label value")
        check_label(key, value)
