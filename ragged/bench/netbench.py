"""``python -m ragged.bench --net``: the echo benchmark of the network poller.

64-byte request/response round trips over loopback at 10, 1,000 and 10,000
concurrent connections, each server in its own process, every one driven by
the same load generator in another process (the Go one from ``netecho.go``
when a Go toolchain is installed, else a Python asyncio client), bounded in
count and time.  Servers: ragged on its poller (procs 1 and 2), ragged's
``syscall`` path (a thread per waiting connection; not run at 10,000),
asyncio streams, uvloop and gevent where they import, one thread per
connection (``socketserver.ThreadingTCPServer``), and Go's own echo server as
the anchor.  Each connection makes one round trip before the warm-up, so
the measured window holds no connection that the server has yet to accept.
``ragged-tls`` and ``asyncio-tls`` echo over TLS (a certificate made with the
``openssl`` command; the Python load generator, over TLS; up to 1,000
connections).

Columns: round trips/s (all connections together); p50/p99 µs, the latency
of one round trip as the client sees it; cores, the server process's CPU
time (user + system, from /proc) over the measured window divided by its
length; CPU µs/rt, that CPU time per round trip (cores / round trips/s: what
a round trip costs the server, whatever share of the machine it got);
threads and RSS MB of the server under load; errors, failed connections.
With ``--repeat N`` each row is run N times and the median of each figure is
shown.  Both processes raise RLIMIT_NOFILE as far as needed
(``resource.setrlimit``).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .cli import positive
from .stats import ratio, table
from .targets import Target
from .targets import render as render_targets

HERE = Path(__file__).resolve().parent
SIZE = 64
PY_SERVERS = ("ragged", "ragged-syscall", "asyncio", "uvloop", "gevent", "threads", "ragged-tls", "asyncio-tls")
TLS_SERVERS = ("ragged-tls", "asyncio-tls")
TLS_MAX_CONNS = 1000  # TLS rows above this are skipped (a Python client's handshakes would take minutes)
PROCS_SERVERS = ("ragged", "ragged-level", "ragged-tls")  # run at every --procs
# Run only when named in --servers: ragged on the level-triggered ``selectors``
# poller (what non-Linux platforms get), to compare with the edge-triggered one.
EXTRA_SERVERS = ("ragged-level",)
MODULES = {"uvloop": "uvloop", "gevent": "gevent"}


def go_binary(quiet: bool) -> str | None:
    """Build ``netecho.go`` once per source version (cached in the temp dir); None without Go."""
    go = shutil.which("go")
    src = HERE / "netecho.go"
    if go is None or not src.exists():
        return None
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:12]
    out = Path(tempfile.gettempdir()) / f"ragged-netecho-{digest}"
    if out.exists():
        return str(out)
    env = dict(os.environ, GO111MODULE="off", GOFLAGS="", GOCACHE=str(Path(tempfile.gettempdir()) / "ragged-gocache"))
    if not quiet:
        print(f"building {src.name} with {go} ...", file=sys.stderr)
    r = subprocess.run([go, "build", "-o", str(out), str(src)], env=env, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        print(f"go build failed, using the Python load generator:\n{r.stderr}", file=sys.stderr)
        return None
    return str(out)


def server_cmd(kind: str, procs: int, gobin: str | None) -> list[str]:
    if kind == "go":
        assert gobin is not None
        return [gobin, "serve"]
    return [sys.executable, "-m", "ragged.bench.net_servers", "serve", kind, str(procs)]


def load_cmd(
    port: int, conns: int, warmup: float, seconds: float, gobin: str | None, cafile: str | None = None
) -> list[str]:
    """The load generator's command: the Go one if built, except over TLS (``cafile`` given)."""
    args = [f"127.0.0.1:{port}", str(conns), str(warmup), str(seconds), str(SIZE)]
    if cafile is not None:
        return [sys.executable, "-m", "ragged.bench.net_servers", "load", *args, cafile]
    if gobin is not None:
        return [gobin, "load", *args]
    return [sys.executable, "-m", "ragged.bench.net_servers", "load", *args]


