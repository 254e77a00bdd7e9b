"""The echo benchmark (``python -m ragged.bench --net``) in a tiny size, and its pieces."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ragged.bench import netbench


@pytest.mark.timeout(30)
def test_net_help_lists_its_options() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ragged.bench", "--net", "--help"], capture_output=True, text=True, timeout=25
    )
    assert out.returncode == 0, out.stderr
    for flag in ("--conns", "--servers", "--procs", "--seconds", "--python-load", "--quick", "--json"):
        assert flag in out.stdout


def test_plan_skips_what_cannot_run() -> None:
    runs = netbench.plan(["ragged", "ragged-level", "ragged-syscall", "asyncio", "go"], [10, 10000], [1, 2], None)
    assert ("ragged", 1, 10) in runs and ("ragged", 2, 10000) in runs
    assert ("ragged-level", 1, 10) in runs and ("ragged-level", 2, 10000) in runs
    assert ("ragged-syscall", 2, 10) in runs
    assert not any(k == "ragged-syscall" and n == 10000 for k, _, n in runs)  # a thread per connection
    assert not any(k == "go" for k, _, _ in runs)  # no Go binary given


def test_bad_server_name_is_a_usage_error() -> None:
    with pytest.raises(SystemExit, match="unknown"):
        netbench.main(["--servers", "nginx"])


@pytest.mark.timeout(120)
@pytest.mark.parametrize("python_load", [True, False])
def test_tiny_run_measures_ragged_and_asyncio(tmp_path: Path, python_load: bool) -> None:
    out = tmp_path / "net.json"
    args = ["--net", "--servers", "ragged,asyncio", "--conns", "10", "--procs", "1"]
    args += ["--seconds", "0.3", "--warmup", "0.2", "--json", str(out), "--quiet"]
    if python_load:
        args.append("--python-load")
    r = subprocess.run([sys.executable, "-m", "ragged.bench", *args], capture_output=True, text=True, timeout=110)
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads(out.read_text())
    rows = {(row["server"], row["conns"]): row for row in data["rows"]}
    for key in (("ragged", 10), ("asyncio", 10)):
        row = rows[key]
        assert row["roundtrips"] > 0 and row["errors"] == 0 and row["connected"] == 10, row
        assert row["threads"] >= 1 and row["rss_mb"] > 0
    assert "ragged procs=1 / asyncio" in r.stdout


def test_goals_at_1000_connections_are_ratios_to_asyncio_per_build() -> None:
    """CPU/rt <= 0.8x asyncio on a GIL build (1.0x free-threaded) and TLS rt/s >= asyncio's (GIL only)."""

    def row(server: str, procs: object, cpu: float, rts: float) -> dict[str, object]:
        return {"server": server, "procs": procs, "conns": 1000, "cpu_us_per_rt": cpu, "rt_per_s": rts}

    rows = [
        row("ragged", 1, 7.0, 0.0),
        row("ragged", 2, 9.0, 0.0),
        row("asyncio", "-", 10.0, 0.0),
        row("ragged-tls", 1, 0.0, 1200.0),
        row("asyncio-tls", "-", 0.0, 1000.0),
        {"server": "ragged-tls", "procs": 2, "conns": 1000, "error": "failed"},
    ]
    gil = {t.key: t for t in netbench.net_targets(rows, gil=True)}
    assert gil["cpu_p1"].value == pytest.approx(0.7) and gil["cpu_p1"].passed is True
    assert gil["cpu_p2"].value == pytest.approx(0.9) and gil["cpu_p2"].passed is False
    assert gil["tls_p1"].value == pytest.approx(1.2) and gil["tls_p1"].passed is True
    assert gil["tls_p2"].passed is None  # the row failed: not measured
    ft = {t.key: t for t in netbench.net_targets(rows, gil=False)}
    assert ft["cpu_p2"].passed is True  # 0.9 <= 1.0 free-threaded
    assert ft["tls_p1"].passed is None and ft["tls_p1"].as_dict()["goal"] == "none"
