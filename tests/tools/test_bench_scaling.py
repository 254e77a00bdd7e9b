"""The parallel bench parts: build identification, compute scaling, mutator rate, the parallel goals' table.

Sizes are tiny and nothing here asserts a timing: the cases run, their JSON
has the keys the report and RESULTS.md rely on, and the arithmetic behind the
mutator-rate figure is checked on made-up completion times.
"""

from __future__ import annotations

import json
import math
import sys
import sysconfig
from array import array
from pathlib import Path
from typing import Any

import pytest

from ragged.bench import __main__ as cli
from ragged.bench import build, mutator, peers, plot, scaling, stress, targets

MS = 1_000_000  # ns


def test_build_info_is_this_interpreter() -> None:
    info = build.info()
    assert info["build"] == ("free-threaded" if sysconfig.get_config_var("Py_GIL_DISABLED") else "default")
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    assert info["gil"] is gil
    assert info["python"] == sys.version.split()[0]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"python": "3.11.7", "build": "default", "gil": True}, "Python 3.11.7 default build, GIL on"),
        ({"python": "3.13.5", "build": "free-threaded", "gil": False}, "Python 3.13.5 free-threaded build, GIL off"),
        ({"python": "3.13.5", "build": "free-threaded", "gil": True}, "GIL on (turned back on: run with PYTHON_GIL=0)"),
        ({"python": "3.11.7"}, "Python 3.11.7 (build not recorded)"),
    ],
)
def test_build_label_names_build_and_gil(data: dict[str, Any], expected: str) -> None:
    assert expected in build.label(data)


