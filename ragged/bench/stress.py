"""The stress workload: barriers vs stop-the-world under a mixed load.

On each procs value a runtime runs, all at once:

* ``compute`` goroutines per P: ~50µs of pure-Python work, then
  ``await ragged.checkpoint()``, forever (the mutators);
* ``pipeline`` channel pipelines: producer -> stage -> consumer over
  buffered channels;
* ``syscall`` goroutines making 1ms blocking calls through ``ragged.syscall``.

A coordinator thread issues one operation every ``interval`` seconds: a ragged
barrier (``rt.for_each_p``, each checked to have run exactly once per P) or a
stop-the-world.  The run alternates short slices of each mode -- ``none``
(no coordinator), ``foreach`` and ``stw`` -- in rotating order, so drift in a
noisy machine hits all modes alike, and reports per mode:

* operation latency (coordinator's view) p50 / p99 / max;
* pause per operation: mutator time the runtime held goroutines off, summed
  over Ps (stop-the-world: each P from the moment it stopped until restart;
  barrier: the callback plus the time each M stepped aside for the GIL);
* throughput of each workload part, and relative to ``none``.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from typing import Any

import ragged

from . import build
from .stats import p_recorder, summary

MODES = ("none", "foreach", "stw")


@dataclasses.dataclass
class Mix:
    """How much of each workload part to run."""

    compute: int = 1  # goroutines per P
    pipeline: int = 1  # pipelines in total
    syscall: int = 2  # syscall goroutines in total

    @classmethod
    def parse(cls, text: str) -> Mix:
        """Parse ``compute=1,pipeline=1,syscall=2`` (missing parts are 0)."""
        mix = cls(compute=0, pipeline=0, syscall=0)
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, _, value = part.partition("=")
            if name not in ("compute", "pipeline", "syscall"):
                raise ValueError(f"unknown workload part {name!r}: use compute, pipeline or syscall")
            try:
                n = int(value) if value else 1
            except ValueError:
                raise ValueError(f"workload part {name!r} needs an integer count, not {value!r}") from None
            if n < 0:
                raise ValueError(f"workload part {name!r} needs a count >= 0, not {n}")
            setattr(mix, name, n)
        if not (mix.compute or mix.pipeline or mix.syscall):
            raise ValueError("the workload mix is empty")
        return mix

    def __str__(self) -> str:
        return f"compute={self.compute},pipeline={self.pipeline},syscall={self.syscall}"


def calibrate(target: float = 50e-6) -> int:
    """Loop iterations of :func:`work` that take about ``target`` seconds here."""
    n = 1000
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        work(n)
        best = min(best, time.perf_counter() - t)
    return max(1, int(n * target / best))


def work(n: int) -> int:
    """The mutators' unit of pure-Python work."""
    x = 0
    for i in range(n):
        x += i * i
    return x


class Load:
    """The running workload; each counter slot is written by one goroutine only."""

    def __init__(self, rt: ragged.Runtime, mix: Mix, chunk: int) -> None:
        self.rt = rt
        self.stop = False
        self.chunk = chunk
        procs = rt.procs
        self.compute = [0] * (mix.compute * procs)
        self.pipeline = [0] * mix.pipeline
        self.syscalls = [0] * mix.syscall
        self.gs: list[ragged.Goroutine] = []
        for i in range(len(self.compute)):
            self.gs.append(rt.go(self._compute, i, name=f"compute-{i}"))
        for i in range(mix.syscall):
            self.gs.append(rt.go(self._syscaller, i, name=f"syscall-{i}"))
        for i in range(mix.pipeline):
            self.gs.append(rt.go(self._pipeline, i, name=f"pipeline-{i}"))

    async def _compute(self, i: int) -> None:
        n = self.chunk
        counts = self.compute
        checkpoint = ragged.checkpoint
        while not self.stop:
            work(n)
            counts[i] += 1
            await checkpoint()

    async def _syscaller(self, i: int) -> None:
        while not self.stop:
            await ragged.syscall(time.sleep, 0.001)
            self.syscalls[i] += 1

    async def _pipeline(self, i: int) -> None:
        chan = getattr(ragged, "Chan", None)
        if chan is None:  # channels not available: the part idles
            return
        a, b = chan(16), chan(16)

        async def producer() -> None:
            k = 0
            while not self.stop:
                await a.send(k)
                k += 1
            a.close()

        async def stage() -> None:
            async for v in a:
                await b.send(v * 2)
            b.close()

        ragged.go(producer, name=f"pipe{i}-producer")
        ragged.go(stage, name=f"pipe{i}-stage")
        async for _ in b:
            self.pipeline[i] += 1

    def totals(self) -> tuple[int, int, int]:
        return sum(self.compute), sum(self.pipeline), sum(self.syscalls)

    def finish(self, timeout: float = 10.0) -> None:
        self.stop = True
        for g in self.gs:
            g.result(timeout)


