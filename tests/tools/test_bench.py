"""The benchmark CLI (``python -m ragged.bench``), its plot and the peer comparison, in tiny sizes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ragged.bench import __main__ as cli
from ragged.bench import peers, plot

FLAGS = (
    "--procs",
    "--mode",
    "--duration",
    "--reps",
    "--interval",
    "--mix",
    "--step-aside",
    "--json",
    "--plot",
    "--trace",
    "--peers",
    "--quick",
    "--only",
    "--quiet",
)


@pytest.mark.timeout(30)
def test_help_explains_every_flag() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ragged.bench", "--help"], capture_output=True, text=True, timeout=25, check=False
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for flag in FLAGS:
        assert flag in text, f"--help does not mention {flag}"
    for word in ("foreach", "stw", "both", "compute", "pipeline", "syscall", "matplotlib"):
        assert word in text


def _png_is_drawn(path: Path) -> None:
    """``path`` is a PNG with real content: not one flat colour."""
    raw = path.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    image = pytest.importorskip("matplotlib.image")
    pixels = image.imread(str(path))
    assert pixels.shape[0] > 300 and pixels.shape[1] > 300
    assert float(pixels[..., :3].std()) > 0.05, "the PNG is (nearly) blank"


@pytest.mark.timeout(60)
def test_tiny_stress_run_writes_json_and_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    js, png = tmp_path / "out.json", tmp_path / "out.png"
    argv = ["--procs", "1,2", "--duration", "0.2", "--reps", "1", "--json", str(js), "--plot", str(png), "--quiet"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "for_each_p / stop-the-world" in out
    assert "every barrier ran fn once per P" in out
    data = json.loads(js.read_text())
    for key in ("python", "switchinterval", "mix", "interval", "slice_seconds", "reps", "results"):
        assert key in data
    assert [r["procs"] for r in data["results"]] == [1, 2]
    for r in data["results"]:
        assert set(r["modes"]) == {"none", "foreach", "stw"}
        for name, m in r["modes"].items():
            for key in ("ops", "latency", "pause", "compute_per_s", "pipeline_per_s", "syscalls_per_s", "errors"):
                assert key in m
            assert m["errors"] == []
            if name != "none":
                assert m["ops"] > 0 and m["latency"]["p50"] > 0
    _png_is_drawn(png)


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--procs", "0"], "--procs takes comma-separated positive ints"),
        (["--procs", "1,x"], "--procs takes comma-separated positive ints"),
        (["--mix", "compute=x"], "needs an integer count"),
        (["--mix", "disk=1"], "unknown workload part"),
        (["--mix", "compute=0"], "the workload mix is empty"),
        (["--mode", "fast"], "invalid choice"),
        (["--duration", "-1"], "expected a positive number"),
        (["--reps", "0"], "expected a positive number"),
        (["--interval", "soon"], "expected a positive number"),
        (["--no-such-flag"], "unrecognized arguments"),
    ],
)
def test_bad_flags_are_argparse_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and message in err, err


@pytest.mark.timeout(30)
def test_plot_without_matplotlib_exits_2_with_install_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(SystemExit) as exc:
        plot.require_matplotlib()
    assert exc.value.code == 2
    assert "pip install 'ragged[plot]'" in capsys.readouterr().err
    # The CLI checks before running anything (a --procs 1 run would take seconds).
    with pytest.raises(SystemExit) as exc:
        cli.main(["--plot", str(tmp_path / "x.png"), "--procs", "1", "--quiet"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "pip install 'ragged[plot]'" in err and "Traceback" not in err


@pytest.mark.timeout(30)
def test_plot_draws_full_curves_from_raw_samples(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    lat = [1e-4 * (1 + i % 37) for i in range(200)]

    def mode(rate: float, samples: bool) -> dict[str, Any]:
        s = {"count": 200, "p50": 2e-3, "p99": 4e-3, "max": 5e-3, "mean": 2e-3}
        m: dict[str, Any] = {"ops": 200, "latency": s, "pause": s, "compute_per_s": rate}
        m.update(pipeline_per_s=rate, syscalls_per_s=rate, errors=[])
        if samples:
            m.update(latency_samples=lat, pause_samples=lat)
        return m

    data = {
        "python": "3.x",
        "mix": "compute=1",
        "interval": 1e-3,
        "reps": 1,
        "slice_seconds": 0.1,
        "results": [
            {"procs": 2, "modes": {"none": mode(100, False), "foreach": mode(95, True), "stw": mode(60, False)}},
        ],
    }
    path = tmp_path / "raw.png"
    plot.draw(data, str(path))
    _png_is_drawn(path)


SECTIONS = {"spawn", "switch", "pingpong", "syscall", "checkpoint", "barrier", "atomic"}


@pytest.mark.timeout(60)
def test_peers_quick_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    js = tmp_path / "peers.json"
    assert cli.main(["--peers", "--quick", "--quiet", "--json", str(js)]) == 0
    out = capsys.readouterr().out
    data = json.loads(js.read_text())
    assert data["kind"] == "peers" and data["quick"] is True
    assert set(data["sections"]) == SECTIONS
    for name, sec in data["sections"].items():
        assert sec["cases"], name
        for key, case in sec["cases"].items():
            if case["installed"]:
                assert case["median"] > 0 and len(case["samples"]) == data["config"]["runs"], (name, key)
            else:
                assert key.startswith("gevent"), (name, key)
    assert data["sections"]["syscall"]["cases"]["ragged_p4"]["threads"] > 1
    assert data["sections"]["pingpong"]["cases"]["asyncio"]["ops"]["count"] > 0
    assert {t["key"] for t in data["atomic"]} == {"atomic_vs_lock", "atomic_add", "lock_add"}
    assert all(t["value"] > 0 and t["pass"] is None for t in data["atomic"])  # information rows
    keys = {t["key"] for t in data["targets"]}
    assert {"checkpoint", "switch_half", "spawn_gather", "barrier", "barrier_g", "syscall_p1", "syscall_p4"} <= keys
    for t in data["targets"]:
        assert t["pass"] in (True, False), t
    for title in (
        "spawn+join",
        "context switch",
        "channel ping-pong",
        "syscall-heavy",
        "checkpoint",
        "for_each_p",
        "AtomicInt",
    ):
        assert title in out
    assert "single-thread goals" in out and ("PASS" in out or "MISS" in out)


@pytest.mark.timeout(60)
def test_peers_without_gevent_marks_it_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(peers, "gevent", None)
    data = peers.run(quiet=True, quick=True)
    assert data["gevent"] is None
    gevent_cases = [c for s in data["sections"].values() for k, c in s["cases"].items() if k.startswith("gevent")]
    assert gevent_cases and not any(c["installed"] for c in gevent_cases)
    text = peers.render(data)
    assert "gevent not installed" in text and "not installed" in text


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "argv",
    [
        ["--peers", "--procs", "2"],
        ["--peers", "--plot", "x.png"],
        ["--quick"],
        ["--only", "scaling"],
        ["--peers", "--only", "scaling,nope"],
        ["--peers", "--only", ","],
        ["--step-aside", "-1"],
    ],
)
def test_flags_that_do_not_apply_are_rejected(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.timeout(120)
def test_results_writes_one_table_per_benchmark_with_goals_build_and_command(tmp_path: Path) -> None:
    """``make results`` in its smoke size: RESULTS.md gets the machine, commit, command and a goal table."""
    from ragged.bench import results

    out = tmp_path / "RESULTS.md"
    assert results.main(["--quick", "--only", "stress", "--out", str(out)]) == 0
    text = out.read_text()
    for part in ("# Benchmark results", "- commit: `", "- machine: ", "## The stress benchmark", "-m ragged.bench"):
        assert part in text, part
    rows = [line for line in text.splitlines() if line.startswith("| for_each_p p50 / stop-the-world p50")]
    assert len(rows) == 1 and ("PASS" in rows[0] or "MISS" in rows[0]), rows
    assert "## Beside asyncio" not in text  # --only stress


def test_results_table_has_a_column_per_build_that_ran_it_with_its_own_command() -> None:
    """An ``--also`` build (a GIL CPython 3.12+) shows up only in the tables of the benchmarks it ran."""
    from ragged.bench import results

    def build(python: str, name: str, env: dict[str, str]) -> results.Build:
        b = results.Build(python, env)
        b.__dict__["name"] = name  # what the interpreter would report
        return b

    main = build(str(results.ROOT / ".venv/bin/python"), "3.11.7 (GIL)", {})
    ft = build("/opt/py313t/bin/python3.13t", "3.13.5t (free-threaded, GIL off)", {"PYTHON_GIL": "0"})
    new = build(str(results.ROOT / ".venv-new/bin/python"), "3.13.0 (GIL)", {})
    goal = {"key": "k", "label": "a figure", "source": "goal", "value": 1.0, "unit": "x", "goal": "<= 2x", "pass": True}
    runs = {
        "stress": {main.name: {"targets": [goal]}, ft.name: {"targets": [goal]}},
        "preempt": {main.name: {"targets": [goal]}, ft.name: {"targets": [goal]}, new.name: {"targets": [goal]}},
    }
    runs["preempt"][ft.name] = {"targets": [{**goal, "goal": "<= 1x", "pass": False, "value": 1.5}]}
    text = results.render(runs, [main, ft, new], {"commit": "c", "machine": "m", "date": "d"})
    assert "| 1.50x **MISS** (goal <= 1x) |" in text  # a build whose goal differs shows its own
    stress = text[text.index("## The stress benchmark") : text.index("## Goroutines that never await")]
    preempt = text[text.index("## Goroutines that never await") :]
    assert "3.13.0 (GIL)" not in stress and "| measure | goal | 3.11.7 (GIL) | 3.13.5t" in stress
    assert "| measure | goal | 3.11.7 (GIL) | 3.13.5t (free-threaded, GIL off) | 3.13.0 (GIL) |" in preempt
    assert "- 3.13.0 (GIL): `.venv-new/bin/python -m ragged.bench --preempt --quiet`" in preempt
    assert "- 3.13.5t (free-threaded, GIL off): `PYTHON_GIL=0 /opt/py313t/bin/python3.13t -m ragged.bench" in preempt
    assert "- builds: 3.11.7 (GIL), 3.13.5t (free-threaded, GIL off), 3.13.0 (GIL)" in text


def test_results_rejects_an_unknown_benchmark() -> None:
    from ragged.bench import results

    with pytest.raises(SystemExit):
        results.main(["--only", "nosuch"])
