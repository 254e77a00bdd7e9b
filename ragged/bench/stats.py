"""Small statistics and table helpers shared by the benchmarks."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ragged import P


def p_recorder(seen: list[int]) -> Callable[[P], None]:
    """A barrier ``fn`` that appends the id of each P it runs on to ``seen``."""
    return lambda p: seen.append(p.id)


def percentile(xs: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0.0 for no data."""
    if not xs:
        return 0.0
    data = sorted(xs)
    k = min(len(data) - 1, max(0, math.ceil(q / 100 * len(data)) - 1))
    return data[k]


def summary(xs: Sequence[float]) -> dict[str, float]:
    """count, p50, p99, max and mean of ``xs``."""
    if not xs:
        return {"count": 0, "p50": 0.0, "p99": 0.0, "max": 0.0, "mean": 0.0}
    return {
        "count": len(xs),
        "p50": percentile(xs, 50),
        "p99": percentile(xs, 99),
        "max": max(xs),
        "mean": statistics.fmean(xs),
    }


def ratio(a: float, b: float) -> float:
    """a / b, or nan when b is 0."""
    return a / b if b else math.nan


def fmt_time(seconds: float) -> str:
    """A duration with a unit that keeps 3 significant digits."""
    if seconds != seconds:
        return "n/a"
    if seconds >= 1:
        return f"{seconds:.3g}s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g}ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.3g}µs"
    return f"{seconds * 1e9:.3g}ns"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table with right-aligned columns."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, r in enumerate(cells):
        lines.append("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def spread(xs: Sequence[float]) -> dict[str, Any]:
    """Median and min-max of ``xs`` (nan values left out), with the values themselves under ``samples``."""
    good = [x for x in xs if x == x]
    if not good:
        return {"median": math.nan, "min": math.nan, "max": math.nan, "samples": list(xs)}
    return {"median": statistics.median(good), "min": min(good), "max": max(good), "samples": list(xs)}
