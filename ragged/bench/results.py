"""``python -m ragged.bench.results`` (``make results``): run every benchmark, write benchmarks/RESULTS.md.

Each benchmark listed in :data:`BENCHES` runs as its own process, once per
build given (this interpreter, and with ``--ft PATH`` a free-threaded one run
with ``PYTHON_GIL=0``), and writes JSON whose goal lists (the
:class:`~ragged.bench.targets.Target` rows: goal, figure, PASS or MISS) this
module collects.  The file it writes holds the current figures only: one
table per benchmark with each goal, the figure on each build, the verdict,
and the machine, commit and command behind them.  History and the reasoning
behind past changes live in commit messages and ``benchmarks/history/``.

``--quick`` runs each benchmark in its smoke size (seconds, for tests); its
figures are not meant for the file and it writes to ``--out`` only.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .stats import fmt_time

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Bench:
    """One benchmark: how to run it (full and quick) and where its goal lists are in its JSON."""

    key: str
    title: str
    about: str
    args: tuple[str, ...]
    quick_args: tuple[str, ...]
    goal_keys: tuple[str, ...] = ("targets",)
    also: bool = False  # also run on the ``--also`` builds (a GIL CPython 3.12+ for what needs one)


BENCHES: tuple[Bench, ...] = (
    Bench(
        "stress",
        "The stress benchmark (`make bench`)",
        "Compute goroutines, channel pipelines and blocking calls on procs 1, 2, 4 and 8 while a coordinator "
        "issues a ragged barrier or a stop-the-world every millisecond.",
        ("-m", "ragged.bench", "--quiet"),
        ("-m", "ragged.bench", "--quiet", "--procs", "2", "--duration", "0.2", "--reps", "1"),
    ),
    Bench(
        "peers",
        "Beside asyncio, threads and gevent (`--peers`)",
        "Single-thread costs (switch, spawn, checkpoint, idle barrier, blocking calls) beside asyncio and "
        "threads, compute scaling over Ps, the mutators' rate while a barrier or a stop-the-world is in "
        "flight on busy Ps, and AtomicInt beside a lock-guarded int on 2 Ps.",
        ("-m", "ragged.bench", "--peers", "--quiet"),
        ("-m", "ragged.bench", "--peers", "--quick", "--quiet"),
        ("targets", "parallel", "atomic"),
    ),
    Bench(
        "preempt",
        "Goroutines that never await (`--preempt`)",
        "A ragged barrier and a stop-the-world over 2 Ps each running a loop that never awaits, a goroutine "
        "sleeping 1ms beside such loops, and a tight loop's speed with nothing pending against a plain thread "
        "(asynchronous preemption: CPython 3.12+; n/a before).",
        ("-m", "ragged.bench", "--preempt", "--quiet"),
        ("-m", "ragged.bench", "--preempt", "--quick", "--quiet"),
        also=True,
    ),
    Bench(
        "net",
        "The network poller's echo benchmark (`--net`)",
        "64-byte echo round trips at 1,000 connections over loopback, ragged on its poller at procs 1 and 2 "
        "beside asyncio streams, plain and over TLS, each server in its own process driven by one load "
        "generator; every row is the median of three runs.  The whole table (10 to 10,000 connections, "
        "more servers) is `python -m ragged.bench --net`.",
        (
            "-m",
            "ragged.bench",
            "--net",
            "--conns",
            "1000",
            "--servers",
            "ragged,asyncio,ragged-tls,asyncio-tls",
            "--repeat",
            "3",
            "--quiet",
        ),
        ("-m", "ragged.bench", "--net", "--quick", "--conns", "10", "--servers", "ragged,asyncio", "--quiet"),
    ),
)


@dataclass(frozen=True)
class Build:
    """An interpreter to measure on, with the environment it runs in."""

    python: str
    env: dict[str, str]

    @functools.cached_property
    def name(self) -> str:
        """Its label as measured: e.g. ``3.11.7 (GIL)`` or ``3.13.5t (free-threaded, GIL off)``."""
        code = (
            "import platform, sys, sysconfig; "
            "gil = getattr(sys, '_is_gil_enabled', None); "
            "print(platform.python_version(), int(bool(sysconfig.get_config_var('Py_GIL_DISABLED'))), "
            "int(gil() if gil else 1))"
        )
        out = subprocess.run([self.python, "-c", code], env=self.env, capture_output=True, text=True, check=True)
        version, free, gil = out.stdout.split()
        if free == "0":
            return f"{version} (GIL)"
        return f"{version}t (free-threaded, GIL {'on' if gil == '1' else 'off'})"


def _run(bench: Bench, build: Build, quick: bool, log: Any) -> dict[str, Any]:
    """Run one benchmark on one build; its JSON, or ``{"error": ...}`` when it failed."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        cmd = [build.python, *(bench.quick_args if quick else bench.args), "--json", str(out)]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, env=build.env, capture_output=True, text=True, cwd=ROOT)
        took = time.monotonic() - t0
        print(f"results: {bench.key} on {build.python}: exit {proc.returncode} in {took:.0f}s", file=log, flush=True)
        if not out.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            return {"error": f"exit {proc.returncode}: " + " / ".join(tail)}
        return json.loads(out.read_text())


def _command(bench: Bench, build: Build) -> str:
    """The command line behind a table, with the interpreter as seen from the repository root."""
    try:
        python = str(Path(build.python).absolute().relative_to(ROOT))
    except ValueError:
        python = build.python
    prefix = "PYTHON_GIL=0 " if build.env.get("PYTHON_GIL") == "0" else ""
    return f"{prefix}{python} {' '.join(bench.args)}"


