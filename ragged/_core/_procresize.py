"""Changing the number of Ps (Go's ``procresize``, ``runtime.GOMAXPROCS``).

Runs with the world stopped and ``worldsema`` held, so no barrier, no other
stop-the-world and no goroutine runs meanwhile (Go issue 10618 was a
GOMAXPROCS change racing a barrier; ``worldsema`` rules that out here).

Growing reuses Ps that died earlier (DEAD -> GCSTOP) or makes new ones.
Shrinking moves each retired P's local run queue to the global queue -- no
goroutine is lost -- marks it DEAD and detaches its per-P storage, which the
caller hands to the user's ``on_retire(p_id, local)`` callback once the world
runs again.  A goroutine caller whose own P is retired moves to P0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._errors import combine
from ._m import tls
from ._p import DEAD, GCSTOP, P

if TYPE_CHECKING:  # pragma: no cover
    from ._sched import Sched

Retired = list[tuple[int, dict[Any, Any]]]


def procresize(sched: Sched, n: int, callerp: P | None, detach: bool) -> tuple[P | None, Retired]:
    """Make ``n`` Ps live.  World stopped; returns (the caller's P now, retired storage).

    With ``detach`` the retired Ps' storage is returned (and cleared on the
    P); without it, it stays on the dead P and comes back if it is revived.
    """
    retired: Retired = []
    with sched.lock:
        old = sched.procs
        allp = sched.allp
        while len(allp) < n:
            allp.append(P(len(allp), sched))  # born GCSTOP
        for p in allp[old:n]:
            if p.plain[0] == DEAD:
                p.setstatus(GCSTOP)
                p.sp_requested = 0.0
        for p in allp[n:old]:
            q = p.runq
            while q:
                sched.globrunq.append(q.popleft())
            if detach:
                retired.append((p.id, p.local))
                p.local = {}
            p.setstatus(DEAD)
            p.m = None
        sched.procs = n
        if sched.trace is not None:
            sched.trace.procs_change(sched, old, n)
        if callerp is not None and callerp.id >= n:
            m = tls.m
            newp = allp[0]
            callerp.m = None
            m.p = newp
            newp.m = m
            callerp = newp
    return callerp, retired


def hand_over(retired: Retired, on_retire: Callable[[int, dict[Any, Any]], Any] | None) -> None:
    """Give each retired P's storage to ``on_retire``; errors propagate after all ran."""
    if on_retire is None:
        return
    errors: list[BaseException] = []
    for pid, local in retired:
        try:
            on_retire(pid, local)
        except Exception as err:  # noqa: BLE001 - re-raised below, after every P was handed over
            errors.append(err)
    if errors:
        raise combine(errors, "set_procs: on_retire raised")


def check_on_retire(on_retire: Any) -> None:
    if on_retire is not None and not callable(on_retire):
        raise TypeError(f"on_retire must be a callable on_retire(p_id, local) or None, not {type(on_retire).__name__}")
