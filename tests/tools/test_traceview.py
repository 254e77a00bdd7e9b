"""``python -m ragged.trace``: the view command draws a PNG (checked for size
and non-blank pixels), summary counts what the file holds, and bad input or
a missing matplotlib give a clear message and an exit status, no traceback."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import wait_until

import ragged
from ragged.trace import _file as _tracefile
from ragged.trace import _view as _traceview
from ragged.trace import main

WIDTH_IN, DPI = 8.0, 80


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG header (IHDR)."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", head[16:24])


@pytest.fixture(scope="module")
def trace_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small program with goroutines, barriers, stop-the-worlds and a procs change."""
    path = tmp_path_factory.mktemp("view") / "small.json"
    stop = threading.Event()
    spins = [0, 0]

    async def spinner(i: int) -> None:
        while not stop.is_set():
            spins[i] += 1
            await ragged.checkpoint()
            if spins[i] % 50 == 0:
                await ragged.gosched()

    with ragged.trace(path):
        with ragged.Runtime(procs=2) as rt:
            gs = [rt.go(spinner, i, name=f"spin-{i}") for i in range(2)]
            wait_until(lambda: all(spins), what="both spinners to run")
            for _ in range(3):
                rt.for_each_p(lambda p: None)
                with rt.stop_the_world("view test"):
                    pass
            rt.set_procs(3)
            rt.for_each_p(lambda p: None)
            stop.set()
            for g in gs:
                g.result(timeout=10)
    return path


def run_cli(*argv: str) -> int:
    return main([str(a) for a in argv])


# ---------------------------------------------------------------- view


@pytest.mark.timeout(60)
def test_view_renders_a_non_blank_png_of_the_requested_size(trace_path: Path, tmp_path: Path) -> None:
    import matplotlib.image as mpimg
    import numpy as np

    out = tmp_path / "out.png"
    assert run_cli("view", trace_path, "--png", out, "--width", WIDTH_IN, "--dpi", DPI) == 0
    width, height = png_size(out)
    assert width == int(WIDTH_IN * DPI) and 200 < height < 2000
    pixels = mpimg.imread(out)
    assert pixels.shape[:2] == (height, width)
    colours = np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)
    assert len(colours) > 20, "the picture is (nearly) blank"
    white = np.all(pixels[..., :3] > 0.98, axis=-1).mean()
    assert white < 0.95, f"{white:.0%} of the picture is white"


