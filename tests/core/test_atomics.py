"""The op-table binding in ragged._core._atomics against the public ``atomics`` API.

ragged binds to private internals of ``atomics`` (its op table) for speed; the
version is pinned in pyproject.toml.  These tests are the guard: if the
package changes under the pin, they fail.
"""

from __future__ import annotations

import importlib.metadata
import random
import threading
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import atomics
import pytest
from conftest import run_threads

from ragged._core._atomics import BINDING, AtomicWords

VALUES = [0, 1, 2, 15, 16, 17, 255, 256, 65535, 2**31 - 1, 2**31, 2**32 - 1]


@contextmanager
def public_view(words: AtomicWords, i: int) -> Iterator[Any]:
    """The public ``atomics`` view of word ``i`` of ``words`` (the same memory)."""
    buf = words.plain.cast("B")[4 * i : 4 * i + 4]
    with atomics.atomicview(buffer=buf, atype=atomics.UINT) as view:
        yield view


def test_atomics_version_is_pinned_to_1_0_3() -> None:
    assert importlib.metadata.version("atomics") == "1.0.3"
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert "atomics==1.0.3" in pyproject["project"]["dependencies"]


def test_binding_is_the_op_table() -> None:
    assert BINDING == "optable"


def test_words_are_cache_line_aligned_and_zeroed() -> None:
    w = AtomicWords(3)
    assert len(w) == 3
    assert [w.load(i) for i in range(3)] == [0, 0, 0]
    assert list(w.plain) == [0, 0, 0]
    with public_view(w, 0) as view:
        assert view.width == 4
    assert w._addrs[0] % 64 == 0


def test_zero_words_is_rejected() -> None:
    with pytest.raises(ValueError):
        AtomicWords(0)


@pytest.mark.parametrize("value", VALUES)
def test_store_and_load_agree_with_public_api(value: int) -> None:
    w = AtomicWords(4)
    for i in range(4):
        with public_view(w, i) as view:
            w.store(i, value)
            assert view.load() == value
            assert w.load(i) == value
            assert w.plain[i] == value
            view.store(VALUES[(VALUES.index(value) + 1) % len(VALUES)])
            assert w.load(i) == view.load()
    # Neighbouring words are independent.
    w2 = AtomicWords(2)
    w2.store(0, value)
    assert w2.load(1) == 0


@pytest.mark.parametrize("old,new", [(0, 1), (1, 0), (3, 16), (16, 3), (2**32 - 1, 7), (5, 2**32 - 1)])
def test_cas_agrees_with_public_cmpxchg(old: int, new: int) -> None:
    w = AtomicWords(2)
    with public_view(w, 1) as view:
        # Success: current == expected.
        w.store(1, old)
        assert w.cas(1, old, new) is True
        assert view.load() == new
        view.store(old)
        res = view.cmpxchg_strong(old, new)
        assert res.success and w.load(1) == new

        # Failure: current != expected leaves the word alone, same as the public method.
        w.store(1, old)
        other = (old + 1) % 2**32
        assert w.cas(1, other, new) is False
        assert view.load() == old
        res = view.cmpxchg_strong(other, new)
        assert not res.success and res.expected == old
        assert w.load(1) == old
    assert w.load(0) == 0


def test_interleaved_random_ops_agree_with_public_api() -> None:
    seed = 20240611
    rng = random.Random(seed)
    w = AtomicWords(1)
    model = 0
    with public_view(w, 0) as view:
        for step in range(2000):
            op = rng.randrange(4)
            v = rng.choice(VALUES)
            if op == 0:
                w.store(0, v)
                model = v
            elif op == 1:
                view.store(v)
                model = v
            elif op == 2:
                expected = model if rng.random() < 0.5 else rng.choice(VALUES)
                ok = w.cas(0, expected, v)
                assert ok == (expected == model), f"seed={seed} step={step}"
                if ok:
                    model = v
            else:
                expected = model if rng.random() < 0.5 else rng.choice(VALUES)
                res = view.cmpxchg_strong(expected, v)
                assert res.success == (expected == model), f"seed={seed} step={step}"
                if res.success:
                    model = v
            assert w.load(0) == view.load() == w.plain[0] == model, f"seed={seed} step={step}"


