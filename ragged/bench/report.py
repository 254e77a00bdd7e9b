"""Turn the stress benchmark's results into its tables, with a legend of every column."""

from __future__ import annotations

from typing import Any

from . import build
from .stats import fmt_time, ratio, table


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
    errors = [e for r in data["results"] for m in r["modes"].values() for e in m["errors"]]
    out += [
        "",
        f"exactly-once check: {'FAILED: ' + '; '.join(errors[:5]) if errors else 'every barrier ran fn once per P'}",
    ]
    return "\n".join(out)
