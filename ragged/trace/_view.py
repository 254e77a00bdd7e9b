"""Drawing a ragged execution trace: ``python -m ragged.trace view TRACE.json --png OUT.png``.

One row per P (per runtime when the window holds several) under a "world"
row.  What is drawn, so that a ragged barrier and a stop-the-world can be
told apart at a glance:

* goroutine slices as boxes coloured by goroutine id (a fixed pastel colour
  per id, the same in every picture), named inside when wide enough;
* each P's run of the barrier's ``fn`` as a black tick across its row (plus
  a black box when it lasted long enough to show);
* barrier requests as dashed navy lines down every row of that runtime, and
  the barrier, request to completion, as a navy box on the world row;
* stop-the-world shaded red across every row: darker while the world is
  being stopped, lighter while it is stopped; a red box on the world row;
* Ms stepping aside for the GIL during a barrier as light hatched boxes
  (cut at the barrier's end: see :func:`clipped_step_asides`);
  syscalls, hand-offs and "stopped" as small markers; procs changes as a
  purple line.

``--compare`` draws two panels at the same time scale: one around a typical
barrier (the median by duration), one around a typical stop-the-world.

matplotlib is optional (the ``plot`` extra).  :func:`require_matplotlib`
raises :class:`MissingMatplotlib`, which the CLI turns into a message and
exit status 2.  Only the object-oriented API with the Agg canvas is used:
no pyplot, no global state, nothing shown on screen.
"""

from __future__ import annotations

import bisect
import colorsys
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._file import Barrier, Span, StopTheWorld, TraceFile, Track

INSTALL_HINT = "pip install 'ragged[plot]'  (or: pip install matplotlib)"

ROW_PAD = 0.12  # blank fraction above and below a box inside its row
MAX_NAMES = 150  # at most this many slice names written per panel
NAVY, RED, PURPLE = "#1f3a93", "#c0392b", "#7d3c98"


class MissingMatplotlib(RuntimeError):
    """matplotlib is not installed; ``str()`` says how to install it."""


def require_matplotlib() -> None:
    """Import matplotlib's Agg canvas, or raise :class:`MissingMatplotlib` naming the install command."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    except ImportError as err:
        msg = f"drawing a trace needs matplotlib, which is not installed ({err}); {INSTALL_HINT}"
        raise MissingMatplotlib(msg) from None


def goroutine_colour(gid: int) -> tuple[float, float, float]:
    """A pastel colour for goroutine ``gid``: stable across pictures, neighbours far apart in hue."""
    hue = (gid * 0.6180339887) % 1.0
    light = 0.72 + 0.1 * ((gid * 7) % 3) / 2
    return colorsys.hls_to_rgb(hue, light, 0.65)


@dataclass
class Window:
    """A time window to draw, in µs since the trace started."""

    start: float
    end: float
    title: str = ""


@dataclass
class Row:
    """One row of the picture: a runtime's world row (``track`` None) or one of its Ps."""

    pid: int
    label: str
    track: Track | None


# ----------------------------------------------------------------- choosing


def rows_for(tf: TraceFile, pids: Sequence[int], procs: Sequence[int] | None) -> list[Row]:
    """World row then P rows for each runtime in ``pids``; ``procs`` keeps only those P ids."""
    rows: list[Row] = []
    many = len(pids) > 1
    for pid in pids:
        prefix = f"rt{pid} " if many else ""
        rows.append(Row(pid, f"{prefix}world", None))
        for tr in tf.p_tracks(pid):
            if procs is None or tr.tid in procs:
                rows.append(Row(pid, f"{prefix}{tr.name}", tr))
    return rows


def runtimes_in(tf: TraceFile, window: Window) -> list[int]:
    """The runtimes with any event inside ``window``."""
    found = set()
    for (pid, _), tr in tf.tracks.items():
        if any(_overlaps(s.ts, s.dur, window) for s in tr.slices) or any(
            window.start <= i.ts <= window.end for i in tr.instants
        ):
            found.add(pid)
    world: list[Barrier | StopTheWorld] = [*tf.barriers, *tf.stws]
    for ev in world:
        if _overlaps(ev.ts, ev.dur, window):
            found.add(ev.pid)
    return sorted(found)


def compare_windows(tf: TraceFile, pid: int | None, span_us: float | None) -> tuple[int, list[Window]]:
    """Two windows of one length: around the median barrier and the median stop-the-world.

    ``pid`` None picks the runtime with the most Ps among those that have
    both.  ``span_us`` None makes the window 3x the longer of the two events
    (at least 1ms).  Raises ValueError when no runtime has both.
    """
    both = sorted({b.pid for b in tf.barriers} & {s.pid for s in tf.stws})
    if pid is None:
        if not both:
            raise ValueError("--compare needs a runtime with both a barrier and a stop-the-world in the trace")
        pid = max(both, key=lambda p: (len(tf.p_tracks(p)), p))
    elif pid not in both:
        raise ValueError(f"--compare: runtime {pid} has no barrier or no stop-the-world in this trace")
    bar: Barrier = _typical([b for b in tf.barriers if b.pid == pid])
    stw: StopTheWorld = _typical([s for s in tf.stws if s.pid == pid])
    span = span_us if span_us is not None else max(3 * max(bar.dur, stw.dur), 1000.0)
    lead = span / 4
    bar_title = f"ragged barrier (for_each_p): {_fmt(bar.dur)} from request to done"
    stw_title = f"stop-the-world: {_fmt(stw.stopping)} to stop every P, {_fmt(stw.dur)} until restarted"
    return pid, [
        Window(bar.ts - lead, bar.ts - lead + span, bar_title),
        Window(stw.ts - lead, stw.ts - lead + span, stw_title),
    ]


