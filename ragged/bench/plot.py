"""``python -m ragged.bench --plot PATH``: a PNG of a stress run's pause and latency distributions.

What is drawn, from the dict that :func:`ragged.bench.stress.run` returns:

* one column per procs value, two rows: the coordinator's latency per
  operation (``for_each_p`` vs stop-the-world), and the pause per operation
  (mutator time held off, summed over Ps), each as a percentile plot: the x
  axis counts "nines" (p50, p90, p99, p99.9, ...), the y axis is the time on a
  log scale, so the median and the tail can be read off one curve.  When a
  mode carries its raw samples (``latency_samples`` / ``pause_samples``, or
  ``latencies`` / ``pauses``, in seconds) the whole curve is drawn; otherwise
  the summary's p50, p99 and max are drawn as points joined by a dashed line.
* a bottom row: throughput of each workload part (compute, pipeline,
  syscalls) with a coordinator running, relative to the no-coordinator
  slices of the same procs value (1.0 = no loss).

matplotlib is optional (the ``plot`` extra); :func:`require_matplotlib` exits
with status 2 and the install command when it is missing.  Only the
object-oriented API with the Agg canvas is used: no pyplot, no global state.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

from . import build
from .stats import fmt_time

INSTALL_HINT = "pip install 'ragged[plot]'"

MODE_STYLE = {
    "foreach": {"color": "tab:blue", "label": "for_each_p (ragged barrier)"},
    "stw": {"color": "tab:orange", "label": "stop-the-world"},
}
PARTS = (
    ("compute_per_s", "compute goroutines"),
    ("pipeline_per_s", "channel pipelines"),
    ("syscalls_per_s", "blocking syscalls"),
)


def require_matplotlib() -> None:
    """Exit with status 2 and a clear message (no traceback) when matplotlib cannot be imported."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    except ImportError as err:
        sys.stderr.write(
            f"--plot needs matplotlib, which is not installed ({err}).\n"
            f"Install the plot extra: {INSTALL_HINT}  (or: pip install matplotlib)\n"
        )
        raise SystemExit(2) from None


def _nines(q: float, n: int) -> float:
    """x position of quantile ``q`` (0..1) on the "nines" axis: -log10(1 - q), capped for the max."""
    cap = math.log10(max(n, 2))
    if q >= 1:
        return cap
    return min(-math.log10(1 - q), cap)


def _samples(mode: dict[str, Any], kind: str) -> list[float] | None:
    """Raw samples (seconds) of ``kind`` ("latency" or "pause") if the result carries them."""
    for key in (f"{kind}_samples", "latencies" if kind == "latency" else "pauses"):
        xs = mode.get(key)
        if isinstance(xs, list) and xs:
            return [x for x in xs if x > 0]
    return None


def _percentile_curve(xs: Sequence[float]) -> tuple[list[float], list[float]]:
    """(nines, value) points of the empirical distribution of ``xs``, one per sample."""
    data = sorted(xs)
    n = len(data)
    px = [_nines(i / n, n) for i in range(n)]
    return px, data


def _draw_dist(ax: Any, modes: dict[str, Any], kind: str) -> tuple[float, bool]:
    """One percentile plot of ``kind`` for every coordinator mode; returns (max x drawn, summary only?)."""
    xmax = 2.0
    summary_only = False
    for name, style in MODE_STYLE.items():
        m = modes.get(name)
        if not m:
            continue
        raw = _samples(m, kind)
        s = m.get(kind) or {}
        if raw:
            px, py = _percentile_curve(raw)
            label = f"{style['label']}, n={len(raw):,}"
            ax.step(px, py, where="post", color=style["color"], label=label, lw=1.6)
            xmax = max(xmax, px[-1])
            continue
        n = int(s.get("count", 0))
        if n <= 0:
            continue
        summary_only = True
        pts = [(0.5, s["p50"]), (0.99, s["p99"]), (1.0, s["max"])]
        px = [_nines(q, n) for q, _ in pts]
        py = [max(v, 1e-9) for _, v in pts]
        label = f"{style['label']}, n={n:,}"
        ax.plot(px, py, ":o", color=style["color"], label=label, lw=1.0, ms=6, alpha=0.9)
        for x, y, what in zip(px, py, ("p50", "p99", "max"), strict=True):
            ax.annotate(what, (x, y), textcoords="offset points", xytext=(5, -9), fontsize=7, color=style["color"])
        xmax = max(xmax, px[-1])
    return xmax, summary_only


