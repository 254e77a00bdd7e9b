"""The execution tracer: what ran where, and why it stopped.

``with ragged.trace(path):`` (or ``RAGGED_TRACE=path``, or ``ragged-bench
--trace PATH``) records, per P, every goroutine slice (id, name, labels and
why it stopped), syscalls and P hand-offs, each barrier's request and every
P's run of ``fn``, Ms stepping aside for the GIL, stop-the-world phases,
asynchronous preemptions and procs changes, and writes Chrome Trace Event JSON: Perfetto and
chrome://tracing show it as one track per P.  ``python -m ragged.trace view
TRACE.json --png OUT.png`` draws the timeline.

Recording.  Each P has its own bounded buffer, appended to only by whoever
owns the P (its M, or a coordinator holding an idle or retaken P), so no
lock is taken per event; events from other threads (barrier and
stop-the-world coordinators, procs changes) go to a shared buffer.  When a
buffer is full further events are dropped and counted.  With no tracer
active each hook point costs one attribute check (``sched.trace is None``).

Event tuples: ``(t_ns, kind, ...)`` with ``kind`` one of the ``EV_*`` codes.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ._errors import RaggedError
from ._lockrank import Rank, new_lock

if TYPE_CHECKING:  # pragma: no cover
    from ._g import Goroutine
    from ._p import P
    from ._sched import Sched

_now = time.perf_counter_ns

EV_GO_START = 1  # (t, kind, gid, name)
EV_GO_STOP = 2  # (t, kind, gid, reason, labels)
EV_SYSCALL = 3  # (t, kind, gid)          P released into a syscall
EV_HANDOFF = 4  # (t, kind, why)          P handed to another M
EV_FN = 5  # (t, kind, seq, t_end)        for_each_p fn ran on this P
EV_STEP_ASIDE = 6  # (t, kind, t_end)     M waited off the GIL for a barrier
EV_STOPPED = 7  # (t, kind)               P stopped for the world
EV_SYSCALL_EXIT = 8  # (t, kind, gid, how)  back from a syscall: fast, idle P, or queued
EV_ASYNC_PREEMPT = 9  # (t, kind, gid, what)  reached at an async safe point: barrier, stop the world, time slice
EV_BARRIER = 20  # (t, kind, seq, t_end, procs)
EV_STW = 21  # (t, kind, reason, t_stopped, t_end, procs)
EV_PROCS = 22  # (t, kind, old, new)

DEFAULT_LIMIT = 1_000_000  # events per buffer
WORLD_TID = 10_000  # the track of barrier, stop-the-world and procs events

_live: weakref.WeakSet[Sched] = weakref.WeakSet()
_live_lock = new_lock(Rank.TRACE_LIVE, "_trace._live_lock")
_active: Tracer | None = None


class Tracer:
    """What :func:`ragged.trace` yields: records events of every runtime it is attached to.

    :raises: nothing (made by :func:`ragged.trace`).
    :Called from: anywhere.
    """

    def __init__(self, path: str | os.PathLike[str], limit: int = DEFAULT_LIMIT) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
            raise ValueError(f"trace limit must be a positive int, not {limit!r}")
        self.path = os.fspath(path)
        self.limit = limit
        self.t0 = _now()
        self.dropped = 0  #: events not recorded because a P's buffer held ``limit`` already
        self._lock = new_lock(Rank.TRACE, "Tracer._lock")
        self._p_bufs: dict[P, list[tuple]] = {}
        self._world: list[tuple] = []
        self._runtimes: dict[int, int] = {}  # id(sched) -> runtime number
        self._barrier_seq = 0

    # ---------------------------------------------------------------- plumbing

    def attach(self, sched: Sched) -> None:
        with self._lock:
            self._runtimes.setdefault(id(sched), len(self._runtimes))
        sched.trace = self

    def _rt(self, sched: Sched) -> int:
        return self._runtimes.get(id(sched), 0)

    def _buf(self, p: P) -> list[tuple] | None:
        """``p``'s buffer, or None when it is full (the event is then dropped and counted)."""
        buf = self._p_bufs.get(p)
        if buf is None:
            with self._lock:
                buf = self._p_bufs.setdefault(p, [])
        if len(buf) < self.limit:
            return buf
        self.dropped += 1  # racy count: a statistic, never a decision
        return None

    def _emit_world(self, sched: Sched, ev: tuple) -> None:
        if len(self._world) < self.limit:
            self._world.append((self._rt(sched),) + ev)
        else:
            self.dropped += 1

    # ---------------------------------------------------------------- hooks
    # Each hook finds its buffer (and checks the bound) before reading the
    # clock or building the event: a full buffer costs almost nothing.

    def go_start(self, p: P, g: Goroutine) -> None:
        buf = self._buf(p)
        if buf is not None:
            buf.append((_now(), EV_GO_START, g.id, g.name))

    def go_stop(self, p: P, g: Goroutine, reason: str) -> None:
        buf = self._buf(p)
        if buf is not None:
            # Labels as they are at the end of the slice (set_labels swaps the
            # dict, never mutates it, so keeping the reference is enough).
            buf.append((_now(), EV_GO_STOP, g.id, reason, g.labels))

    def syscall(self, p: P, g: Goroutine) -> None:
        buf = self._buf(p)
        if buf is not None:
            buf.append((_now(), EV_SYSCALL, g.id))

    def syscall_exit(self, p: P | None, g: Goroutine, how: str) -> None:
        """``g`` returned from its syscall: ``how`` is "fast" (own P), "idle P" or "queued"."""
        if p is None:
            self._emit_world(g.sched, (_now(), EV_SYSCALL_EXIT, g.id, how))
            return
        buf = self._buf(p)
        if buf is not None:
            buf.append((_now(), EV_SYSCALL_EXIT, g.id, how))

    def handoff(self, p: P, why: str) -> None:
        buf = self._buf(p)
        if buf is not None:
            buf.append((_now(), EV_HANDOFF, why))

    def fn_ran(self, p: P, t_start: int, seq: int) -> None:
        buf = self._buf(p)
        if buf is not None:
            buf.append((t_start, EV_FN, seq, _now()))

    def step_aside(self, p: P, t_start: int, t_end: int) -> None:
        buf = self._buf(p)
        if buf is not None:
            buf.append((t_start, EV_STEP_ASIDE, t_end))

    def async_preempt(self, p: P, g: Goroutine, what: str) -> None:
        """``g`` was reached inside its running code (``_preempt``) for ``what``."""
        buf = self._buf(p)
        if buf is not None:
            buf.append((_now(), EV_ASYNC_PREEMPT, g.id, what))

    def stopped(self, p: P) -> None:
        buf = self._buf(p)
        if buf is not None:
            buf.append((_now(), EV_STOPPED))

    def barrier_begin(self) -> tuple[int, int]:
        with self._lock:
            self._barrier_seq += 1
            return self._barrier_seq, _now()

    def barrier_end(self, sched: Sched, seq: int, t_start: int) -> None:
        self._emit_world(sched, (t_start, EV_BARRIER, seq, _now(), sched.procs))

    def stw(self, sched: Sched, reason: str, t_start: int, t_stopped: int) -> None:
        self._emit_world(sched, (t_start, EV_STW, reason, t_stopped, _now(), sched.procs))

    def procs_change(self, sched: Sched, old: int, new: int) -> None:
        self._emit_world(sched, (_now(), EV_PROCS, old, new))

    # ---------------------------------------------------------------- output

    def events(self) -> list[dict[str, Any]]:
        """The recording as Chrome trace events (``ts``/``dur`` in µs)."""
        out: list[dict[str, Any]] = []
        for pid in sorted(set(self._runtimes.values()) | {0}):
            out.append(_meta(pid, 0, "process_name", {"name": f"ragged runtime {pid}"}))
            out.append(_meta(pid, WORLD_TID, "thread_name", {"name": "world"}))
            out.append(_meta(pid, WORLD_TID, "thread_sort_index", {"sort_index": -1}))
        tracks = sorted(((self._rt(p.sched), p.id), buf) for p, buf in list(self._p_bufs.items()))
        for (pid, pno), buf in tracks:
            out.append(_meta(pid, pno, "thread_name", {"name": f"P{pno}"}))
            out.append(_meta(pid, pno, "thread_sort_index", {"sort_index": pno}))
            out.extend(self._p_events(pid, pno, sorted(buf, key=lambda e: e[0])))
        us = self._us
        for ev in self._world:
            pid, t, kind = ev[0], ev[1], ev[2]
            if kind == EV_BARRIER:
                _, _, _, seq, t_end, procs = ev
                args = {"seq": seq, "procs": procs}
                out.append(_instant(pid, WORLD_TID, us(t), "barrier request", "barrier", args, scope="p"))
                out.append(_slice(pid, WORLD_TID, us(t), us(t_end), "for_each_p", "barrier", args))
            elif kind == EV_STW:
                _, _, _, reason, t_stopped, t_end, procs = ev
                args = {"reason": reason, "stopping_us": us(t_stopped) - us(t), "procs": procs}
                out.append(_slice(pid, WORLD_TID, us(t), us(t_end), f"stop the world: {reason}", "stw", args))
            elif kind == EV_SYSCALL_EXIT:
                _, _, _, gid, how = ev
                args = {"goroutine": gid, "how": how}
                out.append(_instant(pid, WORLD_TID, us(t), f"syscall exit ({how})", "syscall", args))
            elif kind == EV_PROCS:
                _, _, _, old, new = ev
                args = {"old": old, "new": new}
                out.append(_instant(pid, WORLD_TID, us(t), f"procs {old} -> {new}", "procs", args, scope="p"))
        return out

    def _us(self, t_ns: int) -> float:
        return (t_ns - self.t0) / 1000.0

    def _p_events(self, pid: int, pno: int, buf: list[tuple]) -> Iterator[dict[str, Any]]:
        us = self._us
        running: tuple[int, int, str] | None = None  # (gid, start, name)
        for ev in buf:
            t, kind = ev[0], ev[1]
            if kind == EV_GO_START:
                running = (ev[2], t, ev[3])
            elif kind == EV_GO_STOP and running is not None:
                gid, start, name = running
                args = {"goroutine": gid, "name": name, "labels": dict(ev[4]), "stop": ev[3]}
                yield _slice(pid, pno, us(start), us(t), f"G{gid} {name}", "goroutine", args)
                running = None
            elif kind == EV_SYSCALL:
                yield _instant(pid, pno, us(t), "syscall", "syscall", {"goroutine": ev[2]})
            elif kind == EV_SYSCALL_EXIT:
                args = {"goroutine": ev[2], "how": ev[3]}
                yield _instant(pid, pno, us(t), f"syscall exit ({ev[3]})", "syscall", args)
            elif kind == EV_HANDOFF:
                yield _instant(pid, pno, us(t), f"handoff ({ev[2]})", "handoff", {"why": ev[2]})
            elif kind == EV_FN:
                yield _slice(pid, pno, us(t), us(ev[3]), "fn", "barrier", {"seq": ev[2]})
            elif kind == EV_STEP_ASIDE:
                yield _slice(pid, pno, us(t), us(ev[2]), "step aside", "barrier", {})
            elif kind == EV_STOPPED:
                yield _instant(pid, pno, us(t), "stopped", "stw", {})
            elif kind == EV_ASYNC_PREEMPT:
                args = {"goroutine": ev[2], "for": ev[3]}
                yield _instant(pid, pno, us(t), f"async preempt ({ev[3]})", "preempt", args)

    def write(self, path: str | os.PathLike[str] | None = None) -> str:
        """Write the Chrome trace JSON; return the path."""
        path = os.fspath(path) if path is not None else self.path
        doc = {
            "traceEvents": self.events(),
            "displayTimeUnit": "ms",
            "otherData": {"producer": "ragged", "dropped_events": self.dropped},
        }
        text = json.dumps(doc, default=repr)  # whole-document dumps: ~3x faster than json.dump
        with open(path, "w") as f:
            f.write(text)
        return path


