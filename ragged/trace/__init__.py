"""``ragged.trace``: record an execution trace, and read or draw one.

Recording (the context manager, also reachable as ``ragged.trace``)::

    with ragged.trace("out.json"):
        ragged.run(main, procs=4)

or ``RAGGED_TRACE=out.json`` for every runtime of a process, or
``ragged-bench --trace out.json``.  The file is Chrome Trace Event JSON:
Perfetto (ui.perfetto.dev) and chrome://tracing open it as one track per P.

Reading, from the command line::

    python -m ragged.trace summary out.json            # counts per event type and per P
    python -m ragged.trace view out.json --png out.png  # the timeline as a picture
    python -m ragged.trace view out.json --png out.png --start 120.5 --end 124
    python -m ragged.trace view out.json --png out.png --compare

A naming note: ``import ragged.trace`` binds the package attribute
``ragged.trace`` to this module instead of the context-manager function.
The module is therefore callable too -- ``ragged.trace(path)`` means the
same either way.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from collections.abc import Sequence
from typing import Any

from .._core._trace import DEFAULT_LIMIT, Tracer, trace
from ._file import TraceFile, TraceFormatError, load, render_summary, summarize
from ._view import MissingMatplotlib, Window, compare_windows, render, require_matplotlib


class _CallableModule(types.ModuleType):
    """This module's class: calling the module calls :func:`trace`."""

    def __call__(self, path: Any, limit: int = DEFAULT_LIMIT) -> Any:
        return trace(path, limit)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["Tracer", "main", "trace"]


# ----------------------------------------------------------------- the CLI


def _ints(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints >= 0, not {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated ints >= 0, not {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m ragged.trace`` argument parser."""
    p = argparse.ArgumentParser(
        prog="python -m ragged.trace",
        description="Read a ragged execution trace (Chrome trace-event JSON written by ragged.trace, "
        "RAGGED_TRACE or ragged-bench --trace): summarise it, or draw its timeline to a PNG.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="{view,summary}")
    v = sub.add_parser(
        "view",
        help="draw the timeline to a PNG (needs matplotlib: pip install 'ragged[plot]')",
        description="Draw the timeline: one row per P under a world row; goroutine slices coloured by "
        "goroutine, the barrier's fn runs as black ticks, barrier requests as dashed lines, "
        "stop-the-world shaded red across all rows, step-aside waits hatched. Times are in ms since "
        "the trace started, as `summary` prints them. Needs matplotlib: pip install 'ragged[plot]'.",
    )
    v.add_argument("trace", metavar="TRACE.json")
    v.add_argument("--png", required=True, metavar="OUT.png", help="where to write the picture")
    v.add_argument("--start", type=float, metavar="MS", help="window start, ms since the trace started")
    v.add_argument("--end", type=float, metavar="MS", help="window end, ms since the trace started")
    v.add_argument(
        "--compare",
        action="store_true",
        help="two panels at one time scale: around the median barrier and the median stop-the-world "
        "(of the runtime with the most Ps, or --runtime)",
    )
    v.add_argument("--span", type=float, metavar="MS", help="with --compare: the window length (ms)")
    v.add_argument("--procs", type=_ints, metavar="0,1,...", help="only these P ids (default: all)")
    v.add_argument(
        "--runtime",
        type=_ints,
        metavar="N[,N]",
        help="only these runtimes (pid in the trace; default: those with events in the window)",
    )
    v.add_argument("--width", type=float, default=12.0, help="picture width in inches (default 12)")
    v.add_argument("--dpi", type=int, default=100, help="dots per inch (default 100)")
    v.add_argument("--title", help="the picture's title (default: the trace file name)")
    s = sub.add_parser("summary", help="print counts per event type, per P and per runtime")
    s.add_argument("trace", metavar="TRACE.json")
    s.add_argument("--json", action="store_true", help="print the summary as JSON")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit status (2: bad usage or matplotlib missing, 1: unreadable trace)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "view":
        for flag in ("span", "width", "dpi"):
            value = getattr(args, flag)
            if value is not None and not value > 0:
                parser.error(f"--{flag} must be positive, not {value}")
    try:
        if args.command == "view":
            require_matplotlib()  # before a possibly slow load
            return _view_cmd(args, load(args.trace))
        tf = load(args.trace)
    except MissingMatplotlib as err:
        print(f"python -m ragged.trace view: {err}", file=sys.stderr)
        return 2
    except TraceFormatError as err:
        print(f"python -m ragged.trace: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"python -m ragged.trace: cannot read {args.trace}: {err.strerror}", file=sys.stderr)
        return 1
    summary = summarize(tf)
    print(json.dumps(summary, indent=1) if args.json else render_summary(summary))
    return 0


def _view_cmd(args: argparse.Namespace, tf: TraceFile) -> int:
    pids = args.runtime
    if args.compare:
        if args.start is not None or args.end is not None:
            print("python -m ragged.trace view: --compare picks its own windows; drop --start/--end", file=sys.stderr)
            return 2
        try:
            pid, windows = compare_windows(tf, pids[0] if pids else None, args.span * 1000 if args.span else None)
        except ValueError as err:
            print(f"python -m ragged.trace view: {err}", file=sys.stderr)
            return 1
        pids = [pid]
    else:
        lo, hi = tf.span()
        start = args.start * 1000 if args.start is not None else lo
        end = args.end * 1000 if args.end is not None else hi
        if not end > start:
            print(f"python -m ragged.trace view: empty window {start / 1000}..{end / 1000} ms", file=sys.stderr)
            return 2
        windows = [Window(start, end)]
    drawn = render(tf, args.png, windows, pids, args.procs, args.width, args.dpi, args.title)
    per = "; ".join(
        f"{d['slices']} slices, {d['fn']} fn, {d['barriers']} barriers, {d['stws']} stop-the-worlds"
        for d in drawn["panels"]
    )
    print(f"{args.png}: {len(drawn['rows'])} rows; {per}")
    return 0
