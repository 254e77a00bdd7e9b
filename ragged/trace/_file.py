"""Reading a ragged execution trace back: the model the viewer draws and the summary counts.

``ragged.trace`` writes Chrome Trace Event JSON (see ``_trace.py``): per
runtime (``pid``) one track per P (``tid`` = P id) and a world track
(``tid`` = ``WORLD_TID``).  :func:`load` parses such a file into a
:class:`TraceFile` -- goroutine slices, ``fn`` runs, step-aside waits and
instants per P, and the world's barriers, stop-the-worlds and procs changes
-- and :func:`summarize` counts it per event type and per P.  Times stay in
the file's unit, microseconds since the trace started.

Only the events ragged writes are interpreted; anything else in the file is
counted as "other" and otherwise ignored, so a trace merged with other
producers' events still loads.
"""

from __future__ import annotations

import json
import os
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .._core._trace import WORLD_TID


class TraceFormatError(ValueError):
    """The file is not a Chrome trace-event JSON document."""


class Slice(NamedTuple):
    """One run of a goroutine on a P: ``ts`` .. ``ts + dur`` (µs), and why it stopped."""

    ts: float
    dur: float
    gid: int
    name: str
    labels: dict[str, Any]
    stop: str


class Span(NamedTuple):
    """A timed event on a P track: an ``fn`` run (``seq`` = barrier) or a step-aside wait."""

    ts: float
    dur: float
    seq: int


class Instant(NamedTuple):
    """A point event on a P track (``kind``: syscall, handoff, stopped)."""

    ts: float
    kind: str
    name: str


class Barrier(NamedTuple):
    """A ragged barrier: requested at ``ts``, complete after ``dur`` (µs)."""

    pid: int
    ts: float
    dur: float
    seq: int
    procs: int


class StopTheWorld(NamedTuple):
    """A stop-the-world: requested at ``ts``, every P stopped after ``stopping``, restarted after ``dur``."""

    pid: int
    ts: float
    dur: float
    stopping: float
    reason: str
    procs: int


class ProcsChange(NamedTuple):
    """``set_procs`` took effect at ``ts``."""

    pid: int
    ts: float
    old: int
    new: int


@dataclass
class Track:
    """One P of one runtime, and everything recorded on it."""

    pid: int
    tid: int
    name: str
    slices: list[Slice] = field(default_factory=list)
    fns: list[Span] = field(default_factory=list)
    step_asides: list[Span] = field(default_factory=list)
    instants: list[Instant] = field(default_factory=list)


@dataclass
class TraceFile:
    """A loaded trace.  ``tracks`` is keyed by ``(pid, tid)``, P tracks only."""

    path: str
    n_events: int
    dropped: int
    runtimes: dict[int, str] = field(default_factory=dict)
    tracks: dict[tuple[int, int], Track] = field(default_factory=dict)
    barriers: list[Barrier] = field(default_factory=list)
    stws: list[StopTheWorld] = field(default_factory=list)
    procs_changes: list[ProcsChange] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def span(self) -> tuple[float, float]:
        """The first and last time (µs) any ragged event covers; (0, 0) for an empty trace."""
        lo, hi = float("inf"), float("-inf")
        for tr in self.tracks.values():
            for seq in (tr.slices, tr.fns, tr.step_asides):
                for ev in seq:
                    lo, hi = min(lo, ev.ts), max(hi, ev.ts + ev.dur)
            for inst in tr.instants:
                lo, hi = min(lo, inst.ts), max(hi, inst.ts)
        world: list[Barrier | StopTheWorld] = [*self.barriers, *self.stws]
        for w in world:
            lo, hi = min(lo, w.ts), max(hi, w.ts + w.dur)
        for pc in self.procs_changes:
            lo, hi = min(lo, pc.ts), max(hi, pc.ts)
        return (lo, hi) if lo <= hi else (0.0, 0.0)

    def active_runtimes(self) -> list[int]:
        """The runtimes (pids) with at least one event besides their names.

        A runtime that existed while the trace ran but did nothing (or had
        already been closed) has only metadata: the summary leaves it out.
        """
        pids = {pid for pid, _ in self.tracks}
        world: list[Barrier | StopTheWorld | ProcsChange] = [*self.barriers, *self.stws, *self.procs_changes]
        pids.update(ev.pid for ev in world)
        return sorted(pids)

    def p_tracks(self, pid: int) -> list[Track]:
        """The P tracks of runtime ``pid``, in P order."""
        return [self.tracks[k] for k in sorted(self.tracks) if k[0] == pid]


