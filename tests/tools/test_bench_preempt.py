"""``python -m ragged.bench --preempt``: asynchronous preemption's benchmark, in tiny sizes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ragged._core import _preempt
from ragged.bench import __main__ as cli


@pytest.mark.timeout(30)
def test_help_names_the_preempt_mode_and_its_flags() -> None:
    for argv, words in (([], ["--preempt"]), (["--preempt"], ["--quick", "--ops", "--interval", "--json"])):
        out = subprocess.run(
            [sys.executable, "-m", "ragged.bench", *argv, "--help"], capture_output=True, text=True, timeout=25
        )
        assert out.returncode == 0, out.stderr
        for w in words:
            assert w in out.stdout, f"{argv} --help does not mention {w}"


@pytest.mark.timeout(120)
def test_preempt_quick_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every case runs and every target gets a figure (where the interpreter can preempt asynchronously)."""
    js = tmp_path / "preempt.json"
    assert cli.main(["--preempt", "--quick", "--quiet", "--ops", "10", "--json", str(js)]) == 0
    out = capsys.readouterr().out
    data = json.loads(js.read_text())
    assert data["speed"]["ratio"]["median"] > 0
    keys = {t["key"]: t for t in data["targets"]}
    assert set(keys) == {
        "for_each_p_p50",
        "for_each_p_p99",
        "stop_the_world_p50",
        "stop_the_world_p99",
        "sleeper_p50",
        "sleeper_p99",
        "speed",
    }
    assert "targets" in out
    if _preempt.AVAILABLE:
        assert data["world"]["errors"] == 0
        assert data["world"]["for_each_p"]["count"] == 5 and data["world"]["stop_the_world"]["count"] == 5
        assert data["world"]["async_preemptions"] >= 2
        assert data["asyncpreemptoff"].startswith("never completes")
        assert all(t["pass"] in (True, False) for t in data["targets"])
        assert "Go 1.19" in out
    else:
        assert "not available here" in out
        assert keys["speed"]["pass"] in (True, False)


@pytest.mark.timeout(120)
def test_results_has_a_table_for_it(tmp_path: Path) -> None:
    """``make results`` runs it too: its section, command and goal rows in RESULTS.md."""
    from ragged.bench import results

    out = tmp_path / "RESULTS.md"
    assert results.main(["--quick", "--only", "preempt", "--out", str(out)]) == 0
    text = out.read_text()
    assert "## Goroutines that never await" in text and "--preempt" in text
    rows = [line for line in text.splitlines() if line.startswith("| tight loop, nothing pending")]
    assert len(rows) == 1 and ("PASS" in rows[0] or "MISS" in rows[0]), rows