# -------------------------------------------------------------------- events


def _meta(pid: int, tid: int, name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"ph": "M", "pid": pid, "tid": tid, "name": name, "args": args}


def _slice(pid: int, tid: int, ts: float, end: float, name: str, cat: str, args: dict[str, Any]) -> dict[str, Any]:
    """A complete ("X") event from ``ts`` to ``end`` (µs)."""
    return {"ph": "X", "pid": pid, "tid": tid, "ts": ts, "dur": end - ts, "name": name, "cat": cat, "args": args}


def _instant(
    pid: int, tid: int, ts: float, name: str, cat: str, args: dict[str, Any], scope: str = "t"
) -> dict[str, Any]:
    """An instant ("i") event; ``scope`` is "t" (its track) or "p" (the whole runtime)."""
    return {"ph": "i", "s": scope, "pid": pid, "tid": tid, "ts": ts, "name": name, "cat": cat, "args": args}


# -------------------------------------------------------------------- control


def register(sched: Sched) -> None:
    """A new runtime: attach the active tracer, or one from ``RAGGED_TRACE``."""
    with _live_lock:
        _live.add(sched)
        tracer = _active
    if tracer is not None:
        tracer.attach(sched)
        return
    path = os.environ.get("RAGGED_TRACE", "").strip()
    if path:
        own = Tracer(path)
        own.attach(sched)
        sched.trace_owned = own