def _typical(evs: list[Any]) -> Any:
    """The median-duration event among those not in a burst (started at least the median gap after the previous).

    A coordinator that fell behind fires a burst of back-to-back operations
    to catch up; a picture of one of those shows the burst, not the operation.
    """
    gaps = [b.ts - a.ts for a, b in zip(evs, evs[1:], strict=False)]
    if gaps:
        median_gap = sorted(gaps)[len(gaps) // 2]
        calm = [e for e, gap in zip(evs[1:], gaps, strict=True) if gap >= median_gap]
        evs = calm or evs
    return sorted(evs, key=lambda e: e.dur)[len(evs) // 2]


def clipped_step_asides(tf: TraceFile, track: Track) -> list[Span]:
    """``track``'s step-aside waits, each cut at the end of the barrier it waited for.

    The recorded end is when the M ran Python again, which includes waiting
    for the GIL after the barrier was done (ordinary GIL sharing, as the
    runtime's pause accounting counts it); the picture shows only the wait
    for the barrier.
    """
    bars = [b for b in tf.barriers if b.pid == track.pid]
    starts = [b.ts for b in bars]
    out = []
    for a in track.step_asides:
        i = bisect.bisect_right(starts, a.ts) - 1
        end = a.ts + a.dur
        if i >= 0 and a.ts <= bars[i].ts + bars[i].dur:
            end = min(end, bars[i].ts + bars[i].dur)
        out.append(Span(a.ts, end - a.ts, a.seq))
    return out


def _overlaps(ts: float, dur: float, w: Window) -> bool:
    return ts <= w.end and ts + dur >= w.start


def _fmt(us: float) -> str:
    return f"{us / 1000:.2f}ms" if us >= 1000 else f"{us:.0f}µs"


# ----------------------------------------------------------------- drawing


def render(
    tf: TraceFile,
    out: str | os.PathLike[str],
    windows: Sequence[Window],
    pids: Sequence[int] | None = None,
    procs: Sequence[int] | None = None,
    width: float = 12.0,
    dpi: int = 100,
    title: str | None = None,
) -> dict[str, Any]:
    """Draw ``windows`` of ``tf`` (one panel each) to the PNG ``out``; return what was drawn.

    ``pids`` None draws every runtime with events in the first window.
    Returns counts per panel (handy for tests and for the CLI's message).
    """
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if pids is None:
        pids = runtimes_in(tf, windows[0]) or tf.active_runtimes()[:1]
    rows = rows_for(tf, pids, procs)
    panel_h = 0.9 + 0.32 * len(rows)
    fig = Figure(figsize=(width, panel_h * len(windows) + 1.3), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(windows), 1, squeeze=False)[:, 0]
    drawn = []
    for ax, win in zip(axes, windows, strict=True):
        drawn.append(_panel(ax, tf, rows, win, width * dpi))
    fig.suptitle(title or f"ragged trace {os.path.basename(tf.path)}", fontsize=11)
    _legend(fig)
    fig.tight_layout(rect=(0, 0.09 if len(windows) > 1 else 0.12, 1, 1))
    fig.savefig(os.fspath(out), dpi=dpi)
    return {"rows": [r.label for r in rows], "panels": drawn}


def _panel(ax: Any, tf: TraceFile, rows: list[Row], win: Window, px: float) -> dict[str, int]:
    """One time window: every row, world overlays, axes and labels."""
    from matplotlib.collections import LineCollection, PolyCollection

    n = len(rows)
    min_w = (win.end - win.start) / max(px, 1) * 1.2  # at least ~1 pixel wide
    boxes: list[list[tuple[float, float]]] = []
    colours: list[Any] = []
    ticks: list[list[tuple[float, float]]] = []
    hatched: list[list[tuple[float, float]]] = []
    names: list[tuple[float, float, str]] = []
    markers: dict[str, list[tuple[float, float]]] = {"syscall": [], "handoff": [], "stopped": []}
    counts = {"slices": 0, "fn": 0, "barriers": 0, "stws": 0}
    pid_rows: dict[int, list[int]] = {}
    for i, row in enumerate(rows):
        y = n - 1 - i  # the first row on top
        pid_rows.setdefault(row.pid, []).append(y)
        tr = row.track
        if tr is None:
            continue
        for s in tr.slices:
            if _overlaps(s.ts, s.dur, win):
                boxes.append(_rect(s.ts, max(s.dur, min_w), y, ROW_PAD))
                colours.append(goroutine_colour(s.gid))
                counts["slices"] += 1
                if s.dur > 60 * min_w:
                    names.append((max(s.ts, win.start) + min_w * 2, y, f"G{s.gid} {s.name}"))
        for f in tr.fns:
            if _overlaps(f.ts, f.dur, win):
                ticks.append([(f.ts, y), (f.ts, y + 1)])
                if f.dur > min_w:
                    boxes.append(_rect(f.ts, f.dur, y, 0.3))
                    colours.append("black")
                counts["fn"] += 1
        for a in clipped_step_asides(tf, tr):
            if _overlaps(a.ts, a.dur, win):
                hatched.append(_rect(a.ts, max(a.dur, min_w), y, 0.3))
        for inst in tr.instants:
            if win.start <= inst.ts <= win.end and inst.kind in markers:
                markers[inst.kind].append((inst.ts, y + 0.5))

    # World overlays first, under the slices.
    for pid, ys in pid_rows.items():
        lo, hi = min(ys), max(ys) + 1
        world_y = max(ys)
        for st in tf.stws:
            if st.pid == pid and _overlaps(st.ts, st.dur, win):
                ax.fill_between([st.ts, st.ts + st.stopping], lo, hi, color=RED, alpha=0.28, lw=0, zorder=0)
                ax.fill_between([st.ts + st.stopping, st.ts + st.dur], lo, hi, color=RED, alpha=0.12, lw=0, zorder=0)
                boxes.append(_rect(st.ts, max(st.dur, min_w), world_y, ROW_PAD))
                colours.append(RED)
                counts["stws"] += 1
        for b in tf.barriers:
            if b.pid == pid and _overlaps(b.ts, b.dur, win):
                ax.vlines(b.ts, lo, hi, colors=NAVY, linestyles="dashed", lw=1.0, zorder=1)
                boxes.append(_rect(b.ts, max(b.dur, min_w), world_y, ROW_PAD))
                colours.append(NAVY)
                counts["barriers"] += 1
        for pc in tf.procs_changes:
            if pc.pid == pid and win.start <= pc.ts <= win.end:
                ax.vlines(pc.ts, lo, hi, colors=PURPLE, lw=1.5, zorder=4)
                ax.text(pc.ts, hi - 0.05, f" procs {pc.old}→{pc.new}", color=PURPLE, fontsize=7, va="top", zorder=5)

    ax.add_collection(PolyCollection(boxes, facecolors=colours, edgecolors="none", zorder=2))
    if hatched:
        ax.add_collection(
            PolyCollection(hatched, facecolors="none", edgecolors="#7f8c8d", hatch="////", lw=0.4, zorder=2.5)
        )
    if ticks:
        ax.add_collection(LineCollection(ticks, colors="black", lw=1.2, zorder=3))
    style = {"syscall": ("v", "#e67e22"), "handoff": ("^", "#16a085"), "stopped": ("s", RED)}
    for kind, pts in markers.items():
        if pts:
            m, c = style[kind]
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], marker=m, s=14, c=c, zorder=4, lw=0)
    for x, name_y, text in names[:MAX_NAMES]:
        ax.text(x, name_y + 0.5, text, fontsize=6, va="center", clip_on=True, zorder=3)

    ax.set_xlim(win.start, win.end)
    ax.set_ylim(0, n)
    ax.set_yticks([n - 1 - i + 0.5 for i in range(n)], [r.label for r in rows], fontsize=8)
    ax.tick_params(axis="y", length=0)
    for y in range(1, n):
        ax.axhline(y, color="#dddddd", lw=0.5, zorder=0)
    ax.xaxis.set_major_formatter(_ms_formatter())
    ax.set_xlabel("time since the trace started (ms)", fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    if win.title:
        ax.set_title(win.title, fontsize=9, loc="left")
    return counts


def _rect(ts: float, dur: float, y: float, pad: float) -> list[tuple[float, float]]:
    return [(ts, y + pad), (ts + dur, y + pad), (ts + dur, y + 1 - pad), (ts, y + 1 - pad)]


def _ms_formatter() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda us, _pos: f"{us / 1000:.3f}".rstrip("0").rstrip("."))


def _legend(fig: Any) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [
        Patch(facecolor=goroutine_colour(3), label="goroutine running (colour = goroutine)"),
        Line2D([], [], color="black", lw=1.5, label="fn ran on this P"),
        Line2D([], [], color=NAVY, ls="--", lw=1, label="barrier request"),
        Patch(facecolor=NAVY, label="for_each_p, request to done"),
        Patch(facecolor=RED, alpha=0.4, label="stop-the-world: stopping"),
        Patch(facecolor=RED, alpha=0.15, label="stop-the-world: stopped"),
        Patch(facecolor="none", edgecolor="#7f8c8d", hatch="////", label="M steps aside for the GIL"),
        Line2D([], [], color="#e67e22", marker="v", ls="none", label="syscall"),
        Line2D([], [], color="#16a085", marker="^", ls="none", label="P handed off"),
        Line2D([], [], color=RED, marker="s", ls="none", label="P stopped"),
        Line2D([], [], color=PURPLE, lw=1.5, label="procs change"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=7.5, frameon=False)
