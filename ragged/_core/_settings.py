"""Tunable settings of one runtime, validated once at construction."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


def env_int(name: str) -> int | None:
    """An int environment variable, None when unset; ValueError naming it when malformed."""
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{name} must be an integer seed, not {text!r}") from None


def _seconds(v: int | float) -> float:
    """A validated time as a float: an int too big for a float (``10**400``) is ``inf``, as it means."""
    try:
        return float(v)
    except OverflowError:
        return math.inf if v > 0 else -math.inf


@dataclass
class Settings:
    """A runtime's settings: the keyword arguments of :class:`~ragged.Runtime` and :func:`~ragged.run`.

    Times are in seconds (``math.inf`` and huge values are accepted: never, or
    wait as long as it takes); ``rt.settings`` holds the validated values.

    ``syscall_retake`` (20µs, as Go)
        sysmon hands a P stuck in a syscall this long to another M.
    ``preempt_after`` (10ms, as Go)
        sysmon asks a goroutine that has run this long to yield at its next checkpoint.
    ``straggler_timeout`` (1s)
        a barrier or stop-the-world waiting this long logs the Ps it waits for.
    ``max_threads`` (10000, as Go)
        most Ms (OS threads) the runtime may start.
    ``shutdown_timeout`` (5s)
        how long ``close()`` lets cancelled goroutines finish.
    ``barrier_step_aside`` (None: automatic)
        for this long after a barrier starts, an M whose P has run ``fn`` waits
        for the barrier to end instead of taking the GIL (or its core) back
        from the Ms still to reach their safe point (0: never).  None (the default): 20ms where the GIL is
        on; on a free-threaded build without it an M never waits while the
        Ps can all run at once; with more Ps than usable CPUs it yields its
        core at each safe point, and after the barrier's first millisecond
        waits at its goroutine's checkpoints (within 20ms).
    ``block_report`` (off; 100ms with ``debug``)
        sysmon logs a goroutine that has held its P this long without reaching
        a safe point, once per slice, with its stack (see the blocking-call
        report guide);
        None or 0: off.  Must exceed ``preempt_after``.
    ``async_preempt`` (True)
        on CPython 3.12+, reach a goroutine that never awaits: a barrier, a
        stop-the-world or sysmon's time slice that a goroutine does not answer
        at a checkpoint is served from inside its running Python code (see
        :func:`ragged.checkpoint`); False: only at await points, as on 3.11
        (Go's ``GODEBUG=asyncpreemptoff=1``).
    ``detect_deadlock`` (False; True in ``ragged.run``)
        fail with ``Deadlock`` when no goroutine can ever run again.
    ``debug`` (``RAGGED_DEBUG=1``)
        check every P status transition (and turn ``block_report`` on).  The
        lock-order check (:class:`~ragged.LockOrderError`) is for the whole
        process: it follows ``RAGGED_DEBUG`` as set when ragged is imported.
    ``chaos`` (``RAGGED_CHAOS=<seed>``)
        a seed: inject random yields at the scheduler's racy points.

    :raises TypeError: for a value of the wrong type.
    :raises ValueError: for a value out of range (negative or NaN times,
        ``max_threads`` <= 0, ``block_report`` not above ``preempt_after``).
    :Called from: anywhere (``Runtime`` makes it; read it as ``rt.settings``).
    """

    syscall_retake: float = 20e-6
    preempt_after: float = 10e-3
    straggler_timeout: float = 1.0
    max_threads: int = 10000
    shutdown_timeout: float = 5.0
    barrier_step_aside: float | None = None
    block_report: float | None = None
    async_preempt: bool = True
    detect_deadlock: bool = False
    debug: bool = False
    chaos: int | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.type in ("float", float):
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise TypeError(f"{f.name} must be a number of seconds, not {type(v).__name__}")
                fv = _seconds(v)
                if math.isnan(fv) or fv < 0:
                    raise ValueError(f"{f.name} must be >= 0 seconds, not {v!r}")
                setattr(self, f.name, fv)
            elif f.type in ("int", int):
                if isinstance(v, bool) or not isinstance(v, int):
                    raise TypeError(f"{f.name} must be an int, not {type(v).__name__}")
                if v <= 0:
                    raise ValueError(f"{f.name} must be positive, not {v!r}")
            elif f.type in ("bool", bool):
                if not isinstance(v, bool):
                    raise TypeError(f"{f.name} must be True or False, not {v!r}")
            elif f.type in ("float | None",):
                if v is not None:
                    if isinstance(v, bool) or not isinstance(v, (int, float)):
                        raise TypeError(f"{f.name} must be None or a number of seconds, not {type(v).__name__}")
                    fv = _seconds(v)
                    if math.isnan(fv) or fv < 0:
                        raise ValueError(f"{f.name} must be None or >= 0 seconds, not {v!r}")
                    setattr(self, f.name, fv)
            elif f.type in ("int | None",):
                if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                    raise TypeError(f"{f.name} must be None or an int, not {type(v).__name__}")
        if self.block_report == 0:
            self.block_report = None  # 0 means off, as None does
        br = self.block_report
        if br is not None and br <= self.preempt_after:
            raise ValueError(
                f"block_report ({br}s) must exceed preempt_after ({self.preempt_after}s): a goroutine "
                "that awaits ragged.checkpoint() is preempted only preempt_after into its slice, so a "
                "shorter block_report would report it too; raise block_report or lower preempt_after"
            )


DEBUG_BLOCK_REPORT = 0.1
"""``block_report`` under ``RAGGED_DEBUG=1`` (or ``debug=True``) when not given: 100ms,
or twice ``preempt_after`` if that is longer (set by ``Runtime``)."""


SETTING_NAMES = tuple(f.name for f in fields(Settings))