def event_kind(ev: dict[str, Any]) -> str:
    """A short name for the type of a trace event, as the summary counts it."""
    ph, cat, name = ev.get("ph"), ev.get("cat"), ev.get("name", "")
    if ph == "M":
        return "metadata"
    if cat == "goroutine":
        return "goroutine slice"
    if cat == "barrier":
        return {"fn": "fn", "step aside": "step aside"}.get(name, name)  # or "barrier request", "for_each_p"
    if cat == "stw":
        return "stopped" if ph == "i" else "stop the world"
    if cat == "procs":
        return "procs change"
    if cat in ("syscall", "handoff"):
        return cat
    return "other"


def load(path: str | os.PathLike[str]) -> TraceFile:
    """Read a trace written by ``ragged.trace``; raise :class:`TraceFormatError` if it is not one."""
    path = os.fspath(path)
    try:
        with open(path) as f:
            doc = json.load(f)
    except json.JSONDecodeError as err:
        raise TraceFormatError(f"{path}: not JSON ({err})") from None
    if isinstance(doc, dict):
        events = doc.get("traceEvents")
        other = doc.get("otherData") or {}
    else:
        events, other = doc, {}
    if not isinstance(events, list) or not all(isinstance(e, dict) and "ph" in e for e in events):
        raise TraceFormatError(f"{path}: not a Chrome trace-event document (no traceEvents list of events with 'ph')")
    tf = TraceFile(path=path, n_events=len(events), dropped=int(other.get("dropped_events", 0) or 0))
    for ev in events:
        _add(tf, ev)
    for tr in tf.tracks.values():
        tr.slices.sort()
        tr.fns.sort()
        tr.step_asides.sort()
        tr.instants.sort()
    tf.barriers.sort()
    tf.stws.sort()
    tf.procs_changes.sort()
    return tf


def _track(tf: TraceFile, pid: int, tid: int) -> Track:
    key = (pid, tid)
    tr = tf.tracks.get(key)
    if tr is None:
        tr = tf.tracks[key] = Track(pid, tid, f"P{tid}")
    return tr


def _add(tf: TraceFile, ev: dict[str, Any]) -> None:
    kind = event_kind(ev)
    tf.counts[kind] += 1
    pid, tid = ev.get("pid", 0), ev.get("tid", 0)
    args = ev.get("args") or {}
    if kind == "metadata":
        if ev.get("name") == "process_name":
            tf.runtimes[pid] = args.get("name", f"runtime {pid}")
        elif ev.get("name") == "thread_name" and tid != WORLD_TID:
            _track(tf, pid, tid).name = args.get("name", f"P{tid}")
        return
    ts, dur = float(ev.get("ts", 0.0)), float(ev.get("dur", 0.0))
    tf.runtimes.setdefault(pid, f"ragged runtime {pid}")
    if tid == WORLD_TID:
        if kind == "for_each_p":
            tf.barriers.append(Barrier(pid, ts, dur, int(args.get("seq", 0)), int(args.get("procs", 0))))
        elif kind == "stop the world":
            stopping = float(args.get("stopping_us", dur))
            tf.stws.append(StopTheWorld(pid, ts, dur, stopping, str(args.get("reason", "")), int(args.get("procs", 0))))
        elif kind == "procs change":
            tf.procs_changes.append(ProcsChange(pid, ts, int(args.get("old", 0)), int(args.get("new", 0))))
        return
    if kind == "other":
        return
    tr = _track(tf, pid, tid)
    if kind == "goroutine slice":
        gid = int(args.get("goroutine", 0))
        name, labels, stop = str(args.get("name", f"g{gid}")), dict(args.get("labels") or {}), str(args.get("stop", ""))
        tr.slices.append(Slice(ts, dur, gid, name, labels, stop))
    elif kind == "fn":
        tr.fns.append(Span(ts, dur, int(args.get("seq", 0))))
    elif kind == "step aside":
        tr.step_asides.append(Span(ts, dur, 0))
    elif ph_is_instant(ev):
        tr.instants.append(Instant(ts, kind, str(ev.get("name", kind))))


def ph_is_instant(ev: dict[str, Any]) -> bool:
    """True for an instant event (``ph`` "i", or the legacy "I")."""
    return ev.get("ph") in ("i", "I")


# -------------------------------------------------------------------- summary


def _median(xs: list[float]) -> float | None:
    return round(statistics.median(xs), 1) if xs else None