def _shown(t: dict[str, Any]) -> str:
    v = t["value"]
    if v != v:
        return "n/a"
    return f"{v:.2f}x" if t.get("unit", "x") == "x" else fmt_time(v)


def _verdict(t: dict[str, Any]) -> str:
    return {True: "PASS", False: "**MISS**", None: "info" if t["goal"] == "none" else "n/a"}[t["pass"]]


def render(runs: dict[str, dict[str, dict[str, Any]]], builds: list[Build], meta: dict[str, str]) -> str:
    """The markdown of RESULTS.md from ``runs[bench key][build name] -> JSON``; a benchmark's table
    has a column for each build it ran on."""
    lines = [
        "# Benchmark results",
        "",
        "The current figures, regenerated by `make results` (do not edit by hand: run it again).",
        'Each table lists a benchmark\'s goals (docs/design.md, "Performance goals"), the figure',
        "measured on each build, and PASS or MISS; `floor` rows are the least acceptable figure,",
        "`goal` rows the design goal, `info` rows have no goal (or a goal of the other build); a",
        "build whose goal is not the row's (a GIL build's or a free-threaded one's) shows its own.",
        "Ratios are ragged / peer (or the operation named first / the second), medians of the",
        "interleaved rounds of one run, with the range over rounds in brackets where there is one.",
        "Figures from a shared 2-core machine are noisy: read a MISS by its margin.  Earlier",
        "write-ups are frozen in `benchmarks/history/`.",
        "",
        f"- commit: `{meta['commit']}`",
        f"- machine: {meta['machine']}",
        f"- date: {meta['date']}",
        f"- builds: {', '.join(b.name for b in builds)}",
        "",
    ]
    for bench in BENCHES:
        per_build = runs.get(bench.key, {})
        if not per_build:
            continue
        lines += [f"## {bench.title}", "", bench.about, ""]
        ran = [b for b in builds if b.name in per_build]
        for b in ran:
            lines.append(f"- {b.name}: `{_command(bench, b)}`")
        lines.append("")
        names = [b.name for b in ran]
        rows: dict[str, dict[str, Any]] = {}
        order: list[str] = []
        for name in names:
            data = per_build.get(name, {})
            if "error" in data:
                lines.append(f"Not measured on {name}: {data['error']}")
                continue
            for key in bench.goal_keys:
                for t in data.get(key, []):
                    rk = f"{key}:{t['key']}"
                    if rk not in rows:
                        rows[rk] = {"t": t, "by": {}}
                        order.append(rk)
                    rows[rk]["by"][name] = t
        if not order:
            lines += ["(no goals recorded)", ""]
            continue
        head = ["measure", "goal", *names]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for rk in order:
            t = rows[rk]["t"]
            cells = [f"{t['label']} ({t['source']})", t["goal"]]
            for name in names:
                bt = rows[rk]["by"].get(name)
                if bt is None:
                    cells.append("not measured")
                    continue
                spread = f" [{bt['spread']}]" if bt.get("spread") else ""
                own = f" (goal {bt['goal']})" if bt["goal"] != t["goal"] else ""  # this build's goal differs
                cells.append(f"{_shown(bt)}{spread} {_verdict(bt)}{own}")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _meta() -> dict[str, str]:
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown (not a git checkout)"
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    machine = f"{platform.system()} {platform.release()} {platform.machine()}, {os.cpu_count()} CPUs"
    return {
        "commit": commit,
        "machine": machine + (f" ({cpu})" if cpu else ""),
        "date": datetime.date.today().isoformat(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m ragged.bench.results", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--out", default=str(ROOT / "benchmarks" / "RESULTS.md"), help="where to write (default: %(default)s)"
    )
    p.add_argument(
        "--ft", metavar="PYTHON", help="also measure on this free-threaded interpreter (run with PYTHON_GIL=0)"
    )
    p.add_argument(
        "--also",
        metavar="PYTHON",
        action="append",
        default=[],
        help="also measure the benchmarks that need a newer GIL CPython (preempt: 3.12+) on this interpreter "
        "(repeatable)",
    )
    p.add_argument(
        "--only", metavar="KEYS", help="comma-separated benchmarks to run: " + ", ".join(b.key for b in BENCHES)
    )
    p.add_argument("--quick", action="store_true", help="smoke sizes (seconds); not for the real file")
    args = p.parse_args(argv)
    keys = {b.key for b in BENCHES}
    only = set(args.only.split(",")) if args.only else keys
    if not only <= keys:
        p.error(f"--only: unknown benchmark(s) {sorted(only - keys)}; choose from {sorted(keys)}")
    builds = [Build(sys.executable, dict(os.environ))]
    if args.ft:
        builds.append(Build(args.ft, {**os.environ, "PYTHON_GIL": "0"}))
    also = [Build(py, dict(os.environ)) for py in args.also]
    runs: dict[str, dict[str, dict[str, Any]]] = {}
    for bench in BENCHES:
        if bench.key not in only:
            continue
        for build in builds + (also if bench.also else []):
            runs.setdefault(bench.key, {})[build.name] = _run(bench, build, args.quick, sys.stderr)
    text = render(runs, builds + also, _meta())
    Path(args.out).write_text(text + "\n")
    print(f"results: wrote {args.out}")
    failed = [f"{k} on {n}" for k, per in runs.items() for n, d in per.items() if "error" in d]
    if failed:
        print(f"results: not measured: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