def proc_status(pid: int) -> tuple[int, float]:
    """Threads and RSS (MB) of process ``pid``, from /proc."""
    threads, rss = 0, 0.0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    threads = int(line.split()[1])
                elif line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) / 1024
    except OSError:
        pass
    return threads, rss


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used, from /proc (0.0 where unreadable)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _read_port(p: subprocess.Popen, timeout: float) -> int:
    """The port a server prints first; kills it and raises if it does not come."""
    box: list[str] = []
    out = p.stdout
    assert out is not None  # started with stdout=PIPE
    t = threading.Thread(target=lambda: box.append(out.readline()), daemon=True)
    t.start()
    t.join(timeout)
    if not box or not box[0].strip().isdigit():
        p.kill()
        raise RuntimeError(f"server {p.args!r} did not start: {box[:1]!r}")
    return int(box[0])


def run_one(
    kind: str, procs: int, conns: int, warmup: float, seconds: float, gobin: str | None, certs: Any = None
) -> dict[str, Any]:
    """One server at one connection count: start it, load it, sample it, stop it."""
    env = dict(os.environ)
    cafile = None
    if kind in TLS_SERVERS:
        env.update(RAGGED_BENCH_CERT=str(certs.cert), RAGGED_BENCH_KEY=str(certs.key))
        cafile = str(certs.ca)
    srv = subprocess.Popen(server_cmd(kind, procs, gobin), stdout=subprocess.PIPE, text=True, env=env)
    row: dict[str, Any] = {"server": kind, "procs": procs if kind.startswith("ragged") else "-", "conns": conns}
    try:
        port = _read_port(srv, 30)
        ld = subprocess.Popen(
            load_cmd(port, conns, warmup, seconds, gobin, cafile),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        measuring = threading.Event()

        def watch() -> None:
            assert ld.stderr is not None  # started with stderr=PIPE
            for line in ld.stderr:
                if line.startswith("measuring"):
                    measuring.set()

        threading.Thread(target=watch, daemon=True).start()
        if measuring.wait(90 + warmup):
            # Cores busy: the server's CPU over most of the measured window.  With
            # the load generator on the same machine, this says how much of it the
            # server could get.
            c0, l0, t0 = proc_cpu(srv.pid), proc_cpu(ld.pid), time.monotonic()
            time.sleep(seconds / 2)
            row["threads"], row["rss_mb"] = proc_status(srv.pid)
            time.sleep(seconds * 0.4)
            row["cores"] = (proc_cpu(srv.pid) - c0) / (time.monotonic() - t0)
            row["client_cores"] = (proc_cpu(ld.pid) - l0) / (time.monotonic() - t0)
        out, _ = ld.communicate(timeout=warmup + seconds + 120)
        res = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
        row.update(res)
        row["rt_per_s"] = res.get("roundtrips", 0) / res["seconds"] if res.get("seconds") else 0.0
        if row.get("cores") is not None and row["rt_per_s"]:
            row["cpu_us_per_rt"] = row["cores"] / row["rt_per_s"] * 1e6
            row["client_cpu_us_per_rt"] = row["client_cores"] / row["rt_per_s"] * 1e6
    except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError, IndexError) as err:
        row["error"] = str(err)[:200]
    finally:
        srv.terminate()
        try:
            srv.wait(10)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait(10)
        if srv.stdout is not None:
            srv.stdout.close()
    return row


def plan(
    servers: list[str], conns: list[int], procs: list[int], gobin: str | None, tls: bool = True
) -> list[tuple[str, int, int]]:
    """(server, procs, conns) runs, skipping what cannot run here (``tls``: the openssl command is there)."""
    runs = []
    for n in conns:
        for kind in servers:
            if kind in MODULES and importlib.util.find_spec(MODULES[kind]) is None:
                continue
            if kind == "go" and gobin is None:
                continue
            if kind == "ragged-syscall" and n > 1000:
                continue  # a thread per waiting connection: 10,000 threads
            if kind in TLS_SERVERS and (not tls or n > TLS_MAX_CONNS):
                continue
            for p in procs if kind in PROCS_SERVERS else [max(procs)] if kind == "ragged-syscall" else [1]:
                runs.append((kind, p, n))
    return runs


