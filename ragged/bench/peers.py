"""``python -m ragged.bench --peers``: ragged beside asyncio, threading and gevent.

Builds the sections of cases (the workloads are in ``peer_cases``, whose
docstring says exactly what each case does), runs them side by side in one
process, checks the single-thread and parallel goals on the figures of the same run, and
renders the report.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import ragged

from . import atomic_cases, mutator, scaling
from . import build as build_info
from .cli import PEER_PARTS
from .peer_cases import (
    CHECK_CHUNKS,
    FULL,
    GEVENT_POOL,
    QUICK,
    Case,
    Config,
    _aio_pingpong,
    _aio_spawn_gather,
    _aio_spawn_one,
    _aio_switch,
    _aio_syscalls,
    _barrier_goroutine,
    _barrier_thread,
    _default_workers,
    _gevent_pingpong,
    _gevent_sleeps,
    _gevent_spawn_all,
    _gevent_spawn_one,
    _gevent_switch,
    _gevent_threadpool,
    _rg_checkpoint,
    _rg_pingpong,
    _rg_spawn_all,
    _rg_spawn_one,
    _rg_switch,
    _rg_syscalls,
    _rt_call,
    _thread_pingpong,
    _thread_spawn,
    _thread_switch,
    _tpe_syscalls,
    gevent,
    perf,
)
from .stats import fmt_time, percentile, table
from .targets import atomic_rows, parallel_goals, ratio, single_thread_goals
from .targets import render as render_targets

# ------------------------------------------------------------------ the sections


@dataclass
class Section:
    """A group of cases measured together, and how to show them."""

    key: str
    title: str
    unit: str  # "/s": a rate (higher is better); "s": a time (lower is better)
    what: str  # the unit in words
    cases: list[Case]
    ops_label: str = ""  # what one entry of Case.ops is, if any


BARRIER_PROCS = 4


def build(cfg: Config) -> list[Section]:
    """Every section and case for ``cfg``; gevent cases have ``fn=None`` when gevent is missing."""
    gv = gevent is not None
    c = cfg
    n, k, s = c.sys_tasks, c.sys_calls, c.sys_seconds
    dw = _default_workers()

    def gev(fn: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]] | None:
        return fn if gv else None

    return [
        Section(
            "spawn",
            "spawn+join (procs=1)",
            "/s",
            "spawn+join per second",
            [
                Case(
                    "ragged_one",
                    "ragged: await go(noop), one at a time",
                    lambda: _rt_call(1, _rg_spawn_one, c.n_spawn),
                    True,
                ),
                Case(
                    "ragged_all",
                    "ragged: go() all, then await each",
                    lambda: _rt_call(1, _rg_spawn_all, c.n_spawn),
                    True,
                ),
                Case(
                    "asyncio_one",
                    "asyncio: await create_task(noop()), one at a time",
                    lambda: _aio_spawn_one(c.n_spawn),
                ),
                Case("asyncio_gather", "asyncio: create_task all, then gather", lambda: _aio_spawn_gather(c.n_spawn)),
                Case(
                    "threading",
                    f"threading: Thread start()+join(), one at a time ({c.n_thread_spawn:,})",
                    lambda: _thread_spawn(c.n_thread_spawn),
                ),
                Case(
                    "gevent_one", "gevent: spawn(noop).join(), one at a time", gev(lambda: _gevent_spawn_one(c.n_spawn))
                ),
                Case("gevent_all", "gevent: spawn all, then joinall", gev(lambda: _gevent_spawn_all(c.n_spawn))),
            ],
        ),
        Section(
            "switch",
            "context switch (procs=1; two goroutines / tasks / threads / greenlets)",
            "/s",
            "switches per second",
            [
                Case(
                    "ragged", "ragged: 2 goroutines, await gosched()", lambda: _rt_call(1, _rg_switch, c.n_switch), True
                ),
                Case("asyncio", "asyncio: 2 tasks, await asyncio.sleep(0)", lambda: _aio_switch(c.n_switch)),
                Case(
                    "threading",
                    "threading: 2 threads handing a turn via 2 Events",
                    lambda: _thread_switch(c.n_thread_switch),
                ),
                Case("gevent", "gevent: 2 greenlets, gevent.sleep(0)", gev(lambda: _gevent_switch(c.n_switch))),
            ],
        ),
        Section(
            "pingpong",
            "channel ping-pong (unbuffered; one round trip = send + echo back)",
            "/s",
            "round trips per second",
            [
                Case(
                    "ragged_p1",
                    "ragged procs=1: 2 goroutines, 2 Chan()",
                    lambda: _rt_call(1, _rg_pingpong, c.n_pingpong),
                    True,
                ),
                Case(
                    "ragged_p2",
                    "ragged procs=2: 2 goroutines, 2 Chan()",
                    lambda: _rt_call(2, _rg_pingpong, c.n_pingpong),
                    True,
                ),
                Case("asyncio", "asyncio: 2 tasks, 2 asyncio.Queue(1)", lambda: _aio_pingpong(c.n_pingpong)),
                Case("threading", "threading: 2 threads, 2 queue.Queue(1)", lambda: _thread_pingpong(c.n_pingpong)),
                Case(
                    "gevent", "gevent: 2 greenlets, 2 gevent.queue.Channel", gev(lambda: _gevent_pingpong(c.n_pingpong))
                ),
            ],
            ops_label="round trip",
        ),
        Section(
            "syscall",
            f"syscall-heavy ({n:,} goroutines x {k} blocking sleeps of {s * 1e3:g}ms = {n * k:,} calls)",
            "/s",
            "blocking calls completed per second",
            [
                Case(
                    "ragged_p1",
                    "ragged procs=1: await ragged.syscall(time.sleep)",
                    lambda: _rt_call(1, _rg_syscalls, n, k, s),
                    True,
                ),
                Case(
                    "ragged_p4",
                    "ragged procs=4: await ragged.syscall(time.sleep)",
                    lambda: _rt_call(4, _rg_syscalls, n, k, s),
                    True,
                ),
                Case(
                    "asyncio",
                    f"asyncio: await asyncio.to_thread(time.sleep), default executor ({dw} threads)",
                    lambda: _aio_syscalls(n, k, s),
                ),
                Case(
                    "tpe",
                    f"ThreadPoolExecutor() default max_workers={dw}: {n:,} tasks of {k} sleeps",
                    lambda: _tpe_syscalls(n, k, s, None),
                ),
                Case(
                    "tpe64",
                    f"ThreadPoolExecutor(max_workers=64): {n:,} tasks of {k} sleeps",
                    lambda: _tpe_syscalls(n, k, s, 64),
                ),
                Case(
                    "gevent_sleep",
                    "gevent: greenlets, gevent.sleep (hub timer, not a blocking call)",
                    gev(lambda: _gevent_sleeps(n, k, s)),
                ),
                Case(
                    "gevent_pool",
                    f"gevent: greenlets, ThreadPool({GEVENT_POOL}).spawn(time.sleep).get()",
                    gev(lambda: _gevent_threadpool(n, k, s)),
                ),
            ],
        ),
        Section(
            "checkpoint",
            "checkpoint with nothing pending (one goroutine, procs=1; loop overhead included)",
            "s",
            "time per loop iteration",
            [
                Case("ragged", "await ragged.checkpoint()", lambda: _rt_call(1, _rg_checkpoint, c.n_check), True),
            ],
        ),
        Section(
            "barrier",
            f"for_each_p(lambda p: None) with all {BARRIER_PROCS} Ps idle (nothing else running)",
            "s",
            "median time of one barrier",
            [
                Case(
                    "thread",
                    "from a plain thread: rt.for_each_p",
                    lambda: _barrier_thread(c.n_barrier, BARRIER_PROCS),
                    True,
                ),
                Case(
                    "goroutine",
                    "from a goroutine: await ragged.for_each_p",
                    lambda: _barrier_goroutine(c.n_barrier, BARRIER_PROCS),
                    True,
                ),
            ],
            ops_label="barrier",
        ),
        Section(
            "atomic",
            f"one shared counter, 2 workers x {c.n_atomic:,} increments at once",
            "/s",
            "increments per second (both workers)",
            [
                Case(
                    "ragged_atomic",
                    "ragged procs=2: 2 goroutines, AtomicInt.add(1)",
                    lambda: atomic_cases.ragged_atomic(c.n_atomic),
                    True,
                ),
                Case(
                    "ragged_lock",
                    "ragged procs=2: 2 goroutines, with threading.Lock: n += 1",
                    lambda: atomic_cases.ragged_lock(c.n_atomic),
                ),
                Case(
                    "threads_lock",
                    "threading: 2 threads, with threading.Lock: n += 1",
                    lambda: atomic_cases.threads_lock(c.n_atomic),
                ),
            ],
        ),
    ]


# ------------------------------------------------------------------ running


def _measure(sec: Section, runs: int, show: Callable[[str], None]) -> None:
    """Run every installed case of ``sec`` ``runs`` times, in alternating order."""
    cases = [c for c in sec.cases if c.fn is not None]
    for r in range(runs):
        show(f"{sec.key}: run {r + 1}/{runs}")
        order = cases if r % 2 == 0 else cases[::-1]
        for case in order:
            gc.collect()
            assert case.fn is not None
            out = case.fn()
            case.samples.append(out.pop("value"))
            case.ops.extend(out.pop("ops", ()))
            for name, v in out.items():
                case.extra.setdefault(name, []).append(float(v))


# Column headers for the ratio columns (ragged's cases).
SHORT = {
    "ragged_one": "ragged 1-by-1",
    "ragged_all": "ragged batch",
    "ragged": "ragged",
    "ragged_p1": "ragged p1",
    "ragged_p2": "ragged p2",
    "ragged_p4": "ragged p4",
}


def _case_dict(case: Case, unit: str) -> dict[str, Any]:
    if case.fn is None:
        return {"label": case.label, "ours": case.ours, "installed": False}
    xs = case.samples
    worst = min(xs) if unit == "/s" else max(xs)
    d: dict[str, Any] = {
        "label": case.label,
        "ours": case.ours,
        "installed": True,
        "median": statistics.median(xs),
        "worst": worst,
        "samples": xs,
    }
    for name, vs in case.extra.items():
        d[name] = statistics.median(vs)
    if case.ops:
        d["ops"] = {
            "count": len(case.ops),
            "p50": percentile(case.ops, 50),
            "p99": percentile(case.ops, 99),
            "max": max(case.ops),
        }
    return d


def _git_rev() -> str:
    """The commit of the ragged package measured (best effort), '+dirty' with local edits."""
    where = Path(ragged.__file__).resolve().parent

    def git(*cmd: str) -> str:
        try:
            return subprocess.run(["git", *cmd], cwd=where, capture_output=True, text=True, timeout=5).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    rev = git("rev-parse", "--short", "HEAD")
    if rev and git("status", "--porcelain", "--untracked-files=no", "--", "."):
        rev += "+dirty"
    return rev


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on every platform
        return None


PARTS = PEER_PARTS


def run(quiet: bool = False, quick: bool = False, only: tuple[str, ...] = PARTS) -> dict[str, Any]:
    """The peer comparison; returns a JSON-ready dict (see :func:`render`).

    ``quick`` shrinks every size and does 2 runs (a smoke run of a few seconds).
    ``only`` names the parts to run (see :data:`PARTS`; default all); the
    targets of parts not run are reported as not measured.  Progress lines
    go to stderr unless ``quiet``.
    """
    from .stress import calibrate, progress_printer

    bad = sorted(set(only) - set(PARTS))
    if bad:
        raise ValueError(f"unknown --peers part(s) {', '.join(bad)}: choose from {', '.join(PARTS)}")
    cfg = QUICK if quick else FULL
    sc_cfg = scaling.QUICK if quick else scaling.FULL
    mu_cfg = mutator.QUICK if quick else mutator.FULL
    t0 = perf()
    load0 = _loadavg()
    sections = [sec for sec in build(cfg) if sec.key in only]
    steps = len(sections) * cfg.runs
    steps += (sc_cfg.rounds if "scaling" in only else 0) + (mutator.steps(mu_cfg) if "mutator" in only else 0)
    show = progress_printer(steps) if not quiet else (lambda _what: None)
    for sec in sections:
        _measure(sec, cfg.runs, show)
    chunk = calibrate()
    scaled = scaling.run(chunk, sc_cfg, show) if "scaling" in only else None
    mutators = mutator.run(chunk, mu_cfg, show) if "mutator" in only else None
    secs: dict[str, dict[str, Any]] = {}
    for sec in sections:
        secs[sec.key] = {
            "title": sec.title,
            "unit": sec.unit,
            "what": sec.what,
            "ops_label": sec.ops_label,
            "cases": {c.key: _case_dict(c, sec.unit) for c in sec.cases},
        }
    return {
        "kind": "peers",
        **build_info.info(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "switchinterval": sys.getswitchinterval(),
        "gevent": getattr(gevent, "__version__", None) if gevent is not None else None,
        "ragged": ragged.__version__,
        "git": _git_rev(),
        "loadavg_start": load0,
        "loadavg_end": _loadavg(),
        "quick": quick,
        "only": [p for p in PARTS if p in only],
        "config": asdict(cfg),
        "seconds": perf() - t0,
        "sections": secs,
        **({"scaling": scaled} if scaled else {}),
        **({"mutator": mutators} if mutators else {}),
        "targets": [t.as_dict() for t in single_thread_goals(secs, BARRIER_PROCS)],
        "parallel": [t.as_dict() for t in parallel_goals(secs, scaled, mutators, build_info.info()["gil"])],
        "atomic": [t.as_dict() for t in atomic_rows(secs)],
    }


# ------------------------------------------------------------------ rendering


def _fmt(v: float | None, unit: str) -> str:
    if v is None or v != v:
        return "n/a"
    if unit == "/s":
        return f"{v:,.0f}/s"
    return fmt_time(v)


def _fmt_ratio(v: float) -> str:
    return "n/a" if v != v else f"{v:.2f}x"


def _section_text(sec: dict[str, Any]) -> list[str]:
    unit = sec["unit"]
    cases = sec["cases"]
    ours = [k for k, c in cases.items() if c["ours"] and c["installed"]]
    has_ops = any("ops" in c for c in cases.values())
    has_threads = any("threads" in c for c in cases.values())
    headers = ["implementation", "median", "worst run"]
    if has_ops:
        headers += [f"p99 {sec['ops_label']}", f"max {sec['ops_label']}"]
    if has_threads:
        headers.append("threads")
    for k in ours:
        headers.append(f"{SHORT.get(k, k)} / this")
    rows: list[list[object]] = []
    for key, c in cases.items():
        if not c["installed"]:
            row: list[object] = [c["label"], "not installed", "-"]
            row += ["-", "-"] if has_ops else []
            row += ["-"] if has_threads else []
            row += ["-"] * len(ours)
            rows.append(row)
            continue
        row = [c["label"], _fmt(c["median"], unit), _fmt(c["worst"], unit)]
        if has_ops:
            ops = c.get("ops")
            row += [fmt_time(ops["p99"]), fmt_time(ops["max"])] if ops else ["-", "-"]
        if has_threads:
            row.append(f"{c['threads']:.0f}" if "threads" in c else "-")
        for k in ours:
            if key == k or unit != "/s":
                row.append("-")
            else:
                row.append(_fmt_ratio(ratio(cases[k]["median"], c["median"])))
        rows.append(row)
    return [f"{sec['title']}: {sec['what']}", "", table(headers, rows)]


def _checkpoint_text(sec: dict[str, Any]) -> list[str]:
    c = sec["cases"]["ragged"]
    rows = [
        ["empty loop", fmt_time(c["empty"])],
        ["obj.attr", fmt_time(c["attr"])],
        ["info: f() (an empty Python function, no await)", fmt_time(c["call"])],
        ["await ragged.checkpoint()", fmt_time(c["median"])],
        ["await cp()  (cp = ragged.checkpoint held in a local)", fmt_time(c["local"])],
    ]
    return [
        f"{sec['title']}: ns per iteration, median over runs of the median of {CHECK_CHUNKS} interleaved chunks",
        "",
        table(["loop body", "median"], rows),
        "",
        f"checkpoint / obj.attr = {_fmt_ratio(ratio(c['median'], c['attr']))}; "
        f"with cp held in a local {_fmt_ratio(ratio(c['local'], c['attr']))}; "
        f"empty loop subtracted from both {_fmt_ratio(ratio(c['median'] - c['empty'], c['attr'] - c['empty']))}",
    ]


def render(data: dict[str, Any]) -> str:
    """The text report: one table per section, then the targets with PASS/MISS."""
    cfg = data["config"]
    gv = f"gevent {data['gevent']}" if data["gevent"] else "gevent not installed"
    la = data.get("loadavg_start")
    load = f"load average {la[0]:.2f} at start, {data['loadavg_end'][0]:.2f} at end" if la else ""
    out = [
        f"ragged {data['ragged']} ({data['git'] or 'no git'}) beside its peers: {build_info.label(data)}, "
        f"{data['cpus']} CPUs, {gv}; {load}",
        f"{cfg['runs']} runs per case, order alternated; median and worst run; ratios ragged/peer on the medians "
        f"(> 1: ragged faster); {data['seconds']:.0f}s in all" + (" (quick mode)" if data.get("quick") else ""),
    ]
    for key, sec in data["sections"].items():
        out.append("")
        out += _checkpoint_text(sec) if key == "checkpoint" else _section_text(sec)
    if "scaling" in data:
        out += ["", *scaling.render(data["scaling"])]
    if "mutator" in data:
        out += ["", *mutator.render(data["mutator"])]
    out += [
        "",
        *render_targets("single-thread goals (floor: the least acceptable; goal: the design goal)", data["targets"]),
    ]
    if "parallel" in data:
        title = f"parallel goals, measured on {build_info.label(data)} (median over rounds; range over rounds)"
        out += ["", *render_targets(title, data["parallel"])]
    if "atomic" in data:
        out += ["", *render_targets("AtomicInt beside a lock-guarded int (information)", data["atomic"])]
    return "\n".join(out)
