"""Chaos mode: ``RAGGED_CHAOS=<seed>`` (or ``Runtime(chaos=seed)``).

At the racy points of the scheduler -- P status stores and CASes, between
setting the barrier flags and preempting, in ``findrunnable`` just before a
P goes idle, in ``handoffp``, on syscall entry and exit -- the runtime calls
``sched.chaos.point(name)``, which injects a random GIL release
(``time.sleep(0)``) or a tiny sleep, drawn from the seed, to widen race
windows.  Off (``sched.chaos is None``) each point costs one attribute check.

Threads interleave as the OS pleases, so a seed does not replay a run
exactly; it replays the same injection decisions, which is what makes a
failing seed worth re-running many times.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
import time

from ._lockrank import Rank, new_lock

_log = logging.getLogger("ragged")

POINTS = (
    "setstatus",
    "casstatus",
    "barrier-flags-set",
    "findrunnable-idle",
    "handoffp",
    "entersyscall",
    "exitsyscall",
)


class Chaos:
    """A seeded race-window widener.  ``counts`` tallies injections per point."""

    def __init__(self, seed: int, rate: float = 0.5, max_sleep: float = 50e-6) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"chaos seed must be an int, not {type(seed).__name__}")
        self.seed = seed
        self.rate = rate
        self.max_sleep = max_sleep
        self._local = threading.local()
        self._threads = itertools.count()
        self._lock = new_lock(Rank.CHAOS, "Chaos._lock")
        self.counts: dict[str, int] = dict.fromkeys(POINTS, 0)

    def _rng(self) -> random.Random:
        r = getattr(self._local, "rng", None)
        if r is None:
            with self._lock:
                k = next(self._threads)
            r = self._local.rng = random.Random(self.seed * 1_000_003 + k)
        return r

    def point(self, where: str) -> None:
        """Maybe yield the GIL or sleep a little here."""
        r = self._rng()
        x = r.random()
        if x >= self.rate:
            return
        with self._lock:
            self.counts[where] = self.counts.get(where, 0) + 1
        if x < self.rate * 0.6:
            time.sleep(0)
        else:
            time.sleep(r.random() * self.max_sleep)

    def __repr__(self) -> str:
        return f"Chaos(seed={self.seed})"


def from_setting(seed: int | None) -> Chaos | None:
    """The Chaos for a runtime's ``chaos`` setting, announcing it in the log."""
    if seed is None:
        return None
    _log.warning("ragged: chaos mode on, RAGGED_CHAOS=%d (replay with the same seed)", seed)
    return Chaos(seed)
