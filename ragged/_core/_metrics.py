"""Counters and latency histograms, in the spirit of Go's ``runtime/metrics``.

Barrier and stop-the-world events are rare, so they are recorded under one
lock.  Hot counters (context switches, goroutines created) are kept per P or
under locks the scheduler already takes, and summed when read.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from ._lockrank import Rank, new_lock


class Histogram:
    """Latency samples in seconds: exact recent percentiles plus log2 buckets of all time.

    ``buckets`` maps an upper bound in nanoseconds (a power of two) to a count.
    Percentiles come from the most recent ``keep`` samples.

    Recording is one list append: the coordinator of a barrier records about
    ``procs + 3`` samples inside the operation it times, and every cost there
    is taken from the mutators.  Samples wait in ``_pending`` and are folded
    into the all-time figures and ``recent`` when one of them is read, or
    once ``_FOLD_AT`` have piled up.  Every method, the properties included,
    requires the owning :class:`Metrics` lock.
    """

    _FOLD_AT = 4096

    def __init__(self, keep: int = 100_000) -> None:
        self._count = 0
        self._total = 0.0
        self._min = math.inf
        self._max = 0.0
        self._buckets: dict[int, int] = {}
        self._recent: deque[float] = deque(maxlen=keep)
        self._pending: list[float] = []

    def record(self, seconds: float) -> None:
        """Add one sample."""
        pending = self._pending
        pending.append(seconds)
        if len(pending) >= self._FOLD_AT:
            self._fold()

    def extend(self, samples: list[float]) -> None:
        """Add several samples."""
        pending = self._pending
        pending.extend(samples)
        if len(pending) >= self._FOLD_AT:
            self._fold()

    def _fold(self) -> None:
        """Fold the pending samples into the all-time figures and ``recent``."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        b = self._buckets
        for seconds in pending:
            ns = int(seconds * 1e9)
            bound = 1 << (ns - 1).bit_length() if ns > 1 else 1
            b[bound] = b.get(bound, 0) + 1
        self._count += len(pending)
        self._total += sum(pending)
        self._min = min(self._min, min(pending))
        self._max = max(self._max, max(pending))
        self._recent.extend(pending)

    @property
    def count(self) -> int:
        self._fold()
        return self._count

    @property
    def total(self) -> float:
        self._fold()
        return self._total

    @property
    def min(self) -> float:
        self._fold()
        return self._min

    @property
    def max(self) -> float:
        self._fold()
        return self._max

    @property
    def buckets(self) -> dict[int, int]:
        self._fold()
        return self._buckets

    @property
    def recent(self) -> deque[float]:
        """The most recent ``keep`` samples, oldest first."""
        self._fold()
        return self._recent

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0..100) of recent samples, in seconds (0.0 if none)."""
        if not self.recent:
            return 0.0
        data = sorted(self.recent)
        k = min(len(data) - 1, max(0, math.ceil(q / 100 * len(data)) - 1))
        return data[k]

    def snapshot(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "sum": self.total,
            "min": self.min if self.count else 0.0,
            "max": self.max,
            "mean": self.total / self.count if self.count else 0.0,
            "p50": self.percentile(50),
            "p90": self.percentile(90),
            "p99": self.percentile(99),
            "buckets_ns": dict(sorted(self.buckets.items())),
        }


_HISTOGRAMS = (
    "barrier_latency",  # request until the last P ran fn
    "barrier_p_wait",  # per P: request until that P ran fn
    "barrier_pause",  # per barrier: mutator time lost, summed over Ps
    "barrier_rounds",  # re-preempt rounds per barrier (a count, stored as a number)
    "stw_latency",  # request until every P stopped
    "stw_pause",  # per stop-the-world: mutator time lost, summed over Ps
    "stw_p_wait",  # per P: request until that P stopped
    "stw_rounds",
)


class Metrics:
    """One runtime's metrics.  Use :meth:`incr` / :meth:`observe` from any thread."""

    def __init__(self) -> None:
        self.lock = new_lock(Rank.METRICS, "Metrics.lock")
        self.counters: dict[str, int] = {
            "barriers": 0,
            "barrier_timeouts": 0,
            "barrier_fn_errors": 0,
            "stws": 0,
            "preemptions": 0,
            "syscall_handoffs": 0,
            "syscall_slowpath": 0,
            "stragglers_reported": 0,
            "blocking_reports": 0,
            "async_preemptions": 0,
            "async_preempt_arms": 0,
            "threads_started": 0,
        }
        self.hist: dict[str, Histogram] = {name: Histogram() for name in _HISTOGRAMS}

    def incr(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.counters[name] = self.counters.get(name, 0) + n

    def observe(self, name: str, seconds: float) -> None:
        with self.lock:
            self.hist[name].record(seconds)

    def observe_many(self, name: str, values: list[float]) -> None:
        with self.lock:
            self.hist[name].extend(values)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            out: dict[str, Any] = dict(self.counters)
            for name, h in self.hist.items():
                out[name] = h.snapshot()
        return out
