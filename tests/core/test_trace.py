"""The execution tracer: a small known program is traced and its events are
checked against the trace-event format and against what the program did;
plus ``RAGGED_TRACE``, one trace at a time, the buffer bound, and the
``ragged.trace`` name working both as function and as module."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_until

import ragged
from ragged._core._trace import WORLD_TID

EPS = 0.002  # µs: timestamps are written with ns resolution as float µs

N_WORKERS = 4
N_BARRIERS = 3


async def worker(i: int, ch: ragged.Chan) -> int:
    for _ in range(3):
        await ragged.gosched()
    await ragged.sleep(0.001)
    await ragged.syscall(time.sleep, 0.002)
    await ch.send(i)
    return i


async def known_program() -> list[int]:
    """Goroutines that yield, sleep, make a syscall, send on a channel and exit;
    barriers, a stop-the-world and two procs changes from the main goroutine."""
    ch = ragged.Chan()
    gs = [ragged.go(worker, i, ch, name=f"worker-{i}", labels={"idx": str(i)}) for i in range(N_WORKERS)]
    got = [await ch.recv() for _ in gs]
    for _ in range(N_BARRIERS):
        await ragged.for_each_p(lambda p: None)
    async with ragged.stop_the_world("test"):
        pass
    await ragged.set_procs(3)
    await ragged.for_each_p(lambda p: None)
    await ragged.set_procs(2)
    for g in gs:
        await g
    await ragged.go(ragged.sleep, 0.005)  # a join that has to wait
    return sorted(got)


def plain_thread_side() -> None:
    """A second runtime driven from a plain thread: its barriers cover every P (none is the caller's).

    A spinner keeps one P running, so the stop-the-worlds find a P that has
    to stop itself (idle Ps are stopped by the coordinator, unrecorded).
    """
    spins = [0]
    stop = threading.Event()

    async def spinner() -> None:
        while not stop.is_set():
            spins[0] += 1
            await ragged.checkpoint()

    with ragged.Runtime(procs=2) as rt:
        g = rt.go(spinner, name="spinner")
        wait_until(lambda: spins[0] > 0, what="the spinner to run")
        for _ in range(N_BARRIERS):
            rt.for_each_p(lambda p: None)
        for _ in range(3):
            with rt.stop_the_world("plain"):
                pass
        stop.set()
        g.result(timeout=10)


@pytest.fixture(scope="module")
def doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("trace") / "known.json"
    with ragged.trace(path):
        assert ragged.run(known_program, procs=2) == list(range(N_WORKERS))
        plain_thread_side()
    return json.loads(path.read_text())


def events(doc: dict[str, Any], **match: Any) -> list[dict[str, Any]]:
    return [e for e in doc["traceEvents"] if all(e.get(k) == v for k, v in match.items())]


# ---------------------------------------------------------------- the format


@pytest.mark.timeout(60)
def test_document_shape(doc: dict[str, Any]) -> None:
    assert isinstance(doc["traceEvents"], list) and doc["traceEvents"]
    assert doc["displayTimeUnit"] == "ms"
    assert doc["otherData"]["producer"] == "ragged"
    assert doc["otherData"]["dropped_events"] == 0


@pytest.mark.timeout(60)
def test_every_event_has_the_keys_its_phase_requires(doc: dict[str, Any]) -> None:
    for e in doc["traceEvents"]:
        assert e["ph"] in ("X", "i", "M"), e
        for key in ("ph", "pid", "tid", "name"):
            assert key in e, (key, e)
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int)
        if e["ph"] == "M":
            assert e["name"] in ("process_name", "thread_name", "thread_sort_index") and "args" in e
            continue
        assert isinstance(e["ts"], (int, float)) and e["ts"] >= 0, e
        assert "cat" in e and isinstance(e.get("args", {}), dict)
        if e["ph"] == "X":
            assert isinstance(e["dur"], (int, float)) and e["dur"] >= 0, e
        else:
            assert e["s"] in ("g", "p", "t"), e


def active_pids(doc: dict[str, Any]) -> list[int]:
    """The runtimes that recorded anything, in order of creation.

    Pids are numbered as runtimes are attached; a closed runtime that is
    still referenced somewhere may be attached too (and record nothing), so
    tests do not assume the traced runtimes are pids 0 and 1.
    """
    return sorted({e["pid"] for e in doc["traceEvents"] if e["ph"] != "M"})


@pytest.mark.timeout(60)
def test_tracks_are_named_one_per_p_plus_world(doc: dict[str, Any]) -> None:
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in events(doc, ph="M", name="thread_name")}
    grown, plain = active_pids(doc)  # the goroutine-side runtime grew to 3 Ps; the plain-thread one had 2
    for pid, ps in ((grown, 3), (plain, 2)):
        assert {tid: name for (p, tid), name in names.items() if p == pid} == {
            WORLD_TID: "world",
            **{i: f"P{i}" for i in range(ps)},
        }
    procs = {e["pid"]: e["args"]["name"] for e in events(doc, ph="M", name="process_name")}
    assert procs[grown] == f"ragged runtime {grown}" and procs[plain] == f"ragged runtime {plain}"


# ---------------------------------------------------------------- what ran


@pytest.mark.timeout(60)
def test_goroutine_slices_do_not_overlap_on_a_p_nor_for_one_goroutine(doc: dict[str, Any]) -> None:
    by_p: dict[tuple[int, int], list[tuple[float, float]]] = defaultdict(list)
    by_g: dict[tuple[int, int], list[tuple[float, float]]] = defaultdict(list)
    for e in events(doc, cat="goroutine"):
        assert e["tid"] != WORLD_TID
        span = (e["ts"], e["ts"] + e["dur"])
        by_p[(e["pid"], e["tid"])].append(span)
        by_g[(e["pid"], e["args"]["goroutine"])].append(span)
    assert by_p, "no goroutine slices"
    for where, spans in (*by_p.items(), *by_g.items()):
        spans.sort()
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            assert end <= start + EPS, f"overlapping slices on {where}: one ends {end}, the next starts {start}"


@pytest.mark.timeout(60)
def test_every_barrier_has_exactly_one_fn_per_p_within_it(doc: dict[str, Any]) -> None:
    barriers = events(doc, tid=WORLD_TID, name="for_each_p")
    assert len(barriers) == 2 * N_BARRIERS + 1
    fns = events(doc, cat="barrier", name="fn")
    for b in barriers:
        mine = [f for f in fns if f["pid"] == b["pid"] and f["args"]["seq"] == b["args"]["seq"]]
        assert sorted(f["tid"] for f in mine) == list(range(b["args"]["procs"])), b
        for f in mine:
            assert b["ts"] - EPS <= f["ts"] and f["ts"] + f["dur"] <= b["ts"] + b["dur"] + EPS, (b, f)
    requests = events(doc, tid=WORLD_TID, name="barrier request")
    assert sorted(r["args"]["seq"] for r in requests) == sorted(b["args"]["seq"] for b in barriers)
    assert len({b["args"]["seq"] for b in barriers}) == len(barriers), "barrier seq numbers repeat"


@pytest.mark.timeout(60)
def test_stop_reasons_cover_what_the_program_did(doc: dict[str, Any]) -> None:
    reasons = {e["args"]["stop"] for e in events(doc, cat="goroutine")}
    for expected in ("gosched", "sleep", "syscall", "exit", "join goroutine"):
        assert expected in reasons, (expected, reasons)
    assert reasons & {"chan send", "chan receive"}, reasons


@pytest.mark.timeout(60)
def test_syscalls_stop_the_world_and_procs_changes_are_recorded(doc: dict[str, Any]) -> None:
    syscalls = events(doc, cat="syscall")
    assert len(syscalls) >= N_WORKERS and all(isinstance(e["args"]["goroutine"], int) for e in syscalls)
    stws = {e["name"]: e for e in events(doc, cat="stw", ph="X")}
    assert "stop the world: test" in stws and "stop the world: plain" in stws
    assert stws["stop the world: test"]["args"]["reason"] == "test"
    for e in stws.values():
        assert 0 <= e["args"]["stopping_us"] <= e["dur"] + EPS
    assert events(doc, cat="stw", name="stopped"), "no P recorded stopping for the world"
    changes = [(e["args"]["old"], e["args"]["new"]) for e in events(doc, cat="procs")]
    assert changes == [(2, 3), (3, 2)]
    assert {e["name"] for e in events(doc, cat="procs")} == {"procs 2 -> 3", "procs 3 -> 2"}


@pytest.mark.timeout(60)
def test_names_and_labels_appear_in_slice_args(doc: dict[str, Any]) -> None:
    seen = set()
    for e in events(doc, cat="goroutine"):
        name = e["args"]["name"]
        if name.startswith("worker-"):
            i = name.removeprefix("worker-")
            assert e["args"]["labels"] == {"idx": i}
            assert e["name"] == f"G{e['args']['goroutine']} {name}"
            seen.add(i)
    assert seen == {str(i) for i in range(N_WORKERS)}


# ---------------------------------------------------------------- control


@pytest.mark.timeout(30)
def test_a_second_concurrent_trace_raises(tmp_path: Path) -> None:
    with ragged.trace(tmp_path / "one.json"):
        with pytest.raises(ragged.RaggedError, match="already being recorded"):
            with ragged.trace(tmp_path / "two.json"):
                pass  # pragma: no cover
    assert not (tmp_path / "two.json").exists()
    with ragged.trace(tmp_path / "three.json"):  # the first ended: a new one may start
        pass
    assert json.loads((tmp_path / "three.json").read_text())["traceEvents"] is not None


@pytest.mark.timeout(30)
def test_trace_attaches_to_running_runtimes_and_detaches_after(tmp_path: Path) -> None:
    async def hop() -> None:
        await ragged.gosched()

    with ragged.Runtime(procs=2) as rt:
        assert rt._sched.trace is None
        with ragged.trace(tmp_path / "t.json") as tracer:
            assert rt._sched.trace is tracer
            rt.go(hop).result(timeout=10)
        assert rt._sched.trace is None
        rt.go(hop).result(timeout=10)  # and runs fine untraced
    doc = json.loads((tmp_path / "t.json").read_text())
    assert events(doc, cat="goroutine")


@pytest.mark.timeout(30)
def test_buffer_bound_drops_and_counts(tmp_path: Path) -> None:
    path = tmp_path / "small.json"

    async def busy() -> None:
        for _ in range(200):
            await ragged.gosched()

    with ragged.trace(path, limit=5):
        with ragged.Runtime(procs=2) as rt:
            rt.go(busy).result(timeout=10)
            for _ in range(8):
                rt.for_each_p(lambda p: None)
    doc = json.loads(path.read_text())
    assert doc["otherData"]["dropped_events"] > 200
    per_track: dict[int, int] = defaultdict(int)
    for e in doc["traceEvents"]:
        if e["ph"] != "M" and e["tid"] != WORLD_TID:
            per_track[e["tid"]] += 1
    assert per_track and max(per_track.values()) <= 5
    assert len(events(doc, tid=WORLD_TID, name="for_each_p")) <= 5


@pytest.mark.timeout(30)
@pytest.mark.parametrize("bad", [0, -3, True, 2.5])
def test_trace_limit_must_be_a_positive_int(tmp_path: Path, bad: object) -> None:
    with pytest.raises(ValueError, match="positive int"):
        with ragged.trace(tmp_path / "x.json", limit=bad):  # type: ignore[arg-type]
            pass  # pragma: no cover


@pytest.mark.timeout(30)
def test_ragged_trace_env_traces_each_runtime_to_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "env.json"
    monkeypatch.setenv("RAGGED_TRACE", str(path))

    async def main() -> None:
        await ragged.gosched()
        await ragged.for_each_p(lambda p: None)

    ragged.run(main, procs=2)
    doc = json.loads(path.read_text())
    assert events(doc, cat="goroutine") and events(doc, name="for_each_p")
    monkeypatch.delenv("RAGGED_TRACE")
    path.unlink()
    ragged.run(main, procs=1)
    assert not path.exists(), "tracing stayed on after RAGGED_TRACE was unset"


@pytest.mark.timeout(60)
def test_import_ragged_trace_module_keeps_ragged_trace_callable(tmp_path: Path) -> None:
    """``import ragged.trace`` rebinds the package attribute to the module; it must still work."""
    path = tmp_path / "mod.json"
    code = textwrap.dedent(
        f"""
        import json, ragged
        assert callable(ragged.trace)
        import ragged.trace
        import types
        assert isinstance(ragged.trace, types.ModuleType) and callable(ragged.trace)
        from ragged.trace import Tracer, trace
        from ragged._core import _trace
        assert trace is _trace.trace and Tracer is _trace.Tracer

        async def main():
            await ragged.gosched()

        with ragged.trace({str(path)!r}) as tracer:
            assert isinstance(tracer, Tracer)
            ragged.run(main, procs=1)
        print(len(json.load(open({str(path)!r}))["traceEvents"]))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=50)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) > 0
    assert "Warning" not in out.stderr and "Traceback" not in out.stderr, out.stderr
