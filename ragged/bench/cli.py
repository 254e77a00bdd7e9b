"""What the bench command lines share: argument types, and the CLI of a side-by-side benchmark script."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

# What ``--peers`` can run, in order: the peer sections (``peer_cases``), then the two parallel
# cases (compute scaling, mutator rate).
# Here rather than in ``peers`` so that ``--help`` does not import the peer cases.
PEER_PARTS = ("spawn", "switch", "pingpong", "syscall", "checkpoint", "barrier", "atomic", "scaling", "mutator")


def positive(kind: type) -> Callable[[str], Any]:
    """An argparse ``type=``: ``kind(text)`` if it is > 0, else a usage error naming the text."""

    def parse(text: str) -> Any:
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive number, not {text!r}") from None
        if v <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, not {text!r}")
        return v

    return parse


def conditions_main(
    argv: list[str] | None,
    doc: str | None,
    full: Any,
    quick: Any,
    run: Callable[[Any, Callable[[str], None]], dict[str, Any]],
    table: Callable[[dict[str, Any]], str],
) -> int:
    """The command line of a benchmark script that compares conditions side by side.

    ``--quick`` picks the ``quick`` sizes instead of ``full`` (dataclasses with
    a ``runs`` field), ``--runs N`` overrides the runs, ``--json PATH`` also
    writes the report.  ``run(cfg, log)`` measures (progress goes to stderr),
    ``table(report)`` is printed.
    """
    ap = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help=f"small sizes, {quick.runs} runs: a smoke run")
    ap.add_argument(
        "--runs", type=positive(int), metavar="N", help=f"runs per condition (default {full.runs}, quick {quick.runs})"
    )
    ap.add_argument("--json", metavar="PATH", help="also write the report (all samples) as JSON")
    args = ap.parse_args(argv)
    sizes = quick if args.quick else full
    cfg = dataclasses.replace(sizes, runs=args.runs or sizes.runs)
    rep = run(cfg, lambda msg: print(msg, file=sys.stderr, flush=True))
    print(table(rep))
    if args.json:
        Path(args.json).write_text(json.dumps(rep, indent=1) + "\n")
    return 0


def interleaved(
    conditions: tuple[str, ...], runs: int, measure: Callable[[str], dict[str, Any]], log: Callable[[str], None]
) -> dict[str, list[dict[str, Any]]]:
    """``measure(cond)`` for every condition ``runs`` times, the order rotating each repetition.

    Rep 1 measures a, b, c; rep 2 b, c, a; ...: a noisy neighbour hits every
    condition alike.  Returns each condition's samples.
    """
    samples: dict[str, list[dict[str, Any]]] = {c: [] for c in conditions}
    order = list(conditions)
    for rep in range(runs):
        for cond in order:
            log(f"rep {rep + 1}/{runs}: {cond}")
            samples[cond].append(measure(cond))
        order = order[1:] + order[:1]
    return samples


def run_meta(cfg: Any) -> dict[str, Any]:
    """Where a benchmark ran: Python and build, platform, CPUs, switch interval, its config."""
    return {
        "python": platform.python_version(),
        "gil": getattr(sys, "_is_gil_enabled", lambda: True)(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "switchinterval": sys.getswitchinterval(),
        "config": dataclasses.asdict(cfg),
        "seconds": 0.0,
    }


def meta_line(meta: dict[str, Any]) -> str:
    """The last line of a benchmark table: runs, Python and build, CPUs, switch interval, duration."""
    build = "GIL" if meta.get("gil", True) else "free-threaded"
    return (
        f"{meta['config']['runs']} interleaved runs per condition; Python {meta['python']} ({build}), "
        f"{meta['cpus']} CPUs, switch interval {meta['switchinterval'] * 1000:g} ms; {meta['seconds']:.1f} s"
    )