@pytest.mark.timeout(60)
def test_stress_json_text_and_plot_title_name_the_build(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    js = tmp_path / "s.json"
    assert cli.main(["--procs", "1", "--duration", "0.1", "--reps", "1", "--json", str(js), "--quiet"]) == 0
    data = json.loads(js.read_text())
    assert {k: data[k] for k in ("python", "build", "gil")} == build.info()
    assert build.label(data) in capsys.readouterr().out
    figure = pytest.importorskip("matplotlib.figure")
    titles: list[str] = []
    real = figure.Figure.suptitle
    monkeypatch.setattr(figure.Figure, "suptitle", lambda self, t, **kw: (titles.append(t), real(self, t, **kw))[1])
    plot.draw(data, str(tmp_path / "s.png"))
    assert titles and build.label(data) in titles[0]


@pytest.mark.timeout(60)
def test_soak_header_names_the_build(capsys: pytest.CaptureFixture[str]) -> None:
    from ragged.bench import soak

    soak.main(["--duration", "1", "--report-every", "1", "--no-chaos"])
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("soak: ") and build.label(build.info()) in first, first


def _slice(mode: str, t0: int, t1: int, ops: list[tuple[int, int]]) -> Any:
    cpu = (t1 - t0) * 1e-3 * 1.5  # 1.5 cores busy
    return mutator._Slice(mode, t0 * MS, t1 * MS, [(s * MS, e * MS) for s, e in ops], [1e-4] * len(ops), cpu)


def test_mutator_rate_counts_completions_inside_operations() -> None:
    """Two mutators complete a chunk every 0.1ms; during operations one (for_each_p) or both (stw) stop."""
    step = MS // 10
    fe_ops, stw_ops = [(11, 12), (15, 16)], [(21, 22)]

    def stopped(t: int, who: int) -> bool:
        in_fe = any(s * MS <= t < e * MS for s, e in fe_ops) and who == 0
        return in_fe or any(s * MS <= t < e * MS for s, e in stw_ops)

    results = []
    for who in (0, 1):
        times = [t for t in range(0, 30 * MS, step) if not stopped(t, who)]
        results.append((array("q", times + [0] * 5), len(times), 0))
    slices = [_slice("none", 0, 10, []), _slice("foreach", 10, 20, fe_ops), _slice("stw", 20, 30, stw_ops)]
    out = mutator._analyse(2, slices, mutator._Completions(results), [])
    modes = out["modes"]
    assert modes["none"]["rate"]["median"] == pytest.approx(10_000)  # chunks/s per mutator
    assert modes["none"]["cores"]["median"] == modes["stw"]["cores"]["median"] == pytest.approx(1.5)
    assert modes["foreach"]["vs_none_in_flight"]["median"] == pytest.approx(0.5)
    assert modes["foreach"]["vs_none_between"]["median"] == pytest.approx(1.0)
    assert modes["foreach"]["vs_none_slice"]["median"] == pytest.approx(0.9)
    assert modes["foreach"]["in_flight_share"]["median"] == pytest.approx(0.2)
    assert modes["stw"]["vs_none_in_flight"]["median"] == 0
    assert modes["stw"]["ops"] == 1 and modes["stw"]["latency"]["p50"] == pytest.approx(1e-3)
    assert out["latency_p50_ratio"]["median"] == pytest.approx(1.0)
    assert out["errors"] == []


def test_cpu_per_chunk_from_tallies() -> None:
    """In one process the CPU clock already sums the workers; worker processes' clocks are added up."""
    a = (10, 1.0, 100.0, 1.5, 100.5)  # 10 chunks, CPU clock 1.0 -> 1.5 over 0.5s
    b = (10, 1.2, 100.1, 1.6, 100.5)
    assert scaling.cpu_and_cores([a, b], one_process=True) == pytest.approx((0.6 / 20, 0.6 / 0.5))
    assert scaling.cpu_and_cores([a, b], one_process=False) == pytest.approx((0.9 / 20, 0.9 / 0.5))
    nothing = scaling.cpu_and_cores([scaling._NO_CHUNK], one_process=True)
    assert all(math.isnan(x) for x in nothing)


def test_target_without_goal_is_information() -> None:
    t = targets.Target("k", "label", "goal", 0.5, "", 1, "x", "0.40-0.60")
    assert t.passed is None and t.margin == "no goal set"
    d = t.as_dict()
    assert d["goal"] == "none" and d["spread"] == "0.40-0.60"
    text = "\n".join(targets.render("title", [d]))
    assert "info" in text and "0.40-0.60" in text
    assert targets.Target("k", "l", "s", math.nan, ">=", 1, "x").margin == "not measured"


def test_a_barrier_error_in_the_mutator_case_fails_the_run() -> None:
    assert cli._failed({"mutator": {"results": [{"errors": ["procs=2: a barrier ran fn on Ps [0, 0]"]}]}})
    assert not cli._failed({"mutator": {"results": [{"errors": []}]}})


@pytest.mark.timeout(60)
def test_scaling_case_quick() -> None:
    cfg = scaling.ScalingConfig(rounds=2, seconds=0.02, warmup=0.01)
    shown: list[str] = []
    sec = scaling.run(stress.calibrate(), cfg, shown.append)
    assert len(shown) == cfg.rounds
    cs = sec["contestants"]
    assert set(cs) == {
        "ragged_p1",
        "ragged_p2",
        "ragged_p2g4",
        "ragged_p4",
        "ragged_p8",
        "thread",
        "tpe1",
        "tpe2",
        "ppe2",
        "asyncio",
    }
    for key, c in cs.items():
        if not c["installed"]:
            assert key == "ppe2" and c["why"], c  # only the process pool may be unavailable (a sandbox)
            continue
        # A worker may get no core for a whole 20ms window on a loaded machine: counts may be 0, never negative.
        assert len(c["samples"]) == cfg.rounds and min(c["samples"]) >= 0, key
        cpu = c["cpu_per_chunk"]["median"]
        assert math.isnan(cpu) or cpu > 0, key  # nan: no chunk in the window
    for key in (
        "p2_tpe2",
        "p2g4_tpe2",
        "p1_thread",
        "p2_p1",
        "p4_p2",
        "p8_p2",
        "tpe2_tpe1",
        "p1_asyncio",
        "cpu_p1_thread",
        "cpu_p2_tpe2",
        "cpu_p2g4_tpe2",
    ):
        assert len(sec["ratios"][key]["samples"]) == cfg.rounds, key
    text = "\n".join(scaling.render(sec))
    assert "ThreadPoolExecutor(2)" in text and "ragged procs=2 / ragged procs=1" in text


@pytest.mark.timeout(60)
def test_mutator_case_quick_runs_exactly_once_barriers() -> None:
    cfg = mutator.MutatorConfig(procs=(2,), reps=2, slice_seconds=0.03, interval=1e-3, warmup=0.02)
    sec = mutator.run(stress.calibrate(), cfg, lambda _what: None)
    (r,) = sec["results"]
    assert r["procs"] == 2 and r["mutators"] == 2 and r["errors"] == []
    assert len(r["modes"]["none"]["rate"]["samples"]) == cfg.reps
    for m in mutator.OPS:
        d = r["modes"][m]
        assert d["ops"] > 0 and d["latency"]["p50"] > 0 and len(d["vs_none_in_flight"]["samples"]) == cfg.reps
        assert d["pause"]["count"] == d["ops"], m
        assert d["cores"]["median"] >= 0, m
    assert "exactly once on every P" in "\n".join(mutator.render(sec))


PARALLEL_KEYS = {
    "p2_tpe2",
    "p2g4_tpe2",
    "p1_thread",
    "p2_p1",
    "cpu_p1_thread",
    "cpu_p2_tpe2",
    "mutator_foreach_p2",
    "mutator_foreach_p4",
    "mutator_stw_p2",
    "mutator_stw_p4",
    "lat_ratio_p2",
    "lat_ratio_p4",
    "foreach_p50",
    "stw_p50",
    "stw_p99",
    "checkpoint",
    "switch",
    "spawn",
}


@pytest.mark.timeout(90)
def test_peers_quick_json_has_build_scaling_mutator_and_parallel_goals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    js = tmp_path / "peers.json"
    assert cli.main(["--peers", "--quick", "--quiet", "--json", str(js)]) == 0
    out = capsys.readouterr().out
    data = json.loads(js.read_text())
    assert {k: data[k] for k in ("python", "build", "gil")} == build.info()
    assert data["scaling"]["config"] == {"rounds": 2, "seconds": 0.03, "warmup": 0.02}
    assert [r["procs"] for r in data["mutator"]["results"]] == [2, 4]
    assert all(r["errors"] == [] for r in data["mutator"]["results"])
    rows = {t["key"]: t for t in data["parallel"]}
    assert set(rows) == PARALLEL_KEYS
    everywhere = {"checkpoint", "switch", "spawn"}  # the single-thread rows are every build's goals
    for key, t in rows.items():
        if data["gil"] and key not in everywhere:  # the rest are the free-threaded build's goals
            assert t["source"] == "free-threaded goal" and t["pass"] is None, key
            continue
        assert t["source"] == "goal", key
        if key.startswith(("mutator_stw", "cpu_")):
            assert t["goal"] == "none" and t["pass"] is None
        else:  # n/a only where a loaded machine left a side with no chunk in a tiny window
            assert t["pass"] in (True, False) or math.isnan(t["value"]), key
    assert build.label(data) in out.splitlines()[0]
    for title in ("compute scaling", "barrier vs stop-the-world on busy Ps", "parallel goals", "PASS"):
        assert title in out


def test_peer_parts_are_the_sections_then_the_parallel_cases() -> None:
    from ragged.bench.cli import PEER_PARTS
    from ragged.bench.peer_cases import QUICK

    assert [s.key for s in peers.build(QUICK)] + ["scaling", "mutator"] == list(PEER_PARTS)
    with pytest.raises(ValueError, match="unknown --peers part"):
        peers.run(quiet=True, quick=True, only=("checkpoint", "bogus"))


@pytest.mark.timeout(60)
def test_peers_only_runs_the_parts_named_and_reports_the_rest_not_measured() -> None:
    data = peers.run(quiet=True, quick=True, only=("checkpoint",))
    assert data["only"] == ["checkpoint"] and set(data["sections"]) == {"checkpoint"}
    assert "scaling" not in data and "mutator" not in data
    rows = {t["key"]: t for t in data["parallel"]}
    assert set(rows) == PARALLEL_KEYS
    assert rows["checkpoint"]["pass"] in (True, False)
    for key, t in rows.items():
        if key != "checkpoint":
            assert t["pass"] is None and t["margin"] == "not measured", key
    assert "not measured" in peers.render(data)
