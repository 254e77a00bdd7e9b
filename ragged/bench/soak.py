"""``python -m ragged.bench.soak --duration SECONDS``: a bounded soak run.

One runtime runs, for ``--duration`` seconds, with chaos mode on (a seeded
``RAGGED_CHAOS``, printed at the start so a failing run can be replayed) and
``debug`` transition checks on:

* the stress workload of :mod:`ragged.bench.stress` -- compute goroutines
  that checkpoint, channel pipelines, goroutines making blocking syscalls;
* churn goroutines: batches of short goroutines spawned and joined, channel
  ping-pong, sleeps, cancelled sleepers, a shared Mutex, and now and then a
  goroutine-side barrier or stop-the-world;
* a coordinator thread issuing ragged barriers (``rt.for_each_p``) and, every
  few operations, a stop-the-world.

Invariants are checked continuously: every barrier (thread or goroutine side)
ran ``fn`` exactly once per P; under every stop-the-world, every P is in
GCSTOP, ``stopwait`` is 0, no P has its barrier flag set and no safe-point
function is pending; every live P's status is legal; the number of live
goroutines stays under a bound; no M crashed (``debug`` turns an illegal P
transition into a crash); every part keeps making progress.  At the end the
workload is stopped and joined and the scheduler must be quiescent.

Figures are printed at the start, every ``--report-every`` seconds and at the
end: counts (barriers, stop-the-worlds, goroutines created, context switches,
syscalls, pipeline items), barrier and stop-the-world latency (p50/p99/max),
RSS and thread count.  RSS and threads are compared with a baseline taken
after a warm-up: more than twice the baseline at the end counts as unbounded
growth.  The last line is the verdict; the exit status is 1 on any violation.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import ragged
from ragged._core._p import DEAD, GCSTOP, IDLE, RUNNING, STATUS_NAMES, SYSCALL

from . import build, stress
from .cli import positive
from .stats import fmt_time, p_recorder, percentile

LIVE_STATUSES = frozenset({IDLE, RUNNING, SYSCALL, GCSTOP})
STUCK_AFTER = 60.0  # an operation (barrier, stop-the-world) running this long is a hang


def rss_bytes() -> int:
    """Resident set size of this process now (``VmRSS``), or the peak from getrusage."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def fmt_mb(n: int) -> str:
    return f"{n / 1e6:.1f}MB"


class Reservoir:
    """A bounded uniform sample of a stream (so a long soak does not grow its own memory)."""

    def __init__(self, size: int = 20000, seed: int = 0) -> None:
        self.size = size
        self.samples: list[float] = []
        self.count = 0
        self.max = 0.0
        self._rng = random.Random(seed)

    def add(self, x: float) -> None:
        self.count += 1
        if x > self.max:
            self.max = x
        if len(self.samples) < self.size:
            self.samples.append(x)
        else:
            j = self._rng.randrange(self.count)
            if j < self.size:
                self.samples[j] = x

    def describe(self) -> str:
        if not self.count:
            return "none"
        s = self.samples
        return f"p50 {fmt_time(percentile(s, 50))} p99 {fmt_time(percentile(s, 99))} max {fmt_time(self.max)}"


