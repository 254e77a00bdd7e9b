"""``python -m ragged.bench`` (also ``ragged-bench``): the stress benchmark.

With no flags it runs the default stress workload (about a minute): on procs
1, 2, 4 and 8, compute goroutines that checkpoint, channel pipelines and
blocking syscalls run together while a coordinator issues ragged barriers,
then the same with stop-the-world, with no-coordinator slices as baseline.
``--peers`` runs the comparison with asyncio, threads and gevent; ``--net``
the echo benchmark of the network poller (``ragged.bench.netbench``);
``--preempt`` asynchronous preemption: barriers, stop-the-world and a
sleeper beside goroutines that never await (``ragged.bench.preempt``).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from . import report, stress
from .cli import PEER_PARTS, positive
from .targets import stress_goals


def _procs_list(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--procs takes comma-separated positive ints, not {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"--procs takes comma-separated positive ints, not {text!r}")
    return values


def _non_negative(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, not {text!r}") from None
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, not {text!r}")
    return v


def _mix(text: str) -> stress.Mix:
    try:
        return stress.Mix.parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _parts(text: str) -> tuple[str, ...]:
    parts = tuple(x.strip() for x in text.split(",") if x.strip())
    if not parts or any(x not in PEER_PARTS for x in parts):
        choices = ", ".join(PEER_PARTS)
        raise argparse.ArgumentTypeError(f"--only takes comma-separated parts from {choices}, not {text!r}")
    return parts


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m ragged.bench",
        description=__doc__,
        epilog=report.LEGEND,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--procs",
        type=_procs_list,
        default=[1, 2, 4, 8],
        help="comma-separated procs values (GOMAXPROCS) to run, default 1,2,4,8",
    )
    p.add_argument(
        "--mode",
        choices=("foreach", "stw", "both"),
        default="both",
        help="coordinator operation: ragged barrier (foreach), stop-the-world (stw) or both (default); "
        "no-coordinator slices always run as the baseline",
    )
    p.add_argument(
        "--duration",
        type=positive(float),
        default=1.2,
        help="seconds per slice (one mode on one procs value); default 1.2",
    )
    p.add_argument("--reps", type=positive(int), default=3, help="slices per mode, rotated in order; default 3")
    p.add_argument(
        "--interval",
        type=positive(float),
        default=1e-3,
        help="seconds between coordinator operations (start to start); default 0.001",
    )
    p.add_argument(
        "--mix",
        type=_mix,
        default=stress.Mix(),
        help="workload mix: compute=N goroutines per P that checkpoint every ~50µs, pipeline=N channel "
        "pipelines, syscall=N goroutines making 1ms blocking calls; default compute=1,pipeline=1,syscall=2",
    )
    p.add_argument(
        "--step-aside",
        type=_non_negative,
        default=None,
        help="override the runtime's barrier_step_aside setting: for how long into a barrier an M that has "
        "run fn waits off the GIL for the others (seconds; 0 = never, pure ragged)",
    )
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    p.add_argument("--plot", metavar="PATH", help="draw pause and latency distributions to a PNG (needs matplotlib)")
    p.add_argument("--trace", metavar="PATH", help="record an execution trace of the run (Chrome trace-event JSON)")
    p.add_argument(
        "--peers",
        action="store_true",
        help="run the peer comparison instead (asyncio, threading, gevent; compute scaling on several Ps, "
        "the mutators' rate while a barrier or a stop-the-world is in flight, and AtomicInt beside a "
        "lock-guarded int), ~3 minutes",
    )
    p.add_argument("--quick", action="store_true", help="with --peers: a smoke run with small sizes (a few seconds)")
    p.add_argument(
        "--only",
        type=_parts,
        metavar="PARTS",
        help="with --peers: run only these comma-separated parts, e.g. scaling,mutator; "
        "parts: " + ", ".join(PEER_PARTS),
    )
    p.add_argument(
        "--net", action="store_true", help="run the network poller's echo benchmark instead (see --net --help)"
    )
    p.add_argument(
        "--preempt",
        action="store_true",
        help="run the asynchronous preemption benchmark instead: barriers, stop-the-world and a sleeper beside "
        "goroutines that never await (see --preempt --help)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


STRESS_ONLY = ("procs", "mode", "duration", "reps", "interval", "mix", "step_aside", "plot", "trace")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--net" in argv:
        # The network poller's echo benchmark has its own options (see --net --help).
        from . import netbench

        return netbench.main([a for a in argv if a != "--net"])
    if "--preempt" in argv:
        # Asynchronous preemption's benchmark has its own options (see --preempt --help).
        from . import preempt

        return preempt.main([a for a in argv if a != "--preempt"])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.peers:
        given = [f"--{n.replace('_', '-')}" for n in STRESS_ONLY if getattr(args, n) != parser.get_default(n)]
        if given:
            parser.error(f"{', '.join(given)} only apply to the stress run, not to --peers")
    else:
        for flag, on in (("--quick", args.quick), ("--only", args.only)):
            if on:
                parser.error(f"{flag} only applies to --peers")
    if args.plot:
        from . import plot

        plot.require_matplotlib()
    if args.peers:
        from . import peers

        data = peers.run(quiet=args.quiet, quick=args.quick, only=args.only or PEER_PARTS)
        print(peers.render(data))
    else:
        modes = ("foreach", "stw") if args.mode == "both" else (args.mode,)
        settings: dict[str, Any] = {}
        if args.step_aside is not None:
            settings["barrier_step_aside"] = args.step_aside
        data = _with_trace(
            args.trace,
            lambda: stress.run(
                args.procs, modes, args.mix, args.duration, args.reps, args.interval, settings, args.quiet
            ),
        )
        data["targets"] = [t.as_dict() for t in stress_goals(data)]
        print(report.render(data))
        if args.plot:
            from . import plot

            plot.draw(data, args.plot)
            print(f"plot written to {args.plot}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(data, f, indent=1)
        print(f"results written to {args.json}")
    return 1 if _failed(data) else 0


def _with_trace(path: str | None, fn: Any) -> Any:
    if not path:
        return fn()
    try:
        import ragged

        tracer = ragged.trace
    except AttributeError:
        sys.exit("--trace: this build of ragged has no tracer")
    with tracer(path):
        return fn()


def _failed(data: dict[str, Any]) -> bool:
    """True when a run found a correctness error (a barrier that did not run fn exactly once per P)."""
    if any(r.get("errors") for r in data.get("mutator", {}).get("results", [])):
        return True
    return any(m.get("errors") for r in data.get("results", []) for m in r.get("modes", {}).values())


if __name__ == "__main__":
    sys.exit(main())