# ---------------------------------------------------------------- many threads


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("short_switch_interval")
@pytest.mark.parametrize("mixed", [False, True], ids=["optable", "optable+public"])
def test_exactly_one_of_many_racing_cas_wins(mixed: bool) -> None:
    """8 threads race to CAS a word from 0 to their id: exactly one wins, every round."""
    n_threads, rounds = 8, 200
    w = AtomicWords(1)
    start = threading.Barrier(n_threads + 1)
    done = threading.Barrier(n_threads + 1)
    wins: list[list[int]] = [[] for _ in range(rounds)]
    errors: list[BaseException] = []

    def racer(tid: int) -> None:
        try:
            use_public = mixed and tid % 2 == 0
            with public_view(w, 0) as view:
                for r in range(rounds):
                    start.wait()
                    won = view.cmpxchg_strong(0, tid).success if use_public else w.cas(0, 0, tid)
                    if won:
                        wins[r].append(tid)
                    done.wait()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
            start.abort()
            done.abort()

    threads = [threading.Thread(target=racer, args=(tid,)) for tid in range(1, n_threads + 1)]
    for t in threads:
        t.start()
    try:
        for r in range(rounds):
            w.store(0, 0)
            start.wait()
            done.wait()
            assert len(wins[r]) == 1, f"round {r}: winners {wins[r]}"
            assert w.load(0) == wins[r][0]
    finally:
        start.abort()
        done.abort()
        for t in threads:
            t.join(10)
    assert not errors or all(isinstance(e, threading.BrokenBarrierError) for e in errors), errors


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("short_switch_interval")
@pytest.mark.parametrize("mixed", [False, True], ids=["optable", "optable+public"])
def test_cas_loop_counter_is_exact(mixed: bool) -> None:
    """4 threads each add 1 10,000 times with a load/CAS loop: the total is exact."""
    n_threads, per_thread = 4, 10_000
    w = AtomicWords(1)
    start = threading.Barrier(n_threads)
    retries = [0] * n_threads

    def adder(tid: int) -> None:
        use_public = mixed and tid % 2 == 0
        with public_view(w, 0) as view:
            start.wait()
            for _ in range(per_thread):
                while True:
                    if use_public:
                        cur = view.load()
                        if view.cmpxchg_strong(cur, cur + 1).success:
                            break
                    else:
                        cur = w.load(0)
                        if w.cas(0, cur, cur + 1):
                            break
                    retries[tid] += 1

    errors = run_threads(adder, n_threads, 50)
    assert not errors, errors
    assert w.load(0) == n_threads * per_thread, f"lost updates (retries per thread: {retries})"


@pytest.mark.parametrize("start", [0, 1, 15, 16, 2**31, 2**32 - 1])
@pytest.mark.parametrize("delta", [1, -1, 7, -16, 2**31])
def test_add_agrees_with_public_fetch_add(start: int, delta: int) -> None:
    """``add`` returns the new value, wraps modulo 2**32, and matches the public API."""
    w = AtomicWords(2)
    w.store(0, start)
    w.store(1, start)
    got = w.add(0, delta)
    with public_view(w, 1) as view:
        old = view.fetch_add(delta % 2**32)
    assert old == start
    assert got == (start + delta) % 2**32 == w.load(0) == w.load(1)


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("short_switch_interval")
@pytest.mark.parametrize("mixed", [False, True], ids=["optable", "optable+public"])
def test_add_counter_is_exact(mixed: bool) -> None:
    """4 threads each add +1 and then -1 10,000 times, some through the public API:
    no update is lost, and a final +1 from each leaves exactly 4."""
    n_threads, per_thread = 4, 10_000
    w = AtomicWords(1)
    start = threading.Barrier(n_threads)

    def adder(tid: int) -> None:
        use_public = mixed and tid % 2 == 0
        with public_view(w, 0) as view:
            start.wait()
            for _ in range(per_thread):
                if use_public:
                    view.fetch_add(1)
                    view.fetch_sub(1)
                else:
                    w.add(0, 1)
                    w.add(0, -1)
            w.add(0, 1)

    errors = run_threads(adder, n_threads, 50)
    assert not errors, errors
    assert w.load(0) == n_threads