class Soak:
    """One soak run: the runtime, its workload, the checks and the figures."""

    def __init__(self, args: argparse.Namespace, out: Callable[[str], None] = print) -> None:
        self.args = args
        self.out = out
        self.procs: int = args.procs
        self.seed: int | None = args.chaos
        self.violations: list[str] = []
        self._vlock = threading.Lock()
        self.stop = threading.Event()
        self.lat = {k: Reservoir(seed=i) for i, k in enumerate(("barrier", "stw", "g_barrier", "g_stw"))}
        self.window = {k: Reservoir(seed=10 + i) for i, k in enumerate(("barrier", "stw"))}
        self.counts = {"barrier": 0, "stw": 0, "g_barrier": 0, "g_stw": 0, "churn": 0, "cancelled": 0}
        self._clock = threading.Lock()  # counts and latencies are updated from several Ms at once
        # The coordinator's current operation and when it began (None: none
        # running).  One attribute, replaced whole, so the watcher's single
        # read never pairs one operation's name with another's start, or
        # sees a start that is cleared between its test and its use.
        self.op: tuple[str, float] | None = None
        self.max_goroutines = 0
        self.retained = (0, 0)  # latency samples held at the end: (runtime metrics, this soak's reservoirs)
        self.t0 = 0.0

    # ------------------------------------------------------------ checks

    def violation(self, what: str) -> None:
        """Record an invariant violation (printed at once, counted in the verdict)."""
        with self._vlock:
            self.violations.append(what)
            n = len(self.violations)
        if n <= 20:
            self.out(f"[{self.elapsed():7.1f}s] VIOLATION: {what}")

    def count(self, key: str, latency: str | None = None, seconds: float = 0.0) -> None:
        """Bump a counter (and record a latency) from any thread or goroutine; never blocks for long."""
        with self._clock:
            self.counts[key] += 1
            if latency is not None:
                self.lat[latency].add(seconds)
                if latency in self.window:
                    self.window[latency].add(seconds)

    def elapsed(self) -> float:
        return time.monotonic() - self.t0 if self.t0 else 0.0

    def check_once_per_p(self, seen: list[int], what: str) -> None:
        if sorted(seen) != list(range(self.procs)):
            self.violation(f"{what} ran fn on Ps {sorted(seen)}, expected each of 0..{self.procs - 1} exactly once")

    def check_stopped(self, rt: ragged.Runtime, what: str) -> None:
        """Inside a stop-the-world: the whole world is stopped and no barrier is half-done."""
        sched = rt._sched
        statuses = [STATUS_NAMES[p.status] for p in sched.allp[: sched.procs]]
        if any(s != "gcstop" for s in statuses):
            self.violation(f"{what}: world not stopped: {statuses}")
        if sched.stopwait != 0:
            self.violation(f"{what}: stopwait is {sched.stopwait} with the world stopped")
        flags = [p.id for p in sched.allp[: sched.procs] if p.run_safe_point_fn]
        if flags:
            self.violation(f"{what}: P(s) {flags} still have runSafePointFn set")
        if sched.safe_point_fn is not None:
            self.violation(f"{what}: safePointFn still set to {sched.safe_point_fn!r}")

    def check_statuses(self, rt: ragged.Runtime) -> None:
        sched = rt._sched
        bad = [(p.id, STATUS_NAMES[p.status]) for p in sched.allp[: sched.procs] if p.status not in LIVE_STATUSES]
        if bad:
            self.violation(f"live P(s) in an illegal status: {bad}")
        dead = [(p.id, STATUS_NAMES[p.status]) for p in sched.allp[sched.procs :] if p.status != DEAD]
        if dead:
            self.violation(f"retired P(s) not dead: {dead}")

    def check_goroutines(self, rt: ragged.Runtime) -> None:
        n = len(rt._sched.allgs)
        self.max_goroutines = max(self.max_goroutines, n)
        if n > self.args.max_goroutines:
            self.violation(f"{n} live goroutines, over the bound of {self.args.max_goroutines}")

    def check_quiescent(self, rt: ragged.Runtime) -> None:
        """After the workload has stopped: nothing pending, every goroutine gone."""
        sched = rt._sched
        with sched.lock:
            stopwait, fn, gcw = sched.stopwait, sched.safe_point_fn, sched.gcwaiting
            flags = [p.id for p in sched.allp[: sched.procs] if p.run_safe_point_fn]
        if stopwait or fn is not None or gcw or flags:
            self.violation(f"not quiescent at the end: stopwait={stopwait} fn={fn!r} gcwaiting={gcw} flags={flags}")
        deadline = time.monotonic() + 10
        while sched.allgs and time.monotonic() < deadline:
            time.sleep(0.01)
        if sched.allgs:
            left = sorted(sched.goroutines(), key=lambda g: g.id)[:10]
            self.violation(f"{len(sched.allgs)} goroutine(s) never finished: {left}")

    # ------------------------------------------------------------ goroutine side

    async def churn(self, k: int, rt: ragged.Runtime) -> None:
        """Short-lived goroutines, channels, sleeps, cancels, a mutex; sometimes a barrier or STW."""
        rng = random.Random((self.seed or 0) * 1000 + k)
        mu = self.mutex

        async def small(x: int) -> int:
            if x % 3 == 0:
                await ragged.gosched()
            return x * x

        async def echo(ch: ragged.Chan[int], back: ragged.Chan[int]) -> None:
            async for v in ch:
                await back.send(v + 1)

        async def sleepy() -> None:
            await ragged.sleep(3600)

        while not self.stop.is_set():
            n = rng.randrange(1, 16)
            gs = [ragged.go(small, i) for i in range(n)]
            for i, g in enumerate(gs):
                v = await g
                if v != i * i:
                    self.violation(f"churn {k}: spawned goroutine returned {v}, expected {i * i}")
            ch: ragged.Chan[int] = ragged.Chan(rng.choice([0, 1, 4]))
            back: ragged.Chan[int] = ragged.Chan()
            eg = ragged.go(echo, ch, back)
            for i in range(rng.randrange(1, 20)):
                await ch.send(i)
                if await back.recv() != i + 1:
                    self.violation(f"churn {k}: ping-pong lost a value")
            ch.close()
            await eg
            victim = ragged.go(sleepy)
            await ragged.sleep(rng.random() * 0.002)
            victim.cancel()
            try:
                await victim
                self.violation(f"churn {k}: a cancelled sleeper returned normally")
            except ragged.Cancelled:
                self.count("cancelled")
            async with mu:
                self.shared += 1
            r = rng.random()
            if r < 0.05:
                seen: list[int] = []
                t = time.perf_counter()
                await ragged.for_each_p(p_recorder(seen))
                self.count("g_barrier", "g_barrier", time.perf_counter() - t)
                self.check_once_per_p(seen, f"goroutine-side barrier (churn {k})")
            elif r < 0.07:
                t = time.perf_counter()
                async with ragged.stop_the_world("soak churn"):
                    dt = time.perf_counter() - t
                    self.check_stopped(rt, f"goroutine-side stop-the-world (churn {k})")
                self.count("g_stw", "g_stw", dt)
            self.count("churn")
            if rng.random() < 0.5:
                await ragged.syscall(time.sleep, rng.random() * 0.001)

    # ------------------------------------------------------------ thread side

    def coordinator(self, rt: ragged.Runtime) -> None:
        """Barriers from a plain thread; every ``--stw-every``-th operation a stop-the-world."""
        args = self.args
        i = 0
        try:
            while not self.stop.is_set():
                i += 1
                if i % args.stw_every == 0:
                    self.op = ("stop-the-world", time.monotonic())
                    t = time.perf_counter()
                    with rt.stop_the_world("soak"):
                        dt = time.perf_counter() - t
                        self.check_stopped(rt, "stop-the-world")
                    self.count("stw", "stw", dt)
                else:
                    seen: list[int] = []
                    self.op = ("barrier", time.monotonic())
                    t = time.perf_counter()
                    rt.for_each_p(p_recorder(seen))
                    dt = time.perf_counter() - t
                    self.check_once_per_p(seen, "barrier")
                    self.count("barrier", "barrier", dt)
                self.op = None
                self.check_statuses(rt)
                time.sleep(args.interval)
        except BaseException as err:  # noqa: BLE001 - any error here is a finding
            self.violation(f"coordinator raised {type(err).__name__}: {err}")

    # ------------------------------------------------------------ reporting

    def figures(self, rt: ragged.Runtime, load: stress.Load) -> dict[str, Any]:
        m = rt.metrics()
        compute, pipeline, syscalls = load.totals()
        return {
            "barriers": self.counts["barrier"] + self.counts["g_barrier"],
            "stws": self.counts["stw"] + self.counts["g_stw"],
            "goroutines_created": m["goroutines_created"],
            "context_switches": m["context_switches"],
            "syscalls": m.get("syscalls", syscalls),
            "pipeline_items": pipeline,
            "compute_units": compute,
            "churn_rounds": self.counts["churn"],
            "goroutines": m["goroutines"],
            "ms": m["threads"],
            "rss": rss_bytes(),
            "threads": threading.active_count(),
        }

    def line(self, tag: str, f: dict[str, Any]) -> str:
        return (
            f"[{self.elapsed():7.1f}s] {tag:<8} barriers={f['barriers']} stws={f['stws']} "
            f"goroutines_created={f['goroutines_created']} context_switches={f['context_switches']} "
            f"syscalls={f['syscalls']} pipeline_items={f['pipeline_items']} | goroutines={f['goroutines']} "
            f"Ms={f['ms']} rss={fmt_mb(f['rss'])} threads={f['threads']} violations={len(self.violations)}"
        )

    def window_line(self) -> str:
        with self._clock:
            b, s = self.window["barrier"], self.window["stw"]
            self.window = {k: Reservoir(seed=i) for i, k in enumerate(("barrier", "stw"))}
        return f"           window: barrier {b.count} ({b.describe()}); stop-the-world {s.count} ({s.describe()})"

    # ------------------------------------------------------------ the run

    def run(self) -> int:
        args = self.args
        out = self.out
        start_rss, start_threads = rss_bytes(), threading.active_count()
        settings: dict[str, Any] = {"debug": args.debug, "chaos": self.seed, "straggler_timeout": 5.0}
        chaos_text = f"RAGGED_CHAOS={self.seed}" if self.seed is not None else "off"
        out(
            f"soak: duration={args.duration:g}s procs={self.procs} chaos={chaos_text} "
            f"debug={'on' if args.debug else 'off'} "
            f"report_every={args.report_every:g}s warmup={args.warmup:g}s switchinterval={sys.getswitchinterval()} "
            f"({build.label(build.info())})"
        )
        out(f"[    0.0s] start    rss={fmt_mb(start_rss)} threads={start_threads}")
        self.t0 = time.monotonic()
        chunk = stress.calibrate()
        rt = ragged.Runtime(procs=self.procs, **settings)
        coord: threading.Thread | None = None
        load: stress.Load | None = None
        churners: list[ragged.Goroutine] = []
        baseline: dict[str, Any] | None = None
        first: dict[str, Any] | None = None
        last: dict[str, Any] | None = None
        hung = False
        try:
            self.mutex = ragged.Mutex()
            self.shared = 0
            load = stress.Load(rt, stress.Mix(compute=1, pipeline=2, syscall=2), chunk)
            churners = [rt.go(self.churn, k, rt, name=f"churn-{k}") for k in range(args.churners)]
            coord = threading.Thread(target=self.coordinator, args=(rt,), name="soak-coordinator", daemon=True)
            coord.start()
            end = self.t0 + args.duration
            next_report = self.t0 + args.report_every
            warm_at = self.t0 + args.warmup
            prev = None
            while True:
                now = time.monotonic()
                if now >= end:
                    break
                time.sleep(min(0.5, end - now, max(next_report - now, 0.0)) or 0.01)
                self.check_goroutines(rt)
                if rt._errors:
                    self.violation(f"scheduler thread crashed: {rt._errors}")
                    rt._errors.clear()
                op = self.op  # read once: the coordinator replaces it as it goes
                if op is not None and (running := time.monotonic() - op[1]) > STUCK_AFTER:
                    self.violation(f"{op[0]} has run for {running:.0f}s: hung")
                    out(rt.dump())
                    hung = True
                    break
                if first is None:
                    first = self.figures(rt, load)
                if baseline is None and time.monotonic() >= warm_at:
                    baseline = self.figures(rt, load)
                    out(self.line("baseline", baseline))
                if time.monotonic() >= next_report:
                    next_report += args.report_every
                    f = self.figures(rt, load)
                    out(self.line("report", f))
                    out(self.window_line())
                    if prev is not None:
                        for key in ("barriers", "stws", "pipeline_items", "compute_units", "churn_rounds"):
                            if f[key] == prev[key]:
                                self.violation(f"no progress in {key} over the last {args.report_every:g}s")
                    prev = f
            last = self.figures(rt, load)
        finally:
            self.stop.set()
            if coord is not None:
                coord.join(STUCK_AFTER)
                if coord.is_alive():
                    self.violation("the coordinator thread did not stop")
            if not hung:
                try:
                    if load is not None:
                        load.finish(timeout=30)
                    for g in churners:
                        g.result(timeout=30)
                except BaseException as err:  # noqa: BLE001 - a finding, reported in the verdict
                    self.violation(f"stopping the workload: {type(err).__name__}: {err}")
                self.check_quiescent(rt)
                if self.shared != self.counts["churn"]:
                    self.violation(f"mutex-guarded counter is {self.shared}, expected {self.counts['churn']}")
            rt.close()
        end_threads = threading.active_count()
        self.retained = (sum(len(h.recent) for h in rt._metrics.hist.values()), self.reservoir_samples())
        return self.summary(start_rss, start_threads, baseline, last, end_threads)

    def reservoir_samples(self) -> int:
        with self._clock:
            return sum(len(r.samples) for r in self.lat.values())

    def summary(
        self,
        start_rss: int,
        start_threads: int,
        baseline: dict[str, Any] | None,
        last: dict[str, Any] | None,
        end_threads: int,
    ) -> int:
        out = self.out
        out("")
        out(f"soak summary ({self.elapsed():.1f}s, procs={self.procs}, chaos={self.seed})")
        c = self.counts
        if last is not None:
            out(
                f"  counts: barriers={c['barrier'] + c['g_barrier']} (thread {c['barrier']}, goroutine "
                f"{c['g_barrier']}) stws={c['stw'] + c['g_stw']} (thread {c['stw']}, goroutine {c['g_stw']}) "
                f"goroutines_created={last['goroutines_created']} context_switches={last['context_switches']} "
                f"syscalls={last['syscalls']} pipeline_items={last['pipeline_items']} "
                f"compute_units={last['compute_units']} churn_rounds={c['churn']} cancelled={c['cancelled']}"
            )
        out(f"  barrier latency (plain thread):   {self.lat['barrier'].describe()}")
        out(f"  stop-the-world latency (thread):  {self.lat['stw'].describe()}")
        out(f"  barrier latency (goroutine):      {self.lat['g_barrier'].describe()}")
        out(f"  stop-the-world latency (gorout.): {self.lat['g_stw'].describe()}")
        out(f"  live goroutines: max {self.max_goroutines} (bound {self.args.max_goroutines})")
        grew = []
        if baseline is not None and last is not None:
            out(
                f"  rss: start {fmt_mb(start_rss)}, baseline {fmt_mb(baseline['rss'])}, "
                f"end {fmt_mb(last['rss'])} ({last['rss'] / baseline['rss']:.2f}x baseline)"
            )
            out(
                f"  threads: start {start_threads}, baseline {baseline['threads']}, end {last['threads']} "
                f"({last['threads'] / baseline['threads']:.2f}x baseline); after close {end_threads}"
            )
            if last["rss"] > 2 * baseline["rss"]:
                grew.append("rss")
            if last["threads"] > 2 * baseline["threads"]:
                grew.append("threads")
        else:
            out("  rss/threads: the run ended before the warm-up baseline was taken")
        metrics_n, ours_n = self.retained
        out(
            f"  latency samples kept (bounded: each metrics histogram keeps its last 100,000, each soak "
            f"reservoir 20,000): metrics {metrics_n}, soak {ours_n}, about {fmt_mb(32 * (metrics_n + ours_n))} "
            "at ~32 bytes a sample"
        )
        if end_threads > start_threads:
            grew.append(f"threads left after close ({end_threads} > {start_threads})")
        for g in grew:
            self.violation(f"unbounded growth: {g}")
        n = len(self.violations)
        if n:
            out(f"  violations ({n}):")
            for v in self.violations[:20]:
                out(f"    - {v}")
        replay = f" (replay: --chaos {self.seed})" if self.seed is not None else ""
        verdict = "PASS" if n == 0 else "FAIL"
        out(f"VERDICT: {verdict}: {n} invariant violation(s){replay}")
        return 0 if n == 0 else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m ragged.bench.soak", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--duration", type=positive(float), required=True, help="seconds to run")
    p.add_argument("--procs", type=positive(int), default=4, help="number of Ps (default 4)")
    chaos = p.add_mutually_exclusive_group()
    chaos.add_argument("--chaos", type=int, default=None, help="chaos seed (default: a random one, printed)")
    chaos.add_argument("--no-chaos", action="store_true", help="run without chaos mode")
    p.add_argument("--report-every", type=positive(float), default=30.0, help="seconds between reports (default 30)")
    p.add_argument(
        "--warmup",
        type=positive(float),
        default=None,
        help="seconds before the RSS/threads baseline (default: 30, or a tenth of the duration if that is shorter)",
    )
    p.add_argument("--interval", type=positive(float), default=2e-3, help="seconds between coordinator operations")
    p.add_argument("--stw-every", type=positive(int), default=4, help="every N-th coordinator operation is a STW")
    p.add_argument("--churners", type=positive(int), default=4, help="churn goroutines (default 4)")
    p.add_argument("--max-goroutines", type=positive(int), default=5000, help="bound on live goroutines")
    p.add_argument("--no-debug", dest="debug", action="store_false", help="skip the P transition checks")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.no_chaos:
        args.chaos = None
    elif args.chaos is None:
        args.chaos = random.SystemRandom().randrange(1, 1 << 31)
    if args.warmup is None:
        args.warmup = min(30.0, args.duration / 10)
    return Soak(args, out=lambda s: print(s, flush=True)).run()


if __name__ == "__main__":
    sys.exit(main())
