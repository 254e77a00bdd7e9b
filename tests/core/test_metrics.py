"""The latency histogram behind ``metrics()``: samples recorded lazily read the same as eagerly."""

from __future__ import annotations

import math
import random

from ragged._core._metrics import Histogram


def _bound(seconds: float) -> int:
    ns = int(seconds * 1e9)
    return 1 << (ns - 1).bit_length() if ns > 1 else 1


def test_deferred_samples_give_the_figures_of_every_sample_recorded() -> None:
    seed = random.randrange(1 << 30)
    r = random.Random(seed)
    h = Histogram(keep=1000)
    samples: list[float] = []
    # Cross the fold threshold more than once, reading in between and not.
    for step in range(40):
        batch = [r.expovariate(1e4) for _ in range(r.randrange(1, 400))]
        if step % 2:
            h.extend(batch)
        else:
            for s in batch:
                h.record(s)
        samples += batch
        if step % 7 == 0:
            assert h.count == len(samples), f"seed={seed}"
    assert len(samples) > Histogram._FOLD_AT, f"seed={seed}: the test never crossed the fold threshold"
    assert h.count == len(samples), f"seed={seed}"
    assert math.isclose(h.total, sum(samples)), f"seed={seed}"
    assert h.min == min(samples) and h.max == max(samples), f"seed={seed}"
    expect: dict[int, int] = {}
    for s in samples:
        expect[_bound(s)] = expect.get(_bound(s), 0) + 1
    assert h.buckets == expect, f"seed={seed}"
    assert list(h.recent) == samples[-1000:], f"seed={seed}"
    ordered = sorted(samples[-1000:])
    assert h.percentile(50) == ordered[499], f"seed={seed}"
    assert h.snapshot()["count"] == len(samples), f"seed={seed}"


def test_empty_histogram_reads_zero() -> None:
    h = Histogram()
    snap = h.snapshot()
    assert snap["count"] == 0 and snap["min"] == 0.0 and snap["p99"] == 0.0 and snap["buckets_ns"] == {}
