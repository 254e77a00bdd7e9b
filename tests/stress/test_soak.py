"""The soak run (``python -m ragged.bench.soak``, ``make soak``), briefly.

``make soak DURATION=600`` is the real thing; here a few seconds of it prove
that the module runs end to end under chaos, prints its figures and verdict,
and fails (exit status 1) when an invariant is violated.
"""

from __future__ import annotations

import re

import pytest

from ragged.bench import soak


@pytest.mark.timeout(90)
def test_short_soak_passes_and_prints_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    """Five seconds with chaos seed 7: exit status 0, a PASS verdict, and every figure printed."""
    rc = soak.main(["--duration", "5", "--report-every", "2", "--chaos", "7"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "chaos=RAGGED_CHAOS=7" in out
    assert re.search(r"^VERDICT: PASS: 0 invariant violation\(s\)", out, re.M), out
    for figure in (
        "barriers=",
        "stws=",
        "goroutines_created=",
        "context_switches=",
        "syscalls=",
        "pipeline_items=",
        "barrier latency (plain thread):   p50",
        "stop-the-world latency (thread):  p50",
        "rss: start",
        "threads: start",
    ):
        assert figure in out, f"{figure!r} missing from:\n{out}"
    assert out.count("] report ") >= 2
    counts = dict(re.findall(r"(\w+)=(\d+)", out.split("soak summary")[1].split("\n")[1]))
    for key in ("barriers", "stws", "goroutines_created", "pipeline_items", "churn_rounds"):
        assert int(counts[key]) > 0, f"{key} did not progress: {counts}"


@pytest.mark.timeout(60)
def test_soak_fails_on_a_violated_bound(capsys: pytest.CaptureFixture[str]) -> None:
    """A goroutine bound the workload must exceed is reported as a violation, with exit status 1."""
    rc = soak.main(["--duration", "2", "--report-every", "1", "--no-chaos", "--max-goroutines", "1"])
    out = capsys.readouterr().out
    assert rc == 1, out
    assert "VIOLATION: " in out and "over the bound of 1" in out
    assert re.search(r"^VERDICT: FAIL: \d+ invariant violation\(s\)$", out, re.M), out


@pytest.mark.timeout(10)
@pytest.mark.parametrize("argv", [[], ["--duration", "0"], ["--duration", "5", "--procs", "0"]])
def test_soak_rejects_bad_arguments(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        soak.main(argv)
    assert info.value.code == 2