def run_slice(rt: ragged.Runtime, load: Load, mode: str, seconds: float, interval: float) -> dict[str, Any]:
    """Run one slice of ``mode`` for ``seconds``; return its raw figures."""
    procs = rt.procs
    hist = rt._metrics.hist
    pause_name = {"foreach": "barrier_pause", "stw": "stw_pause"}.get(mode)
    n_pause = len(hist[pause_name].recent) if pause_name else 0
    latencies: list[float] = []
    errors: list[str] = []
    before = load.totals()
    t0 = time.perf_counter()
    end = t0 + seconds
    if mode == "none":
        time.sleep(seconds)
    else:
        nxt = t0
        while True:
            now = time.perf_counter()
            if now >= end:
                break
            if now < nxt:
                time.sleep(nxt - now)
            nxt += interval
            if mode == "foreach":
                seen: list[int] = []
                t = time.perf_counter()
                rt.for_each_p(p_recorder(seen))
                latencies.append(time.perf_counter() - t)
                if sorted(seen) != list(range(procs)):
                    errors.append(f"barrier ran fn on Ps {sorted(seen)}, expected each of 0..{procs - 1} once")
            else:
                t = time.perf_counter()
                with rt.stop_the_world("bench"):
                    pass
                latencies.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - t0
    after = load.totals()
    pauses = list(hist[pause_name].recent)[n_pause:] if pause_name else []
    return {
        "mode": mode,
        "seconds": elapsed,
        "ops": len(latencies),
        "latencies": latencies,
        "pauses": pauses,
        "compute": after[0] - before[0],
        "pipeline": after[1] - before[1],
        "syscalls": after[2] - before[2],
        "errors": errors,
    }


def run_procs(
    procs: int,
    modes: tuple[str, ...],
    mix: Mix,
    chunk: int,
    slice_seconds: float,
    reps: int,
    interval: float,
    progress: Callable[[str], None],
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """All slices for one procs value; return per-mode aggregates."""
    raw: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    with ragged.Runtime(procs=procs, **(settings or {})) as rt:
        load = Load(rt, mix, chunk)
        time.sleep(0.2)  # let every M start and settle
        order = list(modes)
        for rep in range(reps):
            for mode in order:
                progress(f"procs={procs} rep {rep + 1}/{reps} {mode}")
                raw[mode].append(run_slice(rt, load, mode, slice_seconds, interval))
            order = order[1:] + order[:1]
        load.finish()
        threads = rt.metrics()["threads"]
    return {"procs": procs, "threads": threads, "modes": {m: aggregate(raw[m]) for m in modes}}


def aggregate(slices: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge the slices of one mode."""
    seconds = sum(s["seconds"] for s in slices)
    lat = [x for s in slices for x in s["latencies"]]
    pauses = [x for s in slices for x in s["pauses"]]
    return {
        "seconds": seconds,
        "ops": sum(s["ops"] for s in slices),
        "latency": summary(lat),
        "pause": summary(pauses),
        "latency_samples": lat,
        "pause_samples": pauses,
        "compute_per_s": sum(s["compute"] for s in slices) / seconds,
        "pipeline_per_s": sum(s["pipeline"] for s in slices) / seconds,
        "syscalls_per_s": sum(s["syscalls"] for s in slices) / seconds,
        "errors": [e for s in slices for e in s["errors"]],
    }


def progress_printer(total: int) -> Callable[[str], None]:
    """A progress callback printing ``[k/total] what`` to stderr."""
    state = {"k": 0, "t0": time.perf_counter()}
    tty = sys.stderr.isatty()

    def show(what: str) -> None:
        state["k"] += 1
        pct = 100 * state["k"] / total
        line = f"[{state['k']}/{total} {pct:3.0f}% {time.perf_counter() - state['t0']:5.1f}s] {what}"
        if tty:
            sys.stderr.write("\r\033[K" + line)
            if state["k"] == total:
                sys.stderr.write("\n")
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    return show


def run(
    procs_list: list[int],
    modes: tuple[str, ...],
    mix: Mix,
    slice_seconds: float,
    reps: int,
    interval: float,
    settings: dict[str, Any] | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """The whole stress run; returns a JSON-ready dict."""
    if "none" not in modes:
        modes = ("none",) + modes
    chunk = calibrate()
    total = len(procs_list) * reps * len(modes)
    show = progress_printer(total) if not quiet else (lambda _what: None)
    results = [run_procs(p, modes, mix, chunk, slice_seconds, reps, interval, show, settings) for p in procs_list]
    return {
        **build.info(),
        "switchinterval": sys.getswitchinterval(),
        "mix": str(mix),
        "chunk_iterations": chunk,
        "interval": interval,
        "slice_seconds": slice_seconds,
        "reps": reps,
        "settings": settings or {},
        "results": results,
    }
