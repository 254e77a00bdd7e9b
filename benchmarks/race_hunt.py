"""Race hunting: run chosen test files many times over, and count passes per test.

    PYTHON_GIL=0 .venv-ft/bin/python benchmarks/race_hunt.py --repeat 20 tests/stress/test_barrier_race.py
    .venv/bin/python benchmarks/race_hunt.py --repeat 20 tests/go/test_go_chan.py tests/go/test_go_sync.py
    RAGGED_CHAOS_SEEDS=1-400 .venv-ft/bin/python benchmarks/race_hunt.py tests/stress/test_chaos.py -k workload
    RAGGED_STATEFUL_EXAMPLES=1500 .venv-ft/bin/python benchmarks/race_hunt.py --stateful-seeds 1-5 \\
        tests/stress/test_stateful.py

Each repetition is one pytest process (so a hang or a crash costs one run,
not the hunt) run with this interpreter, under ``nice``, with the
environment given (``RAGGED_CHAOS_SEEDS``, ``RAGGED_STATEFUL_*``; with
``--stateful-seeds`` each repetition gets the next ``RAGGED_STATEFUL_SEED``).
At the end it prints one line per test: passes / runs, and the failures'
first lines; the exit status is 1 if anything failed.  The interpreter,
its build and GIL state are in the first line.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

from ragged._core._platform import describe


def run_once(files: list[str], extra: list[str], env: dict[str, str], timeout: float) -> dict[str, str | None]:
    """One pytest run: {test id: None if it passed, else the first line of its failure}."""
    with tempfile.TemporaryDirectory() as tmp:
        xml = os.path.join(tmp, "r.xml")
        cmd = ["nice", "-n", "15", sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        cmd += ["--junitxml", xml, *extra, *files]
        try:
            subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"<the whole run>": f"timed out after {timeout}s"}
        if not os.path.exists(xml):
            return {"<the whole run>": "pytest wrote no report (it crashed)"}
        out: dict[str, str | None] = {}
        for case in ET.parse(xml).getroot().iter("testcase"):
            tid = f"{case.get('classname', '').split('.')[-1]}::{case.get('name')}"
            bad = case.find("failure")
            if bad is None:
                bad = case.find("error")
            if case.find("skipped") is not None:
                continue
            out[tid] = None if bad is None else (bad.get("message") or "failed").splitlines()[0][:200]
        return out


def main(argv: list[str] | None = None) -> int:
    fmt = argparse.RawTextHelpFormatter
    ap = argparse.ArgumentParser(prog="race_hunt.py", description=__doc__, formatter_class=fmt)
    ap.add_argument("files", nargs="+", help="test files (and pytest options after --)")
    ap.add_argument("--repeat", type=int, default=1, help="pytest runs (default 1)")
    ap.add_argument("--stateful-seeds", default="", help="a-b: one RAGGED_STATEFUL_SEED per run")
    ap.add_argument("-k", default=None, help="pytest -k expression")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per pytest run")
    args = ap.parse_args(argv)
    env = dict(os.environ)
    seeds: list[int] = []
    if args.stateful_seeds:
        lo, _, hi = args.stateful_seeds.partition("-")
        seeds = list(range(int(lo), int(hi or lo) + 1))
        args.repeat = len(seeds)
    extra = ["-k", args.k] if args.k else []
    print(f"race hunt: {describe()}; {args.repeat} run(s) of {' '.join(args.files)} {' '.join(extra)}", flush=True)
    for k in ("RAGGED_CHAOS_SEEDS", "RAGGED_STATEFUL_EXAMPLES", "PYTHON_GIL"):
        if k in env:
            print(f"  {k}={env[k]}", flush=True)
    passes: collections.Counter[str] = collections.Counter()
    runs: collections.Counter[str] = collections.Counter()
    failures: dict[str, list[str]] = collections.defaultdict(list)
    t0 = time.monotonic()
    for i in range(args.repeat):
        if seeds:
            env["RAGGED_STATEFUL_SEED"] = str(seeds[i])
        res = run_once(args.files, extra, env, args.timeout)
        bad = {t: m for t, m in res.items() if m is not None}
        for t, m in res.items():
            runs[t] += 1
            if m is None:
                passes[t] += 1
            else:
                failures[t].append(f"run {i + 1}{f' (seed {seeds[i]})' if seeds else ''}: {m}")
        print(f"  run {i + 1}/{args.repeat}: {len(res) - len(bad)}/{len(res)} passed ({time.monotonic() - t0:.0f}s)")
        for t, m in bad.items():
            print(f"    FAILED {t}: {m}", flush=True)
    print("per test: passes/runs")
    for t in sorted(runs):
        print(f"  {passes[t]}/{runs[t]}  {t}")
    total_bad = sum(len(v) for v in failures.values())
    print(f"race hunt: {sum(passes.values())}/{sum(runs.values())} test runs passed in {time.monotonic() - t0:.0f}s")
    return 1 if total_bad else 0


if __name__ == "__main__":
    sys.exit(main())