@pytest.mark.timeout(60)
def test_view_window_procs_and_compare(trace_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tf = _tracefile.load(trace_path)
    stw = tf.stws[0]
    start, end = (stw.ts - 500) / 1000, (stw.ts + stw.dur + 500) / 1000
    out = tmp_path / "window.png"
    assert run_cli("view", trace_path, "--png", out, "--start", start, "--end", end, "--procs", "0,1") == 0
    msg = capsys.readouterr().out
    assert "3 rows;" in msg, "--procs 0,1 keeps the world row and two P rows"
    expected = sum(1 for s in tf.stws if s.ts <= end * 1000 and s.ts + s.dur >= start * 1000)
    assert f", {expected} stop-the-worlds" in msg and expected >= 1
    assert png_size(out)[0] == 1200
    out2 = tmp_path / "compare.png"
    assert run_cli("view", trace_path, "--png", out2, "--compare", "--span", "2") == 0
    msg = capsys.readouterr().out
    assert msg.count("slices") == 2, "--compare draws two panels"
    assert png_size(out2)[1] > png_size(out)[1]


@pytest.mark.timeout(60)
def test_render_returns_what_it_drew(trace_path: Path, tmp_path: Path) -> None:
    tf = _tracefile.load(trace_path)
    lo, hi = tf.span()
    drawn = _traceview.render(tf, tmp_path / "r.png", [_traceview.Window(lo, hi)], width=6, dpi=50)
    assert drawn["rows"] == ["world", "P0", "P1", "P2"]
    (panel,) = drawn["panels"]
    assert panel["barriers"] == 4 and panel["stws"] == 4
    assert panel["fn"] == 3 * 2 + 3
    assert panel["slices"] == sum(len(t.slices) for t in tf.tracks.values())


def test_goroutine_colours_are_stable_and_distinct() -> None:
    colours = [_traceview.goroutine_colour(g) for g in range(1, 40)]
    assert colours == [_traceview.goroutine_colour(g) for g in range(1, 40)]
    assert all(a != b for a, b in zip(colours, colours[1:], strict=False))
    assert all(0 <= c <= 1 for rgb in colours for c in rgb)


# ---------------------------------------------------------------- summary


@pytest.mark.timeout(60)
def test_summary_counts_match_the_file(trace_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("summary", trace_path, "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    doc = json.loads(trace_path.read_text())["traceEvents"]
    kinds = [_tracefile.event_kind(e) for e in doc]
    assert summary["events"] == len(doc)
    assert summary["by_type"] == {k: kinds.count(k) for k in set(kinds)}
    assert summary["by_type"]["for_each_p"] == 4 and summary["by_type"]["stop the world"] == 4
    (world,) = summary["world"]
    assert world["barriers"] == 4 and world["stws"] == 4 and world["procs_changes"][0].startswith("2->3 at ")
    assert {p["p"] for p in summary["per_p"]} == {0, 1, 2}
    assert sum(p["fn"] for p in summary["per_p"]) == 9
    assert set(summary["stop_reasons"]) >= {"exit"}
    assert run_cli("summary", trace_path) == 0
    text = capsys.readouterr().out
    assert "events by type:" in text and "per P:" in text and "4 barriers" in text


# ---------------------------------------------------------------- errors


@pytest.mark.timeout(30)
def test_missing_matplotlib_says_how_to_install(
    trace_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` raise ImportError
    out = tmp_path / "never.png"
    assert run_cli("view", trace_path, "--png", out) == 2
    err = capsys.readouterr().err
    assert "pip install 'ragged[plot]'" in err and "matplotlib" in err
    assert "Traceback" not in err
    assert not out.exists()
    assert run_cli("summary", trace_path) == 0, "summary does not need matplotlib"


@pytest.mark.timeout(30)
def test_bad_files_give_a_message_and_status_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    not_json = tmp_path / "bad.json"
    not_json.write_text("{nope")
    wrong_shape = tmp_path / "shape.json"
    wrong_shape.write_text('{"something": 1}')
    for path in (not_json, wrong_shape, tmp_path / "missing.json"):
        assert run_cli("summary", path) == 1
        err = capsys.readouterr().err
        assert str(path) in err and "Traceback" not in err


@pytest.mark.timeout(30)
def test_bad_usage_exits_2(trace_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["view", trace_path],  # no --png
        ["view", trace_path, "--png", tmp_path / "x.png", "--procs", "a,b"],
        ["view", trace_path, "--png", tmp_path / "x.png", "--width", "-1"],
        ["frobnicate", trace_path],
    ):
        with pytest.raises(SystemExit) as info:
            run_cli(*argv)
        assert info.value.code == 2
    assert run_cli("view", trace_path, "--png", tmp_path / "x.png", "--start", "5", "--end", "4") == 2
    assert run_cli("view", trace_path, "--png", tmp_path / "x.png", "--compare", "--start", "1") == 2
    capsys.readouterr()


@pytest.mark.timeout(30)
def test_compare_without_a_stop_the_world_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "barriers_only.json"
    with ragged.trace(path):
        with ragged.Runtime(procs=2) as rt:
            rt.for_each_p(lambda p: None)
    assert run_cli("view", path, "--png", tmp_path / "c.png", "--compare") == 1
    assert "stop-the-world" in capsys.readouterr().err


@pytest.mark.timeout(60)
def test_python_dash_m_help_and_summary(trace_path: Path) -> None:
    """Run as ``python -m ragged.trace``: help names the plot extra; no warning about the module name."""
    helped = subprocess.run(
        [sys.executable, "-m", "ragged.trace", "view", "--help"], capture_output=True, text=True, timeout=50
    )
    assert helped.returncode == 0 and "ragged[plot]" in helped.stdout
    summary = subprocess.run(
        [sys.executable, "-m", "ragged.trace", "summary", str(trace_path)], capture_output=True, text=True, timeout=50
    )
    assert summary.returncode == 0 and "events by type:" in summary.stdout
    assert summary.stderr == "", summary.stderr


def test_step_asides_are_cut_at_the_end_of_their_barrier() -> None:
    """A step-aside's recorded end includes the wait for the GIL after the barrier; the picture cuts it."""
    tf = _tracefile.TraceFile(path="synthetic", n_events=0, dropped=0)
    tf.barriers = [_tracefile.Barrier(0, 100.0, 50.0, 1, 2), _tracefile.Barrier(0, 400.0, 50.0, 2, 2)]
    track = _tracefile.Track(0, 1, "P1")
    track.step_asides = [
        _tracefile.Span(110.0, 500.0, 0),  # overran its barrier (100..150): cut to 150
        _tracefile.Span(410.0, 20.0, 0),  # inside its barrier: kept
        _tracefile.Span(50.0, 10.0, 0),  # before any barrier: kept as recorded
    ]
    got = [(s.ts, s.dur) for s in _traceview.clipped_step_asides(tf, track)]
    assert got == [(110.0, 40.0), (410.0, 20.0), (50.0, 10.0)]
