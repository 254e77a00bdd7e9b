"""ragged.AtomicInt: the int64 op-table binding, its range, and no lost update from Ps and threads."""

from __future__ import annotations

import random
import threading

import atomics
import pytest
from conftest import run_threads

import ragged
from ragged import AtomicInt
from ragged._atomic import _OPS, INT64_MAX, INT64_MIN

EDGES = [0, 1, -1, 15, 16, 17, -16, -17, 2**31, -(2**31) - 1, 2**32, INT64_MAX, INT64_MIN, INT64_MAX - 1]


def public_view(a: AtomicInt) -> atomics.INTEGRAL:
    """The public ``atomics`` API over the same 8 bytes (to check the op-table binding against)."""
    return atomics.atomicview(buffer=memoryview(a._cell).cast("B"), atype=atomics.INT)


def test_the_int64_ops_are_bound_from_the_op_table() -> None:
    assert _OPS is not None  # else every call goes through the slow public API


@pytest.mark.parametrize("value", EDGES)
def test_every_op_agrees_with_the_public_atomics_api(value: int) -> None:
    a = AtomicInt(value)
    with public_view(a) as view:
        assert view.width == 8
        assert a.load() == view.load() == value
        a.store(value - 1 if value > INT64_MIN else value + 1)
        assert a.load() == view.load()
        view.store(value)
        assert a.load() == value
        assert a.swap(7) == value and view.load() == 7
        assert a.compare_and_swap(7, value) is True and view.load() == value
        assert a.compare_and_swap(7, 8) is False and view.load() == value
        assert a.add(0) == value
        delta = -3 if value > INT64_MIN + 3 else 3
        assert a.add(delta) == value + delta == view.load()


def test_add_wraps_around_as_go_does_and_returns_the_new_value() -> None:
    a = AtomicInt(INT64_MAX)
    assert a.add(1) == INT64_MIN == a.load()
    assert a.add(-1) == INT64_MAX
    assert a.add(INT64_MIN) == -1
    b = AtomicInt()
    assert [b.add(d) for d in (5, -2, 100, -103)] == [5, 3, 103, 0]


@pytest.mark.parametrize("bad", [2**63, -(2**63) - 1, 2**100])
def test_values_outside_int64_raise_overflow_error_and_change_nothing(bad: int) -> None:
    with pytest.raises(OverflowError, match="signed 64-bit"):
        AtomicInt(bad)
    a = AtomicInt(5)
    for call in (a.store, a.add, a.swap, lambda v: a.compare_and_swap(v, 1), lambda v: a.compare_and_swap(5, v)):
        with pytest.raises(OverflowError, match="-2\\*\\*63 to 2\\*\\*63-1"):
            call(bad)
    assert a.load() == 5


@pytest.mark.parametrize("bad", [True, 1.0, "1", None])
def test_non_integers_raise_type_error(bad: object) -> None:
    with pytest.raises(TypeError, match="takes an int"):
        AtomicInt(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="AtomicInt.add"):
        AtomicInt().add(bad)  # type: ignore[arg-type]


def test_integer_types_with_index_are_taken() -> None:
    class Idx:
        def __index__(self) -> int:
            return 41

    a = AtomicInt(Idx())  # type: ignore[arg-type]
    assert a.add(Idx()) == 82  # type: ignore[arg-type]
    assert repr(a) == "AtomicInt(82)"


N_INC = 20_000


@pytest.mark.timeout(120)
@pytest.mark.parametrize("rep", range(5))
def test_no_increment_is_lost_from_4_ps(rep: int) -> None:
    async def inc(a: AtomicInt, n: int) -> None:
        for i in range(n):
            a.add(1)
            if i % 512 == 0:
                await ragged.gosched()

    async def cas_inc(a: AtomicInt, n: int) -> int:
        retries = 0
        for i in range(n):
            while True:
                v = a.load()
                if a.compare_and_swap(v, v + 1):
                    break
                retries += 1
            if i % 512 == 0:
                await ragged.gosched()
        return retries

    async def main() -> int:
        a = AtomicInt()
        async with ragged.Group() as g:
            for _ in range(3):
                g.go(inc, a, N_INC)
            g.go(cas_inc, a, N_INC)
        return a.load()

    assert ragged.run(main, procs=4) == 4 * N_INC


@pytest.mark.timeout(120)
@pytest.mark.parametrize("rep", range(5))
def test_no_update_is_lost_from_plain_threads_and_goroutines_together(rep: int) -> None:
    seed = random.randrange(2**32)
    deltas = [random.Random(seed + i).randrange(-1000, 1000) for i in range(4)]
    a = AtomicInt()
    swaps = AtomicInt()

    def thread_inc(i: int) -> None:
        d = deltas[i]
        for _ in range(N_INC):
            a.add(d)
            swaps.swap(i)

    async def goroutine_inc(d: int) -> None:
        for i in range(N_INC):
            a.add(d)
            if i % 512 == 0:
                await ragged.checkpoint()

    with ragged.Runtime(procs=2) as rt:
        gs = [rt.go(goroutine_inc, 3) for _ in range(2)]
        errors = run_threads(thread_inc, 4, timeout=100)
        for g in gs:
            g.result(timeout=100)
    assert errors == []
    assert a.load() == N_INC * (sum(deltas) + 6), f"seed {seed}"
    assert swaps.load() in range(4)


@pytest.mark.timeout(60)
def test_exactly_one_racing_cas_wins() -> None:
    """Threads race CAS(0 -> their id) on fresh AtomicInts: each round has exactly one winner."""
    rounds = 2000
    cells = [AtomicInt() for _ in range(rounds)]
    wins = [[0] * rounds for _ in range(4)]
    start = threading.Barrier(4)

    def racer(i: int) -> None:
        start.wait()
        for r, c in enumerate(cells):
            if c.compare_and_swap(0, i + 1):
                wins[i][r] = 1

    assert run_threads(racer, 4, timeout=50) == []
    for r, c in enumerate(cells):
        assert sum(w[r] for w in wins) == 1
        assert wins[c.load() - 1][r] == 1
