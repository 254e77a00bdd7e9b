"""The goals ``python -m ragged.bench --peers`` checks, each PASS/MISS on the figures of the same run.

Two tables: the single-thread goals (costs of one switch, spawn, checkpoint
and idle barrier, each beside its asyncio or thread peer: the "floor" each
must at least reach, and the stricter "goal" of docs/design.md), and the
parallel goals (compute scaling, and barrier vs stop-the-world on busy Ps;
meant for the free-threaded build, measured on both).  A target is ``value op
bound``; a row with no ``op`` is shown for information (no goal is set).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .stats import fmt_time, spread, table


def ratio(a: float | None, b: float | None) -> float:
    """a / b; nan when either is missing or b is 0."""
    if a is None or b is None or not b:
        return math.nan
    return a / b


@dataclass(frozen=True)
class Target:
    """One goal checked in the run: ``value op bound`` (``op`` "": information only)."""

    key: str
    label: str
    source: str  # "floor" (the least acceptable) or "goal" (docs/design.md, "Performance goals")
    value: float
    op: str  # "<=", ">=", "<" or "" (no goal)
    bound: float
    unit: str  # "x" for ratios, "s" for times
    spread: str = ""  # the range over rounds behind ``value``, when it is a median of rounds

    @property
    def passed(self) -> bool | None:
        """True/False against the bound; None when not measured or there is no goal."""
        if math.isnan(self.value) or not self.op:
            return None
        if self.op == "<=":
            return self.value <= self.bound
        if self.op == "<":
            return self.value < self.bound
        return self.value >= self.bound

    @property
    def margin(self) -> str:
        """How far from the bound, in words: '0.83x the minimum (17% short)' style."""
        if math.isnan(self.value):
            return "not measured"
        if not self.op:
            return "no goal set"
        f = self.value / self.bound
        if self.op == ">=":
            return f"{f:.2f}x the minimum" + ("" if self.passed else f" ({(1 - f) * 100:.0f}% short)")
        return f"{f:.2f}x the maximum" + ("" if self.passed else f" ({(f - 1) * 100:.0f}% over)")

    def shown(self, v: float) -> str:
        """``v`` in this target's unit."""
        if v != v:
            return "n/a"
        return f"{v:.2f}x" if self.unit == "x" else fmt_time(v)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (``goal`` is "<= 3x" style, or "none")."""
        bound = f"{self.bound:g}x" if self.unit == "x" else fmt_time(self.bound)
        return {
            "key": self.key,
            "label": self.label,
            "source": self.source,
            "value": self.value,
            "unit": self.unit,
            "spread": self.spread,
            "goal": f"{self.op} {bound}" if self.op else "none",
            "pass": self.passed,
            "margin": self.margin,
        }


def _case(secs: dict[str, dict[str, Any]], section: str, case: str) -> dict[str, Any]:
    """One case of a peer section; {} when the section was not run (``--only``)."""
    return secs.get(section, {}).get("cases", {}).get(case, {})


def _checkpoint_ratio(secs: dict[str, dict[str, Any]]) -> float:
    chk = _case(secs, "checkpoint", "ragged")
    return ratio(chk.get("median"), chk.get("attr"))


def single_thread_goals(secs: dict[str, dict[str, Any]], barrier_procs: int) -> list[Target]:
    """The single-thread floors and goals, from the peer sections ``secs``."""

    def med(section: str, case: str) -> float:
        v = _case(secs, section, case).get("median")
        return v if v else math.nan

    ratio_check = _checkpoint_ratio(secs)
    sw = ratio(med("switch", "ragged"), med("switch", "asyncio"))
    gather = ratio(med("spawn", "ragged_all"), med("spawn", "asyncio_gather"))
    spawn_await = ratio(med("spawn", "ragged_one"), med("spawn", "asyncio_one"))
    bar, bar_g = med("barrier", "thread"), med("barrier", "goroutine")
    sys1 = ratio(med("syscall", "ragged_p1"), med("syscall", "tpe"))
    sys4 = ratio(med("syscall", "ragged_p4"), med("syscall", "tpe"))
    idle = f"for_each_p, {barrier_procs} idle Ps"
    i6, dm = "floor", "goal"
    return [
        Target("checkpoint", "checkpoint / obj.attr, same loop", i6, ratio_check, "<=", 3, "x"),
        Target("switch_half", "gosched / asyncio sleep(0) switch rate, procs=1", i6, sw, ">=", 0.5, "x"),
        Target("switch_design", "gosched / asyncio sleep(0) switch rate, procs=1", dm, sw, ">=", 2, "x"),
        Target("spawn_gather", "spawn+join (go all, await each) / create_task+gather", i6, gather, ">=", 0.5, "x"),
        Target("spawn_await", "spawn+join (one at a time) / create_task+await", dm, spawn_await, ">=", 1, "x"),
        Target("barrier", f"{idle}, plain thread: median", i6, bar, "<", 100e-6, "s"),
        Target("barrier_design", f"{idle}, plain thread: median", dm, bar, "<=", 20e-6, "s"),
        Target("barrier_g", f"{idle}, from a goroutine: median", i6, bar_g, "<", 100e-6, "s"),
        Target("barrier_g_design", f"{idle}, from a goroutine: median", dm, bar_g, "<=", 20e-6, "s"),
        Target("syscall_p1", "syscall-heavy procs=1 / ThreadPoolExecutor() rate", i6, sys1, ">=", 1, "x"),
        Target("syscall_p4", "syscall-heavy procs=4 / ThreadPoolExecutor() rate", i6, sys4, ">=", 1, "x"),
    ]


def render(title: str, targets: list[dict[str, Any]]) -> list[str]:
    """A targets table from the JSON form (:meth:`Target.as_dict`)."""
    rows = []
    has_spread = any(t.get("spread") for t in targets)
    for t in targets:
        v = t["value"]
        shown = "n/a" if v != v else (f"{v:.2f}x" if t.get("unit", "x") == "x" else fmt_time(v))
        verdict = {True: "PASS", False: "MISS", None: "n/a" if t["goal"] != "none" else "info"}[t["pass"]]
        row = [t["label"], t["source"], t["goal"], shown]
        if has_spread:
            row.append(t.get("spread") or "-")
        rows.append([*row, verdict, t["margin"]])
    headers = ["target", "from", "goal", "measured"] + (["range over rounds"] if has_spread else []) + ["", "margin"]
    return [title, "", table(headers, rows)]


def _range(d: dict[str, Any] | None, unit: str) -> str:
    """'min-max' of a spread (see ``stats.spread``) in ``unit``."""
    if not d or d["min"] != d["min"]:
        return ""
    if unit == "x":
        return f"{d['min']:.2f}-{d['max']:.2f}"
    return f"{fmt_time(d['min'])}-{fmt_time(d['max'])}"


def _paired(secs: dict[str, dict[str, Any]], section: str, a: str, b: str) -> dict[str, Any] | None:
    """Per-run ratio of case ``a`` to case ``b`` of a peer section (the runs are paired by index)."""
    xs = _case(secs, section, a).get("samples")
    ys = _case(secs, section, b).get("samples")
    if not xs or not ys:
        return None
    return spread([ratio(x, y) for x, y in zip(xs, ys, strict=True)])


def parallel_goals(
    secs: dict[str, dict[str, Any]],
    scaled: dict[str, Any] | None,
    mutators: dict[str, Any] | None,
    gil: bool = False,
) -> list[Target]:
    """The parallel goals: compute scaling, barrier vs stop-the-world on busy Ps, and the single-thread rows.

    Values are medians over the interleaved rounds of the same run (the
    single-thread rows: over runs), with the range over rounds beside them;
    a goal is checked on the median.  Parts not run (``--only``; None here)
    give "not measured" rows.  The scaling and busy-P goals are the
    free-threaded build's: where the GIL is on (``gil``) those rows are
    shown for information.
    """
    nan, i12 = math.nan, "goal"
    rows: list[Target] = []

    def add(key: str, label: str, d: dict[str, Any] | None, op: str, bound: float, unit: str = "x") -> None:
        value = d["median"] if d else nan
        rows.append(Target(key, label, i12, value, op, bound, unit, _range(d, unit)))

    sr = scaled["ratios"] if scaled else {}
    add("p2_tpe2", "chunks/s, procs=2 / ThreadPoolExecutor(2) on the same chunks", sr.get("p2_tpe2"), ">=", 0.95)
    add("p2g4_tpe2", "the same, 4 goroutines on procs=2", sr.get("p2g4_tpe2"), ">=", 0.95)
    add("p1_thread", "chunks/s, procs=1 / one plain thread", sr.get("p1_thread"), ">=", 0.95)
    add("p2_p1", "chunks/s, procs=2 / procs=1", sr.get("p2_p1"), ">=", 1.9)
    # Information beside them: CPU per chunk, which other processes' load hardly moves (lower is better).
    add("cpu_p1_thread", "CPU per chunk, procs=1 / one plain thread", sr.get("cpu_p1_thread"), "", 1)
    add("cpu_p2_tpe2", "CPU per chunk, procs=2 / ThreadPoolExecutor(2)", sr.get("cpu_p2_tpe2"), "", 1)
    results = {r["procs"]: r for r in mutators["results"]} if mutators else {}
    procs = (2, 4)  # the goals' rows; the case may also run procs=8 (information, in its own table)

    def mode(p: int, m: str) -> dict[str, Any]:
        return results[p]["modes"][m] if p in results else {}

    for p in procs:
        label = f"mutator rate while a for_each_p is in flight / with none, {p} busy Ps"
        add(f"mutator_foreach_p{p}", label, mode(p, "foreach").get("vs_none_in_flight"), ">=", 0.8)
    for p in procs:
        label = f"the same while a stop-the-world is in flight, {p} busy Ps"
        add(f"mutator_stw_p{p}", label, mode(p, "stw").get("vs_none_in_flight"), "", 1)
    for p in procs:
        d = results[p]["latency_p50_ratio"] if p in results else None
        add(f"lat_ratio_p{p}", f"for_each_p p50 / stop-the-world p50, {p} busy Ps", d, "<=", 1)
    fe, st = mode(2, "foreach"), mode(2, "stw")
    add("foreach_p50", "for_each_p p50 on 2 busy Ps", fe.get("latency_p50_rounds"), "<=", 150e-6, "s")
    add("stw_p50", "stop-the-world p50 on 2 busy Ps", st.get("latency_p50_rounds"), "<=", 150e-6, "s")
    p99 = st["latency"]["p99"] if st.get("ops") else nan
    rows.append(Target("stw_p99", "stop-the-world p99 on 2 busy Ps (all rounds)", i12, p99, "<=", 1e-3, "s"))
    if gil:  # the Ps cannot run Python in parallel: these goals are not this build's
        rows = [Target(t.key, t.label, "free-threaded goal", t.value, "", t.bound, t.unit, t.spread) for t in rows]
    value = _checkpoint_ratio(secs)
    rows.append(Target("checkpoint", "checkpoint with nothing pending / attribute read", i12, value, "<=", 3, "x"))
    add("switch", "gosched on one P / asyncio sleep(0)", _paired(secs, "switch", "ragged", "asyncio"), ">=", 2)
    add("spawn", "spawn+join / asyncio, one at a time", _paired(secs, "spawn", "ragged_one", "asyncio_one"), ">=", 1)
    return rows


def atomic_rows(secs: dict[str, dict[str, Any]]) -> list[Target]:
    """The ``atomic`` part, for information (no goal): AtomicInt beside a lock-guarded int on 2 Ps."""
    a = _case(secs, "atomic", "ragged_atomic").get("median")
    lk = _case(secs, "atomic", "ragged_lock").get("median")

    def per(rate: float | None) -> float:
        return 1 / rate if rate else math.nan

    where = "2 goroutines on 2 Ps, one counter"
    return [
        Target(
            "atomic_vs_lock",
            f"AtomicInt.add / threading.Lock-guarded += rate, {where}",
            "info",
            ratio(a, lk),
            "",
            1,
            "x",
        ),
        Target("atomic_add", f"AtomicInt.add(1), {where}: wall time per increment", "info", per(a), "", 0, "s"),
        Target(
            "lock_add", f"with threading.Lock: n += 1, {where}: wall time per increment", "info", per(lk), "", 0, "s"
        ),
    ]


def stress_goals(data: dict[str, Any]) -> list[Target]:
    """The stress benchmark's goals, at 4 Ps (or the most Ps run below that): barrier vs stop-the-world.

    The barrier's latency: at most 1.3x stop-the-world's on a GIL build (every
    M must win the one GIL to reach its safe point either way) and at most
    stop-the-world's where the Ps run in parallel.  Channel pipelines and
    blocking calls must keep going better under barriers than under
    stop-the-world, which stops them.
    """
    results = {
        r["procs"]: r["modes"] for r in data.get("results", []) if "foreach" in r["modes"] and "stw" in r["modes"]
    }
    if not results:
        return []
    procs = max((p for p in results if p <= 4), default=min(results))
    fe, st = results[procs]["foreach"], results[procs]["stw"]
    gil = data.get("gil", True)
    where = f"{procs} Ps, default stress mix"

    def kept(a: float, b: float) -> float:
        # stop-the-world may stop a part entirely (0/s): then any rate under barriers is infinitely better
        return math.inf if a > 0 and b == 0 else ratio(a, b)

    return [
        Target(
            "stress_latency",
            f"for_each_p p50 / stop-the-world p50, {where}",
            "goal",
            ratio(fe["latency"]["p50"], st["latency"]["p50"]),
            "<=",
            1.3 if gil else 1.0,
            "x",
        ),
        Target(
            "stress_pipelines",
            f"channel pipeline rate under barriers / under stop-the-world, {where}",
            "goal",
            kept(fe["pipeline_per_s"], st["pipeline_per_s"]),
            ">=",
            1,
            "x",
        ),
        Target(
            "stress_syscalls",
            f"blocking-call rate under barriers / under stop-the-world, {where}",
            "goal",
            kept(fe["syscalls_per_s"], st["syscalls_per_s"]),
            ">=",
            1,
            "x",
        ),
    ]