def summarize(tf: TraceFile, first: int = 5) -> dict[str, Any]:
    """Counts per event type, per P and per runtime, as a JSON-ready dict.

    ``first`` caps the lists of barrier and stop-the-world times (ms) given
    per runtime: enough to pick a ``--start``/``--end`` window for the viewer.
    """
    lo, hi = tf.span()
    stops: Counter[str] = Counter()
    per_p = []
    for (pid, tid), tr in sorted(tf.tracks.items()):
        stops.update(s.stop for s in tr.slices)
        per_p.append(
            {
                "runtime": pid,
                "p": tid,
                "slices": len(tr.slices),
                "goroutines": len({s.gid for s in tr.slices}),
                "busy_ms": round(sum(s.dur for s in tr.slices) / 1000, 3),
                "fn": len(tr.fns),
                "step_aside_ms": round(sum(s.dur for s in tr.step_asides) / 1000, 3),
                "syscalls": sum(1 for i in tr.instants if i.kind == "syscall"),
                "handoffs": sum(1 for i in tr.instants if i.kind == "handoff"),
                "stopped": sum(1 for i in tr.instants if i.kind == "stopped"),
            }
        )
    world = []
    for pid in tf.active_runtimes():
        bars = [b for b in tf.barriers if b.pid == pid]
        stws = [s for s in tf.stws if s.pid == pid]
        world.append(
            {
                "runtime": pid,
                "barriers": len(bars),
                "barrier_median_us": _median([b.dur for b in bars]),
                "barriers_at_ms": [round(b.ts / 1000, 3) for b in bars[:first]],
                "stws": len(stws),
                "stw_median_us": _median([s.dur for s in stws]),
                "stws_at_ms": [round(s.ts / 1000, 3) for s in stws[:first]],
                "procs_changes": [f"{c.old}->{c.new} at {c.ts / 1000:.3f}ms" for c in tf.procs_changes if c.pid == pid],
            }
        )
    return {
        "file": tf.path,
        "events": tf.n_events,
        "dropped_events": tf.dropped,
        "span_ms": [round(lo / 1000, 3), round(hi / 1000, 3)],
        "by_type": dict(sorted(tf.counts.items())),
        "stop_reasons": dict(stops.most_common()),
        "per_p": per_p,
        "world": world,
    }


def render_summary(s: dict[str, Any]) -> str:
    """The summary as text for a terminal."""
    out = [
        f"{s['file']}: {s['events']} events, {s['dropped_events']} dropped, "
        f"{s['span_ms'][0]:.3f}..{s['span_ms'][1]:.3f} ms",
        "",
        "events by type:",
    ]
    out += [f"  {k:<18}{v:>9}" for k, v in s["by_type"].items()]
    out += ["", "why goroutines stopped:"]
    out += [f"  {k:<28}{v:>9}" for k, v in s["stop_reasons"].items()] or ["  (no goroutine slices)"]
    out += ["", "per P:"]
    out.append(
        f"  {'rt':>3} {'P':>3} {'slices':>8} {'Gs':>5} {'busy ms':>9} {'fn':>5} {'step-aside ms':>14} "
        f"{'syscalls':>9} {'handoffs':>9} {'stopped':>8}"
    )
    for p in s["per_p"]:
        out.append(
            f"  {p['runtime']:>3} {p['p']:>3} {p['slices']:>8} {p['goroutines']:>5} {p['busy_ms']:>9.3f} "
            f"{p['fn']:>5} {p['step_aside_ms']:>14.3f} {p['syscalls']:>9} {p['handoffs']:>9} {p['stopped']:>8}"
        )
    out += ["", "per runtime (world track):"]
    for w in s["world"]:
        out.append(
            f"  runtime {w['runtime']}: {w['barriers']} barriers (median {_fmt_us(w['barrier_median_us'])}), "
            f"{w['stws']} stop-the-worlds (median {_fmt_us(w['stw_median_us'])})"
        )
        if w["barriers_at_ms"]:
            out.append(f"    first barriers at ms: {', '.join(f'{t:.3f}' for t in w['barriers_at_ms'])}")
        if w["stws_at_ms"]:
            out.append(f"    first stop-the-worlds at ms: {', '.join(f'{t:.3f}' for t in w['stws_at_ms'])}")
        if w["procs_changes"]:
            out.append(f"    procs changes: {'; '.join(w['procs_changes'])}")
    return "\n".join(out)


def _fmt_us(us: float | None) -> str:
    return "-" if us is None else f"{us:.1f}µs"