def _style_dist(ax: Any, xmax: float, title: str, ylabel: str) -> None:
    ticks = [t for t in (math.log10(2), 1.0, 2.0, 3.0, 4.0, 5.0) if t <= xmax + 1e-9]
    names = {math.log10(2): "p50", 1.0: "p90", 2.0: "p99", 3.0: "p99.9", 4.0: "p99.99", 5.0: "p99.999"}
    ax.set_xticks(ticks, [names[t] for t in ticks])
    ax.set_xlim(0, xmax + 0.15)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(_time_formatter())
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel)
    ax.set_xlabel("percentile (log scale of 1 - q)")
    ax.grid(True, which="major", alpha=0.35)
    ax.grid(True, which="minor", axis="y", alpha=0.12)


def _time_formatter() -> Any:
    """A matplotlib tick formatter that writes seconds as ns/µs/ms/s."""
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos: fmt_time(v) if v > 0 else "0")


def _draw_throughput(ax: Any, results: list[dict[str, Any]], part: str, title: str) -> None:
    procs = [r["procs"] for r in results]
    names = [n for n in MODE_STYLE if any(n in r["modes"] for r in results)]
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        vals = []
        for r in results:
            m, base = r["modes"].get(name), r["modes"].get("none", {}).get(part, 0.0)
            vals.append(m[part] / base if m and base else math.nan)
        xs = [k + (i - (len(names) - 1) / 2) * width for k in range(len(procs))]
        bars = ax.bar(xs, vals, width, color=MODE_STYLE[name]["color"], label=MODE_STYLE[name]["label"])
        for b, v in zip(bars, vals, strict=True):
            if v == v:
                ax.annotate(f"{v:.2f}", (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom", fontsize=7)
    ax.axhline(1.0, color="black", lw=0.8, ls="--")
    ax.set_xticks(range(len(procs)), [f"procs={p}" for p in procs])
    ax.set_title(f"{title}: throughput vs no coordinator", fontsize=10)
    ax.set_ylabel("rate / rate with none (1 = no loss)")
    ax.grid(True, axis="y", alpha=0.35)


def draw(data: dict[str, Any], path: str) -> None:
    """Render the stress result ``data`` (see :mod:`ragged.bench.stress`) to a PNG at ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    results = data["results"]
    ncols = max(len(results), len(PARTS))
    size = (4.2 * ncols, 11.5)
    try:
        fig = Figure(figsize=size, dpi=110, layout="constrained")
    except TypeError:  # matplotlib < 3.6
        fig = Figure(figsize=size, dpi=110, constrained_layout=True)
    FigureCanvasAgg(fig)
    outer = fig.add_gridspec(3, 1, height_ratios=[1, 1, 0.9])
    top = outer[0].subgridspec(1, len(results))
    mid = outer[1].subgridspec(1, len(results))
    bottom = outer[2].subgridspec(1, len(PARTS))
    summary_only = False
    for col, r in enumerate(results):
        modes = r["modes"]
        for spec, kind, what in (
            (top, "latency", "coordinator latency per operation"),
            (mid, "pause", "pause per operation (summed over Ps)"),
        ):
            ax = fig.add_subplot(spec[0, col])
            xmax, only = _draw_dist(ax, modes, kind)
            summary_only |= only
            _style_dist(ax, xmax, f"procs={r['procs']}: {what}", "time" if col == 0 else "")
            if ax.has_data():
                ax.legend(fontsize=8, loc="upper left")
            else:
                ax.text(0.5, 0.5, "no operations", ha="center", va="center", transform=ax.transAxes)
    for col, (part, title) in enumerate(PARTS):
        ax = fig.add_subplot(bottom[0, col])
        _draw_throughput(ax, results, part, title)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        try:
            fig.legend(handles, labels, loc="outside lower center", ncols=len(handles), fontsize=9)
        except (ValueError, TypeError):  # matplotlib < 3.7: no "outside" placement
            fig.legend(handles, labels, loc="lower center", ncol=len(handles), fontsize=9)
    note = "\n(only the summary was recorded: its p50, p99 and max are drawn as points)" if summary_only else ""
    fig.suptitle(
        "ragged stress: ragged barrier (for_each_p) vs stop-the-world under a mixed load\n"
        f"{build.label(data)}, mix {data.get('mix', '?')}, one operation every "
        f"{data.get('interval', 0) * 1e3:g}ms, {data.get('reps', '?')} x {data.get('slice_seconds', '?')}s "
        "slices per mode" + note,
        fontsize=11,
    )
    fig.savefig(path)