def median_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One row for several runs of the same server: the median of each figure, the runs kept."""
    ok = [r for r in rows if "error" not in r]
    if not ok:
        return rows[-1]
    out = dict(ok[0])
    for key in ("rt_per_s", "p50_us", "p99_us", "cores", "cpu_us_per_rt", "threads", "rss_mb", "roundtrips"):
        vals = [r[key] for r in ok if isinstance(r.get(key), (int, float))]
        if vals:
            out[key] = statistics.median(vals)
    out["errors"] = sum(r.get("errors", 0) for r in ok) + len(rows) - len(ok)
    out["runs"] = len(rows)
    out["cpu_us_per_rt_runs"] = [round(r.get("cpu_us_per_rt", 0.0), 2) for r in ok]
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    from .net_servers import raise_nofile

    raise_nofile(25_000)
    gobin = None if args.python_load else go_binary(args.quiet)
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    from .netcerts import have_openssl, make_certs

    tls = have_openssl()
    if not tls and any(k in TLS_SERVERS for k in args.servers):
        print("no openssl command: the TLS rows are skipped", file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        certs = make_certs(d) if tls and any(k in TLS_SERVERS for k in args.servers) else None
        for kind, p, n in plan(args.servers, args.conns, args.procs, gobin, tls):
            runs = []
            for i in range(args.repeat):
                if not args.quiet:
                    print(f"  {kind} procs={p} conns={n} run {i + 1}/{args.repeat} ...", file=sys.stderr, flush=True)
                runs.append(run_one(kind, p, n, args.warmup, args.seconds, gobin, certs))
            rows.append(median_row(runs) if args.repeat > 1 else runs[0])
    return {
        "targets": [t.as_dict() for t in net_targets(rows, gil)],
        "python": sys.version.split()[0],
        "gil": gil,
        "load_generator": "go" if gobin else "python asyncio",
        "seconds": args.seconds,
        "repeat": args.repeat,
        "rows": rows,
    }


GOAL_CONNS = 1000  # the connection count the goals are set at


def net_targets(rows: list[dict[str, Any]], gil: bool) -> list[Target]:
    """The goals at 1,000 connections, from a run's rows.

    Server CPU per round trip, ragged on its poller / asyncio streams, at
    procs 1 and 2: <= 0.8x on a GIL build, <= 1.0x free-threaded.  TLS round
    trips/s, ragged / asyncio: >= 1x on a GIL build (information only
    free-threaded, where no goal is set).  A row that did not run gives nan.
    """
    by = {(r["server"], r["procs"], r["conns"]): r for r in rows if "error" not in r}
    n = GOAL_CONNS
    nan = float("nan")

    def fig(kind: str, procs: Any, key: str) -> float:
        r = by.get((kind, procs, n))
        v = r.get(key) if r else None
        return float(v) if isinstance(v, (int, float)) and v else nan

    out = []
    bound = 0.8 if gil else 1.0
    for p in (1, 2):
        cpu = ratio(fig("ragged", p, "cpu_us_per_rt"), fig("asyncio", "-", "cpu_us_per_rt"))
        label = f"server CPU per round trip, {n} conns, procs={p} / asyncio"
        out.append(Target(f"cpu_p{p}", label, "goal", cpu, "<=", bound, "x"))
    for p in (1, 2):
        rts = ratio(fig("ragged-tls", p, "rt_per_s"), fig("asyncio-tls", "-", "rt_per_s"))
        label = f"TLS round trips/s, {n} conns, procs={p} / asyncio TLS"
        out.append(Target(f"tls_p{p}", label, "goal", rts, ">=" if gil else "", 1.0, "x"))
    return out


def render(data: dict[str, Any]) -> str:
    build = "GIL" if data["gil"] else "free-threaded (PYTHON_GIL=0)"
    rep = data.get("repeat", 1)
    lines = [
        f"Echo benchmark: {SIZE}-byte round trips over loopback; Python {data['python']}, {build}; "
        f"load generator: {data['load_generator']} (python asyncio for the TLS rows); {data['seconds']}s measured "
        f"per row{f'; median of {rep} runs' if rep > 1 else ''}",
        "cores: server CPU time / wall time; CPU µs/rt: server CPU time per round trip (cores / round trips/s)",
        "",
    ]
    headers = ["server", "procs", "conns", "round trips/s", "p50 µs", "p99 µs", "cores", "CPU µs/rt"]
    headers += ["threads", "RSS MB", "errors"]
    body = []
    for r in data["rows"]:
        if "error" in r:
            body.append([r["server"], r["procs"], r["conns"], "failed: " + r["error"][:40], *[""] * 7])
            continue
        body.append(
            [
                r["server"],
                r["procs"],
                r["conns"],
                f"{r['rt_per_s']:.0f}",
                f"{r.get('p50_us', 0):.0f}",
                f"{r.get('p99_us', 0):.0f}",
                f"{r['cores']:.2f}" if "cores" in r else "?",
                f"{r['cpu_us_per_rt']:.1f}" if "cpu_us_per_rt" in r else "?",
                r.get("threads", "?"),
                f"{r.get('rss_mb', 0):.0f}",
                r.get("errors", 0),
            ]
        )
    lines.append(table(headers, body))
    lines.append("")
    by = {(r["server"], r["procs"], r["conns"]): r for r in data["rows"] if "error" not in r}
    for n in sorted({r["conns"] for r in data["rows"]}):
        for kinds, against in ((("ragged", "ragged-level"), "asyncio"), (("ragged-tls",), "asyncio-tls")):
            base = by.get((against, "-", n))
            if base is None:
                continue
            for kind in kinds:
                for p in (1, 2):
                    mine = by.get((kind, p, n))
                    if mine is None:
                        continue
                    rts = ratio(mine["rt_per_s"], base["rt_per_s"])
                    p99 = ratio(mine.get("p99_us", 0), base.get("p99_us", 0))
                    cpu = ratio(mine.get("cpu_us_per_rt", 0), base.get("cpu_us_per_rt", 0))
                    lines.append(
                        f"conns={n}: {kind} procs={p} / {against}: round trips {rts:.2f}x, p99 {p99:.2f}x, "
                        f"CPU per round trip {cpu:.2f}x"
                    )
    goals = [t for t in data.get("targets", []) if t["value"] == t["value"]]  # those this run measured
    if goals:
        lines += ["", *render_targets(f"Goals at {GOAL_CONNS} connections", goals)]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m ragged.bench --net", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--conns",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[10, 1000, 10000],
        help="connection counts, default 10,1000,10000",
    )
    p.add_argument(
        "--servers",
        type=lambda s: s.split(","),
        default=[*PY_SERVERS, "go"],
        help=f"servers to run, default {','.join([*PY_SERVERS, 'go'])} (those that import); also "
        f"{','.join(EXTRA_SERVERS)} (ragged on the level-triggered poller); the -tls servers echo over TLS",
    )
    p.add_argument(
        "--procs",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 2],
        help="procs for the ragged servers, default 1,2",
    )
    p.add_argument("--seconds", type=positive(float), default=3.0, help="measured seconds per row, default 3")
    p.add_argument("--warmup", type=positive(float), default=1.0, help="warm-up seconds per row, default 1")
    p.add_argument("--repeat", type=positive(int), default=1, help="runs per row; the median is shown (default 1)")
    p.add_argument("--python-load", action="store_true", help="use the Python load generator even if Go is installed")
    p.add_argument("--quick", action="store_true", help="a smoke run: 10 and 100 connections, 0.5s per row")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    known = (*PY_SERVERS, *EXTRA_SERVERS, "go")
    unknown = [s for s in args.servers if s not in known]
    if unknown:
        raise SystemExit(f"--servers: unknown {unknown}; choose from {', '.join(known)}")
    if args.quick:
        args.conns, args.seconds, args.warmup = [10, 100], 0.5, 0.3
    data = run(args)
    print(render(data))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(data, f, indent=1)
        print(f"results written to {args.json}")
    return 1 if any("error" in r or r.get("errors") for r in data["rows"]) else 0
