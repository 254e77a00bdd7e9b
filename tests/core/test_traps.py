"""The traps (``_core._traps``): the requests a goroutine yields to its M, and the checkpoint hint.

The requests are checked by driving the generator-based coroutines by hand
(what each yields, what it returns); the checkpoint fast path by the slot's
value and by counting context switches on a live runtime.  ``arm``/``disarm``
are process-wide: each test restores the count it found.
"""

from __future__ import annotations

import types
from collections.abc import Iterator

import pytest

import ragged
from ragged._core import _traps
from ragged._core._errors import NotInGoroutine
from ragged._core._m import tls


@pytest.fixture
def pending_restored() -> Iterator[int]:
    """The pending-request count before the test; the test must leave it as it found it."""
    before = _traps._pending
    yield before
    assert _traps._pending == before, "the test left a checkpoint request armed"
    assert _traps.pending() == (before > 0)


def _first(gen: object) -> object:
    """What a generator-based coroutine yields first."""
    return gen.send(None)  # type: ignore[attr-defined]


# ---------------------------------------------------------------- the requests


def test_gopark_yields_park_with_its_unlock_function_and_returns_what_the_waker_sent() -> None:
    def unlockf() -> None:
        pass

    sudog = object()
    gen = _traps.gopark(unlockf, "chan receive", sudog)
    assert _first(gen) == (_traps.PARK, unlockf, "chan receive", sudog)
    with pytest.raises(StopIteration) as stop:
        gen.send("the value")  # what goready(g, value) resumes it with
    assert stop.value.value == "the value"


def test_gopark_raises_what_the_waker_passed() -> None:
    gen = _traps.gopark(None, "sleep", object())
    _first(gen)
    with pytest.raises(ragged.Cancelled):
        gen.throw(ragged.Cancelled("cancelled while parked"))


def test_syscall_trap_yields_the_call_and_returns_its_result() -> None:
    gen = _traps.syscall_trap(divmod, (7, 2))
    assert _first(gen) == (_traps.SYSCALL, divmod, (7, 2))
    with pytest.raises(StopIteration) as stop:
        gen.send((3, 1))
    assert stop.value.value == (3, 1)


def test_gosched_yields_yield_inside_a_goroutine_and_refuses_outside() -> None:
    with pytest.raises(NotInGoroutine):
        _first(_traps.gosched())

    class _M:
        curg = object()

    tls.m = _M()
    try:
        assert _first(_traps.gosched()) == (_traps.YIELD,)
    finally:
        del tls.m


def test_the_request_codes_are_distinct() -> None:
    codes = [_traps.YIELD, _traps.CHECK, _traps.PARK, _traps.SYSCALL]
    assert len(set(codes)) == 4 and 0 not in codes  # 0 is what execute gives a foreign request


# ---------------------------------------------------------------- the checkpoint hint


def test_checkpoint_is_an_exhausted_coroutine_while_nothing_is_pending(pending_restored: int) -> None:
    if pending_restored:
        pytest.fail(f"{pending_restored} checkpoint requests were pending before the test")
    cp = ragged.checkpoint()
    assert cp is _traps._FAST
    assert isinstance(cp, types.GeneratorType)
    with pytest.raises(StopIteration):
        cp.send(None)  # finishes at once: await suspends nothing


def test_arm_makes_every_checkpoint_trap_until_each_arm_is_disarmed(pending_restored: int) -> None:
    _traps.arm()
    _traps.arm()
    try:
        assert _traps.pending()
        slow = ragged.checkpoint()
        assert slow is _traps._SLOW
        assert _first(slow.__await__()) == (_traps.CHECK,)
        _traps.disarm()
        assert _traps.pending(), "one of two requests is still pending"
    finally:
        _traps.disarm()
    assert ragged.checkpoint() is (_traps._SLOW if pending_restored else _traps._FAST)


def test_rearm_makes_the_slot_slow_again_only_while_requests_are_pending(pending_restored: int) -> None:
    _traps.arm()
    try:
        _traps._slot[0] = _traps._FAST  # as a stale write could leave it
        _traps.rearm()
        assert ragged.checkpoint() is _traps._SLOW
    finally:
        _traps.disarm()
    if not pending_restored:
        _traps.rearm()
        assert ragged.checkpoint() is _traps._FAST


def test_disarm_more_often_than_armed_is_a_bug_and_says_so(pending_restored: int) -> None:
    if pending_restored:
        pytest.fail(f"{pending_restored} checkpoint requests were pending before the test")
    with pytest.raises(AssertionError, match="disarmed more often than armed"):
        _traps.disarm()


def test_a_goroutine_holds_at_most_one_arm_and_a_finished_one_none(pending_restored: int) -> None:
    class _G:
        armed = False
        _done = False

    g = _G()
    _traps.arm_g(g)
    _traps.arm_g(g)  # a second request for the same goroutine adds no arm
    assert g.armed and _traps._pending == pending_restored + 1
    _traps.disarm_g(g)
    _traps.disarm_g(g)  # dropping twice is harmless
    assert not g.armed and _traps._pending == pending_restored
    g._done = True
    _traps.arm_g(g)
    assert not g.armed, "a finished goroutine was armed: nothing would ever drop that arm"
    assert _traps._pending == pending_restored


@pytest.mark.timeout(30)
def test_checkpoint_is_a_noop_when_nothing_is_pending() -> None:
    def switches_and_preemptions() -> tuple[int, int]:
        m = ragged.metrics()
        return m["context_switches"], m["preemptions"]

    async def main() -> tuple[list[None], int, int]:
        s0, p0 = switches_and_preemptions()
        out = [await ragged.checkpoint() for _ in range(1000)]
        s1, p1 = switches_and_preemptions()
        return out, s1 - s0, p1 - p0

    out, switches, preemptions = ragged.run(main, procs=1)
    assert out == [None] * 1000
    # Only a sysmon preemption request (on a slow machine) may make it leave the P.
    assert switches == preemptions, "checkpoint() left the goroutine although nothing was pending"


def test_checkpoint_looks_like_the_function_it_documents() -> None:
    """``ragged.checkpoint`` is a C-level call for speed; to users it is a function of no arguments."""
    import inspect

    cp = ragged.checkpoint
    assert cp.__name__ == "checkpoint"
    assert "cheap safe point" in (cp.__doc__ or "")
    assert not inspect.signature(cp).parameters
    with pytest.raises(TypeError):
        cp(1)  # type: ignore[call-arg]

    # It returns whatever the process-wide slot holds now (fast, or trapping
    # while some runtime has a request pending); the fast value is a no-op
    # awaitable: awaiting it finishes at once.
    from ragged._core import _traps

    assert cp() is _traps._slot[0]

    async def await_fast() -> None:
        await _traps._FAST

    with pytest.raises(StopIteration):
        await_fast().send(None)