def unregister(sched: Sched) -> None:
    """A runtime closed: forget it, and write its own ``RAGGED_TRACE`` recording, if any."""
    with _live_lock:
        _live.discard(sched)
    own = getattr(sched, "trace_owned", None)
    sched.trace = None
    if own is not None:
        own.write()


@contextlib.contextmanager
def trace(path: str | os.PathLike[str], limit: int = DEFAULT_LIMIT) -> Iterator[Tracer]:
    """Record an execution trace of every runtime while the block runs; write it to ``path``.

    ``with ragged.trace("out.json") as tracer:``.  Runtimes created inside
    the block are traced too.  One trace at a time.  The file (Chrome
    trace-event JSON, one track per P) is written when the block ends; open it
    in Perfetto or read it with ``python -m ragged.trace``.  Each P keeps at
    most ``limit`` events; the rest are counted in ``tracer.dropped``.

    :raises ValueError: if ``limit`` is not a positive int.
    :raises RaggedError: if a trace is already being recorded.
    :raises OSError: when the file cannot be written (at the end of the block).
    :Called from: anywhere (it records every runtime of the process).
    """
    global _active
    tracer = Tracer(path, limit)
    with _live_lock:
        if _active is not None:
            raise RaggedError("ragged.trace: a trace is already being recorded; one at a time")
        _active = tracer
        scheds = list(_live)
    for sched in scheds:
        tracer.attach(sched)
    try:
        yield tracer
    finally:
        with _live_lock:
            _active = None
            scheds = list(_live)
        for sched in scheds:
            if sched.trace is tracer:
                sched.trace = None
        tracer.write()
