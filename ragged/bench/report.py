"""Turn the stress benchmark's results into its tables, with a legend of every column."""

from __future__ import annotations

from typing import Any

from . import build
from .stats import fmt_time, ratio, table
from .targets import render as render_targets


def mode_rows(result: dict[str, Any]) -> list[list[object]]:
    """One row per mode for one procs value."""
    modes = result["modes"]
    base = modes["none"]["compute_per_s"]
    rows: list[list[object]] = []
    for name, m in modes.items():
        lat, pause = m["latency"], m["pause"]
        busy = name != "none"
        rows.append(
            [
                result["procs"],
                name,
                m["ops"],
                fmt_time(lat["p50"]) if busy else "-",
                fmt_time(lat["p99"]) if busy else "-",
                fmt_time(lat["max"]) if busy else "-",
                fmt_time(pause["p50"]) if busy else "-",
                fmt_time(pause["p99"]) if busy else "-",
                f"{m['compute_per_s']:.0f}",
                f"{ratio(m['compute_per_s'], base):.2f}",
                f"{m['pipeline_per_s']:.0f}",
                f"{m['syscalls_per_s']:.0f}",
            ]
        )
    return rows


HEADERS = [
    "procs",
    "mode",
    "ops",
    "lat p50",
    "lat p99",
    "lat max",
    "pause p50",
    "pause p99",
    "compute/s",
    "vs none",
    "pipe/s",
    "sysc/s",
]


def ratio_rows(results: list[dict[str, Any]]) -> list[list[object]]:
    """for_each_p / stop-the-world ratios per procs value (lower latency/pause is better)."""
    rows: list[list[object]] = []
    for r in results:
        modes = r["modes"]
        if "foreach" not in modes or "stw" not in modes:
            continue
        f, s = modes["foreach"], modes["stw"]
        rows.append(
            [
                r["procs"],
                f"{ratio(f['latency']['p50'], s['latency']['p50']):.2f}",
                f"{ratio(f['latency']['p99'], s['latency']['p99']):.2f}",
                f"{ratio(f['latency']['max'], s['latency']['max']):.2f}",
                f"{ratio(f['pause']['p50'], s['pause']['p50']):.2f}",
                f"{ratio(f['pause']['mean'], s['pause']['mean']):.2f}",
                f"{ratio(f['compute_per_s'], s['compute_per_s']):.2f}",
                f"{ratio(f['compute_per_s'], modes['none']['compute_per_s']):.2f}",
            ]
        )
    return rows


RATIO_HEADERS = [
    "procs",
    "lat p50",
    "lat p99",
    "lat max",
    "pause p50",
    "pause mean",
    "thru f/s",
    "thru f/none",
]


# What every column means; printed under the tables and in ``--help``.
LEGEND = """\
Columns of the first table (one row per procs value and mode):
  procs      the number of Ps (GOMAXPROCS) of the runtime
  mode       the coordinator's operation: none (no coordinator, the baseline), foreach (a ragged
             barrier, rt.for_each_p) or stw (a stop-the-world), one every --interval
  ops        operations completed in the mode's slices
  lat p50/p99/max
             operation latency as the coordinator sees it: from the request until every P has run
             fn (foreach) or has stopped (stw)
  pause p50/p99
             mutator time an operation takes from goroutines, summed over Ps: for stw each P from the
             moment it stopped until the restart; for foreach the callback plus the time an M stepped
             aside for the others (the GIL build)
  compute/s  work units per second of the compute goroutines (--mix compute=N per P; a unit is ~50us
             of Python, then a checkpoint)
  vs none    compute/s relative to the none row of the same procs (1.00: the operations cost nothing)
  pipe/s     values per second through the channel pipelines (producer -> stage -> consumer)
  sysc/s     1ms blocking calls per second completed through ragged.syscall
Columns of the second table (for_each_p / stop-the-world, same procs; below 1 the barrier is better
for latency and pause, above 1 for throughput):
  lat p50/p99/max, pause p50/mean
             the barrier's figure divided by stop-the-world's
  thru f/s   compute/s under barriers divided by compute/s under stop-the-world
  thru f/none
             compute/s under barriers divided by compute/s with no coordinator
"""


def render(data: dict[str, Any]) -> str:
    """The full text report."""
    out = [
        f"{build.label(data)}, switch interval {data['switchinterval'] * 1e3:g}ms, mix {data['mix']}, "
        f"one op every {data['interval'] * 1e3:g}ms, {data['reps']} x {data['slice_seconds']}s slices per mode",
        "",
        table(HEADERS, [row for r in data["results"] for row in mode_rows(r)]),
    ]
    rr = ratio_rows(data["results"])
    if rr:
        out += ["", "for_each_p / stop-the-world (latency and pause: lower is better; throughput: higher)", ""]
        out.append(table(RATIO_HEADERS, rr))
    if data.get("targets"):
        out += ["", *render_targets("goals", data["targets"])]
    errors = [e for r in data["results"] for m in r["modes"].values() for e in m["errors"]]
    out += [
        "",
        f"exactly-once check: {'FAILED: ' + '; '.join(errors[:5]) if errors else 'every barrier ran fn once per P'}",
        "",
        LEGEND.rstrip(),
    ]
    return "\n".join(out)
